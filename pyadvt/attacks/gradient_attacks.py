"""Gradient-category transfer attacks: NI, SI-NI, TI, VMI, VNI and PI-FGSM (docs/theory.md §10.1-§10.5).

Each is a :class:`pyadvt.attacks.TransferAttack` with its paper's defaults, and takes torchattacks'
leading positional arguments ``(model, eps, alpha, steps)`` so that switching library means changing
the import. pyadvt's defaults are the field's protocol (``eps = 16/255``, ``alpha = eps / steps``,
10 steps, ``mu = 1``), not torchattacks' (``eps = 8/255``, ``alpha = 2/255``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.attacks.composed import TransferAttack
from pyadvt.attacks.smoothing import project_kernel
from pyadvt.attacks.transforms import InputTransform, ScaleCopies, _check_float
from pyadvt.ops.attack_update import patch_step_
from pyadvt.utils.deprecation import keyword_only

Model = nn.Module | Sequence[nn.Module]


class NIFGSM(TransferAttack):
    """NI-FGSM (Lin et al., ICLR 2020, "Nesterov Accelerated Gradient and Scale Invariance for
    Adversarial Attacks"); category: gradient (docs/theory.md §10.1).

    ``x^nes = x_t + alpha mu g_t``; ``g_{t+1} = mu g_t + grad(x^nes) / mean|grad(x^nes)|``;
    ``x_{t+1} = clip_{x, eps}(x_t + alpha sign(g_{t+1}))``. Cost: 1 gradient per step.

    Defaults: eps 16/255, steps 10, alpha eps/steps, mu 1.0 (authors' flags).

    Call: ``atk(x [B, C, H, W] in [0, 1], y [B])`` -> ``[B, C, H, W]`` (``[K, B, C, H, W]`` for ``K``
    budgets).

    Raises:
        ValueError: when ``mu`` is ``None`` (the look-ahead needs momentum).
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (``steps``, budgets, inputs).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> x = torch.rand(2, 1, 4, 4)
        >>> NIFGSM(net, 0.1, 0.02, 5)(x, torch.tensor([0, 2])).shape
        torch.Size([2, 1, 4, 4])
    """

    @keyword_only("mu")
    def __init__(self, model: Model, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, mu: float = 1.0, **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, mu=mu, nesterov=True, **kwargs)


class SINIFGSM(TransferAttack):
    """SI-NI-FGSM (Lin et al., ICLR 2020); category: gradient + input transformation (docs/theory.md §10.2).

    NI's look-ahead with the gradient averaged over ``m`` scale copies ``x^nes / 2^i`` (chain rule
    factor ``2^-i`` included; torchattacks averages, the authors sum - the same after normalisation).
    Cost: ``m`` gradients per step.

    Defaults: m 5, eps 16/255, steps 10, alpha eps/steps, mu 1.0. ``scale_center=0.5`` scales about
    mid-grey (the authors' TF code in [-1, 1]).

    Raises:
        TypeError: when ``m`` is not an int or ``scale_center`` not a number.
        ValueError: when ``m`` is ``< 1`` or ``scale_center`` is outside [0, 1].
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (``transforms``, ``mu``, ``steps``, inputs).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> SINIFGSM(net, 0.1, 0.02, 2, m=3).transforms
        [ScaleCopies(m=3, center=0)]
    """

    @keyword_only("mu", "m")
    def __init__(self, model: Model, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, mu: float = 1.0, m: int = 5, scale_center: float = 0.0,
                 transforms: Sequence[InputTransform] = (), **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, mu=mu, nesterov=True,
                         transforms=[ScaleCopies(m, scale_center), *transforms], **kwargs)


class TIFGSM(TransferAttack):
    """TI-FGSM (Dong et al., CVPR 2019, "Evading Defenses to Transferable Adversarial Examples by
    Translation-Invariant Attacks"); category: gradient (docs/theory.md §10.3).

    The raw gradient is smoothed by a Gaussian kernel ``W`` (length ``len_kernel``, range ``nsig``)
    per channel before normalisation: ``g_{t+1} = mu g_t + N(W * grad)``. Cost: 1 gradient per step.

    Defaults: len_kernel 15, nsig 3, mu 1.0 (TI-MI), eps 16/255, steps 10. torchattacks' ``TIFGSM``
    uses ``decay=0`` and always adds DI with ``diversity_prob=0.5``: pass ``mu=0`` and compose a
    :class:`~pyadvt.attacks.transforms.DiverseInputs` for that.

    Raises:
        ValueError: when ``len_kernel`` is not a positive odd int or ``nsig`` not finite ``> 0``.
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))
        >>> atk = TIFGSM(net, 0.1, 0.02, 2, len_kernel=5)
        >>> tuple(atk.ti_kernel.shape), round(float(atk.ti_kernel.sum()), 6)  # a 5 x 5 averaging kernel
        ((5, 5), 1.0)
    """

    @keyword_only("mu", "len_kernel", "nsig")
    def __init__(self, model: Model, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, mu: float = 1.0, len_kernel: int = 15, nsig: float = 3.0, **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, mu=mu, ti_kernel=len_kernel, ti_nsig=nsig, **kwargs)


class VMIFGSM(TransferAttack):
    """VMI-FGSM (Wang & He, CVPR 2021, "Enhancing the Transferability of Adversarial Attacks through
    Variance Tuning"); category: gradient (docs/theory.md §10.4).

    ``g_{t+1} = mu g_t + N(grad(x_t) + v_t)``, ``v_{t+1} = mean_i grad(x_t + r_i) - grad(x_t)``,
    ``r_i ~ U[-beta eps, beta eps]^D`` drawn per sample, neighbours not clipped. Cost: ``N + 1`` gradients
    per step.

    Defaults: N 20, beta 1.5, mu 1.0, eps 16/255, steps 10 (authors' flags; torchattacks: N 5).

    Raises:
        TypeError: when ``N`` is not an int or ``beta`` not a number.
        ValueError: when ``N`` is ``< 0`` or ``beta`` not finite ``>= 0``.
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> atk = VMIFGSM(net, 0.1, 0.02, 2, N=4)
        >>> atk.vt_neighbours, atk.vt_beta
        (4, 1.5)
    """

    @keyword_only("mu", "N", "beta")
    def __init__(self, model: Model, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, mu: float = 1.0, N: int = 20, beta: float = 1.5, **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, mu=mu, vt_neighbours=N, vt_beta=beta, **kwargs)


class VNIFGSM(TransferAttack):
    """VNI-FGSM (Wang & He, CVPR 2021); category: gradient (docs/theory.md §10.4).

    VMI with the gradient at NI's look-ahead ``x_t + alpha mu g_t``; the neighbours stay centred at
    ``x_t`` (authors' code, torchattacks). Cost: ``N + 1`` gradients per step.

    Defaults: N 20, beta 1.5, mu 1.0, eps 16/255, steps 10.

    Raises:
        TypeError, ValueError: as :class:`pyadvt.attacks.VMIFGSM` (``N``, ``beta``) and
            :class:`pyadvt.attacks.NIFGSM` (the look-ahead needs ``mu``).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> VNIFGSM(net, 0.1, 0.02, 2, N=4).nesterov
        True
    """

    @keyword_only("mu", "N", "beta")
    def __init__(self, model: Model, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, mu: float = 1.0, N: int = 20, beta: float = 1.5, **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, mu=mu, nesterov=True, vt_neighbours=N, vt_beta=beta, **kwargs)


class PIFGSM(TransferAttack):
    """PI-FGSM (Gao et al., ECCV 2020, "Patch-wise Attack for Fooling Deep Neural Network"); category:
    gradient (docs/theory.md §10.5).

    Amplified step ``beta alpha sign(grad)`` accumulated in ``a``; the part of ``a`` beyond eps (the cut
    noise) is spread to the neighbouring pixels by the project kernel:
    ``P = gamma sign(W_p * C)``; ``x_{t+1} = clip_{x, eps}(x_t + beta alpha s + P)``
    (:func:`pyadvt.ops.attack_update.patch_step_`). Cost: 1 gradient per step.

    Defaults: beta (amplification) 10, gamma ``beta * alpha``, kernel 3, no momentum (``mu=None``;
    ``mu=1`` gives MPI: the sign of the MI momentum), eps 16/255, steps 10, alpha eps/steps.
    ``gamma_fixed=16/255`` reproduces TransferAttack's constant. Unlike torchattacks' ``PIFGSM``
    (``model, max_epsilon, num_iter_set``), the positional arguments are ``(model, eps, alpha, steps)``,
    and targeted mode is supported.

    Raises:
        TypeError: when ``amplification`` or ``gamma_fixed`` is not a number.
        ValueError: on construction, when ``amplification``/``gamma_fixed`` is not finite ``>= 0`` or
            ``kernel_size`` not an odd int ``>= 3``; on a call, when ``x`` is not ``[B, C, H, W]``
            images (before any gradient).
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.Flatten(), torch.nn.Linear(16, 3))
        >>> PIFGSM(net, 0.1, None, 4).amplification
        10.0
    """

    @keyword_only("amplification", "kernel_size")
    def __init__(self, model: Model, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, amplification: float = 10.0, kernel_size: int = 3, mu: float | None = None,
                 gamma_fixed: float | None = None, **kwargs) -> None:
        super().__init__(model, eps, alpha, steps, mu=mu, **kwargs)
        self.amplification = _check_float(amplification, "amplification", 0.0)
        self.kernel = project_kernel(kernel_size)
        self.gamma_fixed = None if gamma_fixed is None else _check_float(gamma_fixed, "gamma_fixed", 0.0)

    def _setup(self, batch, rows, restart, x0, y, target, eps, alpha):
        if x0.dim() != 4:
            raise ValueError(f"PI-FGSM needs images [B, C, H, W], got shape {tuple(x0.shape)}")
        return {"a": torch.zeros_like(x0)}

    def _update(self, x_adv, grad, x0, eps, alpha, momentum, state, step):
        if momentum is not None:
            # MPI: the sign of the MI momentum replaces the raw gradient's sign
            n = grad[0].numel()
            s = grad.reshape(grad.shape[0], -1).abs().to(torch.float64).sum(dim=1)
            inv = torch.where(s > 0, n / s.clamp_min(1e-300), torch.zeros_like(s)).to(grad.dtype)
            momentum.mul_(self.mu).add_(grad * inv.view((-1,) + (1,) * (grad.dim() - 1)))
            grad = momentum
        gamma = torch.full_like(alpha, self.gamma_fixed) if self.gamma_fixed is not None else self.amplification * alpha
        patch_step_(x_adv, grad, x0, state["a"], eps, alpha, self.amplification, gamma, self.kernel)
