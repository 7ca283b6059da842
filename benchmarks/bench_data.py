"""Walking data: pyadvt.data.iter_batches against plain tensor slicing and torch's DataLoader.

Cases (all timed in the same run, ``Timer.blocked_autorange``, median and IQR), one full pass of
batch 256 over the data:

* in-memory ``[10000, 1, 28, 28]`` (Fashion-MNIST's test-split shape): slicing a tensor (baseline),
  ``iter_batches`` over a ``TensorData``, over a ``TensorDataset`` (per-item collation), and over
  ``DataLoader(TensorDataset, batch_size=256)`` next to the bare DataLoader;
* an ImageFolder of 256 PNGs 64x64 resized to 32: pyadvt's ``ImageFolder`` through ``iter_batches``
  vs torchvision's ``ImageFolder`` + ``Resize``/``CenterCrop``/``ToTensor`` through a DataLoader
  (both single-process, the same decoded pixels).

Ratios are ``time(baseline) / time(candidate)`` (above 1: the candidate is faster). Results go to
``benchmarks/results/bench_data_cpu.json``.

    python benchmarks/bench_data.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from common import measure, write_results
from pyadvt.data import ImageFolder, TensorData, iter_batches

B = 256


def _walk(it) -> int:
    n = 0
    for xb, _ in it:
        n += xb.shape[0]
    return n


def in_memory(min_run_time: float) -> dict:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(10000, 1, 28, 28, generator=g), torch.randint(0, 10, (10000,), generator=g)
    td, ds = TensorData(x, y), TensorDataset(x, y)
    loader = DataLoader(ds, batch_size=B)
    cands = {
        "tensor slicing (baseline)": lambda: _walk((x[i:i + B], y[i:i + B]) for i in range(0, 10000, B)),
        "iter_batches(TensorData)": lambda: _walk(iter_batches(td, B)),
        "iter_batches(TensorDataset)": lambda: _walk(iter_batches(ds, B)),
        "DataLoader(TensorDataset)": lambda: _walk(loader),
        "iter_batches(DataLoader)": lambda: _walk(iter_batches(loader, B)),
    }
    return {k: measure(f, min_run_time) for k, f in cands.items()}


def image_folder(min_run_time: float) -> dict:
    from PIL import Image

    out = {}
    with tempfile.TemporaryDirectory() as root:
        rng = np.random.default_rng(0)
        for c in range(4):
            folder = f"{root}/class{c}"
            __import__("os").makedirs(folder)
            for j in range(64):
                Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(f"{folder}/{j}.png")
        ours = ImageFolder(root, size=32)
        cands = {"pyadvt ImageFolder + iter_batches": lambda: _walk(iter_batches(ours, B))}
        try:
            import torchvision
            from torchvision import transforms as T

            tv = torchvision.datasets.ImageFolder(root, transform=T.Compose([T.Resize(32), T.CenterCrop(32),
                                                                             T.ToTensor()]))
            loader = DataLoader(tv, batch_size=B)
            cands = {"torchvision ImageFolder + DataLoader (baseline)": lambda: _walk(loader), **cands}
        except ImportError:
            pass
        out = {k: measure(f, min_run_time) for k, f in cands.items()}
    return out


def _ratios(res: dict, baseline: str) -> dict:
    base = res[baseline]["median_s"]
    return {k: base / v["median_s"] for k, v in res.items() if k != baseline}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short timing runs")
    args = p.parse_args()
    t = 0.2 if args.quick else 1.0
    torch.set_num_threads(1)
    mem, folder = in_memory(t), image_folder(t)
    results = {"in_memory_10000x1x28x28_batch256": {"timings": mem, "speedup_vs_slicing": _ratios(mem, "tensor slicing (baseline)")},
               "imagefolder_256png_64to32_batch256": {"timings": folder}}
    base = "torchvision ImageFolder + DataLoader (baseline)"
    if base in folder:
        results["imagefolder_256png_64to32_batch256"]["speedup_vs_torchvision"] = _ratios(folder, base)
    for name, r in results.items():
        print(name)
        for k, v in r["timings"].items():
            print(f"  {k:48s} {v['median_s'] * 1e3:9.2f} ms")
    write_results("bench_data", "cpu", results)


if __name__ == "__main__":
    main()
