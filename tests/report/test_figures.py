"""Figures: fitted line / Pearson r and CIs against scipy, PNG content checks, argument errors."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib import image as mpimg
from scipy import stats

from pyadvt.report import figures as F


def _rgb(path) -> np.ndarray:
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    return np.round(img[..., :3] * 255).astype(int)


def _count_colour(img: np.ndarray, colour, tol=3) -> int:
    return int(np.sum(np.all(np.abs(img - np.array(colour)) <= tol, axis=-1)))


def _has_colour(img: np.ndarray, colour, tol=3) -> bool:
    return _count_colour(img, colour, tol) > 500  # a filled area, not anti-aliasing


@settings(max_examples=60, deadline=None)
@given(data=st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100)), min_size=3, max_size=30))
def test_fit_line_matches_scipy_linregress(data):
    x, y = np.array(data).T
    fit = F.fit_line(x, y)
    assert fit["n"] == len(data)
    if np.ptp(x) < 1e-9 or np.ptp(y) < 1e-9 or fit["r"] is None:
        return
    ref = stats.linregress(x, y)
    assert fit["slope"] == pytest.approx(ref.slope, rel=1e-6, abs=1e-6)
    assert fit["intercept"] == pytest.approx(ref.intercept, rel=1e-6, abs=1e-5)
    assert fit["r"] == pytest.approx(ref.rvalue, abs=1e-6) and fit["p"] == pytest.approx(ref.pvalue, abs=1e-6)


def test_fit_line_degenerate_spread_is_undefined_not_an_error():
    # found by hypothesis: numpy's polyfit raised LinAlgError on a denormal spread
    assert F.fit_line([0.0, 0.0, 1.1233640605337975e-219], [0.0, 0.0, 1.0])["slope"] is None


def test_fit_line_drops_undefined_pairs_and_reports_undefined_r():
    fit = F.fit_line([0, 1, None, 2, 3, float("nan")], [1, 3, 4, 5, 7, 0])
    assert fit["n"] == 4 and fit["slope"] == pytest.approx(2.0) and fit["r"] == pytest.approx(1.0)
    assert F.fit_line([1, 1, 1], [1, 2, 3])["r"] is None
    assert F.fit_line([1, 2], [1, 2])["r"] is None
    with pytest.raises(ValueError, match="same length"):
        F.fit_line([1, 2, 3], [1, 2])


def test_mean_ci_matches_student_t():
    rng = np.random.default_rng(0)
    runs = rng.normal(size=(5, 4))
    mean, lo, hi = F.mean_ci(runs)
    for t in range(4):
        ref = stats.t.interval(0.95, 4, loc=runs[:, t].mean(), scale=stats.sem(runs[:, t]))
        assert (lo[t], hi[t]) == pytest.approx(ref) and mean[t] == pytest.approx(runs[:, t].mean())
    mean1, lo1, hi1 = F.mean_ci(runs[:1])
    assert np.array_equal(mean1, lo1) and np.array_equal(mean1, hi1)


def test_heatmap_colours_follow_values_and_undefined_is_grey(tmp_path):
    path = F.heatmap([[0.0, 1.0], [None, 0.5]], tmp_path / "h.png", row_labels=["r0", "r1"],
                     col_labels=["c0", "c1"], title="ASR", annotate=False)
    img = _rgb(path)
    cmap = matplotlib.colormaps["viridis"]
    lo, hi = (np.round(np.array(cmap(v)[:3]) * 255).astype(int) for v in (0.0, 1.0))
    assert _has_colour(img, lo) and _has_colour(img, hi) and _has_colour(img, (0xBB, 0xBB, 0xBB))
    # without an undefined cell there is no grey cell
    img2 = _rgb(F.heatmap([[0.0, 1.0], [0.2, 0.5]], tmp_path / "h2.png", annotate=False))
    assert not _has_colour(img2, (0xBB, 0xBB, 0xBB))


def test_each_figure_writes_a_nonblank_png(tmp_path):
    paths = [
        F.scatter([1, 2, 3, 4], [2, 4, 5, 9], tmp_path / "s.png", labels=list("abcd"), xlabel="tau", ylabel="acc"),
        F.bars([0.5, 0.8, None], tmp_path / "b.png", labels=["ST", "AT", "SAM"], lower=[0.4, 0.7, None],
               upper=[0.6, 0.9, None]),
        F.curves([1, 2, 4], {"FT": [[0.1, 0.2, 0.4], [0.2, 0.3, 0.5]], "LP": [0.3, 0.3, 0.3]}, tmp_path / "c.png",
                 lower={"LP": [0.2, 0.2, 0.2]}, upper={"LP": [0.4, 0.4, 0.4]}, logx=True),
    ]
    for p in paths:
        assert p.exists() and _rgb(p).std() > 5  # not blank


def test_scatter_draws_the_fit_line_only_when_asked(tmp_path):
    red = (0xD6, 0x27, 0x28)
    with_fit = _rgb(F.scatter([1, 2, 3, 4], [1, 3, 2, 4], tmp_path / "a.png"))
    without = _rgb(F.scatter([1, 2, 3, 4], [1, 3, 2, 4], tmp_path / "b.png", fit=False))
    assert _has_colour(with_fit, red) and not _has_colour(without, red)


@pytest.mark.parametrize("call, message", [
    (lambda p: F.heatmap([[1, 2], [3]], p), "rectangular"),
    (lambda p: F.heatmap([1, 2], p), "2-D"),
    (lambda p: F.heatmap([[1, 2]], p, row_labels=["a", "b"]), "row_labels has 2 entries"),
    (lambda p: F.bars([1, 2], p, lower=[0, 0]), "both lower and upper"),
    (lambda p: F.bars([1, 2], p, lower=[0, 3], upper=[2, 4]), "lower <= value <= upper"),
    (lambda p: F.curves([1, 2], {"a": [1, 2, 3]}, p), "has 3 points but x has 2"),
    (lambda p: F.curves([1, 2], {}, p), "non-empty mapping"),
    (lambda p: F.scatter([1, "x"], [1, 2], p), "x must be"),
    (lambda p: F.heatmap([[1]], p.with_suffix(".svg")), "must end in .png"),
])
def test_argument_errors(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "f.png")


def test_plot_dispatches_specs_and_names_bad_ones(tmp_path):
    p = F.plot({"type": "bars", "values": [1, 2], "labels": ["a", "b"], "caption": "c"}, tmp_path / "x.png")
    assert p.exists()
    with pytest.raises(ValueError, match="figure 'pie'.*type must be one of"):
        F.plot({"type": "pie"}, tmp_path / "y.png")
    with pytest.raises(ValueError, match="figure 'My fig'.*unexpected keyword"):
        F.plot({"type": "heatmap", "title": "My fig", "matrix": [[1]], "colour": "red"}, tmp_path / "z.png")
