"""tau1, tau2, singular-value ratio and the virtual adversarial attack (seed 000, docs/theory.md §2)."""

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


# ---------------------------------------------------------------------------------------------------
# Formula pins with hand-computed / independently computed expectations (docs/theory.md §2).
# ---------------------------------------------------------------------------------------------------

class _HalfSquares(torch.nn.Module):
    """``f(x) = x * x / 2`` elementwise: J_f(x) = diag(x), so v1 = e_argmax|x_i| and lam = min|x| / max|x|."""

    def forward(self, x):
        return 0.5 * x * x


def test_tau2_projection_closed_form():
    """Definition 3 with the spectral-norm projection (docs/theory.md §2): U = e1, e2 (two samples),
    V = 1, 2. Then E[U U^T] = I/2, E[V U^T] = (1, 2)/2, B* = (1, 2) with ||B*||_2 = sqrt 5, while
    r = sqrt(E V^2 / E||U||^2) = sqrt(5/2) < sqrt 5: A = r B* / ||B*|| = B* / sqrt 2 and
    tau2 = (2 tr(A^T E[VU^T]) - tr(A E[UU^T] A^T)) / E V^2 = (5/sqrt2 - 5/4) / (5/2) = sqrt 2 - 1/2.
    Without the projection (A = B*) it would be exactly 1."""
    U = torch.eye(2, dtype=torch.float64)
    V = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    res = tau2_from_deviations(U, V)
    torch.testing.assert_close(res.B_star, torch.tensor([[1.0, 2.0]], dtype=torch.float64), rtol=1e-12, atol=1e-12)
    assert res.r == pytest.approx(2.5 ** 0.5, rel=1e-12)
    torch.testing.assert_close(res.A, torch.tensor([[1.0, 2.0]], dtype=torch.float64) / 2 ** 0.5,
                               rtol=1e-12, atol=1e-12)
    assert res.tau2 == pytest.approx(2 ** 0.5 - 0.5, rel=1e-12)
    assert res.raw == pytest.approx(2 ** 0.5 - 0.5, rel=1e-12)
    # the same deviations from models: S(x) = x^2 / 2 (J_S = diag(x)), T(x) = x_1 + 2 x_2, on
    # x = (1, .5), (.5, 1): v1_S = e1, e2, so U = (1, 0), (0, 1) and V = 1, 2 as above
    T = torch.nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        T.weight.copy_(torch.tensor([[1.0, 2.0]]))
    x = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    for r in (tau2(_HalfSquares(), T, x, eps=0.5), adversarial_transferability(_HalfSquares(), T, x).tau2):
        assert r.projected and r.tau2 == pytest.approx(2 ** 0.5 - 0.5, rel=1e-10)


def test_singular_value_ratio_worst_is_max_closed_form():
    """Definition 4: lam_f(x) = sigma2 / sigma1 and the worst case lam_f = max_x lam_f(x). With
    J_f(x) = diag(x): x = (1, .5), (1, .25), (.5, .4) give lam = .5, .25, .8 -> worst .8, mean 31/60."""
    x = torch.tensor([[1.0, 0.5], [1.0, 0.25], [0.5, 0.4]], dtype=torch.float64)
    r = singular_value_ratio(_HalfSquares(), x)
    torch.testing.assert_close(r.lam, torch.tensor([0.5, 0.25, 0.8], dtype=torch.float64), rtol=1e-12, atol=1e-12)
    assert r.worst == pytest.approx(0.8, rel=1e-12)
    assert r.summary()["lambda_max"] == pytest.approx(0.8, rel=1e-12)
    assert r.mean == pytest.approx(31 / 60, rel=1e-12)


def _tau2_formula(U, V, A):
    """E<2V - A U, A U> / E||V||^2 (Definition 3) for an arbitrary matrix A (numpy)."""
    AU = U @ A.T
    return float(((2 * V - AU) * AU).sum(1).mean() / (V ** 2).sum(1).mean())


