"""Model-related transfer attacks: SGM and LinBP (docs/theory.md §10.9, §10.10).

Both change only the backward pass of a ResNet's residual blocks, through modifiers
(:mod:`pyadvt.attacks.modifiers`) installed for the duration of the call and always removed.
"""

from __future__ import annotations

from torch import nn

from pyadvt.attacks.composed import TransferAttack
from pyadvt.attacks.modifiers import LinearBackprop, SkipGradient, residual_blocks
from pyadvt.utils.deprecation import keyword_only


class SGM(TransferAttack):
    """SGM (Wu et al., ICLR 2020, "Skip Connections Matter: On the Transferability of Adversarial
    Examples Generated with ResNets"); category: model-related (docs/theory.md §10.9).

    Each residual block (but the first) backpropagates ``I + gamma df/dz``
    (:class:`~pyadvt.attacks.modifiers.SkipGradient`); the update is MI-FGSM. Cost: 1 gradient per step.

    Defaults: gamma 0.2 (ResNet), mu 1.0, eps 16/255, steps 10, alpha eps/steps (TransferAttack's).
    Needs a ResNet (torchvision, timm or pyadvt's ``resnet``); other models raise ``ValueError``.

    Example:
        >>> import torchvision
        >>> SGM(torchvision.models.resnet18(num_classes=10), gamma=0.5).modifiers
        [SkipGradient(gamma=0.5)]
    """

    @keyword_only("mu", "gamma")
    def __init__(self, model: nn.Module, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, mu: float = 1.0, gamma: float = 0.2, **kwargs) -> None:
        residual_blocks(model, "SGM")
        super().__init__(model, eps, alpha, steps, mu=mu, modifiers=[SkipGradient(gamma)], **kwargs)


class LinBP(TransferAttack):
    """LinBP (Guo et al., NeurIPS 2020, "Backpropagating Linearly Improves Transferability of
    Adversarial Examples"); category: model-related (docs/theory.md §10.10).

    From block ``layer`` on, the residual branches' activations backpropagate linearly with the
    per-sample residual normalisation (:class:`~pyadvt.attacks.modifiers.LinearBackprop`).

    Defaults: layer ``"layer3.1"`` (the authors' ``3_1``; the middle block elsewhere), lam 1.0, and the
    authors' optimiser: gradient at ``x_t + U(-eps, eps)`` drawn per step, plain sign steps
    (``mu=None``), eps 16/255, steps 10, alpha eps/steps. ``ta_mi=True``: TransferAttack's MI (mu 1,
    no noise). Cost: 1 forward + a custom backward (two branch backwards) per step.

    Call: ``atk(x [B, C, H, W] in [0, 1], y [B])`` -> ``[B, C, H, W]`` (``[K, B, C, H, W]`` for ``K``
    budgets).

    Raises:
        ValueError: when ``model`` is not a ResNet (torchvision, timm or pyadvt's), ``layer`` is not
            one of its residual blocks, or ``lam`` is not finite ``>= 0``.
        TypeError: when ``lam`` is not a number.
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torchvision
        >>> LinBP(torchvision.models.resnet18(num_classes=10)).modifiers
        [LinearBackprop(start='layer3.1', lam=1)]
    """

    @keyword_only("layer", "lam")
    def __init__(self, model: nn.Module, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, layer: str | None = None, lam: float = 1.0, ta_mi: bool = False, **kwargs) -> None:
        modifier = LinearBackprop(layer, lam)
        modifier.start = modifier.first_block(model)
        kwargs.setdefault("mu", 1.0 if ta_mi else None)
        kwargs.setdefault("grad_noise", not ta_mi)
        super().__init__(model, eps, alpha, steps, modifiers=[modifier], **kwargs)
