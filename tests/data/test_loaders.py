"""File loaders: tiny files written in each real format (CIFAR pickles, STL-10 binary, IDX) are read back."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from pyadvt.data import DatasetFormatError, load_cifar, load_dataset, load_mnist, load_stl10, read_idx


def _images(n, c, h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


# ---------------------------------------------------------------- CIFAR
def _cifar_batch(path, images, labels, label_keys=(b"labels",), protocol=2):
    # the documented layout: row = 1024 red, 1024 green, 1024 blue values, each image row-major
    rows = np.stack([np.concatenate([img[c].reshape(-1) for c in range(3)]) for img in images])
    batch = {b"batch_label": b"tiny", b"data": rows, b"filenames": [b"f.png"] * len(labels)}
    for key in label_keys:
        batch[key] = list(map(int, labels))
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)


@pytest.fixture
def cifar10(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    imgs = _images(12, 3, 32, 32, 0)
    labels = np.arange(12) % 10
    for i in range(5):
        _cifar_batch(folder / f"data_batch_{i + 1}", imgs[2 * i:2 * i + 2], labels[2 * i:2 * i + 2], protocol=2 + i % 4)
    _cifar_batch(folder / "test_batch", imgs[10:], labels[10:])
    return tmp_path, imgs, labels


def test_cifar10_train_and_test(cifar10):
    root, imgs, labels = cifar10
    train = load_cifar(root, split="train")
    assert train.x.shape == (10, 3, 32, 32) and train.num_classes == 10
    assert torch.equal(train.x, torch.from_numpy(imgs[:10]).float() / 255)
    assert train.y.tolist() == labels[:10].tolist()
    test = load_dataset("cifar10", root, split="test")
    assert torch.equal(test.x, torch.from_numpy(imgs[10:]).float() / 255)
    # files directly in root work as well
    assert torch.equal(load_cifar(root / "cifar-10-batches-py", split="test").y, test.y)


class _Py2Pickler(pickle._Pickler):
    """Writes every str/bytes as a Python 2 ``str`` (BINSTRING), like the official CIFAR files."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _binstring(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = _binstring
    dispatch[str] = _binstring


def test_cifar_python2_pickle(tmp_path):
    imgs = _images(3, 3, 32, 32, 6)
    rows = np.stack([img.reshape(-1) for img in imgs])  # channel-major rows == [3, 32, 32] flattened
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump({b"batch_label": b"testing batch 1 of 1", b"labels": [3, 1, 4], b"data": rows})
    # numpy of that era pickled its arrays under numpy.core.multiarray
    raw = buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n_reconstruct" in raw
    (tmp_path / "test_batch").write_bytes(raw)
    d = load_cifar(tmp_path, split="test")
    assert torch.equal(d.x, torch.from_numpy(imgs).float() / 255) and d.y.tolist() == [3, 1, 4]


def test_cifar100_fine_and_coarse(tmp_path):
    imgs = _images(4, 3, 32, 32, 1)
    fine, coarse = np.array([0, 57, 99, 3]), np.array([0, 19, 4, 3])
    for split in ("train", "test"):
        path = tmp_path / split
        _cifar_batch(path, imgs, fine, label_keys=())
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        batch[b"fine_labels"], batch[b"coarse_labels"] = fine.tolist(), coarse.tolist()
        with open(path, "wb") as f:
            pickle.dump(batch, f)
    d = load_dataset("cifar-100", tmp_path, split="train")
    assert d.y.tolist() == fine.tolist() and d.num_classes == 100
    assert torch.equal(d.x, torch.from_numpy(imgs).float() / 255)
    c = load_cifar(tmp_path, split="test", num_classes=100, label="coarse")
    assert c.y.tolist() == coarse.tolist() and c.num_classes == 20


def test_cifar_missing_file_named(cifar10):
    root, _, _ = cifar10
    os.remove(root / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="data_batch_3.*CIFAR python pickle"):
        load_cifar(root, split="train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar(root / "nowhere", split="train")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > evil.txt",))


