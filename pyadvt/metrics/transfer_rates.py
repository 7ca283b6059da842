"""Transfer success rates of adversarial examples (seed 001 Definition 3, SPEC §3).

Untargeted, per sample: ``T_r = 1[F(x) = G(x) = y and F(x+delta) != y and G(x+delta) != y]``;
targeted: ``F(x+delta) = G(x+delta) = t`` instead, default ``t = (y + 1) mod C``. Reported:

* ``rate`` - mean of ``T_r`` over the samples *both* models classify correctly (Def. 3),
* ``asr`` - raw attack success rate on the target over all samples, ``1 - acc_G(x_adv)``
  (targeted: ``mean 1[G(x_adv) = t]``), the number in the paper's tables,
* ``fooling`` - the surrogate's fooling probability ``FP = 1 - acc_F(x_adv)`` (targeted: hit rate).

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x = torch.rand(6, 1, 2, 2); y = net(x).argmax(1)
    >>> r = transferability(net, net, x, y, x_adv=x)
    >>> r.asr, r.rate, r.both_correct
    (0.0, 0.0, 6)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pyadvt.utils.modes import evaluating, model_device

__all__ = ["TransferRates", "predict", "transferability"]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """``argmax`` predictions ``[N]`` (int64, on x's device) of ``model`` in eval mode."""
    dev = model_device(model)
    with evaluating(model):
        out = [model(x[s:s + batch_size].to(dev)).argmax(1) for s in range(0, x.shape[0], batch_size)]
    return torch.cat(out).to(x.device)


@dataclass
class TransferRates:
    """Transfer outcome of one (surrogate, victim, x_adv) triple.

    Attributes:
        success: ``[N]`` bool per-sample ``T_r``.
        both_correct: number of samples both models classify correctly (Def. 3's denominator).
        rate: ``Pr(T_r = 1 | F(x) = G(x) = y)`` (NaN when no sample qualifies).
        asr: target attack success rate over all samples.
        fooling: surrogate fooling probability ``FP`` over all samples.
        acc_surrogate, acc_target: clean accuracies.
        targeted: whether these are targeted rates.
    """

    success: torch.Tensor
    both_correct: int
    rate: float
    asr: float
    fooling: float
    acc_surrogate: float
    acc_target: float
    targeted: bool

    def summary(self) -> dict:
        return {"rate": self.rate, "asr": self.asr, "fooling": self.fooling, "both_correct": self.both_correct,
                "acc_surrogate": self.acc_surrogate, "acc_target": self.acc_target, "targeted": self.targeted,
                "n": int(self.success.numel())}


def transferability(surrogate: nn.Module, victim: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    x_adv: torch.Tensor, target: torch.Tensor | None = None, targeted: bool = False,
                    num_classes: int | None = None, batch_size: int = 1024) -> TransferRates:
    """Definition-3 transfer rate, raw ASR and fooling probability (SPEC §3).

    Args:
        surrogate: the model ``F`` the adversarial examples were crafted on.
        victim: the target model ``G``.
        x: ``[N, *in_shape]`` clean inputs; y: ``[N]`` int64 labels.
        x_adv: ``[N, *in_shape]`` adversarial inputs.
        target: ``[N]`` int64 target labels (implies ``targeted=True``), as in the attacks' API.
        targeted: targeted rates with ``t = (y + 1) mod C`` unless ``target`` is given.
        num_classes: ``C`` for the default target (default: the victim's output width).
    """
    if not isinstance(y, torch.Tensor) or y.dtype != torch.long or y.dim() != 1:
        raise ValueError("'y' must be an int64 tensor [N]")
    if not isinstance(x, torch.Tensor) or not isinstance(x_adv, torch.Tensor) or x_adv.shape != x.shape:
        raise ValueError(f"'x_adv' must be a tensor with the shape of 'x' {tuple(x.shape)}")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"'x' has {x.shape[0]} samples but 'y' has {y.shape[0]}; both must be equal and > 0")
    pf, pg = predict(surrogate, x, batch_size).cpu(), predict(victim, x, batch_size).cpu()
    af, ag = predict(surrogate, x_adv, batch_size).cpu(), predict(victim, x_adv, batch_size).cpu()
    y = y.cpu()
    targeted = targeted or target is not None
    if targeted:
        if target is None:
            if num_classes is None:
                with torch.no_grad(), evaluating(victim):
                    num_classes = int(victim(x[:1].to(model_device(victim))).shape[1])
            target = (y + 1) % int(num_classes)
        t = target.cpu()
        if t.shape != y.shape or t.dtype != torch.long:
            raise ValueError("'target' must be an int64 tensor of target labels shaped like 'y'")
        hit_f, hit_g = af == t, ag == t
    else:
        hit_f, hit_g = af != y, ag != y
    both = (pf == y) & (pg == y)
    success = both & hit_f & hit_g
    nb = int(both.sum())
    return TransferRates(success=success, both_correct=nb,
                         rate=float(success.sum()) / nb if nb else float("nan"),
                         asr=float(hit_g.double().mean()), fooling=float(hit_f.double().mean()),
                         acc_surrogate=float((pf == y).double().mean()), acc_target=float((pg == y).double().mean()),
                         targeted=targeted)
