"""NCE: negative conditional entropy of the target labels given the source's hard predictions
(Tran et al., ICCV 2019; docs/theory.md §11.3)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import xlogy

from pyadvt.selection._inputs import as_labels, class_index

__all__ = ["nce"]


def nce(source_labels: Any, y: Any) -> float:
    """``NCE = -H(Y | Z) = sum_z P(z) sum_y P(y | z) log P(y | z)`` (higher = better; ``<= 0``).

    Args:
        source_labels: ``[n]`` the source's predicted classes ``z_i = argmax theta(x_i)``.
        y: ``[n]`` target labels.

    ``P(y, z)`` are co-occurrence counts over ``n``; only source classes that occur enter. The
    authors' codes add 1e-20 inside the log; here ``0 log 0 = 0`` exactly (``scipy.special.xlogy``),
    which changes the value by less than ``C * 5e-19`` and makes a perfect source score exactly 0.
    Source: docs/theory.md §11.3 (Tran et al., ICCV 2019).

    Raises:
        TypeError: (``InvalidTypeError``) when ``source_labels`` or ``y`` is not a tensor, array or list.
        ValueError: (``InvalidValueError``) when ``y`` or ``source_labels`` is not ``[n]`` integer
            labels ``>= 0`` of the same length, or ``y`` has fewer than two distinct classes.

    Example:
        >>> nce([0, 0, 1, 1], [1, 1, 0, 0]), round(nce([0, 0, 0, 0], [0, 1, 0, 1]), 6)
        (0.0, -0.693147)
    """
    y = as_labels(y, len(source_labels) if hasattr(source_labels, "__len__") else -1)
    z = as_labels(source_labels, y.shape[0], name="source_labels", min_classes=1)
    yi, C = class_index(y)
    zi, Cs = class_index(z)
    joint = np.zeros((Cs, C))
    np.add.at(joint, (zi, yi), 1.0 / y.shape[0])
    pz = joint.sum(1, keepdims=True)
    cond = joint / pz  # every z here occurs, so P(z) > 0
    return float((pz[:, 0] * xlogy(cond, cond).sum(1)).sum())
