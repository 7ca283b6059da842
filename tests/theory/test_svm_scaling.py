"""D4: the max-margin SVM is scale-equivariant over the finite range and checks KKT tightness."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyadvt.theory.svm as svm_module
from pyadvt.theory import is_linearly_separable, max_margin_svm
from pyadvt.theory.random_instances import random_separable_set

SCALES = [1e-9, 1e-6, 1e-3, 1.0, 1e3, 1e5, 1e9, 1e12]


def _sklearn_reference(X, y):
    from sklearn.svm import SVC

    ref = SVC(kernel="linear", C=1e8, tol=1e-10).fit(X, y)
    return ref.coef_[0], float(ref.intercept_[0])


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(6, 30), d=st.integers(1, 5))
def test_scale_equivariant_against_sklearn(seed, n, d):
    X, y = random_separable_set(np.random.default_rng(seed), n, d, margin=0.5)
    w_ref, b_ref = _sklearn_reference(X, y)  # hard-margin limit at unit scale
    margin_ref = 1.0 / np.linalg.norm(w_ref)
    for c in SCALES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no inaccurate-solve or KKT warning at any scale
            svm = max_margin_svm(X * c, y)
        assert svm.status == "optimal"
        np.testing.assert_allclose(svm.w * c, w_ref, rtol=1e-3, atol=1e-3 * np.linalg.norm(w_ref))
        assert svm.b == pytest.approx(b_ref, rel=1e-3, abs=1e-3 * max(1.0, abs(b_ref)))
        assert svm.margin == pytest.approx(margin_ref * c, rel=1e-3)
        m = y * ((X * c) @ svm.w + svm.b)  # KKT tightness in the caller's coordinates
        assert m.min() == pytest.approx(1.0, abs=1e-6)
        assert svm.alpha.sum() == pytest.approx(svm.w @ svm.w, rel=1e-5)  # duals rescaled too


@pytest.mark.parametrize("c", [1e-9, 1e12])
def test_linear_svc_direction_and_separability_at_extreme_scales(c):
    from sklearn.svm import LinearSVC

    X, y = random_separable_set(np.random.default_rng(3), 40, 3, margin=0.5)
    assert is_linearly_separable(X * c, y)
    svm = max_margin_svm(X * c, y)
    ref = LinearSVC(C=1e4, loss="hinge", tol=1e-10, max_iter=200000, dual=True).fit(X, y)
    cos = svm.w @ ref.coef_[0] / (np.linalg.norm(svm.w) * np.linalg.norm(ref.coef_[0]))
    assert cos > 0.999


def test_large_offset_is_handled():
    X, y = random_separable_set(np.random.default_rng(1), 30, 2, margin=0.5)
    w_ref, b_ref = _sklearn_reference(X, y)
    svm = max_margin_svm(X + 1e6, y)
    np.testing.assert_allclose(svm.w, w_ref, rtol=1e-3, atol=1e-3 * np.linalg.norm(w_ref))
    assert svm.min_functional_margin() == pytest.approx(1.0, abs=1e-6)


def test_kkt_check_fires_when_tightness_is_missed(monkeypatch):
    """Companion: solving in raw coordinates (the old behaviour) at scale 1e12 misses min y(w.x+b) = 1,
    and the check says so instead of returning a silent 'optimal' margin."""
    X, y = random_separable_set(np.random.default_rng(0), 30, 4, margin=0.5)
    monkeypatch.setattr(svm_module, "_normalised", lambda X, fit_intercept: (X, np.zeros(X.shape[1]), 1.0))
    with pytest.warns(RuntimeWarning, match="KKT tightness not met.*min_i y_i"):
        max_margin_svm(X * 1e12, y)
