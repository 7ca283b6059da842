"""``wrap``: view any user classifier whose last layer is an ``nn.Linear`` as a :class:`SplitModel`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.models.base import SplitModel
from pyadvt.models.output import model_logits
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.errors import InvalidTypeError, InvalidValueError
from pyadvt.utils.modes import evaluating


class WrappedModel(SplitModel):
    """A user module seen as ``head(features(x))`` without copying or modifying it.

    ``features(x)`` runs the user's module once and returns the input its own final linear layer
    (``head_name``) received, captured by a temporary forward pre-hook that is removed after the
    call; ``forward(x) = head(features(x))``. ``head`` starts as that same layer (parameters are
    shared with the user's module, so training either trains both) and may be replaced
    (``m.head = nn.Linear(m.feature_dim, k)``) for transfer learning. ``blocks`` lists the user's
    modules named in ``block_names`` (input -> output; default :func:`default_blocks`). An entry of
    ``block_names`` may be a tuple of names that form one block (e.g. a stage and the norm layer
    after it); its block is then an ``nn.ModuleList`` of those modules.

    Input ``[B, *in]``; ``features(x)`` is ``[B, feature_dim]``, ``forward(x)`` ``[B, num_classes]``.

    Raises:
        RuntimeError: (on a call) the wrapped module never called its head ``head_name``
            (build through :func:`wrap`, which checks the names first).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = WrappedModel(nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)), "3", ["1"])
        >>> net.features(torch.rand(2, 1, 2, 2)).shape, net(torch.rand(2, 1, 2, 2)).shape
        (torch.Size([2, 5]), torch.Size([2, 3]))
    """

    def __init__(self, module: nn.Module, head_name: str, block_names: Sequence[str],
                 normalize: nn.Module | None = None) -> None:
        nn.Module.__init__(self)
        self.normalize = normalize if normalize is not None else nn.Identity()
        self.body = module
        self.head = _submodule(module, head_name, "head_name")
        self.head_name = head_name
        self.block_names = [name if isinstance(name, str) else tuple(name) for name in block_names]
        self.in_shape = None

    @property
    def blocks(self) -> list[nn.Module]:
        return [self.body.get_submodule(name) if isinstance(name, str)
                else nn.ModuleList([self.body.get_submodule(n) for n in name]) for name in self.block_names]

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


def _holds_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _is_norm(module: nn.Module) -> bool:
    """A normalisation layer (BatchNorm/LayerNorm/GroupNorm and look-alikes such as timm's LayerNorm2d)."""
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)):
        return True
    return "Norm" in type(module).__name__ and not any(_holds_parameters(c) for c in module.children())


def _is_block_list(module: nn.Module) -> bool:
    """An ``nn.Sequential``/``nn.ModuleList`` of three or more blocks (children with sub-modules), like a
    ViT encoder's layers (a two-layer branch of an Inception module is not one)."""
    if not isinstance(module, (nn.Sequential, nn.ModuleList)):
        return False
    inner = [c for c in module.children() if _holds_parameters(c) and next(c.children(), None) is not None]
    return len(inner) >= 3


def _is_side_classifier(name: str, module: nn.Module, after_head: bool) -> bool:
    """An auxiliary classifier (GoogLeNet's ``aux1``, Inception's ``AuxLogits``) or a second head
    registered after the head (LeViT / DeiT's ``head_dist``): not on the path to the features."""
    lowered = name.lower()
    if lowered.startswith("aux") or "Aux" in type(module).__name__:
        return True
    return after_head and ("head" in lowered or "dist" in lowered or "classifier" in lowered)


def _merge_norms(groups: list[list[str]], modules: dict[str, nn.Module]) -> list[list[str]]:
    """A block that is only a norm layer joins the block before it (the first one joins the next)."""
    out: list[list[str]] = []
    pending: list[str] = []
    for group in groups:
        if len(group) == 1 and _is_norm(modules[group[0]]):
            if out:
                out[-1] = out[-1] + group
            else:
                pending += group
            continue
        out.append(pending + group)
        pending = []
    if pending:
        out.append(pending)
    return out


def _expand(prefix: str, module: nn.Module, head_name: str, modules: dict[str, nn.Module],
            depth: int = 0) -> list[list[str]]:
    """Blocks (lists of dotted names) inside ``module``, input -> output, each holding parameters.

    The root, the container of the head, every ``nn.Sequential`` / ``nn.ModuleList`` and a top-level
    child that holds a sequence of blocks (a ViT encoder) are opened; any other module is one block.
    """
    holds_head = depth == 0 or head_name.startswith(prefix + ".")
    opens = (isinstance(module, (nn.Sequential, nn.ModuleList))
             or (depth == 1 and any(_is_block_list(c) for c in module.children())))
    if not (holds_head or opens):
        return [[prefix]]
    groups: list[list[str]] = []
    after_head = False
    for name, child in module.named_children():
        full = f"{prefix}.{name}" if prefix else name
        holder = full == head_name or head_name.startswith(full + ".")
        side = _is_side_classifier(name, child, after_head)
        after_head = after_head or holder
        if full == head_name or not _holds_parameters(child) or (side and not holder):
            continue
        modules[full] = child
        groups += _expand(full, child, head_name, modules, depth + 1)
    groups = _merge_norms(groups, modules)
    if not holds_head and len(groups) == 1:
        return [[prefix]]  # e.g. the conv + BatchNorm of one Conv-BN-act module: the module itself
    return groups


