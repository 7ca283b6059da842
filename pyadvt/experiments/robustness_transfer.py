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

from pathlib import Path

import torch

from pyadvt.data import TensorData
from pyadvt.data.corruptions import corrupt
from pyadvt.experiments._cli import experiment_cli
from pyadvt.experiments._data import experiment_data, split_transfer_defaults
from pyadvt.metrics.robustness_transfer import as_score, evaluate_robustness_transfer
from pyadvt.report import Timings, make_result, publish
from pyadvt.report.csv_tables import write_csv
from pyadvt.report.robustness_transfer_report import report_parts
from pyadvt.train.robust_sources import robust_source_spec
from pyadvt.train.zoo import ModelSpec, data_digest, train_or_load
from pyadvt.transfer.finetune import finetune, lp_ft
from pyadvt.utils.config import merge_config, resolve_config
from pyadvt.utils.sweep import CellStore, config_digest, run_cells

REPRESENTATIONS = {"standard": "natural", "adversarial": "at_linf", "random": None}
METHODS = ("lp", "ft", "lp_ft")

DEFAULTS: dict = {
    **split_transfer_defaults(),  # seed, dataset, model, source_classes 0-4, target_classes 5-9
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


def _check(cfg: dict) -> None:
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


def representation_spec(kind: str, cfg: dict) -> ModelSpec:
    """The :class:`~pyadvt.train.zoo.ModelSpec` of representation ``kind``: ``standard`` = the natural
    source, ``adversarial`` = PGD AT in ``cfg['norm']`` with eps ``cfg['eps']``
    (:func:`pyadvt.train.robust_sources.robust_source_spec`); ``random`` = the standard spec, left untrained."""
    if kind not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {kind!r}; choose from {tuple(REPRESENTATIONS)}")
    source = "at_l2" if kind == "adversarial" and cfg["norm"] == "l2" else (REPRESENTATIONS[kind] or "natural")
    m = cfg["model"]
    return robust_source_spec(source, arch=m["arch"], model_kwargs={"channels": list(m["channels"])}
                              if m.get("channels") else {}, eps_l2=cfg["eps"], eps_linf=cfg["eps"],
                              steps=cfg["at_steps"], fit_kwargs=dict(cfg["source_train"]), seed=cfg["seed"])


def representation(kind: str, cfg: dict, src_train: TensorData, store: CellStore | None = None) -> torch.nn.Module:
    """A pretrained split model: ``standard`` / ``adversarial`` (AT with ``cfg['norm']``) / ``random``
    (untrained), trained (or loaded from ``store``) by :func:`pyadvt.train.zoo.train_or_load`."""
    spec = representation_spec(kind, cfg)
    if kind == "random":
        return spec.build(src_train)
    return train_or_load(spec, src_train, store)[0]


def _representation_id(kind: str, cfg: dict, src_train: TensorData) -> str:
    key = list(representation_spec(kind, cfg).key(src_train))
    return config_digest(key, "untrained" if kind == "random" else "trained")


def _evaluation_id(cfg: dict) -> dict:
    """The settings every evaluation cell depends on (attacks, sensitivity rule, Theorem 1's rho)."""
    return {k: cfg[k] for k in ("eps", "norm", "attack_steps", "rep_attack", "sensitivity", "rho", "seed")}


def transfer(model: torch.nn.Module, method: str, train: TensorData, cfg: dict) -> torch.nn.Module:
    """LP / FT / LP-FT (:mod:`pyadvt.transfer`) of a copy of ``model`` on ``train`` (seed 004 app. B.4
    settings, scaled down)."""
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
    t2 = _stored(rec.theorem2().summary())
    other = "max" if cfg["sensitivity"] == "as" else "as"
    s_other = torch.maximum(rec.rep_shift, rec.adv_shift) if other == "max" else rec.rep_shift
    asc = rec.as_score()
    return {"accuracy": t2["clean_accuracy"], "robust_accuracy": t2["robust_accuracy"],
            "as_score": asc.score, "as_bound": "lower", "as_attack": asc.attack, "theorem2": t2,
            f"theorem2_{other}": _stored(rec.theorem2(s_other).summary()),
            "theorem1": rec.theorem1(rho=cfg["rho"], q="inf"),
            "lemma1_inf": _stored(rec.lemma1("inf").summary()), "lemma1_2": _stored(rec.lemma1(2).summary())}


def _stored(summary: dict) -> dict:
    """A result's ``summary()`` with the keys cells have always stored: without the result protocol's
    ``n_undefined`` (added later), so that reused cells and new ones agree."""
    return {k: v for k, v in summary.items() if k != "n_undefined"}


def pretraining(cfg: dict, data: dict, store: CellStore, progress: bool) -> tuple[dict, dict]:
    """Every needed representation, and its AS score before transfer on pretraining and downstream
    test data (Tab. 4); ``({kind: model}, {kind: metrics})``."""
    ra = cfg["rep_attack"]
    kw = dict(norm=cfg["norm"], steps=int(ra["steps"]), restarts=int(ra["restarts"]), rtol=float(ra["rtol"]),
              seed=cfg["seed"])
    needed = list(dict.fromkeys(cfg["representations"] + cfg["corruptions"]["representations"]))
    reps, metrics = {}, {}
    for kind in needed:
        reps[kind] = model = representation(kind, cfg, data["src_train"], store)
        key = ("rep", kind, config_digest(data["rep_ids"][kind], _evaluation_id(cfg), data["ids"]))

        def measure(_key, model=model):
            a_src = as_score(model, data["src_test"].x, cfg["eps"], **kw)
            a_tgt = as_score(model, data["tgt_test"].x, cfg["eps"], **kw)
            return {"as_source": a_src.score, "as_target": a_tgt.score, "as_bound": "lower", "as_attack": a_src.attack}

        metrics[kind] = run_cells([key], measure, store, progress=False)[key]
    return reps, metrics


def _transfer_key(cfg: dict, data: dict, rep: str, method: str) -> tuple:
    return ("transfer", rep, method, config_digest(data["rep_ids"][rep], cfg["transfer"], _evaluation_id(cfg),
                                                   data["ids"]))


def _cell_fn(cfg: dict, reps: dict, data: dict):
    """Computes a ``("transfer", rep, method, _)`` cell (clean downstream data) or a
    ``("corrupt", rep, kind, severity, _)`` cell (LP on corrupted data, app. B.5)."""
    tgt_train, tgt_test = data["tgt_train"], data["tgt_test"]

    def cell(key):
        if key[0] == "transfer":
            return evaluate_transferred(transfer(reps[key[1]], key[2], tgt_train, cfg), tgt_test, cfg)
        _, rep, kind, sev, _ = key
        tr = TensorData(corrupt(tgt_train.x, kind, sev, seed=cfg["seed"]), tgt_train.y, tgt_train.num_classes)
        te = TensorData(corrupt(tgt_test.x, kind, sev, seed=cfg["seed"] + 1), tgt_test.y, tgt_test.num_classes)
        return evaluate_transferred(transfer(reps[rep], "lp", tr, cfg), te, cfg)

    return cell


def transfer_cells(cfg: dict, reps: dict, data: dict, store: CellStore, progress: bool) -> dict:
    """LP / FT / LP-FT of every representation, evaluated (Tabs. 1/3/5/9); ``{(rep, method): metrics}``."""
    cells = {(r, m): _transfer_key(cfg, data, r, m) for r in cfg["representations"] for m in cfg["transfer"]["methods"]}
    res = run_cells(list(cells.values()), _cell_fn(cfg, reps, data), store, progress=progress, desc="transfer")
    return {c: res[key] for c, key in cells.items()}


def corruption_cells(cfg: dict, reps: dict, data: dict, store: CellStore, progress: bool) -> dict:
    """LP on corrupted downstream data (app. B.5, Tabs. 12/13); ``{(rep, kind, severity): metrics}``.

    Severity 0 is the clean data for every kind (:func:`pyadvt.data.corruptions.corrupt`), so those
    cells are the clean LP cell of :func:`transfer_cells` (computed once, shared by all kinds).
    """
    cc = cfg["corruptions"]
    base = config_digest(cfg["transfer"], _evaluation_id(cfg), data["ids"])
    cells = {(r, k, s): _transfer_key(cfg, data, r, "lp") if s == 0 else
             ("corrupt", r, k, s, config_digest(data["rep_ids"][r], base))
             for r in cc["representations"] for k in cc["kinds"] for s in cc["severities"]}
    res = run_cells(list(dict.fromkeys(cells.values())), _cell_fn(cfg, reps, data), store, progress=progress,
                    desc="corruptions")
    return {c: res[key] for c, key in cells.items()}


def _data(cfg: dict) -> dict:
    src_train, src_test = experiment_data(cfg["dataset"], seed=cfg["seed"], classes=cfg["source_classes"])
    tgt_train, tgt_test = experiment_data(cfg["dataset"], seed=cfg["seed"], classes=cfg["target_classes"])
    needed = dict.fromkeys(cfg["representations"] + cfg["corruptions"]["representations"])
    return {"src_train": src_train, "src_test": src_test, "tgt_train": tgt_train, "tgt_test": tgt_test,
            "ids": [data_digest(d) for d in (src_test, tgt_train, tgt_test)],
            "rep_ids": {r: _representation_id(r, cfg, src_train) for r in needed}}


def run(config: dict | None = None, out_dir: str | Path = "results/robustness-transfer", progress: bool = True) -> dict:
    """Run the experiment (``config`` merged over :data:`DEFAULTS`); write ``result.json``, CSV and report.

    Every cell (representation, transfer, corruption) is keyed by a digest of the settings and data
    it depends on, so a rerun with a changed setting recomputes only the cells that setting affects.
    """
    cfg = resolve_config(DEFAULTS, config)
    _check(cfg)
    out_dir = Path(out_dir)
    store = CellStore(out_dir / "cells")
    timings = Timings()
    data = _data(cfg)
    with timings("pretraining"):
        reps, rep_metrics = pretraining(cfg, data, store, progress)
    with timings("transfer + evaluation"):
        res = transfer_cells(cfg, reps, data, store, progress)
    with timings("corruptions"):
        cres = corruption_cells(cfg, reps, data, store, progress)
    parts = report_parts(cfg, rep_metrics, res, cres)
    for name, table in parts["csv"].items():
        write_csv(out_dir / f"robustness_transfer_{name}.csv", table["columns"], table["rows"])
    result = make_result("robustness-transfer", cfg, parts["data"], timings=timings, seeds=[cfg["seed"]],
                         summary=parts["summary"], figures=parts["figures"], tables=parts["tables"],
                         notes=[f"seed 004 (Nern et al., NeurIPS 2023) on {cfg['dataset']['name']}: pretraining on "
                                f"classes {cfg['source_classes']}, downstream {cfg['target_classes']}; AS values are "
                                "lower bounds (representation attack: "
                                f"{next(iter(rep_metrics.values()))['as_attack']})"])
    publish(result, out_dir, title="robustness-transfer (seed 004)")
    return result


add_arguments, main = experiment_cli("robustness-transfer", run, DEFAULTS, QUICK, presets=DATASET_PRESETS)


__all__ = ["DEFAULTS", "QUICK", "DATASET_PRESETS", "REPRESENTATIONS", "METHODS", "corruption_cells",
           "evaluate_transferred", "pretraining", "representation", "representation_spec", "run", "transfer",
           "transfer_cells", "add_arguments", "main"]
