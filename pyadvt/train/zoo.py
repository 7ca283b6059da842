"""``ModelSpec`` and ``train_or_load``: one way to say how a model was trained, and a cache of trained models.

A :class:`ModelSpec` names everything that decides a model's weights: the architecture and its
keyword arguments (:func:`pyadvt.models.build`), the training recipe and its knobs
(:func:`pyadvt.train.training_recipe`), the :func:`pyadvt.train.fit` settings and the seed. Together with
a digest of the training data it gives :meth:`ModelSpec.key`, the cell key under which
:func:`train_or_load` stores the trained weights in a :class:`~pyadvt.utils.sweep.CellStore`: a rerun
loads every model whose spec and data did not change and trains only the others (docs/theory.md §4).

Example:
    >>> import tempfile
    >>> from pyadvt.data import digits
    >>> from pyadvt.utils.sweep import CellStore
    >>> train, _ = digits()
    >>> spec = ModelSpec("mlp", {"hidden": [32]}, fit_kwargs={"epochs": 1}, seed=3)
    >>> store = CellStore(tempfile.mkdtemp())
    >>> model, info = train_or_load(spec, train, store)
    >>> info["trained"], train_or_load(spec, train, store)[1]["trained"]
    (True, False)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from pyadvt.data import TensorData
from pyadvt.models import MODELS, build
from pyadvt.train.fit import evaluate, fit
from pyadvt.train.recipes import METHODS, training_recipe
from pyadvt.utils.sweep import CellStore, config_digest, to_jsonable
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

__all__ = ["ModelSpec", "data_digest", "train_or_load"]

_FIT_OWN = ("seed", "progress", "loss_fn", "batch_transform", "optimizer", "checkpoint", "eval_data", "on_step")


@dataclass(frozen=True)
class ModelSpec:
    """How one model is built and trained.

    Args:
        arch: a :data:`pyadvt.models.MODELS` name (``"mlp"``, ``"cnn"``, ``"resnet"``, ``"lenet"``).
        model_kwargs: :func:`pyadvt.models.build` arguments (``in_shape``, ``num_classes``, widths ...);
            ``in_shape`` and ``num_classes`` default to the training data's.
        recipe: a :data:`pyadvt.train.RECIPES` method (``"st"`` plain, ``"at"`` adversarial, ...).
        recipe_kwargs: :func:`pyadvt.train.training_recipe` arguments (``strength``, ``norm``, ``steps``).
        fit_kwargs: :func:`pyadvt.train.fit` settings (``epochs``, ``lr``, ``batch_size`` ...).
        seed: seeds the initialisation (``torch.manual_seed`` in a forked RNG), the recipe and ``fit``.
        init_seed: seeds the initialisation instead of ``seed`` when given (experiments that draw the
            initial weights and the shuffling from different seeds); ``None`` leaves :meth:`key` as before.

    Everything must be plain data (JSON types), so that the spec can be hashed and stored.
    Source: docs/theory.md §4 (a trained model is described by a ``ModelSpec``).

    Raises:
        ValueError: (``InvalidValueError``) when ``arch`` is not in :data:`pyadvt.models.MODELS`,
            ``recipe`` not in :data:`pyadvt.train.RECIPES`, or ``fit_kwargs`` sets what the spec owns
            (``seed``, ``loss_fn``, ``batch_transform``, ``optimizer`` ...).
        TypeError: (``InvalidTypeError``) when ``seed`` (or ``init_seed``) is not an int, or a
            ``*_kwargs`` is not a dict of plain data.

    Example:
        >>> spec = ModelSpec("mlp", {"hidden": [8]}, recipe="at", recipe_kwargs={"strength": 0.5})
        >>> spec.to_dict()["recipe"], ModelSpec.from_dict(spec.to_dict()) == spec
        ('at', True)
    """

    arch: str
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    recipe: str = "st"
    recipe_kwargs: Mapping[str, Any] = field(default_factory=dict)
    fit_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    init_seed: int | None = None

    def __post_init__(self) -> None:
        if self.arch not in MODELS:
            raise InvalidValueError(f"ModelSpec: unknown arch {self.arch!r}; choose one of {', '.join(MODELS)}")
        if self.recipe not in METHODS:
            raise InvalidValueError(f"ModelSpec: unknown recipe {self.recipe!r}; choose one of {', '.join(METHODS)}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise InvalidTypeError(f"ModelSpec: 'seed' must be an int, got {self.seed!r}")
        if self.init_seed is not None and (not isinstance(self.init_seed, int) or isinstance(self.init_seed, bool)):
            raise InvalidTypeError(f"ModelSpec: 'init_seed' must be an int or None, got {self.init_seed!r}")
        for name in ("model_kwargs", "recipe_kwargs", "fit_kwargs"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise InvalidTypeError(f"ModelSpec: '{name}' must be a dict, got {type(value).__name__}")
            try:
                to_jsonable(dict(value))
                config_digest(dict(value))
            except TypeError as exc:
                raise InvalidTypeError(f"ModelSpec: '{name}' must hold plain data (numbers, strings, lists, "
                                       f"dicts): {exc}") from None
        bad = [k for k in self.fit_kwargs if k in _FIT_OWN]
        if bad:
            raise InvalidValueError(f"ModelSpec: fit_kwargs may not set {', '.join(bad)}: the seed is the spec's "
                                    "'seed' and losses / transforms / optimizers come from the 'recipe'")

    def to_dict(self) -> dict:
        """The spec as plain data (what :meth:`key` hashes)."""
        d = {"arch": self.arch, "model_kwargs": dict(self.model_kwargs), "recipe": self.recipe,
             "recipe_kwargs": dict(self.recipe_kwargs), "fit_kwargs": dict(self.fit_kwargs), "seed": self.seed}
        return to_jsonable(d if self.init_seed is None else dict(d, init_seed=self.init_seed))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in ("arch", "model_kwargs", "recipe", "recipe_kwargs", "fit_kwargs", "seed", "init_seed")
                      if k in d})

    def build(self, data: TensorData | None = None) -> nn.Module:
        """A freshly initialised model (the initialisation seeded by ``seed``, global RNG untouched)."""
        kwargs = dict(self.model_kwargs)
        if data is not None:
            kwargs.setdefault("in_shape", tuple(data.in_shape))
            kwargs.setdefault("num_classes", int(data.num_classes))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed if self.init_seed is None else self.init_seed)
            return build(self.arch, **kwargs)

    def key(self, data: TensorData) -> tuple:
        """The cell key of the trained model: ``("model", arch, recipe, digest of spec + data)``."""
        return ("model", self.arch, self.recipe, config_digest(self.to_dict(), data_digest(data)))


def data_digest(data: TensorData) -> str:
    """A digest of the training data's contents (images ``x [N, C, H, W]``, labels ``y [N]``, number of
    classes): part of the cache key of :func:`train_or_load` (docs/theory.md §4).

    Raises:
        TypeError: (``InvalidTypeError``) when ``data`` is not a :class:`~pyadvt.data.TensorData`.

    Example:
        >>> import torch
        >>> a = TensorData(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]))
        >>> b = TensorData(torch.zeros(2, 1, 2, 2), torch.tensor([1, 0]))
        >>> len(data_digest(a)), data_digest(a) == data_digest(b)
        (16, False)
    """
    if not isinstance(data, TensorData):
        raise InvalidTypeError(f"'data' must be a pyadvt.data.TensorData, got {type(data).__name__}")
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(data.x.detach().cpu().numpy()).tobytes())
    h.update(np.ascontiguousarray(data.y.detach().cpu().numpy()).tobytes())
    h.update(repr((tuple(data.x.shape), int(data.num_classes))).encode())
    return h.hexdigest()[:16]


def train_or_load(spec: ModelSpec, data: TensorData, store: CellStore | None = None, *,
                  progress: bool = False, device: torch.device | str | None = None) -> tuple[nn.Module, dict]:
    """The model ``spec`` trains on ``data``: loaded from ``store`` if it holds it, else trained and stored.

    Training is ``fit(spec.build(data), data, seed=spec.seed, **spec.fit_kwargs, **recipe)`` with
    ``recipe = training_recipe(spec.recipe, model, num_classes=..., seed=spec.seed, **spec.recipe_kwargs)``.

    Returns ``(model in eval mode, info)``; ``info`` holds the spec, its ``key``, the training
    accuracy, the training seconds and ``trained`` (False when loaded). ``device``: where the model
    is trained (``None``: the CPU, where it is built); the key does not depend on it. ``data`` holds
    ``x [N, C, H, W]`` and ``y [N]``. Source: docs/theory.md §4.

    Raises:
        TypeError: (``InvalidTypeError``) when ``spec`` is not a :class:`ModelSpec` or ``data`` not a
            :class:`~pyadvt.data.TensorData`; for the checks of :func:`pyadvt.train.fit`.
        ValueError: for the checks of :func:`pyadvt.train.training_recipe` (a missing ``strength``)
            and :func:`pyadvt.train.fit` (non-positive settings, labels outside the model's outputs).
        FloatingPointError: when an epoch's mean training loss is not finite (as :func:`pyadvt.train.fit`).

    Example:
        >>> import torch
        >>> data = TensorData(torch.rand(8, 1, 4, 4), torch.arange(8) % 2)
        >>> spec = ModelSpec("mlp", {"hidden": [4]}, fit_kwargs={"epochs": 1, "batch_size": 4})
        >>> model, info = train_or_load(spec, data)
        >>> info["trained"], model.training
        (True, False)
    """
    if not isinstance(spec, ModelSpec):
        raise InvalidTypeError(f"'spec' must be a ModelSpec, got {type(spec).__name__}")
    key = spec.key(data)
    model = spec.build(data)
    if device is not None:
        model = model.to(device)
    if store is not None and store.has(key):
        model.load_state_dict(store.load_checkpoint(key))
        return model.eval(), dict(store.get(key), trained=False)
    recipe = training_recipe(spec.recipe, model, num_classes=int(data.num_classes), seed=spec.seed,
                             **dict(spec.recipe_kwargs))
    start = time.perf_counter()
    fit(model, data, seed=spec.seed, progress=progress, **dict(spec.fit_kwargs), **recipe)
    info = {"spec": spec.to_dict(), "key": list(key), "train_accuracy": evaluate(model, data)["accuracy"],
            "train_seconds": time.perf_counter() - start}
    if store is not None:
        info = store.put(key, info, checkpoint=model.state_dict())
    return model.eval(), dict(info, trained=True)
