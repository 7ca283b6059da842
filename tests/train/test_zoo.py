"""Surrogate training zoo (docs/theory.md §4): regularisers, SAM, augmentations, AT, LGV."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pyadvt.data import TensorData
from pyadvt.train import fit
from pyadvt.train.adversarial import AdversarialLoss
from pyadvt.train.augment import Compose, CutMix, Cutout, LabelSmoothing, Mixup
from pyadvt.train.lgv import collect_lgv
from pyadvt.train.regularizers import ExplicitGradientRegularizer, InputGradientRegularizer, JacobianRegularizer
from pyadvt.train.sam import SAM


def tiny(act=nn.Tanh, C=3, n_in=6, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 5), act(), nn.Linear(5, C)).double()


def batch(B=4, C=3, seed=0, soft=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, 1, 2, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (B,), generator=g)
    if soft:
        y = torch.softmax(torch.randn(B, C, generator=g, dtype=torch.float64), 1)
    return x, y


def per_sample_input_grad(model, x, y):
    out = []
    for i in range(x.shape[0]):
        xi = x[i:i + 1].clone().requires_grad_(True)
        yi = y[i:i + 1]
        li = F.cross_entropy(model(xi), yi)
        out.append(torch.autograd.grad(li, xi)[0].flatten())
    return torch.stack(out)


def check_param_gradient_fd(model, loss_fn, x, y, n_dirs=4, h=1e-6):
    """Backward-mode parameter gradient vs central finite differences along random directions (float64)."""
    params = list(model.parameters())
    model.zero_grad()
    loss_fn(model, x, y).backward()
    grads = [p.grad.clone() for p in params]
    g = torch.Generator().manual_seed(1)
    for _ in range(n_dirs):
        dirs = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
        def shift(scale):
            with torch.no_grad():
                for p, d in zip(params, dirs):
                    p.add_(scale * h * d)
        shift(1)
        up = float(loss_fn(model, x, y))
        shift(-2)
        down = float(loss_fn(model, x, y))
        shift(1)
        fd = (up - down) / (2 * h)
        an = float(sum((gr * d).sum() for gr, d in zip(grads, dirs)))
        assert math.isclose(fd, an, rel_tol=1e-5, abs_tol=1e-8), (fd, an)


# ---------------------------------------------------------------- regularisers

@pytest.mark.parametrize("soft", [False, True])
def test_ir_value_matches_direct_computation(soft):
    model, (x, y) = tiny(), batch(soft=soft)
    lam = 0.7
    got = InputGradientRegularizer(lam)(model, x, y)
    losses = torch.stack([-(F.one_hot(y[i], 3).double() if not soft else y[i]) @ F.log_softmax(model(x[i:i + 1]), 1)[0]
                          for i in range(4)])
    grads = []
    for i in range(4):
        xi = x[i:i + 1].clone().requires_grad_(True)
        yi = y[i] if soft else F.one_hot(y[i], 3).double()
        li = -(yi * F.log_softmax(model(xi), 1)[0]).sum()
        grads.append(torch.autograd.grad(li, xi)[0].norm())
    expect = (losses + lam * torch.stack(grads)).mean()
    torch.testing.assert_close(got, expect)
    legacy = InputGradientRegularizer(lam, legacy_batch_norm=True)(model, x, y)
    torch.testing.assert_close(legacy, losses.mean() + lam * torch.stack(grads).pow(2).sum().sqrt() / 4)


@pytest.mark.parametrize("make", [
    lambda: InputGradientRegularizer(0.5), lambda: InputGradientRegularizer(0.5, legacy_batch_norm=True),
    lambda: ExplicitGradientRegularizer(0.3),
    lambda: _FixedJR(0.4, n_proj=2, seed=5), lambda: _FixedJR(0.4, n_proj=2, seed=5, legacy_squared=True)])
def test_regulariser_parameter_gradients_match_finite_differences(make):
    model, (x, y) = tiny(act=nn.Softplus), batch()
    check_param_gradient_fd(model, make(), x, y)


class _FixedJR(JacobianRegularizer):
    """JR with the same projections on every call (finite differences need a deterministic loss)."""

    def __call__(self, model, x, y):
        self.generator.manual_seed(5)
        return super().__call__(model, x, y)


def test_jr_value_matches_dense_jacobian():
    model, (x, y) = tiny(), batch()
    jr = JacobianRegularizer(0.4, n_proj=3, seed=1)
    V = JacobianRegularizer(0.4, n_proj=3, seed=1).projections(4, 3)  # [K, B, C]
    J = torch.stack([torch.func.jacrev(lambda z: model(z.unsqueeze(0))[0])(x[i]).reshape(3, -1) for i in range(4)])
    vJ = torch.einsum("kbc,bcn->bkn", V, J)
    losses = F.cross_entropy(model(x), y, reduction="none")
    expect = (losses + 0.4 * (3 * vJ.pow(2).sum((1, 2)) / 3).sqrt()).mean()
    torch.testing.assert_close(jr(model, x, y), expect)
    legacy = JacobianRegularizer(0.4, n_proj=3, seed=1, legacy_squared=True)(model, x, y)
    torch.testing.assert_close(legacy, losses.mean() + 0.5 * 0.4 * 3 * vJ.pow(2).sum((1, 2)).mean() / 3)
    # the projection estimate is unbiased for ||J||_F^2
    many = JacobianRegularizer(1.0, n_proj=4000, seed=2)
    est = many(model, x, y) - losses.mean()
    true = J.pow(2).sum((1, 2)).sqrt().mean()
    assert abs(float(est) - float(true)) < 0.05 * float(true)


def test_er_value_matches_direct_computation():
    model, (x, y) = tiny(), batch()
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expect = loss + 0.25 * sum(g.pow(2).sum() for g in grads)
    torch.testing.assert_close(ExplicitGradientRegularizer(0.5)(model, x, y), expect)


def test_bad_regulariser_arguments():
    with pytest.raises(ValueError, match="lam"):
        InputGradientRegularizer(-1)
    with pytest.raises(ValueError, match="n_proj"):
        JacobianRegularizer(0.1, n_proj=0)


# ---------------------------------------------------------------- SAM

def test_sam_step_equals_formula_on_quadratic():
    torch.manual_seed(0)
    A = torch.randn(4, 4, dtype=torch.float64)
    A = A @ A.T + torch.eye(4, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    theta0 = torch.randn(4, dtype=torch.float64)
    w = nn.Parameter(theta0.clone())
    rho, lr = 0.3, 0.1
    opt = SAM([w], torch.optim.SGD, rho=rho, lr=lr)

    def closure():
        opt.zero_grad()
        loss = 0.5 * w @ A @ w - b @ w
        loss.backward()
        return loss

    loss = opt.step(closure)
    g = A @ theta0 - b
    e = rho * g / g.norm()
    g_adv = A @ (theta0 + e) - b
    torch.testing.assert_close(w.detach(), theta0 - lr * g_adv)
    torch.testing.assert_close(loss, 0.5 * theta0 @ A @ theta0 - b @ theta0)
    assert opt.param_groups is opt.base_optimizer.param_groups


def _cross_entropy_closure(opt, model, x, y):
    """The closure SAM's step calls (twice): zero grads, cross-entropy of model(x), backward."""
    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss
    return closure


