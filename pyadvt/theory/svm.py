"""Hard-margin (max-margin) linear SVM with its dual variables, solved exactly with cvxpy (seed 003, §3; docs/theory.md §6).

Primal (docs/theory.md §6): ``min_{w, b} 1/2 ||w||^2  s.t.  y_i (w.x_i + b) >= 1`` for all ``i``. The dual variables of
the constraints are the ``alpha_i >= 0`` of seed 003 Lemma 3, which satisfy

* ``w* = sum_i alpha_i y_i x_i``        (stationarity in ``w``),
* ``sum_i alpha_i y_i = 0``             (stationarity in ``b``; absent with ``fit_intercept=False``),
* ``sum_i alpha_i = ||w*||^2``          (complementary slackness), so the margin is
  ``gamma* = 1/||w*|| = (sum alpha)^(-1/2)`` and Corollary 6's constant is ``c_S = 1/sum alpha = gamma*^2``.

Solver choice: the QP is handed to **Clarabel** (an interior-point conic solver, cvxpy's default for QPs
since cvxpy 1.4) with tightened tolerances (1e-10): interior-point methods return accurate duals, so the
identities above hold to ~1e-8 relative (tested to 1e-6). First-order solvers (OSQP, SCS) return duals only
to ~1e-4 and are used only if asked for by name. Separability is decided *before* the QP by an LP
feasibility problem (HiGHS through ``scipy.optimize.linprog``: find ``(w, b)`` with ``y_i (w.x_i + b) >= 1``),
so non-separable data gives a clear ``ValueError`` rather than a solver status.

Scale: both problems are solved in **normalised coordinates** ``x' = (x - mu) / s`` (``mu`` the mean of
``X`` when there is an intercept, else 0; ``s = max |x - mu|``) and mapped back exactly:
``w = w' / s``, ``b = b' - w.mu``, ``alpha = alpha' / s^2`` (the constraints are the same, the objective
is ``s^2`` times larger). The solvers' absolute tolerances therefore act on a problem of unit scale, and
the result is scale-equivariant: data ``c X`` gives ``w / c``, ``b``, ``c gamma*`` for any ``c`` in the
finite range (tested from 1e-9 to 1e12 against scikit-learn). After solving, KKT tightness
``min_i y_i (w.x_i + b) = 1`` is checked in the original coordinates; a solution that misses it by more
than ``KKT_TOL`` raises a warning naming the value (the reported ``w`` would not be the max-margin one).

Example:
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
    >>> svm = max_margin_svm(X, y)
    >>> (np.round(svm.w, 6) + 0.0).tolist(), round(svm.b, 6), round(svm.margin, 6)
    ([1.0, 0.0], -1.0, 1.0)
    >>> bool(svm.identity_residuals()["alpha_sum"] < 1e-6)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pyadvt.theory._validate import as_binary_labels, as_points, require_both_classes
from pyadvt.theory.linear import LinearClassifier

DEFAULT_SOLVER = "CLARABEL"
KKT_TOL = 1e-6  # |min_i y_i (w.x_i + b) - 1| accepted after solving
_CLARABEL_OPTIONS = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "tol_ktratio": 1e-8,
                     "max_iter": 500}


@dataclass(frozen=True)
class MaxMarginSVM:
    """Solution of the hard-margin SVM on ``S = {(x_i, y_i)}``.

    Attributes (``N`` points in ``d`` dimensions):
        w: ``[d]`` the max-margin normal ``w*``.
        b: the offset ``b*`` (0 when ``fit_intercept=False``).
        alpha: ``[N]`` duals of the margin constraints, ``>= 0`` (tiny negative solver noise clipped to 0).
        margin: ``gamma* = 1/||w*||``.
        support: ``[N]`` bool, support vectors: ``alpha_i > sv_tol * max(alpha)``.
        X, y: the training set (``y`` in ``{+1, -1}``, float).

    The hard-margin SVM of docs/theory.md §6 (seed 003); returned by :func:`max_margin_svm`; a plain record.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> svm = max_margin_svm(X, y)
        >>> svm.predict(X).tolist() == y.tolist()
        True
    """

    w: np.ndarray
    b: float
    alpha: np.ndarray
    margin: float
    support: np.ndarray
    X: np.ndarray
    y: np.ndarray
    fit_intercept: bool
    solver: str
    status: str

    @property
    def alpha_sum(self) -> float:
        """``sum_i alpha_i`` (``= ||w*||^2``)."""
        return float(self.alpha.sum())

    @property
    def c_S(self) -> float:
        """Corollary 6's universal constant ``c_S = 1 / sum_i alpha_i``."""
        return 1.0 / self.alpha_sum

    def classifier(self) -> LinearClassifier:
        return LinearClassifier(self.w, self.b)

    def scores(self, X) -> np.ndarray:
        return self.classifier().scores(X)

    def predict(self, X) -> np.ndarray:
        return self.classifier().predict(X)

    def adversarial_directions(self, y=None) -> np.ndarray:
        """Theorem 4's directions ``-y_i w*`` ``[N, d]`` for labels ``y`` (default: the training labels)."""
        y = self.y if y is None else as_binary_labels(y, np.size(y))
        return -y[:, None] * self.w[None, :]

    def min_functional_margin(self) -> float:
        """``min_i y_i (w*.x_i + b*)``: exactly 1 at the max-margin solution (KKT tightness)."""
        return float(np.min(self.y * (self.X @ self.w + self.b)))

    def identity_residuals(self) -> dict:
        """Relative residuals of the three dual identities (Lemma 3 and complementary slackness).

        ``w_expansion = ||w* - sum alpha_i y_i x_i|| / max(1, ||w*||)``, ``balance = |sum alpha_i y_i| /
        max(1, sum alpha)`` (only meaningful with an intercept), ``alpha_sum = |sum alpha - ||w*||^2| /
        max(1, ||w*||^2)``.
        """
        w_norm2 = float(self.w @ self.w)
        expansion = (self.alpha * self.y) @ self.X
        return {
            "w_expansion": float(np.linalg.norm(self.w - expansion) / max(1.0, np.sqrt(w_norm2))),
            "balance": float(abs(self.alpha @ self.y) / max(1.0, self.alpha_sum)) if self.fit_intercept else 0.0,
            "alpha_sum": float(abs(self.alpha_sum - w_norm2) / max(1.0, w_norm2)),
        }


