"""robust-transfer experiment (seed 002): a tiny run end to end, cached cells reused on rerun (and only
the cells a changed setting affects recomputed), CLI."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from pyadvt.experiments import EXPERIMENTS
from pyadvt.experiments import robust_transfer as rt
from pyadvt.report import read_result
from pyadvt.train import zoo
from pyadvt.transfer.finetune import finetune as real_finetune
from pyadvt.utils.config import resolve_config

TINY = {
    "sources": ["natural", "at_l2_pgd1", "gaussian_l2"],
    "at_steps": 1,
    "source_train": {"epochs": 1},
    "target": {"sizes": [10, 30], "seeds": [0, 1], "blocks": ["head", 1], "epochs": 2},
    "curve": {"size": 30},
    "shift": {"seeds": [0], "size": 20},
    "influence": {"sources": ["natural"], "size": 20, "ks": [1, 5]},
}


@pytest.mark.slow
def test_tiny_run_writes_everything_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "rt"
    result = rt.run(TINY, out_dir=out, progress=False)
    assert read_result(out)["kind"] == "robust-transfer"
    assert (out / "report.html").exists() and (out / "report.md").exists()
    assert len(list((out / "figures").glob("*.png"))) == len(result["figures"]) >= 4
    rows = list(csv.DictReader(open(out / "robust_transfer_sweep.csv")))
    assert len(rows) == 3 * 2 * 2 * 2           # sources x blocks x sizes x seeds
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    delta = result["data"]["delta"]
    assert {d[0] for d in delta} == {"at_l2_pgd1", "gaussian_l2"} and len(delta) == 2 * 2 * 2
    # delta equals the mean of the paired per-seed differences recomputed from the sweep rows
    acc = {(r["source"], r["blocks"], r["size"], r["seed"]): r["accuracy"] for r in result["data"]["sweep"]}
    d0 = delta[0]
    diffs = [acc[(d0[0], d0[1], d0[2], s)] - acc[("natural", d0[1], d0[2], s)] for s in (0, 1)]
    assert d0[3] == pytest.approx(sum(diffs) / 2)
    assert result["data"]["sources"]["at_l2_pgd1"]["robust_accuracy_l2"] >= 0
    # a rerun reuses every cell: no training at all
    monkeypatch.setattr(rt, "finetune", lambda *a, **k: pytest.fail("fine-tuning reran"))
    monkeypatch.setattr(zoo, "fit", lambda *a, **k: pytest.fail("source training reran"))
    again = rt.run(TINY, out_dir=out, progress=False)
    assert again["data"] == json.loads(json.dumps(result["data"]))
    # a changed low-resolution size recomputes exactly the low_res shift cells (3 sources x 1 seed),
    # nothing else: the digest-keyed cells of the other settings are reused
    calls = []
    monkeypatch.setattr(rt, "finetune", lambda model, train, **k: calls.append(train.x.shape) or real_finetune(
        model, train, **k))
    changed = rt.run(dict(TINY, shift=dict(TINY["shift"], lowres_size=2)), out_dir=out, progress=False)
    assert len(calls) == 3
    assert changed["data"]["sweep"] == again["data"]["sweep"]
    assert changed["data"]["influence"] == again["data"]["influence"]
    assert [r[1] for r in changed["data"]["shift"]] == [r[1] for r in again["data"]["shift"]]   # "none" column


def test_registered_and_config_errors(tmp_path):
    assert EXPERIMENTS["robust-transfer"] == "pyadvt.experiments.robust_transfer"
    with pytest.raises(ValueError, match="natural"):
        rt.run(dict(TINY, sources=["at_l2"]), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown source kind"):
        rt.run(dict(TINY, sources=["natural", "svm"]), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown config key"):
        rt.run({"target": {"size": [1]}}, out_dir=tmp_path, progress=False)


def test_source_specs_share_weights_across_experiments():
    """The natural source's spec does not depend on the threat model; an AT source's does."""
    from pyadvt.experiments import robustness_transfer as rbt

    cfg = resolve_config(rt.DEFAULTS, None)
    other = resolve_config(rt.DEFAULTS, {"eps_linf": 0.2, "eps_l2": 2.0})
    assert rt.source_spec("natural", cfg) == rt.source_spec("natural", other)
    assert rt.source_spec("at_linf", cfg) != rt.source_spec("at_linf", other)
    rcfg = resolve_config(rbt.DEFAULTS, {"at_steps": 10, "source_train": cfg["source_train"]})
    assert rbt.representation_spec("adversarial", rcfg) == rt.source_spec("at_linf", cfg)
    assert rbt.representation_spec("standard", rcfg) == rt.source_spec("natural", cfg)


def test_source_losses():
    from pyadvt.train.adversarial import AdversarialLoss
    from pyadvt.train.gaussian import GaussianNoise

    assert rt.source_loss("natural", 1.0, 0.1, 10) == (None, None)
    pgd1, _ = rt.source_loss("at_l2_pgd1", 1.0, 0.1, 10)
    assert isinstance(pgd1, AdversarialLoss) and pgd1.steps == 1 and pgd1.alpha == 2.0 and not pgd1.random_start
    pgdk, _ = rt.source_loss("at_linf", 1.0, 0.1, 10)
    assert pgdk.norm == "linf" and pgdk.steps == 10 and pgdk.alpha == pytest.approx(0.025)
    _, noise = rt.source_loss("gaussian_l2", 1.0, 0.1, 10)
    assert isinstance(noise, GaussianNoise) and noise.eps == 1.0 and noise.norm == "l2"


@pytest.mark.slow
def test_cli_with_config_file(tmp_path, capsys):
    from pyadvt.cli import main

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(dict(TINY, sources=["natural", "at_l2_pgd1"],
                                       target=dict(TINY["target"], sizes=[10], blocks=["head"]))))
    assert main(["experiment", "robust-transfer", "--config", str(cfg), "--quiet", "--out", str(tmp_path / "o")]) == 0
    assert "delta_at_l2_pgd1_head_n10" in capsys.readouterr().out
    assert main(["experiment", "robust-transfer", "--set", "target.sizes=oops", "--out", str(tmp_path / "p")]) == 2
