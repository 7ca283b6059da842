"""Correlation / regression table across a surrogate zoo (seed 001 Table VI, docs/theory.md §3).

For each surrogate (one row) the attack success rate ``ASR`` is related to the surrogate's clean
accuracy (``Acc``), fooling probability (``FP``), smoothness (``MS``) and gradient similarity
(``GS``): Pearson ``r`` of ASR with each factor, and the OLS coefficient of determination ``R^2``
(with intercept) of ``ASR ~ MS + GS`` (``R2_1``) and ``ASR ~ Acc + FP + MS + GS`` (``R2_2``).

Example:
    >>> import numpy as np
    >>> ms = np.array([3.0, 2.0, 1.5, 1.0, 0.8]); gs = np.array([0.2, 0.3, 0.35, 0.3, 0.25])
    >>> t = statistics_table(asr=0.5 - 0.1 * ms + gs, accuracy=[0.9, 0.92, 0.91, 0.9, 0.88],
    ...                      fooling=[1, 1, 0.99, 0.98, 0.97], smoothness=ms, similarity=gs)
    >>> round(t.r2_smooth_sim, 6)
    1.0
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from pyadvt.metrics._result_protocol import headline
from pyadvt.utils.errors import InvalidValueError
from pyadvt.utils.stats import pearson

__all__ = ["StatisticsTable", "ols_r2", "pearson_r", "statistics_table"]

FACTORS = ("accuracy", "fooling", "smoothness", "similarity")


def _vector(v, name: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if n is not None and a.shape[0] != n:
        raise ValueError(f"'{name}' has {a.shape[0]} values but 'asr' has {n}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"'{name}' contains non-finite values; drop those surrogates first")
    return a


def pearson_r(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson correlation of two equal-length vectors (:func:`pyadvt.utils.stats.pearson`'s NaN policy:
    non-finite pairs dropped); NaN with a warning when undefined (a constant side, < 3 pairs).

    One entry ``r`` of seed 001's Table VI (docs/theory.md §3).

    Raises:
        ValueError: (``InvalidValueError``) when ``a`` and ``b`` are not 1-D of equal length; numpy's
            ``ValueError`` when a value is not a number.

    Example:
        >>> round(pearson_r([1, 2, 3, 4], [2, 4, 6, 8]), 6)
        1.0
    """
    c = pearson(a, b)
    if not c.valid:
        warnings.warn(f"pearson_r: {c.reason}: no correlation; returning NaN", RuntimeWarning, stacklevel=2)
    return c.r


def ols_r2(y: ArrayLike, X: ArrayLike) -> float:
    """``R^2 = 1 - SS_res / SS_tot`` of the least-squares fit ``y ~ 1 + X`` (``X``: [n, k]).

    The ``R^2`` columns of seed 001's Table VI (docs/theory.md §3). NaN with a ``RuntimeWarning`` for a
    constant ``y``; a warning (not an error) when there are no more observations than coefficients.

    Raises:
        ValueError: when ``y`` or ``X`` holds NaN or infinite values, or when ``X`` cannot be reshaped to
            ``[n, k]`` with ``n = len(y)`` (numpy's ``ValueError``).

    Example:
        >>> round(ols_r2([1.0, 3.0, 5.0, 7.0], [[0.0], [1.0], [2.0], [3.0]]), 6)
        1.0
    """
    y = _vector(y, "y")
    X = np.asarray(X, dtype=np.float64).reshape(y.shape[0], -1)
    if not np.isfinite(X).all():
        raise InvalidValueError("ols_r2: 'X' holds NaN or infinite values; drop or impute those observations")
    if X.shape[0] <= X.shape[1]:
        warnings.warn(f"ols_r2: {X.shape[0]} observations for {X.shape[1]} regressors + intercept: R^2 is "
                      "trivially high", RuntimeWarning, stacklevel=2)
    A = np.column_stack([np.ones(y.shape[0]), X])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    res = y - A @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    if ss_tot == 0:
        warnings.warn("ols_r2: constant response; R^2 undefined (NaN)", RuntimeWarning, stacklevel=2)
        return float("nan")
    return float(1.0 - (res @ res) / ss_tot)


@dataclass
class StatisticsTable:
    """One Table-VI row (seed 001, docs/theory.md §3): ``r`` per factor, ``R2_1`` (MS+GS) and ``R2_2``
    (all four).

    An aggregate over the ``n`` surrogates (their values must be finite, so none is masked): there is
    no ``valid`` mask. ``n_undefined`` counts the table's statistics (each ``r``, ``R2_1``, ``R2_2``)
    that are NaN, i.e. undefined (a constant factor or ASR). The headline ``value`` is
    :attr:`r2_smooth_sim` (``R2_1``: how much of the ASR smoothness and similarity, the two factors of
    seed 001's bound, explain).

    Example:
        >>> StatisticsTable(r={"smoothness": -0.9}, r2_smooth_sim=0.8, r2_all=0.85, n=5).summary()
        {'r_smoothness': -0.9, 'R2_1': 0.8, 'R2_2': 0.85, 'n': 5, 'n_undefined': 0}
    """

    r: dict = field(default_factory=dict)
    r2_smooth_sim: float = float("nan")
    r2_all: float = float("nan")
    n: int = 0

    value = headline("r2_smooth_sim", "R2_1, ASR ~ MS + GS")

    @property
    def n_undefined(self) -> int:
        """Number of NaN (undefined) statistics among the ``r`` values, ``R2_1`` and ``R2_2``."""
        return sum(math.isnan(v) for v in (*self.r.values(), self.r2_smooth_sim, self.r2_all))

    def summary(self) -> dict:
        return {**{f"r_{k}": v for k, v in self.r.items()}, "R2_1": self.r2_smooth_sim, "R2_2": self.r2_all,
                "n": self.n, "n_undefined": self.n_undefined}


def statistics_table(asr: ArrayLike, accuracy: ArrayLike, fooling: ArrayLike, smoothness: ArrayLike,
                     similarity: ArrayLike) -> StatisticsTable:
    """Pearson ``r`` of ASR with each factor, and OLS ``R^2`` of ASR ~ MS + GS and ASR ~ all four.

    Seed 001's Table VI (docs/theory.md §3).

    Args: equal-length sequences, one entry per surrogate (finite values).

    Raises:
        ValueError: when a sequence holds NaN or infinite values, or when a factor does not have one
            value per entry of ``asr``.

    Example:
        >>> t = statistics_table(asr=[0.5, 0.6, 0.7, 0.8, 0.9], accuracy=[0.9, 0.8, 0.9, 0.8, 0.9],
        ...                      fooling=[1.0, 0.9, 0.95, 0.9, 1.0], smoothness=[5, 4, 3, 2, 1],
        ...                      similarity=[0.1, 0.3, 0.2, 0.5, 0.4])
        >>> round(t.r["smoothness"], 6), t.n
        (-1.0, 5)
    """
    y = _vector(asr, "asr")
    cols = {name: _vector(v, name, y.shape[0])
            for name, v in zip(FACTORS, (accuracy, fooling, smoothness, similarity))}
    r = {name: pearson_r(y, c) for name, c in cols.items()}
    r2_1 = ols_r2(y, np.column_stack([cols["smoothness"], cols["similarity"]]))
    r2_2 = ols_r2(y, np.column_stack([cols[k] for k in FACTORS]))
    return StatisticsTable(r=r, r2_smooth_sim=r2_1, r2_all=r2_2, n=int(y.shape[0]))
