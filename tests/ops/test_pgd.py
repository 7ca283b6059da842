"""pgd_step_: kernel vs reference, semantics, opcheck, torch.compile, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt import _ext
from pyadvt.ops import pgd_step_
from pyadvt.ops.reference.pgd import pgd_step_reference_


needs_kernel = pytest.mark.skipif(not _ext.kernel_available("pgd_step_", "cpu"), reason="pyadvt._C not built")

TOL = {torch.float32: dict(atol=1e-6, rtol=1e-5), torch.float64: dict(atol=1e-12, rtol=1e-12),
       torch.float16: dict(atol=2e-3, rtol=2e-3), torch.bfloat16: dict(atol=1.6e-2, rtol=1.6e-2)}


def _inputs(shape, dtype, device="cpu", seed=0, eps_per_sample=False, alpha_per_sample=False):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(shape, generator=g, dtype=torch.float64)
    x = (x0 + 0.05 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    grad = torch.randn(shape, generator=g, dtype=torch.float64)
    B = shape[0]
    eps = torch.rand(B, generator=g, dtype=torch.float64) * 0.3 if eps_per_sample else 0.07
    alpha = torch.rand(B, generator=g, dtype=torch.float64) * 0.1 + 0.01 if alpha_per_sample else 0.02
    cast = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    return cast(x), cast(grad), cast(x0), eps, alpha


def _run(backend, x, grad, x0, eps, alpha, norm, momentum=None, mu=None):
    x = x.clone()
    m = None if momentum is None else momentum.clone()
    pgd_step_(x, grad, x0, eps, alpha, norm=norm, momentum=m, mu=mu, backend=backend)
    return x, m


@needs_kernel
@settings(max_examples=40, deadline=None)
@given(
    B=st.integers(1, 5),
    feat=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    norm=st.sampled_from(["linf", "l2"]),
    use_momentum=st.booleans(),
    eps_ps=st.booleans(),
    alpha_ps=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_kernel_matches_reference(B, feat, dtype, norm, use_momentum, eps_ps, alpha_ps, seed):
    shape = (B, *feat)
    x, grad, x0, eps, alpha = _inputs(shape, dtype, seed=seed, eps_per_sample=eps_ps, alpha_per_sample=alpha_ps)
    m = torch.randn(shape, dtype=dtype) if use_momentum else None
    mu = 0.9 if use_momentum else None
    xk, mk = _run("kernel", x, grad, x0, eps, alpha, norm, m, mu)
    xr, mr = _run("reference", x, grad, x0, eps, alpha, norm, m, mu)
    torch.testing.assert_close(xk, xr, **TOL[dtype])
    if use_momentum:
        torch.testing.assert_close(mk, mr, **TOL[dtype])


@needs_kernel
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_non_contiguous_inputs(norm):
    base = torch.rand(6, 3, 8, 8)
    x0 = base.clone()
    x = base.transpose(2, 3)  # non-contiguous view, updated in place
    grad = torch.randn(6, 3, 8, 8).transpose(2, 3)
    m = torch.zeros(6, 3, 8, 8).transpose(2, 3)
    x_ref = x.contiguous().clone()
    m_ref = m.contiguous().clone()
    pgd_step_(x, grad, x0.transpose(2, 3), 0.1, 0.03, norm=norm, momentum=m, backend="kernel")
    pgd_step_reference_(x_ref, grad.contiguous(), x0.transpose(2, 3).contiguous(), torch.tensor([0.1]),
                        torch.tensor([0.03]), norm, 0.0, 1.0, m_ref, 1.0)
    torch.testing.assert_close(x, x_ref)
    torch.testing.assert_close(m, m_ref)
    torch.testing.assert_close(base.transpose(2, 3), x_ref)  # the caller's storage was updated


@pytest.mark.parametrize("backend", ["reference", pytest.param("kernel", marks=needs_kernel)])
def test_linf_semantics_by_hand(backend):
    x0 = torch.tensor([[0.5, 0.98, 0.02, 0.5]])
    x = x0.clone()
    g = torch.tensor([[1.0, 1.0, -1.0, 0.0]])
    pgd_step_(x, g, x0, eps=0.1, alpha=0.05, backend=backend)
    torch.testing.assert_close(x, torch.tensor([[0.55, 1.0, 0.0, 0.5]]))
    pgd_step_(x, g, x0, eps=0.1, alpha=0.08, backend=backend)  # would leave the ball: projected
    torch.testing.assert_close(x, torch.tensor([[0.6, 1.0, 0.0, 0.5]]))


@pytest.mark.parametrize("backend", ["reference", pytest.param("kernel", marks=needs_kernel)])
def test_l2_step_and_projection(backend):
    x0 = torch.full((2, 10), 0.5, dtype=torch.float64)
    g = torch.randn(2, 10, dtype=torch.float64)
    x = x0.clone()
    pgd_step_(x, g, x0, eps=1.0, alpha=0.1, norm="l2", backend=backend)
    step = (x - x0).norm(dim=1)
    torch.testing.assert_close(step, torch.full((2,), 0.1, dtype=torch.float64))
    cos = torch.nn.functional.cosine_similarity(x - x0, g, dim=1)
    torch.testing.assert_close(cos, torch.ones(2, dtype=torch.float64))
    for _ in range(30):
        pgd_step_(x, g, x0, eps=0.3, alpha=0.1, norm="l2", backend=backend)
    assert ((x - x0).norm(dim=1) <= 0.3 + 1e-12).all()


@pytest.mark.parametrize("backend", ["reference", pytest.param("kernel", marks=needs_kernel)])
def test_per_sample_budgets_equal_separate_calls(backend):
    x, grad, x0, _, _ = _inputs((4, 3, 5), torch.float64)
    eps = torch.tensor([0.0, 0.05, 0.1, 0.2], dtype=torch.float64)
    alpha = torch.tensor([0.01, 0.02, 0.03, 0.04], dtype=torch.float64)
    for norm in ("linf", "l2"):
        together = x.clone()
        pgd_step_(together, grad, x0, eps, alpha, norm=norm, backend=backend)
        for b in range(4):
            alone = x[b:b + 1].clone()
            pgd_step_(alone, grad[b:b + 1], x0[b:b + 1], float(eps[b]), float(alpha[b]), norm=norm, backend=backend)
            torch.testing.assert_close(together[b:b + 1], alone)


@pytest.mark.parametrize("backend", ["reference", pytest.param("kernel", marks=needs_kernel)])
def test_momentum_matches_mi_fgsm_formula(backend):
    x, grad, x0, _, _ = _inputs((3, 2, 4), torch.float64)
    m = torch.randn(3, 2, 4, dtype=torch.float64)
    expected_m = 1.0 * m + grad / grad.abs().mean(dim=(1, 2), keepdim=True)
    expected_x = (x0 + (x + 0.01 * expected_m.sign() - x0).clamp(-0.05, 0.05)).clamp(0, 1)
    pgd_step_(x, grad, x0, 0.05, 0.01, momentum=m, backend=backend)
    torch.testing.assert_close(m, expected_m)
    torch.testing.assert_close(x, expected_x)


@pytest.mark.parametrize("backend", ["reference", pytest.param("kernel", marks=needs_kernel)])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_zero_gradient_gives_no_step_and_no_nan(backend, norm):
    x0 = torch.rand(2, 5)
    x = x0.clone()
    m = torch.zeros(2, 5)
    pgd_step_(x, torch.zeros(2, 5), x0, 0.1, 0.05, norm=norm, momentum=m, backend=backend)
    assert torch.isfinite(m).all() and torch.equal(x, x0)


@needs_kernel
def test_opcheck():
    x, grad, x0, _, _ = _inputs((3, 4, 4), torch.float32)
    eps = torch.tensor([0.1, 0.2, 0.3])
    alpha = torch.tensor([0.01])
    for norm in ("linf", "l2"):
        torch.library.opcheck(torch.ops.pyadvt.pgd_step_.default,
                              (x.clone(), grad, x0, eps, alpha, norm, 0.0, 1.0, torch.zeros_like(x), 1.0))
        torch.library.opcheck(torch.ops.pyadvt.pgd_step_.default,
                              (x.clone(), grad, x0, eps, alpha, norm, 0.0, 1.0, None, 1.0))


@needs_kernel
@pytest.mark.slow
def test_torch_compile_fullgraph():
    def attack_step(x, grad, x0):
        x = x.clone()
        pgd_step_(x, grad, x0, 0.1, 0.02)
        return x * 1.0

    x, grad, x0, _, _ = _inputs((2, 3, 4), torch.float32)
    compiled = torch.compile(attack_step, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x, grad, x0), attack_step(x, grad, x0))


_PARITY_CASES = [("cpu", dt) for dt in (torch.float32, torch.float64, torch.float16, torch.bfloat16)] + [
    pytest.param("cuda", dt, marks=pytest.mark.needs_cuda)
    for dt in (torch.float32, torch.float64, torch.float16, torch.bfloat16)]


def _near_zero_momentum(m_old, grad, mu, dtype):
    """Elements whose new momentum mu m + g / mean|g| is within rounding of zero in the compute type:
    there the sign (the L-inf direction) may legitimately differ between two correct evaluations
    (FMA contraction on GPUs, summation order of mean|g|)."""
    m64, g64 = m_old.double(), grad.double()
    inv = g64[0].numel() / g64.abs().reshape(g64.shape[0], -1).sum(1)
    inv = inv.reshape((-1,) + (1,) * (g64.dim() - 1))
    terms = (mu * m64).abs() + (g64 * inv).abs()
    ulp = 2.0 ** -23 if dtype != torch.float64 else 2.0 ** -52
    return (mu * m64 + g64 * inv).abs() <= 64 * ulp * terms


@pytest.mark.parametrize("device,dtype", _PARITY_CASES)
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("use_momentum", [False, True])
@pytest.mark.parametrize("shape", [(5, 3, 17, 9), (3, 2, 1100)])  # 459 and 2200 elements per sample
def test_device_parity(device, dtype, norm, use_momentum, shape):
    """Kernel vs the reference run on the *same rounded inputs* (both compute in float32 for
    float16/bfloat16, round once). Tolerance: a few ulps of the storage dtype (FMA contraction and
    summation order); for L-inf with momentum, elements whose momentum is within rounding of zero
    are masked (their sign may flip: 80/200 seeds failed for bfloat16 when compared with a float64
    reference). The second shape takes the multi-block reduction path on CUDA (> 1024 elements)."""
    if not _ext.kernel_available("pgd_step_", device):
        pytest.skip(f"no pgd_step_ kernel for {device}")
    x, grad, x0, eps, alpha = _inputs(shape, torch.float64, eps_per_sample=True, alpha_per_sample=True)
    cast = lambda t: None if t is None else t.to(device=device, dtype=dtype)  # noqa: E731
    m = torch.randn_like(x) if use_momentum else None
    xs, gs, x0s, ms = cast(x), cast(grad), cast(x0), cast(m)
    mu = 1.0 if use_momentum else None
    xr, mr = _run("reference", xs, gs, x0s, eps, alpha, norm, ms, mu)
    xk, mk = _run("kernel", xs, gs, x0s, eps, alpha, norm, ms, mu)
    finfo = torch.finfo(dtype)
    tol = dict(atol=4 * finfo.eps, rtol=4 * finfo.eps)
    keep = torch.ones(shape, dtype=torch.bool)
    if use_momentum:  # cancellation in mu m + g / mean|g|: errors relative to the largest term
        scale = float(mr.abs().max())
        torch.testing.assert_close(mk.cpu().double(), mr.cpu().double(), atol=16 * finfo.eps * scale,
                                   rtol=4 * finfo.eps)
        if norm == "linf":
            keep = ~_near_zero_momentum(ms.cpu(), gs.cpu(), 1.0, dtype)
    torch.testing.assert_close(xk.cpu().double()[keep], xr.cpu().double()[keep], **tol)


def test_near_zero_momentum_mask_is_small_and_catches_the_flips():
    """The mask of test_device_parity removes only elements whose momentum is rounding-level."""
    x, grad, x0, _, _ = _inputs((5, 3, 17, 9), torch.float64)
    m = torch.randn_like(x)
    mask = _near_zero_momentum(m.bfloat16(), grad.bfloat16(), 1.0, torch.bfloat16)
    assert mask.float().mean() < 0.01
    m_new = m + grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True)
    m_new[0, 0, 0, 0] = 0.0  # an exact zero is always masked
    tiny = m.clone()
    tiny[0, 0, 0, 0] = -grad[0, 0, 0, 0] / grad[0].abs().mean()
    assert _near_zero_momentum(tiny, grad, 1.0, torch.float32)[0, 0, 0, 0]


def _bad_calls():
    x = torch.rand(2, 3)
    ok = dict(x=x, grad=torch.randn(2, 3), x_orig=x.clone(), eps=0.1, alpha=0.01)
    yield "eps", dict(ok, eps=-0.1)
    yield "alpha", dict(ok, alpha=0.0)
    yield "alpha", dict(ok, alpha=-1.0)
    yield "eps", dict(ok, eps=torch.tensor([0.1, 0.2, 0.3]))
    yield "grad", dict(ok, grad=torch.randn(2, 4))
    yield "grad", dict(ok, grad=torch.randn(2, 3, dtype=torch.float64))
    yield "x_orig", dict(ok, x_orig=torch.rand(3, 3))
    yield "momentum", dict(ok, mu=0.9)
    yield "momentum", dict(ok, momentum=torch.zeros(2, 2))
    yield "norm", dict(ok, norm="l1")
    yield "lo", dict(ok, lo=1.0, hi=0.0)
    yield "x", dict(ok, x=torch.ones(2, 3, dtype=torch.int64))
    if torch.cuda.is_available():
        yield "grad", dict(ok, grad=torch.randn(2, 3, device="cuda"))


@pytest.mark.parametrize("backend", ["reference", pytest.param("kernel", marks=needs_kernel)])
@pytest.mark.parametrize("name,kwargs", list(_bad_calls()))
def test_bad_input_raises_and_leaves_tensors_untouched(backend, name, kwargs):
    snapshot = {k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
    with pytest.raises(ValueError, match=name):
        pgd_step_(**kwargs, backend=backend)
    for k, v in snapshot.items():
        assert torch.equal(kwargs[k], v), f"{k} was modified"


@needs_kernel
def test_kernel_checks_raise_runtime_error_naming_argument():
    x = torch.rand(2, 3)
    with pytest.raises(RuntimeError, match="grad"):
        torch.ops.pyadvt.pgd_step_(x, torch.rand(2, 4), x, torch.tensor([0.1]), torch.tensor([0.1]), "linf", 0.0, 1.0,
                                   None, 1.0)
    with pytest.raises(RuntimeError, match="eps"):
        torch.ops.pyadvt.pgd_step_(x, x, x, torch.tensor([0.1, 0.1, 0.1]), torch.tensor([0.1]), "linf", 0.0, 1.0,
                                   None, 1.0)


@pytest.mark.parametrize("backend", ["reference", pytest.param("kernel", marks=needs_kernel)])
def test_unvalidated_fast_path_equals_validated(backend):
    x, grad, x0, eps, alpha = _inputs((4, 3, 5), torch.float32, eps_per_sample=True, alpha_per_sample=True)
    a, b = x.clone(), x.clone()
    pgd_step_(a, grad, x0, eps, alpha, backend=backend)
    pgd_step_(b, grad, x0, eps.float(), alpha.float(), backend=backend, validate=False)
    torch.testing.assert_close(a, b)
