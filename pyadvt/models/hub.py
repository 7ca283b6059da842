"""Models from the hubs: torchvision and timm classifiers as pyadvt split models on [0, 1] pixels.

``from_torchvision(name)`` / ``from_timm(name)`` build the hub's architecture (random init, or the
weights of a local state-dict file — nothing is downloaded) and return a
:class:`~pyadvt.models.WrappedModel`:

* inputs stay in pixel space ``[0, 1]`` (``docs/theory.md §0``): the hub's normalisation is a
  :class:`~pyadvt.models.Normalize` layer inside the model (``docs/theory.md §9``) — the mean/std of
  the hub's weight metadata (torchvision's ``Weights.transforms()``, timm's ``pretrained_cfg``) when
  ``weights`` is given, ImageNet's mean/std for a randomly initialised model; ``mean=``/``std=``
  override both;
* ``features(x) -> [B, d]`` is the input of the classifier's final ``nn.Linear`` (ResNet/RegNet
  ``fc``, ViT ``head`` / ``heads.head``, ConvNeXt ``classifier.2`` / ``head.fc``, EfficientNet and
  MobileNet ``classifier``, DenseNet ``classifier``, VGG ``classifier.6``; timm names it in
  ``pretrained_cfg["classifier"]``), ``head`` that layer;
* ``blocks`` are the modules holding parameters, input -> output
  (:func:`~pyadvt.models.wrap.default_blocks`), so ``finetune(blocks=1)`` trains the last residual /
  transformer block and the head.

torchvision and timm are optional (``pip install pyadvt[hub]``) and imported only when called.

Example:
    >>> m = from_torchvision("resnet18", num_classes=10)
    >>> x = torch.rand(2, 3, 32, 32)
    >>> m(x).shape, m.features(x).shape, m.blocks[-1] is m.body.layer4[1]
    (torch.Size([2, 10]), torch.Size([2, 512]), True)
"""

from __future__ import annotations

import difflib
import importlib
import os
import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from pyadvt.models.normalize import Normalize
from pyadvt.models.wrap import WrappedModel, wrap
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "from_timm", "from_torchvision", "load_state_dict_file"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _import(package: str):
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ImportError(f"{package} is not installed: pip install {package} (or pip install 'pyadvt[hub]')") \
            from None


