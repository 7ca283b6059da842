"""Every public function and class of the library packages has a complete docstring (issue 17, item 4).

Complete means four things, each checked by a pattern on the docstring (``inspect.getdoc``; for a
class its own docstring):

- **example**: a doctest (``>>>`` lines; they run under ``pytest --doctest-modules``);
- **source**: the equation it implements, ``docs/theory.md §N`` or a paper reference (``seed 00N``,
  ``Author et al.``, an arXiv id); exempt: the names in ``NO_SOURCE``, which implement no equation;
- **errors**: a ``Raises:`` section or a sentence naming what it raises (an ``...Error`` or
  "raises nothing"); exempt: exception classes (they *are* the error) and plain records (a
  dataclass or NamedTuple with the generated ``__init__`` and no ``__post_init__``: it validates
  nothing, so it raises nothing of its own);
- **shapes**: ``[B, C, H, W]``-style notation, required where a tensor goes in or comes out (a
  ``Tensor`` annotation on a parameter, the return, or a record's field; for a class, on
  ``__init__``, ``__call__`` or ``forward``).

Names of packages whose owners are still completing them are listed in ``KNOWN_GAPS`` with what
each lacks: the test fails on any gap not listed, reports the listed ones, and fails when a listed
gap has been filled (remove it from the list).  ``python tests/docs/test_docstrings.py`` prints the
current gaps in the list's format.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import warnings

import pytest

PACKAGES = ("attacks", "metrics", "bounds", "selection", "transfer", "theory", "ops", "data", "models",
            "train", "report", "utils")
ASPECTS = ("example", "source", "errors", "shapes")

EXAMPLE = re.compile(r"^\s*>>> ", flags=re.M)
SOURCE = re.compile(r"docs/theory\.md §\d|\bseeds? 00\d\b|\bet al\.|arXiv[: ]\d{4}\.\d{4,5}")
ERRORS = re.compile(r"^\s*Raises:\s*$|\b\w+(?:Error|Exception)\b|(?i:\braises? nothing\b)|\bnever raises\b", flags=re.M)
# a shape: brackets holding dimension names/sizes, at least one a name ([B, C, H, W], [N], [m, n], [...])
SHAPE = re.compile(r"\[(?=[^\[\]]*[A-Za-z.])[\w.' *+/-]+(?:,\s*[\w.' *+/-]+)*\]")

# names that implement no equation of docs/theory.md or a paper: plumbing around the quantities
NO_SOURCE: dict[str, str] = {
    # data: loaders and containers
    **dict.fromkeys(["data.BatchLoader", "data.DatasetFormatError", "data.ImageFolder", "data.TensorData",
                     "data.digits", "data.as_data", "data.default_root", "data.iter_batches", "data.load_cifar",
                     "data.load_dataset", "data.load_mnist", "data.load_stl10", "data.num_batches",
                     "data.num_samples", "data.read_idx", "data.to_tensor_data", "data.write_idx"],
                    "data loading and containers: no equation"),
    # models: architectures and adapters
    **dict.fromkeys(["models.BasicBlock", "models.LeNet", "models.MLP", "models.Normalize",
                     "models.OutputSelector", "models.SmallCNN", "models.SmallResNet", "models.SplitModel",
                     "models.WrappedModel",
                     "models.build", "models.default_blocks", "models.from_timm", "models.from_torchvision",
                     "models.model_logits", "models.select_output", "models.wrap"],
                    "network architectures and model adapters: no equation"),
    # report: files, figures, HTML
    **dict.fromkeys(["report.Report", "report.Timings", "report.bars", "report.curves", "report.dendrogram",
                     "report.environment", "report.find_results", "report.heatmap", "report.load_results",
                     "report.make_result", "report.plot", "report.publish", "report.read_result",
                     "report.render_report", "report.scatter", "report.validate_result", "report.write_result"],
                    "result files, figures and reports: no equation"),
    # utils: seeded randomness and modes
    **dict.fromkeys(["utils.evaluating", "utils.per_sample_generators", "utils.per_sample_rand",
                     "utils.sample_seeds"], "framework helpers (randomness, eval mode): no equation"),
    # ops: plumbing of the kernels
    "ops.MemoryBudgetError": "an error class",
    "ops.plan_route": "a memory planner, no equation",
}

# gaps in packages whose owners are completing them now; every entry must still be a gap
KNOWN_GAPS: dict[str, tuple[str, ...]] = {
}


def public_objects():
    """``[(qualified name 'pkg.Name', object)]`` for every public function and class of ``PACKAGES``."""
    out = []
    for pkg in PACKAGES:
        mod = importlib.import_module(f"pyadvt.{pkg}")
        for name in sorted(mod.__all__):
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isroutine(obj):
                out.append((f"{pkg}.{name}", obj))
    return out


def _annotations(fn) -> list[str]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    anns = [p.annotation for n, p in sig.parameters.items() if n not in ("self", "cls")]
    anns.append(sig.return_annotation)
    return [a if isinstance(a, str) else getattr(a, "__name__", repr(a)) for a in anns
            if a is not inspect.Parameter.empty and a is not inspect.Signature.empty]


def _is_record(cls) -> bool:
    if dataclasses.is_dataclass(cls):
        return not hasattr(cls, "__post_init__") and "__init__" not in _own_defs(cls)
    # a typing.NamedTuple cannot override __new__: its constructor is always the generated one
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def _own_defs(cls) -> set[str]:
    # a dataclass's generated __init__ has __qualname__ '<cls>.__init__' but no source of its own
    init = vars(cls).get("__init__")
    try:
        inspect.getsource(init)
        generated = False
    except (OSError, TypeError):
        generated = True
    return set() if generated else {"__init__"}


def takes_tensors(obj) -> bool:
    """Whether a Tensor goes in or comes out of ``obj`` (by its annotations)."""
    if inspect.isclass(obj):
        anns = []
        for meth in ("__init__", "__call__", "forward"):
            fn = vars(obj).get(meth) or (getattr(obj, meth, None) if meth == "forward" else None)
            if fn is not None and inspect.isfunction(fn):
                anns += _annotations(fn)
        if dataclasses.is_dataclass(obj):
            anns += [f.type if isinstance(f.type, str) else repr(f.type) for f in dataclasses.fields(obj)]
        elif hasattr(obj, "__annotations__") and issubclass(obj, tuple):
            anns += [a if isinstance(a, str) else repr(a) for a in obj.__annotations__.values()]
    else:
        anns = _annotations(getattr(obj, "__wrapped__", obj))
    return any("Tensor" in a for a in anns)


def missing(qualname: str, obj) -> tuple[str, ...]:
    """The aspects of ``ASPECTS`` that ``obj``'s docstring lacks."""
    doc = (obj.__doc__ if inspect.isclass(obj) else inspect.getdoc(obj)) or ""
    if inspect.isclass(obj) and obj.__doc__ is None:
        doc = ""
    gaps = []
    if not EXAMPLE.search(doc):
        gaps.append("example")
    if qualname not in NO_SOURCE and not SOURCE.search(doc):
        gaps.append("source")
    exempt_errors = inspect.isclass(obj) and (issubclass(obj, BaseException) or _is_record(obj))
    if not exempt_errors and not ERRORS.search(doc):
        gaps.append("errors")
    if takes_tensors(obj) and not SHAPE.search(doc):
        gaps.append("shapes")
    return tuple(gaps)