@pytest.mark.parametrize("content", [b"not a pickle at all", pickle.dumps([1, 2, 3]),
                                     pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}),
                                     pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
                                     pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}),
                                     pickle.dumps(_Evil())])
def test_cifar_corrupt_files_are_named(tmp_path, content, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "test_batch").write_bytes(content)
    with pytest.raises(DatasetFormatError, match=r"test_batch.*expected a CIFAR python pickle"):
        load_cifar(tmp_path, split="test")
    assert not (tmp_path / "evil.txt").exists()


def test_cifar_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_cifar(tmp_path, split="val")
    with pytest.raises(ValueError, match="num_classes"):
        load_cifar(tmp_path, split="train", num_classes=20)


# ---------------------------------------------------------------- STL-10
def _stl_files(folder, images, labels, split="train"):
    # the documented layout: every channel stored column-major (Fortran order), 3 channels per image
    raw = b"".join(img[c].flatten(order="F").tobytes() for img in images for c in range(3))
    (folder / f"{split}_X.bin").write_bytes(raw)
    (folder / f"{split}_y.bin").write_bytes(np.asarray(labels, dtype=np.uint8).tobytes())


def test_stl10_orientation_and_labels(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    imgs = np.zeros((2, 3, 96, 96), dtype=np.uint8)
    imgs[0, 0, 0, 1] = 255          # top row, second column, red
    imgs[1, 2, 5, 0] = 128          # sixth row, first column, blue
    imgs[1, 1] = _images(1, 1, 96, 96, 2)[0, 0]
    _stl_files(folder, imgs, [1, 10], "test")
    d = load_dataset("stl10", tmp_path, split="test")
    assert d.x.shape == (2, 3, 96, 96) and d.y.tolist() == [0, 9] and d.num_classes == 10
    assert d.x[0, 0, 0, 1] == 1.0 and d.x[0, 0, 1, 0] == 0.0
    assert d.x[1, 2, 5, 0] == pytest.approx(128 / 255) and d.x[1, 2, 0, 5] == 0.0
    assert torch.equal(d.x, torch.from_numpy(imgs).float() / 255)


@pytest.mark.parametrize("x_bytes, labels, match", [
    (100, [1], r"train_X\.bin.*multiple of 27648"),
    (27648 * 2, [1], r"train_y\.bin.*holds 1 labels"),
    (27648, [0], r"train_y\.bin.*1\.\.10"),
    (27648, [11], r"train_y\.bin.*1\.\.10"),
])
def test_stl10_corrupt_files(tmp_path, x_bytes, labels, match):
    (tmp_path / "train_X.bin").write_bytes(bytes(x_bytes))
    (tmp_path / "train_y.bin").write_bytes(bytes(labels))
    with pytest.raises(DatasetFormatError, match=match):
        load_stl10(tmp_path, "train")


def test_stl10_missing_labels(tmp_path):
    (tmp_path / "train_X.bin").write_bytes(bytes(27648))
    with pytest.raises(FileNotFoundError, match=r"train_y\.bin.*STL-10 binary labels"):
        load_stl10(tmp_path)
    with pytest.raises(ValueError, match="unlabeled"):
        load_stl10(tmp_path, "unlabeled")


# ---------------------------------------------------------------- IDX (MNIST family)
def _write(path, payload, gz):
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _idx_files(folder, images, labels, prefix="train", gz=False):
    n, h, w = images.shape
    _write(folder / f"{prefix}-images-idx3-ubyte", struct.pack(">IIII", 0x803, n, h, w) + images.tobytes(), gz)
    _write(folder / f"{prefix}-labels-idx1-ubyte", struct.pack(">II", 0x801, len(labels)) + bytes(labels), gz)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("variant, sub", [("mnist", ""), ("fashion-mnist", "FashionMNIST/raw"), ("kmnist", "KMNIST")])
def test_idx_variants_layouts_and_gzip(tmp_path, gz, variant, sub):
    folder = tmp_path / sub
    folder.mkdir(parents=True, exist_ok=True)
    imgs = _images(3, 1, 28, 28, 3)[:, 0]
    imgs[0, 0, :] = 0
    imgs[0, 0, 1] = 255             # row 0, column 1
    _idx_files(folder, imgs, [7, 0, 9], prefix="t10k", gz=gz)
    d = load_dataset(variant, tmp_path, split="test")
    assert d.x.shape == (3, 1, 28, 28) and d.y.tolist() == [7, 0, 9]
    assert d.x[0, 0, 0, 1] == 1.0 and d.x[0, 0, 0, 0] == 0.0
    assert torch.equal(d.x[:, 0], torch.from_numpy(imgs).float() / 255)


def test_read_idx_other_dtypes(tmp_path):
    arr = (np.arange(6).reshape(2, 3) - 3).astype(">i4")
    path = tmp_path / "ints.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 2, 3) + arr.tobytes())
    out = read_idx(path)
    assert out.tolist() == arr.tolist() and out.dtype == np.int32


def test_idx_wrong_magic_truncation_and_bad_gzip(tmp_path):
    imgs = _images(2, 1, 28, 28, 4)[:, 0]
    _idx_files(tmp_path, imgs, [1, 2])
    # labels file where the images file should be: magic 0x801 instead of 0x803
    (tmp_path / "train-images-idx3-ubyte").write_bytes((tmp_path / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DatasetFormatError, match=r"train-images-idx3-ubyte.*0x00000801.*0x00000803"):
        load_mnist(tmp_path)
    _idx_files(tmp_path, imgs, [1, 2])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 3) + bytes([1, 2]))
    with pytest.raises(DatasetFormatError, match=r"train-labels-idx1-ubyte.*need 3 data bytes"):
        load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 2) + bytes([1, 12]))
    with pytest.raises(DatasetFormatError, match="labels 0..9"):
        load_mnist(tmp_path)
    os.remove(tmp_path / "train-labels-idx1-ubyte")
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"definitely not gzip")
    with pytest.raises(DatasetFormatError, match=r"train-labels-idx1-ubyte\.gz.*cannot read"):
        load_mnist(tmp_path)
    os.remove(tmp_path / "train-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match=r"train-labels-idx1-ubyte.*IDX labels file"):
        load_mnist(tmp_path)


def test_idx_count_mismatch_and_bad_arguments(tmp_path):
    _idx_files(tmp_path, _images(2, 1, 28, 28, 5)[:, 0], [1, 2, 3])
    with pytest.raises(DatasetFormatError, match="one per image"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="variant"):
        load_mnist(tmp_path, variant="emnist")


# ---------------------------------------------------------------- Debian's Fashion-MNIST package
DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION),
                    reason=f"{DEBIAN_FASHION} absent (install it with `apt-get install dataset-fashion-mnist`)")
