"""Virtual adversarial attack (seed 000, Definition 1; docs/theory.md §1, §9).

``delta_f(x) = argmax_{||delta|| <= eps} ||J_f(x) delta||_2 = eps * v1(x)`` with ``v1`` the top right
singular vector of the input Jacobian ``J_f(x)`` ([m, n]); its sign is fixed by the rule of
:func:`pyadvt.ops.reference.linalg.normalize_signs`, the same on both routes (the metrics built on
it, tau1 and tau2, are sign-invariant).

The direction comes from one of two routes, chosen per batch by a cost and memory model
(:func:`pyadvt.ops.budget.plan_route`, docs/theory.md §9) before the first backward pass:

* ``"dense"`` (outputs ``m <= 64`` and ``[B, m, n]`` fits ``max_memory``): one batched Jacobian
  (:func:`pyadvt.ops.jacobian.jacobian`) and the spectral kernel ``jacobian_spectrum``;
* ``"matrix_free"`` (wide outputs, e.g. 1000 ImageNet logits or a 512-2048-wide representation):
  Lanczos on the Gram operator through batched VJPs/JVPs
  (:func:`pyadvt.ops.matrix_free.jacobian_top_singular`), never materialising ``J``.

When neither fits, :class:`pyadvt.ops.budget.MemoryBudgetError` says what to pass. Samples whose
Jacobian is zero (or whose input or Jacobian is non-finite) have no direction: ``v1 = 0`` there,
they are flagged and the attack leaves them unperturbed. Half-precision models and inputs are
evaluated in float32 (:func:`pyadvt.ops.precision.float32_compute`).

Example:
    >>> import torch
    >>> net = torch.nn.Linear(3, 1)
    >>> d = virtual_direction(net, torch.rand(2, 3))
    >>> torch.allclose(d.v1[0].abs(), (net.weight[0] / net.weight[0].norm()).abs())
    True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pyadvt.ops.budget import RoutePlan, plan_route
from pyadvt.ops.jacobian import _check_inputs as check_model_input
from pyadvt.ops.jacobian import jacobian
from pyadvt.ops.linalg import MAX_K, jacobian_spectrum
from pyadvt.ops.matrix_free import DEFAULT_MAX_ITER, jacobian_top_singular
from pyadvt.ops.precision import float32_compute
from pyadvt.utils.validation import check_inputs
from pyadvt.ops.reference.linalg import (FLAG_DEGENERATE_TOP, FLAG_NONFINITE, FLAG_RANK_LT2, FLAG_ZERO,
                                         degenerate_rtol, normalize_signs, rank_rtol)

#: flag bits that make a sample's attack direction undefined
UNDEFINED = FLAG_ZERO | FLAG_NONFINITE


@dataclass
class VirtualDirection:
    """Per-sample spectrum of ``J_f(x)``: ``v1 [B, n]`` (unit, sign-normalised; 0 if undefined),
    ``sigma1, sigma2, lam [B]`` (lam = sigma2 / sigma1), ``flags [B]`` int32 (bit 1 zero Jacobian,
    2 degenerate top singular value, 4 rank < 2, 8 non-finite input or Jacobian, 16 Lanczos not
    converged), ``jac [B, m, n]`` (dense route with ``keep_jac``; None otherwise), ``route``,
    ``jv1 [B, m]`` = ``J v1`` (when asked) and ``iterations [B]`` (Lanczos steps; None when dense).

    The spectrum behind seed 000's Definition 1 direction ``delta_f(x) = eps * v1(x)`` (docs/theory.md
    §1 Virtual adversarial attack; the kernels of §8 and the matrix-free route of §9). Returned by
    :func:`virtual_direction`.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> d = virtual_direction(net, torch.rand(2, 3, 2, 2))
        >>> d.v1.shape, d.jac.shape, d.route, d.valid.tolist()
        (torch.Size([2, 12]), torch.Size([2, 3, 12]), 'dense', [True, True])
        >>> bool(torch.allclose(d.v1.norm(dim=1), torch.ones(2))), bool((d.lam <= 1).all())
        (True, True)
    """

    v1: torch.Tensor
    sigma1: torch.Tensor
    sigma2: torch.Tensor
    lam: torch.Tensor
    flags: torch.Tensor
    jac: torch.Tensor | None
    route: str = "dense"
    jv1: torch.Tensor | None = None
    iterations: torch.Tensor | None = None

    @property
    def valid(self) -> torch.Tensor:
        """``[B]`` bool: the direction is defined (nonzero, finite Jacobian)."""
        return (self.flags & UNDEFINED) == 0


def _svd_spectrum(J: torch.Tensor):
    """``jacobian_spectrum``'s outputs for ``J [B, m, n]`` wider than its kernel (``m > 64``), from
    ``torch.linalg.svd`` in float64 with the same flag rules (the forced dense route for wide maps)."""
    Jd = J.detach().double()
    finite = torch.isfinite(Jd).reshape(J.shape[0], -1).all(1)
    Jd = torch.where(finite[:, None, None], Jd, torch.zeros_like(Jd))
    _, S, Vh = torch.linalg.svd(Jd, full_matrices=False)
    s1, s2 = S[:, 0], S[:, 1] if S.shape[1] > 1 else torch.zeros_like(S[:, 0])
    zero = s1 <= 0
    rank_lt2 = zero | (s2.square() <= rank_rtol(min(J.shape[1:])) * s1.square())
    degenerate = ~rank_lt2 & ((s1.square() - s2.square()) <= degenerate_rtol(J.dtype) * s1.square())
    s2 = torch.where(rank_lt2, torch.zeros_like(s2), s2)
    lam = s2 / torch.where(zero, torch.ones_like(s1), s1)
    v1 = torch.where(zero[:, None], torch.zeros_like(Vh[:, 0]), normalize_signs(Vh[:, 0]))
    flags = (zero.int() * FLAG_ZERO + rank_lt2.int() * FLAG_RANK_LT2 + degenerate.int() * FLAG_DEGENERATE_TOP)
    flags = torch.where(finite, flags, torch.full_like(flags, FLAG_NONFINITE)).to(torch.int32)
    nan = torch.full_like(s1, float("nan"))
    s1, s2, lam = (torch.where(finite, t, nan) for t in (s1, s2, lam))
    dt = J.dtype
    return s1.to(dt), s2.to(dt), lam.to(dt), v1.to(dt), flags


def virtual_direction(model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                      method: str = "auto", route: str = "auto", max_memory: int | float | str | None = None,
                      tol: float = 1e-6, max_iter: int = DEFAULT_MAX_ITER, seed: int = 0, want_jv1: bool = False,
                      keep_jac: bool = True, plan: RoutePlan | None = None,
                      pixel_range: bool = True) -> VirtualDirection:
    """Top right singular vector of ``J_f(x_b)`` for every sample (Definition 1 direction).

    Args:
        model: ``[B, *in] -> [B, m]`` module or callable (run in eval mode).
        x: ``[B, *in_shape]`` inputs (not modified).
        method: Jacobian method of the dense route, see :func:`pyadvt.ops.jacobian.jacobian`.
        route: ``"auto"`` (cost/memory model), ``"dense"`` or ``"matrix_free"``.
        max_memory: memory budget (bytes or e.g. ``"4GiB"``; default
            :func:`pyadvt.ops.budget.resolve_max_memory`).
        tol, max_iter, seed: Lanczos residual tolerance, step cap and start-vector seed (matrix-free).
        want_jv1: also return ``J v1 [B, m]``.
        keep_jac: keep the dense route's ``[B, m, n]`` Jacobian in the result.
        plan: a route already planned for this batch size (skips the probe forward pass).
        pixel_range: require ``x`` in [0, 1] (pixel space, docs/theory.md §0); the seed-000 bound
            evaluators pass False (their theorems hold on any inputs, Theorem 3 on the unit ball).

    Raises:
        pyadvt.ops.budget.MemoryBudgetError: no route fits ``max_memory`` (before any backward pass).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> x = torch.rand(2, 3, 2, 2)
        >>> d = virtual_direction(net, x, want_jv1=True)
        >>> d.v1.shape, d.jv1.shape  # v1 [B, n] with n = C * H * W, J v1 [B, m]
        (torch.Size([2, 12]), torch.Size([2, 3]))
        >>> s1 = torch.linalg.svdvals(net[1].weight.detach())[0]  # J = W for a linear map
        >>> bool(torch.allclose(d.sigma1, s1.expand(2), atol=1e-5))
        True
    """
    if pixel_range:
        check_inputs(x, models={"model": model})
    check_model_input(model, x)
    model, x = float32_compute(model, x)
    finite = torch.isfinite(x.detach()).reshape(x.shape[0], -1).all(1)
    xs = torch.where(finite.reshape(-1, *([1] * (x.dim() - 1))), x.detach(), torch.zeros_like(x)) \
        if not bool(finite.all()) else x
    if plan is None:
        plan = plan_route(model, xs, route=route, max_memory=max_memory, max_iter=max_iter, what="virtual_direction")
    if plan.route == "dense":
        J = jacobian(model, xs, method=method, max_memory=plan.budget, probe=plan.probe)
        sigma1, sigma2, lam, v1, flags = jacobian_spectrum(J) if J.shape[1] <= MAX_K else _svd_spectrum(J)
        jv1 = torch.einsum("bmn,bn->bm", J, v1) if want_jv1 else None
        iterations = None
    else:
        s = jacobian_top_singular(model, xs, tol=tol, max_iter=max_iter, seed=seed, want_jv1=want_jv1)
        sigma1, sigma2, lam, v1, flags, jv1, iterations = s.sigma1, s.sigma2, s.lam, s.v1, s.flags, s.jv1, s.iterations
        J = None
    if not bool(finite.all()):  # docs/theory.md §0: a non-finite input has no direction
        nan = torch.full_like(sigma1, float("nan"))
        sigma1, sigma2, lam = (torch.where(finite, t, nan) for t in (sigma1, sigma2, lam))
        flags = torch.where(finite, flags, torch.full_like(flags, FLAG_NONFINITE))
        if jv1 is not None:
            jv1 = torch.where(finite[:, None], jv1, torch.full_like(jv1, float("nan")))
    bad = (flags & UNDEFINED) != 0
    v1 = torch.where(bad[:, None], torch.zeros_like(v1), v1)
    return VirtualDirection(v1=v1, sigma1=sigma1, sigma2=sigma2, lam=lam, flags=flags,
                            jac=J if keep_jac else None, route=plan.route, jv1=jv1, iterations=iterations)


class VirtualAdversarialAttack:
    """``x_adv = clip01(x + eps * v1(x))`` (seed 000 Def. 1, L2 ball of radius ``eps``).

    Args:
        model: the attacked model ``[B, *in] -> [B, m]``.
        eps: L2 radius in pixel units (> 0).
        clip: clamp the result to [0, 1] (docs/theory.md §0); ``False`` returns the exact tangent attack
            ``x + delta_f(x)`` used by the theory (tau1, tau2, Proposition 2).
        method, route, max_memory: as :func:`virtual_direction` (wide outputs take the matrix-free route).

    Call ``atk(x, y=None, eps=None)`` with ``x [B, *in_shape]`` (e.g. ``[B, C, H, W]``) -> ``x_adv`` of
    ``x``'s shape; ``y`` is ignored (the attack needs no label). The input is never modified and
    samples with an undefined direction (a zero or non-finite Jacobian) are returned unchanged, with
    a RuntimeWarning.

    Raises:
        ValueError: on construction, when ``eps`` is not a positive number; on a call, when ``x`` is
            not a non-empty batch of finite values in [0, 1], or ``route``/``max_memory`` is invalid;
            :class:`pyadvt.ops.budget.MemoryBudgetError` (a ``ValueError``) when no route fits
            ``max_memory`` (before any backward pass).
        TypeError: on a call, when ``x`` is not a floating tensor, its dtype differs from the model's
            parameters, or the model does not return a tensor.

    Example:
        >>> net = torch.nn.Linear(4, 2)
        >>> x = torch.rand(3, 4)
        >>> atk = VirtualAdversarialAttack(net, eps=0.1, clip=False)
        >>> torch.allclose((atk(x) - x).norm(dim=1), torch.full((3,), 0.1))
        True
    """

    def __init__(self, model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor], eps: float, *,
                 clip: bool = True, method: str = "auto", route: str = "auto",
                 max_memory: int | float | str | None = None) -> None:
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
            raise ValueError(f"'eps' must be a positive number, got {eps!r}")
        self.model, self.eps, self.clip, self.method = model, float(eps), bool(clip), method
        self.route, self.max_memory = route, max_memory

    def perturbation(self, x: torch.Tensor, eps: float | None = None) -> torch.Tensor:
        """``delta_f(x) = eps * v1(x)``, shaped like ``x``."""
        eps = self.eps if eps is None else float(eps)
        d = virtual_direction(self.model, x, method=self.method, route=self.route, max_memory=self.max_memory,
                              keep_jac=False)
        undefined = (d.flags & UNDEFINED) != 0
        if bool(undefined.any()):  # their delta is 0: say so rather than return them silently unchanged
            warnings.warn(f"VirtualAdversarialAttack: {int(undefined.sum())} of {x.shape[0]} samples have an "
                          "undefined direction (a zero Jacobian, or a non-finite one from NaN/Inf model outputs or "
                          "weights); they are returned unchanged", RuntimeWarning, stacklevel=2)
        return (eps * d.v1).reshape(x.shape).to(x.dtype)

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None, eps: float | None = None) -> torch.Tensor:
        check_inputs(x, models={"model": self.model}, allow_nonfinite=False)
        x_adv = x.detach() + self.perturbation(x, eps)
        return x_adv.clamp(0.0, 1.0) if self.clip else x_adv