def current_gaps() -> dict[str, tuple[str, ...]]:
    return {q: g for q, obj in public_objects() if (g := missing(q, obj))}


def test_the_public_names_are_found():
    names = [q for q, _ in public_objects()]
    assert len(names) > 200 and "attacks.PGD" in names and "bounds.theorem1" in names and "ops.pgd_step_" in names


def test_the_patterns_accept_complete_docstrings_and_reject_incomplete_ones():
    def good(x):
        """Top-1 of ``x [B, K]`` (docs/theory.md §2.1).

        Raises:
            ValueError: when ``x`` is not 2-D.

        Example:
            >>> 1
            1
        """

    def bad(x):
        """Top-1 of x, see the paper; checks [0, 1]."""

    good.__annotations__ = bad.__annotations__ = {"x": "torch.Tensor"}
    assert missing("x.good", good) == ()
    assert missing("x.bad", bad) == ("example", "source", "errors", "shapes")
    assert missing("data.as_data", bad)[:2] == ("example", "errors")  # NO_SOURCE exempts the citation


def test_exemptions_name_public_objects():
    names = {q for q, _ in public_objects()}
    assert not set(NO_SOURCE) - names, "NO_SOURCE lists names that are not public"
    assert not set(KNOWN_GAPS) - names, "KNOWN_GAPS lists names that are not public"


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_new_docstring_gaps(pkg):
    gaps = {q: g for q, g in current_gaps().items() if q.startswith(pkg + ".")}
    new = {q: tuple(a for a in g if a not in KNOWN_GAPS.get(q, ())) for q, g in gaps.items()}
    new = {q: g for q, g in new.items() if g}
    known = {q: g for q, g in gaps.items() if q in KNOWN_GAPS}
    if known:
        warnings.warn(f"pyadvt.{pkg}: {len(known)} known docstring gap(s): "
                      + "; ".join(f"{q} lacks {', '.join(g)}" for q, g in sorted(known.items())))
    assert not new, "docstrings lack (see this file's docstring for what each aspect needs):\n" + "\n".join(
        f"  pyadvt.{q}: {', '.join(g)}" for q, g in sorted(new.items()))


def test_known_gaps_are_still_gaps():
    gaps = current_gaps()
    filled = {q: tuple(a for a in g if a not in gaps.get(q, ())) for q, g in KNOWN_GAPS.items()}
    filled = {q: g for q, g in filled.items() if g}
    assert not filled, "filled - remove from KNOWN_GAPS in tests/docs/test_docstrings.py:\n" + "\n".join(
        f"  {q}: {', '.join(g)}" for q, g in sorted(filled.items()))


if __name__ == "__main__":
    for q, g in sorted(current_gaps().items()):
        print(f"    {q!r}: {g!r},")
