"""score_source / score_surrogate: one candidate's scores with the result protocol, checked by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pyadvt.attacks import PGD
from pyadvt.models import build
from pyadvt.selection import SourceScore, SurrogateScore, rank_surrogates, score_source, score_surrogate
from tests.metrics.test_smoothness_no_second_derivative import _OnceReLU

C = 3


def _data(n: int = 24):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g), torch.arange(n) % C


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build("mlp", num_classes=C)


def test_score_surrogate_matches_the_rates_by_hand():
    x, y = _data()
    sur, tgt = _net(0), _net(1)
    s = score_surrogate(sur, {"t": tgt, "self": sur}, x, y, name="self", eps=0.2, steps=3, seed=5,
                        scores=["similarity"])
    assert isinstance(s, SurrogateScore) and isinstance(s, dict)
    x_adv = PGD(sur, eps=0.2, steps=3, seed=5)(x, y)
    with torch.no_grad():
        acc = float((sur(x).argmax(1) == y).double().mean())
        fooling = float((sur(x_adv).argmax(1) != y).double().mean())
        asr_t = float((tgt(x_adv).argmax(1) != y).double().mean())
    assert s["accuracy"] == pytest.approx(acc) and s["fooling"] == pytest.approx(fooling)
    assert s["targets"]["t"]["asr"] == pytest.approx(asr_t)
    assert s.value == pytest.approx(asr_t)  # the white-box target "self" is left out of the mean
    assert s.valid == {"t": True, "self": True} and s.n_undefined == 0 and s["failed"] == {}
    ga = torch.autograd.grad(nn.functional.cross_entropy(sur(x.requires_grad_()), y, reduction="sum"), x)[0]
    x = x.detach()
    gb = torch.autograd.grad(nn.functional.cross_entropy(tgt(x.requires_grad_()), y, reduction="sum"), x)[0]
    cos = nn.functional.cosine_similarity(ga.flatten(1), gb.flatten(1)).mean()
    assert s["mean_similarity"] == pytest.approx(float(cos), abs=1e-5)
    assert s["smoothness"] is None and s.summary()["n_undefined"] == 0


def test_score_surrogate_equals_its_row_of_rank_surrogates():
    x, y = _data()
    pool = {"a": _net(0), "b": _net(1)}
    ranking = rank_surrogates(pool, pool, (x, y), n_eval=24, steps=2, scores=["similarity"], progress=False)
    for row in ranking["rows"]:
        s = score_surrogate(pool[row["name"]], pool, x, y, name=row["name"], steps=2, scores=["similarity"])
        assert s["mean_asr"] == row["mean_asr"] and s["mean_similarity"] == row["mean_similarity"]
        assert s["accuracy"] == row["accuracy"] and s["fooling"] == row["fooling"]


class _NoDoubleBackward(nn.Module):
    """A ReLU whose backward cannot be differentiated: the smoothness (HVPs) fails, the attack runs."""

    def forward(self, z):
        return _OnceReLU.apply(z)


def test_a_failing_metric_raises_or_is_recorded():
    x, y = _data()
    sur = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), _NoDoubleBackward(), nn.Linear(16, C))
    tgt = _net(1)
    with pytest.raises(Exception):
        score_surrogate(sur, {"t": tgt}, x, y, steps=1, scores=["smoothness"], n_smooth=4)
    errors: dict = {}
    s = score_surrogate(sur, {"t": tgt}, x, y, steps=1, scores=["smoothness"], n_smooth=4, errors=errors)
    assert "smoothness" in errors and "smoothness" in s["failed"] and s["smoothness"] is None
    assert s.value is not None and s.n_undefined == 0


def test_score_surrogate_bad_input_before_any_work():
    x, y = _data()
    sur = _net(0)
    with pytest.raises(ValueError, match="at least one target"):
        score_surrogate(sur, {}, x, y)
    with pytest.raises(ValueError, match="score"):
        score_surrogate(sur, {"t": sur}, x, y, scores=["nosuch"])
    with pytest.raises(ValueError, match="'y'"):
        score_surrogate(sur, {"t": sur}, x)
    with pytest.raises(ValueError, match="incompatible"):
        score_surrogate(sur, {"t": build("mlp", in_shape=(3, 8, 8), num_classes=C)}, x, y)


def test_score_source_is_a_source_score():
    x, y = _data()
    s = score_source(_net(0), _net(1), x, y, scores=["logme", "tau1", "tau2"])
    assert isinstance(s, SourceScore)
    assert s.valid == {"logme": True, "tau1": True, "tau2": True}
    assert s.value == pytest.approx(s["tau1"] * s["tau2"]) and not math.isnan(s.value)
    assert s.n_undefined == s["n_undefined"] and s.summary()["logme"] == s["logme"]
