"""Empirical adversarial transferability, seed 000 eq. (2) (docs/theory.md §2).

``L_T(f_T o PGD_{f_S}) = E loss_T(f_T(x_adv), y)`` where ``x_adv`` is PGD on the *source* maximising
``loss_S(f_S(x_t), f_S(x))``: the attack pushes the source away from its own clean prediction
(``argmax f_S(x)``, cross-entropy), not from the label - the source may even be trained on another
label space. The target's loss (cross-entropy with the true target labels ``y``) and accuracy on
``x_adv`` measure how far the source's adversarial examples transfer. Several budgets are attacked
in one call (PGD's multi-budget mode).

Example:
    >>> import torch
    >>> S = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    >>> T = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> x, y = torch.rand(6, 1, 2, 2), torch.tensor([0, 1, 0, 1, 0, 1])
    >>> r = empirical_transferability(S, T, x, y, eps=(0.03, 0.1), steps=3)
    >>> r.loss.shape, len(r.summary()["per_eps"])
    (torch.Size([2, 6]), 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.attacks import PGD
from pyadvt.metrics._pair_data import pair_data
from pyadvt.utils.deprecation import renamed_names
from pyadvt.utils.modes import evaluating

if TYPE_CHECKING:
    from pyadvt.metrics._pair_data import Data


@dataclass
class EmpiricalTransferabilityResult:
    """Per-budget, per-sample results: ``eps [K]``, target ``loss [K, N]`` and ``correct [K, N]`` on the
    source's adversarial examples, the clean ``clean_loss [N]`` / ``clean_correct [N]`` of the target
    and ``source_flipped [K, N]`` (the attack changed the source's own prediction).

    The protocol: ``valid [N]`` is True where the clean loss and every budget's loss are finite.
    Non-finite inputs are refused before the work starts, so a sample is invalid only when a model
    returned non-finite logits; the means of :meth:`transfer_loss` and ``summary()`` run over all
    ``N`` samples, so such a sample shows up as NaN there, never silently dropped. ``n_undefined``
    counts the invalid samples; the headline ``value`` is ``transfer_loss()[-1]``, eq. (2) at the
    last budget of ``eps``.

    Returned by :func:`empirical_transferability` (seed 000 eq. 2, docs/theory.md §2).

    Example:
        >>> import torch
        >>> r = EmpiricalTransferabilityResult(eps=torch.tensor([0.1]), loss=torch.tensor([[1.0, 3.0]]),
        ...                             correct=torch.tensor([[True, False]]), clean_loss=torch.tensor([0.5, 0.5]),
        ...                             clean_correct=torch.tensor([True, True]),
        ...                             source_flipped=torch.tensor([[False, True]]))
        >>> r.transfer_loss().tolist(), r.summary()["per_eps"][0]["target_accuracy"], r.value, r.n_undefined
        ([2.0], 0.5, 2.0, 0)
    """

    eps: torch.Tensor
    loss: torch.Tensor
    correct: torch.Tensor
    clean_loss: torch.Tensor
    clean_correct: torch.Tensor
    source_flipped: torch.Tensor

    @property
    def valid(self) -> torch.Tensor:
        """``[N]`` bool: the clean loss and the loss at every budget are finite."""
        return torch.isfinite(self.clean_loss) & torch.isfinite(self.loss).all(0)

    @property
    def n_undefined(self) -> int:
        """Number of invalid samples (False in :attr:`valid`)."""
        return int((~self.valid).sum())

    @property
    def value(self) -> float:
        """The headline number: eq. (2)'s mean target loss at the last budget, ``transfer_loss()[-1]``."""
        return float(self.transfer_loss()[-1])

    def transfer_loss(self, only_target_correct: bool = False) -> torch.Tensor:
        """``[K]`` eq. (2): mean target loss per budget (optionally over clean-correct samples only, as
        the authors' scripts do)."""
        if only_target_correct:
            mask = self.clean_correct
            return self.loss[:, mask].double().mean(1) if bool(mask.any()) else torch.full_like(self.eps, float("nan"))
        return self.loss.double().mean(1)

    def summary(self) -> dict:
        per = []
        tl, tlc = self.transfer_loss(), self.transfer_loss(only_target_correct=True)
        for k in range(self.eps.numel()):
            per.append({"eps": float(self.eps[k]), "target_loss": float(tl[k]),
                        "target_loss_clean_correct": float(tlc[k]),
                        "target_accuracy": float(self.correct[k].double().mean()),
                        "source_flip_rate": float(self.source_flipped[k].double().mean())})
        return {"clean_target_loss": float(self.clean_loss.double().mean()),
                "clean_target_accuracy": float(self.clean_correct.double().mean()),
                "n": int(self.clean_loss.numel()), "n_undefined": self.n_undefined, "per_eps": per}


def _predict(model, x):
    with torch.no_grad():
        return model(x)


def empirical_transferability(source: nn.Module, target: nn.Module, x: Data, y: torch.Tensor | None = None,
                              eps: float | Sequence[float] = (0.03, 0.06, 0.1, 0.2), *, steps: int = 10,
                              alpha_ratio: float | None = None, norm: str = "linf", random_start: bool = True,
                              restarts: int = 1, seed: int = 0, batch_size: int = 256,
                              progress: bool = False) -> EmpiricalTransferabilityResult:
    """Target loss/accuracy on PGD examples made on the source against its own clean prediction.

    docs/theory.md §2; seed 000 (Liang et al., ICML 2021) eq. (2), ``L_T(f_T o PGD_{f_S})``.

    Args:
        source: classifier ``[B, *in] -> [B, C_S]`` that makes the attacks.
        target: classifier ``[B, *in] -> [B, C_T]`` evaluated on them (the reference model).
        x: ``[N, *in]`` images in [0, 1] with y ``[N]`` true labels of the target's task; or a ``TensorData`` / ``Dataset``
            / ``DataLoader`` of ``(x, y)`` (then ``y=None``), walked one batch at a time on the
            source's device (:func:`pyadvt.data.iter_batches`).
        eps: one budget or several (pixel units, L-inf by default as in the paper's §4.1).
        steps: PGD iterations (paper: 10); alpha_ratio: step = ``alpha_ratio * eps`` (default 2.5/steps);
        norm, random_start, restarts, seed: PGD options (per-sample seeded random starts).
        batch_size, progress: batching and tqdm bar.

    Returns:
        :class:`EmpiricalTransferabilityResult` (``loss [K, N]``, ``correct [K, N]``, ``.transfer_loss()``).

    Raises:
        ValueError: values outside [0, 1], misshapen or out-of-range labels, ``y`` given with a
            dataset, non-positive budgets.
        TypeError: ``eps`` not a number or sequence of numbers, inputs of another dtype than a model.

    Example:
        >>> S = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
        >>> r = empirical_transferability(S, S, x, y, eps=0.1, steps=2)
        >>> r.loss.shape, r.eps.tolist()
        (torch.Size([1, 5]), [0.1])
    """
    from pyadvt.data.stream import iter_batches

    data, device = pair_data(x, y, {"source": source, "target": target}, batch_size, labels="target labels")
    try:
        budgets = torch.as_tensor(eps, dtype=torch.float64).detach().cpu().reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"'eps' must be a number or a sequence of numbers, got {eps!r}") from None
    if budgets.numel() == 0 or not bool(torch.isfinite(budgets).all()) or bool((budgets <= 0).any()):
        raise ValueError(f"'eps' must be positive budgets, got {eps!r}")
    ratio = 2.5 / steps if alpha_ratio is None else float(alpha_ratio)
    e0 = float(budgets[0])
    atk = PGD(source, eps=e0, alpha=ratio * e0, steps=steps, norm=norm, random_start=random_start,
              restarts=restarts, seed=seed)
    out = {k: [] for k in ("loss", "correct", "closs", "ccorrect", "flip")}
    with evaluating([source, target]):
        for xb, yb in iter_batches(data, batch_size, device=device, progress=progress, desc="eq. 2 transfer",
                                   labels=True):
            yb = yb.to(xb.device).long()
            own = _predict(source, xb).argmax(1)
            x_adv = atk(xb, own, eps=budgets.to(xb.dtype))  # [K, B, ...]
            K, B = x_adv.shape[:2]
            flat = x_adv.reshape(K * B, *xb.shape[1:])
            logits_t = _predict(target, flat)
            yk = yb.repeat(K)
            out["loss"].append(F.cross_entropy(logits_t, yk, reduction="none").reshape(K, B))
            out["correct"].append((logits_t.argmax(1) == yk).reshape(K, B))
            out["flip"].append((_predict(source, flat).argmax(1) != own.repeat(K)).reshape(K, B))
            clean = _predict(target, xb)
            out["closs"].append(F.cross_entropy(clean, yb, reduction="none"))
            out["ccorrect"].append(clean.argmax(1) == yb)
    return EmpiricalTransferabilityResult(eps=budgets, loss=torch.cat(out["loss"], 1).detach(),
                                   correct=torch.cat(out["correct"], 1), clean_loss=torch.cat(out["closs"]).detach(),
                                   clean_correct=torch.cat(out["ccorrect"]), source_flipped=torch.cat(out["flip"], 1))

__getattr__ = renamed_names(__name__, {"EmpiricalTransferResult": "EmpiricalTransferabilityResult"})  # the former name, for one release
