"""Build information and the fall-back when the compiled extension cannot be loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pyadvt
from pyadvt import _ext


def test_build_info_reports_versions_and_kernels():
    info = pyadvt.build_info()
    assert info["torch"]
    assert set(info["kernels"]) <= {"cpu", "cuda"}
    if info["extension_loaded"]:
        assert "cpu" in info["kernels"]
        assert info["compiler"] and info["cxx_flags"] is not None
        assert any(op.startswith("pgd_step_[cpu") for op in info["ops"])
    else:
        assert info["load_error"]


def test_cli_info_json(capsys):
    from pyadvt.cli import main

    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pyadvt"] == pyadvt.__version__


_FALLBACK_SCRIPT = r"""
import sys, warnings, json
sys.modules["pyadvt._C"] = None  # makes `from pyadvt import _C` raise ImportError
import torch, pyadvt
from pyadvt.ops import pgd_step_
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    x0 = torch.full((1, 3), 0.5); x = x0.clone()
    pgd_step_(x, torch.tensor([[1.0, -1.0, 0.0]]), x0, 0.1, 0.05)
    pgd_step_(x, torch.tensor([[1.0, -1.0, 0.0]]), x0, 0.1, 0.05)
msgs = [str(w.message) for w in caught if "pyadvt" in str(w.message)]
print(json.dumps({"x": x.tolist(), "warnings": msgs, "info": pyadvt.build_info()}))
"""


def test_missing_extension_falls_back_with_one_warning():
    out = subprocess.run([sys.executable, "-c", _FALLBACK_SCRIPT], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(res["warnings"]) == 1 and "pyadvt._C" in res["warnings"][0]
    assert res["info"]["extension_loaded"] is False and res["info"]["kernels"] == []
    assert res["x"] == [[0.6000000238418579, 0.4000000059604645, 0.5]]


def test_kernel_available_is_per_op_and_device():
    assert _ext.kernel_available("no_such_op", "cpu") is False
    assert _ext.kernel_available("pgd_step_", "mps") is False


def test_cli_aliases_and_help_list_every_command(capsys):
    import pytest

    from pyadvt.cli import ALIASES, COMMANDS, build_parser, main
    from pyadvt.experiments import EXPERIMENTS

    with pytest.raises(SystemExit) as exc:
        main(["rank-sources", "--help"])
    assert exc.value.code == 0
    assert "usage: pyadvt rank sources" in capsys.readouterr().out
    help_text = build_parser(["info"]).format_help()
    for name in [*COMMANDS, *ALIASES, "experiment"]:
        assert name in help_text
    exp_help = build_parser(["experiment"])._subparsers._group_actions[0].choices["experiment"].format_help()
    for name in EXPERIMENTS:
        assert name in exp_help


def test_cli_imports_only_the_chosen_command():
    code = ("import sys; from pyadvt.cli import build_parser; build_parser(['info']); "
            "print(any(m.startswith(('pyadvt.experiments.', 'pyadvt.commands.', 'pyadvt.report')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
