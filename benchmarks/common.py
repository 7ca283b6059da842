"""Shared helpers for pyadvt benchmarks: timing, metadata and JSON results.

Every ``bench_<family>.py`` times its candidates with :func:`measure` (median and IQR from
``torch.utils.benchmark.Timer.blocked_autorange``), reports ratios against baselines measured in
the same run, and writes ``benchmarks/results/<name>_<device>.json`` with :func:`write_results`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
from collections.abc import Callable

import torch
from torch.utils import benchmark

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def measure(fn: Callable[[], object], min_run_time: float = 0.5, label: str = "") -> dict:
    """Time ``fn()``; returns ``{"median_s", "iqr_s", "runs"}`` (CUDA synchronised by the Timer)."""
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, label=label)
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return {"median_s": m.median, "iqr_s": m.iqr, "runs": len(m.times)}


def copy_bandwidth(numel: int, device: str, dtype=torch.float32, min_run_time: float = 0.5) -> float:
    """Measured ``dst.copy_(src)`` bandwidth in GB/s (bytes read + written) for ``numel`` elements."""
    src = torch.rand(numel, device=device, dtype=dtype)
    dst = torch.empty_like(src)
    t = measure(lambda: dst.copy_(src), min_run_time)["median_s"]
    return 2 * numel * src.element_size() / t / 1e9


def bench_parser(doc: str, quick: str) -> argparse.ArgumentParser:
    """The command line every ``bench_<family>.py`` starts from: described by the first line of its
    docstring ``doc``, with ``--quick`` (help text ``quick``) and ``--threads N``; add the family's own
    options, then read it with :func:`parse_bench_args`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return parser


def parse_bench_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The parsed command line of a :func:`bench_parser`, with ``--threads`` applied to torch."""
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def metadata(device: str) -> dict:
    """Environment of a benchmark run: commit, versions, device, threads."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(RESULTS_DIR), check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    import pyadvt

    info = pyadvt.build_info()
    return {
        "commit": commit,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "pyadvt_kernels": info["kernels"],
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def write_results(name: str, device: str, results: dict) -> str:
    """Write ``{"metadata": ..., "results": ...}`` to ``benchmarks/results/<name>_<device>.json``."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}_{device}.json")
    with open(path, "w") as fh:
        json.dump({"metadata": metadata(device), "results": results}, fh, indent=2)
    print(f"wrote {path}")
    return path


def devices() -> list[str]:
    """``["cpu"]`` plus ``"cuda"`` when a GPU is visible."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
