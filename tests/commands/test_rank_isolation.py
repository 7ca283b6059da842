"""`pyadvt rank-sources` / `rank-surrogates` on an ImageFolder tree, with a model failing inside a metric:
one line per failed model (a traceback only with --debug), the others ranked, exit 1 (2 when none is scored)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from PIL import Image

from pyadvt.cli import main

ZOO = textwrap.dedent('''
    import torch
    from torch import nn

    def make(num_classes=10, width=4):
        torch.manual_seed(width)
        return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                             nn.Linear(4 * width, num_classes))

    class Raising(nn.Module):
        """Passes the one-image check, raises on the metrics' batches."""

        def __init__(self, num_classes=10):
            super().__init__()
            self.net = make(num_classes, width=3)

        def forward(self, x):
            if x.shape[0] > 1:
                raise RuntimeError("kernel not available for this batch")
            return self.net(x)
''')


@pytest.fixture
def tree(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(["bird", "car", "dog"]):
            (tmp_path / "images" / split / name).mkdir(parents=True)
            for j in range(4):
                arr = rng.integers(0, 256, size=(20, 18, 3), dtype=np.uint8)
                arr[..., c] = 255  # a class cue
                Image.fromarray(arr).save(tmp_path / "images" / split / name / f"{j}.png")
    (tmp_path / "zoo.py").write_text(ZOO)
    monkeypatch.chdir(tmp_path)
    return tmp_path


FOLDER = ["--dataset", "imagefolder", "--data-root", "images", "--image-size", "8", "--n-eval", "6",
          "--set", "steps=1", "--quiet"]


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def _result(path):
    return json.loads((path / "result.json").read_text())["data"]


def test_rank_sources_on_an_image_folder_with_probes(tree, capsys):
    code, out, err = _run(capsys, "rank-sources", "--source", "a=pyadvt:cnn", "--source", "b=pyadvt:mlp",
                          "--reference", "pyadvt:cnn", "--scores", "logme,tau1*tau2", *FOLDER,
                          "--set", "probe_epochs=1", "--out", "ok")
    assert code == 0, err
    res = _result(tree / "ok")
    assert sorted(r["name"] for r in res["rows"]) == ["a", "b"] and res["failed"] == {} and res["n_eval"] == 6
    assert all(0 <= r["probe_accuracy"] <= 1 and r["logme"] is not None for r in res["rows"])
    assert "tracebacks" not in res


def test_a_source_failing_in_a_metric_is_one_line_and_the_others_are_ranked(tree, capsys):
    argv = ["rank-sources", "--source", "good=zoo.py:make", "--source", "bad=zoo.py:Raising", "--reference",
            "zoo.py:make,width=5", "--no-probe", "--scores", "logme,tau1*tau2,eq2_loss", *FOLDER]
    code, _, err = _run(capsys, *argv, "--out", "part")
    assert code == 1
    assert len(err) == 1
    assert err[0].startswith("pyadvt: error: source 'bad' failed in estimators, tau1/tau2, eq2_loss: ")
    assert "kernel not available" in err[0]
    res = _result(tree / "part")
    rows = {r["name"]: r for r in res["rows"]}
    assert rows["good"]["score"] is not None and rows["good"]["rank_score"] == 1 and rows["good"]["failed"] is None
    assert rows["bad"]["score"] is None and rows["bad"]["failed"] == res["failed"]["bad"]
    code, _, err = _run(capsys, *argv, "--out", "dbg", "--debug")  # --debug: the traceback, then the line
    assert code == 1 and any(line.startswith("Traceback") for line in err)
    assert err[-1].startswith("pyadvt: error: source 'bad' failed in")


def test_every_candidate_failing_exits_2(tree, capsys):
    code, _, err = _run(capsys, "rank-surrogates", "--surrogate", "bad=zoo.py:Raising", "--target", "t=zoo.py:make",
                        "--scores", "similarity", *FOLDER, "--out", "none")
    assert code == 2
    assert err[0].startswith("pyadvt: error: surrogate 'bad' failed in attack")
    assert err[-1] == "pyadvt: error: no surrogate could be scored: every one failed (see the errors above)"


def test_rank_surrogates_on_an_image_folder_ranks_around_a_failure(tree, capsys):
    code, _, err = _run(capsys, "rank-surrogates", "--surrogate", "a=zoo.py:make", "--surrogate", "bad=zoo.py:Raising",
                        "--surrogate", "b=zoo.py:make,width=6", "--target", "t=zoo.py:make,width=5",
                        "--set", "n_smooth=2", *FOLDER, "--out", "sur")
    assert code == 1 and len(err) == 1 and "surrogate 'bad' failed in attack" in err[0]
    res = _result(tree / "sur")
    assert [r["name"] for r in res["rows"]][-1] == "bad"
    assert all(r["mean_asr"] is not None for r in res["rows"] if r["name"] != "bad")
