"""Linear classifiers of Charles et al. (2019, seed 003) §3-4: binary ``sign(w.x + b)`` and multi-class
``argmax(W x + b)``, with the exact "first flip" of a classifier along a ray.

A direction ``v`` is *adversarial* for ``h`` at ``(x, y)`` (seed 003, §2 Definition) when ``h(x) = y`` and
``h(x + c v) != y`` for some ``c > 0``. For the piecewise-linear classifiers here the set of such ``c`` is
computed exactly: :meth:`first_flip` returns ``c* = inf{c > 0 : h(x + c v) != h(x)}`` (``inf`` when the ray
never leaves the decision region).

Example:
    >>> import numpy as np
    >>> h = LinearClassifier(np.array([1.0, 0.0]), -0.5)
    >>> h.predict(np.array([[1.0, 3.0], [0.0, 3.0]])).tolist()
    [1.0, -1.0]
    >>> float(h.first_flip(np.array([[1.0, 3.0]]), np.array([-1.0, 0.0]))[0])
    0.5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyadvt.theory._validate import as_int_labels, as_points, as_vector


def _directions(direction, n: int, d: int) -> np.ndarray:
    """A single direction ``[d]`` or one per point ``[n, d]`` -> ``[n, d]``."""
    D = np.asarray(direction, dtype=np.float64)
    if D.ndim == 1:
        D = np.broadcast_to(D, (n, D.shape[0]))
    if D.shape != (n, d):
        raise ValueError(f"direction must have shape [{d}] or [{n}, {d}], got {tuple(np.shape(direction))}")
    if not np.all(np.isfinite(D)):
        raise ValueError("direction contains NaN or infinite values")
    return D


@dataclass(frozen=True)
class LinearClassifier:
    """Binary linear classifier ``h(x) = sign(w.x + b)`` (seed 003, §3).

    ``h(x) = 0`` on the hyperplane itself; 0 equals neither label, so a point on the boundary counts as
    misclassified (the paper's ``sign`` convention).

    Shapes: ``w [d]``, ``b`` scalar; ``scores(X [N, d]) -> [N]``.

    Raises:
        ValueError: ``w`` is empty or zero, ``b`` is not finite, or (on use) ``X`` has another dimension.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> h = LinearClassifier(np.array([1.0, 0.0]), -1.0)
        >>> h.predict(X).tolist()
        [-1.0, 1.0, 1.0]
    """

    w: np.ndarray
    b: float = 0.0

    def __post_init__(self):
        w = as_vector(self.w, "w")
        if w.size == 0:
            raise ValueError("w must have at least one entry")
        b = float(self.b)
        if not np.isfinite(b):
            raise ValueError("b must be finite")
        object.__setattr__(self, "w", w)
        object.__setattr__(self, "b", b)

    @property
    def dim(self) -> int:
        return self.w.shape[0]

    def normalized(self) -> "LinearClassifier":
        """The same classifier with ``||w|| = 1`` (the paper's normalisation of the class H)."""
        norm = float(np.linalg.norm(self.w))
        if norm == 0.0:
            raise ValueError("w is zero: the classifier has no decision boundary")
        return LinearClassifier(self.w / norm, self.b / norm)

    def scores(self, X) -> np.ndarray:
        X = as_points(X)
        if X.shape[1] != self.dim:
            raise ValueError(f"X has {X.shape[1]} features, the classifier expects {self.dim}")
        return X @ self.w + self.b

    def predict(self, X) -> np.ndarray:
        return np.sign(self.scores(X))

    def margins(self, X, y) -> np.ndarray:
        """Per-point signed margins ``y (w.x + b)`` (unnormalised)."""
        s = self.scores(X)
        return np.asarray(y, dtype=np.float64) * s

    def first_flip(self, X, direction) -> np.ndarray:
        """``c*[i] = inf{c > 0 : h(x_i + c v_i) != h(x_i)}`` (``inf`` if none; ``nan`` if ``h(x_i) = 0``).

        For a linear score ``s(c) = s0 + c w.v`` the label changes exactly when ``s`` reaches 0, and stays
        changed for every larger ``c``.
        """
        X = as_points(X)
        s0 = self.scores(X)
        slope = _directions(direction, X.shape[0], self.dim) @ self.w
        out = np.full(X.shape[0], np.inf)
        toward = s0 * slope < 0
        out[toward] = -s0[toward] / slope[toward]
        out[s0 == 0] = np.nan
        return out


@dataclass(frozen=True)
class MultiClassLinear:
    """Multi-class linear classifier ``h(x) = argmax_i (W x + b)_i`` (seed 003, §4, the class M).

    Ties are broken towards the smaller class index (numpy ``argmax``). ``labels[i]`` names row ``i``
    (default ``0..K-1``). Shapes: ``W [K, d]``, ``b [K]``.

    Raises:
        ValueError: ``W`` is not finite ``[K >= 2, d]``, ``labels`` are not distinct, or (on use) a label or a dimension is unknown.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]]); y = np.array([0, 1, 2])
        >>> h = MultiClassLinear(W=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), b=np.array([0.0, -1.5, -1.5]), labels=np.array([0, 1, 2]))
        >>> h.predict(X).tolist()
        [0, 1, 2]
    """

    W: np.ndarray
    b: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __post_init__(self):
        W = np.asarray(self.W, dtype=np.float64)
        if W.ndim != 2 or W.shape[0] < 2:
            raise ValueError(f"W must have shape [K >= 2, d], got {tuple(W.shape)}")
        if not np.all(np.isfinite(W)):
            raise ValueError("W contains NaN or infinite values")
        b = np.zeros(W.shape[0]) if self.b is None else as_vector(self.b, "b", W.shape[0])
        labels = np.arange(W.shape[0]) if self.labels is None else as_int_labels(self.labels, W.shape[0], "labels")
        if np.unique(labels).size != labels.size:
            raise ValueError("labels must be distinct")
        object.__setattr__(self, "W", W.copy())
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "labels", labels)

    @property
    def dim(self) -> int:
        return self.W.shape[1]

    def row(self, label: int) -> int:
        hit = np.flatnonzero(self.labels == label)
        if hit.size == 0:
            raise ValueError(f"label {label} is not one of the classifier's labels {self.labels.tolist()}")
        return int(hit[0])

    def scores(self, X) -> np.ndarray:
        X = as_points(X)
        if X.shape[1] != self.dim:
            raise ValueError(f"X has {X.shape[1]} features, the classifier expects {self.dim}")
        return X @ self.W.T + self.b

    def predict(self, X) -> np.ndarray:
        return self.labels[np.argmax(self.scores(X), axis=1)]

    def pair(self, k: int, l: int) -> LinearClassifier:
        """The binary classifier ``(w_k - w_l).x + (b_k - b_l)`` (positive side = label ``k``)."""
        i, j = self.row(k), self.row(l)
        return LinearClassifier(self.W[i] - self.W[j], self.b[i] - self.b[j])

    def first_flip(self, X, direction) -> np.ndarray:
        """``c*[i] = inf{c > 0 : h(x_i + c v_i) != h(x_i)}`` (``inf`` if the ray never changes the label).

        With ``y = h(x)`` and ``D_j(c) = (z_y - z_j)(x + c v) = D_j(0) + c delta_j`` linear, ``h`` leaves ``y``
        at the first ``c`` where some ``D_j`` reaches 0 (or goes negative for ``j < y`` because of the
        tie-break); once ``D_j < 0`` it stays negative, so every larger ``c`` also flips.
        """
        X = as_points(X)
        V = _directions(direction, X.shape[0], self.dim)
        Z = self.scores(X)
        rows = np.argmax(Z, axis=1)
        zy = Z[np.arange(X.shape[0]), rows]
        gap = zy[:, None] - Z  # D_j(0) >= 0
        slope = (V @ self.W.T)
        slope = slope[np.arange(X.shape[0]), rows][:, None] - slope  # delta_j
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(slope < 0, gap / -slope, np.inf)
        c[np.arange(X.shape[0]), rows] = np.inf
        return c.min(axis=1)
