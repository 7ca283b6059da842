"""Metrics walk a Dataset / DataLoader / TensorData one batch at a time and give the tensor result."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from pyadvt.attacks import PGD
from pyadvt.data import TensorData
from pyadvt.metrics.transfer_rates import transferability

N = 23


class _Counting(Dataset):
    """(x, y) items; remembers the most items fetched between two checks (to bound memory use)."""

    def __init__(self, x, y):
        self.x, self.y, self.reads = x, y, 0

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, i):
        self.reads += 1
        return self.x[i], self.y[i]


def _net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 5)).eval()


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    x = torch.rand(N, 1, 6, 6)
    s, t = _net(1), _net(2)
    y = s(x).argmax(1).detach()
    y[::3] = (y[::3] + 1) % 5
    return s, t, x, y


def _sources(x, y):
    return {"tensordata": TensorData(x, y, 5), "dataset": TensorDataset(x, y), "items": _Counting(x, y),
            "loader": DataLoader(TensorDataset(x, y), batch_size=7)}


@pytest.mark.parametrize("kind", ["tensordata", "dataset", "items", "loader"])
@pytest.mark.parametrize("targeted", [False, True])
def test_transferability_streams_like_the_tensor(setup, kind, targeted):
    s, t, x, y = setup
    atk = PGD(s, eps=0.1, steps=3, targeted=targeted, seed=0)
    label = (lambda yb: (yb + 1) % 5) if targeted else (lambda yb: yb)
    ref = transferability(s, t, x, y, atk(x, label(y)), targeted=targeted, num_classes=5)
    data = _sources(x, y)[kind]
    got = transferability(s, t, data, x_adv=lambda xb, yb: atk(xb, label(yb)), targeted=targeted, num_classes=5,
                          batch_size=5)
    assert got.summary() == ref.summary()
    assert torch.equal(got.success, ref.success)
    if kind == "items":  # every item read once, plus the one sample that checks the models up front
        assert data.reads == N + 1


def test_transferability_stream_errors(setup):
    s, t, x, y = setup
    with pytest.raises(ValueError, match="'x_adv' must be a callable"):
        transferability(s, t, TensorDataset(x, y), x_adv=x)
    with pytest.raises(ValueError, match="'y' must be None"):
        transferability(s, t, TensorDataset(x, y), y, x_adv=lambda a, b: a)
    with pytest.raises(ValueError, match="'x_adv' is required"):
        transferability(s, t, x, y)
    with pytest.raises(ValueError, match="labels"):
        transferability(s, t, TensorDataset(x), x_adv=lambda a, b: a)


@pytest.mark.parametrize("kind", ["tensordata", "dataset", "items", "loader"])
def test_gradient_similarity_streams_like_the_tensor(setup, kind):
    from pyadvt.metrics.similarity import gradient_similarity

    s, t, x, y = setup
    ref = gradient_similarity(s, t, x, y, batch_size=64)
    got = gradient_similarity(s, t, _sources(x, y)[kind], batch_size=4)
    torch.testing.assert_close(got.values, ref.values, atol=1e-6, rtol=0, equal_nan=True)  # float32 gradients
    assert torch.equal(got.defined, ref.defined)
    # an independent per-sample computation of the cosine
    i = 5
    xi = x[i:i + 1].clone().requires_grad_(True)
    gs = torch.autograd.grad(nn.functional.cross_entropy(s(xi), y[i:i + 1]), xi)[0].flatten().double()
    xi = x[i:i + 1].clone().requires_grad_(True)
    gt = torch.autograd.grad(nn.functional.cross_entropy(t(xi), y[i:i + 1]), xi)[0].flatten().double()
    assert float(got.values[i]) == pytest.approx(float(gs @ gt / (gs.norm() * gt.norm())), abs=1e-6)
