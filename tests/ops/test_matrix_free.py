"""Matrix-free top singular triplets (docs/theory.md §9): the ``lanczos_step_`` kernel against its
reference and a re-implementation, opcheck, bad input; ``jacobian_top_singular`` against
``torch.linalg.svd`` of Jacobians materialised independently with ``torch.func.jacrev`` (incl.
m = 1000 outputs), against the dense ``jacobian_spectrum`` route, degenerate / rank-deficient /
zero / non-finite Jacobians (flagged, never NaN), the iteration cap, batch independence; the memory
budget and its refusal before any backward pass."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from pyadvt import _ext
from pyadvt.ops import jacobian, jacobian_spectrum
from pyadvt.ops.budget import MemoryBudgetError, graph_bytes_per_sample, parse_bytes, plan_route
from pyadvt.ops.matrix_free import (FLAG_NOT_CONVERGED, JacobianProducts, jacobian_top_singular, lanczos_step_,
                                    lanczos_top_pairs)
from pyadvt.ops.reference.linalg import FLAG_DEGENERATE_TOP, FLAG_NONFINITE, FLAG_RANK_LT2, FLAG_ZERO

from tests.conftest import device_params

needs_kernel = pytest.mark.skipif(not _ext.kernel_available("lanczos_step_", "cpu"),
                                  reason="pyadvt._C not built with lanczos_step_")
BACKENDS = ["reference", pytest.param("kernel", marks=needs_kernel)]
F64 = torch.float64


def jac_ref(model, x):
    """Independent oracle: ``[B, m, n]`` by torch.func.jacrev one sample at a time."""
    model.eval()
    f = lambda z: model(z.reshape(1, *x.shape[1:])).reshape(-1)  # noqa: E731
    return torch.stack([torch.func.jacrev(f)(xi.reshape(-1)) for xi in x])


def svd_ref(J):
    U, S, Vh = torch.linalg.svd(J.detach().double(), full_matrices=False)
    return S, Vh[:, 0]


def mlp(n_in, m, hidden=32, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, m)).double()


def small_convnet(m=1000, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, m)).double()


# ---- the kernel -------------------------------------------------------------------------------


def _state(B, K, d, seed=0, dtype=F64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(B, d, d, generator=g, dtype=F64)
    G = A @ A.mT / d  # PSD operators
    Q = torch.zeros(B, K + 1, d, dtype=dtype)
    q0 = torch.randn(B, d, generator=g, dtype=F64)
    Q[:, 0] = (q0 / q0.norm(dim=1, keepdim=True)).to(dtype)
    z = lambda: torch.zeros(B, K, dtype=F64)  # noqa: E731
    st = dict(Q=Q, alpha=z(), beta=z(), ritz=torch.zeros(B, 4, dtype=F64), y=z(),
              status=torch.zeros(B, dtype=torch.int32), active=torch.ones(B, dtype=torch.bool))
    return G, {k: v.to(device) for k, v in st.items()}


def _advance(G, st, steps, backend, tol=1e-10):
    for j in range(steps):
        w = (G.to(st["Q"]) @ st["Q"][:, j, :, None])[..., 0].contiguous()
        lanczos_step_(st["Q"], w, st["alpha"], st["beta"], st["ritz"], st["y"], st["status"], st["active"], j, npairs=2,
                      tol=tol, invariant_rtol=1e-14, backend=backend)
    return st


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_lanczos_step_kernel_matches_reference(dtype):
    G, a = _state(5, 12, 30, dtype=dtype)
    _, b = _state(5, 12, 30, dtype=dtype)
    a["active"][3] = False  # an inactive row is never touched
    b["active"][3] = False
    _advance(G, a, 8, "kernel")
    _advance(G, b, 8, "reference")
    tol = 1e-10 if dtype == F64 else 2e-4
    for key in ("alpha", "beta", "ritz"):
        torch.testing.assert_close(a[key], b[key], rtol=tol, atol=tol)
    torch.testing.assert_close(a["Q"].double(), b["Q"].double(), rtol=tol, atol=tol)
    torch.testing.assert_close(a["y"].abs(), b["y"].abs(), rtol=tol, atol=tol)  # eigenvector sign is free
    assert torch.equal(a["active"], b["active"]) and torch.equal(a["status"], b["status"])
    assert float(a["Q"][3, 1:].abs().max()) == 0.0 and float(a["alpha"][3].abs().max()) == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_lanczos_step_is_lanczos(backend):
    """Independent re-implementation: Q^T G Q is the tridiagonal (alpha, beta), Q orthonormal, and the
    Ritz values are eigenvalues of Q^T G Q."""
    G, st = _state(3, 10, 25, seed=1)
    _advance(G, st, 10, backend, tol=1e-30)
    Q = st["Q"][:, :10]
    torch.testing.assert_close(Q @ Q.mT, torch.eye(10, dtype=F64).expand(3, 10, 10), atol=1e-12, rtol=0)
    T = Q @ G @ Q.mT
    Tref = torch.diag_embed(st["alpha"]) + torch.diag_embed(st["beta"][:, :9], 1) + torch.diag_embed(st["beta"][:, :9], -1)
    torch.testing.assert_close(T, Tref, atol=1e-10, rtol=0)
    ev = torch.linalg.eigvalsh(Tref)
    torch.testing.assert_close(st["ritz"][:, 0], ev[:, -1], atol=1e-10, rtol=0)
    torch.testing.assert_close(st["ritz"][:, 1], ev[:, -2], atol=1e-10, rtol=0)
    # the residual estimate is the true residual of the top Ritz vector
    yv = torch.einsum("bk,bkd->bd", st["y"], Q)
    true = ((G @ yv[..., None])[..., 0] - st["ritz"][:, :1] * yv).norm(dim=1)
    torch.testing.assert_close(st["ritz"][:, 2], true, atol=1e-9, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lanczos_step_stops_on_invariant_space(backend):
    G = torch.diag(torch.tensor([5.0, 2.0, 0.0, 0.0], dtype=F64)).expand(2, 4, 4)
    _, st = _state(2, 4, 4)
    st["Q"][:, 0] = torch.tensor([0.6, 0.8, 0.0, 0.0], dtype=F64)  # spans an invariant 2-space
    _advance(G, st, 2, backend)
    assert not bool(st["active"].any()) and bool(((st["status"] & 2) != 0).all())
    torch.testing.assert_close(st["ritz"][:, :2], torch.tensor([[5.0, 2.0]] * 2, dtype=F64))


@needs_kernel
def test_lanczos_step_opcheck():
    G, st = _state(3, 6, 9)
    w = (G @ st["Q"][:, 0, :, None])[..., 0].contiguous()
    args = (st["Q"], w, st["alpha"], st["beta"], st["ritz"], st["y"], st["status"], st["active"], 0, 2, 1e-6, 1e-14)
    torch.library.opcheck(torch.ops.pyadvt.lanczos_step_.default, args)


@pytest.mark.needs_cuda
def test_lanczos_step_cuda_matches_cpu():
    G, a = _state(4, 10, 40)
    _, b = _state(4, 10, 40, device="cuda")
    _advance(G, a, 7, "kernel")
    _advance(G.cuda(), b, 7, "kernel")
    for key in ("alpha", "beta", "ritz"):
        torch.testing.assert_close(a[key], b[key].cpu(), rtol=1e-10, atol=1e-10)
    assert torch.equal(a["active"], b["active"].cpu())


def test_lanczos_step_bad_input():
    G, st = _state(2, 4, 5)
    w = torch.zeros(2, 5, dtype=F64)
    with pytest.raises(ValueError, match="'w'"):
        lanczos_step_(st["Q"], w[:, :4].contiguous(), st["alpha"], st["beta"], st["ritz"], st["y"], st["status"],
                      st["active"], 0)
    with pytest.raises(ValueError, match="'alpha'"):
        lanczos_step_(st["Q"], w, st["alpha"].float(), st["beta"], st["ritz"], st["y"], st["status"], st["active"], 0)
    with pytest.raises(ValueError, match="'j'"):
        lanczos_step_(st["Q"], w, st["alpha"], st["beta"], st["ritz"], st["y"], st["status"], st["active"], 4)
    with pytest.raises(ValueError, match="contiguous"):
        lanczos_step_(st["Q"].transpose(1, 2).contiguous().transpose(1, 2), w, st["alpha"], st["beta"], st["ritz"],
                      st["y"], st["status"], st["active"], 0)


def test_lanczos_top_pairs_matches_eigh():
    g = torch.Generator().manual_seed(3)
    A = torch.randn(4, 60, 60, generator=g, dtype=F64)
    G = A @ A.mT
    r = lanczos_top_pairs(lambda v, a: (G @ v[..., None])[..., 0], torch.randn(4, 60, generator=g, dtype=F64),
                          tol=1e-10)
    ev = torch.linalg.eigvalsh(G)
    torch.testing.assert_close(r.theta, ev[:, [-1, -2]], rtol=1e-9, atol=0)
    top = torch.linalg.eigh(G)[1][:, :, -1]
    assert bool(((r.vector * top).sum(1).abs() >= 1 - 1e-9).all()) and bool(r.converged.all())


# ---- jacobian_top_singular against torch.linalg.svd ---------------------------------------------


@pytest.mark.parametrize("side", ["auto", "left", "right"])
def test_matrix_free_matches_svd_m1000_mlp(side):
    net = mlp(48, 1000)
    x = torch.rand(4, 3, 4, 4, dtype=F64)
    s = jacobian_top_singular(net, x, side=side)
    S, v1 = svd_ref(jac_ref(net, x))
    torch.testing.assert_close(s.sigma1, S[:, 0], rtol=1e-4, atol=0)
    torch.testing.assert_close(s.sigma2, S[:, 1], rtol=1e-4, atol=0)
    assert bool(((s.v1 * v1).sum(1).abs() >= 1 - 1e-4).all())
    assert bool(s.converged.all()) and int(s.flags.max()) == 0


def test_matrix_free_matches_svd_m1000_convnet_float32():
    """A real conv/BN/pool network with 1000 outputs at 3x8x8, float32 products."""
    net = small_convnet().float()
    x = torch.rand(3, 3, 8, 8)
    s = jacobian_top_singular(net, x)
    S, v1 = svd_ref(jac_ref(net, x))
    gap = (S[:, 0] ** 2 - S[:, 1] ** 2) / S[:, 0] ** 2
    assert bool((gap > 1e-3).all())  # well separated: v1 is determined
    torch.testing.assert_close(s.sigma1.double(), S[:, 0], rtol=1e-4, atol=0)
    torch.testing.assert_close(s.sigma2.double(), S[:, 1], rtol=1e-4, atol=0)
    assert bool(((s.v1.double() * v1).sum(1).abs() >= 1 - 1e-4).all())


@pytest.mark.slow
def test_matrix_free_resnet18_1000_classes_small_input():
    net = torchvision.models.resnet18(num_classes=1000).double().eval()
    x = torch.rand(1, 3, 8, 8, dtype=F64)
    s = jacobian_top_singular(net, x)
    S, v1 = svd_ref(jac_ref(net, x))
    torch.testing.assert_close(s.sigma1, S[:, 0], rtol=1e-4, atol=0)
    torch.testing.assert_close(s.sigma2, S[:, 1], rtol=1e-4, atol=0)
    assert float((s.v1 * v1).sum(1).abs().min()) >= 1 - 1e-4


def test_matrix_free_matches_dense_route():
    net = mlp(48, 40, seed=2)
    x = torch.rand(6, 3, 4, 4, dtype=F64)
    s = jacobian_top_singular(net, x)
    d = jacobian_spectrum(jacobian(net, x))
    torch.testing.assert_close(s.sigma1, d.sigma1, rtol=1e-6, atol=0)
    torch.testing.assert_close(s.sigma2, d.sigma2, rtol=1e-6, atol=0)
    torch.testing.assert_close(s.v1, d.v1, rtol=0, atol=1e-5)  # same sign convention
    assert torch.equal(s.flags, d.flags)


def test_fwd_jvp_method_agrees():
    net = mlp(48, 300, seed=4)
    x = torch.rand(3, 3, 4, 4, dtype=F64)
    a = jacobian_top_singular(net, x, side="left", jvp_method="fwd")
    b = jacobian_top_singular(net, x, side="left")
    torch.testing.assert_close(a.sigma1, b.sigma1, rtol=1e-8, atol=0)
    torch.testing.assert_close(a.v1, b.v1, rtol=0, atol=1e-6)


def test_jacobian_products_are_the_jacobian():
    net = small_convnet(m=50).eval()
    x = torch.rand(3, 3, 8, 8, dtype=F64)
    J = jac_ref(net, x)
    P = JacobianProducts(net, x)
    u, v = torch.randn(3, 50, dtype=F64), torch.randn(3, 192, dtype=F64)
    torch.testing.assert_close(P.vjp(u), torch.einsum("bmn,bm->bn", J, u))
    torch.testing.assert_close(P.jvp(v), torch.einsum("bmn,bn->bm", J, v))
    active = torch.tensor([False, True, False])  # rebuilt on one sample: same rows
    torch.testing.assert_close(P.jvp(v, active)[1], torch.einsum("mn,n->m", J[1], v[1]))


# ---- flags: degenerate, rank-deficient, zero, non-finite, not converged ---------------------------


def _linear(W):
    net = nn.Linear(W.shape[1], W.shape[0], bias=False).double()
    with torch.no_grad():
        net.weight.copy_(W)
    return net


def test_degenerate_top_pair_flagged_not_nan():
    g = torch.Generator().manual_seed(0)
    Uo = torch.linalg.qr(torch.randn(200, 3, generator=g, dtype=F64))[0]
    Vo = torch.linalg.qr(torch.randn(20, 3, generator=g, dtype=F64))[0]
    W = Uo @ torch.diag(torch.tensor([2.0, 2.0, 1.0], dtype=F64)) @ Vo.T
    s = jacobian_top_singular(_linear(W), torch.rand(3, 20, dtype=F64))
    assert bool(((s.flags & FLAG_DEGENERATE_TOP) != 0).all()) and bool(torch.isfinite(s.v1).all())
    torch.testing.assert_close(s.sigma1, torch.full((3,), 2.0, dtype=F64))
    # v1 lies in the top singular subspace
    proj = (s.v1 @ Vo[:, :2]).norm(dim=1)
    torch.testing.assert_close(proj, torch.ones(3, dtype=F64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_rank_one_flagged(dtype):
    g = torch.Generator().manual_seed(1)
    W = torch.randn(300, 1, generator=g, dtype=F64) @ torch.randn(1, 30, generator=g, dtype=F64)
    net = _linear(W).to(dtype)
    s = jacobian_top_singular(net, torch.rand(2, 30, dtype=dtype))
    assert bool(((s.flags & FLAG_RANK_LT2) != 0).all()) and float(s.sigma2.abs().max()) == 0.0
    torch.testing.assert_close(s.sigma1.double(), torch.linalg.matrix_norm(W, 2).expand(2), rtol=1e-5, atol=0)
    assert bool(torch.isfinite(s.lam).all()) and bool(s.converged.all())


def test_zero_and_nonfinite_jacobians():
    net = _linear(torch.zeros(100, 10, dtype=F64))
    s = jacobian_top_singular(net, torch.rand(2, 10, dtype=F64))
    assert s.flags.tolist() == [FLAG_ZERO | FLAG_RANK_LT2] * 2
    assert float(s.v1.abs().max()) == 0.0 and float(s.sigma1.abs().max()) == 0.0
    W = torch.randn(100, 10, dtype=F64)
    W[3, 4] = float("nan")
    s = jacobian_top_singular(_linear(W), torch.rand(2, 10, dtype=F64))
    assert s.flags.tolist() == [FLAG_NONFINITE] * 2


def test_iteration_cap_is_flagged():
    net = mlp(48, 500, seed=5)
    s = jacobian_top_singular(net, torch.rand(2, 3, 4, 4, dtype=F64), max_iter=3)
    assert bool(((s.flags & FLAG_NOT_CONVERGED) != 0).all()) and not bool(s.converged.any())
    assert bool(torch.isfinite(s.sigma1).all())


def test_batch_independence():
    net = small_convnet(m=300, seed=6).eval()
    x = torch.rand(5, 3, 8, 8, dtype=F64)
    full = jacobian_top_singular(net, x)
    for i in (0, 3):
        one = jacobian_top_singular(net, x[i:i + 1])
        torch.testing.assert_close(full.sigma1[i:i + 1], one.sigma1, rtol=1e-10, atol=0)
        torch.testing.assert_close(full.v1[i:i + 1], one.v1, rtol=0, atol=1e-8)


def test_model_mode_and_input_untouched():
    net = small_convnet(m=100).train()
    x = torch.rand(2, 3, 8, 8, dtype=F64)
    xc, state = x.clone(), {k: v.clone() for k, v in net.state_dict().items()}
    jacobian_top_singular(net, x)
    assert net.training and torch.equal(x, xc)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


# ---- memory budget and refusal --------------------------------------------------------------------


class _CountBackward(torch.autograd.Function):
    calls = 0
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def jvp(ctx, t):
        return t

    @staticmethod
    def backward(ctx, g):
        _CountBackward.calls += 1
        return g


class Counted(nn.Module):
    """Counts the backward passes that reach the input."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(_CountBackward.apply(x))


