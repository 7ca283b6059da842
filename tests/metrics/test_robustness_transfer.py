"""Seed 004's measurement (docs/theory.md §5): the robustness-transfer record and the AS score, and the
split models and loss adversary that tests/bounds/test_seed004.py (Lemma 1, Theorems 1 and 2) reuses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyadvt.metrics.robustness_transfer import as_score, evaluate_robustness_transfer, per_sample_loss
from pyadvt.attacks.representation import RepresentationAttack
from pyadvt.ops.pgd import pgd_step_


class Split(nn.Module):
    """f = head(g(x)); g a small MLP or a linear map G."""

    def __init__(self, g: nn.Module, d: int, C: int):
        super().__init__()
        self.g, self.head = g, nn.Linear(d, C)

    def features(self, x):
        return self.g(x.flatten(1))

    def forward(self, x):
        return self.head(self.features(x))


def loss_pgd(model, eps, norm, steps=10, loss="ce"):
    """Stand-in loss adversary (plain PGD on per_sample_loss), deterministic start at x."""

    def attack(x, y):
        x0 = x.detach()
        x_t = (x0 + 1e-3 * torch.randn_like(x0)).clamp(0, 1)
        x_t = x0 + (x_t - x0).clamp(-eps, eps) if norm == "linf" else x_t
        for _ in range(steps):
            x_t.requires_grad_(True)
            with torch.enable_grad():
                val = per_sample_loss(model(x_t), y, loss).sum()
                grad, = torch.autograd.grad(val, x_t)
            x_t = x_t.detach()
            pgd_step_(x_t, grad, x0, eps, 2.5 * eps / steps, norm=norm)
        return x_t

    return attack


def random_model(seed, d=6, C=4, n_in=8, linear=False, scale=1.0):
    torch.manual_seed(seed)
    g = nn.Linear(n_in, d, bias=False) if linear else nn.Sequential(nn.Linear(n_in, 10), nn.Tanh(), nn.Linear(10, d))
    m = Split(g, d, C)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(scale)
    return m


def linear_setup(seed, n_in=6, d=3, C=3, N=40):
    model = random_model(seed, d=d, C=C, n_in=n_in, linear=True, scale=1.5)
    x = 0.3 + 0.4 * torch.rand(N, n_in)
    with torch.no_grad():
        y = model(x).argmax(1)           # clean-correct points, so fulfilment is about the margin
    y[: N // 5] = (y[: N // 5] + 1) % C   # and a few misclassified ones (never fulfilled)
    return model, x, y


def test_theorem2_with_attack_estimated_sensitivity_on_linear_model():
    """The attack-estimated sensitivity is close to the exact max for linear g and L2."""
    model, x, y = linear_setup(5)
    eps = 0.1
    ratk = RepresentationAttack(model, eps, steps=100, alpha=eps / 4, norm="l2", features=True)
    rec = evaluate_robustness_transfer(model, x, y, eps, norm="l2", rep_attack=ratk,
                                       attack=loss_pgd(model, eps, "l2", 5))
    exact = eps * torch.linalg.matrix_norm(model.g.weight.detach(), 2).item()
    assert float(rec.sensitivity.max()) <= exact * (1 + 1e-5)
    assert float(rec.sensitivity.min()) >= 0.95 * exact
    assert rec.as_score().score == pytest.approx(float(rec.rep_shift.mean()))


def test_as_score_function_and_batch_independence():
    model = random_model(3)
    x = torch.rand(10, 8)
    full = as_score(model, x, 0.1, steps=5, batch_size=10)
    split = as_score(model, x, 0.1, steps=5, batch_size=3)
    assert torch.allclose(full.per_sample, split.per_sample, atol=1e-5)
    assert full.summary()["n"] == 10 and full.score > 0


def test_input_validation():
    model = random_model(0)
    with pytest.raises(ValueError, match="same"):
        evaluate_robustness_transfer(model, torch.rand(3, 8), torch.zeros(2, dtype=torch.long), 0.1)
    with pytest.raises(TypeError, match="integer"):
        evaluate_robustness_transfer(model, torch.rand(3, 8), torch.zeros(3), 0.1)
    with pytest.raises(ValueError, match="loss"):
        evaluate_robustness_transfer(model, torch.rand(3, 8), torch.zeros(3, dtype=torch.long), 0.1, loss="hinge")
    with pytest.raises(ValueError, match="features"):
        evaluate_robustness_transfer(nn.Linear(8, 2), torch.rand(3, 8), torch.zeros(3, dtype=torch.long), 0.1)
