"""One model-output contract for every attack, metric, bound, trainer and ranking (``docs/theory.md §9``).

pyadvt calls a model as ``model(x)`` with ``x: [B, *in_shape]`` and needs a tensor with one row per
input (``[B, C]`` logits, or ``[B, d]`` for a representation). Users' models return other things:

* a tensor -> itself;
* a tuple / list (torchvision's Inception/GoogLeNet in train mode, ``(logits, aux)`` models) -> its
  first element;
* a dict or a ``ModelOutput`` (Hugging Face) -> its ``"logits"`` entry, else its first tensor value;
* an object with a ``logits`` attribute -> that; a dataclass -> its first tensor field;
* anything else -> a clear error; :func:`select_output` wraps a model with an explicit selector.

:func:`model_contract` applies that normalisation as a forward hook on the top-level module (the
user's module is not modified and the hook is removed on exit), and checks once, before the first
layer runs, what would otherwise fail deep inside torch: a model on the ``meta`` device, an input on
another device than the model, an input dtype other than the model's (outside ``torch.autocast``),
and an output without one row per input. :func:`pyadvt.utils.evaluating` (used by every attack,
metric and bound) and :func:`pyadvt.train.fit` enter it.

:func:`twice_differentiable` is for Hessian / Jacobian-vector work (smoothness, tau2, the JVPs of
tau1): it selects PyTorch's math SDPA backend (the fused flash / memory-efficient attention kernels
have no double backward nor forward-mode AD, e.g. timm's ViT), evaluates ``nn.Hardsigmoid`` by the
equal formula ``clamp(x + 3, 0, 6) / 6`` (``hardsigmoid_backward`` has no derivative; MobileNetV3's
squeeze-excitation uses it), and turns any remaining "derivative ... not implemented" error into a
one-line hint naming the layer.

Example:
    >>> from torch import nn
    >>> class DictNet(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 3)
    ...     def forward(self, x):
    ...         return {"features": x, "logits": self.fc(x)}
    >>> net = DictNet()
    >>> with model_contract(net):
    ...     net(torch.rand(2, 4)).shape
    torch.Size([2, 3])
    >>> isinstance(net(torch.rand(2, 4)), dict)  # the hook is gone
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

__all__ = ["OutputSelector", "check_model_ready", "model_contract", "model_logits", "select_output",
           "twice_differentiable"]

Selector = str | int | Callable[[object], torch.Tensor] | None

_KINDS = ("a tensor, a tuple/list (first element), a dict or ModelOutput ('logits', else the first tensor "
          "value) or an object with a 'logits' attribute")


@keyword_only("output", "name")
def model_logits(out: Any, *, output: Selector = None, name: str = "model") -> torch.Tensor:
    """The tensor pyadvt uses from a model's raw output ``out`` (module docstring): for a batch of
    ``B`` inputs, logits ``[B, num_classes]`` (or whatever ``[B, ...]`` tensor ``output`` selects).

    Args:
        out: what ``model(x)`` returned.
        output: explicit selector: a key / attribute name (``"logits"``, ``"pooler_output"``), an index
            into a tuple (``0``), or a callable ``out -> tensor``; ``None`` applies the default rules.
        name: the model's name in error messages.

    Raises:
        InvalidTypeError: ``output`` is not a selector, or ``out`` holds no tensor pyadvt can use
            (the message says how to select one).
        InvalidValueError: ``output`` selects nothing from ``out``.

    Example:
        >>> t = torch.zeros(2, 3)
        >>> model_logits((t, "aux")) is t, model_logits({"aux": 1, "logits": t}) is t
        (True, True)
        >>> model_logits({"a": t, "b": 2 * t}, output="b").sum().item()
        0.0
    """
    if output is not None:
        try:
            if callable(output):
                picked = output(out)
            elif isinstance(output, int) and not isinstance(output, bool):
                picked = out[output]
            elif isinstance(output, str):
                picked = out[output] if isinstance(out, Mapping) else getattr(out, output)
            else:
                raise InvalidTypeError(f"'output' must be a key, an attribute name, an index or a callable, "
                                       f"got {type(output).__name__}")
        except (KeyError, IndexError, AttributeError, TypeError) as e:
            if isinstance(e, InvalidTypeError):
                raise
            raise InvalidValueError(f"'output={output!r}' does not select anything from the {name}'s output "
                                    f"({_describe(out)})") from None
        if not isinstance(picked, torch.Tensor):
            raise InvalidTypeError(f"'output={output!r}' selected a {type(picked).__name__} from the {name}'s "
                                   "output, not a tensor")
        return picked
    if isinstance(out, torch.Tensor):
        return out
    picked = _default_pick(out)
    if picked is None:
        raise InvalidTypeError(f"'{name}' returned {_describe(out)}; pyadvt needs {_KINDS}; wrap it with "
                               "pyadvt.models.select_output(model, output=...) to pick the logits")
    return picked


def _default_pick(out) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        if isinstance(out.get("logits"), torch.Tensor):
            return out["logits"]
        return next((v for v in out.values() if isinstance(v, torch.Tensor)), None)
    if isinstance(out, (tuple, list)):
        return _default_pick(out[0]) if len(out) else None
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return next((v for v in (getattr(out, f.name) for f in dataclasses.fields(out))
                     if isinstance(v, torch.Tensor)), None)
    return None


def _describe(out) -> str:
    if isinstance(out, Mapping):
        return f"a {type(out).__name__} with keys {list(out)[:6]}"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} ({', '.join(type(v).__name__ for v in out[:4])})"
    return f"a {type(out).__name__}"


class OutputSelector(nn.Module):
    """``forward(x) = model_logits(model(x), output)``; other attributes (``features``, ``head``,
    ``blocks``, ...) are the wrapped model's. Made by :func:`select_output`.

    Input ``[B, *in]``, output the selected tensor ``[B, ...]``.

    Raises:
        InvalidTypeError: ``model`` is not an nn.Module or ``output`` is not a key, attribute name,
            index or callable; (on a call) the selected value is not a tensor.
        InvalidValueError: (on a call) ``output`` selects nothing from the model's output.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> class Two(nn.Module):
        ...     def forward(self, x):
        ...         return x, -x
        >>> OutputSelector(Two(), 1)(torch.ones(2, 3)).shape
        torch.Size([2, 3])
    """

    def __init__(self, model: nn.Module, output: Selector) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise InvalidTypeError(f"'model' must be an nn.Module, got {type(model).__name__}")
        if isinstance(output, bool) or not (output is None or callable(output) or isinstance(output, (str, int))):
            raise InvalidTypeError(f"'output' must be a key, an attribute name, an index or a callable, "
                                   f"got {output!r}")
        self.model = model
        self.output = output

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return model_logits(self.model(*args, **kwargs), output=self.output)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "model":
                raise
            return getattr(super().__getattr__("model"), name)


def select_output(model: nn.Module, output: Selector) -> OutputSelector:
    """``model`` seen through an explicit output selector (a key, attribute, index or callable).

    Raises:
        InvalidTypeError: ``model`` is not an nn.Module, or ``output`` is not a selector.

    Example:
        >>> class Two(nn.Module):
        ...     def forward(self, x):
        ...         return {"logits": x, "aux": -x}
        >>> select_output(Two(), "aux")(torch.ones(1, 2)).tolist()
        [[-1.0, -1.0]]
    """
    return OutputSelector(model, output)


def _tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def check_model_ready(model: nn.Module, name: str = "model") -> None:
    """Refuse a model whose parameters or buffers are on the ``meta`` device (shapes without values).

    Example:
        >>> with torch.device("meta"):
        ...     net = nn.Linear(2, 2)
        >>> try:
        ...     check_model_ready(net)
        ... except ValueError as e:
        ...     print(str(e).split(";")[0])
        'model' is on the meta device (its parameters have shapes but no values)
    """
    if not isinstance(model, nn.Module):
        return
    if any(t.is_meta for t in _tensors(model)):
        raise InvalidValueError(f"'{name}' is on the meta device (its parameters have shapes but no values); "
                                "materialise it first, e.g. model.to_empty(device='cpu') and then "
                                "model.load_state_dict(...)")


@dataclasses.dataclass
class _Expect:
    device: torch.device | None  # None: parameters on several devices (model parallel) or none
    dtype: torch.dtype | None    # None: mixed floating dtypes or no floating parameter


def _expectations(model: nn.Module) -> _Expect:
    devices = {t.device for t in _tensors(model)}
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    return _Expect(next(iter(devices)) if len(devices) == 1 else None,
                   next(iter(dtypes)) if len(dtypes) == 1 else None)


_CONVERT = {torch.float32: ".float()", torch.float64: ".double()", torch.float16: ".half()",
            torch.bfloat16: ".bfloat16()"}


def _check_input(x: torch.Tensor, want: _Expect, name: str) -> None:
    if want.device is not None and x.device != want.device:
        raise InvalidValueError(f"the input is on {x.device} but '{name}' is on {want.device}; move one of them "
                                f"(x.to({str(want.device)!r}) or model.to({str(x.device)!r}))")
    if (want.dtype is not None and x.is_floating_point() and x.dtype != want.dtype
            and not torch.is_autocast_enabled(x.device.type)):
        raise InvalidTypeError(f"the input has dtype {x.dtype} but '{name}' has {want.dtype} parameters; "
                               f"convert the inputs (x{_CONVERT.get(want.dtype, f'.to({want.dtype})')}) or the "
                               f"model (model{_CONVERT.get(x.dtype, f'.to({x.dtype})')}), or run under "
                               "torch.autocast")


_local = threading.local()


def _active() -> dict[int, int]:
    if not hasattr(_local, "active"):
        _local.active = {}
    return _local.active


@contextlib.contextmanager
def model_contract(models: nn.Module | Sequence[nn.Module], output: Selector = None,
                   names: Sequence[str] | None = None) -> Iterator[None]:
    """Inside the block, each top-level module's output is :func:`model_logits` of what it returns,
    and its inputs and outputs are checked (module docstring).

    Refuses a model on the meta device on entry. Hooks are installed once per module (nested
    blocks reuse the outer one) and removed on exit; the module itself is not modified. Other
    callables (not ``nn.Module``) are ignored.

    Args:
        models: one module or a sequence of them (non-modules are skipped).
        output: explicit selector for every model (see :func:`model_logits`).
        names: the models' names in error messages (default ``"model"``).
    """
    mods = [models] if isinstance(models, nn.Module) else list(models)
    labels = list(names) if names is not None else ["model"] * len(mods)
    handles = []
    active = _active()
    mine: list[int] = []
    try:
        for mod, label in zip(mods, labels):
            if not isinstance(mod, nn.Module):
                continue
            check_model_ready(mod, label)
            if active.get(id(mod)):
                active[id(mod)] += 1
                mine.append(id(mod))
                continue
            want = {id(mod): _expectations(mod)}

            def expect(module, want=want):
                if id(module) not in want:  # a deep copy made inside the block carries the hooks
                    want[id(module)] = _expectations(module)
                return want[id(module)]

            def pre(module, args, label=label):
                if args and isinstance(args[0], torch.Tensor):
                    _check_input(args[0], expect(module), label)

            def post(module, args, out, label=label):
                t = model_logits(out, output=output, name=label)
                x = args[0] if args and isinstance(args[0], torch.Tensor) else None
                if x is not None and x.dim() >= 1 and (t.dim() == 0 or t.shape[0] != x.shape[0]):
                    raise InvalidValueError(f"'{label}' returned shape {tuple(t.shape)} for a batch of "
                                            f"{x.shape[0]} inputs; it must return one row per input "
                                            "([B, C] logits)")
                return t if t is not out else None

            try:
                handles.append(mod.register_forward_pre_hook(pre))
                handles.append(mod.register_forward_hook(post))
            except (RuntimeError, AttributeError):  # e.g. a TorchScript module: called as it is
                continue
            active[id(mod)] = 1
            mine.append(id(mod))
        yield
    finally:
        for h in handles:
            h.remove()
        for key in mine:
            active[key] -= 1
            if not active[key]:
                del active[key]


def _hardsigmoid(x: torch.Tensor) -> torch.Tensor:
    """``F.hardsigmoid`` with the same values and first derivative (1/6 on the open interval
    (-3, 3), else 0, as ``hardsigmoid_backward``) built from twice-differentiable ops; NaN stays NaN."""
    flat = (torch.clamp(x + 3.0, 0.0, 6.0) / 6.0).detach()
    return torch.where((x > -3.0) & (x < 3.0), (x + 3.0) / 6.0, flat)


_NOT_DIFFERENTIABLE = re.compile(r"derivative for (\S+) is not implemented|"
                                 r"Trying to use forward AD with (\S+) that does not support it")
_GENERIC_WORDS = {"aten", "backward", "for", "cpu", "cuda", "native", "forward", "default"}


def _hint(error: RuntimeError, mods: Sequence[nn.Module]) -> InvalidTypeError | None:
    match = _NOT_DIFFERENTIABLE.search(str(error))
    if match is None:
        return None
    op = match.group(1) or match.group(2)
    words = {w for w in re.split(r"[_:.]+", op.lower()) if len(w) > 3 and w not in _GENERIC_WORDS}
    layers = sorted({type(m).__name__ for mod in mods for m in mod.modules()
                     if any(w in type(m).__name__.lower() for w in words)})
    which = f"its layer(s) {', '.join(layers)} use {op}" if layers else f"one of its layers uses {op}"
    return InvalidTypeError(f"this quantity needs second derivatives (Hessian- or Jacobian-vector products) of the "
                            f"model, but {which}, which has none in PyTorch; replace that layer by a "
                            "twice-differentiable formula (as pyadvt does for nn.Hardsigmoid), or use a metric that "
                            "needs first-order gradients only (tau1, gradient_similarity, attacks)")


@contextlib.contextmanager
def twice_differentiable(models: nn.Module | Sequence[nn.Module]) -> Iterator[None]:
    """Make ``models`` usable for double backward and forward-mode AD inside the block.

    * ``torch.nn.functional.scaled_dot_product_attention`` runs on the math backend (differentiable
      to any order; the fused kernels are not), for every model called inside the block;
    * every ``nn.Hardsigmoid`` of ``models`` computes ``clamp(x + 3, 0, 6) / 6`` (the same values;
      ``hardsigmoid_backward`` has no derivative); restored on exit;
    * a remaining "derivative for ... is not implemented" error becomes an ``InvalidTypeError``
      naming the layer and what to do.

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 3), nn.Hardsigmoid())
        >>> x = torch.rand(2, 3, requires_grad=True)
        >>> with twice_differentiable(net):
        ...     (g,) = torch.autograd.grad(net(x).pow(2).sum(), x, create_graph=True)
        ...     (h,) = torch.autograd.grad(g.sum(), x)
        >>> h.shape
        torch.Size([2, 3])
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    mods = [m for m in ([models] if isinstance(models, nn.Module) else list(models)) if isinstance(m, nn.Module)]
    patched: list[nn.Module] = []
    try:
        for mod in mods:
            for m in mod.modules():
                if isinstance(m, nn.Hardsigmoid) and "forward" not in m.__dict__:
                    m.forward = _hardsigmoid
                    patched.append(m)
        with sdpa_kernel(SDPBackend.MATH):
            try:
                yield
            except RuntimeError as e:
                hint = _hint(e, mods)
                if hint is None:
                    raise
                raise hint from e
    finally:
        for m in patched:
            del m.forward

