"""The evaluation samples of a ranking, from any data kind, with at most ``n`` samples in memory.

The adversarial scores of :mod:`pyadvt.selection.ranking` (tau1, tau2, the eq. 2 loss, attack success
rates, smoothness; docs/theory.md §2, §3) attack and differentiate a fixed set of ``n_eval`` images,
so those images are held as tensors; everything else (the estimators' feature extraction, the
linear probes) streams the data one batch at a time (docs/theory.md §9).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from pyadvt.data import TensorData
from pyadvt.data.stream import iter_batches, num_samples, to_tensor_data
from pyadvt.utils.validation import InvalidValueError, check_batch_size

__all__ = ["eval_samples", "num_classes_of"]


def eval_samples(data: Any, n: int, *, seed: int | None = None, batch_size: int = 256) -> TensorData:
    """``n`` labelled samples of ``data`` as a :class:`~pyadvt.data.TensorData` ``x [n, C, H, W]``, ``y [n]``.

    The first ``n`` samples, or with ``seed`` a seeded random subset of a source of known length (an
    ImageFolder lists its files class by class, so its first ``n`` are usually one class). A
    ``DataLoader`` or ``IterableDataset`` gives its first ``n`` samples in its own order (``seed`` is
    not used: shuffle the loader itself). Only those ``n`` samples are read.

    Raises ``ValueError`` for ``n < 1``, an empty source or one without labels.

    Example:
        >>> ds = torch.utils.data.TensorDataset(torch.rand(9, 1, 2, 2), torch.arange(9) % 3)
        >>> eval_samples(ds, 4).y.tolist(), len(eval_samples(torch.utils.data.DataLoader(ds, batch_size=2), 3))
        ([0, 1, 2, 0], 3)
    """
    n = check_batch_size(n, "n_eval")
    if isinstance(data, TensorData) and seed is None:
        return data.subset(torch.arange(min(n, len(data))))
    if not isinstance(data, (DataLoader, IterableDataset)) and num_samples(data) is not None:
        return to_tensor_data(data, n, seed=seed, batch_size=batch_size)
    xs, ys, held = [], [], 0
    for x, y in iter_batches(data, min(n, batch_size), labels=True):
        xs.append(x[:n - held])
        ys.append(y[:n - held])
        held += xs[-1].shape[0]
        if held >= n:
            break
    source = data.dataset if isinstance(data, DataLoader) else data
    classes = getattr(data, "num_classes", None) or getattr(source, "num_classes", None)
    return TensorData(torch.cat(xs), torch.cat(ys), classes if isinstance(classes, int) else None)


def num_classes_of(data: Any, batch_size: int = 256) -> int:
    """The number of classes of labelled ``data``: its ``num_classes`` attribute (also on a
    ``DataLoader``'s dataset), else ``max(y) + 1`` over one streamed pass of its labels.

    Example:
        >>> num_classes_of(torch.utils.data.TensorDataset(torch.rand(4, 1, 2, 2), torch.tensor([0, 3, 1, 1])))
        4
    """
    for source in (data, getattr(data, "dataset", None)):
        k = getattr(source, "num_classes", None)
        if isinstance(k, int) and not isinstance(k, bool) and k > 0:
            return k
    top = -1
    for _, y in iter_batches(data, batch_size, labels=True):
        top = max(top, int(y.max()))
    if top < 0:
        raise InvalidValueError("'data' has no labels >= 0 to count the classes of")
    return top + 1
