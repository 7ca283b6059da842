"""Small framework-level helpers used across pyadvt (no imports from other pyadvt packages).

Imported lazily, so that light modules (:mod:`pyadvt.utils.errors`, :mod:`pyadvt.utils.io`,
:mod:`pyadvt.utils.stats`) load without torch.
"""

import importlib

_LAZY = {
    "evaluating": "pyadvt.utils.modes",
    "per_sample_generators": "pyadvt.utils.rng",
    "per_sample_rand": "pyadvt.utils.rng",
    "sample_seeds": "pyadvt.utils.rng",
}

__all__ = ["evaluating", "per_sample_generators", "per_sample_rand", "sample_seeds"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'pyadvt.utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
