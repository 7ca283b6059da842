"""Attacks as compositions (docs/theory.md §10): objective, input transforms, gradient transforms,
backward modifiers, ensemble and update rule, on top of :class:`pyadvt.attacks.IterativeAttack`.

Per outer iteration ``t`` of :class:`TransferAttack` (all rows of a batch at once):

1. look-ahead point ``p = x_t + alpha * mu * g_t`` (Nesterov, NI) or ``p = x_t``, plus a fresh
   ``U(-eps, eps)`` offset when ``grad_noise`` (LinBP's optimiser);
2. gradient ``grad = mean_copies grad_p objective(model(T(p)))`` through the input transforms ``T`` (each
   a stack of random copies, drawn per sample), under the backward modifiers, then TI's kernel;
3. variance tuning (VMI/VNI): use ``grad + v_t`` and set ``v_{t+1} = mean_i grad(x_t + r_i) - grad``;
4. update (:meth:`TransferAttack._update`): the fused :func:`pyadvt.ops.pgd_step_` (momentum
   ``g_{t+1} = mu g_t + grad / mean|grad|`` and the projected sign step), or PI's rule.

Every random draw comes from the sample's own stream (:meth:`pyadvt.attacks.AttackBatch.rand`), so a
sample's result does not depend on its batch, and a multi-budget call equals separate calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.attacks.base import Attack, AttackBatch, LossFn, check_loss_args
from pyadvt.utils.validation import check_labels
from pyadvt.attacks.ensemble import Ensemble
from pyadvt.attacks.iterative import IterativeAttack, run_rows
from pyadvt.attacks.smoothing import depthwise, gaussian_kernel
from pyadvt.models.output import model_logits
from pyadvt.attacks.transforms import (InputTransform, TransformContext, _check_float, _check_int,
                                       apply_transforms, total_copies)
from pyadvt.ops import pgd_step_
from pyadvt.ops.attack_update import nesterov_point, variance_momentum_step_
from pyadvt.utils.modes import model_device

# per-sample streams of the composed attacks: disjoint from IterativeAttack's 4 * restart + kind
_BASE = 0x40000000
SLOT_NEIGHBOURS, SLOT_NOISE, SLOT_SETUP, SLOT_INNER = 200, 201, 202, 203


def stream(restart: int, step: int, slot: int) -> int:
    """Stream number of the draws of ``slot`` (a transform's draw, neighbours, noise) at ``step``."""
    return _BASE + (restart << 20) + (step << 8) + slot


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logit margin ``max_{j != y} z_j - z_y`` per sample ``[B]`` of ``logits [B, C]`` at labels ``y [B]``.

    Carlini and Wagner's margin objective (IEEE S&P 2017, arXiv:1608.04644), here without their
    confidence clamp; :class:`TransferAttack`'s ``objective="margin"`` ascends it. Positive exactly
    when the prediction is not ``y``.

    Raises:
        ValueError: when ``logits`` is not a floating 2-D tensor, ``y`` does not have shape ``[B]`` or
            holds a label outside ``[0, C)``.
        TypeError: when ``y`` is not a tensor of integer labels.

    Example:
        >>> import torch
        >>> margin_loss(torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0]]), torch.tensor([0, 1]))
        tensor([-2.,  3.])
    """
    check_loss_args(logits, y)
    check_labels(y, logits.shape[0], num_classes=logits.shape[1])
    return _step_margin(logits, y)


def _step_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`margin_loss` with the metadata checks only (the loss of every attack step)."""
    check_loss_args(logits, y)
    true = logits.gather(1, y.view(-1, 1)).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(dim=1)
    return other - true


OBJECTIVES = {"ce": None, "margin": _step_margin}


