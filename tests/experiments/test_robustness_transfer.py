"""robustness-transfer experiment (seed 004): a tiny run end to end, tables consistent, cells reused (and
only the cells a changed setting affects recomputed)."""

from __future__ import annotations

import csv
import json

import pytest

from pyadvt.experiments import EXPERIMENTS
from pyadvt.experiments import robustness_transfer as rbt
from pyadvt.report import read_result
from pyadvt.train import zoo

real_transfer = rbt.transfer

TINY = {
    "at_steps": 1,
    "source_train": {"epochs": 1},
    "transfer": {"epochs": 2},
    "attack_steps": 3,
    "corruptions": {"kinds": ["gaussian_noise", "zoom_blur"], "severities": [0, 5], "representations": ["random"]},
    "rep_attack": {"steps": 5, "restarts": 2},
    # the invariants below hold by construction only with the max rule (the default is the paper's AS,
    # tested in tests/experiments/test_fidelity.py)
    "sensitivity": "max",
}


@pytest.mark.slow
def test_tiny_run_tables_and_resume(tmp_path, monkeypatch):
    out = tmp_path / "rbt"
    result = rbt.run(TINY, out_dir=out, progress=False)
    assert read_result(out)["kind"] == "robustness-transfer"
    assert (out / "report.html").exists() and len(list((out / "figures").glob("*.png"))) == len(result["figures"])
    data = result["data"]
    assert set(data["transfer"]) == {f"{r}/{m}" for r in ("standard", "adversarial", "random")
                                     for m in ("lp", "ft", "lp_ft")}
    for key, v in data["transfer"].items():
        li, l2 = v["lemma1_inf"], v["lemma1_2"]
        assert li["held"] and l2["held"], key                       # Lemma 1 never violated
        assert li["lipschitz"] == 2.0 and l2["lipschitz"] == pytest.approx(2 ** 0.5)
        assert l2["w_norm"] >= li["w_norm"] - 1e-9                  # spectral norm >= max row norm
        assert v["theorem2"]["fulfilled_but_not_robust"] == 0
        assert v["robust_accuracy"] <= v["accuracy"] + 1e-12
    rows = list(csv.DictReader(open(out / "robustness_transfer_corruptions.csv")))
    assert len(rows) == 2 * 2 and {r["severity"] for r in rows} == {"0", "5"}
    # severity 0 of both corruption kinds is the same clean LP run
    clean = [r for r in rows if r["severity"] == "0"]
    assert clean[0]["acc"] == clean[1]["acc"] and clean[0]["AS score"] == clean[1]["AS score"]
    assert result["summary"]["lemma1_held_everywhere"] is True
    monkeypatch.setattr(rbt, "transfer", lambda *a, **k: pytest.fail("transfer reran"))
    monkeypatch.setattr(zoo, "fit", lambda *a, **k: pytest.fail("pretraining reran"))
    monkeypatch.setattr(rbt, "as_score", lambda *a, **k: pytest.fail("AS before transfer reran"))
    again = rbt.run(TINY, out_dir=out, progress=False)
    assert again["data"] == json.loads(json.dumps(data))
    # one more corruption severity: only its 2 cells (2 kinds) are computed, everything else is reused
    calls = []
    monkeypatch.setattr(rbt, "transfer", lambda *a, **k: calls.append(a[1]) or real_transfer(*a, **k))
    more = dict(TINY, corruptions=dict(TINY["corruptions"], severities=[0, 2, 5]))
    changed = rbt.run(more, out_dir=out, progress=False)
    assert calls == ["lp", "lp"]
    assert changed["data"]["transfer"] == again["data"]["transfer"]
    assert {k: v for k, v in changed["data"]["corruptions"].items() if not k.endswith("/2")} == \
        again["data"]["corruptions"]


def test_registered_and_errors(tmp_path):
    assert EXPERIMENTS["robustness-transfer"] == "pyadvt.experiments.robustness_transfer"
    with pytest.raises(ValueError, match="representation"):
        rbt.run(dict(TINY, representations=["pretty"]), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="transfer method"):
        rbt.run(dict(TINY, transfer={"methods": ["lora"]}), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="norm"):
        rbt.run(dict(TINY, norm="l1"), out_dir=tmp_path, progress=False)
