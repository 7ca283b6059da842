"""D1: attack_transferability() never turns a NaN or out-of-contract input into a silent rate."""

import pytest
import torch
from torch import nn

from pyadvt.metrics.transfer_rates import attack_transferability


def _pair(seed=0, C=10, d=12):
    g = torch.Generator().manual_seed(seed)
    S = nn.Linear(d, C)
    T = nn.Linear(d, C)
    with torch.no_grad():
        T.weight.copy_(S.weight + 0.05 * torch.randn(S.weight.shape, generator=g))
        T.bias.copy_(S.bias)
    x = torch.rand(40, d, generator=g)
    y = S(x).argmax(1).detach()
    return S, T, x, y


def _reference_rate(S, T, x, y, x_adv, keep):
    """Def. 3 recomputed on the kept rows only (independent of the library)."""
    with torch.no_grad():
        pf, pg, af, ag = S(x).argmax(1), T(x).argmax(1), S(x_adv).argmax(1), T(x_adv).argmax(1)
    both = (pf == y) & (pg == y) & keep
    succ = both & (af != y) & (ag != y)
    return float(succ.sum()) / float(both.sum())


def test_nan_x_adv_samples_are_flagged_not_counted_as_transfers():
    S, T, x, y = _pair()
    x_adv = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    bad = torch.zeros(40, dtype=torch.bool)
    bad[::3] = True
    x_adv[bad, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="14 of 40 samples are invalid"):
        r = attack_transferability(S, T, x, y, x_adv)
    assert r.n_invalid == int(bad.sum())
    assert (r.valid == ~bad).all()
    assert not r.success[bad].any()
    x_ref = torch.where(bad[:, None], x, x_adv)  # any finite value: those rows are excluded below
    assert r.rate == pytest.approx(_reference_rate(S, T, x, y, x_ref, ~bad))


def test_nan_weights_are_flagged_not_perfect_transfer():
    S, T, x, y = _pair()
    with torch.no_grad():
        T.weight[0, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="40 of 40"):
        r = attack_transferability(S, T, x, y, x.clone())
    assert r.n_invalid == 40 and r.both_correct == 0 and r.rate != r.rate


@pytest.mark.parametrize("case, exc, match", [
    ("plus5", ValueError, "'x_adv' must lie in \\[0, 1\\]"),
    ("uint8", TypeError, "'x_adv' must be a floating-point"),
    ("y10", ValueError, "'y' must hold labels in \\[0, 10\\)"),
    ("yneg", ValueError, "'y' must hold labels.*-5"),
    ("yfloat", TypeError, "'y' must hold integer"),
    ("target99", ValueError, "'target_labels' must hold labels in \\[0, 10\\)"),
    ("shape", ValueError, "'x_adv' must have the shape of 'x'"),
    ("empty", ValueError, "'x' is empty"),
    ("bs0", ValueError, "'batch_size' must be >= 1"),
    ("dtype", TypeError, "'x' has dtype torch.float64 but 'source' has torch.float32"),
])
def test_bad_inputs_are_refused_naming_the_argument(case, exc, match):
    S, T, x, y = _pair()
    x_adv, kw = x.clone(), {}
    if case == "plus5":
        x_adv = x_adv + 5
    elif case == "uint8":
        x_adv = (x_adv * 255).to(torch.uint8)
    elif case == "y10":
        y = y.clone(); y[0] = 10
    elif case == "yneg":
        y = y.clone(); y[0] = -5
    elif case == "yfloat":
        y = y.float()
    elif case == "target99":
        kw["target_labels"] = torch.full_like(y, 99)
    elif case == "shape":
        x_adv = x_adv[:-1]
    elif case == "empty":
        x, x_adv, y = x[:0], x_adv[:0], y[:0]
    elif case == "bs0":
        kw["batch_size"] = 0
    elif case == "dtype":
        x, x_adv = x.double(), x_adv.double()
    with pytest.raises(exc, match=match):
        attack_transferability(S, T, x, y, x_adv, **kw)


def test_targeted_default_target_still_works():
    S, T, x, y = _pair()
    r = attack_transferability(S, T, x, y, x.clone(), targeted=True)
    assert r.rate == 0.0 and r.n_invalid == 0
