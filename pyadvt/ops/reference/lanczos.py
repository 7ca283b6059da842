"""Pure-PyTorch reference of ``lanczos_step_`` (docs/theory.md §8, §9): the test oracle and the
fall-back of :func:`pyadvt.ops.matrix_free.lanczos_step_` when the extension is missing. It follows
``csrc/lanczos/lanczos_step.h`` step by step (float64 sums, classical Gram-Schmidt twice, the same
stopping rules), with ``torch.linalg.eigh`` for the tridiagonal Ritz problem.
"""

from __future__ import annotations

import torch

#: ``status`` bits of ``lanczos_step_`` (shared with csrc/lanczos/lanczos_step.h).
STATUS_CONVERGED = 1
STATUS_INVARIANT = 2
STATUS_QL_FAILED = 4


def lanczos_step_reference_(Q: torch.Tensor, w: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor,
                            ritz: torch.Tensor, y: torch.Tensor, status: torch.Tensor, active: torch.Tensor,
                            j: int, npairs: int, tol: float, invariant_rtol: float) -> None:
    """In-place reference of one batched Lanczos step; see :func:`pyadvt.ops.matrix_free.lanczos_step_`."""
    idx = active.nonzero().squeeze(1)
    if idx.numel() == 0:
        return
    K = alpha.shape[1]
    Qa = Q[idx].double()  # [b, K + 1, dim]
    wa = w[idx].double()
    qj = Qa[:, j]
    a = (wa * qj).sum(1)
    r = wa - a[:, None] * qj
    if j > 0:
        r = r - beta[idx, j - 1][:, None] * Qa[:, j - 1]
    basis = Qa[:, : j + 1]
    for _ in range(2):
        r = r - torch.einsum("bk,bkn->bn", torch.einsum("bkn,bn->bk", basis, r), basis)
    b = r.norm(dim=1)
    al = alpha[idx].clone()
    be = beta[idx].clone()
    al[:, j] = a
    be[:, j] = b
    k = j + 1
    T = torch.diag_embed(al[:, :k])
    if k > 1:
        T = T + torch.diag_embed(be[:, : k - 1], 1) + torch.diag_embed(be[:, : k - 1], -1)
    finite = torch.isfinite(T).all(dim=(1, 2))
    evals, evecs = torch.linalg.eigh(torch.where(finite[:, None, None], T, torch.zeros_like(T)))
    th1 = evals[:, -1]
    th2 = evals[:, -2] if k > 1 else torch.zeros_like(th1)
    r1 = b * evecs[:, -1, -1].abs()
    r2 = b * evecs[:, -1, -2].abs() if k > 1 else b.clone()
    yy = torch.zeros(idx.numel(), K, dtype=torch.float64, device=Q.device)
    yy[:, :k] = evecs[:, :, -1]
    scale = th1.abs()
    amax = al[:, :k].abs().amax(1)
    invariant = ~(b > invariant_rtol * torch.maximum(scale, amax))
    conv = r1 <= tol * scale
    if npairs == 2:
        conv = conv & (k > 1) & (r2 <= tol * scale)
    st = (invariant.int() * STATUS_INVARIANT + conv.int() * STATUS_CONVERGED
          + (~finite).int() * STATUS_QL_FAILED)
    cont = st == 0
    r = torch.where(cont[:, None], r / torch.where(cont, b, torch.ones_like(b))[:, None], r)
    Q[idx, j + 1] = r.to(Q.dtype)
    alpha[idx] = al
    beta[idx] = be
    ritz[idx] = torch.stack([th1, th2, r1, r2], 1)
    y[idx] = yy
    status[idx] = st.to(status.dtype)
    active[idx] = cont
