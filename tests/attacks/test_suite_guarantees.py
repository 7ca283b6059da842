"""Guarantees of every attack of the transfer suite (docs/theory.md §0, §10): inside the eps-ball and
[0, 1], input not mutated, model mode and requires_grad restored, batch independence, multi-budget
calls equal separate calls, hooks/patches removed also when the call raises, and a success rate above
the clean error on a trained digits model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pyadvt.attacks as A
from pyadvt.data import digits
from pyadvt.models import build

EPS = 0.1

# attack name -> (constructor on a model list/model, needs a ResNet, needs an ensemble)
SMALL = {
    "NIFGSM": lambda m: A.NIFGSM(m, EPS, None, 3),
    "SINIFGSM": lambda m: A.SINIFGSM(m, EPS, None, 3, m=3),
    "TIFGSM": lambda m: A.TIFGSM(m, EPS, None, 3, len_kernel=3),
    "VMIFGSM": lambda m: A.VMIFGSM(m, EPS, None, 3, N=3),
    "VNIFGSM": lambda m: A.VNIFGSM(m, EPS, None, 3, N=3),
    "PIFGSM": lambda m: A.PIFGSM(m, EPS, None, 3),
    "Admix": lambda m: A.Admix(m, EPS, None, 3, m1=2, m2=2),
    "SSA": lambda m: A.SSA(m, EPS, None, 3, N=3),
    "BSR": lambda m: A.BSR(m, EPS, None, 3, N=3),
    "SGM": lambda m: A.SGM(m, EPS, None, 3),
    "LinBP": lambda m: A.LinBP(m, EPS, None, 3),
    "ILA": lambda m: A.ILA(m, EPS, None, 3),
    "FIA": lambda m: A.FIA(m, EPS, None, 3, N=4),
    "NAA": lambda m: A.NAA(m, EPS, None, 3, N=4),
    "SVRE": lambda m: A.SVRE(m, EPS, None, 3, inner_steps=3),
    "mi-di-ti-si": lambda m: A.create("mi-di-ti-si", m, EPS, None, 3, ti_kernel=3, si_m=2),
}
NAMES = sorted(SMALL)


def resnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = build("resnet", in_shape=(1, 8, 8), widths=(8, 16), depth=2)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def model_for(name: str, seed: int = 0):
    if name == "SVRE":
        return [resnet(seed), resnet(seed + 1)]
    return resnet(seed)


def data(n: int = 6, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def modules_of(model):
    return [m for net in (model if isinstance(model, list) else [model]) for m in net.modules()]


def hook_state(model):
    return [(len(m._forward_hooks), len(m._backward_hooks), len(m._forward_pre_hooks), "forward" in vars(m))
            for m in modules_of(model)]


@pytest.mark.parametrize("name", NAMES)
def test_ball_range_no_mutation_modes_restored(name):
    model = model_for(name)
    nets = model if isinstance(model, list) else [model]
    for net in nets:
        net.train()
        net.blocks[0][0].weight.requires_grad_(False)
    flags = [p.requires_grad for net in nets for p in net.parameters()]
    hooks = hook_state(model)
    x, y = data()
    x0 = x.clone()
    atk = SMALL[name](model)
    out = atk(x, y)
    assert out.shape == x.shape and not out.requires_grad
    assert float((out - x).abs().max()) <= EPS + 1e-6
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, x)
    assert torch.equal(x, x0)
    assert all(m.training for m in modules_of(model))
    assert [p.requires_grad for net in nets for p in net.parameters()] == flags
    assert all(p.grad is None for net in nets for p in net.parameters())
    assert hook_state(model) == hooks
    assert atk.last_cost > 0


@pytest.mark.parametrize("name", NAMES)
def test_batch_independence_and_multi_budget(name):
    """A sample's result does not depend on the rest of its batch (Admix with a fixed partner pool), and
    a call with K budgets equals K separate calls."""
    model = model_for(name)
    x, y = data()
    atk = SMALL[name](model)
    if name == "Admix":
        atk.transforms[0].pool = data(5, seed=9)[0]
    full = atk(x, y)
    part = atk(x[2:5], y[2:5])
    torch.testing.assert_close(part, full[2:5], atol=1e-6, rtol=0)
    budgets = torch.tensor([0.05, EPS])
    multi = atk(x[:3], y[:3], eps=budgets)
    for k, e in enumerate(budgets.tolist()):
        torch.testing.assert_close(multi[k], atk(x[:3], y[:3], eps=e), atol=1e-6, rtol=0)


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("name", NAMES)
def test_hooks_and_patches_removed_when_the_call_raises(name):
    model = model_for(name)
    nets = model if isinstance(model, list) else [model]
    x, y = data(3)
    atk = SMALL[name](model)
    calls = {"n": 0}

    def explode(mod, inp, out):
        calls["n"] += 1
        if calls["n"] > 3:
            raise Boom("model failed mid-attack")

    handles = [net.head.register_forward_hook(explode) for net in nets]
    before = hook_state(model)
    for net in nets:
        net.eval()
    with pytest.raises(Boom):
        atk(x, y)
    assert hook_state(model) == before
    for h in handles:
        h.remove()
    assert all(not m.training for m in modules_of(model))          # the models' (eval) mode is back
    assert all(p.requires_grad for net in nets for p in net.parameters())


@pytest.fixture(scope="module")
def trained():
    """A SmallResNet trained on digits (about 97% test accuracy), and test images it classifies."""
    train, test = digits(seed=0)
    torch.manual_seed(0)
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = build("resnet", in_shape=(1, 8, 8), widths=(8, 16), depth=2)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(12):
            perm = torch.randperm(train.x.shape[0])
            for i in range(0, len(perm), 64):
                idx = perm[i:i + 64]
                opt.zero_grad()
                F.cross_entropy(net(train.x[idx]), train.y[idx]).backward()
                opt.step()
        nets.append(net.eval())
    return nets, test.x[:64], test.y[:64]


@pytest.mark.parametrize("name", NAMES)
def test_beats_clean_accuracy_on_trained_digits_model(trained, name):
    nets, x, y = trained
    model = nets if name == "SVRE" else nets[0]
    with torch.no_grad():
        clean = float((nets[0](x).argmax(1) == y).float().mean())
        adv = SMALL[name](model)(x, y)
        robust = float((nets[0](adv).argmax(1) == y).float().mean())
    assert clean > 0.8
    # BSR's 3 x 3 shuffles with rotations of 8 x 8 digits make the weakest white-box attack here
    assert robust < clean - (0.05 if name == "BSR" else 0.3), f"{name}: accuracy {clean:.2f} -> {robust:.2f}"


def test_layer_attacks_reject_other_architectures_with_a_clear_error():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    for cls in (A.SGM, A.LinBP):
        with pytest.raises(ValueError, match="needs a ResNet"):
            cls(mlp)
    for cls in (A.ILA, A.FIA, A.NAA):
        with pytest.raises(ValueError, match="layer="):
            cls(mlp)
    with pytest.raises(ValueError, match="no layer"):
        A.FIA(resnet(), layer="layer9")


def test_create_presets_compose_by_name():
    net = resnet()
    atk = A.create("mi-di-ti-si", net, eps=16 / 255)
    assert isinstance(atk, A.TransferAttack) and atk.mu == 1.0 and atk.ti_size == 15
    assert [t.name for t in atk.transforms] == ["si", "di"]
    assert A.create("ni-fgsm", net).nesterov
    assert isinstance(A.create("SI-NI-FGSM", net), A.SINIFGSM)
    assert A.create("vni", net).vt_neighbours == 20 and A.create("vni", net).nesterov
    assert isinstance(A.create("mi-pi", net), A.PIFGSM)
    assert [type(m).__name__ for m in A.create("sgm-linbp-di", net).modifiers] == ["SkipGradient", "LinearBackprop"]
    with pytest.raises(ValueError, match="unknown attack"):
        A.create("mi-foo", net)
    assert sorted(A.SUITE) == sorted(n.lower() for n in ["NIFGSM", "SINIFGSM", "TIFGSM", "VMIFGSM", "VNIFGSM",
                                                          "PIFGSM", "Admix", "SSA", "BSR", "SGM", "LinBP",
                                                          "ILA", "FIA", "NAA", "SVRE"])


@pytest.mark.parametrize("make", [lambda m, c: A.SINIFGSM(m, EPS, None, 3, m=3, copies_per_pass=c),
                                  lambda m, c: A.VMIFGSM(m, EPS, None, 3, N=3, copies_per_pass=c),
                                  lambda m, c: A.create("mi-admix-ssa", m, EPS, None, 2, si_m=2, admix_m2=2, ssa_n=2,
                                                        copies_per_pass=c)])
def test_copies_per_pass_does_not_change_the_result(make):
    model = resnet()
    x, y = data(4)
    one = make(model, 1)(x, y)
    torch.testing.assert_close(make(model, None)(x, y), one, atol=1e-5, rtol=0)
    torch.testing.assert_close(make(model, 2)(x, y), one, atol=1e-5, rtol=0)
