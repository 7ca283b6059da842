"""Eq. (2) empirical adversarial transferability and the authors'-code legacy_transferability scores."""

import pytest
import torch
import torch.nn.functional as F

from pyadvt.attacks import PGD
from pyadvt.metrics import empirical_transferability, legacy_transferability


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
    same = legacy_transferability(S, S, x, y, eps=0.1, steps=3)
    assert same.alpha1 == pytest.approx(1.0) and same.combined == pytest.approx(same.alpha2)
    assert 0 < same.alpha2 <= 1 + 1e-9
    r = legacy_transferability(S, T2, x, y, eps=0.1, steps=3, seed=1)
    # manual per-sample computation (the scripts' batch-size-1 loop)
    atk_a = PGD(S, eps=0.1, alpha=0.1 / 3, steps=3, seed=1)
    atk_m = PGD(T2, eps=0.1, alpha=0.1 / 3, steps=3, seed=1)
    ratios, outer = [], 0
    for i in range(12):
        xi = x[i:i + 1]
        xa, xm = atk_a(xi, S(xi).argmax(1)), atk_m(xi, T2(xi).argmax(1))
        da = (S(xi) - S(xa)).double().flatten()
        dma, dmm = (T2(xi) - T2(xa)).double().flatten(), (T2(xi) - T2(xm)).double().flatten()
        ratios.append(float((dma.norm() / dmm.norm()).detach()))
        outer = outer + torch.outer(da / da.norm(), dma / dma.norm())
    assert r.n_used == 12
    assert r.alpha1 == pytest.approx(sum(ratios) / 12, rel=1e-5)
    assert r.alpha2 == pytest.approx(float((outer.detach() / 12).square().sum()), rel=1e-5)
    assert r.summary()["n_used"] == 12


def test_eq2_clean_correct_variant_averages_only_target_correct_samples():
    # eq. (2) restricted as in the authors' scripts: mean target loss over the samples the target
    # classifies correctly on clean inputs; hand-made result with known numbers first
    from pyadvt.metrics.empirical_transfer import EmpiricalTransferabilityResult

    loss = torch.tensor([[1.0, 2.0, 4.0, 8.0], [3.0, 5.0, 7.0, 9.0]])
    cc = torch.tensor([True, False, True, False])
    r = EmpiricalTransferabilityResult(eps=torch.tensor([0.1, 0.2], dtype=torch.float64), loss=loss,
                                correct=torch.zeros(2, 4, dtype=torch.bool), clean_loss=torch.zeros(4),
                                clean_correct=cc, source_flipped=torch.zeros(2, 4, dtype=torch.bool))
    torch.testing.assert_close(r.transfer_loss(), torch.tensor([15 / 4, 24 / 4], dtype=torch.float64))
    torch.testing.assert_close(r.transfer_loss(only_target_correct=True),
                               torch.tensor([(1 + 4) / 2, (3 + 7) / 2], dtype=torch.float64))
    assert r.summary()["per_eps"][1]["target_loss_clean_correct"] == pytest.approx(5.0)
    # on real models: the mask is the target's clean correctness, recomputed here by hand
    S, T = _nets()
    x, y = torch.rand(16, 1, 4, 4), torch.randint(0, 3, (16,))
    res = empirical_transferability(S, T, x, y, eps=(0.1,), steps=3, seed=0)
    with torch.no_grad():
        mask = T(x).argmax(1) == y
    assert 0 < int(mask.sum()) < 16  # both kinds present, so the restriction matters
    assert torch.equal(res.clean_correct, mask)
    expect = float(res.loss[0][mask].double().mean())
    assert float(res.transfer_loss(only_target_correct=True)[0]) == pytest.approx(expect, rel=1e-12)
    assert expect != pytest.approx(float(res.loss[0].double().mean()), rel=1e-3)


def test_eq2_examples_push_the_source_off_its_own_prediction_by_hand():
    # eq. (2): x_adv maximises loss_S(f_S(x_t), f_S(x)), i.e. cross-entropy w.r.t. argmax f_S(x), written
    # here as a plain PGD loop (random start off) - not through pyadvt's PGD
    S, T = _nets()
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    eps, steps = 0.2, 4
    alpha = 2.5 * eps / steps
    with torch.no_grad():
        own = S(x).argmax(1)
    xa = x.clone()
    for _ in range(steps):
        xa.requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(S(xa), own, reduction="sum"), xa)
        xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
    with torch.no_grad():
        ref = F.cross_entropy(T(xa), y, reduction="none")
    r = empirical_transferability(S, T, x, y, eps=eps, steps=steps, random_start=False)
    torch.testing.assert_close(r.loss[0], ref, rtol=1e-5, atol=1e-6)


def test_legacy_alpha_uses_only_samples_the_attacker_classifies_correctly():
    # authors' code (adv2know.py): alpha1 = mean ||M(x)-M(x_A)|| / ||M(x)-M(x_M)||,
    # alpha2 = ||mean unit(A(x)-A(x_A)) unit(M(x)-M(x_A))^T||_F^2, both over attacker-correct samples only
    S, _ = _nets()
    M = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 5))
    x = torch.rand(12, 1, 4, 4)
    with torch.no_grad():
        pred = S(x).argmax(1)
    y = pred.clone()
    wrong = torch.tensor([1, 4, 5, 9, 10])
    y[wrong] = (pred[wrong] + 1) % 4           # the attacker misclassifies these five
    r = legacy_transferability(S, M, x, y, eps=0.1, steps=3, seed=2)
    atk_a = PGD(S, eps=0.1, alpha=0.1 / 3, steps=3, seed=2)
    atk_m = PGD(M, eps=0.1, alpha=0.1 / 3, steps=3, seed=2)
    keep = [i for i in range(12) if int(y[i]) == int(pred[i])]
    assert len(keep) == 7
    ratios, outer = [], torch.zeros(4, 5, dtype=torch.float64)
    with torch.no_grad():
        for i in keep:
            xi = x[i:i + 1]
            xa, xm = atk_a(xi, S(xi).argmax(1)), atk_m(xi, M(xi).argmax(1))
            da = (S(xi) - S(xa)).double().flatten()
            dma, dmm = (M(xi) - M(xa)).double().flatten(), (M(xi) - M(xm)).double().flatten()
            ratios.append(float(dma.norm() / dmm.norm()))
            outer += torch.outer(da / da.norm(), dma / dma.norm())
    assert r.n_used == 7 and r.used.tolist() == [i in keep for i in range(12)]
    assert r.alpha1 == pytest.approx(sum(ratios) / 7, rel=1e-5)
    assert r.alpha2 == pytest.approx(float((outer / 7).square().sum()), rel=1e-5)
