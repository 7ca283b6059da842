"""The package surface: ``__all__`` in every package, the entry points on ``pyadvt``, a cheap import."""

from __future__ import annotations

import ast
import importlib
import json
import pathlib
import subprocess
import sys

import pytest

import pyadvt

ROOT = pathlib.Path(pyadvt.__file__).parent
PACKAGES = sorted(".".join(("pyadvt",) + p.parent.relative_to(ROOT).parts) for p in ROOT.rglob("__init__.py")
                  if "__pycache__" not in p.parts)


def _public_names_of(init: pathlib.Path) -> set[str]:
    """Names an ``__init__`` imports or assigns at top level (not underscored, not submodules)."""
    names = set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pyadvt"):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_lists_exactly_its_public_names(package):
    init = ROOT.joinpath(*package.split(".")[1:], "__init__.py")
    module = importlib.import_module(package)
    assert isinstance(getattr(module, "__all__", None), list), f"{package} has no __all__"
    listed = [n for n in module.__all__ if n != "__version__"]
    assert len(set(listed)) == len(listed), f"{package}.__all__ has duplicates"
    for name in listed:
        assert getattr(module, name) is not None  # every listed name resolves
    defined = _public_names_of(init)
    lazy = set(getattr(module, "_ENTRY_POINTS", {})) | set(getattr(module, "_LAZY", {}))
    missing = defined - set(listed)
    extra = set(listed) - defined - lazy
    assert not missing, f"{package}: public names missing from __all__: {sorted(missing)}"
    assert not extra, f"{package}: __all__ lists names it does not define: {sorted(extra)}"


ENTRY_POINTS = {
    "PGD": "pyadvt.attacks", "FGSM": "pyadvt.attacks", "MIFGSM": "pyadvt.attacks", "build_attack": "pyadvt.attacks",
    "tau1": "pyadvt.metrics", "tau2": "pyadvt.metrics", "adversarial_transferability": "pyadvt.metrics",
    "smoothness": "pyadvt.metrics", "gradient_similarity": "pyadvt.metrics", "attack_transferability": "pyadvt.metrics",
    "empirical_transferability": "pyadvt.metrics", "rank_sources": "pyadvt.selection",
    "rank_surrogates": "pyadvt.selection", "agreement": "pyadvt.selection", "from_torchvision": "pyadvt.models",
    "from_timm": "pyadvt.models", "build": "pyadvt.models", "load_dataset": "pyadvt.data",
    "TensorData": "pyadvt.data", "fit": "pyadvt.train", "evaluate": "pyadvt.train",
    "save_checkpoint": "pyadvt.train", "load_checkpoint": "pyadvt.train",
}


@pytest.mark.parametrize("name,package", sorted(ENTRY_POINTS.items()))
def test_entry_points_are_the_subpackage_objects(name, package):
    assert name in pyadvt.__all__ and name in dir(pyadvt)
    assert getattr(pyadvt, name) is getattr(importlib.import_module(package), name)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pyadvt.nope  # noqa: B018


HEAVY = ("torch", "torchvision", "timm", "matplotlib", "cvxpy", "scipy", "sklearn")


def _imported_after(code: str) -> list[str]:
    probe = f"import sys, json; {code}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_pyadvt_is_cheap():
    assert _imported_after("import pyadvt; pyadvt.__version__") == []


def test_an_entry_point_imports_only_what_it_needs():
    loaded = _imported_after("import pyadvt; pyadvt.PGD")
    assert "torch" in loaded
    assert not {"torchvision", "timm", "matplotlib", "cvxpy"} & set(loaded), loaded
