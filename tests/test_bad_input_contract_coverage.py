"""Completeness of the bad-input contract (docs/reliability.md §1): every name in ``__all__`` of every
public package has a contract case (``tests/test_bad_input_contract.py`` or
``tests/test_bad_input_contract_api.py``) or an exemption with its reason.

Exemptions are by kind, decided here from the object itself (so they cannot hide a function):

* constants (not callable): registries, protocols, mean/std tuples;
* error classes: what the contract raises;
* result records: a dataclass / named tuple that a public function of the same package returns (its
  return annotation names it); the function is what the case calls;

plus the short explicit list ``EXEMPT`` below, each with its reason.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re

import pytest

from tests import test_bad_input_contract as CORE
from tests import test_bad_input_contract_api as API

PACKAGES = ("attacks", "metrics", "bounds", "selection", "transfer", "theory", "ops", "data", "models", "train")

EXEMPT = {
    "theory.section6_counterexample": "takes no arguments (a fixed construction of seed 003 §6)",
    "attacks.AttackBatch": "the rows record an Attack builds for its hooks from already-validated inputs",
    "theory.TheoremCheck": "the base class of the check_* result records",
    "theory.CounterexampleCheck": "the result of Section6Counterexample.verify(), which takes no arguments",
    "selection.RankingResult": "the result of rank_sources / rank_surrogates (a dict subclass they build)",
    "selection.SourceScore": "the result of score_source (a dict subclass it builds)",
    "selection.SurrogateScore": "the result of score_surrogate (a dict subclass it builds)",
}


def _public():
    for pkg in PACKAGES:
        mod = importlib.import_module(f"pyadvt.{pkg}")
        for name in mod.__all__:
            yield pkg, name, getattr(mod, name)


def _returned_by(pkg: str, name: str) -> str | None:
    """The public function of ``pkg`` whose return annotation names ``name``, if any."""
    mod = importlib.import_module(f"pyadvt.{pkg}")
    for other in mod.__all__:
        f = getattr(mod, other)
        if other == name or inspect.isclass(f) or not callable(f):
            continue
        try:
            ann = inspect.signature(f).return_annotation
        except (TypeError, ValueError):
            continue
        text = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
        if re.search(rf"\b{re.escape(name)}\b", str(text)):
            return other
    return None


def _is_record(obj) -> bool:
    return dataclasses.is_dataclass(obj) or (inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields"))


def exemption(pkg: str, name: str, obj) -> str | None:
    """Why ``pkg.name`` needs no contract case, or ``None``."""
    full = f"{pkg}.{name}"
    if full in EXEMPT:
        return EXEMPT[full]
    if not callable(obj):
        return "a constant"
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return "an error class"
    if _is_record(obj):
        fn = _returned_by(pkg, name)
        if fn is not None:
            return f"the result record of {pkg}.{fn}"
    return None


def covered() -> set[str]:
    from pyadvt.attacks import ATTACKS

    names: set[str] = set()
    for subject in (*CORE.SUBJECTS, *CORE.ARRAY_SUBJECTS, *CORE.OPS):
        pkg, _, name = subject.partition(".")
        names.add(subject)
        if pkg == "attacks" and name in ATTACKS:  # registry names: "attacks.pgd" is the class PGD
            names.add(f"attacks.{ATTACKS[name].__name__}")
    names.update(c.name for c in API.CASES)
    names.update(API.FILE_CASE_NAMES)
    return names


def coverage():
    have = covered()
    cases, exempt, missing = [], {}, []
    for pkg, name, obj in _public():
        full = f"{pkg}.{name}"
        if full in have:
            cases.append(full)
        elif (why := exemption(pkg, name, obj)) is not None:
            exempt[full] = why
        else:
            missing.append(full)
    return cases, exempt, missing


def test_every_public_name_has_a_contract_case_or_an_exemption():
    cases, exempt, missing = coverage()
    assert not missing, (f"{len(missing)} public names have neither a bad-input contract case nor an exemption "
                         f"(add a case to tests/test_bad_input_contract_api.py): {missing}")
    assert len(cases) >= 150, len(cases)  # guards against the enumeration silently finding nothing


def test_every_case_names_a_public_name():
    public = {f"{p}.{n}" for p, n, _ in _public()}
    from pyadvt.attacks import ATTACKS

    stray = [c.name for c in API.CASES if c.name not in public]
    stray += [s for s in CORE.SUBJECTS if s not in public and s.partition(".")[2] not in ATTACKS]
    assert not stray, f"contract cases for names that are not public: {sorted(set(stray))}"


@pytest.mark.parametrize("full", sorted(EXEMPT))
def test_explicit_exemptions_are_public_and_uncovered(full):
    public = {f"{p}.{n}" for p, n, _ in _public()}
    assert full in public, f"{full} is exempt but not public"
    assert full not in covered(), f"{full} is exempt but has a case: drop the exemption"


if __name__ == "__main__":  # the numbers docs/reliability.md quotes
    c, e, m = coverage()
    print(f"{len(c) + len(e) + len(m)} public names: {len(c)} with cases, {len(e)} exempt, {len(m)} missing")
    for k, v in sorted(e.items()):
        print(f"  exempt {k}: {v}")
    for k in m:
        print(f"  missing {k}")
