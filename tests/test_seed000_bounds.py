"""Seed 000 theory checks (hypothesis, float64, random small MLPs/CNNs): Theorem 1 identity, Theorem 2
and 3 inequalities, Proposition 2 (exact for linear models) - each with a companion showing that the
check fails when a quantity is perturbed."""

import dataclasses

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pyadvt.bounds import pair_jacobians, proposition2, theorem1, theorem2, theorem3
from pyadvt.bounds.seed000 import BoundResult


def net(kind, seed, out, n=5):
    torch.manual_seed(seed)
    if kind == "mlp":
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n * n, 10), torch.nn.Tanh(),
                                    torch.nn.Linear(10, 8), torch.nn.Softplus(), torch.nn.Linear(8, out))
    elif kind == "cnn":
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Tanh(),
                                    torch.nn.Flatten(), torch.nn.Linear(2 * (n - 2) ** 2, out))
    else:
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n * n, out))
    return model.double().eval()


def data(seed, b=16, n=5):
    return torch.rand(b, 1, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


kinds = st.sampled_from(["mlp", "cnn"])
seeds = st.integers(0, 10_000)


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(ks=kinds, kt=kinds, s=seeds)
def test_theorem1_identity_and_perturbed_tau2_breaks_it(ks, kt, s):
    S, T, x = net(ks, s, 1), net(kt, s + 1, 1), data(s)
    p = pair_jacobians(S, T, x)
    r = theorem1(S, T, x, pair=p)
    assert r.rel_error <= 1e-6
    assert r.holds_lipschitz
    assert 0 <= r.tau1 <= 1 and 0 <= r.tau2 <= 1
    # companion: the same identity with tau2 scaled by 0.8 is violated (unless tau1(x) tau2 ~ 0)
    rhs_bad = float(((1 - p.tau1_x * 0.8 * r.tau2) * p.sigmaT ** 2).mean())
    if float((p.tau1_x * r.tau2 * p.sigmaT ** 2).mean()) > 1e-3 * r.rhs:
        assert abs(r.lhs - rhs_bad) / r.rhs > 1e-6


def test_theorem1_rejects_vector_outputs():
    with pytest.raises(ValueError, match="scalar"):
        theorem1(net("mlp", 0, 2), net("mlp", 1, 1), data(0))


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(ks=kinds, kt=kinds, m=st.integers(1, 4), d=st.integers(1, 4), s=seeds)
def test_theorem2_both_forms_hold_and_replaced_A_fails(ks, kt, m, d, s):
    S, T, x = net(ks, s, m), net(kt, s + 7, d), data(s)
    p = pair_jacobians(S, T, x)
    r = theorem2(S, T, x, pair=p)
    assert r.holds and r.holds_lipschitz
    assert r.rhs <= r.rhs_lipschitz * (1 + 1e-9)  # the Lipschitz form is the looser one
    # companion: replace A by A + t E11 with t large enough that the left side must exceed the right
    row = p.JS[:, 0].norm(dim=1).min()
    t = float((r.rhs_lipschitz ** 0.5 + torch.linalg.matrix_norm(p.JT - p.A @ p.JS, ord=2).max()) / row) * 2
    E = torch.zeros_like(p.A)
    E[0, 0] = t
    bad = dataclasses.replace(p, tau2=dataclasses.replace(p.tau2, A=p.tau2.A + E))
    rb = theorem2(S, T, x, pair=bad)
    assert not rb.holds and not rb.holds_lipschitz


def test_bound_result_holds_logic():
    r = BoundResult(lhs=1.0, rhs=0.5, rhs_lipschitz=2.0, tau1=0.5, tau2=0.5, L=1.0, n=3)
    assert not r.holds and r.holds_lipschitz


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(m=st.integers(1, 4), d=st.integers(1, 4), s=seeds, eps=st.floats(0.01, 3.0))
def test_proposition2_exact_for_linear_models(m, d, s, eps):
    S, T, x = net("linear", s, m), net("linear", s + 3, d), data(s)
    r = proposition2(S, T, x, eps)
    assert r.holds
    assert r.upper <= r.upper_worst * (1 + 1e-12)
    if d == 1:  # rank-1 target: the lower bound is attained
        assert abs(r.loss - r.lower) <= 1e-9 * r.loss
    # companion: dropping the lambda_T term (upper := lower) fails for d >= 2
    if d >= 2 and r.loss - r.lower > 1e-6 * r.loss:
        assert not dataclasses.replace(r, upper=r.lower).holds


def test_proposition2_upper_attained_in_two_dimensions():
    # n = d = 2: v1_S lies in the span of J_T's two right singular vectors, so upper == loss
    S, T = torch.nn.Linear(2, 3).double(), torch.nn.Linear(2, 2).double()
    r = proposition2(S, T, torch.rand(9, 2, dtype=torch.float64), 0.5)
    assert abs(r.loss - r.upper) <= 1e-9 * r.loss and r.loss > r.lower * (1 + 1e-6)


def test_proposition2_nonlinear_up_to_cubic_term():
    S, T, x = net("mlp", 3, 3), net("mlp", 4, 3), data(2)
    r_small = proposition2(S, T, x, 1e-3)
    assert r_small.holds
    # the relative excess shrinks with eps (O(eps^3) vs eps^2)
    r = proposition2(S, T, x, 1e-2)
    assert abs(r.loss / r.eps ** 2 - r_small.loss / r_small.eps ** 2) < 0.05 * r.loss / r.eps ** 2


def _tanh_net(seed, n, out):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n, 6), torch.nn.Tanh(),
                               torch.nn.Linear(6, out)).double().eval()


