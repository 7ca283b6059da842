"""``SmallCNN``: conv-BatchNorm-activation reference network."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from pyadvt.models import layers
from pyadvt.models.base import SplitModel, default_normalize, record_config
from pyadvt.utils.deprecation import keyword_only


class SmallCNN(SplitModel):
    """Normalize -> blocks of [3x3 conv -> BatchNorm -> activation (-> 2x2 max-pool)] -> global
    average pool -> Linear head.

    Every block but the last halves the resolution while it is at least 2 pixels, so the same
    net fits 8x8 digits and 32x32 CIFAR. ``feature_dim = channels[-1]``.

    Input ``[B, *in_shape]``, logits ``[B, num_classes]``.

    Raises:
        ValueError: an unknown ``activation``, ``num_classes < 2``, ``mean``/``std`` with neither 1 nor C
            entries, or (on a call) an input that is not ``[B, *in_shape]``.
        TypeError: ``in_shape`` is not a ``(C, H, W)`` tuple of ints.
        TypeError: ``channels`` are not positive ints.

    Example:
        >>> import torch
        >>> net = SmallCNN((1, 8, 8), 10)
        >>> net(torch.rand(2, 1, 8, 8)).shape, len(net.blocks), net.feature_dim
        (torch.Size([2, 10]), 3, 128)
    """

    @keyword_only("channels", "activation", "mean", "std")
    def __init__(self, in_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10, *,
                 channels: Sequence[int] = (32, 64, 128), activation: str = "relu",
                 mean: float | Sequence[float] | None = None, std: float | Sequence[float] | None = None) -> None:
        in_shape = layers.check_in_shape(in_shape)
        num_classes = layers.check_num_classes(num_classes)
        widths = layers.check_widths(channels, "channels")
        layers.check_activation(activation)
        blocks, c_in, side = [], in_shape[0], min(in_shape[1:])
        for i, c_out in enumerate(widths):
            mods = layers.conv_bn_act(c_in, c_out, activation)
            if i < len(widths) - 1 and side >= 2:
                mods.append(nn.MaxPool2d(2))
                side //= 2
            blocks.append(nn.Sequential(*mods))
            c_in = c_out
        neck = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        super().__init__(blocks, nn.Linear(c_in, num_classes), default_normalize(in_shape, mean, std), neck,
                         in_shape=in_shape)
        record_config(self, "cnn", in_shape=in_shape, num_classes=num_classes, channels=widths,
                      activation=activation, mean=mean, std=std)
