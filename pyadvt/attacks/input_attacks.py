"""Input-transformation transfer attacks: Admix, SSA and BSR (docs/theory.md §10.6-§10.8).

Each is MI-FGSM (or I-FGSM for SSA) whose gradient is the mean over random transformed copies
(:mod:`pyadvt.attacks.transforms`), drawn per sample. None is in torchattacks; the positional
arguments are still ``(model, eps, alpha, steps)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.attacks.composed import TransferAttack
from pyadvt.attacks.transforms import AdmixMix, BlockShuffleRotate, ScaleCopies, SpectrumTransform
from pyadvt.utils.deprecation import keyword_only

Model = nn.Module | Sequence[nn.Module]


class Admix(TransferAttack):
    """Admix (Wang et al., ICCV 2021, "Admix: Enhancing the Transferability of Adversarial Attacks");
    category: input transformation (docs/theory.md §10.6).

    For ``j < m2``: ``x^(j) = x_t + eta sg(x'_j)`` with a random partner ``x'_j``, then the scale copies
    ``x^(j) / 2^i``, ``i < m1``; the gradient is the mean over the ``m1 m2`` copies (one batched forward of
    ``m1 m2 B`` images), followed by MI. Cost: ``m1 m2`` gradients per step.

    Defaults: eta 0.2, m2 3, m1 5, mu 1.0, eps 16/255, steps 10. ``pool``: partner images (default the
    call's clean batch - see :class:`~pyadvt.attacks.transforms.AdmixMix` for how that relates to
    batch independence and to the authors' current-iterate partners).

    Call: ``atk(x [B, C, H, W] in [0, 1], y [B])`` -> ``[B, C, H, W]`` (``[K, B, C, H, W]`` for ``K``
    budgets); ``pool`` is ``[P, C, H, W]``.

    Raises:
        TypeError: when ``eta``/``scale_center`` is not a number or ``m1``/``m2`` not an int.
        ValueError: on construction, when ``eta`` is not finite ``>= 0``, ``m1``/``m2`` ``< 1``,
            ``scale_center`` outside [0, 1] or ``pool`` not a non-empty ``[P, C, H, W]`` tensor; on a
            call, when ``pool``'s image shape differs from the inputs'.
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> [t.copies for t in Admix(net, 0.1, None, 2).transforms]
        [3, 5]
    """

    @keyword_only("mu", "eta", "m1", "m2")
    def __init__(self, model: Model, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, mu: float = 1.0, eta: float = 0.2, m1: int = 5, m2: int = 3, pool: torch.Tensor | None = None,
                 scale_center: float = 0.0, **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, mu=mu,
                         transforms=[AdmixMix(eta, m2, pool), ScaleCopies(m1, scale_center)], **kwargs)


class SSA(TransferAttack):
    """SSA (Long et al., ECCV 2022, "Frequency Domain Model Augmentation for Adversarial Attack");
    category: input transformation (docs/theory.md §10.7).

    The gradient is the mean over ``N`` spectrum-simulated copies ``IDCT(DCT(x_t + xi) * M)``,
    ``xi ~ N(0, sigma^2)``, ``M ~ U(1 - rho, 1 + rho)`` per element, taken w.r.t. each copy itself.
    Cost: ``N`` gradients per step.

    Defaults: N 20, rho 0.5, sigma = eps, I-FGSM (``mu=None``, the authors' code; ``mu=1.0`` is
    TransferAttack's legacy momentum), eps 16/255, steps 10.

    Raises:
        TypeError: when ``N`` is not an int or ``rho``/``sigma`` not a number.
        ValueError: when ``N`` is ``< 1``, ``rho`` outside [0, 1] or ``sigma`` not finite ``>= 0``
            (the messages name them ``'n'``, ``'rho'``, ``'sigma'`` after
            :class:`~pyadvt.attacks.transforms.SpectrumTransform`).
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> SSA(net, 0.1, None, 2, N=4).mu is None
        True
    """

    @keyword_only("N", "rho", "sigma")
    def __init__(self, model: Model, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, N: int = 20, rho: float = 0.5, sigma: float | None = None, mu: float | None = None,
                 **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, mu=mu, transforms=[SpectrumTransform(N, rho, sigma)], **kwargs)


class BSR(TransferAttack):
    """BSR (Wang et al., CVPR 2024, "Boosting Adversarial Transferability by Block Shuffle and
    Rotation"); category: input transformation (docs/theory.md §10.8).

    The gradient is the mean over ``N`` block-shuffled-and-rotated copies (chained through the
    shuffle and the bilinear rotation, :class:`~pyadvt.attacks.transforms.BlockShuffleRotate`), then MI.
    Cost: ``N`` gradients per step (one batched forward of ``N B`` images).

    Defaults (TransferAttack's, which calls itself official): n_block 3, N 20, max_angle 24 degrees,
    mu 1.0, eps 16/255, steps 10.

    Raises:
        TypeError: when ``n_block``/``N`` is not an int or ``max_angle`` not a number.
        ValueError: on construction, when ``n_block``/``N`` is ``< 1`` or ``max_angle`` outside
            [0, 180] (the messages name them ``'n'``, ``'copies'``, ``'max_angle'`` after
            :class:`~pyadvt.attacks.transforms.BlockShuffleRotate`); on a call, when ``x`` is not
            ``[B, C, H, W]`` images.
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> BSR(net, 0.1, None, 2, N=2).transforms
        [BlockShuffleRotate(n=3, copies=2, max_angle=24)]
    """

    @keyword_only("mu", "n_block", "N", "max_angle")
    def __init__(self, model: Model, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, mu: float = 1.0, n_block: int = 3, N: int = 20, max_angle: float = 24.0, **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, mu=mu, transforms=[BlockShuffleRotate(n_block, N, max_angle)],
                         **kwargs)
