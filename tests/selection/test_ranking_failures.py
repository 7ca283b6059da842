"""A candidate that fails inside a ranking metric is recorded in one line and the others are ranked
exactly as without it: a layer without double backward, a model returning garbage, a model raising,
among torchvision models (random init, 3x32x32)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from pyadvt.data import TensorData
from pyadvt.selection import rank_sources, rank_surrogates, score_source

tv = pytest.importorskip("torchvision")


class _NoDoubleBackward(torch.autograd.Function):
    """``x * x`` whose backward cannot itself be differentiated (like ``aten::hardsigmoid_backward``)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():  # create_graph=True: a Hessian-vector product is being built
            raise RuntimeError("derivative for _NoDoubleBackward_backward is not implemented")
        (x,) = ctx.saved_tensors
        return 2 * x * g


class Split(nn.Module):
    """A small features/head classifier on 3x32x32."""

    def __init__(self, seed=0, width=4, num_classes=3):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Linear(4 * width, num_classes)

    def act(self, z):
        return torch.tanh(z)

    def features(self, x):
        return nn.functional.adaptive_avg_pool2d(self.act(self.conv(x)), 2).flatten(1)

    def forward(self, x):
        return self.head(self.features(x))


class NoDoubleBackward(Split):
    def act(self, z):
        return _NoDoubleBackward.apply(z)


class Garbage(Split):
    """One row of logits whatever the batch: passes a one-image check, wrong for every metric batch."""

    def forward(self, x):
        return super().forward(x)[:1]


class Raising(Split):
    def forward(self, x):
        if x.shape[0] > 1:
            raise RuntimeError("kernel not available for this batch")
        return super().forward(x)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    data = TensorData(torch.rand(12, 3, 32, 32), torch.arange(12) % 3)
    good = {"resnet18": tv.models.resnet18(num_classes=3).eval(), "small": Split(seed=7).eval()}
    bad = {"nodouble": NoDoubleBackward(seed=1).eval(), "garbage": Garbage(seed=2).eval(),
           "raising": Raising(seed=3).eval()}
    return data, good, bad


def _unranked(rows):
    return {r["name"]: {k: v for k, v in r.items() if not k.startswith("rank_")} for r in rows}


def _one_warning(record):
    runtime = [w for w in record if issubclass(w.category, RuntimeWarning) and "failed in a metric" in str(w.message)]
    assert len(runtime) == 1, [str(w.message) for w in record]
    return str(runtime[0].message)


