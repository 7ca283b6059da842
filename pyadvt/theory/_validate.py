"""Input validation shared by the theory checkers (numpy in, numpy out, clear ``ValueError``/``TypeError``)."""

from __future__ import annotations

import numpy as np


def check_classifier(h, name: str = "h") -> None:
    """``TypeError`` unless ``h`` has the ``predict`` and ``first_flip`` methods the exact checkers use."""
    lacking = [m for m in ("predict", "first_flip") if not callable(getattr(h, m, None))]
    if lacking:
        raise TypeError(f"'{name}' must be a classifier with predict(X) and first_flip(X, V) (e.g. a "
                        f"LinearClassifier or TwoLayerReLU), got {type(h).__name__} without {' and '.join(lacking)}")


def as_points(X, name: str = "X") -> np.ndarray:
    """``X`` as a finite float64 array ``[N, d]`` (a single point ``[d]`` becomes ``[1, d]``)."""
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be an array of shape [N, d], got {type(X).__name__}")
    if hasattr(X, "detach"):  # torch tensors
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=True)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape [N, d], got shape {tuple(arr.shape)}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature (d >= 1), got shape {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def as_vector(v, name: str, dim: int | None = None) -> np.ndarray:
    """``v`` as a finite float64 vector ``[dim]``."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    arr = np.asarray(v, dtype=np.float64).reshape(-1) if np.ndim(v) <= 1 else None
    if arr is None:
        raise ValueError(f"{name} must be a vector, got shape {np.shape(v)}")
    if dim is not None and arr.shape[0] != dim:
        raise ValueError(f"{name} must have length {dim}, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr.copy()


def _label_vector(y, n: int, name: str) -> np.ndarray:
    """``y`` (array or tensor) as a numpy vector of ``n`` labels, shape-checked."""
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a vector [N], got shape {tuple(arr.shape)}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} labels but X has {n} points (mismatched shapes)")
    return arr


def as_binary_labels(y, n: int, name: str = "y") -> np.ndarray:
    """``y`` as float64 ``[n]`` with values in ``{+1, -1}``."""
    arr = _label_vector(y, n, name)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be numeric labels in {{+1, -1}}, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    bad = ~np.isin(arr, (1.0, -1.0))
    if bad.any():
        raise ValueError(f"{name} must contain only +1 and -1; found {np.unique(arr[bad])[:5].tolist()}")
    return arr


def as_int_labels(y, n: int, name: str = "y") -> np.ndarray:
    """``y`` as int64 ``[n]`` class labels (any integers)."""
    arr = _label_vector(y, n, name)
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def require_both_classes(y: np.ndarray, name: str = "y") -> None:
    if not (np.any(y > 0) and np.any(y < 0)):
        only = "+1" if np.all(y > 0) else "-1"
        raise ValueError(f"{name} contains a single class ({only} only); both +1 and -1 are needed")
