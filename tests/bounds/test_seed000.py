"""Seed 000 theory checks (hypothesis, float64, random small MLPs/CNNs): Theorem 1 identity, Theorem 2
and 3 inequalities, Proposition 2 (exact for linear models) - each with a companion showing that the
check fails when a quantity is perturbed."""

import dataclasses
import math

import numpy as np
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


# ---------------------------------------------------------------------------------------------------
# Formula pins: expected values derived by hand (closed-form linear / quadratic models) or from an
# independent re-implementation of docs/theory.md §2 (torch.func.jacrev + torch.linalg.svd + numpy), never
# from pyadvt's own helpers. Each one fails if a coefficient or term of the formula is changed.
# ---------------------------------------------------------------------------------------------------

F64 = torch.float64


def _linear(W, b=None):
    """``x -> W x + b`` as an nn.Linear in float64 (constant Jacobian ``W``)."""
    W = torch.as_tensor(W, dtype=F64)
    lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=b is not None).double()
    with torch.no_grad():
        lin.weight.copy_(W)
        if b is not None:
            lin.bias.copy_(torch.as_tensor(b, dtype=F64))
    return lin.eval()


def _rot(a):
    return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=F64)


# Case "diag": J_S = diag(2, 1), J_T = diag(1, 3) (n = m = d = 2).
#   sigma_S = 2, lam_S = 1/2, v1_S = e1;  sigma_T = 3, lam_T = 1/3, v1_T = e2  ->  tau1(x) = 0.
#   U = J_S v1_S = (2, 0), V = J_T v1_S = (1, 0) for every x: B* = [[1/2, 0], [0, 0]], r = 1/2 = ||B*||
#   (not shrunk), tau2 = E<2V - AU, AU> / E||V||^2 = (2 - 1) / 1 = 1.
#   J_T - A J_S = diag(0, 3): lhs of Theorem 2 = 9, ||J_T||_{D,2}^2 / ||J_S||_{D,2}^2 = 9 / 4.
# Case "rot": J_S = R diag(2, 1) R^T with R the rotation by 30 deg, J_T = diag(1, 3).
#   v1_S = (c, s) = (sqrt3/2, 1/2) (eigenvector for 2), tau1(x) = <v1_S, e2>^2 = s^2 = 1/4,
#   U = 2 v1_S, V = (c, 3s) constant -> tau2 = 1, A J_S = J_T v1_S v1_S^T, so
#   J_T - A J_S = J_T v2_S v2_S^T with v2_S = (-s, c): lhs = ||J_T v2_S||^2 = s^2 + 9 c^2 = 7.
DIAG_S, DIAG_T = [[2.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 3.0]]
ROT_S = (_rot(math.pi / 6) @ torch.diag(torch.tensor([2.0, 1.0], dtype=F64)) @ _rot(math.pi / 6).T).tolist()


def _points():
    return torch.tensor([[0.6, 0.8], [-0.5, 0.0], [0.0, 0.3], [0.1, -0.2]], dtype=F64)


def test_theorem2_closed_form_diag():
    """Theorem 2 (docs/theory.md §2; paper Thm 2 and its full form in appendix D) on the "diag" case:
    rhs = 5 E[((1 - tau1 tau2) + (1 - tau1)(1 - tau2) lam_T^2) sigma_T^2 + (lam_T + lam_S)^2 sigma_S^2 * 9/4]
        = 5 (9 + (1/3 + 1/2)^2 * 4 * 9/4) = 5 (9 + 25/4) = 76.25;
    Lipschitz form ((1 - tau1 tau2) + (1 - tau1)(1 - tau2) lam_T^2 + (lam_T + lam_S)^2) 5 L^2 with
    L = max ||J_T||_2 = 3: (1 + 25/36) 5 * 9 = 76.25 as well."""
    S, T = _linear(DIAG_S), _linear(DIAG_T)
    r = theorem2(S, T, _points())
    assert r.tau1 == pytest.approx(0.0, abs=1e-12) and r.tau2 == pytest.approx(1.0, abs=1e-12)
    assert r.L == pytest.approx(3.0, rel=1e-12)
    assert r.lhs == pytest.approx(9.0, rel=1e-10)
    assert r.rhs == pytest.approx(76.25, rel=1e-10)  # factor 5 and the (lam_T + lam_S)^2 term
    assert r.rhs_lipschitz == pytest.approx(76.25, rel=1e-10)  # factor 5 of the Lipschitz form
    # an explicit Lipschitz constant enters as L^2: (1 + 25/36) * 5 * 16
    assert theorem2(S, T, _points(), L=4.0).rhs_lipschitz == pytest.approx((1 + 25 / 36) * 80, rel=1e-10)


