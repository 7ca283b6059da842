"""The similarity tree is drawn by pyadvt.report.figures.dendrogram; metrics/atm only computes it."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest
from scipy.cluster.hierarchy import linkage

import pyadvt
from pyadvt.report.figures import dendrogram


def _tree():
    return linkage(np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [1.1, 0.9]]), "average")


def test_dendrogram_writes_a_png_and_checks_its_input(tmp_path):
    path = dendrogram(_tree(), ["a", "b", "c", "d"], tmp_path / "sub" / "tree.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="labels"):
        dendrogram(_tree(), ["a", "b"], tmp_path / "t.png")
    with pytest.raises(ValueError, match="linkage_matrix"):
        dendrogram(np.zeros((3, 3)), ["a", "b", "c", "d"], tmp_path / "t.png")
    with pytest.raises(ValueError, match=".png"):
        dendrogram(_tree(), ["a", "b", "c", "d"], tmp_path / "t.pdf")


def test_deprecated_metrics_alias_draws_the_same_figure(tmp_path):
    from pyadvt.metrics.atm import save_dendrogram

    new = dendrogram(_tree(), list("abcd"), tmp_path / "new.png", title="t")
    with pytest.warns(DeprecationWarning, match="pyadvt.report.figures.dendrogram"):
        old = save_dendrogram(_tree(), list("abcd"), tmp_path / "old.png", title="t")
    assert pathlib.Path(old).read_bytes() == new.read_bytes()


def test_no_global_matplotlib_backend_and_no_drawing_below_report():
    root = pathlib.Path(pyadvt.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "use" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "matplotlib":
                pytest.fail(f"{path}: matplotlib.use() changes the backend of the user's whole process")
            if isinstance(node, (ast.Import, ast.ImportFrom)) and path.parent.name in ("metrics", "bounds"):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.startswith("matplotlib") for n in names), f"{path} draws a figure"


def test_a_crash_while_saving_leaves_the_previous_figure(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = dendrogram(_tree(), list("abcd"), tmp_path / "tree.png")
    before = path.read_bytes()

    def broken(self, fh, **kw):
        fh.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        dendrogram(_tree(), list("abcd"), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["tree.png"]
