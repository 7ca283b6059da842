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
    "sources": {"n_eval": 24, "steps": 2, "probe_epochs": 1, "reference_epochs": 1},
}
TINY_ARGS = ["--set", "zoo.architectures=[mlp]", "--set", "zoo.methods=[st, sam_jr]", "--epochs", "1",
             "--set", "surrogates.n_eval=24", "--set", "surrogates.n_smooth=4", "--set", "surrogates.steps=2",
             "--set", "sources.n_eval=24", "--set", "sources.steps=2", "--set", "sources.probe_epochs=1",
             "--set", "sources.reference_epochs=1", "--quiet"]


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
    assert {r["name"] for r in data["sources"]["rows"]} == {"mlp-st", "mlp-sam_jr"}
    assert set(result["timings"]) == {"data", "zoo", "surrogates", "sources"}
    assert result["config"]["zoo"]["epochs"] == 1 and result["config"]["zoo"]["lr"] == 0.05  # defaults merged
    kinds = [f["type"] for f in result["figures"]]
    assert kinds.count("heatmap") == 2 and "scatter" in kinds and "bars" in kinds


def test_rerun_resumes_without_training(tiny_run, monkeypatch):
    out, result = tiny_run
    monkeypatch.setattr(Q, "train_member", lambda *a, **k: pytest.fail("retrained a stored zoo member"))
    again = Q.run(TINY, out_dir=out, progress=False)
    assert again["data"] == result["data"]


def test_changing_only_source_settings_reuses_the_zoo(tiny_run, tmp_path, monkeypatch):
    out, result = tiny_run
    work = tmp_path / "copy"
    shutil.copytree(out, work)
    trained = []
    real = Q.train_member
    monkeypatch.setattr(Q, "train_member", lambda *a, **k: trained.append(a[:2]) or real(*a, **k))
    cfg = copy.deepcopy(TINY)
    cfg["sources"]["task"] = "same"
    changed = Q.run(cfg, out_dir=work, progress=False)
    assert trained == [("mlp", "st")]  # only the new reference model; the zoo came from the store
    assert changed["data"]["zoo"] == result["data"]["zoo"]
    assert changed["data"]["surrogates"] == result["data"]["surrogates"]
    cfg["zoo"]["epochs"] = 2  # a zoo setting invalidates the zoo (and everything computed from it)
    Q.run(cfg, out_dir=work, progress=False)
    assert trained[1:] == [("mlp", "st"), ("mlp", "sam_jr"), ("mlp", "st")]


def test_checkpointed_members_reload_identically(tiny_run):
    out, result = tiny_run
    from pyadvt.train import evaluate
    from pyadvt.utils.sweep import CellStore

    store = CellStore(out / "cells")
    _, test = digits(seed=0)
    zoo = Q.resolve_config(Q.DEFAULTS, TINY)["zoo"]
    model = Q._load_member(("zoo", Q._config_hash(0, zoo), "mlp", "st"), store, test, zoo)
    assert evaluate(model, test)["accuracy"] == result["data"]["zoo"][0]["accuracy"]


def test_shifted_target():
    data = TensorData(torch.rand(6, 1, 8, 8), torch.arange(6), 10)
    par = Q.shifted_target(data, "lowres", "parity")
    assert par.num_classes == 2 and par.y.tolist() == [0, 1, 0, 1, 0, 1]
    from pyadvt.transfer.target_transforms import low_resolution

    assert torch.equal(par.x, low_resolution(data.x, 4)) and not torch.equal(par.x, data.x)
    same = Q.shifted_target(data, "none", "same")
    assert torch.equal(same.x, data.x) and torch.equal(same.y, data.y)
    assert not torch.equal(Q.shifted_target(data, "noise", "same").x, data.x)


@pytest.mark.parametrize("argv, message", [
    (["--set", "zoo.method=[st]"], "unknown config key 'zoo.method' (did you mean 'zoo.methods'?)"),
    (["--set", "zoo.methods=[xx]"], "unknown method 'xx'"),
    (["--set", "zoo.architectures=[vgg]"], "unknown architecture 'vgg'"),
    (["--set", "sources.transform=blur"], "sources.transform must be one of"),
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
