"""CUDA kernels against the CPU kernels and the references (all ``needs_cuda``; the GPU plan
``bash benchmarks/gpu_plan.sh`` runs them with the large-batch cases and compute-sanitizer).

Covers the findings of the kernel review: every k in 1..64 (the k = 54 static-shared-memory
launch failure), batches beyond gridDim.y, the shared sign rule (CPU vs CUDA), NaN/Inf and scale
handling, deterministic pgd reductions, write-back of non-contiguous inputs, and Lanczos runs that
call small_sym_eig with k up to 64."""

from __future__ import annotations

import pytest
import torch

from pyadvt.ops import jacobian_spectrum, pgd_step_, power_iteration_update_, small_sym_eig
from pyadvt.ops.reference.pgd import pgd_step_reference_

pytestmark = pytest.mark.needs_cuda
EPS = {torch.float32: 1.2e-7, torch.float64: 2.3e-16}
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _sym(B, k, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(B, k, k, generator=g, dtype=torch.float64)
    return (A + A.mT).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("B", [1, 5])
@pytest.mark.parametrize("k", list(range(1, 65)))
def test_small_sym_eig_every_k(k, B, dtype):
    G = _sym(B, k, dtype, seed=k)
    evals, evecs = small_sym_eig(G.cuda(), backend="kernel")
    Gd, e, V = G.double(), evals.cpu().double(), evecs.cpu().double()
    scale = Gd.abs().amax(dim=(-1, -2))[:, None]
    tol = 16 * k * EPS[dtype]
    assert ((e - torch.linalg.eigvalsh(Gd)).abs() <= tol * scale).all()
    assert (torch.linalg.vector_norm(Gd @ V - V * e[:, None, :], dim=-2) <= tol * scale).all()
    assert ((V.mT @ V - torch.eye(k, dtype=torch.float64)).abs() <= tol * 10).all()
    # the shared sign rule: same vectors as the CPU kernel where eigenvalues are separated
    ec, vc = small_sym_eig(G, backend="kernel")
    gaps = torch.cat([torch.full((B, 1), 1e9), (e[:, 1:] - e[:, :-1]), torch.full((B, 1), 1e9)], dim=1)
    separated = torch.minimum(gaps[:, 1:], gaps[:, :-1]) > 1e-3 * scale
    dots = (V * vc.double()).sum(dim=-2)
    assert (dots[separated] > 0.99).all()


@pytest.mark.parametrize("c", [1e-300, 1e-160, 1e160, 1e300])
def test_small_sym_eig_scaling_and_nan_on_cuda(c):
    G = _sym(4, 9, torch.float64, seed=3)
    e1, _ = small_sym_eig((G * c).cuda(), backend="kernel")
    torch.testing.assert_close(e1.cpu(), torch.linalg.eigvalsh(G) * c, rtol=1e-13, atol=0)
    H = G.clone()
    H[1, 0, 5] = H[1, 5, 0] = float("nan")  # off the diagonal only
    e2, v2 = small_sym_eig(H.cuda(), check=False, backend="kernel")
    assert torch.isnan(e2[1]).all() and torch.isnan(v2[1]).all() and torch.isfinite(e2[[0, 2, 3]]).all()


def test_lanczos_with_more_than_60_iterations():
    """metrics.lanczos calls small_sym_eig with k = j + 1 up to 64 (k >= 54 used to fail to launch)."""
    from pyadvt.metrics.lanczos import lanczos_top_eig

    g = torch.Generator().manual_seed(4)
    n = 200
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    d = torch.linspace(1.0, 1.001, n, dtype=torch.float64)  # clustered: slow convergence
    H = (Q * d) @ Q.T
    H = H.cuda()
    res = lanczos_top_eig(lambda v: v @ H, torch.ones(3, n, dtype=torch.float64, device="cuda"), tol=1e-15,
                          max_iter=64)
    assert int(res.iterations.max()) >= 60
    torch.testing.assert_close(res.values.cpu(), torch.full((3,), float(d.max()), dtype=torch.float64), rtol=1e-6,
                               atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("m", [1, 2, 54, 64])
@pytest.mark.parametrize("n", [1, 257, 3072])
def test_jacobian_spectrum_cuda_matches_cpu(m, n, dtype):
    g = torch.Generator().manual_seed(m * 1000 + n)
    J = torch.randn(7, m, n, generator=g, dtype=torch.float64)
    J[1] = 0  # zero
    J[2] = float("nan")
    J[3, 0, 0] = float("inf")
    J[4] = torch.outer(torch.randn(m, generator=g, dtype=torch.float64),
                       torch.randn(n, generator=g, dtype=torch.float64))  # rank one
    if m >= 2 and n >= 2:
        J[5, :2] = torch.eye(2, n, dtype=torch.float64)  # degenerate top pair
        J[5, 2:] = 0
    J[6] *= 1e200 if dtype == torch.float64 else 1e30
    J = J.to(dtype)
    cpu = jacobian_spectrum(J, backend="kernel")
    gpu = jacobian_spectrum(J.cuda(), backend="kernel")
    assert gpu.flags.cpu().tolist() == cpu.flags.tolist()  # exact flag agreement
    tol = dict(rtol=1e-10, atol=0) if dtype == torch.float64 else dict(rtol=1e-5, atol=0)
    for a, b in zip(gpu[:3], cpu[:3]):
        torch.testing.assert_close(a.cpu(), b, equal_nan=True, **tol)
    generic = (cpu.flags & 2) == 0  # v1 unique up to sign unless the top pair is degenerate
    torch.testing.assert_close(gpu.v1.cpu()[generic], cpu.v1[generic], equal_nan=True, rtol=0,
                               atol=1e-8 if dtype == torch.float64 else 1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 255, 257, 1000])
def test_power_iteration_cuda_non_contiguous(dtype, n):
    g = torch.Generator().manual_seed(n)
    base = torch.randn(n, 6, generator=g, dtype=torch.float64).to(dtype)
    hv = torch.randn(6, n, generator=g, dtype=torch.float64).to(dtype)
    hv[2] *= 1e200 if dtype == torch.float64 else 1e30
    hv[3] = 0
    eig = torch.tensor([float("nan"), 1.0, 2.0, 3.0, 4.0, 5.0], dtype=dtype)
    active = torch.tensor([True, True, True, True, False, True])
    outs = []
    for dev, backend in (("cpu", "reference"), ("cuda", "kernel")):
        v = base.to(dev).T  # non-contiguous [6, n] view, updated in place
        e = eig.to(dev)[::1]
        a = active.to(dev).clone()
        power_iteration_update_(v, hv.to(dev), e, a, 1e-3, backend=backend)
        outs.append((v.cpu(), e.cpu(), a.cpu()))
    (vr, er, ar), (vk, ek, ak) = outs
    torch.testing.assert_close(vk, vr, rtol=1e-6, atol=1e-6 if dtype == torch.float32 else 1e-12)
    torch.testing.assert_close(ek, er, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0, equal_nan=True)
    assert torch.equal(ak, ar)


def _pgd_inputs(B, n, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(B, n, generator=g)
    x = (x0 + 0.05 * torch.randn(B, n, generator=g)).clamp(0, 1)
    grad = torch.randn(B, n, generator=g)
    eps = torch.rand(B, generator=g) * 0.2
    alpha = torch.rand(B, generator=g) * 0.05 + 0.01
    c = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    return c(x), c(grad), c(x0), eps.to(device), alpha.to(device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("use_momentum", [False, True])
@pytest.mark.parametrize("n", [1, 255, 1025, 3072, 4097, 150528])
@pytest.mark.parametrize("B", [1, 7])
def test_pgd_step_cuda_grid(B, n, dtype, norm, use_momentum):
    x, grad, x0, eps, alpha = _pgd_inputs(B, n, dtype, "cuda", seed=n + B)
    m = torch.randn_like(x) if use_momentum else None
    runs = []
    for _ in range(2):  # twice: bitwise-identical (two-pass reductions, no atomics)
        xk, mk = x.clone(), None if m is None else m.clone()
        pgd_step_(xk, grad, x0, eps, alpha, norm=norm, momentum=mk, backend="kernel")
        runs.append((xk, mk))
    assert torch.equal(runs[0][0], runs[1][0])
    xk, mk = runs[0]
    xr, mr = x.clone(), None if m is None else m.clone()
    pgd_step_reference_(xr, grad, x0, eps.float() if dtype != torch.float64 else eps.double(),
                        alpha.float() if dtype != torch.float64 else alpha.double(), norm, 0.0, 1.0, mr, 1.0)
    finfo = torch.finfo(dtype)
    keep = torch.ones_like(x, dtype=torch.bool)
    if use_momentum:
        scale = float(mr.abs().max())
        torch.testing.assert_close(mk.double(), mr.double(), atol=16 * finfo.eps * scale, rtol=4 * finfo.eps)
        if norm == "linf":  # sign of a rounding-level momentum may differ (FMA)
            m64 = m.double()
            inv = n / grad.double().abs().sum(1, keepdim=True)
            terms = m64.abs() + (grad.double() * inv).abs()
            keep = (m64 + grad.double() * inv).abs() > 64 * 2.0 ** -23 * terms
    torch.testing.assert_close(xk.double()[keep], xr.double()[keep], atol=4 * finfo.eps, rtol=4 * finfo.eps)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_step_cuda_write_back_and_special_gradients(norm):
    base = torch.rand(6, 3, 16, 16, device="cuda")
    layouts = {"transposed": lambda t: t.transpose(2, 3),
               "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last)}
    for name, lay in layouts.items():
        x = lay(base.clone())
        x0 = lay(base.clone())
        grad = lay(torch.randn(6, 3, 16, 16, device="cuda"))
        grad[0] = 0
        grad[1, 0, 0, 0] = float("nan")
        m = lay(torch.zeros(6, 3, 16, 16, device="cuda"))
        xr, mr = x.contiguous().clone(), m.contiguous().clone()
        storage = x
        pgd_step_(x, grad, x0, 0.1, 0.03, norm=norm, momentum=m, backend="kernel")
        pgd_step_(xr, grad.contiguous(), x0.contiguous(), 0.1, 0.03, norm=norm, momentum=mr, backend="reference")
        assert x is storage
        torch.testing.assert_close(x, xr, equal_nan=True, msg=name)
        torch.testing.assert_close(m, mr, equal_nan=True, msg=name)
        assert torch.equal(x[0], x0[0])  # zero gradient: no step


def test_pgd_step_cuda_deterministic_mode():
    x, grad, x0, eps, alpha = _pgd_inputs(9, 70000, torch.float32, "cuda")
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        outs = []
        for _ in range(3):
            xk, m = x.clone(), torch.zeros_like(x)
            pgd_step_(xk, grad, x0, eps, alpha, norm="l2", momentum=m, backend="kernel")
            outs.append(xk)
        assert all(torch.equal(outs[0], o) for o in outs[1:])
    finally:
        torch.use_deterministic_algorithms(prev)