def linear_separator(X: ArrayLike, y: ArrayLike, fit_intercept: bool = True) -> LinearClassifier | None:
    """Some ``(w, b)`` with ``y_i (w.x_i + b) >= 1`` for all ``i`` (an LP, HiGHS), or ``None`` if none exists.

    ``X [N, d]``, ``y [N]`` in ``{+1, -1}``. With ``fit_intercept=False`` the separator passes through 0.

    Source: the separability assumption of docs/theory.md §6 (seed 003).

    Raises:
        TypeError, ValueError: malformed ``X`` / ``y`` (as :func:`max_margin_svm`).
        RuntimeError: the linear program fails.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> sep = linear_separator(X, y)
        >>> sep.predict(X).tolist() == y.tolist(), linear_separator(np.array([[0.0], [1.0], [2.0]]), np.array([1, -1, 1]))
        (True, None)
    """
    from scipy.optimize import linprog

    X = as_points(X)
    y = as_binary_labels(y, X.shape[0])
    n, d = X.shape
    Xn, mu, scale = _normalised(X, fit_intercept)
    A = -y[:, None] * (np.hstack([Xn, np.ones((n, 1))]) if fit_intercept else Xn)
    res = linprog(np.zeros(A.shape[1]), A_ub=A, b_ub=-np.ones(n), bounds=[(None, None)] * A.shape[1],
                  method="highs")
    if res.status == 2:  # infeasible
        return None
    if res.status != 0:
        raise RuntimeError(f"separability LP failed: {res.message}")
    w = res.x[:d] / scale
    sep = LinearClassifier(w, float(res.x[d] - w @ mu) if fit_intercept else 0.0)
    # HiGHS works to ~1e-7 feasibility; accept only a separator that really separates.
    return sep if np.all(sep.margins(X, y) > 0) else None


