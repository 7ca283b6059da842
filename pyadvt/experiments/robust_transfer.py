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
    >>> robust_transfer.QUICK["sources"]  # the quick preset's four kinds of source
    ['natural', 'at_l2', 'at_l2_pgd1', 'gaussian_l2']
    >>> result = robust_transfer.run(robust_transfer.QUICK, out_dir="/tmp/rt", progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from pyadvt.data import TensorData
from pyadvt.experiments._cli import experiment_cli
from pyadvt.experiments._data import experiment_data, split_transfer_defaults
from pyadvt.metrics.robust_accuracy import robust_accuracy
from pyadvt.report import Timings, make_result, publish
from pyadvt.report.csv_tables import write_csv
from pyadvt.report.robust_transfer_report import influence_summary, report_parts
from pyadvt.train import evaluate, training_recipe
from pyadvt.train.robust_sources import SOURCE_KINDS, robust_source_spec, source_recipe
from pyadvt.train.zoo import ModelSpec, data_digest, train_or_load
from pyadvt.transfer.finetune import finetune
from pyadvt.transfer.influence import head_influence, influence_match_rate
from pyadvt.transfer.sweep import balanced_subset, subset_sweep
from pyadvt.transfer.target_transforms import low_pass, low_resolution
from pyadvt.utils.config import merge_config, resolve_config
from pyadvt.utils.modes import evaluating
from pyadvt.utils.sweep import CellStore, config_digest, run_cells

DEFAULTS: dict = {
    **split_transfer_defaults(),  # seed, dataset, model, source_classes 0-4, target_classes 5-9
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
# units: L-inf 0.1 as on digits, L2 1.5, the usual Fashion-MNIST L2 budget — the per-pixel scaling of
# digits' 1.0, x sqrt(784 / 64) = 3.5, left the L2-trained LeNet at chance accuracy, 0.20 on 5 classes),
# "budget": 3 sources, 2000-image source set, fewer sizes, 5 fine-tuning seeds (about 20 min on 2
# loaded CPU cores)
_MNIST_LIKE = {
    "scale": {"model": {"arch": "lenet", "channels": []}, "eps_l2": 1.5, "gaussian_std": 1.5,
              "dataset": {"train_size": 2000, "test_size": 500}},
    "budget": {"sources": ["natural", "at_l2", "at_linf"], "at_steps": 5, "source_train": {"epochs": 10},
               "target": {"sizes": [10, 50, 250], "seeds": [0, 1, 2, 3, 4], "blocks": ["head", 1], "epochs": 15},
               "shift": {"seeds": [0, 1, 2]}, "influence": {"size": 100, "blocks": ["head"]}},
}
DATASET_PRESETS: dict = {"fashion-mnist": _MNIST_LIKE, "mnist": _MNIST_LIKE, "kmnist": _MNIST_LIKE}


class Source(NamedTuple):
    """A trained source: the model, its clean / robust accuracy on the source test set, and ``key``
    (the digest of its :class:`~pyadvt.train.zoo.ModelSpec` and training data, part of every cell key
    computed from it)."""

    model: torch.nn.Module
    metrics: dict
    key: str


def source_loss(kind: str, eps_l2: float, eps_linf: float, steps: int, seed: int = 0, gaussian_std: float = 1.0):
    """``(loss_fn, batch_transform)`` for :func:`pyadvt.train.fit` of a source ``kind`` (docs/theory.md §4):
    ``at_*`` PGD(k) with step ``2.5 eps / k`` (seed 002), ``*_pgd1`` one step of ``2 eps`` from
    ``x`` (seed 002 app. A.10), ``gaussian_l2`` N(0, std^2) noise rescaled into the L2 ball
    (:func:`pyadvt.train.robust_sources.source_recipe`)."""
    recipe, kwargs = source_recipe(kind, eps_l2=eps_l2, eps_linf=eps_linf, steps=steps, gaussian_std=gaussian_std)
    fit_kwargs = training_recipe(recipe, seed=seed, **kwargs)
    return fit_kwargs.get("loss_fn"), fit_kwargs.get("batch_transform")


def source_spec(kind: str, cfg: dict) -> ModelSpec:
    """The :class:`~pyadvt.train.zoo.ModelSpec` of a ``kind`` source under ``cfg`` (``model``, ``eps_l2``,
    ``eps_linf``, ``at_steps``, ``gaussian_std``, ``source_train``, ``seed``)."""
    m = cfg["model"]
    return robust_source_spec(kind, arch=m["arch"], model_kwargs={"channels": list(m["channels"])} if m.get("channels")
                              else {}, eps_l2=cfg["eps_l2"], eps_linf=cfg["eps_linf"], steps=cfg["at_steps"],
                              gaussian_std=cfg["gaussian_std"], fit_kwargs=dict(cfg["source_train"]), seed=cfg["seed"])


def train_source(kind: str, train: TensorData, cfg: dict, progress: bool = False,
                 store: CellStore | None = None) -> torch.nn.Module:
    """Train (or load from ``store``) ``cfg["model"]`` on ``train`` as a ``kind`` source (:func:`source_spec`)."""
    return train_or_load(source_spec(kind, cfg), train, store, progress=progress)[0]


def _check(cfg: dict) -> None:
    for k in cfg["sources"]:
        if k not in SOURCE_KINDS:
            raise ValueError(f"unknown source kind {k!r} in 'sources'; choose from {SOURCE_KINDS}")
    if "natural" not in cfg["sources"]:
        raise ValueError("'sources' must include 'natural' (the baseline of every delta)")


def sources(cfg: dict, src_train: TensorData, src_test: TensorData, store: CellStore, progress: bool) -> dict:
    """Train (or load from ``store``) every configured source and measure it; ``{kind: Source}``."""
    out = {}
    for kind in cfg["sources"]:
        spec = source_spec(kind, cfg)
        model = train_or_load(spec, src_train, store, progress=progress)[0]
        sid = config_digest(list(spec.key(src_train)))
        key = ("source", kind, config_digest(sid, cfg["eps_linf"], cfg["eps_l2"], data_digest(src_test)))

        def measure(_key, model=model):
            return {"clean_accuracy": evaluate(model, src_test)["accuracy"],
                    "robust_accuracy_linf": robust_accuracy(model, src_test, cfg["eps_linf"], "linf"),
                    "robust_accuracy_l2": robust_accuracy(model, src_test, cfg["eps_l2"], "l2")}

        out[kind] = Source(model, run_cells([key], measure, store, progress=False)[key], sid)
    return out


def _blocks(b):
    return b if b in ("head", "all") else int(b)


def _tune(model, train: TensorData, test: TensorData, blocks, tc: dict, seed: int):
    return finetune(model, train, blocks=_blocks(blocks), num_classes=train.num_classes, epochs=tc["epochs"],
                    lr=tc["lr"], batch_size=tc["batch_size"], seed=seed, eval_data=test)


def _target_id(tc: dict, tgt_train: TensorData, tgt_test: TensorData) -> str:
    """Digest of what every fine-tuning cell depends on besides its source, subset and seed."""
    return config_digest({k: tc[k] for k in ("epochs", "lr", "batch_size")}, data_digest(tgt_train),
                         data_digest(tgt_test))


def finetune_sweep(cfg: dict, srcs: dict, tgt_train: TensorData, tgt_test: TensorData, store: CellStore,
                   progress: bool) -> list[dict]:
    """Fine-tune every source x ``blocks`` x subset size x seed (Figs. 2/4/8); rows
    ``{"source", "blocks", "size", "seed", "accuracy", "curve"}`` in sweep order."""
    tc = cfg["target"]
    sizes = [None if s == "all" else int(s) for s in tc["sizes"]]
    tid = _target_id(tc, tgt_train, tgt_test)
    rows = []
    for name, src in srcs.items():
        for blocks in tc["blocks"]:
            def cell(sub, seed, model=src.model, blocks=blocks):
                res = _tune(model, sub, tgt_test, blocks, tc, seed)
                return {"accuracy": res.final["eval_accuracy"], "curve": res.curve}

            key = ("ft", name, str(blocks), config_digest(src.key, tid))
            for r in subset_sweep(cell, tgt_train, sizes, tc["seeds"], store=store, key=key, progress=progress,
                                  desc=f"fine-tune {name}/{blocks}"):
                rows.append(dict(r, source=name, blocks=str(blocks)))
    return rows


def shift_cells(cfg: dict, srcs: dict, tgt_train: TensorData, tgt_test: TensorData, store: CellStore,
                progress: bool) -> dict:
    """Fine-tune on low-resolution / low-pass targets (sec. 5, Table 2); ``{(source, kind, seed): accuracy}``."""
    sh, tc = cfg["shift"], cfg["target"]
    transforms = {"none": (lambda x: x, None), "low_res": (lambda x: low_resolution(x, sh["lowres_size"]),
                                                         sh["lowres_size"]),
                  "low_pass": (lambda x: low_pass(x, sh["lowpass_fraction"]), sh["lowpass_fraction"])}
    size = None if sh["size"] == "all" else int(sh["size"])
    base = config_digest(_target_id(tc, tgt_train, tgt_test), sh["blocks"], sh["size"])
    cells = {(n, k, s): ("shift", n, k, s, config_digest(srcs[n].key, base, transforms[k][1]))
             for n in srcs for k in transforms for s in sh["seeds"]}

    def cell(key):
        _, name, kind, seed, _ = key
        f = transforms[kind][0]
        sub = balanced_subset(tgt_train, size, seed)
        tr = TensorData(f(sub.x), sub.y, sub.num_classes)
        te = TensorData(f(tgt_test.x), tgt_test.y, tgt_test.num_classes)
        return {"accuracy": _tune(srcs[name].model, tr, te, sh["blocks"], tc, seed).final["eval_accuracy"]}

    res = run_cells(list(cells.values()), cell, store, progress=progress, desc="shifted targets")
    return {c: res[key]["accuracy"] for c, key in cells.items()}


def influence_cells(cfg: dict, srcs: dict, tgt_train: TensorData, tgt_test: TensorData, store: CellStore,
                    progress: bool) -> dict:
    """Head influence after fine-tuning (sec. 6, app. A.9, Fig. 7b);
    ``{("influence", source, blocks, seed): {"helpful"|"harmful": {str(k): top-k label match}}}``."""
    inf, tc = cfg["influence"], cfg["target"]
    size = None if inf["size"] == "all" else int(inf["size"])
    base = config_digest(_target_id(tc, tgt_train, tgt_test),
                         {k: inf[k] for k in ("size", "damping", "solver", "pinv_cutoff", "ks")})
    cells = {("influence", n, str(b), int(s)): ("influence", n, str(b), int(s), config_digest(srcs[n].key, base))
             for n in inf["sources"] if n in srcs for b in inf["blocks"] for s in inf["seeds"]}

    def cell(key):
        _, name, blocks, seed, _ = key
        sub = balanced_subset(tgt_train, size, seed)
        model = _tune(srcs[name].model, sub, tgt_test, blocks, tc, seed).model
        with evaluating(model), torch.no_grad():
            phi_tr, phi_te = model.features(sub.x), model.features(tgt_test.x)
        scores = head_influence(model.head, phi_tr, sub.y, phi_te, tgt_test.y, damping=float(inf["damping"]),
                                solver=inf["solver"], pinv_cutoff=float(inf["pinv_cutoff"]))
        return {by: {str(k): v for k, v in influence_match_rate(scores, sub.y, tgt_test.y, ks=inf["ks"], by=by).items()}
                for by in ("helpful", "harmful")}

    res = run_cells(list(cells.values()), cell, store, progress=progress, desc="influence")
    return {c: res[key] for c, key in cells.items()}


def run(config: dict | None = None, out_dir: str | Path = "results/robust-transfer", progress: bool = True) -> dict:
    """Run the experiment (``config`` merged over :data:`DEFAULTS`); write ``result.json``, CSV and report.

    Every cell (source model, fine-tuning run, shifted-target run, influence run) is keyed by a digest
    of the settings and data it depends on, so a rerun with a changed setting recomputes only the
    cells that setting affects.
    """
    cfg = resolve_config(DEFAULTS, config)
    _check(cfg)
    out_dir = Path(out_dir)
    store = CellStore(out_dir / "cells")
    timings = Timings()
    src_train, src_test = experiment_data(cfg["dataset"], seed=cfg["seed"], classes=cfg["source_classes"])
    tgt = experiment_data(cfg["dataset"], seed=cfg["seed"], classes=cfg["target_classes"])
    with timings("sources"):
        srcs = sources(cfg, src_train, src_test, store, progress)
    with timings("fine-tune sweep"):
        rows = finetune_sweep(cfg, srcs, *tgt, store, progress)
    with timings("low-res / low-pass"):
        shift = shift_cells(cfg, srcs, *tgt, store, progress)
    with timings("influence"):
        influence = influence_cells(cfg, srcs, *tgt, store, progress)
    parts = report_parts(cfg, {n: s.metrics for n, s in srcs.items()}, rows, shift, influence)
    write_csv(out_dir / "robust_transfer_sweep.csv", ["source", "blocks", "size", "seed", "accuracy"],
              ([r["source"], r["blocks"], r["size"], r["seed"], r["accuracy"]] for r in rows))
    result = make_result("robust-transfer", cfg, parts["data"], timings=timings, seeds=cfg["target"]["seeds"],
                         summary=parts["summary"], figures=parts["figures"], tables=parts["tables"],
                         notes=[f"seed 002 (Utrera et al., ICLR 2021) on {cfg['dataset']['name']}: sources on classes "
                                f"{cfg['source_classes']}, targets {cfg['target_classes']}"])
    publish(result, out_dir, title="robust-transfer (seed 002)")
    return result


add_arguments, main = experiment_cli("robust-transfer", run, DEFAULTS, QUICK, presets=DATASET_PRESETS)


__all__ = ["DEFAULTS", "QUICK", "DATASET_PRESETS", "SOURCE_KINDS", "Source", "finetune_sweep", "influence_cells",
           "influence_summary", "robust_accuracy", "run", "shift_cells", "source_loss", "source_spec", "sources",
           "train_source", "add_arguments", "main"]
