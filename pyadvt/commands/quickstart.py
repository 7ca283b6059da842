"""Train a small surrogate zoo on digits, measure transferability, rank sources, write a report.

``pyadvt quickstart`` is pyadvt's main job end to end on scikit-learn's bundled digits (nothing is
downloaded), in a few minutes on 2 CPU cores:

1. **Zoo**: every architecture in ``zoo.architectures`` trained with every recipe in
   ``zoo.methods``: ``st`` (cross-entropy), ``at`` (PGD adversarial training, docs/theory.md §4) and
   ``sam_jr`` (SAM on the Jacobian-regularised loss, seed 001's best surrogates).
2. **Surrogates** (seed 001): each model attacks the test set (PGD); transfer attack success on
   every other model (the ASR matrix), smoothness ``sigma_F`` and gradient similarity, and their
   rank correlation with the measured ASR.
3. **Sources** (seed 000 sec. 4.1): sources of one architecture are trained on digit mixtures with a
   growing share of the target's classes; the target is those classes under a shift (by default
   low resolution) with its own reference model. Sources are ranked by ``tau1 * tau2`` and the
   eq. (2) loss against the reference, and the ranking is validated by linear probing (Spearman
   with a 95% CI); seed 000 predicts that sources closer to the target rank higher.
4. **Report**: ``OUT/result.json`` (``pyadvt.result/1``), ``OUT/report.html`` (self-contained) and
   ``OUT/report.md`` with ``OUT/figures/``.

Every trained model and every ranking cell is stored under ``OUT/cells`` as soon as it finishes, keyed
by a digest of the settings it depends on, so an interrupted or re-configured run reuses every cell
still valid (``--fresh`` starts over); under ``torchrun
--nproc_per_node=K -m pyadvt quickstart`` the cells are shared out over the K ranks. Settings come
from the defaults below, ``--config FILE`` (YAML/TOML) and ``--set key.sub=value``.

Example::

    pyadvt quickstart --out quickstart-report
"""

from __future__ import annotations

import argparse
import copy
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pyadvt.commands.rank import format_spearman, sources_report, surrogates_report
from pyadvt.selection import rank_sources, rank_surrogates, spearman_ci
from pyadvt.data import TensorData, digits
from pyadvt.data.corruptions import gaussian_noise
from pyadvt.models import MODELS, build
from pyadvt.report import Timings, make_result, publish
from pyadvt.train import evaluate, fit, training_recipe
from pyadvt.transfer.target_transforms import low_pass, low_resolution
from pyadvt.utils import distributed
from pyadvt.utils.config import FreeForm, add_config_arguments, dump_config, resolve_config
from pyadvt.utils.progress import log, set_quiet
from pyadvt.utils.sweep import CellStore, config_digest

__all__ = ["DEFAULTS", "METHODS", "run", "train_member", "shifted_target", "class_mixture"]

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "device": "cpu",
    "zoo": {
        "architectures": ["mlp", "cnn", "resnet"],
        "methods": ["st", "at", "sam_jr"],
        # constructor arguments per architecture (small widths keep the quickstart within minutes)
        "model_kwargs": FreeForm(mlp=FreeForm(), cnn=FreeForm(channels=[16, 32, 64]),
                                 resnet=FreeForm(widths=[8, 16, 32]), lenet=FreeForm()),
        "epochs": 3,
        "lr": 0.05,
        "batch_size": 64,
        "at": {"eps": 0.5, "norm": "l2", "steps": 3},
        "sam": {"rho": 0.05},
        "jr": {"lam": 0.05, "n_proj": 1},
    },
    "surrogates": {"attack": "pgd", "eps": 0.1, "steps": 10, "norm": "linf", "n_eval": 200, "n_smooth": 48,
                   "smoothness_method": "lanczos"},
    # seed 000 sec. 4.1: sources of one architecture trained on mixtures with a growing share of the
    # target's classes; the target (those classes, shifted by `transform`) has its own reference model
    "sources": {"architecture": "cnn", "target_classes": [5, 6, 7, 8, 9], "fractions": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                "samples": 600, "epochs": 3, "transform": "lowres", "eps": 0.1, "steps": 10, "n_eval": 200,
                "probe": True, "probe_epochs": 3, "probe_lr": 0.05},
}

METHODS = ("st", "at", "sam_jr")
TRANSFORMS = ("none", "lowres", "lowpass", "noise")


