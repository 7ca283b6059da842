"""Attack a digits source model and measure transfer to a target model.

``pyadvt attack --attack pgd --eps 0.05 0.1 0.2`` trains (or loads with ``--source-checkpoint`` /
``--target-checkpoint``) a source and a target network on scikit-learn's digits, attacks the source
on the test split at every budget in one batched pass per chunk, and prints clean accuracies, the
source fooling rate ``1 - acc_S(x_adv)``, the transfer success ``1 - acc_T(x_adv)`` over all samples
and the Definition-3 transfer rate over samples both models classify correctly (SPEC §3; targeted:
hit rates of the target label ``(y + 1) mod 10``). ``--out`` writes a ``pyadvt.result/1`` JSON.

Example (a few seconds on 2 CPU cores)::

    pyadvt attack --attack dim --eps 0.05 0.1 0.2 --out results/attack.json
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from pyadvt.attacks import ATTACKS, build_attack
from pyadvt.data import TensorData, digits
from pyadvt.metrics.transfer_rates import transferability
from pyadvt.models import MODELS, build
from pyadvt.report import Timings, make_result, write_result
from pyadvt.train import evaluate, fit, load_checkpoint, save_checkpoint
from pyadvt.utils.progress import log, progress, set_quiet

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
    a.add_argument("--targeted", action="store_true", help="targeted attack towards (y + 1) mod 10")
    m = parser.add_argument_group("models")
    m.add_argument("--source-model", choices=sorted(MODELS), default="cnn", help="source architecture (default cnn)")
    m.add_argument("--target-model", choices=sorted(MODELS), default="cnn", help="target architecture (default cnn)")
    m.add_argument("--source-checkpoint", default=None, help="load the source from this checkpoint instead of training")
    m.add_argument("--target-checkpoint", default=None, help="load the target from this checkpoint instead of training")
    m.add_argument("--save-checkpoints", default=None, metavar="DIR",
                   help="save the trained models as DIR/source.pt and DIR/target.pt")
    m.add_argument("--epochs", type=int, default=5, help="training epochs per model (default 5)")
    m.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (default 0.05)")
    m.add_argument("--batch-size", type=int, default=64, help="training batch size (default 64)")
    r = parser.add_argument_group("run")
    r.add_argument("--n-eval", type=int, default=None, help="attack the first N test samples (default: all 450)")
    r.add_argument("--attack-batch", type=int, default=256, help="samples per attack pass (default 256)")
    r.add_argument("--seed", type=int, default=0, help="seed of the split, the models (seed, seed+1) and the attack")
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


def _run(args: argparse.Namespace) -> int:
    from pyadvt.cli import UserError

    _validate(args, UserError)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = _device(args.device, UserError)
    timings = Timings()
    with timings("data"):
        train, test = digits(seed=args.seed)
    with timings("source"):
        source = _model("source", args.source_checkpoint, args.source_model, args.seed, train, args, device, UserError)
    with timings("target"):
        target = _model("target", args.target_checkpoint, args.target_model, args.seed + 1, train, args, device,
                        UserError)
    n = len(test) if args.n_eval is None else min(args.n_eval, len(test))
    x, y = test.x[:n].to(device), test.y[:n].to(device)
    budgets = torch.tensor(args.eps, dtype=torch.float32)
    top = float(budgets.max())
    alpha = None if args.alpha_ratio is None else args.alpha_ratio * top
    try:
        atk = build_attack(args.attack, source, eps=top, steps=args.steps, alpha=alpha, norm=args.norm,
                           restarts=args.restarts, targeted=args.targeted, seed=args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    log(f"attack: {atk} at eps {', '.join(f'{e:g}' for e in args.eps)} on {n} test samples")
    with timings("attack"):
        chunks = [atk(x[s:s + args.attack_batch], y[s:s + args.attack_batch], eps=budgets)
                  for s in progress(range(0, n, args.attack_batch), desc="attack")]
        x_adv = torch.cat(chunks, dim=1)
    with timings("evaluate"):
        clean = {"source": evaluate(source, TensorData(x.cpu(), y.cpu()))["accuracy"],
                 "target": evaluate(target, TensorData(x.cpu(), y.cpu()))["accuracy"]}
        rows = [_budget_row(eps, source, target, x, y, x_adv[k], args.targeted) for k, eps in enumerate(args.eps)]
    _print_table(args, clean, rows, n)
    if args.out:
        path = write_result(_result(args, clean, rows, n, timings, device), args.out)
        print(f"wrote {path}")
    return 0


def _validate(args: argparse.Namespace, UserError) -> None:
    if any(not e > 0 or e != e for e in args.eps):
        raise UserError(f"--eps: budgets must be > 0, got {args.eps}")
    for name in ("steps", "restarts", "epochs", "batch_size", "attack_batch"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    if args.n_eval is not None and args.n_eval < 1:
        raise UserError(f"--n-eval must be >= 1, got {args.n_eval}")
    if args.alpha_ratio is not None and not args.alpha_ratio > 0:
        raise UserError(f"--alpha-ratio must be > 0, got {args.alpha_ratio}")


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


def _model(role: str, checkpoint: str | None, arch: str, seed: int, train: TensorData, args, device,
           UserError) -> nn.Module:
    """Load ``checkpoint`` or train ``arch`` on ``train`` (weights seeded by ``seed``)."""
    if checkpoint is not None:
        model, _ = load_checkpoint(checkpoint, map_location=device)
        with torch.no_grad():
            width = model.eval()(train.x[:1].to(device)).shape
        if width != (1, train.num_classes):
            raise UserError(f"--{role}-checkpoint {checkpoint}: the model maps a digits image to shape "
                            f"{tuple(width)}, expected (1, {train.num_classes}) logits")
        log(f"{role}: loaded {checkpoint}")
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(arch, in_shape=tuple(train.x.shape[1:]), num_classes=train.num_classes).to(device)
    result = fit(model, train, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=seed,
                 progress=not args.quiet)
    log(f"{role}: trained {arch} for {args.epochs} epochs in {result.seconds:.1f} s")
    if args.save_checkpoints:
        import os

        save_checkpoint(os.path.join(args.save_checkpoints, f"{role}.pt"), model,
                        {"role": role, "seed": seed, "epochs": args.epochs, "lr": args.lr})
    return model.eval()


def _budget_row(eps: float, source, target, x, y, x_adv, targeted: bool) -> dict:
    rates = transferability(source, target, x, y, x_adv, targeted=targeted)
    delta = (x_adv - x).flatten(1)
    return {"eps": eps, "source_fooling": rates.fooling, "transfer_success": rates.asr,
            "transfer_rate": rates.rate, "both_correct": rates.both_correct,
            "mean_linf": float(delta.abs().amax(dim=1).mean()), "mean_l2": float(delta.norm(dim=1).mean())}


def _cells(row: dict) -> list:
    return [row["eps"], row["source_fooling"], row["transfer_success"], row["transfer_rate"], row["mean_linf"],
            row["mean_l2"]]


def _print_table(args, clean: dict, rows: list[dict], n: int) -> None:
    kind = "targeted " if args.targeted else ""
    print(f"{kind}{args.attack} ({args.norm}, {args.steps if args.attack != 'fgsm' else 1} steps) on "
          f"{args.source_model if args.source_checkpoint is None else args.source_checkpoint} -> "
          f"{args.target_model if args.target_checkpoint is None else args.target_checkpoint}, {n} digits test samples")
    print(f"clean accuracy: source {clean['source']:.4f}, target {clean['target']:.4f}")
    widths = [max(len(c), 8) for c in COLUMNS]
    print("  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths)))
    for row in rows:
        print("  ".join(f"{v:.4f}".rjust(w) if v == v else "n/a".rjust(w) for v, w in zip(_cells(row), widths)))


def _result(args, clean: dict, rows: list[dict], n: int, timings: Timings, device) -> dict:
    config = {k: v for k, v in vars(args).items() if k not in ("func", "command", "quiet", "out", "threads")}
    eps = [r["eps"] for r in rows]
    figure = {"type": "curves", "title": f"{args.attack}: source fooling and transfer success", "x": eps,
              "series": {"source fooling": [r["source_fooling"] for r in rows],
                         "transfer success": [r["transfer_success"] for r in rows]},
              "xlabel": f"eps ({args.norm})", "ylabel": "rate"}
    summary = {"clean_accuracy_source": clean["source"], "clean_accuracy_target": clean["target"],
               "max_eps_transfer_success": rows[-1]["transfer_success"] if rows else None}
    notes = ["source fooling = 1 - acc_S(x_adv) and transfer success = 1 - acc_T(x_adv) over all samples "
             "(targeted: hit rates of (y + 1) mod 10); transfer rate = Definition 3 of seed 001 over the "
             "samples both models classify correctly (SPEC section 3)."]
    return make_result("attack", config, {"n": n, "clean_accuracy": clean, "budgets": rows}, timings=timings,
                       seeds=[args.seed, args.seed + 1], device=device, summary=summary, figures=[figure],
                       tables=[{"title": "attack and transfer per budget", "columns": COLUMNS,
                                "rows": [_cells(r) for r in rows]}], notes=notes)
