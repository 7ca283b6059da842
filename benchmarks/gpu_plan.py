"""Large-batch and sanitizer cases of the GPU test plan (run by benchmarks/gpu_plan.sh).

Parts:
  large     batches beyond the grid limits and B * n > 2^31 (pgd_step_ B in {65535, 65536} for every
            n, dtype, norm and momentum; B * n > 2^31 in float16; small_sym_eig with B = 2^20 + 3),
            each kernel result checked against the reference on a sample subset (per-sample
            independence) and run twice for bitwise determinism. small_sym_eig at that B uses
            k in {1, 2, 3} (every k in 1..64 runs at B in {1, 5} in tests/ops/test_cuda.py).
  sanitize  small cases of every kernel path, for compute-sanitizer (memcheck, racecheck, synccheck,
            initcheck): pgd_step_ (L-inf / L2, momentum, multi-block), small_sym_eig (k = 1, 33, 54,
            64), jacobian_spectrum (m = 54), power_iteration_update_ (non-contiguous).

``--device cpu --smoke`` runs the same checks with small sizes on the CPU kernels (used to test
this script where no GPU exists). Exit status 1 on the first failed check.

Example:
    python benchmarks/gpu_plan.py large
    compute-sanitizer --tool racecheck python benchmarks/gpu_plan.py sanitize
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from pyadvt.ops import jacobian_spectrum, pgd_step_, power_iteration_update_, small_sym_eig
from pyadvt.ops.reference.pgd import pgd_step_reference_

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _check(ok: bool, what: str) -> None:
    if not ok:
        print(f"FAILED: {what}", flush=True)
        sys.exit(1)


def _pgd_case(B, n, dtype, norm, momentum, device, subset=64, seed=0):
    """Kernel on the whole batch (twice, bitwise equal) vs the reference on a subset of samples."""
    g = torch.Generator(device=device).manual_seed(seed)
    x0 = torch.rand(B, n, generator=g, device=device, dtype=torch.float32).to(dtype)
    grad = torch.randn(B, n, generator=g, device=device, dtype=torch.float32).to(dtype)
    x = x0.clone()
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    eps = (torch.rand(B, generator=g, device=device) * 0.2).to(acc)
    alpha = (torch.rand(B, generator=g, device=device) * 0.05 + 0.01).to(acc)
    m0 = torch.randn(B, n, generator=g, device=device, dtype=torch.float32).to(dtype) if momentum else None
    outs = []
    for _ in range(2):
        xk, mk = x.clone(), None if m0 is None else m0.clone()
        pgd_step_(xk, grad, x0, eps, alpha, norm=norm, momentum=mk, backend="kernel", validate=False)
        outs.append((xk, mk))
    _check(torch.equal(outs[0][0], outs[1][0]), f"pgd deterministic B={B} n={n} {dtype} {norm} m={momentum}")
    idx = torch.unique(torch.cat([torch.arange(min(subset, B), device=device),
                                  torch.tensor([B - 1, B // 2, min(65535, B - 1)], device=device)]))
    xr, mr = x[idx].clone(), None if m0 is None else m0[idx].clone()
    pgd_step_reference_(xr, grad[idx], x0[idx], eps[idx], alpha[idx], norm, 0.0, 1.0, mr, 1.0)
    xk, mk = outs[0]
    fe = torch.finfo(dtype).eps
    keep = torch.ones_like(xr, dtype=torch.bool)
    if momentum:
        scale = float(mr.abs().max())
        _check(bool(((mk[idx].double() - mr.double()).abs() <= 16 * fe * scale + 4 * fe * mr.double().abs()).all()),
               f"pgd momentum B={B} n={n} {dtype} {norm}")
        if norm == "linf":
            m64, g64 = m0[idx].double(), grad[idx].double()
            inv = n / g64.abs().sum(1, keepdim=True)
            keep = (m64 + g64 * inv).abs() > 64 * 2.0 ** -23 * (m64.abs() + (g64 * inv).abs())
    diff = (xk[idx].double() - xr.double()).abs()
    _check(bool((diff[keep] <= 4 * fe * (1 + xr.double().abs()[keep])).all()),
           f"pgd values B={B} n={n} {dtype} {norm} m={momentum}: max diff {float(diff[keep].max()):.3g}")


def part_large(device: str, smoke: bool) -> None:
    t0 = time.time()
    batches = [7, 9] if smoke else [65535, 65536]
    ns = [1, 255, 1025] if smoke else [1, 255, 1025, 3072, 4097]
    for B in batches:
        for n in ns:
            for dtype in DTYPES:
                for norm in ("linf", "l2"):
                    for momentum in (False, True):
                        _pgd_case(B, n, dtype, norm, momentum, device)
    print(f"pgd_step_ B in {batches}, n in {ns}: ok ({time.time() - t0:.1f}s)", flush=True)
    # n = 150528 at B = 65536 would need ~40 GB per float32 tensor; 4096 samples take the same paths
    B, n = (5, 3000) if smoke else (4096, 150528)
    for norm in ("linf", "l2"):
        _pgd_case(B, n, torch.float32, norm, True, device)
    # B * n > 2^31 elements (64-bit indexing) in float16: 65536 x 32769
    B, n = (3, 7) if smoke else (65536, 32769)
    for norm in ("linf", "l2"):
        _pgd_case(B, n, torch.float16, norm, norm == "l2", device, subset=8)
    print(f"pgd_step_ B*n > 2^31: ok ({time.time() - t0:.1f}s)", flush=True)
    # small_sym_eig with B = 2^20 + 3 (grid-stride over matrices beyond the 2^20 blocks); small k
    # only: at k = 54 a million Jacobi solves take minutes (every k runs at B in {1, 5} in pytest)
    B = 1000 if smoke else (1 << 20) + 3
    for k in (1, 2, 3):
        g = torch.Generator(device=device).manual_seed(k)
        A = torch.randn(B, k, k, generator=g, device=device)
        G = A + A.mT
        evals, evecs = small_sym_eig(G, backend="kernel", check=False)
        idx = torch.cat([torch.arange(256, device=device), torch.arange(B - 256, B, device=device)])
        ref = torch.linalg.eigvalsh(G[idx].double())
        scale = G[idx].double().abs().amax(dim=(-1, -2))[:, None]
        _check(bool(((evals[idx].double() - ref).abs() <= 16 * k * 1.2e-7 * scale).all()), f"sym_eig B={B} k={k}")
        V = evecs[idx].double()
        res = torch.linalg.vector_norm(G[idx].double() @ V - V * evals[idx].double()[:, None, :], dim=-2)
        _check(bool((res <= 16 * k * 1.2e-7 * scale).all()), f"sym_eig residual B={B} k={k}")
    print(f"small_sym_eig B={B}: ok ({time.time() - t0:.1f}s)", flush=True)


def part_sanitize(device: str) -> None:
    """One small call of every kernel path (for compute-sanitizer; correctness is checked too)."""
    for dtype in DTYPES:
        for norm in ("linf", "l2"):
            for momentum in (False, True):
                _pgd_case(3, 2500, dtype, norm, momentum, device, subset=3)  # 3 x-blocks per sample
    for k in (1, 2, 33, 54, 64):
        A = torch.randn(3, k, k, device=device, dtype=torch.float64)
        G = A + A.mT
        G[2, 0, k - 1] = G[2, k - 1, 0] = float("nan")
        evals, _ = small_sym_eig(G, backend="kernel", check=False)
        _check(bool(torch.isnan(evals[2]).all()) and bool(torch.isfinite(evals[:2]).all()), f"sym_eig k={k}")
    J = torch.randn(3, 54, 257, device=device)
    J[1] = 0
    out = jacobian_spectrum(J, backend="kernel")
    _check(out.flags.tolist()[1] == 5 and bool(torch.isfinite(out.v1[0]).all()), "jacobian_spectrum m=54")
    v = torch.randn(300, 4, device=device, dtype=torch.float64).T
    hv = torch.randn(4, 300, device=device, dtype=torch.float64)
    hv[1] *= 1e200
    eig = torch.full((4,), float("nan"), device=device, dtype=torch.float64)
    active = torch.ones(4, dtype=torch.bool, device=device)
    power_iteration_update_(v, hv, eig, active, 1e-4, backend="kernel")
    _check(bool(torch.allclose(v.norm(dim=1), torch.ones(4, device=device, dtype=torch.float64))), "power update")
    print("sanitize payload: ok", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["large", "sanitize"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--smoke", action="store_true", help="small sizes (for a CPU run of this script)")
    a = p.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("FAILED: no CUDA device visible", flush=True)
        sys.exit(1)
    if a.part == "large":
        part_large(a.device, a.smoke)
    else:
        part_sanitize(a.device)
    if a.device == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
