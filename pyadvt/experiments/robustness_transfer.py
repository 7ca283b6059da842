"""robustness-transfer: does robustness survive transfer? AS score, Lemma 1, Theorem 2 (seed 004 on digits)

Representations are pretrained on digits 0-4 — standard (natural), adversarial (L-inf PGD AT) or
random (untrained) — and transferred to digits 5-9 by linear probing (LP), full fine-tuning (FT) and
LP-FT (seed 004 sec. 6.2, Tab. 5). For each pair the experiment reports clean / PGD robust accuracy,
the AS score of the transferred representation (eq. 2), Lemma 1 for ``q = inf`` (``L = 2``, max row
norm) and ``q = 2`` (``L = sqrt 2``, spectral norm) with LHS, RHS and whether it held (Tab. 1, Tab. 9),
Theorem 1's Hoeffding term, and the Theorem-2 criterion table (Tab. 3). Before any transfer it
computes the AS score of each representation on pretraining and downstream data (Tab. 4), and for
the chosen representations the Gaussian-noise and zoom-blur corruption tables of app. B.5
(Tabs. 12/13: LP on corrupted downstream data). Cells are cached under ``out_dir/cells``.

Example (Python):
    >>> from pyadvt.experiments import robustness_transfer
    >>> res = robustness_transfer.run(robustness_transfer.QUICK, out_dir="/tmp/rbt", progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from pyadvt.data import TensorData
from pyadvt.data.corruptions import corrupt
from pyadvt.experiments._data import DIGITS, experiment_data
from pyadvt.experiments.robust_transfer import train_source
from pyadvt.metrics.robustness_transfer import as_score, evaluate_robustness_transfer
from pyadvt.models import build
from pyadvt.report import Timings, make_result, publish
from pyadvt.transfer.finetune import finetune, lp_ft
from pyadvt.experiments._cli import experiment_cli
from pyadvt.utils.config import merge_config, resolve_config
from pyadvt.utils.sweep import CellStore, run_cells

REPRESENTATIONS = {"standard": "natural", "adversarial": "at_linf", "random": None}
METHODS = ("lp", "ft", "lp_ft")

DEFAULTS: dict = {
    "seed": 0,
    "dataset": dict(DIGITS),
    "model": {"arch": "cnn", "channels": [16, 32, 64]},
    "source_classes": [0, 1, 2, 3, 4],
    "target_classes": [5, 6, 7, 8, 9],
    "eps": 0.1,
    "norm": "linf",
    "at_steps": 10,
    "representations": ["standard", "adversarial", "random"],
    "source_train": {"epochs": 20, "lr": 0.05, "batch_size": 64},
    "transfer": {"methods": ["lp", "ft", "lp_ft"], "epochs": 20, "lp_lr": 0.05, "ft_lr": 0.01, "batch_size": 64},
    "attack_steps": 20,
    # the paper's AS (representation attack alone) is the default sensitivity; "max" adds the loss
    # adversary's own shift, which makes Theorem 2 hold by construction (pyadvt.metrics.robustness_transfer)
    "sensitivity": "as",
    "rep_attack": {"steps": 100, "restarts": 5, "rtol": 0.005},
    "rho": 0.05,
    "corruptions": {"kinds": ["gaussian_noise", "zoom_blur"], "severities": [0, 1, 2, 5],
                    "representations": ["adversarial", "standard"]},
}

QUICK: dict = merge_config(DEFAULTS, {
    "at_steps": 3,
    "source_train": {"epochs": 3},
    "transfer": {"epochs": 2},
    "attack_steps": 5,
    "corruptions": {"severities": [0, 5], "representations": ["adversarial"]},
    "rep_attack": {"steps": 10, "restarts": 2},
})

# --dataset presets: "scale" = settings for 28x28 images (LeNet-5, the classic MNIST CNN; L-inf eps 0.1
# in [0, 1] pixel units, the usual Fashion-MNIST budget), "budget" = sizes that finish one seed in about
# 21 min on 2 CPU cores shared with 3-5 other jobs (run --set seed=0/1/2 for three seeds)
_MNIST_LIKE = {
    "scale": {"model": {"arch": "lenet", "channels": []}, "eps": 0.1,
              "dataset": {"train_size": 1000, "test_size": 200}},
    "budget": {"at_steps": 5, "source_train": {"epochs": 10}, "transfer": {"epochs": 10},
               "rep_attack": {"steps": 50, "restarts": 3},
               "corruptions": {"severities": [0, 5], "representations": ["adversarial"]}},
}
DATASET_PRESETS: dict = {"fashion-mnist": _MNIST_LIKE, "mnist": _MNIST_LIKE, "kmnist": _MNIST_LIKE}


def _source_cfg(cfg: dict) -> dict:
    """The configuration :func:`pyadvt.experiments.robust_transfer.train_source` expects."""
    return {"seed": cfg["seed"], "model": cfg["model"], "eps_l2": cfg["eps"], "eps_linf": cfg["eps"],
            "at_steps": cfg["at_steps"], "gaussian_std": 1.0, "source_train": cfg["source_train"]}


def _build(cfg: dict, num_classes: int, in_shape=(1, 8, 8)) -> torch.nn.Module:
    torch.manual_seed(cfg["seed"])
    kw = {"channels": tuple(cfg["model"]["channels"])} if cfg["model"].get("channels") else {}
    return build(cfg["model"]["arch"], in_shape=tuple(in_shape), num_classes=num_classes, **kw)


def representation(kind: str, cfg: dict, src_train: TensorData) -> torch.nn.Module:
    """A pretrained split model: ``standard`` / ``adversarial`` (AT with ``cfg['norm']``) / ``random``."""
    if kind not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {kind!r}; choose from {tuple(REPRESENTATIONS)}")
    if kind == "random":
        return _build(cfg, src_train.num_classes, src_train.x.shape[1:])
    source = REPRESENTATIONS[kind] if kind != "adversarial" else ("at_l2" if cfg["norm"] == "l2" else "at_linf")
    return train_source(source, src_train, _source_cfg(cfg))


def transfer(model: torch.nn.Module, method: str, train: TensorData, cfg: dict) -> torch.nn.Module:
    """LP / FT / LP-FT of a copy of ``model`` on ``train`` (seed 004 app. B.4 settings, scaled down)."""
    t = cfg["transfer"]
    common = dict(num_classes=train.num_classes, batch_size=t["batch_size"], seed=cfg["seed"])
    if method == "lp":
        return finetune(model, train, blocks="head", epochs=t["epochs"], lr=t["lp_lr"], **common).model
    if method == "ft":
        return finetune(model, train, blocks="all", epochs=t["epochs"], lr=t["ft_lr"], **common).model
    if method == "lp_ft":
        return lp_ft(model, train, epochs=t["epochs"], lp_lr=t["lp_lr"], ft_lr=t["ft_lr"], **common).model
    raise ValueError(f"unknown transfer method {method!r}; choose from {METHODS}")


def evaluate_transferred(model: torch.nn.Module, test: TensorData, cfg: dict) -> dict:
    """Accuracy, robust accuracy, AS, Lemma 1 (q = inf, 2), Theorem 1 and Theorem 2 on ``test``.

    Theorem 2 and Lemma 1's RHS use ``cfg["sensitivity"]`` (default: the paper's AS); the other
    rule's Theorem-2 table is stored too (``theorem2_max`` / ``theorem2_as``) for comparison.
    """
    ra = cfg["rep_attack"]
    rec = evaluate_robustness_transfer(model, test.x, test.y, cfg["eps"], norm=cfg["norm"], steps=cfg["attack_steps"],
                                       rep_steps=int(ra["steps"]), restarts=int(ra["restarts"]), rtol=float(ra["rtol"]),
                                       seed=cfg["seed"], sensitivity=cfg["sensitivity"])
    t2 = rec.theorem2().summary()
    other = "max" if cfg["sensitivity"] == "as" else "as"
    s_other = torch.maximum(rec.rep_shift, rec.adv_shift) if other == "max" else rec.rep_shift
    asc = rec.as_score()
    out = {"accuracy": t2["clean_accuracy"], "robust_accuracy": t2["robust_accuracy"],
           "as_score": asc.score, "as_bound": "lower", "as_attack": asc.attack, "theorem2": t2,
           f"theorem2_{other}": rec.theorem2(s_other).summary(),
           "theorem1": rec.theorem1(rho=cfg["rho"], q="inf"),
           "lemma1_inf": rec.lemma1("inf").summary(), "lemma1_2": rec.lemma1(2).summary()}
    return out


def run(config: dict | None = None, out_dir: str | Path = "results/robustness-transfer", progress: bool = True) -> dict:
    """Run the experiment (``config`` merged over :data:`DEFAULTS`); write ``result.json``, CSV and report."""
    cfg = resolve_config(DEFAULTS, config)
    for r in cfg["representations"] + cfg["corruptions"]["representations"]:
        if r not in REPRESENTATIONS:
            raise ValueError(f"unknown representation {r!r}; choose from {tuple(REPRESENTATIONS)}")
    for m in cfg["transfer"]["methods"]:
        if m not in METHODS:
            raise ValueError(f"unknown transfer method {m!r}; choose from {METHODS}")
    if cfg["sensitivity"] not in ("as", "max"):
        raise ValueError(f"'sensitivity' must be 'as' (the paper's AS) or 'max', got {cfg['sensitivity']!r}")
    if cfg["norm"] not in ("linf", "l2"):
        raise ValueError(f"'norm' must be 'linf' or 'l2', got {cfg['norm']!r}")
    out_dir = Path(out_dir)
    store = CellStore(out_dir / "cells", meta=cfg)
    timings = Timings()
    src_train, src_test = experiment_data(cfg["dataset"], seed=cfg["seed"], classes=cfg["source_classes"])
    tgt_train, tgt_test = experiment_data(cfg["dataset"], seed=cfg["seed"], classes=cfg["target_classes"])
    in_shape = tuple(src_train.x.shape[1:])
    reps_needed = list(dict.fromkeys(cfg["representations"] + cfg["corruptions"]["representations"]))

    def rep_cell(key):
        model = representation(key[1], cfg, src_train)
        ra = cfg["rep_attack"]
        kw = dict(norm=cfg["norm"], steps=int(ra["steps"]), restarts=int(ra["restarts"]), rtol=float(ra["rtol"]),
                  seed=cfg["seed"])
        a_src, a_tgt = as_score(model, src_test.x, cfg["eps"], **kw), as_score(model, tgt_test.x, cfg["eps"], **kw)
        metrics = {"as_source": a_src.score, "as_target": a_tgt.score, "as_bound": "lower",
                   "as_attack": a_src.attack}
        return store.put(key, metrics, checkpoint=model.state_dict())

    with timings("pretraining"):
        rep_keys = [("rep", r) for r in reps_needed]
        rep_metrics = run_cells(rep_keys, rep_cell, store, progress=progress, desc="representations")
    reps = {}
    for key in rep_keys:
        model = _build(cfg, src_train.num_classes, in_shape)
        model.load_state_dict(store.load_checkpoint(key))
        reps[key[1]] = model

    def transfer_cell(key):
        _, rep, method = key
        return evaluate_transferred(transfer(reps[rep], method, tgt_train, cfg), tgt_test, cfg)

    keys = [("transfer", r, m) for r in cfg["representations"] for m in cfg["transfer"]["methods"]]
    with timings("transfer + evaluation"):
        res = run_cells(keys, transfer_cell, store, progress=progress, desc="transfer")

    cc = cfg["corruptions"]

    def corruption_cell(key):
        _, rep, kind, sev = key
        tr = TensorData(corrupt(tgt_train.x, kind, sev, seed=cfg["seed"]), tgt_train.y, tgt_train.num_classes)
        te = TensorData(corrupt(tgt_test.x, kind, sev, seed=cfg["seed"] + 1), tgt_test.y, tgt_test.num_classes)
        return evaluate_transferred(transfer(reps[rep], "lp", tr, cfg), te, cfg)

    ckeys = [("corrupt", r, k, s) for r in cc["representations"] for k in cc["kinds"] for s in cc["severities"]]
    with timings("corruptions"):
        cres = run_cells(ckeys, corruption_cell, store, progress=progress, desc="corruptions")

    lemma_rows, t2_rows, method_rows, t1_rows = [], [], [], []
    for key in keys:
        r, m = key[1], key[2]
        v = res[key]
        li, l2 = v["lemma1_inf"], v["lemma1_2"]
        lemma_rows.append([r, m, li["clean_loss"], li["adv_loss"], li["diff_loss"], li["w_norm"], li["lhs"],
                           l2["w_norm"], l2["lhs"], li["as_score"], li["rhs"], li["held"] and l2["held"],
                           li["tight_lhs"], li["tight_rhs"]])
        t2 = v["theorem2"]
        t2o = v.get("theorem2_max", v.get("theorem2_as", {}))
        t2_rows.append([r, m, t2["clean_accuracy"], t2["robust_accuracy"], t2["prop_fulfilled"],
                        t2["robust_among_fulfilled"], t2["fulfilled_but_not_robust"], t2o.get("prop_fulfilled"),
                        t2o.get("robust_among_fulfilled")])
        method_rows.append([r, m, v["accuracy"], v["robust_accuracy"], v["as_score"]])
        t1 = v["theorem1"]
        t1_rows.append([r, m, t1["observed_gap"], t1["lipschitz_term"], t1["hoeffding_term"], t1["bound"], t1["B"]])
    calib_rows = []
    for r in cfg["representations"]:
        lp = res.get(("transfer", r, "lp"))
        rel = None
        if lp is not None and lp["lemma1_inf"]["clean_loss"] > 0:
            rel = (lp["lemma1_inf"]["adv_loss"] - lp["lemma1_inf"]["clean_loss"]) / lp["lemma1_inf"]["clean_loss"]
        calib_rows.append([r, rep_metrics[("rep", r)]["as_source"], rep_metrics[("rep", r)]["as_target"], rel])
    corr_rows = []
    for key in ckeys:
        v = cres[key]
        li = v["lemma1_inf"]
        corr_rows.append([key[1], key[2], key[3], v["accuracy"], v["robust_accuracy"], li["clean_loss"], li["adv_loss"],
                          li["diff_loss"], li["w_norm"], li["lhs"], v["as_score"], li["held"]])

    out_dir.mkdir(parents=True, exist_ok=True)
    lemma_cols = ["representation", "method", "CE", "robust CE", "diff CE", "max_j ||w_j||", "LHS q=inf",
                  "||W||_2", "LHS q=2", "AS score", "RHS", "held (both q)", "tight LHS", "tight RHS"]
    corr_cols = ["representation", "corruption", "severity", "acc", "robust acc", "CE", "robust CE", "diff CE",
                 "max_j ||w_j||", "LHS q=inf", "AS score", "held"]
    for name, cols, rows in (("lemma1", lemma_cols, lemma_rows), ("corruptions", corr_cols, corr_rows)):
        with open(out_dir / f"robustness_transfer_{name}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            w.writerows(rows)
    labels = [f"{r[0]}/{r[1]}" for r in method_rows]
    figures = [
        {"type": "bars", "values": [r[4] for r in method_rows], "labels": labels,
         "title": "AS score of the transferred representation", "ylabel": "AS"},
        {"type": "bars", "values": [r[3] for r in method_rows], "labels": labels,
         "title": f"robust accuracy (PGD-{cfg['attack_steps']}, {cfg['norm']} eps={cfg['eps']})",
         "ylabel": "robust accuracy"},
        {"type": "scatter", "x": [r[10] for r in lemma_rows], "y": [r[6] for r in lemma_rows], "labels": labels,
         "title": "Lemma 1: LHS (q=inf) vs RHS", "xlabel": "RHS (AS estimate)", "ylabel": "LHS", "fit": False},
    ]
    for kind in cc["kinds"]:
        series = {}
        for rep in cc["representations"]:
            series[f"AS {rep}"] = [cres[("corrupt", rep, kind, s)]["as_score"] for s in cc["severities"]]
        figures.append({"type": "curves", "x": list(cc["severities"]), "series": series,
                        "title": f"AS score vs {kind} severity (LP)", "xlabel": "severity", "ylabel": "AS"})
    all_held = all(r[11] for r in lemma_rows) and all(r[11] for r in corr_rows)
    summary = {"lemma1_held_everywhere": all_held,
               "fulfilled_but_not_robust": sum(res[k]["theorem2"]["fulfilled_but_not_robust"] for k in keys)}
    for row in method_rows:
        summary[f"robust_acc_{row[0]}_{row[1]}"] = row[3]
        summary[f"as_{row[0]}_{row[1]}"] = row[4]
    tables = [
        {"title": "AS score before transfer (Tab. 4 analogue) and relative CE increase after LP",
         "columns": ["representation", "AS on pretraining data", "AS on downstream data", "(robust CE - CE)/CE LP"],
         "rows": calib_rows},
        {"title": "LP / FT / LP-FT: accuracy, robust accuracy, AS (Tab. 5 analogue)",
         "columns": ["representation", "method", "acc", "robust acc", "AS"], "rows": method_rows},
        {"title": "Lemma 1 (Tab. 1 / Tab. 9 analogue)", "columns": lemma_cols, "rows": lemma_rows},
        {"title": f"Theorem 1: observed gap vs bound (q=inf, rho={cfg['rho']}, B = max robust CE, indicative)",
         "columns": ["representation", "method", "observed gap", "L ||W|| AS", "Hoeffding", "bound", "B"],
         "rows": t1_rows},
        {"title": f"Theorem 2 criterion (Tab. 3 analogue), sensitivity = {cfg['sensitivity']} "
                  f"(AS: lower bound by representation PGD-{cfg['rep_attack']['steps']}, up to "
                  f"{cfg['rep_attack']['restarts']} restarts); last two columns: the other rule",
         "columns": ["representation", "method", "clean acc", "robust acc", "prop. fulfilled",
                     "robust among fulfilled", "fulfilled but not robust",
                     "prop. fulfilled (other)", "robust among fulfilled (other)"],
         "rows": t2_rows},
        {"title": "corruptions (LP on corrupted downstream data; Tabs. 12/13 analogue)", "columns": corr_cols,
         "rows": corr_rows},
    ]
    data = {"representations": {k[1]: v for k, v in rep_metrics.items()},
            "transfer": {f"{k[1]}/{k[2]}": v for k, v in res.items()},
            "corruptions": {f"{k[1]}/{k[2]}/{k[3]}": v for k, v in cres.items()}}
    result = make_result("robustness-transfer", cfg, data, timings=timings, seeds=[cfg["seed"]], summary=summary,
                         figures=figures, tables=tables,
                         notes=[f"seed 004 (Nern et al., NeurIPS 2023) on {cfg['dataset']['name']}: pretraining on "
                                f"classes {cfg['source_classes']}, downstream {cfg['target_classes']}; AS values are "
                                "lower bounds (representation attack: "
                                f"{next(iter(rep_metrics.values()))['as_attack']})"])
    publish(result, out_dir, title="robustness-transfer (seed 004)")
    return result


add_arguments, main = experiment_cli("robustness-transfer", run, DEFAULTS, QUICK, presets=DATASET_PRESETS)


__all__ = ["DEFAULTS", "QUICK", "DATASET_PRESETS", "REPRESENTATIONS", "METHODS", "representation", "transfer", "evaluate_transferred",
           "run", "add_arguments", "main"]
