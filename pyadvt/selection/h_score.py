"""H-score and its shrinkage-regularised form (Bao et al., ICIP 2019; Ibrahim et al., ICLR 2023;
docs/theory.md §11.4)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pyadvt.selection._inputs import as_features, as_labels, class_index

__all__ = ["h_score", "h_score_shrinkage", "ledoit_wolf"]


def _class_mean_rows(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``g_i = mu_{y_i}``: every row replaced by the mean feature of its class."""
    yi, C = class_index(y)
    sums = np.zeros((C, f.shape[1]))
    np.add.at(sums, yi, f)
    return (sums / np.bincount(yi, minlength=C)[:, None])[yi]


def _cov(a: np.ndarray) -> np.ndarray:
    """Unbiased (n - 1) covariance of the rows of ``a``, as ``np.cov(a, rowvar=False)``."""
    z = a - a.mean(0, keepdims=True)
    return z.T @ z / (a.shape[0] - 1)


def h_score(features: Any, y: Any, *, rcond: float = 1e-15) -> float:
    """``H(f) = tr(pinv(Sigma_f) Sigma_g)`` with ``g_i`` the class mean of ``f_i`` (higher = better).

    Args:
        features: ``[n, D]`` source features of the target inputs.
        y: ``[n]`` target labels.
        rcond: relative cut-off of the pseudo-inverse (1e-15 as in TLlib; the H-score authors' code
            uses 1e-9, stable_transfer 1e-5).

    Both covariances are unbiased (n - 1). Invariant to invertible linear maps of the features when
    ``Sigma_f`` is non-singular; constant features give 0. Source: docs/theory.md §11.4.

    Raises:
        TypeError: (``InvalidTypeError``) when ``features`` or ``y`` is not a tensor, array or list,
            or ``features`` does not hold real numbers.
        ValueError: (``InvalidValueError``) when ``features`` is not ``[n, D]`` with ``n >= 2``, holds
            NaN or infinite values, or when ``y`` is not ``[n]`` integer labels ``>= 0`` with at least
            two distinct classes.

    Example:
        >>> import numpy as np
        >>> f = np.array([[0.0], [1.0], [4.0], [5.0]])
        >>> round(h_score(f, np.array([0, 0, 1, 1])), 6)  # var(g) / var(f) = (16/3) / (17/3)
        0.941176
    """
    f = as_features(features)
    labels = as_labels(y, f.shape[0])
    g = _class_mean_rows(f, labels)
    return float(np.trace(np.linalg.pinv(_cov(f), rcond=rcond) @ _cov(g)))


def ledoit_wolf(z: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of centred rows ``z: [n, D]`` and its shrinkage ``alpha``.

    ``Sigma_alpha = (1 - alpha) S + alpha (tr S / D) I`` with ``S = z^T z / n`` (biased) and
    ``alpha = min(b2, d2) / d2`` from Ledoit & Wolf (2004), the estimator of
    ``sklearn.covariance.LedoitWolf`` (``alpha = 0`` when ``b2 = 0``).
    """
    n, D = z.shape
    s = z.T @ z / n
    mu = np.trace(s) / D
    d2 = ((s - mu * np.eye(D)) ** 2).sum() / D
    z2 = z ** 2
    b2 = ((z2.T @ z2).sum() / n - (s ** 2).sum()) / (D * n)
    b2 = min(b2, d2)
    alpha = 0.0 if b2 == 0 else float(b2 / d2)
    return (1 - alpha) * s + alpha * mu * np.eye(D), alpha


def h_score_shrinkage(features: Any, y: Any, *, rcond: float = 1e-15) -> float:
    """Shrinkage H-score ``tr(pinv(Sigma_alpha) (1 - alpha) Sigma_g)`` (higher = better).

    ``Sigma_alpha`` is the Ledoit-Wolf estimate of the centred features' covariance with shrinkage
    ``alpha`` (:func:`ledoit_wolf`); ``Sigma_g`` the unbiased covariance of the class means. Stable when
    ``D`` is close to or above ``n``, where the plain H-score's covariance is singular.
    Source: docs/theory.md §11.4 (TLlib ``regularized_h_score``).

    Raises:
        TypeError, ValueError: the input checks of :func:`h_score` (``features`` real, finite
            ``[n, D]`` with ``n >= 2``; ``y`` ``[n]`` integer labels ``>= 0`` of at least two classes).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1], 10)
        >>> f = rng.normal(size=(20, 50)) + y[:, None]
        >>> h_score_shrinkage(f, y) > 0
        True
    """
    f = as_features(features)
    labels = as_labels(y, f.shape[0])
    z = f - f.mean(0, keepdims=True)
    sigma, alpha = ledoit_wolf(z)
    g = _class_mean_rows(z, labels)
    return float(np.trace(np.linalg.pinv(sigma, rcond=rcond) @ ((1 - alpha) * _cov(g))))