def test_sam_updates_batchnorm_statistics_once_per_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3)).double()
    ref = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3)).double()
    ref.load_state_dict(model.state_dict())
    x, y = batch(B=8)
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, model=model, lr=0.1)
    opt.step(_cross_entropy_closure(opt, model, x, y))
    ref.train()(x)  # one forward at theta
    for a, b_ in zip(model[2].buffers(), ref[2].buffers()):
        torch.testing.assert_close(a, b_)
    # without 'model' the ascent pass updates them a second time
    model2 = ref
    opt2 = SAM(model2.parameters(), torch.optim.SGD, rho=0.5, lr=0.1)
    opt2.step(_cross_entropy_closure(opt2, model2, x, y))
    assert int(model2[2].num_batches_tracked) == 3


def test_sam_and_regularisers_train_through_fit():
    torch.manual_seed(0)
    x = torch.rand(40, 1, 2, 3)
    y = (x.flatten(1).sum(1) > 3).long()
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, model=model, lr=0.1, momentum=0.9)
    res = fit(model, TensorData(x, y), epochs=2, batch_size=8, optimizer=opt, loss_fn=JacobianRegularizer(0.01),
              progress=False)
    assert res.steps == 10 and math.isfinite(res.final["train_loss"])


# ---------------------------------------------------------------- augmentations

