"""Model-mode discipline for attacks and metrics (SPEC section 0)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn


@contextlib.contextmanager
def evaluating(models: nn.Module | Sequence[nn.Module]) -> Iterator[None]:
    """Run ``models`` in ``eval()`` mode without accumulating parameter gradients.

    On exit every module's previous ``training`` flag (per submodule) and every parameter's
    ``requires_grad`` flag are restored, even if the body raised. Input gradients
    (``torch.autograd.grad`` w.r.t. inputs) still work inside.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
        >>> with evaluating(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    mods = [models] if isinstance(models, nn.Module) else list(models)
    modes = [[(m, m.training) for m in mod.modules()] for mod in mods]
    flags = [[(p, p.requires_grad) for p in mod.parameters()] for mod in mods]
    try:
        for mod in mods:
            mod.eval()
            for p in mod.parameters():
                p.requires_grad_(False)
        yield
    finally:
        for saved in modes:
            for m, was_training in saved:
                m.training = was_training
        for saved in flags:
            for p, req in saved:
                p.requires_grad_(req)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a parameter-free model)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")
