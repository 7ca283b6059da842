"""D10: every CLI error is one line with exit status 2 (no traceback unless --debug); Ctrl-C exits 130."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import pyadvt.report.command as report_command
from pyadvt.cli import main


def _run(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err


def _one_line_error(rc, err, *needles):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyadvt: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("argv, needles", [
    (["quickstart", "--device", "cuda"], ["--device cuda", "no CUDA GPU"]),
    (["quickstart", "--device", "garbage"], ["--device", "'garbage'"]),
    (["rank", "sources", "--device", "cuda:7"], ["--device cuda:7"]),
    (["attack", "--device", "tpu"], ["--device", "'tpu'"]),
])
def test_bad_device_is_one_line(argv, needles, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    _one_line_error(*_run(argv, capsys), *needles)


def test_out_that_is_a_file_or_not_writable(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    for argv in (["quickstart", "--out", str(f)], ["experiment", "geometry", "--quick", "--out", str(f)],
                 ["rank", "sources", "--out", str(f)]):
        _one_line_error(*_run(argv, capsys), "--out", str(f), "is a file")
    _one_line_error(*_run(["quickstart", "--out", str(f / "sub")], capsys), "not a writable directory")
    _one_line_error(*_run(["experiment", "geometry", "--quick", "--out", "/proc/pyadvt-nope"], capsys),
                    "/proc/pyadvt-nope", "not a writable directory")


def test_report_names_a_binary_file(tmp_path, capsys):
    b = tmp_path / "FILE.bin"
    b.write_bytes(bytes(range(256)) * 4)
    _one_line_error(*_run(["report", str(b)], capsys), str(b))
    good = tmp_path / "r.json"
    good.write_text(json.dumps({"a": 1}))
    _one_line_error(*_run(["report", str(good), "-o", str(b)], capsys), "-o/--out", "is a file")


@pytest.mark.parametrize("setting, needles", [
    ("surrogates.n_eval=0", ["surrogates.n_eval", ">= 1"]),
    ("surrogates.eps=-1", ["config surrogates", "'eps'"]),
    ("surrogates.norm=l7", ["config surrogates", "'norm'"]),
    ("surrogates.attack=nope", ["config surrogates", "'nope'"]),
    ("sources.steps=0", ["sources.steps"]),
])
def test_quickstart_evaluation_settings_checked_before_training(setting, needles, tmp_path, capsys, monkeypatch):
    import pyadvt.commands.quickstart as qs

    monkeypatch.setattr(qs, "run", lambda *a, **k: pytest.fail("started training with a bad setting"))
    _one_line_error(*_run(["quickstart", "--out", str(tmp_path), "--set", setting], capsys), *needles)


def test_internal_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("deep\ninside torch")

    monkeypatch.setattr(report_command, "main", boom)
    rc, err = _run(["report", str(tmp_path)], capsys)
    _one_line_error(rc, err, "RuntimeError: deep inside torch", "--debug")
    rc, err = _run(["report", str(tmp_path), "--debug"], capsys)
    assert rc == 2 and "Traceback" in err and "deep" in err


def test_keyboard_interrupt_exits_130_in_process(tmp_path, capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_command, "main", interrupted)
    rc, err = _run(["report", str(tmp_path)], capsys)
    assert rc == 130 and err.strip() == "pyadvt: interrupted; rerun to resume"


def _default_sigint() -> None:
    """In the child, before Python starts: SIGINT back to its default. A test runner started as a background
    job of a non-interactive shell inherits SIGINT *ignored*, and Python then keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_sigint_of_a_real_run_exits_130_without_traceback(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # the quick preset made long enough (20 models per family, 30 epochs) that the run is still inside
    # its cells when the signal comes: the plain quick run can finish within one poll of its first cell
    proc = subprocess.Popen([sys.executable, "-m", "pyadvt", "experiment", "geometry", "--quick", "--set", "models=20",
                             "--set", "nn.epochs=30", "--out", str(tmp_path / "g")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=_default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "g").glob("cells/*.json")):
        time.sleep(0.2)  # wait until the run is inside its first cells
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "interrupted; rerun to resume" in err and "Traceback" not in err
    assert not (tmp_path / "g" / "result.json").exists()  # it really was interrupted mid-run
