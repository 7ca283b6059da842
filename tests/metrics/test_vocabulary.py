"""One vocabulary (issue 15): model pairs are ``source, target``, target labels ``target_labels``, options
keyword-only; the former spellings work for one release with a DeprecationWarning naming the new name."""

from __future__ import annotations

import importlib
import inspect
import warnings

import pytest
import torch
from torch import nn

from pyadvt.attacks import PGD
import pyadvt
from pyadvt import metrics as M
from pyadvt import transfer
from pyadvt.metrics import attack_transferability, gradient_similarity, legacy_transferability, smoothness
from pyadvt.metrics.transfer_rates import rates_from_predictions

with pytest.warns(DeprecationWarning, match="use 'pyadvt.metrics.attack_transferability'"):
    from pyadvt.metrics import transferability  # the former name (and keywords), for one release

C = 4


def net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, C)).eval()
    with torch.no_grad():  # centred, larger weights: predictions that vary over the inputs
        model[1].weight.normal_(0, 1.0)
        model[1].bias.fill_(-2.0)
        model[3].bias.zero_()
    return model


@pytest.fixture(scope="module")
def pair():
    S, T = net(0), net(0)
    with torch.no_grad():  # a target close to the source, so that transfers happen and both are often correct
        for p in T.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(40, 1, 4, 4, generator=g)
    with torch.no_grad():
        y = S(x).argmax(1)
    y[::5] = (y[::5] + 1) % C
    x_adv = PGD(S, eps=0.25, steps=5, seed=0)(x, y)
    return S, T, x, y, x_adv


