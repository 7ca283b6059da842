"""Robustness transfer from a representation to a linear head (seed 004, docs/theory.md §5).

Model ``f(x) = W g(x) + b`` with representation ``g`` (penultimate layer) and rows ``w_j`` of ``W``.

* **AS score** (seed 004 eq. 2): ``AS_eps(g, S) = mean_i max_{||delta|| <= eps} ||g(x_i + delta) - g(x_i)||``,
  the inner max estimated by the representation attack (:class:`pyadvt.attacks.representation.RepresentationAttack`).
* **Lemma 1** (finite-sample Theorem 1): with ``delta_i`` maximising the loss of the full model,
  ``LHS = |mean_i loss(f(x_i + delta_i), y_i) - mean_i loss(f(x_i), y_i)| / (L ||W||) <= AS``, where the loss is
  L-Lipschitz in the logits' ``q``-norm and ``||W||`` the matching operator norm from the representation's L2
  norm: ``q = inf``: ``max_j ||w_j||`` with ``L = 2`` for softmax-CE (seed 004 Lemma 3); ``q = 2``: spectral norm,
  ``L = sqrt(2)`` for softmax-CE, ``L = 1`` for the regression loss ``||f(x) - y||``.
* **Theorem 1**: ``|E loss_adv - E loss| <= L ||W|| AS + B sqrt(ln(2/rho) / (2n))`` with probability ``1 - rho``.
* **Theorem 2** (eq. 1): ``argmax(W g(x) + b)`` is robust at ``(x, y)`` if for all ``j != y``
  ``max_delta ||g(x + delta) - g(x)|| < ((w_y - w_j) . g(x) + b_y - b_j) / ||w_y - w_j||``.

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
    from pyadvt.metrics._pair_data import Data
from pyadvt.utils.modes import evaluating, model_device
from pyadvt.utils.validation import (check_batch_size, check_images, check_labels, check_model_input, finite_rows,
                                     warn_invalid)

__all__ = [
    "ASScore", "ConvergedRepresentationAttack", "SENSITIVITIES", "Lemma1Result", "Theorem2Result", "RobustnessRecord", "as_score", "head_weights", "head_norm",
    "lipschitz_constant", "per_sample_loss", "normalized_margins", "hoeffding_term", "theorem1_bound",
    "evaluate_robustness_transfer", "lemma1", "theorem2_criterion",
]

_LOSSES = ("ce", "mse")
SENSITIVITIES = ("as", "max")


def _q(q) -> str:
    if q in ("inf", math.inf, float("inf")):
        return "inf"
    if q in (2, "2", 2.0):
        return "2"
    raise ValueError(f"'q' must be 'inf' or 2, got {q!r}")


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


def head_norm(W: torch.Tensor, q="inf") -> float:
    """Operator norm of ``W [C, d]`` from the representation's L2 norm to the logits' ``q``-norm.

    ``q = inf``: ``max_j ||w_j||_2`` (max row norm); ``q = 2``: spectral norm ``||W||_2`` (seed 004 Lemma 2).

    Example:
        >>> W = torch.tensor([[3., 4.], [0., 1.]])
        >>> head_norm(W, "inf"), round(head_norm(W, 2), 4)
        (5.0, 5.0645)
    """
    W = W.detach().double()
    if _q(q) == "inf":
        return float(W.norm(dim=1).max())
    return float(torch.linalg.matrix_norm(W, ord=2))


def lipschitz_constant(loss: str = "ce", q="inf") -> float:
    """Lipschitz constant of ``loss`` in the logits' ``q``-norm (docs/theory.md §5).

    Softmax-CE: its logit gradient ``p - e_y`` has L1 norm ``2 (1 - p_y) <= 2`` (dual of ``q = inf``, seed 004
    Lemma 3) and L2 norm ``<= sqrt(2)`` (``q = 2``). The regression loss ``||f(x) - y||_2`` is 1-Lipschitz in
    the L2 norm (reverse triangle inequality); with ``q = inf`` it is not covered (raises).
    """
    if loss not in _LOSSES:
        raise ValueError(f"'loss' must be one of {_LOSSES}, got {loss!r}")
    q = _q(q)
    if loss == "ce":
        return 2.0 if q == "inf" else math.sqrt(2.0)
    if q == "inf":
        raise ValueError("the regression loss ||f(x) - y|| is Lipschitz in the L2 norm of the outputs: use q=2")
    return 1.0


def per_sample_loss(logits: torch.Tensor, y: torch.Tensor, loss: str = "ce") -> torch.Tensor:
    """``[B]`` softmax cross-entropy (``y`` int labels ``[B]``) or ``||logits - y||_2`` (``y`` ``[B, C]``)."""
    if loss == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if loss == "mse":
        return (logits - y.to(logits.dtype)).flatten(1).norm(dim=1)
    raise ValueError(f"'loss' must be one of {_LOSSES}, got {loss!r}")


def normalized_margins(W: torch.Tensor, b: torch.Tensor, feats: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[N]``: ``min_{j != y} ((w_y - w_j) . g + b_y - b_j) / ||w_y - w_j||`` (seed 004 Thm. 2, eq. 1 RHS).

    A class ``j`` with ``w_j = w_y`` cannot be reached by moving ``g``: it contributes ``+inf`` when
    ``b_y > b_j`` and ``-inf`` otherwise.

    Example:
        >>> W = torch.tensor([[1., 0.], [-1., 0.]]); b = torch.zeros(2)
        >>> normalized_margins(W, b, torch.tensor([[0.5, 3.], [0.5, 3.]]), torch.tensor([0, 1])).tolist()
        [0.5, -0.5]
    """
    W, b, g = W.double(), b.double(), feats.double()
    dw = W[y].unsqueeze(1) - W.unsqueeze(0)                      # [N, C, d]
    num = (dw * g.unsqueeze(1)).sum(-1) + (b[y].unsqueeze(1) - b.unsqueeze(0))
    den = dw.norm(dim=-1)
    flat = den <= 1e-12 * W.abs().max().clamp_min(1e-300)
    m = torch.where(flat, torch.where(num > 0, math.inf, -math.inf), num / den.clamp_min(1e-300))
    m[torch.arange(len(y)), y] = math.inf
    return m.min(dim=1).values


