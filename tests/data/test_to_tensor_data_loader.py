"""to_tensor_data(DataLoader, n) reads only up to the last wanted sample and keeps only n of them."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from pyadvt.data.stream import to_tensor_data


class _Counting(Dataset):
    def __init__(self, n):
        self.x, self.y, self.reads = torch.rand(n, 1, 2, 2), torch.arange(n) % 3, 0

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, i):
        self.reads += 1
        return self.x[i], self.y[i]


def test_first_n_of_a_loader_stops_early():
    ds = _Counting(100)
    td = to_tensor_data(DataLoader(ds, batch_size=10), 15)
    assert torch.equal(td.x, ds.x[:15]) and torch.equal(td.y, ds.y[:15])
    assert ds.reads == 20  # two loader batches, not all 100 samples


def test_seeded_subset_of_a_loader_equals_the_dataset_subset():
    ds = _Counting(50)
    a = to_tensor_data(DataLoader(ds, batch_size=7), 9, seed=3)
    b = to_tensor_data(ds, 9, seed=3)
    idx = torch.randperm(50, generator=torch.Generator().manual_seed(3))[:9]
    assert torch.equal(a.x, ds.x[idx]) and torch.equal(a.y, ds.y[idx])
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
