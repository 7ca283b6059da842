"""Matplotlib figures for reports (Agg canvas, no global pyplot state, safe in headless runs).

Each function draws one figure, saves it as a PNG and returns the path:

* :func:`heatmap` - a matrix with row/column labels (e.g. the source x target transfer ASR matrix);
  ``None``/NaN cells (undefined) are drawn grey.
* :func:`scatter` - points with a least-squares line and Pearson r in the legend (e.g. tau1*tau2
  against fine-tuned accuracy, seed 000 Fig. 3; smoothness against ASR, seed 001).
* :func:`bars` - bars with confidence-interval whiskers (e.g. ASR per surrogate training method).
* :func:`scatter_grid` - small scatter panels in a grid (every score against accuracy, per target).
* :func:`curves` - lines against x with shaded bands: either explicit ``lower``/``upper`` or, when a
  series is 2-D (runs x points), mean with a 95% Student-t confidence band over runs.

:func:`plot` draws a figure from a result's figure spec ``{"type": name, **kwargs}`` (see
:mod:`pyadvt.report.results`).

Example:
    >>> import tempfile, os
    >>> p = heatmap([[1.0, 0.2], [0.3, 0.9]], os.path.join(tempfile.mkdtemp(), "m.png"),
    ...             row_labels=["A", "B"], col_labels=["A", "B"], title="ASR")
    >>> p.suffix, p.stat().st_size > 0
    ('.png', True)
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pyadvt.utils.io import atomic_write
from pyadvt.utils.stats import mean_ci_columns, pearson

__all__ = ["heatmap", "scatter", "bars", "curves", "scatter_grid", "dendrogram", "plot", "fit_line", "mean_ci"]

_DPI = 110


def _array(values: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """Float array with None -> NaN; ``ValueError`` naming ``name`` for ragged/non-numeric input."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        if isinstance(values, np.ndarray):
            arr = values.astype(float)
        else:
            arr = np.array(values, dtype=object)
            arr = np.where(arr == None, np.nan, arr).astype(float)  # noqa: E711 - elementwise None test
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a rectangular array of numbers (None = undefined)") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr


def _labels(labels: Sequence | None, n: int, name: str) -> list[str]:
    if labels is None:
        return [str(i) for i in range(n)]
    labels = [str(v) for v in labels]
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} entries but the data has {n}")
    return labels


def _new_figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figure path must end in .png, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:  # a crash mid-write never leaves a truncated figure
        fig.savefig(fh, format="png")
    return path


def _decorate(ax: Any, title: str | None, xlabel: str | None, ylabel: str | None) -> None:
    if title:  # wrap long titles to the figure's width instead of clipping them
        width = max(20, int(ax.figure.get_figwidth() * 10))
        ax.set_title(textwrap.fill(str(title), width), fontsize=10 if len(str(title)) > width else 11)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)


def heatmap(matrix: Any, path: str | os.PathLike, *, row_labels: Sequence | None = None,
            col_labels: Sequence | None = None, title: str | None = None, xlabel: str | None = None,
            ylabel: str | None = None, cmap: str = "viridis", vmin: float | None = None,
            vmax: float | None = None, annotate: bool | None = None, fmt: str = ".2f",
            colorbar_label: str | None = None) -> Path:
    """Heatmap of ``matrix`` [R, C] with labelled rows/columns; values annotated when ``annotate``
    (default: when R, C <= 12). Undefined cells (``None``/NaN) are grey and annotated ``n/a``.

    Raises:
        ValueError: ``matrix`` is not 2-D, or the labels do not match its shape (raised before anything is drawn; :func:`plot` adds the figure's title).
        OSError: ``path`` cannot be written.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> heatmap([[1.0, None], [0.5, 0.2]], os.path.join(d, "h.png"), row_labels=["a", "b"]).name
        'h.png'
    """
    arr = _array(matrix, "matrix", ndim=2)
    rows = _labels(row_labels, arr.shape[0], "row_labels")
    cols = _labels(col_labels, arr.shape[1], "col_labels")
    if annotate is None:
        annotate = max(arr.shape) <= 12
    fig = _new_figure((1.2 + 0.55 * max(arr.shape[1], 4), 1.0 + 0.45 * max(arr.shape[0], 4)))
    ax = fig.add_subplot()
    masked = np.ma.masked_invalid(arr)
    cm = matplotlib.colormaps[cmap].with_extremes(bad="#bbbbbb")
    im = ax.imshow(masked, cmap=cm, vmin=vmin, vmax=vmax, aspect="auto")
    cbar = fig.colorbar(im, ax=ax)
    if colorbar_label:
        cbar.set_label(colorbar_label)
    ax.set_xticks(range(len(cols)), cols, rotation=45 if max(map(len, cols), default=0) > 3 else 0,
                  ha="right" if max(map(len, cols), default=0) > 3 else "center")
    ax.set_yticks(range(len(rows)), rows)
    if annotate:
        finite = arr[np.isfinite(arr)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for i in range(arr.shape[0]):
            for j in range(arr.shape[1]):
                v = arr[i, j]
                text = format(v, fmt) if math.isfinite(v) else "n/a"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if math.isfinite(v) and v < mid else "black")
    _decorate(ax, title, xlabel, ylabel)
    return _save(fig, path)


