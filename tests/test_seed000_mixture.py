"""The mixture experiment (seed 000 §4.1 on digits): building blocks and a --quick smoke run with resume."""

import json

import numpy as np
import pytest
import torch

from pyadvt.cli import main as cli_main
from pyadvt.data import TensorData
from pyadvt.experiments import EXPERIMENTS, mixture



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
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("source*.json")}
    again = mixture.run(mixture.QUICK, out_dir=out, progress=False)
    assert again["data"]["sources"] == rows
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "cells").glob("source*.json")}
    # a changed configuration is refused instead of mixing cells
    with pytest.raises(ValueError, match="different configuration"):
        mixture.run(dict(mixture.QUICK, source_size=200), out_dir=out, progress=False)
