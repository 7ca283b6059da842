"""Robust accuracy: the fraction of samples still classified correctly under PGD (docs/theory.md §1).

Example:
    >>> import torch
    >>> from pyadvt.data import TensorData
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> data = TensorData(torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 0, 1, 0, 1]), 2)
    >>> 0.0 <= robust_accuracy(model, data, 0.1, "linf", steps=3) <= 1.0
    True
"""

from __future__ import annotations

import torch

from pyadvt.attacks import PGD
from pyadvt.data.stream import iter_batches
from pyadvt.utils.modes import evaluating

__all__ = ["robust_accuracy"]


def robust_accuracy(model: torch.nn.Module, data, eps: float, norm: str, steps: int = 10, seed: int = 0,
                    batch_size: int = 256) -> float:
    """Accuracy of ``model`` on ``data`` under PGD(``steps``) with step ``2.5 eps / steps``.

    Args:
        data: a :class:`~pyadvt.data.TensorData` or any labelled source of
            :func:`pyadvt.data.stream.iter_batches` (``x [N, C, H, W]``, ``y [N]``).
        eps, norm: the threat model (``"linf"`` or ``"l2"``, [0, 1] pixel units).
        seed: the attack's random starts.

    Returns the fraction in [0, 1] of samples whose PGD example is still classified correctly.
    """
    atk = PGD(model, eps=eps, steps=steps, norm=norm, seed=seed)
    correct = total = 0
    for x, y in iter_batches(data, batch_size, labels=True):
        x_adv = atk(x, y)
        with evaluating(model), torch.no_grad():
            correct += int((model(x_adv).argmax(1) == y).sum())
        total += int(y.shape[0])
    return correct / total
