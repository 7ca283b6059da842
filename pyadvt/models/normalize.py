"""``Normalize``: the per-channel standardisation layer every pyadvt model starts with.

Data stay in pixel space [0, 1] (docs/theory.md §0); the model owns its normalisation, so attacks and
epsilons are always in pixel units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.utils.errors import InvalidValueError


def _channel_values(value: float | Sequence[float], name: str) -> list[float]:
    values = [value] if isinstance(value, (int, float)) else list(value)
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"'{name}' must be a number or a sequence of numbers, got {value!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"'{name}' must be a non-empty list of finite numbers, got {value!r}")
    return values


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; ``mean``/``std`` are buffers of shape ``[1, C, 1, 1]`` (C = 1
    broadcasts over every channel) so they move with ``.to()`` and live in the ``state_dict``.

    Input ``x: [B, C, H, W]`` (or ``[B, C]``), output the same shape.

    Raises:
        ValueError: ``mean``/``std`` are empty or non-finite, or ``std`` is not positive.
        TypeError: ``mean``/``std`` are not numbers.
        InvalidValueError: (on a call) the input's channels match neither 1 nor C.

    Example:
        >>> norm = Normalize(mean=(0.5, 0.4, 0.3), std=0.25)
        >>> norm(torch.full((1, 3, 2, 2), 0.5))[0, :, 0, 0]
        tensor([0.0000, 0.4000, 0.8000])
    """

    def __init__(self, mean: float | Sequence[float] = 0.0, std: float | Sequence[float] = 1.0) -> None:
        super().__init__()
        mean_v, std_v = _channel_values(mean, "mean"), _channel_values(std, "std")
        if any(s <= 0 for s in std_v):
            raise ValueError(f"'std' must be > 0, got {std!r}")
        if len(mean_v) != len(std_v) and 1 not in (len(mean_v), len(std_v)):
            raise ValueError(f"'mean' has {len(mean_v)} channels but 'std' has {len(std_v)}")
        self.register_buffer("mean", torch.tensor(mean_v, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std_v, dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean, self.std
        c = mean.numel()
        if c > 1 and (x.dim() < 2 or x.shape[1] != c):
            raise InvalidValueError(f"'x' must have {c} channels (dimension 1) for this Normalize "
                                    f"(mean/std per channel), got shape {tuple(x.shape)}")
        if x.dim() == 2:
            mean, std = mean.reshape(1, -1), std.reshape(1, -1)
        return (x - mean.to(x.dtype)) / std.to(x.dtype)

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"
