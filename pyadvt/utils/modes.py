"""Model-mode discipline for attacks and metrics (docs/theory.md §0)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn


@contextlib.contextmanager
def evaluating(models: nn.Module | Sequence[nn.Module], *, higher_order: bool = False) -> Iterator[None]:
    """Run ``models`` in ``eval()`` mode without accumulating parameter gradients, under pyadvt's
    model-output contract.

    On exit every module's previous ``training`` flag (per submodule) and every parameter's
    ``requires_grad`` flag are restored, even if the body raised. Input gradients
    (``torch.autograd.grad`` w.r.t. inputs) still work inside.

    Inside, each model returns one tensor whatever it returns itself (a tuple, a dict, a
    ``ModelOutput``; :func:`pyadvt.models.output.model_contract`); a model on the meta device, an
    input on the wrong device or of the wrong dtype and an output without one row per input are
    refused with one clear error. ``higher_order=True`` (Hessian / Jacobian-vector work) also enters
    :func:`pyadvt.models.output.twice_differentiable` (math SDPA backend, a twice-differentiable
    ``nn.Hardsigmoid``, a hint naming any layer without a second derivative).

    Raises:
        InvalidValueError: (inside, on a call) a model on the meta device, an input on another device,
            or an output without one row per input.
        InvalidTypeError: (inside) an input of the wrong dtype, or an output that is not a tensor,
            tuple, dict or ``ModelOutput``.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
        >>> with evaluating(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    from pyadvt.models.output import model_contract, twice_differentiable  # models import this module

    mods = [models] if isinstance(models, nn.Module) else list(models)
    modes = [[(m, m.training) for m in mod.modules()] for mod in mods]
    flags = [[(p, p.requires_grad) for p in mod.parameters()] for mod in mods]
    try:
        for mod in mods:
            mod.eval()
            for p in mod.parameters():
                p.requires_grad_(False)
        with contextlib.ExitStack() as stack:
            stack.enter_context(model_contract(mods))
            if higher_order:
                stack.enter_context(twice_differentiable(mods))
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
