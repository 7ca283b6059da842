"""Hub models end to end: torchvision resnet18 / mobilenet_v3_small and timm resnet18 / vit_tiny (random
init, 3x32x32, 10 classes, 2 images) through every attack, metric, probe, fine-tune and the AS score.

References are computed here, independently of pyadvt: torchattacks for PGD/FGSM/MI-FGSM, an SVD of the
Jacobian built with ``torch.func.jacrev`` for tau1 / lambda / tau2 / the virtual attack, autograd input
gradients for gradient similarity, ``J^T (diag p - p p^T) J`` (exact for ReLU networks) or a
finite-difference Rayleigh quotient for smoothness, and hand-counted predictions for transfer rates.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")
torchattacks = pytest.importorskip("torchattacks")

from pyadvt.attacks import DI, DIM, FGSM, MIFGSM, PGD, RepresentationAttack, VirtualAdversarialAttack  # noqa: E402
from pyadvt.data import TensorData  # noqa: E402
from pyadvt.metrics import (as_score, gradient_similarity, singular_value_ratio, smoothness, tau1,  # noqa: E402
                            tau2, tau2_from_deviations, attack_transferability)
from pyadvt.models import from_timm, from_torchvision  # noqa: E402
from pyadvt.transfer import finetune, linear_probe  # noqa: E402

EPS = 8 / 255
BUILD = {
    "tv_resnet18": lambda: from_torchvision("resnet18", num_classes=10),
    "tv_mobilenet_v3_small": lambda: from_torchvision("mobilenet_v3_small", num_classes=10),
    "timm_resnet18": lambda: from_timm("resnet18", num_classes=10),
    "timm_vit_tiny": lambda: from_timm("vit_tiny_patch16_224", num_classes=10, img_size=32),
}
RELU_NETS = {"tv_resnet18", "timm_resnet18"}  # piecewise linear: the CE Hessian is J^T S J exactly
NAMES = list(BUILD)
_cache: dict[str, torch.nn.Module] = {}


def model(name):
    if name not in _cache:
        torch.manual_seed(NAMES.index(name))
        _cache[name] = BUILD[name]()
    return _cache[name]


def other(name):
    return model(NAMES[(NAMES.index(name) + 1) % len(NAMES)])


def data(n=2):
    g = torch.Generator().manual_seed(7)
    x = 0.25 + 0.5 * torch.rand(n, 3, 32, 32, generator=g)  # interior: small balls are not clipped
    return x, torch.randint(0, 10, (n,), generator=g)


def jac(m, x):
    """[B, 10, n] input Jacobians of the logits, one sample at a time."""
    m.eval()
    rows = [torch.func.jacrev(lambda z: m(z.view(1, *x.shape[1:]))[0])(xi.reshape(-1)) for xi in x]
    return torch.stack(rows).detach().double()


def in_ball(x_adv, x, eps, norm="linf"):
    d = (x_adv - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    return bool((size <= eps * (1 + 1e-5) + 1e-7).all()) and bool(((x_adv >= 0) & (x_adv <= 1)).all())


@pytest.fixture(autouse=True)
def _eval_restored():
    yield
    for m in _cache.values():
        m.train()  # pyadvt restores modes; the references here put models in eval


# --------------------------------------------------------------------------- attacks


@pytest.mark.parametrize("name", NAMES)
def test_gradient_attacks_equal_torchattacks(name):
    m, (x, y) = model(name), data()
    m.eval()  # torchattacks runs the model as it is; pyadvt in eval mode
    tol = dict(atol=1e-6, rtol=0)
    torch.testing.assert_close(PGD(m, eps=EPS, alpha=2 / 255, steps=3, random_start=False)(x, y),
                               torchattacks.PGD(m, eps=EPS, alpha=2 / 255, steps=3, random_start=False)(x, y), **tol)
    torch.testing.assert_close(FGSM(m, eps=EPS)(x, y), torchattacks.FGSM(m, eps=EPS)(x, y), **tol)
    torch.testing.assert_close(MIFGSM(m, eps=EPS, alpha=2 / 255, steps=3, mu=1.0)(x, y),
                               torchattacks.MIFGSM(m, eps=EPS, alpha=2 / 255, steps=3, decay=1.0)(x, y), **tol)


@pytest.mark.parametrize("name", NAMES)
def test_input_diversity_ensemble_and_representation_attacks(name):
    m, (x, y) = model(name), data()
    for atk in (DI(m, eps=EPS, steps=2), DIM(m, eps=EPS, steps=2)):
        x_adv = atk(x, y)
        assert x_adv.shape == x.shape and in_ball(x_adv, x, EPS) and not torch.equal(x_adv, x)
    o = other(name)
    ens = PGD([m, o], eps=EPS, alpha=2 / 255, steps=2, random_start=False)(x, y)

    class Mean(torch.nn.Module):  # the ensemble's mean logits, written out
        def __init__(self):
            super().__init__()
            self.a, self.b = m, o

        def forward(self, z):
            return (self.a(z) + self.b(z)) / 2

    torch.testing.assert_close(ens, PGD(Mean(), eps=EPS, alpha=2 / 255, steps=2, random_start=False)(x, y),
                               atol=1e-6, rtol=0)
    ratk = RepresentationAttack(m, EPS, steps=3)
    x_rep = ratk(x)
    m.eval()
    with torch.no_grad():
        shift = (m.features(x_rep) - m.features(x)).norm(dim=1)
    assert in_ball(x_rep, x, EPS) and bool((shift > 0).all())
    torch.testing.assert_close(ratk.last_distance, shift, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_virtual_attack_follows_the_top_right_singular_vector(name):
    m, (x, _) = model(name), data()
    x_adv = VirtualAdversarialAttack(m, eps=0.05)(x)
    d = (x_adv - x).flatten(1).double()
    v1 = torch.linalg.svd(jac(m, x)).Vh[:, 0]
    cos = (d * v1).sum(1).abs() / d.norm(dim=1)
    assert in_ball(x_adv, x, 0.05, "l2") and bool((cos > 0.999).all()), cos


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("name", NAMES)
def test_spectral_metrics_match_an_svd_of_the_jacobian(name):
    m, o, (x, _) = model(name), other(name), data()
    Js, Jt = jac(m, x), jac(o, x)
    Us, Ss, Vs = torch.linalg.svd(Js, full_matrices=False)
    _, St, Vt = torch.linalg.svd(Jt, full_matrices=False)
    ref_tau1 = ((Vs[:, 0] * Vt[:, 0]).sum(1)) ** 2
    torch.testing.assert_close(tau1(m, o, x).per_sample.double(), ref_tau1, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(singular_value_ratio(m, x).lam.double(), Ss[:, 1] / Ss[:, 0],
                               rtol=1e-3, atol=1e-5)
    delta = 0.1 * Vs[:, 0]  # delta_S = eps v1_S (docs/theory.md §2)
    U, V = torch.einsum("bmn,bn->bm", Js, delta), torch.einsum("bmn,bn->bm", Jt, delta)
    assert tau2(m, o, x, eps=0.1).tau2 == pytest.approx(tau2_from_deviations(U, V).tau2, rel=1e-3, abs=1e-5)


def _fd_rayleigh(m, x, y, v, h=1e-3):
    """v^T H v of CE(m(x), y) by central differences of input gradients (first order only)."""
    def grad(z):
        z = z.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(m(z), y, reduction="sum"), z)
        return g.double()
    return ((grad(x + h * v) - grad(x - h * v)) * v).flatten(1).sum(1) / (2 * h)


@pytest.mark.parametrize("name", NAMES)
def test_smoothness_runs_and_matches_a_hessian_reference(name):
    m, (x, y) = model(name), data()
    res = smoothness(m, x, y, progress=False, tol=1e-6, max_iter=60)
    assert bool(res.defined.all()) and bool(torch.isfinite(res.values).all())
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    try:
        if name in RELU_NETS:
            J = jac(m, x)
            p = torch.softmax(m(x).double(), dim=1)
            S = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # PSD, rank C - 1
            w, Q = torch.linalg.eigh(S)
            root = Q @ torch.diag_embed(w.clamp_min(0).sqrt()) @ Q.mT
            ref = torch.linalg.eigvalsh(root @ J @ J.mT @ root)[:, -1]  # lambda_max(J^T S J)
            torch.testing.assert_close(res.values, ref, rtol=2e-3, atol=1e-6)
        else:  # lambda_max >= any Rayleigh quotient
            v = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
            v = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            assert bool((res.values >= _fd_rayleigh(m, x, y, v) - 1e-3 * res.values.abs() - 1e-6).all())
    finally:
        for p in m.parameters():
            p.requires_grad_(True)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_similarity_and_transfer_rates_by_hand(name):
    m, o, (x, y) = model(name), other(name), data(4)
    sim = gradient_similarity(m, o, x, y)
    m.eval(), o.eval()

    def g(net):
        z = x.clone().requires_grad_(True)
        (gz,) = torch.autograd.grad(F.cross_entropy(net(z), y, reduction="sum"), z)
        return gz.flatten(1).double()

    ga, gb = g(m), g(o)  # random-init MobileNetV3 has gradients ~1e-10: no eps-clamped cosine here
    torch.testing.assert_close(sim.values, (ga * gb).sum(1) / (ga.norm(dim=1) * gb.norm(dim=1)), rtol=1e-4, atol=1e-6)
    x_adv = PGD(m, eps=EPS, alpha=2 / 255, steps=2)(x, y)
    rates = attack_transferability(m, o, x, y, x_adv=x_adv)
    m.eval(), o.eval()
    with torch.no_grad():
        pm, po, pa = m(x).argmax(1), o(x).argmax(1), o(x_adv).argmax(1)
    assert rates.acc_source == pytest.approx(float((pm == y).double().mean()))
    assert rates.acc_target == pytest.approx(float((po == y).double().mean()))
    assert rates.asr == pytest.approx(float((pa != y).double().mean()))
    assert rates.both_correct == int(((pm == y) & (po == y)).sum())


@pytest.mark.parametrize("name", NAMES)
def test_as_score_uses_the_hub_models_features(name):
    m, (x, _) = model(name), data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a hub model has features: no "logits?" warning
        res = as_score(m, x, eps=EPS, steps=3)
    assert res.score > 0 and res.per_sample.shape == (2,)
    m.eval()
    with torch.no_grad():  # the score is a shift actually reached inside the ball: below the attack's own max
        assert bool((res.per_sample <= EPS * 3072 ** 0.5 * 1e6).all())
    if not hasattr(m.body, "features"):  # torchvision MobileNet's 'features' is its conv trunk
        with pytest.warns(UserWarning, match="has no 'features'"):
            as_score(m.body, x, eps=EPS, steps=1)


# --------------------------------------------------------------------------- transfer learning


@pytest.mark.parametrize("name", NAMES)
def test_linear_probe_and_finetune_one_block(name):
    m = model(name)
    x, _ = data(4)
    train = TensorData(x, torch.tensor([0, 1, 0, 1]))
    before = {k: v.clone() for k, v in m.body.state_dict().items()}
    last = m.block_names[-1]
    last = (last,) if isinstance(last, str) else last
    for blocks, allowed in (("head", ()), (1, last)):
        res = (linear_probe(m, train, num_classes=2, epochs=1, batch_size=2, lr=0.1) if blocks == "head" else
               finetune(m, train, blocks=1, num_classes=2, epochs=1, batch_size=2, lr=0.1))
        changed = {k for k, p in res.model.body.named_parameters() if not torch.equal(p, before[k])}
        assert all(any(k.startswith(b + ".") for b in allowed) for k in changed), (blocks, changed)
        if blocks == 1:
            assert changed, "fine-tuning the last block changed none of its parameters"
        assert res.model.head.out_features == 2 and res.model(x).shape == (4, 2)
    assert all(torch.equal(v, m.body.state_dict()[k]) for k, v in before.items())  # source untouched


@pytest.mark.parametrize("name", ["timm_vit_tiny", "tv_mobilenet_v3_small"])
def test_gradient_regularised_training_runs_on_attention_and_hardsigmoid(name):
    from pyadvt.train import fit
    from pyadvt.train.regularizers import InputGradientRegularizer

    torch.manual_seed(0)
    m = BUILD[name]()  # a fresh copy: training changes it
    x, _ = data(4)
    before = m.head.weight.detach().clone()
    res = fit(m, TensorData(x, torch.tensor([0, 1, 2, 3])), epochs=1, batch_size=2, lr=0.01,
              loss_fn=InputGradientRegularizer(0.1), progress=False)
    assert res.steps == 2 and not torch.equal(m.head.weight, before)
    assert all("forward" not in mod.__dict__ for mod in m.modules())  # Hardsigmoid restored
