"""The layout rules of docs/architecture.md, checked on the tree so they cannot silently regress.

* no function body in ``pyadvt/experiments/`` or ``pyadvt/commands/`` over 60 lines (docstring aside):
  an experiment is a short composition of library calls;
* figures are drawn only by ``pyadvt/report/`` (no matplotlib import in the library's other packages);
* nothing in the repository points to files outside it (readers follow ``docs/theory.md``).
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pyadvt"
MAX_BODY = 60


def _body_lengths(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]
            if body:
                yield node.name, node.lineno, body[-1].end_lineno - body[0].lineno + 1


def test_body_length_counts_lines_without_the_docstring(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('def f():\n    """doc\n    more"""\n    a = 1\n    return a\n')
    assert list(_body_lengths(probe)) == [("f", 1, 2)]


@pytest.mark.parametrize("folder", ["experiments", "commands"])
def test_no_long_function_in_experiments_and_commands(folder):
    long = [f"{p.relative_to(ROOT)}:{line} {name} ({n} lines)" for p in sorted((PKG / folder).glob("*.py"))
            for name, line, n in _body_lengths(p) if n > MAX_BODY]
    assert not long, f"functions over {MAX_BODY} lines (split them into named steps): {long}"


def test_figures_are_drawn_only_by_report():
    offenders = [str(p.relative_to(ROOT)) for p in sorted(PKG.rglob("*.py"))
                 if "report" not in p.relative_to(PKG).parts[:1]
                 and re.search(r"^\s*(import matplotlib|from matplotlib)", p.read_text(encoding="utf-8"), re.M)]
    assert not offenders, f"matplotlib outside pyadvt/report: {offenders}"


def test_nothing_points_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    # the outside folder and document names, spelled in pieces so this file does not match itself
    outside, spec = "../" + "sha" + "red", "SP" + "EC"
    pattern = re.compile("|".join([re.escape(outside), spec + r"\.md", spec + " §"]))
    hits = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".sh", ".cpp", ".h",
                               ".cu", ".cuh"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
    assert not hits, f"references to files outside the repository: {hits[:20]}"