def _submodule(module: nn.Module, name, argument: str) -> nn.Module:
    """``module.get_submodule(name)``, or an error naming ``argument`` and the module's linear layers."""
    if not isinstance(module, nn.Module):
        raise InvalidTypeError(f"'module' must be an nn.Module, got {type(module).__name__}")
    if not isinstance(name, str):
        raise InvalidTypeError(f"'{argument}' must be a dotted module name (str), got {type(name).__name__}")
    try:
        return module.get_submodule(name)
    except AttributeError:
        linear = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
        raise InvalidValueError(f"'{argument}' {name!r} is not a submodule of {type(module).__name__}; its "
                                f"linear layers are {linear}") from None


def default_blocks(module: nn.Module, head: str) -> list[str | tuple[str, ...]]:
    """The blocks of ``module`` for fine-tuning: modules holding parameters, input -> output, head excluded.

    Starting from the top-level children (registration order), parameter-free layers (pooling,
    flatten, dropout, activations) and side classifiers (GoogLeNet / Inception auxiliary heads, a
    distillation head after the head) are skipped; a sequence of blocks (an ``nn.Sequential`` /
    ``nn.ModuleList``, or a module holding one, such as a ResNet stage or a ViT encoder) is opened
    into its blocks; a lone norm layer joins the block before it (ResNet's ``conv1 + bn1`` stem, a
    ViT's last block + final ``norm``); layers of the head's container before the head (VGG's
    ``classifier.0``, MobileNetV3's ``classifier.0``) are blocks too. So ``blocks[-1]`` is the last
    block *with parameters* before the head: ``finetune(blocks=1)`` trains it and the head.

    Returns names (``"layer4.1"``) or tuples of names forming one block (``("blocks.11", "norm")``).

    Raises:
        InvalidTypeError: ``module`` is not an nn.Module or ``head`` not a string.
        InvalidValueError: ``head`` names no submodule of ``module``.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        ...                     nn.Flatten(), nn.Dropout(), nn.Linear(2, 3))
        >>> default_blocks(net, "6")
        [('0', '1')]
    """
    _submodule(module, head, "head")
    modules: dict[str, nn.Module] = {}
    groups = _expand("", module, head, modules)
    return [g[0] if len(g) == 1 else tuple(g) for g in groups]


@keyword_only("head", "blocks", "normalize", "example_input")
def wrap(module: nn.Module, *, head: str | None = None, blocks: Sequence[str] | None = None,
         normalize: nn.Module | None = None, example_input: torch.Tensor | None = None) -> WrappedModel:
    """Turn a classifier whose logits come straight out of a final ``nn.Linear`` into a SplitModel.

    Args:
        module: the user's ``nn.Module`` (not copied, not modified).
        head: dotted name of the final linear layer (e.g. ``"fc"``, ``"classifier.6"``); default the
            last ``nn.Linear`` in ``module.named_modules()`` order.
        blocks: dotted names of the modules forming ``blocks`` (input -> output order; an entry may be
            a tuple of names forming one block); default :func:`default_blocks` (the modules holding
            parameters, so ``finetune(blocks=1)`` trains a block with parameters and the head).
        normalize: optional input layer (e.g. ``Normalize``) applied before ``module``.
        example_input: if given, checked (in eval mode): ``wrapped(x)`` must equal
            ``module(normalize(x))``, which fails when the module post-processes the head's output
            (e.g. returns log-softmax).

    Input ``[B, *in]``; the result's ``features(x)`` is ``[B, feature_dim]``, its output ``[B, num_classes]``.

    Raises:
        TypeError: ``module`` is not an nn.Module.
        ValueError: ``head`` is not a final ``nn.Linear`` of ``module``, or a name in ``blocks`` is unknown.

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
        blocks = default_blocks(module, head_name)
    for entry in blocks:
        for name in ([entry] if isinstance(entry, str) else entry):
            try:
                module.get_submodule(name)
            except AttributeError:
                raise ValueError(f"'blocks': {type(module).__name__} has no submodule {name!r}") from None
    wrapped = WrappedModel(module, head_name, blocks, normalize)
    if example_input is not None:
        with evaluating(wrapped), torch.no_grad():  # eval mode: the check must not touch BatchNorm statistics
            ours = wrapped(example_input)
            theirs = model_logits(module(wrapped.normalize(example_input)))  # a tuple / dict output's logits
        if ours.shape != theirs.shape or not torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6):
            raise ValueError(f"head({head_name}) of the features does not reproduce the module's output; the module "
                             "must return the head's output unchanged (no softmax or other op after it)")
    return wrapped
