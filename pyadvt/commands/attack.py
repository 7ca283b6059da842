"""Attack a source model and measure transfer to one or more target models, on any supported dataset.

``pyadvt attack --attack pgd --eps 0.05 0.1 0.2`` attacks a source on the test split at every budget
in one batched pass per chunk and prints clean accuracies, the source fooling rate
``1 - acc_S(x_adv)``, the transfer success ``1 - acc_T(x_adv)`` over all samples and the
Definition-3 transfer rate over samples both models classify correctly (docs/theory.md §3;
targeted: hit rates of the target label ``(y + 1) mod C``). ``--out`` writes a ``pyadvt.result/1`` JSON.

Models: ``--source SPEC`` and ``--target SPEC`` (repeatable) take any model spec of
:mod:`pyadvt.commands.model_spec` -- ``torchvision:resnet18``, ``timm:resnet18``, ``zoo.py:make``,
``pkg.zoo:make``, a checkpoint, each optionally ``:WEIGHTS.pt`` (a plain state dict loaded with
``weights_only=True``). Without them a ``--source-model`` / ``--target-model`` architecture is
trained on the train split (or loaded with ``--source-checkpoint`` / ``--target-checkpoint``).

Data: ``--dataset`` digits (default), cifar10, cifar100, stl10, mnist, fashion-mnist (Debian's
package without ``--data-root``), kmnist or imagefolder (``--data-root`` a class-subfolder tree);
``--image-size`` / ``--channels`` fit the images to the models. The test split is streamed one
``--attack-batch`` at a time (:func:`pyadvt.attacks.run_on`), so an ImageFolder of any size works.

A target that cannot run on the data or fails during the evaluation is reported in one line naming
it and what failed; the other targets still run (exit status 1 when any failed).

Example (a few seconds on 2 CPU cores)::

    pyadvt attack --attack dim --eps 0.05 0.1 0.2 --out results/attack.json
    pyadvt attack --dataset imagefolder --data-root ~/pets --image-size 64 \\
        --source torchvision:resnet18:r18.pt --target timm:resnet18:t18.pt --eps 0.03
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.data import Subset

from pyadvt.attacks import ATTACKS, build_attack, run_on
from pyadvt.commands.model_spec import ModelSpecError, load_model
from pyadvt.data import DATASETS, TensorData, digits, load_dataset
from pyadvt.data.load import canonical_name
from pyadvt.data.adapt import AdaptedImages, adapt_images
from pyadvt.data.stream import first_batch
from pyadvt.metrics.transfer_rates import rates_from_predictions
from pyadvt.models import MODELS
from pyadvt.report import Timings, make_result, write_result
from pyadvt.train import save_checkpoint
from pyadvt.train.zoo import ModelSpec, train_or_load
from pyadvt.utils.modes import evaluating
from pyadvt.utils.progress import log, set_quiet

COLUMNS = ["eps", "source fooling", "transfer success", "transfer rate (Def. 3)", "mean L-inf", "mean L2"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument_group("attack")
    a.add_argument("--attack", choices=sorted(ATTACKS), default="pgd", help="attack on the source (default pgd)")
    a.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1, 0.2],
                   help="budgets in pixel units of [0, 1], all attacked in one pass (default 0.05 0.1 0.2)")
    a.add_argument("--steps", type=int, default=10, help="iterations (ignored by fgsm; default 10)")
    a.add_argument("--alpha-ratio", type=float, default=None,
                   help="step size as a fraction of eps (default: PGD 2.5/steps, MI/DI 1/steps)")
    a.add_argument("--norm", choices=["linf", "l2"], default="linf", help="threat model (l2: pgd, di, dim)")
    a.add_argument("--restarts", type=int, default=1, help="random restarts (default 1)")
    a.add_argument("--targeted", action="store_true", help="targeted attack towards (y + 1) mod C")
    d = parser.add_argument_group("data")
    d.add_argument("--dataset", default="digits", help=f"one of {', '.join(DATASETS)} (default digits)")
    d.add_argument("--data-root", default=None,
                   help="directory of the dataset files, or the class-subfolder tree of --dataset imagefolder")
    d.add_argument("--image-size", type=int, default=None, help="resize and center-crop the images to this size")
    d.add_argument("--channels", type=int, choices=[1, 3], default=None,
                   help="convert the images to 1 (gray) or 3 (RGB) channels, e.g. 3 for ImageNet models on MNIST")
    m = parser.add_argument_group("models")
    m.add_argument("--source", default=None, metavar="SPEC",
                   help="source model spec: torchvision:NAME, timm:NAME, FILE.py:CALLABLE, MODULE:CALLABLE or a "
                        "checkpoint, optionally :WEIGHTS.pt (a plain state dict)")
    m.add_argument("--target", action="append", default=None, metavar="[NAME=]SPEC",
                   help="target model spec (repeatable)")
    m.add_argument("--source-model", choices=sorted(MODELS), default="cnn",
                   help="architecture trained as the source when --source is not given (default cnn)")
    m.add_argument("--target-model", choices=sorted(MODELS), default="cnn",
                   help="architecture trained as the target when --target is not given (default cnn)")
    m.add_argument("--source-checkpoint", default=None, help="load the source from this checkpoint instead of training")
    m.add_argument("--target-checkpoint", default=None, help="load the target from this checkpoint instead of training")
    m.add_argument("--save-checkpoints", default=None, metavar="DIR",
                   help="save the trained models as DIR/source.pt and DIR/target.pt")
    m.add_argument("--epochs", type=int, default=5, help="training epochs per model (default 5)")
    m.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (default 0.05)")
    m.add_argument("--batch-size", type=int, default=64, help="training batch size (default 64)")
    r = parser.add_argument_group("run")
    r.add_argument("--n-eval", type=int, default=None,
                   help="attack N test samples: the first N of an in-memory dataset, a seeded random N of an "
                        "image folder (default: all)")
    r.add_argument("--attack-batch", type=int, default=256, help="samples per attack pass (default 256)")
    r.add_argument("--seed", type=int, default=0,
                   help="seed of the split, the models (source seed, targets seed+1, seed+2, ...) and the attack")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    r.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 helps on an oversubscribed machine)")
    r.add_argument("--out", default=None, help="write the JSON result here (a .json file or a directory)")
    r.add_argument("--quiet", action="store_true", help="no progress bars or status messages")


def main(args: argparse.Namespace) -> int:
    if args.quiet:
        set_quiet(True)
    try:
        return _run(args)
    finally:
        if args.quiet:
            set_quiet(None)     # back to the environment's default for an in-process caller


class _Target:
    """A target model and the per-sample predictions gathered for it."""

    def __init__(self, name: str, spec: str, model: nn.Module | None, error: str | None = None) -> None:
        self.name, self.spec, self.model, self.error = name, spec, model, error
        self.clean: list[torch.Tensor] = []
        self.adv: list[torch.Tensor] = []


def _run(args: argparse.Namespace) -> int:
    """Config (``args``) -> models (:func:`_model`, :func:`_targets`) -> one batched attack pass
    (:func:`_attack_all`) -> per-target rates (:func:`_target_results`) -> table / ``pyadvt.result/1``."""
    from pyadvt.cli import UserError

    _validate(args, UserError)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = _device(args.device, UserError)
    timings = Timings()
    with timings("data"):
        train, data, n, num_classes = _eval_data(args, UserError)
        sample = first_batch(data, 2)[0]  # real images check every model before the attack starts
    with timings("source"):
        source = _model("source", args.source or args.source_checkpoint, args.source_model, args.seed, train,
                        args, device, sample, num_classes, UserError)
    with timings("target"):
        targets = _targets(args, train, device, sample, num_classes, UserError)
    with timings("attack"):
        cols = _attack_all(args, source, targets, data, n, num_classes, device, UserError)
    results = _target_results(args, cols, targets)
    clean_source = float((cols["src_clean"] == cols["y"]).double().mean())
    failed = [{"name": tg.name, "spec": tg.spec, "error": tg.error} for tg in targets if tg.error is not None]
    _print_table(args, clean_source, results, n)
    if args.out:
        path = write_result(_result(args, clean_source, results, failed, n, timings, device), args.out)
        print(f"wrote {path}")
    return 1 if failed else 0


def _eval_data(args, UserError):
    """``(train or None, evaluated test samples fitted to the models, n, num_classes)``."""
    train, test, num_classes = _data(args, UserError)
    n = len(test) if args.n_eval is None else min(args.n_eval, len(test))
    if isinstance(test, TensorData):
        data = test.subset(range(n))
    elif n < len(test):  # a seeded random subset: an ImageFolder lists its samples class by class
        idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))[:n]
        data = Subset(test, sorted(idx.tolist()))
    else:
        data = test
    return train, _adapt(data, args), n, num_classes  # only the evaluated samples are converted


def _attack_all(args, source: nn.Module, targets: list[_Target], data, n: int, num_classes: int, device,
                UserError) -> dict[str, torch.Tensor]:
    """Attack ``data`` at every ``--eps`` in one pass per ``--attack-batch`` (:func:`pyadvt.attacks.run_on`)
    and gather the labels ``y [N]``, target labels ``t [N]``, the source's clean ``[N]`` / adversarial
    ``[K, N]`` predictions and the perturbation norms ``linf``, ``l2 [K, N]``; the targets' predictions
    go into each :class:`_Target`."""
    budgets = torch.tensor(args.eps, dtype=torch.float32)
    alpha = None if args.alpha_ratio is None else args.alpha_ratio * float(budgets.max())
    try:
        atk = build_attack(args.attack, source, eps=float(budgets.max()), steps=args.steps, alpha=alpha,
                           norm=args.norm, restarts=args.restarts, targeted=args.targeted, seed=args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    log(f"attack: {atk} at eps {', '.join(f'{e:g}' for e in args.eps)} on {n} test samples")
    cols: dict[str, list] = {"y": [], "t": [], "src_clean": [], "src_adv": [], "linf": [], "l2": []}
    try:
        for b in run_on(atk, data, args.attack_batch, eps=budgets, device=device, progress=not args.quiet):
            delta = (b.x_adv - b.x.unsqueeze(0)).flatten(2)
            for key, value in (("y", b.y.cpu()), ("t", ((b.y + 1) % num_classes).cpu()),
                               ("src_clean", _predict(source, b.x)),
                               ("src_adv", torch.stack([_predict(source, xa) for xa in b.x_adv])),
                               ("linf", delta.abs().amax(dim=2).cpu()), ("l2", delta.norm(dim=2).cpu())):
                cols[key].append(value)
            for tg in targets:
                _evaluate_target(tg, b, device)
    except (RuntimeError, NotImplementedError) as exc:
        raise UserError(f"source {_label(args)}: the {args.attack} attack failed: {_one_line(exc)}") from None
    return {k: torch.cat(v, dim=0 if k in ("y", "t", "src_clean") else 1) for k, v in cols.items()}


def _target_results(args, cols: Mapping[str, torch.Tensor], targets: list[_Target]) -> list[dict]:
    """Per usable target: clean accuracy and, per budget, source fooling, transfer success, the
    Definition-3 transfer rate (docs/theory.md §3) and the mean perturbation norms."""
    y = cols["y"]
    target_labels = cols["t"] if args.targeted else None
    results = []
    for tg in targets:
        if tg.error is not None:
            continue
        tgt_clean, tgt_adv = torch.cat(tg.clean), torch.cat(tg.adv, dim=1)
        rows = []
        for k, eps in enumerate(args.eps):
            rates = rates_from_predictions(cols["src_clean"], tgt_clean, cols["src_adv"][k], tgt_adv[k], y,
                                           target_labels=target_labels)
            rows.append({"eps": eps, "source_fooling": rates.fooling, "transfer_success": rates.asr,
                         "transfer_rate": rates.rate, "both_correct": rates.both_correct,
                         "mean_linf": float(cols["linf"][k].mean()), "mean_l2": float(cols["l2"][k].mean())})
        results.append({"name": tg.name, "spec": tg.spec, "clean_accuracy": float((tgt_clean == y).double().mean()),
                        "budgets": rows})
    return results


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {(lines[0] if lines else '')[:300]}"


def _label(args) -> str:
    return args.source or args.source_checkpoint or args.source_model


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with evaluating(model):
        return model(x).argmax(1).cpu()


def _evaluate_target(tg: _Target, b, device) -> None:
    """Predictions of one target on a batch; a failure is reported once and the target dropped."""
    if tg.error is not None:
        return
    try:
        tg.clean.append(_predict(tg.model, b.x))
        tg.adv.append(torch.stack([_predict(tg.model, xa) for xa in b.x_adv]))
    except (RuntimeError, NotImplementedError, ValueError, TypeError) as exc:
        tg.error = f"target {tg.name} ({tg.spec}): transfer evaluation failed: {_one_line(exc)}"
        print(f"pyadvt: error: {tg.error}", file=sys.stderr)


def _validate(args: argparse.Namespace, UserError) -> None:
    if any(not e > 0 or e != e for e in args.eps):
        raise UserError(f"--eps: budgets must be > 0, got {args.eps}")
    for name in ("steps", "restarts", "epochs", "batch_size", "attack_batch"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("threads", "n_eval", "image_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.alpha_ratio is not None and not args.alpha_ratio > 0:
        raise UserError(f"--alpha-ratio must be > 0, got {args.alpha_ratio}")
    if args.source and args.source_checkpoint:
        raise UserError("give --source or --source-checkpoint, not both")
    if args.target and args.target_checkpoint:
        raise UserError("give --target or --target-checkpoint, not both")


def _device(name: str, UserError) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device: unknown device {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is visible")
    return device


def _adapt(data, args):
    """``data`` with --image-size / --channels applied (in memory for a TensorData, per item otherwise)."""
    size = None if canonical_name(args.dataset) == "imagefolder" else args.image_size  # it resizes itself
    if size is None and args.channels is None:
        return data
    if isinstance(data, TensorData):
        return TensorData(adapt_images(data.x, size, args.channels), data.y, data.num_classes)
    return AdaptedImages(data, size, args.channels)


def _data(args, UserError):
    """``(train or None, test, num_classes)``; train is read (and fitted to --image-size / --channels)
    only when a model is trained; the test split is fitted after the evaluated samples are chosen."""
    if canonical_name(args.dataset) == "digits":
        train, test = digits(seed=args.seed)
    else:
        kw = {"size": args.image_size} if canonical_name(args.dataset) == "imagefolder" else {}
        needs_train = not (args.source or args.source_checkpoint) or not (args.target or args.target_checkpoint)
        test = load_dataset(args.dataset, args.data_root, split="test", **kw)
        train = load_dataset(args.dataset, args.data_root, split="train", **kw) if needs_train else None
    num_classes = getattr(test, "num_classes", None)
    if num_classes is None:
        raise UserError(f"--dataset {args.dataset}: the number of classes is unknown")
    return (None if train is None else _adapt(train, args)), test, int(num_classes)


def _model(role: str, spec: str | None, arch: str, seed: int, train, args, device, sample, num_classes,
           UserError) -> nn.Module:
    """Load ``spec`` or train ``arch`` on ``train`` (weights seeded by ``seed``)."""
    if spec is not None:
        flag = f"--{role}" if getattr(args, role) else f"--{role}-checkpoint"
        with torch.random.fork_rng(devices=[]):  # a randomly initialised hub model is reproducible too
            torch.manual_seed(seed)
            model = load_model(spec, num_classes=num_classes, in_shape=sample, device=device, flag=flag)
        log(f"{role}: loaded {spec}")
        return model
    if not isinstance(train, TensorData):
        raise UserError(f"training a --{role}-model needs an in-memory dataset; for --dataset {args.dataset} "
                        f"give a trained model with --{role} SPEC")
    spec = ModelSpec(arch, {"num_classes": num_classes}, "st", {},
                     {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size}, seed)
    model, info = train_or_load(spec, train, progress=not args.quiet, device=device)
    log(f"{role}: trained {arch} for {args.epochs} epochs in {info['train_seconds']:.1f} s")
    if args.save_checkpoints:
        import os

        save_checkpoint(os.path.join(args.save_checkpoints, f"{role}.pt"), model,
                        {"role": role, "seed": seed, "epochs": args.epochs, "lr": args.lr})
    return model.eval()


def _targets(args, train, device, sample, num_classes, UserError) -> list[_Target]:
    """The targets; one that cannot be loaded or run on the data is reported and skipped (when none
    can be used, the first one's error is the command's one-line error)."""
    from pyadvt.commands.model_spec import named_model_specs

    if not args.target:
        spec = args.target_checkpoint
        model = _model("target", spec, args.target_model, args.seed + 1, train, args, device, sample,
                       num_classes, UserError)
        return [_Target("target", spec or args.target_model, model)]
    out = []
    for k, (name, spec) in enumerate(named_model_specs(args.target, "--target").items()):
        try:
            with torch.random.fork_rng(devices=[]):  # seeds seed+1, seed+2, ... for random-init targets
                torch.manual_seed(args.seed + 1 + k)
                model = load_model(spec, num_classes=num_classes, in_shape=sample, device=device,
                                   flag=f"--target {name}")
            out.append(_Target(name, spec, model))
            log(f"target {name}: loaded {spec}")
        except (ModelSpecError, FileNotFoundError) as exc:
            out.append(_Target(name, spec, None, str(exc)))
    if all(t.error is not None for t in out):
        raise UserError(out[0].error)
    for t in out:
        if t.error is not None:
            print(f"pyadvt: error: {t.error}", file=sys.stderr)
    return out


def _cells(row: dict) -> list:
    return [row["eps"], row["source_fooling"], row["transfer_success"], row["transfer_rate"], row["mean_linf"],
            row["mean_l2"]]


def _print_table(args, clean_source: float, results: list[dict], n: int) -> None:
    kind = "targeted " if args.targeted else ""
    print(f"{kind}{args.attack} ({args.norm}, {args.steps if args.attack != 'fgsm' else 1} steps) on "
          f"{_label(args)} -> {', '.join(r['spec'] for r in results)}, {n} {args.dataset} test samples")
    for r in results:
        print(f"clean accuracy: source {clean_source:.4f}, target {r['clean_accuracy']:.4f}"
              + (f" ({r['name']})" if len(results) > 1 else ""))
        widths = [max(len(c), 8) for c in COLUMNS]
        print("  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths)))
        for row in r["budgets"]:
            print("  ".join(f"{v:.4f}".rjust(w) if v == v else "n/a".rjust(w) for v, w in zip(_cells(row), widths)))


def _result(args, clean_source: float, results: list[dict], failed: list[dict], n: int, timings: Timings,
            device) -> dict:
    config = {k: v for k, v in vars(args).items() if k not in ("func", "command", "quiet", "out", "threads")}
    first = results[0]
    rows = first["budgets"]
    eps = [r["eps"] for r in rows]
    figure = {"type": "curves", "title": f"{args.attack}: source fooling and transfer success", "x": eps,
              "series": {"source fooling": [r["source_fooling"] for r in rows],
                         **{f"transfer success ({r['name']})" if len(results) > 1 else "transfer success":
                            [b["transfer_success"] for b in r["budgets"]] for r in results}},
              "xlabel": f"eps ({args.norm})", "ylabel": "rate"}
    summary = {"clean_accuracy_source": clean_source, "clean_accuracy_target": first["clean_accuracy"],
               "max_eps_transfer_success": rows[-1]["transfer_success"] if rows else None}
    notes = ["source fooling = 1 - acc_S(x_adv) and transfer success = 1 - acc_T(x_adv) over all samples "
             "(targeted: hit rates of (y + 1) mod C); transfer rate = Definition 3 of seed 001 over the "
             "samples both models classify correctly (docs/theory.md §3)."]
    notes += [f"failed: {f['error']}" for f in failed]
    data = {"n": n, "dataset": args.dataset,
            "clean_accuracy": {"source": clean_source, "target": first["clean_accuracy"]},
            "budgets": rows, "targets": results, "failed": failed}
    tables = [{"title": "attack and transfer per budget" + (f" ({r['name']})" if len(results) > 1 else ""),
               "columns": COLUMNS, "rows": [_cells(b) for b in r["budgets"]]} for r in results]
    return make_result("attack", config, data, timings=timings, seeds=[args.seed, args.seed + 1], device=device,
                       summary=summary, figures=[figure], tables=tables, notes=notes)
