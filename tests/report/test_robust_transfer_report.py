"""pyadvt.report.robust_transfer_report / robustness_transfer_report: tables recomputed independently
(scipy's t interval, hand-written pairing) from synthetic cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pyadvt.report.robust_transfer_report import curve_figure, shift_table, sweep_tables
from pyadvt.report.robustness_transfer_report import calibration_rows, corruption_rows, report_parts


def _t_interval(v):
    v = np.asarray(v, dtype=float)
    return stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))


def _rows(rng):
    rows = []
    for source in ("natural", "at_l2"):
        for blocks in ("head", "1"):
            for size in (10, 50):
                for seed in range(4):
                    rows.append({"source": source, "blocks": blocks, "size": size, "seed": seed,
                                 "accuracy": float(rng.uniform(0.3, 0.9)), "curve": [0.1 * seed, 0.2]})
    return rows


def test_sweep_tables_match_scipy_and_pair_by_seed():
    rows = _rows(np.random.default_rng(0))
    acc, delta, figures = sweep_tables(rows, ["natural", "at_l2"], ["head", 1])
    assert len(acc) == 2 * 2 * 2 and len(delta) == 2 * 2 and len(figures) == 2
    by = {(r["source"], r["blocks"], r["size"], r["seed"]): r["accuracy"] for r in rows}
    for name, blocks, size, mean, lo, hi, n in delta:
        diffs = [by[(name, blocks, size, s)] - by[("natural", blocks, size, s)] for s in range(4)]
        assert n == 4 and mean == pytest.approx(np.mean(diffs))
        assert (lo, hi) == pytest.approx(_t_interval(diffs))
    for name, blocks, size, mean, lo, hi, n in acc:
        vals = [by[(name, blocks, size, s)] for s in range(4)]
        assert (mean, lo, hi) == pytest.approx((np.mean(vals), *_t_interval(vals)))
    assert figures[1]["series"]["at_l2"] == [d[3] for d in delta if d[1] == "1"]


def test_curve_figure_takes_the_nearest_size_and_shift_table_half_widths():
    rows = _rows(np.random.default_rng(1))
    (fig,) = curve_figure(rows, ["natural", "at_l2"], {"size": 40, "blocks": "head"})
    assert "n=50" in fig["title"] and fig["x"] == [1, 2] and len(fig["series"]["natural"]) == 4
    assert curve_figure(rows, ["natural"], {"size": 40, "blocks": "all"}) == []
    acc = {(n, k, s): 0.5 + 0.1 * s + (0.05 if k == "low_res" else 0) for n in ("natural",)
           for k in ("none", "low_res", "low_pass") for s in range(3)}
    (row,) = shift_table(acc, ["natural"], [0, 1, 2])
    lo, hi = _t_interval([0.5, 0.6, 0.7])
    assert row[0] == "natural" and row[1] == pytest.approx(0.6) and row[2] == pytest.approx((hi - lo) / 2)
    assert row[3] == pytest.approx(0.65)


def _record(acc, held=True):
    li = {"clean_loss": 0.5, "adv_loss": 1.5, "diff_loss": 1.0, "w_norm": 2.0, "lhs": 0.25, "as_score": 1.0,
          "rhs": 1.0, "held": held, "tight_lhs": 1.0, "tight_rhs": 2.0}
    t2 = {"clean_accuracy": acc, "robust_accuracy": acc / 2, "prop_fulfilled": 0.1, "robust_among_fulfilled": 1.0,
          "fulfilled_but_not_robust": 0}
    return {"accuracy": acc, "robust_accuracy": acc / 2, "as_score": 1.0, "lemma1_inf": li,
            "lemma1_2": dict(li, w_norm=3.0), "theorem2": t2, "theorem2_max": dict(t2, prop_fulfilled=0.2),
            "theorem1": {"observed_gap": 1.0, "lipschitz_term": 4.0, "hoeffding_term": 0.1, "bound": 4.1, "B": 3.0}}


def test_robustness_transfer_tables():
    cfg = {"representations": ["standard", "random"], "attack_steps": 5, "norm": "linf", "eps": 0.1, "rho": 0.05,
           "sensitivity": "as", "rep_attack": {"steps": 10, "restarts": 2},
           "corruptions": {"kinds": ["gaussian_noise"], "severities": [0, 5], "representations": ["standard"]}}
    res = {("standard", "lp"): _record(0.8), ("random", "ft"): _record(0.6, held=False)}
    cres = {("standard", "gaussian_noise", 0): _record(0.8), ("standard", "gaussian_noise", 5): _record(0.7)}
    reps = {"standard": {"as_source": 2.0, "as_target": 1.5}, "random": {"as_source": 0.1, "as_target": 0.1}}
    calib = calibration_rows(cfg["representations"], reps, res)
    assert calib == [["standard", 2.0, 1.5, pytest.approx((1.5 - 0.5) / 0.5)], ["random", 0.1, 0.1, None]]
    assert [r[:4] for r in corruption_rows(cres)] == [["standard", "gaussian_noise", 0, 0.8],
                                                      ["standard", "gaussian_noise", 5, 0.7]]
    parts = report_parts(cfg, reps, res, cres)
    assert parts["summary"]["lemma1_held_everywhere"] is False          # random/ft did not hold
    assert parts["summary"]["robust_acc_standard_lp"] == 0.4
    assert set(parts["data"]["transfer"]) == {"standard/lp", "random/ft"}
    assert [f["type"] for f in parts["figures"]] == ["bars", "bars", "scatter", "curves"]
    assert parts["figures"][3]["series"] == {"AS standard": [1.0, 1.0]}
    t2 = next(t for t in parts["tables"] if t["title"].startswith("Theorem 2"))
    assert t2["rows"][0][-2:] == [0.2, 1.0]                              # the other rule's columns
    assert len(parts["csv"]["lemma1"]["rows"]) == 2 and parts["csv"]["lemma1"]["rows"][0][7] == 3.0