def images(B=6, H=8):
    return (torch.arange(1, B + 1, dtype=torch.float32)[:, None, None, None] / 10).expand(B, 1, H, H).clone()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.sampled_from(["mixup", "cutmix"]))
def test_mixing_labels_match_pixel_shares(seed, which):
    g = torch.Generator().manual_seed(seed)
    x, y = images(), torch.arange(6)
    t = Mixup(p=1.0, num_classes=6) if which == "mixup" else CutMix(p=1.0, num_classes=6)
    x2, y2 = t(x, y, g)
    torch.testing.assert_close(y2.sum(1), torch.ones(6))
    assert (y2 >= 0).all()
    own = y2[torch.arange(6), torch.arange(6)]
    if which == "mixup":
        # x2 = lam x + (1 - lam) x[perm]: the pixel value is the label-weighted mean of the sources
        expect = (y2 * (torch.arange(1, 7) / 10)).sum(1)
        torch.testing.assert_close(x2[:, 0, 0, 0], expect)
    else:
        share = (x2 == x).flatten(1).float().mean(1)
        partner_is_self = torch.isclose(own, torch.ones(6))
        torch.testing.assert_close(torch.where(partner_is_self, torch.ones(6), share), own)


def test_mixing_probability_and_label_smoothing():
    g = torch.Generator().manual_seed(0)
    x, y = images(), torch.arange(6) % 4
    x2, y2 = Mixup(p=0.0, num_classes=4)(x, y, g)
    assert torch.equal(x2, x) and torch.equal(y2, F.one_hot(y, 4).float())
    _, ys = LabelSmoothing(0.3, num_classes=4)(x, y)
    assert torch.allclose(ys[torch.arange(6), y], torch.full((6,), 0.7))
    assert torch.allclose(ys.sum(1), torch.ones(6))
    off = ys.masked_select(~F.one_hot(y, 4).bool())
    assert torch.allclose(off, torch.full_like(off, 0.1))
    applied = sum(bool((Mixup(p=0.5, num_classes=4)(x, y, g)[0] != x).any()) for _ in range(200))
    assert 60 < applied < 140
    _, yy = Compose([Mixup(1.0, num_classes=4), LabelSmoothing(0.2, num_classes=4)])(x, y, g)
    assert torch.allclose(yy.sum(1), torch.ones(6))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(1, 10))
def test_cutout_zeroes_a_clipped_square(seed, size):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(5, 2, 8, 8) + 0.1, torch.arange(5)
    x2, y2 = Cutout(size)(x, y, g)
    assert torch.equal(y2, y)
    zero = (x2 == 0).all(1)  # [B, H, W], same mask on every channel
    assert ((x2 == 0).any(1) == zero).all()
    for b in range(5):
        n = int(zero[b].sum())
        assert 1 <= n <= size * size
        rows, cols = zero[b].any(1).nonzero().flatten(), zero[b].any(0).nonzero().flatten()
        assert n == rows.numel() * cols.numel()  # a rectangle (clipped square)
        assert rows.numel() <= size and cols.numel() <= size
    assert torch.equal(torch.where(x2 == 0, x, x2), x)


def test_bad_augmentation_arguments():
    with pytest.raises(ValueError, match="'p'"):
        Mixup(p=1.5)
    with pytest.raises(ValueError, match="size"):
        Cutout(0)
    with pytest.raises(ValueError, match="num_classes"):
        LabelSmoothing(0.1, num_classes=1)


