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
from pyadvt.metrics.transfer_rates import transferability


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
    """Predicts table[k] for input k (x = [[k]]): a model with hand-set predictions."""

    def __init__(self, table, C):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table))
        self.C = C

    def forward(self, x):
        return F.one_hot(self.table[x[:, 0].long()], self.C).double() * 5


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
    x = torch.arange(N, dtype=torch.float64)[:, None]
    r = transferability(Fm, Gm, x, y, x + N, targeted=targeted)
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
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([0, 1])
    r = transferability(Fm, Fm, x, y, x + 2, target=torch.tensor([2, 0]))
    assert r.targeted and r.success.tolist() == [True, False]
    with pytest.raises(ValueError, match="x_adv"):
        transferability(Fm, Fm, x, y, x[:1])


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
    r = transferability(Fm, Gm, x, y, x_adv)
    assert math.isclose(b.empirical, float(r.success.double().mean()))
    assert b.holds and b.vacuous == (not b.value > 0)
    assert math.isclose(b.value, lower_bound_from_terms(b.terms["fooling"], b.terms["risk_surrogate"],
                                                        b.terms["risk_target"], b.terms["c_F"], b.terms["c_G"],
                                                        eps, b.terms["S_inf"]))
