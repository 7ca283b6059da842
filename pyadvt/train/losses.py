"""Classification losses that accept hard (int) or soft (probability) labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.utils.deprecation import renamed_parameters
from pyadvt.utils.validation import check_labels, check_model_input


@renamed_parameters(target="y")
def soft_cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy ``-sum_c y_c log softmax(logits)_c`` for soft labels ``y`` ([B, C] rows of
    probabilities, e.g. from mixup or label smoothing) or int labels ``[B]`` (then it is
    ``F.cross_entropy``). ``reduction``: "mean" (over samples), "sum" or "none" (``[B]``).
    ``target=`` is a deprecated alias of ``y`` (labels are ``y`` throughout pyadvt). The training
    loss of every recipe of docs/theory.md §4 (ST, and the soft labels of MU/CM/LS, seed 001 §3.2).

    Raises:
        ValueError: when ``reduction`` is not ``"mean"``, ``"sum"`` or ``"none"``, ``logits`` is not
            ``[B, C]``, soft ``y`` has another shape than ``logits``, int ``y`` is not ``[B]``, or
            (``InvalidValueError``) an int label is outside ``[0, C)``.
        TypeError: (``InvalidTypeError``) when ``y`` is a bool tensor.

    Example:
        >>> logits, y = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
        >>> torch.allclose(soft_cross_entropy(logits, F.one_hot(y, 3).float()), F.cross_entropy(logits, y))
        True
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"'reduction' must be 'mean', 'sum' or 'none', got {reduction!r}")
    if logits.dim() != 2:
        raise ValueError(f"'logits' must have shape [B, C], got {tuple(logits.shape)}")
    if y.is_floating_point():
        if y.shape != logits.shape:
            raise ValueError(f"soft 'y' must have the logits' shape {tuple(logits.shape)}, "
                             f"got {tuple(y.shape)}")
        per_sample = -(y.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1)
    else:
        if y.shape != logits.shape[:1]:
            raise ValueError(f"int 'y' must have shape [B] = [{logits.shape[0]}], got {tuple(y.shape)}")
        check_labels(y, logits.shape[0], "y", num_classes=logits.shape[1])  # else an IndexError inside torch
        per_sample = F.cross_entropy(logits, y.long(), reduction="none")
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The default ``loss_fn(model, x, y)`` of :func:`pyadvt.train.fit`: mean (soft) cross-entropy.

    ``x [B, *in_shape]``, ``y [B]`` int or ``[B, C]`` soft labels; returns a scalar ``[]`` tensor. The
    ST (standard training) recipe of docs/theory.md §4.

    Raises:
        TypeError: (``InvalidTypeError``) when ``model`` is not a module or callable, or ``x``'s dtype
            does not match the model's parameters; as :func:`soft_cross_entropy` for bool labels.
        ValueError: (``InvalidValueError``) when ``x`` and the model are on different devices; as
            :func:`soft_cross_entropy` for misshapen or out-of-range labels.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 2])
        >>> torch.allclose(cross_entropy_loss(net, x, y), F.cross_entropy(net(x), y))
        True
    """
    check_model_input(model, x, "x", "model", check_device=False, allow_half=True)  # metadata only
    return soft_cross_entropy(model(x), y)
