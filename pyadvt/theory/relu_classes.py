"""Two-layer ReLU classifiers and the classes R, R', R'' of seed 003 §5, with Lemmas 13/14.

* :class:`TwoLayerReLU`: ``f(x) = v^T relu(W x + b)``, ``h(x) = +1`` iff ``f(x) > a`` (``strict=True``,
  the paper's ``J_(a, inf)``) or ``f(x) >= a`` (``J_[a, inf)``), else ``-1``.
* :class:`AllActiveReLU`: ``h(x) = +1`` iff every ``relu(w_i.x + b_i) > 0`` (the map ``phi`` of §5).
* Classes (membership via :meth:`ReLUClass.check`):
  ``CLASS_R``  (``v`` all ones, ``a = 0``, strict: "+1 iff some unit is active"; Lemma 13),
  ``CLASS_R_PRIME`` (``v >= 0``, ``a > 0``; Lemma 14), ``CLASS_R_DOUBLE_PRIME`` (:class:`AllActiveReLU`).
  The -1 region of R and R' is convex (``f`` is a nonnegative sum of convex functions, so its sublevel
  sets are convex); the +1 region of R'' is an intersection of open half-spaces.

Every classifier computes its exact first flip along a ray: along ``x + c u`` each pre-activation is affine
in ``c`` (``p_i + c q_i``), so ``f`` is piecewise linear with breakpoints ``-p_i / q_i`` and the first
threshold crossing is found by scanning the segments — no grid search.

:func:`check_region_convexity` tests Lemmas 13/14 on segments between points of a decision region, exactly
(a segment leaves the region iff the first flip from one end towards the other happens before ``t = 1``).

Example:
    >>> import numpy as np
    >>> h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), v=np.ones(2), a=0.5)
    >>> h.predict(np.array([[0.0, 0.0], [0.0, 2.0]])).tolist()
    [-1.0, 1.0]
    >>> CLASS_R_PRIME.contains(h), CLASS_R.contains(h)
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pyadvt.theory._validate import as_points, as_vector, check_classifier
from pyadvt.theory.checks import Classifier, TheoremCheck
from pyadvt.theory.linear import _directions
from pyadvt.utils.deprecation import keyword_only


def _layer(W, b) -> tuple[np.ndarray, np.ndarray]:
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
        raise ValueError(f"W must have shape [L >= 1, d >= 1], got {tuple(W.shape)}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W contains NaN or infinite values")
    return W.copy(), as_vector(b, "b", W.shape[0])


class _PiecewiseLinearRay:
    """Pre-activations along rays: ``P = X W^T + b`` and ``Q = U W^T`` (``[N, L]``)."""

    W: np.ndarray
    b: np.ndarray

    @property
    def dim(self) -> int:
        return self.W.shape[1]

    @property
    def width(self) -> int:
        return self.W.shape[0]

    def preactivations(self, X) -> np.ndarray:
        X = as_points(X)
        if X.shape[1] != self.dim:
            raise ValueError(f"X has {X.shape[1]} features, the network expects {self.dim}")
        return X @ self.W.T + self.b

    def _ray(self, X, direction) -> tuple[np.ndarray, np.ndarray]:
        P = self.preactivations(X)
        Q = _directions(direction, P.shape[0], self.dim) @ self.W.T
        return P, Q


@dataclass(frozen=True, eq=False)
class TwoLayerReLU(_PiecewiseLinearRay):
    """``h(x) = +1`` iff ``v^T relu(W x + b) > a`` (``strict``) or ``>= a`` (not strict), else ``-1``.

    Shapes: ``W [L, d]``, ``b [L]``, ``v [L]`` (default all ones), ``a`` scalar. No sign constraint on ``v``
    or ``a`` here: class membership is decided by :data:`CLASS_R` / :data:`CLASS_R_PRIME`.

    Source: the two-layer ReLU classes of docs/theory.md §6 (seed 003).

    Raises:
        ValueError: ``W`` is not finite ``[L >= 1, d >= 1]``, ``a`` is not finite, or (on use) ``X`` has another dimension.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import TwoLayerReLU
        >>> h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), a=0.5)  # f(x) = |x_2|
        >>> h.output(np.array([[0.0, 0.0], [0.0, 2.0]])).tolist(), h.first_flip(np.zeros((1, 2)), np.array([0.0, 1.0]))
        ([0.0, 2.0], array([0.5]))
    """

    W: np.ndarray
    b: np.ndarray
    v: np.ndarray | None = None
    a: float = 0.0
    strict: bool = True

    def __post_init__(self):
        W, b = _layer(self.W, self.b)
        v = np.ones(W.shape[0]) if self.v is None else as_vector(self.v, "v", W.shape[0])
        a = float(self.a)
        if not np.isfinite(a):
            raise ValueError("a must be finite")
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "strict", bool(self.strict))

    def output(self, X) -> np.ndarray:
        """``f(X) = relu(X W^T + b) v`` ``[N]``."""
        return np.maximum(self.preactivations(X), 0.0) @ self.v

    def _positive(self, g: np.ndarray) -> np.ndarray:
        return g > 0 if self.strict else g >= 0

    def predict(self, X) -> np.ndarray:
        return np.where(self._positive(self.output(X) - self.a), 1.0, -1.0)

    def first_flip(self, X, direction) -> np.ndarray:
        """``c*[i] = inf{c > 0 : h(x_i + c u_i) != h(x_i)}`` (``inf`` if the ray never changes the label).

        ``g(c) = f(x + c u) - a`` is piecewise linear. Between consecutive breakpoints ``-p_i / q_i`` the set
        of active units is fixed (read off at the segment's midpoint, away from rounding at the ends), so
        ``g = alpha + beta c`` there in closed form; the segments are scanned in order and the first one
        containing a flipped ``c`` gives ``c*``.
        """
        P, Q = self._ray(X, direction)
        labels = self.predict(X)
        out = np.empty(P.shape[0])
        for i in range(P.shape[0]):
            out[i] = self._first_crossing(P[i], Q[i], labels[i] > 0)
        return out

    def _first_crossing(self, p: np.ndarray, q: np.ndarray, start_pos: bool) -> float:
        nz = q != 0
        t = -p[nz] / q[nz]
        nodes = np.concatenate([[0.0], np.unique(t[t > 0]), [np.inf]])
        for lo, hi in zip(nodes[:-1], nodes[1:]):
            mid = lo + 1.0 if np.isinf(hi) else 0.5 * (lo + hi)
            on = p + mid * q > 0
            alpha = float(self.v[on] @ p[on]) - self.a
            beta = float(self.v[on] @ q[on])
            c = self._segment_flip(alpha, beta, lo, start_pos)
            if c is not None and c <= hi:
                return c
        return float("inf")

    def _segment_flip(self, alpha: float, beta: float, lo: float, start_pos: bool) -> float | None:
        """Infimum of the flipped ``c >= lo`` for ``g(c) = alpha + beta c`` on one segment (``None``: none).

        From -1 the label flips where ``g > 0`` (strict rule) / ``g >= 0``; from +1 where ``g <= 0`` /
        ``g < 0``. Either way the flipped set of a linear ``g`` is a half-line, whose start is returned.
        """
        sign = -1.0 if start_pos else 1.0  # flipped  <=>  sign * g > 0  (or >= 0 at the boundary)
        slope, at_lo = sign * beta, sign * (alpha + beta * lo)
        boundary_flips = (not self.strict) if not start_pos else self.strict  # is g = 0 itself flipped?
        if at_lo > 0 or (at_lo == 0 and (boundary_flips or slope > 0)):
            return float(lo)
        if slope > 0:
            return float(max(lo, -alpha / beta))
        return None


@dataclass(frozen=True, eq=False)
class AllActiveReLU(_PiecewiseLinearRay):
    """R'': ``h(x) = +1`` iff every ``relu(w_i.x + b_i) > 0`` (i.e. every ``w_i.x + b_i > 0``), else ``-1``.

    Shapes: ``W [L, d]``, ``b [L]``. The +1 region is an intersection of ``L`` open half-spaces (convex).

    Source: the class R'' of docs/theory.md §6 (seed 003).

    Raises:
        ValueError: ``W`` is not finite ``[L >= 1, d >= 1]``, or (on use) ``X`` has another dimension.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import AllActiveReLU
        >>> g = AllActiveReLU(W=np.array([[1.0, 0.0], [0.0, 1.0]]), b=np.zeros(2))
        >>> g.predict(np.array([[1.0, 1.0], [-1.0, -1.0]])).tolist()
        [1.0, -1.0]
    """

    W: np.ndarray
    b: np.ndarray

    def __post_init__(self):
        W, b = _layer(self.W, self.b)
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "b", b)

    def predict(self, X) -> np.ndarray:
        return np.where(np.all(self.preactivations(X) > 0, axis=1), 1.0, -1.0)

    def first_flip(self, X, direction) -> np.ndarray:
        """Exact first label change along ``x + c u``.

        From the +1 region: the first unit to reach 0, ``min_{q_i < 0} p_i / -q_i``. From the -1 region: the
        set of ``c`` with every ``p_i + c q_i > 0`` is an open interval ``(lo, hi)``; ``c* = lo`` if nonempty.
        """
        P, Q = self._ray(X, direction)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(Q != 0, -P / Q, np.nan)
        inside = np.all(P > 0, axis=1)
        leave = np.where(Q < 0, t, np.inf).min(axis=1)
        lo = np.maximum(0.0, np.where(Q > 0, t, -np.inf).max(axis=1))
        hi = np.where(Q < 0, t, np.inf).min(axis=1)
        blocked = np.any((Q == 0) & (P <= 0), axis=1)
        enter = np.where((lo < hi) & ~blocked, lo, np.inf)
        return np.where(inside, leave, enter)


@dataclass(frozen=True)
class ReLUClass:
    """A class of ReLU classifiers from seed 003 §5 with its convex decision region's label.

    Raises:
        ValueError: ``name`` is not 'R', "R'" or "R''", or ``convex_label`` is not +1 / -1.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import CLASS_R, CLASS_R_PRIME, TwoLayerReLU
        >>> h = TwoLayerReLU(W=np.eye(2), b=np.zeros(2), v=np.array([1.0, 2.0]), a=0.5)
        >>> CLASS_R_PRIME.contains(h), CLASS_R_PRIME.convex_label, CLASS_R.check(h)
        (True, -1.0, ('output weights v are not all ones', 'threshold a = 0.5 (R uses a = 0)'))
    """

    name: str
    convex_label: float
    lemma: str

    def __post_init__(self):
        if self.name not in ("R", "R'", "R''"):
            raise ValueError(f"'name' must be one of the seed-003 classes 'R', \"R'\", \"R''\", got {self.name!r} "
                             "(use CLASS_R, CLASS_R_PRIME or CLASS_R_DOUBLE_PRIME)")
        if self.convex_label not in (1.0, -1.0):
            raise ValueError(f"'convex_label' must be +1 or -1, got {self.convex_label!r}")

    def check(self, h) -> tuple[str, ...]:
        """Reasons why ``h`` is not in the class (empty tuple: ``h`` is a member)."""
        if self.name == "R''":
            return () if isinstance(h, AllActiveReLU) else (f"h is a {type(h).__name__}, not an AllActiveReLU",)
        if not isinstance(h, TwoLayerReLU):
            return (f"h is a {type(h).__name__}, not a TwoLayerReLU",)
        reasons = []
        if self.name == "R":
            if not np.all(h.v == 1.0):
                reasons.append("output weights v are not all ones")
            if h.a != 0.0:
                reasons.append(f"threshold a = {h.a} (R uses a = 0)")
            if not h.strict:
                reasons.append("decision rule is f >= a (R uses f > 0)")
        else:  # R'
            if np.any(h.v < 0):
                reasons.append(f"{int(np.sum(h.v < 0))} negative output weight(s) (R' needs v >= 0)")
            if not h.a > 0:
                reasons.append(f"threshold a = {h.a} (R' needs a > 0)")
        return tuple(reasons)

    def contains(self, h) -> bool:
        return not self.check(h)


CLASS_R = ReLUClass("R", -1.0, "Lemma 13")
CLASS_R_PRIME = ReLUClass("R'", -1.0, "Lemma 14")
CLASS_R_DOUBLE_PRIME = ReLUClass("R''", 1.0, "Section 5 (intersection of half-spaces)")


@dataclass(frozen=True, kw_only=True)
class ConvexityCheck(TheoremCheck):
    """Lemma 13/14 on sampled segments: ``pairs [P, 2]`` indices (into ``points``) of each segment's ends,
    ``exit_t [P]`` the
    first ``t in (0, 1)`` where the segment leaves the region (``inf`` if it stays). ``violations`` are the
    indices into ``pairs`` of the segments that leave.

    Returned by :func:`check_region_convexity` (docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import TwoLayerReLU, check_region_convexity
        >>> h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), a=0.5)  # +1 iff |x_2| > 0.5
        >>> res = check_region_convexity(h, np.array([[0.0, 3.0], [0.0, -3.0]]), 1.0)  # the +1 region is not convex
        >>> res.label, res.pairs.tolist(), res.exit_t.round(4).tolist(), res.violations.tolist()
        (1.0, [[0, 1]], [0.4167], [0])
    """

    label: float
    pairs: np.ndarray
    exit_t: np.ndarray


@keyword_only("n_pairs", "rng", "relu_class")
def check_region_convexity(h: Classifier, points: ArrayLike, label: float, *, n_pairs: int = 200,
                           rng: np.random.Generator | int | None = None,
                           relu_class: ReLUClass | None = None) -> ConvexityCheck:
    """Check that the ``label`` region of ``h`` contains every sampled segment between its points.

    Args:
        h: a classifier with ``predict`` and ``first_flip`` (e.g. :class:`TwoLayerReLU`).
        points: ``[N, d]`` candidate points; only those with ``h(x) = label`` are used.
        label: +1 or -1, the region whose convexity is tested (-1 for Lemmas 13/14, +1 for R'').
        n_pairs: number of random pairs (all pairs if fewer exist).
        rng: ``numpy.random.Generator`` or seed.
        relu_class: if given, membership in it is the hypothesis (e.g. ``CLASS_R_PRIME`` for Lemma 14).

    A segment ``[x_i, x_j]`` leaves the region iff ``first_flip(x_i, x_j - x_i) < 1`` (exact).

    Source: the convex-region lemmas of docs/theory.md §6 (seed 003).

    Raises:
        ValueError: ``label`` is not +1 / -1, ``n_pairs < 1``, or fewer than two ``points`` have ``h(x) = label``.
        TypeError: malformed ``points``, or ``h`` without ``predict`` / ``first_flip``.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), v=np.ones(2), a=0.5)
        >>> pts = np.array([[0.0, 0.0], [5.0, 0.2], [-3.0, -0.4], [1.0, 0.5], [0.0, 3.0]])  # the last has h = +1
        >>> res = check_region_convexity(h, pts, -1.0, n_pairs=20, rng=np.random.default_rng(0), relu_class=CLASS_R_PRIME)
        >>> res.theorem, res.hypothesis_ok, res.claim_holds, len(res.pairs)
        ('Lemma 14', True, True, 6)
    """
    check_classifier(h)
    if label not in (1, -1):
        raise ValueError(f"'label' must be +1 or -1 (the region whose convexity is tested), got {label!r}")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"'n_pairs' must be an int >= 1, got {n_pairs!r}")
    rng = np.random.default_rng(rng)
    X = as_points(points, "points")
    region_idx = np.flatnonzero(h.predict(X) == label)
    region = X[region_idx]
    m = region.shape[0]
    if m < 2:
        raise ValueError(f"need at least two points with h(x) = {label} to test convexity, got {m}")
    total = m * (m - 1) // 2
    if total <= n_pairs:
        pairs = np.array([(i, j) for i in range(m) for j in range(i + 1, m)])
    else:
        i = rng.integers(0, m, size=n_pairs)
        j = (i + rng.integers(1, m, size=n_pairs)) % m
        pairs = np.stack([i, j], axis=1)
    c = h.first_flip(region[pairs[:, 0]], region[pairs[:, 1]] - region[pairs[:, 0]])
    exit_t = np.where(c < 1 - 1e-9, c, np.inf)
    bad = np.flatnonzero(np.isfinite(exit_t))
    failures = relu_class.check(h) if relu_class is not None else ()
    name = relu_class.lemma if relu_class is not None else "convexity"
    return ConvexityCheck(theorem=name, hypothesis_ok=not failures, hypothesis_failures=failures,
                          claim_holds=bad.size == 0, violations=bad, label=float(label), pairs=region_idx[pairs],
                          exit_t=exit_t)
