"""Options of the public attacks are keyword-only (issue 15 item 2), the former positional forms still
work for one release with a ``DeprecationWarning`` pointing at the caller.

The rule (``pyadvt/attacks/__init__.py``): ``model, eps, alpha, steps`` positional in torchattacks'
order, every other option keyword-only; ``RepresentationAttack`` takes ``(model, eps)``,
``diverse_input`` ``(x, draws)`` and ``evaluate`` ``(sources, targets, data)`` by position.
"""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from torch import nn

import pyadvt.attacks as A

KW = inspect.Parameter.KEYWORD_ONLY
POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
LEADING = ("model", "eps", "alpha", "steps")

# each changed callable: (the parameters that stay positional, the options that were positional before)
CHANGED = {
    "Admix": (LEADING, ("mu", "eta", "m1", "m2")),
    "BSR": (LEADING, ("mu", "n_block", "N", "max_angle")),
    "DI": (LEADING, ("p", "resize_low", "resize_high")),
    "DIM": (LEADING, ("p", "resize_low", "resize_high")),
    "FIA": (LEADING, ("layer", "N", "drop")),
    "ILA": (LEADING, ("layer",)),
    "LinBP": (LEADING, ("layer", "lam")),
    "MIFGSM": (LEADING, ("mu",)),
    "NAA": (LEADING, ("layer", "N", "noise_std")),
    "NIFGSM": (LEADING, ("mu",)),
    "PGD": (LEADING, ("norm", "random_start", "restarts")),
    "PIFGSM": (LEADING, ("amplification", "kernel_size")),
    "SGM": (LEADING, ("mu", "gamma")),
    "SINIFGSM": (LEADING, ("mu", "m")),
    "SSA": (LEADING, ("N", "rho", "sigma")),
    "SVRE": (("models", "eps", "alpha", "steps"), ("mu", "inner_steps", "beta")),
    "TIFGSM": (LEADING, ("mu", "len_kernel", "nsig")),
    "VMIFGSM": (LEADING, ("mu", "N", "beta")),
    "VNIFGSM": (LEADING, ("mu", "N", "beta")),
    "RepresentationAttack": (("model", "eps"), ("steps", "alpha", "norm", "random_start", "restarts", "seed",
                                                "features", "legacy_fgsm", "legacy_target_scale")),
    "diverse_input": (("x", "draws"), ("p", "resize_low", "resize_high", "interpolation")),
    "evaluate": (("sources", "targets", "data"), ("attacks", "protocol")),
}


@pytest.mark.parametrize("name", list(CHANGED))
def test_options_are_keyword_only(name):
    positional, options = CHANGED[name]
    params = inspect.signature(getattr(A, name)).parameters
    assert tuple(n for n, p in params.items() if p.kind in POSITIONAL) == positional
    assert {n: params[n].kind for n in options} == dict.fromkeys(options, KW)


@pytest.mark.parametrize("name", ["FGSM", "TransferAttack", "VirtualAdversarialAttack", "create", "build_attack"])
def test_the_other_attacks_follow_the_same_rule(name):
    """Nothing beyond the threat model (and ``create``'s name) is positional anywhere in the package."""
    allowed = {"name", "model", "eps", "alpha", "steps"}
    params = inspect.signature(getattr(A, name)).parameters
    assert {n for n, p in params.items() if p.kind in POSITIONAL} <= allowed


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 5)).eval()


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(4, 3, 8, 8, generator=g), torch.randint(0, 5, (4,), generator=g)


# attack: (the former positional options, non-default; the attributes they set, as read back)
FORMER = {
    "PGD": (("l2", False, 2), {"norm": "l2", "random_start": False, "restarts": 2}),
    "MIFGSM": ((0.5,), {"mu": 0.5}),
    "DI": ((0.5, 0.6, 1.3), {"p": 0.5, "resize_low": 0.6, "resize_high": 1.3}),
    "DIM": ((0.5, 0.6, 1.3), {"p": 0.5, "resize_low": 0.6, "resize_high": 1.3, "mu": 1.0}),
    "TIFGSM": ((0.5, 3, 2.0), {"mu": 0.5, "ti_size": 3, "ti_nsig": 2.0}),
    "VMIFGSM": ((0.5, 3, 1.0), {"mu": 0.5, "vt_neighbours": 3, "vt_beta": 1.0}),
    "ILA": (("0",), {"layer": "0"}),
}


