"""Adversarial training loss (AT, Madry et al. 2018; seeds 001/002, docs/theory.md §4) for ``fit(loss_fn=...)``.

``min_theta E max_{||delta|| <= eps} l(f(x + delta), y)``, the inner max by PGD(k) with the fused
``pyadvt.ops.pgd_step_`` update (L2: normalised step, projection on the L2 ball; L-inf: signed
step), inputs kept in [0, 1]. Defaults follow seed 001 (L2, 10 steps, step ``eps / 4``); seed 002
uses L-inf/L2 PGD(20) with step ``2.5 eps / k``. The inner attack runs the model in eval mode
(BatchNorm statistics untouched, no parameter gradients); the outer loss in the caller's mode.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> at = AdversarialLoss(eps=0.5, steps=3)
    >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    >>> bool((at.perturb(net, x, y) - x).flatten(1).norm(dim=1).max() <= 0.5 + 1e-6)
    True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pyadvt.ops import pgd_step_
from pyadvt.train.losses import soft_cross_entropy
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.modes import evaluating
from pyadvt.utils.rng import per_sample_rand
from pyadvt.utils.validation import check_images

__all__ = ["AdversarialLoss"]


class AdversarialLoss:
    """``loss_fn(model, x, y)``: mean (soft) cross-entropy at PGD adversarial examples.

    Args:
        eps: budget (pixel units); ``0`` gives plain training.
        steps: PGD iterations ``k``.
        alpha: step size; default ``eps / 4`` (seed 001).
        norm: ``"l2"`` (default, seed 001) or ``"linf"``.
        random_start: start uniformly in the eps-ball (L2: uniform in the ball).
        seed: seed of the per-sample random starts; each call uses a new stream.

    Called as ``loss_fn(model, x [B, C, H, W], y [B] or [B, K]) -> []`` (a scalar tensor);
    :meth:`perturb` returns the adversarial ``x_adv [B, C, H, W]``. Source: docs/theory.md §4 (AT;
    seed 001 eq. 1, seed 002 App. A.2).

    Raises:
        ValueError: when ``norm`` is not ``"l2"``/``"linf"``, ``eps`` is negative or not finite,
            ``steps`` is not an int ``>= 1`` or ``alpha <= 0`` (with ``eps > 0``); at call time
            (``InvalidValueError``) when ``x`` is not a non-empty batch in ``[0, 1]``, or for the
            label checks of :func:`soft_cross_entropy`.
        TypeError: at call time (``InvalidTypeError``) when ``x`` is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
        >>> loss = AdversarialLoss(eps=0.5, steps=2)(net, x, y)
        >>> loss.shape, bool(loss >= nn.functional.cross_entropy(net(x), y))
        (torch.Size([]), True)
    """

    @keyword_only("steps", "alpha", "norm", "random_start", "seed")
    def __init__(self, eps: float, *, steps: int = 10, alpha: float | None = None, norm: str = "l2",
                 random_start: bool = True, seed: int = 0):
        if norm not in ("l2", "linf"):
            raise ValueError(f"'norm' must be 'l2' or 'linf', got {norm!r}")
        if not (math.isfinite(float(eps)) and float(eps) >= 0):
            raise ValueError(f"'eps' must be finite and >= 0, got {eps}")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"'steps' must be an int >= 1, got {steps!r}")
        self.eps, self.steps, self.norm = float(eps), steps, norm
        self.alpha = self.eps / 4 if alpha is None else float(alpha)
        if self.eps > 0 and not self.alpha > 0:
            raise ValueError(f"'alpha' must be > 0, got {alpha}")
        self.random_start, self.seed, self.calls = bool(random_start), int(seed), 0

    def _start(self, x: torch.Tensor) -> torch.Tensor:
        n = x[0].numel()
        if self.norm == "linf":
            u = per_sample_rand(x, (n,), self.seed, stream=2 * self.calls, dtype=x.dtype)
            delta = (2 * u - 1) * self.eps
        else:
            d = per_sample_rand(x, (n,), self.seed, stream=2 * self.calls, distribution="normal", dtype=x.dtype)
            r = per_sample_rand(x, (1,), self.seed, stream=2 * self.calls + 1, dtype=x.dtype) ** (1.0 / n)
            delta = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12) * r * self.eps
        return (x + delta.view_as(x)).clamp(0, 1)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """PGD adversarial examples ``[B, *]`` for ``(x, y)`` (``x`` is not modified)."""
        check_images(x, "x")  # pgd_step_ does not scan for NaN: a NaN pixel would give a NaN loss
        x = x.detach()
        if self.eps == 0:
            return x.clone()
        x_adv = self._start(x) if self.random_start else x.clone()
        self.calls += 1
        with evaluating(model), torch.enable_grad():
            for _ in range(self.steps):
                xa = x_adv.clone().requires_grad_(True)
                (g,) = torch.autograd.grad(soft_cross_entropy(model(xa), y, reduction="sum"), xa)
                pgd_step_(x_adv, g.contiguous(), x.contiguous(), self.eps, self.alpha, norm=self.norm)
        return x_adv

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return soft_cross_entropy(model(self.perturb(model, x, y)), y)
