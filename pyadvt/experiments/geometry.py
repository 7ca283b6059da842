"""geometry: transfer of adversarial perturbations between linear SVMs and small NNs (seed 003, Fig. 4).

Setup (Charles et al. 2019, §7, on scikit-learn's digits instead of MNIST): ``K`` linear SVMs
(scikit-learn ``LinearSVC``, one-vs-rest) and ``K`` small ReLU networks (``pyadvt.models``, trained with
``pyadvt.train.fit``), each on its own random subset of the training split. By default the task is the
**multi-class** 10-digit task, as in the paper; ``classes=[a, b]`` gives a binary task. Every model
attacks the test images with L-inf PGD (``pyadvt.attacks.PGD``: cross-entropy on the model's logits —
for an SVM its one-vs-rest scores; random start; step ``2.5 eps / steps``) for each ``eps`` of the grid;
random perturbations are ``x + eps * s`` with independent uniform signs ``s`` (per-sample seeded), clipped
to [0, 1]. The SVM adversary is thus PGD on the SVM's scores, not Theorem 8/9's ``v*_{k,l}`` (which is
defined for the training set's max-margin SVM; see :mod:`pyadvt.theory`).

Reported for each target family (SVM, NN) and perturbation source (SVM-made, NN-made, random): the mean
over the target models of their accuracy on the perturbed test images, with the min/max over target
models as the band (Fig. 4). A target is never evaluated on its own adversarial examples (those
white-box accuracies are reported separately); each target's accuracy pools the examples of all
``K - 1`` (or ``K``) other sources of a family.

Paper's ordering (checked in ``summary``, using the mean accuracy over the ``eps > 0`` grid):
  (a) SVM->SVM is the strongest attack on SVMs (below NN->SVM and random);
  (b) NN->SVM is *well above random*: its accuracy drop is at least a third of SVM->SVM's;
  (c) SVM->NN is *barely above random*: its accuracy drop on NNs is under a third of NN->NN's.

Result with the defaults (seed 0, 10 SVMs + 10 CNNs, 450 test images, CPU; details and per-eps tables in
``docs/experiments/geometry.md``): mean accuracy over eps 0.04-0.40 on SVM targets 0.25 (SVM-made),
0.56 (NN-made), 0.82 (random); on CNN targets 0.46 (SVM-made), 0.44 (NN-made), 0.80 (random). So (a) and
(b) appear (NN->SVM relative effect 0.45), but (c) does **not**: on digits, SVM adversaries hurt the CNNs
about as much as other CNNs' adversaries do (relative effect 0.94). The same holds with MLP targets and on
the binary 3-vs-8 task. Theorem 9 checked on the first two SVMs (digits 3 vs 8): the max-margin direction of
the 197-point set S is adversarial for both SVMs at every point of S.

Resumable: every trained model, every model's PGD examples and the Theorem-9 check is stored as a cell
under ``out_dir/cells`` as soon as it finishes (:mod:`pyadvt.utils.sweep`); a rerun after a crash or
Ctrl-C recomputes only the missing cells and gives the same result.

Example (Python):
    >>> from pyadvt.experiments import geometry
    >>> result = geometry.run(geometry.QUICK, out_dir="/tmp/geometry", progress=False)  # doctest: +SKIP
    >>> result["summary"]["paper_ordering"]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pyadvt.attacks import PGD
from pyadvt.data import TensorData
from pyadvt.data.stream import iter_batches
from pyadvt.experiments._cli import experiment_cli
from pyadvt.experiments._data import DIGITS, experiment_data
from pyadvt.metrics.transfer_rates import predict
from pyadvt.report import Timings, make_result, publish
from pyadvt.report.csv_tables import write_csv
from pyadvt.report.geometry_figures import fig4_specs
from pyadvt.theory import MultiClassLinear, check_theorem9
from pyadvt.train.zoo import ModelSpec, data_digest, train_or_load
from pyadvt.utils.config import merge_config, resolve_config
from pyadvt.utils.rng import per_sample_rand
from pyadvt.utils.sweep import CellStore, config_digest, run_cells

FAMILIES = ("svm", "nn")
SOURCES = ("svm", "nn", "random")
EFFECT_THRESHOLD = 1 / 3  # "well above" / "barely above" random, as a fraction of the reference attack's effect

DEFAULTS: dict = {
    "seed": 0,
    "dataset": dict(DIGITS),
    "classes": [],  # [] = all ten digits (multi-class, as the paper); two digits = a binary task
    "models": 10,  # K per family (the paper: 50)
    "subset_size": 600,  # training images per model (of 1347; the paper: 10000 of 60000)
    "svm": {"C": 1.0, "max_iter": 20000},
    "nn": {"arch": "cnn", "width": [16, 32, 64], "epochs": 30, "lr": 0.05, "batch_size": 64},
    "attack": {"steps": 20, "random_start": True},
    "eps": [0.04, 0.08, 0.12, 0.16, 0.2, 0.24, 0.28, 0.32, 0.36, 0.4],
    "n_eval": 450,  # test images perturbed (the digits test split has 450)
    "threads": 1,  # torch intra-op threads during the run (tiny models: more threads only add contention)
    "theory_pair": [3, 8],  # digits (k, l) for the Theorem 9 check on the first two SVMs' training sets
}

QUICK: dict = merge_config(DEFAULTS, {
    "models": 3, "subset_size": 300, "nn": {"epochs": 4, "width": [8, 16]}, "attack": {"steps": 5},
    "eps": [0.1, 0.3], "n_eval": 96,
})

# --dataset presets: "scale" for 28x28 images (LeNet-5, the classic MNIST CNN; eps in [0, 1] pixel units),
# "budget": K = 5 models per family on 1000 images each, 300 perturbed test images, 9-11 min per seed
# on 2 loaded CPU cores (--set seed=0/1/2 for three seeds)
_MNIST_LIKE = {
    "scale": {"nn": {"arch": "lenet", "width": []}, "eps": [0.05, 0.1, 0.15, 0.2, 0.3],
              "dataset": {"train_size": 5000, "test_size": 1000}},
    "budget": {"models": 5, "subset_size": 1000, "nn": {"epochs": 10}, "n_eval": 300},
}
DATASET_PRESETS: dict = {"fashion-mnist": _MNIST_LIKE, "mnist": _MNIST_LIKE, "kmnist": _MNIST_LIKE}


class LinearScores(nn.Module):
    """A fitted scikit-learn linear classifier as a torch logits model ``[B, C, H, W] -> [B, K]``.

    ``coef [K, d]``, ``intercept [K]`` (one-vs-rest scores, ``argmax`` = the sklearn prediction). A binary
    model (``coef [1, d]``: score ``s``, positive class 1) becomes the logits ``(-s/2, s/2)``, so ``argmax``
    and the cross-entropy gradient direction are those of ``s``.
    """

    def __init__(self, coef: np.ndarray, intercept: np.ndarray) -> None:
        super().__init__()
        coef = np.asarray(coef, dtype=np.float32)
        intercept = np.asarray(intercept, dtype=np.float32).reshape(-1)
        if coef.shape[0] == 1:
            coef, intercept = np.concatenate([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
        self.linear = nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(coef))
            self.linear.bias.copy_(torch.from_numpy(intercept))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def train_svm(data: TensorData, C: float = 1.0, max_iter: int = 20000, seed: int = 0) -> LinearScores:
    """``LinearSVC`` (squared hinge, one-vs-rest) on the flattened images of ``data``, as a torch module."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    X = data.x.flatten(1).numpy().astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svc = LinearSVC(C=C, max_iter=max_iter, random_state=seed).fit(X, data.y.numpy())
    return LinearScores(svc.coef_, svc.intercept_)


