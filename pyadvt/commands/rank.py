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

``--data-root`` takes a class-subfolder tree with ``--dataset imagefolder`` (``root/train`` and
``root/test`` or one tree for both): the images are read from disk one batch at a time (resized by
``--image-size``), only the ``--n-eval`` evaluation samples (a seeded random subset) are held.

A model that cannot be loaded or run on the data, or that fails inside a metric (e.g. a layer without
double backward in tau2 or the smoothness), is one ``pyadvt: error:`` line naming the model and the
metric (``--debug`` adds the traceback); the others are ranked and the exit status is 1. When no
candidate gets any score the command fails with status 2.

The ranking itself is :mod:`pyadvt.selection.ranking` (``rank_sources``, ``rank_surrogates``); this
module loads the models, runs it from the command line and renders the report.
"""

from __future__ import annotations

import argparse
import sys
import warnings
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
            p.add_argument("--surrogate", action="append", metavar="NAME=SPEC",
                           help="a candidate surrogate (repeatable)")
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


def _data(cfg: Mapping) -> tuple[Any, Any]:
    """The train and test splits, streamed from disk when the dataset is read from files: an image
    folder is resized and converted by its reader, another dataset's images by
    :class:`~pyadvt.data.adapt.AdaptedImages` (in memory for the in-memory digits)."""
    from pyadvt.data.adapt import AdaptedImages, adapt_images
    from pyadvt.data.load import canonical_name

    folder = canonical_name(cfg["dataset"]) == "imagefolder"
    if cfg["dataset"] == "digits":
        train, test = digits(seed=cfg["seed"])
    else:
        kw = {"size": cfg["image_size"], "channels": cfg["channels"] or 3} if folder else {}
        train, test = (load_dataset(cfg["dataset"], cfg["data_root"], split=split, **kw) for split in ("train", "test"))
    size, channels = (None, None) if folder else (cfg["image_size"], cfg["channels"])
    if size is None and channels is None:
        return train, test
    if isinstance(train, TensorData) and isinstance(test, TensorData):
        return tuple(TensorData(adapt_images(d.x, size, channels), d.y, d.num_classes) for d in (train, test))
    return AdaptedImages(train, size, channels), AdaptedImages(test, size, channels)


def _store(out: Path, fresh: bool) -> CellStore:
    cells = out / "cells"
    if fresh and distributed.is_main() and cells.exists():
        import shutil

        shutil.rmtree(cells)
    distributed.barrier()
    return CellStore(cells)


def _config(args: argparse.Namespace) -> dict:
    """The run's configuration: defaults < ``--config`` file < ``--set`` < flags."""
    sources = args.what == "sources"
    flags = {"dataset": args.dataset, "data_root": args.data_root, "image_size": args.image_size,
             "channels": args.channels, "eps": args.eps, "n_eval": args.n_eval,
             "seed": args.seed, "device": args.device,
             "scores": [x.strip() for x in args.scores.split(",") if x.strip()] if args.scores else None}
    if sources:
        flags.update(sources=_named_specs(args.source, "--source"), reference=args.reference, probe=args.probe)
    else:
        flags.update(surrogates=_named_specs(args.surrogate, "--surrogate"),
                     targets=_named_specs(args.target, "--target"), attack=args.attack)
    return resolve_config(SOURCES_DEFAULTS if sources else SURROGATES_DEFAULTS, args.config,
                          overrides=args.overrides, flags=flags)


def _load_all(specs: Mapping[str, str], flag: str, cfg: Mapping, sample: torch.Tensor, classes: int | None,
              skipped: list[str]) -> dict[str, nn.Module]:
    """Load every spec, checked on ``sample``; one that fails is reported in one line and left out
    (appended to ``skipped``); the command's error when none is left."""
    from pyadvt.cli import UserError

    loaded, errors = {}, []
    for n, s in specs.items():
        try:
            loaded[n] = load_model(s, cfg["device"], num_classes=classes, in_shape=sample, flag=f"{flag} {n}")
        except (ValueError, FileNotFoundError) as exc:
            errors.append(str(exc))
    if not loaded:
        raise UserError(errors[0])
    for e in errors:
        print(f"pyadvt: error: {e} (left out)", file=sys.stderr)
    skipped.extend(errors)
    return loaded


