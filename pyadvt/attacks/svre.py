"""SVRE: stochastic variance-reduced ensemble attack (docs/theory.md §10.14)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.attacks.composed import SLOT_INNER, TransferAttack, stream
from pyadvt.attacks.iterative import run_rows
from pyadvt.attacks.transforms import _check_int
from pyadvt.models.output import model_logits
from pyadvt.ops import pgd_step_
from pyadvt.utils.deprecation import keyword_only


class SVRE(TransferAttack):
    """SVRE-MI-FGSM (Xiong et al., CVPR 2022, "Stochastic Variance Reduced Ensemble Adversarial Attack
    for Boosting the Adversarial Transferability"); category: ensemble (docs/theory.md §10.14).

    ``K`` surrogates, ensemble loss = CE of the mean logits. Outer step ``t``:
    ``g_ens = grad J_ens(x_t)``; inner loop ``m < M`` from ``x~_0 = x_t``, ``G~_0 = 0``: a member ``k``
    drawn per sample, ``g~ = grad J_k(x~_m) - (grad J_k(x_t) - g_ens)``, ``G~ <- mu G~ + N(g~)``,
    ``x~ <- clip_{x, eps}(x~ + beta sign G~)``; then ``G_{t+1} = mu G_t + N(G~_M)`` and
    ``x_{t+1} = clip_{x, eps}(x_t + alpha sign G_{t+1})``. Both fused :func:`pyadvt.ops.pgd_step_`.

    Cost per step: the ensemble gradient (``K`` model evaluations), ``grad J_k(x_t)`` once per member
    in use (the authors recompute it at every inner step: identical values) and ``M`` single-model
    gradients. Defaults: M = 4 K, beta = alpha, mu 1.0, eps 16/255, steps 10, no random start
    (the authors'; ``random_start=True`` is TransferAttack's).

    Call: ``atk(x [B, C, H, W] in [0, 1], y [B])`` -> ``[B, C, H, W]`` (``[K, B, C, H, W]`` for ``K``
    budgets).

    Raises:
        ValueError: when ``models`` is not a list/tuple of at least 2 models, ``inner_steps`` is
            ``< 1`` or ``beta`` is not ``> 0``.
        TypeError: when ``inner_steps`` is not an int.
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torch
        >>> nets = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)) for _ in range(2)]
        >>> SVRE(nets, 0.1, None, 2).inner_steps
        8
    """

    @keyword_only("mu", "inner_steps", "beta")
    def __init__(self, models: Sequence[nn.Module], eps: float = 16 / 255, alpha: float | None = None,
                 steps: int = 10, *, mu: float = 1.0, inner_steps: int | None = None, beta: float | None = None,
                 **kwargs) -> None:
        if not isinstance(models, (list, tuple)) or len(models) < 2:
            raise ValueError("SVRE needs a list of at least 2 surrogate models")
        super().__init__(list(models), eps, alpha, steps, mu=mu, **kwargs)
        self.inner_steps = 4 * len(models) if inner_steps is None else _check_int(inner_steps, "inner_steps")
        self.beta_ratio = None if beta is None else float(beta) / self.eps
        if self.beta_ratio is not None and not self.beta_ratio > 0:
            raise ValueError(f"'beta' (inner step) must be > 0, got {beta}")

    def _member_grad(self, k: int, point: torch.Tensor, y, target) -> torch.Tensor:
        leaf = point.detach().requires_grad_(True)
        self._evals += leaf.shape[0]
        value = self.objective(model_logits(self.model.models[k](leaf)), y, target)   # members are called directly
        (g,) = torch.autograd.grad(value.sum(), leaf)
        return torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)

    def _run_once(self, batch, rows, restart, bar):
        x0, y, eps, alpha, target = run_rows(batch, rows)
        beta = alpha if self.beta_ratio is None else eps * self.beta_ratio
        K, M = len(self.model.models), self.inner_steps
        x_adv = self._start(batch, rows, restart, x0, eps)
        outer = torch.zeros_like(x0)
        for t in range(self.steps):
            g_ens = self._gradient(x_adv, batch, rows, restart, t, y, target, eps, {})
            pick = (batch.rand((M,), stream(restart, t, SLOT_INNER), rows=rows).to(torch.float64) * K)
            pick = pick.floor().long().clamp_(max=K - 1)                        # [n, M] member per inner step
            anchor = {}
            x_in = x_adv.clone()
            inner = torch.zeros_like(x0)
            for m in range(M):
                g = torch.empty_like(x0)
                for k in pick[:, m].unique().tolist():
                    idx = (pick[:, m] == k).nonzero().squeeze(1)
                    if k not in anchor:
                        anchor[k] = self._member_grad(k, x_adv, y, target) - g_ens
                    tk = None if target is None else target[idx]
                    g[idx] = self._member_grad(k, x_in[idx], y[idx], tk) - anchor[k][idx]
                pgd_step_(x_in, g, x0, eps, beta, "linf", 0.0, 1.0, inner, self.mu, validate=False)
            pgd_step_(x_adv, inner, x0, eps, alpha, "linf", 0.0, 1.0, outer, self.mu, validate=False)
            bar.update(1)
        return x_adv
