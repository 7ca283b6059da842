"""Robustness transfer from a representation to a linear head (seed 004, docs/theory.md §5).

Model ``f(x) = W g(x) + b`` with representation ``g`` (penultimate layer) and rows ``w_j`` of ``W``.

* **AS score** (seed 004 eq. 2): ``AS_eps(g, S) = mean_i max_{||delta|| <= eps} ||g(x_i + delta) - g(x_i)||``,
  the inner max estimated by the representation attack (:class:`pyadvt.attacks.representation.RepresentationAttack`).
* **The record** :func:`evaluate_robustness_transfer`: one run of the loss adversary and of the
  representation attack, kept per sample (:class:`RobustnessRecord`), from which seed 004's Lemma 1,
  Theorem 1 and the Theorem-2 criterion are read: those bounds are in :mod:`pyadvt.bounds.seed004`
  (``record.lemma1(q)``, ``record.theorem1()``, ``record.theorem2()`` call them).

Estimating the inner max: any point of the ball gives a lower bound of the max, so every AS value
here is a **lower bound** produced by a named attack (``ASScore.attack``: PGD steps, restarts, the
convergence rule, how many restarts ran). The default attack is :class:`ConvergedRepresentationAttack`
(100 PGD steps, up to 5 random restarts, a sample stops restarting once a restart raises its shift by
less than ``rtol = 0.5 %``). The default sensitivity of Lemma 1's RHS and of the Theorem-2 criterion is
the paper's: the representation attack's shift alone (``sensitivity="as"``, seed 004 eq. 2).

``sensitivity="max"`` (a named option) takes, per sample, the larger of that shift and the loss
adversary's own shift. Caveat: that makes Lemma 1 hold deterministically (its proof bounds the loss
change at that very ``x_adv``) and makes ``fulfilled_but_not_robust`` 0 **by construction** against
the loss adversary, because the adversary used to test robustness is then part of the sensitivity;
it cannot test the paper's claim that fulfilled points are robust. With ``"as"``, a fulfilled but
broken point is possible and is reported: it means the representation attack underestimated the max.

Example:
    >>> from pyadvt.models import SplitModel
    >>> _ = torch.manual_seed(0)
    >>> net = SplitModel([nn.Flatten(1), nn.Linear(4, 3)], nn.Linear(3, 2))  # features(x) [N, 3], head 3 -> 2
    >>> rec = evaluate_robustness_transfer(net, torch.rand(6, 1, 2, 2), torch.tensor([0, 1] * 3), eps=0.05,
    ...                                    attack=lambda x, y: x)  # no loss change: lhs = 0 <= AS
    >>> rec.lemma1(q="inf").held, rec.lemma1(q=2).held
    (True, True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.attacks.representation import RepresentationAttack, representation_distance, representation_fn
from pyadvt.metrics._result_protocol import ValidMask, headline

if TYPE_CHECKING:
    from pyadvt.bounds.seed004 import Lemma1Result, Theorem2Result
    from pyadvt.metrics._pair_data import Data
from pyadvt.utils.modes import evaluating, model_device
from pyadvt.utils.validation import (check_batch_size, check_images, check_labels, check_model_input, finite_rows,
                                     warn_invalid)

__all__ = ["ASScore", "ConvergedRepresentationAttack", "SENSITIVITIES", "RobustnessRecord", "as_score", "head_weights",
           "per_sample_loss", "evaluate_robustness_transfer"]

_LOSSES = ("ce", "mse")
SENSITIVITIES = ("as", "max")


def head_weights(model: nn.Module, head: nn.Linear | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W [C, d], b [C])`` of the model's linear head (``model.head`` unless ``head`` is given).

    A head without bias gives ``b = 0``.
    """
    head = getattr(model, "head", None) if head is None else head
    if not isinstance(head, nn.Linear):
        raise ValueError("the model needs a linear head: pass a split model (with 'head: nn.Linear') or 'head='")
    W = head.weight.detach()
    b = head.bias.detach() if head.bias is not None else torch.zeros(W.shape[0], device=W.device, dtype=W.dtype)
    return W, b