def nn_spec(cfg: dict, num_classes: int, seed: int) -> ModelSpec:
    """The :class:`~pyadvt.train.zoo.ModelSpec` of one small ReLU network: ``cfg["arch"]`` with the widths
    ``cfg["width"]`` ("cnn"/"resnet" channels, "mlp" hidden; ignored by "lenet"), trained by ``fit`` with
    ``epochs`` / ``lr`` / ``batch_size`` from ``cfg``, initialised and shuffled with ``seed``."""
    width_key = {"cnn": "channels", "mlp": "hidden", "lenet": None, "resnet": "channels"}.get(cfg["arch"])
    kwargs = {width_key: list(cfg["width"])} if width_key else {}
    fit_kwargs = {k: cfg[k] for k in ("epochs", "lr", "batch_size")}
    return ModelSpec(cfg["arch"], dict(kwargs, num_classes=int(num_classes)), fit_kwargs=fit_kwargs, seed=int(seed))


def train_nn(data: TensorData, cfg: dict, num_classes: int, seed: int, store: CellStore | None = None) -> nn.Module:
    """A small ReLU network (:func:`nn_spec`) trained on ``data`` by :func:`~pyadvt.train.zoo.train_or_load`
    (stored in / loaded from ``store`` when given)."""
    return train_or_load(nn_spec(cfg, num_classes, seed), data, store)[0]


