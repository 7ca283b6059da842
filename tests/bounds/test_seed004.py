"""Seed 004 Lemma 1 / Theorem 1 / Theorem 2 (docs/theory.md §5, pyadvt.bounds.seed004): properties on random
models and companions showing that a wrong Lipschitz constant, norm or ball makes the checks fail; the
deprecated pyadvt.metrics aliases of the moved names."""

from __future__ import annotations

import importlib
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import pyadvt.bounds as bounds
from pyadvt.bounds.seed004 import (Lemma1Result, Theorem2Result, head_norm, hoeffding_term, lemma1,
                                   lipschitz_constant, normalized_margins, theorem1_bound, theorem2_criterion)
from pyadvt.metrics.robustness_transfer import evaluate_robustness_transfer
from tests.metrics.test_robustness_transfer import Split, linear_setup, loss_pgd, random_model


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), norm=st.sampled_from(["linf", "l2"]), scale=st.sampled_from([0.5, 2.0, 5.0]),
       loss=st.sampled_from(["ce", "mse"]))
def test_lemma1_never_violated(seed, norm, scale, loss):
    model = random_model(seed, scale=scale)
    x = torch.rand(24, 8)
    y = torch.randint(0, 4, (24,)) if loss == "ce" else torch.randn(24, 4)
    eps = 0.1 if norm == "linf" else 0.3
    rec = evaluate_robustness_transfer(model, x, y, eps, norm=norm, loss=loss, steps=6,
                                       attack=loss_pgd(model, eps, norm, 6, loss))
    for q in (["inf", 2] if loss == "ce" else [2]):
        lem = rec.lemma1(q)
        assert lem.held, lem
        assert lem.tight_held, lem
        assert lem.rhs >= lem.as_score - 1e-9
    # per sample, the bound holds for the loss adversary's own shift (the proof's step)
    L, wn = lipschitz_constant(loss, 2), head_norm(rec.W, 2)
    assert bool(((rec.adv_loss - rec.clean_loss).abs() <= L * wn * rec.adv_shift + 1e-5).all())


def two_class_worst_case(q):
    """Two classes, w_1 = -w_0 = a; points deep on the wrong side: the CE slope approaches the
    Lipschitz constant, so the bound with the right (L, ||W||) is nearly tight."""
    a = torch.tensor([3.0, 0.0])
    g = nn.Identity()
    m = Split(g, 2, 2)
    with torch.no_grad():
        m.head.weight.copy_(torch.stack([a, -a]))
        m.head.bias.zero_()
    x = torch.full((5, 2), 0.1)       # logits favour class 1 strongly? no: z0 = 0.3, z1 = -0.3 ...
    x[:, 0] = -2.0                    # ... move far to the side of class 1
    y = torch.zeros(5, dtype=torch.long)
    eps = 0.05

    def attack(xb, yb):  # exact worst case for this linear model: push along -a
        return xb - eps * a / a.norm()

    # inputs are outside [0, 1] on purpose (no clipping in this construction): use an unclipped rep attack
    class Exact:
        last_distance = None

        def __call__(self, xb):
            self.last_distance = torch.full((xb.shape[0],), eps)
            return xb - eps * a / a.norm()

    return evaluate_robustness_transfer(m, x, y, eps, norm="l2", attack=attack, rep_attack=Exact())


def test_lemma1_companion_wrong_lipschitz_constant_fails_qinf():
    rec = two_class_worst_case("inf")
    right = rec.lemma1("inf")
    assert right.held and right.lhs > 0.9 * right.rhs          # nearly tight
    wrong = rec.lemma1("inf", lipschitz=1.0)                  # L = 1 instead of Lemma 3's 2
    assert not wrong.held


def test_lemma1_companion_wrong_norm_fails_q2():
    rec = two_class_worst_case(2)
    right = rec.lemma1(2)
    assert right.held and right.lhs > 0.9 * right.rhs
    wrong = rec.lemma1(2, w_norm=head_norm(rec.W, "inf"))     # max row norm with q = 2's L = sqrt(2)
    assert not wrong.held


def test_lipschitz_constants_and_norms():
    assert lipschitz_constant("ce", "inf") == 2.0
    assert lipschitz_constant("ce", 2) == pytest.approx(math.sqrt(2))
    assert lipschitz_constant("mse", 2) == 1.0
    with pytest.raises(ValueError, match="q=2"):
        lipschitz_constant("mse", "inf")
    with pytest.raises(ValueError, match="q"):
        head_norm(torch.eye(2), 1)
    W = torch.randn(5, 7)
    assert head_norm(W, "inf") == pytest.approx(W.norm(dim=1).max().item(), rel=1e-6)
    assert head_norm(W, 2) == pytest.approx(torch.linalg.svdvals(W)[0].item(), rel=1e-6)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_softmax_ce_lipschitz_numerically(seed):
    """|CE(z) - CE(z')| <= 2 ||z - z'||_inf and <= sqrt(2) ||z - z'||_2 on random logits."""
    torch.manual_seed(seed)
    z, z2 = torch.randn(64, 5) * 4, torch.randn(64, 5) * 4
    y = torch.randint(0, 5, (64,))
    diff = (F.cross_entropy(z, y, reduction="none") - F.cross_entropy(z2, y, reduction="none")).abs()
    assert bool((diff <= 2 * (z - z2).abs().max(1).values + 1e-5).all())
    assert bool((diff <= math.sqrt(2) * (z - z2).norm(dim=1) + 1e-5).all())


