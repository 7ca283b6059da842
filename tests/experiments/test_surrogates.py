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
    for f in ("asr_table.csv", "report.html", "report.md"):
        assert (tmp_path / f).stat().st_size > 0
    # every figure spec is drawn once, by the report, into figures/ (Figs. 2 x 2 modes, 3, 4, 5 x 3)
    titles = [f["title"] for f in saved["figures"]]
    assert len(titles) == 7 and titles[0].startswith("Fig. 2: untargeted") and titles[1].startswith("Fig. 2: targeted")
    pngs = sorted((tmp_path / "figures").glob("*.png"))
    assert len(pngs) == 7 and all(p.stat().st_size > 0 for p in pngs) and not list(tmp_path.glob("*.png"))
    # a rerun trains and evaluates nothing: every cell comes from disk
    def boom(*a, **k):
        raise AssertionError("retrained a stored cell")
    import pyadvt.train.zoo

    monkeypatch.setattr(pyadvt.train.zoo, "fit", boom)
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


# ---------------------------------------------------------------------------------------------------
# aggregate() on synthetic per-cell results (the full experiment is too slow for a unit test)

AGG_CFG = {"seeds": [0, 1], "targets": ["mlp", "lenet"],
           "zoo": {"at_eps": [0.5, 1.0, 2.0], "mixup": [], "cutmix": [], "cutout": [], "label_smoothing": [],
                   "ir": [], "jr": [], "er": []},
           "attack": {"budgets": [0.1, 0.2, 0.3], "methods": ["pgd", "mi"], "targeted": True}}
# mean (over seeds) PGD ASR at the middle budget 0.2 for ST, AT-0.5, AT-1, AT-2 (seed 001 Fig. 2)
AT_CURVES = {("untargeted", "mlp"): [0.30, 0.50, 0.45, 0.20],    # rises, then falls below the peak
             ("untargeted", "lenet"): [0.20, 0.30, 0.40, 0.60],  # keeps rising: no fall
             ("targeted", "mlp"): [0.10, 0.20, 0.30, 0.25],      # rises, then falls (peak at AT-1)
             ("targeted", "lenet"): [0.50, 0.40, 0.30, 0.20]}    # only falls: no rise


def _synthetic(sam_jr_delta):
    """(cfg, members, evals, accs) with ASR = curve + 0.1 (eps - 0.2) + method/seed offsets;
    SAM&JR's ASR is ST's plus ``sam_jr_delta(method, mode, target, eps)``."""
    cfg = exp.resolve(AGG_CFG)
    members = exp.zoo_members(cfg)
    names = [m["name"] for m in members]
    assert names == ["ST", "AT-0.5", "AT-1", "AT-2", "SAM", "SAM&IR", "SAM&JR"]
    evals, accs = {}, {}
    for s in cfg["seeds"]:
        noise = 0.02 if s == 0 else -0.02  # cancels in the mean over the two seeds
        for i, name in enumerate(names):
            def asr(method, mode, tgt, eps, name=name):
                base = AT_CURVES[(mode, tgt)][0] if name not in ("AT-0.5", "AT-1", "AT-2") else \
                    AT_CURVES[(mode, tgt)][names.index(name)]
                if name in ("SAM", "SAM&IR"):
                    base += 0.05
                v = base + 0.1 * (eps - 0.2) + (0.01 if method == "mi" else 0.0) + noise
                return v + (sam_jr_delta(method, mode, tgt, eps) if name == "SAM&JR" else 0.0)
            attacks = {method: {mode: {f"{eps:g}": {"fooling": 0.9 + 0.01 * i + 0.001 * s,
                                                     "targets": {t: {"asr": asr(method, mode, t, eps), "rate": 0.5}
                                                                 for t in cfg["targets"]}}
                                        for eps in cfg["attack"]["budgets"]}
                                for mode in ("untargeted", "targeted")}
                       for method in cfg["attack"]["methods"]}
            evals[(name, s)] = {"smoothness_mean": 1.0 + 0.3 * i + 0.1 * s, "smoothness_max": 5.0,
                                "similarity": {t: {"mean": 0.1 + 0.02 * i - 0.01 * s, "min": -0.2}
                                               for t in cfg["targets"]},
                                "attacks": attacks,
                                "bound": {t: {"value": -1.0, "vacuous": True, "c_G": 0.0, "eps": 0.5,
                                              "empirical": 0.25} for t in cfg["targets"]}}
            accs[(name, s)] = 0.95 - 0.01 * i - 0.005 * s
    return cfg, members, evals, accs


