"""The authors'-code transferability scores of seed 000 (``legacy_transferability``, formerly ``legacy_alpha``;
docs/theory.md §2 "Authors' code").

The released scripts of Liang et al. (``image_exp/adv2know.py``) do not compute tau1/tau2; they score a
``source`` model ``A`` (their reference, "attacker" model) against a ``target`` ``M`` (the transferred,
"victim" model) from
*finite* logit changes under PGD examples (made against each model's own clean prediction):

* ``x_A = PGD_A(x)``, ``x_M = PGD_M(x)``;
* ``alpha1(x) = ||M(x) - M(x_A)|| / ||M(x) - M(x_M)||`` - how far the source's example moves the
  target's logits relative to the target's own attack (logit-change ratio); reported as its mean;
* ``alpha2 = ||E[u(x) w(x)^T]||_F^2`` with ``u = unit(A(x) - A(x_A))``, ``w = unit(M(x) - M(x_A))`` -
  the alignment of the two logit changes (squared Frobenius norm of the mean outer product);
* ``combined = ||E[alpha1(x) u(x) w(x)^T]||_F^2``.

Only samples the source classifies correctly are used (as in the scripts). Samples with a zero
logit change (undefined ratio or direction) are masked, counted and warned about (docs/theory.md §0).
These are reproduction aids, not the paper's definitions: prefer :func:`pyadvt.metrics.tau1`,
:func:`pyadvt.metrics.tau2` and :func:`pyadvt.metrics.empirical_transfer.empirical_transferability`.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> x, y = torch.rand(8, 1, 2, 2), torch.zeros(8, dtype=torch.long)
    >>> r = legacy_transferability(net, net, x, net(x).argmax(1), eps=0.1, steps=3)
    >>> round(r.alpha1, 6), round(r.alpha2, 3) <= 1.0
    (1.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from pyadvt.attacks import PGD
from pyadvt.metrics._legacy_arguments import keyword_only
from pyadvt.metrics._pair_data import pair_data
from pyadvt.utils.modes import evaluating
from pyadvt.utils.deprecation import renamed_names

if TYPE_CHECKING:
    from pyadvt.metrics._pair_data import Data

__all__ = ["LegacyTransferabilityResult", "legacy_transferability"]


@dataclass
class LegacyTransferabilityResult:
    """``alpha1_per_sample [N]`` (0 where unused), ``used [N]`` bool (source correct and defined),
    ``alpha1`` (mean), ``alpha2``, ``combined``, ``n_used``, ``n_undefined``.

    The protocol: ``valid`` is ``used`` (the samples the scores average over); ``n_undefined`` counts
    the source-correct samples masked for a zero logit change, so ``(~valid).sum()`` is ``n_undefined``
    plus the samples the source misclassifies (which the scripts skip by design). The headline
    ``value`` is :attr:`combined`.

    Returned by :func:`legacy_transferability`: the quantities of seed 000's released scripts (docs/theory.md §2,
    "Authors' code").

    Example:
        >>> import torch
        >>> r = LegacyTransferabilityResult(alpha1_per_sample=torch.tensor([0.5, 0.0]), used=torch.tensor([True, False]),
        ...                       alpha1=0.5, alpha2=0.8, combined=0.3, n_undefined=0)
        >>> r.n_used, r.summary()["legacy_alpha2"], r.valid.tolist(), r.value
        (1, 0.8, [True, False], 0.3)
    """

    alpha1_per_sample: torch.Tensor
    used: torch.Tensor
    alpha1: float
    alpha2: float
    combined: float
    n_undefined: int

    @property
    def n_used(self) -> int:
        return int(self.used.sum())

    @property
    def valid(self) -> torch.Tensor:
        """``[N]`` bool: :attr:`used` (source correct and defined)."""
        return self.used

    @property
    def value(self) -> float:
        """The headline number: :attr:`combined`."""
        return self.combined

    def summary(self) -> dict:
        return {"legacy_alpha1": self.alpha1, "legacy_alpha2": self.alpha2, "legacy_combined": self.combined,
                "n_used": self.n_used, "n_undefined": self.n_undefined}


def _unit(v: torch.Tensor):
    n = v.norm(dim=1, keepdim=True)
    return v / n.clamp_min(torch.finfo(v.dtype).tiny), n[:, 0] > 0


@keyword_only(renames={"attacker": "source", "victim": "target"})
def legacy_transferability(source: nn.Module, target: nn.Module, x: Data, y: torch.Tensor | None = None, eps: float = 0.06, *,
                 steps: int = 10, alpha_ratio: float = 1.0, seed: int = 0, batch_size: int = 256,
                 progress: bool = False) -> LegacyTransferabilityResult:
    """The authors'-code alpha1 / alpha2 / combined scores of ``source`` (their reference model ``A``)
    against ``target`` (the transferred model ``M``); see the module docstring.

    docs/theory.md §2 "Authors' code"; seed 000 (Liang et al., ICML 2021), released scripts (not a
    definition of the paper).

    Args:
        source: ``A`` ``[B, *in] -> [B, C_A]`` (in the scripts, the reference or "attacker" model).
        target: ``M`` ``[B, *in] -> [B, C_M]`` (the transferred or "victim" model).
        x: ``[N, *in]`` images in [0, 1] with y ``[N]`` labels of the source's task (for the filter);
            or a ``TensorData`` / ``Dataset`` / ``DataLoader`` of ``(x, y)`` (then ``y=None``), walked
            one batch at a time on the source's device (:func:`pyadvt.data.iter_batches`).
        y: ``[N]`` int64 labels in ``[0, C_A)`` (with a tensor ``x`` only).
        eps: L-inf budget in [0, 1] pixel units (the scripts' ``2 eps`` in [-1, 1] units).
        steps: PGD steps; the scripts use step ``eps / steps`` in pixel units, i.e. ``alpha_ratio = 1``.
        seed: per-sample random starts (uniform in the ball, as the scripts).
        batch_size, progress: batching and a tqdm bar.

    Returns:
        :class:`LegacyTransferabilityResult` (``alpha1_per_sample [N]``, ``used [N]``, ``alpha1``, ``alpha2``,
        ``combined``).

    Raises:
        ValueError: values outside [0, 1], misshapen or out-of-range labels, an empty ``x``, ``y``
            given with a dataset, or no usable sample (the source misclassifies all, or no logit changed).
        TypeError: inputs of another dtype than a model, non-integer labels, an unknown keyword.

    The former keywords ``attacker=`` / ``victim=`` work for one release with a ``DeprecationWarning``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> x = torch.rand(8, 1, 2, 2)
        >>> round(legacy_transferability(net, net, x, net(x).argmax(1), eps=0.1, steps=3).alpha1, 6)
        1.0
    """
    from pyadvt.data.stream import iter_batches

    data, device = pair_data(x, y, {"source": source, "target": target}, batch_size, labels="labels")
    kw = dict(eps=float(eps), alpha=alpha_ratio * float(eps) / steps, steps=steps, seed=seed)
    atk_a, atk_m = PGD(source, **kw), PGD(target, **kw)
    ratios, used, outer, comb = [], [], 0.0, 0.0
    n_undef = 0
    with evaluating([source, target]):
        for xb, yb in iter_batches(data, batch_size, device=device, progress=progress, desc="legacy alpha",
                                   labels=True):
            with torch.no_grad():
                a0, m0 = source(xb), target(xb)
            correct = a0.argmax(1) == yb.to(a0.device)
            xa = atk_a(xb, a0.argmax(1))
            xm = atk_m(xb, m0.argmax(1))
            with torch.no_grad():
                da = (a0 - source(xa)).double()
                dm_a = (m0 - target(xa)).double()
                dm_m = (m0 - target(xm)).double()
            u, ok_u = _unit(da)
            w, ok_w = _unit(dm_a)
            den = dm_m.norm(dim=1)
            ok = ok_u & ok_w & (den > 0)
            n_undef += int((correct & ~ok).sum())
            keep = correct & ok
            r = torch.where(keep, dm_a.norm(dim=1) / den.clamp_min(torch.finfo(den.dtype).tiny), torch.zeros_like(den))
            ratios.append(r)
            used.append(keep)
            o = torch.einsum("bi,bj->bij", u[keep], w[keep])
            outer = outer + o.sum(0)
            comb = comb + (r[keep][:, None, None] * o).sum(0)
    used_t = torch.cat(used)
    n = int(used_t.sum())
    if n_undef:
        import warnings

        warnings.warn(f"legacy_transferability: {n_undef} source-correct samples had a zero logit change; masked",
                      RuntimeWarning, stacklevel=4)
    if n == 0:
        raise ValueError("legacy_transferability: no usable sample (the source misclassifies all, or no logit changed)")
    ratio_t = torch.cat(ratios)
    return LegacyTransferabilityResult(alpha1_per_sample=ratio_t, used=used_t, alpha1=float(ratio_t[used_t].mean()),
                             alpha2=float((outer / n).square().sum()), combined=float((comb / n).square().sum()),
                             n_undefined=n_undef)

__getattr__ = renamed_names(__name__, {"LegacyAlphaResult": "LegacyTransferabilityResult",
                                       "legacy_alpha": "legacy_transferability"})  # the former name, for one release
