"""Checkpoints: a model's ``state_dict`` plus a plain config dict, loadable with ``weights_only=True``.

A model built by :func:`pyadvt.models.build` records ``build_config``, which is saved with the
weights so :func:`load_checkpoint` can rebuild it without the caller knowing the architecture.
"""

from __future__ import annotations

import os
import pickle

import torch
from torch import nn

from pyadvt.models import build
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.io import atomic_write

FORMAT = "pyadvt.checkpoint"
VERSION = 1
_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value, where: str) -> None:
    """Configs must hold only what ``torch.load(weights_only=True)`` reads back (and JSON can show)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"config key {k!r} at {where} must be a str")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"config value at {where} is a {type(value).__name__}; use str/int/float/bool/None, "
                        "lists and dicts")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: dict | None = None) -> str:
    """Write ``model``'s weights (on CPU), its ``build_config`` (if any) and ``config`` to ``path``.

    The file is written to a temporary name and renamed, so a crash never leaves a half-written
    checkpoint. Returns the path. Part of the training pipeline of docs/theory.md §4 (the cache of
    :func:`pyadvt.train.train_or_load`); it implements no equation.

    Raises:
        TypeError: when ``model`` is not an ``nn.Module``, ``config`` is not a dict, or ``config``
            holds a key that is not a str or a value that is not str/int/float/bool/None, a list or
            a dict.
        OSError: when ``path`` cannot be written.

    Example:
        >>> import tempfile, os
        >>> net = build("mlp", hidden=(8,))
        >>> path = save_checkpoint(os.path.join(tempfile.mkdtemp(), "m.pt"), net, {"epochs": 3})
        >>> load_checkpoint(path)[1]
        {'epochs': 3}
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"'model' must be an nn.Module, got {type(model).__name__}")
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise TypeError(f"'config' must be a dict, got {type(config).__name__}")
    _check_plain(config, "config")
    build_config = getattr(model, "build_config", None)
    payload = {"format": FORMAT, "version": VERSION, "model": build_config, "config": config,
               "state_dict": {k: v.detach().to("cpu") for k, v in model.state_dict().items()}}
    path = os.fspath(path)
    with atomic_write(path, "wb", prefix=".ckpt-") as f:
        torch.save(payload, f)
    return path


@keyword_only("map_location")
def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None, *,
                    map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """``(model, config)`` from a file written by :func:`save_checkpoint`.

    Without ``model`` the architecture is rebuilt from the saved ``build_config``; with it, the
    weights are loaded into ``model`` (strictly: names and shapes must match; it stays on its
    device, while a rebuilt model is put on ``map_location``). The model is
    returned in ``eval()`` mode. Only tensors and plain containers are unpickled
    (``torch.load(weights_only=True)``), so a foreign file cannot run code. Part of the training
    pipeline of docs/theory.md §4; it implements no equation.

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ValueError: when the file is not a readable ``torch.save`` file or not a pyadvt checkpoint,
            has no build config and no ``model`` is given, or its weights do not fit ``model``.

    Example:
        >>> import os, tempfile
        >>> net = build("mlp", hidden=(8,))
        >>> path = save_checkpoint(os.path.join(tempfile.mkdtemp(), "m.pt"), net)
        >>> model, config = load_checkpoint(path)
        >>> model.training, config
        (False, {})
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable pyadvt checkpoint (torch.save file with weights and config): "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pyadvt checkpoint (expected a dict with format={FORMAT!r}, "
                         "as written by pyadvt.train.save_checkpoint)")
    if model is None:
        spec = payload.get("model")
        if not spec:
            raise ValueError(f"{path}: the checkpoint has no build config (its model was not made by "
                             "pyadvt.models.build); pass the model to load into as 'model'")
        model = build(spec["name"], **spec["kwargs"]).to(map_location)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit the given model: {exc}") from None
    return model.eval(), payload.get("config", {})
