"""pyadvt.data.mnist.write_idx: the IDX writer, checked byte by byte against a header packed here with
``struct`` (the format's definition) and by round trips through read_idx / load_mnist."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from pyadvt.data.mnist import IMAGES_MAGIC, LABELS_MAGIC, load_mnist, read_idx, write_idx

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def reference_bytes(arr: np.ndarray, code: int) -> bytes:
    big_endian = arr.astype(arr.dtype.newbyteorder(">"))
    return struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + big_endian.tobytes()


@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 1, 4)])
def test_bytes_match_the_format_and_read_back(tmp_path, dtype, shape):
    arr = (np.arange(int(np.prod(shape))) - 2).astype(dtype).reshape(shape)
    path = tmp_path / "a-idx"
    magic = write_idx(path, arr)
    assert magic == (TYPE_CODES[dtype] << 8) | len(shape)
    assert path.read_bytes() == reference_bytes(arr, TYPE_CODES[dtype])
    back = read_idx(path, magic=magic)
    assert back.dtype == np.dtype(dtype) and back.shape == shape
    np.testing.assert_array_equal(back, arr)


def test_gzip_by_name_and_the_mnist_magics(tmp_path):
    images, labels = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28), np.array([4, 9], np.uint8)
    assert write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images) == IMAGES_MAGIC
    assert write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels) == LABELS_MAGIC
    assert gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes()) == reference_bytes(labels, 0x08)
    test = load_mnist(tmp_path, split="test")
    assert test.y.tolist() == [4, 9]
    np.testing.assert_allclose(test.x[:, 0].numpy(), images / 255.0, rtol=0, atol=1e-7)


def test_native_little_endian_input_is_written_big_endian(tmp_path):
    arr = np.array([1, 256], dtype="<i2")
    write_idx(tmp_path / "x", arr)
    assert (tmp_path / "x").read_bytes()[8:] == b"\x00\x01\x01\x00"


@pytest.mark.parametrize("bad, error, words", [
    (np.array([1, 2], np.int64), TypeError, "dtype int64"),
    (np.array([True]), TypeError, "dtype bool"),
    (np.array(3, np.uint8), ValueError, "1 to 255 dimensions"),
])
def test_unstorable_arrays_are_refused_before_writing(tmp_path, bad, error, words):
    path = tmp_path / "never"
    with pytest.raises(error, match=words):
        write_idx(path, bad)
    assert not path.exists()
