"""How well a transferability score ranks sources, measured as the field does (docs/theory.md §11.9).

For every target task, a score over the ``N`` candidate sources is compared with the ground-truth
transfer accuracy of the same sources (linear probing or fine-tuning): Kendall ``tau_b``, weighted
Kendall ``tau`` (hyperbolic weights, so the top of the ranking counts most), Pearson, Spearman and
``rel@1`` (accuracy of the source the score ranks first over the best accuracy). Means over targets
come with percentile-bootstrap intervals that resample targets and ground-truth seeds.
:func:`incremental_value` asks whether one score adds information beyond another (partial
correlation, change in R^2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from pyadvt.metrics.statistics import ols_r2
from pyadvt.utils.stats import CORRELATIONS, correlation
from pyadvt.utils.validation import InvalidValueError

__all__ = ["METRICS", "AgreementResult", "agreement", "incremental_value", "rel_at_k"]

METRICS = ("kendall", "weighted_tau", "pearson", "spearman", "rel@1")


def rel_at_k(score: Any, accuracy: Any, k: int = 1) -> float:
    """``max(accuracy of the top-k sources by score) / max(accuracy)``; ties in the score go to the
    earlier candidate (a stable sort, as the SFDA authors' code). Source: docs/theory.md §11.9.

    Raises:
        ValueError: (``InvalidValueError``) when ``score`` and ``accuracy`` are not non-empty vectors
            of one length, hold NaN or infinite values, when ``k`` is not an int in ``[1, N]``, or when
            the best accuracy is not positive. Numpy's ``ValueError`` when a value is not a number.

    Example:
        >>> rel_at_k([0.1, 0.9, 0.5], [0.8, 0.6, 0.9])
        0.6666666666666666
    """
    s, a = np.asarray(score, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    if s.ndim != 1 or s.shape != a.shape or s.size == 0:
        raise InvalidValueError(f"'score' and 'accuracy' must be non-empty vectors of one length (one entry per "
                                f"candidate), got shapes {s.shape} and {a.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(a))):
        raise InvalidValueError("'score' and 'accuracy' must be finite; drop the candidates whose score is undefined")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= s.size:
        raise InvalidValueError(f"'k' must be an int in [1, {s.size}] (the number of candidates), got {k!r}")
    order = np.argsort(-s, kind="stable")[:k]
    best = a.max()
    if not best > 0:
        raise InvalidValueError("rel@k needs a positive best accuracy")
    return float(a[order].max() / best)


def _one(score: np.ndarray, acc: np.ndarray) -> dict[str, float]:
    # pyadvt.utils.stats: the one correlation implementation (NaN when undefined: constant side, < 3 pairs)
    out = {m: float("nan") for m in METRICS}
    out.update({m: correlation(score, acc, m).r for m in CORRELATIONS})
    if acc.max() > 0:
        out["rel@1"] = rel_at_k(score, acc, 1)
    return out


@dataclass
class AgreementResult:
    """Agreement of one score with the ground truth.

    ``per_target[metric]``: ``[T]`` values (``NaN`` where undefined: a constant score or accuracy);
    ``mean[metric]``: mean over the targets where it is defined (``None`` if none);
    ``ci[metric]``: ``(lower, upper)`` percentile-bootstrap interval of that mean (``None`` when
    undefined or with a single target and seed); ``n_undefined[metric]``: targets left out.
    Returned by :func:`agreement` (docs/theory.md §11.9).

    Example:
        >>> r = agreement([0.1, 0.5, 0.9], [0.6, 0.7, 0.95], n_boot=0)
        >>> r.n_candidates, r.mean["spearman"], r.ci["spearman"]
        (3, 1.0, None)
    """

    per_target: dict[str, list[float]]
    mean: dict[str, float | None]
    ci: dict[str, tuple[float, float] | None]
    n_undefined: dict[str, int]
    n_targets: int
    n_seeds: int
    n_candidates: int
    confidence: float
    valid: dict[str, list[bool]] = field(default_factory=dict)

    @property
    def weighted_tau(self) -> float | None:
        """Headline: the mean weighted Kendall tau over targets."""
        return self.mean["weighted_tau"]

    def summary(self) -> dict:
        return {"mean": dict(self.mean), "ci": {k: None if v is None else list(v) for k, v in self.ci.items()},
                "per_target": {k: [None if np.isnan(x) else x for x in v] for k, v in self.per_target.items()},
                "n_undefined": dict(self.n_undefined), "n_targets": self.n_targets, "n_seeds": self.n_seeds,
                "n_candidates": self.n_candidates, "confidence": self.confidence}


def _as_grid(a: Any, name: str, ndim_max: int) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim < 2 or x.ndim > ndim_max:
        raise InvalidValueError(f"'{name}' must have shape [N]" + (", [T, N] or [T, S, N]" if ndim_max == 3 else
                                " or [T, N]") + f" (targets T, seeds S, candidates N), got {np.shape(a)}")
    if not np.isfinite(x).all():
        raise InvalidValueError(f"'{name}' contains NaN or infinite values; drop undefined candidates first")
    return x


def _means(per: dict[str, np.ndarray]) -> dict[str, float]:
    return {m: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for m, v in per.items()}


def agreement(scores: Any, ground_truth: Any, *, n_boot: int = 1000, confidence: float = 0.95,
              seed: int = 0) -> AgreementResult | dict[str, AgreementResult]:
    """Rank agreement between ``scores`` and the ground-truth transfer accuracy.

    Args:
        scores: ``[N]`` or ``[T, N]``: one score per candidate (per target task), higher = better; or
            a mapping ``{name: such an array}`` (then a dict of results is returned).
        ground_truth: ``[N]``, ``[T, N]`` or ``[T, S, N]``: the transfer accuracy of each candidate on
            each target, for ``S`` seeds of the transfer run (averaged over seeds before comparing).
        n_boot: bootstrap replicates; each draws ``T`` targets and then ``S`` seeds with replacement
            (``numpy.random.default_rng(seed)``, targets first) and recomputes the mean over targets.
        confidence: level of the percentile intervals.

    Per target (docs/theory.md §11.9): ``kendall`` = ``scipy.stats.kendalltau`` (tau-b),
    ``weighted_tau`` = ``scipy.stats.weightedtau`` (defaults: hyperbolic weights ``1/(r+1)``),
    ``pearson``, ``spearman`` and ``rel@1`` (:func:`rel_at_k`).

    Raises:
        ValueError: (``InvalidValueError``) when ``scores`` is not ``[N]`` / ``[T, N]`` or
            ``ground_truth`` not ``[N]`` / ``[T, N]`` / ``[T, S, N]``, when either holds NaN or infinite
            values, when their targets or candidates do not match, when there are fewer than 2
            candidates, or when ``confidence`` is not in ``(0, 1)`` or ``n_boot < 0``.

    Example:
        >>> r = agreement([0.1, 0.5, 0.9, 0.3], [0.60, 0.70, 0.95, 0.50], n_boot=0)
        >>> r.mean["kendall"], r.mean["rel@1"]
        (0.6666666666666669, 1.0)
    """
    if isinstance(scores, Mapping):
        return {name: agreement(s, ground_truth, n_boot=n_boot, confidence=confidence, seed=seed)
                for name, s in scores.items()}
    s = _as_grid(scores, "scores", 2)
    g = _as_grid(ground_truth, "ground_truth", 3)
    if g.ndim == 2:
        g = g[:, None]
    T, S, N = g.shape
    if s.shape != (T, N):
        if s.shape == (1, N):
            s = np.repeat(s, T, axis=0)
        else:
            raise InvalidValueError(f"'scores' has shape {s.shape} but 'ground_truth' has {T} targets and {N} "
                                    "candidates; give one score per (target, candidate)")
    if N < 2:
        raise InvalidValueError(f"agreement needs at least 2 candidates, got {N}")
    if not 0 < confidence < 1 or n_boot < 0:
        raise InvalidValueError(f"'confidence' must be in (0, 1) and 'n_boot' >= 0, got {confidence}, {n_boot}")

    memo: dict[tuple, dict[str, float]] = {}

    def one_target(t: int, seeds: np.ndarray) -> dict[str, float]:
        # a replicate's value for target t depends only on the multiset of seeds drawn: compute it once
        key = (t, tuple(sorted(seeds.tolist())))
        if key not in memo:
            memo[key] = _one(s[t], g[t][seeds].mean(0))
        return memo[key]

    def per_target(ti: np.ndarray, si: np.ndarray) -> dict[str, np.ndarray]:
        rows = [one_target(int(t), si) for t in ti]
        return {m: np.array([r[m] for r in rows]) for m in METRICS}

    per = per_target(np.arange(T), np.arange(S))
    mean = _means(per)
    ci: dict[str, tuple[float, float] | None] = {m: None for m in METRICS}
    if n_boot and (T > 1 or S > 1):
        rng = np.random.default_rng(seed)
        boots = {m: [] for m in METRICS}
        for _ in range(n_boot):
            ti = rng.integers(0, T, T)
            si = rng.integers(0, S, S)
            rep = _means(per_target(ti, si))
            for m in METRICS:
                boots[m].append(rep[m])
        q = (1 - confidence) / 2
        for m in METRICS:
            b = np.array(boots[m])
            b = b[np.isfinite(b)]
            if b.size and np.isfinite(mean[m]):
                ci[m] = (float(np.quantile(b, q)), float(np.quantile(b, 1 - q)))
    return AgreementResult(
        per_target={m: [float(v) for v in per[m]] for m in METRICS},
        mean={m: (None if np.isnan(v) else v) for m, v in mean.items()}, ci=ci,
        n_undefined={m: int(np.isnan(per[m]).sum()) for m in METRICS}, n_targets=T, n_seeds=S, n_candidates=N,
        confidence=confidence, valid={m: [bool(np.isfinite(v)) for v in per[m]] for m in METRICS})


def incremental_value(acc: Any, base: Any, extra: Any) -> dict:
    """Does the score ``extra`` explain transfer accuracy beyond the score ``base`` (e.g. tau1 * tau2 beyond LogME)?

    Args: ``acc``, ``base``, ``extra``: ``[N]`` over candidates (finite).

    Returns ``{"n", "partial_r", "r2_base", "r2_full", "delta_r2", "p_value"}``: the partial correlation
    of ``acc`` and ``extra`` given ``base`` (Pearson r of the residuals of both on ``1 + base``; ``None``
    when ``extra`` is a linear function of ``base``), ``R^2`` of ``acc ~ 1 + base`` and of
    ``acc ~ 1 + base + extra``, their difference and the p-value of the nested-model F test
    ``F = delta_r2 / (1 - r2_full) * (n - 3)`` on (1, n - 3) degrees of freedom.

    Used to ask whether the adversarial scores of docs/theory.md §2 (``tau1 * tau2``) add to the
    estimators of docs/theory.md §11 (see §11.9).

    Raises:
        ValueError: (``InvalidValueError``) when ``acc``, ``base`` and ``extra`` are not 1-D of one
            length or hold NaN or infinite values.

    Example:
        >>> r = incremental_value([0.6, 0.7, 0.8, 0.9, 0.75], [1, 2, 3, 4, 2], [0, 1, 0, 1, 1])
        >>> round(r["delta_r2"], 4) == round(r["partial_r"] ** 2 * (1 - r["r2_base"]), 4)
        True
    """
    y, b, e = (np.asarray(v, dtype=np.float64) for v in (acc, base, extra))
    if not (y.ndim == b.ndim == e.ndim == 1 and y.shape == b.shape == e.shape):
        raise InvalidValueError(f"'acc', 'base' and 'extra' must be vectors of one length (one entry per candidate), "
                                f"got shapes {y.shape}, {b.shape} and {e.shape}")
    for name, v in (("acc", y), ("base", b), ("extra", e)):
        if not np.all(np.isfinite(v)):
            raise InvalidValueError(f"'{name}' contains non-finite values; drop those candidates first")
    n = y.size
    A = np.column_stack([np.ones(n), b])
    res_y = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    res_e = e - A @ np.linalg.lstsq(A, e, rcond=None)[0]
    # an extra score that is (numerically) a linear function of the base one has no partial correlation
    informative = np.linalg.norm(res_e) > 1e-9 * max(np.linalg.norm(e - e.mean()), 1e-300) and np.ptp(res_y) > 0
    partial = float(stats.pearsonr(res_y, res_e).statistic) if informative else None
    r2_base, r2_full = ols_r2(y, b[:, None]), ols_r2(y, np.column_stack([b, e]))
    dr2 = r2_full - r2_base
    f = dr2 / max(1.0 - r2_full, 1e-300) * (n - 3) if n > 3 else float("nan")
    return {"n": int(n), "partial_r": partial, "r2_base": r2_base, "r2_full": r2_full, "delta_r2": dr2,
            "p_value": float(stats.f.sf(f, 1, n - 3)) if n > 3 else None}
