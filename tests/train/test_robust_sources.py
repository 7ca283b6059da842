"""pyadvt.train.robust_sources: seed 002's source kinds as ModelSpecs, trained through train_or_load."""

from __future__ import annotations

import pytest
import torch

from pyadvt.data import TensorData
from pyadvt.train.adversarial import AdversarialLoss
from pyadvt.train.gaussian import GaussianNoise
from pyadvt.train.recipes import training_recipe
from pyadvt.train.robust_sources import SOURCE_KINDS, robust_source_spec, source_recipe
from pyadvt.train.zoo import train_or_load
from pyadvt.utils.sweep import CellStore


@pytest.mark.parametrize("kind,norm,eps", [("at_l2", "l2", 1.0), ("at_linf", "linf", 0.1)])
def test_pgd_k_step_is_2_5_eps_over_k(kind, norm, eps):
    recipe, kw = source_recipe(kind, eps_l2=1.0, eps_linf=0.1, steps=8)
    loss = training_recipe(recipe, seed=0, **kw)["loss_fn"]
    assert isinstance(loss, AdversarialLoss) and loss.norm == norm and loss.steps == 8
    assert loss.eps == eps and loss.alpha == pytest.approx(2.5 * eps / 8) and loss.random_start


@pytest.mark.parametrize("kind,eps", [("at_l2_pgd1", 1.0), ("at_linf_pgd1", 0.1)])
def test_pgd1_is_one_step_of_2_eps_from_x(kind, eps):
    recipe, kw = source_recipe(kind, eps_l2=1.0, eps_linf=0.1, steps=8)
    loss = training_recipe(recipe, seed=0, **kw)["loss_fn"]
    assert loss.steps == 1 and loss.alpha == pytest.approx(2 * eps) and not loss.random_start


def test_gaussian_and_natural():
    recipe, kw = source_recipe("gaussian_l2", eps_l2=1.5, eps_linf=0.1, steps=8, gaussian_std=2.0)
    noise = training_recipe(recipe, seed=0, **kw)["batch_transform"]
    assert isinstance(noise, GaussianNoise) and noise.eps == 1.5 and noise.std == 2.0 and noise.norm == "l2"
    assert source_recipe("natural", eps_l2=1.0, eps_linf=0.1, steps=8) == ("st", {})


def test_bad_kind_and_steps_rejected():
    with pytest.raises(ValueError, match="unknown source kind 'svm'"):
        source_recipe("svm", eps_l2=1.0, eps_linf=0.1, steps=1)
    with pytest.raises(ValueError, match="'steps'"):
        source_recipe("at_l2", eps_l2=1.0, eps_linf=0.1, steps=0)
    assert len(SOURCE_KINDS) == 6


def test_spec_key_tracks_only_what_changes_the_weights():
    base = dict(arch="mlp", model_kwargs={"hidden": [8]}, eps_l2=1.0, eps_linf=0.1, steps=2, fit_kwargs={"epochs": 1})
    data = TensorData(torch.rand(20, 1, 4, 4), torch.arange(20) % 2, 2)
    nat, nat_eps = robust_source_spec("natural", **base), robust_source_spec("natural", **dict(base, eps_linf=0.3))
    assert nat.key(data) == nat_eps.key(data)                      # natural training ignores the threat model
    at, at_eps = robust_source_spec("at_linf", **base), robust_source_spec("at_linf", **dict(base, eps_linf=0.3))
    assert at.key(data) != at_eps.key(data)
    assert robust_source_spec("at_linf", **dict(base, seed=1)).key(data) != at.key(data)


def test_trains_once_and_loads_the_same_weights(tmp_path):
    spec = robust_source_spec("at_linf_pgd1", arch="mlp", model_kwargs={"hidden": [8]}, eps_l2=1.0, eps_linf=0.1,
                              steps=2, fit_kwargs={"epochs": 1, "batch_size": 8})
    data = TensorData(torch.rand(24, 1, 4, 4), torch.arange(24) % 3, 3)
    store = CellStore(tmp_path)
    a, info_a = train_or_load(spec, data, store)
    b, info_b = train_or_load(spec, data, store)
    assert info_a["trained"] and not info_b["trained"]
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    fresh = spec.build(data)
    assert any(not torch.equal(p, q) for p, q in zip(fresh.state_dict().values(), a.state_dict().values()))
