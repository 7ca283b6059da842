"""Metrics walk a Dataset / DataLoader / TensorData one batch at a time and give the tensor result."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from pyadvt.attacks import PGD
from pyadvt.data import TensorData
from pyadvt.metrics.transfer_rates import attack_transferability

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
    ref = attack_transferability(s, t, x, y, atk(x, label(y)), targeted=targeted, num_classes=5)
    data = _sources(x, y)[kind]
    got = attack_transferability(s, t, data, x_adv=lambda xb, yb: atk(xb, label(yb)), targeted=targeted, num_classes=5,
                          batch_size=5)
    assert got.summary() == ref.summary()
    assert torch.equal(got.success, ref.success)
    if kind == "items":  # every item read once, plus the one sample that checks the models up front
        assert data.reads == N + 1


def test_transferability_stream_errors(setup):
    s, t, x, y = setup
    with pytest.raises(ValueError, match="'x_adv' must be a callable"):
        attack_transferability(s, t, TensorDataset(x, y), x_adv=x)
    with pytest.raises(ValueError, match="'y' must be None"):
        attack_transferability(s, t, TensorDataset(x, y), y, x_adv=lambda a, b: a)
    with pytest.raises(ValueError, match="'x_adv' is required"):
        attack_transferability(s, t, x, y)
    with pytest.raises(ValueError, match="labels"):
        attack_transferability(s, t, TensorDataset(x), x_adv=lambda a, b: a)


@pytest.mark.parametrize("kind", ["tensordata", "dataset", "items", "loader"])
def test_gradient_similarity_streams_like_the_tensor(setup, kind):
    from pyadvt.metrics.similarity import gradient_similarity

    s, t, x, y = setup
    ref = gradient_similarity(s, t, x, y, batch_size=64)
    got = gradient_similarity(s, t, _sources(x, y)[kind], batch_size=4)
    torch.testing.assert_close(got.values, ref.values, atol=1e-6, rtol=0, equal_nan=True)  # float32 gradients
    assert torch.equal(got.valid, ref.valid)
    # an independent per-sample computation of the cosine
    i = 5
    xi = x[i:i + 1].clone().requires_grad_(True)
    gs = torch.autograd.grad(nn.functional.cross_entropy(s(xi), y[i:i + 1]), xi)[0].flatten().double()
    xi = x[i:i + 1].clone().requires_grad_(True)
    gt = torch.autograd.grad(nn.functional.cross_entropy(t(xi), y[i:i + 1]), xi)[0].flatten().double()
    assert float(got.values[i]) == pytest.approx(float(gs @ gt / (gs.norm() * gt.norm())), abs=1e-6)


def _split(seed):
    from pyadvt.models import build

    torch.manual_seed(seed)
    return build("mlp", in_shape=(1, 6, 6), num_classes=5).eval()


@pytest.mark.parametrize("kind", ["dataset", "loader"])
def test_empirical_transfer_and_legacy_alpha_stream(setup, kind):
    from pyadvt.metrics.empirical_transfer import empirical_transferability
    from pyadvt.metrics.legacy_transfer import legacy_transferability

    s, t, x, y = setup
    ref = empirical_transferability(s, t, x, y, eps=(0.05, 0.1), steps=2, batch_size=64)
    got = empirical_transferability(s, t, _sources(x, y)[kind], eps=(0.05, 0.1), steps=2, batch_size=4)
    torch.testing.assert_close(got.loss, ref.loss, atol=1e-5, rtol=1e-5)
    assert torch.equal(got.correct, ref.correct) and torch.equal(got.source_flipped, ref.source_flipped)
    ref = legacy_transferability(s, t, x, y, eps=0.1, steps=2, batch_size=64)
    got = legacy_transferability(s, t, _sources(x, y)[kind], eps=0.1, steps=2, batch_size=4)
    assert torch.equal(got.used, ref.used)
    assert got.alpha1 == pytest.approx(ref.alpha1, rel=1e-5) and got.alpha2 == pytest.approx(ref.alpha2, rel=1e-5)


def test_transfer_table_streams(setup):
    from pyadvt.metrics.atm import transfer_table

    s, t, x, y = setup
    labels = [y, (y + 1) % 5]
    factory = lambda m: PGD(m, eps=0.1, steps=2)  # noqa: E731
    ref = transfer_table([s, t], x, labels, factory, batch_size=64)
    got = transfer_table([s, t], DataLoader(TensorDataset(x), batch_size=6), labels, factory, batch_size=4)
    torch.testing.assert_close(got.loss, ref.loss, atol=1e-5, rtol=1e-5)
    assert torch.equal(got.success, ref.success)
    with pytest.raises(ValueError, match="one label per image"):
        transfer_table([s, t], TensorDataset(x), [y[:5], y], factory)


@pytest.mark.parametrize("kind", ["tensordata", "items", "loader"])
def test_as_score_and_robustness_record_stream(setup, kind):
    from pyadvt.metrics.robustness_transfer import as_score, evaluate_robustness_transfer

    _, _, x, y = setup
    m = _split(4)
    data = _sources(x, y)[kind]
    ref = as_score(m, x, eps=0.1, steps=3, batch_size=64)
    got = as_score(m, data, eps=0.1, steps=3, batch_size=4)
    torch.testing.assert_close(got.per_sample, ref.per_sample, atol=1e-5, rtol=1e-5)
    assert got.score == pytest.approx(ref.score, rel=1e-5)
    rec_ref = evaluate_robustness_transfer(m, x, y, eps=0.1, steps=2, batch_size=64)
    rec = evaluate_robustness_transfer(m, _sources(x, y)[kind], None, eps=0.1, steps=2, batch_size=4)
    assert torch.equal(rec.y, rec_ref.y)
    lem, lem_ref = rec.lemma1(), rec_ref.lemma1()
    assert lem.adv_loss == pytest.approx(lem_ref.adv_loss, rel=1e-5) and lem.rhs == pytest.approx(lem_ref.rhs, rel=1e-5)
    with pytest.raises(ValueError, match="needs loss='ce'"):
        evaluate_robustness_transfer(m, data, None, eps=0.1, loss="mse")


@pytest.mark.parametrize("kind", ["tensordata", "dataset", "loader"])
def test_evaluate_streams(setup, kind):
    from pyadvt.train import evaluate

    s, _, x, y = setup
    got = evaluate(s, _sources(x, y)[kind], batch_size=4)
    with torch.no_grad():
        logits = s(x)
    assert got["n"] == N and got["accuracy"] == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    assert got["loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, y)), rel=1e-5)
