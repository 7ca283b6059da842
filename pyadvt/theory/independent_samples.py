"""Soft-margin classifiers trained on independent samples (seed 003, Theorems 7 and 9).

Two classifiers ``h_1, h_2`` trained (in any way) on independent samples ``S(1), S(2)`` of the same
distribution. The constructive set of the proofs is

    ``S = {(x, y) in S(1) u S(2) : both classifiers are correct on x with margin >= 1}``

(Theorem 7: ``y <w_j, x> >= 1``; Theorem 9: ``h_j(x) = y`` and ``s (w_k - w_l).x >= 1`` with ``s = +1`` for
label ``k``, ``-1`` for ``l``). ``S`` is linearly separable (by either classifier), and its max-margin normal
``w*_S`` is, by Theorem 4, an adversarial direction for both classifiers at every point of ``S`` (claim 2).
Claim 1 is the probabilistic size bound (holds with probability ``>= 1 - 4 n^-2``)

    Theorem 7: ``|S n S(j)| >= (1 - 2 rho) n - 2 B R sqrt(n) - 4 sqrt(n ln n)``
    Theorem 9: ``|S n S(j)[k, l]| >= (1 - 2 rho) n - 4 B R sqrt(n) - 4 sqrt(n ln n)``

with ``B`` the largest weight norm (Theorem 9: largest row norm), ``R = max ||x||``, ``rho`` the largest
fraction of ``S(j)`` failing the margin condition (Assumptions A3 / B3) and ``n = min_j |S(j)|``
(``|S(j)[k, l]|``; the paper takes equal sizes). Independence (A2/B2) cannot be checked from the data; a
sample pair drawn from *different* distributions is the natural way to break it (see the tests).

The paper's classifiers have no bias; a bias in ``h_j`` is accepted and enters the margins.

Example:
    >>> import numpy as np
    >>> from pyadvt.theory import LinearClassifier
    >>> X1 = np.array([[2.0, 0.0], [-2.0, 0.0]]); X2 = np.array([[3.0, 1.0], [-3.0, 1.0]]); y = np.array([1, -1])
    >>> res = check_theorem7(X1, y, LinearClassifier(np.array([1.0, 0.0])), X2, y,
    ...                      LinearClassifier(np.array([1.0, 0.1])))
    >>> res.sizes, res.claim2_holds
    ((2, 2), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pyadvt.theory._validate import as_binary_labels, as_int_labels, as_points
from pyadvt.theory.checks import FAR_BEYOND, TheoremCheck, evaluate_direction
from pyadvt.theory.linear import MultiClassLinear
from pyadvt.theory.linear_directions import LinearLike, _binary_pair, as_linear_classifier
from pyadvt.theory.svm import max_margin_svm


@dataclass(frozen=True, kw_only=True)
class TwoSampleCheck(TheoremCheck):
    """Result of Theorem 7 / 9.

    Attributes:
        in_S: ``[N1 + N2]`` bool over the (restricted) union ``S(1) u S(2)`` (``S(1)`` first): membership in S.
        source: ``[N1 + N2]`` which sample each union point came from (1 or 2).
        sizes: ``(|S n S(1)|, |S n S(2)|)``; bound: the theorem's lower bound; n, rho, B, R: its inputs.
        direction: ``w*_S [d]`` (``None`` if S lacks one of the two classes).
        adversarial: ``[2, N1 + N2]`` bool, the direction is adversarial for ``h_j`` (row j) at the point.
        claim1_holds, claim2_holds: sizes >= bound; adversarial for both classifiers on all of S.
        violations: union indices in S where claim 2 fails.

    Returned by :func:`check_theorem7` / :func:`check_theorem9` (seed 003, Theorems 7 and 9; docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X1 = np.array([[2.0, 0.0], [-2.0, 0.0]]); X2 = np.array([[3.0, 1.0], [-3.0, 1.0]]); y = np.array([1, -1])
        >>> h1 = LinearClassifier(np.array([1.0, 0.0])); h2 = LinearClassifier(np.array([1.0, 0.1]))
        >>> check_theorem7(X1, y, h1, X2, y, h2).theorem
        'Theorem 7'
    """

    in_S: np.ndarray
    source: np.ndarray
    sizes: tuple[int, int]
    bound: float
    n: int
    rho: float
    B: float
    R: float
    direction: np.ndarray | None
    adversarial: np.ndarray
    claim1_holds: bool
    claim2_holds: bool

    def summary(self) -> dict:
        out = super().summary()
        out.update(sizes=list(self.sizes), bound=float(self.bound), n=self.n, rho=float(self.rho), B=float(self.B),
                   R=float(self.R), claim1_holds=bool(self.claim1_holds), claim2_holds=bool(self.claim2_holds),
                   size_S=int(self.in_S.sum()))
        return out


def _size_bound(n: int, rho: float, BR_coeff: float) -> float:
    if n < 2:
        return -np.inf
    return (1 - 2 * rho) * n - BR_coeff * np.sqrt(n) - 4 * np.sqrt(n * np.log(n))


def _two_sample_result(theorem: str, U: np.ndarray, s: np.ndarray, source: np.ndarray, good: np.ndarray,
                       classifiers, labels: np.ndarray, sign_to_direction, B: float, BR_factor: float,
                       n: int) -> TwoSampleCheck:
    """Shared body of Theorems 7 and 9.

    ``U [M, d]`` union points, ``s [M]`` binary labels (+1/-1), ``good [2, M]`` per-classifier margin
    condition, ``classifiers`` the two models, ``labels [M]`` the labels they must keep (binary or
    multi-class), ``sign_to_direction(s, w) -> [M, d]`` the direction each point is pushed along.
    """
    in_S = good[0] & good[1]
    rho = max(float(np.mean(~good[j][source == j + 1])) for j in range(2))
    R = float(np.max(np.linalg.norm(U, axis=1)))
    bound = _size_bound(n, rho, BR_factor * B * R)
    sizes = (int(np.sum(in_S & (source == 1))), int(np.sum(in_S & (source == 2))))
    claim1 = all(sz >= bound for sz in sizes)
    adversarial = np.zeros((2, U.shape[0]), dtype=bool)
    failures: list[str] = []
    direction = None
    if in_S.any() and np.any(s[in_S] > 0) and np.any(s[in_S] < 0):
        direction = max_margin_svm(U[in_S], s[in_S]).w
        D = sign_to_direction(s[in_S], direction)
        for j, h in enumerate(classifiers):
            adversarial[j, in_S] = evaluate_direction(h, U[in_S], labels[in_S], D, FAR_BEYOND).adversarial
        claim2 = bool(adversarial[:, in_S].all())
    else:
        claim2 = not in_S.any()
        if in_S.any():
            failures.append("S contains a single class: the max-margin direction w*_S is undefined")
    if bound <= 0:
        failures.append(f"the size bound is vacuous ({bound:.1f} <= 0): claim 1 holds trivially")
    violations = np.flatnonzero(in_S & ~(adversarial[0] & adversarial[1])) if direction is not None else \
        np.flatnonzero(in_S)
    return TwoSampleCheck(theorem=theorem, hypothesis_ok=rho < 0.5, hypothesis_failures=tuple(failures),
                          claim_holds=claim1 and claim2, violations=violations, in_S=in_S, source=source,
                          sizes=sizes, bound=float(bound), n=n, rho=rho, B=B, R=R, direction=direction,
                          adversarial=adversarial, claim1_holds=claim1, claim2_holds=claim2)


def _stack(X1, X2, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X1, X2 = as_points(X1, f"X1 ({what})"), as_points(X2, f"X2 ({what})")
    if X1.shape[1] != X2.shape[1]:
        raise ValueError(f"X1 and X2 have different dimensions ({X1.shape[1]} vs {X2.shape[1]})")
    U = np.vstack([X1, X2])
    source = np.concatenate([np.ones(X1.shape[0], np.int64), np.full(X2.shape[0], 2, np.int64)])
    return X1, X2, U, source


def check_theorem7(X1: ArrayLike, y1: ArrayLike, h1: LinearLike, X2: ArrayLike, y2: ArrayLike, h2: LinearLike
                   ) -> TwoSampleCheck:
    """Theorem 7: binary linear classifiers ``h_1, h_2`` trained on independent ``S(1) = (X1, y1)`` and
    ``S(2) = (X2, y2)`` (``X [N_j, d]``, ``y [N_j]`` in ``{+1, -1}``) share the adversarial direction
    ``-y w*_S`` on the set ``S`` of points both classify with margin ``>= 1``.

    Hypothesis (checkable part): ``rho < 1/2``. Claims: 1 (size bound) and 2 (shared direction).

    Source: seed 003, Theorem 7; docs/theory.md §6 (seed 003).

    Raises:
        ValueError: ``X1`` and ``X2`` have different dimensions, or as :func:`check_theorem4` for each sample.
        TypeError: a classifier is not linear.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X1 = np.array([[2.0, 0.0], [-2.0, 0.0]]); X2 = np.array([[3.0, 1.0], [-3.0, 1.0]]); y = np.array([1, -1])
        >>> h1 = LinearClassifier(np.array([1.0, 0.0])); h2 = LinearClassifier(np.array([1.0, 0.1]))
        >>> res = check_theorem7(X1, y, h1, X2, y, h2)
        >>> res.sizes, res.claim1_holds, res.claim2_holds
        ((2, 2), True, True)
    """
    X1, X2, U, source = _stack(X1, X2, "S(1)/S(2) points")
    y = np.concatenate([as_binary_labels(y1, X1.shape[0], "y1"), as_binary_labels(y2, X2.shape[0], "y2")])
    hs = [as_linear_classifier(h1), as_linear_classifier(h2)]
    good = np.stack([h.margins(U, y) >= 1 for h in hs])
    B = max(float(np.linalg.norm(h.w)) for h in hs)
    return _two_sample_result("Theorem 7", U, y, source, good, hs, y, lambda s, w: -s[:, None] * w[None, :], B,
                              2.0, min(X1.shape[0], X2.shape[0]))


def check_theorem9(X1: ArrayLike, y1: ArrayLike, h1: MultiClassLinear, X2: ArrayLike, y2: ArrayLike,
                   h2: MultiClassLinear, k: int, l: int) -> TwoSampleCheck:
    """Theorem 9: multi-class ``h_j = argmax(W_j x + b_j)`` trained on independent ``S(1), S(2)`` (integer
    labels). On ``S(1)[k, l] u S(2)[k, l]``, ``S`` = points both classify correctly with
    ``s (w_k - w_l).x >= 1``; ``v = w*_S`` (max-margin of S with ``k -> +1, l -> -1``) gives ``-v``
    adversarial at label-``k`` points and ``+v`` at label-``l`` points for both classifiers.

    ``in_S``/``source``/``adversarial`` index the restricted union ``S(1)[k, l]`` then ``S(2)[k, l]``.

    Source: seed 003, Theorem 9; docs/theory.md §6 (seed 003).

    Raises:
        TypeError: ``h1`` / ``h2`` are not :class:`MultiClassLinear`.
        ValueError: as :func:`check_theorem7` and :func:`multiclass_direction`.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]]); y = np.array([0, 1, 2])
        >>> h = MultiClassLinear(W=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), b=np.array([0.0, -1.5, -1.5]), labels=np.array([0, 1, 2]))
        >>> h2 = MultiClassLinear(W=h.W * 2, b=h.b * 2, labels=h.labels)
        >>> res = check_theorem9(X, y, h, X, y, h2, 1, 2)
        >>> res.theorem, res.claim_holds
        ('Theorem 9', True)
    """
    for h in (h1, h2):
        if not isinstance(h, MultiClassLinear):
            raise TypeError(f"h1 and h2 must be MultiClassLinear, got {type(h).__name__}")
    X1, X2, _, _ = _stack(X1, X2, "S(1)/S(2) points")
    y1, y2 = as_int_labels(y1, X1.shape[0], "y1"), as_int_labels(y2, X2.shape[0], "y2")
    i1, _ = _binary_pair(X1, y1, k, l)
    i2, _ = _binary_pair(X2, y2, k, l)
    _, _, U, source = _stack(X1[i1], X2[i2], "S(j)[k, l]")
    labels = np.concatenate([y1[i1], y2[i2]])
    s = np.where(labels == k, 1.0, -1.0)
    hs = [h1, h2]
    good = np.stack([(h.predict(U) == labels) & (s * h.pair(k, l).scores(U) >= 1) for h in hs])
    B = max(float(np.max(np.linalg.norm(h.W, axis=1))) for h in hs)
    return _two_sample_result("Theorem 9", U, s, source, good, hs, labels, lambda s_, v: -s_[:, None] * v[None, :],
                              B, 4.0, min(i1.size, i2.size))
