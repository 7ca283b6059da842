"""Rank candidate source models or attack surrogates by adversarial transferability.

``pyadvt rank sources``: seed 000's use - which pretrained source will transfer best to a target
task? Each source is scored against a cheap *reference* model trained on the target data by
``tau1 * tau2`` (docs/theory.md §2, Defs. 2-3: top-singular-vector alignment times deviation
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

With ``--scores`` (comma-separated) a source ranking computes only the columns named, from the
field's estimators (``leep, nleep, nce, h_score, h_score_shrinkage, logme, transrate, gbc, sfda``;
docs/theory.md §11) and the adversarial scores (``tau1, tau2, tau1*tau2, eq2_loss``); by default
every score the models allow. For surrogates ``--scores`` picks ``smoothness`` and/or ``similarity``.

The ranking itself is :mod:`pyadvt.selection.ranking` (``rank_sources``, ``rank_surrogates``); this
module loads the models, runs it from the command line and renders the report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pyadvt.data import TensorData, digits, load_dataset
from pyadvt.selection import SOURCE_SCORES, SURROGATE_SCORES, rank_sources, rank_surrogates, spearman_ci
from pyadvt.report import Timings, make_result, publish
from pyadvt.report.rankings import format_spearman, sources_report, surrogates_report  # noqa: F401 (moved)
from pyadvt.utils import distributed
from pyadvt.utils.config import add_config_arguments, resolve_config
from pyadvt.utils.progress import log, set_quiet
from pyadvt.utils.sweep import CellStore, config_digest

__all__ = ["spearman_ci", "format_spearman", "load_model", "rank_sources", "rank_surrogates", "sources_report",
           "surrogates_report"]


def load_model(spec: str, device: str | torch.device = "cpu", *, num_classes: int | None = None,
               in_shape: Sequence[int] | None = None, flag: str = "model") -> nn.Module:
    """An ``nn.Module`` (eval mode) from any model spec of :mod:`pyadvt.commands.model_spec`:
    ``torchvision:NAME``, ``timm:NAME``, ``FILE.py:CALLABLE``, ``package.module:callable`` or a
    checkpoint, optionally ``:WEIGHTS.pt``; with ``in_shape`` it is checked on one image.

    Raises ``FileNotFoundError`` for a missing checkpoint and ``ValueError`` naming ``spec`` for an
    entry point that cannot be imported or does not give a module.
    """
    from pyadvt.commands.model_spec import load_model as load_spec

    return load_spec(spec, num_classes=num_classes, in_shape=in_shape, device=device, flag=flag)


# -- CLI -------------------------------------------------------------------------------------------
SOURCES_DEFAULTS: dict[str, Any] = {
    "sources": {}, "reference": None, "dataset": "digits", "data_root": None, "image_size": None, "channels": None,
    "n_eval": 200, "eps": 0.1,
    "steps": 10, "probe": True, "probe_epochs": 5, "probe_lr": 0.05, "seed": 0, "device": "cpu", "scores": None,
}
SURROGATES_DEFAULTS: dict[str, Any] = {
    "surrogates": {}, "targets": {}, "dataset": "digits", "data_root": None, "image_size": None, "channels": None,
    "n_eval": 200, "attack": "pgd",
    "eps": 0.1, "steps": 10, "norm": "linf", "n_smooth": 64, "smoothness_method": "lanczos", "seed": 0,
    "device": "cpu", "scores": None,
}


def _named_specs(items: Sequence[str] | None, flag: str) -> dict[str, str] | None:
    from pyadvt.commands.model_spec import named_model_specs

    return named_model_specs(items, flag)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True)
    for what, doc in (("sources", "rank source models for a target task (tau1*tau2, eq. 2; seed 000)"),
                      ("surrogates", "rank attack surrogates by transfer ASR and smoothness/similarity (seed 001)")):
        p = sub.add_parser(what, help=doc, description=doc)
        add_config_arguments(p)
        if what == "sources":
            p.add_argument("--source", action="append", metavar="NAME=SPEC",
                           help="a candidate source: torchvision:NAME, timm:NAME, FILE.py:CALLABLE, "
                                "package.module:callable or a checkpoint, optionally :WEIGHTS.pt (repeatable)")
            p.add_argument("--reference", metavar="SPEC", help="reference model trained on the target task")
            p.add_argument("--no-probe", dest="probe", action="store_const", const=False, default=None,
                           help="skip the linear-probing validation")
        else:
            p.add_argument("--surrogate", action="append", metavar="NAME=SPEC", help="a candidate surrogate (repeatable)")
            p.add_argument("--target", action="append", metavar="NAME=SPEC", help="a target model (repeatable)")
            p.add_argument("--attack", default=None, help="attack name (default pgd)")
        choices = SOURCE_SCORES if what == "sources" else SURROGATE_SCORES
        p.add_argument("--scores", default=None, metavar="A,B,...",
                       help=f"comma-separated scores to compute (default: all the models allow): {', '.join(choices)}")
        p.add_argument("--dataset", default=None, help="target data: digits (default) or a pyadvt.data dataset")
        p.add_argument("--data-root", default=None,
                       help="directory holding the dataset files, or the class-subfolder tree of --dataset imagefolder")
        p.add_argument("--image-size", type=int, default=None, help="resize and center-crop the images to this size")
        p.add_argument("--channels", type=int, choices=[1, 3], default=None,
                       help="convert the images to 1 (gray) or 3 (RGB) channels (e.g. 3 for ImageNet models)")
        p.add_argument("--eps", type=float, default=None, help="attack budget (L-inf pixels, default 0.1)")
        p.add_argument("--n-eval", type=int, default=None, help="evaluation samples (default 200)")
        p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
        p.add_argument("--device", default=None, help="cpu or cuda[:k] (default cpu)")
        p.add_argument("--out", default="pyadvt-rank", help="output directory (result, report, cells)")
        p.add_argument("--fresh", action="store_true", help="ignore cells stored by an earlier run")
        p.add_argument("--quiet", action="store_true", help="no progress bars or status messages")


def _data(cfg: Mapping) -> tuple[TensorData, TensorData]:
    """Both splits in memory; an image folder's test split as a seeded random ``n_eval`` subset (its
    files are listed class by class), its images resized by the folder reader."""
    from pyadvt.data import to_tensor_data
    from pyadvt.data.adapt import adapt_images
    from pyadvt.data.load import canonical_name

    folder = canonical_name(cfg["dataset"]) == "imagefolder"
    if cfg["dataset"] == "digits":
        train, test = digits(seed=cfg["seed"])
    else:
        kw = {"size": cfg["image_size"]} if folder else {}
        train = to_tensor_data(load_dataset(cfg["dataset"], cfg["data_root"], split="train", **kw))
        test = load_dataset(cfg["dataset"], cfg["data_root"], split="test", **kw)
        test = to_tensor_data(test, cfg["n_eval"], seed=cfg["seed"]) if folder else test
    size = None if folder else cfg["image_size"]
    if size is not None or cfg["channels"] is not None:
        train, test = (TensorData(adapt_images(d.x, size, cfg["channels"]), d.y, d.num_classes) for d in (train, test))
    return train, test


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
    flags = {"dataset": args.dataset, "data_root": args.data_root, "image_size": args.image_size,
             "channels": args.channels, "eps": args.eps, "n_eval": args.n_eval,
             "seed": args.seed, "device": args.device,
             "scores": [x.strip() for x in args.scores.split(",") if x.strip()] if args.scores else None}
    if sources:
        flags.update(sources=_named_specs(args.source, "--source"), reference=args.reference, probe=args.probe)
    else:
        flags.update(surrogates=_named_specs(args.surrogate, "--surrogate"),
                     targets=_named_specs(args.target, "--target"), attack=args.attack)
    cfg = resolve_config(defaults, args.config, overrides=args.overrides, flags=flags)
    timings = Timings()
    from pyadvt.utils.validation import check_output_dir
    out = check_output_dir(args.out)
    with distributed.session():
        with timings("load"):
            train, test = _data(cfg)
            sample, classes = test.x[:2], test.num_classes  # real images check every model up front
            skipped: list[str] = []

            def load(specs, flag, task_classes=True):  # sources keep their own heads (other tasks)
                """Load every spec; one that fails is reported in one line and left out (the command's
                error when none is left)."""
                loaded, errors = {}, []
                for n, s in specs.items():
                    try:
                        loaded[n] = load_model(s, cfg["device"], num_classes=classes if task_classes else None,
                                               in_shape=sample, flag=f"{flag} {n}")
                    except (ValueError, FileNotFoundError) as exc:
                        errors.append(str(exc))
                if not loaded:
                    raise UserError(errors[0])
                for e in errors:
                    print(f"pyadvt: error: {e} (left out)", file=sys.stderr)
                skipped.extend(errors)
                return loaded

            if sources:
                if not cfg["sources"] or not cfg["reference"]:
                    raise UserError("rank sources needs at least one --source and a --reference")
                models = load(cfg["sources"], "--source", task_classes=False)
                reference = load({"reference": cfg["reference"]}, "--reference")["reference"]
            else:
                if not cfg["surrogates"] or not cfg["targets"]:
                    raise UserError("rank surrogates needs at least one --surrogate and one --target")
                models, targets = load(cfg["surrogates"], "--surrogate"), load(cfg["targets"], "--target")
        store = _store(out, args.fresh)
        prefix = (config_digest(cfg),)  # cells of another configuration are never reused
        dev = torch.device(cfg["device"])
        with timings("rank"):
            if sources:
                ranking = rank_sources(models, reference, test.to(dev), target_train=train.to(dev),
                                       eps=cfg["eps"], steps=cfg["steps"], n_eval=cfg["n_eval"], probe=cfg["probe"],
                                       probe_epochs=cfg["probe_epochs"], probe_lr=cfg["probe_lr"], seed=cfg["seed"],
                                       scores=cfg["scores"], store=store, cell_prefix=prefix)
                extra = sources_report(ranking)
            else:
                ranking = rank_surrogates(models, targets, test.to(dev), attack=cfg["attack"], eps=cfg["eps"],
                                          steps=cfg["steps"], norm=cfg["norm"], n_eval=cfg["n_eval"],
                                          n_smooth=cfg["n_smooth"], smoothness_method=cfg["smoothness_method"],
                                          seed=cfg["seed"], scores=cfg["scores"], store=store, cell_prefix=prefix)
                extra = surrogates_report(ranking)
        result = make_result(f"rank-{args.what}", cfg, ranking, timings=timings, seeds={"seed": cfg["seed"]},
                             device=cfg["device"], **extra)
        paths = publish(result, out)
    if paths:
        best = ranking["rows"][0]["name"]
        log(f"best {args.what[:-1]}: {best}")
        print(paths["html"])
    return 1 if skipped else 0

