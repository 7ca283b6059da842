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

__all__ = ["TransferRates", "predict", "rates_from_predictions", "transferability"]


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


def rates_from_predictions(pf: torch.Tensor, pg: torch.Tensor, af: torch.Tensor, ag: torch.Tensor, y: torch.Tensor,
                           valid: torch.Tensor | None = None, target: torch.Tensor | None = None) -> TransferRates:
    """Definition-3 rates from predictions ``[N]``: surrogate/victim on clean (``pf``, ``pg``) and on
    adversarial inputs (``af``, ``ag``), labels ``y``, ``valid`` mask, ``target`` labels when targeted.

    The one place the rates are computed: :func:`transferability` and the ``pyadvt attack`` command
    (which predicts every budget of one attack pass) call it.
    """
    y = y.cpu()
    valid = torch.ones_like(y, dtype=torch.bool) if valid is None else valid.cpu()
    pf, pg, af, ag = pf.cpu(), pg.cpu(), af.cpu(), ag.cpu()
    targeted = target is not None
    if targeted:
        t = target.cpu()
        hit_f, hit_g = af == t, ag == t
    else:
        hit_f, hit_g = af != y, ag != y
    both = (pf == y) & (pg == y) & valid
    success = both & hit_f & hit_g
    nb = int(both.sum())
    return TransferRates(success=success, both_correct=nb,
                         rate=float(success.sum()) / nb if nb else float("nan"),
                         asr=_mean(hit_g, valid), fooling=_mean(hit_f, valid),
                         acc_surrogate=_mean(pf == y, valid), acc_target=_mean(pg == y, valid),
                         targeted=targeted, valid=valid)


def _predictions(model: nn.Module, x: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(argmax [b], finite [b])`` on the CPU for one batch."""
    logits = _logits(model, x, x.shape[0], name).cpu()
    return logits.argmax(1), finite_rows(logits)


def transferability(surrogate: nn.Module, victim: nn.Module, x, y: torch.Tensor | None = None,
                    x_adv=None, target: torch.Tensor | None = None, targeted: bool = False,
                    num_classes: int | None = None, batch_size: int = 1024) -> TransferRates:
    """Definition-3 transfer rate, raw ASR and fooling probability (docs/theory.md §3).

    Args:
        surrogate: the model ``F`` the adversarial examples were crafted on.
        victim: the target model ``G``.
        x: ``[N, *in_shape]`` clean inputs in [0, 1] with y ``[N]`` int64 labels in ``[0, C)``; or a
            ``TensorData`` / ``Dataset`` / ``DataLoader`` of ``(x, y)`` (then ``y=None``), walked one
            batch at a time (:func:`pyadvt.data.iter_batches`).
        x_adv: ``[N, *in_shape]`` adversarial inputs in [0, 1] aligned with ``x``, or a callable
            ``x_adv(xb, yb) -> [b, *in_shape]`` (e.g. an attack) applied to each batch, so that
            nothing beyond one batch of the dataset is held in memory.
        target: ``[N]`` int64 target labels in ``[0, C)`` (implies ``targeted=True``), as in the attacks' API.
        targeted: targeted rates with ``t = (y + 1) mod C`` unless ``target`` is given.
        num_classes: ``C`` for the default target (default: the victim's output width).
        batch_size: samples per forward pass (a DataLoader's larger batches are split).

    Finite values outside [0, 1], non-integer or out-of-range labels are refused with an error naming
    the argument; samples with a NaN/Inf pixel or non-finite logits are flagged invalid (``valid``),
    excluded from every rate, and reported in one warning.
    """
    from pyadvt.data.stream import as_data, first_batch, iter_batches

    check_batch_size(batch_size)
    if x_adv is None:
        raise InvalidValueError("'x_adv' is required: adversarial inputs aligned with 'x', or a callable "
                                "(xb, yb) -> x_adv batch such as an attack")
    attack = None if isinstance(x_adv, torch.Tensor) else x_adv
    if attack is not None and not callable(attack):
        raise InvalidValueError(f"'x_adv' must be a tensor or a callable (xb, yb) -> x_adv, got {type(x_adv).__name__}")
    in_memory = isinstance(x, torch.Tensor)
    if in_memory:  # everything checked before the work starts
        valid_x = check_images(x, "x", allow_nonfinite=True)
        if attack is None:
            check_like(x_adv, x, "x_adv", "x")
            valid_x = valid_x & check_images(x_adv, "x_adv", allow_nonfinite=True)
        check_labels(y, x.shape[0], "y", device=x.device)
    elif attack is None:
        raise InvalidValueError(f"'x_adv' must be a callable (xb, yb) -> x_adv when 'x' is a {type(x).__name__}; "
                                "adversarial tensors go with a tensor 'x'")
    data = as_data(x, y)
    x0, _ = first_batch(data)
    for model, name in ((surrogate, "surrogate"), (victim, "victim")):
        check_model_input(model, x0, "x", name, check_device=False)  # batches are moved to the model
    with torch.no_grad():  # output width of both models, before the work starts
        widths = {name: int(_logits(m, x0[:1], 1, name).shape[1]) for m, name in ((surrogate, "surrogate"),
                                                                                   (victim, "victim"))}
    C = min(widths.values())
    targeted = targeted or target is not None
    if targeted and target is None:
        if num_classes is None:
            num_classes = widths["victim"]
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise InvalidValueError(f"'num_classes' must be an int >= 2, got {num_classes!r}")
    if in_memory:
        check_labels(y, x.shape[0], "y", num_classes=C)
        if target is not None:
            check_labels(target, x.shape[0], "target", num_classes=C, device=x.device)
    cols: dict[str, list] = {k: [] for k in ("pf", "pg", "af", "ag", "y", "t", "valid")}
    start = 0
    for xb, yb in iter_batches(data, batch_size, labels=True):
        stop = start + xb.shape[0]
        if in_memory:
            vb = valid_x[start:stop].cpu()
        else:
            vb = check_images(xb, "x", allow_nonfinite=True).cpu()
            check_labels(yb, xb.shape[0], "y", num_classes=C)
        if target is not None:
            tb = target[start:stop]
            check_labels(tb, xb.shape[0], f"target[{start}:{stop}]", num_classes=C)
        elif targeted:
            tb = (yb + 1) % int(num_classes)
        ab = x_adv[start:stop] if attack is None else attack(xb, yb)
        if attack is not None:
            check_like(ab, xb, "x_adv", "x")
            vb = vb & check_images(ab, "x_adv", allow_nonfinite=True).cpu()
        for key, model, name, inp in (("pf", surrogate, "surrogate", xb), ("pg", victim, "victim", xb),
                                      ("af", surrogate, "surrogate", ab), ("ag", victim, "victim", ab)):
            pred, finite = _predictions(model, inp, name)
            cols[key].append(pred)
            vb = vb & finite
        cols["y"].append(yb.cpu())
        cols["valid"].append(vb)
        if targeted:
            cols["t"].append(tb.cpu())
        start = stop
    if target is not None and target.shape[0] != start:
        raise InvalidValueError(f"'target' must have shape [{start}] (one label per sample), got {tuple(target.shape)}")
    cat = {k: torch.cat(v) for k, v in cols.items() if v}
    warn_invalid(int((~cat["valid"]).sum()), start, "transferability")
    return rates_from_predictions(cat["pf"], cat["pg"], cat["af"], cat["ag"], cat["y"], cat["valid"],
                                  target=cat.get("t"))
