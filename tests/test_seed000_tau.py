"""tau1, tau2, singular-value ratio and the virtual adversarial attack (seed 000, SPEC section 2)."""

import numpy as np
import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pyadvt.attacks.virtual import VirtualAdversarialAttack, virtual_direction
from pyadvt.metrics import adversarial_transferability, singular_value_ratio, tau1, tau2, tau2_from_deviations
from pyadvt.metrics.tau2 import project_spectral


def random_model(kind, seed, out, in_dim=6):
    torch.manual_seed(seed)
    if kind == "mlp":
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_dim * in_dim, 12), torch.nn.Tanh(),
                                  torch.nn.Linear(12, out))
    else:
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.LeakyReLU(0.1),
                                  torch.nn.Flatten(), torch.nn.Linear(3 * (in_dim - 2) ** 2, out))
    return net.double().eval()


def _x(seed, b=12, in_dim=6):
    return torch.rand(b, 1, in_dim, in_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _svd_v1(J):
    _, _, Vh = torch.linalg.svd(J)
    return Vh[:, 0, :]


def _ref_jac(net, x, out):
    with torch.no_grad():
        return torch.func.vmap(torch.func.jacrev(lambda z: net(z[None])[0]))(x).reshape(x.shape[0], out, -1)


models = st.tuples(st.sampled_from(["mlp", "cnn"]), st.integers(0, 10_000))


@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(src=models, tgt=models, m=st.integers(1, 5), d=st.integers(1, 5), seed=st.integers(0, 1000))
def test_tau_in_unit_interval_and_tau1_matches_svd(src, tgt, m, d, seed):
    S, T = random_model(src[0], src[1], m), random_model(tgt[0], tgt[1] + 1, d)
    x = _x(seed)
    r = adversarial_transferability(S, T, x)
    assert 0.0 <= r.tau1.tau1 <= 1.0 and 0.0 <= r.tau2.tau2 <= 1.0
    assert -1e-12 <= r.tau2.raw <= 1 + 1e-12
    JS = _ref_jac(S, x, m)
    JT = _ref_jac(T, x, d)
    ref = (_svd_v1(JS) * _svd_v1(JT)).sum(-1).square()
    torch.testing.assert_close(r.tau1.per_sample, ref, rtol=1e-6, atol=1e-8)
    # tau2 straight from the definition with numpy
    v1 = _svd_v1(JS)
    U = torch.einsum("bmn,bn->bm", JS, v1).numpy()
    V = torch.einsum("bdn,bn->bd", JT, v1).numpy()
    Bs = (V.T @ U / 12) @ np.linalg.pinv(U.T @ U / 12)
    rr = np.sqrt((V ** 2).sum(1).mean() / (U ** 2).sum(1).mean())
    A = Bs if np.linalg.norm(Bs, 2) <= rr else rr * Bs / np.linalg.norm(Bs, 2)
    AU = U @ A.T
    t2 = ((2 * V - AU) * AU).sum(1).mean() / (V ** 2).sum(1).mean()
    assert abs(r.tau2.raw - t2) <= 1e-6 * max(1.0, abs(t2))
    # the separate entry points agree with the joint one
    assert abs(tau1(S, T, x).tau1 - r.tau1.tau1) < 1e-12
    assert abs(tau2(S, T, x, eps=0.3).tau2 - r.tau2.tau2) < 1e-9


@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(n=st.integers(3, 40), seed=st.integers(0, 10_000))
def test_tau2_scalar_reduction(n, seed):
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(n, 1, dtype=torch.float64, generator=g)
    V = 0.7 * U + torch.randn(n, 1, dtype=torch.float64, generator=g)
    closed = float((U * V).mean() ** 2 / ((U ** 2).mean() * (V ** 2).mean()))
    res = tau2_from_deviations(U, V)
    assert abs(res.tau2 - closed) < 1e-12
    assert not res.projected  # Cauchy-Schwarz: |B*| <= r always in the scalar case
    # companion: a wrong formula (no square) differs
    assert abs(float((U * V).mean() / ((U ** 2).mean() * (V ** 2).mean()).sqrt()) - res.tau2) > 1e-6 or closed > 0.999


def test_tau2_projection_branch():
    # V = 3 U in one coordinate and unrelated large noise elsewhere: B* large -> projected
    U = torch.tensor([[1.0, 0.0], [0.0, 1e-3], [1.0, 1e-3]], dtype=torch.float64)
    V = torch.tensor([[0.1], [5.0], [0.1]], dtype=torch.float64)
    res = tau2_from_deviations(U, V)
    assert res.projected
    assert abs(float(torch.linalg.matrix_norm(res.A, ord=2)) - res.r) < 1e-9
    assert 0 <= res.tau2 <= 1
    B = torch.tensor([[3.0, 4.0]])
    assert torch.equal(project_spectral(B, 10.0), B)
    torch.testing.assert_close(project_spectral(B, 1.0), B / 5)


def test_identical_and_orthogonal_models():
    S = torch.nn.Linear(4, 1, bias=False).double()
    T = torch.nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        S.weight.copy_(torch.tensor([[1.0, 0, 0, 0]]))
        T.weight.copy_(torch.tensor([[0, 1.0, 0, 0]]))
    x = torch.rand(5, 4, dtype=torch.float64)
    assert adversarial_transferability(S, S, x).summary()["tau1"] == pytest.approx(1.0)
    r = adversarial_transferability(S, T, x)
    assert r.tau1.tau1 == pytest.approx(0.0) and np.isnan(r.tau2.tau2)  # V = 0: target never moves


def test_batch_independence_and_no_mutation():
    S, T = random_model("cnn", 1, 3), random_model("mlp", 2, 4)
    S.train()
    x = _x(5, b=10)
    xc = x.clone()
    full = adversarial_transferability(S, T, x, batch_size=10)
    parts = adversarial_transferability(S, T, x, batch_size=3)
    assert S.training and torch.equal(x, xc)
    torch.testing.assert_close(full.tau1.per_sample, parts.tau1.per_sample, rtol=1e-12, atol=1e-12)
    assert abs(full.tau2.tau2 - parts.tau2.tau2) < 1e-12
    with_bar = adversarial_transferability(S, T, x, batch_size=4, progress=True)
    torch.testing.assert_close(with_bar.tau1.per_sample, full.tau1.per_sample, rtol=1e-12, atol=1e-12)
    single = tau1(S, T, x[4:5])
    assert abs(single.tau1 - float(full.tau1.per_sample[4])) < 1e-12


def test_zero_jacobian_samples_masked_with_warning():
    class Dead(torch.nn.Module):  # zero Jacobian wherever the first pixel > 0.5
        def forward(self, x):
            flat = x.reshape(x.shape[0], -1)
            gate = (flat[:, :1] <= 0.5).to(x.dtype)
            return torch.cat([gate * flat[:, :3].sum(1, keepdim=True), gate * flat[:, 1:2]], 1)

    x = torch.rand(20, 4, dtype=torch.float64)
    x[:5, 0] = 0.9
    x[5:, 0] = 0.1
    with pytest.warns(RuntimeWarning, match="5 of 20"):
        r = adversarial_transferability(Dead(), torch.nn.Linear(4, 2).double(), x)
    assert r.tau1.n_undefined == 5 and not bool(r.tau1.valid[:5].any())
    assert r.tau2.n == 15 and np.isfinite(r.tau1.tau1)
    with pytest.warns(RuntimeWarning):
        assert singular_value_ratio(Dead(), x).n_undefined == 5


def test_singular_value_ratio_vs_svdvals():
    net = random_model("mlp", 3, 4)
    x = _x(1)
    r = singular_value_ratio(net, x)
    J = _ref_jac(net, x, 4)
    s = torch.linalg.svdvals(J)
    torch.testing.assert_close(r.lam, s[:, 1] / s[:, 0], rtol=1e-8, atol=1e-10)
    assert r.worst == pytest.approx(float((s[:, 1] / s[:, 0]).max()))
    assert r.summary()["n"] == 12


def test_virtual_attack_maximises_deviation():
    net = random_model("mlp", 4, 3)
    x = _x(2, b=4)
    atk = VirtualAdversarialAttack(net, eps=0.05, clip=False)
    delta = (atk(x) - x).reshape(4, -1)
    torch.testing.assert_close(delta.norm(dim=1), torch.full((4,), 0.05, dtype=torch.float64))
    d = virtual_direction(net, x)
    best = torch.einsum("bmn,bn->bm", d.jac, delta).norm(dim=1)
    torch.testing.assert_close(best, 0.05 * d.sigma1)
    rand = torch.randn(4, 36, dtype=torch.float64)
    rand = 0.05 * rand / rand.norm(dim=1, keepdim=True)
    assert bool((torch.einsum("bmn,bn->bm", d.jac, rand).norm(dim=1) <= best + 1e-12).all())
    clipped = VirtualAdversarialAttack(net, eps=5.0)(x)
    assert float(clipped.min()) >= 0 and float(clipped.max()) <= 1
    with pytest.raises(ValueError, match="eps"):
        VirtualAdversarialAttack(net, eps=0)


def test_tau2_keeps_samples_where_only_the_target_is_flat():
    class Gate(torch.nn.Module):  # zero Jacobian where the first input > 0.5
        def forward(self, x):
            return (x[:, :1] <= 0.5).to(x.dtype) * x[:, :2]

    S = torch.nn.Linear(3, 2).double()
    x = torch.rand(12, 3, dtype=torch.float64)
    x[:4, 0] = 0.9
    x[4:, 0] = 0.1
    with pytest.warns(RuntimeWarning):
        joint = adversarial_transferability(S, Gate(), x)
    assert joint.tau1.n_undefined == 4 and joint.tau2.n == 12
    assert abs(joint.tau2.tau2 - tau2(S, Gate(), x).tau2) < 1e-12
