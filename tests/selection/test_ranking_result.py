"""RankingResult: the ranking dict with the result protocol (valid, n_undefined, value, summary)."""

from __future__ import annotations

import json

import torch
from torch import nn

from pyadvt.data import TensorData
from pyadvt.selection import RankingResult, rank_sources


def _mlp(seed: int, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, classes))


class _Broken(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_protocol_from_the_rows_and_failures():
    r = RankingResult(rows=[{"name": "x"}, {"name": "y"}, {"name": "z"}], failed={"y": "y: tau1 failed"})
    assert r.valid == [True, False, True] and r.n_undefined == 1
    assert r.value == "x" and r.order == ["x", "z"]
    s = r.summary()
    assert s["n_undefined"] == 1 and s["best"] == "x" and s["n"] == 3
    assert json.loads(json.dumps(r))["rows"][0]["name"] == "x"  # still a plain JSON-serialisable dict


def test_nothing_scored_has_no_headline():
    r = RankingResult(rows=[{"name": "a"}], failed={"a": "a: forward failed"})
    assert r.value is None and r.order == [] and r.valid == [False]


def test_rank_sources_returns_it_with_the_failed_candidate_flagged():
    torch.manual_seed(0)
    x, y = torch.rand(24, 1, 4, 4), torch.arange(24) % 4
    data = TensorData(x, y)
    sources = {"s0": _mlp(1), "s1": _mlp(2), "bad": _Broken()}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = rank_sources(sources, _mlp(3), data, target_train=data, probe=False, scores="tau1*tau2", n_eval=8,
                           steps=2, progress=False)
    assert isinstance(res, RankingResult)
    names = [row["name"] for row in res["rows"]]
    assert sorted(names) == ["bad", "s0", "s1"] or sorted(names) == ["s0", "s1"]
    assert "bad" in res["failed"] and res.n_undefined == len(res["failed"]) >= 1
    assert res.value in {"s0", "s1"} and res.value == res["rows"][0]["name"]
    assert res.summary()["failed"].keys() == res["failed"].keys()