def hoeffding_term(n: int, rho: float, bound: float) -> float:
    """``B sqrt(ln(2 / rho) / (2 n))``: Theorem 1's finite-sample term for a loss bounded by ``B`` (seed 004).

    Example:
        >>> round(hoeffding_term(200, 0.05, 1.0), 4)
        0.096
    """
    if not (isinstance(n, int) and n > 0):
        raise ValueError(f"'n' must be a positive int, got {n!r}")
    if not 0 < rho < 1:
        raise ValueError(f"'rho' must be in (0, 1), got {rho!r}")
    if not bound >= 0:
        raise ValueError(f"'bound' must be >= 0, got {bound!r}")
    return float(bound) * math.sqrt(math.log(2.0 / rho) / (2.0 * n))


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
class Lemma1Result:
    """Lemma 1 of seed 004 for one ``q``: ``lhs <= rhs`` (see the module docstring for ``rhs`` vs ``as_score``).

    An aggregate: every number is a mean over all N samples of a :class:`RobustnessRecord` (no
    per-sample value is kept), so there is no ``valid`` mask. ``n_undefined`` counts the record's
    samples with a non-finite quantity (``RobustnessRecord.valid`` False); they are not dropped, so a
    nonzero count comes with NaN means and ``held = False``. The headline ``value`` is :attr:`lhs`,
    the normalised loss change that the lemma bounds by ``rhs``.
    """

    q: str
    loss: str
    clean_loss: float
    adv_loss: float
    lipschitz: float
    w_norm: float
    lhs: float
    as_score: float
    rhs: float
    held: bool
    held_as_score: bool
    tight_lhs: float
    tight_rhs: float
    tight_held: bool
    n_undefined: int = 0

    value = headline("lhs", "|mean adv loss - mean clean loss| / (L ||W||)")

    def summary(self) -> dict:
        return dict(self.__dict__, diff_loss=abs(self.adv_loss - self.clean_loss))