def fit_line(x: Any, y: Any) -> dict:
    """Least-squares line and Pearson correlation over the pairs where both values are finite.

    Returns ``{"slope", "intercept", "r", "p", "n"}``; ``slope``/``intercept``/``r``/``p`` are
    ``None`` when fewer than 3 pairs remain or either coordinate is constant (r undefined).

    Source: least squares and Pearson r with docs/theory.md §11.9's missing-value policy.

    Raises:
        ValueError: ``x`` and ``y`` differ in length.

    Example:
        >>> fit_line([0, 1, 2, 3], [1, 3, 5, 7.0])["slope"]
        2.0
    """
    xs, ys = _array(x, "x", ndim=1), _array(y, "y", ndim=1)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    out: dict[str, Any] = {"slope": None, "intercept": None, "r": None, "p": None, "n": int(xs.size)}
    if xs.size < 3:
        return out
    dx, dy = xs - xs.mean(), ys - ys.mean()
    sxx, syy = float(dx @ dx), float(dy @ dy)
    if not (sxx > 0 and syy > 0 and math.isfinite(sxx) and math.isfinite(syy)):
        return out  # a (numerically) constant coordinate: no line, no correlation
    slope = float(dx @ dy) / sxx
    c = pearson(xs, ys)
    out.update(slope=round(slope, 12), intercept=round(float(ys.mean() - slope * xs.mean()), 12) + 0.0,
               r=c.r, p=c.p)
    return out


def scatter(x: Any, y: Any, path: str | os.PathLike, *, labels: Sequence | None = None,
            title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
            fit: bool = True) -> Path:
    """Scatter of ``y`` [N] against ``x`` [N]; with ``fit`` a least-squares line whose legend gives
    the equation and Pearson r (:func:`fit_line`). ``labels`` [N] annotate the points.

    Raises:
        ValueError: ``x``, ``y`` (and ``labels``) differ in length (raised before anything is drawn; :func:`plot` adds the figure's title).
        OSError: ``path`` cannot be written.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> scatter([0, 1, 2, 3], [1, 3, 2, 4], os.path.join(d, "s.png"), labels=list("abcd")).name
        's.png'
    """
    xs, ys = _array(x, "x", ndim=1), _array(y, "y", ndim=1)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    names = None if labels is None else _labels(labels, xs.size, "labels")
    fig = _new_figure((5.2, 4.0))
    ax = fig.add_subplot()
    ax.scatter(xs, ys, s=28, color="#1f77b4", zorder=3)
    if names:
        for xi, yi, name in zip(xs, ys, names):
            if math.isfinite(xi) and math.isfinite(yi):
                ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if fit:
        f = fit_line(xs, ys)
        if f["r"] is not None:
            ok = np.isfinite(xs) & np.isfinite(ys)
            grid = np.linspace(xs[ok].min(), xs[ok].max(), 50)
            ax.plot(grid, f["slope"] * grid + f["intercept"], color="#d62728", zorder=2,
                    label=f"y = {f['slope']:.3g}x {'-' if f['intercept'] < 0 else '+'} {abs(f['intercept']):.3g}; "
                          f"Pearson r = {f['r']:.3f} (n={f['n']})")
            ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    _decorate(ax, title, xlabel, ylabel)
    return _save(fig, path)


