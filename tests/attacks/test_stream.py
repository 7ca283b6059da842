"""run_on / attack_all: any attack over any data source gives the full-tensor attack's examples."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pyadvt.attacks import DIM, PGD, attack_all, run_on
from pyadvt.data import TensorData


def _net():
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 25, 4)).eval()


X = torch.rand(13, 1, 5, 5)
Y = torch.arange(13) % 4


@pytest.mark.parametrize("data", [TensorData(X, Y), TensorDataset(X, Y), DataLoader(TensorDataset(X, Y), batch_size=6)],
                         ids=["tensordata", "dataset", "loader"])
def test_streamed_attack_equals_the_whole_batch(data):
    net = _net()
    for atk in (PGD(net, eps=0.1, steps=3, seed=1), DIM(net, eps=0.1, steps=2, seed=2)):
        ref = atk(X, Y)
        batches = list(run_on(atk, data, batch_size=4))
        sizes = [b.x.shape[0] for b in batches]
        assert max(sizes) <= 4 and [b.start for b in batches] == [sum(sizes[:i]) for i in range(len(sizes))]
        assert torch.equal(torch.cat([b.x for b in batches]), X) and torch.equal(torch.cat([b.y for b in batches]), Y)
        torch.testing.assert_close(torch.cat([b.x_adv for b in batches]), ref, atol=1e-6, rtol=0)


def test_multi_budget_targeted_and_plain_callables():
    net = _net()
    atk = PGD(net, eps=0.2, steps=2, targeted=True)
    eps = torch.tensor([0.05, 0.2])
    target = lambda y: (y + 2) % 4  # noqa: E731
    ref = atk(X, Y, target_labels=target(Y), eps=eps)
    x_adv, y = attack_all(atk, (X, Y), batch_size=5, eps=eps, target_labels=target)
    assert x_adv.shape == (2, 13, 1, 5, 5) and torch.equal(y, Y)
    torch.testing.assert_close(x_adv, ref, atol=1e-6, rtol=0)
    # a plain callable (e.g. a torchattacks attack) works; eps cannot be overridden for it
    shift = lambda x, y: (x + 0.01).clamp(0, 1)  # noqa: E731
    x_adv, _ = attack_all(shift, TensorDataset(X, Y), batch_size=6)
    assert torch.equal(x_adv, (X + 0.01).clamp(0, 1))
    with pytest.raises(ValueError, match="'eps' overrides"):
        run_on(shift, (X, Y), eps=0.1)


def test_errors_before_the_first_batch():
    net = _net()
    with pytest.raises(TypeError, match="'attack' must be"):
        run_on(3, (X, Y))
    with pytest.raises(ValueError, match="empty"):
        run_on(PGD(net, eps=0.1), (X[:0], Y[:0]))
    with pytest.raises(ValueError, match="labels"):
        list(run_on(PGD(net, eps=0.1), X))
    with pytest.raises(ValueError, match="shaped like its input"):
        list(run_on(lambda x, y: x[:1], (X, Y)))
