"""Smoke and unit tests of the seed-001 surrogate-zoo experiment (``pyadvt experiment surrogates``)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from pyadvt.experiments import EXPERIMENTS
from pyadvt.experiments import surrogates as exp
from pyadvt.train import SAM, AdversarialLoss, CutMix, Cutout, JacobianRegularizer, LabelSmoothing, Mixup

TINY = {
    "seeds": [0],
    "targets": ["mlp"],
    "train": {"epochs": 1, "batch_size": 128},
    "zoo": {"at_eps": [0.5], "mixup": [], "cutmix": [0.5], "cutout": [], "label_smoothing": [], "ir": [],
            "jr": [], "er": []},
    "attack": {"budgets": [0.1, 0.2], "steps": 2, "methods": ["pgd", "mi"]},
    "eval": {"n_samples": 24, "batch_size": 24},
}


def test_zoo_and_recipes():
    cfg = exp.resolve()
    members = exp.zoo_members(cfg)
    names = [m["name"] for m in members]
    assert names[0] == "ST" and len(names) == len(set(names)) == 1 + 6 + 7 * 2 + 3
    assert {"SAM", "SAM&IR", "SAM&JR", "AT-0.05", "AT-2"} <= set(names)
    quick = exp.resolve(quick=True)
    assert len(quick["seeds"]) == 1 and len(exp.zoo_members(quick)) == 15
    assert len(cfg["seeds"]) >= 3 and len(cfg["zoo"]["at_eps"]) >= 4 and len(cfg["attack"]["budgets"]) >= 2
    expect = {"at": AdversarialLoss, "mixup": Mixup, "cutmix": CutMix, "cutout": Cutout,
              "label_smoothing": LabelSmoothing, "sam_jr": JacobianRegularizer}
    for m in members:
        model = exp._surrogate(cfg)
        r = exp.member_recipe(m, cfg, model, seed=0)
        if m["family"] in expect:
            assert isinstance(r.get("loss_fn", r.get("batch_transform")), expect[m["family"]])
        assert isinstance(r.get("optimizer"), SAM) == m["family"].startswith("sam")
    with pytest.raises(ValueError, match="attack"):
        exp.resolve({"attack": {"methods": ["cw"]}})
    with pytest.raises(ValueError, match="unknown config key"):
        exp.resolve({"zoo": {"at_epss": [1.0]}})


@pytest.mark.slow
def test_tiny_run_writes_results_and_resumes(tmp_path, monkeypatch):
    assert EXPERIMENTS["surrogates"] == "pyadvt.experiments.surrogates"
    res = exp.run(TINY, out_dir=tmp_path, progress=False)
    names = ["ST", "AT-0.5", "CM-0.5", "SAM", "SAM&IR", "SAM&JR"]
    assert set(m.split("/")[0] for m in res["data"]["members"]) == set(names)
    st = res["data"]["members"]["ST/seed0"]
    assert 0 <= st["accuracy"] <= 1 and st["smoothness_mean"] > 0
    assert set(st["attacks"]) == {"pgd", "mi"} and set(st["attacks"]["pgd"]) == {"untargeted", "targeted"}
    assert 0 <= st["attacks"]["pgd"]["untargeted"]["0.2"]["targets"]["mlp"]["asr"] <= 1
    assert "vacuous" in st["bound"]["mlp"]
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["kind"] == "surrogates" and saved["tables"][0]["rows"]
    with open(tmp_path / "statistics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 2 and {"R2_1", "R2_2", "r_smoothness", "r_similarity"} <= set(rows[0])
    for f in ("fig2_asr_vs_at_untargeted.png", "fig3_smoothness_vs_at.png", "fig4_similarity_vs_at.png",
              "fig5_asr_by_member.png", "asr_table.csv", "report.html", "report.md"):
        assert (tmp_path / f).stat().st_size > 0
    # a rerun trains and evaluates nothing: every cell comes from disk
    def boom(*a, **k):
        raise AssertionError("retrained a stored cell")
    monkeypatch.setattr(exp, "_train_cell", boom)
    monkeypatch.setattr(exp, "evaluate_surrogate", boom)
    again = exp.run(TINY, out_dir=tmp_path, progress=False)
    assert again["data"]["members"] == res["data"]["members"]
    torch.testing.assert_close(torch.tensor(again["summary"]["sam_jr_minus_st_asr"]),
                               torch.tensor(res["summary"]["sam_jr_minus_st_asr"]))
    # the CLI with the same settings from a config file (all cells cached)
    from pyadvt.cli import main as cli_main

    (tmp_path / "tiny.yaml").write_text(json.dumps(TINY))
    assert cli_main(["experiment", "surrogates", "--config", str(tmp_path / "tiny.yaml"), "--out-dir",
                     str(tmp_path), "--no-progress"]) == 0
    assert cli_main(["experiment", "surrogates", "--out-dir", str(tmp_path), "--set", "zoo.at_epss=[1]"]) == 2
