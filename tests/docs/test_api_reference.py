"""The API reference (docs/api/*.md) lists every public name of every public package, and every public
function and class has a docstring.

A public name is one in the package's ``__all__``, or - for a package without ``__all__`` - every
name its ``__init__`` binds that does not start with ``_`` and is not a module, a ``__future__``
feature or a class/function imported from outside pyadvt.  When a package gains a name, this test
fails naming it; ``python tests/docs/test_api_reference.py`` rewrites the pages from the packages.
"""

from __future__ import annotations

import __future__
import functools
import importlib
import inspect
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api"

# page -> (package, one-line description shown at the top of the page)
PACKAGES: dict[str, tuple[str, str]] = {
    "pyadvt": ("pyadvt", "The top-level package: the main entry points (imported lazily), the build, the version."),
    "attacks": ("pyadvt.attacks", "Transfer attacks, presets, the evaluation protocol."),
    "metrics": ("pyadvt.metrics", "tau1/tau2, smoothness, similarity, transfer rates, AS score, ATM."),
    "selection": ("pyadvt.selection", "Transferability estimators and source/surrogate rankings."),
    "bounds": ("pyadvt.bounds", "Both sides of the seed papers' bounds and identities."),
    "train": ("pyadvt.train", "fit/evaluate, losses, regularisers, SAM, LGV, recipes, the zoo."),
    "transfer": ("pyadvt.transfer", "Linear probing, fine-tuning, LP-FT, influence functions."),
    "theory": ("pyadvt.theory", "Max-margin SVMs and checkers of seed 003's theorems."),
    "models": ("pyadvt.models", "Small networks, hub models, wrap() and the features/head split."),
    "data": ("pyadvt.data", "Digits, dataset loaders, tensor/streaming data helpers."),
    "ops": ("pyadvt.ops", "The C++/CUDA kernels and their Python entry points."),
    "report": ("pyadvt.report", "Result schema, figures and HTML/Markdown reports."),
    "utils": ("pyadvt.utils", "Per-sample seeded randomness and eval-mode helpers."),
    "experiments": ("pyadvt.experiments", "The papers' experiments: each module's run() and DEFAULTS."),
}
# the experiments are modules with run(config) and DEFAULTS rather than names of the package
EXPERIMENT_NAMES = ("run", "DEFAULTS")


def public_names(package: str) -> list[str]:
    """The public names of ``package`` (its ``__all__``, else what its ``__init__`` binds publicly)."""
    mod = importlib.import_module(package)
    if hasattr(mod, "__all__"):
        return sorted(mod.__all__)
    names = []
    for name, obj in vars(mod).items():
        if name.startswith("_") or isinstance(obj, (types.ModuleType, __future__._Feature)):
            continue
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not obj.__module__.startswith("pyadvt"):
            continue
        names.append(name)
    return sorted(names)


def experiment_modules() -> list[str]:
    from pyadvt.experiments import EXPERIMENTS

    return sorted(EXPERIMENTS.values())


def documented_objects() -> list[tuple[str, object]]:
    """(dotted name, object) of every name the reference documents."""
    out = []
    for package, _ in PACKAGES.values():
        mod = importlib.import_module(package)
        out += [(f"{package}.{n}", getattr(mod, n)) for n in public_names(package)]
    for module in experiment_modules():
        mod = importlib.import_module(module)
        out += [(f"{module}.{n}", getattr(mod, n)) for n in EXPERIMENT_NAMES]
    return out


def canonical_page(name: str) -> tuple[str, str] | None:
    """``(page, package)`` of the subpackage page that documents ``pyadvt.<name>`` (a lazy entry point
    of the top-level package is the same object as a subpackage's public name), or None."""
    import pyadvt

    obj = getattr(pyadvt, name)
    for page, (package, _) in PACKAGES.items():
        if page != "pyadvt" and name in public_names(package) and getattr(importlib.import_module(package), name) is obj:
            return page, package
    return None


def lazy_target(name: str) -> str:
    """Where the directive for a top-level name not documented on a subpackage page points: its
    defining module (griffe reads source statically and cannot follow ``pyadvt.__getattr__``)."""
    import pyadvt

    return f"{getattr(pyadvt, '_ENTRY_POINTS', {}).get(name, 'pyadvt')}.{name}"


@functools.lru_cache(maxsize=None)
def static_members(package: str) -> frozenset[str]:
    """Names griffe (which reads the source, not the imported module) finds in ``package``."""
    import griffe

    return frozenset(griffe.load(package, search_paths=[str(ROOT)]).members)


