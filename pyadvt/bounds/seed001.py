"""Seed 001 Theorem 1: a lower bound on transferability from smoothness and gradient similarity.

docs/theory.md §3 (Zhang et al., S&P 2024, Thm. 1, eq. 2): with fooling probability ``1 - a`` of the
source (surrogate) ``F`` on ``x + delta`` (``||delta||_2 <= eps``), natural risks ``g_F, g_G``, upper
smoothness ``s_F, s_G`` (max per-sample ``lambda_max`` of the input Hessian), infimum gradient
similarity ``S_`` and

``c_F = min_i [min_{y' != y_i} l_F(x_i + delta_i, y') - l_F(x_i, y_i) - s_F eps^2 / 2] / ||grad_x l_F(x_i, y_i)||``
``c_G = max_i [min_{y' != y_i} l_G(x_i + delta_i, y') - l_G(x_i, y_i) + s_G eps^2 / 2] / ||grad_x l_G(x_i, y_i)||``

``Pr(T_r = 1) >= (1 - a) - (g_F + g_G) - (eps (1 + a) - c_F (1 - a)) / (eps - c_G)
- (eps (1 - a) / (eps - c_G)) sqrt(2 - 2 S_)``.

The bound is usually vacuous (``<= 0``) on real models; :func:`lower_bound` evaluates every term,
flags vacuity and compares with the empirical ``Pr(T_r = 1)`` over all samples.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x = torch.rand(8, 1, 2, 2); y = net(x).argmax(1)
    >>> b = lower_bound(net, net, x, y, (x + 0.1).clamp(0, 1), smoothness_kwargs={"progress": False})
    >>> b.vacuous
    True
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.metrics.similarity import gradient_similarity, loss_input_gradients
from pyadvt.metrics.smoothness import smoothness
from pyadvt.metrics.transfer_rates import predict, attack_transferability
from pyadvt.utils.deprecation import keyword_only, renamed_parameters
from pyadvt.utils.modes import evaluating, model_device
from pyadvt.utils.validation import InvalidValueError, check_inputs

__all__ = ["Seed001Bound", "lower_bound", "lower_bound_from_terms"]


@dataclass
class Seed001Bound:
    """Terms and value of seed 001 Theorem 1.

    Attributes:
        value: the lower bound (may be ``-inf`` when ``eps <= c_G``: the theorem then says nothing).
        vacuous: True when ``value <= 0`` or ``eps <= c_G``.
        empirical: observed ``Pr(T_r = 1)`` over all samples (NaN if not computed).
        holds: ``empirical >= value`` (a sanity check; always True for a vacuous bound).
        terms: ``fooling (1 - a), risk_surrogate, risk_target, s_F, s_G, S_inf, c_F, c_G, eps``
            (``risk_surrogate`` is the source's natural risk ``g_F``; the key is kept for stored results).

    Returned by :func:`lower_bound` (seed 001, Theorem 1; docs/theory.md §3); a plain record.

    Example:
        >>> b = Seed001Bound(value=-0.5, vacuous=True, empirical=0.2, holds=True, terms={"eps": 0.1})
        >>> b.summary()["eps"], b.vacuous
        (0.1, True)
    """

    value: float
    vacuous: bool
    empirical: float
    holds: bool
    terms: dict

    def summary(self) -> dict:
        return {"value": self.value, "vacuous": self.vacuous, "empirical": self.empirical, "holds": self.holds,
                **self.terms}


@renamed_parameters(risk_surrogate="risk_source")
def lower_bound_from_terms(fooling: float, risk_source: float, risk_target: float, c_F: float, c_G: float,
                           eps: float, sim_inf: float) -> float:
    """The right-hand side of Theorem 1 from its scalar terms (``fooling = 1 - a``; ``risk_source`` and
    ``risk_target`` are the natural risks ``g_F``, ``g_G``; ``risk_surrogate=`` is a deprecated alias).

    Returns ``-inf`` when ``eps <= c_G`` (the division in the theorem is then meaningless).
    Source: seed 001 (Zhang et al., S&P 2024), Theorem 1, eq. 2; docs/theory.md §3.

    Raises:
        InvalidValueError: a term is not a finite number, ``fooling`` is outside [0, 1] or a risk is negative.
        ValueError: ``eps <= 0`` or ``sim_inf`` outside [-1, 1].

    Example:
        >>> round(lower_bound_from_terms(1.0, 0.0, 0.0, c_F=0.5, c_G=0.0, eps=1.0, sim_inf=1.0), 6)
        0.5
        >>> lower_bound_from_terms(0.9, 0.0, 0.0, c_F=0.0, c_G=2.0, eps=1.0, sim_inf=1.0)
        -inf
    """
    terms = {"fooling": fooling, "risk_source": risk_source, "risk_target": risk_target, "c_F": c_F, "c_G": c_G,
             "eps": eps, "sim_inf": sim_inf}
    for name, v in terms.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise InvalidValueError(f"'{name}' must be a finite number, got {v!r}")
    if not 0.0 <= fooling <= 1.0:
        raise InvalidValueError(f"'fooling' is a rate and must lie in [0, 1], got {fooling}")
    for name in ("risk_source", "risk_target"):
        if terms[name] < 0:
            raise InvalidValueError(f"'{name}' is a natural risk and must be >= 0, got {terms[name]}")
    if not (eps > 0):
        raise ValueError(f"'eps' must be > 0, got {eps}")
    if not (-1.0 <= sim_inf <= 1.0):
        raise ValueError(f"'sim_inf' is a cosine and must lie in [-1, 1], got {sim_inf}")
    if eps <= c_G:
        return float("-inf")
    a = 1.0 - fooling
    return ((1 - a) - (risk_source + risk_target) - (eps * (1 + a) - c_F * (1 - a)) / (eps - c_G)
            - (eps * (1 - a) / (eps - c_G)) * math.sqrt(max(0.0, 2.0 - 2.0 * sim_inf)))


def _c_terms(model: nn.Module, x, y, x_adv, s_upper: float, eps: float, sign: float, batch_size: int):
    """Per-sample ``[min_{y'!=y} l(x+delta, y') - l(x, y) + sign * s eps^2/2] / ||grad_x l(x, y)||``."""
    loss, grad = loss_input_gradients(model, x, y, batch_size)
    gnorm = grad.flatten(1).double().norm(dim=1)
    dev = model_device(model)
    with torch.no_grad(), evaluating(model):
        logits = torch.cat([model(x_adv[s:s + batch_size].to(dev)) for s in range(0, x.shape[0], batch_size)])
    ce_all = -F.log_softmax(logits.double(), dim=1)  # CE for every label y'
    ce_all = ce_all.scatter(1, y.to(dev)[:, None], float("inf"))
    num = ce_all.min(dim=1).values - loss.double() + sign * s_upper * eps ** 2 / 2
    ok = (gnorm > 0) & torch.isfinite(num) & torch.isfinite(gnorm)
    return torch.where(ok, num / gnorm.clamp_min(1e-300), torch.full_like(num, float("nan"))), ok


@keyword_only("smooth_source", "smooth_target", "smoothness_kwargs", "batch_size",
              renames={"surrogate": "source", "smooth_surrogate": "smooth_source"})
def lower_bound(source: nn.Module, target: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor,
                eps: float | None = None, *, smooth_source: float | None = None,
                smooth_target: float | None = None, smoothness_kwargs: dict | None = None,
                batch_size: int = 512) -> Seed001Bound:
    """Evaluate seed 001 Theorem 1 on samples ``(x, y)`` and their adversarial versions ``x_adv``.

    Args:
        source, target: classifiers ``F`` (the surrogate the attack was made on) and ``G`` (logits
            ``[B, C]``); ``surrogate=`` is a deprecated alias of ``source``.
        x: ``[N, *in_shape]`` clean inputs; y: ``[N]`` int64 labels; x_adv: crafted on ``F``.
        eps: the L2 radius of the theorem; default: the largest ``||x_adv_i - x_i||_2``
            (for an L-inf attack pass the L2 radius you want the bound for).
        smooth_source, smooth_target: upper smoothness ``s_F, s_G``; computed with
            :func:`pyadvt.metrics.smoothness` (``smoothness_kwargs``) when omitted
            (``smooth_surrogate=`` is a deprecated alias of ``smooth_source``).
        batch_size: samples per forward/backward.

    Returns:
        :class:`Seed001Bound`. Samples with a zero or non-finite input gradient are skipped in
        ``c_F``/``c_G`` (warned), as are those with zero gradients in the similarity infimum; with no
        usable sample left ``c_F``/``c_G`` and ``value`` are NaN (and ``vacuous`` True).

    Source: seed 001 (Zhang et al., S&P 2024), Theorem 1, eq. 2; docs/theory.md §3.

    Raises:
        InvalidTypeError, InvalidValueError: ``x``/``y`` are not a non-empty float batch in [0, 1] with
            int64 labels, or a model is not callable.
        ValueError: ``x_adv`` does not have the shape of ``x``, or ``eps`` (given or measured) is not positive.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> source, target = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x = torch.rand(8, 1, 2, 2); y = source(x).argmax(1)
        >>> x_adv = (x + 0.1).clamp(0, 1)
        >>> b = lower_bound(source, target, x, y, x_adv, smooth_source=0.0, smooth_target=0.0)  # linear: s = 0
        >>> b.terms["s_F"], b.vacuous, b.holds
        (0.0, True, True)
    """
    check_inputs(x, y, models={"source": source, "target": target})  # non-empty float batch in [0, 1], labels
    if not isinstance(x_adv, torch.Tensor) or x_adv.shape != x.shape:
        raise ValueError(f"'x_adv' must be a tensor with the shape of 'x' {tuple(x.shape)}")
    delta_norm = (x_adv.detach() - x.detach()).flatten(1).double().norm(dim=1)
    if eps is None:
        eps = float(delta_norm.max())
    eps = float(eps)
    if not (eps > 0):
        raise ValueError(f"'eps' must be > 0 (got {eps}); x_adv equal to x has no perturbation budget")
    kw = {"progress": False, **(smoothness_kwargs or {})}
    s_F = float(smooth_source) if smooth_source is not None else smoothness(source, x, y, **kw).max
    s_G = float(smooth_target) if smooth_target is not None else smoothness(target, x, y, **kw).max
    sim = gradient_similarity(source, target, x, y, batch_size=batch_size)
    cf, okf = _c_terms(source, x, y, x_adv, s_F, eps, -1.0, batch_size)
    cg, okg = _c_terms(target, x, y, x_adv, s_G, eps, +1.0, batch_size)
    skipped = int((~(okf & okg)).sum())
    if skipped:
        warnings.warn(f"lower_bound: {skipped} of {x.shape[0]} samples have a zero or non-finite (NaN/Inf) input "
                      "gradient or loss and are skipped in c_F/c_G", RuntimeWarning, stacklevel=2)
    # no usable sample (e.g. a model with NaN weights): c_F/c_G and so the bound are undefined (NaN, vacuous)
    c_F = float(cf[okf].min()) if bool(okf.any()) else float("nan")
    c_G = float(cg[okg].max()) if bool(okg.any()) else float("nan")
    pf, pg = predict(source, x).cpu(), predict(target, x).cpu()
    yc = y.cpu()
    rates = attack_transferability(source, target, x, y, x_adv)
    fooling = rates.fooling
    terms = {"fooling": fooling, "risk_surrogate": float((pf != yc).double().mean()),
             "risk_target": float((pg != yc).double().mean()), "s_F": s_F, "s_G": s_G, "S_inf": sim.min,
             "c_F": c_F, "c_G": c_G, "eps": eps, "max_delta_l2": float(delta_norm.max())}
    if any(math.isnan(t) for t in (c_F, c_G, sim.min)):  # no sample defines a term: the bound is undefined
        value = float("nan")
    else:
        value = lower_bound_from_terms(fooling, terms["risk_surrogate"], terms["risk_target"], c_F, c_G, eps,
                                       sim.min)
    empirical = float(rates.success.double().mean())
    return Seed001Bound(value=value, vacuous=not (value > 0), empirical=empirical, holds=empirical >= value,
                        terms=terms)
