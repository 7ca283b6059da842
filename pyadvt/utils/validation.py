"""Input validation shared by every public pyadvt function (the bad-input contract).

A bad argument is refused *before* the work starts with an error that names the argument, says what
was wrong and what to do. The errors subclass both :class:`UserError` (the CLI prints them as one line
and exits with status 2) and :class:`ValueError` / :class:`TypeError`, so ``except ValueError`` in
user code keeps working.

Samples that are well-formed but whose value is undefined (a NaN pixel in an adversarial batch, a
model whose logits are non-finite) are not errors: the metrics flag them invalid, count them, warn
once and skip them in every mean (``docs/theory.md §0``; see ``docs/reliability.md``).

The checks are designed to be cheap: one ``aminmax`` reduction (and one host sync) decides the range
and finiteness of an image batch, so they cost well under 2 % of a PGD-10 call
(``benchmarks/bench_validation.py``).

Example:
    >>> import torch
    >>> check_images(torch.rand(2, 3, 4, 4))
    >>> try:
    ...     check_images(torch.full((2, 3), 5.0), "x_adv")
    ... except ValueError as e:
    ...     print(str(e).split(";")[0])
    'x_adv' must lie in [0, 1] (pixel space), got values in [5, 5]
"""

from __future__ import annotations

import numbers
import warnings

import torch
from torch import nn

# the error classes live in a module that imports nothing (the CLI and light modules use them)
from pyadvt.utils.errors import InvalidTypeError, InvalidValueError, UserError

__all__ = [
    "UserError", "InvalidValueError", "InvalidTypeError",
    "check_tensor", "check_images", "check_like", "check_labels", "check_batch_size",
    "check_model_input", "check_logits", "finite_rows", "warn_invalid", "check_count", "check_device",
    "check_output_dir", "check_inputs",
]


def check_tensor(t, name: str) -> torch.Tensor:
    """``t`` must be a tensor."""
    if not isinstance(t, torch.Tensor):
        raise InvalidTypeError(f"'{name}' must be a torch.Tensor, got {type(t).__name__}")
    return t


def _batch(t, name: str, *, allow_empty: bool, min_dim: int) -> torch.Tensor:
    check_tensor(t, name)
    if t.dim() < min_dim:
        raise InvalidValueError(f"'{name}' must be a batch [B, *in_shape] with at least {min_dim} dimensions, "
                                f"got shape {tuple(t.shape)}")
    if not allow_empty and t.numel() == 0:
        raise InvalidValueError(f"'{name}' is empty (shape {tuple(t.shape)}); pass at least one sample")
    return t


def check_images(x, name: str = "x", *, lo: float = 0.0, hi: float = 1.0, allow_nonfinite: bool = False,
                 allow_empty: bool = False, min_dim: int = 2) -> torch.Tensor | None:
    """``x`` must be a non-empty floating-point batch ``[B, ...]`` with values in ``[lo, hi]``.

    With ``allow_nonfinite=True`` NaN/Inf entries are accepted and the ``[B]`` bool mask of samples
    whose entries are all finite is returned (the caller flags the others invalid); finite values
    outside ``[lo, hi]`` are always refused. Otherwise returns ``None``.
    """
    _batch(x, name, allow_empty=allow_empty, min_dim=min_dim)
    if not x.is_floating_point():
        raise InvalidTypeError(f"'{name}' must be a floating-point tensor with values in [{lo:g}, {hi:g}], got "
                               f"{x.dtype}; convert uint8 images with x.float() / 255")
    if x.numel() == 0:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device) if allow_nonfinite else None
    if torch.compiler.is_compiling():
        return None
    mn, mx = torch.aminmax(x.detach())
    mn, mx = float(mn), float(mx)
    if mn >= lo and mx <= hi:  # NaN fails both comparisons; +-Inf fails one
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device) if allow_nonfinite else None
    finite = torch.isfinite(x.detach())
    if not allow_nonfinite and not bool(finite.all()):
        n_bad = int((~finite.reshape(x.shape[0], -1).all(dim=1)).sum())
        raise InvalidValueError(f"'{name}' contains NaN or infinite values ({n_bad} of {x.shape[0]} samples); "
                                "pass finite inputs")
    vals = x.detach()[finite]
    if vals.numel():
        fmn, fmx = float(vals.min()), float(vals.max())
        if fmn < lo or fmx > hi:
            raise InvalidValueError(f"'{name}' must lie in [{lo:g}, {hi:g}] (pixel space), got values in "
                                    f"[{fmn:.4g}, {fmx:.4g}]; put any normalisation inside the model "
                                    "(a Normalize layer) and clamp the inputs")
    return finite.reshape(x.shape[0], -1).all(dim=1)


