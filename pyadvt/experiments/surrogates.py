"""Surrogate zoo on digits: why does a little robustness help transfer attacks? (seed 001)

Trains a zoo of ``SmallCNN`` surrogates on scikit-learn's digits - standard training (ST),
adversarial training at several L2 budgets (AT), mixup / cutmix / cutout / label smoothing (MU, CM,
CO, LS) and input-gradient / Jacobian / explicit gradient regularisation (IR, JR, ER) at two
strengths each, SAM, SAM&IR and SAM&JR - over several seeds; attacks targets of *other*
architectures (MLP, LeNet, SmallResNet) with PGD, MI-FGSM and DIM (L-inf, several budgets,
untargeted and targeted) and measures per surrogate the input-Hessian smoothness and the gradient
similarity to each target (docs/theory.md §3-§4). Writes ``result.json`` (``pyadvt.result/1``) with
``report.html`` / ``report.md``, CSV tables
(transfer ASR per member like the paper's Table II; Pearson r / OLS R^2 like Table VI) and PNG
figures like Figs. 2-5 (ASR, smoothness and similarity against the AT budget; ASR against
smoothness and similarity), plus the seed-001 Theorem-1 lower bound per surrogate and target.

Every trained zoo member, target and per-surrogate evaluation is stored as a cell under
``out_dir/cells`` as soon as it finishes (:mod:`pyadvt.utils.sweep`); a rerun reuses them.

    pyadvt experiment surrogates --quick          # ~1 seed, 15 members, < 3 min on 2 cores
    pyadvt experiment surrogates                  # 3 seeds, 24 members, < 20 min
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from pyadvt.attacks import DIM, MIFGSM, PGD
from pyadvt.bounds.seed001 import lower_bound
from pyadvt.experiments._data import DIGITS, experiment_data
from pyadvt.metrics import gradient_similarity, smoothness, statistics_table, transferability
from pyadvt.models import build
from pyadvt.report.figures import plot
from pyadvt.report.render import render_report
from pyadvt.report.results import Timings, make_result, write_result
from pyadvt.train import evaluate, fit, training_recipe
from pyadvt.experiments._cli import experiment_cli
from pyadvt.utils.config import merge_config, resolve_config
from pyadvt.utils.sweep import CellStore, run_cells

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


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


# ----------------------------------------------------------------------------- training

def _surrogate(cfg: dict, in_shape=(1, 8, 8)) -> torch.nn.Module:
    s = cfg["surrogate"]
    kw = {"channels": tuple(s["channels"])} if s["arch"] == "cnn" else {}
    return build(s["arch"], in_shape=tuple(in_shape), **kw)


def member_recipe(member: dict, cfg: dict, model: torch.nn.Module, seed: int) -> dict:
    """``fit`` keyword arguments (``loss_fn``, ``batch_transform``, ``optimizer``) of a zoo member."""
    fam, s, z, t = member["family"], member["strength"], cfg["zoo"], cfg["train"]
    sgd = {"lr": t["lr"], "momentum": t["momentum"], "weight_decay": t["weight_decay"]}
    return training_recipe(fam, model, strength=s, num_classes=10, seed=seed, norm="l2", steps=int(z["at_steps"]),
                           alpha=float(z["at_step_size"]) * s if fam == "at" else None,
                           sam_rho=float(z["sam_rho"]), sgd=sgd)


def _train_cell(store: CellStore, cfg: dict, train, test, kind: str, spec: dict, seed: int):
    """Train one member (``kind="member"``) or target, store weights + accuracy, return the result."""
    torch.manual_seed(1000 * seed + 17)
    t = cfg["train"]
    shape = tuple(train.x.shape[1:])
    if kind == "member":
        model = _surrogate(cfg, shape)
        recipe = member_recipe(spec, cfg, model, seed)
    else:
        model = build(spec["arch"], in_shape=shape, **TARGET_KWARGS[spec["arch"]])
        recipe = {}
    start = time.perf_counter()
    fit(model, train, epochs=int(t["epochs"]), lr=float(t["lr"]), batch_size=int(t["batch_size"]),
        momentum=float(t["momentum"]), weight_decay=float(t["weight_decay"]),
        warmup_epochs=float(t["warmup_epochs"]), seed=seed, progress=False, **recipe)
    return model, {"accuracy": evaluate(model, test)["accuracy"], "train_seconds": time.perf_counter() - start}


def _load(store: CellStore, key, model: torch.nn.Module) -> torch.nn.Module:
    model.load_state_dict(store.load_checkpoint(key))
    return model.eval()


# ----------------------------------------------------------------------------- evaluation

def evaluate_surrogate(model, targets: dict, x, y, cfg: dict, target_smooth: dict) -> dict:
    """Accuracy-independent per-surrogate measurements: smoothness, similarity, transfer rates, bound."""
    ev, at = cfg["eval"], cfg["attack"]
    sm = smoothness(model, x, y, method=ev["smoothness_method"], batch_size=int(ev["batch_size"]), progress=False)
    out = {"smoothness_mean": sm.mean, "smoothness_max": sm.max, "similarity": {}, "attacks": {}, "bound": {}}
    for name, tgt in targets.items():
        sim = gradient_similarity(model, tgt, x, y)
        out["similarity"][name] = {"mean": sim.mean, "min": sim.min}
    budgets = [float(b) for b in at["budgets"]]
    eps_t = torch.tensor(budgets)
    modes = ["untargeted"] + (["targeted"] if at["targeted"] else [])
    mid = budgets[len(budgets) // 2]
    for method in at["methods"]:
        out["attacks"][method] = {}
        for mode in modes:
            atk = ATTACKS[method](model, eps=max(budgets), steps=int(at["steps"]), targeted=mode == "targeted")
            x_adv = atk(x, y, eps=eps_t)  # [K, N, ...], one batched multi-budget call
            per_budget = {}
            for k, eps in enumerate(budgets):
                rates = {name: transferability(model, tgt, x, y, x_adv[k], targeted=mode == "targeted")
                         for name, tgt in targets.items()}
                per_budget[f"{eps:g}"] = {
                    "fooling": next(iter(rates.values())).fooling,
                    "targets": {n: {"asr": r.asr, "rate": r.rate} for n, r in rates.items()},
                }
                if method == "pgd" and mode == "untargeted" and eps == mid:
                    for name, tgt in targets.items():
                        b = lower_bound(model, tgt, x, y, x_adv[k], smooth_source=sm.max,
                                        smooth_target=target_smooth[name])
                        out["bound"][name] = b.summary()
            out["attacks"][method][mode] = per_budget
    return out


# ----------------------------------------------------------------------------- aggregation

def _asr(ev: dict, method: str, mode: str, eps: float, target: str) -> float:
    return ev["attacks"][method][mode][f"{eps:g}"]["targets"][target]["asr"]


def aggregate(cfg: dict, members: list[dict], evals: dict, accs: dict) -> dict:
    """Tables (Table II / VI style), figure specs and the two findings from the per-cell results."""
    seeds, targets, budgets = cfg["seeds"], cfg["targets"], [float(b) for b in cfg["attack"]["budgets"]]
    modes = ["untargeted"] + (["targeted"] if cfg["attack"]["targeted"] else [])
    names = [m["name"] for m in members]

    def runs(fn):  # [S, M] over seeds and members
        return np.array([[fn(evals[(m, s)], accs[(m, s)]) for m in names] for s in seeds], dtype=float)

    # Table II: mean +- std over seeds of the transfer ASR per member, target and budget (PGD).
    asr_rows = []
    for mode in modes:
        for m_i, m in enumerate(names):
            row = {"mode": mode, "member": m}
            for tgt in targets:
                for eps in budgets:
                    vals = runs(lambda e, a, tgt=tgt, eps=eps, mode=mode: _asr(e, "pgd", mode, eps, tgt))[:, m_i]
                    row[f"{tgt}@{eps:g}"] = f"{100 * vals.mean():.1f}+-{100 * vals.std():.1f}"
            asr_rows.append(row)
    # Table VI: r / R^2 across all (member, seed) surrogates, per target, budget, mode (PGD).
    stat_rows = []
    acc = runs(lambda e, a: a).ravel()
    ms = runs(lambda e, a: e["smoothness_mean"]).ravel()
    for mode in modes:
        for tgt in targets:
            gs = runs(lambda e, a, tgt=tgt: e["similarity"][tgt]["mean"]).ravel()
            for eps in budgets:
                asr = runs(lambda e, a, tgt=tgt, eps=eps, mode=mode: _asr(e, "pgd", mode, eps, tgt)).ravel()
                fp = runs(lambda e, a, eps=eps, mode=mode: e["attacks"]["pgd"][mode][f"{eps:g}"]["fooling"]).ravel()
                ok = np.isfinite(np.stack([asr, acc, fp, ms, gs])).all(0)  # undefined metrics: drop the surrogate
                if ok.sum() < 3:
                    continue
                t = statistics_table(asr[ok], acc[ok], fp[ok], ms[ok], gs[ok])
                stat_rows.append({"mode": mode, "target": tgt, "eps": eps, **t.summary()})
    # AT curves (Figs. 2-4): x = [0 (ST), at_eps...]
    at_names = ["ST"] + [m["name"] for m in members if m["family"] == "at"]
    at_x = [0.0] + [m["strength"] for m in members if m["family"] == "at"]
    idx = [names.index(n) for n in at_names]
    mid = budgets[len(budgets) // 2]
    figs, findings = [], {}
    for mode in modes:
        series = {tgt: runs(lambda e, a, tgt=tgt, mode=mode: _asr(e, "pgd", mode, mid, tgt))[:, idx].tolist()
                  for tgt in targets}
        figs.append({"type": "curves", "x": at_x, "series": series, "file": f"fig2_asr_vs_at_{mode}.png",
                     "title": f"Fig. 2: {mode} PGD transfer ASR (L-inf {mid:g}) vs AT budget",
                     "xlabel": "AT L2 budget (0 = ST)", "ylabel": "ASR"})
        # rise-then-fall among the AT surrogates with acceptable clean accuracy (mean over seeds)
        at_acc = runs(lambda e, a: a)[:, idx].mean(0)
        for tgt in targets:
            findings[f"little_robustness_{mode}_{tgt}"] = rise_then_fall(
                np.array(series[tgt]).mean(0), at_x, at_acc, float(cfg["min_clean_accuracy"]))
    figs.append({"type": "curves", "x": at_x, "file": "fig3_smoothness_vs_at.png",
                 "series": {"mean lambda_max": runs(lambda e, a: e["smoothness_mean"])[:, idx].tolist()},
                 "title": "Fig. 3: model smoothness vs AT budget", "xlabel": "AT L2 budget (0 = ST)",
                 "ylabel": "mean top Hessian eigenvalue"})
    figs.append({"type": "curves", "x": at_x, "file": "fig4_similarity_vs_at.png",
                 "series": {tgt: runs(lambda e, a, tgt=tgt: e["similarity"][tgt]["mean"])[:, idx].tolist()
                            for tgt in targets},
                 "title": "Fig. 4: gradient similarity to targets vs AT budget",
                 "xlabel": "AT L2 budget (0 = ST)", "ylabel": "mean cosine similarity"})
    mean_asr = {m: float(np.mean([runs(lambda e, a, t=t, mode=mode: _asr(e, "pgd", mode, mid, t))[:, i].mean()
                                  for t in targets])) for i, m in enumerate(names) for mode in ["untargeted"]}
    figs.append({"type": "bars", "values": [mean_asr[m] for m in names], "labels": names,
                 "file": "fig5_asr_by_member.png", "title": f"Untargeted PGD ASR (L-inf {mid:g}), mean over targets",
                 "ylabel": "ASR"})
    per_sur_asr = np.mean([runs(lambda e, a, t=t: _asr(e, "pgd", "untargeted", mid, t)) for t in targets], 0).ravel()
    per_sur_gs = np.mean([runs(lambda e, a, t=t: e["similarity"][t]["mean"]) for t in targets], 0).ravel()
    figs.append({"type": "scatter", "x": ms.tolist(), "y": per_sur_asr.tolist(), "file": "fig5_asr_vs_smoothness.png",
                 "title": "ASR vs smoothness (every surrogate)", "xlabel": "mean top Hessian eigenvalue",
                 "ylabel": "untargeted ASR (mean over targets)"})
    figs.append({"type": "scatter", "x": per_sur_gs.tolist(), "y": per_sur_asr.tolist(),
                 "file": "fig5_asr_vs_similarity.png", "title": "ASR vs gradient similarity (every surrogate)",
                 "xlabel": "mean gradient similarity", "ylabel": "untargeted ASR (mean over targets)"})
    # SAM&JR vs ST over every target, budget, attack and mode (seed means)
    diffs = []
    for method in cfg["attack"]["methods"]:
        for mode in modes:
            for tgt in targets:
                for eps in budgets:
                    v = runs(lambda e, a, tgt=tgt, eps=eps, mode=mode, method=method: _asr(e, method, mode, eps, tgt))
                    diffs.append(float(v[:, names.index("SAM&JR")].mean() - v[:, names.index("ST")].mean()))
    findings["sam_jr_vs_st"] = {"mean_asr_difference": float(np.mean(diffs)), "wins": int(np.sum(np.array(diffs) > 0)),
                                "cells": len(diffs), "beats_st": bool(np.mean(diffs) > 0)}
    bounds = [evals[(m, s)]["bound"][t] for m in names for s in seeds for t in targets]
    values = [b["value"] for b in bounds if b["value"] is not None and math.isfinite(b["value"])]
    findings["theorem1_bound"] = {"vacuous": int(sum(1 for b in bounds if b["vacuous"])), "evaluated": len(bounds),
                                  "undefined_eps_le_cG": int(sum(1 for b in bounds if b["c_G"] >= b["eps"])),
                                  "max": max(values, default=None),
                                  "empirical_mean": float(np.mean([b["empirical"] for b in bounds]))}
    return {"asr_table": asr_rows, "statistics": stat_rows, "figures": figs, "findings": findings,
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


def _write_csv(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


# ----------------------------------------------------------------------------- run

def run(config: dict | str | None = None, out_dir: str | Path = "results/surrogates", progress: bool = True,
        quick: bool | None = None) -> dict:
    """Train (or reuse) the zoo and targets, evaluate every surrogate, write JSON/CSV/PNG to ``out_dir``.

    Returns the ``pyadvt.result/1`` dict (also written to ``out_dir/result.json``).
    """
    cfg = resolve(config, quick)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = CellStore(out / "cells")
    timings = Timings()
    train, test = experiment_data(cfg["dataset"], seed=int(cfg["data_seed"]))
    shape = tuple(train.x.shape[1:])
    n = min(int(cfg["eval"]["n_samples"]), len(test))
    x, y = test.x[:n], test.y[:n]
    members = zoo_members(cfg)
    train_spec = {"train": cfg["train"], "surrogate": cfg["surrogate"], "data_seed": cfg["data_seed"]}
    if cfg["dataset"]["name"] != "digits":
        train_spec["dataset"] = cfg["dataset"]

    def member_key(m, s):
        return ("member", m["name"], s, _digest({**train_spec, "zoo": cfg["zoo"], "member": m}))

    def target_key(arch):
        spec = {"train": cfg["train"], "arch": arch, "data_seed": cfg["data_seed"]}
        if cfg["dataset"]["name"] != "digits":
            spec["dataset"] = cfg["dataset"]
        return ("target", arch, _digest(spec))

    def train_fn(cell):
        if cell[0] == "target":
            model, res = _train_cell(store, cfg, train, test, "target", {"arch": cell[1]}, seed=100)
        else:
            spec = next(m for m in members if m["name"] == cell[1])
            model, res = _train_cell(store, cfg, train, test, "member", spec, seed=cell[2])
        return store.put(cell, res, checkpoint=model.state_dict())

    t_keys = {arch: target_key(arch) for arch in cfg["targets"]}
    m_keys = {(m["name"], s): member_key(m, s) for s in cfg["seeds"] for m in members}
    with timings("train"):
        trained = run_cells(list(t_keys.values()) + list(m_keys.values()), train_fn, store, progress=progress,
                            desc="train zoo")
    targets = {a: _load(store, k, build(a, in_shape=shape, **TARGET_KWARGS[a])) for a, k in t_keys.items()}
    eval_digest = _digest({"eval": cfg["eval"], "attack": cfg["attack"],
                           "targets": {a: k[2] for a, k in t_keys.items()}})
    with timings("target_smoothness"):
        target_smooth = {a: smoothness(t, x, y, method=cfg["eval"]["smoothness_method"], progress=False).max
                         for a, t in targets.items()}

    def eval_fn(cell):
        name, seed = cell[1], cell[2]
        model = _load(store, m_keys[(name, seed)], _surrogate(cfg, shape))
        return evaluate_surrogate(model, targets, x, y, cfg, target_smooth)

    e_keys = {(m["name"], s): ("eval", m["name"], s, m_keys[(m["name"], s)][3], eval_digest)
              for s in cfg["seeds"] for m in members}
    with timings("evaluate"):
        ev = run_cells(list(e_keys.values()), eval_fn, store, progress=progress, desc="evaluate zoo")
    evals = {k: ev[v] for k, v in e_keys.items()}
    accs = {k: trained[v]["accuracy"] for k, v in m_keys.items()}
    with timings("aggregate"):
        agg = aggregate(cfg, members, evals, accs)
        _write_csv(agg["asr_table"], out / "asr_table.csv")
        _write_csv(agg["statistics"], out / "statistics.csv")
        specs = []
        for spec in agg["figures"]:
            spec = dict(spec)
            plot({k: v for k, v in spec.items() if k != "file"}, out / spec.pop("file"))
            specs.append(spec)
    members_out = {f"{m}/seed{s}": {"accuracy": accs[(m, s)], **evals[(m, s)]} for (m, s) in evals}
    f = agg["findings"]
    notes = [f"little robustness ({k[len('little_robustness_'):]}): rise-then-fall={v['rise_then_fall']} over AT "
             f"surrogates with clean accuracy >= {v['min_clean_accuracy']:g} (kept eps {v['kept_eps']}, dropped "
             f"{v['dropped_eps']}; ST {v['st']:.3f}, best {v['best']} at AT eps {v['best_at_eps']}, "
             f"largest kept AT {v['largest_at']})"
             for k, v in f.items() if k.startswith("little_robustness_")]
    s = f["sam_jr_vs_st"]
    notes.append(f"SAM&JR vs ST: mean ASR difference {s['mean_asr_difference']:+.4f} over {s['cells']} "
                 f"(attack, mode, target, budget) cells, SAM&JR higher in {s['wins']}")
    b = f["theorem1_bound"]
    notes.append(f"Theorem-1 lower bound vacuous in {b['vacuous']} of {b['evaluated']} (surrogate, target) "
                 f"evaluations ({b['undefined_eps_le_cG']} with eps <= c_G, where it says nothing); largest finite "
                 f"value {b['max']}; mean empirical Pr(T_r = 1) {b['empirical_mean']:.3f}")
    table_rows = [[r["mode"], r["target"], r["eps"], r["r_accuracy"], r["r_fooling"], r["r_smoothness"],
                   r["r_similarity"], r["R2_1"], r["R2_2"]] for r in agg["statistics"]]
    result = make_result(
        "surrogates", cfg,
        {"members": members_out, "targets": {a: trained[k] for a, k in t_keys.items()},
         "target_smoothness_max": target_smooth, "asr_table": agg["asr_table"], "statistics": agg["statistics"],
         "findings": f, "mean_untargeted_asr": agg["mean_untargeted_asr"]},
        timings=timings, seeds=cfg["seeds"],
        summary={"members": len(members), "seeds": len(cfg["seeds"]),
                 "little_robustness_any": any(v["rise_then_fall"] for k, v in f.items()
                                              if k.startswith("little_robustness_")),
                 "sam_jr_beats_st": s["beats_st"], "sam_jr_minus_st_asr": s["mean_asr_difference"]},
        figures=specs,
        tables=[{"title": "Table VI: Pearson r with ASR and OLS R^2 (PGD)",
                 "columns": ["mode", "target", "eps", "r_Acc", "r_FP", "r_MS", "r_GS", "R2_1", "R2_2"],
                 "rows": table_rows}],
        notes=notes)
    write_result(result, out)
    render_report(result, out, title="Seed 001: surrogate zoo on digits")
    return result


# ----------------------------------------------------------------------------- CLI

# --dataset presets: "scale" for 28x28 images (cutout squares scaled 8x8 -> 28x28; the attacks' L-inf
# budgets stay in [0, 1] pixel units; the L2 AT budgets x 3.5 = sqrt(784 / 64), the L2 norm of the same
# per-pixel change on 12.25x the pixels); "budget": 2000 training images, 8 epochs
_MNIST_LIKE = {
    "scale": {"dataset": {"train_size": 2000, "test_size": 500},
              "zoo": {"cutout": [10, 16], "at_eps": [0.175, 0.35, 0.875, 1.75, 3.5, 7.0]},
              "eval": {"n_samples": 200, "batch_size": 200}},
    "budget": {"train": {"epochs": 8}},
}
DATASET_PRESETS: dict = {"fashion-mnist": _MNIST_LIKE, "mnist": _MNIST_LIKE, "kmnist": _MNIST_LIKE}

add_arguments, main = experiment_cli(
    "surrogates", run, resolve=lambda config, quick, overrides: resolve(config, quick=quick, overrides=overrides),
    presets=DATASET_PRESETS)