def random_sign_perturbations(x: torch.Tensor, eps: list[float], seed: int) -> torch.Tensor:
    """``[E, N, ...]``: ``clip01(x + eps_e * s)`` with uniform random signs ``s`` drawn per sample (the
    same ``s`` for every ``eps``), independent of how ``x`` is batched."""
    u = per_sample_rand(x, tuple(x.shape[1:]), seed=seed)
    s = torch.where(u < 0.5, -1.0, 1.0).to(x.dtype)
    e = torch.tensor(eps, dtype=x.dtype).view(-1, *([1] * x.dim()))
    return (x.unsqueeze(0) + e * s.unsqueeze(0)).clamp(0.0, 1.0)


def adversarial_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: list[float], steps: int,
                         random_start: bool, seed: int, batch_size: int = 512) -> torch.Tensor:
    """``[E, N, ...]`` L-inf PGD examples of ``model`` for every budget of ``eps`` (one multi-budget call)."""
    atk = PGD(model, eps=max(eps), steps=steps, random_start=random_start, seed=seed)
    budgets = torch.tensor(eps, dtype=x.dtype)
    return torch.cat([atk(xb, yb, eps=budgets) for xb, yb in iter_batches((x, y), batch_size)], dim=1)


def transfer_accuracies(targets: list[nn.Module], perturbed: list[torch.Tensor], y: torch.Tensor,
                        exclude_self: bool = False) -> np.ndarray:
    """``acc[t, s, e]``: accuracy of ``targets[t]`` on ``perturbed[s][e]`` (``[E, N, ...]`` each, labels ``y``).

    With ``exclude_self`` (targets and sources are the same models) the diagonal ``s = t`` is NaN.
    """
    E, N = perturbed[0].shape[:2]
    stacked = torch.stack(perturbed).flatten(0, 2)  # [S * E * N, ...]
    acc = np.empty((len(targets), len(perturbed), E))
    for t, model in enumerate(targets):
        pred = predict(model, stacked, batch_size=8192).view(len(perturbed), E, N)
        acc[t] = (pred == y.view(1, 1, N)).double().mean(dim=2).numpy()
        if exclude_self:
            acc[t, t] = np.nan
    return acc


def as_multiclass_linear(model: LinearScores) -> MultiClassLinear:
    """The ``argmax(W x + b)`` classifier of :mod:`pyadvt.theory` computing the same labels as ``model``."""
    return MultiClassLinear(model.linear.weight.detach().double().numpy(), model.linear.bias.detach().double().numpy())


def theorem9_on_digits(svms: list[LinearScores], subsets: list[TensorData], k: int, l: int) -> dict:
    """Seed 003 Theorem 9 on real data: the first two SVMs and their (independent) training subsets.

    Reports the set S (points of both subsets with labels k, l that both SVMs classify correctly with
    pairwise margin >= 1), its sizes against the (here vacuous) bound, and whether the max-margin direction
    of S is adversarial for both SVMs at every point of S (claim 2, checked exactly).
    """
    hs = [as_multiclass_linear(m) for m in svms[:2]]
    Xs = [d.x.flatten(1).double().numpy() for d in subsets[:2]]
    ys = [d.y.numpy() for d in subsets[:2]]
    res = check_theorem9(Xs[0], ys[0], hs[0], Xs[1], ys[1], hs[1], k, l)
    return {"k": k, "l": l, "size_S": int(res.in_S.sum()), "sizes": list(res.sizes), "n": res.n,
            "bound": res.bound, "rho": res.rho, "B": res.B, "R": res.R, "claim1_holds": res.claim1_holds,
            "claim2_holds": res.claim2_holds, "n_violations": int(res.violations.size)}