def check_like(t, ref: torch.Tensor, name: str, ref_name: str) -> torch.Tensor:
    """``t`` must be a tensor with the shape and device of ``ref``."""
    check_tensor(t, name)
    if tuple(t.shape) != tuple(ref.shape):
        raise InvalidValueError(f"'{name}' must have the shape of '{ref_name}' {tuple(ref.shape)}, "
                                f"got {tuple(t.shape)}")
    if t.device != ref.device:
        raise InvalidValueError(f"'{name}' is on {t.device} but '{ref_name}' is on {ref.device}; "
                                "move them to one device")
    return t


def check_labels(y, n: int | None = None, name: str = "y", *, num_classes: int | None = None,
                 device: torch.device | None = None) -> torch.Tensor:
    """``y`` must be an integer tensor ``[n]`` (not bool, not float) with values in ``[0, num_classes)``."""
    if not isinstance(y, torch.Tensor):
        raise InvalidTypeError(f"'{name}' must be a torch.Tensor of int64 class labels, got {type(y).__name__}")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise InvalidTypeError(f"'{name}' must hold integer class labels (int64), got {y.dtype}; "
                               "convert with .long() if the values are whole numbers")
    if y.dim() != 1 or (n is not None and y.shape[0] != n):
        want = f"[{n}]" if n is not None else "[N]"
        raise InvalidValueError(f"'{name}' must have shape {want} (one label per sample), got {tuple(y.shape)}")
    if device is not None and y.device != torch.device(device):
        raise InvalidValueError(f"'{name}' is on {y.device} but the inputs are on {device}; move them to one device")
    if y.numel() and not torch.compiler.is_compiling():
        mn, mx = torch.aminmax(y)
        mn, mx = int(mn), int(mx)
        if mn < 0 or (num_classes is not None and mx >= num_classes):
            bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise InvalidValueError(f"'{name}' must hold labels in {bound}"
                                    + (f" for a model with {num_classes} classes" if num_classes is not None else "")
                                    + f", got values in [{mn}, {mx}]")
    return y


