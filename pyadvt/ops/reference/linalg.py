"""Pure-PyTorch references of the spectral kernels (docs/theory.md §8): ``small_sym_eig`` and
``jacobian_spectrum``. They are the test oracle, the benchmark baseline and the fall-back when
the compiled extension is missing; they follow the kernels' conventions exactly (float64 work,
sign normalisation, flag thresholds), see :mod:`pyadvt.ops.linalg` for the contracts.
"""

from __future__ import annotations

import torch

# Flag bits of jacobian_spectrum (shared with csrc/include/pyadvt/jacobian_spectrum.h).
FLAG_ZERO = 1
FLAG_DEGENERATE_TOP = 2
FLAG_RANK_LT2 = 4
FLAG_NONFINITE = 8


def degenerate_rtol(dtype: torch.dtype) -> float:
    """Relative gap ``(e1 - e2) / e1`` of the Gram eigenvalues at or below which the top singular
    value counts as degenerate: ``sqrt(eps)`` of the input dtype."""
    return float(torch.finfo(dtype).eps) ** 0.5


def rank_rtol(m: int) -> float:
    """Relative size ``e2 / e1`` of the second Gram eigenvalue at or below which the Jacobian counts
    as rank < 2: ``64 * m * eps(float64)``, the resolution of the float64 Gram route."""
    return 64.0 * m * float(torch.finfo(torch.float64).eps)


# Relative tie window of the sign rule (csrc/include/pyadvt/scaling.h, kSignTieRtol).
SIGN_TIE_RTOL = 1e-8


def normalize_signs(vecs: torch.Tensor) -> torch.Tensor:
    """The sign rule of every eigen/singular-vector output (docs/theory.md §8): flip each vector
    along the last dim so that its largest-magnitude component is positive; among components
    within a relative ``SIGN_TIE_RTOL`` of the largest magnitude the first one decides.

    ``vecs``: ``[..., n]``; all-zero and non-finite vectors are left unchanged. The rule is
    insensitive to rounding noise in near-zero components (where "first nonzero component" rules
    disagree between solvers).
    """
    mag = vecs.abs()
    top = mag.amax(dim=-1, keepdim=True)
    lead_mask = mag >= (1.0 - SIGN_TIE_RTOL) * top
    first = torch.argmax(lead_mask.to(torch.int8), dim=-1, keepdim=True)
    lead = torch.gather(vecs, -1, first)
    return torch.where(lead < 0, -vecs, vecs)


def pow2_shift(max_abs: torch.Tensor) -> torch.Tensor:
    """Exponent ``s`` (int) with ``max_abs * 2**s`` in ``[0.5, 1)``; 0 for zero or non-finite values
    (``scale_shift`` of csrc/include/pyadvt/scaling.h)."""
    finite = torch.isfinite(max_abs) & (max_abs > 0)
    _, e = torch.frexp(torch.where(finite, max_abs, torch.ones_like(max_abs)))
    return torch.where(finite, -e, torch.zeros_like(e))


