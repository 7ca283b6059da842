"""Sharpness-aware minimisation (SAM, Foret et al. 2021; seed 001 §4, docs/theory.md §4) as an optimizer wrapper.

One step with closure ``c`` (zeroes gradients, computes the loss, calls backward):

1. ``g = grad L(theta)`` from ``c()``;
2. ascend to ``theta + e``, ``e = rho g / ||g||_2`` (global norm over all parameters);
3. ``g' = grad L(theta + e)`` from ``c()`` again;
4. return to ``theta`` and let the base optimizer step with ``g'``.

BatchNorm running statistics are updated once per step (by the first pass): pass ``model`` and
its BatchNorm buffers are restored after the ascent pass. SAM&IR / SAM&JR are SAM with the IR /
JR loss as ``fit``'s ``loss_fn``. ``pyadvt.train.fit`` steps it through ``needs_closure = True``.

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = SAM([w], torch.optim.SGD, rho=0.1, lr=0.5)
    >>> def closure():
    ...     opt.zero_grad(); loss = (w ** 2).sum(); loss.backward(); return loss
    >>> float(opt.step(closure))
    5.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from pyadvt.utils.deprecation import keyword_only

__all__ = ["SAM"]


class SAM(torch.optim.Optimizer):
    """SAM wrapper around ``base_optimizer`` (a ``torch.optim.Optimizer`` class).

    Args:
        params: parameters (or groups) to optimise.
        base_optimizer: optimizer class for the descent step (e.g. ``torch.optim.SGD``).
        rho: neighbourhood radius (seed 001 Table XI: 0.01 ... 0.2 on CIFAR-10).
        model: optional module whose BatchNorm statistics must only be updated once per step.
        **kwargs: the base optimizer's settings (``lr``, ``momentum``, ``weight_decay`` ...).

    ``param_groups`` are shared with the base optimizer, so learning-rate schedules apply to both.
    Source: docs/theory.md §4 (SAM, Foret et al. 2021; seed 001 §4.1.2).

    Raises:
        ValueError: when ``rho`` is not ``> 0``, or when :meth:`step` is called without a closure.
        TypeError: when ``base_optimizer`` is not a ``torch.optim.Optimizer`` class.

    The example checks one step by hand on ``L(w) = ||w||^2``: ``g = 2 w``, ``e = rho g / ||g||``,
    ``w <- w - lr * 2 (w + e)``.

    Example:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> def closure():
        ...     opt.zero_grad(); loss = (w ** 2).sum(); loss.backward(); return loss
        >>> opt = SAM([w], torch.optim.SGD, rho=0.1, lr=0.1)
        >>> g = 2 * w.detach()
        >>> expected = w.detach() - 0.1 * 2 * (w.detach() + 0.1 * g / g.norm())
        >>> _ = opt.step(closure)
        >>> bool(torch.allclose(w.detach(), expected))
        True
    """

    needs_closure = True

    @keyword_only("rho", "model")
    def __init__(self, params: Iterable, base_optimizer: type[torch.optim.Optimizer] = torch.optim.SGD, *,
                 rho: float = 0.05, model: nn.Module | None = None, **kwargs):
        if not float(rho) > 0:
            raise ValueError(f"'rho' must be > 0, got {rho}")
        if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer)):
            raise TypeError(f"'base_optimizer' must be a torch.optim.Optimizer class, got {base_optimizer!r}")
        super().__init__(params, dict(kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.rho, self.model = float(rho), model

    def _bn_buffers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.model is None:
            return []
        out = []
        for m in self.model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                out += [(b, b.detach().clone()) for b in m.buffers()]
        return out

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """One SAM step; returns the loss at the current weights (the first closure call)."""
        if closure is None:
            raise ValueError("SAM.step needs a closure that zeroes gradients, computes the loss and calls backward")
        with torch.enable_grad():
            loss = closure()
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not params:
            return loss.detach()
        gnorm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        scale = self.rho / gnorm.clamp_min(1e-12)
        shifts = []
        for p in params:
            e = p.grad * scale.to(p.grad.dtype)
            p.add_(e)
            shifts.append((p, e))
        saved = self._bn_buffers()
        with torch.enable_grad():
            closure()
        for buf, value in saved:
            buf.copy_(value)
        for p, e in shifts:
            p.sub_(e)
        self.base_optimizer.step()
        return loss.detach()
