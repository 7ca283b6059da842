"""``pyadvt quickstart`` on a tiny configuration: result/report, resumption, config errors, torchrun."""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from pyadvt import cli
from pyadvt.commands import quickstart as Q
from pyadvt.data import TensorData, digits
from pyadvt.report import read_result

TINY = {
    "zoo": {"architectures": ["mlp"], "methods": ["st", "sam_jr"], "epochs": 1},
    "surrogates": {"n_eval": 24, "n_smooth": 4, "steps": 2},
    "sources": {"architecture": "mlp", "fractions": [0.0, 0.5, 1.0], "samples": 200, "epochs": 1, "n_eval": 24,
                "steps": 2, "probe_epochs": 1},
}
TINY_ARGS = ["--set", "zoo.architectures=[mlp]", "--set", "zoo.methods=[st, sam_jr]", "--epochs", "1",
             "--set", "surrogates.n_eval=24", "--set", "surrogates.n_smooth=4", "--set", "surrogates.steps=2",
             "--set", "sources.architecture=mlp", "--set", "sources.fractions=[0.0, 0.5, 1.0]",
             "--set", "sources.samples=200", "--set", "sources.epochs=1", "--set", "sources.n_eval=24",
             "--set", "sources.steps=2", "--set", "sources.probe_epochs=1", "--quiet"]


@pytest.fixture(autouse=True)
def _restore_quiet():
    """``--quiet`` sets a process-wide flag; reset it so tests do not depend on their order."""
    from pyadvt.utils.progress import set_quiet

    yield
    set_quiet(None)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs")
    return out, Q.run(TINY, out_dir=out, progress=False)


def test_result_report_and_contents(tiny_run):
    out, result = tiny_run
    assert read_result(out)["data"] == result["data"]
    assert (out / "report.html").exists() and (out / "report.md").exists()
    data = result["data"]
    assert [z["name"] for z in data["zoo"]] == ["mlp-st", "mlp-sam_jr"]
    assert all(0 <= z["accuracy"] <= 1 for z in data["zoo"])
    asr = data["surrogates"]["asr"]
    assert len(asr) == 2 and all(a is None or 0 <= a <= 1 for row in asr for a in row)
    rows = data["sources"]["rows"]
    assert {r["name"] for r in rows} == {"0% target classes", "50% target classes", "100% target classes"}
    assert sorted(r["target_class_fraction"] for r in rows) == [0.0, 0.5, 1.0]
    assert all(0 <= r["tau1"] <= 1 and 0 <= r["tau2"] <= 1 and 0 <= r["probe_accuracy"] <= 1 for r in rows)
    assert set(result["timings"]) == {"data", "zoo", "surrogates", "sources"}
    assert result["config"]["zoo"]["epochs"] == 1 and result["config"]["zoo"]["lr"] == 0.05  # defaults merged
    kinds = [f["type"] for f in result["figures"]]
    assert kinds.count("heatmap") == 2 and "scatter" in kinds and "bars" in kinds


def _record_training(monkeypatch) -> list:
    """Patch the quickstart's train_or_load to list ``(arch, recipe)`` of every model actually trained."""
    trained, real = [], Q.train_or_load

    def spy(spec, data, store=None, **kw):
        model, info = real(spec, data, store, **kw)
        if info["trained"]:
            trained.append((spec.arch, spec.recipe))
        return model, info

    monkeypatch.setattr(Q, "train_or_load", spy)
    return trained


def test_rerun_resumes_without_training(tiny_run, monkeypatch):
    out, result = tiny_run
    trained = _record_training(monkeypatch)
    again = Q.run(TINY, out_dir=out, progress=False)
    assert trained == [] and again["data"] == result["data"]


