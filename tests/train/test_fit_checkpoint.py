"""Checkpoints: round trips give identical outputs; bad files give clear errors and run no code."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from torch import nn

from pyadvt.models import MODELS, build, wrap
from pyadvt.train import load_checkpoint, save_checkpoint


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_rebuilds_and_reproduces_outputs(tmp_path, name):
    model = build(name, in_shape=(1, 8, 8), num_classes=4, mean=0.2, std=0.3)
    with torch.no_grad():  # non-default BatchNorm statistics must survive too
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    config = {"epochs": 3, "note": "x", "nested": {"lr": [0.1, 0.2]}}
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, config)
    loaded, cfg = load_checkpoint(path)
    assert cfg == config and type(loaded) is type(model) and not loaded.training
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(loaded(x), model.eval()(x))
    assert [p for p in os.listdir(tmp_path / "sub")] == ["m.pt"]  # no temporary file left behind


def test_user_models_need_the_model_argument(tmp_path):
    net = wrap(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)))
    path = save_checkpoint(tmp_path / "w.pt", net)
    with pytest.raises(ValueError, match="no build config.*'model'"):
        load_checkpoint(path)
    fresh = wrap(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)))
    loaded, cfg = load_checkpoint(path, model=fresh)
    x = torch.rand(2, 1, 2, 2)
    assert loaded is fresh and cfg == {} and torch.equal(fresh(x), net(x))
    with pytest.raises(ValueError, match="do not fit"):
        load_checkpoint(path, model=wrap(nn.Sequential(nn.Flatten(), nn.Linear(4, 5))))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > evil.txt",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bad_files_and_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"garbage bytes")
    with pytest.raises(ValueError, match="junk.pt.*not a readable pyadvt checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt.*not a pyadvt checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(_Evil(), f)
    with pytest.raises(ValueError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "evil.txt").exists()
    model = build("mlp", hidden=(4,))
    with pytest.raises(TypeError, match=r"config\.bad"):
        save_checkpoint(tmp_path / "c.pt", model, {"bad": torch.zeros(1)})
    with pytest.raises(TypeError, match="'config' must be a dict"):
        save_checkpoint(tmp_path / "c.pt", model, [1])