def _former_call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and the one DeprecationWarning it gives (its location and message)."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    deprecations = [w for w in rec if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1, [str(w.message) for w in rec]
    return out, deprecations[0]


def _no_warning(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("name", list(FORMER))
def test_former_positional_call_warns_at_the_caller_and_builds_the_same_attack(name):
    cls = getattr(A, name)
    values, attributes = FORMER[name]
    options = dict(zip(CHANGED[name][1], values))
    old, w = _former_call(cls, _net(), 0.1, 0.02, 3, *values, seed=3)
    assert w.filename == __file__  # stacklevel: the user's line, not the shim's
    for option in options:
        assert repr(option) in str(w.message) and "keyword" in str(w.message)
    new = _no_warning(cls, _net(), 0.1, 0.02, 3, **options, seed=3)
    for attr, value in attributes.items():
        assert getattr(old, attr) == getattr(new, attr) == value
    x, y = _data()
    x_old, x_new = old(x, y), new(x, y)
    torch.testing.assert_close(x_old, x_new, atol=0, rtol=0)
    # the options reach the attack: the defaults (ILA: another layer, it has none here) give other examples
    other = {"layer": "2"} if name == "ILA" else {}
    assert not torch.equal(x_new, _no_warning(cls, _net(), 0.1, 0.02, 3, **other, seed=3)(x, y))


def test_former_positional_call_is_refused_when_ambiguous():
    with pytest.raises(TypeError, match="multiple values for argument 'mu'"):
        A.MIFGSM(_net(), 0.1, 0.02, 3, 0.5, mu=0.9)
    with pytest.raises(TypeError, match="at most"):
        A.ILA(_net(), 0.1, 0.02, 3, "0", "extra")


def test_representation_attack_former_order():
    g = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6))
    x, _ = _data()
    old, w = _former_call(A.RepresentationAttack, g, 0.1, 4, 0.03, "l2")
    assert w.filename == __file__ and "'steps', 'alpha', 'norm'" in str(w.message)
    new = _no_warning(A.RepresentationAttack, g, 0.1, steps=4, alpha=0.03, norm="l2")
    assert (old.steps, old.alpha, old.norm) == (new.steps, new.alpha, new.norm) == (4, 0.03, "l2")
    torch.testing.assert_close(old(x), new(x), atol=0, rtol=0)


def test_diverse_input_former_order():
    x, _ = _data()
    draws = torch.rand(4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    old, w = _former_call(A.diverse_input, x, draws, 1.0, 0.5, 0.7, "bilinear")
    assert w.filename == __file__
    new = _no_warning(A.diverse_input, x, draws, p=1.0, resize_low=0.5, resize_high=0.7, interpolation="bilinear")
    torch.testing.assert_close(old, new, atol=0, rtol=0)
    assert not torch.equal(new, x)  # p = 1 and a smaller scale: every image changed


def test_evaluate_former_order():
    """``evaluate(sources, targets, attacks, data, protocol)`` -> ``evaluate(sources, targets, data, ...)``."""
    x, y = _data()
    sources, targets = {"s": _net(0)}, {"t": _net(1)}
    old, w = _former_call(A.evaluate, sources, targets, ["mifgsm"], (x, y), "digits")
    assert w.filename == __file__ and "'attacks', 'data', 'protocol'" in str(w.message)
    new = _no_warning(A.evaluate, sources, targets, (x, y), attacks=["mifgsm"], protocol="digits")
    assert old.rows == new.rows and old.protocol == new.protocol and old.protocol["name"] == "digits"
    # the names alone in third place (data by keyword) are the former form too
    also, _ = _former_call(A.evaluate, sources, targets, ["mifgsm"], data=(x, y), protocol="digits")
    assert also.rows == new.rows
    with pytest.raises(TypeError):
        A.evaluate(sources, targets, (x, y), ["mifgsm"])  # the new form takes only the data by position
