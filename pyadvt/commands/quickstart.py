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
import dataclasses
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pyadvt.data import TensorData, digits
from pyadvt.data.corruptions import gaussian_noise
from pyadvt.models import MODELS
from pyadvt.report import Timings, publish
from pyadvt.report.quickstart_report import quickstart_result
from pyadvt.selection import rank_sources, rank_surrogates
from pyadvt.train import evaluate
from pyadvt.train.zoo import ModelSpec, data_digest, train_or_load
from pyadvt.transfer.target_transforms import low_pass, low_resolution
from pyadvt.utils import distributed
from pyadvt.utils.config import FreeForm, add_config_arguments, dump_config, resolve_config
from pyadvt.utils.progress import log, set_quiet
from pyadvt.utils.sweep import CellStore, config_digest

__all__ = ["DEFAULTS", "METHODS", "run", "member_spec", "train_models", "train_zoo", "rank_zoo",
           "rank_mixture_sources", "train_member", "shifted_target", "class_mixture"]

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


def member_spec(arch: str, method: str, zoo: Mapping, seed: int) -> ModelSpec:
    """The :class:`~pyadvt.train.zoo.ModelSpec` of one zoo model: ``build(arch, **zoo.model_kwargs[arch])``
    trained with ``method`` (``st`` | ``at`` | ``sam_jr``, docs/theory.md §4) and the zoo's SGD settings.

    Example:
        >>> spec = member_spec("mlp", "at", DEFAULTS["zoo"], seed=0)
        >>> spec.recipe, spec.recipe_kwargs["strength"], spec.fit_kwargs["epochs"]
        ('at', 0.5, 3)
    """
    if method not in METHODS:
        raise ValueError(f"unknown training method {method!r}; choose from {', '.join(METHODS)}")
    at, jr = zoo["at"], zoo["jr"]
    recipe = {} if method == "st" else {
        "strength": at["eps"] if method == "at" else jr["lam"], "norm": at["norm"], "steps": at["steps"],
        "n_proj": jr["n_proj"], "sam_rho": zoo["sam"]["rho"],
        "sgd": {"lr": zoo["lr"], "momentum": 0.9, "weight_decay": 5e-4}}
    fit_kwargs = {"epochs": zoo["epochs"], "lr": zoo["lr"], "batch_size": zoo["batch_size"]}
    return ModelSpec(arch, dict(zoo["model_kwargs"].get(arch, {})), method, recipe, fit_kwargs, int(seed))


def train_member(arch: str, method: str, train: TensorData, zoo: Mapping, seed: int) -> nn.Module:
    """Deprecated (kept for one release): ``train_or_load(member_spec(arch, method, zoo, seed), train)[0]``."""
    warnings.warn("quickstart.train_member is deprecated; use member_spec + pyadvt.train.train_or_load",
                  DeprecationWarning, stacklevel=2)
    return train_or_load(member_spec(arch, method, zoo, seed), train, device=train.x.device)[0]


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


def train_models(specs: Mapping[str, tuple], store: CellStore, device: torch.device, *, progress: bool = True,
                 desc: str = "train") -> tuple[dict, dict]:
    """Train (or load) ``specs`` = ``{name: (ModelSpec, train data, evaluation data)}`` with
    :func:`~pyadvt.train.zoo.train_or_load`, shared out over ``torchrun`` ranks.

    One cell per model, keyed by the model's key and a digest of the evaluation data, holds
    ``{"arch", "method", "accuracy" (on the evaluation data), "train_seconds"}``. Returns
    ``(rows, models)``, both ``{name: ...}`` in ``specs`` order (models in eval mode on ``device``).
    """
    keys = {name: ("trained", *spec.key(data)[1:], data_digest(ev)) for name, (spec, data, ev) in specs.items()}
    names = {k: name for name, k in keys.items()}

    def cell(key):
        spec, data, ev = specs[names[key]]
        model, info = train_or_load(spec, data, store, device=device)
        return {"arch": spec.arch, "method": spec.recipe, "accuracy": evaluate(model, ev)["accuracy"],
                "train_seconds": info["train_seconds"]}

    rows = distributed.map_cells(list(keys.values()), cell, store, progress=progress, desc=desc)
    models = {name: train_or_load(spec, data, store, device=device)[0] for name, (spec, data, _) in specs.items()}
    return {name: rows[k] for name, k in keys.items()}, models


def train_zoo(cfg: Mapping, train: TensorData, test: TensorData, store: CellStore, *,
              progress: bool = True) -> tuple[dict, dict]:
    """Every ``zoo.architectures`` x ``zoo.methods`` model (``"arch-method"``), see :func:`train_models`."""
    zoo = cfg["zoo"]
    specs = {f"{a}-{m}": (member_spec(a, m, zoo, cfg["seed"]), train, test)
             for a in zoo["architectures"] for m in zoo["methods"]}
    log(f"quickstart: training a zoo of {len(specs)} models ({', '.join(specs)})")
    return train_models(specs, store, torch.device(cfg["device"]), progress=progress, desc="train zoo")