def per_sample_loss(logits: torch.Tensor, y: torch.Tensor, loss: str = "ce") -> torch.Tensor:
    """``[B]`` softmax cross-entropy (``y`` int labels ``[B]``) or ``||logits - y||_2`` (``y`` ``[B, C]``)."""
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if loss == "mse":
        return (logits - y.to(logits.dtype)).flatten(1).norm(dim=1)
    raise ValueError(f"'loss' must be one of {_LOSSES}, got {loss!r}")


@dataclass
class ASScore(ValidMask):
    """Adversarial sensitivity: per-sample shifts ``[N]`` and their mean (seed 004 eq. 2).

    ``valid [N]`` bool flags the samples whose input and clean representation are finite (default:
    the finite entries of ``per_sample``); invalid samples have ``per_sample = NaN``, are counted in
    ``n_invalid`` and skipped by ``score`` (NaN when no sample is valid, never a "perfectly robust" 0).
    The score is a lower bound of eq. 2 (an attack's estimate of each inner max); ``attack`` describes
    the attack that produced it (``summary()["bound"] == "lower"``). ``n_undefined`` is ``n_invalid``
    (the protocol's name); the headline ``value`` is :attr:`score`.
    """

    per_sample: torch.Tensor
    eps: float
    norm: str
    valid: torch.Tensor | None = None
    attack: dict | None = None

    def __post_init__(self):
        if self.valid is None:
            self.valid = torch.isfinite(self.per_sample)

    n_invalid = ValidMask.n_undefined
    value = headline("score", "the AS score")

    @property
    def score(self) -> float:
        n = int(self.valid.sum())
        return float(self.per_sample[self.valid].double().mean()) if n else float("nan")

    def summary(self) -> dict:
        return {"as_score": self.score, "bound": "lower", "attack": self.attack, "eps": self.eps, "norm": self.norm,
                "n": int(self.per_sample.numel()), "n_invalid": self.n_invalid, "n_undefined": self.n_undefined}


