"""The mixture experiment (seed 000 §4.1 on digits): building blocks and a --quick smoke run with resume."""

import json

import numpy as np
import pytest
import torch

from pyadvt.cli import main as cli_main
from pyadvt.data import TensorData
from pyadvt.experiments import EXPERIMENTS, mixture
from pyadvt.utils.config import merge_config



def test_shift_domain_translates_and_brightens():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 0] = 0.25
    out = mixture.shift_domain(x, translate=1, gamma=0.5)
    assert float(out[0, 0, 1, 1]) == pytest.approx(0.5) and float(out.sum()) == pytest.approx(0.5)
    assert float(out[..., 0].abs().sum()) == 0  # zero fill
    with pytest.raises(ValueError, match="gamma"):
        mixture.shift_domain(x, 1, 0.0)


def test_mixture_source_data_fractions():
    v = TensorData(torch.rand(50, 1, 2, 2), torch.arange(50) % 5, 5)
    a = TensorData(torch.rand(50, 1, 2, 2) * 0.5, torch.arange(50) % 5, 5)
    d = mixture.mixture_source_data(v, a, 0.25, 40, seed=3)
    from_v = sum(any(torch.equal(xi, vi) for vi in v.x) for xi in d.x)
    assert len(d) == 40 and from_v == 10
    d2 = mixture.mixture_source_data(v, a, 0.25, 40, seed=3)
    assert torch.equal(d.x, d2.x)
    with pytest.raises(ValueError, match="source_size"):
        mixture.mixture_source_data(v, a, 1.0, 60, seed=0)


def test_correlation_matches_scipy_and_ci_covers():
    from scipy import stats

    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = 0.8 * x + 0.3 * rng.normal(size=30)
    c = mixture.correlation(x, y, n_boot=300)
    assert c["pearson"] == pytest.approx(stats.pearsonr(x, y)[0])
    assert c["spearman"] == pytest.approx(stats.spearmanr(x, y)[0])
    assert c["pearson_ci"][0] <= c["pearson"] <= c["pearson_ci"][1] and c["pearson_ci"][0] > 0
    assert mixture.correlation([1, 1, 1], [1, 2, 3])["pearson"] is None


@pytest.mark.slow
def test_quick_run_outputs_and_resume(tmp_path):
    assert EXPERIMENTS["mixture"] == "pyadvt.experiments.mixture"
    out = tmp_path / "mix"
    assert cli_main(["experiment", "mixture", "--quick", "--quiet", "--out", str(out)]) == 0
    for name in ("result.json", "mixture_sources.csv", "mixture_correlations.csv", "fig3_left_tau1.png",
                 "fig3_left_eq2.png", "fig3_right_finetune.png", "metrics_vs_fraction.png"):
        assert (out / name).exists(), name
    result = json.loads((out / "result.json").read_text())
    rows = result["data"]["sources"]
    assert len(rows) == 3 and all(0 <= r["tau1"] <= 1 and 0 <= r["tau2"] <= 1 for r in rows)
    atm = np.array(result["data"]["atm"]["matrix"])
    assert atm.shape == (4, 4) and np.allclose(atm.sum(0), 1) and (out / "atm_dendrogram.png").exists()
    assert result["data"]["reference"]["target_test_accuracy"] > 0.5
    # resume: every cell is on disk, so a rerun recomputes nothing and returns identical numbers
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert len(stamps) == 1 + 3 + 3 * 3 + 1  # reference, 3 source models, 3 measurements each, the ATM
    again = mixture.run(mixture.QUICK, out_dir=out, progress=False)
    assert again["data"]["sources"] == rows
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}


def test_a_changed_setting_recomputes_only_the_cells_it_affects(tmp_path, monkeypatch):
    """Digest cell keys: new eps budgets re-attack, but no model is retrained and no probe / fine-tuning
    or ATM cell is recomputed; the unchanged measurements are the stored ones."""
    import pyadvt.train.zoo as zoo

    cfg = merge_config(mixture.QUICK, {"fractions": [0.0, 1.0], "eval_samples": 40, "train": {"epochs": 1},
                                       "probe": {"epochs": 1}, "finetune": {"epochs": 1}})
    first = mixture.run(cfg, out_dir=tmp_path, progress=False)
    monkeypatch.setattr(zoo, "fit", lambda *a, **k: pytest.fail("retrained a model"))
    monkeypatch.setattr(mixture, "knowledge_transferability", lambda *a, **k: pytest.fail("re-probed a source"))
    monkeypatch.setattr(mixture, "transfer_table", lambda *a, **k: pytest.fail("recomputed the ATM"))
    second = mixture.run(merge_config(cfg, {"eps": [0.05, 0.1]}), out_dir=tmp_path, progress=False)
    for a, b in zip(first["data"]["sources"], second["data"]["sources"]):
        assert a["probe_curve"] == b["probe_curve"] and a["finetune_curve"] == b["finetune_curve"]
        assert a["probe_accuracy"] == b["probe_accuracy"] and set(b["eq2_loss"]) == {"0.05", "0.1"}
    assert second["data"]["atm"] == first["data"]["atm"]