def test_fashion_mnist_from_the_debian_package_without_root():
    test = load_dataset("fashion-mnist", split="test")
    assert test.x.shape == (10000, 1, 28, 28) and test.num_classes == 10
    # the official test split holds 1000 images of each of the 10 classes
    assert torch.bincount(test.y, minlength=10).tolist() == [1000] * 10
    # independent read of the IDX file: 16-byte header, then uint8 pixels
    with gzip.open(os.path.join(DEBIAN_FASHION, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()
    assert struct.unpack(">4i", raw[:16]) == (0x803, 10000, 28, 28)
    first = np.frombuffer(raw, dtype=np.uint8, count=3 * 784, offset=16).reshape(3, 1, 28, 28)
    assert torch.equal(test.x[:3], torch.from_numpy(first.copy()).float() / 255)
    train = load_dataset("fmnist", split="train")
    assert len(train) == 60000 and torch.bincount(train.y, minlength=10).tolist() == [6000] * 10


def test_missing_system_dataset_names_the_apt_package(monkeypatch, tmp_path):
    from pyadvt.data import load as load_module

    monkeypatch.setitem(load_module.SYSTEM_ROOTS, "fashion-mnist",
                        (str(tmp_path / "absent"), "apt-get install dataset-fashion-mnist"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    with pytest.raises(ValueError, match="pass 'root'"):
        load_dataset("mnist")   # Debian has no MNIST package
