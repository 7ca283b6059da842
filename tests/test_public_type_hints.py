"""Type hints on the public API (issue 15, item 2): every public function of the twelve packages, and the
constructor of every public class that is not a dataclass, annotates each named parameter and (functions)
its return value. The check reads ``inspect.signature``, so a missing hint fails here with its name."""

from __future__ import annotations

import importlib
import inspect
import warnings

import pytest

PACKAGES = ["attacks", "bounds", "data", "experiments", "metrics", "models", "ops", "report", "selection", "theory",
            "train", "transfer", "utils"]


def _callables(package: str):
    module = importlib.import_module(f"pyadvt.{package}")
    for name in module.__all__:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            obj = getattr(module, name)
        if inspect.isfunction(obj):
            yield f"{package}.{name}", obj, True
        elif inspect.isclass(obj) and not hasattr(obj, "__dataclass_fields__"):
            init = obj.__dict__.get("__init__")
            if inspect.isfunction(init):
                yield f"{package}.{name}.__init__", init, False


def missing_hints(fn, needs_return: bool) -> list[str]:
    """The parameters of ``fn`` without an annotation (``"return"`` too when ``needs_return``)."""
    sig = inspect.signature(fn)
    out = [p for p, v in sig.parameters.items()
           if p not in ("self", "cls") and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
           and v.annotation is inspect.Parameter.empty]
    if needs_return and sig.return_annotation is inspect.Signature.empty:
        out.append("return")
    return out


def test_the_checker_finds_a_missing_hint():
    def f(a: int, b, *args, c=1, **kw) -> int:
        return a

    def g(a: int):
        return a

    assert missing_hints(f, True) == ["b", "c"] and missing_hints(g, True) == ["return"]
    assert missing_hints(g, False) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_callable_is_annotated(package):
    gaps = {name: m for name, fn, ret in _callables(package) if (m := missing_hints(fn, ret))}
    assert not gaps, f"pyadvt.{package}: parameters without type hints: {gaps}"
