"""pyadvt.utils.stats (correlations, mean +- CI), pyadvt.utils.io (atomic writes), pyadvt.utils.errors,
checked against scipy and re-implementations written here; the old locations delegate to them."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from pyadvt.utils import stats as S
from pyadvt.utils.errors import InvalidValueError, UserError
from pyadvt.utils.io import TMP_PREFIX, atomic_write, atomic_write_bytes, atomic_write_text

SCIPY = {"pearson": sps.pearsonr, "spearman": sps.spearmanr, "kendall": sps.kendalltau,
         "weighted_tau": sps.weightedtau}

values = st.lists(st.tuples(st.one_of(st.floats(-5, 5), st.just(float("nan"))),
                            st.one_of(st.integers(-3, 3).map(float), st.floats(-5, 5))), min_size=0, max_size=20)


@settings(max_examples=60, deadline=None)
@given(pairs=values, method=st.sampled_from(S.CORRELATIONS))
def test_correlation_matches_scipy_on_the_finite_pairs(pairs, method):
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    c = S.correlation(x, y, method)
    ok = np.isfinite(x) & np.isfinite(y)
    assert c.n == int(ok.sum())
    xs, ys = x[ok], y[ok]
    if ok.sum() < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        assert math.isnan(c.r) and not c.valid and c.reason and c.summary()["r"] is None
        return
    ref = SCIPY[method](xs, ys)
    assert c.valid and c.n_undefined == 0
    assert c.r == pytest.approx(float(ref.statistic), abs=1e-9)
    if method != "weighted_tau":
        assert c.p == pytest.approx(float(ref.pvalue), abs=1e-9)


def test_nan_policy_drops_pairs_and_never_raises_on_undefined():
    c = S.spearman([1, None, 3, float("inf"), 5, 6], [2, 3, float("nan"), 1, 4, 7])
    assert c.n == 3
    assert c.r == pytest.approx(sps.spearmanr([1, 5, 6], [2, 4, 7]).statistic)
    for x, y, why in (([1, 2], [1, 2], "fewer than 3"), ([1, 1, 1], [1, 2, 3], "constant"),
                      ([], [], "fewer than 3")):
        for m in S.CORRELATIONS:
            c = S.correlation(x, y, m, ci="bootstrap")
            assert math.isnan(c.r) and why in c.reason and math.isnan(c.lower)


def test_malformed_input_raises_before_work():
    with pytest.raises(InvalidValueError, match="'x' and 'y'"):
        S.pearson([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="'method'"):
        S.correlation([1, 2, 3], [1, 2, 3], "tau")
    with pytest.raises(ValueError, match="Fisher"):
        S.weighted_tau([1, 2, 3], [1, 2, 3], ci="fisher")
    with pytest.raises(ValueError, match="'confidence'"):
        S.mean_ci([1, 2], confidence=1.5)
    with pytest.raises(ValueError, match="'n_boot'"):
        S.bootstrap_ci([1, 2, 3], [3, 2, 1], n_boot=0)


@pytest.mark.parametrize("method,c,d", [("pearson", 1.0, 3), ("spearman", 1.06, 3), ("kendall", 0.437, 4)])
def test_fisher_interval_by_hand(method, c, d):
    rng = np.random.default_rng(3)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    res = S.correlation(x, y, method, ci="fisher", confidence=0.9)
    r = float(SCIPY[method](x, y).statistic)
    half = 1.6448536269514722 * math.sqrt(c / (30 - d))
    assert res.lower == pytest.approx(math.tanh(math.atanh(r) - half), abs=1e-12)
    assert res.upper == pytest.approx(math.tanh(math.atanh(r) + half), abs=1e-12)
    if method == "pearson":  # scipy's own Fisher interval for Pearson
        ci = sps.pearsonr(x, y).confidence_interval(0.9)
        assert (res.lower, res.upper) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert all(math.isnan(v) for v in S.fisher_ci(1.0, 30))  # unbounded at |r| = 1
    assert all(math.isnan(v) for v in S.fisher_ci(0.3, 3))


@pytest.mark.parametrize("method", S.CORRELATIONS)
def test_bootstrap_interval_matches_a_loop_over_resamples(method):
    rng = np.random.default_rng(0)
    x = np.array([0, 0, 1, np.nan, 0, 1, 0, np.nan, 0])  # mostly ties: some resamples have a constant side
    y = x + rng.normal(size=9)
    n_boot = 150 if method in ("kendall", "weighted_tau") else 400
    lo, hi = S.bootstrap_ci(x, y, method=method, n_boot=n_boot, confidence=0.8, seed=5)
    ok = np.isfinite(x) & np.isfinite(y)
    xs, ys = x[ok], y[ok]
    idx = np.random.default_rng(5).integers(0, xs.size, (n_boot, xs.size))
    rs = [float(SCIPY[method](xs[i], ys[i]).statistic) for i in idx if np.ptp(xs[i]) > 0 and np.ptp(ys[i]) > 0]
    assert len(rs) < n_boot  # the skip rule was exercised
    assert (lo, hi) == pytest.approx((np.quantile(rs, 0.1), np.quantile(rs, 0.9)), abs=1e-9)
    c = S.correlation(x, y, method, ci="bootstrap", n_boot=n_boot, confidence=0.8, seed=5)
    assert (c.lower, c.upper) == pytest.approx((lo, hi), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(v=st.lists(st.one_of(st.floats(-100, 100), st.just(float("nan")), st.none()), max_size=15),
       conf=st.floats(0.5, 0.99))
def test_mean_ci_matches_scipy_t_interval(v, conf):
    r = S.mean_ci(v, confidence=conf)
    f = np.array([x for x in v if x is not None and math.isfinite(x)])
    assert r.n == f.size
    if f.size == 0:
        assert math.isnan(r.mean) and r.summary()["mean"] is None
        return
    assert r.mean == pytest.approx(f.mean(), abs=1e-9)
    if f.size < 2:
        assert not r.valid and r.summary()["lo"] is None
        return
    if f.std() == 0:
        assert r.half_width == pytest.approx(0.0, abs=1e-9)
        return
    lo, hi = sps.t.interval(conf, f.size - 1, loc=f.mean(), scale=sps.sem(f))
    assert (r.lower, r.upper) == pytest.approx((lo, hi), rel=1e-9, abs=1e-9)


def test_mean_ci_columns_agrees_with_per_column_mean_ci():
    rng = np.random.default_rng(1)
    runs = rng.normal(size=(5, 6))
    runs[0, 1] = np.nan
    runs[1:, 4] = np.nan  # one finite run
    runs[:, 5] = np.nan  # none
    m, lo, hi, n = S.mean_ci_columns(runs, confidence=0.9)
    for j in range(6):
        ref = S.mean_ci(runs[:, j], confidence=0.9)
        assert n[j] == ref.n
        np.testing.assert_allclose([m[j], lo[j], hi[j]], [ref.mean, ref.lower, ref.upper], equal_nan=True, rtol=1e-12)


def test_old_locations_delegate():
    from pyadvt.metrics.statistics import pearson_r
    from pyadvt.report.figures import fit_line, mean_ci as figure_mean_ci
    from pyadvt.selection.ranking import spearman_ci
    from pyadvt.transfer.sweep import mean_ci as sweep_mean_ci

    x, y = [1.0, 2.0, float("nan"), 4.0, 5.0], [1.0, 3.0, 2.0, 2.5, 6.0]
    assert pearson_r(x, y) == pytest.approx(sps.pearsonr([1, 2, 4, 5], [1, 3, 2.5, 6]).statistic)
    assert sweep_mean_ci([1.0, None, 3.0]) == S.mean_ci([1.0, None, 3.0]).summary()
    sc, ref = spearman_ci(x, y), S.spearman(x, y, ci="fisher")
    assert (sc["rho"], sc["lower"], sc["n"]) == (pytest.approx(ref.r), ref.lower, 4)
    assert fit_line(x, y)["r"] == pytest.approx(sps.pearsonr([1, 2, 4, 5], [1, 3, 2.5, 6]).statistic)
    m, lo, hi = figure_mean_ci([[1.0, 2.0], [3.0, float("nan")]])
    assert m.tolist() == [2.0, 2.0] and lo[1] == hi[1] == 2.0 and lo[0] < 2 < hi[0]


def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path):
    p = tmp_path / "d" / "f.json"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_write(p, "w") as fh:
            fh.write("partial")
            raise RuntimeError("crash mid-write")
    assert p.read_text() == "old"
    assert not [q for q in p.parent.iterdir() if q.name.startswith(TMP_PREFIX)]
    assert atomic_write_bytes(p, b"new") == p and p.read_bytes() == b"new"
    with pytest.raises(ValueError, match="'mode'"):
        with atomic_write(p, "a"):
            pass
    from pyadvt.utils import sweep  # old location keeps working
    assert sweep.atomic_write_text is atomic_write_text and sweep.atomic_write_bytes is atomic_write_bytes


def test_checkpoint_goes_through_atomic_write(tmp_path, monkeypatch):
    import torch

    from pyadvt.train.checkpoint import save_checkpoint

    path = tmp_path / "m.pt"
    save_checkpoint(path, torch.nn.Linear(2, 2))
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, torch.nn.Linear(2, 2))
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.pt"]


def test_errors_module_imports_nothing():
    code = ("import sys; import pyadvt.utils.errors as e; "
            "heavy = [m for m in ('torch', 'numpy', 'scipy', 'matplotlib') if m in sys.modules]; "
            "print(heavy); assert not heavy, heavy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    from pyadvt.utils import validation

    assert validation.UserError is UserError and validation.InvalidValueError is InvalidValueError
