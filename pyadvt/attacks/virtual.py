"""Virtual adversarial attack (seed 000, Definition 1; SPEC section 1).

``delta_f(x) = argmax_{||delta|| <= eps} ||J_f(x) delta||_2 = eps * v1(x)`` with ``v1`` the top right
singular vector of the input Jacobian ``J_f(x)`` ([m, n]); its sign is fixed so that the first
nonzero component is positive (the metrics built on it, tau1 and tau2, are sign-invariant).

The direction comes from one batched Jacobian (:func:`pyadvt.ops.jacobian.jacobian`) and the
spectral kernel ``jacobian_spectrum`` (Gram matrix ``J J^T`` + small symmetric eigensolver).
Samples whose Jacobian is zero (or non-finite) have no direction: ``v1 = 0`` there, they are flagged
and the attack leaves them unperturbed.

Example:
    >>> import torch
    >>> net = torch.nn.Linear(3, 1)
    >>> d = virtual_direction(net, torch.rand(2, 3))
    >>> torch.allclose(d.v1[0].abs(), (net.weight[0] / net.weight[0].norm()).abs())
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pyadvt.ops.jacobian import jacobian
from pyadvt.ops.linalg import jacobian_spectrum
from pyadvt.ops.reference.linalg import FLAG_NONFINITE, FLAG_ZERO

#: flag bits that make a sample's attack direction undefined
UNDEFINED = FLAG_ZERO | FLAG_NONFINITE


@dataclass
class VirtualDirection:
    """Per-sample spectrum of ``J_f(x)``: ``v1 [B, n]`` (unit, sign-normalised; 0 if undefined),
    ``sigma1, sigma2, lam [B]`` (lam = sigma2 / sigma1), ``flags [B]`` int32 (bit 1 zero Jacobian,
    2 degenerate top singular value, 4 rank < 2, 8 non-finite) and ``jac [B, m, n]``."""

    v1: torch.Tensor
    sigma1: torch.Tensor
    sigma2: torch.Tensor
    lam: torch.Tensor
    flags: torch.Tensor
    jac: torch.Tensor

    @property
    def valid(self) -> torch.Tensor:
        """``[B]`` bool: the direction is defined (nonzero, finite Jacobian)."""
        return (self.flags & UNDEFINED) == 0


def virtual_direction(model, x: torch.Tensor, *, method: str = "auto") -> VirtualDirection:
    """Top right singular vector of ``J_f(x_b)`` for every sample (Definition 1 direction).

    Args:
        model: ``[B, *in] -> [B, m]`` module or callable (run in eval mode).
        x: ``[B, *in_shape]`` inputs (not modified).
        method: Jacobian method, see :func:`pyadvt.ops.jacobian.jacobian`.
    """
    J = jacobian(model, x, method=method)
    sigma1, sigma2, lam, v1, flags = jacobian_spectrum(J)
    bad = (flags & UNDEFINED) != 0
    v1 = torch.where(bad[:, None], torch.zeros_like(v1), v1)
    return VirtualDirection(v1=v1, sigma1=sigma1, sigma2=sigma2, lam=lam, flags=flags, jac=J)


class VirtualAdversarialAttack:
    """``x_adv = clip01(x + eps * v1(x))`` (seed 000 Def. 1, L2 ball of radius ``eps``).

    Args:
        model: the attacked model ``[B, *in] -> [B, m]``.
        eps: L2 radius in pixel units (> 0).
        clip: clamp the result to [0, 1] (SPEC §0); ``False`` returns the exact tangent attack
            ``x + delta_f(x)`` used by the theory (tau1, tau2, Proposition 2).

    Call ``atk(x, y=None, eps=None)``; ``y`` is ignored (the attack needs no label). The input is never
    modified and samples with an undefined direction are returned unchanged.

    Example:
        >>> net = torch.nn.Linear(4, 2)
        >>> x = torch.rand(3, 4)
        >>> atk = VirtualAdversarialAttack(net, eps=0.1, clip=False)
        >>> torch.allclose((atk(x) - x).norm(dim=1), torch.full((3,), 0.1))
        True
    """

    def __init__(self, model, eps: float, *, clip: bool = True, method: str = "auto"):
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
            raise ValueError(f"'eps' must be a positive number, got {eps!r}")
        self.model, self.eps, self.clip, self.method = model, float(eps), bool(clip), method

    def perturbation(self, x: torch.Tensor, eps: float | None = None) -> torch.Tensor:
        """``delta_f(x) = eps * v1(x)``, shaped like ``x``."""
        eps = self.eps if eps is None else float(eps)
        d = virtual_direction(self.model, x, method=self.method)
        return (eps * d.v1).reshape(x.shape).to(x.dtype)

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None, eps: float | None = None) -> torch.Tensor:
        x_adv = x.detach() + self.perturbation(x, eps)
        return x_adv.clamp(0.0, 1.0) if self.clip else x_adv