def rank_zoo(cfg: Mapping, models: Mapping[str, nn.Module], test: TensorData, store: CellStore, *,
             progress: bool = True) -> dict:
    """Seed 001 over the zoo: every model attacks every other one (:func:`pyadvt.selection.rank_surrogates`)."""
    s, seed = cfg["surrogates"], cfg["seed"]
    log("quickstart: transfer attacks, smoothness and similarity across the zoo")
    prefix = ("surrogates", config_digest(config_digest(seed, cfg["zoo"]), s))
    return rank_surrogates(models, models, test, attack=s["attack"], eps=s["eps"], steps=s["steps"], norm=s["norm"],
                           n_eval=s["n_eval"], n_smooth=s["n_smooth"], smoothness_method=s["smoothness_method"],
                           seed=seed, store=store, progress=progress, cell_prefix=prefix)


def rank_mixture_sources(cfg: Mapping, train: TensorData, test: TensorData, store: CellStore, *,
                         progress: bool = True) -> tuple[dict, float]:
    """Seed 000 sec. 4.1: sources trained on class mixtures ranked for the shifted target.

    Returns ``(rank_sources result with a "target_class_fraction" per row, reference accuracy)``.
    """
    seed, src = cfg["seed"], cfg["sources"]
    arch, classes = src["architecture"], src["target_classes"]
    log(f"quickstart: ranking {arch} sources trained on class mixtures for a shifted target "
        f"(classes {classes}, {src['transform']})")
    t_train = shifted_target(train, classes, src["transform"], seed=seed)
    t_test = shifted_target(test, classes, src["transform"], seed=seed + 1)
    spec = member_spec(arch, "st", dict(cfg["zoo"], epochs=src["epochs"]), seed)
    names = [f"{round(100 * f)}% target classes" for f in src["fractions"]]
    specs = {n: (spec, class_mixture(train, classes, f, src["samples"], seed + i), test)
             for i, (n, f) in enumerate(zip(names, src["fractions"]))}
    specs["reference"] = (dataclasses.replace(spec, seed=seed + 1000), t_train, t_test)
    rows, models = train_models(specs, store, torch.device(cfg["device"]), progress=progress, desc="train sources")
    reference = models.pop("reference")
    sources = rank_sources(models, reference, t_test, target_train=t_train, eps=src["eps"], steps=src["steps"],
                           n_eval=src["n_eval"], probe=src["probe"], probe_epochs=src["probe_epochs"],
                           probe_lr=src["probe_lr"], seed=seed, store=store, progress=progress,
                           cell_prefix=("sources", config_digest(seed, cfg["zoo"], src)))
    for row in sources["rows"]:
        row["target_class_fraction"] = src["fractions"][names.index(row["name"])]
    return sources, rows["reference"]["accuracy"]


def run(config: Mapping | None = None, out_dir: str | Path = "pyadvt-quickstart", progress: bool = True,
        fresh: bool = False) -> dict:
    """Run the quickstart (see module docstring) and return its ``pyadvt.result/1`` dict.

    ``config`` is a partial configuration merged into :data:`DEFAULTS` (unknown keys are errors).
    Config -> :func:`member_spec` s -> :func:`train_zoo`, :func:`rank_zoo`, :func:`rank_mixture_sources`
    cells (``out_dir/cells``) -> :func:`pyadvt.report.quickstart_report.quickstart_result` ->
    :func:`pyadvt.report.publish` (``result.json`` and the report).
    """
    cfg = resolve_config(DEFAULTS, dict(config or {}))
    _validate(cfg)
    out, timings, device = Path(out_dir), Timings(), torch.device(cfg["device"])
    cells_dir = out / "cells"
    if fresh and distributed.is_main() and cells_dir.exists():
        shutil.rmtree(cells_dir)
    distributed.barrier()
    store = CellStore(cells_dir)
    with timings("data"):
        train, test = (d.to(device) for d in digits(seed=cfg["seed"]))
    with timings("zoo"):
        zoo_rows, models = train_zoo(cfg, train, test, store, progress=progress)
    with timings("surrogates"):
        surrogates = rank_zoo(cfg, models, test, store, progress=progress)
    with timings("sources"):
        sources, ref_accuracy = rank_mixture_sources(cfg, train, test, store, progress=progress)
    result = quickstart_result(cfg, zoo_rows, surrogates, sources, ref_accuracy, timings=timings, device=device)
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
