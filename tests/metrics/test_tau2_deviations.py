"""tau2_from_deviations: non-finite rows are undefined (masked, counted, warned); empty input refused."""

import pytest
import torch

from pyadvt.metrics import tau2_from_deviations


def test_nonfinite_rows_are_masked_counted_and_warned():
    g = torch.Generator().manual_seed(0)
    U = torch.randn(9, 1, dtype=torch.float64, generator=g)
    V = 0.5 * U + torch.randn(9, 1, dtype=torch.float64, generator=g)
    U[2, 0], V[6, 0] = float("nan"), float("inf")
    with pytest.warns(RuntimeWarning, match="2 of 9 rows of 'U' / 'V' are not finite"):
        r = tau2_from_deviations(U, V)
    keep = torch.tensor([i not in (2, 6) for i in range(9)])
    u, v = U[keep, 0], V[keep, 0]
    closed = float((u * v).mean() ** 2 / ((u ** 2).mean() * (v ** 2).mean()))  # the scalar case of Definition 3
    assert r.tau2 == pytest.approx(closed, abs=1e-12) and r.n == 7 and r.n_undefined == 2


@pytest.mark.parametrize("U, V, exc, needle", [
    (torch.zeros(0, 3), torch.zeros(0, 2), ValueError, "'U' and 'V' are empty"),
    (torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2), TypeError, "'U' must be a floating-point"),
    (torch.zeros(3, 2), torch.zeros(4, 2), ValueError, "same N"),
])
def test_bad_deviations_are_refused(U, V, exc, needle):
    with pytest.raises(exc, match=needle):
        tau2_from_deviations(U, V)
