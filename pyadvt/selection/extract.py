"""``extract``: a source's features, softmax and hard predictions over a dataset, one batch at a time.

Every estimator in :mod:`pyadvt.selection` reads one of these three views of the source on the
target inputs (docs/theory.md §11): LEEP the softmax ``theta(x)``, NCE the hard predictions, the
others the representation ``features(x)``. ``extract`` computes all three in one pass with the
``features``/``head`` split of :mod:`pyadvt.models` (any other classifier is adapted by
:func:`pyadvt.models.wrap`), holding one batch of inputs in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pyadvt.data.stream import iter_batches
from pyadvt.models.wrap import wrap
from pyadvt.utils.modes import evaluating, model_device
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError, check_images

__all__ = ["Extracted", "extract", "split_model"]

_OUTPUTS = ("features", "probs", "preds")


@dataclass
class Extracted:
    """What :func:`extract` read: ``features [n, D]`` (float32), ``probs [n, C_s]`` (float64 softmax of
    the head's logits), ``preds [n]`` (int64 argmax) and the dataset's labels ``y [n]`` (or ``None``);
    a view that was not asked for is ``None``. All on the CPU.

    The three views the estimators of docs/theory.md §11 read.

    Example:
        >>> import torch
        >>> ex = Extracted(features=torch.zeros(4, 2), probs=None, preds=torch.tensor([0, 1, 1, 0]), y=None)
        >>> len(ex), ex.summary()["feature_dim"]
        (4, 2)
    """

    features: torch.Tensor | None
    probs: torch.Tensor | None
    preds: torch.Tensor | None
    y: torch.Tensor | None

    def __len__(self) -> int:
        for t in (self.features, self.probs, self.preds):
            if t is not None:
                return int(t.shape[0])
        return 0

    def summary(self) -> dict:
        return {"n": len(self), "feature_dim": None if self.features is None else int(self.features.shape[1]),
                "source_classes": None if self.probs is None else int(self.probs.shape[1]),
                "labels": self.y is not None}


def split_model(model: nn.Module) -> nn.Module:
    """``model`` if it has ``features`` and ``head``, else :func:`pyadvt.models.wrap` of it.

    The ``features``/``head`` split that gives the representation ``F`` of docs/theory.md §11.

    Raises:
        TypeError: (``InvalidTypeError``) when ``model`` is not an ``nn.Module``.
        ValueError: when ``model`` must be wrapped but has no ``nn.Linear`` submodule to use as the head.

    Example:
        >>> from torch import nn
        >>> net = split_model(nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
        >>> net.feature_dim
        8
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"'model' must be an nn.Module, got {type(model).__name__}")
    if callable(getattr(model, "features", None)) and isinstance(getattr(model, "head", None), nn.Module):
        return model
    return wrap(model)


def extract(model: nn.Module, data: Any, *, outputs: tuple[str, ...] = _OUTPUTS, batch_size: int = 256,
            device: torch.device | str | None = None, progress: bool = False) -> Extracted:
    """Features, softmax and hard predictions of ``model`` over ``data``, one batch at a time.

    Args:
        model: a split model (``features(x) -> [B, D]``, ``head``), e.g. from :func:`pyadvt.models.build`
            or :func:`pyadvt.models.from_torchvision`; any classifier ending in an ``nn.Linear`` is
            wrapped (:func:`pyadvt.models.wrap`). Run in eval mode, without gradients; its mode is restored.
        data: a tensor ``[N, C, H, W]``, an ``(x, y)`` pair, a ``TensorData``, a ``Dataset`` or a
            ``DataLoader`` (:func:`pyadvt.data.iter_batches`).
        outputs: which of ``"features"``, ``"probs"``, ``"preds"`` to keep (the forward pass is the same).
        batch_size: the most inputs held at once; device: where the model runs (default: its own).
        progress: a tqdm bar over the batches.

    Returns an :class:`Extracted`; ``y`` holds the labels when ``data`` has them. The inputs of the
    estimators of docs/theory.md §11.

    Raises:
        ValueError: (``InvalidValueError``) when ``outputs`` is empty or names something other than
            ``"features"``, ``"probs"``, ``"preds"``, when a batch is not images in ``[0, 1]``, when the
            features hold NaN or infinite values, or when ``model`` has no ``nn.Linear`` head to wrap.
        TypeError: (``InvalidTypeError``) when ``model`` is not an ``nn.Module``, ``data`` is not a
            kind :func:`pyadvt.data.iter_batches` reads, or the inputs are not floating point.

    Example:
        >>> from pyadvt.models import build
        >>> out = extract(build("mlp", num_classes=4), torch.rand(10, 1, 8, 8), batch_size=3)
        >>> out.features.shape[0], out.probs.shape, out.preds.shape, out.y
        (10, torch.Size([10, 4]), torch.Size([10]), None)
    """
    bad = [o for o in outputs if o not in _OUTPUTS]
    if bad or not outputs:
        raise InvalidValueError(f"'outputs' must be a non-empty subset of {_OUTPUTS}, got {tuple(outputs)}")
    net = split_model(model)
    dev = torch.device(device) if device is not None else model_device(net)
    feats, probs, preds, labels = [], [], [], []
    with evaluating(net), torch.no_grad():
        for x, y in iter_batches(data, batch_size, device=dev, progress=progress, desc="extract"):
            check_images(x, "x")  # pixel space [0, 1], finite (one reduction per batch)
            f = net.features(x)
            if f.dim() != 2:
                f = f.flatten(1)
            if not bool(torch.isfinite(f).all()):
                raise InvalidValueError("the model's features contain NaN or infinite values; check the model and "
                                        "the inputs (pixel space [0, 1])")
            if "features" in outputs:
                feats.append(f.float().cpu())
            if "probs" in outputs or "preds" in outputs:
                logits = net.head(f)
                if "probs" in outputs:
                    probs.append(torch.softmax(logits.double(), dim=1).cpu())
                if "preds" in outputs:
                    preds.append(logits.argmax(1).cpu())
            if y is not None:
                labels.append(y.cpu())
    cat = lambda parts: torch.cat(parts) if parts else None  # noqa: E731
    return Extracted(cat(feats), cat(probs), cat(preds), cat(labels) if labels else None)