def test_changing_only_source_settings_reuses_the_zoo(tiny_run, tmp_path, monkeypatch):
    out, result = tiny_run
    work = tmp_path / "copy"
    shutil.copytree(out, work)
    trained = _record_training(monkeypatch)
    cfg = copy.deepcopy(TINY)
    cfg["sources"]["transform"] = "noise"
    changed = Q.run(cfg, out_dir=work, progress=False)
    # only the reference trains on the (now noisy) target; the zoo and the 3 mixture sources come from the store
    assert trained == [("mlp", "st")]
    assert changed["data"]["zoo"] == result["data"]["zoo"]
    assert changed["data"]["surrogates"] == result["data"]["surrogates"]
    assert changed["data"]["sources"]["rows"] != result["data"]["sources"]["rows"]  # re-ranked for the new target
    cfg["zoo"]["epochs"] = 2  # a zoo setting retrains the zoo; the sources have their own epochs: reused
    Q.run(cfg, out_dir=work, progress=False)
    assert trained[1:] == [("mlp", "st"), ("mlp", "sam_jr")]


def test_checkpointed_members_reload_identically(tiny_run):
    out, result = tiny_run
    from pyadvt.train import evaluate, train_or_load
    from pyadvt.utils.sweep import CellStore

    store = CellStore(out / "cells")
    train, test = digits(seed=0)
    zoo = Q.resolve_config(Q.DEFAULTS, TINY)["zoo"]
    model, info = train_or_load(Q.member_spec("mlp", "st", zoo, seed=0), train, store)
    assert not info["trained"]
    assert evaluate(model, test)["accuracy"] == result["data"]["zoo"][0]["accuracy"]


def test_member_spec_matches_a_hand_trained_model():
    # the spec's recipe is the one the quickstart documents: AT = PGD-3 L2 at eps 0.5 with SGD(0.05, 0.9, 5e-4);
    # an independent build + fit with those settings gives the same weights
    from pyadvt.models import build
    from pyadvt.train import AdversarialLoss, fit, train_or_load

    train, _ = digits(seed=0)
    train = train.subset(range(128))
    zoo = Q.resolve_config(Q.DEFAULTS, {"zoo": {"epochs": 1}})["zoo"]
    model, _ = train_or_load(Q.member_spec("mlp", "at", zoo, seed=3), train)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        ref = build("mlp", in_shape=(1, 8, 8), num_classes=10)
    fit(ref, train, epochs=1, lr=0.05, batch_size=64, seed=3, progress=False,
        loss_fn=AdversarialLoss(0.5, steps=3, norm="l2", seed=3))
    for p, q in zip(model.state_dict().values(), ref.state_dict().values()):
        torch.testing.assert_close(p, q)
    with pytest.warns(DeprecationWarning):
        old = Q.train_member("mlp", "at", train, zoo, 3)
    torch.testing.assert_close(old(train.x[:4]), model(train.x[:4]))


def test_shifted_target_selects_relabels_and_shifts():
    from pyadvt.transfer.target_transforms import low_resolution

    data = TensorData(torch.rand(8, 1, 8, 8), torch.tensor([0, 5, 7, 5, 1, 9, 7, 2]), 10)
    t = Q.shifted_target(data, [7, 5], "lowres")
    assert t.num_classes == 2 and t.y.tolist() == [1, 0, 1, 0]  # order of `classes` gives the new labels
    assert torch.equal(t.x, low_resolution(data.x[[1, 2, 3, 6]], 4))
    same = Q.shifted_target(data, list(range(10)), "none")
    assert torch.equal(same.x, data.x) and torch.equal(same.y, data.y)
    assert not torch.equal(Q.shifted_target(data, list(range(10)), "noise").x, data.x)


