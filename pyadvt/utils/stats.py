"""Correlations and mean +- confidence intervals: the one implementation every pyadvt module uses.

One NaN policy for every correlation (docs/theory.md §0):

* pairs where either value is NaN or infinite are **dropped** (``n`` counts the pairs kept);
* with fewer than :data:`MIN_PAIRS` (3) pairs, or a constant side, the correlation is **undefined**:
  ``r`` is NaN, ``valid`` is ``False`` and ``n`` / ``reason`` say why -- never an exception in the
  middle of a sweep. Only malformed input (different lengths, not 1-D, a bad option) raises, before
  any work.

Correlations (:func:`correlation`, or :func:`pearson`, :func:`spearman`, :func:`kendall`,
:func:`weighted_tau`) match ``scipy.stats.pearsonr`` / ``spearmanr`` / ``kendalltau`` (tau-b) /
``weightedtau`` (hyperbolic weights). Confidence intervals:

* ``ci="fisher"``: ``tanh(atanh(r) +- z_q * se)`` with ``se = 1/sqrt(n-3)`` (Pearson),
  ``sqrt(1.06/(n-3))`` (Spearman) and ``sqrt(0.437/(n-4))`` (Kendall), Fieller, Hartley & Pearson
  (1957); none at ``|r| = 1`` (``atanh`` is unbounded) or for weighted tau;
* ``ci="bootstrap"``: percentile interval over ``n_boot`` resamples of the pairs
  (``numpy.random.default_rng(seed).integers(0, n, (n_boot, n))``); resamples with a constant side
  are skipped.

:func:`mean_ci` is the Student-t interval ``mean +- t_{(1+c)/2, n-1} s / sqrt(n)`` of the finite
values; :func:`mean_ci_columns` the same per column of a ``[runs, T]`` array.

Example:
    >>> c = spearman([1, 2, 3, 4, 5, float("nan")], [2, 1, 4, 3, 5, 0], ci="fisher")
    >>> round(c.r, 2), c.n, c.valid, c.lower < c.r < c.upper
    (0.8, 5, True, True)
    >>> pearson([1, 2], [3, 4]).summary()["r"], pearson([1, 2], [3, 4]).reason
    (None, 'fewer than 3 finite pairs')
    >>> m = mean_ci([1.0, 2.0, 3.0])
    >>> m.mean, round(m.half_width, 4), m.n
    (2.0, 2.4841, 3)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyadvt.utils.errors import InvalidValueError

__all__ = [
    "CORRELATIONS", "MIN_PAIRS", "Correlation", "MeanCI", "correlation", "pearson", "spearman", "kendall",
    "weighted_tau", "fisher_ci", "bootstrap_ci", "mean_ci", "mean_ci_columns",
]

#: the correlation measures :func:`correlation` computes
CORRELATIONS = ("pearson", "spearman", "kendall", "weighted_tau")
#: fewer finite pairs than this: the correlation is undefined (NaN)
MIN_PAIRS = 3
# Fisher-z variance numerators: var(atanh r) ~ c / (n - d)   (Fieller, Hartley & Pearson 1957)
_FISHER = {"pearson": (1.0, 3), "spearman": (1.06, 3), "kendall": (0.437, 4)}
_NAN = float("nan")


def _none(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass(frozen=True)
class Correlation:
    """One correlation coefficient with its interval.

    Attributes:
        method: one of :data:`CORRELATIONS`.
        r: the coefficient (NaN when undefined).
        n: finite pairs used.
        p: two-sided p-value from scipy (NaN when undefined or not available, e.g. weighted tau).
        lower, upper: the confidence interval (NaN when none was asked for or it is undefined).
        confidence: level of the interval.
        ci: ``"fisher"``, ``"bootstrap"`` or ``None``.
        reason: why ``r`` is undefined (``None`` when it is defined).
    """

    method: str
    r: float
    n: int
    p: float = _NAN
    lower: float = _NAN
    upper: float = _NAN
    confidence: float = 0.95
    ci: str | None = None
    reason: str | None = None

    @property
    def valid(self) -> bool:
        """``True`` when ``r`` is defined."""
        return math.isfinite(self.r)

    @property
    def n_undefined(self) -> int:
        """``0`` or ``1``: the result protocol's count of undefined values."""
        return 0 if self.valid else 1

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict; undefined numbers are ``None``."""
        return {"method": self.method, "r": _none(self.r), "n": self.n, "p": _none(self.p),
                "lower": _none(self.lower), "upper": _none(self.upper), "confidence": self.confidence,
                "ci": self.ci, "reason": self.reason}


def _pairs(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray([_NAN if v is None else v for v in x] if isinstance(x, (list, tuple)) else x, dtype=np.float64)
    b = np.asarray([_NAN if v is None else v for v in y] if isinstance(y, (list, tuple)) else y, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise InvalidValueError(f"'x' and 'y' must be 1-D sequences of equal length, got shapes {a.shape} and "
                                f"{b.shape}; pass one value per observation")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def _check_method(method: str) -> None:
    if method not in CORRELATIONS:
        raise InvalidValueError(f"'method' must be one of {', '.join(CORRELATIONS)}, got {method!r}")


def _check_confidence(confidence: float) -> None:
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise InvalidValueError(f"'confidence' must be a number in (0, 1), e.g. 0.95, got {confidence!r}")


def _statistic(method: str, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(r, p) of finite, non-constant vectors with >= 2 entries."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "pearson":
            res = stats.pearsonr(a, b)
        elif method == "spearman":
            res = stats.spearmanr(a, b)
        elif method == "kendall":
            res = stats.kendalltau(a, b)
        else:
            res = stats.weightedtau(a, b)
            return float(res.statistic), _NAN
    return float(res.statistic), float(res.pvalue)


def fisher_ci(r: float, n: int, *, method: str = "pearson", confidence: float = 0.95) -> tuple[float, float]:
    """Fisher-z interval ``tanh(atanh(r) +- z_q * se)`` of a Pearson, Spearman or Kendall coefficient.

    ``(NaN, NaN)`` when it is undefined: ``r`` not finite, ``|r| = 1``, or too few pairs (``n <= 3``,
    ``n <= 4`` for Kendall).

    Example:
        >>> lo, hi = fisher_ci(0.5, 30)
        >>> round(lo, 4), round(hi, 4)
        (0.1704, 0.729)
    """
    if method not in _FISHER:
        raise InvalidValueError(f"a Fisher interval exists for {', '.join(_FISHER)}, not {method!r}; "
                                "use ci='bootstrap'")
    _check_confidence(confidence)
    c, d = _FISHER[method]
    if not math.isfinite(r) or abs(r) >= 1 or n <= d:
        return _NAN, _NAN
    from scipy import stats

    z, se = math.atanh(r), math.sqrt(c / (n - d))
    q = float(stats.norm.ppf((1 + confidence) / 2))
    return math.tanh(z - q * se), math.tanh(z + q * se)


def _pearson_rows(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    u = u - u.mean(1, keepdims=True)
    v = v - v.mean(1, keepdims=True)
    return (u * v).sum(1) / np.sqrt((u * u).sum(1) * (v * v).sum(1))


def bootstrap_ci(x: Any, y: Any, *, method: str = "spearman", n_boot: int = 2000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of a correlation, resampling the finite pairs.

    Resamples where either side is constant are skipped; ``(NaN, NaN)`` when fewer than
    :data:`MIN_PAIRS` pairs or no usable resample remain.

    Example:
        >>> lo, hi = bootstrap_ci(range(10), [0, 2, 1, 3, 5, 4, 6, 8, 7, 9], n_boot=200)
        >>> 0.5 < lo < hi <= 1.0
        True
    """
    _check_method(method)
    _check_confidence(confidence)
    if not isinstance(n_boot, int) or n_boot < 1:
        raise InvalidValueError(f"'n_boot' must be a positive int, got {n_boot!r}")
    a, b = _pairs(x, y)
    if a.size < MIN_PAIRS:
        return _NAN, _NAN
    idx = np.random.default_rng(seed).integers(0, a.size, (n_boot, a.size))
    u, v = a[idx], b[idx]
    keep = (np.ptp(u, axis=1) > 0) & (np.ptp(v, axis=1) > 0)
    u, v = u[keep], v[keep]
    if not u.shape[0]:
        return _NAN, _NAN
    if method in ("pearson", "spearman"):
        if method == "spearman":
            from scipy import stats

            u, v = stats.rankdata(u, axis=1), stats.rankdata(v, axis=1)
        r = _pearson_rows(u, v)
    else:
        r = np.array([_statistic(method, ui, vi)[0] for ui, vi in zip(u, v)])
    r = r[np.isfinite(r)]
    if not r.size:
        return _NAN, _NAN
    q = (1 - confidence) / 2
    return float(np.quantile(r, q)), float(np.quantile(r, 1 - q))


