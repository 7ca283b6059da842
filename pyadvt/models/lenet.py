"""``LeNet``: the classic two-conv, three-linear network (LeCun et al. 1998), for any input size."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.models import layers
from pyadvt.models.base import SplitModel, default_normalize, record_config
from pyadvt.utils.deprecation import keyword_only


class LeNet(SplitModel):
    """Normalize -> [5x5 conv(6), act, max-pool] -> [5x5 conv(16), act, max-pool, flatten] ->
    [Linear(120), act] -> [Linear(84), act] -> Linear head; four blocks, ``feature_dim = 84``.

    Convolutions pad by 2 so that inputs from 4x4 up work (8x8 digits: 16 x 2 x 2 = 64 flat
    features; 28x28 MNIST: 16 x 7 x 7).

    Input ``[B, *in_shape]``, logits ``[B, num_classes]``.

    Raises:
        ValueError: an unknown ``activation``, ``num_classes < 2``, ``mean``/``std`` with neither 1 nor C
            entries, or (on a call) an input that is not ``[B, *in_shape]``.
        TypeError: ``in_shape`` is not a ``(C, H, W)`` tuple of ints.
        ValueError: images smaller than 4x4.

    Example:
        >>> net = LeNet((1, 8, 8), 10)
        >>> net(torch.rand(2, 1, 8, 8)).shape, len(net.blocks), net.feature_dim
        (torch.Size([2, 10]), 4, 84)
    """

    @keyword_only("activation", "mean", "std")
    def __init__(self, in_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10, *, activation: str = "relu",
                 mean: float | Sequence[float] | None = None, std: float | Sequence[float] | None = None) -> None:
        in_shape = layers.check_in_shape(in_shape)
        num_classes = layers.check_num_classes(num_classes)
        layers.check_activation(activation)
        if min(in_shape[1:]) < 4:
            raise ValueError(f"LeNet needs images of at least 4x4 pixels, got in_shape={in_shape}")
        conv1 = nn.Sequential(nn.Conv2d(in_shape[0], 6, 5, padding=2), layers.activation(activation), nn.MaxPool2d(2))
        conv2 = nn.Sequential(nn.Conv2d(6, 16, 5, padding=2), layers.activation(activation), nn.MaxPool2d(2),
                              nn.Flatten(1))
        with torch.no_grad():
            flat = conv2(conv1(torch.zeros(1, *in_shape))).shape[1]
        fc1 = nn.Sequential(nn.Linear(flat, 120), layers.activation(activation))
        fc2 = nn.Sequential(nn.Linear(120, 84), layers.activation(activation))
        super().__init__([conv1, conv2, fc1, fc2], nn.Linear(84, num_classes), default_normalize(in_shape, mean, std),
                         nn.Flatten(1), in_shape=in_shape)
        record_config(self, "lenet", in_shape=in_shape, num_classes=num_classes, activation=activation,
                      mean=mean, std=std)
