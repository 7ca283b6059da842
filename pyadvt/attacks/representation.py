"""Representation attack (seed 004, docs/theory.md §1 and §5): perturb inputs to move the representation.

For a representation ``g`` (the penultimate layer of ``f(x) = W g(x) + b``) the attack solves, per
sample, ``max_{||delta|| <= eps, x + delta in [0, 1]^n} ||g(x + delta) - g(x)||_2`` with projected
gradient ascent (the inner max of the AS score, seed 004 eq. 2 / Lemma 1). Defaults follow docs/theory.md §1:
20 steps, L-inf ball, step ``2.5 * eps / steps``, random start. The per-sample best iterate over all
steps and restarts is returned, so the achieved distance is the best lower bound of the true max
that the attack found (the AS score is a max: any point of the ball is a valid witness).

``legacy_fgsm=True`` reproduces the authors' shortcut: one signed step of size ``eps`` from ``x``
(no random start) ascending ``||g(x + delta) - c * g(x)||^2`` with the multiplicative target
``c * g(x)`` (``legacy_target_scale = c``), whose gradient at ``delta = 0`` is not zero.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

from pyadvt.ops.pgd import pgd_step_
from pyadvt.utils.modes import evaluating
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.rng import per_sample_rand
from pyadvt.utils.validation import InvalidTypeError, check_inputs, check_like, warn_invalid

__all__ = ["RepresentationAttack", "representation_fn", "representation_distance", "random_start"]


def representation_fn(model: nn.Module, features: bool | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The representation ``g`` of ``model``: ``model.features`` for a split model, else ``model``.

    Args:
        model: an ``nn.Module``; a ``SplitModel`` (``features(x) -> [B, d]``) or a representation.
        features: ``True`` forces ``model.features``, ``False`` uses ``model`` itself, ``None`` picks
            ``features`` when the model has a callable ``features`` attribute.

    Returns:
        ``g``, mapping ``[B, C, H, W]`` inputs to representations (``[B, d]`` for a split model).
        This is the ``g`` of the representation attack (seed 004; docs/theory.md §1 and §5).

    Raises:
        TypeError: when ``model`` is not an ``nn.Module``.
        ValueError: when ``features=True`` but the model has no callable ``features``.

    Example:
        >>> net = nn.Linear(3, 2)
        >>> representation_fn(net) is net
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"'model' must be a torch.nn.Module, got {type(model).__name__}")
    has = callable(getattr(model, "features", None))
    if features is None:
        features = has
    if features and not has:
        raise ValueError("'features=True' but the model has no callable 'features' method; "
                         "pass the representation itself")
    return model.features if features else model


def representation_distance(g: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                            x_adv: torch.Tensor) -> torch.Tensor:
    """``||g(x_adv) - g(x)||_2`` per sample, ``[B]``, without gradients (representation flattened).

    The representation shift that :class:`RepresentationAttack` maximises (seed 004 eq. 2;
    docs/theory.md §1 and §5). ``x`` and ``x_adv`` are ``[B, *in_shape]`` (e.g. ``[B, C, H, W]``).

    A sample whose distance is not finite (NaN/Inf pixels or representation) is NaN in the result
    and reported in one ``RuntimeWarning``, so a caller's mean must skip it (``torch.nanmean``).

    Raises:
        ValueError: when ``x_adv`` does not have ``x``'s shape or is on another device (checked
            before ``g`` runs).

    Example:
        >>> g = lambda t: 2 * t
        >>> representation_distance(g, torch.zeros(2, 3), torch.ones(2, 3)).tolist()
        [3.464101552963257, 3.464101552963257]
    """
    check_like(x_adv, x, "x_adv", "x")
    d = _distance(g, x, x_adv)
    bad = ~torch.isfinite(d)
    if bool(bad.any()):
        d = torch.where(bad, torch.full_like(d, float("nan")), d)
        warn_invalid(int(bad.sum()), d.numel(), "representation_distance", "non-finite inputs or representations")
    return d


def _distance(g: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """``||g(x_adv) - g(x)||_2`` per sample without checks (the attack's inner loop)."""
    with torch.no_grad():
        return (g(x_adv) - g(x)).flatten(1).norm(dim=1)


def random_start(x: torch.Tensor, eps: torch.Tensor, norm: str, seed: int, sample_ids=None,
                 stream: int = 0) -> torch.Tensor:
    """A per-sample uniform point of the eps-ball around ``x`` clipped to [0, 1] (docs/theory.md §1).

    L-inf: ``x + U(-eps, eps)^n``; L2: uniform in the ball (Gaussian direction, radius
    ``eps * u^(1/n)``). Draws depend only on ``(seed, stream, sample)`` (docs/theory.md §0).

    Args:
        x: ``[B, *]`` clean inputs. eps: ``[B]`` radii. norm: ``"linf"`` or ``"l2"``.
    """
    shape = tuple(x.shape[1:])
    e = eps.to(x.dtype).view(-1, *([1] * len(shape)))
    if norm == "linf":
        u = per_sample_rand(x, shape, seed, sample_ids, stream=2 * stream)
        return (x + (2 * u - 1) * e).clamp(0.0, 1.0)
    n = math.prod(shape)
    d = per_sample_rand(x, shape, seed, sample_ids, stream=2 * stream, distribution="normal")
    d = d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * len(shape)))
    r = per_sample_rand(x, (1,), seed, sample_ids, stream=2 * stream + 1).view(-1) ** (1.0 / n)
    return (x + d * r.view_as(e) * e).clamp(0.0, 1.0)


