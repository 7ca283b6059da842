"""Transfer success rates of adversarial examples (seed 001 Definition 3, docs/theory.md §3).

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
from pyadvt.utils.validation import (InvalidValueError, check_batch_size, check_images, check_labels, check_like,
                                     check_logits, check_model_input, finite_rows, warn_invalid)

__all__ = ["TransferRates", "predict", "transferability"]


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor, batch_size: int, name: str) -> torch.Tensor:
    """Logits ``[N, C]`` of ``model`` in eval mode, batched, on x's device."""
    dev = model_device(model)
    with evaluating(model):
        out = [check_logits(model(x[s:s + batch_size].to(dev)), name) for s in range(0, x.shape[0], batch_size)]
    return torch.cat(out).to(x.device)


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """``argmax`` predictions ``[N]`` (int64, on x's device) of ``model`` in eval mode."""
    check_images(x, "x", allow_nonfinite=True)
    check_batch_size(batch_size)
    return _logits(model, x, batch_size, "model").argmax(1)


@dataclass
class TransferRates:
    """Transfer outcome of one (surrogate, victim, x_adv) triple.

    Attributes:
        success: ``[N]`` bool per-sample ``T_r`` (False for invalid samples).
        both_correct: number of valid samples both models classify correctly (Def. 3's denominator).
        rate: ``Pr(T_r = 1 | F(x) = G(x) = y)`` (NaN when no sample qualifies).
        asr: target attack success rate over the valid samples.
        fooling: surrogate fooling probability ``FP`` over the valid samples.
        acc_surrogate, acc_target: clean accuracies over the valid samples.
        targeted: whether these are targeted rates.
        valid: ``[N]`` bool: ``x`` and ``x_adv`` finite and all four logit rows finite. An invalid
            sample has no defined prediction (NaN logits would argmax to class 0 and count as a
            transfer); it is excluded from every rate and counted in ``n_invalid``.
    """

    success: torch.Tensor
    both_correct: int
    rate: float
    asr: float
    fooling: float
    acc_surrogate: float
    acc_target: float
    targeted: bool
    valid: torch.Tensor | None = None

    @property
    def n_invalid(self) -> int:
        return 0 if self.valid is None else int((~self.valid).sum())

    def summary(self) -> dict:
        return {"rate": self.rate, "asr": self.asr, "fooling": self.fooling, "both_correct": self.both_correct,
                "acc_surrogate": self.acc_surrogate, "acc_target": self.acc_target, "targeted": self.targeted,
                "n": int(self.success.numel()), "n_invalid": self.n_invalid}


def _mean(hit: torch.Tensor, valid: torch.Tensor) -> float:
    n = int(valid.sum())
    return float((hit & valid).sum()) / n if n else float("nan")


def transferability(surrogate: nn.Module, victim: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    x_adv: torch.Tensor, target: torch.Tensor | None = None, targeted: bool = False,
                    num_classes: int | None = None, batch_size: int = 1024) -> TransferRates:
    """Definition-3 transfer rate, raw ASR and fooling probability (docs/theory.md §3).

    Args:
        surrogate: the model ``F`` the adversarial examples were crafted on.
        victim: the target model ``G``.
        x: ``[N, *in_shape]`` clean inputs in [0, 1]; y: ``[N]`` int64 labels in ``[0, C)``.
        x_adv: ``[N, *in_shape]`` adversarial inputs in [0, 1].
        target: ``[N]`` int64 target labels in ``[0, C)`` (implies ``targeted=True``), as in the attacks' API.
        targeted: targeted rates with ``t = (y + 1) mod C`` unless ``target`` is given.
        num_classes: ``C`` for the default target (default: the victim's output width).

    Finite values outside [0, 1], non-integer or out-of-range labels are refused with an error naming
    the argument; samples with a NaN/Inf pixel or non-finite logits are flagged invalid (``valid``),
    excluded from every rate, and reported in one warning.
    """
    check_batch_size(batch_size)
    valid = check_images(x, "x", allow_nonfinite=True)
    check_like(x_adv, x, "x_adv", "x")
    valid = valid & check_images(x_adv, "x_adv", allow_nonfinite=True)
    N = x.shape[0]
    check_labels(y, N, "y", device=x.device)
    for model, name in ((surrogate, "surrogate"), (victim, "victim")):
        check_model_input(model, x, "x", name, check_device=False)  # batches are moved to the model
    with torch.no_grad():  # output width of both models, before the work starts
        widths = {name: int(_logits(m, x[:1], 1, name).shape[1]) for m, name in ((surrogate, "surrogate"),
                                                                                  (victim, "victim"))}
    C = min(widths.values())
    check_labels(y, N, "y", num_classes=C)
    targeted = targeted or target is not None
    if targeted:
        if target is None:
            if num_classes is None:
                num_classes = widths["victim"]
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
                raise InvalidValueError(f"'num_classes' must be an int >= 2, got {num_classes!r}")
            target = (y + 1) % int(num_classes)
        check_labels(target, N, "target", num_classes=C, device=x.device)
    lf, lg = _logits(surrogate, x, batch_size, "surrogate").cpu(), _logits(victim, x, batch_size, "victim").cpu()
    af_l, ag_l = (_logits(surrogate, x_adv, batch_size, "surrogate").cpu(),
                  _logits(victim, x_adv, batch_size, "victim").cpu())
    valid = valid.cpu() & finite_rows(lf) & finite_rows(lg) & finite_rows(af_l) & finite_rows(ag_l)
    pf, pg, af, ag = lf.argmax(1), lg.argmax(1), af_l.argmax(1), ag_l.argmax(1)
    y = y.cpu()
    if targeted:
        t = target.cpu()
        hit_f, hit_g = af == t, ag == t
    else:
        hit_f, hit_g = af != y, ag != y
    both = (pf == y) & (pg == y) & valid
    success = both & hit_f & hit_g
    nb = int(both.sum())
    warn_invalid(int((~valid).sum()), N, "transferability")
    return TransferRates(success=success, both_correct=nb,
                         rate=float(success.sum()) / nb if nb else float("nan"),
                         asr=_mean(hit_g, valid), fooling=_mean(hit_f, valid),
                         acc_surrogate=_mean(pf == y, valid), acc_target=_mean(pg == y, valid),
                         targeted=targeted, valid=valid)
