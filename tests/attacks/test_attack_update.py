"""The attack-update kernels (csrc/attack_update: nesterov_point, variance_momentum_step_, patch_step_)
against their pure-PyTorch references and an independent formula written here; opcheck, non-contiguous
inputs, per-sample budgets, torch.compile, CPU/CUDA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.conftest import device_params

from pyadvt import _ext
from pyadvt.attacks.smoothing import project_kernel
from pyadvt.ops import nesterov_point, patch_step_, variance_momentum_step_

pytestmark = pytest.mark.skipif(not _ext.extension_loaded() or not hasattr(torch.ops.pyadvt, "nesterov_point"),
                                reason="pyadvt._C without the attack_update kernels")

DTYPES = [torch.float32, torch.float64]


def tol(dtype):
    return dict(atol=1e-6, rtol=1e-6) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)


def case(device, dtype, B=5, shape=(3, 6, 7), seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.rand(*s, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)

    x0 = r(B, *shape)
    x = (x0 + 0.05 * (2 * r(B, *shape) - 1)).clamp(0, 1)
    grad = 2 * r(B, *shape) - 1
    eps = 0.05 + 0.1 * r(B)
    alpha = eps / 4
    return x0, x, grad, eps, alpha, r


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("dtype", DTYPES)
def test_nesterov_point_kernel_equals_formula(device, dtype):
    x0, x, grad, eps, alpha, r = case(device, dtype)
    m = grad.clone()
    out = nesterov_point(x, m, alpha, 0.7, backend="kernel")
    torch.testing.assert_close(out, x + alpha.view(-1, 1, 1, 1) * 0.7 * m, **tol(dtype))
    torch.testing.assert_close(out, nesterov_point(x, m, alpha, 0.7, backend="reference"), **tol(dtype))


def variance_formula(x, grad, v, nb, x0, eps, alpha, m, mu):
    """Independent statement of docs/theory.md §10.4's update (plain torch, batch of images)."""
    t = grad + v
    m = mu * m + t / t.abs().mean(dim=(1, 2, 3), keepdim=True)
    e = eps.view(-1, 1, 1, 1)
    x = torch.clamp(x0 + torch.clamp(x + alpha.view(-1, 1, 1, 1) * m.sign() - x0, -e, e), 0, 1)
    return x, nb - grad, m


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("dtype", DTYPES)
def test_variance_momentum_step_kernel_equals_formula_and_reference(device, dtype):
    x0, x, grad, eps, alpha, r = case(device, dtype)
    v, nb, m = 2 * r(*x.shape) - 1, 2 * r(*x.shape) - 1, 2 * r(*x.shape) - 1
    want = variance_formula(x, grad, v, nb, x0, eps, alpha, m, 0.9)
    outs = {}
    for backend in ("kernel", "reference"):
        xb, vb, mb = x.clone(), v.clone(), m.clone()
        variance_momentum_step_(xb, grad, vb, nb, x0, eps, alpha, mb, 0.9, backend=backend)
        outs[backend] = (xb, vb, mb)
        for got, exp in zip((xb, vb, mb), want):
            torch.testing.assert_close(got, exp, **tol(dtype))
    for a, b in zip(outs["kernel"], outs["reference"]):
        torch.testing.assert_close(a, b, **tol(dtype))


