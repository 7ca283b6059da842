"""mixture: does adversarial transferability indicate knowledge transferability? (seed 000 §4.1 on digits)

The paper's data-mixture experiment (Liang et al., ICML 2021, §4.1, Fig. 3), rebuilt on scikit-learn's
digits (no downloads):

* two class groups play "vehicles" and "animals": the *target-like* group ``V`` (default digits 0-4) and
  the *other* group ``A`` (5-9); both are relabelled 0..4 (``V_k`` and ``A_k`` share label ``k``, as the
  authors' 4-class CIFAR/STL loaders share label indices), so every source is a 5-way classifier;
* source ``p`` (p in 0/25/50/75/100%) is trained on ``source_size`` images, a fraction ``p`` from V and
  ``1 - p`` from A, with several seeds (independent subsets and initialisations);
* the *reference* model is trained on a **shifted target domain**: group V with a fixed geometric and
  intensity transform (default: translated one pixel to the right, zero fill, then gamma 0.5, i.e.
  ``x -> x^0.5``, brighter thicker strokes) - playing STL-10 against the CIFAR-10 sources;
* adversarial transferability source -> reference on the shifted target test images: ``tau1``, ``tau2``
  (Defs. 2-3) and the eq. (2) loss of the reference under L-inf PGD-10 examples made on the source at
  several eps (paper: 0.03, 0.06, 0.1, 0.2);
* knowledge transferability: linear probe of each source's features on the shifted target training
  set (new head, frozen features and BatchNorm statistics) -> target test loss / accuracy; plus full
  fine-tuning curves (Fig. 3 right);
* Pearson and Spearman correlations (with percentile-bootstrap 95% CIs over sources) between every
  adversarial metric, the mixture fraction and the knowledge metrics.

Outputs in ``out_dir``: ``result.json`` (+ HTML/Markdown report with figures), ``mixture_sources.csv``
(one row per source), ``mixture_correlations.csv``, ``fig3_left_tau1.png``, ``fig3_left_eq2.png``,
``fig3_right_finetune.png``, ``metrics_vs_fraction.png``, and the transferability matrix of one seed's
sources plus the reference (``atm.png``, ``atm_dendrogram.png``; seed 000 §4.3 applied to this pool).
Structure: config -> :func:`model_spec` (:class:`~pyadvt.train.zoo.ModelSpec`, trained once by
:func:`~pyadvt.train.zoo.train_or_load`) -> cells in ``out_dir/cells`` (:class:`pyadvt.utils.sweep.CellStore`:
the reference and every source model, three measurement cells per source - adversarial, probe,
fine-tuning - and the ATM, each keyed by a digest of what it depends on) -> report
(:mod:`pyadvt.report.mixture_figures`). A rerun resumes; a changed setting recomputes only the cells it
affects (new ``eps``: the adversarial cells only).

Results (defaults: 5 fractions x 3 seeds, SmallCNN; docs/experiments/mixture.md has the tables): the
paper's direction of effect holds on digits for tau1, tau2, the eq.-2 loss at eps 0.2 and every
knowledge metric. Over the 15 sources, Pearson r with the target-like fraction: tau1 +0.73, tau2 +0.51,
eq.-2 loss (eps 0.2) +0.78, probe accuracy +0.72, probe loss -0.84; adversarial vs knowledge: tau1 vs
probe loss -0.68, tau2 vs probe loss -0.63, eq.-2 loss (eps 0.2) vs probe loss -0.72 (95% bootstrap
CIs exclude 0). At eps 0.03/0.06 the eq.-2 loss sits at the noise floor of the confident reference
(negative correlation at 0.03); the 25/50/75% sources are indistinguishable from each other. In the
ATM of the seed-0 pool the reference ranks the 100% source first and the 0% source last, and the tree
pairs the 100% source with the reference.

Example (Python):
    >>> from pyadvt.experiments import mixture
    >>> mixture.QUICK["fractions"], mixture.QUICK["eps"]  # the quick preset: 3 mixtures, one budget
    ([0.0, 0.5, 1.0], [0.1])
    >>> result = mixture.run(mixture.QUICK, out_dir="/tmp/mixture", progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pyadvt.attacks import PGD
from pyadvt.data import TensorData
from pyadvt.experiments._cli import experiment_cli
from pyadvt.experiments._data import DIGITS, experiment_data
from pyadvt.metrics import adversarial_transferability, empirical_transferability
from pyadvt.metrics.atm import cluster_tree, entropy_curve, transfer_table
from pyadvt.report import Timings, make_result, publish
from pyadvt.report.csv_tables import write_csv
from pyadvt.report.mixture_figures import draw_mixture_figures, mixture_figure_specs, mixture_tables
from pyadvt.train import evaluate
from pyadvt.train.zoo import ModelSpec, data_digest, train_or_load
from pyadvt.transfer import knowledge_transferability
from pyadvt.utils.config import merge_config, resolve_config
from pyadvt.utils.progress import log
from pyadvt.utils.sweep import CellStore, config_digest, run_cells

DEFAULTS: dict = {
    "seed": 0,
    "dataset": dict(DIGITS),
    "target_like_classes": [0, 1, 2, 3, 4],
    "other_classes": [5, 6, 7, 8, 9],
    "fractions": [0.0, 0.25, 0.5, 0.75, 1.0],
    "seeds": [0, 1, 2],
    "source_size": 500,
    "shift": {"translate": 1, "gamma": 0.5},
    "model": {"arch": "cnn"},
    "train": {"epochs": 20, "lr": 0.05, "batch_size": 64},
    "eval_samples": 0,
    "eps": [0.03, 0.06, 0.1, 0.2],
    "attack_steps": 10,
    "probe": {"epochs": 20, "lr": 0.05},
    "finetune": {"epochs": 8, "lr": 0.01},
    "bootstrap": 2000,
    "atm": {"seed": 0, "eps": 0.1, "steps": 10},
    "threads": 1,
}

QUICK: dict = merge_config(DEFAULTS, {
    "fractions": [0.0, 0.5, 1.0],
    "seeds": [0],
    "source_size": 300,
    "train": {"epochs": 4},
    "eval_samples": 80,
    "eps": [0.1],
    "attack_steps": 3,
    "probe": {"epochs": 3},
    "finetune": {"epochs": 2},
    "bootstrap": 200,
    "atm": {"steps": 3},
})

# --dataset presets: "scale" for 28x28 images (LeNet-5, the classic MNIST CNN; the domain shift moves
# images 3 px, ~ the 1 px of 8x8 digits; eps in [0, 1] pixel units), "budget": 5 fractions x 3 seeds on
# 500-image sources, 200 evaluated target images, probe 10 / fine-tuning 3 epochs (profile of the former
# 300-image / 5-epoch budget: 62 % of a source's time in probe + fine-tuning, 23 % in the eq.-2 PGD; the
# fine-tuning curve is flat after epoch 3), 10-16 min on 2 loaded CPU cores (docs/experiments/mixture.md)
_MNIST_LIKE = {
    "scale": {"model": {"arch": "lenet"}, "shift": {"translate": 3},
              "dataset": {"train_size": 5000, "test_size": 1000}},
    "budget": {"train": {"epochs": 10}, "eval_samples": 200, "probe": {"epochs": 10}, "finetune": {"epochs": 3}},
}
DATASET_PRESETS: dict = {"fashion-mnist": _MNIST_LIKE, "mnist": _MNIST_LIKE, "kmnist": _MNIST_LIKE}

ADV_METRICS = ("tau1", "tau2", "tau1*tau2")  # plus "eq2_loss@<eps>" per budget; tau1*tau2 as in Theorem 1
KNOWLEDGE_METRICS = ("probe_accuracy", "probe_loss", "finetune_auc_loss")


def shift_domain(x: torch.Tensor, translate: int, gamma: float) -> torch.Tensor:
    """The target-domain shift: move images ``translate`` pixels right (zero fill), then ``x -> x^gamma``.

    ``x``: ``[N, C, H, W]`` in [0, 1]; returns a new tensor in [0, 1].
    """
    if translate < 0 or translate >= x.shape[-1]:
        raise ValueError(f"'shift.translate' must be in [0, {x.shape[-1] - 1}], got {translate}")
    if not gamma > 0:
        raise ValueError(f"'shift.gamma' must be > 0, got {gamma}")
    out = torch.zeros_like(x)
    out[..., translate:] = x[..., : x.shape[-1] - translate]
    return out.clamp(0, 1) ** gamma


def _group(data: TensorData, classes: list[int]) -> TensorData:
    mask = torch.isin(data.y, torch.tensor(classes))
    lookup = torch.full((10,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    return TensorData(data.x[mask], lookup[data.y[mask]], len(classes))


def mixture_source_data(target_like: TensorData, other: TensorData, fraction: float, size: int,
                        seed: int) -> TensorData:
    """``size`` images: ``round(fraction * size)`` drawn from ``target_like``, the rest from ``other``
    (without replacement, seeded by ``(seed, fraction)``)."""
    n_v = int(round(fraction * size))
    if n_v > len(target_like) or size - n_v > len(other):
        raise ValueError(f"'source_size' {size} is too large for the class groups "
                         f"({len(target_like)} target-like, {len(other)} other training images)")
    rng = np.random.default_rng([seed, int(round(fraction * 1000))])
    iv = torch.from_numpy(rng.choice(len(target_like), n_v, replace=False))
    ia = torch.from_numpy(rng.choice(len(other), size - n_v, replace=False))
    return TensorData(torch.cat([target_like.x[iv], other.x[ia]]), torch.cat([target_like.y[iv], other.y[ia]]),
                      target_like.num_classes)


def _validate(cfg: dict) -> None:
    v, a = list(cfg["target_like_classes"]), list(cfg["other_classes"])
    if len(v) != len(a) or not v or set(v) & set(a) or not set(v + a) <= set(range(10)):
        raise ValueError("'target_like_classes' and 'other_classes' must be disjoint, equally long lists of digits")
    fr = cfg["fractions"]
    if len(fr) < 2 or any(not 0.0 <= float(f) <= 1.0 for f in fr):
        raise ValueError(f"'fractions' must hold at least two values in [0, 1], got {fr}")
    if not cfg["seeds"]:
        raise ValueError("'seeds' must not be empty")
    if not cfg["eps"] or any(float(e) <= 0 for e in cfg["eps"]):
        raise ValueError(f"'eps' must be positive budgets, got {cfg['eps']}")


def model_spec(cfg: dict, seed: int, init_seed: int) -> ModelSpec:
    """The :class:`~pyadvt.train.zoo.ModelSpec` of a source or the reference: ``cfg["model"]`` (arch and its
    keyword arguments), plain training with ``cfg["train"]``, shuffled with ``seed``, initialised with
    ``init_seed`` (a source of fraction ``p`` % and seed ``s``: ``1000 s + p``; the reference: ``seed + 10000``)."""
    kw = {k: v for k, v in cfg["model"].items() if k != "arch"}
    fit_kwargs = {k: cfg["train"][k] for k in ("epochs", "lr", "batch_size")}
    return ModelSpec(cfg["model"]["arch"], kw, fit_kwargs=fit_kwargs, seed=int(seed), init_seed=int(init_seed))


def correlation(x, y, n_boot: int = 2000, seed: int = 0) -> dict:
    """Pearson and Spearman r of ``x`` vs ``y`` with percentile-bootstrap 95% CIs (resampling pairs),
    from :mod:`pyadvt.utils.stats` (its NaN policy: non-finite pairs dropped, constant resamples
    skipped); ``None`` where undefined (fewer than 3 pairs or a constant side)."""
    from pyadvt.utils.stats import bootstrap_ci, correlation as stats_correlation

    out: dict = {}
    for method in ("pearson", "spearman"):
        c = stats_correlation(x, y, method)
        out["n"] = c.n
        if not np.isfinite(c.r):
            return dict(out, pearson=None, spearman=None, pearson_ci=None, spearman_ci=None)
        out[method] = c.r
    for method in ("pearson", "spearman"):
        lo, hi = bootstrap_ci(x, y, method=method, n_boot=n_boot, seed=seed)
        out[f"{method}_ci"] = [lo, hi] if np.isfinite(lo) else None
    return out


def direction_of_effect(corr: list[dict], adv_names) -> dict[str, bool]:
    """The paper's direction of effect (seed 000 §4.1, Fig. 3) from the correlation table ``corr``
    (rows ``{"x", "y", "spearman", ...}``, as built by :func:`_run`).

    More target-like source data should mean more transferability of both kinds: for every adversarial
    metric in ``adv_names`` (tau1, tau2, eq.-2 loss, ...) and for the probe accuracy the Spearman rho with
    ``"fraction"`` must be positive (key = the metric's name); ``"probe_loss_decreases"``: rho(fraction,
    probe loss) negative. An undefined rho (constant column) counts as 0, i.e. the direction fails.
    """
    def find(x, y):
        return next(c for c in corr if c["x"] == x and c["y"] == y)

    direction = {name: (find("fraction", name)["spearman"] or 0.0) > 0 for name in list(adv_names) + ["probe_accuracy"]}
    direction["probe_loss_decreases"] = (find("fraction", "probe_loss")["spearman"] or 0.0) < 0
    return direction


def direction_verdicts(corr: list[dict], adv_names) -> dict[str, dict]:
    """Per metric (every eq.-2 budget separately), the direction of effect with its 95% bootstrap CI.

    For each name of ``adv_names`` and ``probe_accuracy`` (expected sign ``+`` with the target-like
    fraction) and ``probe_loss`` (expected ``-``): ``{"expected", "spearman", "spearman_ci", "pearson",
    "pearson_ci", "verdict"}`` where the verdict is ``"holds"`` when the Spearman CI excludes 0 on the
    expected side, ``"reversed"`` when it excludes 0 on the other side, else ``"undetermined"`` (also
    for an undefined rho or CI).

    Example:
        >>> row = lambda y, r, ci: {"x": "fraction", "y": y, "spearman": r, "spearman_ci": ci,
        ...                         "pearson": r, "pearson_ci": ci}
        >>> t = [row("tau1", 0.8, [0.5, 0.9]), row("probe_accuracy", 0.3, [-0.2, 0.6]),
        ...      row("probe_loss", 0.5, [0.1, 0.8])]
        >>> {k: v["verdict"] for k, v in direction_verdicts(t, ["tau1"]).items()}
        {'tau1': 'holds', 'probe_accuracy': 'undetermined', 'probe_loss': 'reversed'}
    """
    out = {}
    for name, sign in [(n, 1) for n in list(adv_names) + ["probe_accuracy"]] + [("probe_loss", -1)]:
        c = next(c for c in corr if c["x"] == "fraction" and c["y"] == name)
        ci = c.get("spearman_ci")
        verdict = "undetermined"
        if c.get("spearman") is not None and ci is not None:
            lo, hi = sign * ci[0], sign * ci[1]
            lo, hi = min(lo, hi), max(lo, hi)
            verdict = "holds" if lo > 0 else "reversed" if hi < 0 else "undetermined"
        out[name] = {"expected": "+" if sign > 0 else "-", "spearman": c.get("spearman"), "spearman_ci": ci,
                     "pearson": c.get("pearson"), "pearson_ci": c.get("pearson_ci"), "verdict": verdict}
    return out


def run(config: dict | None = None, out_dir: str | Path = "results/mixture", progress: bool = True) -> dict:
    """Run the experiment (see module docstring); returns the ``pyadvt.result/1`` dict."""
    cfg = resolve_config(DEFAULTS, config)
    _validate(cfg)
    out_dir = Path(out_dir)
    threads = torch.get_num_threads()
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))  # tiny nets: 1 intra-op thread is fastest on loaded CPUs
    try:
        return _run(cfg, out_dir, progress)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: dict, out_dir: Path, progress: bool) -> dict:
    """config -> data and model specs -> cells (reference, sources, their measurements, the ATM) -> report.

    Every trained model is a :func:`~pyadvt.train.zoo.train_or_load` cell and every measurement of a
    source (adversarial, probe, fine-tuning) and the ATM a cell of ``out_dir/cells`` keyed by a digest of
    exactly what it depends on: a rerun resumes, and a changed setting recomputes only the cells it affects
    (e.g. new ``eps`` re-attacks but reuses every trained model, probe and fine-tuning run).
    """
    timings, store = Timings(), CellStore(out_dir / "cells")
    s = _setup(cfg)
    with timings("reference"):
        reference, ref_key, ref_info = _reference(cfg, s, store)
    log(f"mixture: reference accuracy on the shifted target test set {ref_info['target_test_accuracy']:.3f}")
    with timings("sources"):
        rows, sources = _source_cells(cfg, s, store, reference, ref_key, progress)
    eps_keys = [f"{float(e):g}" for e in cfg["eps"]]
    adv_names = list(ADV_METRICS) + [f"eq2_loss@{e}" for e in eps_keys]
    table = metric_table(rows, eps_keys)
    with timings("statistics"):
        corr = correlation_table(table, adv_names, int(cfg["bootstrap"]), cfg["seed"])
    direction, verdicts = direction_of_effect(corr, adv_names), direction_verdicts(corr, adv_names)
    with timings("atm"):
        atm_data = _atm_cell(cfg, s, store, sources, reference, ref_key)
    per_fraction = per_fraction_means(rows, eps_keys)
    mid = eps_keys[len(eps_keys) // 2] if len(eps_keys) > 1 else eps_keys[0]
    with timings("outputs"):
        _write_tables(out_dir, rows, corr, eps_keys)
        draw_mixture_figures(out_dir, table, rows, per_fraction, mid, atm_data, cfg["atm"]["eps"])
    data = {"reference": ref_info, "sources": rows, "per_fraction": per_fraction, "correlations": corr,
            "direction": direction, "direction_verdicts": verdicts, "atm": atm_data}
    summary = _summary(corr, direction, verdicts, adv_names, eps_keys, ref_info, atm_data)
    result = make_result("mixture", cfg, data, timings=timings, seeds=cfg["seeds"], summary=summary,
                         figures=mixture_figure_specs(table, rows, mid), tables=mixture_tables(per_fraction, corr),
                         notes=_notes(cfg, verdicts))
    publish(result, out_dir, title="mixture (seed 000 §4.1)")
    return result


@dataclass
class _Setup:
    """The data of one run: the target-like group ``V`` (train / test, labels 0..4), the other group ``A``
    (train), the shifted target domain (train / test) and its first ``eval_samples`` test images, with a
    digest of each evaluation set (the measurement cells' keys)."""

    V_tr: TensorData
    V_te: TensorData
    A_tr: TensorData
    tgt_tr: TensorData
    tgt_te: TensorData
    evalset: TensorData
    digests: dict


def _setup(cfg: dict) -> _Setup:
    train, test = experiment_data(cfg["dataset"], seed=cfg["seed"])
    V_tr, V_te = _group(train, cfg["target_like_classes"]), _group(test, cfg["target_like_classes"])
    sh = cfg["shift"]
    tgt_tr = TensorData(shift_domain(V_tr.x, sh["translate"], sh["gamma"]), V_tr.y, V_tr.num_classes)
    tgt_te = TensorData(shift_domain(V_te.x, sh["translate"], sh["gamma"]), V_te.y, V_te.num_classes)
    n_eval = len(tgt_te) if not cfg["eval_samples"] else min(int(cfg["eval_samples"]), len(tgt_te))
    evalset = tgt_te.subset(torch.arange(n_eval))
    digests = {name: data_digest(d) for name, d in
               (("V_te", V_te), ("tgt_tr", tgt_tr), ("tgt_te", tgt_te), ("eval", evalset))}
    return _Setup(V_tr, V_te, _group(train, cfg["other_classes"]), tgt_tr, tgt_te, evalset, digests)


def _reference(cfg: dict, s: _Setup, store: CellStore):
    """The reference model (trained on the shifted target domain), its cell key and its test accuracies."""
    spec = model_spec(cfg, cfg["seed"], cfg["seed"] + 10_000)
    reference, _ = train_or_load(spec, s.tgt_tr, store)
    info = {"target_test_accuracy": evaluate(reference, s.tgt_te)["accuracy"],
            "unshifted_test_accuracy": evaluate(reference, s.V_te)["accuracy"]}
    return reference, spec.key(s.tgt_tr), info


def _source(cfg: dict, s: _Setup, pct: int, seed: int, store: CellStore):
    """``(model, cell key)`` of the source trained on ``pct`` % target-like data with ``seed``."""
    data = mixture_source_data(s.V_tr, s.A_tr, pct / 100, int(cfg["source_size"]), seed)
    spec = model_spec(cfg, seed, 1000 * seed + pct)
    return train_or_load(spec, data, store)[0], spec.key(data)


def _measure(kind: str, cfg: dict, s: _Setup, src, reference, seed: int) -> dict:
    """One measurement of a source: ``"adversarial"`` (tau1, tau2, eq.-2 loss / accuracy per eps, accuracy on
    the target-like test set), ``"probe"`` or ``"finetune"`` (knowledge transferability to the target)."""
    if kind == "adversarial":
        x, y, eps = s.evalset.x, s.evalset.y, [float(e) for e in cfg["eps"]]
        adv = adversarial_transferability(src, reference, x)
        eq2 = empirical_transferability(src, reference, x, y, eps=eps, steps=int(cfg["attack_steps"]), seed=seed)
        return {"source_accuracy_target_like": evaluate(src, s.V_te)["accuracy"],
                "tau1": adv.tau1.tau1, "tau2": adv.tau2.tau2, "n_undefined": adv.tau1.n_undefined,
                "eq2_loss": {f"{e:g}": float(v) for e, v in zip(eps, eq2.transfer_loss())},
                "eq2_accuracy": {f"{e:g}": float(eq2.correct[k].double().mean()) for k, e in enumerate(eps)}}
    kt = knowledge_transferability(src, s.tgt_tr, s.tgt_te, method=kind, epochs=cfg[kind]["epochs"],
                                   lr=cfg[kind]["lr"], seed=seed)
    out = {f"{kind}_loss": kt.loss, f"{kind}_accuracy": kt.accuracy, f"{kind}_curve": [c["eval_loss"] for c in kt.curve]}
    return dict(out, finetune_auc_loss=kt.auc_loss) if kind == "finetune" else out


_MEASURES = {"adversarial": ("eval", "V_te"), "probe": ("tgt_tr", "tgt_te"), "finetune": ("tgt_tr", "tgt_te")}
_MEASURE_SETTINGS = {"adversarial": ("eps", "attack_steps"), "probe": ("probe",), "finetune": ("finetune",)}


def _source_cells(cfg: dict, s: _Setup, store: CellStore, reference, ref_key, progress: bool):
    """Every source's three measurement cells (trained or loaded on first use), in sweep order.

    Returns ``(rows, {pct: model of seed cfg["atm"]["seed"]} with their keys)``: one record per source as
    in ``mixture_sources.csv`` (plus curves), and the sources the ATM needs.
    """
    sources = [(int(round(100 * float(f))), int(sd)) for f in cfg["fractions"] for sd in cfg["seeds"]]
    models: dict = {}

    def model(pct, seed):
        if (pct, seed) not in models:
            models[pct, seed] = _source(cfg, s, pct, seed, store)
        return models[pct, seed]

    def key(kind, pct, seed):
        deps = [s.digests[d] for d in _MEASURES[kind]] + [cfg[k] for k in _MEASURE_SETTINGS[kind]]
        src_key = model(pct, seed)[1]
        return (kind, pct, seed, config_digest(src_key, ref_key if kind == "adversarial" else None, *deps))

    keys = {(k, p, sd): key(k, p, sd) for p, sd in sources for k in _MEASURES}
    by_key = {v: k for k, v in keys.items()}
    cells = run_cells(list(keys.values()), lambda c: _measure(by_key[c][0], cfg, s, model(*by_key[c][1:])[0],
                                                               reference, by_key[c][2]),
                      store, progress=progress, desc="mixture sources")
    rows = [_row(p, sd, *(cells[keys[k, p, sd]] for k in _MEASURES)) for p, sd in sources]
    atm_seed = int(cfg["atm"]["seed"])
    return rows, {p: model(p, atm_seed) for p in dict.fromkeys(p for p, _ in sources)}


def _row(pct: int, seed: int, adv: dict, probe: dict, ft: dict) -> dict:
    """One source's record, in the column order of ``mixture_sources.csv`` (curves last)."""
    row = {"fraction": pct / 100, "seed": seed, **{k: v for k, v in adv.items()}}
    row.update({k: probe[k] for k in ("probe_loss", "probe_accuracy")})
    row.update({k: ft[k] for k in ("finetune_loss", "finetune_accuracy", "finetune_auc_loss", "finetune_curve")})
    row["probe_curve"] = probe["probe_curve"]
    return row


def metric_table(rows: list[dict], eps_keys: list[str]) -> dict[str, list[float]]:
    """The correlated columns over sources: fraction, tau1, tau2, tau1*tau2, eq2_loss@<eps>, knowledge metrics."""
    table = {"fraction": [r["fraction"] for r in rows], "tau1": [r["tau1"] for r in rows],
             "tau2": [r["tau2"] for r in rows], "tau1*tau2": [r["tau1"] * r["tau2"] for r in rows]}
    for e in eps_keys:
        table[f"eq2_loss@{e}"] = [r["eq2_loss"][e] for r in rows]
    for k in KNOWLEDGE_METRICS:
        table[k] = [r[k] for r in rows]
    return table


def correlation_table(table: dict, adv_names: list[str], n_boot: int, seed: int) -> list[dict]:
    """:func:`correlation` rows ``{"x", "y", ...}``: the fraction against every adversarial and knowledge
    metric, and every adversarial metric against every knowledge metric."""
    corr = []
    for a in ["fraction"] + adv_names:
        for k in (adv_names + list(KNOWLEDGE_METRICS)) if a == "fraction" else KNOWLEDGE_METRICS:
            corr.append(dict(x=a, y=k, **correlation(table[a], table[k], n_boot, seed)))
    return corr


def per_fraction_means(rows: list[dict], eps_keys: list[str]) -> list[dict]:
    """Means over seeds per fraction of tau1, tau2, the knowledge metrics, tau1*tau2 and the eq.-2 losses."""
    out = []
    for f in sorted({r["fraction"] for r in rows}):
        sel = [r for r in rows if r["fraction"] == f]
        entry = {"fraction": f, "n": len(sel)}
        for name in ["tau1", "tau2"] + list(KNOWLEDGE_METRICS):
            entry[name] = float(np.mean([r[name] for r in sel]))
        entry["tau1*tau2"] = float(np.mean([r["tau1"] * r["tau2"] for r in sel]))
        for e in eps_keys:
            entry[f"eq2_loss@{e}"] = float(np.mean([r["eq2_loss"][e] for r in sel]))
        out.append(entry)
    return out


def _summary(corr, direction, verdicts, adv_names, eps_keys, ref_info, atm_data) -> dict:
    """The headline: the direction of effect per metric and per eps. ``direction_holds`` needs the right sign
    for every metric at every eq.-2 budget; ``direction_main_metrics_hold`` is the weaker check on tau1, tau2
    and the largest budget only; ``direction@<metric>`` is holds / reversed / undetermined from the 95% CI."""
    def find(x, y):
        return next(c for c in corr if c["x"] == x and c["y"] == y)

    main = ["tau1", "tau2", f"eq2_loss@{eps_keys[-1]}", "probe_accuracy", "probe_loss_decreases"]
    summary = {"reference_accuracy": ref_info["target_test_accuracy"],
               "direction_holds": all(direction.values()),
               "direction_holds_every_eps": all(direction.values()),
               "direction_main_metrics_hold": all(direction[k] for k in main)}
    summary.update({f"direction@{k}": v["verdict"] for k, v in verdicts.items()})
    summary.update({f"spearman({a},probe_accuracy)": find(a, "probe_accuracy")["spearman"]
                    for a in ["fraction"] + adv_names})
    summary.update({f"spearman(fraction,{a})": find("fraction", a)["spearman"] for a in adv_names})
    summary["atm_entropy_k2"] = atm_data["entropy"]["2"]
    return summary


def _notes(cfg: dict, verdicts: dict) -> list[str]:
    sh = cfg["shift"]
    notes = [f"seed 000 (Liang et al., ICML 2021) §4.1 on {cfg['dataset']['name']}: sources on mixtures of classes "
             f"{cfg['target_like_classes']} (target-like) and {cfg['other_classes']}; reference on the target-like "
             f"classes shifted {sh['translate']} px right with gamma {sh['gamma']}"]
    return notes + [f"direction of effect, Spearman rho(fraction, {k}) expected {v['expected']}: {v['verdict']} "
                    f"(rho {v['spearman']}, 95% CI {v['spearman_ci']})" for k, v in verdicts.items()]


SOURCE_COLUMNS = ["fraction", "seed", "source_accuracy_target_like", "tau1", "tau2"]
KNOWLEDGE_COLUMNS = ["probe_loss", "probe_accuracy", "finetune_loss", "finetune_accuracy", "finetune_auc_loss"]
CORRELATION_COLUMNS = ["x", "y", "n", "pearson", "pearson_lo", "pearson_hi", "spearman", "spearman_lo", "spearman_hi"]


def _write_tables(out_dir: Path, rows: list[dict], corr: list[dict], eps_keys: list[str]) -> None:
    """``mixture_sources.csv`` (one row per source) and ``mixture_correlations.csv``, written atomically."""
    cols = SOURCE_COLUMNS + [f"eq2_loss@{e}" for e in eps_keys] + KNOWLEDGE_COLUMNS
    write_csv(out_dir / "mixture_sources.csv", cols,
              [[r["eq2_loss"][c.split("@")[1]] if c.startswith("eq2_loss@") else r[c] for c in cols] for r in rows])
    write_csv(out_dir / "mixture_correlations.csv", CORRELATION_COLUMNS,
              [[c["x"], c["y"], c["n"], c["pearson"], *(c["pearson_ci"] or [None, None]), c["spearman"],
                *(c["spearman_ci"] or [None, None])] for c in corr])


def _atm_cell(cfg: dict, s: _Setup, store: CellStore, sources: dict, reference, ref_key) -> dict:
    """ATM (seed 000 §4.3 / App. G.3) of the sources of one seed plus the reference, as one cell: PGD
    examples of every model evaluated on every model, tournament matrices, Perron columns, tree, entropy
    against the grouping {>= 50 % target-like sources + reference} vs {< 50 %}."""
    ac = cfg["atm"]
    cell = ("atm", config_digest([k for _, k in sources.values()], ref_key, s.digests["eval"], ac))
    models = [m for m, _ in sources.values()] + [reference]
    names = [f"src {pct}%" for pct in sources] + ["reference"]
    groups = ["target-like" if pct >= 50 else "other" for pct in sources] + ["target-like"]

    def compute(_):
        x, y = s.evalset.x, s.evalset.y
        table = transfer_table(models, x, [y] * len(models),
                               lambda m: PGD(m, eps=float(ac["eps"]), steps=int(ac["steps"]), seed=int(ac["seed"])))
        atm = table.atm()
        Z = cluster_tree(atm)
        return {"models": names, "reference_groups": groups, "matrix": atm.tolist(), "linkage": Z.tolist(),
                "entropy": {str(k): v for k, v in entropy_curve(Z, groups).items()},
                "success_rate": table.success.double().mean(-1).tolist()}

    return run_cells([cell], compute, store, progress=False)[cell]


add_arguments, main = experiment_cli("mixture", run, DEFAULTS, QUICK, presets=DATASET_PRESETS)


__all__ = ["DEFAULTS", "QUICK", "DATASET_PRESETS", "correlation", "correlation_table", "direction_of_effect",
           "direction_verdicts", "metric_table", "mixture_source_data", "model_spec", "per_fraction_means",
           "shift_domain", "run", "add_arguments", "main"]
