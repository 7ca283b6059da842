"""TensorData validation, subsets and the seeded batch loader."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.data import TensorData


def _data(n=10, classes=3):
    return TensorData(torch.rand(n, 1, 4, 4), torch.arange(n) % classes)


def test_fields_are_cast_and_num_classes_inferred():
    d = TensorData(torch.rand(4, 2, 3, 3, dtype=torch.float64), torch.tensor([0, 4, 1, 1], dtype=torch.int32))
    assert d.x.dtype == torch.float32 and d.y.dtype == torch.int64
    assert d.num_classes == 5 and len(d) == 4 and d.in_shape == (2, 3, 3)
    assert TensorData(d.x, d.y, num_classes=7).num_classes == 7
    assert repr(d) == "TensorData(n=4, in_shape=(2, 3, 3), num_classes=5, device=cpu)"


@pytest.mark.parametrize("x, y, match", [
    (torch.rand(3, 1, 2, 2) * 2, torch.zeros(3, dtype=torch.long), r"\[0, 1\]"),
    (-torch.rand(3, 1, 2, 2) - 0.1, torch.zeros(3, dtype=torch.long), r"\[0, 1\]"),
    (torch.full((3, 1, 2, 2), float("nan")), torch.zeros(3, dtype=torch.long), "NaN"),
    ((torch.rand(3, 1, 2, 2) * 255).to(torch.uint8), torch.zeros(3, dtype=torch.long), "255"),
    (torch.rand(3, 4), torch.zeros(3, dtype=torch.long), r"\[N, C, H, W\]"),
    (torch.rand(3, 1, 2, 2), torch.zeros(4, dtype=torch.long), "one label per image"),
    (torch.rand(3, 1, 2, 2), torch.zeros(3), "integer class labels"),
    (torch.rand(3, 1, 2, 2), torch.tensor([0, -1, 2]), ">= 0"),
])
def test_invalid_inputs_are_named(x, y, match):
    with pytest.raises(ValueError, match=match):
        TensorData(x, y)


def test_label_beyond_num_classes_and_type_errors():
    with pytest.raises(ValueError, match="num_classes=2"):
        TensorData(torch.rand(2, 1, 2, 2), torch.tensor([0, 2]), num_classes=2)
    with pytest.raises(TypeError, match="'x'"):
        TensorData([[0.0]], torch.tensor([0]))


def test_subset_keeps_num_classes_and_accepts_masks():
    d = _data(6, 3)
    s = d.subset([0, 3])
    assert torch.equal(s.x, d.x[[0, 3]]) and s.y.tolist() == [0, 0] and s.num_classes == 3
    m = d.subset(d.y == 1)
    assert m.y.tolist() == [1, 1]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), bs=st.integers(1, 12), shuffle=st.booleans(), drop_last=st.booleans())
def test_loader_covers_each_sample_once(n, bs, shuffle, drop_last):
    d = TensorData(torch.rand(n, 1, 1, 1), torch.arange(n))
    loader = d.loader(bs, shuffle=shuffle, seed=1, drop_last=drop_last)
    batches = list(loader)
    assert len(batches) == len(loader)
    seen = torch.cat([yb for _, yb in batches]) if batches else torch.empty(0, dtype=torch.long)
    for xb, yb in batches:
        assert xb.shape[0] == yb.shape[0] <= bs
        assert torch.equal(xb.flatten(), d.x.flatten()[yb])  # images stay paired with their labels
    expected = n - n % bs if drop_last else n
    assert len(seen) == expected and len(set(seen.tolist())) == expected
    if not shuffle:
        assert seen.tolist() == list(range(expected))


def test_shuffle_is_seeded_and_changes_between_epochs():
    d = _data(50)
    order = lambda loader: torch.cat([yb for _, yb in loader]).tolist()  # noqa: E731
    a, b = d.loader(8, shuffle=True, seed=5), d.loader(8, shuffle=True, seed=5)
    first, second = order(a), order(a)
    assert first == order(b) and second == order(b)
    assert first != second
    assert first != order(d.loader(8, shuffle=True, seed=6))


def test_loader_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        _data().loader(0)
