"""Data preparation shared by the metrics that attack a ``source`` and score a ``target``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import torch

from pyadvt.metrics.spectral import check_batch
from pyadvt.utils.validation import check_inputs

if TYPE_CHECKING:
    from torch.utils.data import DataLoader, Dataset

    from pyadvt.data.tensor_data import TensorData

    #: what the metrics accept as data: an ``[N, *in_shape]`` tensor, an ``(x, y)`` pair, a
    #: ``TensorData``, a ``Dataset`` of ``(x, y)`` items or a ``DataLoader`` (:mod:`pyadvt.data.stream`)
    Data = Union[torch.Tensor, tuple, TensorData, Dataset, DataLoader]


def pair_data(x, y, models: dict, batch_size, labels: str = "labels"):
    """Validate ``(x, y)`` for a model pair and return ``(data, device)`` for ``iter_batches``.

    In-memory tensors are checked up front (shape, labels ``[N]`` in range, images in [0, 1], dtype
    and device against both models) and walked where they are; a ``TensorData`` / ``Dataset`` /
    ``DataLoader`` (then ``y=None``) is checked batch by batch and moved to the first model's device.

    Args:
        x: ``[N, ...]`` images in [0, 1], or a dataset of ``(x, y)``.
        y: ``[N]`` integer labels (``None`` for a dataset).
        models: ``{"source": ..., "target": ...}`` (names as the messages should say them).
        batch_size: the caller's batch size (checked).
        labels: what the labels are called in the error message.
    """
    from pyadvt.data.stream import as_data
    from pyadvt.utils.modes import model_device

    if isinstance(x, torch.Tensor):
        check_batch(x)
        if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],):
            raise ValueError(f"'y' must be a [N] tensor of {labels} with N={x.shape[0]}")
        check_inputs(x, y, models=models, batch_size=batch_size, label_range=True)
    device = None if isinstance(x, torch.Tensor) else model_device(next(iter(models.values())))
    return as_data(x, y), device
