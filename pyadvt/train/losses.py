"""Classification losses that accept hard (int) or soft (probability) labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy ``-sum_c t_c log softmax(logits)_c`` for soft targets ``t`` ([B, C] rows of
    probabilities, e.g. from mixup or label smoothing) or int labels ``[B]`` (then it is
    ``F.cross_entropy``). ``reduction``: "mean" (over samples), "sum" or "none" (``[B]``).

    Example:
        >>> logits, y = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
        >>> torch.allclose(soft_cross_entropy(logits, F.one_hot(y, 3).float()), F.cross_entropy(logits, y))
        True
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"'reduction' must be 'mean', 'sum' or 'none', got {reduction!r}")
    if logits.dim() != 2:
        raise ValueError(f"'logits' must have shape [B, C], got {tuple(logits.shape)}")
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(f"soft 'target' must have the logits' shape {tuple(logits.shape)}, "
                             f"got {tuple(target.shape)}")
        per_sample = -(target.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1)
    else:
        if target.shape != logits.shape[:1]:
            raise ValueError(f"int 'target' must have shape [B] = [{logits.shape[0]}], got {tuple(target.shape)}")
        per_sample = F.cross_entropy(logits, target.long(), reduction="none")
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The default ``loss_fn(model, x, y)`` of :func:`pyadvt.train.fit`: mean (soft) cross-entropy."""
    return soft_cross_entropy(model(x), y)