def test_theorem2_closed_form_rotated_source():
    """Theorem 2 on the "rot" case (tau1 = 1/4, tau2 = 1, lam_S = 1/2, lam_T = 1/3, sigma_S = 2,
    sigma_T = 3): rhs = 5 ((1 - 1/4) 9 + (5/6)^2 * 4 * 9/4) = 5 (27/4 + 25/4) = 65,
    rhs_lipschitz = ((3/4) + 25/36) 5 * 9 = 65, lhs = s^2 + 9 c^2 = 7."""
    S, T = _linear(ROT_S), _linear(DIAG_T)
    r = theorem2(S, T, _points())
    assert r.tau1 == pytest.approx(0.25, rel=1e-10) and r.tau2 == pytest.approx(1.0, abs=1e-12)
    assert r.lhs == pytest.approx(7.0, rel=1e-10)
    assert r.rhs == pytest.approx(65.0, rel=1e-10)
    assert r.rhs_lipschitz == pytest.approx(65.0, rel=1e-10)


class _HalfSquaredNorm(torch.nn.Module):
    """``f(x) = ||x||^2 / 2`` (scalar): grad f(x) = x."""

    def forward(self, x):
        return 0.5 * x.square().sum(1, keepdim=True)


def test_theorem1_closed_form_lipschitz_form():
    """Theorem 1 (paper Thm 1; docs/theory.md §2) with f_S(x) = x_1 and f_T(x) = ||x||^2 / 2 on
    x in {(1, 0), (1, 1), (2, 0)}: grad f_S = e1 = v1_S, grad f_T(x) = x.
      U = 1, V = x_1 in {1, 1, 2}: tau2 = E[UV]^2 / (E U^2 E V^2) = (4/3)^2 / 2 = 8/9, A = 4/3 (< r = sqrt 2);
      tau1(x) = x_1^2 / ||x||^2 in {1, 1/2, 1}: tau1 = 5/6;  L = max ||x|| = 2.
    Identity: E||x - (4/3) e1||^2 = (1/9 + 10/9 + 4/9) / 3 = 5/9 = E[(1 - tau1(x) 8/9) ||x||^2].
    Lipschitz form (1 - tau1 tau2) L^2 = (1 - 40/54) 4 = 28/27 (a mutant with tau2^2 gives 1.366...)."""
    S, T = _linear([[1.0, 0.0]]), _HalfSquaredNorm()
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]], dtype=F64)
    r = theorem1(S, T, x)
    assert r.tau1 == pytest.approx(5 / 6, rel=1e-12) and r.tau2 == pytest.approx(8 / 9, rel=1e-12)
    assert r.L == pytest.approx(2.0, rel=1e-12)
    assert r.lhs == pytest.approx(5 / 9, rel=1e-10) and r.rhs == pytest.approx(5 / 9, rel=1e-10)
    assert r.rhs_lipschitz == pytest.approx(28 / 27, rel=1e-10)
    assert theorem1(S, T, x, L=3.0).rhs_lipschitz == pytest.approx((1 - 40 / 54) * 9, rel=1e-10)


