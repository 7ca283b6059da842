"""One parser for the model specs of every command line flag (``--source``, ``--surrogate``, ``--target``, ``--reference``).

A spec is ``[NAME=]MODEL[,KEY=VALUE...][:WEIGHTS]``:

==============================  ==============================================================
``MODEL``                       model
==============================  ==============================================================
``torchvision:resnet18``        :func:`pyadvt.models.from_torchvision` (random init, normalisation inside)
``timm:vit_tiny_patch16_224``   :func:`pyadvt.models.from_timm`
``pyadvt:cnn``                  :func:`pyadvt.models.build` for the data's shape and classes
``zoo.py:make_net``             the callable (or ``nn.Module``) ``make_net`` of the file ``zoo.py``
``mypkg.zoo:make_net``          the same from an importable module; the working directory is on
                                the import path, as for ``python -m``
``run/source.pt``               a checkpoint written by :func:`pyadvt.train.save_checkpoint`
==============================  ==============================================================

``,KEY=VALUE`` pairs are keyword arguments of the builder (values read as Python literals, else
strings), e.g. ``timm:vit_tiny_patch16_224,img_size=32``. A ``:WEIGHTS`` suffix ending in ``.pt``,
``.pth``, ``.bin`` or ``.safetensors`` is a plain state dict loaded with ``weights_only=True``
(nothing is downloaded and no code in the file runs), e.g. ``torchvision:resnet18:weights/r18.pt``
or ``zoo.py:make_net:net.pt``. ``NAME=`` names the model in reports (default: the spec).

When the data's ``num_classes`` is known it is passed to the hub builders and ``pyadvt:`` models,
and to a callable whose signature has a ``num_classes`` parameter; :func:`check_model` then runs one
sample through the model and refuses, in one line naming the flag and the spec, a model that cannot
take the data's images or does not return ``[1, num_classes]`` logits.

Example:
    >>> parse_model_spec("r18=torchvision:resnet18,zero_init_residual=True:w.pt")
    ModelSpec(text='torchvision:resnet18,zero_init_residual=True:w.pt', name='r18', kind='torchvision', target='resnet18', attr=None, kwargs={'zero_init_residual': True}, weights='w.pt')
    >>> parse_model_spec("zoo.py:make_net").kind, parse_model_spec("pkg.zoo:make_net").kind
    ('file', 'module')
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pyadvt.utils.validation import InvalidValueError

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
HUBS = ("torchvision", "timm", "pyadvt")
FORMS = ("torchvision:NAME, timm:NAME, pyadvt:NAME, FILE.py:CALLABLE, MODULE:CALLABLE or a pyadvt checkpoint "
         "file, optionally with ,KEY=VALUE builder arguments and a :WEIGHTS.pt state dict")


class ModelSpecError(InvalidValueError):
    """A model spec that cannot be parsed or loaded (a ``ValueError``; the CLI prints it as one line)."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec (see the module docstring)."""

    text: str
    name: str
    kind: str              # "torchvision" | "timm" | "pyadvt" | "file" | "module" | "checkpoint"
    target: str            # hub model name, file path, module name or checkpoint path
    attr: str | None = None
    kwargs: dict = field(default_factory=dict)
    weights: str | None = None


def _literal(value: str) -> Any:
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _split_name(text: str) -> tuple[str | None, str]:
    head, sep, rest = text.partition("=")
    if sep and head and not any(c in head for c in ":/\\,.") and rest:
        return head, rest
    return None, text


def parse_model_spec(text: str, flag: str = "model") -> ModelSpec:
    """Parse ``[NAME=]MODEL[,KEY=VALUE...][:WEIGHTS]``; ``ModelSpecError`` naming ``flag`` if malformed."""
    if not isinstance(text, str) or not text.strip():
        raise ModelSpecError(f"{flag}: a model spec must be a non-empty string ({FORMS}), got {text!r}")
    text = text.strip()
    name, body = _split_name(text)
    weights = None
    head, sep, tail = body.rpartition(":")
    if sep and head and ":" in head and tail.lower().endswith(WEIGHT_SUFFIXES):
        body, weights = head, tail
    main, *pairs = body.split(",")
    kwargs = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ModelSpecError(f"{flag} {text!r}: builder arguments must look like ,KEY=VALUE (got {pair!r})")
        kwargs[key.strip()] = _literal(value.strip())
    prefix, colon, rest = main.partition(":")
    if colon and prefix in HUBS:
        if not rest or ":" in rest:
            raise ModelSpecError(f"{flag} {text!r}: expected {prefix}:NAME (one model name after the colon)")
        kind, target, attr = prefix, rest, None
    elif colon and len(prefix) == 1 and rest[:1] in ("\\", "/"):  # a Windows drive letter: a checkpoint path
        kind, target, attr = "checkpoint", main, None
    elif colon:
        module, _, attr = main.rpartition(":")
        if not module or not attr.isidentifier():
            raise ModelSpecError(f"{flag} {text!r}: expected FILE.py:CALLABLE or MODULE:CALLABLE ({FORMS})")
        kind, target = ("file" if module.endswith(".py") else "module"), module
    else:
        if kwargs:
            raise ModelSpecError(f"{flag} {text!r}: a checkpoint file takes no ,KEY=VALUE builder arguments")
        kind, target, attr = "checkpoint", main, None
    if kind == "checkpoint" and weights is not None:
        raise ModelSpecError(f"{flag} {text!r}: a checkpoint file holds its own weights; give :WEIGHTS after a "
                             "model (e.g. torchvision:resnet18:weights.pt)")
    return ModelSpec(text=body if weights is None else f"{body}:{weights}", name=name or text, kind=kind,
                     target=target, attr=attr, kwargs=kwargs, weights=weights)


