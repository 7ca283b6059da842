"""Gradient transforms by depthwise convolution: TI's Gaussian smoothing and PI's project kernel
(docs/theory.md §10.3, §10.5)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel(size: int = 15, nsig: float = 3.0, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """TI's kernel ``W [k, k]``: ``W_ij = phi(u_i) phi(u_j) / sum``, ``u = linspace(-nsig, nsig, k)``,
    ``phi`` the N(0, 1) density (docs/theory.md §10.3; sigma = (k - 1) / (2 nsig) pixels).

    Example:
        >>> W = gaussian_kernel(5, 2.0)
        >>> W.shape, round(float(W.sum()), 6), bool(W[2, 2] == W.max())
        (torch.Size([5, 5]), 1.0, True)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"'size' (TI kernel length) must be a positive odd int, got {size!r}")
    if not float(nsig) > 0 or not math.isfinite(float(nsig)):
        raise ValueError(f"'nsig' must be a finite number > 0, got {nsig}")
    u = torch.linspace(-float(nsig), float(nsig), size, dtype=torch.float64)
    phi = torch.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
    raw = torch.outer(phi, phi)
    return (raw / raw.sum()).to(dtype=dtype, device=device)


def depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The same ``kernel [k, k]`` applied to every channel of ``x [B, C, H, W]``, stride 1, zero padding
    ``k // 2`` (so the output has x's shape)."""
    if x.dim() != 4:
        raise ValueError(f"kernel smoothing needs images [B, C, H, W], got shape {tuple(x.shape)}")
    C = x.shape[1]
    k = kernel.to(dtype=x.dtype, device=x.device).expand(C, 1, *kernel.shape)
    return F.conv2d(x, k, padding=kernel.shape[-1] // 2, groups=C)


def project_kernel(size: int = 3, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """PI's project kernel ``W_p [k, k]``: ``1 / (k^2 - 1)`` everywhere, 0 at the centre (docs/theory.md §10.5).

    Example:
        >>> project_kernel(3)[1].tolist()
        [0.125, 0.0, 0.125]
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 3 or size % 2 == 0:
        raise ValueError(f"'kernel_size' (PI project kernel) must be an odd int >= 3, got {size!r}")
    W = torch.full((size, size), 1.0 / (size * size - 1), dtype=torch.float64)
    W[size // 2, size // 2] = 0.0
    return W.to(dtype=dtype, device=device)