def _stats(acc_te: np.ndarray) -> dict:
    """Mean over targets (and the min/max band) of each target's accuracy, itself pooled over sources."""
    per_target = np.nanmean(acc_te, axis=1)  # [T, E]
    return {"mean": per_target.mean(0).tolist(), "min": per_target.min(0).tolist(), "max": per_target.max(0).tolist()}


def ordering(curves: dict) -> dict:
    """The paper's three qualitative claims from mean accuracies over the eps grid (module docstring)."""
    avg = {f"{t}<-{s}": float(np.mean(curves[t][s]["mean"])) for t in FAMILIES for s in SOURCES}
    drop = {k: avg[f"{k.split('<-')[0]}<-random"] - v for k, v in avg.items()}
    svm_strongest = avg["svm<-svm"] < avg["svm<-nn"] and avg["svm<-svm"] < avg["svm<-random"]
    nn_svm_ratio = drop["svm<-nn"] / drop["svm<-svm"] if drop["svm<-svm"] > 0 else float("nan")
    svm_nn_ratio = drop["nn<-svm"] / drop["nn<-nn"] if drop["nn<-nn"] > 0 else float("nan")
    out = {f"mean_acc[{k}]": v for k, v in avg.items()}
    out.update({
        "svm_to_svm_strongest": bool(svm_strongest),
        "nn_to_svm_relative_effect": nn_svm_ratio,
        "nn_to_svm_well_above_random": bool(nn_svm_ratio >= EFFECT_THRESHOLD),
        "svm_to_nn_relative_effect": svm_nn_ratio,
        "svm_to_nn_barely_above_random": bool(svm_nn_ratio < EFFECT_THRESHOLD),
    })
    out["paper_ordering"] = bool(out["svm_to_svm_strongest"] and out["nn_to_svm_well_above_random"]
                                 and out["svm_to_nn_barely_above_random"])
    return out


def _validate(cfg: dict) -> None:
    eps = cfg["eps"]
    if not eps or any((not isinstance(e, (int, float))) or not 0 < e <= 1 for e in eps):
        raise ValueError(f"'eps' must be a non-empty list of budgets in (0, 1], got {eps}")
    if cfg["models"] < 2:
        raise ValueError(f"'models' must be >= 2 (transfer excludes a model's own examples), got {cfg['models']}")
    if cfg["subset_size"] < 10:
        raise ValueError(f"'subset_size' must be >= 10, got {cfg['subset_size']}")
    if cfg["classes"] and len(cfg["classes"]) < 2:
        raise ValueError(f"'classes' must be empty (all digits) or list >= 2 digits, got {cfg['classes']}")
    if cfg["n_eval"] < 1:
        raise ValueError(f"'n_eval' must be >= 1, got {cfg['n_eval']}")
    pair = cfg["theory_pair"]
    if len(pair) != 2 or pair[0] == pair[1] or any(not isinstance(c, int) or not 0 <= c <= 9 for c in pair):
        raise ValueError(f"'theory_pair' must be two different digits, got {pair}")
    if cfg["threads"] < 1:
        raise ValueError(f"'threads' must be >= 1, got {cfg['threads']}")