def test_theorem3_closed_form_terms():
    """Theorem 3 (paper Thm 3; docs/theory.md §2) for linear f_S(x) = diag(2, 1) x + (0.5, -1) and
    f_T(x) = diag(1, 3) x + (0.2, 0.3) ("diag" case, A = [[1/2, 0], [0, 0]]):
      c = f_T(0) - A f_S(0) = (-0.05, 0.3), so g o f_S(x) = (x_1 + 0.2, 0.3) and f_T(x) = (x_1 + 0.2, 3 x_2 + 0.3);
      ||J_T - A J_S||_{D,2} = ||diag(0, 3)||_2 = 3;
      (1 + ||J_T||_{D,2} / ||J_S||_{D,2}) beta = (1 + 3/2) beta = 2.5 beta;
      rhs = ||f_T - y||_D + 3 + 2.5 beta."""
    S, T = _linear(DIAG_S, [0.5, -1.0]), _linear(DIAG_T, [0.2, 0.3])
    x = _points()
    y = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [-1.0, 0.2]], dtype=F64)
    beta = 0.1
    x1, x2 = x[:, 0], x[:, 1]
    transferred = torch.stack([x1 + 0.2, torch.full_like(x1, 0.3)], 1)
    f_t = torch.stack([x1 + 0.2, 3 * x2 + 0.3], 1)
    lhs = float((transferred - y).square().sum(1).mean().sqrt())
    target_err = float((f_t - y).square().sum(1).mean().sqrt())
    r = theorem3(S, T, x, y, beta=beta)
    assert r.lhs == pytest.approx(lhs, rel=1e-10)
    assert r.target_error == pytest.approx(target_err, rel=1e-10)
    assert r.jacobian_gap == pytest.approx(3.0, rel=1e-10)
    assert r.smoothness_term == pytest.approx(2.5 * beta, rel=1e-10)  # the ratio ||J_T|| / ||J_S|| term
    assert r.rhs == pytest.approx(target_err + 3.0 + 2.5 * beta, rel=1e-10)  # the Jacobian-gap term
    assert r.holds


def test_proposition2_closed_form_upper_uses_squared_lambda():
    """Proposition 2 (paper Prop 2; docs/theory.md §2) on the "rot" case, exact for linear models:
    loss = eps^2 ||J_T v1_S||^2 = eps^2 (c^2 + 9 s^2) = 3 eps^2,
    lower = eps^2 tau1 sigma_T^2 = eps^2 * 9/4,
    upper = eps^2 (lam_T^2 + (1 - lam_T^2) tau1) sigma_T^2 = eps^2 (1/9 + (8/9)(1/4)) 9 = 3 eps^2 (attained:
    n = 2); with lam_T instead of lam_T^2 it would be eps^2 (1/3 + (2/3)(1/4)) 9 = 4.5 eps^2."""
    eps = 0.1
    S, T = _linear(ROT_S), _linear(DIAG_T)
    r = proposition2(S, T, _points(), eps)
    assert r.loss == pytest.approx(3 * eps ** 2, rel=1e-10)
    assert r.lower == pytest.approx(2.25 * eps ** 2, rel=1e-10)
    assert r.upper == pytest.approx(3 * eps ** 2, rel=1e-10)
    assert r.upper_worst == pytest.approx(3 * eps ** 2, rel=1e-10)
    assert r.holds


# --- independent re-implementation on tiny tanh MLPs (tau1, tau2 strictly inside (0, 1)) -------------

def _tiny(seed, n, out):
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(n, 5), torch.nn.Tanh(), torch.nn.Linear(5, out)).double()
    with torch.no_grad():
        for p_ in net.parameters():
            p_.copy_(torch.randn(p_.shape, dtype=F64, generator=g))
    return net.eval()


def _reference(S, T, x):
    """Everything Theorems 1-2 need, straight from docs/theory.md §2 with numpy / torch.linalg.svd."""
    with torch.no_grad():
        JS = torch.func.vmap(torch.func.jacrev(lambda z: S(z[None])[0]))(x).numpy()
        JT = torch.func.vmap(torch.func.jacrev(lambda z: T(z[None])[0]))(x).numpy()
    _, sS, VhS = np.linalg.svd(JS)
    _, sT, VhT = np.linalg.svd(JT)
    v1S, v1T = VhS[:, 0], VhT[:, 0]
    lamS = sS[:, 1] / sS[:, 0] if sS.shape[1] > 1 else np.zeros(len(x))
    lamT = sT[:, 1] / sT[:, 0] if sT.shape[1] > 1 else np.zeros(len(x))
    t1x = np.einsum("bn,bn->b", v1S, v1T) ** 2
    U, V = np.einsum("bmn,bn->bm", JS, v1S), np.einsum("bdn,bn->bd", JT, v1S)
    N = len(x)
    B = (V.T @ U / N) @ np.linalg.pinv(U.T @ U / N)
    r = np.sqrt((V ** 2).sum(1).mean() / (U ** 2).sum(1).mean())
    nB = np.linalg.norm(B, 2)
    A = B if nB <= r else r * B / nB
    AU = U @ A.T
    t2 = ((2 * V - AU) * AU).sum(1).mean() / (V ** 2).sum(1).mean()
    gap = np.linalg.norm(JT - A @ JS, 2, axis=(1, 2)) ** 2
    return dict(JS=JS, JT=JT, sS=sS[:, 0], sT=sT[:, 0], lamS=lamS, lamT=lamT, t1x=t1x, t2=t2, A=A, B=B, r=r,
                lhs=gap.mean(), L=sT[:, 0].max())


