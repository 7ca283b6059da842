"""MNIST, Fashion-MNIST and KMNIST from their IDX files, gzipped or not.

IDX format: a 4-byte big-endian magic number ``0x00 0x00 <type> <ndim>`` (type ``0x08`` = uint8),
then ``ndim`` big-endian uint32 dimensions, then the data in row-major order. Images are
``0x00000803`` (``[N, 28, 28]``) and labels ``0x00000801`` (``[N]``). All three datasets use the
same file names (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each optionally ``.gz``); they may sit in ``root``, ``root/<Name>/raw``
(torchvision's layout) or ``root/<Name>``.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np
import numpy.typing as npt
import torch

from pyadvt.data.files import find_file, format_error
from pyadvt.data.tensor_data import TensorData
from pyadvt.utils.deprecation import keyword_only

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_VARIANTS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` decompressed by its name), checking ``magic`` if given.

    Raises:
        DatasetFormatError: the file cannot be read, is too short, has another magic number than
            ``magic`` or an invalid header, or holds fewer data bytes than its dimensions need.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "t10k-labels-idx1-ubyte.gz")
        >>> hex(write_idx(path, np.array([3, 7], np.uint8)))
        '0x801'
        >>> read_idx(path, magic=LABELS_MAGIC).tolist()
        [3, 7]
    """
    path = os.fspath(path)
    expected = f"an IDX file (magic 0x{magic:08X})" if magic is not None else "an IDX file"
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise format_error(path, expected, f"cannot read ({exc})") from None
    if len(raw) < 4:
        raise format_error(path, expected, f"only {len(raw)} bytes, too short for a header")
    found = int.from_bytes(raw[:4], "big")
    if magic is not None and found != magic:
        raise format_error(path, expected, f"magic number is 0x{found:08X}")
    code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or code not in _DTYPES or ndim == 0:
        raise format_error(path, expected, f"magic number 0x{found:08X} is not a valid IDX header")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise format_error(path, expected, f"truncated header ({len(raw)} bytes for {ndim} dimensions)")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    dtype = _DTYPES[code]
    need = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != need:
        raise format_error(path, expected, f"dimensions {dims} need {need} data bytes, file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: npt.ArrayLike | torch.Tensor) -> int:
    """Write ``array`` (``[d_1, ..., d_k]``) as an IDX file, gzipped if ``path`` ends in ``.gz``: the inverse
    of :func:`read_idx`, e.g. for small synthetic MNIST-style datasets.

    The magic number follows from the array, ``0x00 0x00 <type> <k>`` with the IDX type code of its
    dtype (uint8 ``0x08``, int8 ``0x09``, int16 ``0x0B``, int32 ``0x0C``, float32 ``0x0D``, float64
    ``0x0E``): uint8 images ``[N, 28, 28]`` get :data:`IMAGES_MAGIC`, uint8 labels ``[N]``
    :data:`LABELS_MAGIC`. The dimensions and the big-endian data follow. Returns the magic number.

    Raises:
        TypeError: the array's dtype has no IDX type code.
        ValueError: the array is 0-d, has more than 255 dimensions, or a dimension exceeds 2**32 - 1.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "scores-idx2")
        >>> hex(write_idx(path, np.arange(6, dtype=np.float32).reshape(2, 3)))
        '0xd02'
        >>> read_idx(path).tolist()
        [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    """
    arr = np.asarray(array)
    code = next((c for c, dt in _DTYPES.items() if dt == arr.dtype.newbyteorder(">")), None)
    if code is None:
        raise TypeError(f"'array' has dtype {arr.dtype}, which IDX cannot store; convert it to one of "
                        "uint8, int8, int16, int32, float32, float64")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"'array' must have 1 to 255 dimensions for an IDX file, got {arr.ndim}")
    if max(arr.shape) > 0xFFFFFFFF:
        raise ValueError(f"'array' has a dimension above 2**32 - 1 (shape {arr.shape}), which IDX cannot store")
    magic = (code << 8) | arr.ndim
    raw = (magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
           + np.ascontiguousarray(arr, dtype=_DTYPES[code]).tobytes())
    path = os.fspath(path)
    with (gzip.open(path, "wb") if path.endswith(".gz") else open(path, "wb")) as f:
        f.write(raw)
    return magic


@keyword_only("split", "variant")
def load_mnist(root: str | os.PathLike, *, split: str = "train", variant: str = "mnist") -> TensorData:
    """MNIST-style ``train`` / ``test`` split (``variant`` "mnist", "fashion-mnist" or "kmnist") as
    float32 ``[N, 1, 28, 28]`` in [0, 1] (uint8 / 255) with int64 labels 0..9.

    Raises:
        ValueError: ``split`` or ``variant`` is unknown.
        FileNotFoundError: an IDX file is missing (the message lists where it looked).
        DatasetFormatError: a file is not a valid IDX file of the expected kind, or images and
            labels disagree.

    In the example: two synthetic 28 x 28 test images; with the real files in ``~/data/FashionMNIST/raw``,
    ``load_mnist("~/data", "test", variant="fashion-mnist")`` gives 10000 of them.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> root = tempfile.mkdtemp()
        >>> _ = write_idx(os.path.join(root, "t10k-images-idx3-ubyte"), np.full((2, 28, 28), 255, np.uint8))
        >>> _ = write_idx(os.path.join(root, "t10k-labels-idx1-ubyte"), np.array([3, 7], np.uint8))
        >>> test = load_mnist(root, split="test")
        >>> tuple(test.x.shape), test.y.tolist(), float(test.x.max())
        ((2, 1, 28, 28), [3, 7], 1.0)
    """
    if split not in ("train", "test"):
        raise ValueError(f"'split' must be 'train' or 'test', got {split!r}")
    if variant not in _VARIANTS:
        raise ValueError(f"'variant' must be one of {sorted(_VARIANTS)}, got {variant!r}")
    root = os.path.expanduser(os.fspath(root))
    sub = _VARIANTS[variant]
    subdirs = [os.path.join(sub, "raw"), sub]
    prefix = "train" if split == "train" else "t10k"
    found = {}
    for kind, idx, magic in (("images", 3, IMAGES_MAGIC), ("labels", 1, LABELS_MAGIC)):
        name = f"{prefix}-{kind}-idx{idx}-ubyte"
        expected = f"an IDX {kind} file (magic 0x{magic:08X}, optionally gzipped)"
        path = find_file(root, [name, name + ".gz"], subdirs, expected)
        found[kind] = (path, read_idx(path, magic))
    (path_x, images), (path_y, labels) = found["images"], found["labels"]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise format_error(path_x, "uint8 images [N, H, W]", f"holds {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise format_error(path_y, f"{images.shape[0]} labels (one per image in {path_x})",
                           f"holds shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise format_error(path_y, "labels 0..9", f"largest label is {labels.max()}")
    x = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)
    return TensorData(x, torch.from_numpy(labels.astype(np.int64)), 10)
