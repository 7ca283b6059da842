"""SFDA: self-challenging Fisher discriminant analysis (Shao et al., ECCV 2022; docs/theory.md §11.8)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import softmax

from pyadvt.selection._inputs import UndefinedScoreError, as_features, as_labels, class_index

__all__ = ["sfda"]


def _power_top_eigenvalue(a: np.ndarray, iterations: int = 3) -> float:
    """The authors' estimate of the largest eigenvalue of the symmetric PSD ``a``: power iterations
    started from the row sums. A start or an iterate with zero image (rows summing to zero) falls
    back to the exact ``eigvalsh`` value instead of a NaN."""
    x = a.sum(1)
    for _ in range(iterations):
        ax = a @ x
        if not np.linalg.norm(ax) > 0:
            return float(np.linalg.eigvalsh(a)[-1])
        yv = ax / np.linalg.norm(ax)
        ay = a @ yv
        if not np.linalg.norm(ay) > 0:
            return float(np.linalg.eigvalsh(a)[-1])
        x = ay / np.linalg.norm(ay)
    return float(x @ a @ yv)


def _shrunk(cov: np.ndarray, lam: float) -> np.ndarray:
    D = cov.shape[0]
    return (1 - lam) * cov + lam * np.trace(cov) / D * np.eye(D)


def _lda_posteriors(f: np.ndarray, yi: np.ndarray, C: int, lam: float | None) -> tuple[np.ndarray, float]:
    """Shrinkage-LDA posteriors ``[n, C]`` and the shrinkage used (estimated when ``lam`` is None)."""
    n = f.shape[0]
    counts = np.bincount(yi, minlength=C)
    priors = counts / n
    means = np.zeros((C, f.shape[1]))
    np.add.at(means, yi, f)
    means /= counts[:, None]
    sw = np.zeros((f.shape[1], f.shape[1]))
    for c in range(C):
        zc = f[yi == c] - means[c]
        sw += priors[c] * (zc.T @ zc / counts[c])  # biased class covariance
    if lam is None:
        lam = max(float(np.exp(-5 * _power_top_eigenvalue(sw))), 1e-10)
    sw_tilde = _shrunk(sw, lam)
    if not np.trace(sw_tilde) > 0:
        raise UndefinedScoreError("sfda: the features do not vary within any class (zero within-class scatter), so "
                         "the shrinkage LDA of SFDA is undefined; use another estimator for such features")
    # eigh(S_B, S_W~) with V^T S_W~ V = I gives coef = M V V^T = M S_W~^{-1} (docs/theory.md §11.8)
    coef = np.linalg.solve(sw_tilde, means.T).T
    intercept = -0.5 * np.einsum("cd,cd->c", means, coef) + np.log(priors)
    return softmax(f @ coef.T + intercept, axis=1), lam


def sfda(features: Any, y: Any, *, use_log: bool = False) -> float:
    """SFDA score: mean posterior of the true class after the self-challenging mix (higher = better).

    Args:
        features: ``[n, D]`` source features of the target inputs.
        y: ``[n]`` target labels.
        use_log: average ``log p(y_i | x~_i)`` instead (the code averages ``p`` "in case of instability").

    Steps (the authors' code): shrinkage LDA with ``lambda = max(exp(-5 lambda_max(S_W)), 1e-10)``
    (``lambda_max`` by three power iterations); posteriors softened by a second softmax; every sample
    mixed towards the mean of the *other* classes' means, ``x~_i = p_y x_i + (1 - p_y) mu_{-y}``; LDA
    refitted on the mixed features with the same ``lambda``; score ``(1/n) sum_i p(y_i | x~_i)``.
    Features constant within every class raise :class:`UndefinedScoreError` (a ``ValueError``).
    Source: docs/theory.md §11.8.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1, 2], 20)
        >>> good = rng.normal(size=(60, 4)) + 3 * np.eye(3, 4)[y]
        >>> sfda(good, y) > sfda(rng.normal(size=(60, 4)), y)
        True
    """
    f = as_features(features)
    labels = as_labels(y, f.shape[0])
    yi, C = class_index(labels)
    counts = np.bincount(yi, minlength=C)
    means = np.zeros((C, f.shape[1]))
    np.add.at(means, yi, f)
    means /= counts[:, None]
    p, lam = _lda_posteriors(f, yi, C, None)
    p_true = softmax(p, axis=1)[np.arange(f.shape[0]), yi][:, None]
    others = (means.sum(0, keepdims=True) - means) / (C - 1)
    mixed = p_true * f + (1 - p_true) * others[yi]
    p2, _ = _lda_posteriors(mixed, yi, C, lam)
    q = p2[np.arange(f.shape[0]), yi]
    return float(np.log(np.maximum(q, np.finfo(float).tiny)).mean() if use_log else q.mean())
