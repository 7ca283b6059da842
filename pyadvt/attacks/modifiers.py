"""Model-level modifiers installed around an attack call and always removed (docs/theory.md §10.9-§10.13).

* :class:`SkipGradient` - SGM's residual-gradient decay ``dz'/dz -> I + gamma df/dz`` (§10.9);
* :class:`LinearBackprop` - LinBP's linear backward through the residual branches from a block on,
  with the per-sample residual normalisation (§10.10);
* :class:`FeatureTap` - records a named layer's output for the feature-level objectives (ILA, FIA, NAA).

Each has ``installed(model)``, a context manager that patches the model and restores it in a
``finally`` (also when the attack raises). Residual blocks are recognised in torchvision ResNets
(``BasicBlock``, ``Bottleneck``), timm ResNets and pyadvt's ``SmallResNet``; other architectures get a
``ValueError`` naming what is supported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from pyadvt.attacks.transforms import _check_float


def _act(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` without modifying ``x`` in place (torchvision's ReLUs are ``inplace=True``)."""
    if getattr(module, "inplace", False):
        x = x.clone()
    return module(x)


def _linear_act(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward ``module(x)``, backward the identity (LinBP: ``x + (act(x) - x).detach()``)."""
    return x + (_act(module, x) - x).detach()


def _is_activation(m: nn.Module) -> bool:
    return not isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.Identity, nn.Dropout))


@dataclass
class ResidualBlock:
    """A residual block ``out = post(shortcut(x) + branch(x))`` found in a model.

    ``steps`` are the residual branch's modules in order with a flag marking activations (made
    linear in LinBP's backward); ``post`` is the activation after the addition.
    """

    name: str
    module: nn.Module
    steps: list[tuple[nn.Module, bool]]
    shortcut: nn.Module | None
    post: nn.Module

    def branch(self, x: torch.Tensor, linear: bool = False) -> torch.Tensor:
        for mod, is_act in self.steps:
            if is_act:
                x = _linear_act(mod, x) if linear else _act(mod, x)
            else:
                x = mod(x)
        return x

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.shortcut is None else self.shortcut(x)


def _block_of(name: str, m: nn.Module) -> ResidualBlock | None:
    cls, mod = type(m).__name__, type(m).__module__
    if mod.startswith("torchvision.models.resnet") and cls in ("BasicBlock", "Bottleneck"):
        seq = [(m.conv1, False), (m.bn1, False), (m.relu, True), (m.conv2, False), (m.bn2, False)]
        if cls == "Bottleneck":
            seq += [(m.relu, True), (m.conv3, False), (m.bn3, False)]
        return ResidualBlock(name, m, seq, m.downsample, m.relu)
    if mod.startswith("timm.models.resnet") and cls in ("BasicBlock", "Bottleneck"):
        if cls == "BasicBlock":
            order = [("conv1", 0), ("bn1", 0), ("drop_block", 0), ("act1", 1), ("aa", 0), ("conv2", 0), ("bn2", 0)]
            post = m.act2
        else:
            order = [("conv1", 0), ("bn1", 0), ("act1", 1), ("conv2", 0), ("bn2", 0), ("drop_block", 0),
                     ("act2", 1), ("aa", 0), ("conv3", 0), ("bn3", 0)]
            post = m.act3
        order += [("se", 0), ("drop_path", 0)]
        seq = [(getattr(m, a), bool(f)) for a, f in order if getattr(m, a, None) is not None]
        return ResidualBlock(name, m, seq, m.downsample, post)
    if mod == "pyadvt.models.resnet" and cls == "BasicBlock":
        seq = [(c, _is_activation(c)) for c in m.body]
        return ResidualBlock(name, m, seq, None if isinstance(m.shortcut, nn.Identity) else m.shortcut, m.act)
    return None


def residual_blocks(model: nn.Module, attack: str = "this attack") -> list[ResidualBlock]:
    """The residual blocks of ``model`` in forward order (ValueError when there are none).

    Example:
        >>> import torchvision
        >>> [b.name for b in residual_blocks(torchvision.models.resnet18())][:3]
        ['layer1.0', 'layer1.1', 'layer2.0']
    """
    blocks = [b for name, m in model.named_modules() if (b := _block_of(name, m)) is not None]
    if not blocks:
        raise ValueError(f"{attack} needs a ResNet: torchvision resnet*/wide_resnet*, timm resnet* or pyadvt's "
                         f"'resnet' ({type(model).__name__} has no BasicBlock/Bottleneck residual blocks)")
    return blocks


class _ScaleGrad(torch.autograd.Function):
    """Identity forward, gradient times ``gamma`` backward."""

    @staticmethod
    def forward(ctx, x, gamma):
        ctx.gamma = gamma
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.gamma, None


@contextlib.contextmanager
def _patched_forwards(patches: list[tuple[nn.Module, Callable]]) -> Iterator[None]:
    """Shadow each module's ``forward`` with an instance attribute; always restored."""
    done = []
    try:
        for module, fwd in patches:
            if "forward" in vars(module):
                raise RuntimeError(f"{type(module).__name__} already has a patched forward (nested modifiers?)")
            module.forward = fwd
            done.append(module)
        yield
    finally:
        for module in done:
            del module.forward


class SkipGradient:
    """SGM (Wu et al. 2020, docs/theory.md §10.9): every residual block backpropagates
    ``I + gamma * df/dz`` (the residual branch's gradient decayed by ``gamma``), except the model's first
    block (the authors' code excludes ``layer1.0``).

    The authors' hooks multiply the gradient at every (reused) ReLU by ``gamma'`` (``gamma`` for
    BasicBlock, ``sqrt(gamma)`` for Bottleneck) and rescale each block's input gradient by its standard
    deviation: relative to the skip path the residual branch gets exactly ``gamma``, and the extra
    positive factors rescale the whole gradient, which changes neither ``N(grad)`` nor its sign. This
    implementation applies the relative factor directly, so it also holds for timm blocks, whose
    activations are separate modules.

    Example:
        >>> import torchvision
        >>> net = torchvision.models.resnet18(num_classes=10).eval()
        >>> with SkipGradient(0.2).installed(net):
        ...     "forward" in vars(net.layer2[0])
        True
        >>> "forward" in vars(net.layer2[0])
        False
    """

    def __init__(self, gamma: float = 0.2) -> None:
        self.gamma = _check_float(gamma, "gamma", 0.0, 1.0)

    def installed(self, model: nn.Module):
        blocks = residual_blocks(model, "SGM")

        def make(b: ResidualBlock):
            def forward(x):
                return b.post(b.skip(x) + _ScaleGrad.apply(b.branch(x), self.gamma))
            return forward

        return _patched_forwards([(b.module, make(b)) for b in blocks[1:]])

    def __repr__(self) -> str:
        return f"SkipGradient(gamma={self.gamma:g})"


class _LinBPBranch(torch.autograd.Function):
    """Residual branch with LinBP's backward: ``lam * ||G_true|| / ||G_lin|| * G_lin`` per sample."""

    @staticmethod
    def forward(ctx, x, block, lam):
        with torch.enable_grad():
            xd = x.detach().requires_grad_(True)
            out_true = block.branch(xd, linear=False)
            out_lin = block.branch(xd, linear=True)
        ctx.graph = (xd, out_true, out_lin)
        ctx.lam = lam
        return out_true.detach()

    @staticmethod
    def backward(ctx, g):
        xd, out_true, out_lin = ctx.graph
        (g_true,) = torch.autograd.grad(out_true, xd, g)
        (g_lin,) = torch.autograd.grad(out_lin, xd, g)
        del ctx.graph
        nt = g_true.reshape(g.shape[0], -1).norm(dim=1)
        nl = g_lin.reshape(g.shape[0], -1).norm(dim=1)
        scale = torch.where(nl > 0, ctx.lam * nt / nl.clamp_min(torch.finfo(nl.dtype).tiny), torch.zeros_like(nl))
        return g_lin * scale.view((-1,) + (1,) * (g_lin.dim() - 1)), None, None


class LinearBackprop:
    """LinBP (Guo et al. 2020, docs/theory.md §10.10): from block ``start`` on, the residual branches'
    activations backpropagate as the identity (forward unchanged), the post-add activation keeps its
    mask, and each block's residual input-gradient is renormalised per sample to
    ``lam * ||G_true|| / ||G_lin|| * G_lin``. Earlier blocks use the normal backward.

    Args:
        start: name of the first linearised block (default ``"layer3.1"``, the authors' ``'3_1'``; for
            models without it, the middle residual block).
        lam: ``sgm_lambda`` of the normalisation (default 1.0).

    Example:
        >>> import torchvision
        >>> net = torchvision.models.resnet18(num_classes=10).eval()
        >>> LinearBackprop().first_block(net)
        'layer3.1'
    """

    def __init__(self, start: str | None = None, lam: float = 1.0) -> None:
        self.start = start
        self.lam = _check_float(lam, "lam", 0.0)

    def first_block(self, model: nn.Module) -> str:
        names = [b.name for b in residual_blocks(model, "LinBP")]
        if self.start is None:
            return "layer3.1" if "layer3.1" in names else names[len(names) // 2]
        if self.start not in names:
            raise ValueError(f"LinBP 'layer'={self.start!r} is not a residual block of this model; "
                             f"choose one of {', '.join(names)}")
        return self.start

    def installed(self, model: nn.Module):
        blocks = residual_blocks(model, "LinBP")
        first = [b.name for b in blocks].index(self.first_block(model))

        def make(b: ResidualBlock):
            def forward(x):
                return b.post(b.skip(x) + _LinBPBranch.apply(x, b, self.lam))
            return forward

        return _patched_forwards([(b.module, make(b)) for b in blocks[first:]])

    def __repr__(self) -> str:
        return f"LinearBackprop(start={self.start!r}, lam={self.lam:g})"


def module_by_name(model: nn.Module, name: str, attack: str) -> nn.Module:
    """``model``'s submodule ``name`` (dotted, as in ``named_modules``), or a ValueError listing names."""
    if not isinstance(name, str):
        raise TypeError(f"'layer' must be a module name (str), got {type(name).__name__}")
    mods = dict(model.named_modules())
    if name not in mods or name == "":
        sample = [n for n in mods if n][:12]
        raise ValueError(f"{attack}: the model has no layer {name!r}; pass layer=<a name from "
                         f"model.named_modules()>, e.g. {', '.join(sample)}")
    return mods[name]


def default_layer(model: nn.Module, attack: str) -> str:
    """The default feature layer of ILA / FIA / NAA (docs/theory.md §10.11-§10.13).

    * torchvision / timm ResNets (``layer1``..``layer4``): FIA and NAA ``"layer2"``; ILA the element
      ``floor(count / 2)`` of the top-level modules with Sequential children expanded (TransferAttack's
      rule: ``layer2.1`` for ResNet-18, ``layer3.0`` for ResNet-50);
    * pyadvt models (``blocks``): the block ``floor(len(blocks) / 2)``.

    Example:
        >>> import torchvision
        >>> default_layer(torchvision.models.resnet18(), "ILA"), default_layer(torchvision.models.resnet50(), "ILA")
        ('layer2.1', 'layer3.0')
    """
    names = dict(model.named_children())
    if all(f"layer{i}" in names for i in range(1, 5)):
        if attack != "ILA":
            return "layer2"
        flat = []
        for n, m in model.named_children():
            flat += [f"{n}.{c}" for c, _ in m.named_children()] if isinstance(m, nn.Sequential) else [n]
        return flat[len(flat) // 2]
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, (nn.ModuleList, nn.Sequential)) and len(blocks) > 0:
        return f"blocks.{len(blocks) // 2}"
    raise ValueError(f"{attack} has no default layer for {type(model).__name__}: pass layer=<module name> "
                     "(a name from model.named_modules(), e.g. a middle block)")


class FeatureTap:
    """Forward hook recording the output of layer ``name`` in :attr:`value` while installed.

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> tap = FeatureTap("0")
        >>> with tap.installed(net):
        ...     _ = net(torch.zeros(4, 2))
        ...     shape = tap.value.shape
        >>> shape, len(net[0]._forward_hooks)
        (torch.Size([4, 3]), 0)
    """

    def __init__(self, name: str, attack: str = "feature attack") -> None:
        self.name = name
        self.attack = attack
        self.value: torch.Tensor | None = None

    @contextlib.contextmanager
    def installed(self, model: nn.Module) -> Iterator[None]:
        module = module_by_name(model, self.name, self.attack)

        def hook(mod, inp, out):
            if not isinstance(out, torch.Tensor):
                raise ValueError(f"{self.attack}: layer {self.name!r} returns {type(out).__name__}, not a tensor; "
                                 "choose a layer with a tensor output")
            self.value = out

        handle = module.register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()
            self.value = None