def patch_formula(x, grad, x0, a, eps, alpha, beta, gamma, k):
    """Independent statement of docs/theory.md §10.5 (torchattacks' PIFGSM.graph, per-row eps)."""
    e = eps.view(-1, 1, 1, 1)
    step = (alpha * beta).view(-1, 1, 1, 1) * grad.sign()
    a = a + step
    cut = torch.clamp(a.abs() - e, 0, 10000.0) * a.sign()
    C = x.shape[1]
    W = torch.ones(k, k, dtype=x.dtype, device=x.device) / (k * k - 1)
    W[k // 2, k // 2] = 0
    proj = gamma.view(-1, 1, 1, 1) * F.conv2d(cut, W.expand(C, 1, k, k), padding=k // 2, groups=C).sign()
    a = a + proj
    out = x + step + proj
    lo, hi = (x0 - e).clamp(0, 1), (x0 + e).clamp(0, 1)
    return torch.minimum(torch.maximum(out, lo), hi), a


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [3, 5])
def test_patch_step_kernel_equals_formula_and_reference(device, dtype, k):
    x0, x, grad, eps, alpha, r = case(device, dtype)
    a = 0.3 * (2 * r(*x.shape) - 1)                        # some entries beyond eps: a cut noise
    gamma = 10 * alpha
    want = patch_formula(x, grad, x0, a, eps, alpha, 10.0, gamma, k)
    for backend in ("kernel", "reference"):
        xb, ab = x.clone(), a.clone()
        patch_step_(xb, grad, x0, ab, eps, alpha, 10.0, gamma, project_kernel(k), backend=backend)
        torch.testing.assert_close(xb, want[0], **tol(dtype))
        torch.testing.assert_close(ab, want[1], **tol(dtype))


def test_kernels_accept_non_contiguous_inputs_and_shared_budgets():
    x0, x, grad, eps, alpha, r = case("cpu", torch.float32, B=4, shape=(3, 5, 5))
    xt = x.transpose(2, 3).contiguous().transpose(2, 3)          # same values, non-contiguous
    assert not xt.is_contiguous()
    v, nb, m = torch.zeros_like(x), grad.flip(0), torch.zeros_like(x)
    e1, a1 = eps[:1], alpha[:1]
    ref = [t.clone() for t in (x, v, m)]
    variance_momentum_step_(ref[0], grad, ref[1], nb, x0, e1, a1, ref[2], 1.0, backend="reference")
    got = [xt.clone().transpose(2, 3).contiguous().transpose(2, 3), v.clone(), m.clone()]
    variance_momentum_step_(got[0], grad, got[1], nb, x0, e1, a1, got[2], 1.0, backend="kernel")
    for a_, b_ in zip(got, ref):
        torch.testing.assert_close(a_, b_)


def test_kernels_reject_mismatched_arguments():
    x0, x, grad, eps, alpha, r = case("cpu", torch.float32)
    with pytest.raises(RuntimeError, match="momentum"):
        torch.ops.pyadvt.nesterov_point(x, grad[:2], alpha, 1.0)
    with pytest.raises(RuntimeError, match="kernel"):
        torch.ops.pyadvt.patch_step_(x, grad, x0, x.clone(), eps, alpha, 10.0, alpha, torch.ones(2, 2))
    with pytest.raises(RuntimeError, match="eps"):
        torch.ops.pyadvt.variance_momentum_step_(x, grad, x.clone(), grad, x0, eps[:3], alpha, x.clone(), 1.0)


def test_opcheck():
    x0, x, grad, eps, alpha, r = case("cpu", torch.float32, B=3, shape=(2, 4, 4))
    torch.library.opcheck(torch.ops.pyadvt.nesterov_point.default, (x, grad, alpha, 0.5))
    torch.library.opcheck(torch.ops.pyadvt.variance_momentum_step_.default,
                          (x.clone(), grad, torch.zeros_like(x), grad.flip(0), x0, eps, alpha, torch.zeros_like(x), 1.0))
    torch.library.opcheck(torch.ops.pyadvt.patch_step_.default,
                          (x.clone(), grad, x0, torch.zeros_like(x), eps, alpha, 10.0, 10 * alpha,
                           project_kernel(3).float()))


def test_compile_fullgraph_smoke():
    x0, x, grad, eps, alpha, r = case("cpu", torch.float32, B=2, shape=(1, 4, 4))

    @torch.compile(fullgraph=True, backend="eager")
    def look(x, m, a):
        return torch.ops.pyadvt.nesterov_point(x, m, a, 1.0) * 2

    torch.testing.assert_close(look(x, grad, alpha), 2 * (x + alpha.view(-1, 1, 1, 1) * grad))
