"""smoothness(method="exact") on the matrix-free route returns the same record as on the dense route:
values, a bool ``valid`` mask, iteration counts and convergence flags in their own fields.

Regression: the matrix-free route returned its tuple in another order, so ``valid`` held the
iteration counts (``n_undefined`` came out negative, e.g. "-111 of 3 samples") and ``iterations``
held the convergence flags."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from pyadvt.metrics import smoothness


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 50)).double()


def test_matrix_free_exact_record_matches_the_dense_route():
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 7, 21, 49])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "undefined samples" warning for a finite model
        free = smoothness(_net(), x, y, method="exact", route="matrix_free", progress=False)
        dense = smoothness(_net(), x, y, method="exact", route="dense", progress=False)
    assert free.valid.dtype == torch.bool and bool(free.valid.all()) and free.n_undefined == 0
    assert free.converged.dtype == torch.bool and bool(free.converged.all())
    assert free.iterations.dtype == torch.long and bool((free.iterations >= 2).all())
    torch.testing.assert_close(free.values, dense.values, rtol=1e-6, atol=1e-12)
    assert free.mean == dense.mean or abs(free.mean - dense.mean) <= 1e-6 * abs(dense.mean)
