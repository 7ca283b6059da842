"""End-to-end tests of ``pyadvt attack`` with tiny settings."""

from __future__ import annotations

import json

import pytest
import torch

from pyadvt.attacks import DIM
from pyadvt.cli import main
from pyadvt.data import digits
from pyadvt.train import load_checkpoint

TINY = ["attack", "--source-model", "mlp", "--target-model", "mlp", "--epochs", "2", "--n-eval", "60",
        "--steps", "3", "--attack-batch", "25", "--quiet"]


def run(capsys, *extra):
    code = main(TINY + list(extra))
    out, err = capsys.readouterr()
    return code, out, err


def test_attack_command_end_to_end_matches_library(tmp_path, capsys):
    out_file = tmp_path / "res.json"
    code, out, _ = run(capsys, "--attack", "dim", "--eps", "0.05", "0.2", "--out", str(out_file),
                       "--save-checkpoints", str(tmp_path / "ckpt"))
    assert code == 0
    assert "clean accuracy" in out and "transfer success" in out
    res = json.loads(out_file.read_text())
    assert res["schema"] == "pyadvt.result/1" and res["kind"] == "attack"
    rows = res["data"]["budgets"]
    assert [r["eps"] for r in rows] == [0.05, 0.2]
    assert rows[0]["source_fooling"] <= rows[1]["source_fooling"]
    assert all(r["mean_linf"] <= r["eps"] + 1e-6 for r in rows)
    assert res["tables"][0]["rows"][1][0] == 0.2

    # recompute the numbers with the library on the saved models
    source, _ = load_checkpoint(tmp_path / "ckpt" / "source.pt")
    target, _ = load_checkpoint(tmp_path / "ckpt" / "target.pt")
    _, test = digits(seed=0)
    x, y = test.x[:60], test.y[:60]
    x_adv = DIM(source, eps=0.2, steps=3)(x, y, eps=torch.tensor([0.05, 0.2]))
    for k, row in enumerate(rows):
        with torch.no_grad():
            fool = float((source(x_adv[k]).argmax(1) != y).double().mean())
            transfer = float((target(x_adv[k]).argmax(1) != y).double().mean())
        assert row["source_fooling"] == pytest.approx(fool, abs=1e-9)
        assert row["transfer_success"] == pytest.approx(transfer, abs=1e-9)
    with torch.no_grad():
        acc = float((source(x).argmax(1) == y).double().mean())
    assert res["data"]["clean_accuracy"]["source"] == pytest.approx(acc)
    assert acc > 0.8

    # loading the checkpoints instead of training reproduces the result
    again = tmp_path / "again.json"
    code, _, _ = run(capsys, "--attack", "dim", "--eps", "0.05", "0.2", "--out", str(again),
                     "--source-checkpoint", str(tmp_path / "ckpt" / "source.pt"),
                     "--target-checkpoint", str(tmp_path / "ckpt" / "target.pt"))
    assert code == 0
    again = json.loads(again.read_text())["data"]
    assert again["budgets"] == res["data"]["budgets"] and again["clean_accuracy"] == res["data"]["clean_accuracy"]


def test_attack_command_targeted_fgsm(capsys):
    code, out, _ = run(capsys, "--attack", "fgsm", "--eps", "0.3", "--targeted")
    assert code == 0
    assert out.startswith("targeted fgsm")


@pytest.mark.parametrize("extra, message", [
    (["--eps", "0", "0.1"], "--eps"),
    (["--attack", "mifgsm", "--norm", "l2"], "L-inf only"),
    (["--steps", "0"], "--steps"),
    (["--source-checkpoint", "/nonexistent/model.pt"], "does not exist"),
])
def test_attack_command_user_errors(capsys, extra, message):
    code, _, err = run(capsys, *extra)
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_quiet_flag_does_not_leak_into_the_process(capsys):
    from pyadvt.utils.progress import is_quiet

    before = is_quiet()
    code, _, _ = run(capsys, "--attack", "fgsm", "--eps", "0.1")
    assert code == 0 and is_quiet() == before
