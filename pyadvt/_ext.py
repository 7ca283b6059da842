"""Loading of the compiled extension ``pyadvt._C`` and the fall-back policy.

If ``_C`` cannot be loaded (not built, ABI mismatch ...), pyadvt still imports and every op
runs its pure-PyTorch reference; the first such call warns once, saying why.
"""

from __future__ import annotations

import functools
import platform
import warnings

import torch

_C = None
_LOAD_ERROR: str | None = None
try:  # pragma: no branch - exercised in both states by tests/test_build.py
    from pyadvt import _C  # type: ignore[attr-defined, no-redef]  # noqa: F401
except Exception as exc:  # ImportError, OSError (undefined symbol), RuntimeError
    _C = None
    _LOAD_ERROR = f"{type(exc).__name__}: {exc}"

_warned = False


def extension_loaded() -> bool:
    """True when ``pyadvt._C`` was imported and its ops are registered."""
    return _C is not None


def compiled_backends() -> tuple[str, ...]:
    """Backends the extension was compiled with, e.g. ``("cpu", "cuda")``; empty when absent."""
    if _C is None:
        return ()
    return tuple(b for b in _C.compiled_backends().split(",") if b)


_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}


_KERNEL_CACHE: dict[tuple[str, str], bool] = {}


@torch.compiler.assume_constant_result
def kernel_available(op: str, device_type: str) -> bool:
    """Whether ``torch.ops.pyadvt.<op>`` has a compiled kernel for ``device_type`` ("cpu"/"cuda").

    When False the op's pure-PyTorch reference runs instead. Constant under ``torch.compile``.
    """
    cached = _KERNEL_CACHE.get((op, device_type))
    if cached is None:
        key = _DISPATCH_KEYS.get(device_type)
        try:
            cached = _C is not None and key is not None and bool(
                torch._C._dispatch_has_kernel_for_dispatch_key(f"pyadvt::{op}", key))
        except RuntimeError:  # operator not registered at all
            cached = False
        _KERNEL_CACHE[(op, device_type)] = cached
    return cached


def warn_fallback(op: str) -> None:
    """Warn once per process that ``op`` (and every other op) runs the pure-PyTorch reference."""
    global _warned
    if _warned:
        return
    _warned = True
    why = _LOAD_ERROR or "no kernel compiled for this device"
    warnings.warn(
        f"pyadvt: compiled kernels unavailable ({why}); '{op}' and other ops fall back to the "
        "pure-PyTorch reference (slower, same results). Rebuild with "
        "`pip install --no-build-isolation -e .` to get the kernels.",
        RuntimeWarning,
        stacklevel=3,
    )


@functools.lru_cache(maxsize=1)
def build_info() -> dict:
    """Describe the build: versions, compiled kernels, compiler and flags.

    Returns:
        dict with keys ``pyadvt``, ``torch``, ``torch_cuda``, ``python``, ``extension_loaded``,
        ``load_error``, ``kernels`` (e.g. ``["cpu", "cuda"]``), ``compiler``, ``cxx_flags``,
        ``cuda_arch``, ``ops`` (names registered under ``torch.ops.pyadvt``) and
        ``cuda_available`` (a GPU is visible now).

    Example:
        >>> info = build_info()
        >>> set(info["kernels"]) <= {"cpu", "cuda"}
        True
    """
    from pyadvt import __version__

    info = {
        "pyadvt": __version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": platform.python_version(),
        "extension_loaded": _C is not None,
        "load_error": _LOAD_ERROR,
        "kernels": list(compiled_backends()),
        "compiler": _C.compiler() if _C is not None else None,
        "cxx_flags": _C.build_flags() if _C is not None else None,
        "cuda_arch": (_C.cuda_arch() or None) if _C is not None else None,
        "built_against_torch": _C.torch_version() if _C is not None else None,
        "ops": sorted(_registered_ops()),
        "cuda_available": torch.cuda.is_available(),
    }
    return info


def _registered_ops() -> list[str]:
    if _C is None:
        return []
    # every schema of the pyadvt namespace (ops.cpp and the TORCH_LIBRARY_FRAGMENTs of other families)
    names = sorted({n.split("::", 1)[1].split(".", 1)[0]
                    for n in torch._C._dispatch_get_all_op_names() if n.startswith("pyadvt::")})
    return [f"{n}[{','.join(d for d in _DISPATCH_KEYS if kernel_available(n, d))}]" for n in names]
