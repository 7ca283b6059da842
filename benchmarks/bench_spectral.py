"""Benchmark of the spectral kernels (docs/theory.md §8; issue 4 item 8).

One function per comparison, each returning a JSON-able dict; :func:`main` runs the selected ones
and writes ``benchmarks/results/bench_spectral_<device>.json`` through ``common.write_results``:

* ``jacobian_spectrum``: ``jacobian_spectrum`` (kernel) vs its pure-PyTorch reference,
  ``torch.linalg.svd(full_matrices=False)`` and ``torch.linalg.svdvals`` on float32 Jacobians
  ``[B, 10, n]`` for n in {64, 3072, 150528} (B = 64, 64, 8), with the agreement with the SVD and
  the achieved GB/s (J is read twice) against a measured copy bandwidth. Issue goal: >= 5x svd (CPU).
* ``small_sym_eig``: the kernel (tridiagonal QL on the CPU, Jacobi on CUDA) vs ``torch.linalg.eigh`` on ``[B, k, k]``.
* ``tau_throughput``: tau1 + tau2 batched vs a batch-size-1 loop in the style of the authors' scripts
  (the workloads and loop of ``bench_tau.py``, which also compares the Jacobian methods). Issue goal:
  >= 50x the loop (CPU).

    python benchmarks/bench_spectral.py [--quick] [--only jacobian_spectrum] [--compile]
"""

from __future__ import annotations

import argparse

import torch

from bench_tau import bench_tau_throughput
from common import copy_bandwidth, devices, measure, write_results
from pyadvt.ops import jacobian_spectrum, small_sym_eig
from pyadvt.ops.reference.linalg import jacobian_spectrum_reference

JACOBIAN_CASES = [(64, 10, 64), (64, 10, 3072), (8, 10, 150528)]


def bench_jacobian_spectrum(device: str, min_run_time: float, quick: bool = False, compile_ref: bool = False) -> dict:
    """Kernel vs reference vs torch.linalg.svd / svdvals on [B, 10, n] float32."""
    cases = JACOBIAN_CASES[:2] if quick else JACOBIAN_CASES
    out = {}
    bw = copy_bandwidth(8 * 10 * 150528, device, min_run_time=min_run_time)
    for B, m, n in cases:
        J = torch.randn(B, m, n, generator=torch.Generator().manual_seed(0)).to(device)
        cands = {
            "pyadvt": lambda: jacobian_spectrum(J),
            "reference": lambda: jacobian_spectrum_reference(J),
            "torch_svd": lambda: torch.linalg.svd(J, full_matrices=False),
            "torch_svdvals": lambda: torch.linalg.svdvals(J),
        }
        if compile_ref:
            compiled = torch.compile(jacobian_spectrum_reference)
            compiled(J)
            cands["compiled_reference"] = lambda: compiled(J)
        times = {k: measure(f, min_run_time, label=k) for k, f in cands.items()}
        t = times["pyadvt"]["median_s"]
        res = jacobian_spectrum(J)
        _, S, Vh = torch.linalg.svd(J.double(), full_matrices=False)
        key = f"B{B}_m{m}_n{n}"
        out[key] = {
            "shape": [B, m, n],
            "dtype": "float32",
            "times": times,
            "speedup_vs": {k: v["median_s"] / t for k, v in times.items() if k != "pyadvt"},
            "gbps": 2 * J.numel() * J.element_size() / t / 1e9,
            "copy_gbps": bw,
            "max_rel_err_sigma1": float(((res.sigma1.double() - S[:, 0]).abs() / S[:, 0]).max()),
            "max_rel_err_sigma2": float(((res.sigma2.double() - S[:, 1]).abs() / S[:, 1]).max()),
            "min_abs_cos_v1": float((res.v1.double() * Vh[:, 0]).sum(-1).abs().min()),
        }
        print(f"[{device}] jacobian_spectrum {key}: pyadvt {t * 1e3:.3f} ms, "
              + ", ".join(f"{k} x{v:.1f}" for k, v in out[key]["speedup_vs"].items()))
    return out


def bench_small_sym_eig(device: str, min_run_time: float, quick: bool = False, compile_ref: bool = False) -> dict:
    """small_sym_eig kernel vs torch.linalg.eigh on [B, k, k] float32/float64."""
    del compile_ref
    out = {}
    for B, k in ([(1024, 10)] if quick else [(1024, 10), (4096, 10), (256, 64)]):
        for dtype in (torch.float32, torch.float64):
            A = torch.randn(B, k, k, generator=torch.Generator().manual_seed(1), dtype=dtype)
            G = (A + A.mT).to(device)
            times = {
                "pyadvt": measure(lambda: small_sym_eig(G, check=False), min_run_time),
                "torch_eigh": measure(lambda: torch.linalg.eigh(G), min_run_time),
            }
            key = f"B{B}_k{k}_{str(dtype).split('.')[-1]}"
            out[key] = {"times": times, "speedup_vs_eigh": times["torch_eigh"]["median_s"] / times["pyadvt"]["median_s"]}
            print(f"[{device}] small_sym_eig {key}: x{out[key]['speedup_vs_eigh']:.2f} vs eigh")
    return out


def bench_tau_vs_loop(device: str, min_run_time: float, quick: bool = False, compile_ref: bool = False) -> dict:
    """tau1 + tau2 batched vs a batch-size-1 loop (issue 4 item 8): ``bench_tau.bench_tau_throughput``."""
    del compile_ref
    return bench_tau_throughput(device, quick, min_run_time)


COMPARISONS = {
    "jacobian_spectrum": bench_jacobian_spectrum,
    "small_sym_eig": bench_small_sym_eig,
    "tau_throughput": bench_tau_vs_loop,
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small cases and short timing runs")
    p.add_argument("--only", choices=sorted(COMPARISONS), action="append", help="run only these comparisons")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the reference")
    args = p.parse_args(argv)
    min_run_time = 0.2 if args.quick else 1.0
    for device in devices():
        results = {name: fn(device, min_run_time, args.quick, args.compile)
                   for name, fn in COMPARISONS.items() if not args.only or name in args.only}
        write_results("bench_spectral", device, results)


if __name__ == "__main__":
    main()
