"""Rank candidate source models or attack surrogates by adversarial transferability.

``pyadvt rank sources``: seed 000's use - which pretrained source will transfer best to a target
task? Each source is scored against a cheap *reference* model trained on the target data by
``tau1 * tau2`` (SPEC section 2, Defs. 2-3: top-singular-vector alignment times deviation
transferability) and by the eq. (2) loss (reference loss on PGD examples made on the source against
its own prediction). With ``--probe`` the ranking is validated by linear probing every source on
the target data: Spearman correlation of each score with the probe accuracy, with a 95% CI.

``pyadvt rank surrogates``: seed 001's use - which surrogate makes the most transferable attacks?
Each surrogate attacks the evaluation data; the attack success rate (ASR, ``1 - acc_target``) is
measured on every target, and the predictors of seed 001 (model smoothness ``sigma_F``, mean
gradient similarity with the targets) are computed and correlated with the measured ASR.

Models are given as ``NAME=SPEC`` where SPEC is a checkpoint written by
:func:`pyadvt.train.save_checkpoint` or a Python entry point ``package.module:callable`` returning
an ``nn.Module`` (or naming one). Every source/surrogate is one resumable cell
(:class:`~pyadvt.utils.sweep.CellStore` under ``OUT/cells``) and cells are sharded over
``torchrun`` ranks (:func:`~pyadvt.utils.distributed.map_cells`).

Example (Python)::

    from pyadvt.commands.rank import rank_sources
    ranking = rank_sources({"a": net_a, "b": net_b}, reference, target_test, target_train=target_train)
    ranking["rows"][0]["name"]   # best source by tau1 * tau2
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from pyadvt.attacks import build_attack
from pyadvt.data import TensorData, digits, load_dataset
from pyadvt.metrics import (adversarial_transferability, empirical_transferability, gradient_similarity,
                            smoothness, transferability)
from pyadvt.report import Timings, make_result, publish
from pyadvt.train import evaluate, load_checkpoint
from pyadvt.transfer.finetune import linear_probe
from pyadvt.utils import distributed
from pyadvt.utils.config import add_config_arguments, resolve_config
from pyadvt.utils.progress import log, set_quiet
from pyadvt.utils.sweep import CellStore, config_digest

__all__ = ["spearman_ci", "format_spearman", "load_model", "rank_sources", "rank_surrogates", "sources_report", "surrogates_report"]


def spearman_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Spearman rank correlation of ``a`` and ``b`` with a Fisher-z confidence interval.

    The interval uses ``z = atanh(rho)`` with standard error ``sqrt(1.06 / (n - 3))`` (Fieller,
    Hartley & Pearson 1957); pairs with a non-finite entry are dropped. ``rho``/bounds are ``None``
    when fewer than 3 pairs remain (or a side is constant); the bounds need ``n >= 4`` and
    ``|rho| < 1``.

    Example:
        >>> r = spearman_ci([1, 2, 3, 4, 5], [2, 4, 5, 9, 10])
        >>> r["rho"], r["n"], r["lower"] < 1.0
        (1.0, 5, True)
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out: dict[str, Any] = {"rho": None, "lower": None, "upper": None, "p": None, "n": int(x.size),
                           "confidence": confidence}
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    res = stats.spearmanr(x, y)
    rho = float(res.statistic)
    out.update(rho=round(rho, 12), p=float(res.pvalue))
    if x.size >= 4 and abs(rho) < 1:  # Fisher z is unbounded at |rho| = 1: no interval
        z, se = math.atanh(rho), math.sqrt(1.06 / (x.size - 3))
        q = stats.norm.ppf((1 + confidence) / 2)
        out.update(lower=math.tanh(z - q * se), upper=math.tanh(z + q * se))
    return out


def load_model(spec: str, device: str | torch.device = "cpu") -> nn.Module:
    """An ``nn.Module`` from a checkpoint path or a ``package.module:callable`` entry point (eval mode).

    Raises ``FileNotFoundError`` for a missing checkpoint and ``ValueError`` naming ``spec`` for an
    entry point that cannot be imported or does not give a module.
    """
    if ":" in spec and not os.path.exists(spec):
        module_name, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load model entry point {spec!r}: {exc}") from None
        model = obj() if callable(obj) and not isinstance(obj, nn.Module) else obj
        if not isinstance(model, nn.Module):
            raise ValueError(f"entry point {spec!r} gave a {type(model).__name__}, not a torch.nn.Module")
        return model.to(device).eval()
    if not os.path.exists(spec):
        raise FileNotFoundError(f"model checkpoint not found: {spec}")
    return load_checkpoint(spec, map_location=device)[0]


def _check_compatible(models: Mapping[str, nn.Module], x: torch.Tensor, role: str) -> None:
    for name, model in models.items():
        try:
            with torch.no_grad():
                was = model.training
                model.eval()
                out = model(x[:1])
                model.train(was)
        except Exception as exc:  # noqa: BLE001 - any failure here means "incompatible with the data"
            raise ValueError(f"incompatible models: {role} {name!r} cannot take inputs of shape "
                             f"{tuple(x.shape[1:])}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from None
        if out.ndim != 2:
            raise ValueError(f"incompatible models: {role} {name!r} must return [B, classes] logits, "
                             f"got shape {tuple(out.shape)}")


def _ranks(values: Sequence[float | None], descending: bool = True) -> list[int | None]:
    """1-based ranks (1 = best); ``None`` values are unranked."""
    idx = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    idx.sort(key=lambda i: -values[i] if descending else values[i])
    out: list[int | None] = [None] * len(values)
    for r, i in enumerate(idx, 1):
        out[i] = r
    return out


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def rank_sources(sources: Mapping[str, nn.Module], reference: nn.Module, target_test: TensorData, *,
                 target_train: TensorData | None = None, eps: float = 0.1, steps: int = 10, n_eval: int = 200,
                 probe: bool = True, probe_epochs: int = 5, probe_lr: float = 0.05, seed: int = 0,
                 store: CellStore | None = None, progress: bool = True, cell_prefix: tuple = ()) -> dict:
    """Rank ``sources`` by adversarial transferability to ``reference`` on the target data.

    Args:
        sources: ``{name: classifier}`` taking the target inputs ``[B, C, H, W]`` (any number of classes).
        reference: a model trained on the target task (the cheap proxy, seed 000).
        target_test: target evaluation data; the first ``n_eval`` samples are used.
        target_train: target training data for the linear-probe validation (needed when ``probe``).
        eps, steps: L-inf PGD budget and iterations of the eq. (2) attack.
        probe, probe_epochs, probe_lr: linear probing of each source (new head, SPEC section 4).
        seed: seed of the attacks and probes; store/progress: resumable cells and tqdm.
        cell_prefix: prepended to the cell keys ``("source", name)`` (e.g. a digest of the settings).

    Returns:
        ``{"rows": [...], "spearman": {...}, "n_eval": N}``: one row per source sorted by
        ``tau1 * tau2`` (best first) with ``tau1``, ``tau2``, ``score`` (= tau1 * tau2),
        ``eq2_loss``, ``eq2_accuracy``, ``probe_accuracy``, ``rank_score``, ``rank_eq2`` (and
        ``rank_probe``); ``spearman`` holds :func:`spearman_ci` of each score with the probe accuracy.
    """
    if not sources:
        raise ValueError("rank_sources needs at least one source model")
    if probe and target_train is None:
        raise ValueError("probe=True needs target_train (the target training data)")
    x, y = target_test.x[:n_eval], target_test.y[:n_eval]
    _check_compatible({**sources, "(reference)": reference}, x, "source")
    if probe:
        for name, src in sources.items():
            if not isinstance(getattr(src, "head", None), nn.Linear) or getattr(src, "blocks", None) is None:
                raise ValueError(f"incompatible models: source {name!r} has no linear 'head' and 'blocks' for "
                                 "linear probing; wrap it with pyadvt.models.wrap or turn probing off (--no-probe)")
    names = list(sources)

    def cell(key):
        src = sources[key[-1]]
        tr = adversarial_transferability(src, reference, x)
        emp = empirical_transferability(src, reference, x, y, eps=[eps], steps=steps, seed=seed)
        out = {"tau1": _finite(tr.tau1.tau1), "tau2": _finite(tr.tau2.tau2),
               "eq2_loss": _finite(emp.transfer_loss()[0]), "eq2_accuracy": _finite(emp.correct[0].double().mean()),
               "n_undefined": int(tr.tau1.n_undefined)}
        out["score"] = None if out["tau1"] is None or out["tau2"] is None else out["tau1"] * out["tau2"]
        if probe:
            probed = linear_probe(src, target_train, num_classes=target_train.num_classes, epochs=probe_epochs,
                                  lr=probe_lr, seed=seed)
            out["probe_accuracy"] = _finite(evaluate(probed.model, target_test)["accuracy"])
        return out

    cells = distributed.map_cells([(*cell_prefix, "source", n) for n in names], cell, store, progress=progress,
                                  desc="rank sources")
    rows = [dict(name=n, **cells[(*cell_prefix, "source", n)]) for n in names]
    for key, col in (("rank_score", "score"), ("rank_eq2", "eq2_loss"), ("rank_probe", "probe_accuracy")):
        if col == "probe_accuracy" and not probe:
            continue
        for row, r in zip(rows, _ranks([row[col] for row in rows])):
            row[key] = r
    spearman = {}
    if probe:
        acc = [r["probe_accuracy"] for r in rows]
        spearman = {f"{col}_vs_probe": spearman_ci([_nan(r[col]) for r in rows], [_nan(a) for a in acc])
                    for col in ("score", "tau1", "tau2", "eq2_loss")}
    rows.sort(key=lambda r: (r["rank_score"] is None, r["rank_score"] or 0))
    return {"rows": rows, "spearman": spearman, "n_eval": int(x.shape[0]), "eps": eps}


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def rank_surrogates(surrogates: Mapping[str, nn.Module], targets: Mapping[str, nn.Module], data: TensorData, *,
                    attack: str = "pgd", eps: float = 0.1, steps: int = 10, norm: str = "linf", n_eval: int = 200,
                    n_smooth: int = 64, smoothness_method: str = "lanczos", seed: int = 0,
                    store: CellStore | None = None, progress: bool = True, cell_prefix: tuple = ()) -> dict:
    """Measure each surrogate's attack success on every target and its seed-001 predictors.

    Args:
        surrogates, targets: ``{name: classifier}`` on the same inputs and labels. A target with the
            same name as the surrogate (the same model) is the white-box case and is left out of the
            surrogate's mean ASR.
        data: evaluation data (first ``n_eval`` samples); labels are the task's true labels.
        attack, eps, steps, norm: the attack (:func:`pyadvt.attacks.build_attack`).
        n_smooth, smoothness_method: samples and method of the smoothness ``sigma_F`` (SPEC section 3).
        seed, store, progress: attack seed, resumable cells and tqdm.
        cell_prefix: prepended to the cell keys ``("surrogate", name)``.

    Returns:
        ``{"rows": [...], "asr": [[...]], "rate": [[...]], "similarity": [[...]], "surrogates": [...],
        "targets": [...], "spearman": {...}}``: rows sorted by mean transfer ASR (best first) with
        ``accuracy``, ``fooling``, ``mean_asr``, ``smoothness``, ``mean_similarity``; matrices are
        surrogate x target; ``spearman`` correlates each predictor with the mean ASR over surrogates.
    """
    if not surrogates or not targets:
        raise ValueError("rank_surrogates needs at least one surrogate and one target")
    x, y = data.x[:n_eval], data.y[:n_eval]
    _check_compatible(surrogates, x, "surrogate")
    _check_compatible(targets, x, "target")
    tnames = list(targets)

    def cell(key):
        sur = surrogates[key[-1]]
        atk = build_attack(attack, sur, eps, steps=steps, norm=norm, seed=seed)
        x_adv = atk(x, y)
        per = {}
        for t in tnames:
            rates = transferability(sur, targets[t], x, y, x_adv)
            per[t] = {"asr": _finite(rates.asr), "rate": _finite(rates.rate),
                      "similarity": _finite(gradient_similarity(sur, targets[t], x, y).mean)}
        sm = smoothness(sur, x[:n_smooth], y[:n_smooth], method=smoothness_method, seed=seed, progress=False)
        return {"accuracy": _finite(rates.acc_surrogate), "fooling": _finite(rates.fooling),
                "smoothness": _finite(sm.mean), "smoothness_max": _finite(sm.max), "targets": per}

    snames = list(surrogates)
    skey = {n: (*cell_prefix, "surrogate", n) for n in snames}
    cells = distributed.map_cells(list(skey.values()), cell, store, progress=progress, desc="rank surrogates")
    rows = []
    for n in snames:
        c = cells[skey[n]]
        others = [t for t in tnames if t != n] or tnames
        asr = [c["targets"][t]["asr"] for t in others if c["targets"][t]["asr"] is not None]
        sim = [c["targets"][t]["similarity"] for t in others if c["targets"][t]["similarity"] is not None]
        rows.append({"name": n, "accuracy": c["accuracy"], "fooling": c["fooling"],
                     "mean_asr": float(np.mean(asr)) if asr else None, "smoothness": c["smoothness"],
                     "smoothness_max": c["smoothness_max"],
                     "mean_similarity": float(np.mean(sim)) if sim else None})
    mean_asr = [_nan(r["mean_asr"]) for r in rows]
    spearman = {f"{col}_vs_asr": spearman_ci([_nan(r[col]) for r in rows], mean_asr)
                for col in ("smoothness", "mean_similarity", "accuracy", "fooling")}
    for row, r in zip(rows, _ranks([r["mean_asr"] for r in rows])):
        row["rank_asr"] = r
    for row, r in zip(rows, _ranks([r["smoothness"] for r in rows], descending=False)):
        row["rank_smoothness"] = r  # smoother (smaller sigma_F) predicts more transferable (seed 001)
    for row, r in zip(rows, _ranks([r["mean_similarity"] for r in rows])):
        row["rank_similarity"] = r

    def matrix(field: str) -> list[list]:
        return [[cells[skey[s]]["targets"][t][field] for t in tnames] for s in snames]

    rows.sort(key=lambda r: (r["rank_asr"] is None, r["rank_asr"] or 0))
    return {"rows": rows, "surrogates": snames, "targets": tnames, "asr": matrix("asr"), "rate": matrix("rate"),
            "similarity": matrix("similarity"), "spearman": spearman, "n_eval": int(x.shape[0]),
            "attack": {"name": attack, "eps": eps, "steps": steps, "norm": norm}}


def format_spearman(s: Mapping) -> str:
    """``"0.812 [0.31, 0.96] (n=9)"`` for a :func:`spearman_ci` dict (``"undefined"`` without rho)."""
    if s.get("rho") is None:
        return "undefined"
    ci = f" [{s['lower']:.2f}, {s['upper']:.2f}]" if s.get("lower") is not None else ""
    return f"{s['rho']:.3f}{ci} (n={s['n']})"


def sources_report(ranking: Mapping) -> dict:
    """Figure specs, tables and a summary for a :func:`rank_sources` result (for ``make_result``)."""
    rows = ranking["rows"]
    names = [r["name"] for r in rows]
    cols = ["rank", "source", "tau1", "tau2", "tau1*tau2", "eq. 2 loss", "eq. 2 ref. accuracy"]
    probe = "probe_accuracy" in rows[0]
    if probe:
        cols.append("probe accuracy")
    table = [[r["rank_score"], r["name"], r["tau1"], r["tau2"], r["score"], r["eq2_loss"], r["eq2_accuracy"]]
             + ([r["probe_accuracy"]] if probe else []) for r in rows]
    figures = [{"type": "bars", "values": [r["score"] for r in rows], "labels": names, "ylabel": "tau1 * tau2",
                "title": "Source ranking by adversarial transferability (tau1 * tau2)"}]
    summary: dict[str, Any] = {"best source (tau1 * tau2)": names[0] if names else None}
    if probe:
        acc = [r["probe_accuracy"] for r in rows]
        for col, label in (("score", "tau1 * tau2"), ("eq2_loss", "eq. 2 transfer loss")):
            s = ranking["spearman"][f"{col}_vs_probe"]
            figures.append({"type": "scatter", "x": [r[col] for r in rows], "y": acc, "labels": names,
                            "xlabel": label, "ylabel": "linear-probe accuracy on the target",
                            "title": f"{label} vs knowledge transfer (Spearman {format_spearman(s)})"})
            summary[f"spearman {label} vs probe accuracy"] = format_spearman(s)
    return {"figures": figures, "tables": [{"title": "Source ranking", "columns": cols, "rows": table}],
            "summary": summary}


def surrogates_report(ranking: Mapping) -> dict:
    """Figure specs, tables and a summary for a :func:`rank_surrogates` result."""
    rows = ranking["rows"]
    names = [r["name"] for r in rows]
    a = ranking["attack"]
    figures = [
        {"type": "heatmap", "matrix": ranking["asr"], "row_labels": ranking["surrogates"],
         "col_labels": ranking["targets"], "xlabel": "target", "ylabel": "surrogate (source of the attack)",
         "title": f"Transfer attack success rate ({a['name']}, eps={a['eps']:g}, {a['norm']})", "vmin": 0, "vmax": 1},
        {"type": "heatmap", "matrix": ranking["similarity"], "row_labels": ranking["surrogates"],
         "col_labels": ranking["targets"], "xlabel": "target", "ylabel": "surrogate",
         "title": "Mean gradient similarity", "cmap": "magma"},
        {"type": "scatter", "x": [r["smoothness"] for r in rows], "y": [r["mean_asr"] for r in rows],
         "labels": names, "xlabel": "smoothness sigma_F (mean top input-Hessian eigenvalue)",
         "ylabel": "mean transfer ASR", "title": "Smoothness vs transferability (seed 001)"},
        {"type": "scatter", "x": [r["mean_similarity"] for r in rows], "y": [r["mean_asr"] for r in rows],
         "labels": names, "xlabel": "mean gradient similarity with the targets", "ylabel": "mean transfer ASR",
         "title": "Gradient similarity vs transferability (seed 001)"},
    ]
    cols = ["rank", "surrogate", "mean transfer ASR", "clean accuracy", "fooling prob.", "smoothness (mean)",
            "smoothness (max)", "mean similarity"]
    table = [[r["rank_asr"], r["name"], r["mean_asr"], r["accuracy"], r["fooling"], r["smoothness"],
              r["smoothness_max"], r["mean_similarity"]] for r in rows]
    summary = {"best surrogate (mean transfer ASR)": names[0] if names else None}
    summary.update({f"spearman {k.replace('_vs_asr', '').replace('_', ' ')} vs ASR": format_spearman(v)
                    for k, v in ranking["spearman"].items()})
    return {"figures": figures, "tables": [{"title": "Surrogate ranking", "columns": cols, "rows": table}],
            "summary": summary}


# -- CLI -------------------------------------------------------------------------------------------
SOURCES_DEFAULTS: dict[str, Any] = {
    "sources": {}, "reference": None, "dataset": "digits", "data_root": None, "n_eval": 200, "eps": 0.1,
    "steps": 10, "probe": True, "probe_epochs": 5, "probe_lr": 0.05, "seed": 0, "device": "cpu",
}
SURROGATES_DEFAULTS: dict[str, Any] = {
    "surrogates": {}, "targets": {}, "dataset": "digits", "data_root": None, "n_eval": 200, "attack": "pgd",
    "eps": 0.1, "steps": 10, "norm": "linf", "n_smooth": 64, "smoothness_method": "lanczos", "seed": 0,
    "device": "cpu",
}


def _named_specs(items: Sequence[str] | None, flag: str) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep:
            name, spec = Path(item).stem or item, item
        if not name or not spec:
            raise ValueError(f"{flag} {item!r} must look like NAME=CHECKPOINT or NAME=package.module:callable")
        out[name] = spec
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True)
    for what, doc in (("sources", "rank source models for a target task (tau1*tau2, eq. 2; seed 000)"),
                      ("surrogates", "rank attack surrogates by transfer ASR and smoothness/similarity (seed 001)")):
        p = sub.add_parser(what, help=doc, description=doc)
        add_config_arguments(p)
        if what == "sources":
            p.add_argument("--source", action="append", metavar="NAME=SPEC",
                           help="a candidate source: checkpoint file or package.module:callable (repeatable)")
            p.add_argument("--reference", metavar="SPEC", help="reference model trained on the target task")
            p.add_argument("--no-probe", dest="probe", action="store_const", const=False, default=None,
                           help="skip the linear-probing validation")
        else:
            p.add_argument("--surrogate", action="append", metavar="NAME=SPEC", help="a candidate surrogate (repeatable)")
            p.add_argument("--target", action="append", metavar="NAME=SPEC", help="a target model (repeatable)")
            p.add_argument("--attack", default=None, help="attack name (default pgd)")
        p.add_argument("--dataset", default=None, help="target data: digits (default) or a pyadvt.data dataset")
        p.add_argument("--data-root", default=None, help="directory holding the dataset files")
        p.add_argument("--eps", type=float, default=None, help="attack budget (L-inf pixels, default 0.1)")
        p.add_argument("--n-eval", type=int, default=None, help="evaluation samples (default 200)")
        p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
        p.add_argument("--device", default=None, help="cpu or cuda[:k] (default cpu)")
        p.add_argument("--out", default="pyadvt-rank", help="output directory (result, report, cells)")
        p.add_argument("--fresh", action="store_true", help="ignore cells stored by an earlier run")
        p.add_argument("--quiet", action="store_true", help="no progress bars or status messages")


def _data(cfg: Mapping) -> tuple[TensorData, TensorData]:
    if cfg["dataset"] == "digits":
        return digits(seed=cfg["seed"])
    return (load_dataset(cfg["dataset"], cfg["data_root"], split="train"),
            load_dataset(cfg["dataset"], cfg["data_root"], split="test"))


def _store(out: Path, fresh: bool) -> CellStore:
    cells = out / "cells"
    if fresh and distributed.is_main() and cells.exists():
        import shutil

        shutil.rmtree(cells)
    distributed.barrier()
    return CellStore(cells)


def main(args: argparse.Namespace) -> int:
    from pyadvt.cli import UserError

    if args.quiet:
        set_quiet(True)
    sources = args.what == "sources"
    defaults = SOURCES_DEFAULTS if sources else SURROGATES_DEFAULTS
    flags = {"dataset": args.dataset, "data_root": args.data_root, "eps": args.eps, "n_eval": args.n_eval,
             "seed": args.seed, "device": args.device}
    if sources:
        flags.update(sources=_named_specs(args.source, "--source"), reference=args.reference, probe=args.probe)
    else:
        flags.update(surrogates=_named_specs(args.surrogate, "--surrogate"),
                     targets=_named_specs(args.target, "--target"), attack=args.attack)
    cfg = resolve_config(defaults, args.config, overrides=args.overrides, flags=flags)
    timings = Timings()
    out = Path(args.out)
    with distributed.session():
        with timings("load"):
            train, test = _data(cfg)
            load = lambda specs: {n: load_model(s, cfg["device"]) for n, s in specs.items()}  # noqa: E731
            if sources:
                if not cfg["sources"] or not cfg["reference"]:
                    raise UserError("rank sources needs at least one --source and a --reference")
                models, reference = load(cfg["sources"]), load_model(cfg["reference"], cfg["device"])
            else:
                if not cfg["surrogates"] or not cfg["targets"]:
                    raise UserError("rank surrogates needs at least one --surrogate and one --target")
                models, targets = load(cfg["surrogates"]), load(cfg["targets"])
        store = _store(out, args.fresh)
        prefix = (config_digest(cfg),)  # cells of another configuration are never reused
        dev = torch.device(cfg["device"])
        with timings("rank"):
            if sources:
                ranking = rank_sources(models, reference, test.to(dev), target_train=train.to(dev),
                                       eps=cfg["eps"], steps=cfg["steps"], n_eval=cfg["n_eval"], probe=cfg["probe"],
                                       probe_epochs=cfg["probe_epochs"], probe_lr=cfg["probe_lr"], seed=cfg["seed"],
                                       store=store, cell_prefix=prefix)
                extra = sources_report(ranking)
            else:
                ranking = rank_surrogates(models, targets, test.to(dev), attack=cfg["attack"], eps=cfg["eps"],
                                          steps=cfg["steps"], norm=cfg["norm"], n_eval=cfg["n_eval"],
                                          n_smooth=cfg["n_smooth"], smoothness_method=cfg["smoothness_method"],
                                          seed=cfg["seed"], store=store, cell_prefix=prefix)
                extra = surrogates_report(ranking)
        result = make_result(f"rank-{args.what}", cfg, ranking, timings=timings, seeds={"seed": cfg["seed"]},
                             device=cfg["device"], **extra)
        paths = publish(result, out)
    if paths:
        best = ranking["rows"][0]["name"]
        log(f"best {args.what[:-1]}: {best}")
        print(paths["html"])
    return 0