@dataclass
class Theorem2Result(ValidMask):
    """Theorem-2 criterion per sample (``[N]`` bool/float tensors) and its table (``summary``).

    ``valid`` ``[N]`` bool: the sample's ``sensitivity`` is finite and its ``margin`` is not NaN (a
    margin of ``+-inf``, a class that moving ``g`` cannot reach, is defined). An undefined sample is
    never ``fulfilled`` (a comparison with NaN is False); it stays in every share's denominator N and
    is counted in ``n_undefined``. The headline ``value`` is :attr:`prop_fulfilled`.
    """

    fulfilled: torch.Tensor
    correct: torch.Tensor
    robust: torch.Tensor
    sensitivity: torch.Tensor
    margin: torch.Tensor

    @property
    def valid(self) -> torch.Tensor:
        """``[N]`` bool: finite ``sensitivity`` and a margin that is not NaN."""
        return torch.isfinite(self.sensitivity) & ~torch.isnan(self.margin)

    @property
    def prop_fulfilled(self) -> float:
        """Share of all N samples that the criterion certifies (``summary()["prop_fulfilled"]``)."""
        return int(self.fulfilled.sum()) / self.fulfilled.numel()

    value = headline("prop_fulfilled", "the certified share")

    def summary(self) -> dict:
        n = self.fulfilled.numel()
        nf = int(self.fulfilled.sum())
        return {
            "n": n,
            "clean_accuracy": float(self.correct.double().mean()),
            "robust_accuracy": float(self.robust.double().mean()),
            "prop_fulfilled": self.prop_fulfilled,
            "robust_among_fulfilled": (float(self.robust[self.fulfilled].double().mean()) if nf else None),
            "fulfilled_but_not_robust": int((self.fulfilled & ~self.robust).sum()),
            "n_undefined": self.n_undefined,
        }


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

    def lemma1(self, q="inf", lipschitz: float | None = None, w_norm: float | None = None) -> Lemma1Result:
        """Lemma 1 with the ``q``-matched ``L`` and ``||W||`` (overridable, e.g. to show a wrong one fails)."""
        q = _q(q)
        L = lipschitz_constant(self.loss, q) if lipschitz is None else float(lipschitz)
        wn = head_norm(self.W, q) if w_norm is None else float(w_norm)
        clean, adv = float(self.clean_loss.double().mean()), float(self.adv_loss.double().mean())
        scale = L * wn
        lhs = abs(adv - clean) / scale if scale > 0 else (0.0 if adv == clean else math.inf)
        as_s = float(self.rep_shift.double().mean())
        rhs = float(self.sensitivity.double().mean())
        tight_lhs = float((self.adv_loss - self.clean_loss).double().mean())
        tight_rhs = float(self.tight.double().mean())
        tol = 1e-6 * max(1.0, abs(rhs))
        return Lemma1Result(q, self.loss, clean, adv, L, wn, lhs, as_s, rhs, lhs <= rhs + tol, lhs <= as_s + tol,
                            tight_lhs, tight_rhs, tight_lhs <= tight_rhs + 1e-6 * max(1.0, abs(tight_rhs)),
                            n_undefined=self.n_undefined)

    def theorem2(self, sensitivity: torch.Tensor | None = None) -> Theorem2Result:
        """Theorem-2 criterion with ``sensitivity`` ``[N]`` (default :attr:`sensitivity`)."""
        if self.correct is None:
            raise ValueError("Theorem 2 is a classification criterion: evaluate with loss='ce' and int labels")
        s = self.sensitivity if sensitivity is None else sensitivity.detach().to(self.feats.device).reshape(-1)
        if s.numel() != self.y.numel():
            raise ValueError(f"'sensitivity' must have N={self.y.numel()} entries, got {s.numel()}")
        margin = normalized_margins(self.W, self.b, self.feats, self.y)
        fulfilled = s.double() < margin
        return Theorem2Result(fulfilled.cpu(), self.correct.cpu(), (self.correct & self.adv_correct).cpu(),
                              s.cpu(), margin.cpu())

    def theorem1(self, rho: float = 0.05, bound: float | None = None, q="inf") -> dict:
        return theorem1_bound(self.lemma1(q), n=int(self.y.shape[0]), rho=rho,
                              bound=float(self.adv_loss.max()) if bound is None else bound)


