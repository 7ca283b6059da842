"""Benchmark of the fused ``pgd_step_`` kernel (docs/theory.md §8).

Compares, in the same run, for ``B x 3 x 32 x 32`` and ``B x 3 x 224 x 224`` float32:
the pyadvt kernel, the eager pure-PyTorch reference, ``torch.compile`` of the reference, and
torchattacks' per-step update expressions (``PGD`` / ``PGDL2`` / ``MIFGSM``); reports ratios and the
kernel's achieved GB/s against the ``copy_`` bandwidth measured on a copy with the same
working set (bytes read + written) as the step.

    python benchmarks/bench_pgd.py [--quick]
"""

from __future__ import annotations

import argparse

import torch

from common import copy_bandwidth, devices, measure, write_results
from pyadvt.ops import pgd_step_
from pyadvt.ops.reference.pgd import pgd_step_reference_


def torchattacks_linf(adv, grad, images, eps, alpha):
    """torchattacks.PGD.forward's update lines (v3.5)."""
    adv = adv.detach() + alpha * grad.sign()
    delta = torch.clamp(adv - images, min=-eps, max=eps)
    return torch.clamp(images + delta, min=0, max=1).detach()


def torchattacks_l2(adv, grad, images, eps, alpha):
    """torchattacks.PGDL2.forward's update lines (v3.5)."""
    b = len(images)
    grad_norms = torch.norm(grad.view(b, -1), p=2, dim=1) + 1e-10
    grad = grad / grad_norms.view(b, 1, 1, 1)
    adv = adv.detach() + alpha * grad
    delta = adv - images
    delta_norms = torch.norm(delta.view(b, -1), p=2, dim=1)
    factor = torch.min(eps / delta_norms, torch.ones_like(delta_norms))
    delta = delta * factor.view(-1, 1, 1, 1)
    return torch.clamp(images + delta, min=0, max=1).detach()


def torchattacks_mi(adv, grad, images, momentum, eps, alpha, decay=1.0):
    """torchattacks.MIFGSM.forward's update lines (v3.5)."""
    grad = grad / torch.mean(torch.abs(grad), dim=(1, 2, 3), keepdim=True)
    grad = grad + momentum * decay
    momentum = grad
    adv = adv.detach() + alpha * grad.sign()
    delta = torch.clamp(adv - images, min=-eps, max=eps)
    return torch.clamp(images + delta, min=0, max=1).detach(), momentum


def bench_case(device, shape, norm, momentum, min_run_time):
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(shape, generator=g).to(device)
    x = (x0 + 0.01 * torch.randn(shape, generator=g).to(device)).clamp(0, 1)
    grad = torch.randn(shape, generator=g).to(device)
    m = torch.zeros_like(x) if momentum else None
    eps, alpha = 8 / 255, 2 / 255
    eps_t = torch.tensor([eps], device=device)
    alpha_t = torch.tensor([alpha], device=device)
    xs = x.clone()
    ms = None if m is None else m.clone()

    def kernel():
        pgd_step_(xs, grad, x0, eps, alpha, norm=norm, momentum=ms, backend="kernel")

    def reference():
        pgd_step_reference_(xs, grad, x0, eps_t, alpha_t, norm, 0.0, 1.0, ms, 1.0)

    compiled_ref = torch.compile(pgd_step_reference_, dynamic=False)

    def compiled():
        compiled_ref(xs, grad, x0, eps_t, alpha_t, norm, 0.0, 1.0, ms, 1.0)

    if momentum:
        def torchattacks():
            torchattacks_mi(xs, grad, x0, m, eps, alpha)
    elif norm == "linf":
        def torchattacks():
            torchattacks_linf(xs, grad, x0, eps, alpha)
    else:
        def torchattacks():
            torchattacks_l2(xs, grad, x0, eps, alpha)

    candidates = [("kernel", kernel), ("reference", reference), ("torch_compile", compiled), ("torchattacks", torchattacks)]
    res = {}
    try:
        compiled()  # compile outside the timed region
    except Exception as exc:  # inductor bugs must not hide the other numbers
        res["torch_compile"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        candidates = [c for c in candidates if c[0] != "torch_compile"]
    res.update({name: measure(fn, min_run_time) for name, fn in candidates})
    t_k = res["kernel"]["median_s"]
    numel = x.numel()
    # bytes the op must move: read x, grad, x_orig (+ momentum) and write x (+ momentum)
    arrays = 4 + (2 if momentum else 0)
    res["arrays_moved"] = arrays
    res["kernel_GBps"] = arrays * numel * 4 / t_k / 1e9
    res["speedup_vs_reference"] = res["reference"]["median_s"] / t_k
    if "median_s" in res["torch_compile"]:
        res["speedup_vs_torch_compile"] = res["torch_compile"]["median_s"] / t_k
    res["speedup_vs_torchattacks"] = res["torchattacks"]["median_s"] / t_k
    return res


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timing runs")
    args = parser.parse_args()
    min_run_time = 0.2 if args.quick else 1.0
    for device in devices():
        batch = {"cpu": (128, 16), "cuda": (1024, 128)}[device]
        out = {}
        for (b, hw) in [(batch[0], 32), (batch[1], 224)]:
            shape = (b, 3, hw, hw)
            numel = int(torch.tensor(shape).prod())
            for norm, momentum in [("linf", False), ("linf", True), ("l2", False)]:
                key = f"{b}x3x{hw}x{hw}/{norm}{'+momentum' if momentum else ''}"
                r = bench_case(device, shape, norm, momentum, min_run_time)
                # a copy with the same working set (bytes read + written) as the op
                bw = copy_bandwidth(numel * r["arrays_moved"] // 2, device)
                r["copy_GBps"] = bw
                r["fraction_of_copy_bandwidth"] = r["kernel_GBps"] / bw
                out[key] = r
                print(f"{device} {key:34s} kernel {r['kernel']['median_s']*1e3:8.3f} ms  "
                      f"x{r['speedup_vs_reference']:.2f} vs eager ref, x{r.get('speedup_vs_torch_compile', float('nan')):.2f} vs compile, "
                      f"x{r['speedup_vs_torchattacks']:.2f} vs torchattacks, "
                      f"{r['kernel_GBps']:.1f} GB/s ({100*r['fraction_of_copy_bandwidth']:.0f}% of copy)")
        write_results("bench_pgd", device, out)


if __name__ == "__main__":
    main()
