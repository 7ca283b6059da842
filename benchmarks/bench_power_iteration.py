"""Benchmark of ``power_iteration_update_`` (docs/theory.md §3(a), §8; issue 5 item 1).

The fused one-pass kernel vs its eager pure-PyTorch reference (and, with ``--compile``,
``torch.compile`` of the reference) on float32 ``[B, n]`` states of CIFAR-, digits- and
ImageNet-sized inputs; reports ratios and the achieved GB/s (v and hv read, v written) against a
measured copy bandwidth. Writes ``benchmarks/results/bench_power_iteration_<device>.json``.

    python benchmarks/bench_power_iteration.py [--quick] [--compile]
"""

from __future__ import annotations

import argparse

import torch

from common import copy_bandwidth, devices, measure, write_results
from pyadvt.ops import power_iteration_update_
from pyadvt.ops.reference.hessian import power_iteration_update_reference_

CASES = [(256, 64), (128, 3072), (8, 150528)]


def _state(B, n, device):
    g = torch.Generator().manual_seed(0)
    v = torch.randn(B, n, generator=g)
    v = (v / v.norm(dim=1, keepdim=True)).to(device)
    hv = torch.randn(B, n, generator=g).to(device)
    eig = torch.full((B,), float("nan"), device=device)  # never converges: every row stays active
    active = torch.ones(B, dtype=torch.bool, device=device)
    return v, hv, eig, active


def bench_update(device: str, min_run_time: float, quick: bool = False, compile_ref: bool = False) -> dict:
    out = {}
    bw = copy_bandwidth(8 * 150528, device, min_run_time=min_run_time)
    for B, n in CASES[:2] if quick else CASES:
        v, hv, eig, active = _state(B, n, device)

        def kernel():
            eig.fill_(float("nan"))
            active.fill_(True)
            power_iteration_update_(v, hv, eig, active, 1e-4)

        def reference():
            eig.fill_(float("nan"))
            active.fill_(True)
            power_iteration_update_reference_(v, hv, eig, active, 1e-4)

        cands = {"pyadvt": kernel, "reference": reference}
        if compile_ref:
            compiled_ref = torch.compile(power_iteration_update_reference_)

            def compiled():
                eig.fill_(float("nan"))
                active.fill_(True)
                compiled_ref(v, hv, eig, active, 1e-4)

            compiled()
            cands["compiled_reference"] = compiled
        times = {k: measure(f, min_run_time, label=k) for k, f in cands.items()}
        t = times["pyadvt"]["median_s"]
        key = f"B{B}_n{n}"
        out[key] = {
            "shape": [B, n],
            "dtype": "float32",
            "times": times,
            "speedup_vs": {k: x["median_s"] / t for k, x in times.items() if k != "pyadvt"},
            "gbps": 3 * v.numel() * v.element_size() / t / 1e9,
            "copy_gbps": bw,
        }
        print(f"[{device}] power_iteration_update_ {key}: {t * 1e6:.1f} us, "
              + ", ".join(f"{k} x{x:.1f}" for k, x in out[key]["speedup_vs"].items())
              + f", {out[key]['gbps']:.1f} GB/s (copy {bw:.1f})")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the reference")
    args = p.parse_args(argv)
    for device in devices():
        write_results("bench_power_iteration", device,
                      {"update": bench_update(device, 0.2 if args.quick else 1.0, args.quick, args.compile)})


if __name__ == "__main__":
    main()
