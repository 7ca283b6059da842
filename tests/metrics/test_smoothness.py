"""Seed 001 smoothness: per-sample top eigenvalue of the input Hessian (docs/theory.md §3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from pyadvt.metrics.lanczos import lanczos_top_eig, power_top_eig
from pyadvt.metrics.smoothness import smoothness


def relu_mlp(n_in=6, hidden=12, C=4, dtype=torch.float64):
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.LeakyReLU(0.1), nn.Linear(hidden, C)).to(dtype)


def tanh_mlp(n_in=6, hidden=10, C=3, dtype=torch.float64):
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, C)).to(dtype)


def bn_cnn(C=5, dtype=torch.float32):
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(4 * 2 * 2, C)).to(dtype)
    with torch.no_grad():  # non-trivial running statistics
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 1.5)
    return net


def dense_lambda_max(model, x, y):
    """Top eigenvalue of the dense per-sample Hessian from torch.func.hessian."""
    out = []
    for xi, yi in zip(x, y):
        def loss(z, yi=yi):
            return F.cross_entropy(model(z.unsqueeze(0)), yi.unsqueeze(0))
        H = torch.func.hessian(loss)(xi).reshape(xi.numel(), xi.numel())
        out.append(torch.linalg.eigvalsh(0.5 * (H + H.T).double())[-1])
    return torch.stack(out)


def data(B=7, shape=(1, 2, 3), C=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, *shape, generator=g, dtype=dtype), torch.randint(0, C, (B,), generator=g)


@pytest.mark.parametrize("method", ["lanczos", "power", "exact"])
def test_relu_matches_dense_hessian(method):
    model, (x, y) = relu_mlp(), data()
    ref = dense_lambda_max(model, x, y)
    r = smoothness(model, x, y, method=method, tol=1e-9, max_iter=500, progress=False)
    assert r.valid.all() and r.converged.all()
    torch.testing.assert_close(r.values, ref, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_smooth_net_matches_dense_hessian(method):
    model = tanh_mlp()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # strong curvature, indefinite Hessians
    x, y = data(B=9, C=3, seed=1)
    ref = dense_lambda_max(model, x, y)
    r = smoothness(model, x, y, method=method, tol=1e-10, max_iter=600, progress=False)
    torch.testing.assert_close(r.values, ref, rtol=1e-4, atol=1e-8)


def test_power_recovers_lambda_max_when_dominant_eigenvalue_is_negative():
    H = torch.diag_embed(torch.tensor([[1.0, -5.0, 0.5], [-0.5, -3.0, -1.0], [2.0, 1.0, -1.0]], dtype=torch.float64))
    mv = lambda v, active: torch.einsum("bij,bj->bi", H, v)  # noqa: E731
    v0 = torch.ones(3, 3, dtype=torch.float64) + torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    r = power_top_eig(mv, v0, tol=1e-12, max_iter=2000)
    torch.testing.assert_close(r.values, torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64), rtol=1e-6, atol=1e-9)
    lz = lanczos_top_eig(mv, v0, tol=1e-12, max_iter=10)
    torch.testing.assert_close(lz.values, r.values, rtol=1e-6, atol=1e-9)


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 10_000))
@example(seed=4593)  # a sample whose input gradient is nearly the 2nd eigenvector: a gradient start vector or a
# gap-theorem stopping rule made Lanczos stop at the 2nd eigenvalue (10 % low) here
def test_three_methods_agree_on_relu_cnn(seed):
    torch.manual_seed(seed)
    model = bn_cnn()
    x, y = data(B=10, shape=(1, 4, 4), C=5, dtype=torch.float32, seed=seed)
    ex = smoothness(model, x, y, method="exact", progress=False)
    lz = smoothness(model, x, y, method="lanczos", progress=False)
    pw = smoothness(model, x, y, method="power", tol=1e-6, max_iter=400, progress=False)
    torch.testing.assert_close(lz.values, ex.values, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(pw.values, ex.values, rtol=1e-3, atol=1e-6)


def test_batch_independence_and_chunking():
    model, (x, y) = relu_mlp(), data(B=9)
    full = smoothness(model, x, y, method="power", tol=1e-6, progress=False)
    for b in (1, 4):
        part = smoothness(model, x, y, method="power", tol=1e-6, batch_size=b, progress=False)
        torch.testing.assert_close(part.values, full.values, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(part.iterations, full.iterations)
    alone = smoothness(model, x[5:6], y[5:6], method="lanczos", progress=False)
    inside = smoothness(model, x, y, method="lanczos", progress=False)
    torch.testing.assert_close(alone.values[0], inside.values[5], rtol=1e-12, atol=1e-14)


def test_batchnorm_model_runs_in_eval_and_state_is_restored():
    model = bn_cnn().train()
    for p in model.parameters():
        p.grad = None
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = data(B=6, shape=(1, 4, 4), C=5, dtype=torch.float32)
    x0 = x.clone()
    r = smoothness(model, x, y, progress=False)
    # eval-mode value == value of the model explicitly put in eval mode
    ref = dense_lambda_max(model.eval(), x, y)
    model.train()
    torch.testing.assert_close(r.values, ref.double(), rtol=1e-3, atol=1e-6)
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert torch.equal(x, x0)


def test_exact_refuses_smooth_nets_unless_forced():
    model, (x, y) = tanh_mlp(), data(C=3)
    with pytest.raises(ValueError, match="Tanh"):
        smoothness(model, x, y, method="exact", progress=False)
    forced = smoothness(model, x, y, method="exact", force=True, progress=False)
    assert forced.valid.all()
    # the forced value is the Gauss-Newton eigenvalue, which differs from the true one here
    true = dense_lambda_max(model, x, y)
    assert not torch.allclose(forced.values, true, rtol=1e-6)


def test_lanczos_needs_fewer_hvps_than_power_on_relu_net():
    model = bn_cnn()
    x, y = data(B=16, shape=(1, 4, 4), C=5, dtype=torch.float32, seed=3)
    lz = smoothness(model, x, y, method="lanczos", progress=False)
    pw = smoothness(model, x, y, method="power", progress=False)
    assert lz.iterations.sum() < pw.iterations.sum()
    assert int(lz.iterations.max()) <= 5 + 1 + 2  # rank(H) <= C - 1, so Krylov space is exhausted


def test_summary_and_bad_arguments():
    model, (x, y) = relu_mlp(), data()
    s = smoothness(model, x, y, progress=False).summary()
    assert s["n"] == 7 and s["mean"] <= s["max"] and s["undefined"] == 0
    with pytest.raises(ValueError, match="method"):
        smoothness(model, x, y, method="arpack", progress=False)
    with pytest.raises(ValueError, match="'y'"):
        smoothness(model, x, y.float(), progress=False)
    with pytest.raises(ValueError, match="tol"):
        smoothness(model, x, y, tol=0, progress=False)


def test_non_finite_hessian_is_masked_and_warned():
    model, (x, y) = relu_mlp(), data()
    x = x.clone()
    x[2, 0, 0, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="undefined"):
        r = smoothness(model, x, y, progress=False)
    assert not bool(r.valid[2]) and r.valid.sum() == 6
    assert torch.isfinite(torch.tensor(r.mean))


def test_unconverged_samples_are_flagged_and_warned():
    model, (x, y) = relu_mlp(), data()
    with pytest.warns(RuntimeWarning, match="did not converge"):
        r = smoothness(model, x, y, method="power", max_iter=2, tol=1e-12, progress=False)
    assert not r.converged.any() and (r.iterations == 2).all() and r.summary()["converged"] == 0.0


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_lanczos_stops_within_tolerance_on_separated_spectra(seed):
    g = torch.Generator().manual_seed(seed)
    B, n, tol = 4, 30, 1e-6
    Q, _ = torch.linalg.qr(torch.randn(B, n, n, generator=g, dtype=torch.float64))
    lam = torch.rand(B, n, generator=g, dtype=torch.float64)
    lam[:, 0] = 2.0  # relative gap >= 0.5 to the rest of the spectrum
    H = Q @ torch.diag_embed(lam) @ Q.transpose(1, 2)
    r = lanczos_top_eig(lambda v, a: torch.einsum("bij,bj->bi", H, v),
                        torch.randn(B, n, generator=g, dtype=torch.float64), tol=tol, max_iter=n)
    assert r.converged.all()
    assert ((r.values - 2.0).abs() <= 10 * tol * 2.0).all()


@pytest.mark.parametrize("method", ["lanczos", "exact"])
def test_mean_and_upper_smoothness_match_dense_values(method):
    # Seed 001 Def. 1: sigma_F = E[sigma(x)] and the upper smoothness bar-sigma_F = sup sigma(x) (used as
    # s_F / s_G in Theorem 1), here the max over the samples of the dense Hessian's top eigenvalue.
    model, (x, y) = relu_mlp(), data(B=8, seed=2)
    ref = [float(torch.linalg.eigvalsh(torch.func.hessian(
        lambda z, yi=yi: F.cross_entropy(model(z.unsqueeze(0)), yi.view(1)))(xi).reshape(6, 6))[-1])
        for xi, yi in zip(x, y)]
    r = smoothness(model, x, y, method=method, tol=1e-10, max_iter=50, progress=False)
    assert max(ref) > sum(ref) / len(ref) * (1 + 1e-3)  # max and mean differ on this batch
    assert r.max == pytest.approx(max(ref), rel=1e-6)
    assert r.mean == pytest.approx(sum(ref) / len(ref), rel=1e-6)
    assert r.summary()["max"] == r.max


def test_exact_route_matches_gauss_newton_eigenvalue_by_hand():
    # docs/theory.md §3 (c): for a piecewise-linear net H = J^T (diag p - p p^T) J; its top eigenvalue computed
    # densely from the logits' Jacobian (no projection trick) must equal method="exact".
    model, (x, y) = relu_mlp(), data(B=5, seed=4)
    r = smoothness(model, x, y, method="exact", progress=False)
    for i in range(5):
        J = torch.func.jacrev(lambda z: model(z.unsqueeze(0))[0])(x[i]).reshape(4, 6)
        p = torch.softmax(model(x[i:i + 1])[0].detach(), 0)
        H = J.T @ (torch.diag(p) - torch.outer(p, p)) @ J
        assert float(r.values[i]) == pytest.approx(float(torch.linalg.eigvalsh(H)[-1]), rel=1e-9, abs=1e-14)


def test_lanczos_honours_a_loose_tolerance_against_dense_eigvalsh():
    # Lanczos (docs/theory.md §3 (b)) stops when ||H y - theta y|| <= tol |theta| (ARPACK/eigsh's rule), so at
    # tol = 1e-3 theta is within ~tol of lambda_max. A rule 1000x looser stops after the first product
    # (residual <= |theta|) with theta = the Rayleigh quotient of the start vector, far from lambda_max.
    g = torch.Generator().manual_seed(11)
    B, n, tol = 3, 40, 1e-3
    Q, _ = torch.linalg.qr(torch.randn(B, n, n, generator=g, dtype=torch.float64))
    lam = 5.0 * torch.rand(B, n, generator=g, dtype=torch.float64)
    lam[:, 0] = 10.0
    H = Q @ torch.diag_embed(lam) @ Q.transpose(1, 2)
    H = 0.5 * (H + H.transpose(1, 2))
    ref = torch.linalg.eigvalsh(H)[:, -1]
    r = lanczos_top_eig(lambda v, a: torch.einsum("bij,bj->bi", H, v),
                        torch.randn(B, n, generator=g, dtype=torch.float64), tol=tol, max_iter=n)
    assert r.converged.all() and (r.iterations > 2).all()
    assert ((r.values - ref).abs() <= 10 * tol * ref.abs()).all(), (r.values, ref)
