"""The matrix-free spectrum against an independent matrix-free reference: scipy's ARPACK ``svds`` on a
``LinearOperator`` whose products are torch.func's forward-mode JVP and reverse-mode VJP of one sample
(docs/theory.md §9). No Jacobian is materialised on either side."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import LinearOperator, svds
from torch import nn

from pyadvt.ops.matrix_free import jacobian_top_singular


def _scipy_top2(model, x1):
    """Top two singular values and right singular vector of J_f(x1) by ARPACK on J as an operator."""
    x1 = x1.double()
    model = copy.deepcopy(model).double()
    n = x1.numel()
    f = lambda z: model(z.reshape(1, *x1.shape[1:])).reshape(-1)  # noqa: E731
    m = f(x1.reshape(-1)).numel()

    def matvec(v):                      # J v, forward mode
        v = torch.as_tensor(np.asarray(v).reshape(-1), dtype=torch.float64)
        return torch.func.jvp(f, (x1.reshape(-1),), (v,))[1].detach().numpy()

    def rmatvec(u):                     # J^T u, reverse mode
        u = torch.as_tensor(np.asarray(u).reshape(-1), dtype=torch.float64)
        _, pull = torch.func.vjp(f, x1.reshape(-1))
        return pull(u)[0].detach().numpy()

    op = LinearOperator((m, n), matvec=matvec, rmatvec=rmatvec, dtype=np.float64)
    _, s, vt = svds(op, k=2, tol=1e-12, random_state=0)
    order = np.argsort(s)[::-1]
    return s[order], vt[order[0]]


@pytest.mark.parametrize("width", [1000, 7])
def test_matches_arpack_svds_on_a_linear_operator(width):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 32),
                        nn.GELU(), nn.Linear(32, width)).eval()
    x = torch.rand(3, 3, 6, 6)
    if width == 7:                                      # float64 end to end: a tight comparison
        got = jacobian_top_singular(copy.deepcopy(net).double(), x.double(), tol=1e-10)
    else:
        got = jacobian_top_singular(net, x, tol=1e-8)
    for b in range(x.shape[0]):
        s_ref, v_ref = _scipy_top2(net, x[b:b + 1])
        rel = 1e-6 if width == 7 else 1e-4
        assert float(got.sigma1[b]) == pytest.approx(s_ref[0], rel=rel)
        assert float(got.sigma2[b]) == pytest.approx(s_ref[1], rel=rel)
        cos = abs(float(np.dot(got.v1[b].double().numpy().reshape(-1), v_ref)))
        assert cos >= 1 - 1e-4
