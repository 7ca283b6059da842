"""Pure-PyTorch reference of the fused PGD step (SPEC section 8, ``pgd_step_``)."""

from __future__ import annotations

import torch


def _per_sample(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[1] or [B] -> broadcastable [B or 1, 1, ..., 1] in x's dtype."""
    return p.to(dtype=x.dtype).reshape((-1,) + (1,) * (x.dim() - 1))


def _flat_sum(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).to(torch.float64).sum(dim=1)


def pgd_step_reference_(
    x: torch.Tensor,
    grad: torch.Tensor,
    x_orig: torch.Tensor,
    eps: torch.Tensor,
    alpha: torch.Tensor,
    norm: str,
    lo: float,
    hi: float,
    momentum: torch.Tensor | None = None,
    mu: float = 1.0,
) -> None:
    """In-place PGD update of ``x`` (and ``momentum``), arguments as in :func:`pyadvt.ops.pgd_step_`.

    ``eps``/``alpha`` are float tensors of shape ``[1]`` or ``[B]``. Sums are accumulated in
    float64 as the kernels do.
    """
    B = x.shape[0]
    e = _per_sample(eps, x)
    a = _per_sample(alpha, x)
    d = grad
    if momentum is not None:
        n = grad[0].numel()
        s = _flat_sum(grad.abs())
        inv = torch.where(s > 0, n / s.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(s))
        inv = inv.to(x.dtype).reshape((B,) + (1,) * (x.dim() - 1))
        momentum.copy_(momentum * mu + grad * inv)
        d = momentum
    if norm in ("linf", "inf"):
        stepped = x + a * torch.sign(d)
        delta = torch.minimum(torch.maximum(stepped - x_orig, -e), e)
        x.copy_((x_orig + delta).clamp(lo, hi))
        return
    dsq = _flat_sum(d * d)
    inv_norm = torch.where(dsq > 0, dsq.clamp_min(1e-300).rsqrt(), torch.zeros_like(dsq))
    scale = a * inv_norm.to(x.dtype).reshape((B,) + (1,) * (x.dim() - 1))
    delta = (x + scale * d) - x_orig
    nrm = _flat_sum(delta * delta).sqrt()
    e64 = eps.to(torch.float64).reshape(-1).expand(B)
    factor = torch.where(nrm > e64, e64 / nrm.clamp_min(1e-300), torch.ones_like(nrm))
    factor = factor.to(x.dtype).reshape((B,) + (1,) * (x.dim() - 1))
    x.copy_((x_orig + delta * factor).clamp(lo, hi))
