"""Seed 003 §5-6: ReLU classes R, R', R'', Lemmas 13/14, Theorems 10/15/16, Corollary 17 and the Section-6
counterexample (property tests on random S-accurate nets, companions that break each hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.theory import (CLASS_R, CLASS_R_DOUBLE_PRIME, CLASS_R_PRIME, AllActiveReLU, LinearClassifier,
                           TwoLayerReLU, check_corollary17, check_region_convexity, check_theorem4,
                           check_theorem10, check_theorem15, check_theorem16, max_margin_svm, section6_counterexample)
from pyadvt.theory.random_instances import (random_linear_separator, random_relu_classifier, random_separable_set,
                                            sample_region)

SEEDS = st.integers(0, 2**31 - 1)
KINDS = {"R": (CLASS_R, check_theorem10, -1.0), "R'": (CLASS_R_PRIME, check_theorem15, -1.0),
         "R''": (CLASS_R_DOUBLE_PRIME, check_theorem16, 1.0)}


def _random_net(rng, d, width, kind):
    W, b = rng.normal(size=(width, d)), rng.normal(size=width)
    if kind == "R''":
        return AllActiveReLU(W, b)
    if kind == "R":
        return TwoLayerReLU(W, b)
    return TwoLayerReLU(W, b, rng.uniform(0, 1, width), rng.uniform(0.05, 2.0), bool(rng.integers(2)))


# ------------------------------------------------------------------------------ exact first flip along rays
@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, d=st.integers(1, 4), width=st.integers(1, 6),
       kind=st.sampled_from(["R", "R'", "R''", "signed"]))
def test_first_flip_matches_dense_grid(seed, d, width, kind):
    rng = np.random.default_rng(seed)
    if kind == "signed":  # arbitrary output weights: the flip set need not be an interval
        h = TwoLayerReLU(rng.normal(size=(width, d)), rng.normal(size=width), rng.normal(size=width),
                         rng.normal(), bool(rng.integers(2)))
    else:
        h = _random_net(rng, d, width, kind)
    X, V = rng.normal(size=(5, d)), rng.normal(size=(5, d))
    c = h.first_flip(X, V)
    grid = np.linspace(0, 20, 8001)[1:]
    step = grid[1] - grid[0]
    for i in range(5):
        lab = h.predict(X[i:i + 1])[0]
        flips = h.predict(X[i] + grid[:, None] * V[i]) != lab
        if flips.any():  # no flip on the grid strictly before c* (up to one step)
            assert c[i] <= grid[np.argmax(flips)] + 1e-9
        if np.isfinite(c[i]):  # something flips right at / just after c*
            near = [c[i], c[i] * (1 + 1e-7) + 1e-10]
            assert np.any(h.predict(X[i] + np.array(near)[:, None] * V[i]) != lab)
            if kind != "signed" and lab == KINDS[kind][2] and c[i] < 19:
                assert flips[grid > c[i] + step].all()  # leaving a convex region is for good
        else:
            assert not flips.any()


# ------------------------------------------------------------------------------------------- membership
def test_class_membership():
    W, b = np.eye(2), np.zeros(2)
    assert CLASS_R.contains(TwoLayerReLU(W, b))
    assert not CLASS_R_PRIME.contains(TwoLayerReLU(W, b))  # a = 0
    assert CLASS_R_PRIME.contains(TwoLayerReLU(W, b, np.array([0.0, 2.0]), 0.5, strict=False))
    assert "negative output weight" in CLASS_R_PRIME.check(TwoLayerReLU(W, b, np.array([1.0, -1.0]), 0.5))[0]
    assert "not all ones" in CLASS_R.check(TwoLayerReLU(W, b, np.array([1.0, 2.0])))[0]
    assert CLASS_R_DOUBLE_PRIME.contains(AllActiveReLU(W, b))
    assert not CLASS_R_DOUBLE_PRIME.contains(TwoLayerReLU(W, b))
    assert not CLASS_R.contains(AllActiveReLU(W, b))
    with pytest.raises(ValueError, match="v must have length 2"):
        TwoLayerReLU(W, b, np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        TwoLayerReLU(np.array([[np.nan, 0.0]]), np.zeros(1))


def test_decision_rules():
    h = TwoLayerReLU(np.array([[1.0]]), np.array([0.0]), np.array([1.0]), 1.0, strict=True)
    assert h.predict(np.array([[1.0], [1.5], [0.5]])).tolist() == [-1.0, 1.0, -1.0]
    h2 = TwoLayerReLU(np.array([[1.0]]), np.array([0.0]), np.array([1.0]), 1.0, strict=False)
    assert h2.predict(np.array([[1.0]])).tolist() == [1.0]
    g = AllActiveReLU(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2))
    assert g.predict(np.array([[1.0, 1.0], [1.0, 0.0], [-1.0, 2.0]])).tolist() == [1.0, -1.0, -1.0]


# ------------------------------------------------------------------------------------------ Lemmas 13/14
@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, d=st.integers(1, 4), width=st.integers(1, 6), kind=st.sampled_from(["R", "R'", "R''"]))
def test_convex_region_lemmas(seed, d, width, kind):
    rng = np.random.default_rng(seed)
    h = _random_net(rng, d, width, kind)
    cls, _, label = KINDS[kind]
    pts = rng.normal(scale=3.0, size=(300, d))
    if np.sum(h.predict(pts) == label) < 2:
        return  # region too small to sample: nothing to test on this draw
    res = check_region_convexity(h, pts, label, n_pairs=150, rng=rng, relu_class=cls)
    assert res.hypothesis_ok and res.claim_holds, res.summary()
    assert np.all(h.predict(pts[res.pairs.ravel()]) == label)


def _nonconvex_net(rng, d):
    """f = relu(u.x) - 2 relu(u.x - 1) (a negative output weight), a = 1/2: +1 exactly on 1/2 < u.x < 3/2,
    so the -1 region {u.x <= 1/2} u {u.x >= 3/2} is not convex."""
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    return u, TwoLayerReLU(np.stack([u, u]), np.array([0.0, -1.0]), np.array([1.0, -2.0]), 0.5)


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, d=st.integers(1, 5))
def test_convexity_companion_negative_weights(seed, d):
    rng = np.random.default_rng(seed)
    u, h = _nonconvex_net(rng, d)
    pts = np.outer(rng.uniform(-3, 3, size=200), u) + rng.normal(size=(200, d)) * 0.5
    res = check_region_convexity(h, pts, -1.0, n_pairs=400, rng=rng, relu_class=CLASS_R_PRIME)
    assert not res.hypothesis_ok and not res.claim_holds
    i, j = res.pairs[res.violations[0]]
    t = res.exit_t[res.violations[0]]
    assert 0 <= t < 1
    mid = pts[i] + (t + 1e-6) * (pts[j] - pts[i])  # just after the exit point the segment is in the +1 region
    assert h.predict(mid[None])[0] == 1.0


def test_convexity_needs_two_points():
    h = TwoLayerReLU(np.eye(1), np.zeros(1))
    with pytest.raises(ValueError, match="at least two points"):
        check_region_convexity(h, np.array([[1.0], [2.0]]), -1.0)


# ----------------------------------------------------------------------------------- Theorems 10 / 15 / 16
@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, n=st.integers(2, 20), d=st.integers(1, 5), width=st.integers(1, 6),
       kind=st.sampled_from(["R", "R'", "R''"]))
def test_convex_region_direction_theorems(seed, n, d, width, kind):
    rng = np.random.default_rng(seed)
    X, y = random_separable_set(rng, n, d, margin=rng.uniform(0.1, 1.0))
    h = random_relu_classifier(X, y, rng, kind=kind, width=width)
    cls, check, label = KINDS[kind]
    extra = sample_region(h, label, X, 30, rng, scale=2.0)
    a = int(rng.choice(np.flatnonzero(y == label)))
    b = int(rng.choice(np.flatnonzero(y == -label)))
    res = check(h, X, y, a_index=a, b_index=b, points=extra if len(extra) else None)
    assert res.hypothesis_ok, res.hypothesis_failures
    assert res.claim_holds, res.summary()
    np.testing.assert_allclose(res.v, X[b] - X[a])
    assert res.in_scope.sum() == np.sum(y == label) + len(extra)
    assert np.all(np.isfinite(res.critical_c[res.in_scope]))


def _embedded_line(rng, d, ts, labels):
    """Points t_i u + (orthogonal noise) on a random line u of R^d."""
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    Z = rng.normal(size=(len(ts), d))
    Z -= np.outer(Z @ u, u)
    return u, np.outer(ts, u) + 0.3 * Z, np.array(labels, dtype=float)


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, d=st.integers(1, 5))
def test_theorem15_companion_negative_weights(seed, d):
    rng = np.random.default_rng(seed)
    u, X, y = _embedded_line(rng, d, [0.0, 1.0], [-1, 1])
    h = TwoLayerReLU(np.stack([u, u]), np.array([0.0, -1.0]), np.array([1.0, -2.0]), 0.5)
    assert np.all(h.predict(X) == y)  # S-accurate, but not in R'
    far = 2.5 * u  # h(far) = -1 and the ray far + c (x_b - x_a) has u-coordinate 2.5 + c: stays -1
    res = check_theorem15(h, X, y, points=far[None])
    assert not res.hypothesis_ok and "negative output weight" in res.hypothesis_failures[0]
    assert not res.claim_holds and res.violations.tolist() == [1] and np.isinf(res.critical_c[1])


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, d=st.integers(1, 5))
def test_theorem10_companion_not_accurate(seed, d):
    rng = np.random.default_rng(seed)
    u, X, y = _embedded_line(rng, d, [0.0, -1.0], [-1, 1])  # x_b = -u should be +1 but h calls it -1
    h = TwoLayerReLU(u[None], np.array([-5.0]))
    res = check_theorem10(h, X, y)
    assert not res.hypothesis_ok and "not S-accurate" in res.hypothesis_failures[0]
    assert not res.claim_holds and np.isinf(res.critical_c[0])  # v = -u never activates relu(u.x - 5)


@settings(max_examples=8, deadline=None)
@given(seed=SEEDS, d=st.integers(1, 5))
def test_theorem16_companion_not_accurate(seed, d):
    rng = np.random.default_rng(seed)
    u, X, y = _embedded_line(rng, d, [1.0, 2.0], [1, -1])  # x_b = 2u should be -1 but h calls it +1
    h = AllActiveReLU(u[None], np.array([0.0]))
    res = check_theorem16(h, X, y)
    assert not res.hypothesis_ok and not res.claim_holds and np.isinf(res.critical_c[0])


def test_endpoint_validation():
    X, y = np.array([[0.0], [1.0]]), np.array([-1, 1])
    h = TwoLayerReLU(np.eye(1), np.array([-0.5]))
    with pytest.raises(ValueError, match="must have label"):
        check_theorem10(h, X, y, a_index=1)
    with pytest.raises(ValueError, match="out of range"):
        check_theorem10(h, X, y, b_index=7)


# ------------------------------------------------------------------------------------------- Corollary 17
@settings(max_examples=12, deadline=None)
@given(seed=SEEDS, n=st.integers(2, 20), d=st.integers(1, 5))
def test_corollary17_relu_direction_transfers_to_linear(seed, n, d):
    rng = np.random.default_rng(seed)
    X, y = random_separable_set(rng, n, d, margin=0.5)
    nets = [random_relu_classifier(X, y, rng, kind="R'", width=int(rng.integers(1, 6))) for _ in range(3)]
    linear = [random_linear_separator(X, y, rng, spread=2.0) for _ in range(3)] + [max_margin_svm(X, y).classifier()]
    extra = np.vstack([X, rng.normal(scale=3.0, size=(40, d))])
    res = check_corollary17(nets + linear, X, y, points=extra)
    assert res.hypothesis_ok and res.claim_holds
    assert len(res.per_classifier) == 7 and all(r.in_scope.any() for r in res.per_classifier)


def test_corollary17_companion_inaccurate_linear():
    rng = np.random.default_rng(0)
    X, y = random_separable_set(rng, 10, 2, margin=0.5)
    svm = max_margin_svm(X, y)
    v = X[np.flatnonzero(y > 0)[0]] - X[np.flatnonzero(y < 0)[0]]
    # a linear classifier whose -1 side is the far side along v: the ray from its -1 points never leaves
    bad = LinearClassifier(-v, float(np.min(X @ v)) - 1.0)  # -1 exactly where v.x > min(X v) - 1
    res = check_corollary17([svm.classifier(), bad], X, y)
    assert not res.hypothesis_ok and not res.claim_holds
    assert res.violations.tolist() == [1]
    with pytest.raises(TypeError, match="LinearClassifier or TwoLayerReLU"):
        check_corollary17([AllActiveReLU(np.eye(2), np.zeros(2))], X, y)


# -------------------------------------------------------------------------------------------- Section 6
def test_section6_counterexample():
    ce = section6_counterexample()
    res = ce.verify()
    assert res.hypothesis_ok and res.claim_holds
    assert res.max_margin_fails and np.isinf(res.max_margin_critical_c)
    assert res.max_margin_works_for_linear and res.relu_direction_works and res.relu_direction_transfers_to_linear
    np.testing.assert_allclose(res.w_star, [1.0, 0.0], atol=1e-7)
    # independent re-check: along x_0 + c w* the ReLU classifier says -1 for c up to 1e6 ...
    cs = np.logspace(-3, 6, 400)
    x0 = ce.X[ce.point]
    assert np.all(ce.h.predict(x0 + cs[:, None] * res.w_star) == -1)
    # ... while every S-accurate linear classifier is flipped along it (Theorem 4)
    svm = ce.svm()
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert check_theorem4(svm, random_linear_separator(ce.X, ce.y, rng)).claim_holds