# --- correlation(): percentile-bootstrap 95% CIs (seed 000 §4.1, Fig. 3 correlations) ---------------

def _bootstrap_ci_by_hand(x, y, n_boot, seed):
    """Percentile bootstrap over pairs, written independently: the same index draws (numpy
    default_rng(seed).integers(0, n, (n_boot, n))), r per resample from np.corrcoef / scipy's
    spearmanr, resamples with a constant variable skipped, CI = [2.5th, 97.5th] percentiles."""
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    idx = np.random.default_rng(seed).integers(0, x.size, (n_boot, x.size))
    rp, rs = [], []
    for row in idx:
        a, b = x[row], y[row]
        if np.all(a == a[0]) or np.all(b == b[0]):
            continue
        rp.append(np.corrcoef(a, b)[0, 1])
        rs.append(stats.spearmanr(a, b)[0])
    return ([np.percentile(rp, 2.5), np.percentile(rp, 97.5)], [np.percentile(rs, 2.5), np.percentile(rs, 97.5)])


def test_correlation_ci_is_the_2_5_97_5_percentile_bootstrap():
    rng = np.random.default_rng(1)
    x = rng.normal(size=15)
    y = 0.5 * x + rng.normal(size=15)
    x[:3] = x[0]  # ties, so that some rank correlations use averaged ranks
    c = mixture.correlation(x, y, n_boot=400, seed=5)
    pci, sci = _bootstrap_ci_by_hand(x, y, 400, 5)
    np.testing.assert_allclose(c["pearson_ci"], pci, rtol=0, atol=1e-10)
    np.testing.assert_allclose(c["spearman_ci"], sci, rtol=0, atol=1e-10)


def test_correlation_ci_width_matches_the_normal_theory_for_a_large_sample():
    # for bivariate normal data with correlation rho, r is ~ N(rho, (1 - rho^2)^2 / n), so a 95% CI has
    # width ~ 2 * 1.96 * (1 - rho^2) / sqrt(n) (an interquartile "CI" would be ~ 2.9x narrower)
    rng = np.random.default_rng(2)
    n, rho = 800, 0.6
    x = rng.normal(size=n)
    y = rho * x + np.sqrt(1 - rho ** 2) * rng.normal(size=n)
    c = mixture.correlation(x, y, n_boot=1000, seed=0)
    width = c["pearson_ci"][1] - c["pearson_ci"][0]
    theory = 2 * 1.959964 * (1 - rho ** 2) / np.sqrt(n)
    assert width == pytest.approx(theory, rel=0.2)
    assert c["pearson_ci"][0] < c["pearson"] < c["pearson_ci"][1]


# --- direction_of_effect(): the paper's claimed direction (seed 000 §4.1: more target-like source data
# -> larger tau1/tau2/eq.-2 loss, higher probe accuracy, lower probe loss) ---------------------------

def _corr_table(rhos):
    """Synthetic correlation rows {"x": "fraction", "y": name, "spearman": rho} plus noise rows."""
    rows = [{"x": "fraction", "y": k, "spearman": v, "pearson": v} for k, v in rhos.items()]
    # rows with other x must not be picked up
    rows += [{"x": "tau1", "y": k, "spearman": -0.9, "pearson": -0.9} for k in mixture.KNOWLEDGE_METRICS]
    return rows


def test_direction_of_effect_signs_on_synthetic_tables():
    adv = ["tau1", "tau2", "tau1*tau2", "eq2_loss@0.1"]
    good = {"tau1": 0.8, "tau2": 0.3, "tau1*tau2": 0.5, "eq2_loss@0.1": 0.9,
            "probe_accuracy": 0.7, "probe_loss": -0.6, "finetune_auc_loss": -0.2}
    d = mixture.direction_of_effect(_corr_table(good), adv)
    assert d == {"tau1": True, "tau2": True, "tau1*tau2": True, "eq2_loss@0.1": True,
                 "probe_accuracy": True, "probe_loss_decreases": True}
    # probe loss rising with the fraction is the wrong direction
    d = mixture.direction_of_effect(_corr_table(dict(good, probe_loss=0.4)), adv)
    assert d["probe_loss_decreases"] is False and d["tau1"] is True
    # every sign flipped: nothing holds
    bad = {k: -v for k, v in good.items()}
    d = mixture.direction_of_effect(_corr_table(bad), adv)
    assert not any(d.values()) and set(d) == set(adv) | {"probe_accuracy", "probe_loss_decreases"}
    # undefined rho (constant column -> None) and rho = 0 count as "direction not shown"
    d = mixture.direction_of_effect(_corr_table(dict(good, tau2=None, probe_loss=None, tau1=0.0)), adv)
    assert d["tau2"] is False and d["probe_loss_decreases"] is False and d["tau1"] is False
