"""Seed 003 linear theory: Theorems 4, 5, Corollary 6, Theorem 8 (property tests + companions) and the exact
first-flip computation of linear classifiers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.theory import (LinearClassifier, MultiClassLinear, as_linear_classifier, check_corollary6,
                           check_theorem4, check_theorem5, check_theorem8, max_margin_svm, multiclass_direction)
from pyadvt.theory.random_instances import (random_linear_separator, random_multiclass_separator,
                                            random_multiclass_set, random_separable_set)

SEEDS = st.integers(0, 2**31 - 1)


def _instance(seed, n, d, margin):
    rng = np.random.default_rng(seed)
    X, y = random_separable_set(rng, n, d, margin)
    return X, y, max_margin_svm(X, y), random_linear_separator(X, y, rng, spread=rng.uniform(0.1, 3.0))


def _brute_first_flip(h, x, v, c_max, num=4001):
    """First grid c in (0, c_max] where h(x + c v) != h(x) (inf if none)."""
    cs = np.linspace(0, c_max, num)[1:]
    lab = h.predict(x[None, :])[0]
    diff = np.flatnonzero(h.predict(x[None, :] + cs[:, None] * v[None, :]) != lab)
    return cs[diff[0]] if diff.size else np.inf


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, d=st.integers(1, 5), k=st.integers(2, 4))
def test_first_flip_matches_dense_grid(seed, d, k):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(6, d))
    V = rng.normal(size=(6, d))
    for h in (LinearClassifier(rng.normal(size=d), rng.normal()),
              MultiClassLinear(rng.normal(size=(k, d)), rng.normal(size=k))):
        c = h.first_flip(X, V)
        for i in range(6):
            c_max = 2 * c[i] if np.isfinite(c[i]) else 50.0
            grid = _brute_first_flip(h, X[i], V[i], c_max)
            step = c_max / 4000
            if np.isfinite(c[i]):
                assert abs(grid - c[i]) <= step * 1.01 + 1e-12
            else:
                assert grid == np.inf


# --------------------------------------------------------------------------------------------- Theorem 4
@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, n=st.integers(2, 30), d=st.integers(1, 6), margin=st.floats(0.05, 2.0))
def test_theorem4_holds_for_random_accurate_separators(seed, n, d, margin):
    X, y, svm, h = _instance(seed, n, d, margin)
    res = check_theorem4(svm, h)
    assert res.hypothesis_ok and res.claim_holds and res.violations.size == 0
    assert res.adversarial.all() and res.correct.all()
    # the exact critical c agrees with the proof's formula y(w.x + b) / <w, w*>
    np.testing.assert_allclose(res.critical_c, h.margins(X, y) / (h.w @ svm.w), rtol=1e-9)
    # <w, w*> = sum alpha_i y_i (w.x_i + b) >= gamma_h sum alpha  (the heart of the proof)
    assert h.w @ svm.w >= h.margins(X, y).min() * svm.alpha_sum * (1 - 1e-6)


def test_theorem4_also_for_sklearn_linear_svc():
    from sklearn.svm import LinearSVC

    X, y = random_separable_set(np.random.default_rng(3), 40, 4, margin=0.5)
    model = LinearSVC(C=100.0, max_iter=100000).fit(X, y)
    h = as_linear_classifier(model)
    assert np.all(h.predict(X) == y)
    assert check_theorem4(max_margin_svm(X, y), model).claim_holds


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, n=st.integers(4, 30), d=st.integers(1, 6))
def test_theorem4_companion_inaccurate_h_is_reported(seed, n, d):
    X, y, svm, _ = _instance(seed, n, d, 0.5)
    # h = -w*, shifted so that every point is called +1: the +1 points are correct, but moving along
    # -y w* = -w* only increases -w*.x, so the direction never flips them.
    bad = LinearClassifier(-svm.w, float(np.max(X @ svm.w)) + 1.0)
    res = check_theorem4(svm, bad)
    assert not res.hypothesis_ok and "not S-accurate" in res.hypothesis_failures[0]
    assert not res.claim_holds
    pos = np.flatnonzero(y > 0)
    assert res.correct[pos].all() and np.isinf(res.critical_c[pos]).all()
    assert set(pos) <= set(res.violations.tolist())


# --------------------------------------------------------------------------------------------- Theorem 5
@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, n=st.integers(2, 30), d=st.integers(1, 6), margin=st.floats(0.05, 2.0))
def test_theorem5_bound_holds_and_larger_c_flip(seed, n, d, margin):
    X, y, svm, h = _instance(seed, n, d, margin)
    res = check_theorem5(svm, h)
    assert res.hypothesis_ok and res.claim_holds
    assert np.all(res.critical_c <= res.c_bound * (1 + 1e-6)) and res.flips_beyond_bound.all()
    hn = h.normalized()
    assert np.isclose(res.gamma_h, hn.margins(X, y).min())
    # also for fresh points outside S on the correct side of h (Theorem 5 fixes any such (x, y))
    rng = np.random.default_rng(seed + 1)
    Z = X[rng.integers(0, n, 10)] + rng.normal(scale=0.3, size=(10, d))
    yz = np.sign(hn.scores(Z))
    keep = yz != 0
    res_z = check_theorem5(svm, h, Z[keep], yz[keep])
    assert res_z.claim_holds


def test_theorem5_companion_wrong_alpha_sum_is_reported():
    X, y, svm, _ = _instance(7, 12, 3, 0.5)
    # h = h* itself: c* = y s / ||w*|| exactly equals the bound at the support vectors; doubling the
    # duals halves the bound, which every point then violates.
    wrong = dataclasses.replace(svm, alpha=2 * svm.alpha)
    assert check_theorem5(svm, svm).claim_holds
    res = check_theorem5(wrong, svm)
    assert not res.claim_holds and res.violations.size == X.shape[0]


def test_theorem5_companion_inaccurate_h():
    X, y, svm, _ = _instance(11, 12, 3, 0.5)
    bad = LinearClassifier(-svm.w, float(np.max(X @ svm.w)) + 1.0)
    res = check_theorem5(svm, bad)
    assert not res.hypothesis_ok and not res.claim_holds
    assert res.gamma_h < 0


# ------------------------------------------------------------------------------------------- Corollary 6
@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, n=st.integers(2, 30), d=st.integers(1, 6), margin=st.floats(0.05, 2.0))
def test_corollary6_some_point_flips_beyond_c_S(seed, n, d, margin):
    X, y, svm, h = _instance(seed, n, d, margin)
    res = check_corollary6(svm, h)
    assert res.hypothesis_ok and res.claim_holds
    assert np.isclose(res.c, 1 / svm.alpha.sum())
    assert res.witness in res.flipping.tolist()  # the proof's witness: h's minimum-margin point
    assert res.critical_c[res.witness] <= res.c * (1 + 1e-6)
    # and the flipping points really flip at c slightly above c_S
    c = res.c * (1 + 1e-5)
    pts = X[res.flipping] - c * y[res.flipping, None] * svm.w
    assert np.all(h.predict(pts) != y[res.flipping])


def test_corollary6_companion_smaller_constant_fails():
    X, y, svm, _ = _instance(5, 15, 2, 0.5)
    # for h = h*, every critical c is >= 1/sum alpha, so half of c_S flips no point
    res = check_corollary6(svm, svm, c=svm.c_S / 2)
    assert not res.claim_holds and res.flipping.size == 0
    assert check_corollary6(svm, svm).claim_holds
    with pytest.raises(ValueError, match="c must be"):
        check_corollary6(svm, svm, c=-1.0)


# --------------------------------------------------------------------------------------------- Theorem 8
@settings(max_examples=12, deadline=None)
@given(seed=SEEDS, d=st.integers(2, 5), K=st.integers(2, 4), n=st.integers(10, 40))
def test_theorem8_multiclass_directions(seed, d, K, n):
    rng = np.random.default_rng(seed)
    X, y = random_multiclass_set(rng, n, d, K, margin=0.5)
    h = random_multiclass_separator(X, y, rng, spread=rng.uniform(0.1, 2.0))
    k, l = rng.choice(K, size=2, replace=False)
    res = check_theorem8(X, y, h, int(k), int(l))
    assert res.hypothesis_ok and res.claim_holds
    assert res.indices.tolist() == np.flatnonzero((y == k) | (y == l)).tolist()
    # the first flip of argmax comes no later than the flip of the pairwise score z_k - z_l
    assert np.all(res.critical_c <= res.pair_critical_c * (1 + 1e-9))
    assert np.all(np.isfinite(res.pair_critical_c))
    v, svm = multiclass_direction(X, y, int(k), int(l))
    np.testing.assert_allclose(v, res.v)


def test_theorem8_companion_swapped_rows_reported():
    rng = np.random.default_rng(0)
    X, y = random_multiclass_set(rng, 30, 3, 3, margin=0.5)
    h = random_multiclass_separator(X, y, rng)
    W = h.W.copy()
    W[[0, 1]] = W[[1, 0]]
    bad = MultiClassLinear(W, h.b[[1, 0, 2]])
    res = check_theorem8(X, y, bad, 0, 1)
    assert not res.hypothesis_ok and not res.claim_holds
    assert set(res.violations.tolist()) == set(np.flatnonzero((y == 0) | (y == 1)).tolist())


def test_checker_input_errors():
    X, y, svm, h = _instance(1, 10, 2, 0.5)
    with pytest.raises(ValueError, match="both X and y"):
        check_theorem4(svm, h, X=X)
    with pytest.raises(ValueError, match="features"):
        check_theorem4(svm, h, X=np.zeros((2, 5)), y=np.array([1, -1]))
    with pytest.raises(TypeError, match="LinearClassifier"):
        check_theorem4(svm, "not a classifier")
    with pytest.raises(ValueError, match="different labels"):
        multiclass_direction(X, (y > 0).astype(int), 1, 1)
    with pytest.raises(ValueError, match="does not occur"):
        multiclass_direction(X, (y > 0).astype(int), 0, 5)
    with pytest.raises(TypeError, match="MultiClassLinear"):
        check_theorem8(X, (y > 0).astype(int), h, 0, 1)
    with pytest.raises(ValueError, match="direction"):
        h.first_flip(X, np.ones(3))
