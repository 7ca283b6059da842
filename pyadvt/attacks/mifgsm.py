"""Momentum iterative FGSM (Dong et al. 2018; docs/theory.md §1 MI-FGSM)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from pyadvt.attacks.base import LossFn
from pyadvt.attacks.iterative import IterativeAttack
from pyadvt.utils.deprecation import keyword_only


class MIFGSM(IterativeAttack):
    """MI-FGSM: ``g_{t+1} = mu * g_t + grad / mean(|grad|)`` (mean over each sample's own elements),
    ``x_{t+1} = clip01(clip_[x-eps, x+eps](x_t + alpha * sign(g_{t+1})))``, no random start.

    The momentum buffer lives in the fused :func:`pyadvt.ops.pgd_step_`. A sample whose gradient is
    exactly zero takes no step (torchattacks' ``MIFGSM`` divides by zero there and returns NaN).

    Args:
        eps: budget (default 8/255).
        alpha: step size (default ``eps / steps``, as in Dong et al.).
        steps: iterations (default 10).
        mu: momentum decay (default 1.0).
        random_start, restarts, targeted, seed, loss, progress: see :class:`pyadvt.attacks.PGD`.

    Raises:
        ValueError: when ``mu`` is not finite ``>= 0``.
        TypeError, ValueError: as :class:`pyadvt.attacks.PGD` for the arguments they share (``model``,
            budgets, ``steps``, ``restarts``, ``loss``; inputs and labels on a call, before any gradient).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> x, y = torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 2])
        >>> bool(((MIFGSM(net, eps=0.05)(x, y) - x).abs() <= 0.05 + 1e-6).all())
        True
    """

    @keyword_only("mu")
    def __init__(self, model: nn.Module | Sequence[nn.Module], eps: float = 8 / 255, alpha: float | None = None,
                 steps: int = 10, *, mu: float = 1.0, random_start: bool = False, restarts: int = 1,
                 targeted: bool = False, seed: int = 0, loss: LossFn | None = None, progress: bool = False) -> None:
        super().__init__(model, eps, alpha, steps, norm="linf", random_start=random_start, restarts=restarts,
                         mu=mu, targeted=targeted, seed=seed, loss=loss, progress=progress)