def _normalised(X: np.ndarray, fit_intercept: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """``(X - mu) / s`` with ``mu`` the mean (0 without intercept) and ``s`` the max-abs entry."""
    if X.shape[0] == 0:
        raise ValueError("X holds no points (shape [0, d]); pass at least one point of each class")
    mu = X.mean(axis=0) if fit_intercept else np.zeros(X.shape[1])
    Xc = X - mu
    scale = float(np.max(np.abs(Xc)))
    if scale == 0.0 or not np.isfinite(scale):
        scale = 1.0
    return Xc / scale, mu, scale


def is_linearly_separable(X: ArrayLike, y: ArrayLike, fit_intercept: bool = True) -> bool:
    """Whether some hyperplane (through the origin if ``fit_intercept=False``) strictly separates ``(X, y)``.

    Source: the separability assumption of docs/theory.md §6 (seed 003).

    Raises:
        TypeError, ValueError: malformed ``X`` / ``y``.
        RuntimeError: the linear program fails.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> is_linearly_separable(X, y), is_linearly_separable(np.array([[0.0], [1.0], [2.0]]), np.array([1, -1, 1]))
        (True, False)
    """
    return linear_separator(X, y, fit_intercept) is not None


def max_margin_svm(X: ArrayLike, y: ArrayLike, *, fit_intercept: bool = True, solver: str = DEFAULT_SOLVER,
                   sv_tol: float = 1e-6) -> MaxMarginSVM:
    """Hard-margin SVM ``min 1/2 ||w||^2 s.t. y_i (w.x_i + b) >= 1`` with its duals (seed 003 Lemma 3).

    Args:
        X: ``[N, d]`` points (finite).
        y: ``[N]`` labels in ``{+1, -1}``, both classes present.
        fit_intercept: include the offset ``b`` (seed 003 §3); ``False`` for the bias-free classifiers of
            Theorems 7/9 (then ``sum alpha_i y_i = 0`` need not hold).
        solver: cvxpy solver name (default Clarabel, see the module docstring).
        sv_tol: relative threshold on ``alpha`` for the support-vector mask.

    Raises:
        ValueError: NaN/inf, mismatched shapes, labels outside ``{+1, -1}``, a single class, or data that
            is not linearly separable.

    Example:
        >>> import numpy as np
        >>> from pyadvt.theory import *
        >>> X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]]); y = np.array([-1, 1, 1])
        >>> svm = max_margin_svm(X, y)
        >>> round(svm.margin, 6), svm.support.tolist()
        (1.0, [True, True, True])
    """
    import cvxpy as cp

    X = as_points(X)
    y = as_binary_labels(y, X.shape[0])
    require_both_classes(y)
    if not (0.0 < sv_tol < 1.0):
        raise ValueError(f"sv_tol must be in (0, 1), got {sv_tol}")
    if not is_linearly_separable(X, y, fit_intercept):
        where = "by a hyperplane" + ("" if fit_intercept else " through the origin")
        raise ValueError(f"the data (X, y) is not linearly separable {where}: the hard-margin SVM does not exist")
    if solver not in cp.installed_solvers():
        raise ValueError(f"solver {solver!r} is not installed; available: {cp.installed_solvers()}")

    n, d = X.shape
    Xn, mu, scale = _normalised(X, fit_intercept)
    w = cp.Variable(d)
    b = cp.Variable() if fit_intercept else 0.0
    constraint = cp.multiply(y, Xn @ w + b) >= 1
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(w)), [constraint])
    options = _CLARABEL_OPTIONS if solver == "CLARABEL" else {}
    problem.solve(solver=solver, **options)
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or w.value is None:
        raise ValueError(f"the max-margin SVM could not be solved (cvxpy status {problem.status!r} with {solver})")

    if problem.status == cp.OPTIMAL_INACCURATE:
        import warnings

        warnings.warn(f"{solver} reports an inaccurate optimum for the max-margin SVM; check "
                      "identity_residuals() before relying on the duals", RuntimeWarning, stacklevel=2)
    w_star = np.asarray(w.value, dtype=np.float64).reshape(d) / scale
    b_star = float(b.value - w_star @ mu) if fit_intercept else 0.0
    alpha = np.clip(np.asarray(constraint.dual_value, dtype=np.float64).reshape(n), 0.0, None) / scale ** 2
    support = alpha > sv_tol * alpha.max()
    svm = MaxMarginSVM(w=w_star, b=b_star, alpha=alpha, margin=float(1.0 / np.linalg.norm(w_star)),
                       support=support, X=X, y=y, fit_intercept=fit_intercept, solver=solver,
                       status=str(problem.status))
    tight = svm.min_functional_margin()
    if not abs(tight - 1.0) <= KKT_TOL:
        import warnings

        warnings.warn(f"max_margin_svm: KKT tightness not met after solving with {solver}: "
                      f"min_i y_i (w.x_i + b) = {tight:.6g}, expected 1 (tolerance {KKT_TOL:g}); w, b and the "
                      "margin are not the max-margin solution to that accuracy - check the data's conditioning "
                      "or try solver='CLARABEL'", RuntimeWarning, stacklevel=2)
    return svm