@dataclass
class RobustnessRecord(ValidMask):
    """Per-sample quantities of one evaluation; Lemma 1 / Theorem 2 / AS are summaries of it.

    Tensors ``[N]`` unless noted: ``clean_loss``, ``adv_loss`` (loss adversary), ``rep_shift`` (representation
    attack ``||g(x+d) - g(x)||``), ``adv_shift`` (the loss adversary's own shift), ``tight`` (per-sample
    ``||W^T (p(x_adv) - e_y)|| * adv_shift``, ``legacy_tight``), ``feats`` ``[N, d]`` clean representations,
    ``correct`` / ``adv_correct`` (classification only), ``W`` ``[C, d]``, ``b`` ``[C]``.

    ``valid`` ``[N]`` bool: True where ``clean_loss``, ``adv_loss``, ``rep_shift``, ``adv_shift``, ``tight``
    and the sample's ``feats`` row are all finite (the inputs are checked finite, so a False entry
    comes from the model, e.g. NaN weights); ``n_undefined`` counts the others. The headline ``value``
    is the AS score of :meth:`as_score` (a lower bound, over the finite ``rep_shift`` entries).
    """

    eps: float
    norm: str
    loss: str
    clean_loss: torch.Tensor
    adv_loss: torch.Tensor
    rep_shift: torch.Tensor
    adv_shift: torch.Tensor
    tight: torch.Tensor
    feats: torch.Tensor
    y: torch.Tensor
    correct: torch.Tensor | None
    adv_correct: torch.Tensor | None
    W: torch.Tensor
    b: torch.Tensor
    extra: dict = field(default_factory=dict)
    sensitivity_rule: str = "as"
    rep_attack_info: dict | None = None

    def __post_init__(self):
        if self.sensitivity_rule not in SENSITIVITIES:
            raise ValueError(f"'sensitivity' must be one of {SENSITIVITIES}, got {self.sensitivity_rule!r}")

    @property
    def sensitivity(self) -> torch.Tensor:
        """Per-sample estimate of the inner max used by Lemma 1's RHS and Theorem 2: ``rep_shift``
        (``sensitivity_rule="as"``, the paper's AS) or ``max(rep_shift, adv_shift)`` (``"max"``; see the
        module docstring for why that makes Theorem 2 hold by construction against the loss adversary)."""
        if self.sensitivity_rule == "max":
            return torch.maximum(self.rep_shift, self.adv_shift)
        return self.rep_shift

    @property
    def valid(self) -> torch.Tensor:
        """``[N]`` bool: every per-sample quantity and the feature row of the sample are finite."""
        ok = finite_rows(self.feats)
        for t in (self.clean_loss, self.adv_loss, self.rep_shift, self.adv_shift, self.tight):
            ok = ok & torch.isfinite(t)
        return ok

    @property
    def value(self) -> float:
        """The headline number: the AS score (``as_score().score``, a lower bound of seed 004 eq. 2)."""
        return self.as_score().score

    def as_score(self) -> ASScore:
        """The paper's AS (representation attack alone), a lower bound; ``attack`` names the attack."""
        return ASScore(self.rep_shift, self.eps, self.norm, attack=self.rep_attack_info)

    def summary(self) -> dict:
        """Plain-Python summary: the ball, loss and sensitivity rule, the counts, the AS score (``value``) and
        the mean clean / adversarial loss and (``loss="ce"``) accuracies over all N samples (Lemma 1's means;
        ``None`` for a regression)."""
        ce = self.correct is not None
        return {"eps": self.eps, "norm": self.norm, "loss": self.loss, "sensitivity": self.sensitivity_rule,
                "n": int(self.y.shape[0]), "n_undefined": self.n_undefined, "as_score": self.value,
                "as_bound": "lower", "clean_loss": float(self.clean_loss.double().mean()),
                "adv_loss": float(self.adv_loss.double().mean()),
                "clean_accuracy": float(self.correct.double().mean()) if ce else None,
                "robust_accuracy": float((self.correct & self.adv_correct).double().mean()) if ce else None}

    def lemma1(self, q: float | str = "inf", lipschitz: float | None = None,
               w_norm: float | None = None) -> Lemma1Result:
        """Lemma 1 with the ``q``-matched ``L`` and ``||W||`` (overridable, e.g. to show a wrong one fails):
        :func:`pyadvt.bounds.seed004.lemma1_from_record`."""
        from pyadvt.bounds.seed004 import lemma1_from_record

        return lemma1_from_record(self, q, lipschitz, w_norm)

    def theorem2(self, sensitivity: torch.Tensor | None = None) -> Theorem2Result:
        """Theorem-2 criterion with ``sensitivity`` ``[N]`` (default :attr:`sensitivity`):
        :func:`pyadvt.bounds.seed004.theorem2_from_record`."""
        from pyadvt.bounds.seed004 import theorem2_from_record

        return theorem2_from_record(self, sensitivity)

    def theorem1(self, rho: float = 0.05, bound: float | None = None, q: float | str = "inf") -> dict:
        """Theorem 1's bound next to the observed gap (:func:`pyadvt.bounds.theorem1_bound`); ``bound`` ``B``
        defaults to the largest adversarial loss (only indicative: softmax-CE is unbounded)."""
        from pyadvt.bounds.seed004 import theorem1_bound

        return theorem1_bound(self.lemma1(q), n=int(self.y.shape[0]), rho=rho,
                              bound=float(self.adv_loss.max()) if bound is None else bound)


def _default_attack(model: nn.Module, eps: float, norm: str, steps: int, seed: int, loss: str):
    if loss != "ce":
        raise ValueError("loss='mse' needs a loss adversary: pass attack=callable(x, y) -> x_adv maximising "
                         "||f(x + delta) - y|| in the ball")
    from pyadvt.attacks.pgd import PGD

    return PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, norm=norm, random_start=True, seed=seed)


