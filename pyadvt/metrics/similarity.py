"""Gradient similarity between a source (surrogate) and a target (seed 001 Definition 2, docs/theory.md §3).

``S(x, y) = cos(grad_x loss_F(x, y), grad_x loss_G(x, y))`` with ``loss`` the cross-entropy of the
true label; reported per sample with its mean (expected similarity ``S~``) and infimum (``S_``).

Example:
    >>> import torch
    >>> from torch import nn
    >>> F_ = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> r = gradient_similarity(F_, F_, torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]))
    >>> round(r.mean, 6), round(r.min, 6)
    (1.0, 1.0)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.metrics._legacy_arguments import keyword_only
from pyadvt.metrics._result_protocol import MaskedValues, deprecated_field_alias, masked_float
from pyadvt.utils.deprecation import renamed_parameters
from pyadvt.utils.modes import evaluating, model_device
from pyadvt.utils.validation import (InvalidValueError, check_batch_size, check_images, check_labels, check_logits,
                                     check_model_input, warn_invalid)

if TYPE_CHECKING:
    from pyadvt.metrics._pair_data import Data

__all__ = ["SimilarityResult", "gradient_similarity", "loss_input_gradients"]


def _check_xy(x, y, models=()) -> None:
    """``x`` a non-empty batch in [0, 1] (NaN/Inf rows allowed: their gradients are undefined and
    masked), ``y`` integer labels ``[N]``, ``x``'s dtype that of every model."""
    check_images(x, "x", allow_nonfinite=True)
    check_labels(y, x.shape[0], "y")
    for name, m in models:
        check_model_input(m, x, "x", name, check_device=False)


def _batch_loss_grads(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, dev) -> tuple[torch.Tensor, torch.Tensor]:
    """``(CE [b], grad_x CE [b, *in_shape])`` of one batch: one backward of the summed loss, so each row
    is exactly that sample's own gradient (called inside ``evaluating(model)`` and ``enable_grad``)."""
    xb = xb.detach().to(dev).clone().requires_grad_(True)
    logits = check_logits(model(xb), "model")
    yb = check_labels(yb.to(dev), xb.shape[0], "y", num_classes=logits.shape[1]).long()
    loss = F.cross_entropy(logits, yb, reduction="none")
    (g,) = torch.autograd.grad(loss.sum(), xb)
    return loss.detach(), g


