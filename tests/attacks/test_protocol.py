"""The transfer protocol (pyadvt.attacks.evaluate) and ``pyadvt benchmark-attacks``: ASR over all images
and over the images every model classifies correctly, presets, resumable cells, the CLI's outputs."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn

import pyadvt.attacks as A
import pyadvt.attacks.protocol as P
from pyadvt.cli import main as cli_main


def net(seed: int) -> nn.Module:
    """One shared random network plus a small seed-dependent perturbation: the models mostly agree."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 4)).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(20, 1, 4, 4, generator=g), torch.randint(0, 4, (20,), generator=g)
    sources = {"s0": net(0), "s1": net(1)}
    targets = {"t0": net(2), "t1": net(3)}
    # make the clean labels partly right so the "all correct" subset is neither empty nor everything
    with torch.no_grad():
        y[:14] = net(-1)(x[:14]).argmax(1)
    return sources, targets, x, y


def test_standard_protocol_is_the_fields():
    p = A.PROTOCOLS["standard"]
    assert (p.eps, p.alpha, p.steps, p.mu) == (16 / 255, 1.6 / 255, 10, 1.0)
    assert set(A.PROTOCOLS) >= {"standard", "digits", "fashion-mnist"}


def test_evaluate_asr_equals_a_manual_computation(setup):
    sources, targets, x, y = setup
    res = A.evaluate(sources, targets, (x, y), attacks=["mifgsm", "svre"], protocol="standard")
    models = {**sources, **targets}
    with torch.no_grad():
        correct = torch.stack([m(x).argmax(1) == y for m in models.values()]).all(0)
    assert 0 < int(correct.sum()) < 20
    for s in ("s0", "s1"):
        adv = A.MIFGSM(sources[s], 16 / 255, 1.6 / 255, 10, mu=1.0)(x, y)
        for t, m in targets.items():
            with torch.no_grad():
                wrong = m(adv).argmax(1) != y
            row = next(r for r in res.rows if (r["attack"], r["source"], r["target"]) == ("mifgsm", s, t))
            assert row["asr_all"] == pytest.approx(float(wrong.float().mean()))
            assert row["asr_correct"] == pytest.approx(float(wrong[correct].float().mean()))
            assert row["n_correct"] == int(correct.sum()) and row["cost"] == 10.0
    svre = [r for r in res.rows if r["attack"] == "svre"]
    assert {r["source"] for r in svre} == {"s0+s1"} and len(svre) == 2
    assert svre[0]["cost"] > 10


def test_evaluate_resumes_from_stored_cells(setup, tmp_path, monkeypatch):
    sources, targets, x, y = setup
    first = A.evaluate(sources, targets, (x, y), attacks=["nifgsm"], protocol="digits", store=tmp_path)

    calls = {"n": 0}
    real = P.build_for_protocol

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(P, "build_for_protocol", counting)
    second = A.evaluate(sources, targets, (x, y), attacks=["nifgsm"], protocol="digits", store=tmp_path)
    assert second.rows == first.rows
    assert calls["n"] == 0        # every cell came from the store: no attack was built


def test_evaluate_rejects_bad_requests_before_work(setup):
    sources, targets, x, y = setup
    with pytest.raises(ValueError, match="unknown attack"):
        A.evaluate(sources, targets, (x, y), attacks=["mifgsm", "nope"])
    with pytest.raises(ValueError, match="at least 2 sources"):
        A.evaluate({"s0": sources["s0"]}, targets, (x, y), attacks=["svre"])
    with pytest.raises(ValueError, match="unknown protocol"):
        A.evaluate(sources, targets, (x, y), attacks=["mifgsm"], protocol="imagenet-ish")


def test_protocol_reaches_the_attacks():
    p = A.PROTOCOLS["digits"]
    atk = P.build_for_protocol("mi-ti", net(0), p)
    assert (atk.eps, atk.alpha, atk.steps, atk.mu, atk.ti_size) == (p.eps, p.alpha, p.steps, p.mu, p.ti_kernel)
    assert P.build_for_protocol("tifgsm", net(0), p).ti_size == p.ti_kernel


def test_benchmark_attacks_cli_writes_csv_heatmap_and_html(tmp_path):
    out = tmp_path / "suite"
    code = cli_main(["benchmark-attacks", "--protocol", "digits", "--sources", "cnn", "mlp", "--targets", "mlp",
                     "--attacks", "mifgsm", "mi-di", "--n-images", "24", "--epochs", "1", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert result["kind"] == "benchmark-attacks" and result["config"]["eps"] == 0.2
    tables = sorted((out / "tables").glob("*.csv"))
    assert len(tables) == 2
    rows = list(csv.DictReader(next(t for t in tables if "success" in t.name).open()))
    summary = list(csv.DictReader(next(t for t in tables if "summary" in t.name).open()))
    assert {r["attack"] for r in summary} == {"mifgsm", "mi-di"}
    for s in summary:                      # one seed: the summary is the mean over the pairs
        mine = [float(r["asr_correct"]) for r in rows if r["attack"] == s["attack"]]
        assert float(s["asr_correct"]) == pytest.approx(sum(mine) / len(mine))
    assert len(rows) == 4 and {r["attack"] for r in rows} == {"mifgsm", "mi-di"}
    assert all(0.0 <= float(r["asr_all"]) <= 1.0 for r in rows)
    assert list((out / "figures").glob("*.png")) and (out / "report.html").exists()
    assert len(list((out / "cells").rglob("*.json"))) >= 4


def test_summary_is_the_seed_mean_with_a_student_t_interval():
    from scipy import stats

    from pyadvt.commands.benchmark_attacks import summarize

    per_seed = {0: [0.2, 0.4], 1: [0.5, 0.5], 2: [0.3, 0.5]}           # two pairs per seed
    rows = [{"attack": "a", "seed": s, "asr_all": v, "asr_correct": v, "cost": 10.0}
            for s, vals in per_seed.items() for v in vals]
    (entry,) = summarize(rows, [0, 1, 2])
    means = [0.3, 0.5, 0.4]
    half = stats.t.ppf(0.975, 2) * stats.sem(means)
    assert entry["asr_correct"] == pytest.approx(0.4)
    assert (entry["asr_correct_lo"], entry["asr_correct_hi"]) == pytest.approx((0.4 - half, 0.4 + half))


def test_suite_attacks_are_reachable_from_build_attack_and_pyadvt_attack(tmp_path, capsys):
    from pyadvt.attacks import build_attack

    atk = build_attack("sinifgsm", net(0), 0.1, steps=3, seed=4)
    assert isinstance(atk, A.SINIFGSM) and atk.steps == 3 and atk.seed == 4
    with pytest.raises(ValueError, match="L-inf only"):
        build_attack("vmifgsm", net(0), 0.1, norm="l2")
    code = cli_main(["attack", "--attack", "nifgsm", "--eps", "0.1", "--steps", "3", "--epochs", "1",
                     "--out", str(tmp_path / "r.json")])
    assert code == 0 and (tmp_path / "r.json").exists()


def test_attacks_that_do_not_apply_to_a_source_are_skipped(setup):
    from pyadvt.models import build

    sources, targets, x, y = setup
    torch.manual_seed(0)
    res_net = build("resnet", in_shape=(1, 4, 4), num_classes=4, widths=(4,)).eval()
    res = A.evaluate({"plain": sources["s0"], "res": res_net}, targets, (x, y), attacks=["sgm", "mifgsm"],
                     protocol="digits")
    pairs = {(r["attack"], r["source"]) for r in res.rows}
    assert pairs == {("sgm", "res"), ("mifgsm", "plain"), ("mifgsm", "res")}
