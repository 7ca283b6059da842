"""Transferable adversarial directions of linear classifiers (seed 003, Charles et al. 2019, §3-4).

Checkers, each returning a :class:`~pyadvt.theory.checks.TheoremCheck` subclass that says which points and
which ``c``:

* :func:`check_theorem4` - for every S-accurate linear ``h`` and ``(x, y) in S``, ``-y w*`` is adversarial.
* :func:`check_theorem5` - ``h(x - c y w*) != h(x)`` for every ``c > y(w.x + b) / (gamma_h sum alpha)``
  (``||w|| = 1``); reports the exact critical ``c`` of each point and verifies larger ``c`` flip.
* :func:`check_corollary6` - some point of S flips for every ``c > c_S = 1 / sum alpha``.
* :func:`check_theorem8` - multi-class ``argmax(Wx + b)``: ``v*_{k,l}`` (binary SVM of ``S[k]`` vs ``S[l]``)
  gives ``-v*`` adversarial on ``S[k]`` and ``+v*`` on ``S[l]``.
* :func:`check_theorem7` / :func:`check_theorem9` live in :mod:`pyadvt.theory.independent_samples`.

Why Theorem 4 holds (the fact every checker here exercises): with ``w* = sum alpha_i y_i x_i`` and
``sum alpha_i y_i = 0``, ``<w, w*> = sum alpha_i y_i (w.x_i + b) >= gamma_h sum alpha > 0`` for every
S-accurate ``(w, b)``, so ``y (w.(x - c y w*) + b) = y(w.x + b) - c <w, w*>`` turns negative.

Example:
    >>> import numpy as np
    >>> from pyadvt.theory import LinearClassifier, max_margin_svm
    >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
    >>> svm = max_margin_svm(X, y)
    >>> check_theorem4(svm, LinearClassifier(np.array([1.0, 0.3]), -1.2)).claim_holds
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Union

import numpy as np
from numpy.typing import ArrayLike

from pyadvt.theory._validate import as_binary_labels, as_int_labels, as_points
from pyadvt.theory.checks import FAR_BEYOND, TheoremCheck, beyond, evaluate_direction
from pyadvt.theory.linear import LinearClassifier, MultiClassLinear
from pyadvt.theory.svm import MaxMarginSVM, max_margin_svm
from pyadvt.utils.deprecation import keyword_only

# Relative slack for comparing an exact critical c with a theorem's bound (the SVM duals are accurate to
# ~1e-8 relative with Clarabel; 1e-6 leaves room for ill-conditioned instances).
RTOL = 1e-6


class _FittedLinearModel(Protocol):
    """A fitted binary scikit-learn linear model: ``coef_ [1, d]`` (``intercept_`` optional)."""

    coef_: ArrayLike


#: what :func:`as_linear_classifier` accepts as a binary linear classifier ``h``
LinearLike = Union[LinearClassifier, MaxMarginSVM, tuple[ArrayLike, float], np.ndarray, _FittedLinearModel]


def as_linear_classifier(h: LinearLike) -> LinearClassifier:
    """Accept a :class:`LinearClassifier`, a ``(w, b)`` pair, a bare ``w``, a :class:`MaxMarginSVM` or a
    fitted binary scikit-learn linear model (``coef_ [1, d]``, ``intercept_``; positive side = ``classes_[1]``).

    Source: the linear classifiers of docs/theory.md §6 (seed 003).

    Raises:
        TypeError: ``h`` is none of these.
        ValueError: ``h`` is a multi-class scikit-learn model (use :class:`MultiClassLinear`).

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import as_linear_classifier
        >>> h = as_linear_classifier((np.array([1.0, 0.0]), -1.0))   # a (w, b) pair
        >>> h.predict(np.array([[0.0, 0.0], [2.0, 1.0]])).tolist(), as_linear_classifier(h) is h
        ([-1.0, 1.0], True)
    """
    if isinstance(h, LinearClassifier):
        return h
    if isinstance(h, MaxMarginSVM):
        return h.classifier()
    if hasattr(h, "coef_"):
        coef = np.asarray(h.coef_, dtype=np.float64)
        if coef.ndim == 2 and coef.shape[0] != 1:
            raise ValueError("h is a multi-class scikit-learn model; use MultiClassLinear for argmax classifiers")
        return LinearClassifier(coef.reshape(-1), float(np.asarray(getattr(h, "intercept_", 0.0)).reshape(-1)[0]))
    if isinstance(h, tuple) and len(h) == 2:
        return LinearClassifier(np.asarray(h[0]), float(h[1]))
    if isinstance(h, np.ndarray) and h.ndim == 1:
        return LinearClassifier(h, 0.0)
    raise TypeError(f"h must be a LinearClassifier, (w, b) pair or fitted linear model, got {type(h).__name__}")


def _check_svm(svm) -> MaxMarginSVM:
    if not isinstance(svm, MaxMarginSVM):
        raise TypeError(f"'svm' must be the MaxMarginSVM of S (from max_margin_svm(X, y)), got {type(svm).__name__}")
    return svm


def _check_rtol(rtol) -> float:
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not np.isfinite(rtol) or rtol < 0:
        raise ValueError(f"'rtol' must be a finite number >= 0, got {rtol!r}")
    return float(rtol)


def _points(svm: MaxMarginSVM, X, y) -> tuple[np.ndarray, np.ndarray]:
    _check_svm(svm)
    if X is None and y is None:
        return svm.X, svm.y
    if X is None or y is None:
        raise ValueError("give both X and y (or neither, to check the SVM's training set S)")
    X = as_points(X)
    if X.shape[1] != svm.w.shape[0]:
        raise ValueError(f"X has {X.shape[1]} features, the SVM has {svm.w.shape[0]}")
    return X, as_binary_labels(y, X.shape[0])


def _accuracy_failures(h, X: np.ndarray, y: np.ndarray, what: str = "S") -> tuple[str, ...]:
    wrong = np.flatnonzero(h.predict(X) != y)
    if wrong.size:
        return (f"h is not {what}-accurate: {wrong.size} point(s) misclassified, e.g. index {int(wrong[0])}",)
    return ()


@dataclass(frozen=True, kw_only=True)
class DirectionCheck(TheoremCheck):
    """Per-point result: ``directions [N, d]``, ``correct [N]`` (``h(x) = y``), ``critical_c [N]`` (exact
    ``inf{c > 0 : h(x + c v) != y}``, ``inf`` if never) and ``adversarial [N]``.

    Returned by :func:`check_theorem4` (seed 003, Theorem 4; docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import check_theorem4, max_margin_svm
        >>> svm = max_margin_svm(np.array([[0.0], [2.0]]), np.array([-1, 1]))   # w* = [1], b* = -1
        >>> res = check_theorem4(svm, (np.array([1.0]), -1.0))
        >>> res.directions.round(6).tolist(), res.critical_c.round(6).tolist(), res.correct.tolist()
        ([[1.0], [-1.0]], [1.0, 1.0], [True, True])
    """

    directions: np.ndarray
    correct: np.ndarray
    critical_c: np.ndarray
    adversarial: np.ndarray


def check_theorem4(svm: MaxMarginSVM, h: LinearLike, X: ArrayLike | None = None, y: ArrayLike | None = None
                   ) -> DirectionCheck:
    """Theorem 4: for ``h`` S-accurate and ``(x, y) in S``, ``-y w*`` is an adversarial direction for ``h``.

    Args:
        svm: the max-margin SVM of ``S`` (from :func:`max_margin_svm`).
        h: a binary linear classifier (see :func:`as_linear_classifier`).
        X, y: points to check (default: ``S`` itself); ``[N, d]`` and ``[N]`` in ``{+1, -1}``.

    Hypothesis: ``h`` is S-accurate. Claim: every checked point is adversarial along ``-y w*``.

    Source: seed 003, Theorem 4; docs/theory.md §6 (seed 003).

    Raises:
        TypeError: ``svm`` is not a :class:`MaxMarginSVM` or ``h`` not a linear classifier.
        ValueError: only one of ``X``/``y`` given, or ``X`` has another dimension than the SVM.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> svm = max_margin_svm(X, y)
        >>> h = LinearClassifier(np.array([1.0, 0.3]), -1.2)
        >>> res = check_theorem4(svm, h)
        >>> res.hypothesis_ok, res.claim_holds, res.adversarial.tolist()
        (True, True, [True, True, True])
        >>> res.critical_c.round(3).tolist()
        [1.2, 1.1, 0.5]
    """
    h = as_linear_classifier(h)
    X, y = _points(svm, X, y)
    D = -y[:, None] * svm.w[None, :]
    ev = evaluate_direction(h, X, y, D, FAR_BEYOND)
    failures = _accuracy_failures(h, svm.X, svm.y)
    bad = np.flatnonzero(~ev.adversarial)
    return DirectionCheck(theorem="Theorem 4", hypothesis_ok=not failures, hypothesis_failures=failures,
                          claim_holds=bad.size == 0, violations=bad, directions=D, correct=ev.correct,
                          critical_c=ev.critical_c, adversarial=ev.adversarial)


@dataclass(frozen=True, kw_only=True)
class Theorem5Check(DirectionCheck):
    """Adds ``gamma_h`` (margin of the normalised h on S), ``c_bound [N]`` (Theorem 5's
    ``y(w.x + b) / (gamma_h sum alpha)``) and ``flips_beyond_bound [N]`` (h flips at every checked
    ``c > c_bound``: ``c_bound * {1 + 1e-6, 1.5, 10, 1e3}``).

    Returned by :func:`check_theorem5` (seed 003, Theorem 5; docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import check_theorem5, max_margin_svm
        >>> res = check_theorem5(max_margin_svm(np.array([[0.0], [2.0]]), np.array([-1, 1])), (np.array([2.0]), -2.0))
        >>> round(res.gamma_h, 6), res.c_bound.round(6).tolist(), res.flips_beyond_bound.tolist()
        (1.0, [1.0, 1.0], [True, True])
    """

    gamma_h: float
    c_bound: np.ndarray
    flips_beyond_bound: np.ndarray


@keyword_only("rtol")
def check_theorem5(svm: MaxMarginSVM, h: LinearLike, X: ArrayLike | None = None, y: ArrayLike | None = None,
                   *, rtol: float = RTOL) -> Theorem5Check:
    """Theorem 5: for ``h = (w, b)`` with ``||w|| = 1`` (``h`` is normalised here) and margin ``gamma_h`` on S,
    and any ``(x, y)`` with ``y(w.x + b) > 0``: ``h(x - c y w*) != h(x)`` for all
    ``c > y(w.x + b) / (gamma_h sum alpha)``.

    The exact critical value ``c*`` of each point is ``y(w.x + b) / <w, w*>``; the claim is ``c* <= c_bound``
    (up to ``rtol``) and that ``h`` is flipped at several ``c`` beyond ``c_bound``.

    Hypothesis: ``gamma_h > 0`` (h S-accurate); points with ``y(w.x + b) <= 0`` are outside the theorem and
    are reported in ``hypothesis_failures`` (and not counted as violations).

    Source: seed 003, Theorem 5; docs/theory.md §6 (seed 003).

    Raises:
        TypeError, ValueError: as :func:`check_theorem4`; ValueError also for a negative or non-finite ``rtol``.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> svm = max_margin_svm(X, y)
        >>> res = check_theorem5(svm, (np.array([2.0, 0.6]), -2.4))   # h is normalised to ||w|| = 1 first
        >>> res.claim_holds, bool(res.flips_beyond_bound.all()), bool(np.all(res.critical_c <= res.c_bound))
        (True, True, True)
    """
    _check_rtol(rtol)
    h = as_linear_classifier(h).normalized()
    X, y = _points(svm, X, y)
    gamma_h = float(np.min(h.margins(svm.X, svm.y)))
    failures = list(_accuracy_failures(h, svm.X, svm.y))
    D = -y[:, None] * svm.w[None, :]
    ev = evaluate_direction(h, X, y, D, FAR_BEYOND)
    in_scope = h.margins(X, y) > 0
    if not in_scope.all():
        failures.append(f"{int((~in_scope).sum())} checked point(s) have y(w.x + b) <= 0 (outside Theorem 5)")
    with np.errstate(divide="ignore", invalid="ignore"):
        c_bound = h.margins(X, y) / (gamma_h * svm.alpha_sum) if gamma_h > 0 else np.full(X.shape[0], np.nan)
    flips = np.zeros(X.shape[0], dtype=bool)
    ok_bound = np.isfinite(c_bound) & (c_bound > 0)
    if ok_bound.any():
        flips[ok_bound] = True
        for factor in FAR_BEYOND:
            c = beyond(c_bound[ok_bound], factor)
            flips[ok_bound] &= h.predict(X[ok_bound] + c[:, None] * D[ok_bound]) != y[ok_bound]
    point_ok = (ev.critical_c <= c_bound * (1 + rtol)) & flips
    bad = np.flatnonzero(in_scope & ~point_ok)
    return Theorem5Check(theorem="Theorem 5", hypothesis_ok=gamma_h > 0, hypothesis_failures=tuple(failures),
                         claim_holds=bad.size == 0, violations=bad, directions=D, correct=ev.correct,
                         critical_c=ev.critical_c, adversarial=ev.adversarial, gamma_h=gamma_h, c_bound=c_bound,
                         flips_beyond_bound=flips)


@dataclass(frozen=True, kw_only=True)
class Corollary6Check(TheoremCheck):
    """``c`` (the constant tested, default ``c_S = 1/sum alpha``), ``critical_c [N]`` of each point of S
    along ``-y w*``, ``flipping`` (indices of the points flipped for every ``c' > c``) and ``witness`` (the
    point of minimum margin for ``h``, the proof's choice; ``-1`` if none).

    Returned by :func:`check_corollary6` (seed 003, Corollary 6; docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import LinearClassifier, check_corollary6, max_margin_svm
        >>> svm = max_margin_svm(np.array([[0.0], [2.0]]), np.array([-1, 1]))   # c_S = 1 / sum alpha = 1
        >>> res = check_corollary6(svm, LinearClassifier(np.array([1.0]), -1.0))
        >>> round(res.c, 6), res.critical_c.round(6).tolist(), res.flipping.tolist(), res.witness
        (1.0, [1.0, 1.0], [0, 1], 0)
    """

    c: float
    critical_c: np.ndarray
    flipping: np.ndarray
    witness: int


@keyword_only("c", "rtol")
def check_corollary6(svm: MaxMarginSVM, h: LinearLike, *, c: float | None = None, rtol: float = RTOL
                     ) -> Corollary6Check:
    """Corollary 6: for every ``h in H_S`` some ``(x, y) in S`` has ``h(x - c y w*) != h(x)`` for all
    ``c > c_S = 1 / sum alpha`` (``= gamma*^2``).

    Args:
        svm: max-margin SVM of S; h: binary linear classifier.
        c: the constant to test (default ``svm.c_S``); pass a smaller one to see the claim fail.

    Source: seed 003, Corollary 6; docs/theory.md §6 (seed 003).

    Raises:
        TypeError, ValueError: as :func:`check_theorem4`; ValueError also for a non-positive ``c``.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> svm = max_margin_svm(X, y)
        >>> h = (np.array([1.0, 0.3]), -1.2)   # (w, b)
        >>> check_corollary6(svm, h).claim_holds, check_corollary6(svm, h, c=0.1).claim_holds   # c < c_S can fail
        (True, False)
    """
    h = as_linear_classifier(h)
    c_test = svm.c_S if c is None else float(c)
    if not np.isfinite(c_test) or c_test <= 0:
        raise ValueError(f"c must be a positive finite number, got {c}")
    failures = _accuracy_failures(h, svm.X, svm.y)
    D = -svm.y[:, None] * svm.w[None, :]
    ev = evaluate_direction(h, svm.X, svm.y, D, FAR_BEYOND)
    flipping = np.flatnonzero(ev.correct & (ev.critical_c <= c_test * (1 + rtol)))
    if flipping.size:  # verify "every c' > c" at several c' for the flipping points
        for factor in FAR_BEYOND:
            cc = beyond(np.full(flipping.size, c_test), factor)
            still = h.predict(svm.X[flipping] + cc[:, None] * D[flipping]) != svm.y[flipping]
            flipping = flipping[still]
    margins = h.normalized().margins(svm.X, svm.y)
    witness = int(np.argmin(margins)) if margins.min() > 0 else -1
    return Corollary6Check(theorem="Corollary 6", hypothesis_ok=not failures, hypothesis_failures=failures,
                           claim_holds=flipping.size > 0,
                           violations=np.zeros(0, np.int64) if flipping.size else np.arange(svm.X.shape[0]),
                           c=c_test, critical_c=ev.critical_c, flipping=flipping, witness=witness)


def _binary_pair(X: np.ndarray, y: np.ndarray, k: int, l: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``S[k, l]`` and their binary labels (+1 for k, -1 for l)."""
    if k == l:
        raise ValueError(f"k and l must be different labels, got k = l = {k}")
    for lab, name in ((k, "k"), (l, "l")):
        if not np.any(y == lab):
            raise ValueError(f"label {name}={lab} does not occur in y")
    idx = np.flatnonzero((y == k) | (y == l))
    return idx, np.where(y[idx] == k, 1.0, -1.0)


def multiclass_direction(X: ArrayLike, y: ArrayLike, k: int, l: int) -> tuple[np.ndarray, MaxMarginSVM]:
    """Theorem 8's ``v*_{k,l}``: the max-margin normal of ``S[k]`` (+1) versus ``S[l]`` (-1).

    ``X [N, d]``, ``y [N]`` integer labels. Returns ``(v [d], svm)``; ``-v`` is adversarial on ``S[k]``,
    ``+v`` on ``S[l]`` for every S-accurate ``argmax(Wx + b)``.

    Source: seed 003, Theorem 8; docs/theory.md §6 (seed 003).

    Raises:
        ValueError: ``k == l``, a label does not occur in ``y``, or the two classes are not linearly separable.
        TypeError: malformed ``X`` / ``y``.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import multiclass_direction
        >>> X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]]); y = np.array([0, 1, 2])
        >>> v, svm_kl = multiclass_direction(X, y, 1, 2)
        >>> v.round(4).tolist()
        [0.3333, -0.3333]
    """
    X = as_points(X)
    y = as_int_labels(y, X.shape[0])
    idx, s = _binary_pair(X, y, k, l)
    svm = max_margin_svm(X[idx], s)
    return svm.w, svm


@dataclass(frozen=True, kw_only=True)
class Theorem8Check(DirectionCheck):
    """Checked on ``S[k, l]`` (``indices`` into S). ``v`` is ``v*_{k,l}``; ``pair_critical_c [M]`` is the
    flip point of the pairwise score ``z_k - z_l`` alone (the proof's bound: ``critical_c <= pair_critical_c``).

    Returned by :func:`check_theorem8` (seed 003, Theorem 8; docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import MultiClassLinear, check_theorem8
        >>> X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]]); y = np.array([0, 1, 2])
        >>> h = MultiClassLinear(W=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), b=np.array([0.0, -1.5, -1.5]), labels=np.array([0, 1, 2]))
        >>> res = check_theorem8(X, y, h, k=1, l=2)
        >>> res.indices.tolist(), bool(np.all(res.critical_c <= res.pair_critical_c * (1 + 1e-9)))
        ([1, 2], True)
    """

    k: int
    l: int
    v: np.ndarray
    indices: np.ndarray
    pair_critical_c: np.ndarray


def check_theorem8(X: ArrayLike, y: ArrayLike, h: MultiClassLinear, k: int, l: int) -> Theorem8Check:
    """Theorems 8 (hard margin, multi-class): for every S-accurate ``h = argmax(Wx + b)``, ``-v*_{k,l}`` is
    adversarial at every ``(x, k) in S`` and ``+v*_{k,l}`` at every ``(x, l) in S``.

    Args:
        X: ``[N, d]``; y: ``[N]`` integer labels; h: :class:`MultiClassLinear` whose ``labels`` name its rows;
        k, l: the two labels.

    Source: seed 003, Theorem 8; docs/theory.md §6 (seed 003).

    Raises:
        TypeError: ``h`` is not a :class:`MultiClassLinear`.
        ValueError: as :func:`multiclass_direction`.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]]); y = np.array([0, 1, 2])
        >>> h = MultiClassLinear(W=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), b=np.array([0.0, -1.5, -1.5]), labels=np.array([0, 1, 2]))
        >>> res = check_theorem8(X, y, h, 1, 2)
        >>> res.hypothesis_ok, res.claim_holds
        (True, True)
    """
    if not isinstance(h, MultiClassLinear):
        raise TypeError(f"h must be a MultiClassLinear, got {type(h).__name__}")
    X = as_points(X)
    y = as_int_labels(y, X.shape[0])
    v, _ = multiclass_direction(X, y, k, l)
    idx, s = _binary_pair(X, y, k, l)
    D = -s[:, None] * v[None, :]
    ev = evaluate_direction(h, X[idx], y[idx], D, FAR_BEYOND)
    pair_c = h.pair(k, l).first_flip(X[idx], D)
    failures = _accuracy_failures(h, X, y)
    bad = np.flatnonzero(~ev.adversarial)
    return Theorem8Check(theorem="Theorem 8", hypothesis_ok=not failures, hypothesis_failures=failures,
                         claim_holds=bad.size == 0, violations=idx[bad], directions=D, correct=ev.correct,
                         critical_c=ev.critical_c, adversarial=ev.adversarial, k=k, l=l, v=v, indices=idx,
                         pair_critical_c=pair_c)
