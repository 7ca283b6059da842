"""Seed 003 Theorems 7 and 9: classifiers trained on independent samples share an adversarial direction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.svm import LinearSVC

from pyadvt.theory import LinearClassifier, MultiClassLinear, check_theorem7, check_theorem9


def _ball(rng, m, d):
    X = rng.normal(size=(m, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X * rng.uniform(0, 1, size=(m, 1)) ** (1 / d)


def _binary_sample(rng, n, u, gap=0.25):
    """n points of the unit ball with |u.x| >= gap, labelled sign(u.x) (a distribution D with R = 1)."""
    X = _ball(rng, 4 * n, u.size)
    X = X[np.abs(X @ u) >= gap][:n]
    return X, np.sign(X @ u)


def _multiclass_sample(rng, n, U, gap=0.4):
    X = _ball(rng, 8 * n, U.shape[1])
    Z = np.sort(X @ U.T, axis=1)
    X = X[Z[:, -1] - Z[:, -2] >= gap][:n]
    return X, np.argmax(X @ U.T, axis=1)


def _fit_binary(X, y):
    return LinearClassifier(LinearSVC(fit_intercept=False, C=10.0).fit(X, y).coef_[0])


def _fit_multiclass(X, y):
    m = LinearSVC(fit_intercept=False, C=0.3).fit(X, y)
    return MultiClassLinear(m.coef_, labels=m.classes_)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), d=st.integers(2, 5))
def test_theorem7_holds_with_nonvacuous_bound(seed, d):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    (X1, y1), (X2, y2) = _binary_sample(rng, 500, u), _binary_sample(rng, 500, u)
    res = check_theorem7(X1, y1, _fit_binary(X1, y1), X2, y2, _fit_binary(X2, y2))
    assert res.bound > 0, res.summary()  # the size claim is really tested
    assert res.claim1_holds and res.claim2_holds and res.claim_holds
    assert min(res.sizes) >= res.bound
    # claim 2, re-derived: every point of S moves to the wrong side of both classifiers along -y w*_S
    U = np.vstack([X1, X2])
    y = np.concatenate([y1, y2])
    S = res.in_S
    assert S.sum() == sum(res.sizes)
    for h in (_fit_binary(X1, y1), _fit_binary(X2, y2)):
        assert h.w @ res.direction > 0  # so y <w_j, x - c y w*_S> = y <w_j, x> - c <w_j, w*_S> turns negative
        assert np.all(y[S] * h.scores(U[S]) >= 1)


def test_theorem7_companion_different_distributions():
    """Break A2/'same D': S(2) has its labels flipped (and h2 fits it). Both classifiers are accurate on their
    own sample (rho small) but no point is classified correctly by both, so |S n S(j)| = 0 < bound."""
    rng = np.random.default_rng(0)
    u = np.array([1.0, 0.0, 0.0])
    (X1, y1), (X2, y2) = _binary_sample(rng, 500, u), _binary_sample(rng, 500, u)
    y2 = -y2
    res = check_theorem7(X1, y1, _fit_binary(X1, y1), X2, y2, _fit_binary(X2, y2))
    assert res.rho < 0.1 and res.bound > 0
    assert res.sizes == (0, 0) and not res.claim1_holds and not res.claim_holds
    assert res.direction is None


def test_theorem7_small_exact_case_and_errors():
    X1 = np.array([[2.0, 0.0], [-2.0, 0.0], [0.1, 5.0]])
    X2 = np.array([[3.0, 1.0], [-3.0, 1.0]])
    y1, y2 = np.array([1, -1, 1]), np.array([1, -1])
    h1, h2 = LinearClassifier(np.array([1.0, 0.0])), LinearClassifier(np.array([1.0, 0.1]))
    res = check_theorem7(X1, y1, h1, X2, y2, h2)
    # (0.1, 5) has margin 0.1 < 1 for h1: not in S
    assert res.in_S.tolist() == [True, True, False, True, True]
    assert res.sizes == (2, 2) and res.claim2_holds
    assert np.isclose(res.rho, 1 / 3) and res.n == 2
    with pytest.raises(ValueError, match="different dimensions"):
        check_theorem7(X1, y1, h1, np.zeros((2, 3)), y2, h2)
    with pytest.raises(ValueError, match=r"only \+1 and -1"):
        check_theorem7(X1, np.array([1, 0, 1]), h1, X2, y2, h2)


def _three_class_directions(rng):
    angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2, 4]) * np.pi / 3
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_theorem9_holds_with_nonvacuous_bound(seed):
    rng = np.random.default_rng(seed)
    U = _three_class_directions(rng)
    (X1, y1), (X2, y2) = _multiclass_sample(rng, 4000, U), _multiclass_sample(rng, 4000, U)
    h1, h2 = _fit_multiclass(X1, y1), _fit_multiclass(X2, y2)
    k, l = (int(c) for c in rng.choice(3, size=2, replace=False))
    res = check_theorem9(X1, y1, h1, X2, y2, h2, k, l)
    assert res.bound > 0, res.summary()
    assert res.claim1_holds and res.claim2_holds
    # re-derive claim 2 for the label-k points: moving along -v lowers z_k - z_l for both classifiers
    for h in (h1, h2):
        pair = h.W[h.row(k)] - h.W[h.row(l)]
        assert pair @ res.direction > 0


def test_theorem9_companion_swapped_labels():
    rng = np.random.default_rng(1)
    U = _three_class_directions(rng)
    (X1, y1), (X2, y2) = _multiclass_sample(rng, 4000, U), _multiclass_sample(rng, 4000, U)
    swap = np.array([1, 0, 2])[y2]  # S(2) comes from a different distribution: labels 0 and 1 exchanged
    res = check_theorem9(X1, y1, _fit_multiclass(X1, y1), X2, swap, _fit_multiclass(X2, swap), 0, 1)
    assert res.bound > 0 and res.rho < 0.1
    assert res.sizes == (0, 0) and not res.claim1_holds and not res.claim_holds


def test_theorem9_input_errors():
    X = np.zeros((4, 2))
    y = np.array([0, 1, 0, 1])
    h = MultiClassLinear(np.eye(2))
    with pytest.raises(TypeError, match="MultiClassLinear"):
        check_theorem9(X, y, LinearClassifier(np.ones(2)), X, y, h, 0, 1)
    with pytest.raises(ValueError, match="does not occur"):
        check_theorem9(X, y, h, X, y, h, 0, 2)