def run(config: dict | None = None, out_dir: str | Path = "results/geometry", progress: bool = True) -> dict:
    """Run the experiment (``config`` merged over :data:`DEFAULTS`); write ``result.json``, CSV, report + PNGs."""
    cfg = resolve_config(DEFAULTS, config)
    _validate(cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg["threads"])
    try:
        return _run(cfg, Path(out_dir), progress)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: dict, out_dir: Path, progress: bool) -> dict:
    """config -> data and model specs -> cells (models, Theorem 9, PGD examples) -> transfer curves -> report.

    Every trained model, every model's PGD examples and the Theorem-9 check is a cell of ``out_dir/cells``,
    stored as soon as it finishes; keys carry a digest of exactly what each depends on, so a rerun after a
    crash resumes and a changed setting (e.g. ``eps``) recomputes only the cells it affects.
    """
    timings, store = Timings(), CellStore(out_dir / "cells")
    s = _setup(cfg)
    with timings("train"):
        models, clean, keys = _train_models(cfg, s, store, progress)
    with timings("theorem 9"):
        thm9 = _theorem9_cell(cfg, s, models["svm"], keys, store)
    with timings("attacks"):
        perturbed = _perturbations(cfg, s, models, keys, store, progress)
    with timings("transfer evaluation"):
        curves, whitebox = transfer_curves(models, perturbed, s.y)
    result = _result(cfg, s, curves, whitebox, clean, thm9, timings)
    write_csv(out_dir / "geometry.csv", CSV_COLUMNS, _rows(curves, result["data"]["eps"]))
    publish(result, out_dir, title="geometry (seed 003, Fig. 4)")
    return result


@dataclass
class _Setup:
    """The data of one run: the training split, the evaluated test images ``x [n_eval, C, H, W]`` / ``y``,
    and the ``2 K`` training subsets (SVM ``i`` trains on ``subsets[i]``, network ``i`` on ``subsets[K + i]``)."""

    train: TensorData
    x: torch.Tensor
    y: torch.Tensor
    subsets: list[TensorData]


def _setup(cfg: dict) -> _Setup:
    train, test = experiment_data(cfg["dataset"], seed=cfg["seed"], classes=cfg["classes"] or None)
    if cfg["subset_size"] > len(train):
        raise ValueError(f"'subset_size' {cfg['subset_size']} exceeds the {len(train)} training images")
    n_eval = min(cfg["n_eval"], len(test))
    rng = np.random.default_rng(cfg["seed"])
    idx = [np.sort(rng.choice(len(train), cfg["subset_size"], replace=False)) for _ in range(2 * cfg["models"])]
    return _Setup(train, test.x[:n_eval], test.y[:n_eval], [train.subset(i) for i in idx])


def _nn_spec_and_data(cfg: dict, s: _Setup, i: int) -> tuple[ModelSpec, TensorData]:
    return nn_spec(cfg["nn"], s.train.num_classes, cfg["seed"] + i), s.subsets[cfg["models"] + i]


def _model_keys(cfg: dict, s: _Setup) -> dict[tuple[str, int], tuple]:
    """``(family, i) -> cell key``: a network's is its ``ModelSpec`` key (spec + training-data digest), an
    SVM's the digest of its settings, seed and training data."""
    keys = {}
    for i in range(cfg["models"]):
        keys["svm", i] = ("model", "svm", i, config_digest(cfg["svm"], cfg["seed"] + i, data_digest(s.subsets[i])))
        spec, data = _nn_spec_and_data(cfg, s, i)
        keys["nn", i] = spec.key(data)
    return keys


def _train_models(cfg: dict, s: _Setup, store: CellStore, progress: bool) -> tuple[dict, dict, dict]:
    """Train (or load) the ``K`` SVMs and ``K`` networks, one cell each (order: svm 0, nn 0, svm 1, ...).

    Returns ``({family: [model]}, {family: [clean accuracy on x]}, {(family, i): cell key})``.
    """
    K, keys = cfg["models"], _model_keys(cfg, s)
    cell_of = {key: fi for fi, key in keys.items()}

    def train_cell(key):
        f, i = cell_of[key]
        if f == "nn":
            spec, data = _nn_spec_and_data(cfg, s, i)
            train_nn(data, cfg["nn"], s.train.num_classes, spec.seed, store)
            return store.get(key)
        m = train_svm(s.subsets[i], cfg["svm"]["C"], cfg["svm"]["max_iter"], cfg["seed"] + i)
        return store.put(key, {"family": "svm", "index": i}, checkpoint=m.state_dict())

    run_cells([keys[f, i] for i in range(K) for f in FAMILIES], train_cell, store, progress=progress,
              desc="train SVMs + NNs")
    models = {"svm": [_load_svm(store, keys["svm", i]) for i in range(K)],
              "nn": [train_or_load(*_nn_spec_and_data(cfg, s, i), store)[0] for i in range(K)]}
    clean = {f: [float((predict(m, s.x) == s.y).double().mean()) for m in models[f]] for f in FAMILIES}
    return models, clean, keys


