"""Representation attack (seed 004, docs/theory.md §1): ball, clipping, exact optimum on linear maps, purity."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pyadvt.attacks.representation import RepresentationAttack, random_start, representation_fn


class Linear(nn.Module):
    def __init__(self, G):
        super().__init__()
        self.G = nn.Parameter(G)

    def forward(self, x):
        return x.flatten(1) @ self.G.T


def small_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.BatchNorm1d(12), nn.Tanh(), nn.Linear(12, 5))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_stays_in_ball_and_box_and_is_pure(norm):
    net = small_net().train()
    x = torch.rand(6, 1, 4, 4)
    x_copy = x.clone()
    before = [p.detach().clone() for p in net.parameters()]
    eps = 0.1 if norm == "linf" else 0.5
    atk = RepresentationAttack(net, eps, steps=7, norm=norm)
    x_adv = atk(x)
    d = (x_adv - x).flatten(1)
    size = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    assert bool((size <= eps + 1e-5).all())
    assert bool(((x_adv >= 0) & (x_adv <= 1)).all())
    assert torch.equal(x, x_copy)
    assert net.training and net[2].training
    assert all(p.grad is None and p.requires_grad for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    with torch.no_grad():
        net.eval()
        assert torch.allclose((net(x_adv) - net(x)).norm(dim=1), atk.last_distance, atol=1e-5)


def test_l2_reaches_spectral_optimum_on_linear_map():
    torch.manual_seed(1)
    G = torch.randn(3, 16)
    x = torch.full((4, 1, 4, 4), 0.5)  # interior: the box does not bind for eps = 0.2
    eps = 0.2
    atk = RepresentationAttack(Linear(G), eps, steps=60, norm="l2", alpha=0.05)
    atk(x)
    exact = eps * torch.linalg.matrix_norm(G, 2)
    assert bool((atk.last_distance <= exact * (1 + 1e-5)).all())
    assert bool((atk.last_distance >= 0.98 * exact).all())


def test_linf_matches_brute_force_vertices():
    torch.manual_seed(2)
    G = torch.randn(2, 4)
    eps = 0.1
    x = torch.full((1, 1, 2, 2), 0.5)
    best = max((G @ (eps * torch.tensor(s, dtype=torch.float32))).norm().item()
               for s in itertools.product([-1.0, 1.0], repeat=4))
    atk = RepresentationAttack(Linear(G), eps, steps=20, restarts=4)
    atk(x)
    assert atk.last_distance.item() <= best + 1e-5
    assert atk.last_distance.item() >= 0.97 * best


def test_defaults_and_identity_map_pushes_every_pixel_to_the_boundary():
    atk = RepresentationAttack(Linear(torch.eye(4)), 0.08)
    assert atk.steps == 20 and atk.norm == "linf" and atk.random_start and atk.alpha is None
    x = torch.full((3, 4), 0.5)
    x_adv = atk(x)
    assert torch.allclose((x_adv - x).abs(), torch.full_like(x, 0.08), atol=1e-6)
    assert torch.allclose(atk.last_distance, torch.full((3,), 0.16), atol=1e-5)
    # without a random start the squared shift has a zero gradient at delta = 0: no move
    still = RepresentationAttack(Linear(torch.eye(4)), 0.08, random_start=False)
    assert torch.equal(still(x), x)


def test_batch_independence():
    net = small_net()
    x = torch.rand(5, 1, 4, 4)
    atk = RepresentationAttack(net, 0.1, steps=4)
    full = atk(x)
    d_full = atk.last_distance.clone()
    for i in range(5):
        one = atk(x[i:i + 1])
        assert torch.allclose(one, full[i:i + 1], atol=1e-6)
        assert torch.allclose(atk.last_distance, d_full[i:i + 1], atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["linf", "l2"]))
def test_random_start_uniform_in_ball(seed, norm):
    x = torch.rand(8, 10)
    eps = torch.full((8,), 0.3)
    s = random_start(x, eps, norm, seed)
    d = (s - x)
    size = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    assert bool((size <= 0.3 + 1e-6).all()) and bool(((s >= 0) & (s <= 1)).all())
    assert torch.equal(random_start(x[3:], eps[3:], norm, seed), s[3:])


def test_legacy_fgsm_one_signed_step_of_eps():
    torch.manual_seed(3)
    G = torch.randn(3, 6)
    x = torch.full((2, 6), 0.5)
    atk = RepresentationAttack(Linear(G), 0.05, legacy_fgsm=True)
    x_adv = atk(x)
    assert torch.allclose((x_adv - x).abs(), torch.full_like(x, 0.05), atol=1e-6)
    # the multiplicative target c*g(x) makes the step follow sign(G^T G x (1 - c))
    expected = 0.5 + 0.05 * torch.sign((1 - 1.1) * (x @ G.T) @ G)
    assert torch.allclose(x_adv, expected, atol=1e-6)
    assert bool((atk.last_distance > 0).all())


def test_bad_arguments():
    net = Linear(torch.eye(4))
    with pytest.raises(ValueError, match="norm"):
        RepresentationAttack(net, 0.1, norm="l1")
    with pytest.raises(ValueError, match="eps"):
        RepresentationAttack(net, -0.1)
    with pytest.raises(ValueError, match="steps"):
        RepresentationAttack(net, 0.1, steps=0)
    with pytest.raises(TypeError, match="x"):
        RepresentationAttack(net, 0.1)(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="features"):
        representation_fn(net, features=True)
    with pytest.raises(TypeError, match="model"):
        representation_fn(lambda t: t)


def test_non_finite_gradients_are_masked_and_reported():
    class Sqrt(nn.Module):
        def forward(self, x):
            return x.flatten(1).sqrt()  # infinite gradient at exactly 0

    x = torch.rand(3, 4) * 0.5 + 0.25
    x[1] = 0.0
    atk = RepresentationAttack(Sqrt(), 0.1, steps=3, random_start=False, legacy_fgsm=True)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        x_adv = atk(x)
    assert atk.undefined == 1
    assert torch.equal(x_adv[1], x[1]) and bool(torch.isfinite(x_adv).all())
    assert not torch.equal(x_adv[0], x[0])


def test_a_non_numeric_eps_is_a_clear_type_error():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    for bad in ("a", None, [0.1]):
        with pytest.raises(TypeError, match="'eps'"):
            RepresentationAttack(net, bad)
    assert RepresentationAttack(net, torch.tensor(0.1)).eps == pytest.approx(0.1)
