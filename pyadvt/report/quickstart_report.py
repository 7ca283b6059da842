"""The ``pyadvt.result/1`` dict of ``pyadvt quickstart``: the zoo table and accuracy bars, the surrogate
and source rankings' report parts (:mod:`pyadvt.report.rankings`), the seed-000 ``tau1 * tau2`` vs
target-class-share scatter and its Spearman correlation, and the notes (docs/theory.md §2-§3).

Example:
    >>> zoo = {"mlp-st": {"arch": "mlp", "method": "st", "accuracy": 0.9, "train_seconds": 1.0}}
    >>> zoo_parts(zoo)[1]["rows"]
    [['mlp-st', 'mlp', 'st', 0.9, 1.0]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyadvt.report.rankings import format_spearman, sources_report, surrogates_report
from pyadvt.report.results import make_result
from pyadvt.selection import spearman_ci

__all__ = ["quickstart_result", "zoo_parts"]

_NOTES = ["Surrogate ASR excludes each model's own (white-box) column from its mean.",
          "Spearman CIs use the Fisher z transform (se = sqrt(1.06/(n-3))); with a small zoo they are wide."]


def zoo_parts(zoo: Mapping[str, Mapping]) -> tuple[dict, dict]:
    """``(accuracy bars figure spec, zoo table)`` of ``{name: {"arch", "method", "accuracy", "train_seconds"}}``."""
    figure = {"type": "bars", "values": [r["accuracy"] for r in zoo.values()], "labels": list(zoo),
              "ylabel": "clean test accuracy", "title": "Zoo: clean accuracy on digits"}
    table = {"title": "Zoo", "columns": ["model", "architecture", "method", "test accuracy", "training (s)"],
             "rows": [[n, r["arch"], r["method"], r["accuracy"], r["train_seconds"]] for n, r in zoo.items()]}
    return figure, table


def _source_parts(cfg: Mapping, sources: Mapping) -> tuple[dict, dict, str]:
    """The tau1 * tau2 vs target-class-share scatter, its Spearman summary and the source-ranking note."""
    src, rows = cfg["sources"], sources["rows"]
    figure = {"type": "scatter", "x": [r["target_class_fraction"] for r in rows], "y": [r["score"] for r in rows],
              "xlabel": "share of target classes in the source data", "ylabel": "tau1 * tau2 (source -> reference)",
              "title": "tau1 * tau2 vs the share of target classes in the source data (seed 000 Fig. 3)"}
    summary = {}
    if len(src["fractions"]) > 1:
        summary["spearman tau1 * tau2 vs target-class share"] = format_spearman(spearman_ci(
            [r["target_class_fraction"] for r in rows],
            [float("nan") if r["score"] is None else r["score"] for r in rows]))
    names = [f"{round(100 * f)}% target classes" for f in src["fractions"]]
    arch = src["architecture"]
    note = (f"Source ranking (seed 000 sec. 4.1): {len(names)} {arch} sources trained on {src['samples']} "
            f"digits each with {', '.join(names)}; target = digits {src['target_classes']} ({src['transform']}), "
            f"with a {arch} reference trained on it. Sources ranked by tau1*tau2 (Defs. 2-3) and the eq. (2) loss "
            "and validated by linear probing; seed 000 expects sources closer to the target to rank higher.")
    return figure, summary, note


def quickstart_result(cfg: Mapping, zoo: Mapping[str, Mapping], surrogates: Mapping, sources: Mapping,
                      reference_accuracy: float, *, timings: Mapping[str, float] | None = None,
                      device: Any = None) -> dict:
    """The validated ``pyadvt.result/1`` dict of a quickstart run (``zoo`` as in :func:`zoo_parts`)."""
    rep_s, rep_t = surrogates_report(surrogates), sources_report(sources)
    zoo_figure, zoo_table = zoo_parts(zoo)
    src_figure, src_summary, src_note = _source_parts(cfg, sources)
    summary = {"zoo size": len(zoo), "reference accuracy (shifted target)": reference_accuracy, **src_summary,
               **rep_s["summary"], **rep_t["summary"]}
    zoo_rows = [dict(name=n, **r) for n, r in zoo.items()]
    return make_result("quickstart", cfg, {"zoo": zoo_rows, "surrogates": surrogates, "sources": sources},
                       timings=timings, seeds={"seed": cfg["seed"]}, device=str(device), summary=summary,
                       figures=[zoo_figure] + rep_s["figures"] + rep_t["figures"] + [src_figure],
                       tables=[zoo_table] + rep_s["tables"] + rep_t["tables"], notes=[src_note] + _NOTES)
