"""Common corruptions used as distribution shift in seed 004 app. B.5 (Tables 11-13).

Severities follow Hendrycks & Dietterich (2019) for 32x32 images, as the paper does:

=========  ======================  =========================
severity   Gaussian noise std      zoom-blur zoom factors
=========  ======================  =========================
1 (C1)     0.04                    1.00, 1.01, ..., 1.05
2 (C2)     0.06                    1.00, 1.01, ..., 1.10
3          0.08                    1.00, ..., 1.15
4          0.09                    1.00, ..., 1.20
5 (C5)     0.10                    1.00, 1.01, ..., 1.25
=========  ======================  =========================

:func:`gaussian_noise` adds ``N(0, std^2)`` per pixel and clips to ``[0, 1]``; the noise of a sample depends
only on ``(seed, sample)`` (docs/theory.md §0). :func:`zoom_blur` averages the image with centre zooms of itself
(the central ``1/factor`` region resampled bilinearly to the full size: a continuous zoom, so
sub-pixel factors such as 1.01 act on 8x8 images too). Inputs ``[N, C, H, W]`` in ``[0, 1]``
are never modified.

Example:
    >>> import torch
    >>> x = torch.rand(3, 1, 8, 8)
    >>> corrupt(x, "gaussian_noise", 5).shape == x.shape, torch.equal(zoom_blur(x, [1.0]), x)
    (True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pyadvt.utils.rng import per_sample_rand

__all__ = ["GAUSSIAN_NOISE_STD", "ZOOM_FACTORS", "CORRUPTIONS", "gaussian_noise", "zoom_blur", "corrupt"]

GAUSSIAN_NOISE_STD = {1: 0.04, 2: 0.06, 3: 0.08, 4: 0.09, 5: 0.10}
ZOOM_FACTORS = {s: tuple(round(1.0 + 0.01 * i, 2) for i in range(n)) for s, n in zip(range(1, 6), (6, 11, 16, 21, 26))}
CORRUPTIONS = ("gaussian_noise", "zoom_blur")


def _check(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("'x' must be a floating-point tensor [N, C, H, W] in [0, 1]")
    if x.dim() != 4:
        raise ValueError(f"'x' must be [N, C, H, W], got shape {tuple(x.shape)}")


def gaussian_noise(x: torch.Tensor, std: float, seed: int = 0, sample_ids=None) -> torch.Tensor:
    """``clip01(x + N(0, std^2))`` with per-sample noise (independent of batch composition)."""
    _check(x)
    if not std >= 0:
        raise ValueError(f"'std' must be >= 0, got {std!r}")
    noise = per_sample_rand(x, tuple(x.shape[1:]), seed, sample_ids, stream=0, distribution="normal")
    return (x + std * noise).clamp(0.0, 1.0)


def _zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Continuous centre zoom by ``factor`` (bilinear resampling of the central ``1/factor`` region)."""
    theta = torch.tensor([[1.0 / factor, 0.0, 0.0], [0.0, 1.0 / factor, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def zoom_blur(x: torch.Tensor, factors: Sequence[float]) -> torch.Tensor:
    """Mean of ``x`` and its centre zooms by ``factors`` (a factor 1.0 is the image itself, counted once)."""
    _check(x)
    factors = [float(f) for f in factors]
    if not factors or any(f < 1.0 for f in factors):
        raise ValueError(f"'factors' must be a non-empty list of zooms >= 1, got {factors!r}")
    zooms = [x] + [_zoom(x, f) for f in factors if f != 1.0]
    return torch.stack(zooms).mean(0).clamp(0.0, 1.0)


def corrupt(x: torch.Tensor, kind: str, severity: int, seed: int = 0) -> torch.Tensor:
    """Apply corruption ``kind`` (``"gaussian_noise"`` or ``"zoom_blur"``) at ``severity`` 1..5; 0 = clean copy."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"'kind' must be one of {CORRUPTIONS}, got {kind!r}")
    if severity not in range(0, 6):
        raise ValueError(f"'severity' must be an int in 0..5, got {severity!r}")
    if severity == 0:
        _check(x)
        return x.clone()
    if kind == "gaussian_noise":
        return gaussian_noise(x, GAUSSIAN_NOISE_STD[severity], seed)
    return zoom_blur(x, ZOOM_FACTORS[severity])
