"""pyadvt: measure and exploit adversarial transferability between PyTorch models.

Subpackages are imported lazily (``pyadvt.attacks``, ``pyadvt.metrics`` ...), so
``import pyadvt`` stays cheap. ``pyadvt.build_info()`` says which kernels were compiled.

Example:
    >>> import pyadvt
    >>> "torch" in pyadvt.build_info()
    True
"""

from __future__ import annotations

import importlib

from pyadvt._ext import build_info

__version__ = "0.1.0"
__all__ = ["build_info", "__version__"]

_SUBPACKAGES = {
    "attacks", "bounds", "cli", "data", "experiments", "metrics", "models", "ops", "report",
    "selection", "theory", "train", "transfer",
}


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"pyadvt.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'pyadvt' has no attribute {name!r}")
