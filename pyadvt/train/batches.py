"""``TrainBatches``: the seeded, reshuffled-every-epoch training batches of :func:`pyadvt.train.fit`.

``fit`` trains on any data kind of :mod:`pyadvt.data.stream` and holds at most one batch of it in
memory (docs/theory.md §9):

=====================================  ==========================================================
``train``                              one epoch
=====================================  ==========================================================
:class:`~pyadvt.data.TensorData` or    a fresh permutation of ``0..N-1`` from one
an ``(x, y)`` pair of tensors          ``torch.Generator`` seeded once, batches by indexing
map-style ``Dataset`` of ``(x, y)``    the *same* permutation (same generator, same seed), each
items (an ImageFolder, ...)            batch stacked from its ``batch_size`` items
``DataLoader`` / ``IterableDataset``   its own order and batches (split to at most
                                       ``batch_size``); a ``shuffle=True`` loader without its own
                                       generator draws from the global RNG, which ``fit`` seeds
=====================================  ==========================================================

Because a ``Dataset`` follows the permutation a ``TensorData`` of the same samples follows, the two
give bit-identical batches, hence identical trained weights for the same ``seed``. A final batch of
a single sample is skipped (BatchNorm cannot train on it): for a ``Dataset`` the last one when
``N % batch_size == 1``, for a ``DataLoader`` any batch of one sample.

Example:
    >>> import torch
    >>> from pyadvt.data import TensorData
    >>> data = TensorData(torch.rand(5, 1, 2, 2), torch.arange(5))
    >>> ds = torch.utils.data.Subset(data, range(5))  # the same samples as a plain Dataset
    >>> a, b = TrainBatches(data, 2, seed=1), TrainBatches(ds, 2, seed=1)
    >>> len(a), [yb.tolist() for _, yb in a] == [yb.tolist() for _, yb in b]  # 5 = 2 * 2 + 1: one skipped
    (2, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset

from pyadvt.data import TensorData
from pyadvt.data.stream import _len, iter_batches, num_batches
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

__all__ = ["TrainBatches"]

_KINDS = "a TensorData, an (x, y) pair of tensors, a torch.utils.data.Dataset of (x, y) items or a DataLoader"


class TrainBatches:
    """Training batches ``(x [b, C, H, W], y [b] int64)`` of ``data``, ``2 <= b <= batch_size``.

    Args:
        data: a :class:`~pyadvt.data.TensorData`, an ``(x, y)`` pair (checked as a ``TensorData``),
            a map-style ``Dataset`` of ``(x, y)`` items, a ``DataLoader`` or an ``IterableDataset``
            with a length (the learning-rate schedule needs the number of steps).
        batch_size: the most samples of one batch.
        seed: seeds the permutation drawn for every epoch (``TensorData`` and ``Dataset``).
        name: the argument's name in error messages.

    ``len()`` is the number of batches of one epoch; every ``iter()`` is one epoch. ``tensors`` is
    ``True`` when the data is held as tensors (a ``TensorData``).

    Raises ``TypeError`` for another kind (a bare tensor has no labels; a generator can be walked
    only once) and ``ValueError`` for fewer than 2 samples or a ``Dataset`` / ``DataLoader`` whose
    length is unknown; items without labels raise ``ValueError`` when read (``fit`` reads the first
    batch before training).
    """

    def __init__(self, data: Any, batch_size: int, *, seed: int = 0, name: str = "train") -> None:
        if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
            data = TensorData(*data)
        if isinstance(data, torch.Tensor) or not isinstance(data, (TensorData, Dataset, DataLoader)):
            raise InvalidTypeError(f"'{name}' must be {_KINDS}, got {type(data).__name__}"
                                   + (" (a bare tensor has no labels: pass (x, y))" if isinstance(data, torch.Tensor)
                                      else ""))
        self.data, self.batch_size, self.name = data, int(batch_size), name
        self.tensors = isinstance(data, TensorData)
        self.stream = isinstance(data, (DataLoader, IterableDataset))
        self.n = len(data) if self.tensors else (None if self.stream else _len(data))
        if not self.stream and self.n is None:
            raise InvalidValueError(f"'{name}': a map-style {type(data).__name__} must have a length (__len__) "
                                    "to be shuffled; give it one or wrap it in a DataLoader")
        if self.n is not None and self.n < 2:
            raise InvalidValueError(f"'{name}' needs at least 2 samples, got {self.n}")
        self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))
        self._drop_last = self.n is not None and self.n % self.batch_size == 1
        if self.stream:
            self._steps = num_batches(data, self.batch_size)
            if self._steps is None:
                raise InvalidValueError(f"'{name}': fit needs the number of batches per epoch for its learning-rate "
                                        f"schedule, and this {type(data).__name__} cannot tell it; give its "
                                        "dataset a __len__ (or pass the Dataset itself)")
        else:
            self._steps = self.n // self.batch_size if self._drop_last else math.ceil(self.n / self.batch_size)
        if self.tensors:
            self._loader = data.loader(self.batch_size, shuffle=True, seed=int(seed), drop_last=self._drop_last)

    def __len__(self) -> int:
        return self._steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.tensors:
            yield from self._loader
            return
        if self.stream:
            for x, y in iter_batches(self.data, self.batch_size, labels=True):
                if x.shape[0] > 1:
                    yield x, y
            return
        order = torch.randperm(self.n, generator=self.generator)  # the draw BatchLoader makes for a TensorData
        if self._drop_last:
            order = order[:self.n - 1]
        yield from iter_batches(Subset(self.data, order.tolist()), self.batch_size, labels=True)
