"""Gradient regularisers of the surrogate zoo (seed 001 §4.1, docs/theory.md §4), as ``fit(loss_fn=...)`` losses.

Each object is a callable ``loss_fn(model, x, y) -> scalar`` (``y`` int ``[B]`` or soft ``[B, K]``):

* :class:`InputGradientRegularizer` (IR, Ross & Doshi-Velez 2018; seed 001 eq. in §4.1.1):
  ``mean_i [l_i + lambda ||grad_{x_i} l_i||_2]`` - per-sample Euclidean norm, *not squared*, by
  double backpropagation. ``legacy_batch_norm=True`` reproduces the authors' code:
  ``mean_i l_i + lambda ||grad_X sum_i l_i||_F / B`` (one norm over the whole batch).
* :class:`JacobianRegularizer` (JR, Hoffman et al. 2019): ``mean_i [l_i + lambda ||J_f(x_i)||_F]``
  with ``||J||_F^2 ~= C E_v ||v^T J||^2`` over ``n_proj`` random unit vectors ``v`` in R^C;
  ``legacy_squared=True``: the authors' ``mean_i l_i + (lambda / 2) C mean_{i,v} ||v^T J(x_i)||^2``.
* :class:`ExplicitGradientRegularizer` (ER, Smith et al. 2021): ``L + (lambda / 2) ||grad_theta L||^2``
  with ``L`` the batch-mean loss.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    >>> loss = InputGradientRegularizer(0.5)(net, x, y)
    >>> loss.backward(); loss.dim()
    0
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pyadvt.train.losses import soft_cross_entropy
from pyadvt.utils.deprecation import keyword_only

__all__ = ["ExplicitGradientRegularizer", "InputGradientRegularizer", "JacobianRegularizer"]


def _check_lambda(lam) -> float:
    lam = float(lam)
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"'lam' (regularisation strength) must be finite and >= 0, got {lam}")
    return lam


class InputGradientRegularizer:
    """IR loss ``mean_i [l_i + lam * ||grad_{x_i} l_i||]`` (double backprop).

    Args:
        lam: strength ``lambda_ir`` (seed 001 Table XI: 0.1 ... 1 on CIFAR-10).
        legacy_batch_norm: the authors' variant, one norm of the batch gradient divided by ``B``.

    Called as ``loss_fn(model, x [B, C, H, W], y [B] or [B, K]) -> []`` (a scalar tensor to back-propagate).
    Source: docs/theory.md §4 (IR, seed 001 §4.1.1).

    Raises:
        ValueError: when ``lam`` is negative or not finite; at call time as :func:`~pyadvt.train.soft_cross_entropy` for
            logits that are not ``[B, C]`` or misshapen / out-of-range labels.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
        >>> torch.allclose(InputGradientRegularizer(0.0)(net, x, y), nn.functional.cross_entropy(net(x), y))
        True
    """

    higher_order = True  # double backward: fit() selects twice-differentiable layers

    def __init__(self, lam: float, legacy_batch_norm: bool = False):
        self.lam, self.legacy_batch_norm = _check_lambda(lam), bool(legacy_batch_norm)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.detach().clone().requires_grad_(True)
        losses = soft_cross_entropy(model(x), y, reduction="none")
        (g,) = torch.autograd.grad(losses.sum(), x, create_graph=True)
        if self.legacy_batch_norm:
            return losses.mean() + self.lam * torch.linalg.vector_norm(g) / x.shape[0]
        return (losses + self.lam * torch.linalg.vector_norm(g.flatten(1), dim=1)).mean()


class JacobianRegularizer:
    """JR loss ``mean_i [l_i + lam * ||J_f(x_i)||_F]`` with a random-projection Frobenius estimate.

    Args:
        lam: strength ``lambda_jr``.
        n_proj: random unit projections ``v`` per sample and step (one VJP each).
        legacy_squared: the authors' squared form ``(lam / 2) C mean ||v^T J||^2``.
        seed: seed of the projections' generator (advanced every call).

    Called as ``loss_fn(model, x [B, C, H, W], y [B] or [B, K]) -> []`` (a scalar tensor to back-propagate).
    Source: docs/theory.md §4 (JR, seed 001 §4.1.1; Hoffman et al. 2019).

    Raises:
        ValueError: when ``lam`` is negative or not finite or ``n_proj`` is not an int ``>= 1``;
            at call time as :func:`~pyadvt.train.soft_cross_entropy` for
            logits that are not ``[B, C]`` or misshapen / out-of-range labels.

    Example:
        >>> import torch
        >>> jr = JacobianRegularizer(0.1, n_proj=2)
        >>> v = jr.projections(5, 3)   # [n_proj, B, C] unit vectors
        >>> tuple(v.shape), bool(torch.allclose(v.norm(dim=-1), torch.ones(2, 5, dtype=torch.float64)))
        ((2, 5, 3), True)
        >>> net, x, y = torch.nn.Linear(4, 3), torch.rand(5, 4), torch.tensor([0, 1, 2, 0, 1])
        >>> loss = jr(net, x, y)
        >>> loss.dim(), bool(loss > torch.nn.functional.cross_entropy(net(x), y))
        (0, True)
    """

    higher_order = True  # double backward: fit() selects twice-differentiable layers

    @keyword_only("n_proj", "legacy_squared", "seed")
    def __init__(self, lam: float, *, n_proj: int = 1, legacy_squared: bool = False, seed: int = 0):
        if not isinstance(n_proj, int) or n_proj < 1:
            raise ValueError(f"'n_proj' must be an int >= 1, got {n_proj!r}")
        self.lam, self.n_proj, self.legacy_squared = _check_lambda(lam), n_proj, bool(legacy_squared)
        self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))

    def projections(self, B: int, C: int) -> torch.Tensor:
        """``[n_proj, B, C]`` uniform unit vectors (normalised Gaussians) from the internal generator."""
        v = torch.randn(self.n_proj, B, C, generator=self.generator, dtype=torch.float64)
        return v / v.norm(dim=-1, keepdim=True)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.detach().clone().requires_grad_(True)
        logits = model(x)
        losses = soft_cross_entropy(logits, y, reduction="none")
        B, C = logits.shape
        vs = self.projections(B, C).to(device=logits.device, dtype=logits.dtype)
        vjps = [torch.autograd.grad(logits, x, grad_outputs=v, create_graph=True)[0].flatten(1) for v in vs]
        sq = torch.stack(vjps, dim=1)  # [B, n_proj, n]: rows v^T J(x_i)
        if self.legacy_squared:
            return losses.mean() + 0.5 * self.lam * C * sq.pow(2).sum(dim=(1, 2)).mean() / self.n_proj
        fro = torch.linalg.vector_norm(sq.flatten(1), dim=1) * math.sqrt(C / self.n_proj)
        return (losses + self.lam * fro).mean()


class ExplicitGradientRegularizer:
    """ER loss ``L(theta) + (lam / 2) ||grad_theta L(theta)||^2`` over trainable parameters.

    Called as ``loss_fn(model, x [B, C, H, W], y [B] or [B, K]) -> []`` (a scalar tensor to back-propagate).
    Source: docs/theory.md §4 (ER, seed 001 §4.1.2; Smith et al. 2021).

    Raises:
        ValueError: when ``lam`` is negative or not finite; at call time as :class:`InputGradientRegularizer`
            (logits and labels checked by :func:`~pyadvt.train.soft_cross_entropy`).

    Example:
        >>> import torch
        >>> net, x, y = torch.nn.Linear(4, 3), torch.rand(5, 4), torch.tensor([0, 1, 2, 0, 1])
        >>> ce = torch.nn.functional.cross_entropy(net(x), y)
        >>> grad_sq = sum(g.pow(2).sum() for g in torch.autograd.grad(ce, list(net.parameters())))
        >>> bool(torch.isclose(ExplicitGradientRegularizer(0.1)(net, x, y), ce + 0.05 * grad_sq))
        True
    """

    higher_order = True  # double backward: fit() selects twice-differentiable layers

    def __init__(self, lam: float):
        self.lam = _check_lambda(lam)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = soft_cross_entropy(model(x), y)
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        return loss + 0.5 * self.lam * sum(g.pow(2).sum() for g in grads if g is not None)
