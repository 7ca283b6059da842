"""Head influence functions (seed 002 app. A.9, docs/theory.md §7) vs autograd and vs actual re-optimisation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.transfer.influence import head_gradients, head_hessian, head_influence, influence_match_rate


def mean_loss(theta, phi, y, C, d, weights=None):
    T = theta.reshape(C, d + 1)
    logits = phi @ T[:, :d].T + T[:, d]
    per = F.cross_entropy(logits, y, reduction="none")
    return per.mean() if weights is None else (per * weights).sum()


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4), st.integers(1, 4))
def test_closed_form_matches_autograd(seed, C, d):
    torch.manual_seed(seed)
    phi, y = torch.randn(9, d, dtype=torch.float64), torch.randint(0, C, (9,))
    W, b = torch.randn(C, d, dtype=torch.float64), torch.randn(C, dtype=torch.float64)
    theta = torch.cat([W, b[:, None]], 1).reshape(-1)
    H_auto = torch.autograd.functional.hessian(lambda t: mean_loss(t, phi, y, C, d), theta)
    assert torch.allclose(head_hessian((W, b), phi), H_auto, atol=1e-10)
    assert torch.allclose(head_hessian((W, b), phi, damping=0.3), H_auto + 0.3 * torch.eye(len(theta)), atol=1e-10)
    G = head_gradients((W, b), phi, y)
    for i in range(9):
        g_i = torch.autograd.functional.jacobian(lambda t: mean_loss(t, phi[i:i + 1], y[i:i + 1], C, d), theta)
        assert torch.allclose(G[i], g_i, atol=1e-10)
    direct = -(G[:3] @ torch.linalg.solve(H_auto + 0.1 * torch.eye(len(theta), dtype=torch.float64), G.T))
    for solver in ("cholesky", "pinv"):      # the damped Hessian is invertible: both solvers give the solve
        inf = head_influence((W, b), phi, y, phi[:3], y[:3], damping=0.1, solver=solver)
        assert torch.allclose(inf, direct, rtol=1e-7, atol=1e-9), (solver, (inf - direct).abs().max())


def test_influence_predicts_reoptimised_test_loss():
    """At the optimum of mean loss + (lambda/2)||theta||^2, dL_test/d(eps) for upweighting z_i by eps
    equals I(z_i, z_test) (Koh & Liang 2017); checked by re-optimising with central differences."""
    torch.manual_seed(0)
    C, d, n, lam = 3, 2, 30, 0.05
    phi, y = torch.randn(n, d, dtype=torch.float64), torch.randint(0, C, (n,))
    phi_t, y_t = torch.randn(2, d, dtype=torch.float64), torch.randint(0, C, (2,))

    def fit(weights):
        theta = torch.zeros(C * (d + 1), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([theta], lr=1, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = mean_loss(theta, phi, y, C, d, weights) + 0.5 * lam * theta.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return theta.detach()

    base = torch.full((n,), 1.0 / n, dtype=torch.float64)
    theta = fit(base)
    T = theta.reshape(C, d + 1)
    inf = head_influence((T[:, :d], T[:, d]), phi, y, phi_t, y_t, damping=lam)
    h = 1e-4
    for i in (0, 7, 19):
        e = torch.zeros(n, dtype=torch.float64)
        e[i] = h
        up, down = fit(base + e), fit(base - e)
        for t in range(2):
            fd = (mean_loss(up, phi_t[t:t + 1], y_t[t:t + 1], C, d)
                  - mean_loss(down, phi_t[t:t + 1], y_t[t:t + 1], C, d)) / (2 * h)
            assert inf[t, i].item() == pytest.approx(fd.item(), rel=1e-3, abs=1e-6)


def test_match_rate_on_separable_clusters():
    """Well-separated class clusters: the most helpful points share the test label."""
    torch.manual_seed(1)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = torch.arange(3).repeat_interleave(10)
    phi = centres[y] + 0.5 * torch.randn(30, 2)
    head = torch.nn.Linear(2, 3)
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(head(phi), y).backward()
        opt.step()
    # damped solve: a clean picture; the default pseudo-inverse (no damping) is noisier but agrees
    for kw, least in ((dict(damping=0.01, solver="cholesky"), 1.0), ({}, 0.85)):
        inf = head_influence(head, phi, y, phi[::3], y[::3], **kw)
        rates = influence_match_rate(inf, y, y[::3], ks=(1, 5))
        assert rates[1] >= least and rates[5] >= 0.9
        harmful = influence_match_rate(inf, y, y[::3], ks=(1,), by="harmful")
        assert harmful[1] < rates[1]


def test_errors():
    head = torch.nn.Linear(3, 2)
    with pytest.raises(ValueError, match="damping"):
        head_influence(head, torch.randn(4, 3), torch.zeros(4, dtype=torch.long), torch.randn(2, 3),
                       torch.zeros(2, dtype=torch.long), damping=0.0, solver="cholesky")
    with pytest.raises(ValueError, match="d=3"):
        head_gradients(head, torch.randn(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        head_gradients(head, torch.randn(4, 3), torch.full((4,), 5))
    with pytest.raises(ValueError, match="by"):
        influence_match_rate(torch.zeros(1, 2), torch.zeros(2), torch.zeros(1), by="max")
    with pytest.raises(ValueError, match="k"):
        influence_match_rate(torch.zeros(1, 2), torch.zeros(2), torch.zeros(1), ks=(3,))
    with pytest.raises(TypeError, match="head"):
        head_hessian("W", torch.randn(2, 2))