def _models(cfg: Mapping, what: str, test: Any, skipped: list[str]) -> tuple[dict, Any]:
    """``(candidates, reference model or targets)``, each checked on two real images of ``test``."""
    from pyadvt.cli import UserError
    from pyadvt.data.stream import first_batch
    from pyadvt.selection._samples import num_classes_of

    sample, classes = first_batch(test, 2)[0], num_classes_of(test)
    if what == "sources":
        if not cfg["sources"] or not cfg["reference"]:
            raise UserError("rank sources needs at least one --source and a --reference")
        models = _load_all(cfg["sources"], "--source", cfg, sample, None, skipped)  # sources keep their own heads
        return models, _load_all({"reference": cfg["reference"]}, "--reference", cfg, sample, classes,
                                 skipped)["reference"]
    if not cfg["surrogates"] or not cfg["targets"]:
        raise UserError("rank surrogates needs at least one --surrogate and one --target")
    return (_load_all(cfg["surrogates"], "--surrogate", cfg, sample, classes, skipped),
            _load_all(cfg["targets"], "--target", cfg, sample, classes, skipped))


def _rank(cfg: Mapping, what: str, models: dict, other: Any, train: Any, test: Any, store: CellStore) -> dict:
    """Run the ranking; an image folder's evaluation samples are a seeded random subset (its files
    are listed class by class), another dataset's the first ``n_eval``."""
    from pyadvt.data.load import canonical_name

    common = {"eps": cfg["eps"], "steps": cfg["steps"], "n_eval": cfg["n_eval"], "seed": cfg["seed"],
              "scores": cfg["scores"], "store": store, "cell_prefix": (config_digest(cfg),),  # no reuse across configs
              "eval_seed": cfg["seed"] if canonical_name(cfg["dataset"]) == "imagefolder" else None}
    with warnings.catch_warnings():  # failures are printed one line per model by _report_failures
        warnings.filterwarnings("ignore", message=r".* failed in a metric", category=RuntimeWarning)
        if what == "sources":
            return rank_sources(models, other, test, target_train=train, probe=cfg["probe"],
                                probe_epochs=cfg["probe_epochs"], probe_lr=cfg["probe_lr"], **common)
        return rank_surrogates(models, other, test, attack=cfg["attack"], norm=cfg["norm"], n_smooth=cfg["n_smooth"],
                               smoothness_method=cfg["smoothness_method"], **common)


def _report_failures(ranking: dict, what: str, debug: bool) -> bool:
    """Print one line per candidate that failed in a metric (its traceback too with ``--debug``);
    ``UserError`` when no candidate got any score. Returns whether any failed."""
    from pyadvt.cli import UserError

    tracebacks = ranking.pop("tracebacks", {})
    for name, line in ranking.get("failed", {}).items():
        if debug and tracebacks.get(name):
            print(tracebacks[name], file=sys.stderr)
        print(f"pyadvt: error: {line} (its scores are left out)", file=sys.stderr)
    ignored = {"name", "failed", "n_undefined"}
    scored = [r for r in ranking["rows"] if any(v is not None for k, v in r.items()
                                                  if k not in ignored and not k.startswith("rank_"))]
    if not scored:
        raise UserError(f"no {what[:-1]} could be scored: every one failed (see the errors above)")
    return bool(ranking.get("failed"))


#: exit status when some candidate was left out or failed in a metric and the others were ranked
PARTIAL = 1


def main(args: argparse.Namespace) -> int:
    """``pyadvt rank sources|surrogates``: load the data and models, rank, publish ``OUT/report.html``.

    Returns 0, or :data:`PARTIAL` when a model was left out (it could not be loaded or run on the
    data) or failed in a metric (one ``pyadvt: error:`` line each on stderr, the traceback with
    ``--debug``) while the others were ranked; a ``UserError`` (exit 2) when none could be.
    """
    if args.quiet:
        set_quiet(True)
    cfg = _config(args)
    timings = Timings()
    from pyadvt.utils.validation import check_output_dir
    out = check_output_dir(args.out)
    skipped: list[str] = []
    with distributed.session():
        with timings("load"):
            train, test = _data(cfg)
            models, other = _models(cfg, args.what, test, skipped)
        store = _store(out, args.fresh)
        with timings("rank"):
            ranking = _rank(cfg, args.what, models, other, train, test, store)
        failed = _report_failures(ranking, args.what, getattr(args, "debug", False))
        extra = (sources_report if args.what == "sources" else surrogates_report)(ranking)
        result = make_result(f"rank-{args.what}", cfg, ranking, timings=timings, seeds={"seed": cfg["seed"]},
                             device=cfg["device"], **extra)
        paths = publish(result, out)
    if paths:
        log(f"best {args.what[:-1]}: {ranking['rows'][0]['name']}")
        print(paths["html"])
    return PARTIAL if skipped or failed else 0