def _validate(cfg: Mapping) -> None:
    zoo = cfg["zoo"]
    if not zoo["architectures"] or not zoo["methods"]:
        raise ValueError("config zoo.architectures and zoo.methods must not be empty")
    bad = [m for m in zoo["methods"] if m not in METHODS]
    if bad:
        raise ValueError(f"config zoo.methods: unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    bad = [a for a in zoo["architectures"] if a not in MODELS]
    if bad:
        raise ValueError(f"config zoo.architectures: unknown architecture {bad[0]!r}; choose from {', '.join(MODELS)}")
    src = cfg["sources"]
    if src["transform"] not in TRANSFORMS:
        raise ValueError(f"config sources.transform must be one of {', '.join(TRANSFORMS)}")
    if src["architecture"] not in MODELS:
        raise ValueError(f"config sources.architecture: unknown architecture {src['architecture']!r}")
    classes = src["target_classes"]
    if not classes or len(set(classes)) != len(classes) or not all(isinstance(c, int) and 0 <= c <= 9 for c in classes):
        raise ValueError(f"config sources.target_classes must be distinct digits 0-9, got {classes!r}")
    if not src["fractions"] or not all(0 <= f <= 1 for f in src["fractions"]):
        raise ValueError(f"config sources.fractions must be shares in [0, 1], got {src['fractions']!r}")
    if src["samples"] < 10 or src["epochs"] < 1:
        raise ValueError("config sources.samples must be >= 10 and sources.epochs >= 1")
    for key in ("epochs", "batch_size"):
        if zoo[key] < 1:
            raise ValueError(f"config zoo.{key} must be >= 1, got {zoo[key]}")
    _validate_attacks(cfg)


def _validate_attacks(cfg: Mapping) -> None:
    """The evaluation settings, checked before the zoo is trained (not after minutes of training)."""
    from pyadvt.attacks import build_attack
    from pyadvt.utils.validation import check_count, check_device

    check_device(cfg["device"], "config device (--device)", allow_auto=False)
    s = cfg["surrogates"]
    for section, key in (("surrogates", "n_eval"), ("surrogates", "n_smooth"), ("surrogates", "steps"),
                         ("sources", "n_eval"), ("sources", "steps")):
        check_count(cfg[section][key], f"config {section}.{key}")
    for section, attack, norm in (("surrogates", s["attack"], s["norm"]), ("sources", "pgd", "linf")):
        try:
            build_attack(attack, nn.Linear(1, 1), cfg[section]["eps"], steps=cfg[section]["steps"], norm=norm)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config {section} (attack/eps/norm/steps): {exc}") from None


def train_member(arch: str, method: str, train: TensorData, zoo: Mapping, seed: int) -> nn.Module:
    """One zoo model: ``build(arch)`` trained with ``method`` (``st`` | ``at`` | ``sam_jr``, docs/theory.md §4)."""
    torch.manual_seed(seed)
    model = build(arch, in_shape=train.in_shape, num_classes=train.num_classes,
                  **zoo["model_kwargs"].get(arch, {})).to(train.x.device)
    if method not in METHODS:
        raise ValueError(f"unknown training method {method!r}; choose from {', '.join(METHODS)}")
    at = zoo["at"]
    kwargs = training_recipe(method, model, strength=at["eps"] if method == "at" else zoo["jr"]["lam"],
                             seed=seed, norm=at["norm"], steps=at["steps"], n_proj=zoo["jr"]["n_proj"],
                             sam_rho=zoo["sam"]["rho"],
                             sgd={"lr": zoo["lr"], "momentum": 0.9, "weight_decay": 5e-4})
    fit(model, train, epochs=zoo["epochs"], lr=zoo["lr"], batch_size=zoo["batch_size"], seed=seed,
        progress=False, **kwargs)
    return model.eval()


def shifted_target(data: TensorData, classes: Sequence[int], transform: str, seed: int = 0) -> TensorData:
    """The target task for source ranking: the samples of ``classes`` (relabelled ``0..k-1`` in that
    order) under a distribution shift.

    ``transform``: ``none``, ``lowres`` (down to half resolution and back, seed 002 sec. 5),
    ``lowpass`` (keep the lowest 14% of 2-D frequencies) or ``noise`` (Gaussian, std 0.1).
    """
    keep = torch.isin(data.y, torch.tensor(list(classes), device=data.y.device))
    relabel = torch.full((int(data.y.max()) + 1,), -1, dtype=torch.long, device=data.y.device)
    relabel[torch.tensor(list(classes), device=data.y.device)] = torch.arange(len(classes), device=data.y.device)
    x, y = data.x[keep], relabel[data.y[keep]]
    if transform == "lowres":
        x = low_resolution(x, max(1, x.shape[-1] // 2))
    elif transform == "lowpass":
        x = low_pass(x)
    elif transform == "noise":
        x = gaussian_noise(x, 0.1, seed=seed)
    return TensorData(x.clamp(0, 1), y, len(classes))


def class_mixture(data: TensorData, classes: Sequence[int], fraction: float, samples: int, seed: int) -> TensorData:
    """``samples`` images of ``data``, ``round(fraction * samples)`` of them from ``classes`` and the rest
    from the other classes (drawn without replacement, seeded); labels unchanged (seed 000 sec. 4.1)."""
    inside = torch.isin(data.y, torch.tensor(list(classes), device=data.y.device))
    pools = inside.nonzero().flatten().cpu(), (~inside).nonzero().flatten().cpu()
    k = round(fraction * samples)
    if k > len(pools[0]) or samples - k > len(pools[1]):
        raise ValueError(f"config sources.samples={samples} is too large for the mixture {fraction:g}: only "
                         f"{len(pools[0])} images of the target classes and {len(pools[1])} others")
    g = torch.Generator().manual_seed(seed)
    idx = torch.cat([pools[0][torch.randperm(len(pools[0]), generator=g)[:k]],
                     pools[1][torch.randperm(len(pools[1]), generator=g)[:samples - k]]])
    return data.subset(idx.to(data.y.device))


def _zoo_cell(key: tuple, train: TensorData, test: TensorData, zoo: Mapping, seed: int, store: CellStore) -> dict:
    arch, method = key[-2:]
    start = time.perf_counter()
    model = train_member(arch, method, train, zoo, seed)
    result = {"arch": arch, "method": method, "accuracy": evaluate(model, test)["accuracy"],
              "train_seconds": time.perf_counter() - start}
    return store.put(key, result, checkpoint=model.state_dict())


def _load_member(key: tuple, store: CellStore, data: TensorData, zoo: Mapping) -> nn.Module:
    arch = key[-2]
    model = build(arch, in_shape=data.in_shape, num_classes=data.num_classes, **zoo["model_kwargs"].get(arch, {}))
    model.load_state_dict(store.load_checkpoint(key))
    return model.to(data.x.device).eval()


def run(config: Mapping | None = None, out_dir: str | Path = "pyadvt-quickstart", progress: bool = True,
        fresh: bool = False) -> dict:
    """Run the quickstart (see module docstring) and return its ``pyadvt.result/1`` dict.

    ``config`` is a partial configuration merged into :data:`DEFAULTS` (unknown keys are errors).
    Writes ``out_dir/result.json``, the report and the resumable cells under ``out_dir/cells``.
    """
    cfg = resolve_config(DEFAULTS, dict(config or {}))
    _validate(cfg)
    out = Path(out_dir)
    timings = Timings()
    seed, zoo = cfg["seed"], cfg["zoo"]
    device = torch.device(cfg["device"])
    cells_dir = out / "cells"
    if fresh and distributed.is_main() and cells_dir.exists():
        shutil.rmtree(cells_dir)
    distributed.barrier()
    store = CellStore(cells_dir)
    zoo_hash = config_digest(seed, zoo)

    with timings("data"):
        train, test = (d.to(device) for d in digits(seed=seed))
    names = [f"{a}-{m}" for a in zoo["architectures"] for m in zoo["methods"]]
    keys = [("zoo", zoo_hash, a, m) for a in zoo["architectures"] for m in zoo["methods"]]
    log(f"quickstart: training a zoo of {len(keys)} models ({', '.join(names)})")
    with timings("zoo"):
        members = distributed.map_cells(keys, lambda k: _zoo_cell(k, train, test, zoo, seed, store), store,
                                        progress=progress, desc="train zoo")
        models = {n: _load_member(k, store, train, zoo) for n, k in zip(names, keys)}

    log("quickstart: transfer attacks, smoothness and similarity across the zoo")
    s = cfg["surrogates"]
    with timings("surrogates"):
        surrogates = rank_surrogates(models, models, test, attack=s["attack"], eps=s["eps"], steps=s["steps"],
                                     norm=s["norm"], n_eval=s["n_eval"], n_smooth=s["n_smooth"],
                                     smoothness_method=s["smoothness_method"], seed=seed, store=store,
                                     progress=progress, cell_prefix=("surrogates", config_digest(zoo_hash, s)))

    src = cfg["sources"]
    arch, classes = src["architecture"], src["target_classes"]
    log(f"quickstart: ranking {arch} sources trained on class mixtures for a shifted target "
        f"(classes {classes}, {src['transform']})")
    with timings("sources"):
        t_train = shifted_target(train, classes, src["transform"], seed=seed)
        t_test = shifted_target(test, classes, src["transform"], seed=seed + 1)
        src_zoo = dict(zoo, epochs=src["epochs"])
        src_hash = config_digest(seed, zoo, src)
        src_names = [f"{round(100 * f)}% target classes" for f in src["fractions"]]
        src_keys = [("source_model", src_hash, i, arch, "st") for i in range(len(src_names))]
        ref_key = ("reference", src_hash, arch, "st")

        def source_cell(key):
            if key == ref_key:
                return _zoo_cell(key, t_train, t_test, src_zoo, seed + 1000, store)
            mix = class_mixture(train, classes, src["fractions"][key[2]], src["samples"], seed + key[2])
            return _zoo_cell(key, mix, test, src_zoo, seed, store)

        distributed.map_cells(src_keys + [ref_key], source_cell, store, progress=progress, desc="train sources")
        source_models = {n: _load_member(k, store, train, src_zoo) for n, k in zip(src_names, src_keys)}
        reference = _load_member(ref_key, store, t_train, src_zoo)
        sources = rank_sources(source_models, reference, t_test, target_train=t_train, eps=src["eps"],
                               steps=src["steps"], n_eval=src["n_eval"], probe=src["probe"],
                               probe_epochs=src["probe_epochs"], probe_lr=src["probe_lr"], seed=seed, store=store,
                               progress=progress, cell_prefix=("sources", src_hash))
        for row in sources["rows"]:
            row["target_class_fraction"] = src["fractions"][src_names.index(row["name"])]

    zoo_rows = [dict(name=n, **members[k]) for n, k in zip(names, keys)]
    rep_s, rep_t = surrogates_report(surrogates), sources_report(sources)
    figures = [{"type": "bars", "values": [r["accuracy"] for r in zoo_rows], "labels": names,
                "ylabel": "clean test accuracy", "title": "Zoo: clean accuracy on digits"}]
    figures += rep_s["figures"] + rep_t["figures"]
    figures.append({"type": "scatter", "x": [r["target_class_fraction"] for r in sources["rows"]],
                    "y": [r["score"] for r in sources["rows"]], "xlabel": "share of target classes in the source data",
                    "ylabel": "tau1 * tau2 (source -> reference)",
                    "title": "tau1 * tau2 vs the share of target classes in the source data (seed 000 Fig. 3)"})
    zoo_table = {"title": "Zoo", "columns": ["model", "architecture", "method", "test accuracy", "training (s)"],
                 "rows": [[r["name"], r["arch"], r["method"], r["accuracy"], r["train_seconds"]] for r in zoo_rows]}
    summary = {"zoo size": len(zoo_rows), "reference accuracy (shifted target)": store.get(ref_key)["accuracy"]}
    if len(src["fractions"]) > 1:
        fr = [r["target_class_fraction"] for r in sources["rows"]]
        summary["spearman tau1 * tau2 vs target-class share"] = format_spearman(
            spearman_ci(fr, [float("nan") if r["score"] is None else r["score"] for r in sources["rows"]]))
    summary.update(rep_s["summary"])
    summary.update(rep_t["summary"])
    notes = [f"Source ranking (seed 000 sec. 4.1): {len(src_names)} {arch} sources trained on {src['samples']} "
             f"digits each with {', '.join(src_names)}; target = digits {classes} ({src['transform']}), with a "
             f"{arch} reference trained on it. Sources ranked by tau1*tau2 (Defs. 2-3) and the eq. (2) loss and "
             "validated by linear probing; seed 000 expects sources closer to the target to rank higher.",
             "Surrogate ASR excludes each model's own (white-box) column from its mean.",
             "Spearman CIs use the Fisher z transform (se = sqrt(1.06/(n-3))); with a small zoo they are wide."]
    result = make_result("quickstart", cfg, {"zoo": zoo_rows, "surrogates": surrogates, "sources": sources},
                         timings=timings, seeds={"seed": seed}, device=str(device), summary=summary,
                         figures=figures, tables=[zoo_table] + rep_s["tables"] + rep_t["tables"], notes=notes)
    paths = publish(result, out)
    if paths:
        log(f"quickstart: report written to {paths['html']}")
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out", default="pyadvt-quickstart", help="output directory (default pyadvt-quickstart)")
    parser.add_argument("--epochs", type=int, default=None, help="zoo training epochs (default 3)")
    parser.add_argument("--seed", type=int, default=None, help="seed of data split, models and attacks (default 0)")
    parser.add_argument("--device", default=None, help="cpu or cuda[:k] (default cpu)")
    parser.add_argument("--fresh", action="store_true", help="ignore cells stored by an earlier run")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or status messages")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective configuration as YAML (a starting point for --config) and exit")


def main(args: argparse.Namespace) -> int:
    if args.quiet:
        set_quiet(True)
    cfg = resolve_config(DEFAULTS, args.config, overrides=args.overrides,
                         flags={"zoo.epochs": args.epochs, "seed": args.seed, "device": args.device})
    _validate(cfg)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    from pyadvt.utils.validation import check_output_dir
    check_output_dir(args.out)
    with distributed.session():
        run(copy.deepcopy(cfg), out_dir=args.out, progress=True, fresh=args.fresh)
        if distributed.is_main():
            print(Path(args.out) / "report.html")
    return 0
