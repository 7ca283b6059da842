"""Advanced-objective (feature-level) transfer attacks: ILA, FIA and NAA (docs/theory.md §10.11-§10.13).

Each attacks the output ``f_l`` of a named layer, recorded by a
:class:`~pyadvt.attacks.modifiers.FeatureTap` installed for the call. ``layer`` is a name from
``model.named_modules()``; the default (:func:`~pyadvt.attacks.modifiers.default_layer`) covers
torchvision/timm ResNets and pyadvt's models, and other architectures get a ``ValueError`` asking for
``layer=``. The objectives are per sample, so results are batch-independent. Untargeted only.
"""

from __future__ import annotations

import torch
from torch import nn

from pyadvt.attacks.base import Attack
from pyadvt.attacks.composed import SLOT_SETUP, TransferAttack, stream
from pyadvt.attacks.ensemble import Ensemble
from pyadvt.attacks.modifiers import FeatureTap, default_layer, module_by_name
from pyadvt.attacks.transforms import _check_float, _check_int
from pyadvt.utils.deprecation import keyword_only


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def _unit_rows(t: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 normalisation (zero rows stay zero)."""
    n = _flat(t).norm(dim=1).clamp_min(torch.finfo(t.dtype).tiny)
    return t / n.view((-1,) + (1,) * (t.dim() - 1))


class FeatureAttack(TransferAttack):
    """Base of the feature-level attacks: a tapped layer and a per-sample objective of its output."""

    attack_name = "feature attack"

    def __init__(self, model: nn.Module, eps: float, alpha: float | None, steps: int, *, layer: str | None,
                 **kwargs):
        if isinstance(model, (list, tuple, Ensemble)):
            raise ValueError(f"{self.attack_name} attacks one model's layer; an ensemble has no single layer")
        if kwargs.get("targeted"):
            raise ValueError(f"{self.attack_name} is untargeted (its objective is the clean image's features)")
        layer = default_layer(model, self.attack_name) if layer is None else layer
        module_by_name(model, layer, self.attack_name)
        super().__init__(model, eps, alpha, steps, **kwargs)
        self.layer = layer
        self.tap = FeatureTap(layer, self.attack_name)

    def _installed_modifiers(self):
        return [*self.modifiers, self.tap]

    def _features(self, inp: torch.Tensor) -> torch.Tensor:
        self._evals += inp.shape[0]
        self.model(inp)
        return self.tap.value

    def _value(self, inp, y, target, state, copies):
        f = self._features(inp)
        return self._feature_objective(f, state, copies)

    def _feature_objective(self, f: torch.Tensor, state: dict, copies: int) -> torch.Tensor:
        raise NotImplementedError


class ILA(FeatureAttack):
    """ILA (Huang et al., ICCV 2019, "Enhancing Adversarial Example Transferability with an
    Intermediate Level Attack"), ILAP loss; category: advanced objective (docs/theory.md §10.11).

    With a baseline ``x'`` (default MI-FGSM with the same eps, alpha, steps) and
    ``dy' = f_l(x') - f_l(x)``: ascend ``<f_l(x'') - f_l(x), dy'> / ||dy'||^2`` with plain sign steps from
    ``x``. The authors normalise by the whole batch's ``||dy'||^2``, a positive constant: the per-sample
    norm used here gives the same sign steps and keeps samples independent. Cost: 1 gradient per step
    plus the baseline's cost and 2 forwards.

    Defaults: steps 10, alpha eps/steps, eps 16/255, layer ``floor(count / 2)`` of the top-level modules
    (``layer2.1`` on ResNet-18, ``layer3.0`` on ResNet-50).

    Call: ``atk(x [B, C, H, W] in [0, 1], y [B])`` -> ``[B, C, H, W]`` (``[K, B, C, H, W]`` for ``K``
    budgets).

    Raises:
        ValueError: on construction, when ``model`` is a list/ensemble (one model's layer is
            attacked), ``targeted=True`` (untargeted only), ``layer`` names no module of
            ``model.named_modules()``, or ``layer=None`` and the architecture has no default layer;
            on a call, when the layer's output is not a tensor.
        TypeError: when ``layer`` is not a str.
        TypeError: when ``baseline`` is not a :class:`pyadvt.attacks.Attack`.
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torchvision
        >>> atk = ILA(torchvision.models.resnet18(num_classes=10))
        >>> atk.layer, type(atk.baseline).__name__, atk.baseline.mu  # baseline: MI-FGSM
        ('layer2.1', 'TransferAttack', 1.0)
    """

    attack_name = "ILA"

    @keyword_only("layer")
    def __init__(self, model: nn.Module, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, layer: str | None = None, baseline: Attack | None = None, mu: float | None = None, **kwargs):
        super().__init__(model, eps, alpha, steps, layer=layer, mu=mu, **kwargs)
        if baseline is None:
            baseline = TransferAttack(model, eps, self.alpha, self.steps, mu=1.0, seed=self.seed)
        if not isinstance(baseline, Attack):
            raise TypeError(f"'baseline' must be a pyadvt Attack, got {type(baseline).__name__}")
        self.baseline = baseline

    def _setup(self, batch, rows, restart, x0, y, target, eps, alpha):
        sub = batch if rows is None else batch.rows(rows)
        x_base = self.baseline._attack(sub).detach()
        self._evals += getattr(self.baseline, "_evals", self.baseline_cost() * x0.shape[0])
        with torch.no_grad():
            f0 = self._features(x0).detach().clone()
            d = self._features(x_base).detach().clone() - f0
        denom = _flat(d).pow(2).sum(dim=1)
        return {"f0": f0, "d": d, "denom": denom}

    def baseline_cost(self) -> float:
        return float(getattr(self.baseline, "steps", 1))

    def _feature_objective(self, f, state, copies):
        rep = (copies,) + (1,) * (f.dim() - 1)
        proj = _flat((f - state["f0"].repeat(rep)) * state["d"].repeat(rep)).sum(dim=1)
        denom = state["denom"].repeat(copies)
        return torch.where(denom > 0, proj / denom.clamp_min(torch.finfo(f.dtype).tiny), torch.zeros_like(proj))


class FIA(FeatureAttack):
    """FIA (Wang et al., ICCV 2021, "Feature Importance-aware Transferable Adversarial Attacks");
    category: advanced objective (docs/theory.md §10.12).

    Once, on the clean ``x``: ``w = sum_n ds(x * M_n) / df_l`` with masks ``M_n ~ Bernoulli(1 - drop)``
    per element (drawn per sample), L2-normalised per sample; ``s`` is the true-class logit
    (``ta_softmax=True``: its softmax probability, TransferAttack). Then MI-FGSM minimising
    ``sum f_l(x'') * w``. Cost: ``N`` gradients once, then 1 per step.

    Defaults: N 30, drop 0.1 (the authors' keep probability 0.9), layer ``layer2`` (ResNet), mu 1.0,
    eps 16/255, steps 10.

    Raises:
        TypeError, ValueError: as :class:`pyadvt.attacks.ILA` (``model``, ``targeted``, ``layer``).
        TypeError: when ``N`` is not an int or ``drop`` not a number.
        ValueError: when ``N`` is ``< 1`` or ``drop`` outside [0, 1].
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torchvision
        >>> FIA(torchvision.models.resnet18(num_classes=10)).layer
        'layer2'
    """

    attack_name = "FIA"

    @keyword_only("layer", "N", "drop")
    def __init__(self, model: nn.Module, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, layer: str | None = None, N: int = 30, drop: float = 0.1, ta_softmax: bool = False,
                 mu: float | None = 1.0, **kwargs):
        super().__init__(model, eps, alpha, steps, layer=layer, mu=mu, **kwargs)
        self.N = _check_int(N, "N")
        self.drop = _check_float(drop, "drop", 0.0, 1.0)
        self.ta_softmax = bool(ta_softmax)

    def _score(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.ta_softmax:
            logits = logits.softmax(dim=1)
        return logits.gather(1, y.view(-1, 1)).squeeze(1)

    def _aggregate_grad(self, inp: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
        """``sum over the N copies`` of ``d score / d f_l`` -> ``[n, *feature]``."""
        leaf = inp.detach().requires_grad_(True)
        self._evals += leaf.shape[0]
        logits = self.model(leaf)
        f = self.tap.value
        (g,) = torch.autograd.grad(self._score(logits, y.repeat(leaf.shape[0] // n)).sum(), f)
        return g.reshape((-1, n) + tuple(g.shape[1:])).sum(dim=0)

    def _setup(self, batch, rows, restart, x0, y, target, eps, alpha):
        shape = tuple(x0.shape[1:])
        u = batch.rand((self.N,) + shape, stream(restart, 0, SLOT_SETUP), rows=rows)
        masks = (u >= self.drop).to(x0.dtype).transpose(0, 1).reshape((-1,) + shape)
        inp = x0.repeat((self.N,) + (1,) * len(shape)) * masks
        return {"w": _unit_rows(self._aggregate_grad(inp, y, x0.shape[0]))}

    def _feature_objective(self, f, state, copies):
        w = state["w"].repeat((copies,) + (1,) * (f.dim() - 1))
        return -_flat(f * w).sum(dim=1)


class NAA(FIA):
    """NAA (Zhang et al., CVPR 2022, "Improving Adversarial Transferability via Neuron Attribution-Based
    Attacks"); category: advanced objective (docs/theory.md §10.13).

    Integrated attention ``IA = sum_{k<N} dp_y(x_k) / df_l`` along ``x_k = (x + xi_k)(1 - k/N)`` (towards
    the black image, ``xi_k ~ N(0, noise_std^2)``, the authors' 0.2 in [-1, 1] units), L2-normalised
    per sample; ``p_y`` the true-class softmax. Then MI-FGSM minimising
    ``WA = <f_l(x'') - f_l(0), IA>`` (gamma = 1, linear). ``ta_path=True``: TransferAttack's path
    ``x k / N`` without noise. Cost: ``N`` gradients and 1 forward once, then 1 per step.

    Defaults: N 30, noise_std 0.1, layer ``layer2`` (ResNet; the authors' Res-152 ``block2``), mu 1.0,
    eps 16/255, steps 10.

    Raises:
        TypeError, ValueError: as :class:`pyadvt.attacks.ILA` (``model``, ``targeted``, ``layer``).
        TypeError: when ``N`` is not an int or ``noise_std`` not a number.
        ValueError: when ``N`` is ``< 1`` or ``noise_std`` not finite ``>= 0``.
        TypeError, ValueError: as :class:`pyadvt.attacks.TransferAttack` (its options, ``steps``, budgets; inputs).

    Example:
        >>> import torchvision
        >>> NAA(torchvision.models.resnet18(num_classes=10), N=5).ta_softmax  # the gradient of p_y
        True
    """

    attack_name = "NAA"

    @keyword_only("layer", "N", "noise_std")
    def __init__(self, model: nn.Module, eps: float = 16 / 255, alpha: float | None = None, steps: int = 10,
                 *, layer: str | None = None, N: int = 30, noise_std: float = 0.1, ta_path: bool = False,
                 mu: float | None = 1.0, **kwargs):
        FeatureAttack.__init__(self, model, eps, alpha, steps, layer=layer, mu=mu, **kwargs)
        self.N = _check_int(N, "N")
        self.noise_std = _check_float(noise_std, "noise_std", 0.0)
        self.ta_path = bool(ta_path)
        self.ta_softmax = True

    def _setup(self, batch, rows, restart, x0, y, target, eps, alpha):
        shape = tuple(x0.shape[1:])
        one = (1,) * len(shape)
        k = torch.arange(self.N, dtype=x0.dtype, device=x0.device).view((-1, 1) + one) / self.N
        if self.ta_path:
            path = x0.unsqueeze(0) * k
        else:
            xi = batch.rand((self.N,) + shape, stream(restart, 0, SLOT_SETUP), "normal", rows=rows).transpose(0, 1)
            path = (x0.unsqueeze(0) + self.noise_std * xi) * (1.0 - k)
        ia = self._aggregate_grad(path.reshape((-1,) + shape), y, x0.shape[0])
        with torch.no_grad():
            base = self._features(torch.zeros_like(x0[:1])).detach().clone()
        return {"w": _unit_rows(ia), "base": base}

    def _feature_objective(self, f, state, copies):
        w = state["w"].repeat((copies,) + (1,) * (f.dim() - 1))
        return -_flat((f - state["base"]) * w).sum(dim=1)