def _unknown(name: str, known: Sequence[str], hub: str) -> InvalidValueError:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return InvalidValueError(f"'name': {hub} has no classification model {name!r}{hint}")


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A plain state dict from a local file, loaded with ``weights_only=True`` (no code runs).

    Accepts a ``.pt``/``.pth``/``.bin`` file holding the state dict itself or a dict with it under
    ``"state_dict"``, ``"model"`` or ``"model_state_dict"`` (pyadvt checkpoints, most training
    scripts), and ``.safetensors`` files (needs the ``safetensors`` package). A ``"module."``
    prefix (DataParallel / DDP) is stripped. The hub builders also take the ``state_dict()`` of a
    pyadvt hub model itself (its normalisation and a replaced head come back too).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"'weights' must be the path of a local state-dict file, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidValueError(f"'weights': no such file {path!r}; pyadvt downloads nothing: save the weights "
                                "to a local file first, e.g. torch.save(torchvision.models.get_model_weights(name)"
                                ".DEFAULT.get_state_dict(), 'w.pth') where there is internet")
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ImportError("reading .safetensors needs the safetensors package: pip install safetensors") \
                from None
        state = load_file(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a pickle that is not plain tensors, a truncated file, ...
            raise InvalidValueError(f"'weights': {path!r} is not a plain state dict loadable with "
                                    f"weights_only=True ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InvalidValueError(f"'weights': {path!r} does not hold a state dict (a mapping of names to tensors)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _split_saved(state: dict[str, torch.Tensor] | None) -> tuple[dict | None, dict]:
    """A pyadvt hub model's own ``state_dict`` (``normalize.*``, ``body.*``, ``head.*``) -> the hub
    network's state and the wrapper's extras; any other state dict is the network's."""
    if state is None or "normalize.mean" not in state or not any(k.startswith("body.") for k in state):
        return state, {}
    body = {k[len("body."):]: v for k, v in state.items() if k.startswith("body.")}
    return body, {k: v for k, v in state.items() if not k.startswith("body.")}


def _classes_in(state: Mapping[str, torch.Tensor], head: str) -> int | None:
    w = state.get(f"{head}.weight")
    return int(w.shape[0]) if isinstance(w, torch.Tensor) and w.dim() == 2 else None


def _load(model: nn.Module, state: Mapping[str, torch.Tensor], path, name: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()][1:4]
        raise InvalidValueError(f"'weights': {os.fspath(path)!r} does not fit {name}: {' '.join(lines)[:400]}; "
                                "check the architecture name and num_classes") from None


def _normalize(mean, std, hub_mean, hub_std) -> Normalize:
    return Normalize(hub_mean if mean is None else mean, hub_std if std is None else std)


def _finish(model: nn.Module, head: str, label: str, mean, std, hub_mean, hub_std, extra: dict) -> WrappedModel:
    """Wrap ``model``; ``extra`` (from a saved pyadvt hub model) restores its normalisation and a
    replaced head (e.g. after :func:`pyadvt.transfer.finetune`)."""
    if "normalize.mean" in extra and "normalize.std" in extra:
        hub_mean, hub_std = extra["normalize.mean"].flatten().tolist(), extra["normalize.std"].flatten().tolist()
    wrapped = wrap(model, head=head, normalize=_normalize(mean, std, hub_mean, hub_std))
    w, b = extra.get("head.weight"), extra.get("head.bias")
    if isinstance(w, torch.Tensor) and w.dim() == 2:
        old = wrapped.head
        if w.shape != old.weight.shape or not torch.equal(w, old.weight.detach()):
            if w.shape[1] != old.in_features:
                raise InvalidValueError(f"'weights': the saved head takes {w.shape[1]} features but {label} "
                                        f"gives {old.in_features}")
            new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
            with torch.no_grad():
                new.weight.copy_(w)
                if b is not None:
                    new.bias.copy_(b)
            wrapped.head = new.to(device=old.weight.device, dtype=old.weight.dtype)
    wrapped.hub_name = label
    return wrapped


def _check_classes(num_classes) -> None:
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise InvalidValueError(f"'num_classes' must be a positive int or None, got {num_classes!r}")


@keyword_only("weights")
def from_torchvision(name: str, num_classes: int | None = None, *, weights: str | os.PathLike | None = None,
                     mean: float | Sequence[float] | None = None, std: float | Sequence[float] | None = None,
                     **kwargs) -> WrappedModel:
    """A torchvision classifier (``torchvision.models.get_model(name)``) on [0, 1] pixels.

    Args:
        name: a torchvision classification model (``torchvision.models.list_models(torchvision.models)``),
            e.g. ``"resnet18"``, ``"mobilenet_v3_small"``, ``"vit_b_16"``.
        num_classes: logits of the head; default 1000, or the head's width in ``weights``.
        weights: path of a local state-dict file (``torch.save(model.state_dict(), path)``; see
            :func:`load_state_dict_file`); default random init. Nothing is downloaded.
        mean, std: override the normalisation (default: the hub's for ``weights``, else ImageNet's).
        kwargs: passed to the model builder (e.g. ``dropout=0.0``).

    Returns a :class:`~pyadvt.models.WrappedModel` (``features``, ``head``, ``blocks``); the
    torchvision module is ``.body``.

    Raises:
        InvalidTypeError: ``name`` is not a string.
        InvalidValueError: ``name`` is not a torchvision classification model, or ``weights`` /
            ``mean`` / ``std`` / ``in_chans`` do not fit it.
        ImportError: torchvision is not installed.

    Example:
        >>> m = from_torchvision("mobilenet_v3_small", num_classes=4)
        >>> m.head is m.body.classifier[3], m.feature_dim
        (True, 1024)
    """
    tv = _import("torchvision")
    _check_classes(num_classes)
    if not isinstance(name, str):
        raise InvalidTypeError(f"'name' must be a str, got {type(name).__name__}")
    known = tv.models.list_models(module=tv.models)
    if name not in known:
        raise _unknown(name, known, "torchvision")
    state, extra = _split_saved(load_state_dict_file(weights) if weights is not None else None)
    model = tv.models.get_model(name, weights=None, **({"num_classes": num_classes} if num_classes else {}), **kwargs)
    head = _torchvision_head(model, name)
    if state is not None and num_classes is None:
        found = _classes_in(state, head)
        if found is not None and found != model.get_submodule(head).out_features:
            model = tv.models.get_model(name, weights=None, num_classes=found, **kwargs)
    hub_mean, hub_std = IMAGENET_MEAN, IMAGENET_STD
    if state is not None:
        _load(model, state, weights, f"torchvision {name}")
        hub_mean, hub_std = _torchvision_mean_std(tv, name)
    return _finish(model, head, f"torchvision:{name}", mean, std, hub_mean, hub_std, extra)


def _torchvision_head(model: nn.Module, name: str) -> str:
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n]
    if not linears:
        raise InvalidValueError(f"torchvision {name} has no final nn.Linear classifier; use pyadvt.models.wrap "
                                "with an explicit 'head'")
    # the classifier attribute decides (GoogLeNet / Inception register auxiliary classifiers too)
    for attr in ("fc", "heads", "head", "classifier"):
        inside = [n for n in linears if n == attr or n.startswith(attr + ".")]
        if inside:
            return inside[-1]
    return linears[-1]


def _torchvision_mean_std(tv, name: str) -> tuple[Sequence[float], Sequence[float]]:
    try:
        meta = tv.models.get_model_weights(name).DEFAULT.transforms()
        return tuple(meta.mean), tuple(meta.std)
    except (AttributeError, ValueError, TypeError, KeyError):
        return IMAGENET_MEAN, IMAGENET_STD


@keyword_only("weights")
def from_timm(name: str, num_classes: int | None = None, *, weights: str | os.PathLike | None = None,
              mean: float | Sequence[float] | None = None, std: float | Sequence[float] | None = None,
              **kwargs) -> WrappedModel:
    """A timm classifier (``timm.create_model(name, pretrained=False)``) on [0, 1] pixels.

    Args:
        name: a timm model name (``timm.list_models()``), e.g. ``"resnet18"``, ``"vit_tiny_patch16_224"``.
        num_classes: logits of the head; default the model's (1000), or the head's width in ``weights``.
        weights: path of a local state-dict file (:func:`load_state_dict_file`; timm's ``.safetensors``
            too); default random init. Nothing is downloaded.
        mean, std: override the normalisation (default: ``pretrained_cfg`` mean/std for ``weights``,
            else ImageNet's).
        kwargs: passed to ``timm.create_model`` (e.g. ``img_size=32`` for a ViT on 32x32 inputs).

    Raises:
        InvalidTypeError: ``name`` is not a string.
        InvalidValueError: ``name`` is not a timm model, or ``weights`` / ``mean`` / ``std`` do not fit it.
        ImportError: timm is not installed.

    Example:
        >>> m = from_timm("vit_tiny_patch16_224", num_classes=10, img_size=32)
        >>> m(torch.rand(2, 3, 32, 32)).shape, m.block_names[-1]
        (torch.Size([2, 10]), ('blocks.11', 'norm'))
    """
    timm = _import("timm")
    _check_classes(num_classes)
    if not isinstance(name, str):
        raise InvalidTypeError(f"'name' must be a str, got {type(name).__name__}")
    if not timm.is_model(name):
        raise _unknown(name, timm.list_models(), "timm")
    state, extra = _split_saved(load_state_dict_file(weights) if weights is not None else None)
    if kwargs.pop("pretrained", False):
        raise InvalidValueError("'pretrained=True' would download weights: pass a local file as 'weights'")
    extra = {"num_classes": num_classes} if num_classes else {}
    model = timm.create_model(name, pretrained=False, **extra, **kwargs)
    head = _timm_head(model, name)
    if state is not None and num_classes is None:
        found = _classes_in(state, head)
        if found is not None and found != model.get_submodule(head).out_features:
            model = timm.create_model(name, pretrained=False, num_classes=found, **kwargs)
            head = _timm_head(model, name)
    if isinstance(getattr(model, "head_dist", None), nn.Module):
        warnings.warn(f"timm {name} averages its head with a distillation head (head_dist); the pyadvt model's "
                      "logits are head(features) only, so they differ from the timm model's", UserWarning,
                      stacklevel=2)
    hub_mean, hub_std = IMAGENET_MEAN, IMAGENET_STD
    if state is not None:
        _load(model, state, weights, f"timm {name}")
        cfg = getattr(model, "pretrained_cfg", None) or {}
        hub_mean, hub_std = cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD)
    return _finish(model, head, f"timm:{name}", mean, std, hub_mean, hub_std, extra)


def _timm_head(model: nn.Module, name: str) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    heads = cfg.get("classifier")
    for cand in ([heads] if isinstance(heads, str) else list(heads or [])):
        try:
            if isinstance(model.get_submodule(cand), nn.Linear):
                return cand
        except AttributeError:
            pass
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n]
    if not linears:
        raise InvalidValueError(f"timm {name} has no nn.Linear classifier head (num_classes=0, or a conv "
                                "head); use pyadvt.models.wrap with an explicit 'head'")
    return linears[-1]
