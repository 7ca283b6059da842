"""Compare transfer attacks under the field's protocol: surrogates x targets x attacks, ASR over all
images and over the images every model classifies correctly, cost in gradient evaluations.

``pyadvt benchmark-attacks --protocol digits`` trains the ``--sources`` and ``--targets`` architectures on
the train split (targets with other seeds, so a target of a source's architecture is a different model),
runs :func:`pyadvt.attacks.evaluate` on ``--n-images`` test images and writes ``OUT/result.json``,
``OUT/report.html``, ``OUT/report.md``, ``OUT/tables/*.csv`` and a heatmap per seed. Every finished
(seed, attack, source) cell is stored under ``OUT/cells`` and a rerun resumes; under ``torchrun`` the
cells are dealt to the ranks.

Protocols (docs/theory.md §10): ``standard`` (L-inf 16/255, alpha 1.6/255, 10 iterations, mu 1.0 - the
ImageNet protocol of TransferAttack / TA-Bench), ``digits`` (eps 0.2, alpha 0.02, TI kernel 3) and
``fashion-mnist`` (eps 0.1, alpha 0.01, TI kernel 5). ``--eps/--alpha/--steps`` override them.

Example (about a minute on 2 CPU cores)::

    pyadvt benchmark-attacks --protocol digits --attacks mifgsm dim nifgsm bsr --n-images 100 --out results/suite
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pyadvt.attacks.protocol import DEFAULT_ATTACKS, PROTOCOLS, evaluate, get_protocol
from pyadvt.data import DATASETS, load_dataset
from pyadvt.models import MODELS, build
from pyadvt.report import make_result
from pyadvt.report.figures import mean_ci
from pyadvt.report.render import publish
from pyadvt.train import fit
from pyadvt.utils.progress import log

_DATASET_OF = {"digits": "digits", "fashion-mnist": "fashion-mnist", "standard": "digits"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="digits", help="budget preset (default digits)")
    parser.add_argument("--dataset", default=None, help=f"one of {', '.join(DATASETS)} (default: the protocol's)")
    parser.add_argument("--data-root", default=None, help="dataset directory (fashion-mnist: Debian's by default)")
    parser.add_argument("--sources", nargs="+", default=["cnn", "resnet", "lenet"], choices=sorted(MODELS),
                        help="surrogate architectures (default cnn resnet lenet)")
    parser.add_argument("--targets", nargs="+", default=["mlp", "cnn", "resnet", "lenet"], choices=sorted(MODELS),
                        help="target architectures, trained with other seeds (default mlp cnn resnet lenet)")
    parser.add_argument("--attacks", nargs="+", default=list(DEFAULT_ATTACKS),
                        help="attack names or compositions such as mi-di-ti-si (default: the suite)")
    parser.add_argument("--n-images", type=int, default=200, help="test images attacked (default 200)")
    parser.add_argument("--train-size", type=int, default=None, help="train on the first N train images")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per model (default 10)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (models, data subset, attacks)")
    parser.add_argument("--eps", type=float, default=None, help="override the protocol's budget")
    parser.add_argument("--alpha", type=float, default=None, help="override the protocol's step")
    parser.add_argument("--steps", type=int, default=None, help="override the protocol's iterations")
    parser.add_argument("--out", default="results/benchmark-attacks", help="output directory")


def _train(arch: str, in_shape, classes: int, train, seed: int, epochs: int):
    torch.manual_seed(seed)
    model = build(arch, in_shape=in_shape, num_classes=classes)
    fit(model, train, epochs=epochs, seed=seed, progress=False)
    return model.eval()


def summarize(rows: list[dict], seeds: list[int]) -> list[dict]:
    """Per attack: the mean over (source, target) pairs of each seed, then the mean and 95% Student-t
    interval over the seeds, for ``asr_all`` and ``asr_correct``; ``cost`` is gradient evaluations per
    image. Sorted by mean ``asr_correct``, best first."""
    attacks = list(dict.fromkeys(r["attack"] for r in rows))
    out = []
    for a in attacks:
        entry = {"attack": a}
        for value in ("asr_all", "asr_correct"):
            per_seed = []
            for s in seeds:
                vals = [r[value] for r in rows if r["attack"] == a and r["seed"] == s and r[value] is not None]
                per_seed.append(sum(vals) / len(vals) if vals else float("nan"))
            m, lo, hi = mean_ci([[v] for v in per_seed])
            entry.update({value: float(m[0]), f"{value}_lo": float(lo[0]), f"{value}_hi": float(hi[0])})
        entry["cost"] = max(r["cost"] for r in rows if r["attack"] == a)
        out.append(entry)
    return sorted(out, key=lambda e: -e["asr_correct"])


def run(args: argparse.Namespace) -> dict:
    """Train, attack and evaluate; returns the ``pyadvt.result/1`` dict that :func:`main` publishes."""
    if args.n_images < 1 or args.epochs < 1:
        raise ValueError("'--n-images' and '--epochs' must be >= 1")
    protocol = get_protocol(args.protocol, eps=args.eps, alpha=args.alpha, steps=args.steps)
    dataset = args.dataset or _DATASET_OF[args.protocol]
    train = load_dataset(dataset, args.data_root, split="train")
    test = load_dataset(dataset, args.data_root, split="test")
    if args.train_size:
        train = train.subset(range(min(args.train_size, len(train)))) if hasattr(train, "subset") else train
    in_shape, classes = tuple(test.x.shape[1:]), int(max(train.y.max(), test.y.max())) + 1
    out = Path(args.out)
    rows, figures = [], []
    for seed in args.seeds:
        sources = {a: _train(a, in_shape, classes, train, 100 * seed + i, args.epochs)
                   for i, a in enumerate(args.sources)}
        targets = {f"{a}-t": _train(a, in_shape, classes, train, 100 * seed + 50 + i, args.epochs)
                   for i, a in enumerate(args.targets)}
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(test.x.shape[0], generator=g)[:args.n_images]
        log(f"seed {seed}: {len(sources)} sources x {len(targets)} targets x {len(args.attacks)} attacks "
            f"on {idx.numel()} images ({protocol.name}: eps {protocol.eps:.4g}, alpha {protocol.alpha:.4g}, "
            f"{protocol.steps} steps)")
        res = evaluate(sources, targets, (test.x[idx], test.y[idx]), attacks=args.attacks, protocol=protocol,
                       seed=seed, store=out / "cells" / f"seed{seed}")
        rows += [{"seed": seed, **r} for r in res.rows]
        attacks, tnames, M = res.matrix("asr_correct")
        figures.append({"type": "heatmap", "matrix": M, "row_labels": attacks, "col_labels": tnames,
                        "title": f"transfer ASR on correctly classified images, mean over sources (seed {seed})",
                        "vmin": 0.0, "vmax": 1.0})
    summary = summarize(rows, list(args.seeds))
    figures.insert(0, {"type": "bars", "values": [e["asr_correct"] for e in summary],
                       "lower": [e["asr_correct_lo"] for e in summary], "upper": [e["asr_correct_hi"] for e in summary],
                       "labels": [e["attack"] for e in summary], "ylabel": "transfer ASR (all-correct images)",
                       "title": f"mean over source-target pairs, 95% CI over {len(args.seeds)} seed(s)"})
    scols = ["attack", "asr_correct", "asr_correct_lo", "asr_correct_hi", "asr_all", "asr_all_lo", "asr_all_hi", "cost"]
    cols = ["seed", "attack", "source", "target", "asr_all", "asr_correct", "n_all", "n_correct", "cost"]
    config = {"protocol": protocol.name, "eps": protocol.eps, "alpha": protocol.alpha, "steps": protocol.steps,
              "mu": protocol.mu, "ti_kernel": protocol.ti_kernel, "dataset": dataset, "sources": args.sources,
              "targets": args.targets, "attacks": args.attacks, "n_images": args.n_images, "epochs": args.epochs,
              "seeds": args.seeds}
    return make_result("benchmark-attacks", config, {"rows": rows}, seeds=args.seeds, figures=figures,
                       tables=[{"title": "summary over seeds", "columns": scols,
                                "rows": [[e[c] for c in scols] for e in summary]},
                               {"title": "attack success rates", "columns": cols,
                                "rows": [[r[c] for c in cols] for r in rows]}])


def main(args: argparse.Namespace) -> int:
    result = run(args)
    paths = publish(result, args.out, title="pyadvt benchmark-attacks")
    for k, v in paths.items():
        log(f"{k}: {v}")
    return 0