def pow2_mul(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``x * 2**s`` (``s`` int, broadcastable) as two exact power-of-two factors, so shifts beyond
    the float64 exponent range stay representable (``pow2_mul`` of scaling.h)."""
    a = torch.div(s, 2, rounding_mode="trunc")
    one = torch.ones(a.shape, dtype=x.dtype, device=x.device)
    return x * torch.ldexp(one, a) * torch.ldexp(one, s - a)


def small_sym_eig_reference(G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of symmetric ``G [B, k, k]`` via ``torch.linalg.eigh`` in float64.

    Uses the symmetric part ``(G + G^T) / 2`` of ``G`` scaled by the power of two that puts its
    largest entry in ``[0.5, 1)`` (exact; as the kernels, so the whole finite range works); a matrix
    with a NaN or Inf entry gives NaN outputs. Returns ``(evals [B, k] ascending, evecs [B, k, k])``
    in ``G``'s dtype, eigenvectors as columns, each following :func:`normalize_signs`.
    """
    A = G.to(torch.float64)
    mx = A.abs().amax(dim=(-1, -2))
    finite = torch.isfinite(mx)
    s = pow2_shift(mx)[:, None, None]
    A = torch.where(finite[:, None, None], A, torch.zeros_like(A))
    A = pow2_mul(A, s)
    A = 0.5 * (A + A.transpose(-1, -2))
    evals, evecs = torch.linalg.eigh(A)
    evals = pow2_mul(evals, -s[:, :, 0])
    evecs = normalize_signs(evecs.transpose(-1, -2)).transpose(-1, -2)
    nan = float("nan")
    evals = torch.where(finite[:, None], evals, torch.full_like(evals, nan))
    evecs = torch.where(finite[:, None, None], evecs, torch.full_like(evecs, nan))
    return evals.to(G.dtype), evecs.to(G.dtype).contiguous()


def jacobian_spectrum_reference(J: torch.Tensor):
    """Top singular values, their ratio, the top right singular vector and flags of ``J [B, m, n]``
    through the float64 Gram matrix ``J J^T`` (same route, scaling rule, sign rule and thresholds
    as the kernels).

    Returns ``(sigma1 [B], sigma2 [B], lam [B], v1 [B, n], flags [B] int32)``.
    """
    B, m, n = J.shape
    Jd = J.to(torch.float64)
    # Scaling rule of csrc/include/pyadvt/jacobian_spectrum.h: 2^s J when max |J| leaves
    # [1e-145, 1e145] (exact; sigma_i scaled back, lambda and v1 scale-free).
    mx = Jd.abs().amax(dim=(-1, -2))
    finite = torch.isfinite(mx)
    safe = (mx >= 1e-145) & (mx <= 1e145)
    s = torch.where(safe, torch.zeros_like(mx, dtype=torch.int32), pow2_shift(mx).to(torch.int32))
    Jd = pow2_mul(torch.where(finite[:, None, None], Jd, torch.zeros_like(Jd)), s[:, None, None])
    G = Jd @ Jd.transpose(-1, -2)
    Gs = G
    evals, evecs = torch.linalg.eigh(Gs)
    e1 = evals[:, -1].clamp_min(0.0)
    e2 = evals[:, -2].clamp_min(0.0) if m >= 2 else torch.zeros_like(e1)
    zero = torch.diagonal(Gs, dim1=-2, dim2=-1).sum(-1) <= 0
    rank_lt2 = zero | (e2 <= rank_rtol(m) * e1)
    degenerate = ~rank_lt2 & ((e1 - e2) <= degenerate_rtol(J.dtype) * e1)
    sigma1 = torch.where(zero, torch.zeros_like(e1), e1.sqrt())
    sigma2 = torch.where(rank_lt2, torch.zeros_like(e2), e2.sqrt())
    safe1 = torch.where(zero, torch.ones_like(sigma1), sigma1)
    lam = sigma2 / safe1
    u1 = evecs[:, :, -1]
    v1 = torch.einsum("bmn,bm->bn", Jd, u1) / safe1[:, None]
    sigma1, sigma2 = pow2_mul(sigma1, -s), pow2_mul(sigma2, -s)
    v1 = torch.where(zero[:, None], torch.zeros_like(v1), normalize_signs(v1))
    flags = (
        zero.to(torch.int32) * FLAG_ZERO
        + rank_lt2.to(torch.int32) * FLAG_RANK_LT2
        + degenerate.to(torch.int32) * FLAG_DEGENERATE_TOP
    )
    nan = torch.full_like(sigma1, float("nan"))
    sigma1 = torch.where(finite, sigma1, nan)
    sigma2 = torch.where(finite, sigma2, nan)
    lam = torch.where(finite, lam, nan)
    v1 = torch.where(finite[:, None], v1, torch.full_like(v1, float("nan")))
    flags = torch.where(finite, flags, torch.full_like(flags, FLAG_NONFINITE))
    dt = J.dtype
    return sigma1.to(dt), sigma2.to(dt), lam.to(dt), v1.to(dt), flags
