"""The source-selection experiment on a tiny configuration: its agreement numbers equal scipy on the
stored scores, the incremental analysis equals the partial-correlation identities, and a rerun or a
changed setting recomputes only the affected cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pyadvt.experiments import EXPERIMENTS
from pyadvt.experiments import source_selection as E
from pyadvt.selection import incremental_value
from pyadvt.utils.config import merge_config

TINY = merge_config(E.QUICK, {
    "archs": {"mlp": {"hidden": [16]}}, "shares": [0.0, 0.5, 1.0], "trainings": {"robust": None},
    "source_size": 120, "train": {"epochs": 2}, "targets": {"noise": None},
    "rank": {"n_eval": 24, "steps": 1}, "probe": {"epochs": 1}, "lpft": {"epochs": 1}, "bootstrap": 20,
})


def test_incremental_matches_the_partial_correlation_identities():
    rng = np.random.default_rng(0)
    base, extra = rng.normal(size=20), rng.normal(size=20)
    acc = 0.5 * base + 0.3 * extra + 0.2 * rng.normal(size=20)
    r = incremental_value(acc, base, extra)
    c = np.corrcoef([acc, base, extra])
    partial = (c[0, 2] - c[0, 1] * c[1, 2]) / np.sqrt((1 - c[0, 1] ** 2) * (1 - c[1, 2] ** 2))
    assert r["partial_r"] == pytest.approx(partial)
    assert r["r2_base"] == pytest.approx(c[0, 1] ** 2)
    assert r["delta_r2"] == pytest.approx(partial ** 2 * (1 - c[0, 1] ** 2))
    f = r["delta_r2"] / (1 - r["r2_full"]) * 17
    assert r["p_value"] == pytest.approx(stats.f.sf(f, 1, 17))
    redundant = incremental_value(acc, base, 2 * base + 3)
    assert redundant["partial_r"] is None and abs(redundant["delta_r2"]) < 1e-9


@pytest.mark.slow
def test_tiny_run_agrees_with_scipy_and_resumes(tmp_path, monkeypatch):
    assert EXPERIMENTS["source-selection"] == "pyadvt.experiments.source_selection"
    res = E.run(TINY, out_dir=tmp_path, progress=False)
    data = res["data"]
    assert data["sources"] == ["mlp-0%-natural", "mlp-50%-natural", "mlp-100%-natural"]
    assert data["targets"] == ["classes", "low_resolution"]
    gt = np.array(data["ground_truth"]["probe"]).mean(1)
    for name in ("logme", "tau1*tau2", "leep"):
        sc = np.array(data["scores"][name])
        agg = data["analysis"]["agreement"]["probe"][name]
        for t in range(2):
            want = stats.weightedtau(sc[t], gt[t]).statistic if np.ptp(gt[t]) > 0 and np.ptp(sc[t]) > 0 else None
            got = agg["per_target"]["weighted_tau"][t]
            assert (got is None) if want is None else got == pytest.approx(want)
            assert agg["per_target"]["rel@1"][t] == pytest.approx(gt[t][np.argmax(sc[t])] / gt[t].max())
    assert {t["title"].split(" of ")[0] for t in res["tables"][:4]} == {"weighted_tau", "rel@1"}
    assert (tmp_path / "report.html").exists() and (tmp_path / "figures").is_dir()
    # a rerun trains and fits nothing; a changed probe setting recomputes only the ground-truth cells
    from pyadvt.train import zoo
    from pyadvt.selection import ranking

    monkeypatch.setattr(zoo, "fit", lambda *a, **k: pytest.fail("retrained a stored model"))
    monkeypatch.setattr(ranking, "adversarial_transferability", lambda *a, **k: pytest.fail("recomputed scores"))
    again = E.run(TINY, out_dir=tmp_path, progress=False)
    assert again["data"]["scores"] == data["scores"] and again["data"]["ground_truth"] == data["ground_truth"]
    changed = E.run(merge_config(TINY, {"probe": {"epochs": 2}}), out_dir=tmp_path, progress=False)
    assert changed["data"]["scores"] == data["scores"]


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="at least 3 sources"):
        E.run(merge_config(TINY, {"shares": [0.0, 1.0]}), out_dir="/nonexistent/never-written")
    with pytest.raises(ValueError, match="'kind' must be"):
        E.run(merge_config(TINY, {"targets": {"classes": {"kind": "blur"}}}), out_dir="/nonexistent/never-written")
