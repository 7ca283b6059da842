"""ImageFolder on PNG/JPEG trees the test writes: labels from sorted class names, pixels equal to
torchvision's ImageFolder + Resize + CenterCrop + ToTensor pipeline, lazy reading, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pyadvt.data import DatasetFormatError, ImageFolder, iter_batches, load_dataset

CLASSES = ["zebra", "ant", "cat"]   # sorted: ant=0, cat=1, zebra=2
SIZES = [(40, 30), (24, 24), (17, 53), (64, 48)]  # (width, height): portrait, square, landscape, 4:3


def _tree(root, sizes=SIZES, ext="png", per_class=2):
    rng = np.random.default_rng(0)
    k = 0
    for name in CLASSES:
        folder = root / name
        (folder / "nested").mkdir(parents=True)
        for j in range(per_class):
            w, h = sizes[k % len(sizes)]
            img = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
            img.save(folder / ("nested" if j else "") / f"{j}.{ext}")
            k += 1
    (root / "ant" / "notes.txt").write_text("not an image")
    return root


def _torchvision(root, size, gray=False):
    tv = pytest.importorskip("torchvision")
    from torchvision import transforms as T

    steps = [T.Grayscale(1)] if gray else []
    tf = T.Compose(steps + [T.Resize(size), T.CenterCrop(size), T.ToTensor()])
    return tv.datasets.ImageFolder(str(root), transform=tf)


@pytest.mark.parametrize("size", [16, 32])
def test_pixels_and_labels_match_torchvision(tmp_path, size):
    root = _tree(tmp_path)
    ours, ref = ImageFolder(root, size=size), _torchvision(root, size)
    assert ours.classes == sorted(CLASSES) == ref.classes
    assert len(ours) == len(ref) == 6 and ours.targets == ref.targets
    assert ours.in_shape == (3, size, size)
    for i in range(len(ours)):
        (x, y), (xr, yr) = ours[i], ref[i]
        assert y == yr and x.dtype == torch.float32 and x.shape == (3, size, size)
        torch.testing.assert_close(x, xr, atol=1e-6, rtol=0)


def test_grayscale_jpeg_matches_torchvision(tmp_path):
    root = _tree(tmp_path, ext="jpg")
    ours, ref = ImageFolder(root, size=20, channels=1), _torchvision(root, 20, gray=True)
    for i in range(len(ours)):
        torch.testing.assert_close(ours[i][0], ref[i][0], atol=1e-6, rtol=0)
    assert ours[0][0].shape == (1, 20, 20)


def test_rectangular_size_covers_and_crops(tmp_path):
    root = _tree(tmp_path, sizes=[(40, 20)], per_class=1)
    x, _ = ImageFolder(root, size=(10, 30))[0]
    assert x.shape == (3, 10, 30)
    # reference: resize 40x20 by max(10/20, 30/40) = 0.75 -> 30x15 then center-crop rows 2..12
    with Image.open(sorted((root / "ant").glob("*.png"))[0]) as img:
        ref = np.asarray(img.convert("RGB").resize((30, 15), Image.BILINEAR))[2:12]
    torch.testing.assert_close(x, torch.from_numpy(ref.copy()).permute(2, 0, 1).float() / 255, atol=1e-6, rtol=0)


def test_streams_lazily_through_iter_batches_and_dataloader(tmp_path, monkeypatch):
    root = _tree(tmp_path)
    data = load_dataset("imagefolder", root, size=8)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda p, *a, **k: (opened.append(p), real_open(p, *a, **k))[1])
    it = iter_batches(data, 4)
    assert opened == []
    xb, yb = next(it)
    assert xb.shape == (4, 3, 8, 8) and len(opened) == 4
    rest = list(it)
    assert len(opened) == 6 and rest[0][0].shape[0] == 2
    assert torch.cat([yb, rest[0][1]]).tolist() == data.targets
    loader = torch.utils.data.DataLoader(data, batch_size=3)
    assert torch.equal(torch.cat([x for x, _ in iter_batches(loader, 2)]), torch.cat([x for x, _ in iter_batches(data, 5)]))


def test_split_folders(tmp_path):
    _tree(tmp_path / "train")
    _tree(tmp_path / "val", per_class=1)
    assert len(load_dataset("imagefolder", tmp_path, split="train", size=8)) == 6
    assert len(load_dataset("imagefolder", tmp_path, split="test", size=8)) == 3
    only_train = tmp_path / "only"
    _tree(only_train / "train")
    with pytest.raises(FileNotFoundError, match="no test/val"):
        load_dataset("imagefolder", only_train, split="test")
    # an unsplit tree serves both splits
    flat = _tree(tmp_path / "flat")
    assert len(load_dataset("imagefolder", flat, split="test", size=8)) == 6


def test_without_size_different_sizes_refuse_to_batch(tmp_path):
    data = ImageFolder(_tree(tmp_path))
    assert data[0][0].shape[1:] in {(h, w) for w, h in SIZES}
    with pytest.raises(ValueError, match="different shapes"):
        list(iter_batches(data, 6))


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(DatasetFormatError, match="no class sub-folders"):
        ImageFolder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DatasetFormatError, match="holds no image"):
        ImageFolder(tmp_path)
    (tmp_path / "empty_class" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetFormatError, match="broken.png: cannot decode"):
        ImageFolder(tmp_path, size=8)[0]
    for bad in (0, (3,), 2.5, True):
        with pytest.raises((ValueError, TypeError), match="'size'"):
            ImageFolder(tmp_path, size=bad)
    with pytest.raises(ValueError, match="'channels'"):
        ImageFolder(tmp_path, channels=2)
    with pytest.raises(ValueError, match="needs 'root'"):
        load_dataset("imagefolder")
    with pytest.raises(ValueError, match="'size' applies to 'imagefolder' only"):
        load_dataset("digits", size=8)
