"""Transferable directions for classifiers with a convex decision region (seed 003, Theorems 10-12, 15, 16,
Corollary 17).

Theorem 11: let ``h`` be S-accurate with ``h^{-1}(alpha)`` convex; for ``x_a in S[alpha]`` and
``x_b in S[beta]`` the direction ``v = x_b - x_a`` is adversarial for ``h`` at *every* ``x`` with
``h(x) = alpha`` (not only at points of S). Reason: if the ray ``x + c v`` stayed in the convex region, then
``v`` would be a recession direction of it, so ``x_a + 1 * v = x_b`` would be in the region too.

Instances: R (Theorem 10 via Lemma 13) and R' (Theorem 15 via Lemma 14) with ``alpha = -1``; R''
(Theorem 16) with ``alpha = +1``. Corollary 17: for linearly separable S the same ``v`` (``alpha = -1``)
works for every S-accurate classifier of R' *and* every S-accurate linear classifier — the ReLU direction
transfers to linear models (the converse fails: :mod:`pyadvt.theory.counterexample`).

Example:
    >>> import numpy as np
    >>> from pyadvt.theory.relu_classes import TwoLayerReLU
    >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
    >>> h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), v=np.ones(2), a=0.5)
    >>> res = check_theorem15(h, X, y, points=np.array([[5.0, 0.0], [-3.0, 0.2]]))
    >>> res.claim_holds, res.v.tolist()
    (True, [2.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pyadvt.theory._validate import as_binary_labels, as_points, check_classifier
from pyadvt.theory.checks import JUST_BEYOND, Classifier, TheoremCheck, evaluate_direction
from pyadvt.theory.linear import LinearClassifier
from pyadvt.theory.relu_classes import CLASS_R, CLASS_R_DOUBLE_PRIME, CLASS_R_PRIME, ReLUClass, TwoLayerReLU
from pyadvt.theory.svm import is_linearly_separable
from pyadvt.utils.deprecation import keyword_only


@dataclass(frozen=True, kw_only=True)
class ConvexDirectionCheck(TheoremCheck):
    """Result of Theorem 11 and its instances.

    Attributes:
        v: ``[d]`` the direction ``x_b - x_a``; a_index, b_index: the indices of ``x_a``, ``x_b`` in S.
        points: ``[M, d]`` the checked points (S's ``alpha`` points, then the extra ``points``).
        in_scope: ``[M]`` ``h(x) = alpha`` (the theorem speaks about these only).
        critical_c: ``[M]`` exact first flip along ``v``; adversarial: ``[M]``.
        violations: indices into ``points`` (in scope, not adversarial).

    Returned by the Theorem 10/11/15/16 checkers (seed 003; docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import TwoLayerReLU, check_theorem11
        >>> h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), a=0.5)
        >>> res = check_theorem11(h, np.array([[0.0, 0.0], [2.0, 1.0]]), [-1, 1], convex_label=-1.0)
        >>> res.a_index, res.b_index, res.points.tolist(), res.adversarial.tolist()
        (0, 1, [[0.0, 0.0]], [True])
    """

    convex_label: float
    v: np.ndarray
    a_index: int
    b_index: int
    points: np.ndarray
    in_scope: np.ndarray
    critical_c: np.ndarray
    adversarial: np.ndarray


def _endpoint(y: np.ndarray, label: float, index: int | None, name: str) -> int:
    if index is None:
        hits = np.flatnonzero(y == label)
        if hits.size == 0:
            raise ValueError(f"S has no point with label {label:+.0f} to serve as {name}")
        return int(hits[0])
    index = int(index)
    if not 0 <= index < y.shape[0]:
        raise ValueError(f"{name} index {index} is out of range for {y.shape[0]} points")
    if y[index] != label:
        raise ValueError(f"{name} (index {index}) must have label {label:+.0f}, it has {y[index]:+.0f}")
    return index


@keyword_only("a_index", "b_index", "points", "relu_class", "theorem")
def check_theorem11(h: Classifier, X: ArrayLike, y: ArrayLike, convex_label: float, *, a_index: int | None = None,
                    b_index: int | None = None, points: ArrayLike | None = None, relu_class: ReLUClass | None = None,
                    theorem: str = "Theorem 11") -> ConvexDirectionCheck:
    """Theorem 11: ``v = x_b - x_a`` is adversarial for ``h`` at every ``x`` with ``h(x) = alpha``.

    Args:
        h: classifier with ``predict``/``first_flip`` whose ``convex_label`` region is convex.
        X: ``[N, d]`` the set S; y: ``[N]`` in ``{+1, -1}``.
        convex_label: ``alpha`` (+1 or -1), the label of the convex region.
        a_index / b_index: indices of ``x_a in S[alpha]`` / ``x_b in S[beta]`` (default: the first of each).
        points: extra ``[M, d]`` points to check besides S's ``alpha`` points (e.g. sampled from the region).
        relu_class: if given, membership is part of the hypothesis (with S-accuracy).

    Source: seed 003, Theorem 11; docs/theory.md §6 (seed 003).

    Raises:
        ValueError: ``convex_label`` is not +1 / -1, ``a_index`` / ``b_index`` are out of range or of the wrong class, or ``points`` have another dimension.
        TypeError: malformed ``X`` / ``y``, or ``h`` without ``predict`` / ``first_flip``.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), v=np.ones(2), a=0.5)
        >>> res = check_theorem11(h, X, y, convex_label=-1.0)
        >>> res.theorem, res.convex_label
        ('Theorem 11', -1.0)
    """
    check_classifier(h)
    if convex_label not in (1, -1):
        raise ValueError(f"convex_label must be +1 or -1, got {convex_label}")
    X = as_points(X)
    y = as_binary_labels(y, X.shape[0])
    ia = _endpoint(y, float(convex_label), a_index, "x_a")
    ib = _endpoint(y, -float(convex_label), b_index, "x_b")
    v = X[ib] - X[ia]
    P = X[y == convex_label]
    if points is not None:
        extra = as_points(points, "points")
        if extra.shape[1] != X.shape[1]:
            raise ValueError(f"points have {extra.shape[1]} features, X has {X.shape[1]}")
        P = np.vstack([P, extra])
    failures = list(relu_class.check(h)) if relu_class is not None else []
    wrong = np.flatnonzero(h.predict(X) != y)
    if wrong.size:
        failures.append(f"h is not S-accurate: {wrong.size} point(s) misclassified, e.g. index {int(wrong[0])}")
    # Adversarial = *some* c > 0 flips (the definition), verified just beyond c*. For convex regions every
    # larger c flips as well, but h may be outside the class, so that is not assumed here.
    ev = evaluate_direction(h, P, np.full(P.shape[0], float(convex_label)), v, JUST_BEYOND)
    in_scope = ev.correct
    bad = np.flatnonzero(in_scope & ~ev.adversarial)
    return ConvexDirectionCheck(theorem=theorem, hypothesis_ok=not failures, hypothesis_failures=tuple(failures),
                                claim_holds=bad.size == 0, violations=bad, convex_label=float(convex_label), v=v,
                                a_index=ia, b_index=ib, points=P, in_scope=in_scope, critical_c=ev.critical_c,
                                adversarial=ev.adversarial)


@keyword_only("a_index", "b_index", "points")
def check_theorem10(h: Classifier, X: ArrayLike, y: ArrayLike, *, a_index: int | None = None,
                    b_index: int | None = None, points: ArrayLike | None = None) -> ConvexDirectionCheck:
    """Theorem 10 (class R, Lemma 13): ``x_b - x_a`` is adversarial at every ``x`` with ``h(x) = -1``.

    Hypothesis: ``h`` in R (``v`` all ones, ``a = 0``, strict rule: ``h(x) = +1`` iff some unit is active)
    and S-accurate; then ``h^{-1}(-1)`` is convex (Lemma 13) and Theorem 11 applies with ``alpha = -1``.

    Source: seed 003, Theorem 10; docs/theory.md §6 (seed 003).

    Raises:
        ValueError, TypeError: as :func:`check_theorem11` (``a_index`` / ``b_index`` out of range or of the wrong class, ``points`` of another dimension, malformed ``X`` / ``y``).

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import CLASS_R, TwoLayerReLU, check_theorem10
        >>> h_R = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.array([-0.5, -0.5]))  # +1 iff |x_2| > 0.5
        >>> CLASS_R.contains(h_R)
        True
        >>> S = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]])
        >>> res = check_theorem10(h_R, S, [-1, 1, 1], points=np.array([[5.0, 0.0], [-3.0, 0.2]]))
        >>> res.hypothesis_ok, res.claim_holds, res.critical_c.tolist()
        (True, True, [0.5, 0.5, 0.3])
    """
    return check_theorem11(h, X, y, -1.0, a_index=a_index, b_index=b_index, points=points,
                           relu_class=CLASS_R, theorem="Theorem 10")


@keyword_only("a_index", "b_index", "points")
def check_theorem15(h: Classifier, X: ArrayLike, y: ArrayLike, *, a_index: int | None = None,
                    b_index: int | None = None, points: ArrayLike | None = None) -> ConvexDirectionCheck:
    """Theorem 15 (class R', Lemma 14): ``x_b - x_a`` is adversarial at every ``x`` with ``h(x) = -1``.

    Hypothesis: ``h`` in R' (``v >= 0``, ``a > 0``) and S-accurate; ``f`` is then a nonnegative sum of
    convex functions, so ``h^{-1}(-1) = {f <= a}`` is convex (Lemma 14).

    Source: seed 003, Theorem 15; docs/theory.md §6 (seed 003).

    Raises:
        ValueError, TypeError: as :func:`check_theorem11` (``a_index`` / ``b_index`` out of range or of the wrong class, ``points`` of another dimension, malformed ``X`` / ``y``).

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), v=np.ones(2), a=0.5)
        >>> res = check_theorem15(h, X, y, points=np.array([[5.0, 0.0]]))
        >>> res.theorem, res.v.tolist(), res.in_scope.tolist()
        ('Theorem 15', [2.0, 1.0], [True, True])
    """
    return check_theorem11(h, X, y, -1.0, a_index=a_index, b_index=b_index, points=points,
                           relu_class=CLASS_R_PRIME, theorem="Theorem 15")


@keyword_only("a_index", "b_index", "points")
def check_theorem16(h: Classifier, X: ArrayLike, y: ArrayLike, *, a_index: int | None = None,
                    b_index: int | None = None, points: ArrayLike | None = None) -> ConvexDirectionCheck:
    """Theorem 16 (class R''): ``x_b - x_a`` (``x_a in S[+1]``, ``x_b in S[-1]``) is adversarial at every
    ``x`` with ``h(x) = +1``.

    Hypothesis: ``h`` is an S-accurate :class:`AllActiveReLU`, whose +1 region (every unit active) is an
    intersection of open half-spaces, hence convex: Theorem 11 with ``alpha = +1``.

    Source: seed 003, Theorem 16; docs/theory.md §6 (seed 003).

    Raises:
        ValueError, TypeError: as :func:`check_theorem11` (``a_index`` / ``b_index`` out of range or of the wrong class, ``points`` of another dimension, malformed ``X`` / ``y``).

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import AllActiveReLU, check_theorem16
        >>> g = AllActiveReLU(W=np.eye(2), b=np.zeros(2))   # +1 on the open positive quadrant
        >>> res = check_theorem16(g, np.array([[1.0, 1.0], [-1.0, -1.0]]), [1, -1], points=np.array([[5.0, 0.1]]))
        >>> res.v.tolist(), res.critical_c.tolist(), res.claim_holds
        ([-2.0, -2.0], [0.5, 0.05], True)
    """
    return check_theorem11(h, X, y, 1.0, a_index=a_index, b_index=b_index, points=points,
                           relu_class=CLASS_R_DOUBLE_PRIME, theorem="Theorem 16")


@dataclass(frozen=True, kw_only=True)
class Corollary17Check(TheoremCheck):
    """One :class:`ConvexDirectionCheck` per classifier (``per_classifier``); ``violations`` are the indices
    of the classifiers for which the shared direction ``v`` fails somewhere.

    Returned by :func:`check_corollary17` (seed 003, Corollary 17; docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import LinearClassifier, check_corollary17
        >>> res = check_corollary17([LinearClassifier(np.array([1.0]), -1.0)], np.array([[0.0], [2.0]]), [-1, 1])
        >>> res.v.tolist(), res.violations.tolist(), res.per_classifier[0].theorem
        ([2.0], [], 'Corollary 17')
    """

    v: np.ndarray
    per_classifier: tuple[ConvexDirectionCheck, ...]


@keyword_only("a_index", "b_index", "points")
def check_corollary17(classifiers: Iterable[LinearClassifier | TwoLayerReLU], X: ArrayLike, y: ArrayLike, *,
                      a_index: int | None = None, b_index: int | None = None, points: ArrayLike | None = None
                      ) -> Corollary17Check:
    """Corollary 17: for linearly separable S, ``v = x_b - x_a`` (``x_a in S[-1]``, ``x_b in S[+1]``) is
    adversarial for every ``h in R'_S u H_S`` at every ``x`` with ``h(x) = -1``.

    ``classifiers`` mixes :class:`TwoLayerReLU` (hypothesis: in R', S-accurate) and
    :class:`LinearClassifier` (hypothesis: S-accurate).

    Source: seed 003, Corollary 17; docs/theory.md §6 (seed 003).

    Raises:
        ValueError: ``classifiers`` is empty, or as :func:`check_theorem11`.
        TypeError: a classifier is neither a :class:`LinearClassifier` nor a :class:`TwoLayerReLU`.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), v=np.ones(2), a=0.5)
        >>> res = check_corollary17([h, LinearClassifier(np.array([1.0, 0.0]), -1.0)], X, y)
        >>> res.theorem, len(res.per_classifier)
        ('Corollary 17', 2)
    """
    X = as_points(X)
    y = as_binary_labels(y, X.shape[0])
    failures = [] if is_linearly_separable(X, y) else ["S is not linearly separable"]
    results = []
    for i, h in enumerate(classifiers):
        if not isinstance(h, (LinearClassifier, TwoLayerReLU)):
            raise TypeError(f"classifiers[{i}] must be a LinearClassifier or TwoLayerReLU, got {type(h).__name__}")
        cls = CLASS_R_PRIME if isinstance(h, TwoLayerReLU) else None
        res = check_theorem11(h, X, y, -1.0, a_index=a_index, b_index=b_index, points=points,
                              relu_class=cls, theorem="Corollary 17")
        failures.extend(f"classifiers[{i}]: {f}" for f in res.hypothesis_failures)
        results.append(res)
    if not results:
        raise ValueError("classifiers must not be empty")
    bad = np.array([i for i, r in enumerate(results) if not r.claim_holds], dtype=np.int64)
    return Corollary17Check(theorem="Corollary 17", hypothesis_ok=not failures, hypothesis_failures=tuple(failures),
                            claim_holds=bad.size == 0, violations=bad, v=results[0].v, per_classifier=tuple(results))