class RepresentationAttack:
    """PGD maximising the representation shift ``||g(x + delta) - g(x)||_2`` (seed 004, docs/theory.md §1).

    Args:
        model: the representation ``g`` or a split model (its ``features`` is used, see
            :func:`representation_fn`). Run in eval mode without parameter gradients.
        eps: radius of the perturbation ball (pixel units), ``>= 0``.
        steps: PGD iterations (default 20).
        alpha: step size; default ``2.5 * eps / steps``.
        norm: ``"linf"`` (default) or ``"l2"``.
        random_start: start uniformly in the ball (default True).
        restarts: independent random starts; the per-sample best is kept.
        seed: seed of the per-sample random starts.
        features: see :func:`representation_fn`.
        legacy_fgsm: authors' one-step shortcut (module docstring).
        legacy_target_scale: the multiplicative target ``c`` of ``legacy_fgsm``.

    Only ``model`` and ``eps`` are positional: ``steps`` and the rest are keyword-only (this class's
    former order ``(model, eps, steps, alpha)`` was not torchattacks' ``(model, eps, alpha, steps)``, so
    a positional call would read differently from :class:`pyadvt.attacks.PGD`'s); passing them by
    position still works for one release, with a ``DeprecationWarning``.

    Call ``atk(x, y=None, eps=None, sample_ids=None) -> x_adv`` with ``x: [B, *] in [0, 1]``; ``y``
    is ignored (the attack is label-free). ``atk.last_distance`` holds ``[B]`` distances achieved.
    Non-finite per-sample gradients give zero steps for those samples, are counted in
    ``atk.undefined`` and reported by a warning (docs/theory.md §0).

    Raises:
        TypeError: on construction, when ``model`` is not an ``nn.Module``; on a call, when ``x`` is
            not a floating tensor or its dtype differs from the model's parameters.
        ValueError: on construction, when ``features=True`` without a ``features`` method, ``norm`` is
            not ``"linf"``/``"l2"``, ``steps``/``restarts`` is not a positive int, ``eps`` is not finite
            ``>= 0``, ``alpha`` is not ``> 0`` or ``legacy_target_scale`` is not ``> 0`` and ``!= 1``; on
            a call (before any gradient), when ``x`` is not a non-empty ``[B, *]`` batch of finite
            values in [0, 1] or the call's ``eps`` is negative.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> g = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x = torch.rand(5, 1, 2, 2)
        >>> atk = RepresentationAttack(g, eps=0.1, steps=5)
        >>> x_adv = atk(x)
        >>> bool(((x_adv - x).abs() <= 0.1 + 1e-6).all()), tuple(atk.last_distance.shape)
        (True, (5,))
    """

    @keyword_only("steps", "alpha", "norm", "random_start", "restarts", "seed", "features", "legacy_fgsm",
                  "legacy_target_scale")
    def __init__(self, model: nn.Module, eps: float, *, steps: int = 20, alpha: float | None = None,
                 norm: str = "linf", random_start: bool = True, restarts: int = 1, seed: int = 0,
                 features: bool | None = None, legacy_fgsm: bool = False, legacy_target_scale: float = 1.1):
        self.model = model
        self.g = representation_fn(model, features)
        if norm in ("inf", "Linf", "linf"):
            norm = "linf"
        elif norm in ("l2", "L2"):
            norm = "l2"
        else:
            raise ValueError(f"'norm' must be 'linf' or 'l2', got {norm!r}")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"'steps' must be a positive int, got {steps!r}")
        if not isinstance(restarts, int) or restarts < 1:
            raise ValueError(f"'restarts' must be a positive int, got {restarts!r}")
        if isinstance(eps, bool) or not (isinstance(eps, numbers.Real)
                                         or (isinstance(eps, torch.Tensor) and eps.numel() == 1)):
            raise InvalidTypeError(f"'eps' must be a real number (the ball radius), got {type(eps).__name__}")
        if float(eps) < 0 or not math.isfinite(float(eps)):
            raise ValueError(f"'eps' must be a finite number >= 0, got {eps!r}")
        if alpha is not None and not float(alpha) > 0:
            raise ValueError(f"'alpha' must be > 0, got {alpha!r}")
        if not legacy_target_scale > 0 or legacy_target_scale == 1.0:
            raise ValueError(f"'legacy_target_scale' must be > 0 and != 1, got {legacy_target_scale!r}")
        self.eps, self.steps, self.alpha, self.norm = float(eps), steps, alpha, norm
        self.random_start, self.restarts, self.seed = random_start, restarts, seed
        self.legacy_fgsm, self.legacy_target_scale = legacy_fgsm, float(legacy_target_scale)
        self.last_distance: torch.Tensor | None = None
        self.undefined = 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None, eps: float | torch.Tensor | None = None,
                 sample_ids: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError("'x' must be a floating-point torch.Tensor [B, *] in [0, 1]")
        if x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"'x' must be a non-empty batch [B, *], got shape {tuple(x.shape)}")
        check_inputs(x, models={"model": self.model}, allow_nonfinite=False)
        eps = self.eps if eps is None else eps
        eps_t = (eps.detach().to(x.device, torch.float32).reshape(-1).expand(x.shape[0]).clone()
                 if isinstance(eps, torch.Tensor) else torch.full((x.shape[0],), float(eps), device=x.device))
        if bool((eps_t < 0).any()):
            raise ValueError("'eps' must be >= 0")
        x0 = x.detach().clone()
        self.undefined = 0
        with evaluating(self.model):
            if self.legacy_fgsm:
                best, dist = self._legacy(x0, eps_t)
            else:
                best, dist = self._pgd(x0, eps_t, sample_ids)
        self.last_distance = dist
        if self.undefined:
            warnings.warn(f"RepresentationAttack: {self.undefined} non-finite per-sample gradient(s) were replaced by "
                          "zero steps (those samples did not move on those steps)", RuntimeWarning, stacklevel=2)
        return best

    def _objective(self, x_t: torch.Tensor, anchor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient of the summed squared shifts from ``anchor`` (representation space) and the
        per-sample shift ``[B]`` at ``x_t``."""
        x_t = x_t.detach().requires_grad_(True)
        with torch.enable_grad():
            sq = (self.g(x_t) - anchor).flatten(1).pow(2).sum(dim=1)
            grad, = torch.autograd.grad(sq.sum(), x_t)
        bad = ~torch.isfinite(grad).flatten(1).all(dim=1)
        if bool(bad.any()):
            self.undefined += int(bad.sum())
            grad = torch.where(bad.view(-1, *([1] * (grad.dim() - 1))), torch.zeros_like(grad), grad)
        return grad, sq.detach().sqrt()

    def _pgd(self, x0: torch.Tensor, eps_t: torch.Tensor, sample_ids) -> tuple[torch.Tensor, torch.Tensor]:
        alpha_t = (torch.full_like(eps_t, float(self.alpha)) if self.alpha is not None
                   else (2.5 * eps_t / self.steps).clamp_min(1e-12))
        with torch.no_grad():
            ref = self.g(x0).detach()
        best = x0.clone()
        best_d = torch.zeros(x0.shape[0], device=x0.device)
        for r in range(self.restarts):
            x_t = (random_start(x0, eps_t, self.norm, self.seed, sample_ids, stream=r) if self.random_start
                   else x0.clone())
            for _ in range(self.steps):
                grad, d = self._objective(x_t, ref)
                best, best_d = _keep_best(best, best_d, x_t, d)
                pgd_step_(x_t, grad.to(x_t.dtype), x0, eps_t, alpha_t, norm=self.norm)
            best, best_d = _keep_best(best, best_d, x_t, _distance(self.g, x0, x_t))
        return best, best_d

    def _legacy(self, x0: torch.Tensor, eps_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            anchor = self.legacy_target_scale * self.g(x0).detach()
        grad, _ = self._objective(x0, anchor)
        x_t = x0.clone()
        pgd_step_(x_t, grad.to(x_t.dtype), x0, eps_t, eps_t.clamp_min(1e-12), norm=self.norm)
        return x_t, _distance(self.g, x0, x_t)


def _keep_best(best: torch.Tensor, best_d: torch.Tensor, x_t: torch.Tensor, d: torch.Tensor):
    better = d > best_d
    mask = better.view(-1, *([1] * (x_t.dim() - 1)))
    return torch.where(mask, x_t.detach(), best), torch.where(better, d, best_d)
