"""Guarantees shared by every attack (docs/theory.md §0-§1): ball, range, no mutation, modes, no parameter
gradients, batch-independence, random starts, targeted mode, restarts, validation, ensembles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch import nn

from pyadvt.attacks import DI, DIM, FGSM, MIFGSM, PGD, Ensemble


def tiny_cnn(seed: int = 0, classes: int = 10) -> nn.Module:
    """Conv-BN-ReLU-Dropout-Linear on [B, 1, 8, 8]; BN running stats made non-trivial so that eval and
    train modes give different outputs."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(0.3),
                        nn.Flatten(), nn.Linear(6 * 64, classes))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


def batch(n: int = 16, seed: int = 1, classes: int = 10):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, classes, (n,), generator=g)


ATTACKS = {
    "pgd-linf": lambda m: PGD(m, eps=0.1, steps=4),
    "pgd-l2": lambda m: PGD(m, eps=0.5, steps=4, norm="l2"),
    "pgd-restarts": lambda m: PGD(m, eps=0.1, steps=3, restarts=2),
    "fgsm": lambda m: FGSM(m, eps=0.1),
    "mifgsm": lambda m: MIFGSM(m, eps=0.1, steps=4),
    "di": lambda m: DI(m, eps=0.1, steps=4),
    "dim": lambda m: DIM(m, eps=0.1, steps=4, random_start=True),
    "pgd-targeted": lambda m: PGD(m, eps=0.1, steps=4, targeted=True),
}


def within_ball(x_adv, x, eps, norm):
    d = (x_adv - x).reshape(x.shape[0], -1)
    size = d.abs().amax(dim=1) if norm == "linf" else d.norm(dim=1)
    return bool((size <= eps * (1 + 1e-5) + 1e-6).all())


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_ball_range_no_mutation_modes_no_param_grads(name):
    net = tiny_cnn().train()
    for p in net[0].parameters():
        p.requires_grad_(False)          # a mix of flags must come back as it was
    flags = [p.requires_grad for p in net.parameters()]
    x, y = batch()
    x0, y0 = x.clone(), y.clone()
    atk = ATTACKS[name](net)
    x_adv = atk(x, y)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert within_ball(x_adv, x, atk.eps, atk.norm)
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert all(m.training for m in net.modules()), "train mode must be restored"
    assert [p.requires_grad for p in net.parameters()] == flags
    assert all(p.grad is None for p in net.parameters())
    assert not x_adv.requires_grad
    assert not torch.equal(x_adv, x), "the attack must move the input"


def test_attack_runs_model_in_eval_mode():
    net = tiny_cnn()
    seen = []
    net.register_forward_hook(lambda mod, inp, out: seen.append(mod.training))
    net.train()
    x, y = batch(4)
    PGD(net, eps=0.1, steps=2)(x, y)
    assert seen and not any(seen)
    # eval-mode attack on a train-mode model equals the attack on the eval-mode model (BN running stats)
    a = PGD(net.train(), eps=0.1, steps=3, random_start=False)(x, y)
    b = PGD(net.eval(), eps=0.1, steps=3, random_start=False)(x, y)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["pgd-linf", "pgd-l2", "pgd-restarts", "dim", "pgd-targeted"])
def test_batch_independence_with_random_draws(name):
    net = tiny_cnn()
    x, y = batch(12)
    atk = ATTACKS[name](net)
    full = atk(x, y)
    perm = torch.randperm(12)
    shuffled = atk(x[perm], y[perm])
    torch.testing.assert_close(shuffled, full[perm], atol=1e-6, rtol=0)
    single = torch.cat([atk(x[i:i + 1], y[i:i + 1]) for i in (0, 5, 11)])
    torch.testing.assert_close(single, full[[0, 5, 11]], atol=1e-6, rtol=0)


def test_seed_and_sample_ids_change_the_draws():
    net = tiny_cnn()
    x, y = batch(6)
    base = PGD(net, eps=0.1, steps=1, alpha=1e-3)(x, y)
    assert not torch.equal(base, PGD(net, eps=0.1, steps=1, alpha=1e-3, seed=1)(x, y))
    ids = torch.arange(6)
    assert torch.equal(PGD(net, eps=0.1, steps=1, alpha=1e-3)(x, y, sample_ids=ids),
                       PGD(net, eps=0.1, steps=1, alpha=1e-3)(x.flip(0), y.flip(0), sample_ids=ids.flip(0)).flip(0))


def zero_grad_net(n_in: int = 4) -> nn.Module:
    """Constant logits: the input gradient is exactly zero, so an attack returns its random start."""
    lin = nn.Linear(n_in, 3)
    with torch.no_grad():
        lin.weight.zero_()
    return nn.Sequential(nn.Flatten(), lin)


