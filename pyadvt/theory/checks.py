"""Structured results of the theorem checkers and the exact evaluation of an adversarial direction.

A checker answers "does the theorem's claim hold on this instance?" and, when it does not, *where* it fails
(which points, which ``c``). Every checker separates the theorem's **hypothesis** (e.g. "h is S-accurate",
"the output weights are nonnegative") from its **claim**, so a test can assert "hypothesis => claim" on random
instances and, as a companion, that breaking the hypothesis makes the checker report a violation.

Adversarial direction (seed 003, §2 Definition): ``v`` is adversarial for ``h`` at ``(x, y)`` if ``h(x) = y``
and ``h(x + c v) != y`` for some ``c > 0``. :func:`evaluate_direction` decides this exactly for classifiers
exposing ``predict(X)`` and ``first_flip(X, V)`` (linear, multi-class linear and the ReLU classes) and
re-verifies every finite flip point by evaluating ``h`` just beyond it.

Example:
    >>> import numpy as np
    >>> from pyadvt.theory.linear import LinearClassifier
    >>> h = LinearClassifier(np.array([1.0]), 0.0)
    >>> ev = evaluate_direction(h, np.array([[1.0], [2.0]]), np.array([1.0, 1.0]), np.array([-1.0]))
    >>> ev.critical_c.tolist(), ev.adversarial.tolist()
    ([1.0, 2.0], [True, True])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from pyadvt.theory._validate import _label_vector, as_points, check_classifier

# Multipliers of c* at which a flip is re-verified: just beyond c*, and (for claims about *every* larger c)
# far beyond it.
JUST_BEYOND = (1.0 + 1e-6,)
FAR_BEYOND = (1.0 + 1e-6, 1.5, 10.0, 1e3)


@dataclass(frozen=True)
class DirectionEval:
    """Per-point exact evaluation of directions ``V [N, d]`` for one classifier at points ``X [N, d]``.

    Attributes (all ``[N]``):
        correct: ``h(x_i) = y_i`` (the definition's precondition).
        critical_c: ``c*_i = inf{c > 0 : h(x_i + c v_i) != h(x_i)}``; ``inf`` when the ray never leaves.
        adversarial: ``correct & (c* finite)`` and the flip re-verified by evaluating ``h``.
        verified: for finite ``c*``, ``h(x + c v) != h(x)`` at every checked ``c`` beyond ``c*``.

    Returned by :func:`evaluate_direction` (docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import LinearClassifier, evaluate_direction
        >>> h = LinearClassifier(np.array([1.0]), 0.0)   # +1 iff x > 0
        >>> ev = evaluate_direction(h, np.array([[1.0], [-1.0]]), np.array([1.0, 1.0]), np.array([-1.0]))
        >>> ev.correct.tolist(), ev.critical_c.tolist(), ev.verified.tolist(), ev.adversarial.tolist()
        ([True, False], [1.0, inf], [True, False], [True, False])
    """

    correct: np.ndarray
    critical_c: np.ndarray
    adversarial: np.ndarray
    verified: np.ndarray


class Classifier(Protocol):
    """What the exact checkers use of a classifier ``h`` (every classifier of :mod:`pyadvt.theory` but
    :class:`~pyadvt.theory.MaxMarginSVM` has both): ``predict(X [N, d]) -> [N]`` labels and
    ``first_flip(X [N, d], direction [d] or [N, d]) -> [N]`` the exact ``c*`` (``inf`` if never)."""

    def predict(self, X: ArrayLike, /) -> np.ndarray: ...

    def first_flip(self, X: ArrayLike, direction: ArrayLike, /) -> np.ndarray: ...


def beyond(c_star: np.ndarray, factor: float) -> np.ndarray:
    """A ``c`` just (or far) beyond ``c*``: ``c* * factor + 1e-9 * factor``, so ``c* = 0`` also moves."""
    return c_star * factor + 1e-9 * factor


def evaluate_direction(h: Classifier, X: np.ndarray, y: np.ndarray, V: np.ndarray,
                       factors: tuple[float, ...] = JUST_BEYOND) -> DirectionEval:
    """Exact adversarial-direction evaluation of ``V`` for ``h`` at ``(X, y)`` (seed 003 §2 Definition).

    Args:
        h: a classifier with ``predict(X [N, d]) -> [N]`` and ``first_flip(X, V) -> [N]``.
        X: ``[N, d]`` points; y: ``[N]`` labels; V: ``[d]`` or ``[N, d]`` directions.
        factors: multipliers of ``c*`` at which the flip is re-verified (``FAR_BEYOND`` for claims about
            every larger ``c``).

    Raises:
        ValueError: ``factors`` are not finite numbers > 1, or ``V`` is neither ``[d]`` nor ``[N, d]``.
        TypeError: ``X`` / ``y`` / the classifier are of the wrong kind (non-numeric arrays, labels, classifier type).
        ValueError: ``X`` is not finite ``[N, d]``, ``y`` does not hold one valid label per point, or dimensions disagree.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> ev = evaluate_direction(LinearClassifier(np.array([1.0, 0.0]), -1.0), X, y, np.array([-1.0, 0.0]))
        >>> bool(ev.adversarial[1:].all()), bool(ev.adversarial[0])   # the point with c* = inf never flips
        (True, False)
    """
    check_classifier(h)
    factors = tuple(factors)
    if not factors or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and np.isfinite(f) and f > 1
                              for f in factors):
        raise ValueError(f"'factors' must be finite multipliers > 1 of c* (the flip is re-verified beyond it), "
                         f"got {factors!r}")
    X = as_points(X)
    V = np.asarray(V, dtype=np.float64)
    if V.shape not in ((X.shape[1],), X.shape):
        raise ValueError(f"'V' must be one direction [d={X.shape[1]}] or one per point [N, d]={X.shape}, "
                         f"got shape {V.shape}")
    V = np.broadcast_to(V, X.shape)
    y = _label_vector(y, X.shape[0], "y")
    pred = h.predict(X)
    correct = pred == np.asarray(y)
    c_star = np.asarray(h.first_flip(X, V), dtype=np.float64)
    finite = np.isfinite(c_star)
    verified = np.zeros(X.shape[0], dtype=bool)
    if finite.any():
        idx = np.flatnonzero(finite)
        ok = np.ones(idx.size, dtype=bool)
        for factor in factors:
            c = beyond(c_star[idx], factor)
            ok &= h.predict(X[idx] + c[:, None] * V[idx]) != pred[idx]
        verified[idx] = ok
    return DirectionEval(correct=correct, critical_c=c_star, adversarial=correct & finite & verified,
                         verified=verified)


@dataclass(frozen=True, kw_only=True)
class TheoremCheck:
    """Outcome of checking one theorem on one instance.

    Attributes:
        theorem: which result (e.g. ``"Theorem 4"``), numbered as in seed 003.
        hypothesis_ok: the checkable hypotheses hold (listed in ``hypothesis_failures`` otherwise).
        claim_holds: the theorem's conclusion holds on this instance.
        violations: indices of the points where the claim fails (empty when it holds).

    Example:
        >>> from pyadvt.theory import TheoremCheck
        >>> res = TheoremCheck(theorem="Theorem 4", hypothesis_ok=False, hypothesis_failures=("h is not S-accurate",),
        ...                    claim_holds=False)
        >>> res.consistent, res.summary()["n_violations"]   # a failed hypothesis leaves the theorem unrefuted
        (True, 0)
    """

    theorem: str
    hypothesis_ok: bool
    hypothesis_failures: tuple[str, ...] = ()
    claim_holds: bool
    violations: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def consistent(self) -> bool:
        """``hypothesis => claim`` on this instance (what the theorem asserts)."""
        return (not self.hypothesis_ok) or self.claim_holds

    def summary(self) -> dict:
        """JSON-friendly overview."""
        return {"theorem": self.theorem, "hypothesis_ok": bool(self.hypothesis_ok),
                "hypothesis_failures": list(self.hypothesis_failures), "claim_holds": bool(self.claim_holds),
                "n_violations": int(np.size(self.violations)),
                "violations": [int(i) for i in np.asarray(self.violations)[:20]]}