def test_normalized_margins_brute_force():
    torch.manual_seed(4)
    W, b, g = torch.randn(4, 3), torch.randn(4), torch.randn(10, 3)
    y = torch.randint(0, 4, (10,))
    m = normalized_margins(W, b, g, y)
    for i in range(10):
        vals = [((W[y[i]] - W[j]) @ g[i] + b[y[i]] - b[j]) / (W[y[i]] - W[j]).norm() for j in range(4) if j != y[i]]
        assert m[i].item() == pytest.approx(min(vals).item(), rel=1e-5)
    W2 = torch.stack([W[0], W[0]])
    assert normalized_margins(W2, torch.tensor([1.0, 0.0]), g[:1], torch.tensor([0])).item() == math.inf
    assert normalized_margins(W2, torch.tensor([0.0, 1.0]), g[:1], torch.tensor([0])).item() == -math.inf


def exact_l2_attack_breaks(model, x, y, eps):
    """Exact unclipped L2 worst case of a linear classifier W G x + b: flips iff some j has
    margin_j <= eps ||G^T (w_y - w_j)||; returns [N] bool 'attack succeeds (or already wrong)'."""
    G, W, b = model.g.weight, model.head.weight, model.head.bias
    with torch.no_grad():
        logits = model(x)
        broken = logits.argmax(1) != y
        for j in range(W.shape[0]):
            dirn = (W[y] - W[j]) @ G                          # [N, n]
            nrm = dirn.norm(dim=1, keepdim=True).clamp_min(1e-12)
            x_adv = x - eps * dirn / nrm
            flip = model(x_adv).argmax(1) != y
            broken |= flip & (j != y)
    return broken


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.sampled_from([0.02, 0.1, 0.3]))
def test_theorem2_criterion_implies_robustness_when_max_is_exact(seed, eps):
    model, x, y = linear_setup(seed)
    sens = torch.full((x.shape[0],), eps * torch.linalg.matrix_norm(model.g.weight.detach(), 2).item())
    rec = evaluate_robustness_transfer(model, x, y, eps, norm="l2", steps=5, attack=loss_pgd(model, eps, "l2", 10))
    t2 = rec.theorem2(sensitivity=sens)
    broken = exact_l2_attack_breaks(model, x, y, eps)
    assert not bool((t2.fulfilled & broken).any())
    assert not bool((t2.fulfilled & ~t2.robust).any())
    s = t2.summary()
    assert s["robust_among_fulfilled"] in (None, 1.0)
    assert not bool(t2.fulfilled[~t2.correct].any())


def test_theorem2_companions_fail_with_wrong_norm_or_ball():
    """Wrong max (smallest singular value instead of ||G||_2) or a mismatched (L-inf) ball: some
    'fulfilled' points get broken, so the criterion check is not vacuous."""
    found_wrong_norm = found_wrong_ball = False
    for seed in range(10):
        model, x, y = linear_setup(seed, N=60)
        eps = 0.15
        sv = torch.linalg.svdvals(model.g.weight.detach())
        rec = evaluate_robustness_transfer(model, x, y, eps, norm="l2", steps=3, attack=loss_pgd(model, eps, "l2", 3))
        wrong = rec.theorem2(sensitivity=torch.full((x.shape[0],), eps * sv[-1].item()))
        found_wrong_norm |= bool((wrong.fulfilled & exact_l2_attack_breaks(model, x, y, eps)).any())
        # L-inf ball of the same radius (contains the L2 ball) vs the L2-ball max eps ||G||_2
        right_l2 = rec.theorem2(sensitivity=torch.full((x.shape[0],), eps * sv[0].item()))
        with torch.no_grad():
            adv = loss_pgd(model, eps, "linf", 20)(x, y)
            broken_inf = model(adv).argmax(1) != y
        found_wrong_ball |= bool((right_l2.fulfilled & broken_inf).any())
        if found_wrong_norm and found_wrong_ball:
            break
    assert found_wrong_norm and found_wrong_ball


