"""Per-candidate failure records of a ranking: a model that a metric cannot handle is one line, not a stop.

A candidate of :func:`~pyadvt.selection.rank_sources` / :func:`~pyadvt.selection.rank_surrogates`
may fail inside one metric (a layer without double backward in tau2 or the smoothness, an output
of the wrong shape for a batch, a forward that raises). :func:`guarded` runs one metric and, when
``errors`` is a dict, records the failure there as ``{metric: {"message", "traceback"}}`` and
returns ``None``, so the metric's columns stay ``None`` and the other metrics and candidates run.
:func:`failure_line` turns a candidate's records into the one line the result and the CLI show.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["failure_line", "guarded", "one_line"]

_MAX = 600  # room for the hints (what to do) of pyadvt's own errors


def one_line(exc: BaseException) -> str:
    """``"Type: message"`` on one line (whitespace collapsed, at most 600 characters).

    Example:
        >>> one_line(RuntimeError("derivative for\\n  aten::foo is not implemented"))
        'RuntimeError: derivative for aten::foo is not implemented'
    """
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= _MAX else text[:_MAX - 3] + "..."


def guarded(errors: dict | None, metric: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; with ``errors`` a dict, an ``Exception`` is recorded under ``metric``
    (its :func:`one_line` and traceback) and ``None`` returned; with ``errors=None`` it propagates.

    Example:
        >>> errors = {}
        >>> guarded(errors, "tau2", lambda: 1 / 0), errors["tau2"]["message"]
        (None, 'ZeroDivisionError: division by zero')
        >>> guarded(errors, "tau1", lambda: 2.0)
        2.0
    """
    if errors is None:
        return fn(*args, **kwargs)
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure of one metric is recorded, the others run
        errors[metric] = {"message": one_line(exc), "traceback": traceback.format_exc()}
        return None


def failure_line(role: str, name: str, errors: Mapping[str, Mapping[str, str]]) -> str | None:
    """``"source 'vit' failed in tau1/tau2: RuntimeError: ..."``: the metrics that failed with the same
    message are listed together, different messages joined by ``"; "``; ``None`` without errors.

    Example:
        >>> same = {"message": "RuntimeError: boom"}
        >>> failure_line("source", "vit", {"tau1/tau2": same, "eq2_loss": same})
        "source 'vit' failed in tau1/tau2, eq2_loss: RuntimeError: boom"
    """
    if not errors:
        return None
    by_message: dict[str, list[str]] = {}
    for metric, e in errors.items():
        by_message.setdefault(e["message"], []).append(metric)
    return f"{role} {name!r} failed in " + "; ".join(f"{', '.join(m)}: {msg}" for msg, m in by_message.items())