def test_rank_surrogates_records_failures_and_ranks_the_others(setup):
    data, good, bad = setup
    targets = {"t": Split(seed=9).eval()}
    kw = dict(n_eval=4, steps=1, n_smooth=2, progress=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        res = rank_surrogates({**good, **bad}, targets, data, **kw)
    alone = rank_surrogates(good, targets, data, **kw)
    assert set(res["failed"]) == {"nodouble", "garbage", "raising"} and alone["failed"] == {}
    assert "3 of 5 surrogates" in _one_warning(record)
    rows = _unranked(res["rows"])
    for name, row in _unranked(alone["rows"]).items():  # the good ones: the same numbers as without the bad
        assert rows[name] == row
    assert [r["name"] for r in res["rows"][:2]] == [r["name"] for r in alone["rows"]]  # ranked first (ASR)
    nd = rows["nodouble"]  # only the Hessian needs double backward: its ASR and similarity are measured
    assert nd["failed"].startswith("surrogate 'nodouble' failed in smoothness: InvalidTypeError: this quantity "
                                   "needs second derivatives")  # pyadvt's hint naming the layer and what to do
    assert "NoDoubleBackward use _NoDoubleBackward_backward" in nd["failed"] and "\n" not in nd["failed"]
    assert nd["smoothness"] is None and nd["mean_asr"] is not None and nd["mean_similarity"] is not None
    assert rows["garbage"]["failed"].startswith("surrogate 'garbage' failed in attack, similarity with 't'")
    assert "one row per input" in rows["garbage"]["failed"]
    assert rows["raising"]["failed"].startswith("surrogate 'raising' failed in attack")
    assert "kernel not available" in rows["raising"]["failed"]
    for name in ("garbage", "raising"):
        assert rows[name]["mean_asr"] is None and "\n" not in rows[name]["failed"]
        assert "Traceback" in res["tracebacks"][name] and name not in alone["tracebacks"]
    i = res["surrogates"].index("raising")
    assert res["asr"][i] == [None] and res["asr"][res["surrogates"].index("small")][0] is not None


def test_rank_sources_records_failures_and_ranks_the_others(setup):
    data, good, bad = setup
    reference = Split(seed=11).eval()
    kw = dict(n_eval=4, steps=1, probe=False, scores=["logme", "tau1*tau2", "eq2_loss"], progress=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        res = rank_sources({**good, **bad}, reference, data, **kw)
    alone = rank_sources(good, reference, data, **kw)
    _one_warning(record)
    rows = _unranked(res["rows"])
    for name, row in _unranked(alone["rows"]).items():
        assert rows[name] == row
    assert set(res["failed"]) == {"garbage", "raising"}  # tau and eq. 2 are first-order: nodouble is scored
    assert rows["nodouble"]["score"] is not None and rows["nodouble"]["failed"] is None
    assert rows["garbage"]["failed"].startswith("source 'garbage' failed in tau1/tau2, eq2_loss: InvalidValueError")
    assert rows["garbage"]["logme"] is not None  # features and head work: the estimator still ran
    raw = {r["name"]: r for r in res["rows"]}
    assert rows["raising"]["score"] is None and raw["raising"]["rank_score"] is None and raw["small"]["rank_score"]
    assert {r["name"] for r in res["rows"][-2:]} == {"garbage", "raising"}  # unranked by score: sorted last


def test_score_source_raises_unless_errors_are_recorded(setup):
    data, _, bad = setup
    reference = Split(seed=11).eval()
    with pytest.raises(RuntimeError, match="kernel not available"):
        score_source(bad["raising"], reference, data.x[:4], data.y[:4], scores=["tau1"])
    errors = {}
    row = score_source(bad["raising"], reference, data.x[:4], data.y[:4], scores=["tau1", "eq2_loss"], errors=errors)
    assert row["tau1"] is None and row["eq2_loss"] is None and set(errors) == {"tau1/tau2", "eq2_loss"}
    assert errors["eq2_loss"]["message"] == "RuntimeError: kernel not available for this batch"


def test_every_candidate_failing(setup):
    data, _, bad = setup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = rank_surrogates({"raising": bad["raising"]}, {"t": Split(seed=9).eval()}, data, n_eval=4, steps=1,
                              n_smooth=2, progress=False)
    assert res["rows"][0]["mean_asr"] is None and set(res["failed"]) == {"raising"}
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(10, 3))  # cannot take the images at all
    with pytest.raises(ValueError, match="incompatible models: surrogate 'w' cannot take inputs of shape"):
        rank_surrogates({"w": wrong}, {"t": Split(seed=9).eval()}, data, n_eval=4, progress=False)
    with warnings.catch_warnings(record=True) as record:  # one of two cannot: it is left out, not fatal
        warnings.simplefilter("always")
        res = rank_surrogates({"w": wrong, "ok": Split(seed=1).eval()}, {"t": Split(seed=9).eval()}, data, n_eval=4,
                              steps=1, n_smooth=2, scores=["similarity"], progress=False)
    _one_warning(record)
    assert set(res["failed"]) == {"w"} and res["failed"]["w"].startswith(
        "surrogate 'w' failed in forward: incompatible models: cannot take inputs of shape (3, 32, 32)")
    assert res["rows"][0]["name"] == "ok" and res["rows"][0]["mean_asr"] is not None
