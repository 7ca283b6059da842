"""Progress bars / log messages honour set_quiet, PYADVT_QUIET, enabled=False and non-zero ranks."""

from __future__ import annotations

import pytest

from pyadvt.utils import progress as P


@pytest.fixture(autouse=True)
def _reset(monkeypatch):
    monkeypatch.delenv("PYADVT_QUIET", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    P.set_quiet(None)
    yield
    P.set_quiet(None)


def _bar_output(capsys, **kwargs) -> str:
    assert list(P.progress(range(5), desc="work", **kwargs)) == list(range(5))
    P.log("hello-log")
    return capsys.readouterr().err


def test_default_shows_bar_and_log(capsys):
    err = _bar_output(capsys)
    assert "work" in err and "5/5" in err and "hello-log" in err


@pytest.mark.parametrize("setup", ["set_quiet", "env", "rank"])
def test_quiet_sources_silence_everything(capsys, monkeypatch, setup):
    if setup == "set_quiet":
        P.set_quiet(True)
    elif setup == "env":
        monkeypatch.setenv("PYADVT_QUIET", "1")
    else:
        monkeypatch.setenv("RANK", "1")
    assert P.is_quiet()
    assert _bar_output(capsys) == ""


def test_set_quiet_false_beats_environment_but_not_rank(capsys, monkeypatch):
    monkeypatch.setenv("PYADVT_QUIET", "yes")
    P.set_quiet(False)
    assert not P.is_quiet() and "hello-log" in _bar_output(capsys)
    monkeypatch.setenv("RANK", "3")
    assert P.is_quiet()


def test_enabled_false_hides_only_the_bar(capsys):
    err = _bar_output(capsys, enabled=False)
    assert "work" not in err and "hello-log" in err


def test_env_false_values_are_not_quiet(monkeypatch):
    for value in ("", "0", "false", "No"):
        monkeypatch.setenv("PYADVT_QUIET", value)
        assert not P.is_quiet()


def test_set_quiet_type_check():
    with pytest.raises(TypeError, match="quiet must be a bool"):
        P.set_quiet("yes")