def loss_input_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``(CE(model(x_i), y_i) [N], grad_x CE [N, *in_shape])`` in eval mode.

    One forward/backward per batch of the *summed* loss, so each row is exactly that sample's own
    gradient. ``x`` is not modified, no parameter gradient is accumulated. Rows that are not finite
    (a NaN/Inf pixel, NaN weights) are left as computed and counted in one warning. The gradients
    of seed 001's gradient similarity, Definition 2 (docs/theory.md §3).

    Args:
        model: a classifier ``[B, *in_shape] -> [B, C]``.
        x: ``[N, *in_shape]`` inputs in ``[0, 1]``; y: ``[N]`` integer labels in ``[0, C)``.
        batch_size: samples per forward/backward.

    Raises:
        ValueError: (``InvalidValueError``) when ``x`` is empty, not a batch or has finite values
            outside ``[0, 1]``, when ``y`` is not ``[N]`` or holds labels outside ``[0, C)``, when
            the model's output is not ``[B, C]`` logits, or when ``batch_size < 1``.
        TypeError: (``InvalidTypeError``) when ``x`` is not a floating-point tensor, ``y`` not
            integer, ``x``'s dtype not the model's, or ``model`` not a module or callable.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> loss, grad = loss_input_gradients(model, torch.rand(2, 1, 2, 2), torch.tensor([0, 2]))
        >>> tuple(loss.shape), tuple(grad.shape)
        ((2,), (2, 1, 2, 2))
    """
    _check_xy(x, y, [("model", model)])
    batch_size = check_batch_size(batch_size)
    dev = model_device(model)
    losses, grads = [], []
    with evaluating(model), torch.enable_grad():
        for s in range(0, x.shape[0], int(batch_size)):
            loss, g = _batch_loss_grads(model, x[s:s + int(batch_size)], y[s:s + int(batch_size)], dev)
            losses.append(loss)
            grads.append(g)
    loss, grad = torch.cat(losses), torch.cat(grads)
    bad = ~(torch.isfinite(loss) & torch.isfinite(grad.flatten(1)).all(dim=1))
    warn_invalid(int(bad.sum()), int(bad.numel()), "loss_input_gradients",
                 "a NaN/Inf input or a non-finite model output: their loss and gradient rows are NaN")
    return loss, grad


@dataclass
class SimilarityResult(MaskedValues):
    """Per-sample cosine similarity of input gradients.

    Attributes:
        values: ``[N]`` float64 cosines (NaN where a gradient is zero or non-finite).
        valid: ``[N]`` bool, False for those masked samples (skipped by ``mean`` / ``min``). The former
            name ``defined`` is a deprecated read-only alias (``DeprecationWarning``), and the keyword
            ``defined=`` of the constructor a deprecated alias of ``valid=`` (``InvalidTypeError`` when
            both are passed).

    ``n_undefined`` counts the masked samples; the headline ``value`` is :attr:`mean`.

    Returned by :func:`gradient_similarity` (seed 001 Definition 2, docs/theory.md §3).

    Example:
        >>> import torch
        >>> r = SimilarityResult(torch.tensor([0.5, 1.0, float("nan")], dtype=torch.float64),
        ...                      torch.tensor([True, True, False]))
        >>> r.mean, r.min, r.value, r.summary()["n_undefined"]
        (0.75, 0.5, 0.75, 1)
    """

    values: torch.Tensor
    valid: torch.Tensor

    defined = deprecated_field_alias("defined", "valid")

    @property
    def min(self) -> float:
        """Infimum (minimum) similarity over valid samples, ``S_`` in Theorem 1."""
        return masked_float(self.values, self.valid, torch.min)

    def summary(self) -> dict:
        """Plain-Python summary; ``undefined`` is the former key of ``n_undefined`` (same number)."""
        return {"mean": self.mean, "min": self.min, "n": int(self.values.numel()),
                "n_undefined": self.n_undefined, "undefined": self.n_undefined}


SimilarityResult.__init__ = renamed_parameters(defined="valid")(SimilarityResult.__init__)  # type: ignore[method-assign]


@keyword_only("batch_size", renames={"surrogate": "source"})
def gradient_similarity(source: nn.Module, target: nn.Module, x: Data, y: torch.Tensor | None = None, *,
                        batch_size: int = 512, progress: bool = False) -> SimilarityResult:
    """Per-sample cosine ``S(x_i, y_i) = <g_F, g_G> / (||g_F|| ||g_G||)`` of the input gradients
    ``g = grad_x CE(model(x_i), y_i)`` of ``source`` (``F``) and ``target`` (``G``).

    docs/theory.md §3; seed 001 (Zhang et al., S&P 2024) Definition 2: the mean is the expected
    similarity, the minimum the infimum ``S_`` of Theorem 1.

    Args:
        source, target: classifiers returning logits ``[B, C]`` (same input space).
        x: ``[N, *in_shape]`` inputs in [0, 1] with y ``[N]`` int64 labels; or a ``TensorData`` /
            ``Dataset`` / ``DataLoader`` of ``(x, y)`` (then ``y=None``), walked one batch at a time
            (:func:`pyadvt.data.iter_batches`): only one batch of gradients is held.
        y: ``[N]`` int64 labels in ``[0, C)`` (with a tensor ``x`` only).
        batch_size: samples per forward/backward.
        progress: a tqdm bar over the batches.

    Returns:
        :class:`SimilarityResult`: ``values [N]`` float64 (NaN where undefined), ``valid [N]``,
        ``.mean``, ``.min``.

    Raises:
        ValueError: values outside [0, 1], misshapen or out-of-range labels, an empty ``x``, ``y``
            given with a dataset, a bad ``batch_size``.
        TypeError: non-integer labels, inputs of another dtype than a model, an unknown keyword.

    Samples where either gradient is zero or non-finite are undefined (masked, counted, warned). The
    former keyword ``surrogate=`` works for one release with a ``DeprecationWarning``.

    Example:
        >>> from torch import nn
        >>> F_ = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
        >>> round(gradient_similarity(F_, F_, x, y).min, 6)
        1.0
        >>> round(gradient_similarity(F_, F_, torch.utils.data.TensorDataset(x, y), batch_size=2).mean, 6)
        1.0
    """
    from pyadvt.data.stream import as_data, iter_batches

    check_batch_size(batch_size)
    if isinstance(x, torch.Tensor):
        _check_xy(x, y, [("source", source), ("target", target)])
    data = as_data(x, y)
    devs = model_device(source), model_device(target)
    values, masks = [], []
    with evaluating(source), evaluating(target), torch.enable_grad():
        for xb, yb in iter_batches(data, batch_size, labels=True, progress=progress, desc="gradient similarity"):
            _check_xy(xb, yb, [("source", source), ("target", target)])
            _, gf = _batch_loss_grads(source, xb, yb, devs[0])
            _, gg = _batch_loss_grads(target, xb, yb, devs[1])
            gf, gg = gf.flatten(1).double(), gg.flatten(1).to(gf.device).double()
            nf, ng = gf.norm(dim=1), gg.norm(dim=1)
            defined = (nf > 0) & (ng > 0) & torch.isfinite(nf) & torch.isfinite(ng)
            cos = (gf * gg).sum(1) / (nf * ng).clamp_min(torch.finfo(torch.float64).tiny)
            values.append(torch.where(defined, cos.clamp(-1.0, 1.0), torch.full_like(cos, float("nan"))).cpu())
            masks.append(defined.cpu())
    if not values:
        raise InvalidValueError("'x' holds no samples; pass at least one")
    cos, defined = torch.cat(values), torch.cat(masks)
    bad = int((~defined).sum())
    if bad:
        warnings.warn(f"gradient_similarity: {bad} of {cos.shape[0]} samples have a zero or non-finite input "
                      "gradient; they are undefined and skipped by mean/min", RuntimeWarning, stacklevel=4)
    return SimilarityResult(values=cos, valid=defined)
