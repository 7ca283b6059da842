"""soft_cross_entropy against torch's own cross-entropy (hard, probability and label-smoothed targets)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.train import cross_entropy_loss, soft_cross_entropy


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 6), c=st.integers(2, 7), seed=st.integers(0, 10_000), scale=st.floats(0.1, 30.0))
def test_one_hot_equals_cross_entropy(b, c, seed, scale):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, c, generator=g, dtype=torch.float64) * scale
    y = torch.randint(0, c, (b,), generator=g)
    one_hot = F.one_hot(y, c).double()
    for reduction in ("mean", "sum", "none"):
        expected = F.cross_entropy(logits, y, reduction=reduction)
        assert torch.allclose(soft_cross_entropy(logits, one_hot, reduction), expected)
        assert torch.allclose(soft_cross_entropy(logits, y, reduction), expected)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.floats(0.0, 0.9))
def test_soft_targets_match_torch(seed, p):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(5, 4, generator=g, dtype=torch.float64)
    probs = torch.softmax(torch.randn(5, 4, generator=g, dtype=torch.float64), dim=1)
    assert torch.allclose(soft_cross_entropy(logits, probs), F.cross_entropy(logits, probs))
    y = torch.randint(0, 4, (5,), generator=g)
    smoothed = (1 - p) * F.one_hot(y, 4).double() + p / 4  # torch's label_smoothing convention
    assert torch.allclose(soft_cross_entropy(logits, smoothed), F.cross_entropy(logits, y, label_smoothing=p))


def test_default_loss_fn_and_errors():
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    assert torch.allclose(cross_entropy_loss(model, x, y), F.cross_entropy(model(x), y))
    with pytest.raises(ValueError, match="reduction"):
        soft_cross_entropy(model(x), y, "max")
    with pytest.raises(ValueError, match="soft 'y'"):
        soft_cross_entropy(model(x), torch.rand(4, 3))
    with pytest.raises(ValueError, match=r"int 'y'"):
        soft_cross_entropy(model(x), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="logits"):
        soft_cross_entropy(torch.randn(4), y)
