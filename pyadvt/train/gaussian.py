"""Gaussian-noise training rescaled into the eps-ball (seed 002 sec. 7 / app. A.10, docs/theory.md §4).

Each training input becomes ``clip01(x + delta)`` with ``delta ~ N(0, s^2 I)`` rescaled into the
eps-ball: ``delta <- delta * min(1, eps / ||delta||)`` (``||.||`` the ball's norm, L2 or L-inf), so the
noisy model sees perturbations of the same budget as the adversarially-trained ones (the paper
constrains "all models, including the Gaussian one" to ``||delta||_2 <= 3``, with ``s = 1``). It is the
"random adversary" baseline of seed 002 Fig. 8c.

Example:
    >>> import torch
    >>> noise = GaussianNoise(eps=0.5, std=1.0)
    >>> x = torch.full((4, 1, 8, 8), 0.5)
    >>> xn, y = noise(x, torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(0))
    >>> bool(((xn - x).flatten(1).norm(dim=1) <= 0.5 + 1e-6).all())
    True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pyadvt.train.fit import FitResult, fit

__all__ = ["GaussianNoise", "fit_gaussian"]


class GaussianNoise:
    """``batch_transform(x, y, generator) -> (clip01(x + delta), y)`` for :func:`pyadvt.train.fit`.

    Args:
        eps: ball radius (pixel units), ``> 0``.
        std: standard deviation ``s`` of the raw noise before rescaling (default 1.0, seed 002 A.10).
        norm: ``"l2"`` (default, as the paper) or ``"linf"``.
    """

    def __init__(self, eps: float, std: float = 1.0, norm: str = "l2"):
        if not (math.isfinite(float(eps)) and float(eps) > 0):
            raise ValueError(f"'eps' must be a finite number > 0, got {eps!r}")
        if not (math.isfinite(float(std)) and float(std) > 0):
            raise ValueError(f"'std' must be a finite number > 0, got {std!r}")
        if norm not in ("l2", "linf"):
            raise ValueError(f"'norm' must be 'l2' or 'linf', got {norm!r}")
        self.eps, self.std, self.norm = float(eps), float(std), norm

    def noise(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``[B, *]`` noise ``N(0, std^2)`` rescaled into the eps-ball (drawn on the CPU generator)."""
        delta = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype) * self.std
        flat = delta.flatten(1)
        size = flat.norm(dim=1) if self.norm == "l2" else flat.abs().max(dim=1).values
        scale = (self.eps / size.clamp_min(1e-12)).clamp(max=1.0)
        return delta * scale.view(-1, *([1] * (x.dim() - 1)))

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        return (x + self.noise(x, generator)).clamp(0.0, 1.0), y


def fit_gaussian(model: nn.Module, train, *, eps: float, std: float = 1.0, norm: str = "l2", **fit_kwargs) -> FitResult:
    """:func:`pyadvt.train.fit` with :class:`GaussianNoise` as the batch transform (``fit_kwargs`` pass through)."""
    if "batch_transform" in fit_kwargs:
        raise ValueError("fit_gaussian sets 'batch_transform' itself; compose transforms before calling fit")
    return fit(model, train, batch_transform=GaussianNoise(eps, std, norm), **fit_kwargs)
