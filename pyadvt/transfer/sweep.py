"""Subset-size x seed sweeps with mean and 95% confidence intervals (seed 002 sec. 4, Figs. 2-8).

Seed 002 fine-tunes on random target subsets of increasing size, repeats each with several seeds and
plots the mean with a 95% confidence interval, and the robust-minus-natural accuracy delta. Here:

* :func:`balanced_subset`: a seeded, class-balanced subset (every class gets ``size // C`` samples, the
  remainder drawn at random), so tiny subsets still cover all classes;
* :func:`mean_ci`: Student-t interval ``mean +- t_{0.975, n-1} s / sqrt(n)``;
* :func:`subset_sweep`: runs ``cell_fn(subset, seed) -> dict`` for every (size, seed), each finished
  cell written to a :class:`pyadvt.utils.sweep.CellStore` and reused on rerun;
* :func:`summarize` / :func:`paired_delta`: per-size mean/CI of a metric, and of the per-seed
  difference between two sweeps run with the same seeds (paired, as the same subsets are used).

Example:
    >>> mean_ci([1.0, 2.0, 3.0])["mean"], round(mean_ci([1.0, 2.0, 3.0])["half_width"], 4)
    (2.0, 2.4841)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch

from pyadvt.data import TensorData
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.stats import mean_ci as stats_mean_ci
from pyadvt.utils.sweep import CellStore, run_cells
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError, warn_invalid

__all__ = ["balanced_subset", "mean_ci", "subset_sweep", "summarize", "paired_delta"]


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> dict:
    """``{"mean", "lo", "hi", "half_width", "n"}`` with a Student-t interval; ``None`` bounds for n < 2.

    Non-finite values (undefined cells) are skipped, counted in ``n`` neither, and reported in one
    ``RuntimeWarning``.

    Source: seed 002 (Utrera et al., ICLR 2021) Section 4, the subset sweeps with 95% intervals; docs/theory.md §7.

    Raises:
        InvalidValueError: ``confidence`` is not a number in (0, 1).

    Example:
        >>> ci = mean_ci([1.0, 2.0, 3.0])
        >>> ci["mean"], ci["n"], round(ci["half_width"], 4)
        (2.0, 3, 2.4841)
    """
    values = list(values)
    out = stats_mean_ci(values, confidence=confidence).summary()  # pyadvt.utils.stats: the one interval
    warn_invalid(len(values) - out["n"], len(values), "mean_ci", "None or non-finite values, e.g. undefined cells")
    return out


def balanced_subset(data: TensorData, size: int | None, seed: int) -> TensorData:
    """A seeded class-balanced subset of ``size`` samples (``None`` or ``>= len(data)``: all data).

    Each class contributes ``min(count, size // C)`` samples, the rest is drawn uniformly from what
    is left; a sample's selection depends only on ``(seed, size)``.

    Source: seed 002 (Utrera et al., ICLR 2021) Section 4, the subset sweeps with 95% intervals; docs/theory.md §7.  ``data.x`` is ``[N, *in]``, ``data.y`` ``[N]``; the subset ``[size, *in]``.

    Raises:
        InvalidTypeError: ``data`` is not a TensorData.
        InvalidValueError, ValueError: ``size`` is not a positive int or None.

    Example:
        >>> import torch
        >>> from pyadvt.data import TensorData
        >>> data = TensorData(torch.rand(12, 1, 2, 2), torch.arange(12) % 3)
        >>> sorted(balanced_subset(data, 6, seed=0).y.tolist())
        [0, 0, 1, 1, 2, 2]
    """
    if not isinstance(data, TensorData):
        raise InvalidTypeError(f"'data' must be a pyadvt.data.TensorData, got {type(data).__name__}; "
                               "convert with pyadvt.data.to_tensor_data(data)")
    n = len(data)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise InvalidValueError(f"'size' must be a positive int or None, got {size!r}")
    if size is None or size >= n:
        return data
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"'size' must be a positive int or None, got {size!r}")
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + size)
    classes = torch.unique(data.y)
    per = size // len(classes)
    chosen = []
    for c in classes.tolist():
        idx = torch.nonzero(data.y == c).flatten()
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:per]])
    chosen = torch.cat(chosen)
    rest = torch.ones(n, dtype=torch.bool)
    rest[chosen] = False
    left = torch.nonzero(rest).flatten()
    extra = left[torch.randperm(len(left), generator=g)[: size - len(chosen)]]
    return data.subset(torch.cat([chosen, extra]).sort().values)


def subset_sweep(cell_fn: Callable[[TensorData, int], dict], train: TensorData, sizes: Sequence[int | None],
                 seeds: Sequence[int], *, store: CellStore | None = None, key: Hashable = (),
                 progress: bool = True, desc: str = "subset sweep") -> list[dict]:
    """Run ``cell_fn(balanced_subset(train, size, seed), seed)`` for every (size, seed).

    Source: seed 002 (Utrera et al., ICLR 2021) Section 4, the subset sweeps with 95% intervals; docs/theory.md §7.  ``train.x`` is ``[N, *in]``, ``train.y`` ``[N]``.

    Raises:
        InvalidTypeError: ``cell_fn`` is not callable or returns no dict.
        InvalidValueError: ``sizes`` / ``seeds`` are empty or a size is not a positive int or None.

    Example:
        >>> import torch
        >>> from pyadvt.data import TensorData
        >>> data = TensorData(torch.rand(12, 1, 2, 2), torch.arange(12) % 3)
        >>> rows = subset_sweep(lambda sub, seed: {"n": len(sub)}, data, [3, None], [0, 1], progress=False)
        >>> [(r["size"], r["seed"], r["n"]) for r in rows]
        [(3, 0, 3), (3, 1, 3), (12, 0, 12), (12, 1, 12)]

    Args:
        cell_fn: returns a JSON-able dict of metrics for one fine-tuning run.
        sizes: subset sizes (``None`` = all of ``train``).
        store: resumable cell store; cells are keyed ``(*key, size, seed)``.

    Returns:
        rows ``{"size": n, "seed": s, **metrics}`` in sweep order (``size`` is the actual subset size).
    """
    if not callable(cell_fn):
        raise InvalidTypeError(f"'cell_fn' must be a callable (subset, seed) -> dict, got {type(cell_fn).__name__}")
    sizes, seeds = list(sizes), list(seeds)
    if not sizes or not seeds:
        raise InvalidValueError(f"'sizes' and 'seeds' must be non-empty, got sizes={sizes!r}, seeds={seeds!r}")
    for s in sizes:
        if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1):
            raise InvalidValueError(f"'sizes' must hold positive ints or None, got {s!r}")
    key = tuple(key) if isinstance(key, (tuple, list)) else (key,)
    cells = [(*key, ("all" if s is None else int(s)), int(seed)) for s in sizes for seed in seeds]

    def run(cell):
        size, seed = cell[-2], cell[-1]
        sub = balanced_subset(train, None if size == "all" else size, seed)
        metrics = cell_fn(sub, seed)
        if not isinstance(metrics, dict):
            raise InvalidTypeError(f"'cell_fn' must return a dict of metrics, got {type(metrics).__name__}")
        return dict(metrics, size=len(sub), seed=seed)

    out = run_cells(cells, run, store, progress=progress, desc=desc)
    return [out[c] for c in cells]


def _check_rows(rows, metric: str, by: str, name: str) -> None:
    """Every row is a dict holding ``by``; some row holds ``metric`` (a row without it is an undefined cell)."""
    rows = list(rows)
    if not all(isinstance(r, dict) and by in r for r in rows):
        raise InvalidValueError(f"every row of '{name}' must be a dict with the 'by' key {by!r}")
    if rows and not any(metric in r for r in rows):
        keys = sorted({k for r in rows for k in r})
        raise InvalidValueError(f"'metric' {metric!r} is in no row of '{name}'; the rows hold {keys}")


@keyword_only("by", "confidence")
def summarize(rows: Sequence[dict], metric: str, *, by: str = "size", confidence: float = 0.95) -> list[dict]:
    """Per value of ``by`` (sorted): ``{by: value, **mean_ci(metric values)}``.

    Source: seed 002 (Utrera et al., ICLR 2021) Section 4, the subset sweeps with 95% intervals; docs/theory.md §7.

    Raises:
        InvalidValueError: a row is not a dict with ``by``, or no row holds ``metric``.

    Example:
        >>> rows = [{"size": 10, "seed": 0, "acc": 0.5}, {"size": 10, "seed": 1, "acc": 0.7}]
        >>> s = summarize(rows, "acc")
        >>> s[0]["size"], round(s[0]["mean"], 6), s[0]["n"]
        (10, 0.6, 2)
    """
    _check_rows(rows, metric, by, "rows")
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[by], []).append(r.get(metric))
    return [dict({by: k}, **mean_ci(v, confidence)) for k, v in sorted(groups.items())]


@keyword_only("by", "confidence")
def paired_delta(rows_a: Sequence[dict], rows_b: Sequence[dict], metric: str, *, by: str = "size",
                 confidence: float = 0.95) -> list[dict]:
    """Mean and CI of ``a - b`` per ``by`` value, pairing rows with equal ``(by, seed)`` (e.g. robust
    minus natural accuracy on the same subsets).

    Source: seed 002 (Utrera et al., ICLR 2021) Section 4, the subset sweeps with 95% intervals; docs/theory.md §7.

    Raises:
        InvalidValueError: a row is not a dict with ``by``, or no row holds ``metric``.
        ValueError: the sweeps share no ``(by, seed)`` pair.

    Example:
        >>> a = [{"size": 10, "seed": s, "acc": 0.6 + s / 10} for s in (0, 1)]
        >>> b = [{"size": 10, "seed": s, "acc": 0.5 + s / 10} for s in (0, 1)]
        >>> round(paired_delta(a, b, "acc")[0]["mean"], 6)
        0.1
    """
    _check_rows(rows_a, metric, by, "rows_a")
    _check_rows(rows_b, metric, by, "rows_b")
    b_index = {(r[by], r["seed"]): r.get(metric) for r in rows_b}
    diffs: dict = {}
    for r in rows_a:
        other = b_index.get((r[by], r["seed"]))
        if other is not None and r.get(metric) is not None:
            diffs.setdefault(r[by], []).append(r[metric] - other)
    if not diffs:
        raise ValueError(f"no ({by}, seed) pairs in common between the two sweeps for metric {metric!r}")
    return [dict({by: k}, **mean_ci(v, confidence)) for k, v in sorted(diffs.items())]
