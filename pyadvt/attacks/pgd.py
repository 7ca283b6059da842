"""Projected gradient descent, L-inf and L2 (Madry et al. 2018; docs/theory.md §1 PGD-Linf / PGD-L2)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from pyadvt.attacks.base import LossFn
from pyadvt.attacks.iterative import IterativeAttack
from pyadvt.utils.deprecation import keyword_only


class PGD(IterativeAttack):
    """PGD with random start and restarts.

    L-inf (docs/theory.md §1): ``x_0 = clip01(x + U(-eps, eps))``,
    ``x_{t+1} = clip01(clip_[x-eps, x+eps](x_t + alpha * sign(grad)))``.
    L2: step ``alpha * g / ||g||`` (per-sample norm), projection of ``delta`` onto the L2 ball of
    radius eps, clip to [0, 1]; the random start is uniform in the L2 ball (torchattacks' ``PGDL2``
    draws the radius as ``eps * U`` instead, which is not uniform in the ball).
    Restarts keep per sample the first successful restart, else the one with the highest final loss.

    Args:
        model: logits model (or a list of models, attacked as their :class:`Ensemble`).
        eps: budget in pixel units (default 8/255).
        alpha: step size (default ``2.5 * eps / steps``).
        steps: iterations (default 10).
        norm: ``"linf"`` or ``"l2"``.
        random_start: start uniformly in the ball (default True).
        restarts: number of random restarts (default 1).
        targeted, seed, loss, progress: see :class:`pyadvt.attacks.Attack`.

    Call: ``atk(x [B, C, H, W] in [0, 1], y [B], target_labels=None, eps=None)`` -> ``[B, C, H, W]``, or
    ``[K, B, C, H, W]`` for ``eps`` a ``[K]`` tensor of budgets.

    Raises:
        TypeError, ValueError: as :class:`pyadvt.attacks.IterativeAttack` (``steps``, ``restarts``,
            ``mu``) and :class:`pyadvt.attacks.Attack` (``model``, ``eps``, ``alpha``, ``norm``,
            ``loss`` on construction; inputs, labels and budgets on a call, before any gradient).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
        >>> x_adv = PGD(net, eps=0.1, steps=5)(x, y)
        >>> bool((x_adv - x).abs().max() <= 0.1 + 1e-6)
        True
        >>> PGD(net, eps=0.1, steps=5)(x, y, eps=torch.tensor([0.05, 0.1])).shape
        torch.Size([2, 5, 1, 2, 2])
    """

    @keyword_only("norm", "random_start", "restarts")
    def __init__(self, model: nn.Module | Sequence[nn.Module], eps: float = 8 / 255, alpha: float | None = None,
                 steps: int = 10, *, norm: str = "linf", random_start: bool = True, restarts: int = 1,
                 targeted: bool = False, seed: int = 0, loss: LossFn | None = None, progress: bool = False) -> None:
        super().__init__(model, eps, alpha, steps, norm=norm, random_start=random_start, restarts=restarts,
                         targeted=targeted, seed=seed, loss=loss, progress=progress, alpha_scale=2.5)
