"""Eq. (2) empirical adversarial transferability and the authors'-code legacy_alpha scores."""

import pytest
import torch
import torch.nn.functional as F

from pyadvt.attacks import PGD
from pyadvt.metrics import empirical_transferability, legacy_alpha


def _nets():
    torch.manual_seed(0)
    S = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    T = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    return S, T


def test_eq2_attacks_the_source_prediction_and_is_batch_independent():
    S, T = _nets()
    x, y = torch.rand(10, 1, 4, 4), torch.randint(0, 3, (10,))
    xc = x.clone()
    S.train()
    r = empirical_transferability(S, T, x, y, eps=(0.05, 0.2), steps=4, seed=3)
    assert S.training and torch.equal(x, xc)
    # manual: PGD on S against argmax S(x), evaluated by T's cross-entropy with y
    S.eval()
    own = S(x).argmax(1)
    for k, e in enumerate((0.05, 0.2)):
        x_adv = PGD(S, eps=e, alpha=2.5 * e / 4, steps=4, seed=3)(x, own)
        ref = F.cross_entropy(T(x_adv), y, reduction="none")
        torch.testing.assert_close(r.loss[k], ref.detach(), rtol=1e-5, atol=1e-6)
        assert float((x_adv - x).abs().max()) <= e + 1e-6
    # attacking the true labels instead of the source's prediction gives other examples
    x_lab = PGD(S, eps=0.2, alpha=0.125, steps=4, seed=3)(x, y % 4 if bool((y != own).any()) else (own + 1) % 4)
    assert not torch.allclose(F.cross_entropy(T(x_lab), y, reduction="none").detach(), r.loss[1])
    parts = empirical_transferability(S, T, x, y, eps=(0.05, 0.2), steps=4, seed=3, batch_size=3)
    torch.testing.assert_close(parts.loss, r.loss)
    s = r.summary()
    assert len(s["per_eps"]) == 2 and 0 <= s["per_eps"][1]["target_accuracy"] <= 1
    # a larger budget hurts the source more: its own prediction flips at least as often
    assert s["per_eps"][1]["source_flip_rate"] >= s["per_eps"][0]["source_flip_rate"]


def test_eq2_bad_arguments():
    S, T = _nets()
    x = torch.rand(4, 1, 4, 4)
    with pytest.raises(ValueError, match="'y'"):
        empirical_transferability(S, T, x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="eps"):
        empirical_transferability(S, T, x, torch.zeros(4, dtype=torch.long), eps=(-0.1,))
    with pytest.raises(TypeError, match="eps"):
        empirical_transferability(S, T, x, torch.zeros(4, dtype=torch.long), eps="big")
    r = empirical_transferability(S, T, x, torch.zeros(4, dtype=torch.long), eps=torch.tensor([0.1, 0.2]), steps=1)
    assert r.loss.shape == (2, 4)


def test_legacy_alpha_identical_models_and_manual_loop():
    S, T = _nets()
    T2 = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    x = torch.rand(12, 1, 4, 4)
    y = S(x).argmax(1).detach()
    same = legacy_alpha(S, S, x, y, eps=0.1, steps=3)
    assert same.alpha1 == pytest.approx(1.0) and same.combined == pytest.approx(same.alpha2)
    assert 0 < same.alpha2 <= 1 + 1e-9
    r = legacy_alpha(S, T2, x, y, eps=0.1, steps=3, seed=1)
    # manual per-sample computation (the scripts' batch-size-1 loop)
    atk_a = PGD(S, eps=0.1, alpha=0.1 / 3, steps=3, seed=1)
    atk_m = PGD(T2, eps=0.1, alpha=0.1 / 3, steps=3, seed=1)
    ratios, outer = [], 0
    for i in range(12):
        xi = x[i:i + 1]
        xa, xm = atk_a(xi, S(xi).argmax(1)), atk_m(xi, T2(xi).argmax(1))
        da = (S(xi) - S(xa)).double().flatten()
        dma, dmm = (T2(xi) - T2(xa)).double().flatten(), (T2(xi) - T2(xm)).double().flatten()
        ratios.append(float(dma.norm() / dmm.norm()))
        outer = outer + torch.outer(da / da.norm(), dma / dma.norm())
    assert r.n_used == 12
    assert r.alpha1 == pytest.approx(sum(ratios) / 12, rel=1e-5)
    assert r.alpha2 == pytest.approx(float((outer.detach() / 12).square().sum()), rel=1e-5)
    assert r.summary()["n_used"] == 12