def _definition_quantities(S, T, x, m, d):
    """Raw (unclamped) tau1(x) and tau2 from the definitions with torch.linalg.svd / numpy."""
    JS, JT = _ref_jac(S, x, m), _ref_jac(T, x, d)
    v1S, v1T = _svd_v1(JS), _svd_v1(JT)
    t1x = ((v1S * v1T).sum(-1) ** 2).numpy()
    U = torch.einsum("bmn,bn->bm", JS, v1S).numpy()
    V = torch.einsum("bdn,bn->bd", JT, v1S).numpy()
    N = U.shape[0]
    B = (V.T @ U / N) @ np.linalg.pinv(U.T @ U / N)
    r = np.sqrt((V ** 2).sum(1).mean() / (U ** 2).sum(1).mean())
    A = B if np.linalg.norm(B, 2) <= r else r * B / np.linalg.norm(B, 2)
    # tau1 from the attack vectors delta = eps v1 with eps = 1.1 instead of the unit directions (a perturbed
    # quantity: <delta_S, delta_T>^2 = 1.1^4 tau1(x))
    t1x_unnormalised = (((1.1 * v1S) * (1.1 * v1T)).sum(-1) ** 2).numpy()
    return t1x, U, V, A, t1x_unnormalised


@pytest.mark.parametrize("src,tgt,m,d,seed", [(("mlp", 11), ("cnn", 12), 3, 2, 0), (("cnn", 21), ("mlp", 22), 2, 4, 1),
                                              (("mlp", 31), ("mlp", 32), 1, 1, 2)])
def test_proposition1_raw_taus_in_unit_interval_and_perturbed_quantities_leave_it(src, tgt, m, d, seed):
    """Proposition 1 (paper section 2; proof in appendix B): tau1, tau2 in [0, 1]. Checked on the
    *unclamped* values (pyadvt's .tau2 is clamped, so checking it alone could never fail): the raw
    tau1(x) and tau2 from the definitions, and pyadvt's Tau2Result.raw, which must equal the latter.
    Companions show the range check has teeth: the same formulas with a perturbed quantity leave [0, 1]:
    A scaled past 2 E<V, AU> / E||AU||^2 makes tau2 negative, an A with ||A||_2 = 3 on identical
    deviations gives 2*3 - 9 = -3, and on the pair (S, S), where both taus reach the upper end 1, tau1 from
    attack vectors 1.1 v1 (not unit) exceeds 1."""
    S, T = random_model(src[0], src[1], m), random_model(tgt[0], tgt[1], d)
    x = _x(seed)
    t1x, U, V, A, t1x_bad = _definition_quantities(S, T, x, m, d)
    raw = _tau2_formula(U, V, A)
    assert -1e-12 <= t1x.min() and t1x.max() <= 1 + 1e-12
    assert -1e-12 <= raw <= 1 + 1e-12 and 0.01 < raw  # non-trivial example
    r = adversarial_transferability(S, T, x)
    assert r.tau2.raw == pytest.approx(raw, rel=1e-7)
    assert r.tau2.tau2 == pytest.approx(min(max(raw, 0.0), 1.0), rel=1e-7)  # clamping only cuts rounding
    torch.testing.assert_close(r.tau1.per_sample, torch.from_numpy(t1x), rtol=1e-6, atol=1e-8)
    # companions: perturbed quantities violate Proposition 1
    AU = U @ A.T
    c = 3 * float(((V * AU).sum(1).mean()) / (AU ** 2).sum(1).mean())
    assert _tau2_formula(U, V, c * A) < 0
    assert _tau2_formula(U, U, 3 * np.eye(U.shape[1])) == pytest.approx(-3.0)
    t1x_same, U_same, V_same, A_same, t1x_same_bad = _definition_quantities(S, S, x, m, m)
    np.testing.assert_allclose(t1x_same, 1.0, rtol=1e-10)
    assert _tau2_formula(U_same, V_same, A_same) == pytest.approx(1.0, rel=1e-10)
    assert t1x_same_bad.min() > 1


def test_tau2_without_projection_differs_on_models():
    """Definition 3: the projection changes tau2 on random models where ||B*||_2 > r. Recomputing with
    A = B* (no projection) gives a strictly different value (here larger: B* is the least-squares fit)."""
    S, T = random_model("mlp", 41, 3), random_model("cnn", 42, 2)
    x = _x(3)
    _, U, V, A, _ = _definition_quantities(S, T, x, 3, 2)
    N = U.shape[0]
    B = (V.T @ U / N) @ np.linalg.pinv(U.T @ U / N)
    assert np.linalg.norm(B, 2) > np.sqrt((V ** 2).sum(1).mean() / (U ** 2).sum(1).mean()) * (1 + 1e-3)
    res = tau2(S, T, x)
    assert res.projected
    assert res.tau2 == pytest.approx(_tau2_formula(U, V, A), rel=1e-7)
    assert abs(_tau2_formula(U, V, B) - res.tau2) > 1e-3
