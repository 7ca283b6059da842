"""robust-transfer: do adversarially-trained sources transfer better? (seed 002 on digits)

Sources are trained on one half of the digit classes (0-4) — naturally, adversarially (L2 / L-inf
PGD(k) and PGD(1), docs/theory.md §4) or with Gaussian noise in the L2 ball — and fine-tuned on the other half
(5-9, relabelled) with class-balanced target subsets of increasing size, several seeds, and
``blocks`` in {head, last 1, all} (seed 002 sec. 4, Figs. 2/4/8). Reported: accuracy per cell, the
robust-minus-natural accuracy delta with 95% t-intervals (paired by seed = same subset), per-epoch
accuracy curves (Fig. 3), low-resolution and low-pass targets (sec. 5, Table 2) and the head
influence top-k label match rate (sec. 6, Fig. 7b). Every finished cell (source model, fine-tuning
run) is stored under ``out_dir/cells`` and reused on rerun.

Example (Python):
    >>> from pyadvt.experiments import robust_transfer
    >>> result = robust_transfer.run(robust_transfer.QUICK, out_dir="/tmp/rt", progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from pyadvt.attacks import PGD
from pyadvt.data import TensorData
from pyadvt.experiments._data import DIGITS, experiment_data
from pyadvt.models import build
from pyadvt.report import Timings, make_result, publish
from pyadvt.train import evaluate, fit, training_recipe
from pyadvt.transfer.finetune import finetune
from pyadvt.transfer.influence import head_influence, influence_match_rate
from pyadvt.transfer.sweep import balanced_subset, mean_ci, paired_delta, subset_sweep, summarize
from pyadvt.transfer.target_transforms import low_pass, low_resolution
from pyadvt.experiments._cli import experiment_cli
from pyadvt.utils.config import merge_config, resolve_config
from pyadvt.utils.modes import evaluating
from pyadvt.utils.sweep import CellStore, run_cells

SOURCE_KINDS = ("natural", "at_l2", "at_linf", "at_l2_pgd1", "at_linf_pgd1", "gaussian_l2")

DEFAULTS: dict = {
    "seed": 0,
    "dataset": dict(DIGITS),
    "model": {"arch": "cnn", "channels": [16, 32, 64]},
    "source_classes": [0, 1, 2, 3, 4],
    "target_classes": [5, 6, 7, 8, 9],
    "eps_l2": 1.0,
    "eps_linf": 0.1,
    "at_steps": 10,
    "gaussian_std": 1.0,
    "sources": ["natural", "at_l2", "at_linf", "at_l2_pgd1", "at_linf_pgd1", "gaussian_l2"],
    "source_train": {"epochs": 20, "lr": 0.05, "batch_size": 64},
    "target": {"sizes": [10, 25, 50, 100, 250, "all"], "seeds": [0, 1, 2], "blocks": ["head", 1, "all"],
               "epochs": 30, "lr": 0.05, "batch_size": 32},
    "curve": {"size": 100, "blocks": 1},
    "shift": {"lowres_size": 4, "lowpass_fraction": 0.5, "blocks": "head", "size": 100, "seeds": [0, 1, 2]},
    # the paper's influence (app. A.9): head parameters, pseudo-inverse of the Hessian keeping singular
    # values > 1e-20, no damping; "helpful" and "harmful" top-k label match over >= 5 seeds, after
    # fine-tuning the head only and the last block too (the influence is over the head's parameters)
    "influence": {"sources": ["natural", "at_l2"], "blocks": ["head", 1], "size": 250, "damping": 0.0,
                  "solver": "pinv", "pinv_cutoff": 1e-20, "ks": [1, 5, 10], "seeds": [0, 1, 2, 3, 4]},
}

QUICK: dict = merge_config(DEFAULTS, {
    "sources": ["natural", "at_l2", "at_l2_pgd1", "gaussian_l2"],
    "at_steps": 3,
    "source_train": {"epochs": 3},
    "target": {"sizes": [10, 50], "seeds": [0, 1], "blocks": ["head", 1], "epochs": 3},
    "curve": {"size": 50},
    "shift": {"seeds": [0], "size": 50},
    "influence": {"size": 50, "seeds": [0, 1], "blocks": ["head"]},
})

# --dataset presets: "scale" for 28x28 images (LeNet-5, the classic MNIST CNN; eps in [0, 1] pixel
# units: L-inf 0.1 as on digits, L2 x 3.5 = sqrt(784 / 64), the same per-pixel change on 12.25x the
# pixels), "budget": 3 sources, 2000-image source set, fewer sizes (about 20 min on 2 loaded CPU cores)
_MNIST_LIKE = {
    "scale": {"model": {"arch": "lenet", "channels": []}, "eps_l2": 3.5, "gaussian_std": 3.5,
              "dataset": {"train_size": 2000, "test_size": 500}},
    "budget": {"sources": ["natural", "at_l2", "at_linf"], "at_steps": 5, "source_train": {"epochs": 10},
               "target": {"sizes": [10, 50, 250], "blocks": ["head", 1], "epochs": 15},
               "shift": {"seeds": [0, 1, 2]}, "influence": {"size": 100, "blocks": ["head"]}},
}
DATASET_PRESETS: dict = {"fashion-mnist": _MNIST_LIKE, "mnist": _MNIST_LIKE, "kmnist": _MNIST_LIKE}


def source_loss(kind: str, eps_l2: float, eps_linf: float, steps: int, seed: int = 0, gaussian_std: float = 1.0):
    """``(loss_fn, batch_transform)`` for :func:`pyadvt.train.fit` of a source ``kind`` (docs/theory.md §4):
    ``at_*`` PGD(k) with step ``2.5 eps / k`` (seed 002), ``*_pgd1`` one step of ``2 eps`` from
    ``x`` (seed 002 app. A.10), ``gaussian_l2`` N(0, std^2) noise rescaled into the L2 ball."""
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source kind {kind!r}; choose from {SOURCE_KINDS}")
    norm = "linf" if "linf" in kind else "l2"
    eps = eps_l2 if norm == "l2" else eps_linf
    if kind == "natural":
        recipe = training_recipe("st")
    elif kind == "gaussian_l2":
        recipe = training_recipe("gaussian", strength=eps_l2, gaussian_std=gaussian_std, norm="l2")
    elif kind.endswith("pgd1"):
        recipe = training_recipe("at", strength=eps, steps=1, alpha=2 * eps, norm=norm, random_start=False, seed=seed)
    else:
        recipe = training_recipe("at", strength=eps, steps=steps, alpha=2.5 * eps / steps, norm=norm, seed=seed)
    return recipe.get("loss_fn"), recipe.get("batch_transform")


def train_source(kind: str, train: TensorData, cfg: dict, progress: bool = False) -> torch.nn.Module:
    """Build ``cfg["model"]`` and train it on ``train`` as a ``kind`` source (see :func:`source_loss`)."""
    model = _build(cfg, train.num_classes, train.x.shape[1:])
    loss_fn, transform = source_loss(kind, cfg["eps_l2"], cfg["eps_linf"], cfg["at_steps"], cfg["seed"],
                                     cfg["gaussian_std"])
    st = cfg["source_train"]
    fit(model, train, epochs=st["epochs"], lr=st["lr"], batch_size=st["batch_size"], seed=cfg["seed"],
        loss_fn=loss_fn, batch_transform=transform, progress=progress)
    return model


def _build(cfg: dict, num_classes: int, in_shape=(1, 8, 8)) -> torch.nn.Module:
    torch.manual_seed(cfg["seed"])
    kw = {"channels": tuple(cfg["model"]["channels"])} if cfg["model"].get("channels") else {}
    return build(cfg["model"]["arch"], in_shape=tuple(in_shape), num_classes=num_classes, **kw)


def robust_accuracy(model: torch.nn.Module, data: TensorData, eps: float, norm: str, steps: int = 10,
                    seed: int = 0) -> float:
    """Accuracy under PGD(``steps``) with step ``2.5 eps / steps`` (docs/theory.md §1)."""
    atk = PGD(model, eps=eps, steps=steps, norm=norm, seed=seed)
    correct = 0
    for x, y in data.loader(256):
        x_adv = atk(x, y)
        with evaluating(model), torch.no_grad():
            correct += int((model(x_adv).argmax(1) == y).sum())
    return correct / len(data)


def sources(cfg: dict, src_train: TensorData, src_test: TensorData, store: CellStore, progress: bool) -> dict:
    """Train (or load from ``store``) every configured source; ``{kind: (model, metrics)}``."""

    def cell(key):
        model = train_source(key[1], src_train, cfg, progress)
        metrics = {"clean_accuracy": evaluate(model, src_test)["accuracy"],
                   "robust_accuracy_linf": robust_accuracy(model, src_test, cfg["eps_linf"], "linf"),
                   "robust_accuracy_l2": robust_accuracy(model, src_test, cfg["eps_l2"], "l2")}
        return store.put(key, metrics, checkpoint=model.state_dict())

    keys = [("source", k) for k in cfg["sources"]]
    results = run_cells(keys, cell, store, progress=progress, desc="sources")
    out = {}
    for key in keys:
        model = _build(cfg, src_train.num_classes, src_train.x.shape[1:])
        model.load_state_dict(store.load_checkpoint(key))
        out[key[1]] = (model, results[key])
    return out


def _blocks(b):
    return b if b in ("head", "all") else int(b)


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
                    def vals(n):
                        return [cells[("influence", n, str(b), int(s))][by][str(k)] for s in inf_cfg["seeds"]
                                if ("influence", n, str(b), int(s)) in cells]
                    own = vals(name)
                    if not own:
                        continue
                    ci = mean_ci(own)
                    d = {"mean": None, "lo": None, "hi": None}
                    if name != "natural" and "natural" in inf_cfg["sources"]:
                        base = vals("natural")
                        if len(base) == len(own):
                            d = mean_ci([a - c for a, c in zip(own, base)])
                    rows.append([name, str(b), by, int(k), ci["mean"], ci["lo"], ci["hi"], d["mean"], d["lo"], d["hi"],
                                 ci["n"]])
    return rows


def run(config: dict | None = None, out_dir: str | Path = "results/robust-transfer", progress: bool = True) -> dict:
    """Run the experiment (``config`` merged over :data:`DEFAULTS`); write ``result.json``, CSV and report."""
    cfg = resolve_config(DEFAULTS, config)
    for k in cfg["sources"]:
        if k not in SOURCE_KINDS:
            raise ValueError(f"unknown source kind {k!r} in 'sources'; choose from {SOURCE_KINDS}")
    if "natural" not in cfg["sources"]:
        raise ValueError("'sources' must include 'natural' (the baseline of every delta)")
    out_dir = Path(out_dir)
    store = CellStore(out_dir / "cells", meta=cfg)
    timings = Timings()
    src_train, src_test = experiment_data(cfg["dataset"], seed=cfg["seed"], classes=cfg["source_classes"])
    tgt_train, tgt_test = experiment_data(cfg["dataset"], seed=cfg["seed"], classes=cfg["target_classes"])
    tc = cfg["target"]
    with timings("sources"):
        srcs = sources(cfg, src_train, src_test, store, progress)

    def tune(model, train, test, blocks, seed):
        return finetune(model, train, blocks=_blocks(blocks), num_classes=train.num_classes, epochs=tc["epochs"],
                        lr=tc["lr"], batch_size=tc["batch_size"], seed=seed, eval_data=test)

    rows = []
    with timings("fine-tune sweep"):
        for name, (model, _) in srcs.items():
            for blocks in tc["blocks"]:
                def cell(sub, seed, model=model, blocks=blocks):
                    res = tune(model, sub, tgt_test, blocks, seed)
                    return {"accuracy": res.final["eval_accuracy"], "curve": res.curve}

                sizes = [None if s == "all" else int(s) for s in tc["sizes"]]
                for r in subset_sweep(cell, tgt_train, sizes, tc["seeds"], store=store, key=("ft", name, str(blocks)),
                                      progress=progress, desc=f"fine-tune {name}/{blocks}"):
                    rows.append(dict(r, source=name, blocks=str(blocks)))

    def select(source, blocks):
        return [r for r in rows if r["source"] == source and r["blocks"] == str(blocks)]

    sizes_seen = sorted({r["size"] for r in rows})
    table_acc, table_delta, figures = [], [], []
    for blocks in tc["blocks"]:
        series, lo, hi = {}, {}, {}
        for name in srcs:
            summ = summarize(select(name, blocks), "accuracy")
            for s in summ:
                table_acc.append([name, str(blocks), s["size"], s["mean"], s["lo"], s["hi"], s["n"]])
            if name == "natural":
                continue
            delta = paired_delta(select(name, blocks), select("natural", blocks), "accuracy")
            for d in delta:
                table_delta.append([name, str(blocks), d["size"], d["mean"], d["lo"], d["hi"], d["n"]])
            series[name] = [d["mean"] for d in delta]
            lo[name] = [d["lo"] if d["lo"] is not None else d["mean"] for d in delta]
            hi[name] = [d["hi"] if d["hi"] is not None else d["mean"] for d in delta]
        figures.append({"type": "curves", "x": sizes_seen, "series": series, "lower": lo, "upper": hi, "logx": True,
                        "title": f"accuracy delta vs natural (blocks={blocks})", "xlabel": "target samples",
                        "ylabel": "robust - natural accuracy"})
    curve_rows = [r for r in rows if r["blocks"] == str(cfg["curve"]["blocks"])
                  and r["size"] == min(sizes_seen, key=lambda s: abs(s - cfg["curve"]["size"]))]
    curve_series = {name: [r["curve"] for r in curve_rows if r["source"] == name] for name in srcs}
    curve_series = {k: v for k, v in curve_series.items() if v}
    if curve_series:
        n_ep = len(next(iter(curve_series.values()))[0])
        figures.append({"type": "curves", "x": list(range(1, n_ep + 1)), "series": curve_series,
                        "title": f"test accuracy per fine-tuning epoch (n={curve_rows[0]['size']}, "
                                 f"blocks={cfg['curve']['blocks']})", "xlabel": "epoch", "ylabel": "accuracy"})

    sh = cfg["shift"]
    transforms = {"none": lambda x: x, "low_res": lambda x: low_resolution(x, sh["lowres_size"]),
                  "low_pass": lambda x: low_pass(x, sh["lowpass_fraction"])}

    def shift_cell(key):
        _, name, kind, seed = key
        f = transforms[kind]
        sub = balanced_subset(tgt_train, None if sh["size"] == "all" else int(sh["size"]), seed)
        tr = TensorData(f(sub.x), sub.y, sub.num_classes)
        te = TensorData(f(tgt_test.x), tgt_test.y, tgt_test.num_classes)
        return {"accuracy": tune(srcs[name][0], tr, te, sh["blocks"], seed).final["eval_accuracy"]}

    shift_keys = [("shift", n, k, s) for n in srcs for k in transforms for s in sh["seeds"]]
    with timings("low-res / low-pass"):
        shift = run_cells(shift_keys, shift_cell, store, progress=progress, desc="shifted targets")
    shift_table = []
    for name in srcs:
        row = [name]
        for kind in transforms:
            ci = mean_ci([shift[(("shift", name, kind, s))]["accuracy"] for s in sh["seeds"]])
            row += [ci["mean"], ci["half_width"]]
        shift_table.append(row)
    figures.append({"type": "bars", "values": [r[3] for r in shift_table], "labels": [r[0] for r in shift_table],
                    "title": f"low-res ({sh['lowres_size']}x{sh['lowres_size']}) target accuracy (n={sh['size']})",
                    "ylabel": "accuracy"})
    figures.append({"type": "bars", "values": [r[5] for r in shift_table], "labels": [r[0] for r in shift_table],
                    "title": f"low-pass (top {sh['lowpass_fraction']:.0%} frequencies zeroed) accuracy "
                             f"(n={sh['size']})",
                    "ylabel": "accuracy"})

    inf_cfg = cfg["influence"]

    def influence_cell(key):
        _, name, blocks, seed = key
        sub = balanced_subset(tgt_train, None if inf_cfg["size"] == "all" else int(inf_cfg["size"]), seed)
        model = tune(srcs[name][0], sub, tgt_test, blocks, seed).model
        with evaluating(model), torch.no_grad():
            phi_tr, phi_te = model.features(sub.x), model.features(tgt_test.x)
        inf = head_influence(model.head, phi_tr, sub.y, phi_te, tgt_test.y, damping=float(inf_cfg["damping"]),
                             solver=inf_cfg["solver"], pinv_cutoff=float(inf_cfg["pinv_cutoff"]))
        return {by: {str(k): v for k, v in influence_match_rate(inf, sub.y, tgt_test.y, inf_cfg["ks"], by=by).items()}
                for by in ("helpful", "harmful")}

    inf_keys = [("influence", n, str(b), int(s)) for n in inf_cfg["sources"] if n in srcs
                for b in inf_cfg["blocks"] for s in inf_cfg["seeds"]]
    with timings("influence"):
        influence = run_cells(inf_keys, influence_cell, store, progress=progress, desc="influence")
    influence_table = influence_summary(influence, inf_cfg)

    src_table = [[n, m["clean_accuracy"], m["robust_accuracy_linf"], m["robust_accuracy_l2"]]
                 for n, (_, m) in srcs.items()]
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "robust_transfer_sweep.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "blocks", "size", "seed", "accuracy"])
        for r in rows:
            w.writerow([r["source"], r["blocks"], r["size"], r["seed"], r["accuracy"]])
    smallest = min(sizes_seen)
    summary = {f"delta_{r[0]}_{r[1]}_n{r[2]}": r[3] for r in table_delta if r[2] == smallest}
    for r in influence_table:
        if r[3] == min(inf_cfg["ks"]):
            summary[f"influence_top{r[3]}_{r[2]}_{r[0]}_{r[1]}"] = r[4]
    data = {"sources": {n: m for n, (_, m) in srcs.items()}, "sweep": rows, "accuracy": table_acc,
            "delta": table_delta, "shift": shift_table, "influence": influence_table}
    tables = [
        {"title": "sources (trained on digits 0-4): clean and PGD-10 robust accuracy",
         "columns": ["source", "clean", f"robust Linf {cfg['eps_linf']}", f"robust L2 {cfg['eps_l2']}"],
         "rows": src_table},
        {"title": "target accuracy (digits 5-9) by source, fine-tuned blocks and subset size",
         "columns": ["source", "blocks", "n", "mean", "ci lo", "ci hi", "seeds"], "rows": table_acc},
        {"title": "accuracy delta vs natural (paired by seed, 95% t-interval)",
         "columns": ["source", "blocks", "n", "delta", "ci lo", "ci hi", "seeds"], "rows": table_delta},
        {"title": f"shifted targets (n={sh['size']}, blocks={sh['blocks']}): mean accuracy and CI half-width",
         "columns": ["source"] + [f"{k} {s}" for k in transforms for s in ("mean", "+-")], "rows": shift_table},
        {"title": f"head influence (n={inf_cfg['size']}, {inf_cfg['solver']}, damping {inf_cfg['damping']:g}): top-k "
                  f"label match, mean and 95% t-interval over {len(inf_cfg['seeds'])} seeds; delta = source - "
                  "natural paired by seed",
         "columns": ["source", "blocks", "by", "k", "match", "ci lo", "ci hi", "delta vs natural", "delta lo",
                     "delta hi", "seeds"], "rows": influence_table},
    ]
    result = make_result("robust-transfer", cfg, data, timings=timings, seeds=tc["seeds"], summary=summary,
                         figures=figures, tables=tables,
                         notes=[f"seed 002 (Utrera et al., ICLR 2021) on {cfg['dataset']['name']}: sources on classes "
                                f"{cfg['source_classes']}, targets {cfg['target_classes']}"])
    publish(result, out_dir, title="robust-transfer (seed 002)")
    return result


add_arguments, main = experiment_cli("robust-transfer", run, DEFAULTS, QUICK, presets=DATASET_PRESETS)


__all__ = ["DEFAULTS", "QUICK", "DATASET_PRESETS", "SOURCE_KINDS", "influence_summary", "source_loss", "train_source", "robust_accuracy", "run",
           "add_arguments", "main"]
