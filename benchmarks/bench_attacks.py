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

    python benchmarks/bench_attacks.py [--quick] [--threads N] [--part pgd|suite|ops|all]

``--part suite`` times the transfer suite (docs/theory.md §10) against torchattacks where it has the attack
(NI, SI-NI, TI without diversity, VMI, VNI, PI; same model, data, steps and neighbours, in interleaved rounds)
on CIFAR-shaped ``[64, 3, 32, 32]`` inputs (``--suite-batch``), with the gradient evaluations per image of both
libraries counted at the model (:class:`CountingModel`) and the peak tensor memory of one call
(:func:`peak_alloc_bytes`); the other suite attacks are timed alone (``bench_attacks_suite_<device>.json``). ``--part ops`` times the fused update kernels
(``nesterov_point``, ``variance_momentum_step_``, ``patch_step_``) against their eager PyTorch form and
``torch.compile`` of it on ``[256, 3, 32, 32]`` (``bench_attack_update_<device>.json``).
"""

from __future__ import annotations

import torch

from common import bench_parser, devices, measure, parse_bench_args, write_results
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


class CountingModel(torch.nn.Module):
    """Wraps a model and counts the image rows it sees with autograd on: gradient evaluations, measured
    the same way for both libraries (not taken from either library's own bookkeeping)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            self.rows += x.shape[0]
        return self.model(x)


def peak_alloc_bytes(fn, device: str) -> int:
    """Peak bytes of tensors allocated by ``fn()`` above what was live before it: CUDA from the caching
    allocator's statistics, CPU from the profiler's allocation/free events (exact, allocator-independent)."""
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return int(peak)


def torchattacks_pairs(model, eps: float, alpha: float, steps: int, neighbours: int) -> dict:
    """``name -> (pyadvt attack, torchattacks attack)`` for every suite attack torchattacks has, with the
    same model, budget, step, iterations and settings (TI without input diversity, VMI/VNI with the same
    number of neighbours, PI with torchattacks' defaults: no momentum, amplification 10, kernel 3)."""
    import torchattacks

    import pyadvt.attacks as A

    return {
        "NIFGSM": (A.NIFGSM(model, eps, alpha, steps), torchattacks.NIFGSM(model, eps, alpha, steps)),
        "SINIFGSM": (A.SINIFGSM(model, eps, alpha, steps), torchattacks.SINIFGSM(model, eps, alpha, steps)),
        "TIFGSM": (A.TIFGSM(model, eps, alpha, steps, mu=0.0),
                   torchattacks.TIFGSM(model, eps, alpha, steps, diversity_prob=0.0)),
        "VMIFGSM": (A.VMIFGSM(model, eps, alpha, steps, N=neighbours),
                    torchattacks.VMIFGSM(model, eps, alpha, steps, N=neighbours)),
        "VNIFGSM": (A.VNIFGSM(model, eps, alpha, steps, N=neighbours),
                    torchattacks.VNIFGSM(model, eps, alpha, steps, N=neighbours)),
        # torchattacks' PIFGSM(model, max_epsilon, num_iter_set): alpha = eps / steps, as pyadvt's default
        "PIFGSM": (A.PIFGSM(model, eps, None, steps), torchattacks.PIFGSM(model, eps, steps)),
    }


def bench_suite(device: str, min_run_time: float, rounds: int, batch: int = 64, neighbours: int = 5,
                only_torchattacks: bool = False) -> dict:
    """Each suite attack vs torchattacks' version (where one exists): median time of interleaved rounds,
    gradient evaluations per image (counted at the model for both) and peak tensor memory of one call;
    the other suite attacks are timed alone unless ``only_torchattacks``."""
    import pyadvt.attacks as A

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    net = build("cnn", in_shape=(3, 32, 32)).to(device).eval()
    model = CountingModel(net).eval()
    x = torch.rand(batch, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    eps, alpha, steps = 16 / 255, 1.6 / 255, 10
    out = {"workload": {"model": "cnn", "input": [batch, 3, 32, 32], "eps": eps, "alpha": alpha, "steps": steps,
                        "vmi_vni_neighbours": neighbours}}
    for name, (ours, theirs) in torchattacks_pairs(model, eps, alpha, steps, neighbours).items():
        r = interleaved({"pyadvt": lambda: ours(x, y), "torchattacks": lambda: theirs(x, y)}, min_run_time, rounds)
        r["speedup_vs_torchattacks"] = r["torchattacks"]["median_s"] / r["pyadvt"]["median_s"]
        evals, peak = {}, {}
        for lib, atk in (("pyadvt", ours), ("torchattacks", theirs)):
            model.rows = 0
            atk(x, y)
            evals[lib] = model.rows / batch
            peak[lib] = peak_alloc_bytes(lambda: atk(x, y), device)
        r["grad_evals_per_image"] = evals
        r["pyadvt_last_cost"] = ours.last_cost
        r["peak_alloc_mib"] = {k: v / 2 ** 20 for k, v in peak.items()}
        out[name] = r
        print(f"[{device}] {name}: pyadvt {r['pyadvt']['median_s'] * 1e3:.0f} ms, torchattacks "
              f"{r['torchattacks']['median_s'] * 1e3:.0f} ms -> {r['speedup_vs_torchattacks']:.2f}x; gradient "
              f"evaluations / image {evals['pyadvt']:g} vs {evals['torchattacks']:g}; peak memory "
              f"{r['peak_alloc_mib']['pyadvt']:.1f} vs {r['peak_alloc_mib']['torchattacks']:.1f} MiB", flush=True)
    if only_torchattacks:
        return out
    rnet = build("resnet", in_shape=(3, 32, 32)).to(device).eval()
    alone = {"Admix": A.Admix(net, eps, alpha, steps), "SSA": A.SSA(net, eps, alpha, steps),
             "BSR": A.BSR(net, eps, alpha, steps), "SGM": A.SGM(rnet, eps, alpha, steps),
             "LinBP": A.LinBP(rnet, eps, alpha, steps), "ILA": A.ILA(rnet, eps, alpha, steps),
             "FIA": A.FIA(rnet, eps, alpha, steps), "NAA": A.NAA(rnet, eps, alpha, steps),
             "SVRE": A.SVRE([net, build("cnn", in_shape=(3, 32, 32)).to(device).eval()], eps, alpha, steps)}
    for name, atk in alone.items():
        r = measure(lambda: atk(x, y), min_run_time)
        r["grad_evals_per_image"] = {"pyadvt": atk.last_cost}
        r["peak_alloc_mib"] = {"pyadvt": peak_alloc_bytes(lambda: atk(x, y), device) / 2 ** 20}
        out[name] = r
        print(f"[{device}] {name}: pyadvt {r['median_s'] * 1e3:.0f} ms ({atk.last_cost:g} gradient evaluations "
              f"per image, peak {r['peak_alloc_mib']['pyadvt']:.1f} MiB; not in torchattacks)", flush=True)
    return out


def bench_update_ops(device: str, min_run_time: float, rounds: int) -> dict:
    """Fused attack-update kernels vs their eager form and torch.compile of it."""
    from pyadvt.attacks.smoothing import project_kernel
    from pyadvt.ops import attack_update as au

    g = torch.Generator().manual_seed(0)
    shape = (256, 3, 32, 32)

    def r(*s):
        return torch.rand(*s, generator=g).to(device)

    x0, grad, nb = r(*shape), 2 * r(*shape) - 1, 2 * r(*shape) - 1
    eps = torch.full((shape[0],), 16 / 255, device=device)
    alpha = eps / 10
    kern = project_kernel(3).float().to(device)
    state = {"x": x0.clone(), "v": torch.zeros_like(x0), "m": torch.zeros_like(x0), "a": torch.zeros_like(x0)}
    compiled = {"nesterov_point": torch.compile(au.nesterov_point_reference),
                "variance_momentum_step_": torch.compile(au.variance_momentum_step_reference_),
                "patch_step_": torch.compile(au.patch_step_reference_)}
    cases = {
        "nesterov_point": {
            "kernel": lambda: au.nesterov_point(state["x"], state["m"], alpha, 1.0, backend="kernel"),
            "eager": lambda: au.nesterov_point_reference(state["x"], state["m"], alpha, 1.0),
            "compiled_eager": lambda: compiled["nesterov_point"](state["x"], state["m"], alpha, 1.0)},
        "variance_momentum_step_": {
            "kernel": lambda: au.variance_momentum_step_(state["x"], grad, state["v"], nb, x0, eps, alpha, state["m"],
                                                         1.0, backend="kernel"),
            "eager": lambda: au.variance_momentum_step_reference_(state["x"], grad, state["v"], nb, x0, eps, alpha,
                                                                  state["m"], 1.0),
            "compiled_eager": lambda: compiled["variance_momentum_step_"](state["x"], grad, state["v"], nb, x0, eps,
                                                                          alpha, state["m"], 1.0)},
        "patch_step_": {
            "kernel": lambda: au.patch_step_(state["x"], grad, x0, state["a"], eps, alpha, 10.0, 10 * alpha, kern,
                                             backend="kernel"),
            "eager": lambda: au.patch_step_reference_(state["x"], grad, x0, state["a"], eps, alpha, 10.0, 10 * alpha,
                                                      kern),
            "compiled_eager": lambda: compiled["patch_step_"](state["x"], grad, x0, state["a"], eps, alpha, 10.0,
                                                              10 * alpha, kern)},
    }
    out = {"shape": list(shape)}
    for name, cands in cases.items():
        for fn in cands.values():
            fn()                                  # compile / warm up outside the timed region
        res = interleaved(cands, min_run_time, rounds)
        res["speedup_vs_eager"] = res["eager"]["median_s"] / res["kernel"]["median_s"]
        res["speedup_vs_compiled"] = res["compiled_eager"]["median_s"] / res["kernel"]["median_s"]
        out[name] = res
        print(f"[{device}] {name}: kernel {res['kernel']['median_s'] * 1e3:.2f} ms, eager "
              f"{res['eager']['median_s'] * 1e3:.2f} ms ({res['speedup_vs_eager']:.2f}x), compiled "
              f"{res['compiled_eager']['median_s'] * 1e3:.2f} ms ({res['speedup_vs_compiled']:.2f}x)")
    return out


def bench_pgd_workloads(device: str, min_run_time: float, rounds: int) -> dict:
    """``--part pgd``: :func:`bench_workload` on every workload of :func:`workloads`, printed as it goes."""
    results = {"budgets": list(BUDGETS), "steps": 10, "rounds": rounds, "min_run_time_s": min_run_time}
    for name, (model, x, y) in workloads(device).items():
        r = bench_workload(model, x, y, min_run_time, rounds)
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
    return results


def main() -> None:
    parser = bench_parser(__doc__, "shorter timing runs")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds (default 3)")
    parser.add_argument("--suite-batch", type=int, default=64, help="images per suite attack call (default 64)")
    parser.add_argument("--neighbours", type=int, default=5, help="VMI/VNI neighbours N in --part suite (default 5, "
                        "torchattacks' default)")
    parser.add_argument("--only-torchattacks", action="store_true",
                        help="--part suite: only the attacks torchattacks has (skip timing the others)")
    parser.add_argument("--part", choices=["pgd", "suite", "ops", "all"], default="pgd",
                        help="pgd (PGD and multi-budget, default), suite (transfer suite), ops (update kernels)")
    args = parse_bench_args(parser)
    min_run_time = 0.3 if args.quick else 1.0
    for device in devices():
        if args.part in ("suite", "all"):
            write_results("bench_attacks_suite", device, bench_suite(device, min_run_time, args.rounds,
                                                                     args.suite_batch, args.neighbours,
                                                                     args.only_torchattacks))
        if args.part in ("ops", "all"):
            write_results("bench_attack_update", device, bench_update_ops(device, min_run_time, args.rounds))
        if args.part in ("pgd", "all"):
            write_results("bench_attacks", device, bench_pgd_workloads(device, min_run_time, args.rounds))


if __name__ == "__main__":
    main()