class ConvergedRepresentationAttack:
    """The default AS attack: PGD on ``||g(x + d) - g(x)||`` with restarts and a convergence rule.

    Restart 0 runs :class:`~pyadvt.attacks.representation.RepresentationAttack` (``steps`` PGD steps,
    step ``2.5 eps / steps``, random start) on every sample; each further restart (a new random start,
    up to ``restarts`` in all) runs only on the samples still *active*: a sample stops once a restart
    raised its best shift by less than ``rtol`` times that shift (or by nothing). The per-sample best
    over all restarts is kept, so the result is a lower bound of the inner max of seed 004 eq. 2
    (docs/theory.md §5) that only grows with ``steps`` / ``restarts``. The rule is per sample and the
    starts depend only on ``(seed, restart, sample)``, so results do not depend on the batch.

    After a call: ``last_distance [B]``, ``last_restarts [B]`` (restarts run per sample) and
    :meth:`info` (the attack's description, stored with every AS score).

    Example:
        >>> g = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> atk = ConvergedRepresentationAttack(g, 0.1, steps=10, restarts=3, features=False)
        >>> x_adv = atk(torch.rand(5, 1, 2, 2))
        >>> tuple(atk.last_distance.shape), int(atk.last_restarts.max()) <= 3
        ((5,), True)
    """

    def __init__(self, model: nn.Module, eps: float, steps: int = 100, restarts: int = 5, rtol: float = 0.005, *,
                 alpha: float | None = None, norm: str = "linf", random_start: bool = True, seed: int = 0,
                 features: bool | None = None):
        if not isinstance(restarts, int) or isinstance(restarts, bool) or restarts < 1:
            raise ValueError(f"'restarts' must be a positive int, got {restarts!r}")
        if not (isinstance(rtol, (int, float)) and 0 <= rtol < 1):
            raise ValueError(f"'rtol' must be in [0, 1), got {rtol!r}")
        self.attacks = [RepresentationAttack(model, eps, steps=steps, alpha=alpha, norm=norm,
                                             random_start=random_start, seed=seed + 104_729 * r, features=features)
                        for r in range(restarts if random_start else 1)]
        self.g = self.attacks[0].g
        self.eps, self.steps, self.restarts, self.rtol, self.norm = float(eps), steps, restarts, float(rtol), \
            self.attacks[0].norm
        self.alpha, self.random_start, self.seed = alpha, random_start, seed
        self.last_distance: torch.Tensor | None = None
        self.last_restarts: torch.Tensor | None = None
        self._ran: list[int] = []

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        best = self.attacks[0](x)
        best_d = self.attacks[0].last_distance.clone()
        ran = torch.ones(x.shape[0], dtype=torch.long, device=best_d.device)
        active = torch.ones_like(ran, dtype=torch.bool)
        for atk in self.attacks[1:]:
            idx = active.nonzero().flatten()
            if idx.numel() == 0:
                break
            cand = atk(x[idx])
            d = atk.last_distance
            ran[idx] += 1
            gain = d - best_d[idx]
            better = gain > 0
            best[idx[better]] = cand[better].to(best.dtype)
            best_d[idx[better]] = d[better]
            active[idx] = gain > self.rtol * best_d[idx]
        self.last_distance, self.last_restarts = best_d, ran
        self._ran.append(int(ran.max()))
        return best

    def info(self) -> dict:
        """The attack that produced the AS estimate (stored next to every AS score, a lower bound)."""
        return {"attack": "representation PGD, restarts until converged", "steps": self.steps,
                "alpha": self.alpha if self.alpha is not None else f"2.5 eps / {self.steps}", "norm": self.norm,
                "max_restarts": self.restarts, "rtol": self.rtol, "random_start": self.random_start,
                "restarts_run_max": max(self._ran, default=0), "seed": self.seed}


def _attack_info(atk) -> dict:
    if hasattr(atk, "info"):
        return atk.info()
    if isinstance(atk, RepresentationAttack):
        return {"attack": "representation FGSM (legacy, one step)" if atk.legacy_fgsm else "representation PGD",
                "steps": 1 if atk.legacy_fgsm else atk.steps, "restarts": atk.restarts, "norm": atk.norm,
                "seed": atk.seed}
    return {"attack": type(atk).__name__}


def _batches(n: int, batch_size: int, progress: bool, desc: str):
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, leave=False)
    return starts


