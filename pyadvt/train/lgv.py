"""LGV checkpoint collection (Gubri et al. 2022; seed 001 §5, docs/theory.md §1 "Ensemble / LGV").

Fine-tune a copy of a trained model with a *constant* learning rate (default 0.05) for ``epochs``
(default 10) and keep ``per_epoch`` (default 4) evenly spaced snapshots; attacking the ensemble of
their mean logits (``pyadvt.attacks.Ensemble``) is the LGV attack. The optimizer may be SGD (the
default), or SAM / SAM&JR through ``optimizer_factory`` and ``loss_fn`` (seed 001 Table V:
LGV_SAM, LGV_SAM&JR).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from pyadvt.data import TensorData
    >>> data = TensorData(torch.rand(32, 1, 2, 2), torch.arange(32) % 3)
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> models = collect_lgv(net, data, epochs=2, per_epoch=2, batch_size=8, progress=False)
    >>> len(models)
    4
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from pyadvt.data import TensorData
from pyadvt.train.fit import fit
from pyadvt.utils.errors import InvalidTypeError

__all__ = ["collect_lgv"]


def collect_lgv(model: nn.Module, train: TensorData, *, epochs: int = 10, per_epoch: int = 4, lr: float = 0.05,
                batch_size: int = 64, momentum: float = 0.9, weight_decay: float = 5e-4, seed: int = 0,
                loss_fn: Callable | None = None,
                optimizer_factory: Callable[[list[nn.Parameter], nn.Module], torch.optim.Optimizer] | None = None,
                progress: bool = True) -> list[nn.Module]:
    """Collect ``epochs * per_epoch`` LGV snapshots of ``model`` (which is not modified).

    Args:
        model: a trained classifier.
        train: training data for the constant-rate fine-tuning.
        epochs, per_epoch: fine-tuning length and snapshots per epoch (evenly spaced in steps).
        lr, batch_size, momentum, weight_decay, seed: SGD settings (constant rate, no warmup).
        loss_fn: ``fit``'s ``loss_fn`` (e.g. a JR loss for LGV_SAM&JR).
        optimizer_factory: ``(params, model_copy) -> optimizer`` replacing SGD (e.g.
            ``lambda ps, m: SAM(ps, rho=0.05, model=m, lr=0.05, momentum=0.9)``).

    ``train`` holds images ``x [N, C, H, W]`` and labels ``y [N]``. Source: docs/theory.md §1
    ("Ensemble / LGV"; Gubri et al. 2022, seed 001 §5).

    Returns:
        Snapshots (deep copies, eval mode) in training order.

    Raises:
        ValueError: when ``epochs`` or ``per_epoch`` is not an int ``>= 1``, when an epoch has fewer
            optimizer steps than ``per_epoch`` snapshots, or for the checks of :func:`pyadvt.train.fit`
            (non-positive settings, labels outside the model's outputs).
        TypeError: ``train`` is not a :class:`~pyadvt.data.TensorData` (``InvalidTypeError``), or for
            the checks of :func:`pyadvt.train.fit` (``model`` not an ``nn.Module``).
        FloatingPointError: when an epoch's mean training loss is not finite (as :func:`pyadvt.train.fit`).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from pyadvt.data import TensorData
        >>> data = TensorData(torch.rand(16, 1, 2, 2), torch.arange(16) % 2)
        >>> snaps = collect_lgv(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), data, epochs=1, per_epoch=2,
        ...                     batch_size=8, progress=False)
        >>> len(snaps), snaps[0].training
        (2, False)
    """
    for name, v in (("epochs", epochs), ("per_epoch", per_epoch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"'{name}' must be an int >= 1, got {v!r}")
    if not isinstance(train, TensorData):
        raise InvalidTypeError(f"collect_lgv: 'train' must be a TensorData (its snapshot schedule counts the "
                               f"epoch's batches), got {type(train).__name__}; convert a Dataset or DataLoader "
                               "with pyadvt.data.to_tensor_data(train)")
    work = copy.deepcopy(model)
    for p in work.parameters():
        p.requires_grad_(True)
    steps_per_epoch = len(train.loader(batch_size, drop_last=len(train) % batch_size == 1))
    if steps_per_epoch < per_epoch:
        raise ValueError(f"{per_epoch} snapshots per epoch need at least as many steps per epoch, got "
                         f"{steps_per_epoch}; lower 'batch_size' or 'per_epoch'")
    total, K = epochs * steps_per_epoch, epochs * per_epoch
    wanted = {round((j + 1) * total / K) for j in range(K)}
    snapshots: list[nn.Module] = []

    def on_step(m: nn.Module, epoch: int, step: int) -> None:
        if step in wanted:
            snap = copy.deepcopy(m).eval()
            for p in snap.parameters():
                p.requires_grad_(False)
            snapshots.append(snap)

    optimizer = None
    if optimizer_factory is not None:
        optimizer = optimizer_factory([p for p in work.parameters() if p.requires_grad], work)
    fit(work, train, epochs=epochs, lr=lr, batch_size=batch_size, momentum=momentum, weight_decay=weight_decay,
        warmup_epochs=0.0, seed=seed, loss_fn=loss_fn, optimizer=optimizer, schedule="constant",
        progress=progress, on_step=on_step)
    return snapshots
