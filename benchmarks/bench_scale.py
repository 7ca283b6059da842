"""Seed-000 metrics and smoothness at ImageNet scale (issue 12): the matrix-free spectral route.

Models: two torchvision ``resnet18(num_classes=1000)`` with random init (seeds 0 and 1), inputs
``[B, 3, H, H]`` in [0, 1]. Measured, each in a fresh forked process (wall time of one call and the
peak resident memory above the process's size at the start of the call):

1. ``tau1``, ``tau2``, ``singular_value_ratio`` (matrix-free route, chosen automatically),
   ``smoothness`` (``lanczos`` and ``exact``; the latter matrix-free for C = 1000),
   ``gradient_similarity`` and PGD-10 (the cheap references a user compares with);
2. the limit of the matrix-free solver: one batched VJP + JVP pair on the retained graph, and the
   solver's time over (its products x that pair's time);
3. the dense route (``m = 1000`` reverse passes for ``J`` + SVD): timed where it fits in a
   reasonable time (``--dense-size``, default 64x64, B = 1) and extrapolated to the measured sizes as
   ``per-pass time x 1000 x models`` with the per-pass time measured at the same size and batch;
4. the dense route's own limit on digits (SmallCNN, 10 logits, 256 samples): tau1 + tau2
   (``adversarial_transferability``) against the Jacobians' backward passes (``jacobian`` of both
   models), the goal being <= 1.25x.

Goals (CPU, issue 12): tau1 for two ResNet-18s at 224 x 224, B = 8 in <= 3 GiB peak and >= 10x
faster than the dense route; the solver <= 2x the cost of its JVP/VJP products; on the dense route
tau1 + tau2 within 1.25x of the Jacobians' backward passes. JSON goes to
``benchmarks/results/bench_scale_cpu.json`` (``--quick``: ``bench_scale_quick_cpu.json``).

    python benchmarks/bench_scale.py --quick                  # 3x64x64, B in {1, 2}: minutes
    python benchmarks/bench_scale.py --sizes 224 --batches 1 8 --threads 1 --dense-size 64 \
        --big-batch-metrics tau1 solver_vs_products                   # the run in results/ (~40 min)
    python benchmarks/bench_scale.py --digits-only --threads 1        # refresh item 4 only

On a shared 2-core machine use ``--threads 1``: with 2 intra-op threads under contention every pass
was ~5x slower (OpenMP threads wait on each other).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time

import torch
import torchvision

from common import write_results
from pyadvt.attacks import PGD
from pyadvt.metrics import adversarial_transferability, singular_value_ratio, smoothness, tau1, tau2
from pyadvt.metrics.similarity import gradient_similarity
from pyadvt.models import build
from pyadvt.ops import jacobian
from pyadvt.ops.matrix_free import JacobianProducts, jacobian_top_singular
from pyadvt.utils.modes import evaluating

NUM_CLASSES = 1000
GIB = 2**30


def _rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(conn, fn, args):
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    start = _rss()
    t0 = time.perf_counter()
    try:
        extra = fn(*args)
        err = None
    except Exception as exc:  # reported, not raised: one failing workload must not stop the run
        extra, err = None, f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    conn.send({"wall_s": wall, "peak_rss_gib": peak / GIB, "peak_above_start_gib": max(peak - start, 0) / GIB,
               "extra": extra, "error": err})
    conn.close()


def run_isolated(fn, *args) -> dict:
    """``fn(*args)`` in a forked process: wall time, peak RSS (absolute and above the start)."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(child, fn, args))
    p.start()
    out = parent.recv()
    p.join()
    print(f"    {fn.__name__}: {out['wall_s']:.1f} s, peak +{out['peak_above_start_gib']:.2f} GiB"
          + (f"  ERROR {out['error']}" if out["error"] else ""), flush=True)
    return out


def resnets():
    torch.manual_seed(0)
    s = torchvision.models.resnet18(num_classes=NUM_CLASSES).eval()
    torch.manual_seed(1)
    t = torchvision.models.resnet18(num_classes=NUM_CLASSES).eval()
    return s, t


