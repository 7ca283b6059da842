"""Batched top-eigenvalue solvers for per-sample symmetric operators (docs/theory.md §3 smoothness, §8).

Both solvers work on a *batched* matrix-free operator ``matvec(v, active) -> H v`` where
``v: [B, n]`` holds one vector per sample and ``active: [B] bool`` says which rows still need
their product (inactive rows may be returned as anything finite; they are ignored). One call is
one batched Hessian-vector product (one double-backward for the whole batch).

* :func:`power_top_eig` - power iteration with per-sample convergence through the fused
  ``pyadvt.ops.power_iteration_update_`` kernel; a second, shifted run recovers ``lambda_max``
  for samples whose dominant-magnitude eigenvalue is negative (indefinite Hessians).
* :func:`lanczos_top_eig` - Lanczos with full re-orthogonalisation; the top Ritz pair of each
  sample's tridiagonal matrix (``pyadvt.ops.small_sym_eig``) is declared converged when its
  residual ``||H y - theta y|| <= tol * |theta|`` (ARPACK's criterion, as in ``eigsh(tol=...)``),
  when ``theta`` changes by at most ``tol * |theta|`` between iterations, or when the Krylov
  space became invariant.

Example:
    >>> import torch
    >>> H = torch.diag_embed(torch.tensor([[3., 1., -2.], [0.5, 4., 1.]], dtype=torch.float64))
    >>> mv = lambda v, active: torch.einsum("bij,bj->bi", H, v)
    >>> r = lanczos_top_eig(mv, torch.ones(2, 3, dtype=torch.float64), tol=1e-10, max_iter=10)
    >>> [round(float(t), 6) for t in r.values]
    [3.0, 4.0]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from pyadvt import ops

Matvec = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["EigResult", "lanczos_top_eig", "power_top_eig"]


@dataclass
class EigResult:
    """Per-sample top eigenvalues of a batched operator.

    Attributes:
        values: ``[B]`` float64 ``lambda_max`` estimates (NaN where ``defined`` is False).
        iterations: ``[B]`` int64, operator products applied to each sample.
        converged: ``[B]`` bool, the convergence test passed (False at ``max_iter``).
        defined: ``[B]`` bool, False where the operator returned non-finite values.
        calls: batched ``matvec`` calls (the cost in double-backward passes).
    """

    values: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    defined: torch.Tensor
    calls: int


def _check_start(v0: torch.Tensor, tol: float, max_iter: int) -> None:
    if not isinstance(v0, torch.Tensor) or v0.dim() != 2 or not v0.is_floating_point():
        raise ValueError("'v0' must be a floating-point [B, n] tensor of start vectors")
    if not (tol > 0):
        raise ValueError(f"'tol' must be > 0, got {tol}")
    if int(max_iter) < 1:
        raise ValueError(f"'max_iter' must be >= 1, got {max_iter}")


def _power_phase(matvec: Matvec, v0: torch.Tensor, shift: torch.Tensor, rows: torch.Tensor, tol: float,
                 max_iter: int, res: EigResult, progress=None) -> torch.Tensor:
    """Power iteration on ``H - shift I`` for ``rows``; accumulates counts into ``res``.

    Returns the dominant-magnitude eigenvalue of the shifted operator ``[B]`` (NaN outside rows).
    """
    B = v0.shape[0]
    v = v0 / v0.norm(dim=1, keepdim=True).clamp_min(torch.finfo(v0.dtype).tiny)
    eig = torch.full((B,), float("nan"), dtype=v0.dtype, device=v0.device)
    active = rows.clone()
    converged = torch.zeros_like(rows)
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        hv = matvec(v, active) - shift.to(v.dtype)[:, None] * v
        res.calls += 1
        res.iterations += active.long()
        bad = active & ~torch.isfinite(hv).all(dim=1)
        zero = active & ~bad & (hv.norm(dim=1) == 0)
        if bool(bad.any()):  # undefined: masked out of everything that follows
            res.defined &= ~bad
            active &= ~bad
        if bool(zero.any()):  # H v = 0: v is an eigenvector with eigenvalue 0 (or H = 0)
            eig[zero] = 0.0
            converged |= zero
            active &= ~zero
        hv = torch.where(active[:, None], hv, torch.zeros_like(hv))
        before = active.clone()
        ops.power_iteration_update_(v, hv.contiguous(), eig, active, float(tol))
        converged |= before & ~active
        if progress is not None:
            progress.update(1)
    res.converged[rows] = converged[rows]
    return eig


def power_top_eig(matvec: Matvec, v0: torch.Tensor, tol: float = 1e-4, max_iter: int = 100,
                  progress=None) -> EigResult:
    """Per-sample ``lambda_max`` by batched power iteration (docs/theory.md §3 method (a)).

    Converged when ``|rayleigh_k - rayleigh_{k-1}| <= tol * |rayleigh_k|`` (per sample; converged
    samples are masked out of later products). Power iteration finds the eigenvalue of largest
    *magnitude*; where that is negative, a second run on ``H - mu I`` (``mu`` that negative value,
    making the operator positive semi-definite) yields ``lambda_max = mu + its top eigenvalue``.

    Args:
        matvec: batched operator ``(v [B, n], active [B] bool) -> H v [B, n]``.
        v0: ``[B, n]`` start vectors (need not be normalised).
        tol: relative tolerance on the Rayleigh quotient change.
        max_iter: maximum products per sample per run.
        progress: optional tqdm bar, advanced once per batched product.

    Returns:
        :class:`EigResult` with float64 values.
    """
    _check_start(v0, tol, max_iter)
    B = v0.shape[0]
    dev = v0.device
    res = EigResult(values=torch.full((B,), float("nan"), dtype=torch.float64, device=dev),
                    iterations=torch.zeros(B, dtype=torch.long, device=dev),
                    converged=torch.zeros(B, dtype=torch.bool, device=dev),
                    defined=torch.ones(B, dtype=torch.bool, device=dev), calls=0)
    everyone = torch.ones(B, dtype=torch.bool, device=dev)
    no_shift = torch.zeros(B, dtype=v0.dtype, device=dev)
    eig = _power_phase(matvec, v0, no_shift, everyone, tol, max_iter, res, progress)
    res.values = torch.where(res.defined, eig.double(), res.values)
    negative = res.defined & (eig < 0)
    if bool(negative.any()):
        shift = torch.where(negative, eig, torch.zeros_like(eig))
        converged_first = res.converged.clone()
        eig2 = _power_phase(matvec, v0, shift, negative, tol, max_iter, res, progress)
        fixed = negative & res.defined
        res.values = torch.where(fixed, (eig2 + shift).double(), res.values)
        res.converged = torch.where(negative, res.converged & converged_first, res.converged)
    res.values = torch.where(res.defined, res.values, torch.full_like(res.values, float("nan")))
    return res


def lanczos_top_eig(matvec: Matvec, v0: torch.Tensor, tol: float = 1e-4, max_iter: int = 100,
                    progress=None) -> EigResult:
    """Per-sample ``lambda_max`` by batched Lanczos with full re-orthogonalisation (docs/theory.md §3 (b)).

    All samples advance in lock-step; after step ``j`` each active sample's tridiagonal matrix
    ``T_j`` (float64) gives the top Ritz pair ``(theta_j, s)``; the sample stops when the residual
    ``beta_j |s_j| = ||H y - theta_j y|| <= tol * |theta_j|`` (the stopping rule of ARPACK/``eigsh``),
    when ``|theta_j - theta_{j-1}| <= tol * |theta_j|``, or when the new Lanczos vector vanished
    (invariant Krylov space: ``theta_j`` is then an exact eigenvalue). At most ``min(max_iter, n)``
    products per sample. Unlike power iteration, the top Ritz value approaches ``lambda_max``
    (the algebraically largest eigenvalue) directly, also for indefinite ``H``.

    Args / Returns: as :func:`power_top_eig`.
    """
    _check_start(v0, tol, max_iter)
    B, n = v0.shape
    dev, dt = v0.device, v0.dtype
    m = min(int(max_iter), n)
    Q = torch.zeros(B, m + 1, n, dtype=dt, device=dev)
    Q[:, 0] = v0 / v0.norm(dim=1, keepdim=True).clamp_min(torch.finfo(dt).tiny)
    alpha = torch.zeros(B, m, dtype=torch.float64, device=dev)
    beta = torch.zeros(B, m, dtype=torch.float64, device=dev)
    theta = torch.full((B,), float("nan"), dtype=torch.float64, device=dev)
    res = EigResult(values=theta.clone(), iterations=torch.zeros(B, dtype=torch.long, device=dev),
                    converged=torch.zeros(B, dtype=torch.bool, device=dev),
                    defined=torch.ones(B, dtype=torch.bool, device=dev), calls=0)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    tiny = torch.finfo(dt).tiny
    for j in range(m):
        if not bool(active.any()):
            break
        w = matvec(Q[:, j], active)
        res.calls += 1
        res.iterations += active.long()
        bad = active & ~torch.isfinite(w).all(dim=1)
        if bool(bad.any()):
            res.defined &= ~bad
            active &= ~bad
        w = torch.where(active[:, None], w, torch.zeros_like(w))
        a = (w * Q[:, j]).sum(dim=1)
        w = w - a[:, None] * Q[:, j]
        if j > 0:
            w = w - beta[:, j - 1].to(dt)[:, None] * Q[:, j - 1]
        basis = Q[:, : j + 1]
        for _ in range(2):  # full re-orthogonalisation, twice ("twice is enough")
            w = w - torch.einsum("bk,bkn->bn", torch.einsum("bkn,bn->bk", basis, w), basis)
        b = w.norm(dim=1)
        alpha[:, j] = torch.where(active, a.double(), alpha[:, j])
        beta[:, j] = torch.where(active, b.double(), beta[:, j])
        T = torch.diag_embed(alpha[:, : j + 1])
        if j > 0:
            off = beta[:, :j]
            T = T + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
        evals, evecs = ops.small_sym_eig(T.contiguous(), check=False) if j < 64 else torch.linalg.eigh(T)
        new_theta = evals[:, -1]
        scale = new_theta.abs()
        residual = b.double() * evecs[:, -1, -1].abs()  # ||H y - theta y|| for the top Ritz vector y
        done = ((new_theta - theta).abs() <= tol * scale) | (residual <= tol * scale)
        invariant = b.double() <= 64 * torch.finfo(dt).eps * torch.maximum(scale, alpha[:, : j + 1].abs().amax(1))
        stop = active & (done | invariant | (b <= tiny))
        theta = torch.where(active, new_theta, theta)
        res.converged |= stop
        active &= ~stop
        Q[:, j + 1] = torch.where(active[:, None], w / b.clamp_min(tiny)[:, None], Q[:, j + 1])
        if progress is not None:
            progress.update(1)
    res.values = torch.where(res.defined, theta, torch.full_like(theta, float("nan")))
    return res
