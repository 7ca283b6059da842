"""Cost of the shared input validation (``pyadvt.utils.validation``) against a PGD-10 call.

The bad-input contract (docs/reliability.md) checks every public call up front: images finite and in
[0, 1] (one ``aminmax`` reduction and one host sync), labels integer and in range, dtype of the input
against the model's, ``batch_size``. This measures, in the same run and on the same batch,

* ``checks``: :func:`check_images` + :func:`check_labels` (with the class count) +
  :func:`check_model_input` + :func:`check_batch_size` - what a metric or attack call adds;
* ``pgd10``: one ``pyadvt.attacks.PGD(steps=10)`` call on that batch (which itself runs the attack's
  own checks once);
* ``attack_transferability``: one :func:`pyadvt.metrics.attack_transferability` call (four prediction passes),

and reports ``checks / pgd10`` (the issue's budget: < 2 %) and ``checks / transferability``.

    python benchmarks/bench_validation.py [--quick]
"""

from __future__ import annotations

import argparse

import torch

from common import devices, measure, write_results
from pyadvt.attacks import PGD
from pyadvt.metrics import attack_transferability
from pyadvt.models import build
from pyadvt.utils.validation import check_batch_size, check_images, check_labels, check_model_input


def checks(model, x, y, num_classes):
    check_batch_size(256)
    check_images(x, "x")
    check_labels(y, x.shape[0], "y", num_classes=num_classes)
    check_model_input(model, x)


def bench_case(device, arch, batch, in_shape, kwargs, min_run_time):
    g = torch.Generator().manual_seed(0)
    model = build(arch, in_shape=in_shape, num_classes=10, **kwargs).to(device).eval()
    x = torch.rand(batch, *in_shape, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    atk = PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, seed=0)
    x_adv = atk(x, y)
    t_checks = measure(lambda: checks(model, x, y, 10), min_run_time)
    t_pgd = measure(lambda: atk(x, y), min_run_time)
    t_tr = measure(lambda: attack_transferability(model, model, x, y, x_adv), min_run_time)
    return {
        "model": f"{arch}{kwargs}", "batch": batch, "in_shape": list(in_shape),
        "checks_s": t_checks, "pgd10_s": t_pgd, "transferability_s": t_tr,
        "checks_over_pgd10": t_checks["median_s"] / t_pgd["median_s"],
        "checks_over_transferability": t_checks["median_s"] / t_tr["median_s"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one small case, short timings")
    args = p.parse_args()
    min_run_time = 0.2 if args.quick else 1.0
    cases = [("resnet", 64, (3, 32, 32), {"widths": (16, 32, 64)})]
    if not args.quick:
        cases += [("resnet", 256, (3, 32, 32), {"widths": (16, 32, 64)}),
                  ("cnn", 256, (1, 28, 28), {"channels": (16, 32)}), ("mlp", 16, (1, 8, 8), {})]
    for device in devices():
        rows = []
        for arch, batch, in_shape, kwargs in cases:
            row = bench_case(device, arch, batch, in_shape, kwargs, min_run_time)
            rows.append(row)
            print(f"{device} {row['model']} B={batch}: checks {row['checks_s']['median_s'] * 1e6:.0f} us, "
                  f"PGD-10 {row['pgd10_s']['median_s'] * 1e3:.2f} ms -> {100 * row['checks_over_pgd10']:.3f} % "
                  f"(of transferability: {100 * row['checks_over_transferability']:.2f} %)")
        write_results("bench_validation", device, {"cases": rows, "budget_fraction_of_pgd10": 0.02,
                                                   "within_budget": all(r["checks_over_pgd10"] < 0.02 for r in rows)})


if __name__ == "__main__":
    main()