def named_model_specs(items: Sequence[str] | None, flag: str) -> dict[str, str] | None:
    """``{name: spec}`` of repeated ``NAME=SPEC`` (or bare ``SPEC``) flag values; ``None`` when none given.

    A bare spec is named after itself (a checkpoint after its file stem); repeated names are refused.
    """
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        spec = parse_model_spec(item, flag)
        name = spec.name
        if spec.kind == "checkpoint" and name == item:
            name = os.path.splitext(os.path.basename(spec.target))[0] or item
        if name in out:
            raise ModelSpecError(f"{flag}: the name {name!r} is given twice; name them NAME=SPEC")
        out[name] = spec.text
    return out


def _import_file(path: str, flag: str, text: str):
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise ModelSpecError(f"{flag} {text!r}: no such file {path!r}")
    # a stable, unique module name per file, so two zoo.py files in different folders do not collide
    mod_name = "pyadvt_user_" + hashlib.sha1(full.encode()).hexdigest()[:12]
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    loader = importlib.util.spec_from_file_location(mod_name, full)
    module = importlib.util.module_from_spec(loader)
    folder = os.path.dirname(full)
    sys.path.insert(0, folder)      # the file may import its neighbours
    try:
        sys.modules[mod_name] = module
        loader.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise ModelSpecError(f"{flag} {text!r}: importing {path} failed: {type(exc).__name__}: {_first_line(exc)}") \
            from None
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def _import_module(name: str, flag: str, text: str):
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ModelSpecError(f"{flag}: cannot load model entry point {text!r}: cannot import module {name!r} ({exc}); "
                             "run from the folder that holds it or install it") from None
    except Exception as exc:
        raise ModelSpecError(f"{flag} {text!r}: importing {name} failed: {type(exc).__name__}: {_first_line(exc)}") \
            from None


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _call(obj, kwargs: dict, num_classes: int | None, flag: str, text: str) -> nn.Module:
    if isinstance(obj, nn.Module):
        if kwargs:
            raise ModelSpecError(f"{flag} {text!r}: ,KEY=VALUE arguments need a callable, but it names a module "
                                 "instance")
        return obj
    if not callable(obj):
        raise ModelSpecError(f"{flag}: model entry point {text!r} gave a {type(obj).__name__}, not a torch.nn.Module "
                             "(or a callable returning one)")
    kwargs = dict(kwargs)
    if num_classes is not None and "num_classes" not in kwargs:
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            params = {}
        if "num_classes" in params:
            kwargs["num_classes"] = num_classes
    try:
        model = obj(**kwargs)
    except Exception as exc:
        raise ModelSpecError(f"{flag} {text!r}: calling it failed: {type(exc).__name__}: {_first_line(exc)}") \
            from None
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{flag} {text!r}: the callable returned a {type(model).__name__}, not a "
                             "torch.nn.Module")
    return model


def _load_weights(model: nn.Module, path: str, flag: str, text: str) -> None:
    from pyadvt.models.hub import load_state_dict_file

    try:
        state = load_state_dict_file(path)
    except (ValueError, TypeError, ImportError) as exc:
        raise ModelSpecError(f"{flag} {text!r}: {exc}") from None
    # the file may hold the whole model's keys or those of the network inside a wrapper
    # (e.g. a torchvision net saved before Normalize was put in front of it)
    want = set(state)
    for prefix, module in model.named_modules():
        if set(module.state_dict()) == want:
            break
    else:
        module = model
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()][1:4]
        raise ModelSpecError(f"{flag} {text!r}: the weights in {path} do not fit the model: "
                             f"{' '.join(lines)[:400]}") from None


