"""Tables, figure specs and notes of the surrogate-zoo experiment (seed 001, docs/theory.md §3).

The experiment (:mod:`pyadvt.experiments.surrogates`) computes per-(member, seed) cells and the
findings; this module turns them into the ``pyadvt.result/1`` parts that :func:`pyadvt.report.publish`
draws (once, into ``figures/``): the transfer-ASR table per member like the paper's Table II, the
Pearson r / OLS R^2 table like Table VI, the curves against the AT budget (Figs. 2-4), the per-member
bars and the ASR-vs-smoothness / similarity scatters (Fig. 5), and one note per finding.

Arrays are ``[S, M]`` (seeds x members) or ``[S, J]`` (seeds x AT budgets, ST first).

Example:
    >>> import numpy as np
    >>> asr = lambda method, mode, eps, target: np.array([[0.2, 0.4], [0.4, 0.6]])
    >>> asr_table(asr, ["ST", "AT-1"], ["untargeted"], ["mlp"], [0.1])
    [{'mode': 'untargeted', 'member': 'ST', 'mlp@0.1': '30.0+-10.0'}, {'mode': 'untargeted', 'member': 'AT-1', 'mlp@0.1': '50.0+-10.0'}]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["STATISTICS_COLUMNS", "asr_table", "at_figures", "member_figures", "notes", "statistics_table"]

#: the Table VI columns of :func:`statistics_table` (``r_*``: Pearson r with the ASR; ``R2_*``: OLS R^2)
STATISTICS_COLUMNS = ["mode", "target", "eps", "r_Acc", "r_FP", "r_MS", "r_GS", "R2_1", "R2_2"]
_AT_X = "AT L2 budget (0 = ST)"


def asr_table(asr: Callable[[str, str, float, str], np.ndarray], names: Sequence[str], modes: Sequence[str],
              targets: Sequence[str], budgets: Sequence[float]) -> list[dict]:
    """Table II: ``"mean+-std"`` (percent, over seeds) of the PGD transfer ASR per member, target and budget.

    ``asr(method, mode, eps, target)`` gives the ``[S, M]`` ASR of every (seed, member).
    """
    rows = []
    for mode in modes:
        cols = {f"{t}@{eps:g}": asr("pgd", mode, eps, t) for t in targets for eps in budgets}
        for i, m in enumerate(names):
            rows.append({"mode": mode, "member": m,
                         **{c: f"{100 * v[:, i].mean():.1f}+-{100 * v[:, i].std():.1f}" for c, v in cols.items()}})
    return rows


def statistics_table(rows: Sequence[Mapping]) -> dict:
    """The ``make_result`` table of Table VI rows (``{"mode", "target", "eps", "r_accuracy", ...}``)."""
    keys = ["mode", "target", "eps", "r_accuracy", "r_fooling", "r_smoothness", "r_similarity", "R2_1", "R2_2"]
    return {"title": "Table VI: Pearson r with ASR and OLS R^2 (PGD)", "columns": list(STATISTICS_COLUMNS),
            "rows": [[r[k] for k in keys] for r in rows]}


def at_figures(at_x: Sequence[float], asr_series: Mapping[str, Mapping[str, list]], smoothness: list,
               similarity: Mapping[str, list], mid: float) -> list[dict]:
    """Figs. 2-4 against the AT budget: ASR per mode (``asr_series[mode][target]`` ``[S, J]``), the
    smoothness ``[S, J]`` and the gradient similarity per target ``[S, J]``."""
    figs = [{"type": "curves", "x": list(at_x), "series": series,
             "title": f"Fig. 2: {mode} PGD transfer ASR (L-inf {mid:g}) vs AT budget", "xlabel": _AT_X,
             "ylabel": "ASR"} for mode, series in asr_series.items()]
    figs.append({"type": "curves", "x": list(at_x), "series": {"mean lambda_max": smoothness},
                 "title": "Fig. 3: model smoothness vs AT budget", "xlabel": _AT_X,
                 "ylabel": "mean top Hessian eigenvalue"})
    figs.append({"type": "curves", "x": list(at_x), "series": dict(similarity),
                 "title": "Fig. 4: gradient similarity to targets vs AT budget", "xlabel": _AT_X,
                 "ylabel": "mean cosine similarity"})
    return figs


def member_figures(names: Sequence[str], mean_asr: Mapping[str, float], smoothness: list, asr: list,
                   similarity: list, mid: float) -> list[dict]:
    """Fig. 5: untargeted ASR per member (bars), and ASR against smoothness and against gradient
    similarity over every (member, seed) surrogate (flattened ``[S * M]`` lists)."""
    ylabel = "untargeted ASR (mean over targets)"
    return [{"type": "bars", "values": [mean_asr[m] for m in names], "labels": list(names),
             "title": f"Untargeted PGD ASR (L-inf {mid:g}), mean over targets", "ylabel": "ASR"},
            {"type": "scatter", "x": smoothness, "y": asr, "title": "ASR vs smoothness (every surrogate)",
             "xlabel": "mean top Hessian eigenvalue", "ylabel": ylabel},
            {"type": "scatter", "x": similarity, "y": asr, "title": "ASR vs gradient similarity (every surrogate)",
             "xlabel": "mean gradient similarity", "ylabel": ylabel}]


def _ci(ci: Mapping | None) -> str:
    """``"; 95% CI [lo, hi] over n seeds"`` of a ``mean_ci`` summary (``""`` without an interval)."""
    if not ci or ci.get("lo") is None:
        return ""
    return f"; 95% CI [{ci['lo']:+.4f}, {ci['hi']:+.4f}] over {ci['n']} seeds"


def _rise_fall(finding: Mapping) -> str:
    if not finding.get("rise_ci") or finding["rise_ci"].get("lo") is None:
        return ""
    r, f = finding["rise_ci"], finding["fall_ci"]
    return (f"; rise {r['mean']:+.4f} [{r['lo']:+.4f}, {r['hi']:+.4f}], fall {f['mean']:+.4f} "
            f"[{f['lo']:+.4f}, {f['hi']:+.4f}] (95% CIs over {r['n']} seeds)")


def notes(findings: Mapping[str, Mapping]) -> list[str]:
    """One line per finding: rise-then-fall per (mode, target), SAM&JR vs ST, the Theorem-1 bound."""
    out = [f"little robustness ({k[len('little_robustness_'):]}): rise-then-fall={v['rise_then_fall']} over AT "
           f"surrogates with clean accuracy >= {v['min_clean_accuracy']:g} (kept eps {v['kept_eps']}, dropped "
           f"{v['dropped_eps']}; ST {v['st']:.3f}, best {v['best']} at AT eps {v['best_at_eps']}, "
           f"largest kept AT {v['largest_at']}{_rise_fall(v)})"
           for k, v in findings.items() if k.startswith("little_robustness_")]
    s = findings["sam_jr_vs_st"]
    out.append(f"SAM&JR vs ST: mean ASR difference {s['mean_asr_difference']:+.4f} over {s['cells']} "
               f"(attack, mode, target, budget) cells, SAM&JR higher in {s['wins']}{_ci(s.get('difference_ci'))}")
    b = findings["theorem1_bound"]
    out.append(f"Theorem-1 lower bound vacuous in {b['vacuous']} of {b['evaluated']} (surrogate, target) "
               f"evaluations ({b['undefined_eps_le_cG']} with eps <= c_G, where it says nothing); largest finite "
               f"value {b['max']}; mean empirical Pr(T_r = 1) {b['empirical_mean']:.3f}")
    return out