@pytest.mark.parametrize("seed", [0, 1])
def test_theorem2_matches_independent_reimplementation(seed):
    """Theorem 2, both forms (docs/theory.md §2), against a numpy re-implementation on tanh MLPs with
    m = 3, d = 2, so that every term ((1 - tau1 tau2), (1 - tau1)(1 - tau2) lam_T^2, (lam_T + lam_S)^2,
    the factor 5 and the ratio ||J_T||^2_{D,2} / ||J_S||^2_{D,2}) contributes."""
    S, T = _tiny(seed, 4, 3), _tiny(seed + 100, 4, 2)
    x = torch.randn(10, 4, dtype=F64, generator=torch.Generator().manual_seed(seed))
    ref = _reference(S, T, x)
    assert 0.05 < ref["t2"] < 0.999 and 0.05 < ref["t1x"].mean() < 0.95  # non-degenerate example
    t1x, t2, lT, lS = ref["t1x"], ref["t2"], ref["lamT"], ref["lamS"]
    sT2, sS2 = ref["sT"] ** 2, ref["sS"] ** 2
    assert ((lT + lS) ** 2 * sS2).mean() > 0.1 * ((1 - t1x * t2) * sT2).mean()
    rhs = 5 * np.mean(((1 - t1x * t2) + (1 - t1x) * (1 - t2) * lT ** 2) * sT2
                      + (lT + lS) ** 2 * sS2 * sT2.mean() / sS2.mean())
    t1 = t1x.mean()
    rhs_l = ((1 - t1 * t2) + (1 - t1) * (1 - t2) * lT.max() ** 2 + (lT.max() + lS.max()) ** 2) * 5 * ref["L"] ** 2
    r = theorem2(S, T, x)
    assert r.tau1 == pytest.approx(t1, rel=1e-7) and r.tau2 == pytest.approx(t2, rel=1e-7)
    assert r.lhs == pytest.approx(ref["lhs"], rel=1e-7)
    assert r.rhs == pytest.approx(rhs, rel=1e-7)
    assert r.rhs_lipschitz == pytest.approx(rhs_l, rel=1e-7)


@pytest.mark.parametrize("seed", [0, 3])
def test_theorem1_matches_independent_reimplementation(seed):
    """Theorem 1 (scalar outputs) against the numpy re-implementation: the identity
    E||grad f_T - A grad f_S||^2 = E[(1 - tau1(x) tau2) ||grad f_T||^2] and the Lipschitz form
    (1 - tau1 tau2) L^2 with tau2 strictly inside (0, 1)."""
    S, T = _tiny(seed, 4, 1), _tiny(seed + 50, 4, 1)
    x = torch.randn(10, 4, dtype=F64, generator=torch.Generator().manual_seed(seed + 7))
    ref = _reference(S, T, x)
    t1x, t2 = ref["t1x"], ref["t2"]
    assert 0.05 < t2 < 0.95 and t1x.mean() > 0.05
    lhs = np.mean(((ref["JT"][:, 0] - ref["A"][0, 0] * ref["JS"][:, 0]) ** 2).sum(1))
    rhs = np.mean((1 - t1x * t2) * ref["sT"] ** 2)
    assert lhs == pytest.approx(rhs, rel=1e-9)  # the identity itself, independently
    r = theorem1(S, T, x)
    assert r.lhs == pytest.approx(lhs, rel=1e-7) and r.rhs == pytest.approx(rhs, rel=1e-7)
    assert r.rhs_lipschitz == pytest.approx((1 - t1x.mean() * t2) * ref["L"] ** 2, rel=1e-7)
