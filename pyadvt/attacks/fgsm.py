"""Fast gradient sign method (Goodfellow et al. 2015; docs/theory.md §1 FGSM)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from pyadvt.attacks.base import LossFn
from pyadvt.attacks.iterative import IterativeAttack


class FGSM(IterativeAttack):
    """One L-inf step of size eps from ``x`` (no random start): ``clip01(x + eps * sign(grad))``.

    Goodfellow et al., ICLR 2015 (docs/theory.md §1 FGSM). ``x [B, C, H, W]`` in [0, 1], ``y [B]`` ->
    ``[B, C, H, W]``. With ``eps`` a ``[K]`` tensor at call time every budget uses step ``eps_k`` and
    the result is ``[K, B, C, H, W]``.

    Raises:
        TypeError, ValueError: as :class:`pyadvt.attacks.Attack` (``model``, ``eps``, ``loss`` on
            construction; inputs, labels and budgets on a call, before any gradient).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> x, y = torch.full((2, 1, 2, 2), 0.5), torch.tensor([0, 1])
        >>> sorted({round(v, 4) for v in (FGSM(net, eps=0.1)(x, y) - x).abs().flatten().tolist()})
        [0.1]
    """

    def __init__(self, model: nn.Module | Sequence[nn.Module], eps: float = 8 / 255, *, targeted: bool = False,
                 seed: int = 0, loss: LossFn | None = None) -> None:
        super().__init__(model, eps, eps, 1, norm="linf", random_start=False, targeted=targeted, seed=seed,
                         loss=loss)
