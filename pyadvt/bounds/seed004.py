"""Seed 004's bounds: Lemma 1, Theorem 1 and the Theorem-2 criterion (docs/theory.md §5).

Model ``f(x) = W g(x) + b`` with representation ``g`` (penultimate layer) and rows ``w_j`` of ``W``. The
measurement - both attacks, the per-sample losses and shifts, the AS score - is
:func:`pyadvt.metrics.evaluate_robustness_transfer` (a :class:`~pyadvt.metrics.robustness_transfer.RobustnessRecord`);
this module reads both sides of each inequality from that record.

* **Lemma 1** (finite-sample Theorem 1): with ``delta_i`` maximising the loss of the full model,
  ``LHS = |mean_i loss(f(x_i + delta_i), y_i) - mean_i loss(f(x_i), y_i)| / (L ||W||) <= AS``, where the loss is
  L-Lipschitz in the logits' ``q``-norm and ``||W||`` the matching operator norm from the representation's L2
  norm: ``q = inf``: ``max_j ||w_j||`` with ``L = 2`` for softmax-CE (seed 004 Lemma 3); ``q = 2``: spectral norm,
  ``L = sqrt(2)`` for softmax-CE, ``L = 1`` for the regression loss ``||f(x) - y||``.
* **Theorem 1**: ``|E loss_adv - E loss| <= L ||W|| AS + B sqrt(ln(2/rho) / (2n))`` with probability ``1 - rho``.
* **Theorem 2** (eq. 1): ``argmax(W g(x) + b)`` is robust at ``(x, y)`` if for all ``j != y``
  ``max_delta ||g(x + delta) - g(x)|| < ((w_y - w_j) . g(x) + b_y - b_j) / ||w_y - w_j||``.

The AS side of Lemma 1 and the shift of Theorem 2 are the record's *sensitivity*: the representation
attack's shift (``sensitivity="as"``, the paper's, a lower bound of the inner max) or its per-sample max
with the loss adversary's shift (``"max"``, which makes both hold by construction; see
:mod:`pyadvt.metrics.robustness_transfer`).

Example:
    >>> from pyadvt.models import SplitModel
    >>> net = SplitModel([nn.Flatten(1), nn.Linear(4, 3)], nn.Linear(3, 2))  # features(x) [N, 3], head 3 -> 2
    >>> x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1] * 3)
    >>> res = lemma1(net, x, y, eps=0.05, attack=lambda x, y: x)  # no loss change: lhs = 0 <= AS
    >>> res.lhs, res.held, res.value == res.lhs
    (0.0, True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pyadvt.metrics._result_protocol import ValidMask, headline
from pyadvt.metrics.robustness_transfer import _LOSSES, RobustnessRecord, evaluate_robustness_transfer

__all__ = ["Lemma1Result", "Theorem2Result", "head_norm", "hoeffding_term", "lemma1", "lemma1_from_record",
           "lipschitz_constant", "normalized_margins", "theorem1_bound", "theorem2_criterion",
           "theorem2_from_record"]


def _q(q) -> str:
    if q in ("inf", math.inf, float("inf")):
        return "inf"
    if q in (2, "2", 2.0):
        return "2"
    raise ValueError(f"'q' must be 'inf' or 2, got {q!r}")


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
class Lemma1Result:
    """Lemma 1 of seed 004 for one ``q``: ``lhs <= rhs`` (``rhs`` the record's sensitivity, ``as_score``
    the representation attack's alone; see the module docstring).

    An aggregate: every number is a mean over all N samples of a :class:`RobustnessRecord` (no
    per-sample value is kept), so there is no ``valid`` mask. ``n_undefined`` counts the record's
    samples with a non-finite quantity (``RobustnessRecord.valid`` False); they are not dropped, so a
    nonzero count comes with NaN means and ``held = False``. The headline ``value`` is :attr:`lhs`,
    the normalised loss change that the lemma bounds by ``rhs``. Returned by :func:`lemma1` and
    ``RobustnessRecord.lemma1(q)``.

    Example:
        >>> lem = Lemma1Result("inf", "ce", clean_loss=0.5, adv_loss=0.75, lipschitz=2.0, w_norm=1.0, lhs=0.125,
        ...                    as_score=0.2, rhs=0.2, held=True, held_as_score=True, tight_lhs=0.25, tight_rhs=0.3,
        ...                    tight_held=True)
        >>> lem.value, lem.summary()["diff_loss"]
        (0.125, 0.25)
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
    """Theorem-2 criterion of seed 004 per sample (``[N]`` bool/float tensors) and its table (``summary``).

    ``valid`` ``[N]`` bool: the sample's ``sensitivity`` is finite and its ``margin`` is not NaN (a
    margin of ``+-inf``, a class that moving ``g`` cannot reach, is defined). An undefined sample is
    never ``fulfilled`` (a comparison with NaN is False); it stays in every share's denominator N and
    is counted in ``n_undefined``. The headline ``value`` is :attr:`prop_fulfilled`. Returned by
    :func:`theorem2_criterion` and ``RobustnessRecord.theorem2()``.

    Example:
        >>> res = Theorem2Result(fulfilled=torch.tensor([True, False]), correct=torch.tensor([True, True]),
        ...                      robust=torch.tensor([True, False]), sensitivity=torch.tensor([0.1, 0.5]),
        ...                      margin=torch.tensor([0.3, 0.2]))
        >>> res.value, res.summary()["robust_among_fulfilled"]
        (0.5, 1.0)
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


def lemma1_from_record(record: RobustnessRecord, q: float | str = "inf", lipschitz: float | None = None,
                       w_norm: float | None = None) -> Lemma1Result:
    """Lemma 1 of seed 004 on a record, with the ``q``-matched ``L`` and ``||W||`` (overridable, e.g. to
    show that a wrong one fails); ``RobustnessRecord.lemma1`` (docs/theory.md §5).

    Raises:
        ValueError: when ``q`` is not ``"inf"`` or ``2``, or ``q="inf"`` with the record's ``loss="mse"``.

    Example:
        >>> from pyadvt.models import SplitModel
        >>> rec = evaluate_robustness_transfer(SplitModel([nn.Flatten(1)], nn.Linear(4, 2)), torch.rand(4, 1, 2, 2),
        ...                                    torch.tensor([0, 1] * 2), eps=0.05, attack=lambda x, y: x)
        >>> lemma1_from_record(rec, 2).lipschitz == 2 ** 0.5
        True
    """
    q = _q(q)
    L = lipschitz_constant(record.loss, q) if lipschitz is None else float(lipschitz)
    wn = head_norm(record.W, q) if w_norm is None else float(w_norm)
    clean, adv = float(record.clean_loss.double().mean()), float(record.adv_loss.double().mean())
    scale = L * wn
    lhs = abs(adv - clean) / scale if scale > 0 else (0.0 if adv == clean else math.inf)
    as_s = float(record.rep_shift.double().mean())
    rhs = float(record.sensitivity.double().mean())
    tight_lhs = float((record.adv_loss - record.clean_loss).double().mean())
    tight_rhs = float(record.tight.double().mean())
    tol = 1e-6 * max(1.0, abs(rhs))
    return Lemma1Result(q, record.loss, clean, adv, L, wn, lhs, as_s, rhs, lhs <= rhs + tol, lhs <= as_s + tol,
                        tight_lhs, tight_rhs, tight_lhs <= tight_rhs + 1e-6 * max(1.0, abs(tight_rhs)),
                        n_undefined=record.n_undefined)


def theorem2_from_record(record: RobustnessRecord, sensitivity: torch.Tensor | None = None) -> Theorem2Result:
    """Theorem-2 criterion of seed 004 on a record with ``sensitivity`` ``[N]`` (default: the record's);
    ``RobustnessRecord.theorem2`` (docs/theory.md §5).

    Raises:
        ValueError: when the record is a regression (``loss="mse"``) or ``sensitivity`` does not have N entries.

    Example:
        >>> from pyadvt.models import SplitModel
        >>> rec = evaluate_robustness_transfer(SplitModel([nn.Flatten(1)], nn.Linear(4, 2)), torch.rand(4, 1, 2, 2),
        ...                                    torch.tensor([0, 1] * 2), eps=0.05, attack=lambda x, y: x)
        >>> bool(theorem2_from_record(rec, torch.full((4,), math.inf)).fulfilled.any())  # an infinite shift
        False
    """
    if record.correct is None:
        raise ValueError("Theorem 2 is a classification criterion: evaluate with loss='ce' and int labels")
    s = record.sensitivity if sensitivity is None else sensitivity.detach().to(record.feats.device).reshape(-1)
    if s.numel() != record.y.numel():
        raise ValueError(f"'sensitivity' must have N={record.y.numel()} entries, got {s.numel()}")
    margin = normalized_margins(record.W, record.b, record.feats, record.y)
    fulfilled = s.double() < margin
    return Theorem2Result(fulfilled.cpu(), record.correct.cpu(), (record.correct & record.adv_correct).cpu(),
                          s.cpu(), margin.cpu())


def theorem1_bound(lem: Lemma1Result, n: int, rho: float = 0.05, bound: float = 1.0) -> dict:
    """Theorem 1's population bound ``L ||W|| AS + B sqrt(ln(2/rho)/(2n))`` next to the observed loss gap
    (seed 004 Theorem 1, docs/theory.md §5).

    ``bound`` is the loss bound ``B`` (an empirical max is only indicative: softmax-CE is unbounded).

    Raises:
        ValueError: when ``n`` is not a positive int, ``rho`` is not in ``(0, 1)`` or ``bound`` is negative.

    Example:
        >>> lem = Lemma1Result("inf", "ce", 0.5, 0.75, 2.0, 1.0, 0.125, 0.2, 0.2, True, True, 0.25, 0.3, True)
        >>> t1 = theorem1_bound(lem, n=200, rho=0.05, bound=1.0)
        >>> t1["observed_gap"], t1["lipschitz_term"], round(t1["bound"], 4)
        (0.25, 0.4, 0.496)
    """
    h = hoeffding_term(n, rho, bound)
    return {"observed_gap": abs(lem.adv_loss - lem.clean_loss), "lipschitz_term": lem.lipschitz * lem.w_norm * lem.rhs,
            "hoeffding_term": h, "bound": lem.lipschitz * lem.w_norm * lem.rhs + h, "rho": rho, "B": bound, "n": n}


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
    return lemma1_from_record(evaluate_robustness_transfer(model, x, y, eps, **kwargs), q)


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
    return theorem2_from_record(evaluate_robustness_transfer(model, x, y, eps, **kwargs), sensitivity)
