"""Section 6 of seed 003: the max-margin direction need not transfer to ReLU classifiers (checked).

The construction (d = 2), as in the paper's Figure 3:

* ``S``: ``x_0 = (0, 0)`` with label -1; ``(2, 1)`` and ``(2, -1)`` with label +1. By symmetry the
  max-margin SVM is ``w* = (1, 0)``, ``b* = -1`` (margin 1, all three points are support vectors).
* ``h in R'``: ``f(x) = relu(x_2 - x_1/4) + relu(-x_2 - x_1/4)`` (nonnegative output weights
  ``v = (1, 1)``), ``h(x) = +1`` iff ``f(x) > a = 1/4``. ``h`` is S-accurate: ``f(x_0) = 0``,
  ``f(2, +-1) = 1/2``.
* At ``x_0`` Theorem 4's direction is ``-y w* = (1, 0)``; along the ray ``(c, 0)`` both units stay off
  (``f = 0``), so ``h(x_0 + c w*) = -1`` for *every* ``c > 0``: ``-y w*`` is not adversarial for ``h`` at
  ``x_0``, although (Theorem 4) it is adversarial for every S-accurate *linear* classifier at every point of S.
  The -1 region of ``h`` contains the whole cone ``|x_2| <= x_1/4``, so the failure is robust to the
  solver's ~1e-9 error in ``w*`` (with ``f = |x_2|`` a direction ``(1, 1e-17)`` would flip at ``c ~ 1e16``).
* Conversely Theorem 15's ReLU direction ``x_b - x_a = (2, 1) - (0, 0)`` is adversarial for ``h`` at every
  ``-1`` point and (Corollary 17) for every S-accurate linear classifier.

Example:
    >>> res = section6_counterexample().verify()
    >>> res.max_margin_fails, float(res.max_margin_critical_c), res.relu_direction_works
    (True, inf, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pyadvt.theory.checks import FAR_BEYOND, TheoremCheck, evaluate_direction
from pyadvt.theory.linear_directions import check_theorem4
from pyadvt.theory.relu_classes import CLASS_R_PRIME, TwoLayerReLU
from pyadvt.theory.relu_directions import check_corollary17, check_theorem15
from pyadvt.theory.svm import MaxMarginSVM, max_margin_svm


@dataclass(frozen=True)
class Section6Counterexample:
    """A separable set ``S = (X, y)``, an S-accurate ``h in R'`` and the point ``X[point]`` at which the
    max-margin direction ``-y w*`` is not adversarial for ``h``.

    Seed 003's Section 6 instance (docs/theory.md §6 (seed 003)); built by :func:`section6_counterexample`; a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> section6_counterexample().verify().relu_direction_works
        True
    """

    X: np.ndarray
    y: np.ndarray
    h: TwoLayerReLU
    point: int

    def svm(self) -> MaxMarginSVM:
        return max_margin_svm(self.X, self.y)

    def verify(self) -> "CounterexampleCheck":
        """Check every ingredient exactly; see :class:`CounterexampleCheck`."""
        svm = self.svm()
        failures = list(CLASS_R_PRIME.check(self.h))
        if np.any(self.h.predict(self.X) != self.y):
            failures.append("h is not S-accurate")
        x, yx = self.X[self.point:self.point + 1], self.y[self.point:self.point + 1]
        ev = evaluate_direction(self.h, x, yx, -yx[:, None] * svm.w[None, :], FAR_BEYOND)
        # Contrast 1: the same direction works for every S-accurate linear classifier (Theorem 4), e.g. h*.
        linear_ok = check_theorem4(svm, svm.classifier()).claim_holds
        # Contrast 2: the ReLU direction of Theorem 15 works for h and transfers to h* (Corollary 17).
        relu_ok = check_theorem15(self.h, self.X, self.y).claim_holds
        cor17_ok = check_corollary17([self.h, svm.classifier()], self.X, self.y).claim_holds
        fails = bool(ev.correct[0] and not ev.adversarial[0])
        return CounterexampleCheck(theorem="Section 6", hypothesis_ok=not failures,
                                   hypothesis_failures=tuple(failures), claim_holds=fails and linear_ok and relu_ok,
                                   violations=np.zeros(0, np.int64) if fails else np.array([self.point]),
                                   w_star=svm.w, b_star=svm.b, point=self.point,
                                   max_margin_critical_c=float(ev.critical_c[0]), max_margin_fails=fails,
                                   max_margin_works_for_linear=linear_ok, relu_direction_works=relu_ok,
                                   relu_direction_transfers_to_linear=cor17_ok)


@dataclass(frozen=True, kw_only=True)
class CounterexampleCheck(TheoremCheck):
    """``claim_holds``: the max-margin direction fails for ``h`` at ``point`` (``max_margin_critical_c`` is
    ``inf``) while it works for linear classifiers (Theorem 4) and the ReLU direction works (Theorem 15).

    Returned by :meth:`Section6Counterexample.verify` (seed 003, Section 6; docs/theory.md §6 (seed 003)); a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> res = section6_counterexample().verify()
        >>> res.max_margin_fails, res.relu_direction_works
        (True, True)
    """

    w_star: np.ndarray
    b_star: float
    point: int
    max_margin_critical_c: float
    max_margin_fails: bool
    max_margin_works_for_linear: bool
    relu_direction_works: bool
    relu_direction_transfers_to_linear: bool


def section6_counterexample() -> Section6Counterexample:
    """The explicit Section 6 instance described in the module docstring.

    Source: seed 003, Section 6; docs/theory.md §6 (seed 003).

    Raises nothing (a fixed instance).

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> ce = section6_counterexample()
        >>> ce.X.shape, ce.verify().max_margin_fails
        ((3, 2), True)
    """
    X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]])
    y = np.array([-1.0, 1.0, 1.0])
    h = TwoLayerReLU(W=np.array([[-0.25, 1.0], [-0.25, -1.0]]), b=np.zeros(2), v=np.ones(2), a=0.25, strict=True)
    return Section6Counterexample(X=X, y=y, h=h, point=0)
