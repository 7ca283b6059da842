"""scikit-learn's bundled handwritten digits (1797 images, 8x8, 10 classes) as :class:`TensorData`.

The data ship with scikit-learn, so nothing is downloaded: this is pyadvt's real dataset for
tests and examples.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pyadvt.data.tensor_data import TensorData
from pyadvt.utils.deprecation import keyword_only


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # pixel values are integers 0..16
    labels = bunch.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _check_classes(classes) -> list[int]:
    try:
        out = [int(c) for c in classes]
    except (TypeError, ValueError):
        raise TypeError(f"'classes' must be a sequence of digit labels 0..9, got {classes!r}") from None
    if any(c != orig for c, orig in zip(out, classes)) or any(not 0 <= c <= 9 for c in out):
        raise ValueError(f"'classes' must hold integer digit labels in 0..9, got {list(classes)}")
    if len(set(out)) != len(out) or len(out) < 2:
        raise ValueError(f"'classes' must name at least two distinct digits, got {list(classes)}")
    return out


@keyword_only("seed", "test_size", "classes", "size", "relabel")
def digits(*, seed: int = 0, test_size: float = 0.25, classes: Sequence[int] | None = None, size: int = 8,
           relabel: bool = True) -> tuple[TensorData, TensorData]:
    """Seeded stratified train/test split of scikit-learn's digits, as ``(train, test)``.

    Images are ``float32 [N, 1, size, size]`` in [0, 1] (the 0..16 pixel counts divided by 16);
    ``size`` other than 8 resizes bilinearly (e.g. 16 or 32, for nets that need larger inputs) and
    clamps back to [0, 1]. ``classes`` keeps only those digits; with ``relabel=True`` their labels
    become ``0..k-1`` in the order given (``classes=(3, 8)``: 3 -> 0, 8 -> 1) and ``num_classes = k``,
    otherwise the digit labels stay and ``num_classes = 10``. The split uses scikit-learn's
    ``train_test_split(stratify=y, random_state=seed)``, so class proportions match in both parts
    and the same seed gives the same split.

    Raises:
        ValueError: ``size`` is not a positive int, ``test_size`` is not in (0, 1), or ``classes`` does
            not name at least two distinct digits 0..9.  TypeError: ``classes`` is not a sequence of ints.

    Example:
        >>> train, test = digits(seed=0)
        >>> train.x.shape, test.x.shape, train.num_classes
        (torch.Size([1347, 1, 8, 8]), torch.Size([450, 1, 8, 8]), 10)
        >>> tr, te = digits(classes=(3, 8), size=16)
        >>> tr.x.shape[1:], sorted(set(tr.y.tolist()))
        (torch.Size([1, 16, 16]), [0, 1])
    """
    from sklearn.model_selection import train_test_split

    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"'size' must be a positive int (8 keeps the native resolution), got {size!r}")
    if not isinstance(test_size, (int, float)) or not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"'test_size' must be a fraction in (0, 1), got {test_size!r}")
    images, labels = _raw_digits()
    num_classes = 10
    if classes is not None:
        keep = _check_classes(classes)
        mask = np.isin(labels, keep)
        images, labels = images[mask], labels[mask]
        if relabel:
            lookup = np.full(10, -1, dtype=np.int64)
            lookup[keep] = np.arange(len(keep))
            labels = lookup[labels]
            num_classes = len(keep)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=float(test_size),
                                           random_state=int(seed), stratify=labels)
    x = torch.from_numpy(np.array(images)).unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    y = torch.from_numpy(np.array(labels))
    tr, te = torch.from_numpy(np.sort(idx_train)), torch.from_numpy(np.sort(idx_test))
    return TensorData(x[tr], y[tr], num_classes), TensorData(x[te], y[te], num_classes)