def test_hoeffding_and_theorem1():
    assert hoeffding_term(100, 0.05, 2.0) == pytest.approx(2.0 * math.sqrt(math.log(40) / 200))
    with pytest.raises(ValueError, match="rho"):
        hoeffding_term(10, 1.5, 1.0)
    with pytest.raises(ValueError, match="'n'"):
        hoeffding_term(0, 0.1, 1.0)
    model = random_model(0)
    x, y = torch.rand(16, 8), torch.randint(0, 4, (16,))
    rec = evaluate_robustness_transfer(model, x, y, 0.1, steps=4, attack=loss_pgd(model, 0.1, "linf", 4))
    t1 = rec.theorem1(rho=0.05, bound=5.0)
    assert t1["bound"] == pytest.approx(t1["lipschitz_term"] + t1["hoeffding_term"])
    assert t1["observed_gap"] <= t1["lipschitz_term"] + 1e-6


def test_default_pgd_adversary_on_a_trained_digits_model():
    """End to end with the library's PGD as the loss adversary: Lemma 1 holds for both q, the
    criterion never certifies a point the adversary breaks, and AS > 0."""
    from pyadvt.data import digits
    from pyadvt.models import build
    from pyadvt.train import fit

    train, test = digits(seed=0)
    model = build("mlp", hidden=(32,))
    fit(model, train, epochs=3, progress=False, seed=0)
    x, y = test.x[:64], test.y[:64]
    rec = evaluate_robustness_transfer(model, x, y, 0.1, steps=5)
    for q in ("inf", 2):
        assert rec.lemma1(q).held
    t2 = rec.theorem2().summary()
    assert t2["fulfilled_but_not_robust"] == 0 and t2["clean_accuracy"] > 0.8
    assert rec.as_score().score > 0
    with pytest.raises(ValueError, match="attack="):
        evaluate_robustness_transfer(model, x, torch.randn(64, 10), 0.1, loss="mse")


def test_lemma1_and_theorem2_functions_equal_the_record_methods():
    """lemma1() / theorem2_criterion() evaluate the same record as evaluate_robustness_transfer + the methods."""
    model = random_model(7)
    x, y = torch.rand(12, 8), torch.randint(0, 4, (12,))
    kw = dict(steps=3, rep_steps=3, restarts=1, seed=1)
    rec = evaluate_robustness_transfer(model, x, y, 0.1, **kw)
    for q in ("inf", 2):
        assert lemma1(model, x, y, 0.1, q=q, **kw) == rec.lemma1(q)
    t2, ref = theorem2_criterion(model, x, y, 0.1, **kw), rec.theorem2()
    assert isinstance(t2, Theorem2Result) and t2.summary() == ref.summary()
    assert torch.equal(t2.margin, ref.margin) and torch.equal(t2.sensitivity, ref.sensitivity)
    assert theorem1_bound(rec.lemma1("inf"), n=12, rho=0.05, bound=3.0) == rec.theorem1(rho=0.05, bound=3.0)


def test_theorem1_bound_is_the_lipschitz_term_plus_hoeffding():
    lem = Lemma1Result("2", "ce", 0.5, 0.9, math.sqrt(2), 3.0, 0.4 / (3 * math.sqrt(2)), 0.2, 0.25, True, True,
                       0.4, 0.5, True)
    t1 = theorem1_bound(lem, n=50, rho=0.1, bound=2.0)
    assert t1["observed_gap"] == pytest.approx(0.4)
    assert t1["lipschitz_term"] == pytest.approx(math.sqrt(2) * 3.0 * 0.25)  # L ||W|| times the RHS (sensitivity)
    assert t1["hoeffding_term"] == pytest.approx(2.0 * math.sqrt(math.log(20) / 100))
    assert t1["bound"] == pytest.approx(t1["lipschitz_term"] + t1["hoeffding_term"])


@pytest.mark.parametrize("name", ["lemma1", "theorem2_criterion"])
def test_deprecated_metrics_aliases_resolve_to_the_bounds_with_a_warning(name):
    metrics = importlib.import_module("pyadvt.metrics")
    assert name not in metrics.__all__ and name in bounds.__all__
    with pytest.warns(DeprecationWarning, match=rf"pyadvt\.metrics\.{name} is deprecated.*pyadvt\.bounds") as rec:
        obj = getattr(metrics, name)
    assert obj is getattr(bounds, name)
    assert rec[0].filename == __file__  # the warning points at the caller


@pytest.mark.parametrize("name", ["Lemma1Result", "Theorem2Result", "lemma1", "theorem2_criterion", "theorem1_bound",
                                  "head_norm", "lipschitz_constant", "hoeffding_term", "normalized_margins"])
def test_deprecated_robustness_transfer_names_resolve_with_a_warning(name):
    module = importlib.import_module("pyadvt.metrics.robustness_transfer")
    with pytest.warns(DeprecationWarning, match=rf"robustness_transfer\.{name} is deprecated.*pyadvt\.bounds\.seed004"):
        obj = getattr(module, name)
    seed004 = importlib.import_module("pyadvt.bounds.seed004")
    assert obj is getattr(seed004, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            module.nope  # noqa: B018