class TransferAttack(IterativeAttack):
    """The composable L-inf transfer attack (docs/theory.md §10.0 and the module doc).

    Args:
        model: logits model, or a list of models (an ensemble, see ``ensemble``).
        eps: budget (default 16/255, the field's protocol).
        alpha: step (default ``eps / steps``).
        steps: outer iterations (default 10).
        mu: momentum decay (default 1.0; ``None`` for plain sign steps, I-FGSM).
        nesterov: NI's look-ahead ``x_t + alpha mu g_t`` (docs/theory.md §10.1).
        transforms: :class:`pyadvt.attacks.transforms.InputTransform` s applied in order before every
            gradient (their copies are averaged).
        ti_kernel: TI's Gaussian kernel length (odd, e.g. 15) or ``None``; ``ti_nsig`` its range.
        vt_neighbours: variance tuning's ``N`` (0: off) and ``vt_beta`` its radius ``beta * eps``.
        modifiers: backward modifiers (:class:`pyadvt.attacks.modifiers.SkipGradient`,
            :class:`~pyadvt.attacks.modifiers.LinearBackprop`) installed around the call.
        objective: ``"ce"`` (cross-entropy, default) or ``"margin"`` (logit margin); ``loss`` overrides.
        ensemble: for a list of models, ``"logits"`` (CE of the mean logits, default) or ``"loss"``
            (mean of the members' objectives).
        grad_noise: evaluate the gradient at ``x_t + U(-eps, eps)`` (LinBP's optimiser).
        copies_per_pass: forward/backward at most this many copies (of the ``n`` rows) per pass;
            ``"auto"`` (default): one copy per pass on CPU, where passes whose activations outgrow
            the caches are slower than several small ones, all copies in one pass on GPU. The result
            does not depend on it (up to float rounding).
        random_start, restarts, targeted, seed, progress: see :class:`pyadvt.attacks.PGD`.

    Call: ``atk(x [B, C, H, W] in [0, 1], y [B])`` -> ``[B, C, H, W]`` (``[K, B, C, H, W]`` for ``K``
    budgets), as :class:`pyadvt.attacks.Attack`.

    Raises:
        ValueError: on construction, when ``objective`` is not ``"ce"``/``"margin"``, ``ensemble`` not
            ``"logits"``/``"loss"`` (or ``"loss"`` with a single model), ``nesterov=True`` with
            ``mu=None``, ``ti_kernel`` not a positive odd int, ``ti_nsig`` not finite ``> 0``,
            ``vt_neighbours`` ``< 0``, ``vt_beta`` not finite ``>= 0`` or ``copies_per_pass`` ``< 1``.
        TypeError: on construction, when a ``transforms`` entry is not an
            :class:`~pyadvt.attacks.transforms.InputTransform`, a ``modifiers`` entry has no
            ``installed(model)`` context manager, ``vt_neighbours``/``copies_per_pass`` are not ints or
            ``vt_beta`` is not a number.
        TypeError, ValueError: as :class:`pyadvt.attacks.IterativeAttack` (``steps``, ``restarts``,
            ``mu``) and :class:`pyadvt.attacks.Attack` (model, budgets; inputs and labels on a call,
            before any gradient), plus the input transforms' own checks on a call (e.g. BSR needs
            ``[B, C, H, W]`` images, Admix a ``pool`` of the inputs' image shape).

    After a call, :attr:`last_cost` holds the gradient evaluations (forward + backward of one image
    through one model) spent per (budget, sample) row.

    Example:
        >>> import torch
        >>> from pyadvt.attacks.transforms import ScaleCopies
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(32, 3))
        >>> atk = TransferAttack(net, eps=0.1, steps=2, nesterov=True, transforms=[ScaleCopies(2)], ti_kernel=3)
        >>> x = torch.rand(2, 1, 4, 4)
        >>> bool(((atk(x, torch.tensor([0, 1])) - x).abs() <= 0.1 + 1e-6).all()), atk.last_cost
        (True, 4.0)
    """

    def __init__(self, model: nn.Module | Sequence[nn.Module], eps: float = 16 / 255, alpha: float | None = None,
                 steps: int = 10, *, mu: float | None = 1.0, nesterov: bool = False,
                 transforms: Sequence[InputTransform] = (), ti_kernel: int | None = None, ti_nsig: float = 3.0,
                 vt_neighbours: int = 0, vt_beta: float = 1.5, modifiers: Sequence = (), objective: str = "ce",
                 ensemble: str = "logits", grad_noise: bool = False, copies_per_pass: int | str | None = "auto",
                 random_start: bool = False, restarts: int = 1,
                 targeted: bool = False, seed: int = 0, loss: LossFn | None = None, progress: bool = False) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"'objective' must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        if ensemble not in ("logits", "loss"):
            raise ValueError(f"'ensemble' must be 'logits' or 'loss', got {ensemble!r}")
        super().__init__(model, eps, alpha, steps, norm="linf", random_start=random_start, restarts=restarts, mu=mu,
                         targeted=targeted, seed=seed, loss=loss or OBJECTIVES[objective], progress=progress)
        self.objective_name = objective
        self.ensemble = ensemble
        if ensemble == "loss" and not isinstance(self.model, Ensemble):
            raise ValueError("ensemble='loss' needs a list of models")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.mu is None:
            raise ValueError("'nesterov=True' needs momentum: pass mu (e.g. 1.0)")
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not isinstance(t, InputTransform):
                raise TypeError(f"'transforms[{i}]' must be an InputTransform, got {type(t).__name__}")
        self.ti_kernel = None if ti_kernel is None else gaussian_kernel(ti_kernel, ti_nsig)
        self.ti_size, self.ti_nsig = ti_kernel, float(ti_nsig)
        self.vt_neighbours = _check_int(vt_neighbours, "vt_neighbours", 0)
        self.vt_beta = _check_float(vt_beta, "vt_beta", 0.0)
        self.modifiers = list(modifiers)
        for i, m in enumerate(self.modifiers):
            if not callable(getattr(m, "installed", None)):
                raise TypeError(f"'modifiers[{i}]' must have an installed(model) context manager, got "
                                f"{type(m).__name__}")
        self.grad_noise = bool(grad_noise)
        if copies_per_pass == "auto":
            copies_per_pass = None if model_device(self.model).type == "cuda" else 1
        self.copies_per_pass = None if copies_per_pass is None else _check_int(copies_per_pass, "copies_per_pass")
        self.last_cost = 0.0
        self._evals = 0.0

    # ------------------------------------------------------------------ call structure
    def _attack(self, batch: AttackBatch) -> torch.Tensor:
        self._evals = 0.0
        with contextlib.ExitStack() as stack:
            for m in self._installed_modifiers():
                stack.enter_context(m.installed(self.model))
            out = super()._attack(batch)
        self.last_cost = self._evals / batch.x.shape[0]
        return out

    def _installed_modifiers(self) -> list:
        """Modifiers installed around the call (subclasses add their feature taps)."""
        return self.modifiers

    def _members(self) -> list[nn.Module]:
        return list(self.model.models) if isinstance(self.model, Ensemble) else [self.model]

    def _setup(self, batch: AttackBatch, rows, restart: int, x0, y, target, eps, alpha) -> dict:
        """Per-run state (feature weights, baselines, accumulators); default none."""
        return {}

    # ------------------------------------------------------------------ the loop
    def _run_once(self, batch: AttackBatch, rows: torch.Tensor | None, restart: int, bar) -> torch.Tensor:
        x0, y, eps, alpha, target = run_rows(batch, rows)
        x_adv = self._start(batch, rows, restart, x0, eps)
        state = self._setup(batch, rows, restart, x0, y, target, eps, alpha)
        momentum = None if self.mu is None else torch.zeros_like(x0)
        variance = torch.zeros_like(x0) if self.vt_neighbours else None
        for t in range(self.steps):
            point = nesterov_point(x_adv, momentum, alpha, self.mu) if self.nesterov else x_adv
            if self.grad_noise:
                u = batch.rand(tuple(x0.shape[1:]), stream(restart, t, SLOT_NOISE), rows=rows)
                point = point + (2.0 * u - 1.0) * eps.to(x0.dtype).view((-1,) + (1,) * (x0.dim() - 1))
            grad = self._gradient(point, batch, rows, restart, t, y, target, eps, state)
            if variance is not None:
                neighbours = self._neighbour_gradient(x_adv, batch, rows, restart, t, y, target, eps, state)
                variance_momentum_step_(x_adv, grad, variance, neighbours, x0, eps, alpha, momentum,
                                        1.0 if self.mu is None else self.mu)
            else:
                self._update(x_adv, grad, x0, eps, alpha, momentum, state, t)
            bar.update(1)
        return x_adv

    def _update(self, x_adv, grad, x0, eps, alpha, momentum, state, step: int) -> None:
        """The fused projected sign step with optional momentum (docs/theory.md §10.0)."""
        pgd_step_(x_adv, grad, x0, eps, alpha, "linf", 0.0, 1.0, momentum, self.mu, validate=False)

    # ------------------------------------------------------------------ gradients
    def _draws(self, batch, rows, restart, step, base: int, slot0: int, in_shape) -> list[list[torch.Tensor]]:
        """Each transform's draws, from each sample's stream, arranged copy-major over its input rows."""
        out, prior = [], base
        for i, tr in enumerate(self.transforms):
            ds = []
            for j, (shape, dist) in enumerate(tr.draw_shapes(in_shape)):
                d = batch.rand((prior,) + tuple(shape), stream(restart, step, slot0 + 8 * i + j), dist, rows=rows)
                ds.append(d.transpose(0, 1).reshape((-1,) + tuple(shape)))
            out.append(ds)
            prior *= tr.copies
        return out

    def _value(self, inp: torch.Tensor, y: torch.Tensor, target, state: dict, copies: int) -> torch.Tensor:
        """Per-row objective ``[rows]`` of the transformed rows (``copies`` copy-major rows per attacked
        row, so per-row state ``[n, ...]`` is repeated ``copies`` times)."""
        members = self._members()
        self._evals += inp.shape[0] * len(members)
        if self.ensemble == "loss":
            return torch.stack([self.objective(model_logits(m(inp)), y, target) for m in members]).mean(dim=0)
        return self.objective(self.model(inp), y, target)

    def _gradient(self, point, batch, rows, restart, step, y, target, eps, state, base: int = 1,
                  slot0: int = 0) -> torch.Tensor:
        """``mean over transform copies`` of the objective's gradient at ``point`` (``[base * n]`` rows,
        ``base`` copy-major repeats of the ``n`` attacked rows), then TI's kernel."""
        n = y.shape[0]
        leaf = point.detach().requires_grad_(True)
        inp = leaf
        if self.transforms:
            draws = self._draws(batch, rows, restart, step, base, slot0, tuple(point.shape[1:]))
            inp = apply_transforms(self.transforms, leaf, draws,
                                   TransformContext(eps=eps.repeat(base), clean=batch.clean))
        copies = inp.shape[0] // n                 # rows per attacked row: base repeats x transform copies
        per_pass = copies if self.copies_per_pass is None else min(copies, self.copies_per_pass)
        if per_pass >= copies:
            value = self._value(inp, y.repeat(copies), None if target is None else target.repeat(copies), state,
                                copies)
            (grad,) = torch.autograd.grad(value.sum(), leaf)
        else:
            # several passes: each pass's rows are their own autograd leaf (its gradient is its rows, no
            # graph retained across passes); the transforms' backward then runs once on all the rows
            grad = torch.empty_like(inp)
            for c0 in range(0, copies, per_pass):
                c = min(per_pass, copies - c0)
                part = inp[c0 * n:(c0 + c) * n].detach().requires_grad_(True)
                value = self._value(part, y.repeat(c), None if target is None else target.repeat(c), state, c)
                grad[c0 * n:(c0 + c) * n] = torch.autograd.grad(value.sum(), part)[0]
            if inp is not leaf:
                (grad,) = torch.autograd.grad(inp, leaf, grad_outputs=grad)
        grad = grad / (copies // base)
        if not bool(torch.isfinite(grad.sum())):
            bad = ~torch.isfinite(grad).reshape(grad.shape[0], -1).all(dim=1)
            grad = torch.where(bad.view((-1,) + (1,) * (grad.dim() - 1)), torch.zeros_like(grad), grad)
            self.undefined += int(bad.sum())
        if self.ti_kernel is not None:
            grad = depthwise(grad, self.ti_kernel)
        return grad

    def _neighbour_gradient(self, x_adv, batch, rows, restart, step, y, target, eps, state) -> torch.Tensor:
        """VT: ``mean_i grad(x_t + r_i)``, ``r_i ~ U[-beta eps, beta eps]^D`` per element and sample,
        neighbours not clipped (docs/theory.md §10.4)."""
        N, shape = self.vt_neighbours, tuple(x_adv.shape[1:])
        u = batch.rand((N,) + shape, stream(restart, step, SLOT_NEIGHBOURS), rows=rows)   # [n, N, ...], a copy
        radius = (self.vt_beta * eps).to(x_adv.dtype).view((-1, 1) + (1,) * len(shape))
        r = u.mul_(2.0).sub_(1.0).mul_(radius)       # in place: one [n, N, ...] buffer for the offsets
        pts = (r.transpose(0, 1) + x_adv.unsqueeze(0)).reshape((-1,) + shape)   # copy-major [N * n, ...]
        g = self._gradient(pts, batch, rows, restart, step, y, target, eps, state, base=N, slot0=100)
        return g.reshape((N, -1) + shape).mean(dim=0)

    def __repr__(self) -> str:
        parts = [f"eps={self.eps:g}", f"alpha={self.alpha:g}", f"steps={self.steps}",
                 f"mu={self.mu}" if self.mu is not None else "mu=None"]
        if self.nesterov:
            parts.append("nesterov=True")
        if self.transforms:
            parts.append(f"transforms={self.transforms}")
        if self.ti_size:
            parts.append(f"ti_kernel={self.ti_size}")
        if self.vt_neighbours:
            parts.append(f"vt_neighbours={self.vt_neighbours}, vt_beta={self.vt_beta:g}")
        if self.modifiers:
            parts.append(f"modifiers={self.modifiers}")
        return f"{type(self).__name__}({', '.join(parts)}, targeted={self.targeted}, seed={self.seed})"


def cost_per_image(attack: Attack, steps: int | None = None) -> float | None:
    """Gradient evaluations per image of the last call (:attr:`TransferAttack.last_cost`), or for the
    base attacks ``steps * restarts`` (times the ensemble size).

    The cost measure of docs/theory.md §10 (table "10.summary Cost per outer iteration"): one
    evaluation is a forward and backward pass of one image through one model. ``steps`` is validated
    but not used in the count (the attack's own ``steps`` is).

    Raises:
        TypeError: when ``attack`` is not a :class:`pyadvt.attacks.Attack`.
        ValueError: when ``steps`` is neither ``None`` nor an int ``>= 1``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from pyadvt.attacks import PGD, NIFGSM
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> cost_per_image(PGD([net, net], eps=0.1, steps=4))  # 4 steps x 2 models
        8.0
        >>> atk = NIFGSM(net, 0.1, 0.02, 3)
        >>> _ = atk(torch.rand(2, 3, 2, 2), torch.tensor([0, 2]))
        >>> cost_per_image(atk)
        3.0
    """
    if not isinstance(attack, Attack):
        raise TypeError(f"'attack' must be a pyadvt Attack, got {type(attack).__name__}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"'steps' must be an int >= 1 or None, got {steps!r}")
    if isinstance(attack, TransferAttack):
        return attack.last_cost
    k = len(attack.model.models) if isinstance(attack.model, Ensemble) else 1
    return float(getattr(attack, "steps", 1) * getattr(attack, "restarts", 1) * k)
