"""Cost of choosing a source: seconds per source for every transferability score (issue 14 item 7).

Workload: a torchvision ResNet-18 (:func:`pyadvt.models.from_torchvision`, random init, 512-d features,
10 source classes) as the source,
``n`` target images 3x32x32 in 10 classes (default 1000), a SmallCNN reference for the adversarial
scores. Measured in one run:

* ``forward``: one pass of the source over the data (:func:`pyadvt.selection.extract`: features,
  softmax and predictions together) - the yardstick: the goal is every estimator except NLEEP's
  mixture fit at or below it;
* every estimator of :data:`pyadvt.selection.ESTIMATORS` on the extracted views;
* ``tau1*tau2`` (:func:`pyadvt.metrics.adversarial_transferability`, source -> reference Jacobians)
  and the eq. 2 loss (:func:`pyadvt.metrics.empirical_transferability`, PGD on the source), on the
  first ``n_adv`` images (default all ``n``);
* the ratios ``cost / forward`` and ``cost(tau1*tau2) / cost(forward + LogME)`` (a LogME ranking needs the
  forward pass too, so that is the fair comparison), plus ``cost(tau1*tau2) / cost(LogME alone)``.

Times are medians of ``torch.utils.benchmark`` blocked runs (one run for the slow adversarial
scores). JSON goes to ``benchmarks/results/bench_selection_<device>.json``.

    python benchmarks/bench_selection.py [--quick] [--n N] [--n-adv N] [--threads T]
"""

from __future__ import annotations

import time

import torch

from common import bench_parser, devices, measure, parse_bench_args, write_results
from pyadvt.metrics import adversarial_transferability, empirical_transferability
from pyadvt.models import build, from_torchvision
from pyadvt.selection import ESTIMATORS, extract


def _once(fn) -> dict:
    start = time.perf_counter()
    fn()
    return {"median_s": time.perf_counter() - start, "iqr_s": 0.0, "runs": 1}


def run(device: str, n: int, n_adv: int, min_run_time: float) -> dict:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    source = from_torchvision("resnet18", num_classes=10).to(device).eval()
    reference = build("cnn", in_shape=(3, 32, 32), num_classes=10, channels=(16, 32)).to(device).eval()
    y = torch.arange(n) % 10
    x = (torch.rand(n, 3, 32, 32, generator=g) * 0.6 + 0.4 * (y.float() / 10)[:, None, None, None]).clamp(0, 1)
    data = (x.to(device), y.to(device))
    out: dict = {"n": n, "n_adv": n_adv, "feature_dim": 512, "scores": {}}
    out["scores"]["forward"] = measure(lambda: extract(source, data, batch_size=250), min_run_time)
    ex = extract(source, data, batch_size=250)
    for name, (view, fn) in ESTIMATORS.items():
        arg = getattr(ex, view)
        timer = _once if name == "nleep" else (lambda f: measure(f, min_run_time))
        out["scores"][name] = timer(lambda fn=fn, arg=arg: fn(arg, ex.y))
    xa, ya = data[0][:n_adv], data[1][:n_adv]
    out["scores"]["tau1*tau2"] = _once(lambda: adversarial_transferability(source, reference, xa))
    out["scores"]["eq2_loss"] = _once(lambda: empirical_transferability(source, reference, xa, ya, eps=[0.03],
                                                                        steps=10, seed=0))
    fwd = out["scores"]["forward"]["median_s"]
    scale = n / n_adv  # the adversarial scores are linear in the number of images
    for name, m in out["scores"].items():
        per_n = m["median_s"] * (scale if name in ("tau1*tau2", "eq2_loss") else 1.0)
        m["seconds_per_source_at_n"] = per_n
        m["ratio_to_forward"] = per_n / fwd
    t = out["scores"]["tau1*tau2"]["seconds_per_source_at_n"]
    logme = out["scores"]["logme"]["median_s"]
    out["ratio_tau1tau2_to_logme_with_forward"] = t / (fwd + logme)
    out["ratio_tau1tau2_to_logme_alone"] = t / logme
    out["estimators_at_or_below_forward"] = sorted(k for k in ESTIMATORS if out["scores"][k]["ratio_to_forward"] <= 1)
    return out


def main() -> None:
    p = bench_parser(__doc__, "200 images, 50 for the adversarial scores")
    p.add_argument("--n", type=int, default=None, help="target images (default 1000)")
    p.add_argument("--n-adv", type=int, default=None, help="images for tau1*tau2 and eq. 2 (default: n)")
    args = parse_bench_args(p)
    n = args.n or (200 if args.quick else 1000)
    n_adv = min(args.n_adv or (50 if args.quick else n), n)
    results = {}
    for device in devices():
        res = run(device, n, n_adv, 0.2 if args.quick else 1.0)
        results = {"workload": f"resnet18 source, {n} x 3x32x32 target images, 10 classes", **res}
        for name, m in res["scores"].items():
            print(f"{device} {name:>18}: {m['seconds_per_source_at_n']:8.3f} s per source  "
                  f"({m['ratio_to_forward']:6.2f} x forward)")
        print(f"tau1*tau2 / (forward + LogME): {res['ratio_tau1tau2_to_logme_with_forward']:.1f}; "
              f"tau1*tau2 / LogME alone: {res['ratio_tau1tau2_to_logme_alone']:.1f}")
        write_results("bench_selection", device, results)


if __name__ == "__main__":
    main()