def load_model(spec: str | ModelSpec, *, num_classes: int | None = None,
               in_shape: Sequence[int] | torch.Tensor | None = None, device: str | torch.device = "cpu",
               flag: str = "model") -> nn.Module:
    """The ``nn.Module`` of a model spec, on ``device`` in eval mode.

    ``num_classes`` / ``in_shape`` describe the data (for the builders and ``pyadvt:`` models; with
    ``in_shape`` -- a shape ``(C, H, W)`` or a batch of the data -- the model is also checked on one
    image, see :func:`check_model`). Errors are
    :class:`ModelSpecError` (a ``ValueError``) or ``FileNotFoundError``, one line naming ``flag``.

    Example:
        >>> m = load_model("pyadvt:mlp", num_classes=3, in_shape=(1, 8, 8))
        >>> m(torch.rand(2, 1, 8, 8)).shape
        torch.Size([2, 3])
    """
    spec = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec, flag)
    text = spec.text
    kw = dict(spec.kwargs)
    if spec.kind in ("torchvision", "timm"):
        from pyadvt.models import from_timm, from_torchvision

        build = from_torchvision if spec.kind == "torchvision" else from_timm
        kw.setdefault("num_classes", num_classes)
        try:
            model = build(spec.target, weights=spec.weights, **kw)
        except (ValueError, TypeError, ImportError) as exc:
            raise ModelSpecError(f"{flag} {text!r}: {_first_line(exc)}") from None
    elif spec.kind == "pyadvt":
        from pyadvt.models import MODELS, build

        if spec.target not in MODELS:
            raise ModelSpecError(f"{flag} {text!r}: unknown pyadvt model {spec.target!r}; choose one of "
                                 f"{', '.join(sorted(MODELS))}")
        if num_classes is not None:
            kw.setdefault("num_classes", num_classes)
        if in_shape is not None:
            kw.setdefault("in_shape", tuple(in_shape.shape[1:] if isinstance(in_shape, torch.Tensor) else in_shape))
        try:
            model = build(spec.target, **kw)
        except (ValueError, TypeError) as exc:
            raise ModelSpecError(f"{flag} {text!r}: {_first_line(exc)}") from None
        if spec.weights:
            _load_weights(model, spec.weights, flag, text)
    elif spec.kind in ("file", "module"):
        module = (_import_file(spec.target, flag, text) if spec.kind == "file"
                  else _import_module(spec.target, flag, text))
        if not hasattr(module, spec.attr):
            raise ModelSpecError(f"{flag} {text!r}: {spec.target} has no attribute {spec.attr!r}")
        model = _call(getattr(module, spec.attr), kw, num_classes, flag, text)
        if spec.weights:
            _load_weights(model, spec.weights, flag, text)
    else:
        from pyadvt.train import load_checkpoint

        if not os.path.exists(spec.target):
            raise FileNotFoundError(f"{flag} {text!r}: model checkpoint not found (the file does not exist; or write "
                                    f"the model as {FORMS})")
        try:
            model, _ = load_checkpoint(spec.target, map_location="cpu")
        except ValueError as exc:
            raise ModelSpecError(f"{flag} {text!r}: {_first_line(exc)} (a plain state dict needs its model: "
                                 f"MODEL:{os.path.basename(spec.target)}, e.g. torchvision:resnet18:"
                                 f"{os.path.basename(spec.target)})") from None
    model = model.to(device).eval()
    if in_shape is not None:
        check_model(model, in_shape, num_classes, name=f"{flag} {text!r}", device=device)
    return model


def check_model(model: nn.Module, images: Sequence[int] | torch.Tensor, num_classes: int | None = None, *,
                name: str = "model", device: str | torch.device = "cpu") -> None:
    """Run one image through ``model`` (eval, no grad): the first of ``images`` (a batch of the data,
    the better check) or a zero image of shape ``images`` (``(C, H, W)``); ``ModelSpecError`` in one
    line naming ``name`` when it fails or does not return ``[1, num_classes]`` logits."""
    from pyadvt.utils.modes import evaluating

    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    if isinstance(images, torch.Tensor):
        x = images[:1].to(device=device, dtype=dtype)
    else:
        x = torch.zeros(1, *images, device=device, dtype=dtype)
    shape = ", ".join(map(str, x.shape))
    try:
        with evaluating(model), torch.no_grad():
            out = model(x)
    except Exception as exc:
        hint = ""
        wanted = re.search(r"to have (\d+) channels", str(exc))
        if wanted and int(wanted.group(1)) != x.shape[1]:
            hint = (f" (the model wants {wanted.group(1)}-channel images: convert them with --channels "
                    f"{wanted.group(1)} or pyadvt.data.adapt.adapt_images(x, channels={wanted.group(1)}))")
        raise ModelSpecError(f"{name} cannot run on the data's images [{shape}]: "
                             f"{type(exc).__name__}: {_first_line(exc)}{hint}") from None
    if not isinstance(out, torch.Tensor):
        raise ModelSpecError(f"{name} returns a {type(out).__name__}, not a logits tensor [B, C]")
    if out.dim() != 2 or (num_classes is not None and out.shape[1] != num_classes):
        want = f"[1, {num_classes}]" if num_classes is not None else "[1, C]"
        raise ModelSpecError(f"{name} maps an image [{shape}] to shape {list(out.shape)}, expected {want} logits"
                             + (" (pass num_classes=... or a head with that many outputs)" if num_classes else ""))


__all__ = ["FORMS", "ModelSpec", "ModelSpecError", "check_model", "load_model", "named_model_specs",
           "parse_model_spec"]