def correlation(x: Any, y: Any, method: str = "spearman", *, ci: str | None = None, confidence: float = 0.95,
                n_boot: int = 2000, seed: int = 0) -> Correlation:
    """The ``method`` correlation of ``x`` and ``y`` (``[N]`` each) under the module's NaN policy.

    Args:
        x, y: equal-length 1-D sequences; ``None``, NaN and infinite entries drop their pair.
        method: ``"pearson"``, ``"spearman"``, ``"kendall"`` (tau-b) or ``"weighted_tau"``
            (``scipy.stats.weightedtau``, hyperbolic weights: the top of the ranking counts most).
        ci: ``None``, ``"fisher"`` (:func:`fisher_ci`) or ``"bootstrap"`` (:func:`bootstrap_ci`).
        confidence, n_boot, seed: the interval's level, resamples and generator seed.

    Returns:
        :class:`Correlation` (``r`` NaN with a ``reason`` when undefined).

    Example:
        >>> c = correlation([1, 2, 3, 4], [1, 3, 2, 4], "kendall")
        >>> round(c.r, 4), c.n
        (0.6667, 4)
    """
    _check_method(method)
    _check_confidence(confidence)
    if ci not in (None, "fisher", "bootstrap"):
        raise InvalidValueError(f"'ci' must be None, 'fisher' or 'bootstrap', got {ci!r}")
    if ci == "fisher" and method not in _FISHER:
        raise InvalidValueError(f"no Fisher interval for {method!r}; use ci='bootstrap'")
    if ci == "bootstrap" and (not isinstance(n_boot, int) or n_boot < 1):
        raise InvalidValueError(f"'n_boot' must be a positive int, got {n_boot!r}")
    a, b = _pairs(x, y)
    n = int(a.size)
    base = {"method": method, "n": n, "confidence": confidence, "ci": ci}
    if n < MIN_PAIRS:
        return Correlation(r=_NAN, reason=f"fewer than {MIN_PAIRS} finite pairs", **base)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return Correlation(r=_NAN, reason="a constant side has no correlation", **base)
    r, p = _statistic(method, a, b)
    r = float(np.clip(r, -1.0, 1.0))
    lo, hi = _NAN, _NAN
    if ci == "fisher":
        lo, hi = fisher_ci(r, n, method=method, confidence=confidence)
    elif ci == "bootstrap":
        lo, hi = bootstrap_ci(a, b, method=method, n_boot=n_boot, confidence=confidence, seed=seed)
    return Correlation(r=r, p=p, lower=lo, upper=hi, **base)


