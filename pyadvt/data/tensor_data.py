"""In-memory image classification data: ``TensorData`` and its seeded batch loader.

Inputs live in pixel space ``[0, 1]`` (docs/theory.md §0): any normalisation belongs to the model
(``pyadvt.models.Normalize``), never to the data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from pyadvt.utils.deprecation import keyword_only


@dataclass(eq=False, repr=False)
class TensorData(Dataset):
    """Images ``x`` (float32 ``[N, C, H, W]`` in [0, 1]) and integer labels ``y`` (int64 ``[N]``).

    ``num_classes`` defaults to ``y.max() + 1``; give it explicitly when a subset may miss the
    highest class. Floating inputs are stored as float32 and integer labels as int64; anything else
    (uint8 images, values outside [0, 1], mismatched lengths, negative labels) raises ``ValueError``
    / ``TypeError`` naming the argument.

    Example:
        >>> data = TensorData(torch.rand(10, 1, 8, 8), torch.arange(10) % 3)
        >>> len(data), data.num_classes, data.in_shape
        (10, 3, (1, 8, 8))
        >>> [xb.shape[0] for xb, yb in data.loader(4)]
        [4, 4, 2]

    It is also a ``torch.utils.data.Dataset`` of ``(x [C, H, W], y)`` items, so a ``DataLoader``
    (or any code written for Datasets) takes it directly:

        >>> xb, yb = next(iter(torch.utils.data.DataLoader(data, batch_size=3)))
        >>> xb.shape, yb.tolist()
        (torch.Size([3, 1, 8, 8]), [0, 1, 2])
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int | None = None

    def __post_init__(self) -> None:
        x, y = self.x, self.y
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"'x' must be a torch.Tensor, got {type(x).__name__}")
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"'y' must be a torch.Tensor, got {type(y).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"'x' must be a floating-point tensor in [0, 1], got {x.dtype} "
                             "(convert uint8 images with x.float() / 255)")
        if x.dim() != 4:
            raise ValueError(f"'x' must have shape [N, C, H, W], got {tuple(x.shape)}")
        if y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"'y' must have shape [N] with N={x.shape[0]} (one label per image), got {tuple(y.shape)}")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise ValueError(f"'y' must hold integer class labels, got {y.dtype}")
        x = x.detach().to(torch.float32)
        y = y.detach().to(torch.int64)
        if x.numel() and not bool(torch.isfinite(x).all()):
            raise ValueError("'x' contains NaN or infinite values")
        if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
            raise ValueError(f"'x' must lie in [0, 1] (pixel space), got values in [{float(x.min()):.4g}, "
                             f"{float(x.max()):.4g}]; normalisation belongs in the model (pyadvt.models.Normalize)")
        if y.numel() and int(y.min()) < 0:
            raise ValueError(f"'y' must hold labels >= 0, got {int(y.min())}")
        top = int(y.max()) + 1 if y.numel() else 0
        if self.num_classes is None:
            self.num_classes = top
        elif not isinstance(self.num_classes, int) or isinstance(self.num_classes, bool) or self.num_classes < 1:
            raise ValueError(f"'num_classes' must be a positive int, got {self.num_classes!r}")
        elif top > self.num_classes:
            raise ValueError(f"'y' has label {top - 1} but num_classes={self.num_classes}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``i`` as ``(x [C, H, W], y [])`` (use :meth:`subset` for many indices)."""
        return self.x[i], self.y[i]

    def __repr__(self) -> str:
        return (f"TensorData(n={len(self)}, in_shape={self.in_shape}, num_classes={self.num_classes}, "
                f"device={self.x.device})")

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(int(s) for s in self.x.shape[1:])

    def subset(self, idx: Sequence[int] | torch.Tensor) -> TensorData:
        """The samples at ``idx`` (indices or a boolean mask), keeping ``num_classes``."""
        idx = torch.as_tensor(idx, device=self.x.device)
        if idx.dtype != torch.bool:
            idx = idx.to(torch.int64)
        return TensorData(self.x[idx], self.y[idx], self.num_classes)

    def to(self, device: torch.device | str) -> TensorData:
        """A copy on ``device``."""
        return TensorData(self.x.to(device), self.y.to(device), self.num_classes)

    def loader(self, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False) -> BatchLoader:
        """Iterable of ``(x [b, C, H, W], y [b])`` batches; see :class:`BatchLoader`."""
        return BatchLoader(self, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)


class BatchLoader:
    """Batches of a :class:`TensorData` by tensor indexing (no per-sample collation).

    With ``shuffle=True`` every pass draws a fresh permutation from one ``torch.Generator`` seeded
    with ``seed`` at construction, so the sequence of epochs is reproducible and independent of the
    global RNG.

    Yields ``(x [b, *in], y [b])`` pairs, ``b <= batch_size``.

    Raises:
        ValueError: ``batch_size`` is not a positive int.  TypeError: ``data`` is not a :class:`TensorData`.

    Example:
        >>> data = TensorData(torch.rand(5, 1, 2, 2), torch.arange(5))
        >>> a = [yb.tolist() for _, yb in data.loader(2, shuffle=True, seed=3)]
        >>> a == [yb.tolist() for _, yb in data.loader(2, shuffle=True, seed=3)]
        True
    """

    @keyword_only("shuffle", "seed", "drop_last")
    def __init__(self, data: TensorData, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"'batch_size' must be a positive int, got {batch_size!r}")
        if not isinstance(data, TensorData):
            raise TypeError(f"'data' must be a TensorData, got {type(data).__name__}; use "
                            "pyadvt.data.iter_batches for other sources")
        self.data = data
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.data)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.data.x.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.data.x[idx], self.data.y[idx]
