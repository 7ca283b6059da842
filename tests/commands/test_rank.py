"""Source/surrogate ranking: Spearman CIs vs scipy, rankings vs direct metric and estimator calls, --scores,
the deprecated pyadvt.metrics.ranking alias, model loading, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from torch import nn

from pyadvt import cli
from pyadvt.attacks import build_attack
from pyadvt.commands import rank as R
from pyadvt.selection import ranking
from pyadvt.data import TensorData
from pyadvt.metrics import adversarial_transferability, attack_transferability
from pyadvt.models import build
from pyadvt.report import read_result
from pyadvt.train import fit, save_checkpoint
from pyadvt import selection as S
from pyadvt.selection import ESTIMATORS, extract, leep, logme, nce
from pyadvt.utils.sweep import CellStore


@pytest.fixture(autouse=True)
def _restore_quiet():
    """``--quiet`` sets a process-wide flag; reset it so tests do not depend on their order."""
    from pyadvt.utils.progress import set_quiet

    yield
    set_quiet(None)


@settings(max_examples=30, deadline=None)
@given(pairs=st.lists(st.tuples(st.floats(-10, 10), st.floats(-10, 10)), min_size=4, max_size=25))
def test_spearman_ci_matches_scipy_and_contains_rho(pairs):
    a, b = np.array(pairs).T
    out = R.spearman_ci(a, b)
    if out["rho"] is None:
        assert np.ptp(a) == 0 or np.ptp(b) == 0
        return
    assert out["rho"] == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-9)
    if abs(out["rho"]) < 1:
        assert -1 < out["lower"] <= out["rho"] <= out["upper"] < 1
        z = math.atanh(out["rho"])
        assert math.atanh(out["upper"]) - z == pytest.approx(1.959964 * math.sqrt(1.06 / (len(a) - 3)), rel=1e-5)


def test_spearman_ci_edge_cases():
    assert R.spearman_ci([1, 2], [2, 1])["rho"] is None  # too few pairs
    three = R.spearman_ci([1, 2, 3], [1, 3, 2])
    assert three["rho"] == pytest.approx(0.5) and three["lower"] is None  # no CI below n = 4
    perfect = R.spearman_ci([1, 2, 3, 4], [10, 20, 30, 40])
    assert perfect["rho"] == 1.0 and perfect["lower"] is None  # Fisher z undefined at |rho| = 1
    assert R.spearman_ci([1, float("nan"), 3, 4, 5], [1, 2, 3, 5, 4])["n"] == 4
    narrow, wide = R.spearman_ci(range(40), [i + (i % 3) for i in range(40)]), R.spearman_ci([1, 2, 3, 4, 5], [1, 3, 2, 4, 5])
    assert narrow["upper"] - narrow["lower"] < wide["upper"] - wide["lower"]


def _data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)
    y = (x.flatten(1)[:, :8].sum(1) > x.flatten(1)[:, 8:].sum(1)).long() + 2 * (x[:, 0, 0, 0] > 0.5).long()
    return TensorData(x, y, 4)


def _net(seed, hidden=8, num_classes=4):
    torch.manual_seed(seed)
    return build("mlp", in_shape=(1, 4, 4), num_classes=num_classes, hidden=(hidden,), activation="tanh").eval()


def _trained(seed, data, hidden=8):
    net = _net(seed, hidden, data.num_classes)
    fit(net, data, epochs=3, lr=0.1, seed=seed, progress=False)
    return net.eval()


def test_rank_surrogates_matches_direct_metric_calls(tmp_path):
    data = _data()
    models = {f"m{i}": _trained(i, data, hidden=4 + 4 * i) for i in range(3)}
    res = R.rank_surrogates(models, models, data, eps=0.2, steps=5, n_eval=32, n_smooth=8, seed=3,
                            store=CellStore(tmp_path), progress=False)
    x, y = data.x[:32], data.y[:32]
    for i, s in enumerate(res["surrogates"]):
        x_adv = build_attack("pgd", models[s], 0.2, steps=5, seed=3)(x, y)
        for j, t in enumerate(res["targets"]):
            assert res["asr"][i][j] == pytest.approx(attack_transferability(models[s], models[t], x, y, x_adv).asr)
    rows = {r["name"]: r for r in res["rows"]}
    for i, s in enumerate(res["surrogates"]):  # the white-box column is excluded from the mean
        others = [res["asr"][i][j] for j, t in enumerate(res["targets"]) if t != s]
        assert rows[s]["mean_asr"] == pytest.approx(np.mean(others))
    means = [r["mean_asr"] for r in res["rows"]]
    assert means == sorted(means, reverse=True) and [r["rank_asr"] for r in res["rows"]] == [1, 2, 3]
    sm = [rows[s]["smoothness"] for s in res["surrogates"]]
    assert res["spearman"]["smoothness_vs_asr"]["rho"] == pytest.approx(
        stats.spearmanr(sm, [rows[s]["mean_asr"] for s in res["surrogates"]]).statistic)
    assert len(CellStore(tmp_path)) == 3
    report = R.surrogates_report(res)
    assert report["figures"][0]["matrix"] == res["asr"] and report["tables"][0]["rows"][0][1] == res["rows"][0]["name"]


def test_rank_sources_scores_are_tau1_tau2_and_probe_validates():
    data = _data(64)
    target = TensorData(data.x, data.y % 2, 2)
    reference = _trained(10, target)
    sources = {f"s{i}": _trained(i, data) for i in range(3)}
    res = R.rank_sources(sources, reference, target, target_train=target, n_eval=40, eps=0.2, steps=3,
                         probe_epochs=1, progress=False)
    for row in res["rows"]:
        tr = adversarial_transferability(sources[row["name"]], reference, target.x[:40])
        assert row["tau1"] == pytest.approx(tr.tau1.tau1) and row["tau2"] == pytest.approx(tr.tau2.tau2)
        assert row["score"] == pytest.approx(row["tau1"] * row["tau2"])
        assert 0 <= row["probe_accuracy"] <= 1 and row["eq2_loss"] > 0
    scores = [r["score"] for r in res["rows"]]
    assert scores == sorted(scores, reverse=True) and [r["rank_score"] for r in res["rows"]] == [1, 2, 3]
    assert set(res["spearman"]) == {f"{c}_vs_probe" for c in ("score", "tau1", "tau2", "eq2_loss", *ESTIMATORS)}
    for row in res["rows"]:  # every estimator column is the estimator on the source's view of target_train
        ex = extract(sources[row["name"]], target)
        assert row["logme"] == pytest.approx(logme(ex.features, target.y), rel=1e-9)
        assert row["leep"] == pytest.approx(leep(ex.probs, target.y), rel=1e-9)
        assert row["nce"] == pytest.approx(nce(ex.preds, target.y), abs=1e-12)
    best_logme = max(res["rows"], key=lambda r: r["logme"])
    assert best_logme["rank_logme"] == 1
    acc = [r["probe_accuracy"] for r in res["rows"]]
    if np.ptp(acc) > 0 and np.ptp([r["logme"] for r in res["rows"]]) > 0:
        assert res["agreement"]["logme"]["weighted_tau"] == pytest.approx(
            stats.weightedtau([r["logme"] for r in res["rows"]], acc).statistic)
    assert R.sources_report(res)["tables"][0]["columns"][-1] == "probe accuracy"
    with pytest.raises(ValueError, match="probe=True needs target_train"):
        R.rank_sources(sources, reference, target, probe=True)
    plain = {"plain": nn.Sequential(nn.Flatten(), nn.Linear(16, 4))}
    with pytest.raises(ValueError, match="source 'plain' has no linear 'head'.*--no-probe"):
        R.rank_sources(plain, reference, target, target_train=target)


def test_incompatible_models_are_named():
    data = _data()
    with pytest.raises(ValueError, match="incompatible models: surrogate 'big'"):
        R.rank_surrogates({"big": nn.Sequential(nn.Flatten(), nn.Linear(64, 4))}, {"t": _net(0)}, data,
                          progress=False)
    with pytest.raises(ValueError, match="must return .B, classes. logits"):
        R.rank_surrogates({"id": nn.Identity()}, {"t": _net(0)}, data, progress=False)


def test_load_model_from_checkpoint_and_entry_point(tmp_path):
    net = build("mlp", in_shape=(1, 4, 4), num_classes=4)
    path = save_checkpoint(tmp_path / "m.pt", net)
    loaded = R.load_model(str(path))
    x = torch.rand(3, 1, 4, 4)
    assert torch.equal(loaded(x), net.eval()(x)) and not loaded.training
    assert isinstance(R.load_model("torch.nn:Identity"), nn.Identity)
    with pytest.raises(FileNotFoundError, match="model checkpoint not found"):
        R.load_model(str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="cannot load model entry point 'no_such_pkg.mod:f'"):
        R.load_model("no_such_pkg.mod:f")
    with pytest.raises(ValueError, match="gave a float, not a torch.nn.Module"):
        R.load_model("math:pi")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from pyadvt.data import digits

    d = tmp_path_factory.mktemp("ckpt")
    train, _ = digits()
    paths = {}
    for i, arch in enumerate(["mlp", "mlp"]):
        torch.manual_seed(i)
        net = build(arch, hidden=(16,))
        fit(net, train.subset(range(300)), epochs=1, seed=i, progress=False)
        paths[f"{arch}{i}"] = str(save_checkpoint(d / f"{arch}{i}.pt", net))
    return paths


def test_cli_rank_surrogates_writes_result_and_resumes(tmp_path, checkpoints, monkeypatch, capsys):
    args = ["rank", "surrogates", "--n-eval", "24", "--set", "n_smooth=4", "--set", "steps=2", "--quiet",
            "--out", str(tmp_path / "out")]
    for name, path in checkpoints.items():
        args += ["--surrogate", f"{name}={path}", "--target", f"{name}={path}"]
    assert cli.main(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "report.html")
    res = read_result(tmp_path / "out")
    assert res["kind"] == "rank-surrogates" and res["config"]["n_eval"] == 24 and res["config"]["steps"] == 2
    assert len(res["data"]["asr"]) == 2 and res["environment"]["seeds"] == {"seed": 0}
    # a rerun resumes from the stored cells: nothing is recomputed, same data
    monkeypatch.setattr(ranking, "attack_transferability", lambda *a, **k: pytest.fail("recomputed a stored cell"))
    assert cli.main(args) == 0
    assert read_result(tmp_path / "out")["data"] == res["data"]


def test_cli_user_errors_are_one_line(tmp_path, checkpoints, capsys):
    ck = next(iter(checkpoints.values()))
    cases = [
        (["rank", "sources", "--source", f"a={tmp_path}/nope.pt", "--reference", ck], "model checkpoint not found"),
        (["rank", "sources", "--source", f"a={ck}"], "needs at least one --source and a --reference"),
        (["rank", "surrogates", "--surrogate", f"a={ck}", "--target", f"b={ck}", "--set", "epss=1"],
         "unknown config key 'epss'"),
        (["rank", "surrogates", "--surrogate", "a=torch.nn:Identity", "--target", f"b={ck}"],
         "--surrogate a 'torch.nn:Identity' maps an image [1, 1, 8, 8] to shape [1, 1, 8, 8], expected [1, 10] logits"),
    ]
    for argv, message in cases:
        assert cli.main(argv + ["--out", str(tmp_path / "o"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_cli_rank_sources_end_to_end(tmp_path, checkpoints, capsys):
    names = list(checkpoints)
    argv = ["rank", "sources", "--reference", checkpoints[names[0]], "--n-eval", "24", "--set", "probe_epochs=1",
            "--set", "steps=2", "--quiet", "--out", str(tmp_path / "src")]
    for n in names:
        argv += ["--source", f"{n}={checkpoints[n]}"]
    assert cli.main(argv) == 0
    res = read_result(tmp_path / "src")
    assert [r["rank_score"] for r in res["data"]["rows"]] == [1, 2]
    assert json.loads(json.dumps(res["figures"]))[0]["type"] == "bars"


def test_rank_sources_scores_option_computes_only_those_columns():
    data = _data(48)
    reference = _trained(10, data)
    sources = {f"s{i}": _trained(i, data) for i in range(2)}
    res = R.rank_sources(sources, reference, data, n_eval=24, probe=False, scores="logme,gbc", progress=False)
    assert res["scores"] == ["logme", "gbc"] and res["rows"][0]["rank_logme"] == 1
    for row in res["rows"]:  # nothing adversarial was computed
        assert not {"tau1", "tau2", "tau1*tau2", "eq2_loss"} & set(row) and row["score"] is None
        ex = extract(sources[row["name"]], data.x[:24])  # no target_train: the estimators read the eval samples
        assert row["gbc"] == pytest.approx(S.gbc(ex.features, data.y[:24]), rel=1e-9)
    with pytest.raises(ValueError, match="unknown source score.*'lgme'.*logme"):
        R.rank_sources(sources, reference, data, probe=False, scores=["lgme"], progress=False)
    plain = {"plain": nn.Sequential(nn.Flatten(), nn.Conv1d(1, 1, 1), nn.Flatten())}
    with pytest.raises(ValueError):
        R.rank_sources(plain, reference, data, probe=False, scores=["logme"], progress=False)
    sur = R.rank_surrogates(sources, sources, data, n_eval=16, steps=2, scores=["similarity"], progress=False)
    assert sur["scores"] == ["asr", "similarity"] and all(r["smoothness"] is None for r in sur["rows"])
    assert all(r["mean_similarity"] is not None for r in sur["rows"])


def test_metrics_ranking_is_a_deprecated_alias():
    import importlib
    import sys

    sys.modules.pop("pyadvt.metrics.ranking", None)
    with pytest.warns(DeprecationWarning, match="pyadvt.selection"):
        old = importlib.import_module("pyadvt.metrics.ranking")
    assert old.rank_sources is ranking.rank_sources and old.spearman_ci is ranking.spearman_ci
    import pyadvt.metrics as M

    with pytest.warns(DeprecationWarning):
        assert M.rank_surrogates is ranking.rank_surrogates


def test_cli_rank_sources_scores_flag(tmp_path, checkpoints):
    names = list(checkpoints)
    argv = ["rank-sources", "--reference", checkpoints[names[0]], "--n-eval", "24", "--no-probe", "--quiet",
            "--scores", "logme,tau1*tau2", "--set", "steps=2", "--out", str(tmp_path / "s")]
    for n in names:
        argv += ["--source", f"{n}={checkpoints[n]}"]
    assert cli.main(argv) == 0
    res = read_result(tmp_path / "s")
    assert res["data"]["scores"] == ["logme", "tau1*tau2"] and res["config"]["scores"] == ["logme", "tau1*tau2"]
    assert res["tables"][0]["columns"][:4] == ["rank", "source", "LogME", "tau1 * tau2"]
    assert cli.main(argv[:-2] + ["--scores", "nope", "--out", str(tmp_path / "t")]) == 2
