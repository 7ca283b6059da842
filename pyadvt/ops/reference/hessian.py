"""Pure-PyTorch reference of ``power_iteration_update_`` (SPEC section 8 and §3(a))."""

from __future__ import annotations

import torch


def power_iteration_update_reference_(
    v: torch.Tensor, hv: torch.Tensor, eig: torch.Tensor, active: torch.Tensor, tol: float
) -> None:
    """One bookkeeping pass of batched power iteration, in place; see
    :func:`pyadvt.ops.power_iteration_update_` for the contract.

    ``v, hv``: ``[B, n]``; ``eig``: ``[B]`` (NaN = no previous value); ``active``: ``[B]`` bool.
    Sums are accumulated in float64 as the kernels do.
    """
    vd = v.to(torch.float64)
    hd = hv.to(torch.float64)
    rayleigh = (vd * hd).sum(dim=1)
    nrm = hd.square().sum(dim=1).sqrt()
    prev = eig.to(torch.float64)
    inv = torch.where(nrm > 0, 1.0 / torch.where(nrm > 0, nrm, 1.0), torch.zeros_like(nrm))
    # Same rule as the kernels: v is kept unless 1/||hv|| is positive (zero or non-finite hv).
    new_v = torch.where((inv > 0)[:, None], hd * inv[:, None], vd)
    converged = (rayleigh - prev).abs() <= tol * rayleigh.abs()
    v.copy_(torch.where(active[:, None], new_v.to(v.dtype), v))
    eig.copy_(torch.where(active, rayleigh.to(eig.dtype), eig))
    active.copy_(active & ~converged)
