"""Run any attack over a dataset one batch at a time: ``run_on(attack, data)``.

``data`` is anything :func:`pyadvt.data.iter_batches` walks (a tensor pair, ``TensorData``,
``Dataset`` of ``(x, y)``, ``DataLoader``, an ImageFolder); ``attack`` is a pyadvt
:class:`~pyadvt.attacks.Attack` or any callable ``attack(x, y) -> x_adv`` (a torchattacks attack, a
function). Each batch is moved to the attack model's device, attacked, and yielded with its clean
inputs and labels, so at most one batch of the dataset (and its adversarial copy) is in memory.
pyadvt attacks draw their randomness per sample (docs/theory.md §0), so the adversarial examples do
not depend on ``batch_size``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from pyadvt.attacks import PGD
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> data = torch.utils.data.TensorDataset(torch.rand(5, 1, 2, 2), torch.arange(5) % 3)
    >>> [b.x_adv.shape[0] for b in run_on(PGD(net, eps=0.1, steps=2), data, batch_size=2)]
    [2, 2, 1]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from pyadvt.attacks.base import Attack
from pyadvt.utils.deprecation import renamed_parameters
from pyadvt.utils.modes import model_device
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

__all__ = ["AttackedBatch", "attack_all", "run_on"]


@dataclass
class AttackedBatch:
    """One attacked batch: ``x [b, ...]``, ``y [b]``, ``x_adv [b, ...]`` (``[K, b, ...]`` for ``K``
    budgets), ``target_labels [b]`` or ``None``, and ``start``: the position of its first sample in the data
    (``target`` is a deprecated read-only alias of ``target_labels``).

    Yielded by :func:`run_on`, the dataset runner of docs/theory.md §1; the attack's per-sample
    randomness (§0) makes ``x_adv`` independent of the batching.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 2, 2)
        >>> b = AttackedBatch(x=x, y=torch.tensor([0, 1]), x_adv=x.clamp(0.1, 0.9), target_labels=None, start=4)
        >>> b.x_adv.shape, b.start, b.target_labels is None
        (torch.Size([2, 3, 2, 2]), 4, True)
    """

    x: torch.Tensor
    y: torch.Tensor
    x_adv: torch.Tensor
    target_labels: torch.Tensor | None
    start: int

    @property
    def target(self) -> torch.Tensor | None:
        """Deprecated alias of :attr:`target_labels` (removed in the next release)."""
        warnings.warn("AttackedBatch.target is deprecated and will be removed in the next release; use "
                      "AttackedBatch.target_labels", DeprecationWarning, stacklevel=2)
        return self.target_labels


def _device(attack, device):
    if device is not None:
        return torch.device(device)
    model = getattr(attack, "model", None)
    return model_device(model) if isinstance(model, torch.nn.Module) else None


@renamed_parameters(target="target_labels")
def run_on(attack: Attack | Callable, data: Any, batch_size: int = 256, *, target_labels: Callable | None = None,
           eps: float | torch.Tensor | None = None, device: torch.device | str | None = None,
           progress: bool = False, desc: str = "attack") -> Iterator[AttackedBatch]:
    """Attack every batch of ``data``; yields :class:`AttackedBatch` in data order.

    Args:
        attack: a pyadvt ``Attack`` or a callable ``(x, y) -> x_adv``.
        data: a source :func:`~pyadvt.data.iter_batches` accepts, with labels.
        batch_size: samples per attack call.
        target_labels: ``target_labels(y) -> [b]`` target labels for a targeted attack (default: the
            attack's own, ``(y + 1) mod C`` for pyadvt attacks); passed to the attack as ``target_labels=``.
            ``target=`` is a deprecated alias (a ``DeprecationWarning``; removed in the next release).
        eps: budget override of a pyadvt attack: a number or ``[K]`` budgets (then ``x_adv`` is
            ``[K, b, ...]``).
        device: where batches go (default: the attack model's device).
        progress: a tqdm bar over the batches.

    The data, ``batch_size`` and arguments are checked before the first batch is attacked. This is
    the dataset runner of docs/theory.md §1; with pyadvt attacks (per-sample randomness, §0) the
    result does not depend on ``batch_size``. Each yielded batch holds ``x [b, C, H, W]``, ``y [b]``
    and ``x_adv [b, C, H, W]`` (``[K, b, C, H, W]`` for ``K`` budgets).

    Raises:
        TypeError: when ``attack`` or ``target_labels`` is not callable, ``batch_size`` is not an int,
            or ``data`` is of an unsupported type (:func:`~pyadvt.data.iter_batches`).
        ValueError: when ``eps`` is given for an attack that is not a pyadvt
            :class:`~pyadvt.attacks.Attack`, ``batch_size`` is ``< 1``, or ``data`` is empty or holds
            items of the wrong kind or shape; while iterating, when the attack returns something that
            is not shaped like its input, and the attack's own errors (e.g.
            :class:`pyadvt.attacks.Attack`'s input checks).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from pyadvt.attacks import FGSM
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> x, y = torch.rand(5, 3, 2, 2), torch.arange(5) % 3
        >>> [(b.start, tuple(b.x_adv.shape)) for b in run_on(FGSM(net, eps=0.1), (x, y), batch_size=3)]
        [(0, (3, 3, 2, 2)), (3, (2, 3, 2, 2))]
        >>> run_on(FGSM(net, eps=0.1), (x, y), batch_size=0)
        Traceback (most recent call last):
            ...
        pyadvt.utils.errors.InvalidValueError: 'batch_size' must be >= 1, got 0
    """
    from pyadvt.data.stream import iter_batches

    if not callable(attack):
        raise InvalidTypeError(f"'attack' must be a pyadvt Attack or a callable (x, y) -> x_adv, "
                               f"got {type(attack).__name__}")
    if target_labels is not None and not callable(target_labels):
        raise InvalidTypeError(f"'target_labels' must be a callable y -> target labels, got "
                               f"{type(target_labels).__name__}")
    if eps is not None and not isinstance(attack, Attack):
        raise InvalidValueError("'eps' overrides the budget of a pyadvt Attack; set the budget of "
                                f"{type(attack).__name__} when building it")
    batches = iter_batches(data, batch_size, device=_device(attack, device), progress=progress, desc=desc,
                           labels=True)
    return _run(attack, batches, target_labels, eps)


def _run(attack, batches, target_labels, eps) -> Iterator[AttackedBatch]:
    start = 0
    for x, y in batches:
        t = None if target_labels is None else target_labels(y)
        kwargs = {} if eps is None else {"eps": eps}
        if t is not None:
            kwargs["target_labels"] = t
        x_adv = attack(x, y, **kwargs)
        if not isinstance(x_adv, torch.Tensor) or x_adv.shape[-x.dim():] != x.shape:
            raise InvalidValueError(f"'attack' must return adversarial inputs shaped like its input {tuple(x.shape)}, "
                                    f"got {getattr(x_adv, 'shape', type(x_adv).__name__)}")
        yield AttackedBatch(x=x, y=y, x_adv=x_adv.detach(), target_labels=t, start=start)
        start += x.shape[0]


def attack_all(attack: Attack | Callable, data: Any, batch_size: int = 256,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_adv, y)`` of the whole of ``data`` concatenated (``x_adv`` ``[N, ...]`` or ``[K, N, ...]``).

    Holds every adversarial example in memory: prefer :func:`run_on` for large data. Keyword
    arguments are those of :func:`run_on` (the dataset runner of docs/theory.md §1).

    Raises:
        TypeError, ValueError: as :func:`run_on` (the attack, ``target_labels``, ``eps``,
            ``batch_size``, the data), checked before the first batch is attacked, and the attack's
            own errors.

    Example:
        >>> import torch
        >>> from pyadvt.attacks import PGD
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> x, y = torch.rand(5, 3, 2, 2), torch.arange(5) % 3
        >>> x_adv, y_all = attack_all(PGD(net, eps=0.1, steps=2), (x, y), batch_size=2, eps=torch.tensor([0.0, 0.1]))
        >>> x_adv.shape, bool(torch.equal(x_adv[0], x)), bool(torch.equal(y_all, y))
        (torch.Size([2, 5, 3, 2, 2]), True, True)
    """
    xs, ys = [], []
    for b in run_on(attack, data, batch_size, **kwargs):
        xs.append(b.x_adv)
        ys.append(b.y)
    eps = kwargs.get("eps")
    multi = eps is not None and torch.as_tensor(eps).dim() == 1  # [K, b, ...] batches
    return torch.cat(xs, dim=1 if multi else 0), torch.cat(ys)
