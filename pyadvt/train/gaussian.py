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

from pyadvt.train.fit import FitResult, TrainData, fit
from pyadvt.utils.deprecation import keyword_only

__all__ = ["GaussianNoise", "fit_gaussian"]


class GaussianNoise:
    """``batch_transform(x, y, generator) -> (clip01(x + delta), y)`` for :func:`pyadvt.train.fit`.

    Args:
        eps: ball radius (pixel units), ``> 0``.
        std: standard deviation ``s`` of the raw noise before rescaling (default 1.0, seed 002 A.10).
        norm: ``"l2"`` (default, as the paper) or ``"linf"``.

    Called as ``(x [B, C, H, W], y, generator) -> (x' [B, C, H, W], y)``; :meth:`noise` gives the
    ``[B, C, H, W]`` perturbation alone. Source: docs/theory.md §4 (seed 002 §7 / App. A.10).

    Raises:
        ValueError: when ``eps`` or ``std`` is not a finite number ``> 0``, or ``norm`` is not
            ``"l2"``/``"linf"``.

    Example:
        >>> import torch
        >>> noise = GaussianNoise(eps=0.1, norm="linf")
        >>> d = noise.noise(torch.zeros(2, 1, 4, 4), torch.Generator().manual_seed(0))
        >>> tuple(d.shape), bool(d.abs().max() <= 0.1 + 1e-7)
        ((2, 1, 4, 4), True)
    """

    @keyword_only("std", "norm")
    def __init__(self, eps: float, *, std: float = 1.0, norm: str = "l2"):
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


def fit_gaussian(model: nn.Module, train: TrainData, *, eps: float, std: float = 1.0, norm: str = "l2",
                 **fit_kwargs) -> FitResult:
    """:func:`pyadvt.train.fit` with :class:`GaussianNoise` as the batch transform (``fit_kwargs`` pass through).

    The Gaussian recipe of docs/theory.md §4 (seed 002 §7 / App. A.10).

    Raises:
        ValueError: when ``fit_kwargs`` holds ``batch_transform``, for the checks of
            :class:`GaussianNoise` (``eps``, ``std``, ``norm``) and for those of :func:`pyadvt.train.fit`.
        TypeError: for the checks of :func:`pyadvt.train.fit` (``model`` not a module, ``train`` not
            a labelled data kind).
        FloatingPointError: when an epoch's mean training loss is not finite (as :func:`pyadvt.train.fit`).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from pyadvt.data import TensorData
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> train = TensorData(torch.rand(8, 1, 4, 4), torch.arange(8) % 2)
        >>> res = fit_gaussian(net, train, eps=0.5, epochs=1, batch_size=4, progress=False)
        >>> res.steps, len(res.history)
        (2, 1)
    """
    if "batch_transform" in fit_kwargs:
        raise ValueError("fit_gaussian sets 'batch_transform' itself; compose transforms before calling fit")
    return fit(model, train, batch_transform=GaussianNoise(eps, std=std, norm=norm), **fit_kwargs)
