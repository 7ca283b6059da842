"""The pyadvt.result/1 schema: building, validating, writing (strict JSON) and reading results."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import torch

import pyadvt
from pyadvt.report import results as R


def _result(**kw):
    return R.make_result("transfer_matrix", {"eps": 0.1, "models": ["a", "b"]},
                         {"asr": torch.tensor([[1.0, 0.25], [float("nan"), 1.0]])}, seeds=[0, 1], **kw)


def test_make_result_fields_and_environment():
    res = _result(timings={"train": 1.5}, summary={"mean_asr": 0.5})
    assert res["schema"] == R.SCHEMA == "pyadvt.result/1" and res["kind"] == "transfer_matrix"
    assert res["data"]["asr"] == [[1.0, 0.25], [None, 1.0]]  # NaN -> null (undefined)
    env = res["environment"]
    assert env["pyadvt"] == pyadvt.__version__ and env["torch"] == torch.__version__
    assert env["device"] == "cpu" and env["seeds"] == [0, 1] and env["world_size"] == 1
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(R.__file__).parent, capture_output=True,
                          text=True).stdout.strip()
    if head:
        assert env["git_commit"].split("+")[0] == head
    assert res["timings"] == {"train": 1.5} and res["summary"] == {"mean_asr": 0.5}


def test_write_read_roundtrip_is_strict_json(tmp_path):
    res = _result(figures=[{"type": "heatmap", "matrix": [[1.0, float("inf")]]}],
                  tables=[{"title": "t", "columns": ["a", "b"], "rows": [[1, None]]}], notes=["vacuous bound"])
    path = R.write_result(res, tmp_path / "sub")
    assert path == tmp_path / "sub" / "result.json"

    def reject(token):
        raise AssertionError(f"non-standard JSON token {token}")

    json.loads(path.read_text(), parse_constant=reject)
    back = R.read_result(tmp_path / "sub")
    assert back == json.loads(json.dumps(back)) and back["figures"][0]["matrix"] == [[1.0, None]]
    assert back["data"] == res["data"] and back["config"] == res["config"]
    assert R.write_result(back, tmp_path / "named.json").name == "named.json"


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.pop("config"), "missing the required key 'config'"),
    (lambda r: r.update(schema="pyadvt.result/0"), "unsupported result schema"),
    (lambda r: r.update(kind=""), "'kind' must be a non-empty"),
    (lambda r: r.update(data=[1, 2]), "'data' must be a dict"),
    (lambda r: r.update(extra=1), "unknown result key 'extra'"),
    (lambda r: r.update(timings={"x": "slow"}), r"timings\['x'\] must be a number"),
    (lambda r: r.update(figures=[{"type": "pie"}]), r"figures\[0\] must be an object with type"),
    (lambda r: r.update(tables=[{"columns": ["a", "b"], "rows": [[1]]}]), r"tables\[0\].rows\[0\] must be a list of 2"),
    (lambda r: r.update(notes="x"), "'notes' must be a list"),
])
def test_validation_names_the_problem(mutate, message):
    res = _result()
    R.validate_result(res)
    mutate(res)
    with pytest.raises(ValueError, match=message):
        R.validate_result(res)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="result file not found"):
        R.read_result(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        R.read_result(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ValueError, match="old.json: result is missing"):
        R.read_result(tmp_path / "old.json")


def test_find_results_only_returns_result_files(tmp_path):
    R.write_result(_result(), tmp_path / "a")
    R.write_result(_result(), tmp_path / "b" / "deep" / "r.json")
    (tmp_path / "config.json").write_text('{"eps": 1}')
    (tmp_path / "broken.json").write_text("{")
    assert R.find_results(tmp_path) == [tmp_path / "a" / "result.json", tmp_path / "b" / "deep" / "r.json"]


def test_timings_accumulate_per_phase():
    t = R.Timings()
    for _ in range(2):
        with t("sleep"):
            time.sleep(0.02)
    with pytest.raises(RuntimeError), t("fail"):
        raise RuntimeError
    assert 0.04 <= t["sleep"] < 1.0 and "fail" in t
    assert R.make_result("k", {}, {}, timings=t)["timings"]["sleep"] == t["sleep"]