def bars(values: Any, path: str | os.PathLike, *, labels: Sequence | None = None, lower: Any = None,
         upper: Any = None, title: str | None = None, xlabel: str | None = None,
         ylabel: str | None = None) -> Path:
    """Bar chart of ``values`` [K] with CI whiskers from ``lower`` [K] to ``upper`` [K] (both or
    neither; ``None`` entries = no whisker).

    Raises:
        ValueError: ``values``, ``labels``, ``lower`` and ``upper`` differ in length, or only one of ``lower``/``upper`` is given (raised before anything is drawn; :func:`plot` adds the figure's title).
        OSError: ``path`` cannot be written.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> bars([0.2, 0.5], os.path.join(d, "b.png"), labels=["a", "b"], lower=[0.1, 0.4], upper=[0.3, 0.6]).name
        'b.png'
    """
    vals = _array(values, "values", ndim=1)
    names = _labels(labels, vals.size, "labels")
    if (lower is None) != (upper is None):
        raise ValueError("give both lower and upper confidence bounds, or neither")
    fig = _new_figure((1.5 + 0.6 * max(vals.size, 3), 3.8))
    ax = fig.add_subplot()
    yerr = None
    if lower is not None:
        lo, hi = _array(lower, "lower", ndim=1), _array(upper, "upper", ndim=1)
        if lo.shape != vals.shape or hi.shape != vals.shape:
            raise ValueError(f"lower and upper must have {vals.size} entries like values")
        if np.any((lo > vals + 1e-12) | (hi < vals - 1e-12)):
            raise ValueError("confidence bounds must satisfy lower <= value <= upper")
        yerr = np.nan_to_num(np.stack([vals - lo, hi - vals]), nan=0.0)
    ax.bar(range(vals.size), np.nan_to_num(vals, nan=0.0), yerr=yerr, capsize=4, color="#4c72b0")
    ax.set_xticks(range(vals.size), names, rotation=30 if max(map(len, names), default=0) > 5 else 0,
                  ha="right" if max(map(len, names), default=0) > 5 else "center")
    ax.grid(axis="y", alpha=0.3)
    _decorate(ax, title, xlabel, ylabel)
    return _save(fig, path)


def dendrogram(linkage_matrix: Any, labels: Sequence, path: str | os.PathLike, *,
               title: str | None = "Task similarity tree",
               ylabel: str | None = "distance between ATM columns") -> Path:
    """The similarity tree of a scipy linkage matrix ``[N - 1, 4]`` (e.g.
    :func:`pyadvt.metrics.atm.cluster_tree` of an ATM, seed 000 §4.3, docs/theory.md §2) with the
    ``N`` leaves named by ``labels``.

    Raises:
        ValueError: ``linkage_matrix`` is not ``[N - 1, 4]`` for the ``N`` labels (raised before anything is drawn; :func:`plot` adds the figure's title).
        OSError: ``path`` cannot be written.

    Example:
        >>> import tempfile, os, numpy as np
        >>> from scipy.cluster.hierarchy import linkage
        >>> Z = linkage(np.array([[0.0], [0.1], [1.0]]), "average")
        >>> dendrogram(Z, ["a", "b", "c"], os.path.join(tempfile.mkdtemp(), "tree.png")).suffix
        '.png'
    """
    from scipy.cluster import hierarchy

    Z = _array(linkage_matrix, "linkage_matrix", ndim=2)
    if Z.shape[1] != 4 or not np.isfinite(Z).all():
        raise ValueError(f"linkage_matrix must be a finite scipy linkage matrix [N - 1, 4], got shape {Z.shape}")
    names = _labels(labels, Z.shape[0] + 1, "labels")
    fig = _new_figure((max(4.0, 0.5 * len(names)), 3.5))
    ax = fig.add_subplot()
    hierarchy.dendrogram(Z, labels=names, ax=ax, leaf_rotation=60)
    _decorate(ax, title, None, ylabel)
    return _save(fig, path)


