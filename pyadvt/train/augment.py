"""Batch augmentations of the surrogate zoo (seed 001 §3.2, docs/theory.md §4) for ``fit(batch_transform=...)``.

Each transform is a callable ``(x [B, C, H, W], y, generator) -> (x', y')``; ``y`` may be int
labels ``[B]`` or soft labels ``[B, K]`` and comes back soft ``[B, K]`` (rows sum to 1) whenever
labels were mixed or smoothed. Randomness comes only from the given ``torch.Generator``.

* :class:`Mixup` (MU, Zhang et al. 2018) and :class:`CutMix` (CM, Yun et al. 2019): with
  probability ``p`` per batch, mix each sample with a random partner, ``lambda ~ Beta(alpha, alpha)``
  (default ``Beta(1, 1)``); CutMix pastes a box of area ``(1 - lambda) H W`` and re-weights the
  labels by the pasted area actually kept after clipping at the border.
* :class:`Cutout` (CO, DeVries & Taylor 2017): with probability ``p`` per sample, zero a square of
  side ``size`` (= ``M``) centred uniformly in the image, clipped at the border (so "up to M").
* :class:`LabelSmoothing` (LS): the true class gets ``1 - p``, every other class ``p / (K - 1)``.
* :class:`Compose` chains transforms.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    >>> x2, y2 = Compose([Mixup(p=1.0, num_classes=10), LabelSmoothing(0.1, num_classes=10)])(x, y, g)
    >>> y2.shape, bool(torch.allclose(y2.sum(1), torch.ones(4)))
    (torch.Size([4, 10]), True)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pyadvt.utils.validation import check_labels

__all__ = ["Compose", "CutMix", "Cutout", "LabelSmoothing", "Mixup", "soft_labels"]


def soft_labels(y: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[B, K]`` probability rows from int labels ``[B]`` (one-hot) or soft labels (returned as is)."""
    if y.dim() == 2:
        if y.shape[1] != num_classes:
            raise ValueError(f"soft labels have {y.shape[1]} classes but num_classes={num_classes}")
        return y.to(dtype)
    if y.dim() != 1 or y.is_floating_point():
        raise ValueError(f"'y' must be int labels [B] or soft labels [B, K], got {tuple(y.shape)} {y.dtype}")
    check_labels(y, None, "y", num_classes=num_classes)  # else a RuntimeError inside one_hot
    return F.one_hot(y.long(), num_classes).to(dtype)


def _check_prob(p: float, name: str = "p") -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"'{name}' must be a probability in [0, 1], got {p}")
    return p


def _check_classes(num_classes: int) -> int:
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"'num_classes' must be an int >= 2, got {num_classes!r}")
    return num_classes


def _beta(alpha: float, g: torch.Generator) -> float:
    """One ``Beta(alpha, alpha)`` draw from ``g`` (Beta(1, 1) is the uniform distribution)."""
    if alpha == 1.0:
        return float(torch.rand((), generator=g, dtype=torch.float64))
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (), generator=g)))
    return float(rng.beta(alpha, alpha))


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"'x' must be a floating-point image batch [B, C, H, W], got {getattr(x, 'shape', x)}")


