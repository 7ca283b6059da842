"""Fit images to a model: channel count and size, applied per item so the data still streams.

``adapt_images(x, size=..., channels=...)`` converts a batch ``[B, C, H, W]`` in [0, 1]:

* ``channels``: 1 -> 3 repeats the gray channel; 3 -> 1 takes the ITU-R 601 luma
  ``0.299 R + 0.587 G + 0.114 B`` (PIL's ``"L"`` conversion);
* ``size`` (int or ``(height, width)``): bilinear (antialiased when shrinking) resize so the image
  covers ``size``, then a center crop to it -- the geometry of
  :class:`~pyadvt.data.imagefolder.ImageFolder`, on tensors.

:class:`AdaptedImages` wraps a ``Dataset`` (a ``TensorData`` too) and adapts each item when it is
read, e.g. to run an RGB ImageNet model on Fashion-MNIST: ``AdaptedImages(data, size=32, channels=3)``.
Values stay in [0, 1] (bilinear interpolation is a convex combination; clamped against rounding).

Example:
    >>> import torch
    >>> adapt_images(torch.rand(2, 1, 28, 28), size=32, channels=3).shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from pyadvt.data.imagefolder import _check_size
from pyadvt.utils.validation import InvalidValueError

_LUMA = (0.299, 0.587, 0.114)


def _cover(h: int, w: int, th: int, tw: int) -> tuple[int, int]:
    if th == tw:  # the shorter side becomes the target, the longer keeps the aspect (truncated)
        return (th, int(th * w / h)) if h <= w else (int(th * h / w), th)
    scale = max(th / h, tw / w)
    return max(th, int(h * scale)), max(tw, int(w * scale))


def adapt_images(x: torch.Tensor, size: int | tuple[int, int] | None = None, channels: int | None = None
                 ) -> torch.Tensor:
    """``x [B, C, H, W]`` with ``channels`` channels (1 or 3) and spatial ``size`` (see module docstring)."""
    size = _check_size(size)
    if channels not in (None, 1, 3):
        raise InvalidValueError(f"'channels' must be 1, 3 or None, got {channels!r}")
    if x.dim() != 4:
        raise InvalidValueError(f"'x' must be images [B, C, H, W], got shape {tuple(x.shape)}")
    c = x.shape[1]
    if channels is not None and channels != c:
        if c == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        elif c == 3 and channels == 1:
            x = (x * torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            raise InvalidValueError(f"cannot convert {c}-channel images to {channels} channels (only 1 <-> 3)")
    if size is not None and tuple(x.shape[2:]) != size:
        h, w = x.shape[2:]
        nh, nw = _cover(h, w, *size)
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False,
                              antialias=nh < h or nw < w).clamp_(0.0, 1.0)
        top, left = int(round((nh - size[0]) / 2.0)), int(round((nw - size[1]) / 2.0))
        x = x[:, :, top:top + size[0], left:left + size[1]]
    return x.contiguous()


class AdaptedImages(Dataset):
    """The items ``(x, y)`` of ``data`` with ``x`` passed through :func:`adapt_images` when read."""

    def __init__(self, data: Dataset, size: int | tuple[int, int] | None = None, channels: int | None = None) -> None:
        self.data, self.size, self.channels = data, _check_size(size), channels
        if channels not in (None, 1, 3):
            raise InvalidValueError(f"'channels' must be 1, 3 or None, got {channels!r}")
        self.num_classes = getattr(data, "num_classes", None)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        x, y = self.data[i]
        return adapt_images(x.unsqueeze(0), self.size, self.channels)[0], y
