"""``MLP``: fully connected reference network."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from pyadvt.models import layers
from pyadvt.models.base import SplitModel, default_normalize, record_config
from pyadvt.utils.deprecation import keyword_only


class MLP(SplitModel):
    """Normalize -> [Linear -> activation] per hidden width -> Linear head.

    ``blocks[i]`` is the i-th hidden layer (the first also flattens the image); ``hidden=()`` gives a
    linear model (``features`` = the flattened normalised input, ``feature_dim = C*H*W``).

    Raises:
        ValueError: an unknown ``activation``, ``num_classes < 2``, ``mean``/``std`` with neither 1 nor C
            entries, or (on a call) an input that is not ``[B, *in_shape]``.
        TypeError: ``in_shape`` is not a ``(C, H, W)`` tuple of ints.
        TypeError: ``hidden`` are not positive ints.

    Example:
        >>> import torch
        >>> net = MLP((1, 8, 8), 10, hidden=(32,))
        >>> net(torch.rand(2, 1, 8, 8)).shape, len(net.blocks), net.feature_dim
        (torch.Size([2, 10]), 1, 32)
    """

    @keyword_only("hidden", "activation", "mean", "std")
    def __init__(self, in_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10, *,
                 hidden: Sequence[int] = (256, 128),
                 activation: str = "relu", mean: float | Sequence[float] | None = None,
                 std: float | Sequence[float] | None = None) -> None:
        in_shape = layers.check_in_shape(in_shape)
        num_classes = layers.check_num_classes(num_classes)
        widths = layers.check_widths(hidden, "hidden", allow_empty=True)
        layers.check_activation(activation)
        blocks, width = [], in_shape[0] * in_shape[1] * in_shape[2]
        for i, w in enumerate(widths):
            mods = ([nn.Flatten(1)] if i == 0 else []) + [nn.Linear(width, w), layers.activation(activation)]
            blocks.append(nn.Sequential(*mods))
            width = w
        super().__init__(blocks, nn.Linear(width, num_classes), default_normalize(in_shape, mean, std),
                         nn.Flatten(1), in_shape=in_shape)
        record_config(self, "mlp", in_shape=in_shape, num_classes=num_classes, hidden=widths,
                      activation=activation, mean=mean, std=std)
