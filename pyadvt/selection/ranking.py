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

Every data argument takes a ``TensorData``, an ``(x, y)`` pair, a ``Dataset`` of ``(x, y)`` items (an
ImageFolder) or a ``DataLoader``: the ``n_eval`` evaluation samples are held in memory, the feature
extraction and the probes stream the rest one batch at a time (docs/theory.md §9). A candidate that
fails inside a metric is recorded (``rows[i]["failed"]``, ``result["failed"]``) and the others ranked.

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
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pyadvt.attacks import build_attack
from pyadvt.data import TensorData
from pyadvt.metrics.empirical_transfer import empirical_transferability
from pyadvt.metrics.similarity import gradient_similarity
from pyadvt.metrics.smoothness import smoothness
from pyadvt.metrics.tau2 import adversarial_transferability
from pyadvt.metrics.transfer_rates import attack_transferability
from pyadvt.models.output import model_logits
from pyadvt.train import evaluate
from pyadvt.transfer.finetune import linear_probe
from pyadvt.selection._failures import failure_line, guarded
from pyadvt.selection._samples import eval_samples, num_classes_of
from pyadvt.selection.agreement import agreement
from pyadvt.selection.candidate_scores import SourceScore, SurrogateScore
from pyadvt.selection.estimators import ESTIMATORS, estimate
from pyadvt.selection.extract import extract, split_model
from pyadvt.selection.ranking_result import RankingResult
from pyadvt.utils import distributed
from pyadvt.utils.stats import spearman as stats_spearman
from pyadvt.utils.sweep import CellStore, config_digest
from pyadvt.utils.modes import model_device
from pyadvt.utils.validation import InvalidValueError, check_inputs

