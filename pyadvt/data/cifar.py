"""CIFAR-10 / CIFAR-100 from the official "python version" pickle batches.

Layout (as extracted from ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``; the files may
sit directly in ``root`` or in ``root/cifar-10-batches-py`` / ``root/cifar-100-python``):

* CIFAR-10: ``data_batch_1`` .. ``data_batch_5`` (train) and ``test_batch``; each a pickled dict
  with ``b"data"``: uint8 ``[N, 3072]`` (row = 1024 red, 1024 green, 1024 blue values, each a 32x32
  image in row-major order) and ``b"labels"``: N ints in 0..9.
* CIFAR-100: ``train`` and ``test`` with ``b"data"`` as above, ``b"fine_labels"`` (0..99) and
  ``b"coarse_labels"`` (0..19).

Unpickling is restricted to the few numpy globals these files need, so a foreign pickle cannot
run code.
"""

from __future__ import annotations

import importlib
import os
import pickle

import numpy as np
import torch

from pyadvt.data.files import find_file, format_error
from pyadvt.data.tensor_data import TensorData
from pyadvt.utils.deprecation import keyword_only

_EXPECTED = ("a CIFAR python pickle batch: a dict with b'data' (uint8 [N, 3072]) and labels "
             "(b'labels' for CIFAR-10, b'fine_labels'/b'coarse_labels' for CIFAR-100)")

_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module.split(".", 2)[2]  # numpy >= 2 moved numpy.core
        return getattr(importlib.import_module(module), name)


def _read_batch(path: str, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _RestrictedUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError) as exc:
        raise format_error(path, _EXPECTED, f"cannot unpickle ({exc})") from None
    if not isinstance(batch, dict):
        raise format_error(path, _EXPECTED, f"holds a {type(batch).__name__}, not a dict")
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    if b"data" not in batch or label_key not in batch:
        raise format_error(path, _EXPECTED, f"keys {sorted(batch)} lack b'data' or {label_key!r}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key]).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise format_error(path, _EXPECTED, f"b'data' is {data.dtype} {data.shape}")
    if labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise format_error(path, _EXPECTED, f"{label_key!r} has {labels.shape[0]} {labels.dtype} entries "
                           f"for {data.shape[0]} images")
    return data, labels.astype(np.int64)


@keyword_only("split", "num_classes", "label")
def load_cifar(root: str | os.PathLike, *, split: str = "train", num_classes: int = 10,
               label: str = "fine") -> TensorData:
    """CIFAR-10 (``num_classes=10``) or CIFAR-100 (``num_classes=100``; ``label="coarse"`` for the 20
    superclasses) as float32 ``[N, 3, 32, 32]`` in [0, 1] (uint8 / 255) with int64 labels.

    Raises:
        ValueError: unknown ``split``, ``num_classes`` or ``label``.
        FileNotFoundError: a batch file is missing (the message lists where it looked).
        DatasetFormatError: a file is not a CIFAR pickle of the expected layout, or its labels are out of range.

    In the example: a synthetic two-image ``test_batch``; with the extracted archive in ``~/data``,
    ``load_cifar("~/data", "train")`` gives 50000 images and ``load_cifar("~/data", "test", 100)`` the
    CIFAR-100 test split.

    Example:
        >>> import os, pickle, tempfile
        >>> import numpy as np
        >>> root = tempfile.mkdtemp()
        >>> batch = {b"data": np.full((2, 3072), 255, np.uint8), b"labels": [3, 9]}
        >>> with open(os.path.join(root, "test_batch"), "wb") as f:
        ...     pickle.dump(batch, f)
        >>> test = load_cifar(root, split="test")
        >>> tuple(test.x.shape), test.y.tolist(), float(test.x.max())
        ((2, 3, 32, 32), [3, 9], 1.0)
    """
    if split not in ("train", "test"):
        raise ValueError(f"'split' must be 'train' or 'test', got {split!r}")
    root = os.path.expanduser(os.fspath(root))
    if num_classes == 10:
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        subdirs, label_key, classes = ["cifar-10-batches-py"], b"labels", 10
    elif num_classes == 100:
        if label not in ("fine", "coarse"):
            raise ValueError(f"'label' must be 'fine' or 'coarse', got {label!r}")
        names, subdirs = [split], ["cifar-100-python"]
        label_key, classes = (b"fine_labels", 100) if label == "fine" else (b"coarse_labels", 20)
    else:
        raise ValueError(f"'num_classes' must be 10 (CIFAR-10) or 100 (CIFAR-100), got {num_classes!r}")
    xs, ys = [], []
    for name in names:
        path = find_file(root, [name], subdirs, _EXPECTED)
        data, labels = _read_batch(path, label_key)
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise format_error(path, _EXPECTED, f"labels span {labels.min()}..{labels.max()}, outside 0..{classes - 1}")
        xs.append(data)
        ys.append(labels)
    x = torch.from_numpy(np.concatenate(xs)).reshape(-1, 3, 32, 32).float().div_(255.0)
    return TensorData(x, torch.from_numpy(np.concatenate(ys)), classes)
