"""iter_batches: every kind of source gives the same batches as slicing the tensors, lazily, with clear errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from pyadvt.data import TensorData
from pyadvt.data.stream import as_data, collect, first_batch, is_data, iter_batches, num_batches, num_samples

X = torch.rand(11, 1, 3, 3)
Y = torch.arange(11) % 4


class _Items(Dataset):
    """A map-style dataset that records which indices were read (to check laziness)."""

    def __init__(self, kind="pair"):
        self.kind, self.reads = kind, []

    def __len__(self):
        return X.shape[0]

    def __getitem__(self, i):
        self.reads.append(i)
        if self.kind == "pair":
            return X[i], int(Y[i])
        if self.kind == "dict":
            return {"image": X[i], "label": Y[i]}
        return X[i]


class _Stream(IterableDataset):
    def __iter__(self):
        return iter(zip(X, Y))


def _sources():
    return {
        "pair": (X, Y),
        "list-pair": [X, Y],
        "tensordata": TensorData(X, Y),
        "tensordataset": TensorDataset(X, Y),
        "items": _Items(),
        "dict-items": _Items("dict"),
        "iterable": _Stream(),
        "loader": DataLoader(TensorDataset(X, Y), batch_size=5),
        "loader-big": DataLoader(TensorDataset(X, Y), batch_size=11),
        "loader-dicts": [{"x": X[:6], "y": Y[:6]}, {"x": X[6:], "y": Y[6:]}],
        "loader-unbatched": DataLoader(TensorDataset(X, Y), batch_size=None),
    }


@pytest.mark.parametrize("name", list(_sources()))
@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_every_source_gives_the_slices_of_the_tensors(name, batch_size):
    data = _sources()[name]
    got = list(iter_batches(data, batch_size))
    assert all(0 < xb.shape[0] <= batch_size for xb, _ in got)
    assert torch.equal(torch.cat([xb for xb, _ in got]), X)
    assert torch.equal(torch.cat([yb for _, yb in got]), Y)
    assert all(yb.dtype == torch.int64 for _, yb in got)
    assert num_samples(data) in (11, None)
    n_batches = num_batches(data, batch_size)
    assert n_batches in (len(got), None)


def test_counts_of_known_sources():
    assert num_samples(X) == 11 and num_batches(X, 4) == 3
    assert num_samples(TensorDataset(X, Y)) == 11
    loader = DataLoader(TensorDataset(X, Y), batch_size=4, drop_last=True)
    assert num_samples(loader) == 8 and num_batches(loader, 4) == 2
    assert num_batches(DataLoader(TensorDataset(X, Y), batch_size=8), 3) == 3 + 1  # batches 8, 3: the 8 split in 3
    assert num_samples(_Stream()) is None


def test_unlabelled_sources_yield_none_and_labels_flag():
    for data in (X, (X, None), _Items("bare"), DataLoader(X, batch_size=3)):
        got = list(iter_batches(data, 4))
        assert all(yb is None for _, yb in got)
        assert torch.equal(torch.cat([xb for xb, _ in got]), X)
        with pytest.raises(ValueError, match="labels"):
            list(iter_batches(data, 4, labels=True))
    assert all(yb is None for _, yb in iter_batches((X, Y), 4, labels=False))


def test_dataset_is_read_lazily_one_batch_at_a_time():
    ds = _Items()
    it = iter_batches(ds, 4)
    assert ds.reads == []  # nothing read before the first batch is asked for
    next(it)
    assert ds.reads == [0, 1, 2, 3]
    next(it)
    assert ds.reads == list(range(8))


def test_tensor_batches_are_views():
    xb, _ = next(iter_batches(X, 4))
    assert xb.data_ptr() == X.data_ptr()


def test_device_moves_each_batch():
    xb, yb = first_batch((X, Y), 3)
    assert xb.shape[0] == 3
    xb, yb = next(iter_batches((X, Y), 3, device="meta"))
    assert xb.device.type == "meta" and yb.device.type == "meta"


def test_progress_bar_does_not_change_batches():
    assert torch.equal(torch.cat([xb for xb, _ in iter_batches(X, 3, progress=True, desc="t")]), X)


def test_collect_and_as_data():
    x, y = collect(DataLoader(TensorDataset(X, Y), batch_size=3))
    assert torch.equal(x, X) and torch.equal(y, Y)
    assert as_data(X, Y)[0] is X and as_data(X) is X
    ds = TensorDataset(X, Y)
    assert as_data(ds) is ds and is_data(ds) and not is_data(X)
    with pytest.raises(ValueError, match="'y' must be None"):
        as_data(ds, Y)
    with pytest.raises(TypeError, match="'x' must be"):
        as_data(3.0)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, None])
def test_bad_batch_size(bad):
    with pytest.raises((ValueError, TypeError), match="'batch_size' must be"):
        iter_batches(X, bad)


def test_errors_are_raised_before_any_batch():
    with pytest.raises(ValueError, match="empty"):
        iter_batches(X[:0], 4)
    with pytest.raises(ValueError, match="empty"):
        iter_batches(TensorDataset(X[:0], Y[:0]), 4)
    with pytest.raises(ValueError, match="empty"):
        list(iter_batches([], 4))
    with pytest.raises(TypeError, match="walked only once"):
        iter_batches((b for b in [(X, Y)]), 4)
    with pytest.raises(TypeError, match="'data' must be"):
        iter_batches("images/", 4)
    with pytest.raises(TypeError, match="'data' must be"):
        iter_batches({"x": X}, 4)
    with pytest.raises(ValueError, match=r"shape \[11\]"):
        iter_batches((X, Y[:5]), 4)
    with pytest.raises(ValueError, match="integer class indices"):
        iter_batches((X, Y.float()), 4)


def test_bad_items_give_clear_messages():
    class Mixed(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return torch.zeros(1, 2 + i, 2), 0

    with pytest.raises(ValueError, match="different shapes"):
        list(iter_batches(Mixed(), 2))

    class NotTensors(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return [[0.0]], 0

    with pytest.raises(TypeError, match="inputs must be torch.Tensors"):
        list(iter_batches(NotTensors(), 2))
    with pytest.raises(ValueError, match="needs one of the keys"):
        list(iter_batches([{"pixels": X}], 2))


def test_to_tensor_data_subsets():
    from pyadvt.data import to_tensor_data

    td = to_tensor_data(_Items())
    assert torch.equal(td.x, X) and torch.equal(td.y, Y)
    first = to_tensor_data(DataLoader(TensorDataset(X, Y), batch_size=4), 5)
    assert torch.equal(first.y, Y[:5])
    g = torch.Generator().manual_seed(7)
    idx = torch.randperm(11, generator=g)[:6]
    for data in (_Items(), TensorData(X, Y), (X, Y)):
        sub = to_tensor_data(data, 6, seed=7)
        assert torch.equal(sub.x, X[idx]) and torch.equal(sub.y, Y[idx])
    assert to_tensor_data(TensorData(X, Y, 9)).num_classes == 9
    with pytest.raises(ValueError, match="labels"):
        to_tensor_data(X)
