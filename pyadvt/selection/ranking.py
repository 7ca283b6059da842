"""Rank candidate sources and attack surrogates: every transferability score in one table per candidate.

* :func:`rank_sources` - which pretrained source will transfer best to a target task? Each source
  gets the field's estimators on its features / softmax / predictions over the target data
  (:data:`~pyadvt.selection.estimators.ESTIMATORS`: LEEP, NLEEP, NCE, H-score and its shrinkage form,
  LogME, TransRate, GBC, SFDA; docs/theory.md §11) and seed 000's adversarial transferability to a
  cheap *reference* model trained on the target data: ``tau1``, ``tau2``, ``tau1 * tau2``
  (docs/theory.md §2) and the eq. (2) loss (reference loss on PGD examples made on the source
  against its own prediction). Optionally every source is linear-probed and each score's agreement
  with the probe accuracy reported (Spearman with a 95% CI, weighted Kendall tau, rel@1).
* :func:`rank_surrogates` - seed 001's use: which surrogate makes the most transferable attacks?
  Attack success rate on every target, plus the seed's predictors (smoothness ``sigma_F``, mean
  gradient similarity) and their Spearman correlations with the ASR.

Each candidate is one resumable cell (:class:`~pyadvt.utils.sweep.CellStore`), sharded over
``torchrun`` ranks (:func:`~pyadvt.utils.distributed.map_cells`). ``pyadvt rank-sources`` /
``pyadvt rank-surrogates`` are the command-line front ends (``--scores`` chooses the columns).

Example::

    from pyadvt.selection import rank_sources
    ranking = rank_sources({"a": net_a, "b": net_b}, reference, target_test, target_train=target_train)
    ranking["rows"][0]["name"]   # best source by tau1 * tau2
    ranking["rows"][0]["logme"]  # its LogME on the target training data
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from pyadvt.attacks import build_attack
from pyadvt.data import TensorData
from pyadvt.metrics.empirical_transfer import empirical_transferability
from pyadvt.metrics.similarity import gradient_similarity
from pyadvt.metrics.smoothness import smoothness
from pyadvt.metrics.tau2 import adversarial_transferability
from pyadvt.metrics.transfer_rates import transferability
from pyadvt.models.output import model_logits
from pyadvt.train import evaluate
from pyadvt.transfer.finetune import linear_probe
from pyadvt.selection.agreement import agreement
from pyadvt.selection.estimators import ESTIMATORS, estimate
from pyadvt.selection.extract import extract, split_model
from pyadvt.utils import distributed
from pyadvt.utils.stats import spearman as stats_spearman
from pyadvt.utils.sweep import CellStore, config_digest
from pyadvt.utils.validation import InvalidValueError

__all__ = ["ADVERSARIAL_SCORES", "SOURCE_SCORES", "SURROGATE_SCORES", "spearman_ci", "rank_sources",
           "rank_surrogates", "score_source"]

#: seed 000's scores of a source against the reference model (docs/theory.md §2)
ADVERSARIAL_SCORES = ("tau1", "tau2", "tau1*tau2", "eq2_loss")
#: every column ``rank_sources`` can fill: the estimators, then the adversarial scores
SOURCE_SCORES = tuple(ESTIMATORS) + ADVERSARIAL_SCORES
#: the predictors ``rank_surrogates`` can add to the measured attack success rate (seed 001)
SURROGATE_SCORES = ("smoothness", "similarity")


def _check_scores(scores, allowed: Sequence[str], what: str) -> list[str] | None:
    if scores is None:
        return None
    if isinstance(scores, str):
        scores = [s.strip() for s in scores.split(",") if s.strip()]
    bad = [s for s in scores if s not in allowed]
    if bad or not scores:
        raise InvalidValueError(f"unknown {what} score(s) {', '.join(map(repr, bad)) or '(none given)'}; "
                                f"'scores' takes a list from: {', '.join(allowed)}")
    return list(dict.fromkeys(scores))


def _splittable(model: nn.Module) -> bool:
    try:
        split_model(model)
    except (TypeError, ValueError):
        return False
    return True


def spearman_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Spearman rank correlation of ``a`` and ``b`` with a Fisher-z confidence interval.

    The interval uses ``z = atanh(rho)`` with standard error ``sqrt(1.06 / (n - 3))`` (Fieller,
    Hartley & Pearson 1957); pairs with a non-finite entry are dropped. ``rho``/bounds are ``None``
    when fewer than 3 pairs remain (or a side is constant); the bounds need ``n >= 4`` and
    ``|rho| < 1``.

    Example:
        >>> r = spearman_ci([1, 2, 3, 4, 5], [2, 4, 5, 9, 10])
        >>> r["rho"], r["n"], r["lower"] < 1.0
        (1.0, 5, True)
    """
    c = stats_spearman(a, b, ci="fisher", confidence=confidence).summary()  # pyadvt.utils.stats: one NaN policy
    return {"rho": None if c["r"] is None else round(c["r"], 12), "lower": c["lower"], "upper": c["upper"],
            "p": c["p"], "n": c["n"], "confidence": confidence}


