"""Renamed parameters (one vocabulary: source/target models, y labels) keep their old keyword for one
release with a DeprecationWarning, and give the same results as the new names."""

from __future__ import annotations

import inspect
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.bounds.seed001 import lower_bound, lower_bound_from_terms
from pyadvt.train.losses import soft_cross_entropy
from pyadvt.utils.deprecation import renamed_parameters


def test_decorator_maps_warns_and_refuses_both():
    @renamed_parameters(victim="target")
    def f(source, target=0):
        """doc"""
        return source + 10 * target

    assert list(inspect.signature(f).parameters) == ["source", "target"] and f.__doc__ == "doc"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(1, target=2) == 21  # the new name: no warning
    with pytest.warns(DeprecationWarning, match="'victim' is deprecated.*use 'target'"):
        assert f(1, victim=2) == 21
    with pytest.raises(TypeError, match="both 'victim'.*'target'"):
        f(1, victim=2, target=3)


def test_soft_cross_entropy_target_alias():
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(5, 4, generator=g), torch.tensor([0, 3, 1, 1, 2])
    ref = F.cross_entropy(logits, y)
    assert torch.allclose(soft_cross_entropy(logits, y=y), ref)
    with pytest.warns(DeprecationWarning, match="'target'.*use 'y'"):
        old = soft_cross_entropy(logits, target=F.one_hot(y, 4).float())
    assert torch.allclose(old, ref)


def test_lower_bound_from_terms_risk_surrogate_alias():
    new = lower_bound_from_terms(0.9, risk_source=0.01, risk_target=0.02, c_F=0.05, c_G=0.1, eps=0.5, sim_inf=0.5)
    a = 0.1
    by_hand = (1 - a) - 0.03 - (0.5 * (1 + a) - 0.05 * (1 - a)) / 0.4 - (0.5 * (1 - a) / 0.4) * math.sqrt(1.0)
    assert new == pytest.approx(by_hand, abs=1e-12)
    with pytest.warns(DeprecationWarning, match="risk_surrogate"):
        old = lower_bound_from_terms(0.9, risk_surrogate=0.01, risk_target=0.02, c_F=0.05, c_G=0.1, eps=0.5,
                                     sim_inf=0.5)
    assert old == new


def test_lower_bound_surrogate_aliases_give_the_same_bound():
    torch.manual_seed(0)
    source = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    target = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.rand(6, 1, 2, 2)
    y = source(x).argmax(1).detach()
    x_adv = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    new = lower_bound(source=source, target=target, x=x, y=y, x_adv=x_adv, smooth_source=2.0, smooth_target=3.0)
    with pytest.warns(DeprecationWarning) as rec:
        old = lower_bound(surrogate=source, target=target, x=x, y=y, x_adv=x_adv, smooth_surrogate=2.0,
                          smooth_target=3.0)
    assert {str(w.message).split("'")[1] for w in rec if w.category is DeprecationWarning} >= {
        "surrogate", "smooth_surrogate"}
    assert old.summary() == new.summary() and new.terms["s_F"] == 2.0
    assert list(inspect.signature(lower_bound).parameters)[:2] == ["source", "target"]
