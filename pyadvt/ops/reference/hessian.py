"""Pure-PyTorch reference of ``power_iteration_update_`` (docs/theory.md §8 and §3(a))."""

from __future__ import annotations

import torch

from pyadvt.ops.reference.linalg import pow2_mul, pow2_shift


def power_iteration_update_reference_(
    v: torch.Tensor, hv: torch.Tensor, eig: torch.Tensor, active: torch.Tensor, tol: float
) -> None:
    """One bookkeeping pass of batched power iteration, in place; see
    :func:`pyadvt.ops.power_iteration_update_` for the contract.

    ``v, hv``: ``[B, n]``; ``eig``: ``[B]`` (NaN = no previous value); ``active``: ``[B]`` bool.
    Sums are accumulated in float64 as the kernels do, with the same power-of-two scaling of ``hv``.
    """
    vd = v.to(torch.float64)
    hd = hv.to(torch.float64)
    rayleigh = (vd * hd).sum(dim=1)
    prev = eig.to(torch.float64)
    # Normalise 2^s hv (s puts max |hv| in [0.5, 1); exact, so the result is hv / ||hv|| wherever that
    # is representable, and also where the squares of hv over- or underflow float64).
    mx = hd.abs().amax(dim=1)
    ok = torch.isfinite(mx) & (mx > 0)  # zero or non-finite hv: v is kept, as in the kernels
    hs = pow2_mul(torch.where(ok[:, None], hd, torch.ones_like(hd)), pow2_shift(mx)[:, None])
    new_v = torch.where(ok[:, None], hs / torch.linalg.vector_norm(hs, dim=1, keepdim=True), vd)
    converged = (rayleigh - prev).abs() <= tol * rayleigh.abs()
    v.copy_(torch.where(active[:, None], new_v.to(v.dtype), v))
    eig.copy_(torch.where(active, rayleigh.to(eig.dtype), eig))
    active.copy_(active & ~converged)
