"""tau1/tau2 throughput and the Jacobian method choice (issue 4 items 2 and 8).

1. ``jacobian`` methods on the same model and batch: ``batched_grad`` (one forward, m backward
   passes of the batch: sequential on CPU, vmapped via ``is_grads_batched`` elsewhere), ``rev``
   (``vmap(jacrev)``), ``fwd`` (``vmap(jacfwd)``)
   and a per-sample ``torch.autograd.functional.jacobian`` loop; this is the evidence for
   ``method="auto"`` (:func:`pyadvt.ops.jacobian.choose_method`).
2. tau1 + tau2 (:func:`pyadvt.metrics.adversarial_transferability`, batched Jacobians + the
   ``jacobian_spectrum`` op + streaming tau2 statistics) against a batch-size-1 loop in the style of the
   authors' scripts (one sample at a time: per-sample Jacobians by ``m`` backward passes,
   ``torch.linalg.svd`` of each Jacobian, Python accumulation of the tau2 statistics).

Models: the reference ``MLP`` and ``SmallCNN`` (10 logits) on digits-shaped ``[B, 1, 8, 8]``, the
``SmallCNN`` on CIFAR-shaped ``[B, 3, 32, 32]`` inputs, and an MLP representation map (n = 16 < m = 64)
for the forward-mode case. On CPU the batched/loop ratio is bounded by how much of the loop's time is
per-call overhead: large for the MLP, small for convolutions whose arithmetic dominates.
Ratios are ``time(baseline) / time(pyadvt)`` (above 1: pyadvt faster). JSON goes to
``benchmarks/results/bench_tau_<device>.json``.

    python benchmarks/bench_tau.py [--quick] [--threads N]
"""

from __future__ import annotations

import torch

from common import bench_parser, devices, measure, parse_bench_args, write_results
from pyadvt.metrics import adversarial_transferability, tau2_from_deviations
from pyadvt.models import build
from pyadvt.ops import jacobian
from pyadvt.ops.jacobian import _rows_vmapped


def loop_tau(source, target, x):
    """The batch-size-1 baseline: everything per sample, as the authors' scripts process images."""
    U, V, t1 = [], [], []
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        JS = torch.autograd.functional.jacobian(lambda z: source(z).reshape(-1), xi).reshape(-1, xi.numel())
        JT = torch.autograd.functional.jacobian(lambda z: target(z).reshape(-1), xi).reshape(-1, xi.numel())
        vS = torch.linalg.svd(JS)[2][0]
        vT = torch.linalg.svd(JT)[2][0]
        t1.append(float(vS @ vT) ** 2)
        U.append(JS @ vS)
        V.append(JT @ vS)
    return sum(t1) / len(t1), tau2_from_deviations(torch.stack(U), torch.stack(V)).tau2


def workloads(device: str, quick: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    b_small, b_big = (64, 16) if quick else (256, 64)
    out = {
        f"mlp-digits-{b_small}x1x8x8": (build("mlp"), build("mlp"), torch.rand(b_small, 1, 8, 8, generator=g)),
        f"cnn-digits-{b_small}x1x8x8": (build("cnn"), build("cnn"), torch.rand(b_small, 1, 8, 8, generator=g)),
        f"cnn-cifar-{b_big}x3x32x32": (build("cnn", in_shape=(3, 32, 32)), build("cnn", in_shape=(3, 32, 32)),
                                      torch.rand(b_big, 3, 32, 32, generator=g)),
    }
    return {k: (s.to(device).eval(), t.to(device).eval(), x.to(device)) for k, (s, t, x) in out.items()}


def vmapped_batched_grad(model, x: torch.Tensor) -> torch.Tensor:
    """``batched_grad`` with its m reverse passes always vmapped by ``is_grads_batched``: timed on CPU as
    the evidence for ``pyadvt.ops.jacobian``'s sequential-or-vmapped rule (``_sequential_passes``)."""
    xr = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        return _rows_vmapped(model(xr).reshape(x.shape[0], -1), xr)


def bench_jacobian_methods(device: str, quick: bool, min_run_time: float) -> dict:
    res = {}
    cases = dict(workloads(device, quick))
    torch.manual_seed(1)
    rep = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64))
    cases["mlp-repr-n16-m64"] = (rep.to(device).eval(), None, torch.rand(128, 1, 4, 4, device=device))
    for name, (model, _, x) in cases.items():
        row = {}
        n = x[0].numel()
        methods = ("batched_grad", "rev", "fwd") if n <= 256 else ("batched_grad", "rev")
        for method in methods:
            row[method] = measure(lambda m=method: jacobian(model, x, method=m), min_run_time)
        if "fwd" not in methods:  # n forward passes per sample: hopeless (and memory-hungry) for large n
            row["fwd"] = {"skipped": f"n={n} > 256"}
        if device == "cpu":
            row["batched_grad_vmapped"] = measure(lambda: vmapped_batched_grad(model, x), min_run_time)
            row["vmapped_over_batched_grad"] = row["batched_grad_vmapped"]["median_s"] / row["batched_grad"]["median_s"]
        xs = x[:8]
        loop = measure(lambda: [torch.autograd.functional.jacobian(lambda z: model(z), xs[i:i + 1])
                                for i in range(xs.shape[0])], min_run_time)
        row["loop_per_sample_s"] = loop["median_s"] / xs.shape[0]
        best = min(methods, key=lambda k: row[k]["median_s"])
        row["fastest"] = best
        row["auto_choice"] = "fwd" if x[0].numel() < model(x[:1]).numel() else "batched_grad"
        row["speedup_vs_loop"] = {k: row["loop_per_sample_s"] * x.shape[0] / row[k]["median_s"] for k in methods}
        res[name] = row
        print(f"[jacobian] {name}: " + ", ".join(f"{k} {row[k]['median_s'] * 1e3:.2f} ms" for k in methods)
              + f" -> fastest {best}")
    return res


def bench_tau_throughput(device: str, quick: bool, min_run_time: float) -> dict:
    res = {}
    for name, (S, T, x) in workloads(device, quick).items():
        batched = measure(lambda: adversarial_transferability(S, T, x, batch_size=x.shape[0]), min_run_time)
        n_loop = min(16, x.shape[0])
        loop = measure(lambda: loop_tau(S, T, x[:n_loop]), min_run_time)
        per_sample_batched = batched["median_s"] / x.shape[0]
        per_sample_loop = loop["median_s"] / n_loop
        res[name] = {"batched": batched, "loop": loop, "loop_samples": n_loop,
                     "batched_samples_per_s": 1 / per_sample_batched, "loop_samples_per_s": 1 / per_sample_loop,
                     "speedup": per_sample_loop / per_sample_batched}
        print(f"[tau1+tau2] {name}: batched {1 / per_sample_batched:.0f} samples/s, loop "
              f"{1 / per_sample_loop:.0f} samples/s -> {per_sample_loop / per_sample_batched:.1f}x")
    return res


def main() -> None:
    args = parse_bench_args(bench_parser(__doc__, "small batches, short timing"))
    min_run_time = 0.2 if args.quick else 1.0
    for device in devices():
        results = {"jacobian_methods": bench_jacobian_methods(device, args.quick, min_run_time),
                   "tau_throughput": bench_tau_throughput(device, args.quick, min_run_time)}
        write_results("bench_tau", device, results)


if __name__ == "__main__":
    main()
