"""Vocabulary (issue 15): target labels are ``target_labels=`` in every attack entry point; the old
``target=`` keeps working for one release with a DeprecationWarning naming the new keyword and gives
the same result. Also: ``evaluate`` with source names containing "+" (not an ensemble)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import pyadvt.attacks as A
from pyadvt.utils.errors import InvalidTypeError


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 5)).eval()


def _data(n: int = 6):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 5, (n,), generator=g)


def _old_and_new(call, labels):
    """``call(target=labels)`` (recording warnings) and ``call(target_labels=labels)`` (none allowed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        new = call(target_labels=labels)
    with pytest.warns(DeprecationWarning, match="'target_labels'") as record:
        old = call(target=labels)
    assert any("'target'" in str(w.message) for w in record)
    return old, new


ATTACKS = {
    "PGD": lambda m: A.PGD(m, eps=0.1, steps=3, targeted=True, random_start=True),
    "FGSM": lambda m: A.FGSM(m, eps=0.1, targeted=True),
    "MIFGSM": lambda m: A.MIFGSM(m, eps=0.1, steps=3, targeted=True),
    "DIM": lambda m: A.DIM(m, eps=0.1, steps=3, targeted=True),
    "NIFGSM": lambda m: A.NIFGSM(m, 0.1, 0.02, 3, targeted=True),
    "VMIFGSM": lambda m: A.VMIFGSM(m, 0.1, 0.02, 2, N=3, targeted=True),
    "PIFGSM": lambda m: A.PIFGSM(m, 0.1, None, 3, targeted=True),
    "SSA": lambda m: A.SSA(m, 0.1, 0.02, 2, N=2, targeted=True),
    "create(mi-di-ti)": lambda m: A.create("mi-di-ti", m, 0.1, 0.02, 3, ti_kernel=3, targeted=True),
    "SVRE (ensemble)": lambda m: A.SVRE([m, _net(1)], 0.1, 0.02, 2, targeted=True),
    "MIFGSM on a list (ensemble)": lambda m: A.MIFGSM([m, _net(2)], eps=0.1, steps=2, targeted=True),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_old_and_new_keyword_give_the_same_adversarial_examples(name):
    x, y = _data()
    labels = (y + 2) % 5
    atk = ATTACKS[name](_net())
    old, new = _old_and_new(lambda **kw: atk(x, y, **kw), labels)
    torch.testing.assert_close(old, new, atol=0, rtol=0)
    # the labels are used: another target gives another result, and the default is (y + 1) % C
    assert not torch.equal(new, atk(x, y, target_labels=(y + 4) % 5))
    torch.testing.assert_close(atk(x, y), atk(x, y, target_labels=(y + 1) % 5), atol=0, rtol=0)


def test_targeted_attack_reaches_the_given_labels():
    """Independent check that ``target_labels`` is the label descended: its cross-entropy drops."""
    x, y = _data(16)
    net = _net()
    labels = (y + 3) % 5
    adv = A.PGD(net, eps=0.3, steps=10, targeted=True)(x, y, target_labels=labels)
    with torch.no_grad():
        before = nn.functional.cross_entropy(net(x), labels, reduction="none")
        after = nn.functional.cross_entropy(net(adv), labels, reduction="none")
    assert bool((after < before).all())


def test_multi_budget_with_target_labels():
    x, y = _data()
    atk = A.MIFGSM(_net(), eps=0.1, steps=2, targeted=True)
    eps = torch.tensor([0.05, 0.1])
    old, new = _old_and_new(lambda **kw: atk(x, y, eps=eps, **kw), (y + 2) % 5)
    assert new.shape == (2,) + tuple(x.shape)
    torch.testing.assert_close(old, new, atol=0, rtol=0)


def test_both_keywords_and_untargeted_are_refused():
    x, y = _data()
    with pytest.raises(InvalidTypeError, match="target_labels"):
        A.PGD(_net(), eps=0.1, targeted=True)(x, y, target=y, target_labels=y)
    with pytest.raises(ValueError, match="'target_labels'.*targeted=False"):
        A.PGD(_net(), eps=0.1)(x, y, target_labels=y)
    with pytest.raises(ValueError, match="target_labels"):
        A.PGD(_net(), eps=0.1, targeted=True)(x, y, target_labels=y + 20)


def test_run_on_and_attack_all_take_target_labels():
    x, y = _data(7)
    atk = A.PGD(_net(), eps=0.1, steps=2, targeted=True)
    pick = lambda labels: (labels + 2) % 5  # noqa: E731
    ref = atk(x, y, target_labels=pick(y))
    (old, _), (new, _) = _old_and_new(lambda **kw: A.attack_all(atk, (x, y), batch_size=3, **kw), pick)
    torch.testing.assert_close(new, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(old, new, atol=0, rtol=0)
    batches = list(A.run_on(atk, (x, y), batch_size=4, target_labels=pick))
    assert torch.equal(torch.cat([b.target_labels for b in batches]), pick(y))
    with pytest.warns(DeprecationWarning, match="target_labels"):
        assert torch.equal(batches[0].target, batches[0].target_labels)
    with pytest.raises(InvalidTypeError, match="target_labels"):
        A.run_on(atk, (x, y), target_labels=pick(y))      # labels must come from a callable y -> labels
    # a plain callable attack receives the labels as target_labels=
    seen = []
    list(A.run_on(lambda xb, yb, target_labels: seen.append(target_labels) or xb, (x, y), batch_size=7,
                  target_labels=pick))
    assert torch.equal(seen[0], pick(y))


def test_attack_batch_target_alias():
    x, y = _data(2)
    b = A.AttackBatch(x=x, y=y, target_labels=y, eps=torch.ones(2), alpha=torch.ones(2), source=torch.arange(2),
                      clean=x, sample_ids=None, seed=0)
    with pytest.warns(DeprecationWarning, match="target_labels"):
        assert b.target is b.target_labels
    assert b.rows(slice(0, 1)).target_labels.tolist() == y[:1].tolist()


def test_evaluate_source_names_with_plus_are_single_sources():
    """A source called "a+b" is one model, not an ensemble of "a" and "b" (was a KeyError)."""
    x, y = _data(8)
    nets = {"cnn+bn": _net(0), "mlp+x": _net(1)}
    res = A.evaluate(nets, {"t": _net(3)}, (x, y), attacks=["mifgsm", "svre"], protocol="digits")
    cells = {(r["attack"], r["source"]) for r in res.rows}
    assert cells == {("mifgsm", "cnn+bn"), ("mifgsm", "mlp+x"), ("svre", "cnn+bn+mlp+x")}
    # the "cnn+bn" cell is MI-FGSM on that one network (independent run of the attack)
    adv = A.MIFGSM(nets["cnn+bn"], 0.2, 0.02, 10, mu=1.0)(x, y)
    with torch.no_grad():
        wrong = _net(3)(adv).argmax(1) != y
    row = next(r for r in res.rows if (r["attack"], r["source"]) == ("mifgsm", "cnn+bn"))
    assert row["asr_all"] == pytest.approx(float(wrong.float().mean()))
    # and the ensemble cell is SVRE on both
    adv = A.SVRE(list(nets.values()), 0.2, 0.02, 10, mu=1.0)(x, y)
    with torch.no_grad():
        wrong = _net(3)(adv).argmax(1) != y
    row = next(r for r in res.rows if r["attack"] == "svre")
    assert row["asr_all"] == pytest.approx(float(wrong.float().mean()))