def test_linf_random_start_uniform_in_box():
    x = torch.full((3000, 1, 2, 2), 0.5)
    y = torch.zeros(3000, dtype=torch.long)
    start = PGD(zero_grad_net(), eps=0.2, steps=1)(x, y, sample_ids=torch.arange(3000))
    u = ((start - x) / 0.2).flatten().numpy()
    assert stats.kstest(u, stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3


def test_l2_random_start_uniform_in_ball():
    """Radius law P(||delta|| <= t eps) = t^n (uniform in the n-ball), direction isotropic; torchattacks'
    PGDL2 start (radius eps * U) follows a different law, which the same test rejects."""
    n, N = 4, 3000
    x = torch.full((N, 1, 2, 2), 0.5)
    y = torch.zeros(N, dtype=torch.long)
    start = PGD(zero_grad_net(), eps=0.3, steps=1, norm="l2")(x, y, sample_ids=torch.arange(N))
    d = (start - x).reshape(N, -1)
    t = (d.norm(dim=1) / 0.3).numpy()
    assert t.max() <= 1 + 1e-6
    assert stats.kstest(t ** n, "uniform").pvalue > 1e-3
    assert stats.kstest(t, "uniform").pvalue < 1e-6          # the torchattacks law is not this one
    assert np.abs(d.mean(dim=0).numpy()).max() < 0.02


@settings(max_examples=15, deadline=None)
@given(eps=st.floats(0.01, 2.0), ratio=st.floats(0.05, 1.5), steps=st.integers(1, 4),
       start=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_l2_ball_property(eps, ratio, steps, start, seed):
    net = tiny_cnn()
    x, y = batch(6, seed=seed % 1000)
    x_adv = PGD(net, eps=eps, alpha=ratio * eps, steps=steps, norm="l2", random_start=start, seed=seed)(x, y)
    assert within_ball(x_adv, x, eps, "l2")
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1


def ce(net, x, y):
    with torch.no_grad():
        return F.cross_entropy(net(x), y, reduction="none")


def test_targeted_lowers_target_loss_and_default_target():
    net = tiny_cnn()
    x, y = batch(32)
    target = (y + 1) % 10
    atk = PGD(net, eps=0.2, steps=10, targeted=True)
    x_adv = atk(x, y)
    before, after = ce(net, x, target), ce(net, x_adv, target)
    assert bool((after < before).all())
    assert float(net(x_adv).argmax(1).eq(target).float().mean()) > 0.5
    torch.testing.assert_close(x_adv, atk(x, y, target_labels=target), atol=0, rtol=0)
    other = (y + 3) % 10
    x_other = atk(x, y, target_labels=other)
    assert bool((ce(net, x_other, other) < ce(net, x, other)).all())


def test_untargeted_raises_true_label_loss():
    net = tiny_cnn()
    x, y = batch(32)
    for atk in (PGD(net, eps=0.1, steps=5), FGSM(net, eps=0.1), MIFGSM(net, eps=0.1), DIM(net, eps=0.1)):
        assert bool((ce(net, atk(x, y), y) > ce(net, x, y)).all()), atk


def test_restarts_never_worse_than_single_run():
    net = tiny_cnn()
    x, _ = batch(48, seed=3)
    with torch.no_grad():
        y = net(x).argmax(1)            # every sample starts correctly classified
    # small steps from the random start, so that restarts explore different points
    single = PGD(net, eps=0.04, alpha=0.008, steps=2, restarts=1)
    multi = PGD(net, eps=0.04, alpha=0.008, steps=2, restarts=4)
    a, b = single(x, y), multi(x, y)
    with torch.no_grad():
        pa, pb = net(a).argmax(1), net(b).argmax(1)
    succ_a, succ_b = pa != y, pb != y
    assert bool((succ_b | ~succ_a).all()), "a sample fooled by one run must stay fooled"
    keep = ~succ_b
    assert bool((ce(net, b, y)[keep] >= ce(net, a, y)[keep] - 1e-6).all())
    assert int(succ_b.sum()) > int(succ_a.sum()), "restarts should fool extra samples here"
    assert within_ball(b, x, 0.04, "linf")


def test_custom_loss_hook_is_used():
    net = tiny_cnn()
    x, y = batch(8)

    def neg_ce(logits, labels):
        return -F.cross_entropy(logits, labels, reduction="none")

    a = PGD(net, eps=0.1, steps=3, loss=neg_ce)(x, y)
    b = PGD(net, eps=0.1, steps=3, targeted=True)(x, y, target_labels=y)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(ValueError, match="loss"):
        PGD(net, eps=0.1, steps=1, loss=lambda logits, labels: logits.sum())(x, y)


def test_ensemble_mean_logits_and_list_models():
    nets = [tiny_cnn(0), tiny_cnn(1)]
    x, y = batch(8)
    ens = Ensemble(nets)
    torch.testing.assert_close(ens(x), (nets[0](x) + nets[1](x)) / 2)
    a = PGD(nets, eps=0.1, steps=3)(x, y)
    b = PGD(ens, eps=0.1, steps=3)(x, y)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(ValueError, match="same logits shape"):
        Ensemble([tiny_cnn(0, classes=10), tiny_cnn(0, classes=5)])(x)


def test_non_finite_gradient_rows_are_skipped_with_warning():
    class Poisoned(nn.Module):
        def forward(self, x):
            # d sqrt(u)/du is infinite at u = 0: only sample 0 has that pixel at 0
            return x.flatten(1)[:, :3] * 2.0 + torch.sqrt(x.flatten(1)[:, :1])

    x = torch.rand(3, 1, 2, 2) * 0.8 + 0.1
    x[0, 0, 0, 0] = 0.0
    y = torch.tensor([0, 1, 2])
    with pytest.warns(RuntimeWarning, match="non-finite"):
        out = PGD(Poisoned(), eps=0.1, steps=2, random_start=False)(x, y)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0], x[0])
    assert not torch.equal(out[1], x[1])