def _new_only(fn, *args, **kwargs):
    """Call with no DeprecationWarning allowed."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        return fn(*args, **kwargs)


def _old(fn, *args, match: str, **kwargs):
    """Call a former spelling: exactly the deprecation warnings expected, each pointing at this file."""
    with pytest.warns(DeprecationWarning, match=match) as rec:
        out = fn(*args, **kwargs)
    dep = [w for w in rec if issubclass(w.category, DeprecationWarning)]
    assert dep and all(w.filename == __file__ for w in dep), [(w.filename, str(w.message)) for w in dep]
    return out


def _rates_by_hand(S, T, x, y, x_adv, t=None):
    """Seed 001 Definition 3 written out from the four predictions."""
    with torch.no_grad():
        pf, pg, af, ag = S(x).argmax(1), T(x).argmax(1), S(x_adv).argmax(1), T(x_adv).argmax(1)
    both = (pf == y) & (pg == y)
    hit = ((af == t) & (ag == t)) if t is not None else ((af != y) & (ag != y))
    return float((both & hit).sum()) / float(both.sum()), float(((ag == t) if t is not None else (ag != y)).double().mean())


def test_transferability_new_spelling_is_right(pair):
    S, T, x, y, x_adv = pair
    t = (y + 2) % C
    r = _new_only(attack_transferability, S, T, x, y, x_adv, target_labels=t)
    rate, asr = _rates_by_hand(S, T, x, y, x_adv, t)
    assert r.targeted and r.rate == pytest.approx(rate) and r.asr == pytest.approx(asr)
    assert 0 < r.both_correct < 40
    u = _new_only(attack_transferability, source=S, target=T, x=x, y=y, x_adv=x_adv)
    rate, asr = _rates_by_hand(S, T, x, y, x_adv)
    assert not u.targeted and u.rate == pytest.approx(rate) and u.asr == pytest.approx(asr) and rate > 0
    # the target model passed by keyword, labels positionally: target is the model here
    assert _new_only(attack_transferability, S, x=x, y=y, x_adv=x_adv, target=T).summary() == u.summary()


@pytest.mark.parametrize("spelling", ["target_kw_labels", "all_old_keywords", "positional_labels",
                                      "victim_and_target_labels"])
def test_transferability_old_spellings_equal_the_new(pair, spelling):
    S, T, x, y, x_adv = pair
    t = (y + 2) % C
    ref = attack_transferability(S, T, x, y, x_adv, target_labels=t)
    if spelling == "target_kw_labels":  # the former keyword target= held the target labels
        got = _old(transferability, S, T, x, y, x_adv, target=t, match="'target' for the target labels.*'target_labels'")
    elif spelling == "all_old_keywords":
        got = _old(transferability, surrogate=S, victim=T, x=x, y=y, x_adv=x_adv, target=t,
                   match="deprecated")
    elif spelling == "positional_labels":
        got = _old(transferability, S, T, x, y, x_adv, t, match="'target_labels' by keyword")
    else:
        got = _old(transferability, S, victim=T, x=x, y=y, x_adv=x_adv, target_labels=t, match="use 'target'")
    assert got.summary() == ref.summary() and torch.equal(got.success, ref.success)


def test_transferability_old_positional_options(pair):
    S, T, x, y, x_adv = pair
    ref = attack_transferability(S, T, x, y, x_adv, targeted=True, num_classes=C, batch_size=7)
    got = _old(transferability, S, T, x, y, x_adv, None, True, C, 7, match="'targeted'.*by keyword")
    assert got.summary() == ref.summary()


def test_transferability_bad_calls_are_type_errors(pair):
    S, T, x, y, x_adv = pair
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        attack_transferability(S, T, x, y, x_adv, foo=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(TypeError, match="both 'target' .*'target_labels'"):
            transferability(S, T, x, y, x_adv, target=y, target_labels=y)
        with pytest.raises(TypeError, match="both 'surrogate' .*'source'"):
            transferability(surrogate=S, source=S, target=T, x=x, y=y, x_adv=x_adv)
        with pytest.raises(TypeError, match="at most 9 positional"):
            transferability(S, T, x, y, x_adv, None, False, C, 7, "extra")
        with pytest.raises(TypeError, match="multiple values for argument 'targeted'"):
            transferability(S, T, x, y, x_adv, None, True, targeted=True)


def test_the_new_name_takes_only_the_new_keywords(pair):
    """attack_transferability is the clean spelling: the former keywords and positional options are refused."""
    S, T, x, y, x_adv = pair
    with pytest.raises(TypeError, match="unexpected keyword argument 'surrogate'"):
        attack_transferability(surrogate=S, target=T, x=x, y=y, x_adv=x_adv)
    with pytest.raises(TypeError, match="multiple values for argument 'target'"):
        attack_transferability(S, T, x, y, x_adv, target=y)
    with pytest.raises(TypeError, match="positional"):
        attack_transferability(S, T, x, y, x_adv, y)


def test_rates_from_predictions_target_labels(pair):
    y = torch.tensor([0, 1, 2, 3])
    adv = torch.tensor([1, 1, 3, 0])
    ref = _new_only(rates_from_predictions, y, y, adv, adv, y, target_labels=torch.tensor([1, 2, 3, 0]))
    assert ref.targeted and ref.rate == pytest.approx(3 / 4)  # samples 0, 2, 3 hit their target labels
    got = _old(rates_from_predictions, y, y, adv, adv, y, target=torch.tensor([1, 2, 3, 0]), match="'target_labels'")
    assert got.summary() == ref.summary()
    got = _old(rates_from_predictions, y, y, adv, adv, y, None, torch.tensor([1, 2, 3, 0]), match="by keyword")
    assert got.summary() == ref.summary()


def test_gradient_similarity_source_keyword(pair):
    S, T, x, y, _ = pair
    ref = _new_only(gradient_similarity, source=S, target=T, x=x, y=y, batch_size=16)
    got = _old(gradient_similarity, surrogate=S, target=T, x=x, y=y, batch_size=16, match="use 'source'")
    assert torch.equal(got.values, ref.values, ) and torch.equal(got.valid, ref.valid)
    got = _old(gradient_similarity, S, T, x, y, 16, match="'batch_size' by keyword")
    assert torch.equal(got.values, ref.values)
    with pytest.raises(TypeError, match="unexpected keyword argument 'victim'"):
        gradient_similarity(S, victim=T, x=x, y=y)


def test_legacy_alpha_source_target_keywords(pair):
    S, T, x, y, _ = pair
    ref = _new_only(legacy_transferability, source=S, target=T, x=x, y=y, eps=0.1, steps=2)
    got = _old(legacy_transferability, attacker=S, victim=T, x=x, y=y, eps=0.1, steps=2, match="use '(source|target)'")
    assert got.summary() == ref.summary() and torch.equal(got.alpha1_per_sample, ref.alpha1_per_sample)
    with pytest.raises(TypeError, match="unexpected keyword argument 'surrogate'"):
        legacy_transferability(surrogate=S, target=T, x=x, y=y)
    with pytest.raises(TypeError, match="positional"):
        legacy_transferability(S, T, x, y, 0.1, 2)  # steps was keyword-only already


def test_smoothness_options_keyword_only(pair):
    S, _, x, y, _ = pair
    ref = _new_only(smoothness, S, x, y, method="exact", batch_size=8, progress=False)
    got = _old(smoothness, S, x, y, "exact", 1e-4, 100, 8, 0, False, False, match="'method', 'tol'.*by keyword")
    assert torch.equal(got.values, ref.values)
    with pytest.raises(TypeError, match="unexpected keyword argument 'targets'"):
        smoothness(S, x, y, targets=y)


@pytest.mark.parametrize("fn, pair_names", [(attack_transferability, ("source", "target")),
                                            (gradient_similarity, ("source", "target")),
                                            (legacy_transferability, ("source", "target"))])
def test_signatures_show_the_new_vocabulary(fn, pair_names):
    params = inspect.signature(fn).parameters
    assert tuple(params)[:2] == pair_names
    assert not {"surrogate", "victim", "attacker"} & set(params)
    for name in ("batch_size", "progress", "targeted", "target_labels", "steps"):
        if name in params:
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert inspect.signature(smoothness).parameters["method"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("module, old, new", [
    (M, "transferability", "attack_transferability"), (M, "TransferRates", "AttackTransferabilityResult"),
    (M, "TransferabilityResult", "AdversarialTransferabilityResult"),
    (M, "EmpiricalTransferResult", "EmpiricalTransferabilityResult"), (M, "legacy_alpha", "legacy_transferability"),
    (M, "LegacyAlphaResult", "LegacyTransferabilityResult"), (importlib.import_module("pyadvt.metrics.tau2"), "TransferabilityResult", "AdversarialTransferabilityResult"),
    (importlib.import_module("pyadvt.metrics.transfer_rates"), "TransferRates", "AttackTransferabilityResult"),
    (transfer, "KnowledgeTransfer", "KnowledgeTransferabilityResult"), (pyadvt, "transferability", "attack_transferability"),
])
def test_former_transferability_names_resolve_with_a_warning(module, old, new):
    """The naming scheme <kind>_transferability -> <Kind>TransferabilityResult (docs/theory.md §0): every
    renamed name still resolves for one release, warns naming the new one, and is not exported."""
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated.*'{module.__name__}.{new}'") as rec:
        got = getattr(module, old)
    assert all(w.filename == __file__ for w in rec if issubclass(w.category, DeprecationWarning))
    if old == "transferability":  # the former spelling also takes the former keywords
        assert got.__wrapped__ is attack_transferability
    else:
        assert got is getattr(module, new)
    assert old not in getattr(module, "__all__") and new in getattr(module, "__all__")


def test_transfer_rates_acc_source_field():
    r = M.AttackTransferabilityResult(success=torch.tensor([True]), both_correct=1, rate=1.0, asr=1.0, fooling=1.0,
                                      acc_source=0.75, acc_target=1.0, targeted=False)
    assert r.summary()["acc_source"] == 0.75
    with pytest.warns(DeprecationWarning, match="use .acc_source"):
        assert r.acc_surrogate == 0.75
    with pytest.warns(DeprecationWarning, match="'acc_surrogate' is deprecated"):
        old = M.AttackTransferabilityResult(success=torch.tensor([True]), both_correct=1, rate=1.0, asr=1.0,
                                            fooling=1.0, acc_surrogate=0.5, acc_target=1.0, targeted=False)
    assert old.acc_source == 0.5