def evaluate_robustness_transfer(
    model: nn.Module, x: Data, y: torch.Tensor | None, eps: float, *, norm: str = "linf", loss: str = "ce",
    steps: int = 20, rep_steps: int = 100, restarts: int = 5, rtol: float = 0.005, seed: int = 0,
    attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    rep_attack: RepresentationAttack | None = None, legacy_fgsm: bool = False, head: nn.Linear | None = None,
    sensitivity: str = "as", batch_size: int = 256, progress: bool = False,
) -> RobustnessRecord:
    """Attack ``model`` (loss adversary) and its representation (AS attack) once; return per-sample records.

    Args:
        model: split model ``f = head(features(x))`` (``features(x) -> [B, d]``, ``head: nn.Linear``).
        x: ``[N, *in_shape]`` inputs in ``[0, 1]``. y: ``[N]`` int labels (``loss="ce"``) or ``[N, C]`` targets.
            With ``loss="ce"``, ``x`` may also be a ``TensorData`` / ``Dataset`` / ``DataLoader`` of
            ``(x, y)`` (then ``y=None``), walked one batch at a time (:func:`pyadvt.data.iter_batches`);
            the record keeps per-sample values and features ``[N, d]``, never the images.
        eps, norm: the common ball of both attacks (``"linf"`` or ``"l2"``).
        loss: ``"ce"`` (softmax cross-entropy) or ``"mse"`` (``||f(x) - y||_2``).
        steps: PGD steps of the loss adversary (default :class:`pyadvt.attacks.PGD`, step ``2.5 eps / steps``).
        rep_steps, restarts, rtol: the default representation attack, :class:`ConvergedRepresentationAttack`
            (100 PGD steps, up to 5 restarts, a sample stops once a restart gains < 0.5 %).
        attack: custom loss adversary ``attack(x, y) -> x_adv`` (must stay in the ball).
        rep_attack: custom representation attack; ``legacy_fgsm`` selects the authors' one-step version.
        sensitivity: ``"as"`` (default, the paper's AS from the representation attack alone) or ``"max"``
            (per-sample max with the loss adversary's shift: Theorem 2 then holds *by construction*
            against that adversary, see the module docstring) for Lemma 1's RHS and Theorem 2.

    Returns:
        a :class:`RobustnessRecord` of per-sample ``[N]`` losses, shifts and correctness and the
        features ``[N, d]``, from which Lemma 1, Theorem 1, Theorem 2 and the AS score of seed 004
        (docs/theory.md §5) are read.

    Raises:
        TypeError: when ``x``/``y`` are not tensors (nor ``x`` a data source with ``y=None``), when
            ``loss="ce"`` gets non-integer labels, when ``x`` is not floating point or its dtype does
            not match the model's (``InvalidTypeError``), or when ``model`` is not an ``nn.Module``.
        ValueError: when ``loss``, ``sensitivity`` or ``norm`` is not one of its names, a data-source
            ``x`` comes with ``loss="mse"``, ``x`` and ``y`` hold different or zero numbers of samples,
            ``x`` holds non-finite values, ``batch_size``, ``steps``, ``restarts``, ``rtol`` or ``eps``
            is out of range, a label is outside ``[0, C)``, ``x`` and the model are on different devices,
            the model has no linear head (``head`` / ``model.head``) or no ``features``, or
            ``loss="mse"`` comes without an ``attack``.

    Example:
        >>> from pyadvt.models import SplitModel
        >>> _ = torch.manual_seed(0)
        >>> rec = evaluate_robustness_transfer(SplitModel([nn.Flatten(1), nn.Linear(4, 3)], nn.Linear(3, 2)),
        ...                                    torch.rand(6, 1, 2, 2), torch.tensor([0, 1] * 3), eps=0.05, steps=2,
        ...                                    rep_steps=2, restarts=1)
        >>> tuple(rec.feats.shape), tuple(rec.valid.shape), rec.lemma1().held
        ((6, 3), (6,), True)
    """
    from pyadvt.data.stream import as_data, first_batch, is_data, iter_batches

    streaming = is_data(x) and not isinstance(x, torch.Tensor)
    if loss not in _LOSSES:
        raise ValueError(f"'loss' must be one of {_LOSSES}, got {loss!r}")
    if sensitivity not in SENSITIVITIES:
        raise ValueError(f"'sensitivity' must be one of {SENSITIVITIES}, got {sensitivity!r}")
    if streaming:
        if loss != "ce":
            raise ValueError("a dataset 'x' needs loss='ce' (its labels are class indices); pass tensors x and y "
                             "[N, C] for loss='mse'")
        data = as_data(x, y)
        x0 = first_batch(data)[0]
    else:
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError("'x' and 'y' must be torch.Tensors (or 'x' a TensorData / Dataset / DataLoader and y=None)")
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"'x' ({x.shape[0]}) and 'y' ({y.shape[0]}) must hold the same non-zero number of samples")
        if loss == "ce" and y.dtype not in (torch.int64, torch.int32):
            raise TypeError("loss='ce' needs integer class labels 'y' [N]")
        x0 = x
    # finite only: the [0, 1] range is enforced by the default PGD adversary; a custom attack may work on
    # an unclipped space (e.g. the exact worst case of a linear model)
    check_images(x0, "x", lo=-math.inf, hi=math.inf)
    check_batch_size(batch_size)
    check_model_input(model, x0, "x", check_device=False)
    g = representation_fn(model, True)
    W, b = head_weights(model, head)
    if loss == "ce" and not streaming:
        check_labels(y, x.shape[0], "y", num_classes=W.shape[0])
    dev = model_device(model)
    if streaming:
        batches = iter_batches(data, batch_size, device=dev, progress=progress, desc="robustness-transfer",
                               labels=True)
    else:
        batches = ((x[s:s + batch_size].to(dev), y[s:s + batch_size].to(dev))
                   for s in _batches(x.shape[0], batch_size, progress, "robustness-transfer"))
    atk = attack if attack is not None else _default_attack(model, eps, norm, steps, seed, loss)
    if rep_attack is not None:
        ratk = rep_attack
    elif legacy_fgsm:
        ratk = RepresentationAttack(model, eps, norm=norm, seed=seed, features=True, legacy_fgsm=True)
    else:
        ratk = ConvergedRepresentationAttack(model, eps, steps=rep_steps, restarts=restarts, rtol=rtol, norm=norm,
                                             seed=seed, features=True)
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in
                                           ("cl", "al", "rs", "as", "ti", "fe", "co", "ac", "y")}
    for xb, yb in batches:
        if streaming:
            check_images(xb, "x", lo=-math.inf, hi=math.inf)
            check_labels(yb, xb.shape[0], "y", num_classes=W.shape[0])
        cols["y"].append(yb)
        x_adv = atk(xb, yb).detach()
        x_rep = ratk(xb)
        with evaluating(model), torch.no_grad():
            fe, fa = g(xb), g(x_adv)
            lc, la = fe @ W.T + b, fa @ W.T + b
            cols["cl"].append(per_sample_loss(lc, yb, loss))
            cols["al"].append(per_sample_loss(la, yb, loss))
            cols["rs"].append(representation_distance(g, xb, x_rep))
            shift = (fa - fe).norm(dim=1)
            cols["as"].append(shift)
            if loss == "ce":
                resid = F.softmax(la, dim=1) - F.one_hot(yb, W.shape[0]).to(la.dtype)
                cols["co"].append(lc.argmax(1) == yb)
                cols["ac"].append(la.argmax(1) == yb)
            else:
                resid = (la - yb.to(la.dtype)) / (la - yb.to(la.dtype)).norm(dim=1, keepdim=True).clamp_min(1e-12)
            cols["ti"].append((resid @ W).norm(dim=1) * shift)
            cols["fe"].append(fe)
    cat = {k: (torch.cat(v) if v else None) for k, v in cols.items()}
    return RobustnessRecord(float(eps), norm, loss, cat["cl"], cat["al"], cat["rs"], cat["as"], cat["ti"], cat["fe"],
                            cat["y"], cat["co"], cat["ac"], W, b, sensitivity_rule=sensitivity,
                            rep_attack_info=_attack_info(ratk))


