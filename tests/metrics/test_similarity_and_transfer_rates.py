"""Seed 001 gradient similarity, Definition-3 transfer rates, statistics table and Theorem-1 bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression
from torch import nn

from pyadvt.bounds.seed001 import lower_bound, lower_bound_from_terms
from pyadvt.metrics.similarity import gradient_similarity
from pyadvt.metrics.statistics import ols_r2, pearson_r, statistics_table
from pyadvt.metrics.transfer_rates import attack_transferability


def mlp(seed, C=4, n_in=6, act=nn.ReLU):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 16), act(), nn.Linear(16, C)).double()


def batch(B=10, C=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 1, 2, 3, generator=g, dtype=torch.float64), torch.randint(0, C, (B,), generator=g)


def test_similarity_matches_one_sample_at_a_time():
    Fm, Gm, (x, y) = mlp(1, act=nn.Tanh), mlp(2), batch()
    r = gradient_similarity(Fm, Gm, x, y, batch_size=3)
    for i in range(x.shape[0]):
        gs = []
        for m in (Fm, Gm):
            xi = x[i:i + 1].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(m(xi), y[i:i + 1]), xi)
            gs.append(g.flatten())
        assert math.isclose(float(r.values[i]), float(F.cosine_similarity(gs[0], gs[1], dim=0)), rel_tol=1e-10)
    assert r.min == float(r.values.min()) and math.isclose(r.mean, float(r.values.mean()))
    assert gradient_similarity(Fm, Fm, x, y).values.sub(1).abs().max() < 1e-12
    assert all(p.grad is None for p in Fm.parameters())


def test_similarity_masks_zero_gradients():
    Fm, (x, y) = mlp(1), batch()

    class Const(nn.Module):
        def forward(self, z):
            return torch.zeros(z.shape[0], 4, dtype=z.dtype) + 0 * z.flatten(1)[:, :1]

    with pytest.warns(RuntimeWarning, match="zero or non-finite"):
        r = gradient_similarity(Fm, Const(), x, y)
    assert not r.defined.any() and math.isnan(r.mean)


class Lookup(nn.Module):
    """Predicts table[k] for input x = [[k / len(table)]] (pixel space): a model with hand-set predictions."""

    def __init__(self, table, C):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table))
        self.C = C

    def forward(self, x):
        return F.one_hot(self.table[(x[:, 0] * len(self.table)).round().long()], self.C).double() * 5


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2),
                          st.integers(0, 2)), min_size=1, max_size=12), st.booleans())
def test_transfer_rates_match_definition_3(rows, targeted):
    C = 3
    y = torch.tensor([r[0] for r in rows])
    N = len(rows)
    fclean, gclean = [r[1] for r in rows], [r[2] for r in rows]
    fadv, gadv = [r[3] for r in rows], [r[4] for r in rows]
    Fm, Gm = Lookup(fclean + fadv, C), Lookup(gclean + gadv, C)
    x = torch.arange(N, dtype=torch.float64)[:, None] / (2 * N)
    r = attack_transferability(Fm, Gm, x, y, x + 0.5, targeted=targeted)
    t = [(int(v) + 1) % C for v in y]
    hit = (lambda p, i: p == t[i]) if targeted else (lambda p, i: p != int(y[i]))
    both = [fclean[i] == gclean[i] == int(y[i]) for i in range(N)]
    succ = [both[i] and hit(fadv[i], i) and hit(gadv[i], i) for i in range(N)]
    assert r.success.tolist() == succ and r.both_correct == sum(both)
    if sum(both):
        assert math.isclose(r.rate, sum(succ) / sum(both))
    else:
        assert math.isnan(r.rate)
    assert math.isclose(r.asr, np.mean([hit(gadv[i], i) for i in range(N)]))
    assert math.isclose(r.fooling, np.mean([hit(fadv[i], i) for i in range(N)]))
    assert math.isclose(r.acc_target, np.mean([gclean[i] == int(y[i]) for i in range(N)]))


def test_explicit_target_labels_and_bad_input():
    Fm = Lookup([0, 1, 2, 2], 3)
    x, y = torch.tensor([[0.0], [0.25]], dtype=torch.float64), torch.tensor([0, 1])
    r = attack_transferability(Fm, Fm, x, y, x + 0.5, target_labels=torch.tensor([2, 0]))
    assert r.targeted and r.success.tolist() == [True, False]
    with pytest.raises(ValueError, match="x_adv"):
        attack_transferability(Fm, Fm, x, y, x[:1])


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(6, 30))
def test_statistics_table_matches_scipy_and_sklearn(seed, n):
    rng = np.random.default_rng(seed)
    cols = rng.normal(size=(n, 4))
    asr = cols @ rng.normal(size=4) + rng.normal(size=n)
    t = statistics_table(asr, *cols.T)
    for k, name in enumerate(("accuracy", "fooling", "smoothness", "similarity")):
        assert math.isclose(t.r[name], scipy.stats.pearsonr(asr, cols[:, k])[0], rel_tol=1e-9, abs_tol=1e-12)
    r2_1 = LinearRegression().fit(cols[:, 2:], asr).score(cols[:, 2:], asr)
    r2_2 = LinearRegression().fit(cols, asr).score(cols, asr)
    assert math.isclose(t.r2_smooth_sim, r2_1, rel_tol=1e-8, abs_tol=1e-10)
    assert math.isclose(t.r2_all, r2_2, rel_tol=1e-8, abs_tol=1e-10)
    assert t.r2_all >= t.r2_smooth_sim - 1e-12  # nested models


def test_statistics_edge_cases():
    with pytest.warns(RuntimeWarning, match="constant"):
        assert math.isnan(pearson_r([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="smoothness"):
        statistics_table([1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-finite"):
        ols_r2([1, 2, float("nan")], [[1], [2], [3]])


def test_bound_formula_by_hand():
    v = lower_bound_from_terms(fooling=0.9, risk_surrogate=0.01, risk_target=0.02, c_F=0.05, c_G=0.1, eps=0.5,
                               sim_inf=0.5)
    a = 0.1
    expect = 0.9 - 0.03 - (0.5 * 1.1 - 0.05 * 0.9) / 0.4 - (0.5 * 0.9 / 0.4) * math.sqrt(1.0)
    assert math.isclose(v, expect)
    assert lower_bound_from_terms(0.9, 0, 0, 0, 0.6, 0.5, 1.0) == float("-inf")
    with pytest.raises(ValueError, match="sim_inf"):
        lower_bound_from_terms(0.9, 0, 0, 0, 0, 0.5, 1.5)
    del a


def test_lower_bound_terms_and_empirical_rate():
    Fm, Gm, (x, y) = mlp(3), mlp(4), batch(B=12)
    delta = 0.3 * torch.sign(torch.randn_like(x))
    x_adv = (x + delta).clamp(0, 1)
    b = lower_bound(Fm, Gm, x, y, x_adv, smoothness_kwargs={"method": "exact", "progress": False})
    eps = float((x_adv - x).flatten(1).norm(dim=1).max())
    assert math.isclose(b.terms["eps"], eps)
    # c_F by a direct per-sample loop
    vals = []
    for i in range(12):
        xi = x[i:i + 1].clone().requires_grad_(True)
        li = F.cross_entropy(Fm(xi), y[i:i + 1])
        (g,) = torch.autograd.grad(li, xi)
        ce = [float(F.cross_entropy(Fm(x_adv[i:i + 1]), torch.tensor([c]))) for c in range(4) if c != int(y[i])]
        vals.append((min(ce) - float(li) - b.terms["s_F"] * eps ** 2 / 2) / float(g.norm()))
    assert math.isclose(b.terms["c_F"], min(vals), rel_tol=1e-9)
    r = attack_transferability(Fm, Gm, x, y, x_adv)
    assert math.isclose(b.empirical, float(r.success.double().mean()))
    assert b.holds and b.vacuous == (not b.value > 0)
    assert math.isclose(b.value, lower_bound_from_terms(b.terms["fooling"], b.terms["risk_surrogate"],
                                                        b.terms["risk_target"], b.terms["c_F"], b.terms["c_G"],
                                                        eps, b.terms["S_inf"]))


# ---------------------------------------------------------------------------------------------------
# Independent re-computations (no pyadvt helper is used to build the expected values).

def _dense_top_eig(model, xi, yi):
    """``sigma(x) = lambda_max(Hessian_x CE)`` (seed 001 Def. 1) from a dense torch.func Hessian."""
    n = xi.numel()
    H = torch.func.hessian(lambda z: F.cross_entropy(model(z.unsqueeze(0)), yi.view(1)))(xi).reshape(n, n)
    return float(torch.linalg.eigvalsh(0.5 * (H + H.T).detach())[-1])


def _loss_and_grad(model, xi, yi):
    xi = xi.unsqueeze(0).clone().requires_grad_(True)
    li = F.cross_entropy(model(xi), yi.view(1))
    (g,) = torch.autograd.grad(li, xi)
    return float(li), g.flatten()


def test_lower_bound_every_term_matches_a_per_sample_computation():
    # Seed 001 Theorem 1 (docs/theory.md §3): s_F, s_G are the UPPER smoothness (max over samples of
    # lambda_max, Def. 1), S_ the INFIMUM of the gradient cosine (Def. 2),
    #   c_F = min_i [min_{y'!=y} l_F(x+d, y') - l_F(x, y) - s_F eps^2/2] / ||grad_x l_F||,
    #   c_G = max_i [min_{y'!=y} l_G(x+d, y') - l_G(x, y) + s_G eps^2/2] / ||grad_x l_G||.
    C, B = 4, 10
    Fm, Gm, (x, y) = mlp(3, C=C), mlp(4, C=C), batch(B=B, C=C, seed=5)
    g = torch.Generator().manual_seed(7)
    x_adv = (x + 0.4 * torch.sign(torch.randn(x.shape, generator=g, dtype=x.dtype))).clamp(0, 1)
    eps = 0.9
    b = lower_bound(Fm, Gm, x, y, x_adv, eps=eps, smoothness_kwargs={"method": "exact", "progress": False})

    sig_F = [_dense_top_eig(Fm, x[i], y[i]) for i in range(B)]
    sig_G = [_dense_top_eig(Gm, x[i], y[i]) for i in range(B)]
    s_F, s_G = max(sig_F), max(sig_G)
    assert s_G > 0 and max(sig_G) - sum(sig_G) / B > 1e-3 * s_G  # max != mean on this batch
    assert math.isclose(b.terms["s_F"], s_F, rel_tol=1e-7) and math.isclose(b.terms["s_G"], s_G, rel_tol=1e-7)

    def c_values(model, s, sign):
        out = []
        for i in range(B):
            li, gi = _loss_and_grad(model, x[i], y[i])
            with torch.no_grad():
                logp = F.log_softmax(model(x_adv[i:i + 1]), 1)[0]
            other = min(-float(logp[c]) for c in range(C) if c != int(y[i]))
            out.append((other - li + sign * s * eps ** 2 / 2) / float(gi.norm()))
        return out

    cF, cG = c_values(Fm, s_F, -1.0), c_values(Gm, s_G, +1.0)
    cG_minus = c_values(Gm, s_G, -1.0)
    # the chosen batch separates the alternatives: max vs min over samples, + vs - the smoothness term
    assert max(cG) - min(cG) > 1e-2 and abs(max(cG) - max(cG_minus)) > 1e-2
    assert math.isclose(b.terms["c_F"], min(cF), rel_tol=1e-7, abs_tol=1e-10)
    assert math.isclose(b.terms["c_G"], max(cG), rel_tol=1e-7, abs_tol=1e-10)

    cos = []
    for i in range(B):
        gf, gg = _loss_and_grad(Fm, x[i], y[i])[1], _loss_and_grad(Gm, x[i], y[i])[1]
        cos.append(float(gf @ gg / (gf.norm() * gg.norm())))
    assert math.isclose(b.terms["S_inf"], min(cos), rel_tol=1e-9)

    with torch.no_grad():
        pf, pg = Fm(x).argmax(1), Gm(x).argmax(1)
        af, ag = Fm(x_adv).argmax(1), Gm(x_adv).argmax(1)
    fool = float((af != y).double().mean())  # 1 - a
    gF, gG = float((pf != y).double().mean()), float((pg != y).double().mean())
    assert math.isclose(b.terms["fooling"], fool) and math.isclose(b.terms["risk_surrogate"], gF)
    assert math.isclose(b.terms["risk_target"], gG)
    a, cF_, cG_, S_ = 1 - fool, min(cF), max(cG), min(cos)
    if eps > cG_:  # Theorem 1's right-hand side, written out
        expect = ((1 - a) - (gF + gG) - (eps * (1 + a) - cF_ * (1 - a)) / (eps - cG_)
                  - eps * (1 - a) / (eps - cG_) * math.sqrt(2 - 2 * S_))
        assert math.isclose(b.value, expect, rel_tol=1e-7, abs_tol=1e-9)
    else:
        assert b.value == float("-inf")
    both = (pf == y) & (pg == y)
    assert math.isclose(b.empirical, float((both & (af != y) & (ag != y)).double().mean()))


def test_similarity_infimum_is_the_smallest_cosine():
    # Seed 001 Def. 2: S_ = inf over samples of cos(grad l_F, grad l_G), not their mean.
    Fm, Gm, (x, y) = mlp(5, act=nn.Tanh), mlp(6), batch(B=8, seed=2)
    cos = []
    for i in range(8):
        gf, gg = _loss_and_grad(Fm, x[i], y[i])[1], _loss_and_grad(Gm, x[i], y[i])[1]
        cos.append(float(gf @ gg / (gf.norm() * gg.norm())))
    r = gradient_similarity(Fm, Gm, x, y, batch_size=3)
    assert min(cos) < sum(cos) / 8 - 1e-3
    assert math.isclose(r.min, min(cos), rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(r.mean, sum(cos) / 8, rel_tol=1e-9, abs_tol=1e-12)


# hand-built predictions: columns y, F(x), G(x), F(x_adv), G(x_adv); C = 3
HAND = [(0, 0, 0, 1, 1),   # both correct, both fooled; targeted t=1 hit by both
        (1, 1, 1, 2, 0),   # both correct, both fooled; targeted t=2 hit by F only
        (2, 2, 1, 0, 0),   # G wrong on x: outside Def. 3's denominator although both are fooled
        (0, 1, 0, 0, 2),   # F wrong on x, F not fooled, G fooled
        (1, 1, 1, 0, 1),   # both correct, only F fooled
        (2, 2, 2, 0, 2)]   # both correct, only F fooled; targeted t=0 hit by F only


def _hand_models():
    y = torch.tensor([r[0] for r in HAND])
    Fm = Lookup([r[1] for r in HAND] + [r[3] for r in HAND], 3)
    Gm = Lookup([r[2] for r in HAND] + [r[4] for r in HAND], 3)
    x = torch.arange(len(HAND), dtype=torch.float64)[:, None] / (2 * len(HAND))
    return Fm, Gm, x, y, x + 0.5


def test_untargeted_rates_on_hand_built_predictions():
    # Def. 3: T_r = 1[F(x)=G(x)=y, F(x+d)!=y, G(x+d)!=y]; rate over the 4 samples both classify correctly
    # (rows 0, 1, 4, 5) -> 2/4; ASR = 1 - acc_G(x_adv) = 4/6; FP = 1 - acc_F(x_adv) = 5/6.
    Fm, Gm, x, y, x_adv = _hand_models()
    r = attack_transferability(Fm, Gm, x, y, x_adv)
    assert r.success.tolist() == [True, True, False, False, False, False]
    assert r.both_correct == 4 and r.rate == 0.5
    assert math.isclose(r.asr, 4 / 6) and math.isclose(r.fooling, 5 / 6)
    assert math.isclose(r.acc_source, 5 / 6) and math.isclose(r.acc_target, 5 / 6)


def test_targeted_rates_default_target_is_next_class():
    # docs/theory.md §3: targeted success means G(x+d) = t with default t = (y + 1) mod C = [1, 2, 0, 1, 2, 0].
    Fm, Gm, x, y, x_adv = _hand_models()
    r = attack_transferability(Fm, Gm, x, y, x_adv, targeted=True)
    assert r.targeted and r.success.tolist() == [True, False, False, False, False, False]
    assert r.both_correct == 4 and r.rate == 0.25
    assert math.isclose(r.asr, 2 / 6)       # G(x_adv) = [1, 0, 0, 2, 1, 2] hits t in rows 0, 2
    assert math.isclose(r.fooling, 4 / 6)   # F(x_adv) = [1, 2, 0, 0, 0, 0] hits t in rows 0, 1, 2, 5
    explicit = attack_transferability(Fm, Gm, x, y, x_adv, target_labels=(y + 1) % 3)
    assert explicit.success.tolist() == r.success.tolist() and explicit.asr == r.asr


def test_ols_r2_includes_an_intercept():
    # Table VI's R^2 is that of OLS with an intercept: y = 10 + x is fitted exactly (R^2 = 1), which a
    # fit through the origin is not.
    xs = np.array([1.0, 2.0, 3.0, 4.0])
    assert math.isclose(ols_r2(10 + xs, xs[:, None]), 1.0, rel_tol=1e-12)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2)) + 3.0
    yv = 5.0 + X @ np.array([0.5, -1.0]) + rng.normal(size=12)
    expect = LinearRegression().fit(X, yv).score(X, yv)
    assert math.isclose(ols_r2(yv, X), expect, rel_tol=1e-10)
    t = statistics_table(yv, rng.normal(size=12), rng.normal(size=12), X[:, 0], X[:, 1])
    assert math.isclose(t.r2_smooth_sim, expect, rel_tol=1e-10)
