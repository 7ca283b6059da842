"""Surrogate zoo on digits: why does a little robustness help transfer attacks? (seed 001)

Trains a zoo of ``SmallCNN`` surrogates on scikit-learn's digits - standard training (ST),
adversarial training at several L2 budgets (AT), mixup / cutmix / cutout / label smoothing (MU, CM,
CO, LS) and input-gradient / Jacobian / explicit gradient regularisation (IR, JR, ER) at two
strengths each, SAM, SAM&IR and SAM&JR - over several seeds; attacks targets of *other*
architectures (MLP, LeNet, SmallResNet) with PGD, MI-FGSM and DIM (L-inf, several budgets,
untargeted and targeted) and measures per surrogate the input-Hessian smoothness and the gradient
similarity to each target (docs/theory.md §3-§4). Writes ``result.json`` (``pyadvt.result/1``) with
``report.html`` / ``report.md``, CSV tables
(transfer ASR per member like the paper's Table II; Pearson r / OLS R^2 like Table VI) and the
figures like Figs. 2-5 in ``figures/`` (ASR, smoothness and similarity against the AT budget; ASR
against smoothness and similarity), plus the seed-001 Theorem-1 lower bound per surrogate and target.

Config (:data:`DEFAULTS`, :data:`QUICK`, :data:`DATASET_PRESETS`) -> specs (:func:`member_spec`,
:func:`target_spec`: :class:`~pyadvt.train.zoo.ModelSpec`) -> cells (models by
:func:`~pyadvt.train.zoo.train_or_load`, evaluations by :func:`evaluate_zoo`, all under
``out_dir/cells``, digest-keyed, reused on rerun) -> :func:`aggregate` -> report
(:mod:`pyadvt.report.surrogate_zoo`, :func:`pyadvt.report.publish`).

    pyadvt experiment surrogates --quick          # smoke test: 1 seed, 15 members, no science
    pyadvt experiment surrogates                  # 3 seeds, 24 members
    pyadvt experiment surrogates --dataset fashion-mnist   # 3 seeds, 10 members (docs/experiments/surrogates.md)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from pyadvt.attacks import DIM, MIFGSM, PGD
from pyadvt.bounds.seed001 import lower_bound
from pyadvt.experiments._cli import experiment_cli
from pyadvt.experiments._data import DIGITS, dataset_name, experiment_data
from pyadvt.metrics import gradient_similarity, smoothness, statistics_table, attack_transferability
from pyadvt.models import build
from pyadvt.report import Timings, make_result, publish
from pyadvt.report import surrogate_zoo as report
from pyadvt.report.csv_tables import write_csv
from pyadvt.train import evaluate, training_recipe
from pyadvt.train.zoo import ModelSpec, data_digest, train_or_load
from pyadvt.utils.config import merge_config, resolve_config
from pyadvt.utils.progress import progress as _progress
from pyadvt.utils.stats import mean_ci
from pyadvt.utils.sweep import CellStore, config_digest, run_cells

DEFAULTS: dict = {
    "seeds": [0, 1, 2],
    "data_seed": 0,
    "dataset": dict(DIGITS),
    # rise-then-fall of transfer ASR over the AT budget is judged over the AT surrogates whose mean clean
    # accuracy (over seeds) is at least this (the paper's premise: the other factors stay acceptable)
    "min_clean_accuracy": 0.5,
    "surrogate": {"arch": "cnn", "channels": [16, 32]},
    "targets": ["mlp", "lenet", "resnet"],
    "train": {"epochs": 15, "lr": 0.05, "batch_size": 64, "momentum": 0.9, "weight_decay": 5e-4,
              "warmup_epochs": 1.0},
    "zoo": {
        "at_eps": [0.05, 0.1, 0.25, 0.5, 1.0, 2.0],   # L2 budgets (pixel units), ST is eps = 0
        "at_steps": 5, "at_step_size": 0.4,           # step = at_step_size * eps (seed 001, ImageNette)
        "mixup": [0.5, 1.0], "cutmix": [0.5, 1.0],    # probability p of mixing a batch
        "cutout": [3, 5],                             # square side M (8 x 8 images)
        "label_smoothing": [0.1, 0.3],
        "ir": [0.05, 0.2], "jr": [0.005, 0.02], "er": [0.01, 0.1],
        "sam_rho": 0.1, "sam_ir": 0.05, "sam_jr": 0.005,
    },
    "attack": {"budgets": [0.05, 0.1, 0.2], "steps": 10, "methods": ["pgd", "mi", "dim"], "targeted": True},
    "eval": {"n_samples": 300, "smoothness_method": "lanczos", "batch_size": 300},
    "quick": False,
}

QUICK: dict = {
    "seeds": [0],
    "targets": ["mlp", "lenet"],
    "train": {"epochs": 8},
    "zoo": {"at_eps": [0.1, 0.25, 0.5, 1.0], "mixup": [1.0], "cutmix": [1.0], "cutout": [4],
            "label_smoothing": [0.2], "ir": [0.05], "jr": [0.005], "er": [0.05]},
    "attack": {"budgets": [0.1, 0.2]},
    "eval": {"n_samples": 150, "batch_size": 150},
    "quick": True,
}

ATTACKS = {"pgd": PGD, "mi": MIFGSM, "dim": DIM}
TARGET_KWARGS = {"mlp": {}, "lenet": {}, "resnet": {"widths": (16, 32)}, "cnn": {}}
TARGET_SEED = 100  # the targets' training seed (one set of targets shared by every surrogate seed)


# ----------------------------------------------------------------------------- configuration

def resolve(config: dict | str | None = None, quick: bool | None = None, overrides: list[str] | None = None) -> dict:
    """Effective configuration: DEFAULTS <- QUICK preset (if quick) <- ``config`` (dict or file) <- overrides."""
    if quick is None:
        quick = bool(config.get("quick", False)) if isinstance(config, dict) else False
    base = merge_config(DEFAULTS, QUICK) if quick else DEFAULTS
    cfg = resolve_config(base, config, overrides=overrides)
    if not cfg["seeds"]:
        raise ValueError("'seeds' must list at least one training seed")
    unknown = sorted(set(cfg["attack"]["methods"]) - set(ATTACKS))
    if unknown:
        raise ValueError(f"unknown attack method(s) {unknown} in 'attack.methods'; choose from {sorted(ATTACKS)}")
    bad = sorted(set(cfg["targets"]) - set(TARGET_KWARGS))
    if bad:
        raise ValueError(f"unknown target architecture(s) {bad} in 'targets'; choose from {sorted(TARGET_KWARGS)}")
    if len(cfg["zoo"]["at_eps"]) < 1 or any(e <= 0 for e in cfg["zoo"]["at_eps"]):
        raise ValueError("'zoo.at_eps' must list positive AT budgets")
    return cfg


def zoo_members(cfg: dict) -> list[dict]:
    """The zoo: ``{"name", "family", "strength"}`` per member (ST first, then AT by budget, ...)."""
    z = cfg["zoo"]
    members = [{"name": "ST", "family": "st", "strength": 0.0}]
    members += [{"name": f"AT-{e:g}", "family": "at", "strength": float(e)} for e in z["at_eps"]]
    for family, label in (("mixup", "MU"), ("cutmix", "CM"), ("cutout", "CO"), ("label_smoothing", "LS"),
                          ("ir", "IR"), ("jr", "JR"), ("er", "ER")):
        members += [{"name": f"{label}-{s:g}", "family": family, "strength": float(s)} for s in z[family]]
    members += [{"name": "SAM", "family": "sam", "strength": float(z["sam_rho"])},
                {"name": "SAM&IR", "family": "sam_ir", "strength": float(z["sam_ir"])},
                {"name": "SAM&JR", "family": "sam_jr", "strength": float(z["sam_jr"])}]
    return members


# ----------------------------------------------------------------------------- specs

def _model_kwargs(arch: str, cfg: dict) -> dict:
    if arch == "surrogate":
        s = cfg["surrogate"]
        return {"channels": list(s["channels"])} if s["arch"] == "cnn" else {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in TARGET_KWARGS[arch].items()}


def _fit_kwargs(cfg: dict) -> dict:
    t = cfg["train"]
    return {"epochs": int(t["epochs"]), "lr": float(t["lr"]), "batch_size": int(t["batch_size"]),
            "momentum": float(t["momentum"]), "weight_decay": float(t["weight_decay"]),
            "warmup_epochs": float(t["warmup_epochs"])}


def member_spec(member: dict, cfg: dict, seed: int) -> ModelSpec:
    """The :class:`~pyadvt.train.zoo.ModelSpec` of zoo ``member`` (:func:`zoo_members`) trained with ``seed``:
    the surrogate architecture, the member's recipe (docs/theory.md §4) and ``cfg["train"]``'s SGD settings."""
    fam, s, z, t = member["family"], member["strength"], cfg["zoo"], cfg["train"]
    sgd = {"lr": t["lr"], "momentum": t["momentum"], "weight_decay": t["weight_decay"]}
    recipe = {"strength": s, "norm": "l2", "steps": int(z["at_steps"]),
              "alpha": float(z["at_step_size"]) * s if fam == "at" else None, "sam_rho": float(z["sam_rho"]),
              "sgd": sgd}
    return ModelSpec(cfg["surrogate"]["arch"], _model_kwargs("surrogate", cfg), fam, recipe, _fit_kwargs(cfg),
                     int(seed))


def target_spec(arch: str, cfg: dict) -> ModelSpec:
    """The :class:`~pyadvt.train.zoo.ModelSpec` of target ``arch``: standard training, seed 100."""
    return ModelSpec(arch, _model_kwargs(arch, cfg), "st", {}, _fit_kwargs(cfg), TARGET_SEED)


def member_recipe(member: dict, cfg: dict, model: torch.nn.Module, seed: int) -> dict:
    """``fit`` keyword arguments (``loss_fn``, ``batch_transform``, ``optimizer``) of a zoo member."""
    spec = member_spec(member, cfg, seed)
    return training_recipe(spec.recipe, model, num_classes=10, seed=seed, **spec.recipe_kwargs)


def _surrogate(cfg: dict, in_shape=(1, 8, 8)) -> torch.nn.Module:
    return build(cfg["surrogate"]["arch"], in_shape=tuple(in_shape), **_model_kwargs("surrogate", cfg))


# ----------------------------------------------------------------------------- cells

def train_zoo(cfg: dict, members: list[dict], train, store: CellStore, progress: bool = True) -> tuple[dict, dict]:
    """Train (or load from ``store``) every target and every (member, seed) surrogate.

    Returns ``(targets, surrogates)``: ``{arch: (model, info)}`` and ``{(name, seed): (spec, info)}``
    (surrogates are loaded again per evaluation cell, so only their specs are kept).
    """
    t_specs = {a: target_spec(a, cfg) for a in cfg["targets"]}
    m_specs = {(m["name"], s): member_spec(m, cfg, s) for s in cfg["seeds"] for m in members}
    targets, surrogates = {}, {}
    bar = _progress(list(t_specs.items()) + list(m_specs.items()), desc="train zoo", enabled=progress)
    for name, spec in bar:
        model, info = train_or_load(spec, train, store)
        if isinstance(name, str):  # a target architecture; surrogates are (member, seed)
            targets[name] = (model, info)
        else:
            surrogates[name] = (spec, info)
    return targets, surrogates


def _bounds(model, targets: dict, x, y, x_adv, smooth_max: float, target_smooth: dict) -> dict:
    """The seed-001 Theorem-1 lower bound per target for one adversarial batch (docs/theory.md §3)."""
    return {name: lower_bound(model, tgt, x, y, x_adv, smooth_source=smooth_max,
                              smooth_target=target_smooth[name]).summary() for name, tgt in targets.items()}


def _attack_rates(model, targets: dict, x, y, cfg: dict) -> tuple[dict, dict]:
    """Transfer rates of every attack method and mode at every budget, and the adversarial batch of
    untargeted PGD at the middle budget (for the bound)."""
    at = cfg["attack"]
    budgets = [float(b) for b in at["budgets"]]
    mid, out, pgd_mid = budgets[len(budgets) // 2], {}, None
    for method in at["methods"]:
        out[method] = {}
        for mode in ["untargeted"] + (["targeted"] if at["targeted"] else []):
            atk = ATTACKS[method](model, eps=max(budgets), steps=int(at["steps"]), targeted=mode == "targeted")
            x_adv = atk(x, y, eps=torch.tensor(budgets))  # [K, N, ...], one batched multi-budget call
            out[method][mode] = {}
            for k, eps in enumerate(budgets):
                rates = {n: attack_transferability(model, t, x, y, x_adv[k], targeted=mode == "targeted")
                         for n, t in targets.items()}
                out[method][mode][f"{eps:g}"] = {"fooling": next(iter(rates.values())).fooling,
                                                  "targets": {n: {"asr": r.asr, "rate": r.rate} for n, r in rates.items()}}
                if method == "pgd" and mode == "untargeted" and eps == mid:
                    pgd_mid = x_adv[k]
    return out, pgd_mid


def evaluate_surrogate(model, targets: dict, x, y, cfg: dict, target_smooth: dict) -> dict:
    """Accuracy-independent per-surrogate measurements: smoothness, similarity, transfer rates, bound."""
    ev = cfg["eval"]
    sm = smoothness(model, x, y, method=ev["smoothness_method"], batch_size=int(ev["batch_size"]), progress=False)
    out = {"smoothness_mean": sm.mean, "smoothness_max": sm.max, "similarity": {}, "attacks": {}, "bound": {}}
    for name, tgt in targets.items():
        sim = gradient_similarity(model, tgt, x, y)
        out["similarity"][name] = {"mean": sim.mean, "min": sim.min}
    out["attacks"], pgd_mid = _attack_rates(model, targets, x, y, cfg)
    if pgd_mid is not None:
        out["bound"] = _bounds(model, targets, x, y, pgd_mid, sm.max, target_smooth)
    return out


def evaluate_zoo(cfg: dict, surrogates: dict, targets: dict, train, test, store: CellStore,
                 progress: bool = True) -> dict:
    """One cell per (member, seed): clean test accuracy and :func:`evaluate_surrogate`, keyed by the
    surrogate's and the targets' model keys and a digest of the evaluation settings."""
    n = min(int(cfg["eval"]["n_samples"]), len(test))
    x, y = test.x[:n], test.y[:n]
    t_models = {a: m for a, (m, _) in targets.items()}
    target_smooth = {a: smoothness(t, x, y, method=cfg["eval"]["smoothness_method"], progress=False).max
                     for a, t in t_models.items()}
    digest = config_digest({"eval": cfg["eval"], "attack": cfg["attack"],
                            "targets": {a: info["key"] for a, (_, info) in targets.items()}}, data_digest(test))
    keys = {name: ("eval", name[0], name[1], info["key"][-1], digest) for name, (_, info) in surrogates.items()}

    def cell(key):
        spec = surrogates[(key[1], key[2])][0]
        model, _ = train_or_load(spec, train, store)
        return {"accuracy": evaluate(model, test)["accuracy"],
                **evaluate_surrogate(model, t_models, x, y, cfg, target_smooth)}

    done = run_cells(list(keys.values()), cell, store, progress=progress, desc="evaluate zoo")
    return {"cells": {name: done[k] for name, k in keys.items()}, "target_smoothness_max": target_smooth}


# ----------------------------------------------------------------------------- aggregation

class ZooRuns:
    """The per-(member, seed) results as ``[S, M]`` arrays (seeds x members, in config order)."""

    def __init__(self, names: list[str], seeds: list[int], evals: dict, accs: dict) -> None:
        self.names, self.seeds, self.evals, self.accs = names, seeds, evals, accs

    def of(self, fn) -> np.ndarray:
        """``[S, M]`` array of ``fn(eval_dict, clean_accuracy)``."""
        return np.array([[fn(self.evals[(m, s)], self.accs[(m, s)]) for m in self.names] for s in self.seeds],
                        dtype=float)

    def asr(self, method: str, mode: str, eps: float, target: str) -> np.ndarray:
        """``[S, M]`` transfer ASR of ``method`` / ``mode`` at budget ``eps`` on ``target``."""
        return self.of(lambda e, a: e["attacks"][method][mode][f"{eps:g}"]["targets"][target]["asr"])

    def similarity(self, target: str) -> np.ndarray:
        return self.of(lambda e, a: e["similarity"][target]["mean"])


def _modes(cfg: dict) -> list[str]:
    return ["untargeted"] + (["targeted"] if cfg["attack"]["targeted"] else [])


def statistics_rows(runs: ZooRuns, cfg: dict) -> list[dict]:
    """Table VI: Pearson r / OLS R^2 across all (member, seed) surrogates per mode, target, budget (PGD);
    a surrogate with an undefined metric is dropped, a cell with fewer than 3 left is skipped."""
    rows = []
    acc, ms = runs.of(lambda e, a: a).ravel(), runs.of(lambda e, a: e["smoothness_mean"]).ravel()
    for mode in _modes(cfg):
        for tgt in cfg["targets"]:
            gs = runs.similarity(tgt).ravel()
            for eps in [float(b) for b in cfg["attack"]["budgets"]]:
                asr = runs.asr("pgd", mode, eps, tgt).ravel()
                fp = runs.of(lambda e, a: e["attacks"]["pgd"][mode][f"{eps:g}"]["fooling"]).ravel()
                ok = np.isfinite(np.stack([asr, acc, fp, ms, gs])).all(0)
                if ok.sum() >= 3:
                    t = statistics_table(asr[ok], acc[ok], fp[ok], ms[ok], gs[ok])
                    stored = {k: v for k, v in t.summary().items() if k != "n_undefined"}  # result.json's Table VI keys
                    rows.append({"mode": mode, "target": tgt, "eps": eps, **stored})
    return rows


def _with_seed_cis(finding: dict, curves: np.ndarray, at_x: list) -> dict:
    """Add the per-seed ``rise`` (ASR at the seed-mean peak budget minus ST) and ``fall`` (peak minus the
    largest kept budget) of ``curves [S, J]`` with 95% Student-t intervals over the seeds
    (:func:`pyadvt.utils.stats.mean_ci`; ``None`` when the finding is undetermined). The peak budget
    is chosen on the seed mean, so the rise interval is optimistic (selection)."""
    rise = fall = None
    if finding["rise_then_fall"] is not None:
        best, last = at_x.index(finding["best_at_eps"]), at_x.index(finding["largest_kept_eps"])
        rise = mean_ci(curves[:, best] - curves[:, 0]).summary()
        fall = mean_ci(curves[:, best] - curves[:, last]).summary()
    return {**finding, "rise_ci": rise, "fall_ci": fall}


def sam_jr_vs_st(runs: ZooRuns, cfg: dict) -> dict:
    """SAM&JR minus ST seed-mean ASR over every (attack, mode, target, budget) cell (seed 001 sec. 4.2);
    ``difference_ci``: the per-seed mean difference over the cells with a 95% t-interval over seeds."""
    i, j = runs.names.index("SAM&JR"), runs.names.index("ST")
    cells = [runs.asr(method, mode, float(eps), tgt)  # [S, M] per (attack, mode, target, budget)
             for method in cfg["attack"]["methods"] for mode in _modes(cfg) for tgt in cfg["targets"]
             for eps in cfg["attack"]["budgets"]]
    diffs = [float(v[:, i].mean() - v[:, j].mean()) for v in cells]
    per_cell = [v[:, i] - v[:, j] for v in cells]
    return {"mean_asr_difference": float(np.mean(diffs)), "wins": int(np.sum(np.array(diffs) > 0)),
            "cells": len(diffs), "beats_st": bool(np.mean(diffs) > 0),
            "difference_ci": mean_ci(np.mean(per_cell, axis=0)).summary()}


def theorem1_summary(evals: dict, names: list[str], cfg: dict) -> dict:
    """How often the Theorem-1 lower bound is vacuous / undefined, its largest finite value and the
    mean empirical transfer indicator, over every (member, seed, target)."""
    bounds = [evals[(m, s)]["bound"][t] for m in names for s in cfg["seeds"] for t in cfg["targets"]]
    values = [b["value"] for b in bounds if b["value"] is not None and math.isfinite(b["value"])]
    return {"vacuous": int(sum(1 for b in bounds if b["vacuous"])), "evaluated": len(bounds),
            "undefined_eps_le_cG": int(sum(1 for b in bounds if b["c_G"] >= b["eps"])),
            "max": max(values, default=None), "empirical_mean": float(np.mean([b["empirical"] for b in bounds]))}


def aggregate(cfg: dict, members: list[dict], evals: dict, accs: dict) -> dict:
    """Tables (Table II / VI style), figure specs and the findings from the per-cell results."""
    names = [m["name"] for m in members]
    runs = ZooRuns(names, list(cfg["seeds"]), evals, accs)
    budgets = [float(b) for b in cfg["attack"]["budgets"]]
    mid = budgets[len(budgets) // 2]
    idx = [names.index("ST")] + [names.index(m["name"]) for m in members if m["family"] == "at"]
    at_x = [0.0] + [m["strength"] for m in members if m["family"] == "at"]
    at_acc = runs.of(lambda e, a: a)[:, idx].mean(0)
    series = {mode: {t: runs.asr("pgd", mode, mid, t)[:, idx].tolist() for t in cfg["targets"]}
              for mode in _modes(cfg)}
    findings = {f"little_robustness_{mode}_{t}": _with_seed_cis(rise_then_fall(
        np.array(curve).mean(0), at_x, at_acc, float(cfg["min_clean_accuracy"])), np.array(curve), at_x)
        for mode, per in series.items() for t, curve in per.items()}
    findings["sam_jr_vs_st"] = sam_jr_vs_st(runs, cfg)
    findings["theorem1_bound"] = theorem1_summary(evals, names, cfg)
    untargeted = np.mean([runs.asr("pgd", "untargeted", mid, t) for t in cfg["targets"]], 0)  # [S, M]
    mean_asr = {m: float(np.mean([runs.asr("pgd", "untargeted", mid, t)[:, i].mean() for t in cfg["targets"]]))
                for i, m in enumerate(names)}
    smooth = runs.of(lambda e, a: e["smoothness_mean"])
    figs = report.at_figures(at_x, series, smooth[:, idx].tolist(),
                             {t: runs.similarity(t)[:, idx].tolist() for t in cfg["targets"]}, mid)
    figs += report.member_figures(names, mean_asr, smooth.ravel().tolist(), untargeted.ravel().tolist(),
                                  np.mean([runs.similarity(t) for t in cfg["targets"]], 0).ravel().tolist(), mid)
    return {"asr_table": report.asr_table(runs.asr, names, _modes(cfg), cfg["targets"], budgets),
            "statistics": statistics_rows(runs, cfg), "figures": figs, "findings": findings,
            "mean_untargeted_asr": mean_asr}


def rise_then_fall(curve, at_x, clean_accuracy, min_clean_accuracy: float) -> dict:
    """Seed 001's "a little robustness helps": does the mean transfer ASR rise from ST (``at_x[0] = 0``)
    to a small AT budget and fall again at the largest budget, *among the surrogates whose clean
    accuracy is >= min_clean_accuracy* (an unusable surrogate's low ASR is not the claimed fall)?

    Args: ``curve [J]`` mean ASR per AT budget ``at_x [J]`` (ST first), ``clean_accuracy [J]``.

    Returns ``{"st", "best_at_eps", "best", "largest_at", "largest_kept_eps", "kept_eps", "dropped_eps",
    "min_clean_accuracy", "rise_then_fall"}``; ``rise_then_fall`` is ``None`` (undetermined) when ST
    itself or fewer than three budgets pass the threshold.

    Example:
        >>> r = rise_then_fall([0.2, 0.5, 0.3, 0.1], [0, 0.1, 1, 2], [0.9, 0.9, 0.6, 0.1], 0.5)
        >>> r["rise_then_fall"], r["dropped_eps"]
        (True, [2])
        >>> rise_then_fall([0.2, 0.5, 0.6, 0.1], [0, 0.1, 1, 2], [0.9, 0.9, 0.6, 0.1], 0.5)["rise_then_fall"]
        False
    """
    c, acc = np.asarray(curve, dtype=float), np.asarray(clean_accuracy, dtype=float)
    kept = [j for j in range(len(c)) if acc[j] >= min_clean_accuracy]
    out = {"min_clean_accuracy": float(min_clean_accuracy), "kept_eps": [at_x[j] for j in kept],
           "dropped_eps": [at_x[j] for j in range(len(c)) if j not in kept], "st": float(c[0]),
           "best_at_eps": None, "best": None, "largest_at": None, "largest_kept_eps": None, "rise_then_fall": None}
    if 0 not in kept or len(kept) < 3:
        return out
    ck = c[kept]
    best = int(np.argmax(ck))
    out.update(best_at_eps=at_x[kept[best]], best=float(ck[best]), largest_at=float(ck[-1]),
               largest_kept_eps=at_x[kept[-1]],
               rise_then_fall=bool(best > 0 and ck[best] > ck[0] and ck[-1] < ck[best]))
    return out


# ----------------------------------------------------------------------------- run

def _result(cfg: dict, members: list[dict], targets: dict, ev: dict, agg: dict, timings: Timings) -> dict:
    """The ``pyadvt.result/1`` dict of a run."""
    f, s = agg["findings"], agg["findings"]["sam_jr_vs_st"]
    members_out = {f"{m}/seed{sd}": cell for (m, sd), cell in ev["cells"].items()}
    data = {"members": members_out,
            "targets": {a: {"accuracy": info["accuracy"], "train_seconds": info["train_seconds"]}
                        for a, (_, info) in targets.items()},
            "target_smoothness_max": ev["target_smoothness_max"], "asr_table": agg["asr_table"],
            "statistics": agg["statistics"], "findings": f, "mean_untargeted_asr": agg["mean_untargeted_asr"]}
    summary = {"members": len(members), "seeds": len(cfg["seeds"]),
               "little_robustness_any": any(v["rise_then_fall"] for k, v in f.items()
                                            if k.startswith("little_robustness_")),
               "sam_jr_beats_st": s["beats_st"], "sam_jr_minus_st_asr": s["mean_asr_difference"]}
    return make_result("surrogates", cfg, data, timings=timings, seeds=cfg["seeds"], summary=summary,
                       figures=agg["figures"], tables=[report.statistics_table(agg["statistics"])],
                       notes=report.notes(f))


def run(config: dict | str | None = None, out_dir: str | Path = "results/surrogates", progress: bool = True,
        quick: bool | None = None) -> dict:
    """Train (or reuse) the zoo and targets, evaluate every surrogate, write JSON/CSV/PNG to ``out_dir``.

    Config -> :func:`member_spec` / :func:`target_spec` -> :func:`train_zoo` and :func:`evaluate_zoo`
    cells (``out_dir/cells``) -> :func:`aggregate` -> :mod:`pyadvt.report.surrogate_zoo` and
    :func:`pyadvt.report.publish` (``result.json``, ``report.html`` / ``report.md``, ``figures/``), plus
    ``asr_table.csv`` and ``statistics.csv``. Returns the ``pyadvt.result/1`` dict.
    """
    cfg = resolve(config, quick)
    out = Path(out_dir)
    store = CellStore(out / "cells")
    timings = Timings()
    train, test = experiment_data(cfg["dataset"], seed=int(cfg["data_seed"]))
    members = zoo_members(cfg)
    with timings("train"):
        targets, surrogates = train_zoo(cfg, members, train, store, progress)
        for _, (model, info) in targets.items():
            info["accuracy"] = evaluate(model, test)["accuracy"]
    with timings("evaluate"):
        ev = evaluate_zoo(cfg, surrogates, targets, train, test, store, progress)
    with timings("aggregate"):
        evals = {k: {n: v for n, v in cell.items() if n != "accuracy"} for k, cell in ev["cells"].items()}
        agg = aggregate(cfg, members, evals, {k: cell["accuracy"] for k, cell in ev["cells"].items()})
        for name, rows in (("asr_table", agg["asr_table"]), ("statistics", agg["statistics"])):
            if rows:
                write_csv(out / f"{name}.csv", list(rows[0]), [list(r.values()) for r in rows])
    result = _result(cfg, members, targets, ev, agg, timings)
    publish(result, out, title=f"Seed 001: surrogate zoo on {dataset_name(cfg['dataset'])}")
    return result


# ----------------------------------------------------------------------------- CLI

# --dataset presets: "scale" for 28x28 images (cutout squares scaled 8x8 -> 28x28; the attacks' L-inf
# budgets stay in [0, 1] pixel units; the L2 AT budgets x 3.5 = sqrt(784 / 64), the L2 norm of the same
# per-pixel change on 12.25x the pixels). "budget" (measured: one 8-epoch ST member on 2000 images took
# 55 s on the 2 shared, loaded CPU cores, AT members ~6x that, so the full zoo would take hours): the
# members the findings are about - ST, AT (rise-then-fall), SAM, SAM&IR, SAM&JR (SAM&JR vs ST) - x 3
# seeds on 1500 training images for 8 epochs, every attack, mode and budget on 100 test images; AT at the
# budgets whose surrogates pass min_clean_accuracy (with 4 epochs, AT >= 1.75 fell below 43 %): 11.9 min CPU
_MNIST_LIKE = {
    "scale": {"dataset": {"train_size": 2000, "test_size": 500},
              "zoo": {"cutout": [10, 16], "at_eps": [0.175, 0.35, 0.875, 1.75, 3.5, 7.0]},
              "eval": {"n_samples": 200, "batch_size": 200}},
    "budget": {"dataset": {"train_size": 1500}, "train": {"epochs": 8},
               "zoo": {"at_eps": [0.175, 0.35, 0.875], "mixup": [], "cutmix": [], "cutout": [], "label_smoothing": [],
                       "ir": [], "jr": [], "er": []},
               "eval": {"n_samples": 100, "batch_size": 100}},
}
DATASET_PRESETS: dict = {"fashion-mnist": _MNIST_LIKE, "mnist": _MNIST_LIKE, "kmnist": _MNIST_LIKE}

add_arguments, main = experiment_cli(
    "surrogates", run, resolve=lambda config, quick, overrides: resolve(config, quick=quick, overrides=overrides),
    presets=DATASET_PRESETS)