def theorem1_bound(lem: Lemma1Result, n: int, rho: float = 0.05, bound: float = 1.0) -> dict:
    """Theorem 1's population bound ``L ||W|| AS + B sqrt(ln(2/rho)/(2n))`` next to the observed loss gap.

    ``bound`` is the loss bound ``B`` (an empirical max is only indicative: softmax-CE is unbounded).
    """
    h = hoeffding_term(n, rho, bound)
    return {"observed_gap": abs(lem.adv_loss - lem.clean_loss), "lipschitz_term": lem.lipschitz * lem.w_norm * lem.rhs,
            "hoeffding_term": h, "bound": lem.lipschitz * lem.w_norm * lem.rhs + h, "rho": rho, "B": bound, "n": n}


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


def lemma1(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, q: float | str = "inf",
           **kwargs: Any) -> Lemma1Result:
    """Lemma 1 of seed 004 (finite sample); ``kwargs`` go to :func:`evaluate_robustness_transfer`.

    ``lhs = |mean loss(f(x + delta)) - mean loss(f(x))| / (L ||W||) <= rhs = AS`` (docs/theory.md §5).

    Args:
        model: split model (``features(x) -> [N, d]``, ``head: nn.Linear``).
        x: ``[N, *in_shape]`` inputs in ``[0, 1]``; y: ``[N]`` int labels (or ``[N, C]`` targets with
            ``loss="mse"``).
        eps: the ball radius; q: the logits norm, ``"inf"`` (default) or ``2``.

    Raises:
        ValueError: when ``q`` is not ``"inf"`` or ``2``, when ``loss="mse"`` is used with
            ``q="inf"``, or for the reasons of :func:`evaluate_robustness_transfer`.
        TypeError: for the reasons of :func:`evaluate_robustness_transfer`.

    Example:
        >>> from pyadvt.models import SplitModel
        >>> res = lemma1(SplitModel([nn.Flatten(1), nn.Linear(4, 2)], nn.Linear(2, 2)), torch.rand(6, 1, 2, 2),
        ...              torch.tensor([0, 1] * 3), eps=0.05, q=2, steps=2, rep_steps=2, restarts=1,
        ...              sensitivity="max")  # "max": the lemma holds by construction
        >>> res.held, res.lipschitz == 2 ** 0.5
        (True, True)
    """
    return evaluate_robustness_transfer(model, x, y, eps, **kwargs).lemma1(q)


def theorem2_criterion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *,
                       sensitivity: torch.Tensor | None = None, **kwargs) -> Theorem2Result:
    """Theorem-2 criterion of seed 004; ``kwargs`` go to :func:`evaluate_robustness_transfer`.

    A point is certified when the representation's shift is below its normalised margin to every
    other class (docs/theory.md §5, seed 004 condition (1)).

    Args:
        model: split model (``features(x) -> [N, d]``, ``head: nn.Linear``).
        x: ``[N, *in_shape]`` inputs in ``[0, 1]``; y: ``[N]`` int labels.
        eps: the ball radius.
        sensitivity: ``[N]`` per-sample shift to use instead of the record's (default: its AS shift).

    Raises:
        ValueError: when ``sensitivity`` does not have N entries, when ``loss`` is not ``"ce"`` (a
            classification criterion), or for the reasons of :func:`evaluate_robustness_transfer`.
        TypeError: for the reasons of :func:`evaluate_robustness_transfer`.

    Example:
        >>> from pyadvt.models import SplitModel
        >>> net = SplitModel([nn.Flatten(1)], nn.Linear(4, 3))  # g = the pixels themselves
        >>> res = theorem2_criterion(net, torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1]), eps=0.01,
        ...                          steps=2, rep_steps=2, restarts=1)
        >>> tuple(res.fulfilled.shape), res.n_undefined, 0.0 <= res.value <= 1.0
        ((5,), 0, True)
    """
    return evaluate_robustness_transfer(model, x, y, eps, **kwargs).theorem2(sensitivity)
