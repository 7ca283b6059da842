"""The spectral kernels over the whole finite range (docs/theory.md §8): ``small_sym_eig``,
``jacobian_spectrum`` and ``power_iteration_update_`` on inputs scaled by 1e-150 ... 1e150 (float64)
and 1e-30 ... 1e30 (float32), against ``torch.linalg`` (LAPACK scales internally), for the kernels
and the references; NaN propagation; and the one sign rule shared by every backend."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt import _ext
from pyadvt.ops import jacobian_spectrum, power_iteration_update_, small_sym_eig
from pyadvt.ops.linalg import FLAG_NONFINITE
from pyadvt.ops.reference.linalg import normalize_signs

needs_kernel = pytest.mark.skipif(
    not (_ext.kernel_available("small_sym_eig", "cpu") and _ext.kernel_available("jacobian_spectrum", "cpu")),
    reason="pyadvt._C not built",
)
BACKENDS = ["reference", pytest.param("kernel", marks=needs_kernel)]
EPS = {torch.float32: 1.2e-7, torch.float64: 2.3e-16}
MAX_EXP = {torch.float64: 150, torch.float32: 30}


def _scale(dtype, e10: int) -> float:
    return 10.0 ** e10


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None)
@given(
    dtype=st.sampled_from([torch.float32, torch.float64]),
    frac=st.floats(-1.0, 1.0),
    k=st.sampled_from([1, 2, 5, 12, 33]),
    seed=st.integers(0, 10_000),
)
def test_sym_eig_at_every_scale_matches_eigvalsh(backend, dtype, frac, k, seed):
    c = _scale(dtype, round(frac * MAX_EXP[dtype]))
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(2, k, k, generator=g, dtype=torch.float64)
    G = ((A + A.mT) * c).to(dtype)
    evals, evecs = small_sym_eig(G, backend=backend)
    Gd = G.double()
    ref = torch.linalg.eigvalsh(Gd)
    scale = Gd.abs().amax(dim=(-1, -2))[:, None]
    assert torch.isfinite(evals).all()
    assert ((evals.double() - ref).abs() <= 16 * k * EPS[dtype] * scale).all()
    residual = torch.linalg.vector_norm(Gd @ evecs.double() - evecs.double() * evals.double()[:, None, :], dim=-2)
    assert (residual <= 16 * k * EPS[dtype] * scale).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("c", [1e-300, 1e-200, 1e-160, 1e160, 1e200, 1e300])
def test_sym_eig_far_outside_the_square_range(backend, c):
    """float64 magnitudes where squares over/underflow: NaN at >= 1e155 and error 0.39 at 1e-200
    before the scaling fix (CPU kernel)."""
    g = torch.Generator().manual_seed(3)
    A = torch.randn(3, 6, 6, generator=g, dtype=torch.float64)
    S = A + A.mT
    evals, evecs = small_sym_eig(S * c, backend=backend)
    ref = torch.linalg.eigvalsh(S) * c
    torch.testing.assert_close(evals, ref, rtol=1e-13, atol=0.0)
    e1, v1 = small_sym_eig(S, backend=backend)
    torch.testing.assert_close(evecs, v1, rtol=0, atol=1e-14)  # scale-free eigenvectors


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None)
@given(
    dtype=st.sampled_from([torch.float32, torch.float64]),
    frac=st.floats(-1.0, 1.0),
    m=st.sampled_from([1, 2, 4, 10]),
    n=st.sampled_from([3, 17, 300]),
    seed=st.integers(0, 10_000),
)
def test_spectrum_at_every_scale_matches_svd(backend, dtype, frac, m, n, seed):
    c = _scale(dtype, round(frac * MAX_EXP[dtype]))
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(2, m, n, generator=g, dtype=torch.float64)
    J = (base * c).to(dtype)
    out = jacobian_spectrum(J, backend=backend)
    U, S, Vh = torch.linalg.svd(J.double(), full_matrices=False)
    assert (out.flags & FLAG_NONFINITE == 0).all()
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out.sigma1.double(), S[:, 0], rtol=tol, atol=0.0)
    if m >= 2:
        resolved = S[:, 1] > 1e-6 * S[:, 0]
        torch.testing.assert_close(out.sigma2.double()[resolved], S[resolved, 1], rtol=tol * 100, atol=0.0)
        torch.testing.assert_close(out.lam.double()[resolved], (S[:, 1] / S[:, 0])[resolved], rtol=tol * 100, atol=0.0)
    gap = (S[:, 0] ** 2 - (S[:, 1] ** 2 if m >= 2 else 0)) / S[:, 0] ** 2
    dots = (out.v1.double() * Vh[:, 0]).sum(-1).abs()
    assert (dots[gap > 1e-3] >= 1 - 1e-4).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("c", [1e-300, 1e-200, 1e-100, 1e100, 1e200, 1e300])
def test_spectrum_far_outside_the_square_range(backend, c):
    """sigma1 = 0 at entries >= 1e100 and 27 % error at 1e-100 before the fix (CPU float64)."""
    g = torch.Generator().manual_seed(5)
    J = torch.randn(3, 4, 50, generator=g, dtype=torch.float64)
    ref = jacobian_spectrum(J, backend=backend)
    out = jacobian_spectrum(J * c, backend=backend)
    S = torch.linalg.svdvals(J)
    assert out.flags.tolist() == ref.flags.tolist() == [0, 0, 0]
    torch.testing.assert_close(out.sigma1, S[:, 0] * c, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(out.sigma2, S[:, 1] * c, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(out.lam, ref.lam, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(out.v1, ref.v1, rtol=0.0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,c", [(torch.float64, 1e-300), (torch.float64, 1e-170), (torch.float64, 1e170),
                                     (torch.float64, 1e300), (torch.float32, 1e-30), (torch.float32, 1e30)])
def test_power_iteration_normalises_at_every_scale(backend, dtype, c):
    if backend == "kernel" and not _ext.kernel_available("power_iteration_update_", "cpu"):
        pytest.skip("pyadvt._C not built")
    g = torch.Generator().manual_seed(7)
    hv64 = torch.randn(3, 40, generator=g, dtype=torch.float64)
    hv = (hv64 * c).to(dtype)
    v = torch.full((3, 40), 40 ** -0.5, dtype=dtype)
    eig = torch.full((3,), float("nan"), dtype=dtype)
    active = torch.ones(3, dtype=torch.bool)
    power_iteration_update_(v, hv, eig, active, backend=backend)
    unscaled = hv.double() / c  # torch.linalg.vector_norm itself overflows at 1e300
    expect = unscaled / torch.linalg.vector_norm(unscaled, dim=1, keepdim=True)
    torch.testing.assert_close(v.double(), expect, rtol=0, atol=10 * EPS[dtype])
    torch.testing.assert_close(eig.double() / c, (unscaled * 40 ** -0.5).sum(1), rtol=1e-5 if dtype == torch.float32
                               else 1e-12, atol=0.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_matrices_give_nan_on_every_backend(backend):
    """A NaN only off the diagonal used to give finite eigenvalues on the Jacobi path."""
    g = torch.Generator().manual_seed(9)
    A = torch.randn(4, 5, 5, generator=g, dtype=torch.float64)
    G = A + A.mT
    G[1, 0, 3] = G[1, 3, 0] = float("nan")
    G[2, 2, 2] = float("inf")
    evals, evecs = small_sym_eig(G, check=False, backend=backend)
    for b in (1, 2):
        assert torch.isnan(evals[b]).all() and torch.isnan(evecs[b]).all()
    ref_e, _ = small_sym_eig(G[[0, 3]], backend=backend)
    torch.testing.assert_close(evals[[0, 3]], ref_e)


@needs_kernel
def test_cpu_kernel_and_reference_share_the_sign_rule_on_block_matrices():
    """Block-structured matrices: one solver leaves exact zeros where another leaves +-1e-16; the
    shared rule (largest-magnitude component positive) gives the same vectors on both."""
    g = torch.Generator().manual_seed(10)
    B, k = 100, 8
    A = torch.randn(B, k, k, generator=g, dtype=torch.float64)
    G = A + A.mT
    G[:, :4, 4:] = 0
    G[:, 4:, :4] = 0
    ek, vk = small_sym_eig(G, backend="kernel")
    er, vr = small_sym_eig(G, backend="reference")
    torch.testing.assert_close(ek, er, rtol=1e-12, atol=1e-12)
    gaps = (ek[:, 1:] - ek[:, :-1]).abs()
    separated = torch.ones_like(ek, dtype=torch.bool)
    separated[:, 1:] &= gaps > 1e-6
    separated[:, :-1] &= gaps > 1e-6
    dots = (vk * vr).sum(dim=-2)  # per eigenvector
    assert (dots[separated] > 0.99).all()


def test_normalize_signs_rule_by_hand():
    v = torch.tensor([[1e-17, -0.3, 0.9, 0.1], [0.5, -0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0], [-1e-17, 0.6, -0.8, 0.0]])
    out = normalize_signs(v)
    assert out[0].tolist() == v[0].tolist()  # 0.9 largest, positive; the 1e-17 noise is irrelevant
    assert out[1].tolist() == v[1].tolist()  # tie: the first (0.5) decides
    assert out[2].tolist() == v[2].tolist()  # zero vector unchanged
    assert out[3].tolist() == (-v[3]).tolist()  # -0.8 largest: flipped
    near_tie = torch.tensor([[0.7, -0.7 * (1 + 1e-12)]])  # within the 1e-8 window: the first decides
    assert normalize_signs(near_tie).tolist() == near_tie.tolist()