def check_batch_size(batch_size, name: str = "batch_size") -> int:
    """``batch_size`` must be an int >= 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise InvalidTypeError(f"'{name}' must be a positive int, got {batch_size!r}")
    if batch_size < 1:
        raise InvalidValueError(f"'{name}' must be >= 1, got {batch_size}")
    return int(batch_size)


def _model_tensor(model) -> torch.Tensor | None:
    if not isinstance(model, nn.Module):
        return None
    for t in model.parameters():
        if t.is_floating_point():
            return t
    for t in model.buffers():
        if t.is_floating_point():
            return t
    return None


_HALF = (torch.float16, torch.bfloat16)


def check_model_input(model, x: torch.Tensor, name: str = "x", model_name: str = "model", *,
                      check_device: bool = True, allow_half: bool = False) -> None:
    """``x`` must have the model's floating dtype (a float64 batch into a float32 model fails deep
    inside conv2d otherwise) and, with ``check_device``, be on the model's device. ``allow_half``
    accepts a half-precision model or input (for callers that compute in float32 copies)."""
    if not callable(model):
        raise InvalidTypeError(f"'{model_name}' must be an nn.Module or a callable, got {type(model).__name__}")
    p = _model_tensor(model)
    if p is None:
        return
    if check_device and x.device != p.device:
        raise InvalidValueError(f"'{name}' is on {x.device} but '{model_name}' is on {p.device}; "
                                f"move them to one device (e.g. {name}.to({str(p.device)!r}))")
    if x.dtype != p.dtype and not (allow_half and (x.dtype in _HALF or p.dtype in _HALF)):
        conv = {torch.float32: ".float()", torch.float64: ".double()", torch.float16: ".half()",
                torch.bfloat16: ".bfloat16()"}.get(p.dtype, f".to({p.dtype})")
        raise InvalidTypeError(f"'{name}' has dtype {x.dtype} but '{model_name}' has {p.dtype} parameters; "
                               f"convert the inputs ({name}{conv}) or the model")


def check_logits(out, name: str = "model") -> torch.Tensor:
    """A model output must be logits ``[B, C]``."""
    if not isinstance(out, torch.Tensor):
        raise InvalidTypeError(f"'{name}' must return a logits tensor [B, C], got {type(out).__name__}; "
                               "wrap it so it returns the logits")
    if out.dim() != 2 or out.shape[1] == 0:
        raise InvalidValueError(f"'{name}' must return logits [B, C], got shape {tuple(out.shape)}")
    return out


def finite_rows(t: torch.Tensor) -> torch.Tensor:
    """``[B]`` bool: rows of ``t`` whose entries are all finite."""
    if t.numel() == 0:
        return torch.ones(t.shape[0], dtype=torch.bool, device=t.device)
    return torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)


def warn_invalid(n_invalid: int, n_total: int, what: str, why: str = "non-finite inputs or outputs") -> None:
    """One warning that ``n_invalid`` of ``n_total`` samples were flagged invalid and skipped."""
    if n_invalid:
        warnings.warn(f"{what}: {n_invalid} of {n_total} samples are invalid ({why}); they are flagged, "
                      "counted and excluded from the means", RuntimeWarning, stacklevel=3)


def check_count(value, name: str, minimum: int = 1) -> int:
    """``value`` must be an int (not bool) >= ``minimum``; ``name`` is how the user spelled it
    (``'n_eval'``, ``config surrogates.n_eval``, ``--steps``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise InvalidValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_device(name, argument: str = "--device", *, allow_auto: bool = True) -> torch.device:
    """Parse a device string the user gave: unknown names and CUDA devices that are not visible are
    refused naming ``argument``. ``"auto"`` (when allowed) is CUDA when available, else CPU."""
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str):
        raise InvalidTypeError(f"{argument} must be a device name such as cpu or cuda:0, got {name!r}")
    if allow_auto and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InvalidValueError(f"{argument}: unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise InvalidValueError(f"{argument}: device {name!r} is not supported; use cpu, cuda or cuda:N")
    if device.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise InvalidValueError(f"{argument} {name}: no CUDA GPU is visible (torch.cuda.is_available() is False); use cpu")
        if device.index is not None and device.index >= n:
            raise InvalidValueError(f"{argument} {name}: only {n} CUDA device(s) are visible (cuda:0..cuda:{n - 1})")
    return device


def check_output_dir(path, argument: str = "--out"):
    """``path`` must be a directory that exists or can be created, and be writable (a file is probed).

    Returns the ``pathlib.Path``."""
    import os
    import tempfile
    from pathlib import Path

    if path is None or (isinstance(path, str) and not path.strip()):
        raise InvalidValueError(f"{argument} must name a directory, got {path!r}")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InvalidValueError(f"{argument} {out}: is a file, not a directory; pass a directory (it is created "
                                "if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".pyadvt-write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidValueError(f"{argument} {out}: not a writable directory ({exc.strerror or exc}); "
                                "pass a directory you can write to") from None
    return out


def check_inputs(x, y=None, *, models: dict | None = None, batch_size=None, label_range: bool = False,
                 allow_nonfinite: bool = True) -> torch.Tensor | None:
    """The common up-front checks of a metric ``f(models, x[, y])``, in one call.

    ``x`` a non-empty floating batch in [0, 1] (NaN/Inf rows allowed and returned as the ``[N]``
    valid mask when ``allow_nonfinite``: the metric flags them undefined); ``y`` integer labels ``[N]``,
    with ``label_range`` in ``[0, C)`` for every model's output width ``C`` (one probe forward of one
    sample each); ``batch_size`` an int >= 1; ``x``'s dtype that of each model in ``models``
    (``{"source": S, "target": T}``; half precision is allowed, the metrics compute it in float32).
    A non-tensor ``x`` (a ``Dataset`` / ``DataLoader``) is left to the per-batch checks.
    """
    if batch_size is not None:
        check_batch_size(batch_size)
    if not isinstance(x, torch.Tensor):
        return None
    valid = check_images(x, "x", allow_nonfinite=allow_nonfinite)
    models = models or {}
    for name, m in models.items():
        check_model_input(m, x, "x", name, check_device=False, allow_half=True)
    if y is not None:
        check_labels(y, x.shape[0], "y")
        if label_range:
            for name, m in models.items():
                check_labels(y, x.shape[0], "y", num_classes=_output_width(m, x, name))
    return valid


def _output_width(model, x: torch.Tensor, name: str) -> int:
    """``C`` of ``model(x[:1])`` (the logits contract of :mod:`pyadvt.models.output`)."""
    from pyadvt.models.output import model_logits
    from pyadvt.utils.modes import evaluating, model_device

    probe = torch.nan_to_num(x[:1].detach(), nan=0.0, posinf=1.0, neginf=0.0)
    if isinstance(model, nn.Module):
        probe = probe.to(model_device(model))
        p = _model_tensor(model)
        if p is not None and p.dtype in _HALF:
            probe = probe.to(p.dtype)
    with torch.no_grad(), evaluating(model if isinstance(model, nn.Module) else []):
        out = model_logits(model(probe), name=name)
    if out.dim() != 2:
        raise InvalidValueError(f"'{name}' must return logits [B, C], got shape {tuple(out.shape)}")
    return int(out.shape[1])
