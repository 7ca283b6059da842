"""Input checks shared by the transferability estimators (docs/theory.md §11).

Every estimator takes tensors or arrays, converts them to float64 numpy arrays here and checks them
before any work starts, so a wrong shape, a label outside its range or a non-finite value is a clear
``ValueError`` naming the argument, never a silent NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

__all__ = ["UndefinedScoreError", "as_features", "as_labels", "as_probs", "class_index"]


class UndefinedScoreError(InvalidValueError):
    """An estimator is undefined for these (valid) features, e.g. SFDA without within-class scatter.

    Raised by the estimators of docs/theory.md §11; a subclass of ``ValueError`` (through
    :class:`~pyadvt.utils.errors.InvalidValueError`). :func:`~pyadvt.selection.estimate` turns it into
    ``None`` and a warning.

    Example:
        >>> issubclass(UndefinedScoreError, ValueError)
        True
    """


def _numpy(a: Any, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, (list, tuple)):
        return np.asarray(a)
    raise InvalidTypeError(f"'{name}' must be a torch.Tensor or a numpy array, got {type(a).__name__}")


def as_features(features: Any, name: str = "features", min_samples: int = 2) -> np.ndarray:
    """``features`` as a finite float64 ``[n, D]`` array (``n >= min_samples``)."""
    f = _numpy(features, name)
    if f.dtype == bool or not (np.issubdtype(f.dtype, np.floating) or np.issubdtype(f.dtype, np.integer)):
        raise InvalidTypeError(f"'{name}' must hold real numbers, got dtype {f.dtype}")
    if f.ndim != 2:
        raise InvalidValueError(f"'{name}' must have shape [n, D] (one feature row per sample), got {tuple(f.shape)}; "
                         "flatten feature maps first, e.g. features.flatten(1)")
    if f.shape[0] < min_samples or f.shape[1] < 1:
        raise InvalidValueError(f"'{name}' needs at least {min_samples} samples and one feature, "
                                f"got shape {tuple(f.shape)}")
    f = np.asarray(f, dtype=np.float64)
    if not np.isfinite(f).all():
        raise InvalidValueError(f"'{name}' contains NaN or infinite values")
    return f


def as_labels(y: Any, n: int, name: str = "y", num_classes: int | None = None, min_classes: int = 2) -> np.ndarray:
    """``y`` as an int64 ``[n]`` array of labels in ``0..num_classes-1`` with ``min_classes`` distinct values."""
    a = _numpy(y, name)
    if a.ndim != 1 or a.shape[0] != n:
        raise InvalidValueError(f"'{name}' must have shape [{n}] (one label per sample), got {tuple(a.shape)}")
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() and (a == np.round(a)).all():
            a = a.astype(np.int64)
        else:
            raise InvalidValueError(f"'{name}' must hold integer class labels, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise InvalidValueError(f"'{name}' must hold labels >= 0, got {int(a.min())}")
    if num_classes is not None and a.size and a.max() >= num_classes:
        raise InvalidValueError(f"'{name}' holds label {int(a.max())} but num_classes={num_classes}")
    if len(np.unique(a)) < min_classes:
        raise InvalidValueError(f"'{name}' must contain at least {min_classes} distinct classes, "
                                f"got {len(np.unique(a))}: "
                         "a transferability score needs a task to discriminate")
    return a


def as_probs(probs: Any, n: int | None = None, name: str = "probs", atol: float = 1e-3) -> np.ndarray:
    """``probs`` as a float64 ``[n, C_s]`` array of per-sample distributions (rows renormalised)."""
    p = as_features(probs, name, min_samples=1)
    if n is not None and p.shape[0] != n:
        raise InvalidValueError(f"'{name}' has {p.shape[0]} rows but the labels have {n}")
    if p.min() < 0:
        raise InvalidValueError(f"'{name}' must be probabilities (>= 0), got a minimum of {p.min():.4g}; "
                         "pass softmax(logits), not logits")
    s = p.sum(1)
    if np.abs(s - 1).max() > atol:
        raise InvalidValueError(f"every row of '{name}' must sum to 1 (softmax outputs), got row sums in "
                         f"[{s.min():.4g}, {s.max():.4g}]; pass softmax(logits), not logits")
    return p / s[:, None]


def class_index(y: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels re-indexed to ``0..C-1`` over the classes that occur (sorted), and ``C``.

    Estimators average over the classes present in the target data; a class with no sample has no
    statistics to contribute, and re-indexing makes every score invariant to relabelling.
    """
    classes, inv = np.unique(y, return_inverse=True)
    return inv.astype(np.int64), int(classes.size)