def pearson(x: Any, y: Any, **options: Any) -> Correlation:
    """:func:`correlation` with ``method="pearson"``."""
    return correlation(x, y, "pearson", **options)


def spearman(x: Any, y: Any, **options: Any) -> Correlation:
    """:func:`correlation` with ``method="spearman"``."""
    return correlation(x, y, "spearman", **options)


def kendall(x: Any, y: Any, **options: Any) -> Correlation:
    """:func:`correlation` with ``method="kendall"`` (tau-b)."""
    return correlation(x, y, "kendall", **options)


def weighted_tau(x: Any, y: Any, **options: Any) -> Correlation:
    """:func:`correlation` with ``method="weighted_tau"``."""
    return correlation(x, y, "weighted_tau", **options)


@dataclass(frozen=True)
class MeanCI:
    """Mean of the finite values with a Student-t interval.

    Attributes:
        mean: NaN when there is no finite value.
        lower, upper, half_width: NaN with fewer than two finite values.
        n: finite values used.
        confidence: level of the interval.
    """

    mean: float
    lower: float
    upper: float
    half_width: float
    n: int
    confidence: float = 0.95

    @property
    def valid(self) -> bool:
        """``True`` when the interval is defined (``n >= 2``)."""
        return math.isfinite(self.half_width)

    def summary(self) -> dict[str, Any]:
        """``{"mean", "lo", "hi", "half_width", "n"}`` with ``None`` for undefined numbers."""
        return {"mean": _none(self.mean), "lo": _none(self.lower), "hi": _none(self.upper),
                "half_width": _none(self.half_width), "n": self.n}


