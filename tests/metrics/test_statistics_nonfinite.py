"""ols_r2 refuses non-finite regressors (was a LAPACK 'SVD did not converge')."""

import numpy as np
import pytest

from pyadvt.metrics.statistics import ols_r2


def test_ols_r2_refuses_nan_regressors_naming_x():
    X = np.array([[0.0], [1.0], [np.nan], [3.0], [4.0]])
    with pytest.raises(ValueError, match="'X'"):
        ols_r2([1.0, 2.0, 3.0, 4.0, 6.0], X)


def test_ols_r2_matches_numpy_least_squares():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)), rng.normal(size=20)
    A = np.column_stack([np.ones(20), X])
    res = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    assert ols_r2(y, X) == pytest.approx(1 - (res @ res) / ((y - y.mean()) @ (y - y.mean())), rel=1e-12)
