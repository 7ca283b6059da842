"""Principal-component reduction used by NLEEP and GBC (docs/theory.md §11.2, §11.7).

The same projection as scikit-learn's ``PCA(svd_solver="full")``: centre, SVD, keep the leading
right singular vectors (signs do not matter to either estimator).
"""

from __future__ import annotations

import numpy as np

from pyadvt.utils.validation import InvalidValueError

__all__ = ["pca_reduce"]


def pca_reduce(f: np.ndarray, n_components: int | float) -> np.ndarray:
    """Project ``f: [n, D]`` (float64) on its leading principal components.

    ``n_components``: an int ``k`` (clipped to ``min(n, D)``) or a fraction in (0, 1): the fewest
    components whose explained-variance ratio exceeds it (scikit-learn's rule). Features with no
    variance at all give one all-zero component.
    """
    z = f - f.mean(0, keepdims=True)
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    var = s ** 2
    if isinstance(n_components, float) and 0 < n_components < 1:
        total = var.sum()
        if total <= 0:
            return np.zeros((f.shape[0], 1))
        ratio = np.cumsum(var) / total
        k = int(np.searchsorted(ratio, n_components, side="right")) + 1
    else:
        k = int(n_components)
        if k < 1:
            raise InvalidValueError(f"'n_components' must be a positive int or a fraction in (0, 1), "
                                    f"got {n_components!r}")
    k = min(k, vt.shape[0])
    return z @ vt[:k].T
