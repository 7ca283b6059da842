"""digits(): scikit-learn's digits as [0, 1] tensors, stratified seeded splits, subsets, upsampling."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch
from sklearn.datasets import load_digits

from pyadvt.data import digits, load_dataset


@pytest.fixture(scope="module")
def raw():
    b = load_digits()
    return torch.from_numpy(b.images.astype(np.float32) / 16).unsqueeze(1), torch.from_numpy(b.target)


def _rows(x):
    return {tuple(r) for r in x.flatten(1).tolist()}


def test_shapes_range_and_values_match_sklearn(raw):
    train, test = digits()
    assert train.x.shape == (1347, 1, 8, 8) and test.x.shape == (450, 1, 8, 8)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0
    x_all = torch.cat([train.x, test.x])
    assert _rows(x_all) == _rows(raw[0])  # same images (pixel / 16), nothing lost or invented
    # every (image, label) pair exists in sklearn's data
    pairs = {(tuple(r), int(lbl)) for r, lbl in zip(raw[0].flatten(1).tolist(), raw[1])}
    assert all((tuple(r), int(lbl)) in pairs for r, lbl in zip(train.x.flatten(1).tolist(), train.y))


def test_split_is_stratified_disjoint_and_seeded():
    train, test = digits(seed=3)
    counts_tr = torch.bincount(train.y, minlength=10).float()
    counts_te = torch.bincount(test.y, minlength=10).float()
    frac = counts_te / (counts_tr + counts_te)
    assert torch.all((frac - 0.25).abs() < 0.02)
    assert len(train) + len(test) == 1797
    again = digits(seed=3)
    assert torch.equal(again[0].x, train.x) and torch.equal(again[1].y, test.y)
    other = digits(seed=4)
    assert not torch.equal(other[0].x, train.x)


def test_test_size_and_validation():
    train, test = digits(test_size=0.5)
    assert abs(len(test) - 1797 / 2) <= 1
    for bad in ({"test_size": 0.0}, {"test_size": 1.5}, {"size": 0}, {"size": 8.0}):
        with pytest.raises(ValueError):
            digits(**bad)


def test_class_subset_relabels_in_given_order(raw):
    train, test = digits(classes=(8, 3))
    assert train.num_classes == 2 and sorted(set(train.y.tolist())) == [0, 1]
    eights = raw[0][raw[1] == 8]
    assert _rows(train.x[train.y == 0]) <= _rows(eights)
    assert len(train) + len(test) == int(((raw[1] == 8) | (raw[1] == 3)).sum())
    kept, _ = digits(classes=(8, 3), relabel=False)
    assert sorted(set(kept.y.tolist())) == [3, 8] and kept.num_classes == 10


@pytest.mark.parametrize("classes", [(1,), (1, 1), (1, 10), (0.5, 2)])
def test_bad_class_subsets(classes):
    with pytest.raises(ValueError, match="classes"):
        digits(classes=classes)


@pytest.mark.parametrize("size", [16, 32])
def test_upsampling_is_bilinear_and_clamped(size):
    train, _ = digits(size=size)
    native, _ = digits()
    assert train.x.shape[1:] == (1, size, size)
    assert float(train.x.min()) >= 0.0 and float(train.x.max()) <= 1.0
    # independent oracle: scipy's order-1 (bilinear) zoom on the pixel-area grid, edges replicated
    zoom = size // 8
    expected = np.stack([scipy.ndimage.zoom(im[0].numpy(), zoom, order=1, grid_mode=True, mode="nearest")
                         for im in native.x[:50]])
    assert np.allclose(train.x[:50, 0].numpy(), np.clip(expected, 0, 1), atol=1e-6)
    assert torch.equal(train.y, native.y)


def test_load_dataset_digits_and_errors():
    assert torch.equal(load_dataset("digits", split="test").x, digits()[1].x)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet", "/tmp")
    with pytest.raises(ValueError, match="root"):
        load_dataset("cifar10")
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", split="val")