def test_class_mixture_shares():
    train, _ = digits()
    for fraction in (0.0, 0.25, 1.0):
        mix = Q.class_mixture(train, [5, 6, 7, 8, 9], fraction, 200, seed=3)
        inside = torch.isin(mix.y, torch.tensor([5, 6, 7, 8, 9]))
        assert len(mix) == 200 and int(inside.sum()) == round(200 * fraction) and mix.num_classes == 10
        assert torch.unique(mix.x.flatten(1), dim=0).shape[0] >= 195  # drawn without replacement
    assert torch.equal(Q.class_mixture(train, [1], 0.5, 50, 0).x, Q.class_mixture(train, [1], 0.5, 50, 0).x)
    with pytest.raises(ValueError, match="too large for the mixture 1"):
        Q.class_mixture(train, [1], 1.0, 500, 0)


@pytest.mark.parametrize("argv, message", [
    (["--set", "zoo.method=[st]"], "unknown config key 'zoo.method' (did you mean 'zoo.methods'?)"),
    (["--set", "zoo.methods=[xx]"], "unknown method 'xx'"),
    (["--set", "zoo.architectures=[vgg]"], "unknown architecture 'vgg'"),
    (["--set", "sources.transform=blur"], "sources.transform must be one of"),
    (["--set", "sources.target_classes=[1, 1]"], "sources.target_classes must be distinct digits"),
    (["--set", "sources.fractions=[1.5]"], "sources.fractions must be shares in [0, 1]"),
    (["--epochs", "0"], "zoo.epochs must be >= 1"),
])
def test_config_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    assert cli.main(["quickstart", "--out", str(tmp_path), "--quiet"] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_config_file_and_missing_config(tmp_path, capsys):
    assert cli.main(["quickstart", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path)]) == 2
    assert "config file not found" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_ranks_match_single_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", PYADVT_QUIET="1")
    single = subprocess.run([sys.executable, "-m", "pyadvt", "quickstart", "--out", str(tmp_path / "one")]
                            + TINY_ARGS, env=env, capture_output=True, text=True, timeout=400)
    assert single.returncode == 0, single.stderr[-2000:]
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                            "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "pyadvt", "quickstart",
                            "--out", str(tmp_path / "two")] + TINY_ARGS, env=env, capture_output=True, text=True,
                           timeout=400)
    assert multi.returncode == 0, multi.stderr[-2000:]
    one, two = read_result(tmp_path / "one"), read_result(tmp_path / "two")
    assert two["environment"]["world_size"] == 2 and one["environment"]["world_size"] == 1
    # identical numbers except wall-clock training times
    for res in (one, two):
        for row in res["data"]["zoo"]:
            row.pop("train_seconds")
    assert json.dumps(one["data"], sort_keys=True) == json.dumps(two["data"], sort_keys=True)


def test_quiet_silences_progress_and_status(tiny_run, tmp_path, capsys):
    out, _ = tiny_run
    work = tmp_path / "q"
    shutil.copytree(out, work)  # reuse the stored cells: this checks output, not training
    loud = [a for a in TINY_ARGS if a != "--quiet"]
    assert cli.main(["quickstart", "--out", str(work)] + loud) == 0
    captured = capsys.readouterr()
    assert "quickstart: training a zoo" in captured.err and "train zoo" in captured.err
    assert captured.out.strip() == str(work / "report.html")
    assert cli.main(["quickstart", "--out", str(work)] + TINY_ARGS) == 0
    captured = capsys.readouterr()
    assert "quickstart:" not in captured.err and "train zoo" not in captured.err and "it/s" not in captured.err
    assert captured.out.strip() == str(work / "report.html")  # the result path still goes to stdout


def test_print_config_roundtrips_through_config_file(tmp_path, capsys):
    assert cli.main(["quickstart", "--print-config", "--epochs", "2", "--set", "sources.transform=noise"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "qs.yaml").write_text(text)
    cfg = Q.resolve_config(Q.DEFAULTS, tmp_path / "qs.yaml")
    assert cfg["zoo"]["epochs"] == 2 and cfg["sources"]["transform"] == "noise"
    assert cfg == Q.resolve_config(Q.DEFAULTS, {"zoo": {"epochs": 2}, "sources": {"transform": "noise"}})
