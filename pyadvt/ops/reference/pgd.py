"""Pure-PyTorch reference of the fused PGD step (docs/theory.md §8, ``pgd_step_``).

It follows the kernels' arithmetic (csrc/include/pyadvt/pgd_step.h) step by step: element
formulas in the compute type (float32 for float16/bfloat16/float32, float64 for float64), per-sample
sums of |g|, d^2 and delta^2 accumulated in float64 from values converted to float64 *before*
squaring, per-sample factors computed in float64 and rounded once to the compute type, and one
rounding to the storage dtype at the end.
"""

from __future__ import annotations

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Type the element formulas run in: float64 for float64, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _per_sample(p: torch.Tensor, ndim: int, dtype: torch.dtype) -> torch.Tensor:
    """[1] or [B] -> broadcastable [B or 1, 1, ..., 1] in ``dtype``."""
    return p.to(dtype=dtype).reshape((-1,) + (1,) * (ndim - 1))


def _flat_sum_f64(t: torch.Tensor, square: bool = False) -> torch.Tensor:
    """Per-sample sum (or sum of squares) accumulated in float64; values are converted to float64
    first, so squares of float32 values below ~1e-23 or above ~1e19 neither underflow nor overflow."""
    d = t.reshape(t.shape[0], -1).to(torch.float64)
    return (d * d).sum(dim=1) if square else d.sum(dim=1)


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

    ``eps``/``alpha`` are float tensors of shape ``[1]`` or ``[B]``. Any floating storage dtype;
    float16/bfloat16 are computed in float32 and rounded once, as the kernels do.
    """
    B, nd = x.shape[0], x.dim()
    acc = compute_dtype(x.dtype)
    shape = (B,) + (1,) * (nd - 1)
    e = _per_sample(eps, nd, acc)
    a = _per_sample(alpha, nd, acc)
    xa, ga, x0a = x.to(acc), grad.to(acc), x_orig.to(acc)
    d = ga
    if momentum is not None:
        n = grad[0].numel()
        s = _flat_sum_f64(grad.abs())
        # safe_inverse_mean: n / sum|g| in float64, rounded to the compute type (0 for a zero gradient)
        inv = torch.where(s > 0, n / s.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(s))
        m_new = momentum.to(acc) * mu + ga * inv.to(acc).reshape(shape)
        momentum.copy_(m_new.to(momentum.dtype))
        d = momentum.to(acc)  # the stored (rounded) buffer is the direction, as in the kernels
    if norm in ("linf", "inf"):
        sign = (d > 0).to(acc) - (d < 0).to(acc)  # the kernels' sign: 0 for 0 and NaN
        stepped = xa + a * sign
        delta = torch.minimum(torch.maximum(stepped - x0a, -e), e)
        x.copy_((x0a + delta).clamp(lo, hi))
        return
    dsq = _flat_sum_f64(momentum if momentum is not None else grad, square=True)
    inv_norm = torch.where(dsq > 0, 1.0 / dsq.clamp_min(torch.finfo(torch.float64).tiny).sqrt(), torch.zeros_like(dsq))
    scale = a * inv_norm.to(acc).reshape(shape)
    delta = (xa + scale * d) - x0a
    nrm = _flat_sum_f64(delta, square=True).sqrt()
    e64 = eps.to(acc).to(torch.float64).reshape(-1).expand(B)
    factor = torch.where(nrm > e64, e64 / nrm.clamp_min(torch.finfo(torch.float64).tiny), torch.ones_like(nrm))
    factor = factor.to(acc).reshape(shape)
    out = x0a + delta * factor
    x.copy_(out.clamp(lo, hi))
