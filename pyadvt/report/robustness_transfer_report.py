"""Tables, figures and summary of the robustness-transfer experiment (seed 004, docs/theory.md §5).

The experiment (:mod:`pyadvt.experiments.robustness_transfer`) computes one evaluation record per
(representation, method) and per corruption cell (:func:`pyadvt.experiments.robustness_transfer.
evaluate_transferred`); this module lays them out as the paper's tables — AS before transfer
(Tab. 4), LP / FT / LP-FT (Tab. 5), Lemma 1 (Tabs. 1/9), Theorem 1, the Theorem-2 criterion (Tab. 3)
and corruptions (Tabs. 12/13) — with their figures, the CSV tables and the summary.

Example:
    >>> rec = {"accuracy": 0.9, "robust_accuracy": 0.4, "as_score": 2.0,
    ...        "lemma1_inf": {"clean_loss": 0.25, "adv_loss": 0.75}}
    >>> calibration_rows(["standard"], {"standard": {"as_source": 2.5, "as_target": 2.0}},
    ...                  {("standard", "lp"): rec})
    [['standard', 2.5, 2.0, 2.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["CORRUPTION_COLUMNS", "LEMMA_COLUMNS", "calibration_rows", "corruption_rows", "method_rows",
           "report_parts"]

LEMMA_COLUMNS = ["representation", "method", "CE", "robust CE", "diff CE", "max_j ||w_j||", "LHS q=inf",
                 "||W||_2", "LHS q=2", "AS score", "RHS", "held (both q)", "tight LHS", "tight RHS"]
CORRUPTION_COLUMNS = ["representation", "corruption", "severity", "acc", "robust acc", "CE", "robust CE", "diff CE",
                      "max_j ||w_j||", "LHS q=inf", "AS score", "held"]


def method_rows(res: Mapping[tuple, dict]) -> dict[str, list]:
    """Per (representation, method) record of ``res``: the rows of the Lemma 1, Theorem 2,
    method (acc / robust acc / AS) and Theorem 1 tables, ``{"lemma", "theorem2", "method", "theorem1"}``."""
    out = {"lemma": [], "theorem2": [], "method": [], "theorem1": []}
    for (r, m), v in res.items():
        li, l2 = v["lemma1_inf"], v["lemma1_2"]
        out["lemma"].append([r, m, li["clean_loss"], li["adv_loss"], li["diff_loss"], li["w_norm"], li["lhs"],
                             l2["w_norm"], l2["lhs"], li["as_score"], li["rhs"], li["held"] and l2["held"],
                             li["tight_lhs"], li["tight_rhs"]])
        t2 = v["theorem2"]
        t2o = v.get("theorem2_max", v.get("theorem2_as", {}))
        out["theorem2"].append([r, m, t2["clean_accuracy"], t2["robust_accuracy"], t2["prop_fulfilled"],
                                t2["robust_among_fulfilled"], t2["fulfilled_but_not_robust"],
                                t2o.get("prop_fulfilled"), t2o.get("robust_among_fulfilled")])
        out["method"].append([r, m, v["accuracy"], v["robust_accuracy"], v["as_score"]])
        t1 = v["theorem1"]
        out["theorem1"].append([r, m, t1["observed_gap"], t1["lipschitz_term"], t1["hoeffding_term"], t1["bound"],
                                t1["B"]])
    return out


def calibration_rows(representations: Sequence[str], rep_metrics: Mapping[str, dict],
                     res: Mapping[tuple, dict]) -> list[list]:
    """Rows ``[representation, AS on pretraining data, AS on downstream data, (robust CE - CE) / CE after
    LP]`` (Tab. 4); the last entry is ``None`` without an LP record or with zero clean CE."""
    rows = []
    for r in representations:
        lp = res.get((r, "lp"))
        rel = None
        if lp is not None and lp["lemma1_inf"]["clean_loss"] > 0:
            rel = (lp["lemma1_inf"]["adv_loss"] - lp["lemma1_inf"]["clean_loss"]) / lp["lemma1_inf"]["clean_loss"]
        rows.append([r, rep_metrics[r]["as_source"], rep_metrics[r]["as_target"], rel])
    return rows


def corruption_rows(cres: Mapping[tuple, dict]) -> list[list]:
    """Rows of :data:`CORRUPTION_COLUMNS` from ``{(representation, kind, severity): record}``."""
    rows = []
    for (rep, kind, sev), v in cres.items():
        li = v["lemma1_inf"]
        rows.append([rep, kind, sev, v["accuracy"], v["robust_accuracy"], li["clean_loss"], li["adv_loss"],
                     li["diff_loss"], li["w_norm"], li["lhs"], v["as_score"], li["held"]])
    return rows


def _figures(cfg: Mapping, rows: dict, cres: Mapping[tuple, dict]) -> list[dict]:
    labels = [f"{r[0]}/{r[1]}" for r in rows["method"]]
    figures = [
        {"type": "bars", "values": [r[4] for r in rows["method"]], "labels": labels,
         "title": "AS score of the transferred representation", "ylabel": "AS"},
        {"type": "bars", "values": [r[3] for r in rows["method"]], "labels": labels,
         "title": f"robust accuracy (PGD-{cfg['attack_steps']}, {cfg['norm']} eps={cfg['eps']})",
         "ylabel": "robust accuracy"},
        {"type": "scatter", "x": [r[10] for r in rows["lemma"]], "y": [r[6] for r in rows["lemma"]], "labels": labels,
         "title": "Lemma 1: LHS (q=inf) vs RHS", "xlabel": "RHS (AS estimate)", "ylabel": "LHS", "fit": False},
    ]
    cc = cfg["corruptions"]
    for kind in cc["kinds"]:
        series = {f"AS {rep}": [cres[(rep, kind, s)]["as_score"] for s in cc["severities"]]
                  for rep in cc["representations"]}
        figures.append({"type": "curves", "x": list(cc["severities"]), "series": series,
                        "title": f"AS score vs {kind} severity (LP)", "xlabel": "severity", "ylabel": "AS"})
    return figures


def _tables(cfg: Mapping, rows: dict, calib: list, corr: list) -> list[dict]:
    ra = cfg["rep_attack"]
    return [
        {"title": "AS score before transfer (Tab. 4 analogue) and relative CE increase after LP",
         "columns": ["representation", "AS on pretraining data", "AS on downstream data", "(robust CE - CE)/CE LP"],
         "rows": calib},
        {"title": "LP / FT / LP-FT: accuracy, robust accuracy, AS (Tab. 5 analogue)",
         "columns": ["representation", "method", "acc", "robust acc", "AS"], "rows": rows["method"]},
        {"title": "Lemma 1 (Tab. 1 / Tab. 9 analogue)", "columns": LEMMA_COLUMNS, "rows": rows["lemma"]},
        {"title": f"Theorem 1: observed gap vs bound (q=inf, rho={cfg['rho']}, B = max robust CE, indicative)",
         "columns": ["representation", "method", "observed gap", "L ||W|| AS", "Hoeffding", "bound", "B"],
         "rows": rows["theorem1"]},
        {"title": f"Theorem 2 criterion (Tab. 3 analogue), sensitivity = {cfg['sensitivity']} "
                  f"(AS: lower bound by representation PGD-{ra['steps']}, up to "
                  f"{ra['restarts']} restarts); last two columns: the other rule",
         "columns": ["representation", "method", "clean acc", "robust acc", "prop. fulfilled",
                     "robust among fulfilled", "fulfilled but not robust",
                     "prop. fulfilled (other)", "robust among fulfilled (other)"],
         "rows": rows["theorem2"]},
        {"title": "corruptions (LP on corrupted downstream data; Tabs. 12/13 analogue)", "columns": CORRUPTION_COLUMNS,
         "rows": corr},
    ]


def report_parts(cfg: Mapping, rep_metrics: Mapping[str, dict], res: Mapping[tuple, dict],
                 cres: Mapping[tuple, dict]) -> dict:
    """``{"data", "summary", "figures", "tables", "csv"}`` of a robustness-transfer run.

    Args:
        cfg: the resolved experiment configuration.
        rep_metrics: ``{representation: {"as_source", "as_target", ...}}`` (AS before transfer).
        res: ``{(representation, method): record}``; cres: ``{(representation, kind, severity): record}``.
    """
    rows = method_rows(res)
    calib = calibration_rows(cfg["representations"], rep_metrics, res)
    corr = corruption_rows(cres)
    all_held = all(r[11] for r in rows["lemma"]) and all(r[11] for r in corr)
    summary = {"lemma1_held_everywhere": all_held,
               "fulfilled_but_not_robust": sum(v["theorem2"]["fulfilled_but_not_robust"] for v in res.values())}
    for row in rows["method"]:
        summary[f"robust_acc_{row[0]}_{row[1]}"] = row[3]
        summary[f"as_{row[0]}_{row[1]}"] = row[4]
    data = {"representations": dict(rep_metrics),
            "transfer": {f"{r}/{m}": v for (r, m), v in res.items()},
            "corruptions": {f"{r}/{k}/{s}": v for (r, k, s), v in cres.items()}}
    return {"data": data, "summary": summary, "figures": _figures(cfg, rows, cres),
            "tables": _tables(cfg, rows, calib, corr),
            "csv": {"lemma1": {"columns": LEMMA_COLUMNS, "rows": rows["lemma"]},
                    "corruptions": {"columns": CORRUPTION_COLUMNS, "rows": corr}}}