def data(B: int, H: int):
    g = torch.Generator().manual_seed(B * 1000 + H)
    return torch.rand(B, 3, H, H, generator=g), torch.randint(0, NUM_CLASSES, (B,), generator=g)


# ---- workloads (run in the child) ---------------------------------------------------------------------


def w_tau1(S, T, x, y):
    r = tau1(S, T, x, batch_size=x.shape[0])
    return {"tau1": r.tau1, "n_not_converged": r.n_not_converged}


def w_tau2(S, T, x, y):
    return {"tau2": tau2(S, T, x, batch_size=x.shape[0]).tau2}


def w_svr(S, T, x, y):
    r = singular_value_ratio(S, x, batch_size=x.shape[0])
    return {"lambda_mean": r.mean}


def w_smooth_lanczos(S, T, x, y):
    r = smoothness(S, x, y, method="lanczos", batch_size=x.shape[0], progress=False)
    return {"mean": r.mean, "hvps": float(r.iterations.double().mean())}


def w_smooth_exact(S, T, x, y):
    r = smoothness(S, x, y, method="exact", batch_size=x.shape[0], progress=False)
    return {"mean": r.mean, "products_per_sample": float(r.iterations.double().mean())}


def w_similarity(S, T, x, y):
    return {"mean": gradient_similarity(S, T, x, y, batch_size=x.shape[0]).mean}


def w_pgd10(S, T, x, y):
    PGD(S, eps=8 / 255, steps=10)(x, y)
    return {}


def w_solver_vs_products(S, T, x, y):
    """The solver's wall time against (its products x the measured time of one VJP + JVP pair)."""
    with evaluating(S, higher_order=True):
        t0 = time.perf_counter()
        s = jacobian_top_singular(S, x)
        solver = time.perf_counter() - t0
        P = JacobianProducts(S, x)
        u = torch.randn(x.shape[0], NUM_CLASSES, dtype=torch.float64)
        P.jvp(P.vjp(u))  # builds the double-backward graph once, as the solver does
        reps = 2
        t0 = time.perf_counter()
        for _ in range(reps):
            P.jvp(P.vjp(u))
        pair = (time.perf_counter() - t0) / reps
    pairs = s.products / 2
    return {"solver_s": solver, "pair_s": pair, "products": s.products, "iterations": s.iterations.tolist(),
            "solver_over_products": solver / (pairs * pair), "sigma1": s.sigma1.tolist(), "lam": s.lam.tolist()}


def w_vjp_pass(S, T, x, y):
    """Time of one reverse pass of the batch (the dense route needs 1000 of them per model)."""
    with evaluating(S):
        xr = x.clone().requires_grad_(True)
        out = S(xr)
        u = torch.randn_like(out)
        torch.autograd.grad(out, xr, u, retain_graph=True)
        reps = 3
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.autograd.grad(out, xr, u, retain_graph=True)
        return {"pass_s": (time.perf_counter() - t0) / reps}


def w_dense_tau1(S, T, x, y):
    r = tau1(S, T, x, batch_size=x.shape[0], route="dense")
    return {"tau1": r.tau1}