@pytest.mark.parametrize("bad, match", [
    (lambda x, y: (x * 2, y), r"\[0, 1\]"),
    (lambda x, y: (x.long(), y), "floating-point"),
    (lambda x, y: (x.numpy(), y), "torch.Tensor"),
    (lambda x, y: (x[:0], y[:0]), "non-empty batch"),
    (lambda x, y: (x[:, 0, 0, 0], y), "non-empty batch"),
    (lambda x, y: (x, y.float()), "integer"),
    (lambda x, y: (x, y[:-1]), "shape"),
    (lambda x, y: (x, y + 10), r"\[0, 10\)"),
    (lambda x, y: (x, -y - 1), r"\[0, 10\)"),
])
def test_input_validation(bad, match):
    net = tiny_cnn()
    x, y = batch(4)
    bx, by = bad(x, y)
    with pytest.raises((ValueError, TypeError), match=match):
        PGD(net, eps=0.1, steps=1)(bx, by)


def test_argument_validation():
    net = tiny_cnn()
    x, y = batch(4)
    with pytest.raises(ValueError, match="targeted=False"):
        PGD(net, eps=0.1)(x, y, target_labels=y)
    with pytest.raises(ValueError, match="target"):
        PGD(net, eps=0.1, targeted=True)(x, y, target_labels=y + 20)
    with pytest.raises(ValueError, match="eps"):
        PGD(net, eps=-0.1)
    with pytest.raises(ValueError, match="eps"):
        PGD(net, eps=0.1)(x, y, eps=-0.2)
    with pytest.raises(ValueError, match="alpha"):
        PGD(net, eps=0.1)(x, y, eps=torch.tensor([0.1, 0.2]), alpha=torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="steps"):
        PGD(net, eps=0.1, steps=0)
    with pytest.raises(ValueError, match="restarts"):
        PGD(net, eps=0.1, restarts=0)
    with pytest.raises(ValueError, match="norm"):
        PGD(net, eps=0.1, norm="l1")
    with pytest.raises(TypeError, match="model"):
        PGD("net", eps=0.1)
    with pytest.raises(ValueError, match="device"):
        PGD(net.to("meta"), eps=0.1)(x, y)


def test_non_contiguous_and_channels_last_inputs():
    net = tiny_cnn()
    x, y = batch(8)
    for atk in (PGD(net, eps=0.1, steps=3), MIFGSM(net, eps=0.1, steps=3), DI(net, eps=0.1, steps=3)):
        ref = atk(x, y)
        strided = x.transpose(2, 3).contiguous().transpose(2, 3)
        assert not strided.is_contiguous()
        torch.testing.assert_close(atk(strided, y), ref, atol=0, rtol=0)
        torch.testing.assert_close(atk(x.contiguous(memory_format=torch.channels_last), y), ref, atol=0, rtol=0)


def test_default_step_sizes():
    net = tiny_cnn()
    assert PGD(net, eps=0.1, steps=4).alpha == pytest.approx(2.5 * 0.1 / 4)
    assert MIFGSM(net, eps=0.1, steps=4).alpha == pytest.approx(0.1 / 4)
    assert DIM(net, eps=0.1, steps=5).alpha == pytest.approx(0.1 / 5)
    assert FGSM(net, eps=0.1).alpha == 0.1 and FGSM(net, eps=0.1).steps == 1
    with pytest.raises(TypeError, match="steps"):
        PGD(net, eps=0.1, steps=2.5)
    with pytest.raises(TypeError, match="eps"):
        PGD(net, eps="big")


@pytest.mark.needs_cuda
@pytest.mark.parametrize("name", ["pgd-linf", "pgd-l2", "dim", "pgd-restarts"])
def test_cuda_matches_cpu(name):
    net = tiny_cnn()
    x, y = batch(12)
    cpu = ATTACKS[name](net)(x, y, eps=torch.tensor([0.05, 0.1]))
    gpu = ATTACKS[name](net.cuda())(x.cuda(), y.cuda(), eps=torch.tensor([0.05, 0.1]))
    # same per-sample draws on both devices; float differences in the model may flip a rare sign
    # (or a restart choice), so allow a couple of the 24 (budget, sample) rows to differ
    rows_differ = (gpu.cpu() - cpu).abs().flatten(2).gt(1e-4).any(dim=2)
    assert int(rows_differ.sum()) <= 2