def as_score(model: nn.Module, x: Data, eps: float, *, norm: str = "linf", steps: int = 100,
             alpha: float | None = None, random_start: bool = True, restarts: int = 5, rtol: float = 0.005,
             seed: int = 0, legacy_fgsm: bool = False, features: bool | None = None, batch_size: int = 256,
             progress: bool = False) -> ASScore:
    """AS score ``(1/|S|) sum_i max_{||delta|| <= eps} ||g(x_i + delta) - g(x_i)||`` (seed 004 eq. 2).

    Args:
        model: representation ``g`` or a split model (``features`` used).
        x: ``[N, *in_shape]`` unlabeled inputs in [0, 1], or a ``TensorData`` / ``Dataset`` /
            ``DataLoader`` (labels ignored), walked one batch at a time (:func:`pyadvt.data.iter_batches`).
        eps, norm, steps, alpha, random_start, restarts, rtol, seed: the representation attack,
            :class:`ConvergedRepresentationAttack` (default 100 steps, up to 5 restarts until a restart
            gains < 0.5 %); ``legacy_fgsm`` the authors' one signed step instead. The score is a lower
            bound of eq. 2 and ``ASScore.attack`` names the attack that produced it.
        features: ``True`` uses ``model.features``, ``False`` the model's output itself; ``None`` (default)
            uses ``features`` when the model has it and otherwise warns that the output is taken as ``g``
            (a classifier's logits are not its representation: wrap it with :func:`pyadvt.models.wrap`).

    A sample with a NaN/Inf pixel, or whose clean representation is non-finite (e.g. NaN weights), has no
    defined shift: it is flagged invalid (``valid``), reported in one warning and skipped by the mean.

    Raises:
        TypeError: when ``x`` is not floating point, or not a tensor nor a data source, when its dtype
            does not match the model's (``InvalidTypeError``), or when ``model`` is not an ``nn.Module``.
        ValueError: when ``x`` is not a non-empty batch or has finite values outside ``[0, 1]``, when
            ``batch_size``, ``steps``, ``restarts``, ``rtol``, ``eps`` or ``alpha`` is out of range or
            ``norm`` is not ``"linf"``/``"l2"``, when ``x`` and the model are on different devices, or
            when ``features=True`` but the model has no ``features``.

    Example:
        >>> g = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False))
        >>> with torch.no_grad(): _ = g[1].weight.copy_(torch.tensor([[1., 0, 0, 0], [0, 0, 0, 0]]))
        >>> round(as_score(g, torch.full((3, 1, 2, 2), 0.5), eps=0.1, steps=3, features=False).score, 4)
        0.1
    """
    from pyadvt.data.stream import first_batch, iter_batches

    streaming = not isinstance(x, torch.Tensor)
    valid = None if streaming else check_images(x, "x", allow_nonfinite=True)
    check_batch_size(batch_size)
    x0 = first_batch(x)[0] if streaming else x
    check_model_input(model, x0, "x", check_device=False)
    if features is None and not callable(getattr(model, "features", None)):
        warnings.warn(f"as_score: {type(model).__name__} has no 'features', so its output is taken as the "
                      "representation g; if it returns logits, wrap it (pyadvt.models.wrap(model), or a hub model "
                      "from pyadvt.models.from_torchvision / from_timm) to measure its penultimate layer, or pass "
                      "features=False to confirm the output is the representation", UserWarning, stacklevel=2)
    if legacy_fgsm:
        atk = RepresentationAttack(model, eps, norm=norm, seed=seed, features=features, legacy_fgsm=True)
    else:
        atk = ConvergedRepresentationAttack(model, eps, steps=steps, restarts=restarts, rtol=rtol, alpha=alpha,
                                            norm=norm, random_start=random_start, seed=seed, features=features)
    dev = model_device(model)
    parts, oks = [], []
    start = 0
    for xb, _ in iter_batches(x, batch_size, device=dev, progress=progress, desc="AS score", labels=False):
        if streaming:
            ok = check_images(xb, "x", allow_nonfinite=True).to(dev)
        else:
            ok = valid[start:start + xb.shape[0]].to(dev)
        start += xb.shape[0]
        xb = torch.where(ok.view(-1, *([1] * (xb.dim() - 1))), xb, torch.zeros_like(xb))  # attack finite rows only
        with evaluating(model), torch.no_grad():
            ok = ok & finite_rows(atk.g(xb))
        atk(xb)
        parts.append(torch.where(ok, atk.last_distance, torch.full_like(atk.last_distance, math.nan)))
        oks.append(ok)
    valid = torch.cat(oks)
    warn_invalid(int((~valid).sum()), int(valid.numel()), "as_score",
                 "a NaN/Inf input or a non-finite representation")
    return ASScore(torch.cat(parts), float(eps), atk.norm, valid, attack=_attack_info(atk))


#: the seed-004 bounds moved to pyadvt.bounds.seed004 (docs/architecture.md §1: metrics measure, bounds
#: evaluate both sides of an inequality); these names resolve here for one release, with a DeprecationWarning
_MOVED_TO_BOUNDS = ("Lemma1Result", "Theorem2Result", "head_norm", "hoeffding_term", "lemma1", "lipschitz_constant",
                    "normalized_margins", "theorem1_bound", "theorem2_criterion")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_BOUNDS:
        from pyadvt.bounds import seed004

        warnings.warn(f"pyadvt.metrics.robustness_transfer.{name} is deprecated and will be removed in the next "
                      f"release; import it from pyadvt.bounds.seed004", DeprecationWarning, stacklevel=2)
        return getattr(seed004, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