def digits_dense_limit(quick: bool) -> dict:
    """Dense route (m = 10) on digits: tau1 + tau2 vs the two Jacobians' backward passes."""
    from common import measure

    torch.manual_seed(0)
    S, T = build("cnn"), build("cnn")
    x = torch.rand(64 if quick else 256, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    rt = 0.3 if quick else 1.0
    both = measure(lambda: adversarial_transferability(S, T, x, batch_size=x.shape[0]), rt)
    jac = measure(lambda: (jacobian(S, x), jacobian(T, x)), rt)
    return {"B": x.shape[0], "tau1_tau2_s": both["median_s"], "jacobians_s": jac["median_s"],
            "ratio": both["median_s"] / jac["median_s"], "goal": "<= 1.25"}


WORKLOADS = {"tau1": w_tau1, "tau2": w_tau2, "singular_value_ratio": w_svr, "smoothness_lanczos": w_smooth_lanczos,
             "smoothness_exact": w_smooth_exact, "gradient_similarity": w_similarity, "pgd10": w_pgd10,
             "solver_vs_products": w_solver_vs_products}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3x64x64, B in {1, 2}")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--batches", type=int, nargs="+", default=None)
    ap.add_argument("--metrics", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    ap.add_argument("--big-batch-metrics", nargs="+", default=None,
                    help="metrics run at batches > 1 (default: all); the rest only at B = 1")
    ap.add_argument("--dense-size", type=int, default=64, help="input size where the dense route is timed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--digits-only", action="store_true",
                    help="re-measure only the dense-route limit on digits and update the existing JSON")
    args = ap.parse_args()
    os.environ["BENCH_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    if args.digits_only:
        from common import RESULTS_DIR, metadata

        path = os.path.join(RESULTS_DIR, f"bench_scale{'_quick' if args.quick else ''}_cpu.json")
        with open(path) as fh:
            doc = json.load(fh)
        doc["results"]["digits_dense_limit"] = digits_dense_limit(args.quick)
        doc["results"]["digits_dense_limit"]["metadata"] = metadata("cpu")
        print(json.dumps(doc["results"]["digits_dense_limit"]), flush=True)
        with open(path, "w") as fh:
            json.dump(doc, fh, indent=2)
        return
    sizes = args.sizes or ([64] if args.quick else [224])
    batches = args.batches or ([1, 2] if args.quick else [1, 8])
    S, T = resnets()
    results: dict = {"config": {"sizes": sizes, "batches": batches, "threads": args.threads, "models":
                                "torchvision resnet18(num_classes=1000), random init (seeds 0, 1)"}, "runs": {}}
    for H in sizes:
        for B in batches:
            key = f"{B}x3x{H}x{H}"
            print(f"{key}:", flush=True)
            x, y = data(B, H)
            row = {}
            names = args.metrics if B == 1 or args.big_batch_metrics is None else [
                m for m in args.metrics if m in args.big_batch_metrics]
            for name in names:
                row[name] = run_isolated(WORKLOADS[name], S, T, x, y)
            vjp = run_isolated(w_vjp_pass, S, T, x, y)
            row["vjp_pass"] = vjp
            if vjp["extra"]:
                # dense tau1: 1000 reverse passes per model (+ the two SVDs, negligible next to them)
                row["dense_tau1_extrapolated_s"] = 2 * NUM_CLASSES * vjp["extra"]["pass_s"]
                if "tau1" in row and row["tau1"]["error"] is None:
                    row["tau1_speedup_vs_dense"] = row["dense_tau1_extrapolated_s"] / row["tau1"]["wall_s"]
            results["runs"][key] = row
    # the dense route timed where it is affordable, to validate the extrapolation
    x, y = data(1, args.dense_size)
    dense = run_isolated(w_dense_tau1, S, T, x, y)
    free = run_isolated(w_tau1, S, T, x, y)
    vjp = run_isolated(w_vjp_pass, S, T, x, y)
    results["dense_check"] = {
        "input": f"1x3x{args.dense_size}x{args.dense_size}", "dense_tau1": dense, "matrix_free_tau1": free,
        "vjp_pass": vjp,
        "dense_extrapolated_s": 2 * NUM_CLASSES * vjp["extra"]["pass_s"] if vjp["extra"] else None,
        "speedup": dense["wall_s"] / free["wall_s"] if dense["error"] is None and free["error"] is None else None,
        "tau1_dense": (dense["extra"] or {}).get("tau1"), "tau1_matrix_free": (free["extra"] or {}).get("tau1")}
    results["digits_dense_limit"] = digits_dense_limit(args.quick)
    print(json.dumps(results["digits_dense_limit"]), flush=True)
    write_results("bench_scale_quick" if args.quick else "bench_scale", "cpu", results)


if __name__ == "__main__":
    main()
