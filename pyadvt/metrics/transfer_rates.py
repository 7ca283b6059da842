"""Transfer success rates of adversarial examples (seed 001 Definition 3, docs/theory.md §3).

Untargeted, per sample: ``T_r = 1[F(x) = G(x) = y and F(x+delta) != y and G(x+delta) != y]``;
targeted: ``F(x+delta) = G(x+delta) = t`` instead, default ``t = (y + 1) mod C``. Reported:

* ``rate`` - mean of ``T_r`` over the samples *both* models classify correctly (Def. 3),
* ``asr`` - raw attack success rate on the target over all samples, ``1 - acc_G(x_adv)``
  (targeted: ``mean 1[G(x_adv) = t]``), the number in the paper's tables,
* ``fooling`` - the source's (surrogate's) fooling probability ``FP = 1 - acc_F(x_adv)`` (targeted: hit rate).

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x = torch.rand(6, 1, 2, 2); y = net(x).argmax(1)
    >>> r = attack_transferability(net, net, x, y, x_adv=x)
    >>> r.asr, r.rate, r.both_correct
    (0.0, 0.0, 6)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from pyadvt.metrics._legacy_arguments import keyword_only, move_positional, n_positional
from pyadvt.metrics._result_protocol import ValidMask, deprecated_field_alias, headline
from pyadvt.utils.deprecation import renamed_names, renamed_parameters
from pyadvt.utils.modes import evaluating, model_device
from pyadvt.utils.validation import (InvalidTypeError, InvalidValueError, check_batch_size, check_images, check_labels, check_like,
                                     check_logits, check_model_input, finite_rows, warn_invalid)

if TYPE_CHECKING:
    from pyadvt.metrics._pair_data import Data

__all__ = ["AttackTransferabilityResult", "attack_transferability", "predict", "rates_from_predictions"]


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
class AttackTransferabilityResult(ValidMask):
    """Transfer outcome of one (source, target, x_adv) triple (the source is the surrogate ``F``, the
    target the victim ``G``).

    Attributes:
        success: ``[N]`` bool per-sample ``T_r`` (False for invalid samples).
        both_correct: number of valid samples both models classify correctly (Def. 3's denominator).
        rate: ``Pr(T_r = 1 | F(x) = G(x) = y)`` (NaN when no sample qualifies).
        asr: target attack success rate over the valid samples.
        fooling: the source's (surrogate's) fooling probability ``FP`` over the valid samples.
        acc_source, acc_target: clean accuracies of the source and the target over the valid samples
            (``acc_surrogate``, the former name of ``acc_source``, is a deprecated read-only alias and
            constructor keyword).
        targeted: whether these are targeted rates.
        valid: ``[N]`` bool: ``x`` and ``x_adv`` finite and all four logit rows finite. An invalid
            sample has no defined prediction (NaN logits would argmax to class 0 and count as a
            transfer); it is excluded from every rate and counted in ``n_invalid``. ``None`` (a
            record built by hand) means all samples are valid: it is filled with an all-True ``[N]``.

    ``n_undefined`` is ``n_invalid`` (the protocol's name); the headline ``value`` is :attr:`rate`.
    Construction raises nothing.

    Returned by :func:`attack_transferability` (seed 001 Definition 3, docs/theory.md §3).

    Example:
        >>> import torch
        >>> r = AttackTransferabilityResult(success=torch.tensor([True, False]), both_correct=2, rate=0.5,
        ...                                 asr=0.5, fooling=1.0, acc_source=1.0, acc_target=1.0, targeted=False)
        >>> r.n_invalid, r.n_undefined, r.value, r.summary()["rate"]
        (0, 0, 0.5, 0.5)
    """

    success: torch.Tensor
    both_correct: int
    rate: float
    asr: float
    fooling: float
    acc_source: float
    acc_target: float
    targeted: bool
    valid: torch.Tensor | None = None

    acc_surrogate = deprecated_field_alias("acc_surrogate", "acc_source")

    def __post_init__(self):
        if self.valid is None:
            self.valid = torch.ones(self.success.shape, dtype=torch.bool, device=self.success.device)

    n_invalid = ValidMask.n_undefined
    value = headline("rate", "Definition 3's transfer rate")

    def summary(self) -> dict:
        return {"rate": self.rate, "asr": self.asr, "fooling": self.fooling, "both_correct": self.both_correct,
                "acc_source": self.acc_source, "acc_target": self.acc_target, "targeted": self.targeted,
                "n": int(self.success.numel()), "n_invalid": self.n_invalid, "n_undefined": self.n_undefined}


def _mean(hit: torch.Tensor, valid: torch.Tensor) -> float:
    n = int(valid.sum())
    return float((hit & valid).sum()) / n if n else float("nan")


@keyword_only("valid", "target_labels", renames={"target": "target_labels"})
def rates_from_predictions(pf: torch.Tensor, pg: torch.Tensor, af: torch.Tensor, ag: torch.Tensor, y: torch.Tensor, *,
                           valid: torch.Tensor | None = None,
                           target_labels: torch.Tensor | None = None) -> AttackTransferabilityResult:
    """Definition-3 rates (docs/theory.md §3, seed 001 Definition 3) from predictions ``[N]``.

    The one place the rates are computed: :func:`attack_transferability` and the ``pyadvt attack`` command
    (which predicts every budget of one attack pass) call it.

    Args:
        pf, pg: predictions of the source ``F`` and the target ``G`` on the clean inputs.
        af, ag: their predictions on the adversarial inputs.
        y: ``[N]`` true labels.
        valid: ``[N]`` bool, the samples that count (default: all).
        target_labels: ``[N]`` target labels of a targeted attack (``None``: untargeted rates).

    Example:
        >>> y = torch.tensor([0, 1, 2]); adv = torch.tensor([1, 1, 0])
        >>> rates_from_predictions(y, y, adv, adv, y).rate
        0.6666666666666666
    """
    y = y.cpu()
    valid = torch.ones_like(y, dtype=torch.bool) if valid is None else valid.cpu()
    pf, pg, af, ag = pf.cpu(), pg.cpu(), af.cpu(), ag.cpu()
    targeted = target_labels is not None
    if targeted:
        t = target_labels.cpu()
        hit_f, hit_g = af == t, ag == t
    else:
        hit_f, hit_g = af != y, ag != y
    both = (pf == y) & (pg == y) & valid
    success = both & hit_f & hit_g
    nb = int(both.sum())
    return AttackTransferabilityResult(success=success, both_correct=nb,
                                       rate=float(success.sum()) / nb if nb else float("nan"),
                                       asr=_mean(hit_g, valid), fooling=_mean(hit_f, valid),
                                       acc_source=_mean(pf == y, valid), acc_target=_mean(pg == y, valid),
                                       targeted=targeted, valid=valid)


def _predictions(model: nn.Module, x: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(argmax [b], finite [b])`` on the CPU for one batch."""
    logits = _logits(model, x, x.shape[0], name).cpu()
    return logits.argmax(1), finite_rows(logits)


def _accept_former_call(fn):
    """The former call ``transferability(surrogate, victim, x, y, x_adv, target, targeted, num_classes,
    batch_size)`` keeps working for one release, with a ``DeprecationWarning`` for each former name:
    its keyword ``target=`` held the *target labels* (now ``target_labels=``) while the second
    argument, now ``target``, is the target *model*. ``target=`` is read as labels when the target
    model is already given (by position or as ``victim=``), as the target model otherwise."""
    n = n_positional(fn)
    former = ("target_labels", "targeted", "num_classes", "batch_size")
    name = fn.__qualname__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> AttackTransferabilityResult:
        renames = []
        if "target" in kwargs and (len(args) >= 2 or "victim" in kwargs):
            renames.append(("target", "target_labels"))
        renames += [(old, new) for old, new in (("surrogate", "source"), ("victim", "target")) if old in kwargs]
        moved = {}
        for old, new in renames:
            if new in kwargs:
                raise InvalidTypeError(f"{name}() got both {old!r} (deprecated) and {new!r}; pass only {new!r}")
            what = "the target labels" if old == "target" else "a model"
            warnings.warn(f"{name}(): the keyword {old!r} for {what} is deprecated and will be removed in the next "
                          f"release; use {new!r}", DeprecationWarning, stacklevel=2)
            moved[new] = kwargs.pop(old)
        kwargs.update(moved)
        args, kwargs = move_positional(name, n, former, args, kwargs, 2)
        return fn(*args, **kwargs)

    return wrapper


def attack_transferability(source: nn.Module, target: nn.Module, x: Data, y: torch.Tensor | None = None,
                           x_adv: torch.Tensor | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                           *, target_labels: torch.Tensor | None = None, targeted: bool = False,
                           num_classes: int | None = None, batch_size: int = 1024) -> AttackTransferabilityResult:
    """Definition-3 transfer rate, raw attack success rate and fooling probability of ``x_adv``,
    crafted on ``source``, against ``target``.

    docs/theory.md §3; seed 001 (Zhang et al., S&P 2024) Definition 3: per sample
    ``T_r = 1[F(x) = G(x) = y and F(x_adv) != y and G(x_adv) != y]`` (targeted: both predict the
    target label), ``F`` the source and ``G`` the target.

    Args:
        source: the model ``F`` the adversarial examples were crafted on (the surrogate).
        target: the model ``G`` they are transferred to (the victim).
        x: ``[N, *in_shape]`` clean inputs in [0, 1] with y ``[N]`` int64 labels in ``[0, C)``; or a
            ``TensorData`` / ``Dataset`` / ``DataLoader`` of ``(x, y)`` (then ``y=None``), walked one
            batch at a time (:func:`pyadvt.data.iter_batches`).
        y: ``[N]`` int64 true labels (with a tensor ``x`` only).
        x_adv: ``[N, *in_shape]`` adversarial inputs in [0, 1] aligned with ``x``, or a callable
            ``x_adv(xb, yb) -> [b, *in_shape]`` (e.g. an attack) applied to each batch, so that
            nothing beyond one batch of the dataset is held in memory.
        target_labels: ``[N]`` int64 target labels in ``[0, C)`` (implies ``targeted=True``).
        targeted: targeted rates with ``t = (y + 1) mod C`` unless ``target_labels`` is given.
        num_classes: ``C`` for the default target labels (default: the target's output width).
        batch_size: samples per forward pass (a DataLoader's larger batches are split).

    Returns:
        :class:`AttackTransferabilityResult` (``.rate``, ``.asr``, ``.fooling``, ``.success [N]``, ``.valid [N]``,
        ``.summary()``).

    Raises:
        ValueError: ``x_adv`` missing or not aligned with ``x``, finite values outside [0, 1],
            out-of-range or misshapen labels, a bad ``num_classes`` / ``batch_size``.
        TypeError: non-integer labels, inputs of another dtype than the models, an unknown keyword.

    Samples with a NaN/Inf pixel or non-finite logits are flagged invalid (``valid``), excluded from
    every rate, and reported in one warning. The former name of this function, ``transferability``, works
    for one release with a ``DeprecationWarning``, and with it the former keywords (``surrogate``,
    ``victim``, and ``target=`` for the target labels).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> source = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> x = torch.rand(6, 1, 2, 2); y = source(x).argmax(1)
        >>> r = attack_transferability(source, source, x, y, x_adv=x, target_labels=(y + 1) % 3)
        >>> r.targeted, r.both_correct, r.rate
        (True, 6, 0.0)
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
    for model, name in ((source, "source"), (target, "target")):
        check_model_input(model, x0, "x", name, check_device=False)  # batches are moved to the model
    with torch.no_grad():  # output width of both models, before the work starts
        widths = {name: int(_logits(m, x0[:1], 1, name).shape[1]) for m, name in ((source, "source"),
                                                                                   (target, "target"))}
    C = min(widths.values())
    targeted = targeted or target_labels is not None
    if targeted and target_labels is None:
        if num_classes is None:
            num_classes = widths["target"]
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise InvalidValueError(f"'num_classes' must be an int >= 2, got {num_classes!r}")
    if in_memory:
        check_labels(y, x.shape[0], "y", num_classes=C)
        if target_labels is not None:
            check_labels(target_labels, x.shape[0], "target_labels", num_classes=C, device=x.device)
    cols: dict[str, list] = {k: [] for k in ("pf", "pg", "af", "ag", "y", "t", "valid")}
    start = 0
    for xb, yb in iter_batches(data, batch_size, labels=True):
        stop = start + xb.shape[0]
        if in_memory:
            vb = valid_x[start:stop].cpu()
        else:
            vb = check_images(xb, "x", allow_nonfinite=True).cpu()
            check_labels(yb, xb.shape[0], "y", num_classes=C)
        if target_labels is not None:
            tb = target_labels[start:stop]
            check_labels(tb, xb.shape[0], f"target_labels[{start}:{stop}]", num_classes=C)
        elif targeted:
            tb = (yb + 1) % int(num_classes)
        ab = x_adv[start:stop] if attack is None else attack(xb, yb)
        if attack is not None:
            check_like(ab, xb, "x_adv", "x")
            vb = vb & check_images(ab, "x_adv", allow_nonfinite=True).cpu()
        for key, model, name, inp in (("pf", source, "source", xb), ("pg", target, "target", xb),
                                      ("af", source, "source", ab), ("ag", target, "target", ab)):
            pred, finite = _predictions(model, inp, name)
            cols[key].append(pred)
            vb = vb & finite
        cols["y"].append(yb.cpu())
        cols["valid"].append(vb)
        if targeted:
            cols["t"].append(tb.cpu())
        start = stop
    if target_labels is not None and target_labels.shape[0] != start:
        raise InvalidValueError(f"'target_labels' must have shape [{start}] (one label per sample), got "
                                f"{tuple(target_labels.shape)}")
    cat = {k: torch.cat(v) for k, v in cols.items() if v}
    warn_invalid(int((~cat["valid"]).sum()), start, "attack_transferability")
    return rates_from_predictions(cat["pf"], cat["pg"], cat["af"], cat["ag"], cat["y"], valid=cat["valid"],
                                  target_labels=cat.get("t"))


AttackTransferabilityResult.__init__ = renamed_parameters(acc_surrogate="acc_source")(  # type: ignore[method-assign]
    AttackTransferabilityResult.__init__)

#: the former name ``transferability``: it also accepts the former keywords (one release)
_former_transferability = _accept_former_call(attack_transferability)
_RENAMED = {"transferability": "attack_transferability", "TransferRates": "AttackTransferabilityResult"}
__getattr__ = renamed_names(__name__, _RENAMED, former={"transferability": _former_transferability})
