"""The iterative gradient-sign/-norm attack loop shared by PGD, FGSM, MI-FGSM, DI and DIM (docs/theory.md §1).

Every update is the fused kernel :func:`pyadvt.ops.pgd_step_` with per-row ``eps``/``alpha`` tensors,
so one batch carries several budgets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.attacks.base import Attack, AttackBatch, LossFn, _positive
from pyadvt.ops import pgd_step_
from pyadvt.utils.progress import progress as progress_bar

# per-sample random streams of restart r: 4 * r + kind
_START, _RADIUS, _TRANSFORM = 0, 1, 2


def stream_id(restart: int, kind: int) -> int:
    """Stream number of the per-sample draws of kind ``kind`` (start, radius, transform) in a restart."""
    return 4 * restart + kind


class IterativeAttack(Attack):
    """``steps`` projected steps from a (random) start, optional momentum and input transform, restarts.

    Per row (docs/theory.md §1): ``x_0 = clip01(x + delta_0)`` (``delta_0`` uniform in the L-inf box or the L2
    ball when ``random_start``), then ``x_{t+1} = pgd_step(x_t, grad_x objective(T(x_t)))`` where ``T``
    is the input transform (identity except for DI). With ``restarts > 1`` each sample keeps the first
    restart that succeeds, else the one with the highest final objective; samples that already
    succeeded are not attacked again.

    Args (beyond :class:`Attack`):
        steps: number of iterations (>= 1).
        random_start: start from a random point of the ball (restart ``r`` uses stream ``4 r``).
        restarts: number of restarts (>= 1).
        mu: momentum decay (MI-FGSM); ``None`` for no momentum.
        progress: show a tqdm bar over the iterations.
        alpha_scale: with ``alpha=None`` the step is ``alpha_scale * eps / steps``.

    Call: ``atk(x [B, C, H, W] in [0, 1], y [B])`` -> ``[B, C, H, W]`` (``[K, B, C, H, W]`` for ``K``
    budgets), as :class:`Attack`.

    Raises:
        TypeError: when ``steps`` or ``restarts`` is not an int; and as :class:`pyadvt.attacks.Attack`
            (``model``, ``eps``, ``alpha``, ``loss`` on construction; ``x``, ``y``, ``eps`` on a call).
        ValueError: when ``steps`` or ``restarts`` is ``< 1`` or ``mu`` is not finite ``>= 0``; and as
            :class:`pyadvt.attacks.Attack` (``norm``, ``eps``, ``alpha`` on construction; inputs,
            labels, budgets, ``batch_size``, logits and loss shapes on a call).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> x, y = torch.rand(2, 3, 2, 2), torch.tensor([0, 2])
        >>> atk = IterativeAttack(net, eps=0.1, alpha=None, steps=3, mu=1.0)  # MI-FGSM's loop
        >>> x_adv = atk(x, y)
        >>> x_adv.shape, bool((x_adv - x).abs().max() <= 0.1 + 1e-6)
        (torch.Size([2, 3, 2, 2]), True)
        >>> IterativeAttack(net, eps=0.1, alpha=None, steps=0)
        Traceback (most recent call last):
            ...
        ValueError: 'steps' must be >= 1, got 0
    """

    def __init__(self, model: nn.Module | Sequence[nn.Module], eps: float, alpha: float | None, steps: int, *,
                 norm: str = "linf", random_start: bool = False, restarts: int = 1, mu: float | None = None,
                 targeted: bool = False, seed: int = 0, loss: LossFn | None = None, progress: bool = False,
                 alpha_scale: float = 1.0) -> None:
        steps = _count(steps, "steps")
        if alpha is None:
            alpha = alpha_scale * _positive(eps, "eps") / steps
        super().__init__(model, eps, alpha, norm=norm, targeted=targeted, seed=seed, loss=loss)
        self.steps = steps
        self.restarts = _count(restarts, "restarts")
        self.random_start = bool(random_start)
        if mu is not None:
            mu = float(mu)
            if not mu >= 0 or mu == float("inf"):
                raise ValueError(f"'mu' must be a finite number >= 0, got {mu}")
        self.mu = mu
        self.progress = bool(progress)

    # ------------------------------------------------------------------ hooks for input transforms
    def _transform_state(self, batch: AttackBatch, rows: torch.Tensor | None, restart: int):
        """Per-restart state of the input transform (``None``: no transform)."""
        return None

    def _transform(self, x_adv: torch.Tensor, state, step: int) -> torch.Tensor:
        return x_adv

    # ------------------------------------------------------------------ loop
    def _attack(self, batch: AttackBatch) -> torch.Tensor:
        bar = progress_bar(total=self.steps * self.restarts, desc=type(self).__name__, enabled=self.progress,
                           leave=False)
        try:
            if self.restarts == 1:
                return self._run_once(batch, None, 0, bar)
            best = batch.x.clone()
            best_obj = torch.full((best.shape[0],), -torch.inf, dtype=best.dtype, device=best.device)
            best_succ = torch.zeros(best.shape[0], dtype=torch.bool, device=best.device)
            for r in range(self.restarts):
                rows = (~best_succ).nonzero().squeeze(1)
                if rows.numel() == 0:
                    break
                xr = self._run_once(batch, rows, r, bar)
                y, target = batch.y[rows], None if batch.target_labels is None else batch.target_labels[rows]
                with torch.no_grad():
                    logits = self.model(xr)
                    obj = self.objective(logits, y, target)
                    succ = self.success(logits, y, target)
                take = succ | (obj > best_obj[rows]) if r > 0 else torch.ones_like(succ)
                idx = rows[take]
                best[idx] = xr[take]
                best_obj[idx] = obj[take]
                best_succ[idx] = succ[take]
            return best
        finally:
            bar.close()

    def _run_once(self, batch: AttackBatch, rows: torch.Tensor | None, restart: int, bar) -> torch.Tensor:
        x0, y, eps, alpha, target = run_rows(batch, rows)
        x_adv = self._start(batch, rows, restart, x0, eps)
        momentum = None if self.mu is None else torch.zeros_like(x0)
        state = self._transform_state(batch, rows, restart)
        step_checks = True
        for t in range(self.steps):
            transform = None if state is None else (lambda z, t=t: self._transform(z, state, t))
            grad = self.input_grad(x_adv, y, target, transform)
            # eps/alpha were validated once by Attack.__call__; the kernel still checks shapes/devices
            pgd_step_(x_adv, grad, x0, eps, alpha, self.norm, 0.0, 1.0, momentum, self.mu, validate=step_checks)
            step_checks = False
            bar.update(1)
        return x_adv

    def _start(self, batch: AttackBatch, rows, restart: int, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        if not self.random_start:
            return x0.clone()
        shape = tuple(x0.shape[1:])
        e = eps.to(x0.dtype).view((-1,) + (1,) * len(shape))
        if self.norm == "linf":
            u = batch.rand(shape, stream_id(restart, _START), rows=rows)
            delta = (2.0 * u - 1.0) * e
        else:
            # uniform in the L2 ball: direction uniform on the sphere, radius eps * U^(1/n)
            z = batch.rand(shape, stream_id(restart, _START), "normal", rows=rows)
            u = batch.rand((1,), stream_id(restart, _RADIUS), rows=rows)
            n = z[0].numel()
            norm = z.reshape(z.shape[0], -1).norm(dim=1).clamp_min(torch.finfo(z.dtype).tiny)
            radius = u.reshape(-1) ** (1.0 / n)
            delta = z * (radius / norm).view((-1,) + (1,) * len(shape)) * e
        return (x0 + delta).clamp_(0.0, 1.0)

    def __repr__(self) -> str:
        extra = f", mu={self.mu:g}" if self.mu is not None else ""
        return (f"{type(self).__name__}(eps={self.eps:g}, alpha={self.alpha:g}, steps={self.steps}, "
                f"norm={self.norm!r}, random_start={self.random_start}, restarts={self.restarts}{extra}, "
                f"targeted={self.targeted}, seed={self.seed})")


def run_rows(batch: AttackBatch, rows: torch.Tensor | None) -> tuple:
    """``(x0, y, eps, alpha, target_labels)`` of the rows ``rows`` of ``batch`` (all rows when ``None``):
    what one restart of an iterative attack works on (``target_labels`` stays ``None`` if untargeted)."""
    def sel(t):
        return t if rows is None or t is None else t[rows]

    return sel(batch.x), sel(batch.y), sel(batch.eps), sel(batch.alpha), sel(batch.target_labels)


def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (hasattr(value, "__index__")):
        raise TypeError(f"'{name}' must be an int, got {type(value).__name__}")
    value = int(value)
    if value < 1:
        raise ValueError(f"'{name}' must be >= 1, got {value}")
    return value
