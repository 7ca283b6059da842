"""TransRate: the coding-rate gain of the features given the labels (Huang et al., ICML 2022;
docs/theory.md §11.6)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pyadvt.selection._inputs import as_features, as_labels, class_index
from pyadvt.utils.validation import InvalidValueError

__all__ = ["transrate", "coding_rate"]


def coding_rate(z: np.ndarray, eps: float) -> float:
    """``R(Z) = 1/2 logdet(I + Z^T Z / (n eps))`` for ``z: [n, D]``, from the eigenvalues of the
    smaller Gram matrix (``Z^T Z`` and ``Z Z^T`` share their non-zero eigenvalues)."""
    n = z.shape[0]
    gram = z.T @ z if z.shape[1] <= n else z @ z.T
    lam = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    return float(0.5 * np.log1p(lam / (n * eps)).sum())


def transrate(features: Any, y: Any, *, eps: float = 1e-4, legacy_tllib: bool = False) -> float:
    """``TrR = R(Z) - sum_c (n_c / n) R(Z_c)`` (higher = better).

    Args:
        features: ``[n, D]`` source features of the target inputs.
        y: ``[n]`` target labels.
        eps: the distortion ``eps`` of the coding rate (the official code's "value of eps^2", 1e-4).
        legacy_tllib: TLlib's form: no row normalisation and class weights ``1/C``.

    Default (the official code, docs/theory.md §11.6): centre the features, scale every row to unit
    L2 norm (a zero row stays zero), class rows keep the global centring, and each class's rate
    uses its own ``n_c``. Constant features give 0.

    Raises:
        TypeError: (``InvalidTypeError``) when ``features`` or ``y`` is not a tensor, array or list,
            or ``features`` does not hold real numbers.
        ValueError: (``InvalidValueError``) when ``features`` is not ``[n, D]`` with ``n >= 2``, holds
            NaN or infinite values, or when ``y`` is not ``[n]`` integer labels ``>= 0`` with at least
            two distinct classes; when ``eps <= 0``.

    Example:
        >>> import numpy as np
        >>> f = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
        >>> round(transrate(f, np.array([0, 0, 1, 1]), eps=1.0), 6)  # log(1.5) - log(2) / 2
        0.058892
    """
    f = as_features(features)
    labels = as_labels(y, f.shape[0])
    if not eps > 0:
        raise InvalidValueError(f"'eps' must be > 0, got {eps}")
    z = f - f.mean(0, keepdims=True)
    if not legacy_tllib:
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        z = np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)
    yi, C = class_index(labels)
    n = z.shape[0]
    rz = coding_rate(z, eps)
    parts = [(int((yi == c).sum()), coding_rate(z[yi == c], eps)) for c in range(C)]
    rzy = sum(r for _, r in parts) / C if legacy_tllib else sum(nc / n * r for nc, r in parts)
    return float(rz - rzy)
