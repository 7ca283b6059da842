"""``ModelSpec`` / ``train_or_load``: the same weights as building and fitting by hand, loaded (not
retrained) on a rerun, retrained when anything that affects the weights changes."""

from __future__ import annotations

import pytest
import torch

from pyadvt.data import TensorData
from pyadvt.models import build
from pyadvt.train import fit, training_recipe
from pyadvt.train import zoo
from pyadvt.train.zoo import ModelSpec, data_digest, train_or_load
from pyadvt.utils.sweep import CellStore


def _data(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    return TensorData(x, (x.flatten(1)[:, :32].sum(1) > x.flatten(1)[:, 32:].sum(1)).long(), 2)


def test_weights_equal_a_hand_built_and_fitted_model(tmp_path):
    data = _data()
    spec = ModelSpec("mlp", {"hidden": [8]}, "at", {"strength": 0.1, "norm": "linf", "steps": 2},
                     {"epochs": 2, "lr": 0.05, "batch_size": 16}, seed=5)
    model, info = train_or_load(spec, data, CellStore(tmp_path))
    torch.manual_seed(5)
    ref = build("mlp", in_shape=(1, 8, 8), num_classes=2, hidden=[8])
    fit(ref, data, epochs=2, lr=0.05, batch_size=16, seed=5, progress=False,
        **training_recipe("at", ref, strength=0.1, norm="linf", steps=2, num_classes=2, seed=5))
    for a, b in zip(model.state_dict().values(), ref.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert info["trained"] and 0 <= info["train_accuracy"] <= 1 and not model.training


def test_rerun_loads_and_changes_retrain(tmp_path, monkeypatch):
    data = _data()
    store = CellStore(tmp_path)
    spec = ModelSpec("mlp", {"hidden": [8]}, fit_kwargs={"epochs": 1}, seed=1)
    first, _ = train_or_load(spec, data, store)
    monkeypatch.setattr(zoo, "fit", lambda *a, **k: pytest.fail("retrained a stored model"))
    again, info = train_or_load(ModelSpec.from_dict(spec.to_dict()), data, store)
    assert not info["trained"]
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(first(x), again(x))
    monkeypatch.undo()
    changed = [ModelSpec("mlp", {"hidden": [8]}, fit_kwargs={"epochs": 2}, seed=1),
               ModelSpec("mlp", {"hidden": [8]}, fit_kwargs={"epochs": 1}, seed=2),
               ModelSpec("mlp", {"hidden": [9]}, fit_kwargs={"epochs": 1}, seed=1),
               ModelSpec("mlp", {"hidden": [8]}, "gaussian", {"strength": 0.1}, {"epochs": 1}, seed=1)]
    keys = {spec.key(data)} | {s.key(data) for s in changed} | {spec.key(_data(seed=1))}
    assert len(keys) == 6  # every change of spec or data is a new key
    assert spec.key(data) == ModelSpec("mlp", {"hidden": [8]}, fit_kwargs={"epochs": 1}, seed=1).key(data)
    assert data_digest(data) == data_digest(TensorData(data.x.clone(), data.y.clone(), 2))
    _, info = train_or_load(changed[0], data, store)
    assert info["trained"] and len(store) == 2


def test_bad_specs_are_refused_before_training():
    with pytest.raises(ValueError, match="unknown arch 'vgg'"):
        ModelSpec("vgg")
    with pytest.raises(ValueError, match="unknown recipe"):
        ModelSpec("mlp", recipe="dropout")
    with pytest.raises(ValueError, match="fit_kwargs may not set seed"):
        ModelSpec("mlp", fit_kwargs={"seed": 3})
    with pytest.raises(TypeError, match="plain data"):
        ModelSpec("mlp", fit_kwargs={"loss": object()})
    with pytest.raises(ValueError, match="needs a 'strength'"):
        train_or_load(ModelSpec("mlp", recipe="at"), _data())