def _load_svm(store: CellStore, key: tuple) -> LinearScores:
    state = store.load_checkpoint(key)
    w = state["linear.weight"]
    m = LinearScores(np.zeros(tuple(w.shape)), np.zeros(w.shape[0]))
    m.load_state_dict(state)
    return m.eval()


def _theory_labels(cfg: dict) -> tuple[list[int], tuple[int, int]]:
    """The digit of each label, and the labels ``(k, l)`` of ``theory_pair`` (``(0, 1)`` if not in the task)."""
    digit_of = list(cfg["classes"]) if cfg["classes"] else list(range(10))
    pair = [digit_of.index(c) for c in cfg["theory_pair"] if c in digit_of]
    return digit_of, (tuple(pair) if len(pair) == 2 else (0, 1))


def _theorem9_cell(cfg: dict, s: _Setup, svms: list[LinearScores], keys: dict, store: CellStore) -> dict:
    cell = ("theorem9", config_digest(keys["svm", 0], keys["svm", 1], cfg["theory_pair"], cfg["classes"]))
    k, l = _theory_labels(cfg)[1]
    return run_cells([cell], lambda _: theorem9_on_digits(svms, s.subsets[:2], k, l), store, progress=False)[cell]


def _perturbations(cfg: dict, s: _Setup, models: dict, keys: dict, store: CellStore, progress: bool) -> dict:
    """``{"svm" | "nn" | "random": [E, N, ...] per source model}``: each model's PGD examples (one cell per
    model, keyed by the model's key, the attack, the budgets and the evaluated images) and random signs."""
    K, seed, eps, ac = cfg["models"], cfg["seed"], [float(e) for e in cfg["eps"]], cfg["attack"]
    x_key = data_digest(TensorData(s.x, s.y, s.train.num_classes))
    cells = {(f, i): ("pgd", f, i, config_digest(keys[f, i], ac, eps, x_key)) for i in range(K) for f in FAMILIES}
    by_cell = {c: fi for fi, c in cells.items()}

    def attack_cell(cell):
        f, i = by_cell[cell]
        adv = adversarial_examples(models[f][i], s.x, s.y, eps, ac["steps"], ac["random_start"],
                                   seed + 1000 * (f == "nn") + i)
        return store.put(cell, {"shape": list(adv.shape)}, checkpoint={"x_adv": adv})

    run_cells([cells[f, i] for f in FAMILIES for i in range(K)], attack_cell, store, progress=progress, desc="PGD")
    out = {f: [store.load_checkpoint(cells[f, i])["x_adv"] for i in range(K)] for f in FAMILIES}
    out["random"] = [random_sign_perturbations(s.x, eps, seed + 7919 + i) for i in range(K)]
    return out


def transfer_curves(models: dict[str, list[nn.Module]], perturbed: dict[str, list[torch.Tensor]],
                    y: torch.Tensor) -> tuple[dict, dict]:
    """Fig. 4's curves: ``curves[target family][perturbation source]`` = :func:`_stats` of the targets'
    accuracies (a target never counts its own, white-box, examples), and ``whitebox[family]`` = the mean
    accuracy of each model on its own PGD examples per eps."""
    curves: dict = {t: {} for t in FAMILIES}
    whitebox: dict = {}
    for t in FAMILIES:
        for src in SOURCES:
            acc = transfer_accuracies(models[t], perturbed[src], y, exclude_self=False)
            if src == t:
                own = np.arange(len(models[t]))
                whitebox[t] = acc[own, own].mean(0).tolist()
                acc[own, own] = np.nan
            curves[t][src] = _stats(acc)
    return curves, whitebox


