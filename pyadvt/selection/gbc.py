"""GBC: Gaussian Bhattacharyya coefficient between target classes in the source's feature space
(Pándy et al., CVPR 2022; docs/theory.md §11.7)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pyadvt.selection._inputs import as_features, as_labels, class_index
from pyadvt.selection._pca import pca_reduce
from pyadvt.utils.validation import InvalidValueError

__all__ = ["gbc"]


def gbc(features: Any, y: Any, *, gaussian: str = "spherical", pca_dim: int | None = 64,
        legacy_st_spherical: bool = False) -> float:
    """``GBC = -sum_{c != c'} exp(-D_B(c, c'))`` over ordered class pairs (higher = better; ``<= 0``).

    Args:
        features: ``[n, D]`` source features of the target inputs.
        y: ``[n]`` target labels.
        gaussian: ``"spherical"`` (one variance per class, the paper's default) or ``"diagonal"``.
        pca_dim: PCA dimension first (64, stable_transfer's setting; capped at ``min(n, D)``; ``None``
            keeps the features).
        legacy_st_spherical: stable_transfer's spherical code, whose log-determinant term is not
            multiplied by the dimension ``d``.

    Per class: mean ``mu_c`` and population variance per dimension floored at 1e-4 (spherical: their
    mean). ``D_B = 1/8 sum_d (mu1 - mu2)^2 / s + 1/2 sum_d [log s - (log s1 + log s2) / 2]`` with
    ``s = (s1 + s2) / 2``: the exact Bhattacharyya distance of the two Gaussians. Constant features
    give ``-C (C - 1)``. Source: docs/theory.md §11.7.

    Raises:
        TypeError: (``InvalidTypeError``) when ``features`` or ``y`` is not a tensor, array or list,
            or ``features`` does not hold real numbers.
        ValueError: (``InvalidValueError``) when ``features`` is not ``[n, D]`` with ``n >= 2``, holds
            NaN or infinite values, or when ``y`` is not ``[n]`` integer labels ``>= 0`` with at least
            two distinct classes; when ``gaussian`` is not ``"spherical"`` or
            ``"diagonal"``, or ``pca_dim`` is not a positive int or ``None``.

    Example:
        >>> import numpy as np
        >>> y = np.array([0, 0, 1, 1])
        >>> f = np.array([[0.0], [2.0], [1.0], [3.0]])  # means 1, 2; variances 1: D_B = 1/8
        >>> round(gbc(f, y, pca_dim=None), 6), round(float(-2 * np.exp(-1 / 8)), 6)
        (-1.764994, -1.764994)
    """
    if gaussian not in ("spherical", "diagonal"):
        raise InvalidValueError(f"'gaussian' must be 'spherical' or 'diagonal', got {gaussian!r}")
    if pca_dim is not None and (not isinstance(pca_dim, int) or pca_dim < 1):
        raise InvalidValueError(f"'pca_dim' must be a positive int or None, got {pca_dim!r}")
    f = as_features(features)
    labels = as_labels(y, f.shape[0])
    if pca_dim is not None:
        f = pca_reduce(f, pca_dim)
    yi, C = class_index(labels)
    d = f.shape[1]
    mu = np.stack([f[yi == c].mean(0) for c in range(C)])
    var = np.maximum(np.stack([f[yi == c].var(0) for c in range(C)]), 1e-4)
    if gaussian == "spherical":
        var = np.repeat(var.mean(1, keepdims=True), d, axis=1)
    total = 0.0
    for a in range(C):
        for b in range(C):
            if a == b:
                continue
            s = (var[a] + var[b]) / 2
            logs = np.log(s) - 0.5 * (np.log(var[a]) + np.log(var[b]))
            if legacy_st_spherical and gaussian == "spherical":
                logs = logs[:1]  # the scalar-variance code adds the log term once, not d times
            db = 0.125 * float(((mu[a] - mu[b]) ** 2 / s).sum()) + 0.5 * float(logs.sum())
            total += np.exp(-db)
    return float(-total)
