"""Report parts of the rankings (:mod:`pyadvt.selection.ranking`): figure specs, tables and a summary
for ``make_result``, shared by ``pyadvt rank`` and ``pyadvt quickstart`` (docs/theory.md §2-§3).

Example:
    >>> format_spearman({"rho": 0.8123, "lower": 0.31, "upper": 0.96, "n": 9})
    '0.812 [0.31, 0.96] (n=9)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["format_spearman", "sources_report", "surrogates_report"]


def format_spearman(s: Mapping) -> str:
    """``"0.812 [0.31, 0.96] (n=9)"`` for a :func:`spearman_ci` dict (``"undefined"`` without rho)."""
    if s.get("rho") is None:
        return "undefined"
    ci = f" [{s['lower']:.2f}, {s['upper']:.2f}]" if s.get("lower") is not None else ""
    return f"{s['rho']:.3f}{ci} (n={s['n']})"


_LABELS = {"tau1*tau2": "tau1 * tau2", "eq2_loss": "eq. 2 transfer loss", "h_score": "H-score",
           "h_score_shrinkage": "shrinkage H-score", "logme": "LogME", "leep": "LEEP", "nleep": "NLEEP",
           "nce": "NCE", "transrate": "TransRate", "gbc": "GBC", "sfda": "SFDA"}


def sources_report(ranking: Mapping) -> dict:
    """Figure specs, tables and a summary for a :func:`rank_sources` result (for ``make_result``)."""
    rows = ranking["rows"]
    names = [r["name"] for r in rows]
    scores = list(ranking.get("scores") or ["tau1", "tau2", "tau1*tau2", "eq2_loss"])
    lead = "tau1*tau2" if "tau1*tau2" in scores else scores[0]
    cols = ["rank", "source"] + [_LABELS.get(c, c) for c in scores]
    probe = "probe_accuracy" in rows[0]
    extra = (["eq2_accuracy"] if "eq2_loss" in scores else []) + (["probe_accuracy"] if probe else [])
    cols += [{"eq2_accuracy": "eq. 2 ref. accuracy", "probe_accuracy": "probe accuracy"}[c] for c in extra]
    rank_key = "rank_score" if lead == "tau1*tau2" else f"rank_{lead}"
    table = [[r[rank_key], r["name"]] + [r.get(c) for c in scores] + [r.get(c) for c in extra] for r in rows]
    figures = [{"type": "bars", "values": [r.get(lead) for r in rows], "labels": names,
                "ylabel": _LABELS.get(lead, lead),
                "title": f"Source ranking by {_LABELS.get(lead, lead)}"}]
    summary: dict[str, Any] = {f"best source ({_LABELS.get(lead, lead)})": names[0] if names else None}
    if probe:
        acc = [r["probe_accuracy"] for r in rows]
        for col in scores:
            label = _LABELS.get(col, col)
            s = ranking["spearman"][f"{'score' if col == 'tau1*tau2' else col}_vs_probe"]
            if col in ("tau1*tau2", "eq2_loss", "logme"):
                figures.append({"type": "scatter", "x": [r[col] for r in rows], "y": acc, "labels": names,
                                "xlabel": label, "ylabel": "linear-probe accuracy on the target",
                                "title": f"{label} vs knowledge transfer (Spearman {format_spearman(s)})"})
            summary[f"spearman {label} vs probe accuracy"] = format_spearman(s)
            wt = ranking.get("agreement", {}).get(col, {}).get("weighted_tau")
            if wt is not None:
                summary[f"weighted tau {label} vs probe accuracy"] = round(wt, 4)
    return {"figures": figures, "tables": [{"title": "Source ranking", "columns": cols, "rows": table}],
            "summary": summary}


def surrogates_report(ranking: Mapping) -> dict:
    """Figure specs, tables and a summary for a :func:`rank_surrogates` result."""
    rows = ranking["rows"]
    names = [r["name"] for r in rows]
    a = ranking["attack"]
    figures = [
        {"type": "heatmap", "matrix": ranking["asr"], "row_labels": ranking["surrogates"],
         "col_labels": ranking["targets"], "xlabel": "target", "ylabel": "surrogate (source of the attack)",
         "title": f"Transfer attack success rate ({a['name']}, eps={a['eps']:g}, {a['norm']})", "vmin": 0, "vmax": 1},
        {"type": "heatmap", "matrix": ranking["similarity"], "row_labels": ranking["surrogates"],
         "col_labels": ranking["targets"], "xlabel": "target", "ylabel": "surrogate",
         "title": "Mean gradient similarity", "cmap": "magma"},
        {"type": "scatter", "x": [r["smoothness"] for r in rows], "y": [r["mean_asr"] for r in rows],
         "labels": names, "xlabel": "smoothness sigma_F (mean top input-Hessian eigenvalue)",
         "ylabel": "mean transfer ASR", "title": "Smoothness vs transferability (seed 001)"},
        {"type": "scatter", "x": [r["mean_similarity"] for r in rows], "y": [r["mean_asr"] for r in rows],
         "labels": names, "xlabel": "mean gradient similarity with the targets", "ylabel": "mean transfer ASR",
         "title": "Gradient similarity vs transferability (seed 001)"},
    ]
    cols = ["rank", "surrogate", "mean transfer ASR", "clean accuracy", "fooling prob.", "smoothness (mean)",
            "smoothness (max)", "mean similarity"]
    table = [[r["rank_asr"], r["name"], r["mean_asr"], r["accuracy"], r["fooling"], r["smoothness"],
              r["smoothness_max"], r["mean_similarity"]] for r in rows]
    summary = {"best surrogate (mean transfer ASR)": names[0] if names else None}
    summary.update({f"spearman {k.replace('_vs_asr', '').replace('_', ' ')} vs ASR": format_spearman(v)
                    for k, v in ranking["spearman"].items()})
    return {"figures": figures, "tables": [{"title": "Surrogate ranking", "columns": cols, "rows": table}],
            "summary": summary}