class _Mixing(ABC):
    """Shared skeleton of Mixup and CutMix: batch-level coin flip, partner permutation, label mix."""

    def __init__(self, p: float = 1.0, alpha: float = 1.0, num_classes: int = 10):
        self.p = _check_prob(p)
        if not alpha > 0:
            raise ValueError(f"'alpha' (Beta parameter) must be > 0, got {alpha}")
        self.alpha = float(alpha)
        self.num_classes = _check_classes(num_classes)

    @abstractmethod
    def _mix(self, x: torch.Tensor, partner: torch.Tensor, lam: float, g: torch.Generator
             ) -> tuple[torch.Tensor, float]:
        """Mixed images and the label weight of ``x`` (the share of ``x`` they contain)."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        _check_images(x)
        ys = soft_labels(y, self.num_classes, x.dtype).to(x.device)
        if float(torch.rand((), generator=generator)) >= self.p:
            return x, ys
        perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
        lam = _beta(self.alpha, generator)
        x_mixed, lam = self._mix(x, x[perm], lam, generator)
        return x_mixed, lam * ys + (1.0 - lam) * ys[perm]


class Mixup(_Mixing):
    """``x' = lambda x + (1 - lambda) x[perm]``, ``y' = lambda y + (1 - lambda) y[perm]`` with probability ``p``.

    Called as ``(x [B, C, H, W], y [B] or [B, K], generator) -> (x', y' [B, K])``. MU of seed 001
    §3.2 (Zhang et al. 2018), docs/theory.md §4.

    Raises:
        ValueError: when ``p`` is not in ``[0, 1]``, ``alpha <= 0`` or ``num_classes`` is not an int
            ``>= 2``; at call time when ``x`` is not a floating-point image batch ``[B, C, H, W]`` or
            ``y`` is neither int labels ``[B]`` in ``[0, K)`` nor soft labels ``[B, K]``.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x2, y2 = Mixup(p=1.0, num_classes=3)(torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 2, 0]), g)
        >>> tuple(y2.shape), bool(torch.allclose(y2.sum(1), torch.ones(4)))
        ((4, 3), True)
    """

    def _mix(self, x, partner, lam, g):
        return lam * x + (1.0 - lam) * partner, lam


class CutMix(_Mixing):
    """Paste a random box of ``x[perm]`` covering ``(1 - lambda)`` of the image; labels mixed by area.

    Called as ``(x [B, C, H, W], y [B] or [B, K], generator) -> (x', y' [B, K])``. CM of seed 001
    §3.2 (Yun et al. 2019), docs/theory.md §4.

    Raises:
        ValueError: the checks of :class:`Mixup` (``p``, ``alpha``, ``num_classes`` here; the image batch
            ``x`` and the int or soft labels ``y`` at call time).

    Example:
        >>> import torch
        >>> x = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 8, 8)   # a black and a white image
        >>> x2, y2 = CutMix(p=1.0, num_classes=2)(x, torch.tensor([0, 1]), torch.Generator().manual_seed(0))
        >>> y2[:, 1].tolist(), x2.mean(dim=(1, 2, 3)).tolist()   # label 1's weight = the share of white pixels
        ([0.25, 0.75], [0.25, 0.75])
    """

    def _mix(self, x, partner, lam, g):
        H, W = x.shape[-2:]
        r = float(np.sqrt(1.0 - lam))
        ch, cw = int(torch.randint(0, H, (), generator=g)), int(torch.randint(0, W, (), generator=g))
        h, w = int(round(H * r)), int(round(W * r))
        top, bottom = max(ch - h // 2, 0), min(ch + h - h // 2, H)
        left, right = max(cw - w // 2, 0), min(cw + w - w // 2, W)
        out = x.clone()
        out[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
        kept = 1.0 - (bottom - top) * (right - left) / (H * W)
        return out, kept


class Cutout:
    """Zero a square of side ``size`` (clipped at the border) at a uniform centre, per sample with prob. ``p``.

    Labels pass through unchanged (int labels stay int). Called as
    ``(x [B, C, H, W], y, generator) -> (x' [B, C, H, W], y)``. CO of seed 001 §3.2 (DeVries & Taylor
    2017), docs/theory.md §4.

    Raises:
        ValueError: when ``size`` is not an int ``>= 1`` or ``p`` is not in ``[0, 1]``; at call time
            when ``x`` is not a floating-point image batch ``[B, C, H, W]``.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x2, y2 = Cutout(size=1)(torch.ones(2, 1, 4, 4), torch.tensor([0, 1]), g)
        >>> [int((s == 0).sum()) for s in x2], y2.tolist()
        ([1, 1], [0, 1])
    """

    def __init__(self, size: int, p: float = 1.0):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"'size' (side M of the square) must be an int >= 1, got {size!r}")
        self.size, self.p = size, _check_prob(p)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        _check_images(x)
        B, _, H, W = x.shape
        apply = torch.rand(B, generator=generator) < self.p
        cy = torch.randint(0, H, (B,), generator=generator)
        cx = torch.randint(0, W, (B,), generator=generator)
        rows, cols = torch.arange(H), torch.arange(W)
        lo_y, lo_x = cy - self.size // 2, cx - self.size // 2
        in_y = (rows[None, :] >= lo_y[:, None]) & (rows[None, :] < (lo_y + self.size)[:, None])
        in_x = (cols[None, :] >= lo_x[:, None]) & (cols[None, :] < (lo_x + self.size)[:, None])
        mask = (in_y[:, :, None] & in_x[:, None, :]) & apply[:, None, None]
        return x.masked_fill(mask[:, None].to(x.device), 0.0), y


class LabelSmoothing:
    """Soft labels: true class ``1 - p``, each other class ``p / (K - 1)`` (seed 001's LS, docs/theory.md §4).

    Soft input labels ``q`` are smoothed the same way: ``(1 - p) q + p (1 - q) / (K - 1)``. Called as
    ``(x [B, ...], y [B] or [B, K], generator=None) -> (x, y' [B, K])``.

    Raises:
        ValueError: when ``p`` is not in ``[0, 1]`` or ``num_classes`` is not an int ``>= 2``; at call
            time when ``y`` is neither int labels ``[B]`` in ``[0, K)`` nor soft labels ``[B, K]``.

    Example:
        >>> import torch
        >>> _, y2 = LabelSmoothing(0.2, num_classes=3)(torch.rand(1, 1, 2, 2), torch.tensor([1]))
        >>> [round(v, 4) for v in y2[0].tolist()]
        [0.1, 0.8, 0.1]
    """

    def __init__(self, p: float, num_classes: int = 10):
        self.p = _check_prob(p)
        self.num_classes = _check_classes(num_classes)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None):
        q = soft_labels(y, self.num_classes, x.dtype).to(x.device)
        return x, (1.0 - self.p) * q + self.p * (1.0 - q) / (self.num_classes - 1)


class Compose:
    """Apply transforms in order, each with the same generator.

    Chains the augmentations of seed 001 §3.2 (docs/theory.md §4), e.g. MU then LS.

    Raises:
        TypeError: when an entry of ``transforms`` is not callable; at call time whatever a transform
            raises (``ValueError`` for bad images or labels).

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> t = Compose([Cutout(size=1), LabelSmoothing(0.1, num_classes=2)])
        >>> _, y2 = t(torch.rand(2, 1, 3, 3), torch.tensor([0, 1]), g)
        >>> [round(v, 4) for v in y2[0].tolist()]
        [0.9, 0.1]
    """

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)
        bad = [type(t).__name__ for t in self.transforms if not callable(t)]
        if bad:
            raise TypeError(f"'transforms' must hold callables (x, y, generator) -> (x, y), got {', '.join(bad)}")

    def __call__(self, x, y, generator):
        for t in self.transforms:
            x, y = t(x, y, generator)
        return x, y