def _t_quantile(confidence: float, dof: Any) -> Any:
    from scipy import stats

    return stats.t.ppf((1 + confidence) / 2, dof)


def mean_ci(values: Sequence[float] | np.ndarray, *, confidence: float = 0.95) -> MeanCI:
    """Mean and Student-t ``confidence`` interval of ``values`` (``[N]``); ``None``/NaN/Inf are skipped.

    Example:
        >>> r = mean_ci([0.5, None, 0.7, float("nan")])
        >>> round(r.mean, 6), r.n, r.lower < 0.6 < r.upper
        (0.6, 2, True)
        >>> mean_ci([1.0]).summary()
        {'mean': 1.0, 'lo': None, 'hi': None, 'half_width': None, 'n': 1}
    """
    _check_confidence(confidence)
    try:
        v = np.asarray([_NAN if x is None else float(x) for x in np.asarray(values, dtype=object).reshape(-1)],
                       dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidValueError("'values' must be a sequence of numbers (None/NaN mark missing ones)") from None
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return MeanCI(_NAN, _NAN, _NAN, _NAN, 0, confidence)
    mean = float(v.mean())
    if n < 2:
        return MeanCI(mean, _NAN, _NAN, _NAN, 1, confidence)
    half = float(_t_quantile(confidence, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return MeanCI(mean, mean - half, mean + half, half, n, confidence)


def mean_ci_columns(runs: Any, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per column of ``runs`` ``[S, T]``: ``(mean, lower, upper, n)`` over the finite entries.

    Columns with fewer than two finite runs have NaN bounds (and a NaN mean with none).

    Example:
        >>> m, lo, hi, n = mean_ci_columns([[1.0, 2.0], [3.0, float("nan")]])
        >>> m.tolist(), n.tolist(), bool(np.isnan(lo[1]))
        ([2.0, 2.0], [2, 1], True)
    """
    _check_confidence(confidence)
    arr = np.asarray(runs, dtype=np.float64)
    if arr.ndim != 2:
        raise InvalidValueError(f"'runs' must be 2-D [runs, points], got shape {arr.shape}")
    finite = np.isfinite(arr)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        vals = np.where(finite, arr, 0.0)
        mean = np.where(n > 0, vals.sum(0) / np.maximum(n, 1), np.nan)
        dev = np.where(finite, arr - mean, 0.0)
        sd = np.sqrt((dev * dev).sum(0) / np.maximum(n - 1, 1))
        half = np.where(n > 1, _t_quantile(confidence, np.maximum(n - 1, 1)) * sd / np.sqrt(np.maximum(n, 1)),
                        np.nan)
    return mean, mean - half, mean + half, n
