"""Seed-000 metrics and exact smoothness at any output width (docs/theory.md §2, §3, §9): tau1, tau2,
singular_value_ratio, the virtual attack, the seed-000 bounds and smoothness(method="exact") on the
matrix-free route against independent references (Jacobians from torch.func.jacrev + torch.linalg.svd,
tau2 re-implemented in numpy, Hessians from torch.func.hessian); the route choice; refusals before
any backward pass; D2 (a NaN pixel is undefined for tau1); half-precision models in float32; the
seed-000 theorem properties through the matrix-free route."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pyadvt.attacks.virtual import VirtualAdversarialAttack, virtual_direction
from pyadvt.bounds.seed000 import pair_jacobians, proposition2, theorem2
from pyadvt.metrics import adversarial_transferability, singular_value_ratio, smoothness, tau1, tau2
from pyadvt.ops.budget import MemoryBudgetError
from pyadvt.ops.reference.linalg import normalize_signs

F64 = torch.float64


def mlp(n_in, m, hidden=24, seed=0, act=nn.ReLU):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), act(), nn.Linear(hidden, m)).double()


def convnet(m, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(6 * 4 * 4, m)).double().eval()


def jac_ref(model, x):
    model.eval()
    f = lambda z: model(z.reshape(1, *x.shape[1:])).reshape(-1)  # noqa: E731
    return torch.stack([torch.func.jacrev(f)(xi.reshape(-1)) for xi in x]).detach().double()


def top_right(J):
    _, S, Vh = torch.linalg.svd(J, full_matrices=False)
    return S, Vh[:, 0]


def tau2_numpy(U, V):
    """Definition 3, re-implemented: B* = E[V U^T] E[U U^T]^+, r, projection, tau2."""
    U, V = U.numpy(), V.numpy()
    EVU, EUU = V.T @ U / len(U), U.T @ U / len(U)
    B = EVU @ np.linalg.pinv(EUU, hermitian=True)
    r = np.sqrt((V ** 2).sum(1).mean() / (U ** 2).sum(1).mean())
    nb = np.linalg.norm(B, 2)
    A = B if nb <= r else B * r / nb
    AU = U @ A.T
    return float(((2 * V - AU) * AU).sum(1).mean() / (V ** 2).sum(1).mean())


X8 = lambda n, seed=0: torch.rand(n, 3, 8, 8, dtype=F64, generator=torch.Generator().manual_seed(seed))  # noqa: E731


def test_wide_models_take_the_matrix_free_route():
    S = convnet(1000)
    d = virtual_direction(S, X8(2))
    assert d.route == "matrix_free" and d.jac is None and d.iterations is not None
    assert virtual_direction(convnet(10), X8(2)).route == "dense"


def test_tau1_matrix_free_matches_svd_reference():
    S, T = convnet(1000, seed=1), convnet(512, seed=2)
    x = X8(4)
    r = tau1(S, T, x)
    _, vs = top_right(jac_ref(S, x))
    _, vt = top_right(jac_ref(T, x))
    ref = (vs * vt).sum(1).square()
    torch.testing.assert_close(r.per_sample.double(), ref, rtol=0, atol=1e-6)
    assert bool(r.valid.all()) and r.n_not_converged == 0


def test_tau1_routes_agree_and_batch_independent():
    S, T = mlp(48, 50, seed=3), mlp(48, 40, seed=4)
    x = X8(6)[:, :, :4, :4].contiguous()
    dense = tau1(S, T, x, route="dense")
    free = tau1(S, T, x, route="matrix_free", batch_size=4)
    torch.testing.assert_close(free.per_sample, dense.per_sample, rtol=0, atol=1e-6)
    single = tau1(S, T, x[2:3], route="matrix_free")
    torch.testing.assert_close(single.per_sample, free.per_sample[2:3], rtol=0, atol=1e-10)


def test_tau2_and_transferability_matrix_free_match_numpy():
    S, T = convnet(300, seed=5), convnet(200, seed=6)
    x = X8(12, seed=1)
    eps = 0.3
    JS, JT = jac_ref(S, x), jac_ref(T, x)
    _, vs = top_right(JS)
    U = eps * torch.einsum("bmn,bn->bm", JS, vs)
    V = eps * torch.einsum("bdn,bn->bd", JT, vs)
    ref = tau2_numpy(U, V)
    assert tau2(S, T, x, eps, batch_size=5).tau2 == pytest.approx(ref, abs=1e-6)
    both = adversarial_transferability(S, T, x, eps, batch_size=7)
    assert both.tau2.tau2 == pytest.approx(ref, abs=1e-6)
    _, vt = top_right(JT)
    torch.testing.assert_close(both.tau1.per_sample.double(), (vs * vt).sum(1).square(), rtol=0, atol=1e-6)


def test_forced_dense_route_for_wide_outputs_uses_svd():
    net = convnet(300, seed=12)
    x = X8(3)
    a = virtual_direction(net, x, route="dense")
    b = virtual_direction(net, x, route="matrix_free")
    assert a.route == "dense" and a.jac.shape == (3, 300, 192)
    torch.testing.assert_close(a.sigma1, b.sigma1, rtol=1e-6, atol=0)
    torch.testing.assert_close(a.v1, b.v1, rtol=0, atol=1e-5)
    assert torch.equal(a.flags, b.flags)


def test_singular_value_ratio_and_virtual_attack_m1000():
    net = mlp(48, 1000, seed=7)
    x = torch.rand(5, 3, 4, 4, dtype=F64)
    r = singular_value_ratio(net, x)
    S, v1 = top_right(jac_ref(net, x))
    torch.testing.assert_close(r.lam, S[:, 1] / S[:, 0], rtol=1e-5, atol=0)
    torch.testing.assert_close(r.sigma1, S[:, 0], rtol=1e-6, atol=0)
    v1 = normalize_signs(v1)  # the library's documented sign rule for singular vectors
    atk = VirtualAdversarialAttack(net, eps=0.5, clip=False)
    delta = (atk(x) - x).reshape(5, -1)
    torch.testing.assert_close(delta, 0.5 * v1, rtol=0, atol=1e-6)


def test_d2_nan_pixel_is_undefined_for_tau1():
    """Issue 16 D2: ReLU's backward masks a NaN input, so the Jacobian looked finite and tau1 counted
    the sample. Now a non-finite input is undefined (flagged, excluded, warned) on both routes."""
    x = X8(4)
    x[1, 0, 2, 3] = float("nan")
    for S, T in ((convnet(10, 1), convnet(10, 2)), (convnet(100, 1), convnet(100, 2))):
        with pytest.warns(RuntimeWarning, match="1 of 4"):
            r = tau1(S, T, x)
        assert r.valid.tolist() == [True, False, True, True] and float(r.per_sample[1]) == 0.0
        clean = tau1(S, T, x[[0, 2, 3]])
        assert r.tau1 == pytest.approx(clean.tau1, abs=1e-9)
        d = virtual_direction(S, x)
        assert int(d.flags[1]) == 8 and float(d.v1[1].abs().max()) == 0.0


def test_half_precision_model_computed_in_float32():
    Sh, Th = convnet(100, 3).half(), convnet(80, 4).half()
    x = X8(3).half()
    ref = tau1(copy.deepcopy(Sh).float(), copy.deepcopy(Th).float(), x.float())  # float32 compute
    half = tau1(Sh, Th, x)
    torch.testing.assert_close(half.per_sample, ref.per_sample, rtol=0, atol=1e-6)
    assert next(Sh.parameters()).dtype == torch.float16 and x.dtype == torch.float16  # caller's untouched
    y = torch.tensor([1, 2, 3])
    sh = smoothness(Sh, x, y, method="exact", progress=False)
    s32 = smoothness(copy.deepcopy(Sh).float(), x.float(), y, method="exact", progress=False)
    torch.testing.assert_close(sh.values, s32.values, rtol=1e-6, atol=0)


# ---- refusals before the first backward pass -------------------------------------------------------


class _Count(torch.autograd.Function):
    calls = 0
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, g):
        _Count.calls += 1
        return g

    @staticmethod
    def jvp(ctx, t):
        return t


class Counted(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(_Count.apply(x))


@pytest.mark.parametrize("fn", ["tau1", "tau2", "singular_value_ratio", "smoothness_exact", "smoothness_lanczos",
                                "virtual"])
def test_refuses_before_any_backward_with_what_to_pass(fn):
    net = Counted(convnet(1000))
    x = X8(32)
    y = torch.zeros(32, dtype=torch.long)
    _Count.calls = 0
    calls = {
        "tau1": lambda: tau1(net, net, x, batch_size=32, max_memory="1MiB"),
        "tau2": lambda: tau2(net, net, x, batch_size=32, max_memory="1MiB"),
        "singular_value_ratio": lambda: singular_value_ratio(net, x, batch_size=32, max_memory="1MiB"),
        "smoothness_exact": lambda: smoothness(net, x, y, method="exact", max_memory="1MiB", progress=False),
        "smoothness_lanczos": lambda: smoothness(net, x, y, method="lanczos", max_memory="1MiB", progress=False),
        "virtual": lambda: VirtualAdversarialAttack(net, eps=0.1, max_memory="1MiB")(x),
    }
    with pytest.raises(MemoryBudgetError, match=r"batch_size=32.*pass batch_size=\d+.*max_memory=") as e:
        calls[fn]()
    assert _Count.calls == 0, "refused only after a backward pass"
    assert "GiB" in str(e.value) or "MiB" in str(e.value)


def test_refusal_advice_works():
    """The batch size the message proposes does fit."""
    net = convnet(1000)
    x = X8(32)
    with pytest.raises(MemoryBudgetError) as e:
        tau1(net, net, x, batch_size=32, max_memory="3MiB")
    b = int(str(e.value).split("pass batch_size=")[1].split()[0])
    assert 1 <= b < 32 and e.value.fit_batch == b
    assert bool(tau1(net, net, x[:4], batch_size=b, max_memory="3MiB").valid.all())


def test_default_batch_size_shrinks_to_the_budget():
    """``batch_size=None`` (default) takes the largest batch that fits; the result does not change."""
    net, other = convnet(1000, seed=1), convnet(500, seed=2)
    x = X8(10)
    small = tau1(net, other, x, max_memory="3MiB")
    big = tau1(net, other, x)
    torch.testing.assert_close(small.per_sample, big.per_sample, rtol=0, atol=1e-10)
    with pytest.raises(MemoryBudgetError, match="no batch size fits"):
        tau1(net, other, x, max_memory="100KB")


# ---- exact smoothness for any number of classes -------------------------------------------------


def hessian_top(model, x, y):
    vals = []
    for xi, yi in zip(x, y):
        f = lambda z: F.cross_entropy(model(z.reshape(1, *x.shape[1:])), yi[None])  # noqa: E731
        H = torch.func.hessian(f)(xi.reshape(-1)).detach()
        vals.append(torch.linalg.eigvalsh(H)[-1])
    return torch.stack(vals)


@pytest.mark.parametrize("C", [100, 1000])
def test_exact_smoothness_any_C_matches_dense_hessian(C):
    net = mlp(12, C, hidden=16, seed=C).eval()
    x = torch.rand(4, 3, 2, 2, dtype=F64)
    y = torch.randint(0, C, (4,))
    ref = hessian_top(net, x, y)
    r = smoothness(net, x, y, method="exact", progress=False)
    torch.testing.assert_close(r.values, ref, rtol=1e-6, atol=1e-12)
    assert bool(r.converged.all()) and bool(r.valid.all())
    if C <= 100:  # the forced dense route: C VJPs + eigh (slow for C = 1000)
        dense = smoothness(net, x, y, method="exact", route="dense", progress=False)
        torch.testing.assert_close(dense.values, ref, rtol=1e-8, atol=1e-14)


def test_exact_smoothness_conv_1000_classes_batch_independent():
    net = convnet(1000, seed=9)
    x, y = X8(3), torch.tensor([3, 500, 999])
    full = smoothness(net, x, y, method="exact", progress=False)
    one = smoothness(net, x[1:2], y[1:2], method="exact", progress=False)
    torch.testing.assert_close(one.values, full.values[1:2], rtol=1e-9, atol=0)
    lz = smoothness(net, x, y, method="lanczos", tol=1e-8, max_iter=150, progress=False)
    torch.testing.assert_close(full.values, lz.values, rtol=1e-3, atol=0)


# ---- seed-000 theorems through the matrix-free route ------------------------------------------


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(65, 120), d=st.integers(65, 120))
def test_proposition1_and_tau1_range_matrix_free(seed, m, d):
    S, T = mlp(12, m, hidden=10, seed=seed), mlp(12, d, hidden=10, seed=seed + 1)
    x = torch.rand(10, 3, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = adversarial_transferability(S, T, x)
    assert -1e-9 <= r.tau2.raw <= 1 + 1e-9  # Proposition 1
    t1 = r.tau1.per_sample[r.tau1.valid]
    assert bool(((t1 >= 0) & (t1 <= 1)).all())


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_theorem2_matrix_free_equals_dense_and_holds(seed):
    """||J_T - A J_S||_{D,2}^2 through the matrix-free route equals the jacrev value; the bound holds."""
    S, T = mlp(12, 90, hidden=10, seed=seed), mlp(12, 70, hidden=10, seed=seed + 7)
    x = torch.rand(8, 3, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = pair_jacobians(S, T, x)
        r = theorem2(S, T, x, pair=p)
    assert p.JS is None  # matrix-free
    JS, JT = jac_ref(S, p.x), jac_ref(T, p.x)
    gap = torch.linalg.matrix_norm(JT - p.tau2.A @ JS, ord=2).square().mean()
    assert r.lhs == pytest.approx(float(gap), rel=1e-6)
    assert r.holds and r.holds_lipschitz


def test_proposition2_linear_models_exact_matrix_free():
    """Linear models: Prop. 2's bounds hold exactly (no O(eps^3)), on the matrix-free route."""
    torch.manual_seed(11)
    S, T = nn.Linear(20, 100).double(), nn.Linear(20, 80).double()
    x = torch.rand(10, 20, dtype=F64)
    r = proposition2(S, T, x, eps=0.7)
    assert r.holds and r.lower < r.loss < r.upper  # strict: neither bound is attained by chance
