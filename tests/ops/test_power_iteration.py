"""power_iteration_update_: kernel vs reference, semantics, a full power iteration vs eigh,
strides, batch independence, CPU/CUDA parity, opcheck, torch.compile, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt import _ext
from pyadvt.ops import power_iteration_update_
from pyadvt.ops.reference.hessian import power_iteration_update_reference_

from tests.conftest import device_params

needs_kernel = pytest.mark.skipif(
    not _ext.kernel_available("power_iteration_update_", "cpu"), reason="pyadvt._C not built with the kernel"
)
BACKENDS = ["reference", pytest.param("kernel", marks=needs_kernel)]
NAN = float("nan")


def _state(B, n, dtype, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(B, n, generator=g, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    hv = torch.randn(B, n, generator=g, dtype=torch.float64) * 3
    eig = (v * hv).sum(1) * (1 + 1e-3 * torch.randn(B, generator=g, dtype=torch.float64))
    eig[torch.rand(B, generator=g) < 0.3] = NAN
    active = torch.rand(B, generator=g) < 0.8
    cast = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    return cast(v), cast(hv), cast(eig), active.to(device)


def _run(backend, v, hv, eig, active, tol):
    v, eig, active = v.clone(), eig.clone(), active.clone()
    power_iteration_update_(v, hv, eig, active, tol, backend=backend)
    return v, eig, active


@needs_kernel
@settings(max_examples=30, deadline=None)
@given(
    B=st.integers(1, 9),
    n=st.integers(1, 700),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    tol=st.sampled_from([0.0, 1e-4, 1e-2, 0.5]),
    seed=st.integers(0, 10_000),
)
def test_kernel_matches_reference(B, n, dtype, tol, seed):
    state = _state(B, n, dtype, seed)
    vk, ek, ak = _run("kernel", *state, tol)
    vr, er, ar = _run("reference", *state, tol)
    t = dict(rtol=1e-6, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(vk, vr, **t)
    torch.testing.assert_close(ek, er, equal_nan=True, **t)
    assert torch.equal(ak, ar)


@pytest.mark.parametrize("backend", BACKENDS)
def test_semantics_by_hand(backend):
    # Rows: first call (NaN eig), converged, not converged, inactive, zero hv.
    v = torch.tensor([[0.6, 0.8], [1.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.6, 0.8]], dtype=torch.float64)
    hv = torch.tensor([[1.8, 0.8], [2.0, 0.0], [2.0, 0.0], [5.0, 5.0], [0.0, 0.0]], dtype=torch.float64)
    eig = torch.tensor([NAN, 2.0 + 1e-5, 2.1, 9.0, NAN], dtype=torch.float64)
    active = torch.tensor([True, True, True, False, True])
    power_iteration_update_(v, hv, eig, active, 1e-4, backend=backend)
    r0 = 0.6 * 1.8 + 0.8 * 0.8
    torch.testing.assert_close(eig, torch.tensor([r0, 2.0, 2.0, 9.0, 0.0], dtype=torch.float64), equal_nan=True)
    assert active.tolist() == [True, False, True, False, True]
    torch.testing.assert_close(v[0], torch.tensor([1.8, 0.8], dtype=torch.float64) / (1.8**2 + 0.8**2) ** 0.5)
    assert v[1].tolist() == [1.0, 0.0] and v[3].tolist() == [0.6, 0.8] and v[4].tolist() == [0.6, 0.8]


@needs_kernel
def test_non_finite_hv_keeps_v_like_the_reference():
    v = torch.full((3, 4), 0.5, dtype=torch.float64)
    hv = torch.ones(3, 4, dtype=torch.float64)
    hv[0, 1] = float("inf")
    hv[1, 2] = NAN
    eig = torch.full((3,), NAN, dtype=torch.float64)
    active = torch.ones(3, dtype=torch.bool)
    vk, ek, ak = _run("kernel", v, hv, eig, active, 1e-4)
    vr, er, ar = _run("reference", v, hv, eig, active, 1e-4)
    assert torch.equal(vk[:2], v[:2]) and torch.equal(vr[:2], v[:2])
    torch.testing.assert_close(vk, vr)
    torch.testing.assert_close(ek, er, equal_nan=True)
    assert ek[0] == float("inf") and torch.isnan(ek[1]) and torch.equal(ak, ar)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tolerance_is_relative_to_rayleigh(backend):
    v = torch.tensor([[1.0]]).double().expand(2, 1).clone()
    hv = torch.full((2, 1), -100.0, dtype=torch.float64)  # rayleigh -100
    eig = torch.tensor([-100.0 + 0.0099, -100.0 + 0.0101], dtype=torch.float64)
    active = torch.ones(2, dtype=torch.bool)
    power_iteration_update_(v, hv, eig, active, 1e-4, backend=backend)
    assert active.tolist() == [False, True]
    assert v.tolist() == [[-1.0], [-1.0]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_power_iteration_finds_top_eigenvalue(backend, dtype):
    B, n = 6, 20
    g = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(B, n, n, generator=g, dtype=torch.float64))
    spectrum = torch.linspace(-1.0, 1.0, n, dtype=torch.float64).repeat(B, 1)
    spectrum[:, -1] = torch.tensor([2.0, 3.0, 1.5, 5.0, 1.2, 4.0], dtype=torch.float64)  # gaps differ per row
    H = (Q @ torch.diag_embed(spectrum) @ Q.mT).to(dtype)
    v = torch.randn(B, n, generator=g, dtype=torch.float64).to(dtype)
    v = v / v.norm(dim=1, keepdim=True)
    eig = torch.full((B,), NAN, dtype=dtype)
    active = torch.ones(B, dtype=torch.bool)
    iters = torch.zeros(B, dtype=torch.int64)
    tol = 1e-6 if dtype == torch.float32 else 1e-10
    for _ in range(400):
        if not active.any():
            break
        was_active = active.clone()
        frozen_v, frozen_e = v[~active].clone(), eig[~active].clone()
        power_iteration_update_(v, torch.einsum("bij,bj->bi", H, v), eig, active, tol, backend=backend)
        assert torch.equal(v[~was_active], frozen_v) and torch.equal(eig[~was_active], frozen_e)
        iters += was_active.long()
    assert not active.any()
    torch.testing.assert_close(eig.double(), spectrum[:, -1], rtol=2e-5 if dtype == torch.float32 else 1e-8, atol=0)
    assert len(set(iters.tolist())) > 1  # per-sample convergence: rows stopped at different steps


@needs_kernel
def test_non_contiguous_state_updated_in_place():
    v_base = torch.randn(4, 30, dtype=torch.float64)
    v = v_base[:, ::2]  # [4, 15] strided view
    hv = torch.randn(15, 4, dtype=torch.float64).T  # transposed
    eig_base = torch.full((8,), NAN, dtype=torch.float64)
    eig = eig_base[::2]
    active_base = torch.ones(8, dtype=torch.bool)
    active = active_base[::2]
    ref = [v.contiguous().clone(), hv.contiguous(), eig.contiguous().clone(), active.contiguous().clone()]
    power_iteration_update_reference_(*ref, 1e-4)
    power_iteration_update_(v, hv, eig, active, 1e-4, backend="kernel")
    torch.testing.assert_close(v_base[:, ::2], ref[0], rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(eig_base[::2], ref[2], rtol=1e-14, atol=0)
    assert torch.isnan(eig_base[1::2]).all()  # untouched neighbours


@needs_kernel
def test_batch_independence():
    v, hv, eig, active = _state(7, 50, torch.float32, seed=4)
    vb, eb, ab = _run("kernel", v, hv, eig, active, 1e-3)
    for i in range(7):
        vi, ei, ai = _run("kernel", v[i : i + 1], hv[i : i + 1], eig[i : i + 1], active[i : i + 1], 1e-3)
        assert torch.equal(vi[0], vb[i]) and torch.equal(ai[0], ab[i])
        torch.testing.assert_close(ei[0], eb[i], rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(v=torch.ones(2, 3, 1)), ValueError, r"\[B, n\]"),
        (dict(hv=torch.ones(2, 4)), ValueError, "'hv' must match"),
        (dict(hv=torch.ones(2, 3, dtype=torch.float64)), ValueError, "'hv' must match"),
        (dict(eig=torch.ones(3)), ValueError, "'eig'"),
        (dict(eig=torch.ones(2, dtype=torch.float64)), ValueError, "'eig'"),
        (dict(active=torch.ones(2)), ValueError, "'active'"),
        (dict(tol=-1.0), ValueError, "'tol'"),
        (dict(tol=float("nan")), ValueError, "'tol'"),
        (dict(tol="small"), TypeError, "'tol'"),
        (dict(v=torch.ones(2, 3, dtype=torch.int32)), TypeError, "float32 or float64"),
    ],
)
def test_bad_input(kwargs, err, match):
    args = dict(v=torch.ones(2, 3), hv=torch.ones(2, 3), eig=torch.ones(2), active=torch.ones(2, dtype=torch.bool), tol=1e-4)
    args.update(kwargs)
    before = args["v"].clone() if args["v"].dtype.is_floating_point else None
    with pytest.raises(err, match=match):
        power_iteration_update_(**args)
    if before is not None:
        assert torch.equal(args["v"], before)


@needs_kernel
def test_kernel_checks_raise():
    with pytest.raises(RuntimeError, match="'active' must be"):
        torch.ops.pyadvt.power_iteration_update_(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2), torch.ones(2), 1e-4)
    with pytest.raises(RuntimeError, match="'tol'"):
        torch.ops.pyadvt.power_iteration_update_(
            torch.ones(2, 3), torch.ones(2, 3), torch.ones(2), torch.ones(2, dtype=torch.bool), -1.0
        )


@needs_kernel
def test_opcheck():
    for dtype in (torch.float32, torch.float64):
        v, hv, eig, active = _state(5, 33, dtype, seed=2)
        eig = torch.where(torch.isnan(eig), torch.zeros_like(eig), eig)  # opcheck compares outputs with ==
        torch.library.opcheck(torch.ops.pyadvt.power_iteration_update_.default, (v, hv, eig, active, 1e-3))


@needs_kernel
def test_torch_compile_fullgraph():
    H = torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64))

    def two_steps(v, eig, active):
        for _ in range(2):
            power_iteration_update_(v, v @ H, eig, active, 1e-6)
        return v, eig, active

    init = lambda: (torch.full((2, 3), 3**-0.5, dtype=torch.float64), torch.full((2,), NAN, dtype=torch.float64), torch.ones(2, dtype=torch.bool))  # noqa: E731
    compiled = torch.compile(two_steps, fullgraph=True, backend="aot_eager")
    for a, b in zip(compiled(*init()), two_steps(*init())):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("device", device_params())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_parity(device, dtype):
    state = _state(9, 1000, dtype, seed=8)
    vr, er, ar = _run("reference", *state, 1e-3)
    vd, ed, ad = _run("auto", *(t.to(device) for t in state), 1e-3)
    t = dict(rtol=1e-6, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(vd.cpu(), vr, **t)
    torch.testing.assert_close(ed.cpu(), er, equal_nan=True, **t)
    assert torch.equal(ad.cpu(), ar)
