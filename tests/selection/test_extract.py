"""``extract`` over tensors, TensorData, Datasets and DataLoaders (batch-independent, eval mode,
wrapped user models), and every estimator on a torchvision ResNet-18 over a streamed dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from pyadvt import selection as S
from pyadvt.data import TensorData
from pyadvt.models import build


def _net():
    torch.manual_seed(0)
    return build("cnn", in_shape=(1, 8, 8), num_classes=5).train()


def test_extract_equals_the_model_on_every_kind_of_input():
    net = _net()
    x, y = torch.rand(23, 1, 8, 8), torch.arange(23) % 4
    with torch.no_grad():
        net.eval()
        feats = net.features(x)
        logits = net(x)
        net.train()
    for data in (x, (x, y), TensorData(x, y), TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=7)):
        out = S.extract(net, data, batch_size=5)
        torch.testing.assert_close(out.features, feats, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.probs, torch.softmax(logits.double(), 1), rtol=1e-5, atol=1e-6)
        assert torch.equal(out.preds, logits.argmax(1)) and out.probs.dtype == torch.float64
        assert (out.y is None) == (data is x) and (out.y is None or torch.equal(out.y, y))
        assert net.training and all(p.grad is None for p in net.parameters())
    only = S.extract(net, x, outputs=("preds",))
    assert only.features is None and only.probs is None and len(only) == 23
    with pytest.raises(ValueError, match="'outputs' must be a non-empty subset"):
        S.extract(net, x, outputs=("logits",))


def test_extract_wraps_a_plain_classifier():
    torch.manual_seed(1)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(9, 1, 8, 8)
    out = S.extract(plain, x, batch_size=4)
    with torch.no_grad():
        hidden = plain[2](plain[1](plain[0](x)))
    torch.testing.assert_close(out.features, hidden)
    torch.testing.assert_close(out.probs, torch.softmax(plain(x).double(), 1))
    with pytest.raises(ValueError, match="no nn.Linear"):
        S.extract(nn.Sequential(nn.Flatten()), x)


class _Streamed(Dataset):
    """Images made on the fly (nothing held in memory beyond one item)."""

    def __init__(self, n: int, classes: int):
        self.n, self.classes = n, classes

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        label = i % self.classes
        img = torch.rand(3, 32, 32, generator=g) * 0.5
        img[label % 3] += 0.4 * (label / self.classes)  # class-dependent colour shift
        return img.clamp(0, 1), label


@pytest.mark.slow
def test_every_estimator_on_a_torchvision_resnet18_over_a_streamed_dataset():
    from pyadvt.models import from_torchvision

    torch.manual_seed(0)
    net = from_torchvision("resnet18", num_classes=10)  # random init, ImageNet normalisation inside
    loader = DataLoader(_Streamed(120, 4), batch_size=32)
    ex = S.extract(net, loader, batch_size=24)
    assert ex.features.shape == (120, 512) and ex.probs.shape == (120, 10) and ex.y.shape == (120,)
    scores = S.estimate(ex)
    assert set(scores) == set(S.ESTIMATORS)
    for name, value in scores.items():
        assert value is not None and math.isfinite(value), name
    f, yy = ex.features.double().numpy(), ex.y.numpy()
    # the features are class-dependent: LogME prefers them to a shuffled copy of the labels
    shuffled = np.random.default_rng(0).permutation(yy)
    assert scores["logme"] > S.logme(f, shuffled)
