"""STL-10 from the official binary files (``stl10_binary.tar.gz``).

``{split}_X.bin``: uint8, 3 x 96 x 96 bytes per image, each channel stored **column-major** (the
files were written from MATLAB), so a row read as ``[3, 96, 96]`` is ``[C, W, H]`` and must be
transposed to ``[C, H, W]``. ``{split}_y.bin``: one uint8 label per image, 1..10. The files may
sit in ``root`` or ``root/stl10_binary``.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from pyadvt.data.files import find_file, format_error
from pyadvt.data.tensor_data import TensorData

_SIDE = 96
_IMAGE_BYTES = 3 * _SIDE * _SIDE
_EXPECTED_X = f"STL-10 binary images: uint8, {_IMAGE_BYTES} bytes (3 x 96 x 96, column-major) per image"
_EXPECTED_Y = "STL-10 binary labels: one uint8 per image, values 1..10"


def load_stl10(root: str | os.PathLike, split: str = "train") -> TensorData:
    """STL-10 ``train`` (5000) or ``test`` (8000) split as float32 ``[N, 3, 96, 96]`` in [0, 1],
    labels shifted to 0..9.

    Raises:
        ValueError: unknown ``split``.
        FileNotFoundError: a binary file is missing.
        DatasetFormatError: the image file's size is not a multiple of one image, labels and images
            disagree in number, or labels are outside 1..10.

    In the example: two synthetic images; with the extracted archive in ``~/data``,
    ``load_stl10("~/data", "test")`` gives 8000.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> root = tempfile.mkdtemp()
        >>> np.zeros(2 * 3 * 96 * 96, np.uint8).tofile(os.path.join(root, "test_X.bin"))
        >>> np.array([1, 10], np.uint8).tofile(os.path.join(root, "test_y.bin"))
        >>> test = load_stl10(root, "test")
        >>> tuple(test.x.shape), test.y.tolist()
        ((2, 3, 96, 96), [0, 9])
    """
    if split not in ("train", "test"):
        raise ValueError(f"'split' must be 'train' or 'test' (the unlabeled split has no labels), got {split!r}")
    root = os.path.expanduser(os.fspath(root))
    path_x = find_file(root, [f"{split}_X.bin"], ["stl10_binary"], _EXPECTED_X)
    path_y = find_file(root, [f"{split}_y.bin"], ["stl10_binary"], _EXPECTED_Y)
    raw_x = np.fromfile(path_x, dtype=np.uint8)
    raw_y = np.fromfile(path_y, dtype=np.uint8)
    if raw_x.size == 0 or raw_x.size % _IMAGE_BYTES:
        raise format_error(path_x, _EXPECTED_X, f"size {raw_x.size} bytes is not a positive multiple of {_IMAGE_BYTES}")
    n = raw_x.size // _IMAGE_BYTES
    if raw_y.size != n:
        raise format_error(path_y, _EXPECTED_Y, f"holds {raw_y.size} labels but {path_x} holds {n} images")
    if raw_y.min() < 1 or raw_y.max() > 10:
        raise format_error(path_y, _EXPECTED_Y, f"labels span {raw_y.min()}..{raw_y.max()}")
    images = raw_x.reshape(n, 3, _SIDE, _SIDE).transpose(0, 1, 3, 2)  # [N, C, W, H] -> [N, C, H, W]
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    y = torch.from_numpy(raw_y.astype(np.int64) - 1)
    return TensorData(x, y, 10)
