"""Texture-destroying target transforms of seed 002 sec. 5 (Table 2): low resolution and low pass.

* :func:`low_resolution`: down-sample to ``size`` (area averaging) and up-sample back (bilinear), so the
  image keeps its shape but loses detail — the paper lowered Caltech101 to 32x32.
* :func:`low_pass`: zero the highest spatial frequencies of each channel's 2-D FFT (the paper zeroed
  "the top 1,024 (~14 %) frequencies"; pyadvt takes the fraction, default 0.14) and transform back;
  frequencies are ranked by their radius ``sqrt(fy^2 + fx^2)`` in cycles/pixel, and whole rings of equal radius are zeroed together, which
  keeps the spectrum Hermitian so the result is real.

Both work on ``[N, C, H, W]`` images in ``[0, 1]``, return new tensors clipped to ``[0, 1]`` and never
modify their input.

Example:
    >>> import torch
    >>> x = torch.rand(2, 1, 8, 8)
    >>> low_resolution(x, 4).shape, low_pass(x, 0.25).shape
    (torch.Size([2, 1, 8, 8]), torch.Size([2, 1, 8, 8]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pyadvt.utils.errors import InvalidTypeError, InvalidValueError

__all__ = ["low_resolution", "low_pass", "low_pass_mask"]


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise InvalidTypeError("'x' must be a floating-point tensor [N, C, H, W] in [0, 1]")
    if x.dim() != 4:
        raise InvalidValueError(f"'x' must be [N, C, H, W], got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise InvalidValueError(f"'x' is empty (shape {tuple(x.shape)}); pass at least one image")
    if not bool(torch.isfinite(x).all()):  # an FFT or a resampling smears one NaN over the whole image
        raise InvalidValueError("'x' contains NaN or infinite values; pass finite images")


def low_resolution(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Down-sample ``x [N, C, H, W]`` to ``size`` (area) and up-sample back to ``H x W`` (bilinear).

    ``size >= H`` (and ``>= W``) returns a copy of ``x``.

    Source: seed 002 (Utrera et al., ICLR 2021) Section 5, Table 2; docs/theory.md §7.

    Raises:
        InvalidTypeError: ``x`` is not a floating-point tensor.
        InvalidValueError: ``x`` is not a non-empty, finite ``[N, C, H, W]`` batch.
        ValueError: ``size`` is below 1.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 8, 8)
        >>> y = low_resolution(x, 4)
        >>> y.shape, bool(torch.allclose(y.mean(), x.mean(), atol=0.05)), torch.equal(low_resolution(x, 8), x)
        (torch.Size([2, 3, 8, 8]), True, True)
    """
    _check_images(x)
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h < 1 or w < 1:
        raise ValueError(f"'size' must be >= 1, got {size!r}")
    H, W = x.shape[-2:]
    if h >= H and w >= W:
        return x.clone()
    small = F.interpolate(x, size=(min(h, H), min(w, W)), mode="area")
    return F.interpolate(small, size=(H, W), mode="bilinear", align_corners=False).clamp(0.0, 1.0)


def low_pass_mask(H: int, W: int, fraction: float, device=None) -> torch.Tensor:
    """``[H, W]`` bool mask of the kept FFT frequencies (``torch.fft.fft2`` layout).

    At least ``round(fraction * H * W)`` of the highest-radius frequencies are removed (whole rings).

    Example:
        >>> int((~low_pass_mask(8, 8, 0.0)).sum()), bool(low_pass_mask(8, 8, 0.5)[0, 0])
        (0, True)
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"'fraction' must be in [0, 1), got {fraction!r}")
    k = int(round(fraction * H * W))
    fy = torch.fft.fftfreq(H, device=device).abs()
    fx = torch.fft.fftfreq(W, device=device).abs()
    radius = (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt()
    if k == 0:
        return torch.ones(H, W, dtype=torch.bool, device=device)
    cut = radius.flatten().sort(descending=True).values[k - 1]
    keep = radius < cut - 1e-12
    keep[0, 0] = True  # the mean (DC) is never removed
    return keep


def low_pass(x: torch.Tensor, fraction: float = 0.14) -> torch.Tensor:
    """Zero the highest ``fraction`` of 2-D FFT frequencies of each channel of ``x [N, C, H, W]``.

    Default 0.14, the paper's "~14 %" (seed 002 Table 2).

    Source: docs/theory.md §7.

    Raises:
        InvalidTypeError: ``x`` is not a floating-point tensor.
        InvalidValueError: ``x`` is not a non-empty, finite ``[N, C, H, W]`` batch.
        ValueError: ``fraction`` is outside [0, 1).

    Example:
        >>> import torch
        >>> x = torch.full((1, 1, 8, 8), 0.5)
        >>> torch.allclose(low_pass(x, 0.5), x)      # a constant image has no high frequencies
        True
    """
    _check_images(x)
    mask = low_pass_mask(x.shape[-2], x.shape[-1], fraction, device=x.device)
    spec = torch.fft.fft2(x.double()) * mask
    return torch.fft.ifft2(spec).real.to(x.dtype).clamp(0.0, 1.0)
