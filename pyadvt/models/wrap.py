"""``wrap``: view any user classifier whose last layer is an ``nn.Linear`` as a :class:`SplitModel`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.models.base import SplitModel
from pyadvt.utils.modes import evaluating


class WrappedModel(SplitModel):
    """A user module seen as ``head(features(x))`` without copying or modifying it.

    ``features(x)`` runs the user's module once and returns the input its own final linear layer
    (``head_name``) received, captured by a temporary forward pre-hook that is removed after the
    call; ``forward(x) = head(features(x))``. ``head`` starts as that same layer (parameters are
    shared with the user's module, so training either trains both) and may be replaced
    (``m.head = nn.Linear(m.feature_dim, k)``) for transfer learning. ``blocks`` lists the user's
    modules named in ``block_names`` (default: its top-level children in registration order,
    except the one holding the head).
    """

    def __init__(self, module: nn.Module, head_name: str, block_names: Sequence[str],
                 normalize: nn.Module | None = None) -> None:
        nn.Module.__init__(self)
        self.normalize = normalize if normalize is not None else nn.Identity()
        self.body = module
        self.head = module.get_submodule(head_name)
        self.head_name = head_name
        self.block_names = list(block_names)
        self.in_shape = None

    @property
    def blocks(self) -> list[nn.Module]:
        return [self.body.get_submodule(name) for name in self.block_names]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []

        def grab(_module, inputs):
            captured.append(inputs[0])

        handle = self.body.get_submodule(self.head_name).register_forward_pre_hook(grab)
        try:
            self.body(self.normalize(x))
        finally:
            handle.remove()
        if not captured:
            raise RuntimeError(f"the wrapped module never called its head {self.head_name!r}; pass the name of the "
                               "nn.Linear that produces the logits as 'head'")
        feats = captured[-1]
        return feats.flatten(1) if feats.dim() > 2 else feats


def _default_head(module: nn.Module) -> str:
    linears = [name for name, m in module.named_modules() if isinstance(m, nn.Linear) and name]
    if not linears:
        raise ValueError(f"{type(module).__name__} has no nn.Linear submodule to use as the head; pass 'head'")
    return linears[-1]


def wrap(module: nn.Module, head: str | None = None, blocks: Sequence[str] | None = None,
         normalize: nn.Module | None = None, example_input: torch.Tensor | None = None) -> WrappedModel:
    """Turn a classifier whose logits come straight out of a final ``nn.Linear`` into a SplitModel.

    Args:
        module: the user's ``nn.Module`` (not copied, not modified).
        head: dotted name of the final linear layer (e.g. ``"fc"``, ``"classifier.6"``); default the
            last ``nn.Linear`` in ``module.named_modules()`` order.
        blocks: dotted names of the modules forming ``blocks`` (input -> output order); default the
            top-level children except the one that is or holds the head.
        normalize: optional input layer (e.g. ``Normalize``) applied before ``module``.
        example_input: if given, checked (in eval mode): ``wrapped(x)`` must equal
            ``module(normalize(x))``, which fails when the module post-processes the head's output
            (e.g. returns log-softmax).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> m = wrap(net)
        >>> m.head is net[3], m.feature_dim, m.features(torch.rand(2, 1, 2, 2)).shape
        (True, 8, torch.Size([2, 8]))
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"'module' must be an nn.Module, got {type(module).__name__}")
    head_name = _default_head(module) if head is None else head
    try:
        head_module = module.get_submodule(head_name)
    except AttributeError:
        raise ValueError(f"'head': {type(module).__name__} has no submodule {head_name!r}") from None
    if not isinstance(head_module, nn.Linear):
        raise ValueError(f"'head': {head_name!r} is a {type(head_module).__name__}, not an nn.Linear")
    if blocks is None:
        top = head_name.split(".")[0]
        blocks = [name for name, _ in module.named_children() if name != top]
    for name in blocks:
        try:
            module.get_submodule(name)
        except AttributeError:
            raise ValueError(f"'blocks': {type(module).__name__} has no submodule {name!r}") from None
    wrapped = WrappedModel(module, head_name, blocks, normalize)
    if example_input is not None:
        with evaluating(wrapped), torch.no_grad():  # eval mode: the check must not touch BatchNorm statistics
            ours, theirs = wrapped(example_input), module(wrapped.normalize(example_input))
        if ours.shape != theirs.shape or not torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6):
            raise ValueError(f"head({head_name}) of the features does not reproduce the module's output; the module "
                             "must return the head's output unchanged (no softmax or other op after it)")
    return wrapped