CSV_COLUMNS = ["target_family", "perturbation", "eps", "mean_accuracy", "min_accuracy", "max_accuracy"]


def _rows(curves: dict, eps: list[float]) -> list[list]:
    return [[t, src, e, curves[t][src]["mean"][j], curves[t][src]["min"][j], curves[t][src]["max"][j]]
            for t in FAMILIES for src in SOURCES for j, e in enumerate(eps)]


def _result(cfg: dict, s: _Setup, curves: dict, whitebox: dict, clean: dict, thm9: dict, timings) -> dict:
    """The ``pyadvt.result/1`` dict: summary (the paper's ordering), figure specs, tables and notes."""
    K, eps = cfg["models"], [float(e) for e in cfg["eps"]]
    summary = ordering(curves)
    summary.update({"theorem9_claim2_holds": thm9["claim2_holds"], "theorem9_size_S": thm9["size_S"]})
    summary.update({f"clean_acc_mean[{f}]": float(np.mean(clean[f])) for f in FAMILIES})
    digit_of = _theory_labels(cfg)[0]
    task = "binary " + "-vs-".join(map(str, cfg["classes"])) if len(cfg["classes"]) == 2 else (
        f"{s.train.num_classes}-class")
    data = {"eps": eps, "curves": curves, "whitebox": whitebox, "clean_accuracy": clean, "task": task,
            "n_eval": int(s.x.shape[0]), "theorem9": thm9}
    tables = [{"title": "accuracy of each target family under each perturbation (mean [min, max] over targets)",
               "columns": ["target", "perturbation", "eps", "mean", "min", "max"], "rows": _rows(curves, eps)},
              {"title": "white-box accuracy (each model on its own PGD examples), mean over models",
               "columns": ["family"] + [f"eps={e:g}" for e in eps], "rows": [[f] + whitebox[f] for f in FAMILIES]},
              {"title": "clean test accuracy per model", "columns": ["family"] + [str(i) for i in range(K)],
               "rows": [[f] + clean[f] for f in FAMILIES]},
              {"title": f"Theorem 9 on SVMs 0 and 1 (labels {digit_of[thm9['k']]} vs {digit_of[thm9['l']]}): "
                        "shared max-margin direction on S",
               "columns": ["|S|", "|S n S(1)|", "|S n S(2)|", "bound", "rho", "B", "R", "claim 1", "claim 2"],
               "rows": [[thm9["size_S"], *thm9["sizes"], thm9["bound"], thm9["rho"], thm9["B"], thm9["R"],
                         thm9["claim1_holds"], thm9["claim2_holds"]]]}]
    notes = [f"seed 003 (Charles et al., AISTATS 2019) Fig. 4 on {cfg['dataset']['name']}, {task} task; "
             f"{K} LinearSVCs and {K} {cfg['nn']['arch']} nets on random {cfg['subset_size']}-image "
             f"subsets; L-inf PGD-{cfg['attack']['steps']} adversaries; a target never sees its own examples.",
             "paper ordering: SVM->SVM strongest; NN->SVM well above random; SVM->NN barely above "
             f"random (relative-effect threshold {EFFECT_THRESHOLD:.2f}); here: "
             f"{'reproduced' if summary['paper_ordering'] else 'NOT fully reproduced'}."]
    return make_result("geometry", cfg, data, timings=timings, seeds=[cfg["seed"]], summary=summary,
                       figures=fig4_specs(curves, eps, K), tables=tables, notes=notes)


add_arguments, main = experiment_cli("geometry", run, DEFAULTS, QUICK, presets=DATASET_PRESETS)


__all__ = ["DEFAULTS", "QUICK", "DATASET_PRESETS", "LinearScores", "adversarial_examples", "add_arguments",
           "as_multiclass_linear", "main", "nn_spec", "ordering", "random_sign_perturbations", "run",
           "theorem9_on_digits", "train_nn", "train_svm", "transfer_accuracies", "transfer_curves"]
