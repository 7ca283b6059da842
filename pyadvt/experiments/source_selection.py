"""source-selection: which transferability score picks the best source on digits, and does
adversarial transferability add information beyond LogME? (docs/theory.md §2, §11)

* A zoo of sources (default 12 = 2 architectures x 3 class-mixture shares x natural/robust
  training): each source is a 5-way classifier trained on ``source_size`` digits, a share ``p`` of
  them from the target-like group (default digits 0-4) and the rest from the other group (5-9),
  both relabelled 0..4 (seed 000 §4.1's mixture design); robust sources use L-inf adversarial
  training. Every model is a :class:`~pyadvt.train.zoo.ModelSpec` trained once by
  :func:`~pyadvt.train.zoo.train_or_load`.
* Target tasks (default 4): the target-like classes, the same at low resolution, the same with
  Gaussian noise, and the other classes; each has its own reference model for the adversarial scores.
* Scores (:func:`pyadvt.selection.rank_sources`): the field's estimators (LEEP, NLEEP, NCE, H-score,
  shrinkage H-score, LogME, TransRate, GBC, SFDA) on the target training data, and tau1, tau2,
  tau1 * tau2 and the eq. 2 loss against the reference.
* Ground truth: linear probing and LP-FT of every source on every target, for ``gt_seeds`` seeds.
* Validation as the field does it (:func:`pyadvt.selection.agreement`): weighted Kendall tau and
  rel@1 per target, means with bootstrap CIs over targets and seeds; and the incremental question:
  the partial correlation of accuracy with tau1 * tau2 given LogME, and the change in R^2 of
  ``accuracy ~ LogME`` when tau1 * tau2 is added (per target, and pooled over targets after
  z-scoring within each, with the nested-model F test).

Every model, score table and ground-truth run is a cell in ``out_dir/cells`` keyed by a digest of
the settings it depends on, so a rerun (or a changed setting) recomputes only what changed.
docs/experiments/source_selection.md has the numbers.

Example (Python):
    >>> from pyadvt.experiments import source_selection
    >>> result = source_selection.run(source_selection.QUICK, out_dir="/tmp/ss", progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pyadvt.data import TensorData, digits
from pyadvt.data.corruptions import gaussian_noise
from pyadvt.experiments._cli import experiment_cli
from pyadvt.experiments.mixture import _group, mixture_source_data
from pyadvt.report import Timings, make_result, publish
from pyadvt.selection import SOURCE_SCORES, agreement, incremental_value, rank_sources
from pyadvt.train import evaluate
from pyadvt.train.zoo import ModelSpec, train_or_load
from pyadvt.transfer import linear_probe, lp_ft, low_resolution
from pyadvt.utils.config import merge_config, resolve_config
from pyadvt.utils.progress import log
from pyadvt.utils.sweep import CellStore, config_digest, run_cells

DEFAULTS: dict = {
    "seed": 0,
    "target_like_classes": [0, 1, 2, 3, 4],
    "other_classes": [5, 6, 7, 8, 9],
    "archs": {"mlp": {"hidden": [64]}, "cnn": {"channels": [16, 32]}},
    "shares": [0.0, 0.5, 1.0],
    "trainings": {"natural": {"recipe": "st"},
                  "robust": {"recipe": "at", "strength": 0.1, "norm": "linf", "steps": 3}},
    "source_size": 500,
    "train": {"epochs": 15, "lr": 0.05, "batch_size": 64},
    "targets": {"classes": {"kind": "classes", "group": "target_like"},
                "low_resolution": {"kind": "low_resolution", "group": "target_like", "size": 4},
                "noise": {"kind": "noise", "group": "target_like", "std": 0.3},
                "other_classes": {"kind": "classes", "group": "other"}},
    "reference": {"arch": "cnn", "model_kwargs": {"channels": [16, 32]}},
    "rank": {"n_eval": 100, "eps": 0.1, "steps": 5},
    "probe": {"epochs": 10, "lr": 0.05},
    "lpft": {"epochs": 6, "lp_lr": 0.05, "ft_lr": 0.005},
    "gt_seeds": [0, 1],
    "bootstrap": 500,
    "threads": 1,
}

QUICK: dict = merge_config(DEFAULTS, {
    "shares": [0.0, 1.0],
    "archs": {"cnn": None},
    "source_size": 300,
    "train": {"epochs": 6},
    "targets": {"other_classes": None},
    "rank": {"n_eval": 48, "steps": 2},
    "probe": {"epochs": 4},
    "lpft": {"epochs": 2},
    "gt_seeds": [0],
    "bootstrap": 100,
})

ADVERSARIAL = ("tau1", "tau2", "tau1*tau2", "eq2_loss")
GROUND_TRUTHS = ("probe", "lpft")


def _prune(cfg: dict) -> dict:
    """``None`` entries of the ``archs`` / ``targets`` / ``trainings`` maps remove them (how QUICK drops some)."""
    for key in ("archs", "targets", "trainings"):
        cfg[key] = {k: v for k, v in cfg[key].items() if v is not None}
    return cfg


def _validate(cfg: dict) -> None:
    v, a = list(cfg["target_like_classes"]), list(cfg["other_classes"])
    if len(v) != len(a) or not v or set(v) & set(a) or not set(v + a) <= set(range(10)):
        raise ValueError("'target_like_classes' and 'other_classes' must be disjoint, equally long lists of digits")
    n_sources = len(cfg["archs"]) * len(cfg["shares"]) * len(cfg["trainings"])
    if n_sources < 3 or not cfg["targets"] or not cfg["gt_seeds"]:
        raise ValueError(f"source-selection needs at least 3 sources ({n_sources} configured), one target and one "
                         "ground-truth seed")
    if any(not 0.0 <= float(p) <= 1.0 for p in cfg["shares"]):
        raise ValueError(f"'shares' must lie in [0, 1], got {cfg['shares']}")
    for name, t in cfg["targets"].items():
        kinds, groups = ("classes", "low_resolution", "noise"), ("target_like", "other")
        if t.get("kind") not in kinds or t.get("group") not in groups:
            raise ValueError(f"target {name!r}: 'kind' must be classes, low_resolution or noise and 'group' "
                             "target_like or other")


def source_specs(cfg: dict) -> dict[str, tuple[ModelSpec, float]]:
    """``{name: (ModelSpec, share)}`` of the source zoo (architecture x share x training)."""
    out = {}
    for arch, kwargs in cfg["archs"].items():
        for share in cfg["shares"]:
            for kind, t in cfg["trainings"].items():
                recipe_kwargs = {k: v for k, v in t.items() if k != "recipe"}
                seed = int(cfg["seed"]) * 1000 + int(round(100 * float(share)))
                spec = ModelSpec(arch, dict(kwargs or {}), t["recipe"], recipe_kwargs, dict(cfg["train"]), seed)
                out[f"{arch}-{int(round(100 * float(share)))}%-{kind}"] = (spec, float(share))
    return out


def target_task(groups: dict[str, tuple[TensorData, TensorData]], t: dict, seed: int) -> tuple[TensorData, TensorData]:
    """``(train, test)`` of one target task: a class group, optionally at low resolution or noisy."""
    train, test = groups[t["group"]]
    if t["kind"] == "low_resolution":
        return (TensorData(low_resolution(train.x, int(t["size"])), train.y, train.num_classes),
                TensorData(low_resolution(test.x, int(t["size"])), test.y, test.num_classes))
    if t["kind"] == "noise":
        return (TensorData(gaussian_noise(train.x, float(t["std"]), seed=seed), train.y, train.num_classes),
                TensorData(gaussian_noise(test.x, float(t["std"]), seed=seed + 1), test.y, test.num_classes))
    return train, test


def _ground_truth(sources: dict, tasks: dict, cfg: dict, store: CellStore, progress: bool) -> dict:
    """``{(target, source, seed): {"probe": acc, "lpft": acc}}``, one resumable cell each."""
    tag = config_digest(cfg["probe"], cfg["lpft"], cfg["train"], cfg["source_size"], cfg["seed"])
    keys = [("gt", t, s, int(seed), tag) for t in tasks for s in sources for seed in cfg["gt_seeds"]]

    def cell(key):
        _, t, s, seed, _ = key
        train, test = tasks[t]
        probe = linear_probe(sources[s], train, epochs=cfg["probe"]["epochs"], lr=cfg["probe"]["lr"], seed=seed)
        lp = cfg["lpft"]
        tuned = lp_ft(sources[s], train, epochs=lp["epochs"], lp_lr=lp["lp_lr"], ft_lr=lp["ft_lr"], seed=seed)
        return {"probe": evaluate(probe.model, test)["accuracy"], "lpft": evaluate(tuned.model, test)["accuracy"]}

    return run_cells(keys, cell, store, progress=progress, desc="ground truth")


def _zscore(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    return (v - v.mean()) / sd if sd > 0 else v * 0.0


def analyse(score_table: dict[str, np.ndarray], gt: dict[str, np.ndarray], targets: list[str], cfg: dict) -> dict:
    """Agreement of every score with each ground truth, and the incremental value of tau1 * tau2 over LogME.

    ``score_table[name]``: ``[T, N]``; ``gt[kind]``: ``[T, S, N]`` accuracies.
    """
    out: dict = {"agreement": {}, "incremental": {}}
    for kind, acc in gt.items():
        res = agreement(score_table, acc, n_boot=int(cfg["bootstrap"]), seed=int(cfg["seed"]))
        out["agreement"][kind] = {name: r.summary() for name, r in res.items()}
        mean_acc = acc.mean(1)
        inc = {}
        for extra in ("tau1*tau2", "eq2_loss"):
            per = {t: incremental_value(mean_acc[i], score_table["logme"][i], score_table[extra][i])
                   for i, t in enumerate(targets)}
            pooled = incremental_value(*(np.concatenate([_zscore(m[i]) for i in range(len(targets))])
                                   for m in (mean_acc, score_table["logme"], score_table[extra])))
            inc[extra] = {"per_target": per, "pooled": pooled}
        out["incremental"][kind] = inc
    return out


def run(config: dict | None = None, out_dir: str | Path = "results/source-selection", progress: bool = True) -> dict:
    """Run the experiment (see the module docstring); returns the ``pyadvt.result/1`` dict."""
    cfg = _prune(resolve_config(DEFAULTS, config))
    _validate(cfg)
    threads = torch.get_num_threads()
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    try:
        return _run(cfg, Path(out_dir), progress)
    finally:
        torch.set_num_threads(threads)


def _train_zoo(cfg: dict, store: CellStore, progress: bool):
    train, test = digits(seed=cfg["seed"])
    groups = {g: (_group(train, cfg[f"{g}_classes"]), _group(test, cfg[f"{g}_classes"]))
              for g in ("target_like", "other")}
    specs = source_specs(cfg)
    sources, shares = {}, {}
    for name, (spec, share) in specs.items():
        data = mixture_source_data(groups["target_like"][0], groups["other"][0], share, int(cfg["source_size"]),
                                   spec.seed)
        sources[name], _ = train_or_load(spec, data, store, progress=False)
        shares[name] = share
    tasks = {t: target_task(groups, tc, int(cfg["seed"]) + k) for k, (t, tc) in enumerate(cfg["targets"].items())}
    rc = cfg["reference"]
    refs = {t: train_or_load(ModelSpec(rc["arch"], dict(rc.get("model_kwargs") or {}), "st", {}, dict(cfg["train"]),
                                       int(cfg["seed"]) + 10_000), tasks[t][0], store)[0] for t in tasks}
    return sources, shares, tasks, refs


def _run(cfg: dict, out_dir: Path, progress: bool) -> dict:
    timings = Timings()
    store = CellStore(out_dir / "cells")
    with timings("train"):
        sources, shares, tasks, refs = _train_zoo(cfg, store, progress)
    log(f"source-selection: {len(sources)} sources, {len(tasks)} targets")
    names, targets = list(sources), list(tasks)
    rows = {}
    with timings("scores"):
        rc = cfg["rank"]
        for t in targets:
            ranking = rank_sources(sources, refs[t], tasks[t][1], target_train=tasks[t][0], eps=rc["eps"],
                                   steps=rc["steps"], n_eval=rc["n_eval"], probe=False, seed=cfg["seed"], store=store,
                                   progress=progress, cell_prefix=("scores", t, config_digest(rc, cfg["seed"])))
            rows[t] = {r["name"]: r for r in ranking["rows"]}
    with timings("ground_truth"):
        cells = _ground_truth(sources, tasks, cfg, store, progress)
    scores = [s for s in SOURCE_SCORES if all(rows[t][n].get(s) is not None for t in targets for n in names)]
    table = {s: np.array([[rows[t][n][s] for n in names] for t in targets]) for s in scores}
    by = {k[1:4]: v for k, v in cells.items()}
    gt = {kind: np.array([[[by[(t, n, int(seed))][kind] for n in names] for seed in cfg["gt_seeds"]]
                          for t in targets]) for kind in GROUND_TRUTHS}
    with timings("analysis"):
        analysis = analyse(table, gt, targets, cfg)
    result = _report(cfg, names, shares, targets, table, gt, analysis, rows, timings)
    publish(result, out_dir, title="source selection on digits")
    return result


def _fmt_ci(mean, ci) -> str:
    if mean is None:
        return "undefined"
    return f"{mean:+.3f}" + ("" if ci is None else f" [{ci[0]:+.2f}, {ci[1]:+.2f}]")


def _agreement_tables(analysis: dict, targets: list[str]) -> list[dict]:
    tables = []
    for kind, label in (("probe", "linear probe"), ("lpft", "LP-FT")):
        for metric in ("weighted_tau", "rel@1"):
            agg = analysis["agreement"][kind]
            rows = [[name] + [r["per_target"][metric][i] for i in range(len(targets))]
                    + [_fmt_ci(r["mean"][metric], r["ci"][metric])] for name, r in agg.items()]
            rows.sort(key=lambda row: -(agg[row[0]]["mean"][metric] if agg[row[0]]["mean"][metric] is not None
                                        else -np.inf))
            tables.append({"title": f"{metric} of each score vs {label} accuracy, per target (mean [95% CI])",
                           "columns": ["score", *targets, "mean [CI]"], "rows": rows})
    return tables


def _incremental_table(analysis: dict, targets: list[str]) -> dict:
    rows = []
    for kind in GROUND_TRUTHS:
        for extra, inc in analysis["incremental"][kind].items():
            for where, r in [*inc["per_target"].items(), ("pooled (z-scored)", inc["pooled"])]:
                rows.append([kind, extra, where, r["n"], r["partial_r"], r["r2_base"], r["r2_full"], r["delta_r2"],
                             r["p_value"]])
    return {"title": "beyond LogME: accuracy ~ LogME + score (partial r given LogME, R^2, Delta R^2, F-test p)",
            "columns": ["ground truth", "added score", "target", "n", "partial r", "R^2 LogME", "R^2 LogME + score",
                        "Delta R^2", "p"], "rows": rows}


def _figures(names, targets, table, gt, analysis) -> list[dict]:
    acc = gt["probe"].mean(1)
    panels = [{"x": table[s][i].tolist(), "y": acc[i].tolist(), "title": f"{s} | {t}", "xlabel": s,
               "ylabel": "probe acc."} for s in table for i, t in enumerate(targets)]
    figures = [{"type": "scatter_grid", "panels": panels, "ncols": len(targets),
                "title": "every score vs linear-probe accuracy (rows: scores, columns: targets)"}]
    for kind, label in (("probe", "linear probe"), ("lpft", "LP-FT")):
        agg = analysis["agreement"][kind]
        order = list(agg)
        ci = [agg[n]["ci"]["weighted_tau"] for n in order]
        figures.append({"type": "bars", "values": [agg[n]["mean"]["weighted_tau"] for n in order], "labels": order,
                        "lower": [None if c is None else c[0] for c in ci],
                        "upper": [None if c is None else c[1] for c in ci], "ylabel": "mean weighted tau",
                        "title": f"weighted Kendall tau with {label} accuracy (mean over targets, 95% CI)"})
    return figures


def _report(cfg, names, shares, targets, table, gt, analysis, rows, timings) -> dict:
    agg = analysis["agreement"]
    summary: dict = {"sources": len(names), "targets": len(targets), "ground_truth_seeds": len(cfg["gt_seeds"])}
    for kind in GROUND_TRUTHS:
        best = max(agg[kind], key=lambda n: -np.inf if agg[kind][n]["mean"]["weighted_tau"] is None
                   else agg[kind][n]["mean"]["weighted_tau"])
        summary[f"best score by weighted tau ({kind})"] = best
        for name in ("logme", "tau1*tau2", "eq2_loss"):
            if name in agg[kind]:
                m = agg[kind][name]["mean"]
                summary[f"weighted tau {name} ({kind})"] = m["weighted_tau"]
                summary[f"rel@1 {name} ({kind})"] = m["rel@1"]
        pooled = analysis["incremental"][kind]["tau1*tau2"]["pooled"]
        summary[f"delta R^2 of tau1*tau2 beyond LogME, pooled ({kind})"] = pooled["delta_r2"]
        summary[f"partial r of tau1*tau2 given LogME, pooled ({kind})"] = pooled["partial_r"]
    per_pair = [[t, n, shares[n]] + [rows[t][n].get(s) for s in table] + [float(gt[k][i, :, j].mean())
                                                                           for k in GROUND_TRUTHS]
                for i, t in enumerate(targets) for j, n in enumerate(names)]
    tables = _agreement_tables(analysis, targets) + [_incremental_table(analysis, targets), {
        "title": "scores and transfer accuracy of every (target, source)",
        "columns": ["target", "source", "target-like share", *table, "probe accuracy", "LP-FT accuracy"],
        "rows": per_pair}]
    data = {"sources": names, "targets": targets, "shares": shares, "scores": {k: v.tolist() for k, v in table.items()},
            "ground_truth": {k: v.tolist() for k, v in gt.items()}, "analysis": analysis}
    notes = [f"{len(names)} sources ({', '.join(cfg['archs'])} x shares {cfg['shares']} x "
             f"{', '.join(cfg['trainings'])}) "
             f"on digits; targets: {', '.join(targets)}. Estimators read the target training data; adversarial "
             "scores use a reference trained on each target."]
    return make_result("source-selection", cfg, data, timings=timings, seeds={"seed": cfg["seed"],
                       "gt_seeds": cfg["gt_seeds"]}, summary=summary, figures=_figures(names, targets, table, gt,
                       analysis), tables=tables, notes=notes)


add_arguments, main = experiment_cli("source-selection", run, DEFAULTS, QUICK)
