"""Tables, figures and summary of the robust-transfer experiment (seed 002, docs/theory.md §7).

The experiment (:mod:`pyadvt.experiments.robust_transfer`) computes cells; this module turns them
into the ``pyadvt.result/1`` parts: per-size accuracy and robust-minus-natural deltas with 95%
t-intervals (paired by seed = same target subset, Figs. 2/4/8), the per-epoch accuracy curves
(Fig. 3), the shifted-target bars (Table 2) and the influence top-k label match (Fig. 7b).

Example:
    >>> rows = [{"source": s, "blocks": "head", "size": 10, "seed": k, "accuracy": a + 0.1 * k, "curve": [a]}
    ...         for s, a in (("natural", 0.5), ("at_l2", 0.6)) for k in (0, 1)]
    >>> acc, delta, figs = sweep_tables(rows, ["natural", "at_l2"], ["head"])
    >>> [round(v, 3) for v in delta[0][3:6] if v is not None], delta[0][:3]
    ([0.1, 0.1, 0.1], ['at_l2', 'head', 10])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyadvt.transfer.sweep import mean_ci, paired_delta, summarize

__all__ = ["SHIFT_KINDS", "curve_figure", "influence_summary", "report_parts", "shift_figures", "shift_table",
           "sweep_tables"]

#: the shifted targets of Table 2, in table order
SHIFT_KINDS = ("none", "low_res", "low_pass")


def _select(rows: Sequence[dict], source: str, blocks) -> list[dict]:
    return [r for r in rows if r["source"] == source and r["blocks"] == str(blocks)]


def sweep_tables(rows: Sequence[dict], sources: Sequence[str], blocks_list: Sequence) -> tuple[list, list, list]:
    """``(accuracy rows, delta rows, delta figures)`` of the fine-tuning sweep ``rows``
    (``{"source", "blocks", "size", "seed", "accuracy"}``): mean and 95% t-interval per
    (source, blocks, size), and the source - natural difference paired by seed, one curves figure
    (with bands) per ``blocks``."""
    sizes_seen = sorted({r["size"] for r in rows})
    table_acc, table_delta, figures = [], [], []
    for blocks in blocks_list:
        series, lo, hi = {}, {}, {}
        for name in sources:
            for s in summarize(_select(rows, name, blocks), "accuracy"):
                table_acc.append([name, str(blocks), s["size"], s["mean"], s["lo"], s["hi"], s["n"]])
            if name == "natural":
                continue
            delta = paired_delta(_select(rows, name, blocks), _select(rows, "natural", blocks), "accuracy")
            for d in delta:
                table_delta.append([name, str(blocks), d["size"], d["mean"], d["lo"], d["hi"], d["n"]])
            series[name] = [d["mean"] for d in delta]
            lo[name] = [d["lo"] if d["lo"] is not None else d["mean"] for d in delta]
            hi[name] = [d["hi"] if d["hi"] is not None else d["mean"] for d in delta]
        figures.append({"type": "curves", "x": sizes_seen, "series": series, "lower": lo, "upper": hi, "logx": True,
                        "title": f"accuracy delta vs natural (blocks={blocks})", "xlabel": "target samples",
                        "ylabel": "robust - natural accuracy"})
    return table_acc, table_delta, figures


def curve_figure(rows: Sequence[dict], sources: Sequence[str], curve_cfg: Mapping) -> list[dict]:
    """The per-epoch test-accuracy curves (Fig. 3) of the sweep rows with ``curve_cfg["blocks"]`` at
    the subset size nearest ``curve_cfg["size"]``; ``[]`` when no row has a curve."""
    sizes_seen = sorted({r["size"] for r in rows})
    nearest = min(sizes_seen, key=lambda s: abs(s - curve_cfg["size"]))
    curve_rows = [r for r in rows if r["blocks"] == str(curve_cfg["blocks"]) and r["size"] == nearest]
    series = {name: [r["curve"] for r in curve_rows if r["source"] == name] for name in sources}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return []
    n_ep = len(next(iter(series.values()))[0])
    return [{"type": "curves", "x": list(range(1, n_ep + 1)), "series": series,
             "title": f"test accuracy per fine-tuning epoch (n={curve_rows[0]['size']}, blocks={curve_cfg['blocks']})",
             "xlabel": "epoch", "ylabel": "accuracy"}]


def shift_table(accuracy: Mapping[tuple, float], sources: Sequence[str], seeds: Sequence[int]) -> list[list]:
    """Rows ``[source, none mean, +-, low_res mean, +-, low_pass mean, +-]`` from
    ``{(source, kind, seed): accuracy}`` (mean and 95% t half-width over ``seeds``)."""
    table = []
    for name in sources:
        row = [name]
        for kind in SHIFT_KINDS:
            ci = mean_ci([accuracy[(name, kind, s)] for s in seeds])
            row += [ci["mean"], ci["half_width"]]
        table.append(row)
    return table


def shift_figures(table: Sequence[list], shift_cfg: Mapping) -> list[dict]:
    """Bars of the low-resolution and the low-pass target accuracy per source (Table 2)."""
    sh = shift_cfg
    labels = [r[0] for r in table]
    return [{"type": "bars", "values": [r[3] for r in table], "labels": labels,
             "title": f"low-res ({sh['lowres_size']}x{sh['lowres_size']}) target accuracy (n={sh['size']})",
             "ylabel": "accuracy"},
            {"type": "bars", "values": [r[5] for r in table], "labels": labels,
             "title": f"low-pass (top {sh['lowpass_fraction']:.0%} frequencies zeroed) accuracy (n={sh['size']})",
             "ylabel": "accuracy"}]


def influence_summary(cells: dict, inf_cfg: dict) -> list[list]:
    """Rows ``[source, blocks, by, k, mean, lo, hi, delta, delta_lo, delta_hi, n]`` from the influence
    cells ``{("influence", source, blocks, seed): {"helpful"|"harmful": {str(k): rate}}}``: the top-k label
    match rate's mean with a 95% t-interval over seeds and, for non-natural sources, its difference to
    the natural source paired by seed (same target subset).

    Example:
        >>> c = {("influence", n, "head", s): {"helpful": {"1": r + 0.1 * s}, "harmful": {"1": 0.5}}
        ...      for n, r in (("natural", 0.1), ("at_l2", 0.2)) for s in (0, 1, 2)}
        >>> rows = influence_summary(c, {"sources": ["natural", "at_l2"], "blocks": ["head"], "ks": [1],
        ...                              "seeds": [0, 1, 2]})
        >>> [round(v, 3) for v in (rows[2][4], rows[2][7])]
        [0.3, 0.1]
    """
    rows = []
    for name in inf_cfg["sources"]:
        for b in inf_cfg["blocks"]:
            for by in ("helpful", "harmful"):
                for k in inf_cfg["ks"]:
                    rows += _influence_row(cells, inf_cfg, name, b, by, k)
    return rows


def _influence_row(cells: dict, inf_cfg: dict, name: str, b, by: str, k) -> list[list]:
    def vals(n):
        return [cells[("influence", n, str(b), int(s))][by][str(k)] for s in inf_cfg["seeds"]
                if ("influence", n, str(b), int(s)) in cells]

    own = vals(name)
    if not own:
        return []
    ci = mean_ci(own)
    d = {"mean": None, "lo": None, "hi": None}
    if name != "natural" and "natural" in inf_cfg["sources"]:
        base = vals("natural")
        if len(base) == len(own):
            d = mean_ci([a - c for a, c in zip(own, base)])
    return [[name, str(b), by, int(k), ci["mean"], ci["lo"], ci["hi"], d["mean"], d["lo"], d["hi"], ci["n"]]]


def _tables(cfg: Mapping, src_table, table_acc, table_delta, shift_rows, influence_rows) -> list[dict]:
    sh, inf_cfg = cfg["shift"], cfg["influence"]
    return [
        {"title": "sources (trained on digits 0-4): clean and PGD-10 robust accuracy",
         "columns": ["source", "clean", f"robust Linf {cfg['eps_linf']}", f"robust L2 {cfg['eps_l2']}"],
         "rows": src_table},
        {"title": "target accuracy (digits 5-9) by source, fine-tuned blocks and subset size",
         "columns": ["source", "blocks", "n", "mean", "ci lo", "ci hi", "seeds"], "rows": table_acc},
        {"title": "accuracy delta vs natural (paired by seed, 95% t-interval)",
         "columns": ["source", "blocks", "n", "delta", "ci lo", "ci hi", "seeds"], "rows": table_delta},
        {"title": f"shifted targets (n={sh['size']}, blocks={sh['blocks']}): mean accuracy and CI half-width",
         "columns": ["source"] + [f"{k} {s}" for k in SHIFT_KINDS for s in ("mean", "+-")], "rows": shift_rows},
        {"title": f"head influence (n={inf_cfg['size']}, {inf_cfg['solver']}, damping {inf_cfg['damping']:g}): top-k "
                  f"label match, mean and 95% t-interval over {len(inf_cfg['seeds'])} seeds; delta = source - "
                  "natural paired by seed",
         "columns": ["source", "blocks", "by", "k", "match", "ci lo", "ci hi", "delta vs natural", "delta lo",
                     "delta hi", "seeds"], "rows": influence_rows},
    ]


def report_parts(cfg: Mapping, source_metrics: Mapping[str, dict], rows: Sequence[dict],
                 shift_accuracy: Mapping[tuple, float], influence_cells: dict) -> dict:
    """``{"data", "summary", "figures", "tables"}`` of a robust-transfer run.

    Args:
        cfg: the resolved experiment configuration.
        source_metrics: ``{source: {"clean_accuracy", "robust_accuracy_linf", "robust_accuracy_l2"}}``.
        rows: the fine-tuning sweep rows (``source, blocks, size, seed, accuracy, curve``).
        shift_accuracy: ``{(source, kind, seed): accuracy}`` of the shifted targets.
        influence_cells: ``{("influence", source, blocks, seed): {by: {str(k): rate}}}``.
    """
    names = list(source_metrics)
    table_acc, table_delta, figures = sweep_tables(rows, names, cfg["target"]["blocks"])
    figures += curve_figure(rows, names, cfg["curve"])
    shift_rows = shift_table(shift_accuracy, names, cfg["shift"]["seeds"])
    figures += shift_figures(shift_rows, cfg["shift"])
    influence_rows = influence_summary(influence_cells, cfg["influence"])
    src_table = [[n, m["clean_accuracy"], m["robust_accuracy_linf"], m["robust_accuracy_l2"]]
                 for n, m in source_metrics.items()]
    smallest = min(r["size"] for r in rows)
    summary = {f"delta_{r[0]}_{r[1]}_n{r[2]}": r[3] for r in table_delta if r[2] == smallest}
    for r in influence_rows:
        if r[3] == min(cfg["influence"]["ks"]):
            summary[f"influence_top{r[3]}_{r[2]}_{r[0]}_{r[1]}"] = r[4]
    data = {"sources": dict(source_metrics), "sweep": list(rows), "accuracy": table_acc, "delta": table_delta,
            "shift": shift_rows, "influence": influence_rows}
    return {"data": data, "summary": summary, "figures": figures,
            "tables": _tables(cfg, src_table, table_acc, table_delta, shift_rows, influence_rows)}