# ---------------------------------------------------------------- adversarial training

@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_at_perturbation_matches_manual_pgd(norm):
    model, (x, y) = tiny(act=nn.ReLU), batch(B=6)
    eps, alpha = 0.4, 0.15
    at = AdversarialLoss(eps, steps=5, alpha=alpha, norm=norm, random_start=False)
    x_adv = at.perturb(model, x, y)
    ref = x.clone()
    for _ in range(5):
        r = ref.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(r), y, reduction="sum"), r)
        if norm == "linf":
            ref = torch.min(torch.max(ref + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
        else:
            step = ref + alpha * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            d = step - x
            d = d * torch.clamp(eps / d.flatten(1).norm(dim=1), max=1.0).view(-1, 1, 1, 1)
            ref = (x + d).clamp(0, 1)
    torch.testing.assert_close(x_adv, ref)
    assert float(at(model, x, y)) >= float(F.cross_entropy(model(x), y))


def test_at_random_start_stays_in_ball_and_leaves_model_alone():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3)).train()
    x, y = batch(B=8)
    x = x.float()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for norm in ("l2", "linf"):
        at = AdversarialLoss(0.3, steps=3, norm=norm)
        a, b = at.perturb(model, x, y), at.perturb(model, x, y)
        d = (a - x).flatten(1)
        bound = d.norm(dim=1) if norm == "l2" else d.abs().amax(1)
        assert (bound <= 0.3 + 1e-6).all() and (a >= 0).all() and (a <= 1).all()
        assert not torch.equal(a, b)  # a new random start every call
    assert model.training and all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    torch.testing.assert_close(AdversarialLoss(0.0)(model, x, y), F.cross_entropy(model(x), y))


# ---------------------------------------------------------------- LGV

def test_lgv_collects_evenly_spaced_snapshots():
    torch.manual_seed(0)
    data = TensorData(torch.rand(30, 1, 2, 3), torch.arange(30) % 3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    before = [p.clone() for p in model.parameters()]
    snaps = collect_lgv(model, data, epochs=2, per_epoch=2, batch_size=5, progress=False)
    assert len(snaps) == 4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    ws = [s[1].weight for s in snaps]
    assert all(not torch.equal(ws[i], ws[i + 1]) for i in range(3))
    assert all(not s.training for s in snaps)
    sam = collect_lgv(model, data, epochs=1, per_epoch=3, batch_size=5, progress=False,
                      optimizer_factory=lambda ps, m: SAM(ps, rho=0.05, model=m, lr=0.05))
    assert len(sam) == 3
    with pytest.raises(ValueError, match="per_epoch"):
        collect_lgv(model, data, epochs=1, per_epoch=10, batch_size=30, progress=False)


def test_lgv_default_is_constant_learning_rate_0_05():
    # Seed 001 sec. 5.2 / LGV (Gubri et al. 2022): fine-tune "with a constant learning rate of 0.05".
    # Full-batch plain SGD (momentum and weight decay switched off) makes each snapshot one gradient
    # step w_{k+1} = w_k - 0.05 grad L(w_k) of the mean cross-entropy, recomputed here by hand.
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(30, 1, 2, 3, generator=g), torch.arange(30) % 3
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    snaps = collect_lgv(model, TensorData(x, y), epochs=3, per_epoch=1, batch_size=30, momentum=0.0,
                        weight_decay=0.0, progress=False)
    W, b = model[1].weight.detach().clone(), model[1].bias.detach().clone()
    for snap in snaps:  # one optimizer step per snapshot, the same rate every step (no warmup/decay)
        W_, b_ = W.clone().requires_grad_(True), b.clone().requires_grad_(True)
        loss = F.cross_entropy(x.flatten(1) @ W_.T + b_, y)
        gW, gb = torch.autograd.grad(loss, (W_, b_))
        W, b = W - 0.05 * gW, b - 0.05 * gb
        torch.testing.assert_close(snap[1].weight, W, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(snap[1].bias, b, rtol=1e-5, atol=1e-6)
