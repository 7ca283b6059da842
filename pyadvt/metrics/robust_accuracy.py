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

from typing import TYPE_CHECKING

import torch

from pyadvt.attacks import PGD
from pyadvt.data.stream import iter_batches
from pyadvt.metrics._legacy_arguments import keyword_only
from pyadvt.utils.modes import evaluating

if TYPE_CHECKING:
    from pyadvt.metrics._pair_data import Data

__all__ = ["robust_accuracy"]


@keyword_only("steps", "seed", "batch_size")
def robust_accuracy(model: torch.nn.Module, data: Data, eps: float, norm: str, *, steps: int = 10, seed: int = 0,
                    batch_size: int = 256) -> float:
    """Accuracy of ``model`` on ``data`` under PGD(``steps``) with step ``2.5 eps / steps``.

    docs/theory.md §1: ``mean_i 1[argmax model(PGD_eps(x_i, y_i)) = y_i]`` with the attack of §1 under
    the ``norm`` threat model (the robust accuracy of a source, seeds 002 and 004).

    Args:
        data: a :class:`~pyadvt.data.TensorData` or any labelled source of
            :func:`pyadvt.data.stream.iter_batches` (``x [N, C, H, W]``, ``y [N]``).
        eps, norm: the threat model (``"linf"`` or ``"l2"``, [0, 1] pixel units).
        seed: the attack's random starts.

        steps, batch_size: PGD iterations and samples per attack batch (keyword-only; passing them by
            position works for one release with a ``DeprecationWarning``).

    Returns the fraction in [0, 1] of samples whose PGD example is still classified correctly.

    Raises:
        ValueError: a bad ``eps`` / ``norm`` / ``steps`` (from :class:`~pyadvt.attacks.PGD`, before any
            batch is read), a bad ``batch_size``, unlabelled ``data`` (no ``y``), or empty ``data``
            (from :func:`pyadvt.data.iter_batches`).

    Example:
        >>> x, y = torch.rand(8, 1, 2, 2), torch.tensor([0, 1, 1, 1] * 2)
        >>> lin = torch.nn.Linear(4, 2)
        >>> _ = lin.weight.data.zero_(), lin.bias.data.copy_(torch.tensor([0.0, 1.0]))  # always class 1
        >>> robust_accuracy(torch.nn.Sequential(torch.nn.Flatten(), lin), (x, y), 0.3, "linf", steps=2)
        0.75
    """
    atk = PGD(model, eps=eps, steps=steps, norm=norm, seed=seed)
    correct = total = 0
    for x, y in iter_batches(data, batch_size, labels=True):
        x_adv = atk(x, y)
        with evaluating(model), torch.no_grad():
            correct += int((model(x_adv).argmax(1) == y).sum())
        total += int(y.shape[0])
    return correct / total
