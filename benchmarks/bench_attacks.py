"""End-to-end attack benchmark: pyadvt vs torchattacks on the same model and data (issue 3 item 6).

Cases, timed in the same run with ``Timer.blocked_autorange`` (median, IQR):

* PGD-10 L-inf without random start (identical arithmetic in both libraries) and with random start
  (pyadvt draws per-sample seeded starts, torchattacks one global ``uniform_``);
* multi-budget: 4 budgets in one batched pyadvt call (one pass, and chunked into passes of B rows
  with ``batch_size=B``) vs 4 separate pyadvt calls vs 4 separate torchattacks calls.

Candidates are measured in interleaved rounds (median of the round medians), so that load changes
on a shared machine affect them alike. Workloads: the reference ``SmallCNN`` on digits test images ``[256, 1, 8, 8]`` and on CIFAR-shaped
``[128, 3, 32, 32]`` inputs (untrained weights: timing does not depend on them). Ratios are
``time(baseline) / time(pyadvt)``: above 1 means pyadvt is faster. Results go to
``benchmarks/results/bench_attacks_<device>.json``.

    python benchmarks/bench_attacks.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse

import torch

from common import devices, measure, write_results
from pyadvt.attacks import PGD
from pyadvt.data import digits
from pyadvt.models import build

BUDGETS = (2 / 255, 4 / 255, 8 / 255, 16 / 255)


def workloads(device: str) -> dict:
    _, test = digits(seed=0)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    out = {
        "digits-cnn-256x1x8x8": (build("cnn"), test.x[:256], test.y[:256]),
        "cnn-128x3x32x32": (build("cnn", in_shape=(3, 32, 32)), torch.rand(128, 3, 32, 32, generator=g),
                            torch.randint(0, 10, (128,), generator=g)),
    }
    return {k: (m.to(device).eval(), x.to(device), y.to(device)) for k, (m, x, y) in out.items()}


def interleaved(candidates: dict, min_run_time: float, rounds: int) -> dict:
    """Measure every candidate ``rounds`` times, alternating between them so that a load change on a
    shared machine hits all alike; report the median of the per-round medians and the median IQR."""
    runs = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            runs[name].append(measure(fn, min_run_time))
    out = {}
    for name, ms in runs.items():
        medians = sorted(m["median_s"] for m in ms)
        out[name] = {"median_s": medians[len(medians) // 2], "iqr_s": sorted(m["iqr_s"] for m in ms)[len(ms) // 2],
                     "round_medians_s": [m["median_s"] for m in ms]}
    return out


def bench_workload(model, x, y, min_run_time: float, rounds: int) -> dict:
    import torchattacks

    eps, steps = 8 / 255, 10
    alpha = 2.5 * eps / steps
    res = {}
    for start in (False, True):
        ours = PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=start)
        theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=start)
        key = "pgd10_random_start" if start else "pgd10_no_random_start"
        res[key] = interleaved({"pyadvt": lambda: ours(x, y), "torchattacks": lambda: theirs(x, y)},
                               min_run_time, rounds)
        res[key]["speedup_vs_torchattacks"] = res[key]["torchattacks"]["median_s"] / res[key]["pyadvt"]["median_s"]
    budgets = torch.tensor(BUDGETS, device=x.device)
    ours = PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    separate_ta = [torchattacks.PGD(model, eps=e, alpha=2.5 * e / steps, steps=steps) for e in BUDGETS]
    mb = interleaved({"pyadvt_one_pass": lambda: ours(x, y, eps=budgets),
                      "pyadvt_one_call_chunked": lambda: ours(x, y, eps=budgets, batch_size=x.shape[0]),
                      "pyadvt_separate": lambda: [ours(x, y, eps=e) for e in BUDGETS],
                      "torchattacks_separate": lambda: [a(x, y) for a in separate_ta]}, min_run_time, rounds)
    one = mb["pyadvt_one_pass"]["median_s"]
    mb["speedup_vs_pyadvt_separate"] = mb["pyadvt_separate"]["median_s"] / one
    mb["speedup_vs_torchattacks_separate"] = mb["torchattacks_separate"]["median_s"] / one
    mb["chunked_speedup_vs_torchattacks_separate"] = (mb["torchattacks_separate"]["median_s"]
                                                      / mb["pyadvt_one_call_chunked"]["median_s"])
    res["multi_budget_4"] = mb
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing runs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds (default 3)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    min_run_time = 0.3 if args.quick else 1.0
    for device in devices():
        results = {"budgets": list(BUDGETS), "steps": 10, "rounds": args.rounds, "min_run_time_s": min_run_time}
        for name, (model, x, y) in workloads(device).items():
            r = bench_workload(model, x, y, min_run_time, args.rounds)
            results[name] = r
            for case in ("pgd10_no_random_start", "pgd10_random_start"):
                c = r[case]
                print(f"[{device}] {name} {case}: pyadvt {c['pyadvt']['median_s'] * 1e3:.1f} ms, torchattacks "
                      f"{c['torchattacks']['median_s'] * 1e3:.1f} ms -> {c['speedup_vs_torchattacks']:.2f}x")
            mb = r["multi_budget_4"]
            print(f"[{device}] {name} 4 budgets: one pass {mb['pyadvt_one_pass']['median_s'] * 1e3:.1f} ms, "
                  f"{mb['speedup_vs_pyadvt_separate']:.2f}x vs 4 pyadvt runs, "
                  f"{mb['speedup_vs_torchattacks_separate']:.2f}x vs 4 torchattacks runs; chunked by B: "
                  f"{mb['chunked_speedup_vs_torchattacks_separate']:.2f}x vs 4 torchattacks runs")
        write_results("bench_attacks", device, results)


if __name__ == "__main__":
    main()
