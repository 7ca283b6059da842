"""Figures and tables of the data-mixture experiment (seed 000 §4.1, Fig. 3; docs/theory.md §2).

:func:`draw_mixture_figures` writes the experiment's named PNGs (Fig. 3 left with tau1 and with the
eq.-2 loss, Fig. 3 right fine-tuning curves, every metric against the mixture fraction, the ATM heatmap
and its similarity tree); :func:`mixture_figure_specs` / :func:`mixture_tables` are the specs the
HTML / Markdown report (``publish``) draws. ``rows`` are the per-source records of
:mod:`pyadvt.experiments.mixture` (``fraction``, ``seed``, ``tau1``, ``probe_accuracy``,
``finetune_curve`` ...), ``table`` the metric columns over those rows, ``per_fraction`` the means over
seeds per fraction, ``mid`` the eq.-2 budget shown (a key of ``eps``).

Example:
    >>> rows = [{"fraction": f, "seed": 0, "finetune_curve": [1.0, 0.5]} for f in (0.0, 1.0)]
    >>> mixture_figure_specs({"tau1": [0.1, 0.2], "probe_accuracy": [0.5, 0.7], "eq2_loss@0.1": [1, 2]},
    ...                      rows, "0.1")[2]["series"]["100% target-like"]
    [[1.0, 0.5]]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pyadvt.report.figures import curves, dendrogram, heatmap, scatter

__all__ = ["draw_mixture_figures", "mixture_figure_specs", "mixture_tables", "source_labels"]


def source_labels(rows: Sequence[Mapping]) -> list[str]:
    """``"<percent>%/s<seed>"`` per source."""
    return [f"{int(100 * r['fraction'])}%/s{r['seed']}" for r in rows]


def _finetune_series(rows: Sequence[Mapping]) -> tuple[list[int], dict[str, list]]:
    fracs = sorted({r["fraction"] for r in rows})
    series = {f"{int(100 * f)}% target-like": [r["finetune_curve"] for r in rows if r["fraction"] == f]
              for f in fracs}
    return list(range(1, len(rows[0]["finetune_curve"]) + 1)), series


def mixture_figure_specs(table: Mapping[str, Sequence[float]], rows: Sequence[Mapping], mid: str) -> list[dict]:
    """The report's figure specs: tau1 and the eq.-2 loss at ``mid`` against the probe accuracy, and the
    fine-tuning curves (mean and 95% CI over seeds per fraction)."""
    labels = source_labels(rows)
    epochs, series = _finetune_series(rows)
    return [
        {"type": "scatter", "x": table["tau1"], "y": table["probe_accuracy"], "labels": labels,
         "title": "tau1 vs linear-probe accuracy (Fig. 3 left)", "xlabel": "tau1", "ylabel": "probe accuracy"},
        {"type": "scatter", "x": table[f"eq2_loss@{mid}"], "y": table["probe_accuracy"], "labels": labels,
         "title": f"eq.-2 loss (eps={mid}) vs linear-probe accuracy", "xlabel": "reference loss",
         "ylabel": "probe accuracy"},
        {"type": "curves", "x": epochs, "series": series,
         "title": "fine-tuning curves (Fig. 3 right)", "xlabel": "epoch", "ylabel": "target test loss"},
    ]


def mixture_tables(per_fraction: Sequence[Mapping], corr: Sequence[Mapping]) -> list[dict]:
    """The report's tables: means per fraction, and the correlations with their bootstrap CIs."""
    return [
        {"title": "per fraction (means over seeds)", "columns": list(per_fraction[0]),
         "rows": [list(p.values()) for p in per_fraction]},
        {"title": "correlations over sources (95% bootstrap CIs)",
         "columns": ["x", "y", "n", "pearson", "pearson CI", "spearman", "spearman CI"],
         "rows": [[c["x"], c["y"], c["n"], c["pearson"], str(c["pearson_ci"]), c["spearman"], str(c["spearman_ci"])]
                  for c in corr]},
    ]


def _min_max(per_fraction: Sequence[Mapping], names: Sequence[str]) -> dict[str, list[float]]:
    out = {}
    for name in names:
        vals = np.array([p[name] for p in per_fraction])
        span = float(np.ptp(vals)) or 1.0
        out[name] = ((vals - vals.min()) / span).tolist()
    return out


def draw_mixture_figures(out_dir: str | os.PathLike, table: Mapping[str, Sequence[float]], rows: Sequence[Mapping],
                         per_fraction: Sequence[Mapping], mid: str, atm: Mapping, atm_eps: float) -> list[Path]:
    """Write ``fig3_left_tau1.png``, ``fig3_left_eq2.png``, ``fig3_right_finetune.png``,
    ``metrics_vs_fraction.png``, ``atm_dendrogram.png`` and ``atm.png`` into ``out_dir``; returns the paths.

    ``atm``: ``{"models": names, "matrix": [N, N], "linkage": [N - 1, 4]}``; ``atm_eps``: its PGD budget.
    """
    out_dir = Path(out_dir)
    labels = source_labels(rows)
    epochs, series = _finetune_series(rows)
    fracs = [p["fraction"] for p in per_fraction]
    probe = "linear-probe accuracy on target"
    return [
        scatter(table["tau1"], table["probe_accuracy"], out_dir / "fig3_left_tau1.png", labels=labels,
                title="adversarial vs knowledge transferability", xlabel="tau1 (source -> reference)", ylabel=probe),
        scatter(table[f"eq2_loss@{mid}"], table["probe_accuracy"], out_dir / "fig3_left_eq2.png", labels=labels,
                title="adversarial vs knowledge transferability",
                xlabel=f"reference loss on source PGD examples (eq. 2, eps={mid})", ylabel=probe),
        curves(epochs, series, out_dir / "fig3_right_finetune.png",
               title="fine-tuning on the target (mean, 95% CI over seeds)", xlabel="epoch", ylabel="target test loss"),
        curves([100 * f for f in fracs], _min_max(per_fraction, ["tau1", "tau2", f"eq2_loss@{mid}", "probe_accuracy"]),
               out_dir / "metrics_vs_fraction.png", title="metrics vs target-like fraction (min-max scaled)",
               xlabel="% target-like source data", ylabel="scaled value"),
        dendrogram(np.asarray(atm["linkage"]), atm["models"], out_dir / "atm_dendrogram.png",
                   title="similarity tree from the ATM columns"),
        heatmap(np.asarray(atm["matrix"]), out_dir / "atm.png", row_labels=atm["models"], col_labels=atm["models"],
                xlabel="target", ylabel="source", title=f"adversarial transferability matrix (PGD eps={atm_eps})"),
    ]
