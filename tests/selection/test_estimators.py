"""Transferability estimators (docs/theory.md §11): hand-computed cases, an independent numpy
re-implementation of each estimator written here in the authors' style (loops, np.cov, pinv,
scipy eigh, sklearn PCA / GaussianMixture / LedoitWolf, a direct numerical maximisation of the
LogME evidence), the properties the papers state, and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg as sla
from scipy import optimize

from pyadvt import selection as S

# ---------------------------------------------------------------- independent references


def ref_leep(theta, y):
    n, cs = theta.shape
    joint = np.zeros((y.max() + 1, cs))
    for i in range(n):
        joint[y[i]] += theta[i] / n
    cond = joint / joint.sum(0, keepdims=True)
    return float(np.mean([math.log(theta[i] @ cond[y[i]]) for i in range(n)]))


def ref_nce(z, y):  # TLlib nce.py, with its 1e-20
    n = len(z)
    joint = np.zeros((y.max() + 1, z.max() + 1))
    for s, t in zip(z, y):
        joint[t, s] += 1.0 / n
    p_z = joint.sum(0, keepdims=True)
    mask = p_z.reshape(-1) != 0
    p = (joint[:, mask] / p_z[:, mask]).T + 1e-20
    return float(-np.sum(np.sum(-p * np.log(p), axis=1) * p_z.reshape(-1)[mask]))


def ref_h_score(f, y):
    covf = np.cov(f, rowvar=False)
    g = np.zeros_like(f)
    for c in range(y.max() + 1):
        g[y == c] = f[y == c].mean(0)
    return float(np.trace(np.linalg.pinv(np.atleast_2d(covf), rcond=1e-15) @ np.atleast_2d(np.cov(g, rowvar=False))))


def ref_h_shrinkage(f, y):
    from sklearn.covariance import LedoitWolf

    f = f - f.mean(0, keepdims=True)
    lw = LedoitWolf(assume_centered=False).fit(f)
    g = np.zeros_like(f)
    for c in range(y.max() + 1):
        g[y == c] = f[y == c].mean(0)
    cov_g = np.cov(g, rowvar=False)
    return float(np.trace(np.linalg.pinv(lw.covariance_, rcond=1e-15) @ ((1 - lw.shrinkage_) * cov_g)))


def ref_logme_direct(f, y):
    """Maximise the evidence over (log alpha, log beta) numerically, with A and m built explicitly."""
    n, D = f.shape
    ftf = f.T @ f
    out = []
    for c in range(y.max() + 1):
        t = (y == c).astype(float)

        def neg(p):
            a, b = np.exp(p)
            A = a * np.eye(D) + b * ftf
            m = b * np.linalg.solve(A, f.T @ t)
            ld = np.linalg.slogdet(A)[1]
            ev = (D / 2 * np.log(a) + n / 2 * np.log(b) - n / 2 * np.log(2 * np.pi) - b / 2 * np.sum((f @ m - t) ** 2)
                  - a / 2 * m @ m - ld / 2)
            return -ev

        starts = [optimize.minimize(neg, x0, method="L-BFGS-B", bounds=[(-20, 20)] * 2,
                                    options={"ftol": 1e-15, "gtol": 1e-10})
                  for x0 in ([0.0, 0.0], [2.0, 1.0], [-2.0, 2.0])]
        polished = optimize.minimize(neg, min(starts, key=lambda r: r.fun).x, method="Nelder-Mead",
                                     options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 2000})
        best = min([*starts, polished], key=lambda r: r.fun)
        out.append(-best.fun / n)
    return float(np.mean(out))


def ref_logme_icml(f, y):  # TLlib logme.py each_evidence, written with eigh
    n, D = f.shape
    s, v = np.linalg.eigh(f.T @ f)
    out = []
    for c in range(y.max() + 1):
        t = (y == c).astype(float)
        alpha, beta = 1.0, 1.0
        lam = alpha / beta
        tmp = v.T @ (f.T @ t)
        for _ in range(11):
            gamma = (s / (s + lam)).sum()
            m = v @ (tmp * beta / (alpha + beta * s))
            alpha_de = (m * m).sum()
            alpha = gamma / alpha_de
            beta_de = ((t - f @ m) ** 2).sum()
            beta = (n - gamma) / beta_de
            new_lam = alpha / beta
            if np.abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        ev = (D / 2 * np.log(alpha) + n / 2 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * s))
              - beta / 2 * beta_de - alpha / 2 * alpha_de - n / 2 * np.log(2 * np.pi))
        out.append(ev / n)
    return float(np.mean(out))


def ref_transrate(f, y, eps=1e-4, official=True):
    def rate(z):
        n, d = z.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))[1]

    z = f - f.mean(0, keepdims=True)
    if official:
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
    K = y.max() + 1
    if official:
        return float(rate(z) - sum((y == c).sum() / len(y) * rate(z[y == c]) for c in range(K)))
    return float(rate(z) - sum(rate(z[y == c]) for c in range(K)) / K)


def ref_gbc(f, y, spherical=True, st_code=False, pca=64):
    from sklearn.decomposition import PCA

    if pca is not None:
        f = PCA(n_components=min(pca, *f.shape), svd_solver="full").fit_transform(f)
    stats_ = []
    for c in range(y.max() + 1):
        fc = f[y == c]
        var = np.maximum(fc.var(0), 1e-4)
        stats_.append((fc.mean(0), var.mean() if spherical else var))
    total = 0.0
    d = f.shape[1]
    for i, (m1, s1) in enumerate(stats_):
        for j, (m2, s2) in enumerate(stats_):
            if i == j:
                continue
            s = (s1 + s2) / 2
            first = np.sum((m1 - m2) ** 2 / s) / 8
            if spherical and st_code:
                second = 0.5 * np.log(s / np.sqrt(s1 * s2))
            elif spherical:
                second = 0.5 * d * np.log(s / np.sqrt(s1 * s2))
            else:
                second = 0.5 * np.sum(np.log(s) - 0.5 * (np.log(s1) + np.log(s2)))
            total += np.exp(-(first + second))
    return float(-total)


def ref_sfda(X, y):  # SFDA metrics.py / utils.py, with scipy's generalised eigh
    X = X.copy()
    n, D = X.shape
    C = y.max() + 1

    def cov(a, shrink=None):
        e = np.cov(a.T, bias=1).reshape(D, D)
        if shrink is None:
            return e
        out = (1 - shrink) * e
        out.flat[:: D + 1] += shrink * np.trace(e) / D
        return out

    def iterative_a(a, iters=3):
        x = a.sum(1)
        for _ in range(iters):
            tmp = a @ x
            yv = tmp / np.linalg.norm(tmp)
            tmp = a @ yv
            x = tmp / np.linalg.norm(tmp)
        return x @ a @ yv

    def fit_proba(X, shrink):
        priors = np.bincount(y) / n
        means = np.stack([X[y == c].mean(0) for c in range(C)])
        sw = sum(priors[c] * cov(X[y == c]) for c in range(C))
        if shrink is None:
            shrink = max(np.exp(-5 * iterative_a(sw)), 1e-10)
        st_ = cov(X, shrink)
        sw_s = (1 - shrink) * sw
        sw_s.flat[:: D + 1] += shrink * np.trace(sw) / D
        evals, evecs = sla.eigh(st_ - sw_s, sw_s)
        evecs = evecs[:, np.argsort(evals)[::-1]]
        coef = means @ evecs @ evecs.T
        inter = -0.5 * np.diag(means @ coef.T) + np.log(priors)
        logits = X @ coef.T + inter
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True), shrink, means

    prob, shrink, means = fit_proba(X, None)
    prob = np.exp(prob) / np.exp(prob).sum(1, keepdims=True)
    others = (means.sum(0) - means) / (C - 1)
    for c in range(C):
        idx = np.where(y == c)[0]
        p = prob[idx, c][:, None]
        X[idx] = p * X[idx] + (1 - p) * others[c]
    prob2, _, _ = fit_proba(X, shrink)
    return float(prob2[np.arange(n), y].mean())


def ref_nleep(f, y):
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    z = PCA(n_components=0.8, svd_solver="full").fit_transform(f)
    gmm = GaussianMixture(n_components=5 * (y.max() + 1), random_state=123).fit(z)
    return ref_leep(gmm.predict_proba(z), y)


# ---------------------------------------------------------------- data


def task(n=60, D=6, C=3, signal=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % C
    rng.shuffle(y)
    f = rng.normal(size=(n, D)) + signal * rng.normal(size=(C, D))[y]
    return f, y


def probs_of(f, cs=4, seed=1):
    w = np.random.default_rng(seed).normal(size=(f.shape[1], cs))
    logits = f @ w
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# ---------------------------------------------------------------- hand-computed cases


def test_hand_computed_values():
    # LEEP: P(y|z=0) = (1/3, 2/3), P(y|z=1) = (1, 0); both expected predictions are 2/3
    assert S.leep(np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([0, 1])) == pytest.approx(math.log(2 / 3))
    # NCE: z=0 splits its samples evenly over two labels, z=1 is pure
    assert S.nce(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx(-0.5 * math.log(2))
    # H-score in 1-D: var(class means) / var(f) = (16/3) / (17/3)
    assert S.h_score(np.array([[0.0], [1.0], [4.0], [5.0]]), np.array([0, 0, 1, 1])) == pytest.approx(16 / 17)
    # TransRate: unit rows +-e1 (class 0), +-e2 (class 1): log(1 + 0.5/eps) - log(1 + 1/eps)/2
    f = np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    assert S.transrate(f, np.array([0, 0, 1, 1]), eps=0.5) == pytest.approx(math.log(2) - 0.5 * math.log(3))
    # GBC: unit-variance classes with means 1 and 2: D_B = 1/8, two ordered pairs
    g = S.gbc(np.array([[0.0], [2.0], [1.0], [3.0]]), np.array([0, 0, 1, 1]), pca_dim=None)
    assert g == pytest.approx(-2 * math.exp(-1 / 8))
    # GBC in d = 2, spherical: variances 1 and 4 (per dimension), equal means -> D_B = d/2 log(2.5/2)
    f2 = np.array([[-1.0, -1], [1, 1], [-2, 2], [2, -2]])
    y2 = np.array([0, 0, 1, 1])
    assert S.gbc(f2, y2, pca_dim=None) == pytest.approx(-2 * math.exp(-math.log(1.25)))
    assert S.gbc(f2, y2, pca_dim=None, legacy_st_spherical=True) == pytest.approx(-2 * math.exp(-0.5 * math.log(1.25)))


def test_logme_one_feature_closed_form_limit():
    # features that cannot explain the target (orthogonal to every one-vs-rest indicator): the evidence is
    # the alpha -> infinity limit n/2 log(n/||t||^2) - n/2 log(2 pi) - n/2 per class
    f = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    y = np.array([0, 0, 1, 1])
    n, t2 = 4, 2.0
    limit = (n / 2 * math.log(n / t2) - n / 2 * math.log(2 * math.pi) - n / 2) / n
    assert S.logme(f, y) == pytest.approx(limit)


# ---------------------------------------------------------------- against the references


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_leep_nce_match_references(seed):
    f, y = task(seed=seed)
    theta = probs_of(f, seed=seed)
    assert S.leep(theta, y) == pytest.approx(ref_leep(theta, y), rel=1e-12)
    z = theta.argmax(1)
    assert S.nce(z, y) == pytest.approx(ref_nce(z, y), abs=1e-15)
    assert S.leep(torch.from_numpy(theta).float(), torch.from_numpy(y)) == pytest.approx(ref_leep(theta, y), rel=1e-5)


def test_leep_nolog_is_the_mean_expected_prediction():
    f, y = task()
    theta = probs_of(f)
    assert S.leep(theta, y, legacy_nolog=True) == pytest.approx(_eep_mean(theta, y), rel=1e-12)


def _eep_mean(theta, y):
    joint = np.zeros((y.max() + 1, theta.shape[1]))
    for i in range(len(y)):
        joint[y[i]] += theta[i] / len(y)
    cond = joint / joint.sum(0, keepdims=True)
    return float(np.mean([theta[i] @ cond[y[i]] for i in range(len(y))]))


@pytest.mark.parametrize("shape", [(60, 6), (40, 40), (30, 70)])
def test_h_scores_match_references(shape):
    f, y = task(*shape)
    assert S.h_score(f, y) == pytest.approx(ref_h_score(f, y), rel=1e-8)
    assert S.h_score_shrinkage(f, y) == pytest.approx(ref_h_shrinkage(f, y), rel=1e-8)


@pytest.mark.parametrize("shape,signal", [((80, 4), 1.0), ((60, 8), 0.3), ((15, 30), 1.0), ((50, 3), 0.0)])
def test_logme_maximises_the_evidence(shape, signal):
    f, y = task(*shape, signal=signal)
    ours = S.logme(f, y)
    ref = ref_logme_direct(f, y)
    assert ours >= ref - 1e-6  # the fixed point reaches (at least) the numerical optimum
    assert ours == pytest.approx(ref, abs=2e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_logme_legacy_icml_matches_tllib_loop(seed):
    f, y = task(70, 5, seed=seed)
    assert S.logme(f, y, legacy="icml") == pytest.approx(ref_logme_icml(f, y), rel=1e-9)


def test_logme_unpadded_legacy_omits_log_alpha_terms_when_n_below_d():
    f, y = task(15, 30)
    padded, unpadded = S.logme(f, y), S.logme(f, y, legacy="unpadded")
    assert unpadded > padded + 0.5  # the known inflation of thuml/LogME issue #23
    f, y = task(200, 4)
    assert S.logme(f, y, legacy="unpadded") == pytest.approx(S.logme(f, y), abs=1e-3)


@pytest.mark.parametrize("shape", [(60, 6), (20, 40)])
def test_transrate_matches_references(shape):
    f, y = task(*shape)
    assert S.transrate(f, y) == pytest.approx(ref_transrate(f, y), rel=1e-8)
    assert S.transrate(f, y, legacy_tllib=True) == pytest.approx(ref_transrate(f, y, official=False), rel=1e-8)


@pytest.mark.parametrize("shape", [(60, 6), (150, 100)])
def test_gbc_matches_reference(shape):
    f, y = task(*shape, signal=0.5)
    assert S.gbc(f, y) == pytest.approx(ref_gbc(f, y), rel=1e-8)
    assert S.gbc(f, y, gaussian="diagonal") == pytest.approx(ref_gbc(f, y, spherical=False), rel=1e-8)
    assert S.gbc(f, y, legacy_st_spherical=True) == pytest.approx(ref_gbc(f, y, st_code=True), rel=1e-8)


@pytest.mark.parametrize("shape,signal", [((60, 6), 1.0), ((45, 12), 0.3), ((30, 40), 1.0)])
def test_sfda_matches_reference(shape, signal):
    f, y = task(*shape, signal=signal)
    assert S.sfda(f, y) == pytest.approx(ref_sfda(f, y), rel=1e-7)


def test_nleep_matches_reference():
    f, y = task(90, 8, signal=2.0)
    assert S.nleep(f, y) == pytest.approx(ref_nleep(f, y), rel=1e-6)


# ---------------------------------------------------------------- properties

FEATURE_SCORES = ["nleep", "h_score", "h_score_shrinkage", "logme", "transrate", "gbc", "sfda"]


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), perm=st.permutations([0, 1, 2]))
def test_every_score_is_invariant_to_relabelling_the_target(seed, perm):
    f, y = task(45, 5, seed=seed)
    theta = probs_of(f, seed=seed)
    y2 = np.asarray(perm)[y]
    for name in FEATURE_SCORES:
        fn = S.ESTIMATORS[name][1]
        assert fn(f, y2) == pytest.approx(fn(f, y), rel=1e-7, abs=1e-9), name
    assert S.leep(theta, y2) == pytest.approx(S.leep(theta, y), rel=1e-12)
    assert S.nce(theta.argmax(1), y2) == pytest.approx(S.nce(theta.argmax(1), y), abs=1e-15)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), cs=st.integers(2, 6))
def test_leep_and_nce_are_nonpositive_and_zero_for_a_perfect_source(seed, cs):
    f, y = task(30, 4, seed=seed)
    theta = probs_of(f, cs=cs, seed=seed)
    assert S.leep(theta, y) <= 0 and S.nce(theta.argmax(1), y) <= 0
    perm = np.random.default_rng(seed).permutation(5)[:3]  # source classes in bijection with the labels
    onehot = np.eye(5)[perm[y]]
    assert S.leep(onehot, y) == 0.0 and S.nce(perm[y], y) == 0.0


def test_logme_prefers_informative_features_over_noise():
    rng = np.random.default_rng(0)
    y = np.arange(120) % 4
    noise = rng.normal(size=(120, 8))
    informative = noise.copy()
    informative[:, :4] += 2 * np.eye(4)[y]
    assert S.logme(informative, y) > S.logme(noise, y) + 0.05
    for name in ("h_score", "transrate", "gbc", "sfda", "nleep"):
        fn = S.ESTIMATORS[name][1]
        assert fn(informative, y) > fn(noise, y), name


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_h_score_is_invariant_to_invertible_linear_maps(seed):
    f, y = task(50, 4, seed=seed)
    rng = np.random.default_rng(seed + 1)
    a = rng.normal(size=(4, 4)) + 3 * np.eye(4)
    assert S.h_score(f @ a + rng.normal(size=4), y) == pytest.approx(S.h_score(f, y), rel=1e-6)
    # a singular map loses information: the check can fail
    a[:, 0] = 0
    assert S.h_score(f @ a, y) < S.h_score(f, y) - 1e-6


# ---------------------------------------------------------------- validation and degenerate inputs


def test_bad_inputs_are_named_before_any_work():
    f, y = task()
    with pytest.raises(ValueError, match="'features' must have shape \\[n, D\\]"):
        S.logme(f[:, :, None], y)
    with pytest.raises(ValueError, match="'y' must have shape \\[60\\]"):
        S.gbc(f, y[:-1])
    with pytest.raises(ValueError, match="'y' must hold labels >= 0"):
        S.h_score(f, y - 1)
    with pytest.raises(ValueError, match="at least 2 distinct classes"):
        S.transrate(f, np.zeros(60, dtype=int))
    with pytest.raises(ValueError, match="NaN or infinite"):
        S.sfda(np.where(f > 2, np.nan, f), y)
    with pytest.raises(ValueError, match="pass softmax\\(logits\\), not logits"):
        S.leep(f[:, :3], y)
    with pytest.raises(ValueError, match="integer class labels"):
        S.nleep(f, y + 0.5)
    with pytest.raises(TypeError, match="torch.Tensor or a numpy array"):
        S.logme("features", y)
    with pytest.raises(ValueError, match="'legacy' must be None or one of"):
        S.logme(f, y, legacy="tllib")


def test_one_sample_class_and_constant_features_give_defined_values():
    f, y = task(30, 4)
    y = y.copy()
    y[0] = 7  # a class with a single sample
    for name in FEATURE_SCORES + ["leep", "nce"]:
        view, fn = S.ESTIMATORS[name]
        arg = probs_of(f) if view == "probs" else (probs_of(f).argmax(1) if view == "preds" else f)
        assert math.isfinite(fn(arg, y)), name
    const = np.ones((30, 4))
    yy = np.arange(30) % 3
    assert S.h_score(const, yy) == 0.0 and S.h_score_shrinkage(const, yy) == 0.0
    assert S.transrate(const, yy) == 0.0 and S.gbc(const, yy) == pytest.approx(-6.0)
    assert math.isfinite(S.logme(const, yy)) and math.isfinite(S.logme(np.zeros((30, 4)), yy))
    assert S.nleep(const, yy) == pytest.approx(np.mean(np.log(np.bincount(yy)[yy] / 30)))
    with pytest.raises(S.UndefinedScoreError, match="do not vary within any class"):
        S.sfda(const, yy)


def test_estimate_runs_the_registry_and_marks_undefined_scores():
    from pyadvt.selection.extract import Extracted

    f, y = task(30, 4)
    theta = probs_of(f)
    ex = Extracted(torch.from_numpy(f).float(), torch.from_numpy(theta), torch.from_numpy(theta.argmax(1)),
                   torch.from_numpy(y))
    out = S.estimate(ex)
    assert set(out) == set(S.ESTIMATORS)
    assert out["logme"] == pytest.approx(S.logme(f.astype(np.float32), y), rel=1e-9)
    const = Extracted(torch.ones(30, 4), None, None, torch.from_numpy(np.arange(30) % 3))
    with pytest.warns(RuntimeWarning, match="'sfda' is undefined"):
        assert S.estimate(const, scores=["sfda", "h_score"]) == {"sfda": None, "h_score": 0.0}
    with pytest.raises(ValueError, match="reads the source's 'probs'"):
        S.estimate(const, scores=["leep"])
    with pytest.raises(ValueError, match="unknown estimator"):
        S.estimate(ex, scores=["leeep"])


def test_nleep_mixture_failure_is_an_undefined_score(monkeypatch):
    from sklearn.mixture import GaussianMixture

    def fail(self, X, y=None):
        raise ValueError("Fitting the mixture model failed because some components have ill-defined empirical "
                         "covariance")

    monkeypatch.setattr(GaussianMixture, "fit", fail)
    f, y = task(30, 4)
    with pytest.raises(S.UndefinedScoreError, match="nleep: the 15-component Gaussian mixture cannot be fitted"):
        S.nleep(f, y)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(4, 50), D=st.integers(1, 70), C=st.integers(2, 5),
       log_scale=st.floats(-6, 6), mode=st.sampled_from(["plain", "half_zero", "duplicated_rows", "offset"]))
def test_every_estimator_is_finite_or_says_it_is_undefined(seed, n, D, C, log_scale, mode):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, D)) * 10.0 ** log_scale
    if mode == "half_zero":
        f[:, : D // 2] = 0
    elif mode == "duplicated_rows":
        f = np.repeat(f[: max(1, n // 3)], 3, axis=0)[:n]
    elif mode == "offset":
        f = f + 1e3 * 10.0 ** log_scale
    n = f.shape[0]
    y = np.arange(n) % min(C, n)
    theta = rng.dirichlet(np.ones(4), size=n)
    for name, (view, fn) in S.ESTIMATORS.items():
        arg = theta if view == "probs" else (theta.argmax(1) if view == "preds" else f)
        try:
            assert math.isfinite(fn(arg, y)), name
        except S.UndefinedScoreError:
            pass