def directive_target(package: str, name: str) -> str:
    """``package.name``, or - for a name the package provides lazily (PEP 562 ``__getattr__``), which
    griffe cannot follow - the module that defines it."""
    if name in static_members(package):
        return f"{package}.{name}"
    obj = getattr(importlib.import_module(package), name)
    return f"{obj.__module__}.{name}"


def resolve(dotted: str):
    """The object a ``::: dotted.name`` directive documents (longest importable module prefix)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def render_page(page: str) -> str:
    package, blurb = PACKAGES[page]
    lines = [f"# `{package}`", "", blurb, "", f"::: {package}", "    options:", "      members: false",
             "      show_root_heading: false", ""]
    if page == "pyadvt":
        table = ["| name | documented in |", "|---|---|"]
        for name in public_names(package):
            where = canonical_page(name)
            if where:
                table.append(f"| `pyadvt.{name}` | [`{where[1]}.{name}`]({where[0]}.md#{where[1]}.{name}) |")
            elif name != "__version__":
                lines += [f"::: {lazy_target(name)}", ""]
        lines += ["## Entry points", "", "`import pyadvt` imports no subpackage; these names are imported on first use "
                  "and are the same objects as in their subpackages:", "", *table, ""]
        return "\n".join(lines)
    for name in public_names(package):
        lines += [f"::: {directive_target(package, name)}", ""]
    if page == "experiments":
        for module in experiment_modules():
            lines += [f"::: {module}", "    options:", f"      members: [{', '.join(EXPERIMENT_NAMES)}]",
                      "      heading_level: 2", ""]
    return "\n".join(lines)


def directives(text: str) -> set[str]:
    return set(re.findall(r"^::: ([\w.]+)", text, flags=re.M))


def write_pages() -> None:
    API.mkdir(parents=True, exist_ok=True)
    for page in PACKAGES:
        (API / f"{page}.md").write_text(render_page(page), encoding="utf-8")


@pytest.mark.parametrize("page", sorted(PACKAGES))
def test_every_public_name_is_in_the_reference(page):
    package, _ = PACKAGES[page]
    path = API / f"{page}.md"
    assert path.exists(), f"{path} is missing: run python tests/docs/test_api_reference.py"
    text = path.read_text(encoding="utf-8")
    present = directives(text)
    wanted = {f"{package}.{n}" for n in public_names(package)} | {package}
    if page == "pyadvt":  # lazy entry points: a link to their subpackage page or a directive at the source
        wanted = {package}
        for n in public_names(package):
            where = canonical_page(n)
            if where:
                assert f"]({where[0]}.md#{where[1]}.{n})" in text, f"pyadvt.md lacks the link of {n}"
            elif n != "__version__":
                wanted.add(lazy_target(n))
    if page == "experiments":
        wanted |= set(experiment_modules())
    mod = importlib.import_module(package)
    for n in public_names(package):  # a lazily provided name may be documented at its defining module
        if f"{package}.{n}" in wanted and f"{package}.{n}" not in present:
            if any(d.endswith(f".{n}") and resolve(d) is getattr(mod, n) for d in present):
                wanted.discard(f"{package}.{n}")
                wanted |= {d for d in present if d.endswith(f".{n}") and resolve(d) is getattr(mod, n)}
    missing = sorted(wanted - present)
    assert not missing, f"{path.name} lacks {missing}: run python tests/docs/test_api_reference.py"
    stale = sorted(present - wanted)
    assert not stale, f"{path.name} documents names that are no longer public: {stale}"


def test_every_package_has_a_page():
    pages = {p.stem for p in API.glob("*.md") if p.stem != "index"}
    assert pages == set(PACKAGES), f"docs/api pages {sorted(pages)} vs packages {sorted(PACKAGES)}"


def test_every_public_function_and_class_has_a_docstring():
    undocumented = []
    for name, obj in documented_objects():
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
            doc = inspect.getdoc(obj)
            own = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
            if not doc or not own or not own.strip():
                undocumented.append(name)
    assert not undocumented, f"{len(undocumented)} public names without a docstring: {undocumented}"


def test_public_names_sees_a_new_name(monkeypatch):
    # the reference test would notice a name added to a package (every package has an __all__)
    import pyadvt.bounds as bounds

    def new_bound():
        """A bound."""

    new_bound.__module__ = "pyadvt.bounds.seed000"
    monkeypatch.setattr(bounds, "new_bound", new_bound, raising=False)
    monkeypatch.setattr(bounds, "__all__", [*bounds.__all__, "new_bound"])
    assert "new_bound" in public_names("pyadvt.bounds")
    assert "pyadvt.bounds.new_bound" not in directives((API / "bounds.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    write_pages()
    print(f"wrote {len(PACKAGES)} pages to {API}")