def mean_ci(runs: Any, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 of ``runs`` [S, T] and the Student-t ``confidence`` interval (lower, upper).

    With one run the interval collapses to the mean. NaN entries are ignored per column.

    Source: the mean ± Student-t intervals of docs/theory.md §4, §7 and §11.9 (``runs`` is ``[S, T]``).

    Raises:
        ValueError: ``runs`` is not 2-D ``[S, T]``.

    Example:
        >>> m, lo, hi = mean_ci([[1.0, 2.0], [3.0, 2.0]])
        >>> m.tolist(), bool(lo[0] < 2 < hi[0]), float(hi[1] - lo[1])
        ([2.0, 2.0], True, 0.0)
    """
    arr = _array(runs, "runs", ndim=2)
    mean, lo, hi, n = mean_ci_columns(arr, confidence=confidence)  # pyadvt.utils.stats: the one interval
    if not arr.shape[0]:
        mean = np.zeros(arr.shape[1])
    # for drawing, a column with < 2 runs has a collapsed band at its mean
    return mean, np.where(n > 1, lo, mean), np.where(n > 1, hi, mean)


def curves(x: Any, series: Mapping[str, Any], path: str | os.PathLike, *, lower: Mapping | None = None,
           upper: Mapping | None = None, title: str | None = None, xlabel: str | None = None,
           ylabel: str | None = None, logx: bool = False) -> Path:
    """Lines ``series[name]`` against ``x`` [T] with shaded bands.

    A series is [T] (band from ``lower[name]``/``upper[name]`` when given) or [S, T] runs (mean line
    with a 95% confidence band over runs, :func:`mean_ci`).

    Raises:
        ValueError: a series does not match ``x`` [T], or a band lacks its other side (raised before anything is drawn; :func:`plot` adds the figure's title).
        OSError: ``path`` cannot be written.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> curves([1, 2, 3], {"runs": [[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]]}, os.path.join(d, "c.png")).name
        'c.png'
    """
    xs = _array(x, "x", ndim=1)
    if not isinstance(series, Mapping) or not series:
        raise ValueError("series must be a non-empty mapping name -> values")
    fig = _new_figure((5.6, 4.0))
    ax = fig.add_subplot()
    for name, values in series.items():
        arr = _array(values, f"series[{name!r}]")
        if arr.ndim == 2:
            mid, lo, hi = mean_ci(arr)
        elif arr.ndim == 1:
            mid, lo, hi = arr, None, None
            if lower is not None and name in lower:
                lo = _array(lower[name], f"lower[{name!r}]", ndim=1)
                hi = _array((upper or {})[name], f"upper[{name!r}]", ndim=1) if upper and name in upper else mid
        else:
            raise ValueError(f"series[{name!r}] must be 1-D [T] or 2-D [runs, T], got shape {arr.shape}")
        if mid.shape != xs.shape:
            raise ValueError(f"series[{name!r}] has {mid.size} points but x has {xs.size}")
        (line,) = ax.plot(xs, mid, marker="o", markersize=3, label=str(name))
        if lo is not None:
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _decorate(ax, title, xlabel, ylabel)
    return _save(fig, path)


def scatter_grid(panels: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, ncols: int = 4,
                 title: str | None = None) -> Path:
    """A grid of small scatter plots, one per panel ``{"x": [N], "y": [N], "title", "xlabel", "ylabel"}``
    filled row by row (e.g. every transferability score against transfer accuracy, one column per
    target task); each panel's title gets its Pearson r (:func:`fit_line`)."""
    if not panels:
        raise ValueError("scatter_grid needs at least one panel")
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"'ncols' must be a positive int, got {ncols!r}")
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure((2.6 * ncols, 2.2 * nrows + (0.4 if title else 0.0)))
    for k, panel in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        xs, ys = _array(panel["x"], "x", ndim=1), _array(panel["y"], "y", ndim=1)
        if xs.shape != ys.shape:
            raise ValueError(f"panel {k}: x and y must have the same length, got {xs.size} and {ys.size}")
        ax.scatter(xs, ys, s=12, color="#1f77b4")
        f = fit_line(xs, ys)
        label = panel.get("title") or ""
        ax.set_title(label + ("" if f["r"] is None else f" (r={f['r']:.2f})"), fontsize=7)
        ax.set_xlabel(panel.get("xlabel") or "", fontsize=6)
        ax.set_ylabel(panel.get("ylabel") or "", fontsize=6)
        ax.tick_params(labelsize=5)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


_PLOTTERS = {"heatmap": heatmap, "scatter": scatter, "bars": bars, "curves": curves, "scatter_grid": scatter_grid}


def plot(spec: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Draw a figure spec ``{"type": "heatmap"|"scatter"|"bars"|"curves", **kwargs}`` to ``path``.

    ``ValueError`` names the figure (its ``title``) when the spec is malformed.

    Raises:
        ValueError: unknown ``type`` or malformed arguments (the message names the figure).

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> plot({"type": "bars", "values": [1, 2], "title": "t"}, os.path.join(d, "p.png")).name
        'p.png'
        >>> try:
        ...     plot({"type": "pie", "title": "t"}, os.path.join(d, "q.png"))
        ... except ValueError as err:
        ...     print(str(err).startswith("figure 't'"))
        True
    """
    kwargs = dict(spec)
    kind = kwargs.pop("type", None)
    name = kwargs.get("title") or kind
    if kind not in _PLOTTERS:
        raise ValueError(f"figure {name!r}: type must be one of {sorted(_PLOTTERS)}, got {kind!r}")
    kwargs.pop("caption", None)
    try:
        return _PLOTTERS[kind](path=path, **kwargs)
    except TypeError as exc:
        raise ValueError(f"figure {name!r}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"figure {name!r}: {exc}") from None