__all__ = ["ADVERSARIAL_SCORES", "SOURCE_SCORES", "SURROGATE_SCORES", "spearman_ci", "rank_sources",
           "rank_surrogates", "score_source", "score_surrogate"]

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
    ``|rho| < 1``. Used for the rankings of docs/theory.md §11.9 (through :mod:`pyadvt.utils.stats`).

    Raises:
        ValueError: (``InvalidValueError``) when ``a`` and ``b`` are not 1-D of one length, or when
            ``confidence`` is not a number in ``(0, 1)``.

    Example:
        >>> r = spearman_ci([1, 2, 3, 4, 5], [2, 4, 5, 9, 10])
        >>> r["rho"], r["n"], r["lower"] < 1.0
        (1.0, 5, True)
    """
    c = stats_spearman(a, b, ci="fisher", confidence=confidence).summary()  # pyadvt.utils.stats: one NaN policy
    return {"rho": None if c["r"] is None else round(c["r"], 12), "lower": c["lower"], "upper": c["upper"],
            "p": c["p"], "n": c["n"], "confidence": confidence}


def _incompatible(models: Mapping[str, nn.Module], x: torch.Tensor) -> dict[str, str]:
    """``{name: why}`` for the models that cannot map one evaluation image to ``[1, classes]`` logits."""
    bad = {}
    for name, model in models.items():
        try:
            with torch.no_grad():
                was = model.training
                model.eval()
                out = model_logits(model(x[:1]), name=repr(name))
                model.train(was)
        except Exception as exc:  # noqa: BLE001 - any failure here means "incompatible with the data"
            bad[name] = (f"cannot take inputs of shape {tuple(x.shape[1:])}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            continue
        if out.ndim != 2:
            bad[name] = f"must return [B, classes] logits, got shape {tuple(out.shape)}"
    return bad


def _check_compatible(models: Mapping[str, nn.Module], x: torch.Tensor, role: str, *,
                      candidates: bool = False) -> dict[str, dict]:
    """Raise ``ValueError`` for an incompatible model; for ``candidates``, only when every one is
    (the others are returned as failure records ``{name: {"forward": {...}}}`` and ranked without them)."""
    bad = _incompatible(models, x)
    if bad and (not candidates or len(bad) == len(models)):
        name = next(iter(bad))
        raise ValueError(f"incompatible models: {role} {name!r} {bad[name]}")
    return {n: {"forward": {"message": f"incompatible models: {why}", "traceback": ""}} for n, why in bad.items()}


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


def _eval_set(data: Any, y: torch.Tensor | None, n_eval: int | None, seed: int | None, device: torch.device
              ) -> TensorData:
    """The evaluation samples (at most ``n_eval``) of a tensor pair or any data source, on ``device``."""
    if isinstance(data, torch.Tensor):
        if y is None:
            raise InvalidValueError("'y' (labels [B]) is needed with a tensor 'x'; or pass a labelled data source "
                                    "(TensorData, Dataset, DataLoader) as 'x' with y=None")
        data = (data, y)
    elif y is not None:
        raise InvalidValueError(f"'y' must be None when 'x' is a {type(data).__name__} (its labels are read from it)")
    return eval_samples(data, n_eval or 200, seed=seed).to(device)


def score_source(source: nn.Module, reference: nn.Module, x: Any, y: torch.Tensor | None = None, *,
                 estimator_data: Any = None, scores: Sequence[str] | None = None, eps: float = 0.1, steps: int = 10,
                 seed: int = 0, batch_size: int = 256, n_eval: int | None = None, eval_seed: int | None = None,
                 errors: dict | None = None) -> SourceScore:
    """Every score of one candidate source: ``{column: value or None}`` (one row of :func:`rank_sources`).

    Args:
        source: the candidate; reference: a model trained on the target task.
        x, y: target evaluation inputs ``[B, C, H, W]`` and labels ``[B]``, or ``x`` any labelled data
            source (``TensorData``, ``Dataset``, ``DataLoader``, an ImageFolder; ``y=None``) of which
            ``n_eval`` samples (default 200; all of a tensor ``x``) are read into memory for the
            adversarial scores (:func:`~pyadvt.selection._samples.eval_samples`, ``eval_seed``: a
            seeded random subset instead of the first ones).
        estimator_data: labelled target data the estimators read, streamed one batch at a time
            (any data kind; default the evaluation samples).
        scores: columns from :data:`SOURCE_SCORES` (default all; the estimators are ``None`` for a
            source without a features/head split).
        eps, steps, seed: the eq. 2 attack (L-inf PGD against the source's own prediction).
        batch_size: batch of the feature extraction.
        errors: ``None`` (default): a metric that fails raises. A dict: the failure is recorded there
            as ``{metric: {"message", "traceback"}}`` (metric ``"estimators"``, ``"tau1/tau2"`` or
            ``"eq2_loss"``), its columns stay ``None`` and the other metrics run.

    Returns the row as a :class:`~pyadvt.selection.SourceScore` (a dict with the result protocol:
    ``.value`` = ``score``, ``.valid`` per column, ``.n_undefined``, ``.summary()``): the columns asked
    for, ``score`` (= ``tau1*tau2``, docs/theory.md §2 Defs. 2-3), and ``eq2_accuracy`` /
    ``n_undefined`` (samples where tau1 is undefined) when computed. The estimators are docs/theory.md §11.

    Raises ``ValueError`` for an unknown score, a tensor ``x`` without ``y``, or a data source
    without labels (before any metric runs).

    Example:
        >>> import torch
        >>> from pyadvt.models import build
        >>> x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 4
        >>> source, reference = build("mlp", num_classes=4), build("mlp", num_classes=4)
        >>> row = score_source(source, reference, x, y, scores=["logme", "tau1"])
        >>> sorted(k for k, v in row.items() if v is not None)
        ['logme', 'n_undefined', 'score', 'tau1']
        >>> ds = torch.utils.data.TensorDataset(x, y)  # the same samples as a Dataset: the same row
        >>> row == score_source(source, reference, ds, scores=["logme", "tau1"])
        True
    """
    columns = _check_scores(scores, SOURCE_SCORES, "source") or list(SOURCE_SCORES)
    if isinstance(x, torch.Tensor):  # y are the target task's labels: the reference model's classes
        check_inputs(x, y, models={"reference": reference}, label_range=True)
    ev = _eval_set(x, y, n_eval if n_eval is not None or not isinstance(x, torch.Tensor) else x.shape[0],
                   eval_seed, model_device(reference))
    return SourceScore(_score(source, reference, ev.x, ev.y, ev if estimator_data is None else estimator_data,
                              columns, eps=eps, steps=steps, seed=seed, batch_size=batch_size, errors=errors))


def _score(source: nn.Module, reference: nn.Module, x: torch.Tensor, y: torch.Tensor, est_data: Any,
           columns: list[str], *, eps: float, steps: int, seed: int, batch_size: int, errors: dict | None) -> dict:
    estimators = [c for c in columns if c in ESTIMATORS]
    out: dict[str, Any] = {c: None for c in columns}
    out["score"] = None
    if estimators and _splittable(source):
        est = guarded(errors, "estimators",
                      lambda: estimate(extract(source, est_data, batch_size=batch_size), scores=estimators))
        out.update(est or {})
    if {"tau1", "tau2", "tau1*tau2"} & set(columns):
        tr = guarded(errors, "tau1/tau2", adversarial_transferability, source, reference, x)
        if tr is not None:
            t1, t2 = _finite(tr.tau1.tau1), _finite(tr.tau2.tau2)
            prod = None if t1 is None or t2 is None else t1 * t2
            out.update({k: v for k, v in (("tau1", t1), ("tau2", t2), ("tau1*tau2", prod)) if k in columns})
            out.update(score=prod, n_undefined=int(tr.tau1.n_undefined))
    if "eq2_loss" in columns:
        emp = guarded(errors, "eq2_loss", empirical_transferability, source, reference, x, y, eps=[eps], steps=steps,
                      seed=seed)
        if emp is not None:
            out.update(eq2_loss=_finite(emp.transfer_loss()[0]), eq2_accuracy=_finite(emp.correct[0].double().mean()))
    return out


def _probe_accuracy(source: nn.Module, train: Any, test: Any, num_classes: int, epochs: int, lr: float,
                    seed: int) -> float | None:
    """Test accuracy of a linear probe of ``source`` (new head, docs/theory.md §4), both data streamed."""
    probed = linear_probe(source, train, num_classes=num_classes, epochs=epochs, lr=lr, seed=seed)
    return _finite(evaluate(probed.model, test)["accuracy"])


def _check_probe_and_split(sources: Mapping[str, nn.Module], probe: bool, asked: list[str] | None) -> None:
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


def _failures(role: str, names: Sequence[str], records: Mapping[str, Mapping]) -> tuple[dict, dict]:
    """``({name: one line}, {name: tracebacks})`` of the candidates with failure records; warns once."""
    failed = {n: failure_line(role, n, records[n]) for n in names if records.get(n)}
    tracebacks = {n: "\n".join(e.get("traceback", "") for e in records[n].values()).strip() for n in failed}
    if failed:
        first = next(iter(failed.values()))
        warnings.warn(f"{len(failed)} of {len(names)} {role}s failed in a metric (their columns are None, the "
                      f"others are ranked; see the result's 'failed'): {first}", RuntimeWarning, stacklevel=3)
    return failed, tracebacks


def rank_sources(sources: Mapping[str, nn.Module], reference: nn.Module, target_test: Any, *,
                 target_train: Any = None, eps: float = 0.1, steps: int = 10, n_eval: int = 200,
                 eval_seed: int | None = None, probe: bool = True, probe_epochs: int = 5, probe_lr: float = 0.05,
                 seed: int = 0, scores: Sequence[str] | str | None = None, batch_size: int = 256,
                 store: CellStore | None = None, progress: bool = True, cell_prefix: tuple = ()) -> RankingResult:
    """Score and rank ``sources`` for the target task: the field's estimators and adversarial transferability.

    Args:
        sources: ``{name: classifier}`` taking the target inputs ``[B, C, H, W]`` (any number of classes).
        reference: a model trained on the target task (the cheap proxy, seed 000).
        target_test: labelled target evaluation data, any kind (``TensorData``, ``(x, y)``, a
            ``Dataset`` such as ``load_dataset("imagefolder", root, size=32)``, a ``DataLoader``): its
            first ``n_eval`` samples (with ``eval_seed``, a seeded random subset; an ImageFolder lists
            its files class by class) are held in memory for the adversarial scores, on the
            reference's device; the probes are evaluated on all of it, streamed.
        target_train: target training data (any kind, streamed) for the estimators and the linear
            probes (needed when ``probe``).
        eps, steps: L-inf PGD budget and iterations of the eq. (2) attack.
        probe, probe_epochs, probe_lr: linear probing of each source (new head, docs/theory.md §4).
        seed: seed of the attacks and probes; store/progress: resumable cells and tqdm.
        scores: the columns to compute, from :data:`SOURCE_SCORES` (a list or a comma-separated
            string); default all that the models allow: the estimators (docs/theory.md §11) for every
            source with a ``features``/``head`` split (:func:`~pyadvt.selection.extract.split_model`),
            and the adversarial scores (docs/theory.md §2). The estimators read the source on
            ``target_train`` when given (the labelled target data a user has), else on the
            evaluation samples.
        batch_size: batch of the feature extraction.
        cell_prefix: prepended to the cell keys ``("source", name, digest of the scores)``.

    A source that fails inside a metric (a layer without double backward, an output of the wrong
    shape, a forward that raises) does not stop the ranking: that metric's columns are ``None``, its
    row's ``failed`` is one line naming the source and the metric, one ``RuntimeWarning`` is
    issued and the other sources are ranked. A source that cannot run on one evaluation image is
    left unscored the same way (``ValueError`` when no source can).

    Returns:
        a :class:`~pyadvt.selection.RankingResult` (a dict, with ``.value`` the best source's name,
        ``.valid`` / ``.n_undefined`` for failed candidates and ``.summary()``):
        ``{"rows": [...], "spearman": {...}, "agreement": {...}, "scores": [...], "n_eval": N,
        "failed": {name: line}, "tracebacks": {name: text}}``: one row per source with every score
        asked for (``None`` where undefined or failed): the estimator names, ``tau1``, ``tau2``,
        ``tau1*tau2`` (also as ``score``), ``eq2_loss``, ``eq2_accuracy``, ``probe_accuracy``,
        ``failed`` and ``rank_<column>`` (1 = best; higher is better for every score, including the
        eq. 2 loss: the reference suffers more). Rows are sorted by ``tau1 * tau2`` (or the first
        score asked for). With ``probe``, ``spearman`` holds :func:`spearman_ci` of each score with the
        probe accuracy and ``agreement`` the mean Kendall / weighted tau / Pearson / Spearman / rel@1
        of :func:`~pyadvt.selection.agreement.agreement`.

    Raises ``ValueError`` before any work for no source, ``probe`` without ``target_train``, an
    unknown score, a reference that cannot run on the data, a source without the split that an
    asked-for estimator or the probe needs, or data without labels.

    Example:
        >>> import torch
        >>> from pyadvt.data import TensorData
        >>> from pyadvt.models import build
        >>> data = TensorData(torch.rand(24, 1, 8, 8), torch.arange(24) % 3)
        >>> nets = {name: build("mlp", num_classes=3) for name in ("a", "b")}
        >>> res = rank_sources(nets, build("mlp", num_classes=3), data, n_eval=8, probe=False, steps=1,
        ...                    scores=["logme", "tau1*tau2"], progress=False)
        >>> sorted(r["name"] for r in res["rows"]), res["failed"]
        (['a', 'b'], {})
    """
    if not sources:
        raise ValueError("rank_sources needs at least one source model")
    if probe and target_train is None:
        raise ValueError("probe=True needs target_train (the target training data)")
    asked = _check_scores(scores, SOURCE_SCORES, "source")
    ev = eval_samples(target_test, n_eval, seed=eval_seed, batch_size=batch_size).to(model_device(reference))
    x, y = ev.x, ev.y
    _check_compatible({"(reference)": reference}, x, "source")
    records: dict[str, dict] = _check_compatible(sources, x, "source", candidates=True)
    _check_probe_and_split(sources, probe, asked)
    columns = list(asked or SOURCE_SCORES)
    est_data = target_train if target_train is not None else ev
    classes = num_classes_of(target_train) if probe else None
    names = list(sources)

    def cell(key):
        src, errors = sources[key[-2]], {}
        out = _score(src, reference, x, y, est_data, columns, eps=eps, steps=steps, seed=seed,
                     batch_size=batch_size, errors=errors)
        if probe:
            out["probe_accuracy"] = guarded(errors, "probe", _probe_accuracy, src, target_train, target_test,
                                            classes, probe_epochs, probe_lr, seed)
        out["errors"] = errors
        return out

    tag = config_digest(columns)
    keys = {n: (*cell_prefix, "source", n, tag) for n in names if n not in records}
    cells = distributed.map_cells(list(keys.values()), cell, store, progress=progress, desc="rank sources")
    blank = {**{c: None for c in columns}, "score": None, **({"probe_accuracy": None} if probe else {})}
    rows = []
    for n in names:
        out = dict(cells[keys[n]]) if n in keys else dict(blank)
        records[n] = records.get(n) or out.pop("errors", None) or {}
        out.pop("errors", None)
        rows.append(dict(name=n, **out))
    failed, tracebacks = _failures("source", names, records)
    for row in rows:
        row["failed"] = failed.get(row["name"])
    ranked = [(f"rank_{c}", c) for c in columns] + [("rank_score", "score")] * ("tau1*tau2" in columns)
    ranked += [("rank_eq2", "eq2_loss")] * ("eq2_loss" in columns) + [("rank_probe", "probe_accuracy")] * probe
    for key, col in ranked:
        for row, r in zip(rows, _ranks([row.get(col) for row in rows])):
            row[key] = r
    spearman, agree = _probe_agreement(rows, columns) if probe else ({}, {})
    lead = "rank_score" if "tau1*tau2" in columns else f"rank_{columns[0]}"
    rows.sort(key=lambda r: (r[lead] is None, r[lead] or 0))
    return RankingResult(rows=rows, spearman=spearman, agreement=agree, scores=columns, n_eval=int(x.shape[0]),
                         eps=eps, failed=failed, tracebacks=tracebacks)


def _probe_agreement(rows: list[dict], columns: list[str]) -> tuple[dict, dict]:
    """Spearman (with CI) and the agreement measures of every score column with the probe accuracy."""
    spearman, agree = {}, {}
    acc = [r["probe_accuracy"] for r in rows]
    for col in columns:
        label = "score" if col == "tau1*tau2" else col
        spearman[f"{label}_vs_probe"] = spearman_ci([_nan(r[col]) for r in rows], [_nan(a) for a in acc])
        ok = [i for i, r in enumerate(rows) if r[col] is not None and acc[i] is not None]
        if len(ok) >= 2:
            agree[col] = agreement([rows[i][col] for i in ok], [acc[i] for i in ok], n_boot=0).mean
    return spearman, agree


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _surrogate_cell(sur: nn.Module, targets: Mapping[str, nn.Module], x: torch.Tensor, y: torch.Tensor,
                    predictors: list[str], attack: dict, n_smooth: int, smoothness_method: str, seed: int,
                    errors: dict | None) -> dict:
    """One surrogate's attack success on every target and its predictors; failures recorded per metric
    in ``errors`` (``None``: a failure raises)."""
    x_adv = guarded(errors, "attack", lambda: build_attack(attack["name"], sur, attack["eps"], steps=attack["steps"],
                                                           norm=attack["norm"], seed=seed)(x, y))
    per, rates = {}, None
    for t, target in targets.items():
        r = None if x_adv is None else guarded(errors, f"transferability to {t!r}", attack_transferability, sur, target, x,
                                               y, x_adv)
        rates = r or rates
        sim = (guarded(errors, f"similarity with {t!r}", gradient_similarity, sur, target, x, y)
               if "similarity" in predictors else None)
        per[t] = {"asr": None if r is None else _finite(r.asr), "rate": None if r is None else _finite(r.rate),
                  "similarity": None if sim is None else _finite(sim.mean)}
    out = {"accuracy": None if rates is None else _finite(rates.acc_source),
           "fooling": None if rates is None else _finite(rates.fooling), "smoothness": None,
           "smoothness_max": None, "targets": per}
    if "smoothness" in predictors:
        sm = guarded(errors, "smoothness", smoothness, sur, x[:n_smooth], y[:n_smooth], method=smoothness_method,
                     seed=seed, progress=False)
        if sm is not None:
            out.update(smoothness=_finite(sm.mean), smoothness_max=_finite(sm.max))
    out["errors"] = errors or {}
    return out


def score_surrogate(source: nn.Module, targets: Mapping[str, nn.Module], x: Any, y: torch.Tensor | None = None, *,
                    name: str | None = None, attack: str = "pgd", eps: float = 0.1, steps: int = 10,
                    norm: str = "linf", n_eval: int | None = None, eval_seed: int | None = None, n_smooth: int = 64,
                    smoothness_method: str = "lanczos", seed: int = 0, scores: Sequence[str] | str | None = None,
                    errors: dict | None = None) -> SurrogateScore:
    """One surrogate's attack success on every target and its seed-001 predictors (one candidate of
    :func:`rank_surrogates`).

    Args:
        source: the surrogate, i.e. the source model the attack is crafted on.
        targets: ``{name: classifier}`` the examples are transferred to (same inputs and labels).
        x, y: evaluation inputs ``[B, C, H, W]`` in [0, 1] and labels ``[B]``, or ``x`` any labelled data
            source (``y=None``) of which ``n_eval`` samples (default 200; all of a tensor ``x``) are read.
        name: the source's name; a target of that name (the same model, white-box) is left out of
            the means unless it is the only target.
        attack, eps, steps, norm, seed: the attack (:func:`pyadvt.attacks.build_attack`).
        n_smooth, smoothness_method: samples and method of ``sigma_F`` (docs/theory.md §3).
        scores: predictors from :data:`SURROGATE_SCORES` (default both).
        errors: ``None`` (default): a metric that fails raises. A dict: the failure is recorded there as
            ``{metric: {"message", "traceback"}}``, its entries stay ``None`` and the others run.

    Returns:
        a :class:`~pyadvt.selection.SurrogateScore` (a dict with ``.value`` = ``mean_asr``, ``.valid``
        per target, ``.n_undefined``, ``.summary()``): seed 001's attack success rate (ASR) and
        Definition-3 rate per target, the clean accuracy and fooling rate of the surrogate, its
        smoothness and gradient similarity (docs/theory.md §3).

    Raises:
        ValueError: no target, an unknown score, a tensor ``x`` without ``y`` (or out-of-range labels),
            data without labels, or a surrogate / target that cannot run on the data, before any attack.

    Example:
        >>> import torch
        >>> from pyadvt.models import build
        >>> x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 3
        >>> sur, tgt = build("mlp", num_classes=3), build("mlp", num_classes=3)
        >>> s = score_surrogate(sur, {"other": tgt}, x, y, steps=1, scores=["similarity"])
        >>> 0.0 <= s.value <= 1.0, s.valid, s.n_undefined, s["smoothness"] is None
        (True, {'other': True}, 0, True)
    """
    if not targets:
        raise InvalidValueError("score_surrogate needs at least one target")
    predictors = _check_scores(scores, SURROGATE_SCORES, "surrogate") or list(SURROGATE_SCORES)
    if isinstance(x, torch.Tensor):
        check_inputs(x, y, models={"source": source}, label_range=True)
    ev = _eval_set(x, y, n_eval if n_eval is not None or not isinstance(x, torch.Tensor) else x.shape[0],
                   eval_seed, model_device(source))
    _check_compatible({"source": source}, ev.x, "surrogate")
    _check_compatible(targets, ev.x, "target")
    spec = {"name": attack, "eps": eps, "steps": steps, "norm": norm}
    cell = _surrogate_cell(source, targets, ev.x, ev.y, predictors, spec, n_smooth, smoothness_method, seed, errors)
    return SurrogateScore.from_cell({**cell, "failed": {m: e["message"] for m, e in cell["errors"].items()}},
                                    exclude=name)


def _surrogate_row(name: str, cell: Mapping | None, tnames: list[str]) -> dict:
    if cell is None:  # could not run on the data: nothing measured
        return {"name": name, "accuracy": None, "fooling": None, "mean_asr": None, "smoothness": None,
                "smoothness_max": None, "mean_similarity": None}
    s = SurrogateScore.from_cell(cell, exclude=name)
    return {"name": name, "accuracy": s["accuracy"], "fooling": s["fooling"], "mean_asr": s["mean_asr"],
            "smoothness": s["smoothness"], "smoothness_max": s["smoothness_max"],
            "mean_similarity": s["mean_similarity"]}


def rank_surrogates(surrogates: Mapping[str, nn.Module], targets: Mapping[str, nn.Module], data: Any, *,
                    attack: str = "pgd", eps: float = 0.1, steps: int = 10, norm: str = "linf", n_eval: int = 200,
                    eval_seed: int | None = None, n_smooth: int = 64, smoothness_method: str = "lanczos",
                    seed: int = 0, scores: Sequence[str] | str | None = None,
                    store: CellStore | None = None, progress: bool = True, cell_prefix: tuple = ()) -> RankingResult:
    """Measure each surrogate's attack success on every target and its seed-001 predictors.

    Args:
        surrogates, targets: ``{name: classifier}`` on the same inputs and labels. A target with the
            same name as the surrogate (the same model) is the white-box case and is left out of the
            surrogate's mean ASR.
        data: labelled evaluation data, any kind (``TensorData``, ``(x, y)``, ``Dataset``, ImageFolder,
            ``DataLoader``); its first ``n_eval`` samples (with ``eval_seed`` a seeded random subset)
            are read into memory on the first surrogate's device. Labels are the task's true labels.
        attack, eps, steps, norm: the attack (:func:`pyadvt.attacks.build_attack`).
        n_smooth, smoothness_method: samples and method of the smoothness ``sigma_F`` (docs/theory.md §3).
        seed, store, progress: attack seed, resumable cells and tqdm.
        scores: the predictors to compute besides the ASR, from :data:`SURROGATE_SCORES` (default
            both); one left out is ``None`` in the rows.
        cell_prefix: prepended to the cell keys ``("surrogate", name, digest of the scores)``.

    A surrogate that fails inside a metric (its attack, the transfer to a target, the similarity
    or the smoothness, e.g. a layer without double backward) keeps ``None`` there, its row's
    ``failed`` names it and the metric in one line, one ``RuntimeWarning`` is issued and the other
    surrogates are ranked (``ValueError`` when none can run on the data).

    Returns:
        a :class:`~pyadvt.selection.RankingResult` (a dict, with ``.value`` the best surrogate's name,
        ``.valid`` / ``.n_undefined`` for failed candidates and ``.summary()``):
        ``{"rows": [...], "asr": [[...]], "rate": [[...]], "similarity": [[...]], "surrogates": [...],
        "targets": [...], "spearman": {...}, "failed": {name: line}, "tracebacks": {name: text}}``:
        rows sorted by mean transfer ASR (best first) with ``accuracy``, ``fooling``, ``mean_asr``,
        ``smoothness``, ``mean_similarity``, ``failed``; matrices are surrogate x target;
        ``spearman`` correlates each predictor with the mean ASR over surrogates.

    Raises ``ValueError`` before any work for no surrogate or target, an unknown score, a target
    that cannot run on the data or data without labels.

    Example:
        >>> from pyadvt.data import digits
        >>> from pyadvt.models import build
        >>> _, test = digits(classes=(0, 1, 2))
        >>> pool = {"mlp": build("mlp", num_classes=3), "lenet": build("lenet", num_classes=3)}
        >>> res = rank_surrogates(pool, pool, test, n_eval=6, steps=1, scores=["similarity"], progress=False)
        >>> res["surrogates"], len(res["asr"][0]), res["failed"]
        (['mlp', 'lenet'], 2, {})
    """
    if not surrogates or not targets:
        raise ValueError("rank_surrogates needs at least one surrogate and one target")
    predictors = _check_scores(scores, SURROGATE_SCORES, "surrogate") or list(SURROGATE_SCORES)
    ev = eval_samples(data, n_eval, seed=eval_seed).to(model_device(next(iter(surrogates.values()))))
    x, y = ev.x, ev.y
    records: dict[str, dict] = _check_compatible(surrogates, x, "surrogate", candidates=True)
    _check_compatible(targets, x, "target")
    tnames, snames = list(targets), list(surrogates)
    spec = {"name": attack, "eps": eps, "steps": steps, "norm": norm}

    def cell(key):
        return _surrogate_cell(surrogates[key[-2]], targets, x, y, predictors, spec, n_smooth, smoothness_method,
                               seed, {})

    tag = config_digest(predictors)
    skey = {n: (*cell_prefix, "surrogate", n, tag) for n in snames if n not in records}
    cells = distributed.map_cells(list(skey.values()), cell, store, progress=progress, desc="rank surrogates")
    by_name = {n: cells[skey[n]] for n in skey}
    for n in snames:
        records[n] = records.get(n) or (by_name[n].get("errors") if n in by_name else None) or {}
    rows = [_surrogate_row(n, by_name.get(n), tnames) for n in snames]
    failed, tracebacks = _failures("surrogate", snames, records)
    for row in rows:
        row["failed"] = failed.get(row["name"])
    mean_asr = [_nan(r["mean_asr"]) for r in rows]
    spearman = {f"{col}_vs_asr": spearman_ci([_nan(r[col]) for r in rows], mean_asr)
                for col in ("smoothness", "mean_similarity", "accuracy", "fooling")}
    for key, col, descending in (("rank_asr", "mean_asr", True), ("rank_smoothness", "smoothness", False),
                                 ("rank_similarity", "mean_similarity", True)):
        # smoother (smaller sigma_F) predicts more transferable (seed 001)
        for row, r in zip(rows, _ranks([r[col] for r in rows], descending=descending)):
            row[key] = r

    def matrix(field: str) -> list[list]:
        return [[by_name[s]["targets"][t][field] if s in by_name else None for t in tnames] for s in snames]

    rows.sort(key=lambda r: (r["rank_asr"] is None, r["rank_asr"] or 0))
    return RankingResult(rows=rows, surrogates=snames, targets=tnames, asr=matrix("asr"), rate=matrix("rate"),
                         similarity=matrix("similarity"), spearman=spearman, scores=["asr", *predictors],
                         n_eval=int(x.shape[0]), attack=spec, failed=failed, tracebacks=tracebacks)
