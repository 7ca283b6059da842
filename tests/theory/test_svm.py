"""Hard-margin SVM (seed 003 Lemma 3): dual identities, agreement with scikit-learn, input errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.theory import is_linearly_separable, linear_separator, max_margin_svm
from pyadvt.theory.random_instances import random_separable_set

IDENTITY_TOL = 1e-6  # relative, see MaxMarginSVM.identity_residuals


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 40), d=st.integers(1, 8),
       margin=st.floats(0.05, 2.0), fit_intercept=st.booleans())
def test_dual_identities_and_kkt(seed, n, d, margin, fit_intercept):
    X, y = random_separable_set(np.random.default_rng(seed), n, d, margin)
    if not fit_intercept and not is_linearly_separable(X, y, fit_intercept=False):
        with pytest.raises(ValueError, match="through the origin"):
            max_margin_svm(X, y, fit_intercept=False)
        return
    svm = max_margin_svm(X, y, fit_intercept=fit_intercept)
    res = svm.identity_residuals()
    assert res["w_expansion"] < IDENTITY_TOL
    assert res["alpha_sum"] < IDENTITY_TOL
    assert res["balance"] < IDENTITY_TOL
    # the same identities, written out independently of identity_residuals
    np.testing.assert_allclose(svm.w, (svm.alpha * svm.y) @ X, rtol=1e-5, atol=1e-6 * max(1, np.linalg.norm(svm.w)))
    assert np.isclose(svm.alpha.sum(), svm.w @ svm.w, rtol=1e-5)
    if fit_intercept:
        assert abs(svm.alpha @ svm.y) <= 1e-6 * max(1.0, svm.alpha.sum())
    # primal feasibility, margin, complementary slackness, support vectors sit on the margin
    m = y * (X @ svm.w + svm.b)
    assert np.all(m >= 1 - 1e-6)
    assert np.isclose(svm.margin, 1 / np.linalg.norm(svm.w))
    assert np.all(svm.alpha >= 0)
    np.testing.assert_allclose(m[svm.support], 1.0, atol=1e-5)
    assert svm.support.any()
    assert np.isclose(svm.c_S, svm.margin ** 2, rtol=1e-5)  # Corollary 6: c_S = 1/sum alpha = gamma*^2
    # optimality: the generator's margin is a lower bound for the max margin (when it used an intercept)
    if fit_intercept:
        assert svm.margin >= margin * (1 - 1e-6)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(4, 30), d=st.integers(1, 5))
def test_matches_sklearn_svc_with_large_C(seed, n, d):
    from sklearn.svm import SVC

    X, y = random_separable_set(np.random.default_rng(seed), n, d, margin=0.5)
    svm = max_margin_svm(X, y)
    ref = SVC(kernel="linear", C=1e8, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(svm.w, ref.coef_[0], rtol=1e-3, atol=1e-3 * np.linalg.norm(svm.w))
    assert np.isclose(svm.b, ref.intercept_[0], rtol=1e-3, atol=1e-3 * max(1, abs(svm.b)))


def test_known_solution_and_support_vectors():
    X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0], [5.0, 0.0], [-3.0, 2.0]])
    y = np.array([-1, 1, 1, 1, -1])
    svm = max_margin_svm(X, y)
    np.testing.assert_allclose(svm.w, [1.0, 0.0], atol=1e-7)
    assert np.isclose(svm.b, -1.0, atol=1e-7)
    assert np.isclose(svm.margin, 1.0)
    assert svm.support.tolist() == [True, True, True, False, False]
    # alpha: w = sum a_i y_i x_i -> (1, 0) = -0 + a1 (2, 1) + a2 (2, -1); sum a y = 0 -> a0 = a1 + a2
    np.testing.assert_allclose(svm.alpha, [0.5, 0.25, 0.25, 0.0, 0.0], atol=1e-7)
    assert svm.predict(X).tolist() == y.tolist()


def test_without_intercept_through_origin():
    X = np.array([[1.0, 1.0], [2.0, -1.0], [-1.0, 0.5]])
    y = np.array([1, 1, -1])
    svm = max_margin_svm(X, y, fit_intercept=False)
    assert svm.b == 0.0
    assert np.all(y * (X @ svm.w) >= 1 - 1e-7)
    assert svm.identity_residuals()["alpha_sum"] < IDENTITY_TOL


@pytest.mark.parametrize("X, y, match", [
    (np.array([[0.0], [1.0], [2.0]]), np.array([1, -1, 1]), "not linearly separable"),
    (np.array([[0.0, 1.0], [0.0, 1.0]]), np.array([1, -1]), "not linearly separable"),
    (np.array([[0.0, np.nan], [1.0, 1.0]]), np.array([1, -1]), "NaN"),
    (np.array([[0.0, np.inf], [1.0, 1.0]]), np.array([1, -1]), "NaN or infinite"),
    (np.array([[0.0], [1.0]]), np.array([1, 1]), "single class"),
    (np.array([[0.0], [1.0], [2.0]]), np.array([1, -1]), "mismatched"),
    (np.array([[0.0], [1.0]]), np.array([1, 0]), r"only \+1 and -1"),
    (np.array([[0.0], [1.0]]), np.array([[1], [-1]]), "vector"),
    (np.zeros((2, 2, 2)), np.array([1, -1]), "shape"),
])
def test_bad_inputs_raise_value_error(X, y, match):
    with pytest.raises(ValueError, match=match):
        max_margin_svm(X, y)


def test_bad_types_and_options():
    with pytest.raises(TypeError, match="X must be"):
        max_margin_svm("abc", np.array([1, -1]))
    with pytest.raises(TypeError, match="numeric"):
        max_margin_svm(np.array([[0.0], [1.0]]), np.array(["a", "b"]))
    with pytest.raises(ValueError, match="sv_tol"):
        max_margin_svm(np.array([[0.0], [1.0]]), np.array([-1, 1]), sv_tol=2.0)
    with pytest.raises(ValueError, match="not installed"):
        max_margin_svm(np.array([[0.0], [1.0]]), np.array([-1, 1]), solver="NO_SUCH_SOLVER")


def test_separability_lp():
    X = np.array([[0.0], [1.0], [2.0]])
    assert is_linearly_separable(X, np.array([-1, 1, 1]))
    assert not is_linearly_separable(X, np.array([1, -1, 1]))
    # through the origin: points on both sides of 0 with the same label cannot be separated
    assert not is_linearly_separable(np.array([[-1.0], [1.0], [2.0]]), np.array([1, 1, -1]), fit_intercept=False)
    sep = linear_separator(X, np.array([-1, 1, 1]))
    assert np.all(sep.margins(X, np.array([-1, 1, 1])) >= 1 - 1e-7)


def test_does_not_mutate_inputs():
    X = np.array([[0.0, 0.0], [2.0, 1.0], [2.0, -1.0]])
    y = np.array([-1, 1, 1])
    X0, y0 = X.copy(), y.copy()
    svm = max_margin_svm(X, y)
    svm.X[0, 0] = 99.0  # the result holds its own copy
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_identity_residuals_detect_wrong_duals():
    """Companion: the residual check is not vacuous - duals off by 1 % (or one dual moved) are flagged."""
    import dataclasses

    X, y = random_separable_set(np.random.default_rng(2), 20, 3, margin=0.3)
    svm = max_margin_svm(X, y)
    assert max(svm.identity_residuals().values()) < IDENTITY_TOL
    scaled = dataclasses.replace(svm, alpha=svm.alpha * 1.01).identity_residuals()
    assert scaled["w_expansion"] > 1e-3 and scaled["alpha_sum"] > 1e-3
    moved = svm.alpha.copy()
    i = int(np.argmax(moved))
    moved[i] *= 0.5
    assert dataclasses.replace(svm, alpha=moved).identity_residuals()["balance"] > 1e-3
