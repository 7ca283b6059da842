"""``SmallResNet``: a narrow ResNet of basic blocks (He et al. 2016) for small images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.models import layers
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.errors import InvalidValueError
from pyadvt.models.base import SplitModel, default_normalize, record_config


class BasicBlock(nn.Module):
    """``act(BN(conv(act(BN(conv(x))))) + shortcut(x))``; the shortcut is a strided 1x1 conv + BN
    when the shape changes, else the identity. ``[B, c_in, H, W] -> [B, c_out, H/stride, W/stride]``.

    Raises:
        InvalidValueError: ``c_in``, ``c_out`` or ``stride`` is not an int >= 1.
        ValueError: an unknown ``activation``.

    Example:
        >>> import torch
        >>> block = BasicBlock(4, 8, stride=2, activation="relu")
        >>> block(torch.rand(2, 4, 6, 6)).shape
        torch.Size([2, 8, 3, 3])
    """

    def __init__(self, c_in: int, c_out: int, stride: int, activation: str) -> None:
        super().__init__()
        for name, v in (("c_in", c_in), ("c_out", c_out), ("stride", stride)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidValueError(f"'{name}' must be an int >= 1, got {v!r}")
        self.body = nn.Sequential(*layers.conv_bn_act(c_in, c_out, activation, stride),
                                  nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        self.act = layers.activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class SmallResNet(SplitModel):
    """Normalize -> stem [3x3 conv, BN, act] -> ``depth`` basic blocks per width (the first block of
    every stage after the first has stride 2) -> global average pool -> Linear head.

    ``blocks = [stem, *basic blocks]``; ``feature_dim = widths[-1]``.

    Raises:
        ValueError: an unknown ``activation``, ``num_classes < 2``, ``mean``/``std`` with neither 1 nor C
            entries, or (on a call) an input that is not ``[B, *in_shape]``.
        TypeError: ``in_shape`` is not a ``(C, H, W)`` tuple of ints.
        ValueError: ``depth`` is not a positive int; TypeError: ``widths`` are not positive ints.

    Example:
        >>> net = SmallResNet((1, 8, 8), 10)
        >>> net(torch.rand(2, 1, 8, 8)).shape, len(net.blocks), net.feature_dim
        (torch.Size([2, 10]), 4, 64)
    """

    @keyword_only("widths", "depth", "activation", "mean", "std")
    def __init__(self, in_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10, *,
                 widths: Sequence[int] = (16, 32, 64),
                 depth: int = 1, activation: str = "relu", mean: float | Sequence[float] | None = None,
                 std: float | Sequence[float] | None = None) -> None:
        in_shape = layers.check_in_shape(in_shape)
        num_classes = layers.check_num_classes(num_classes)
        widths = layers.check_widths(widths, "widths")
        layers.check_activation(activation)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"'depth' (basic blocks per stage) must be a positive int, got {depth!r}")
        blocks = [nn.Sequential(*layers.conv_bn_act(in_shape[0], widths[0], activation))]
        c_in = widths[0]
        for stage, c_out in enumerate(widths):
            for i in range(depth):
                blocks.append(BasicBlock(c_in, c_out, 2 if stage > 0 and i == 0 else 1, activation))
                c_in = c_out
        neck = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        super().__init__(blocks, nn.Linear(c_in, num_classes), default_normalize(in_shape, mean, std), neck,
                         in_shape=in_shape)
        record_config(self, "resnet", in_shape=in_shape, num_classes=num_classes, widths=widths, depth=depth,
                      activation=activation, mean=mean, std=std)
