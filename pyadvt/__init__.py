"""pyadvt: measure and exploit adversarial transferability between PyTorch models.

``import pyadvt`` is cheap: it imports no subpackage (not even torch). Subpackages
(``pyadvt.attacks``, ``pyadvt.metrics`` ...) and the main entry points below are imported on first
use, through the module ``__getattr__`` (PEP 562):

* attacks: ``pyadvt.PGD``, ``FGSM``, ``MIFGSM``, ``build_attack``;
* metrics: ``pyadvt.tau1``, ``tau2``, ``adversarial_transferability``, ``smoothness``,
  ``gradient_similarity``, ``attack_transferability``, ``empirical_transferability``;
* selection: ``pyadvt.rank_sources``, ``rank_surrogates``, ``agreement``;
* models and data: ``pyadvt.from_torchvision``, ``from_timm``, ``build``, ``load_dataset``,
  ``TensorData``; training: ``fit``, ``evaluate``, ``save_checkpoint``, ``load_checkpoint``;
* ``pyadvt.build_info()`` says which kernels were compiled.

Example:
    >>> import pyadvt
    >>> "torch" in pyadvt.build_info()
    True
    >>> pyadvt.PGD is pyadvt.attacks.PGD
    True
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first access)
_ENTRY_POINTS = {
    "build_info": "pyadvt._ext",
    "PGD": "pyadvt.attacks.pgd",
    "FGSM": "pyadvt.attacks.fgsm",
    "MIFGSM": "pyadvt.attacks.mifgsm",
    "build_attack": "pyadvt.attacks.registry",
    "tau1": "pyadvt.metrics.spectral",
    "tau2": "pyadvt.metrics.tau2",
    "adversarial_transferability": "pyadvt.metrics.tau2",
    "smoothness": "pyadvt.metrics.smoothness",
    "gradient_similarity": "pyadvt.metrics.similarity",
    "attack_transferability": "pyadvt.metrics.transfer_rates",
    "empirical_transferability": "pyadvt.metrics.empirical_transfer",
    "rank_sources": "pyadvt.selection.ranking",
    "rank_surrogates": "pyadvt.selection.ranking",
    "agreement": "pyadvt.selection.agreement",
    "from_torchvision": "pyadvt.models.hub",
    "from_timm": "pyadvt.models.hub",
    "build": "pyadvt.models.registry",
    "load_dataset": "pyadvt.data.load",
    "TensorData": "pyadvt.data.tensor_data",
    "fit": "pyadvt.train.fit",
    "evaluate": "pyadvt.train.fit",
    "save_checkpoint": "pyadvt.train.checkpoint",
    "load_checkpoint": "pyadvt.train.checkpoint",
}

_SUBPACKAGES = {
    "attacks", "bounds", "cli", "data", "experiments", "metrics", "models", "ops", "report",
    "selection", "theory", "train", "transfer", "utils",
}

__all__ = ["__version__", *_ENTRY_POINTS]

#: former entry points -> their new names (each access warns; removed in the next release)
_RENAMED = {"transferability": "attack_transferability"}


def __getattr__(name: str):
    if name in _ENTRY_POINTS:
        value = getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"pyadvt.{name}")
    elif name in _RENAMED:
        import warnings

        with warnings.catch_warnings():  # one warning, naming the top-level name
            warnings.simplefilter("ignore", DeprecationWarning)
            value = getattr(importlib.import_module(_ENTRY_POINTS[_RENAMED[name]]), name)
        warnings.warn(f"pyadvt.{name} is deprecated and will be removed in the next release; use "
                      f"'pyadvt.{_RENAMED[name]}'", DeprecationWarning, stacklevel=2)
        return value  # not cached: each access warns
    else:
        raise AttributeError(f"module 'pyadvt' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ENTRY_POINTS) | _SUBPACKAGES)