def _check_compatible(models: Mapping[str, nn.Module], x: torch.Tensor, role: str) -> None:
    for name, model in models.items():
        try:
            with torch.no_grad():
                was = model.training
                model.eval()
                out = model_logits(model(x[:1]), name=f"{role} {name!r}")
                model.train(was)
        except Exception as exc:  # noqa: BLE001 - any failure here means "incompatible with the data"
            raise ValueError(f"incompatible models: {role} {name!r} cannot take inputs of shape "
                             f"{tuple(x.shape[1:])}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from None
        if out.ndim != 2:
            raise ValueError(f"incompatible models: {role} {name!r} must return [B, classes] logits, "
                             f"got shape {tuple(out.shape)}")


def _ranks(values: Sequence[float | None], descending: bool = True) -> list[int | None]:
    """1-based ranks (1 = best); ``None`` values are unranked."""
    idx = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    idx.sort(key=lambda i: -values[i] if descending else values[i])
    out: list[int | None] = [None] * len(values)
    for r, i in enumerate(idx, 1):
        out[i] = r
    return out


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def score_source(source: nn.Module, reference: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 estimator_data: Any = None, scores: Sequence[str] | None = None, eps: float = 0.1, steps: int = 10,
                 seed: int = 0, batch_size: int = 256) -> dict[str, Any]:
    """Every score of one candidate source: ``{column: value or None}`` (one row of :func:`rank_sources`).

    Args:
        source: the candidate; reference: a model trained on the target task.
        x, y: target evaluation inputs ``[B, C, H, W]`` and labels ``[B]`` (adversarial scores).
        estimator_data: labelled target data the estimators read (tensor pair, ``TensorData``,
            ``Dataset`` or ``DataLoader``; default ``(x, y)``).
        scores: columns from :data:`SOURCE_SCORES` (default all; the estimators are ``None`` for a
            source without a features/head split).
        eps, steps, seed: the eq. 2 attack (L-inf PGD against the source's own prediction).

    Besides the columns the dict holds ``score`` (= ``tau1*tau2``), ``eq2_accuracy`` and
    ``n_undefined`` (samples where tau1 is undefined) when those were computed.

    Example:
        >>> import torch
        >>> from pyadvt.models import build
        >>> x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 4
        >>> row = score_source(build("mlp", num_classes=4), build("mlp", num_classes=4), x, y, scores=["logme", "tau1"])
        >>> sorted(k for k, v in row.items() if v is not None)
        ['logme', 'n_undefined', 'score', 'tau1']
    """
    columns = _check_scores(scores, SOURCE_SCORES, "source") or list(SOURCE_SCORES)
    estimators = [c for c in columns if c in ESTIMATORS]
    out: dict[str, Any] = {c: None for c in columns}
    out["score"] = None
    if estimators and _splittable(source):
        data = (x, y) if estimator_data is None else estimator_data
        out.update(estimate(extract(source, data, batch_size=batch_size), scores=estimators))
    if {"tau1", "tau2", "tau1*tau2"} & set(columns):
        tr = adversarial_transferability(source, reference, x)
        t1, t2 = _finite(tr.tau1.tau1), _finite(tr.tau2.tau2)
        prod = None if t1 is None or t2 is None else t1 * t2
        out.update({k: v for k, v in (("tau1", t1), ("tau2", t2), ("tau1*tau2", prod)) if k in columns})
        out.update(score=prod, n_undefined=int(tr.tau1.n_undefined))
    if "eq2_loss" in columns:
        emp = empirical_transferability(source, reference, x, y, eps=[eps], steps=steps, seed=seed)
        out.update(eq2_loss=_finite(emp.transfer_loss()[0]), eq2_accuracy=_finite(emp.correct[0].double().mean()))
    return out


def rank_sources(sources: Mapping[str, nn.Module], reference: nn.Module, target_test: TensorData, *,
                 target_train: TensorData | None = None, eps: float = 0.1, steps: int = 10, n_eval: int = 200,
                 probe: bool = True, probe_epochs: int = 5, probe_lr: float = 0.05, seed: int = 0,
                 scores: Sequence[str] | str | None = None, batch_size: int = 256,
                 store: CellStore | None = None, progress: bool = True, cell_prefix: tuple = ()) -> dict:
    """Score and rank ``sources`` for the target task: the field's estimators and adversarial transferability.

    Args:
        sources: ``{name: classifier}`` taking the target inputs ``[B, C, H, W]`` (any number of classes).
        reference: a model trained on the target task (the cheap proxy, seed 000).
        target_test: target evaluation data; the first ``n_eval`` samples are used.
        target_train: target training data for the linear-probe validation (needed when ``probe``).
        eps, steps: L-inf PGD budget and iterations of the eq. (2) attack.
        probe, probe_epochs, probe_lr: linear probing of each source (new head, docs/theory.md §4).
        seed: seed of the attacks and probes; store/progress: resumable cells and tqdm.
        scores: the columns to compute, from :data:`SOURCE_SCORES` (a list or a comma-separated
            string); default all that the models allow: the estimators for every source with a
            ``features``/``head`` split (:func:`~pyadvt.selection.extract.split_model`), and the
            adversarial scores. The estimators read the source on ``target_train`` when given (the
            labelled target data a user has), else on the evaluation samples.
        batch_size: batch of the feature extraction.
        cell_prefix: prepended to the cell keys ``("source", name, digest of the scores)``.

    Returns:
        ``{"rows": [...], "spearman": {...}, "agreement": {...}, "scores": [...], "n_eval": N}``: one row
        per source with every score asked for (``None`` where undefined): the estimator names,
        ``tau1``, ``tau2``, ``tau1*tau2`` (also as ``score``), ``eq2_loss``, ``eq2_accuracy``,
        ``probe_accuracy``, and ``rank_<column>`` (1 = best; higher is better for every score,
        including the eq. 2 loss: the reference suffers more). Rows are sorted by ``tau1 * tau2``
        (or the first score asked for). With ``probe``, ``spearman`` holds :func:`spearman_ci` of each
        score with the probe accuracy and ``agreement`` the mean Kendall / weighted tau / Pearson /
        Spearman / rel@1 of :func:`~pyadvt.selection.agreement.agreement`.
    """
    if not sources:
        raise ValueError("rank_sources needs at least one source model")
    if probe and target_train is None:
        raise ValueError("probe=True needs target_train (the target training data)")
    asked = _check_scores(scores, SOURCE_SCORES, "source")
    x, y = target_test.x[:n_eval], target_test.y[:n_eval]
    _check_compatible({**sources, "(reference)": reference}, x, "source")
    if probe:
        for name, src in sources.items():
            if not isinstance(getattr(src, "head", None), nn.Linear) or getattr(src, "blocks", None) is None:
                raise ValueError(f"incompatible models: source {name!r} has no linear 'head' and 'blocks' for "
                                 "linear probing; wrap it with pyadvt.models.wrap or turn probing off (--no-probe)")
    estimators = [s for s in (asked or ESTIMATORS) if s in ESTIMATORS]
    if asked is not None and estimators:
        for name, src in sources.items():
            if not _splittable(src):
                raise InvalidValueError(f"incompatible models: source {name!r} has no features/head split, which "
                                        f"the estimators {', '.join(estimators)} need; wrap it with "
                                        "pyadvt.models.wrap or leave them out of 'scores'")
    columns = list(asked or SOURCE_SCORES)
    est_data = target_train if target_train is not None else (x, y)
    names = list(sources)

    def cell(key):
        src = sources[key[-2]]
        out = score_source(src, reference, x, y, estimator_data=est_data, scores=columns, eps=eps, steps=steps,
                           seed=seed, batch_size=batch_size)
        if probe:
            probed = linear_probe(src, target_train, num_classes=target_train.num_classes, epochs=probe_epochs,
                                  lr=probe_lr, seed=seed)
            out["probe_accuracy"] = _finite(evaluate(probed.model, target_test)["accuracy"])
        return out

    tag = config_digest(columns)
    keys = {n: (*cell_prefix, "source", n, tag) for n in names}
    cells = distributed.map_cells(list(keys.values()), cell, store, progress=progress, desc="rank sources")
    rows = [dict(name=n, **cells[keys[n]]) for n in names]
    ranked = [(f"rank_{c}", c) for c in columns] + [("rank_score", "score")] * ("tau1*tau2" in columns)
    ranked += [("rank_eq2", "eq2_loss")] * ("eq2_loss" in columns) + [("rank_probe", "probe_accuracy")] * probe
    for key, col in ranked:
        for row, r in zip(rows, _ranks([row.get(col) for row in rows])):
            row[key] = r
    spearman, agree = {}, {}
    if probe:
        acc = [r["probe_accuracy"] for r in rows]
        for col in columns:
            label = "score" if col == "tau1*tau2" else col
            spearman[f"{label}_vs_probe"] = spearman_ci([_nan(r[col]) for r in rows], [_nan(a) for a in acc])
            ok = [i for i, r in enumerate(rows) if r[col] is not None and acc[i] is not None]
            if len(ok) >= 2:
                agree[col] = agreement([rows[i][col] for i in ok], [acc[i] for i in ok], n_boot=0).mean
    lead = "rank_score" if "tau1*tau2" in columns else f"rank_{columns[0]}"
    rows.sort(key=lambda r: (r[lead] is None, r[lead] or 0))
    return {"rows": rows, "spearman": spearman, "agreement": agree, "scores": columns, "n_eval": int(x.shape[0]),
            "eps": eps}


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def rank_surrogates(surrogates: Mapping[str, nn.Module], targets: Mapping[str, nn.Module], data: TensorData, *,
                    attack: str = "pgd", eps: float = 0.1, steps: int = 10, norm: str = "linf", n_eval: int = 200,
                    n_smooth: int = 64, smoothness_method: str = "lanczos", seed: int = 0,
                    scores: Sequence[str] | str | None = None,
                    store: CellStore | None = None, progress: bool = True, cell_prefix: tuple = ()) -> dict:
    """Measure each surrogate's attack success on every target and its seed-001 predictors.

    Args:
        surrogates, targets: ``{name: classifier}`` on the same inputs and labels. A target with the
            same name as the surrogate (the same model) is the white-box case and is left out of the
            surrogate's mean ASR.
        data: evaluation data (first ``n_eval`` samples); labels are the task's true labels.
        attack, eps, steps, norm: the attack (:func:`pyadvt.attacks.build_attack`).
        n_smooth, smoothness_method: samples and method of the smoothness ``sigma_F`` (docs/theory.md §3).
        seed, store, progress: attack seed, resumable cells and tqdm.
        scores: the predictors to compute besides the ASR, from :data:`SURROGATE_SCORES` (default
            both); one left out is ``None`` in the rows.
        cell_prefix: prepended to the cell keys ``("surrogate", name, digest of the scores)``.

    Returns:
        ``{"rows": [...], "asr": [[...]], "rate": [[...]], "similarity": [[...]], "surrogates": [...],
        "targets": [...], "spearman": {...}}``: rows sorted by mean transfer ASR (best first) with
        ``accuracy``, ``fooling``, ``mean_asr``, ``smoothness``, ``mean_similarity``; matrices are
        surrogate x target; ``spearman`` correlates each predictor with the mean ASR over surrogates.
    """
    if not surrogates or not targets:
        raise ValueError("rank_surrogates needs at least one surrogate and one target")
    predictors = _check_scores(scores, SURROGATE_SCORES, "surrogate") or list(SURROGATE_SCORES)
    x, y = data.x[:n_eval], data.y[:n_eval]
    _check_compatible(surrogates, x, "surrogate")
    _check_compatible(targets, x, "target")
    tnames = list(targets)

    def cell(key):
        sur = surrogates[key[-2]]
        atk = build_attack(attack, sur, eps, steps=steps, norm=norm, seed=seed)
        x_adv = atk(x, y)
        per = {}
        for t in tnames:
            rates = transferability(sur, targets[t], x, y, x_adv)
            per[t] = {"asr": _finite(rates.asr), "rate": _finite(rates.rate),
                      "similarity": _finite(gradient_similarity(sur, targets[t], x, y).mean)
                      if "similarity" in predictors else None}
        out = {"accuracy": _finite(rates.acc_surrogate), "fooling": _finite(rates.fooling), "smoothness": None,
               "smoothness_max": None, "targets": per}
        if "smoothness" in predictors:
            sm = smoothness(sur, x[:n_smooth], y[:n_smooth], method=smoothness_method, seed=seed, progress=False)
            out.update(smoothness=_finite(sm.mean), smoothness_max=_finite(sm.max))
        return out

    snames = list(surrogates)
    tag = config_digest(predictors)
    skey = {n: (*cell_prefix, "surrogate", n, tag) for n in snames}
    cells = distributed.map_cells(list(skey.values()), cell, store, progress=progress, desc="rank surrogates")
    rows = []
    for n in snames:
        c = cells[skey[n]]
        others = [t for t in tnames if t != n] or tnames
        asr = [c["targets"][t]["asr"] for t in others if c["targets"][t]["asr"] is not None]
        sim = [c["targets"][t]["similarity"] for t in others if c["targets"][t]["similarity"] is not None]
        rows.append({"name": n, "accuracy": c["accuracy"], "fooling": c["fooling"],
                     "mean_asr": float(np.mean(asr)) if asr else None, "smoothness": c["smoothness"],
                     "smoothness_max": c["smoothness_max"],
                     "mean_similarity": float(np.mean(sim)) if sim else None})
    mean_asr = [_nan(r["mean_asr"]) for r in rows]
    spearman = {f"{col}_vs_asr": spearman_ci([_nan(r[col]) for r in rows], mean_asr)
                for col in ("smoothness", "mean_similarity", "accuracy", "fooling")}
    for row, r in zip(rows, _ranks([r["mean_asr"] for r in rows])):
        row["rank_asr"] = r
    for row, r in zip(rows, _ranks([r["smoothness"] for r in rows], descending=False)):
        row["rank_smoothness"] = r  # smoother (smaller sigma_F) predicts more transferable (seed 001)
    for row, r in zip(rows, _ranks([r["mean_similarity"] for r in rows])):
        row["rank_similarity"] = r

    def matrix(field: str) -> list[list]:
        return [[cells[skey[s]]["targets"][t][field] for t in tnames] for s in snames]

    rows.sort(key=lambda r: (r["rank_asr"] is None, r["rank_asr"] or 0))
    return {"rows": rows, "surrogates": snames, "targets": tnames, "asr": matrix("asr"), "rate": matrix("rate"),
            "similarity": matrix("similarity"), "spearman": spearman, "scores": ["asr", *predictors],
            "n_eval": int(x.shape[0]),
            "attack": {"name": attack, "eps": eps, "steps": steps, "norm": norm}}