def _tanh_beta(model):
    """||J(x) - J(x')||_2 <= ||W2|| ||W1||^2 max|tanh''| ||x - x'|| with max|tanh''| = 4 / (3 sqrt 3)."""
    w1, w2 = model[1].weight, model[3].weight
    return float(torch.linalg.matrix_norm(w2, ord=2) * torch.linalg.matrix_norm(w1, ord=2) ** 2) * 4 / 3 ** 1.5


@settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(m=st.integers(1, 3), d=st.integers(1, 3), s=seeds)
def test_theorem3_holds_for_linear_and_smooth_models(m, d, s):
    g = torch.Generator().manual_seed(s)
    x = torch.randn(20, 1, 2, 3, dtype=torch.float64, generator=g)
    x = x / x.reshape(20, -1).norm(dim=1).max()  # ||x|| <= 1
    y = torch.randn(20, d, dtype=torch.float64, generator=g)
    torch.manual_seed(s)
    S = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, m)).double()
    T = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, d)).double()
    r = theorem3(S, T, x, y, beta=0.0)
    assert r.holds and r.smoothness_term == 0
    Sn, Tn = _tanh_net(s, 6, m), _tanh_net(s + 1, 6, d)
    beta = max(_tanh_beta(Sn), _tanh_beta(Tn))
    assert theorem3(Sn, Tn, x, y, beta=beta).holds
    # companion: with a perfect target (y = f_T(x)) the Jacobian-gap term is what carries the bound;
    # without it the inequality fails whenever g o f_S differs from f_T
    with torch.no_grad():
        y_t = T(x)
    rp = theorem3(S, T, x, y_t, beta=0.0)
    assert rp.holds and rp.target_error < 1e-12
    if rp.lhs > 1e-9:
        assert rp.lhs > rp.target_error + rp.smoothness_term


def test_theorem3_requires_unit_ball():
    S = torch.nn.Linear(3, 2).double()
    with pytest.raises(ValueError, match="<= 1"):
        theorem3(S, S, 5 * torch.ones(4, 3, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64), 0.0)
    with pytest.raises(ValueError, match="beta"):
        theorem3(S, S, 0.1 * torch.ones(4, 3, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64), -1.0)