def test_graph_bytes_measured():
    net = nn.Sequential(nn.Flatten(), nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 7))
    m, gps, dt = graph_bytes_per_sample(net, torch.rand(1, 100))
    # parameters need no gradient inside: only ReLU's output (50 floats) is saved for the input gradient
    assert m == 7 and dt == torch.float32 and 4 * 50 <= gps <= 4 * 100


@pytest.mark.parametrize("method", ["batched_grad", "rev", "fwd"])
def test_jacobian_refuses_before_any_backward(method):
    net = Counted(nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 500)))
    _CountBackward.calls = 0
    x = torch.rand(4, 3, 16, 16)
    with pytest.raises(MemoryBudgetError, match=r"batch_size=\d.*max_memory=") as e:
        jacobian(net, x, method=method, max_memory="2MiB")
    assert "Jacobian [4, 500, 768]" in str(e.value)
    assert _CountBackward.calls == 0
    J = jacobian(net, x[:1], method=method, max_memory="64MiB")  # fits: runs
    assert J.shape == (1, 500, 768)


def test_rev_chunks_shrink_to_the_budget():
    net = small_convnet(m=64).float().eval()
    x = torch.rand(3, 3, 8, 8)
    a = jacobian(net, x, method="rev", max_memory="20MiB")
    b = jacobian(net, x, method="batched_grad")
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_plan_route_picks_and_refuses():
    small = mlp(48, 10).float()
    wide = mlp(48, 1000).float()
    x = torch.rand(8, 3, 4, 4)
    assert plan_route(small, x).route == "dense"
    assert plan_route(wide, x).route == "matrix_free"
    assert plan_route(small, x, route="matrix_free").route == "matrix_free"
    with pytest.raises(MemoryBudgetError, match=r"pass batch_size=\d+ \(or smaller\), or pass max_memory="):
        plan_route(wide, x, max_memory=100_000)
    with pytest.raises(ValueError, match="'route'"):
        plan_route(wide, x, route="svd")


def test_parse_bytes():
    assert parse_bytes("3GiB") == 3 * 2**30 and parse_bytes("500 MB") == 500 * 10**6 and parse_bytes(1024) == 1024
    for bad in ("-1GB", "lots", 0, float("nan"), True):
        with pytest.raises((ValueError, TypeError), match="max_memory"):
            parse_bytes(bad)


@pytest.mark.parametrize("device", device_params())
def test_matrix_free_on_device(device):
    net = mlp(48, 200).to(device)
    x = torch.rand(2, 3, 4, 4, dtype=F64, device=device)
    s = jacobian_top_singular(net, x)
    S, _ = svd_ref(jac_ref(net.cpu(), x.cpu()))
    torch.testing.assert_close(s.sigma1.cpu(), S[:, 0], rtol=1e-6, atol=0)