def test_aggregate_little_robustness_finding_on_synthetic_curves():
    # Seed 001 Fig. 2 / sec. 3: "a little robustness" = ASR rises above ST at some small AT budget and
    # falls again at the largest budget; a curve that keeps rising (or only falls) is not that pattern.
    cfg, members, evals, accs = _synthetic(lambda *a: 0.0)
    f = exp.aggregate(cfg, members, evals, accs)["findings"]
    at_x = [0.0, 0.5, 1.0, 2.0]
    for (mode, tgt), curve in AT_CURVES.items():
        got = f[f"little_robustness_{mode}_{tgt}"]
        best = max(range(4), key=lambda k: curve[k])
        assert got["st"] == pytest.approx(curve[0]) and got["largest_at"] == pytest.approx(curve[-1])
        assert got["best"] == pytest.approx(curve[best]) and got["best_at_eps"] == at_x[best]
        expect = best > 0 and curve[best] > curve[0] and curve[-1] < curve[best]
        assert got["rise_then_fall"] is expect
    assert [f[f"little_robustness_{m}_{t}"]["rise_then_fall"] for m, t in AT_CURVES] == [True, False, True, False]


@pytest.mark.parametrize("case", ["worse", "better"])
def test_aggregate_sam_jr_vs_st_finding_on_synthetic_tables(case):
    # Seed 001 sec. 4.2: SAM&JR "beats ST" when its ASR minus ST's, averaged over every (attack, mode,
    # target, budget) cell of seed means, is positive. 2 attacks x 2 modes x 2 targets x 3 budgets = 24.
    if case == "worse":  # -0.05 everywhere except +0.02 in the 3 (mi, targeted, lenet) cells
        delta = lambda m, mode, t, e: 0.02 if (m, mode, t) == ("mi", "targeted", "lenet") else -0.05  # noqa: E731
        mean, wins = (21 * -0.05 + 3 * 0.02) / 24, 3
    else:  # +0.04 everywhere except -0.01 in the 6 PGD untargeted cells
        delta = lambda m, mode, t, e: -0.01 if (m, mode) == ("pgd", "untargeted") else 0.04  # noqa: E731
        mean, wins = (6 * -0.01 + 18 * 0.04) / 24, 18
    cfg, members, evals, accs = _synthetic(delta)
    s = exp.aggregate(cfg, members, evals, accs)["findings"]["sam_jr_vs_st"]
    assert s["cells"] == 24 and s["wins"] == wins
    assert s["mean_asr_difference"] == pytest.approx(mean, abs=1e-12)
    assert s["beats_st"] is (mean > 0) and s["beats_st"] is (case == "better")


def test_findings_carry_95_percent_intervals_over_seeds():
    # issue 19: every effect with a CI over seeds. SAM&JR gets +0.1 ASR everywhere in seed 1 only, so the
    # per-seed mean differences are d and d + 0.1; the t-interval is checked against scipy.
    from scipy import stats

    cfg, members, evals, accs = _synthetic(lambda *a: -0.05)
    for per_mode in evals[("SAM&JR", 1)]["attacks"].values():
        for per_eps in per_mode.values():
            for cell in per_eps.values():
                for t in cell["targets"].values():
                    t["asr"] += 0.1
    f = exp.aggregate(cfg, members, evals, accs)["findings"]
    ci = f["sam_jr_vs_st"]["difference_ci"]
    d = [-0.05, 0.05]
    lo, hi = stats.t.interval(0.95, 1, loc=sum(d) / 2, scale=stats.sem(d))
    assert ci["n"] == 2 and ci["mean"] == pytest.approx(0.0, abs=1e-12)
    assert ci["lo"] == pytest.approx(lo) and ci["hi"] == pytest.approx(hi)
    # rise / fall of the untargeted MLP curve 0.30, 0.50, 0.45, 0.20 (seed offsets cancel in differences)
    lr = f["little_robustness_untargeted_mlp"]
    assert lr["rise_ci"]["mean"] == pytest.approx(0.20) and lr["fall_ci"]["mean"] == pytest.approx(0.30)
    assert f["little_robustness_targeted_lenet"]["rise_ci"] is not None  # determined (False), still measured
    notes = exp.report.notes(f)
    assert "95% CI" in notes[-2] and "rise +0.2000" in notes[0]
