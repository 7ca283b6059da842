"""Diverse inputs: DI-FGSM and DIM (Xie et al. 2019; docs/theory.md §1 DI / DIM)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.attacks.base import AttackBatch, LossFn
from pyadvt.attacks.iterative import _TRANSFORM, IterativeAttack, stream_id
from pyadvt.utils import per_sample_rand
from pyadvt.utils.deprecation import keyword_only

_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


@keyword_only("p", "resize_low", "resize_high", "interpolation")
def diverse_input(x: torch.Tensor, draws: torch.Tensor, *, p: float = 0.7, resize_low: float = 0.9,
                  resize_high: float = 1.1, interpolation: str = "nearest") -> torch.Tensor:
    """The DI transform, differentiable, one independent draw per sample.

    For sample ``i`` with uniforms ``draws[i] = (u_apply, u_r, u_top, u_left)`` in [0, 1): if
    ``u_apply < p``, resize ``x[i]`` to ``(round(r H), round(r W))`` with
    ``r = resize_low + (resize_high - resize_low) u_r``, then bring it back to ``H x W``: zero-pad at a
    random offset when smaller (``top = floor(u_top (H - h' + 1))``), crop at a random offset when larger;
    otherwise ``x[i]`` is unchanged.

    Args:
        x: ``[N, C, H, W]`` images.
        draws: ``[N, 4]`` (or ``[1, 4]``, shared by all samples) uniforms in [0, 1).
        p: probability of transforming a sample (default 0.7, docs/theory.md §1).
        resize_low, resize_high: range of the scale factor ``r``.
        interpolation: ``F.interpolate`` mode (the authors resize with nearest neighbour).

    Returns:
        ``[N, C, H, W]``, differentiable w.r.t. ``x``.

    Raises:
        ValueError: when ``x`` is not 4-D, ``p`` is outside [0, 1], ``draws`` is not ``[N, 4]`` or
            ``[1, 4]``, or ``interpolation`` is not a mode of ``F.interpolate`` listed above
            (``nearest``, ``nearest-exact``, ``bilinear``, ``bicubic``, ``area``).
        TypeError: when ``x`` is not floating point (e.g. uint8 images).

    Example:
        >>> x = torch.arange(16.).view(1, 1, 4, 4)
        >>> diverse_input(x, torch.tensor([[0.9, 0.5, 0.0, 0.0]])).equal(x)  # u_apply >= p: unchanged
        True
        >>> diverse_input(x, torch.tensor([[0.0, 0.0, 0.0, 0.0]]), resize_low=0.5)[0, 0, :, 3].tolist()
        [0.0, 0.0, 0.0, 0.0]
    """
    if x.dim() != 4:
        raise ValueError(f"'x' must be images [N, C, H, W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"'x' must be floating-point images in [0, 1], got {x.dtype}; convert uint8 with x.float() / 255")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"'p' is a probability and must lie in [0, 1], got {p!r}")
    N, C, H, W = x.shape
    if draws.dim() != 2 or draws.shape[1] != 4 or draws.shape[0] not in (1, N):
        raise ValueError(f"'draws' must have shape [{N}, 4] or [1, 4], got {tuple(draws.shape)}")
    if interpolation not in _MODES:
        raise ValueError(f"'interpolation' must be one of {_MODES}, got {interpolation!r}")
    draws = draws.to(device=x.device, dtype=torch.float64).expand(N, 4)
    r = resize_low + (resize_high - resize_low) * draws[:, 1]
    new_h = torch.floor(r * H + 0.5).clamp_min(1).long()
    new_w = torch.floor(r * W + 0.5).clamp_min(1).long()
    apply = (draws[:, 0] < p) & ((new_h != H) | (new_w != W))
    if not bool(apply.any()):
        return x
    out = x
    keys = torch.stack([new_h, new_w], dim=1)[apply]
    rows_all = apply.nonzero().squeeze(1)
    for h, w in torch.unique(keys, dim=0).tolist():
        rows = rows_all[(keys[:, 0] == h) & (keys[:, 1] == w)]
        align = {} if interpolation.startswith("nearest") or interpolation == "area" else {"align_corners": False}
        resized = F.interpolate(x[rows], size=(h, w), mode=interpolation, **align)
        top = _offsets(draws[rows, 2], H, h)
        left = _offsets(draws[rows, 3], W, w)
        out = out.index_copy(0, rows, _place(resized, top, left, H, W))
    return out


def _offsets(u: torch.Tensor, size: int, new: int) -> torch.Tensor:
    """Signed shift of the resized image: pad offset in [0, size-new] or minus a crop offset in [0, new-size]."""
    span = abs(size - new)
    off = torch.floor(u * (span + 1)).clamp(max=span).long()
    return off if new < size else -off


def _place(img: torch.Tensor, top: torch.Tensor, left: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """``out[i, :, a, b] = img[i, :, a - top_i, b - left_i]`` (zero outside): per-sample pad/crop by gather."""
    g, C, h, w = img.shape
    ph, pw = max(H - h, 0), max(W - w, 0)
    padded = F.pad(img, (pw, pw, ph, ph))
    ih = torch.arange(H, device=img.device)[None, :] - top[:, None] + ph
    iw = torch.arange(W, device=img.device)[None, :] - left[:, None] + pw
    rows = padded.gather(2, ih[:, None, :, None].expand(g, C, H, padded.shape[3]))
    return rows.gather(3, iw[:, None, None, :].expand(g, C, H, W))


class DI(IterativeAttack):
    """DI-FGSM: I-FGSM (L-inf by default) whose gradients are taken at :func:`diverse_input` of the iterate.

    Xie et al., CVPR 2019 (docs/theory.md §1 DI and DIM). ``x [B, C, H, W]`` in [0, 1], ``y [B]`` ->
    ``[B, C, H, W]`` (``[K, B, C, H, W]`` for ``K`` budgets). Each sample draws its own transform at
    every step from its per-sample stream (batch-independent); ``legacy_batch_draw=True`` draws one
    transform per step for the whole batch, as in the authors' code (still seeded, the same for every
    batch).

    Args:
        eps: budget (default 8/255).
        alpha: step size (default ``eps / steps``).
        steps: iterations (default 10).
        p, resize_low, resize_high, interpolation: see :func:`diverse_input` (defaults 0.7, 0.9, 1.1,
            nearest).
        legacy_batch_draw: one draw per batch and step (authors' code).
        mu: momentum decay (``None``: plain DI; :class:`DIM` uses 1.0).
        norm, random_start, restarts, targeted, seed, loss, progress: see :class:`pyadvt.attacks.PGD`.

    Raises:
        ValueError: on construction, when ``p`` is outside [0, 1], ``resize_low``/``resize_high`` do
            not satisfy ``0 < resize_low <= resize_high`` or ``interpolation`` is not one of
            :func:`diverse_input`'s modes; on a call, when ``x`` is not ``[B, C, H, W]`` images
            (before any gradient).
        TypeError, ValueError: as :class:`pyadvt.attacks.IterativeAttack` (``steps``, ``restarts``,
            ``mu``) and :class:`pyadvt.attacks.Attack` (model, budgets, inputs and labels).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x, y = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
        >>> DI(net, eps=0.1, steps=3)(x, y).shape
        torch.Size([2, 1, 4, 4])
    """

    @keyword_only("p", "resize_low", "resize_high")
    def __init__(self, model: nn.Module | Sequence[nn.Module], eps: float = 8 / 255, alpha: float | None = None,
                 steps: int = 10, *, p: float = 0.7, resize_low: float = 0.9, resize_high: float = 1.1,
                 interpolation: str = "nearest", legacy_batch_draw: bool = False, mu: float | None = None,
                 norm: str = "linf", random_start: bool = False, restarts: int = 1, targeted: bool = False,
                 seed: int = 0, loss: LossFn | None = None, progress: bool = False) -> None:
        super().__init__(model, eps, alpha, steps, norm=norm, random_start=random_start, restarts=restarts,
                         mu=mu, targeted=targeted, seed=seed, loss=loss, progress=progress)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"'p' must be a probability in [0, 1], got {p}")
        if not 0.0 < float(resize_low) <= float(resize_high):
            raise ValueError(f"need 0 < 'resize_low' <= 'resize_high', got {resize_low} and {resize_high}")
        if interpolation not in _MODES:
            raise ValueError(f"'interpolation' must be one of {_MODES}, got {interpolation!r}")
        self.p, self.resize_low, self.resize_high = float(p), float(resize_low), float(resize_high)
        self.interpolation = interpolation
        self.legacy_batch_draw = bool(legacy_batch_draw)

    def _transform_state(self, batch: AttackBatch, rows, restart: int) -> torch.Tensor:
        """``[N or 1, steps, 4]`` uniforms for the whole restart."""
        if batch.x.dim() != 4:
            raise ValueError(f"DI needs images [B, C, H, W], got shape {tuple(batch.x.shape)}")
        stream = stream_id(restart, _TRANSFORM)
        if self.legacy_batch_draw:
            return per_sample_rand(batch.clean[:1], (self.steps, 4), self.seed, sample_ids=[0], stream=stream,
                                   dtype=torch.float64)
        return batch.rand((self.steps, 4), stream, rows=rows).to(torch.float64)

    def _transform(self, x_adv: torch.Tensor, state: torch.Tensor, step: int) -> torch.Tensor:
        return diverse_input(x_adv, state[:, step], p=self.p, resize_low=self.resize_low, resize_high=self.resize_high,
                             interpolation=self.interpolation)


class DIM(DI):
    """DIM = DI + MI (momentum ``mu = 1.0``, docs/theory.md §1); arguments as :class:`DI`.

    Raises:
        TypeError, ValueError: as :class:`pyadvt.attacks.DI` (``p``, ``resize_low``/``resize_high``,
            ``interpolation``, ``[B, C, H, W]`` inputs) and the classes it builds on.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> DIM(net, eps=0.1).mu
        1.0
    """

    @keyword_only("p", "resize_low", "resize_high")
    def __init__(self, model: nn.Module | Sequence[nn.Module], eps: float = 8 / 255, alpha: float | None = None,
                 steps: int = 10, *, p: float = 0.7, resize_low: float = 0.9, resize_high: float = 1.1,
                 mu: float = 1.0, **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, p=p, resize_low=resize_low, resize_high=resize_high, mu=mu,
                         **kwargs)
