"""The :class:`Attack` base class: validation, model-mode discipline, targets and multi-budget batching.

Every attack (docs/theory.md §0-§1) is constructed once and called on ``(x, y)``:

* ``x``: ``[B, *in_shape]`` floating point in ``[0, 1]`` on the model's device; never mutated.
* ``y``: ``[B]`` integer labels in ``[0, C)``.
* the model runs under :func:`pyadvt.utils.evaluating` (eval mode, no parameter gradients, previous
  modes restored), input gradients come from :func:`torch.autograd.grad`;
* randomness is drawn per sample with :func:`pyadvt.utils.per_sample_rand`, so the result for a
  sample does not depend on the batch it is in;
* ``eps`` at call time may be a ``[K]`` tensor of budgets: all ``K * B`` (budget, sample) pairs are
  attacked in one batched pass and the result has shape ``[K, B, *in_shape]``.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.utils import evaluating, per_sample_rand
from pyadvt.utils.deprecation import renamed_parameters
from pyadvt.utils.modes import model_device
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError, check_labels

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy_per_sample(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Default attack loss: per-sample cross-entropy ``[B]`` of ``logits [B, C]`` at labels ``y [B]``.

    This is the per-sample loss ``l`` of docs/theory.md §1 (and ``CE`` of §10). Shapes, dtypes and the
    label range are checked here; the attacks' steps use the same loss with only the metadata checks
    (no host sync per step), since ``__call__`` checks the labels once.

    Raises:
        ValueError: when ``logits`` is not a floating 2-D tensor, ``y`` does not have shape ``[B]`` or
            holds a label outside ``[0, C)``.
        TypeError: when ``y`` is not a tensor of integer labels (bool, floating or complex).

    Example:
        >>> import torch
        >>> logits, y = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), torch.tensor([0, 2])
        >>> cross_entropy_per_sample(logits, y)
        tensor([0.2395, 1.0986])
        >>> cross_entropy_per_sample(logits, y.float())
        Traceback (most recent call last):
            ...
        pyadvt.utils.errors.InvalidTypeError: 'y' must hold integer class labels (int64), got torch.float32
    """
    check_loss_args(logits, y)
    check_labels(y, logits.shape[0], num_classes=logits.shape[1])
    return step_cross_entropy(logits, y)


def step_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`cross_entropy_per_sample` with the metadata checks only: the loss of every attack step
    (the labels were range-checked once by the attack's ``__call__``)."""
    check_loss_args(logits, y)
    return F.cross_entropy(logits, y, reduction="none")


def check_loss_args(logits: torch.Tensor, y: torch.Tensor) -> None:
    """``logits [B, C]`` floating, ``y [B]`` integer labels (metadata only: cheap on every attack step)."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        got = f"{tuple(logits.shape)} {logits.dtype}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InvalidValueError(f"'logits' must be a floating [B, C] tensor, got {got}")
    if not isinstance(y, torch.Tensor) or y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        got = y.dtype if isinstance(y, torch.Tensor) else type(y).__name__
        raise InvalidTypeError(f"'y' must hold integer class labels (int64), got {got}")
    if y.shape != logits.shape[:1]:
        raise InvalidValueError(f"'y' must have shape [B] = [{logits.shape[0]}] (one label per logits row), "
                                f"got {tuple(y.shape)}")


@dataclass
class AttackBatch:
    """The rows an attack works on: ``N = K * B`` (budget, sample) pairs, budget-major.

    Built by :meth:`Attack.__call__` for the multi-budget expansion of docs/theory.md §1 (several
    budgets in one call) with the per-sample random streams of §0; a subclass's ``_attack`` receives
    it and returns ``[N, *in_shape]`` rows.

    Attributes:
        x: ``[N, *in_shape]`` clean inputs (row ``k * B + b`` is sample ``b``).
        y: ``[N]`` labels.
        target_labels: ``[N]`` target labels (targeted attacks) or ``None`` (``target`` is a deprecated
            read-only alias).
        eps: ``[N]`` budget per row.
        alpha: ``[N]`` step size per row.
        source: ``[N]`` index of each row's sample in the caller's batch.
        clean: ``[B, *in_shape]`` the caller's samples (identity of the per-sample random streams).
        sample_ids: optional explicit sample identities (see :func:`pyadvt.utils.sample_seeds`).
        seed: the attack's seed.

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 2, 2)
        >>> K, B = 2, 2
        >>> batch = AttackBatch(x=x.repeat(K, 1, 1, 1), y=torch.tensor([0, 1]).repeat(K), target_labels=None,
        ...                     eps=torch.tensor([0.1, 0.2]).repeat_interleave(B), alpha=torch.full((4,), 0.05),
        ...                     source=torch.arange(B).repeat(K), clean=x, sample_ids=None, seed=0)
        >>> batch.rows(slice(2, 4)).eps
        tensor([0.2000, 0.2000])
        >>> draws = batch.rand((3, 2, 2), stream=0)  # [N, 3, 2, 2]: both budgets of a sample share draws
        >>> draws.shape, bool(torch.equal(draws[0], draws[2]))
        (torch.Size([4, 3, 2, 2]), True)
    """

    x: torch.Tensor
    y: torch.Tensor
    target_labels: torch.Tensor | None
    eps: torch.Tensor
    alpha: torch.Tensor
    source: torch.Tensor
    clean: torch.Tensor
    sample_ids: Sequence[int] | torch.Tensor | None
    seed: int

    def rows(self, index: slice | torch.Tensor) -> AttackBatch:
        """The sub-batch of rows ``index`` (same clean samples, seed and random streams)."""
        return AttackBatch(x=self.x[index], y=self.y[index],
                           target_labels=None if self.target_labels is None else self.target_labels[index],
                           eps=self.eps[index],
                           alpha=self.alpha[index], source=self.source[index], clean=self.clean,
                           sample_ids=self.sample_ids, seed=self.seed)

    @property
    def target(self) -> torch.Tensor | None:
        """Deprecated alias of :attr:`target_labels` (removed in the next release)."""
        warnings.warn("AttackBatch.target is deprecated and will be removed in the next release; use "
                      "AttackBatch.target_labels", DeprecationWarning, stacklevel=2)
        return self.target_labels

    def rand(self, shape: Sequence[int], stream: int, distribution: str = "uniform",
             rows: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample draws ``[N or len(rows), *shape]``: every row of a sample (whatever its budget)
        gets that sample's draws, so a multi-budget run equals separate runs."""
        draws = per_sample_rand(self.clean, shape, self.seed, self.sample_ids, stream=stream,
                                distribution=distribution, dtype=self.x.dtype)
        src = self.source if rows is None else self.source[rows]
        return draws[src]


class Attack(abc.ABC):
    """Base class of pyadvt attacks (docs/theory.md §0-§1).

    Subclasses implement :meth:`_attack` on an :class:`AttackBatch` and use :meth:`objective`,
    :meth:`success` and :meth:`input_grad`. ``__call__`` does validation, eval mode, targets and the
    multi-budget expansion.

    Args:
        model: ``nn.Module`` mapping ``[B, *in_shape]`` to logits ``[B, C]`` (a list/tuple of modules is
            wrapped in :class:`pyadvt.attacks.Ensemble`).
        eps: default budget (pixel units), ``> 0``.
        alpha: default step size ``> 0``; ``alpha / eps`` is kept when another ``eps`` is given at call
            time.
        norm: ``"linf"`` or ``"l2"``.
        targeted: descend the loss of a target label instead of ascending that of the true label.
        seed: seed of the per-sample random streams.
        loss: ``loss(logits [B, C], labels [B]) -> [B]`` per-sample loss (default cross-entropy); e.g.
            pass the source's own predictions as ``y`` to attack them (docs/theory.md §2 eq. 2).

    Raises:
        TypeError: on construction, when ``model`` is not an ``nn.Module`` (or a list of them),
            ``eps``/``alpha`` are not numbers or ``loss`` is not callable; on a call, when ``x`` is not
            a tensor, ``y``/``target_labels`` are not tensors, or ``eps`` is neither a number nor a
            tensor.
        ValueError: on construction, when ``norm`` is not ``"linf"``/``"l2"`` or ``eps``/``alpha``
            are not finite and ``> 0``; on a call (before any gradient), when ``x`` is not a
            floating, finite, non-empty ``[B, *in_shape]`` batch in [0, 1] on the model's device, when
            ``y``/``target_labels`` are not integer ``[B]`` labels on ``x``'s device in ``[0, C)``, when
            ``target_labels`` is given to an untargeted attack, when the call's ``eps`` is not a
            finite ``>= 0`` number or 1-D tensor, ``alpha`` not finite ``> 0`` (one or one per budget)
            or ``batch_size`` not a positive int, when the model does not return ``[B, C]`` logits,
            or when ``loss`` does not return ``[B]``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from pyadvt.attacks import PGD
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        >>> x, y = torch.rand(2, 3, 2, 2), torch.tensor([0, 2])
        >>> atk = PGD(net, eps=0.1, steps=2)  # every attack is an Attack
        >>> isinstance(atk, Attack), atk(x, y).shape
        (True, torch.Size([2, 3, 2, 2]))
        >>> atk(x, y, eps=torch.tensor([0.0, 0.1])).shape  # K = 2 budgets in one pass
        torch.Size([2, 2, 3, 2, 2])
        >>> atk(x + 1, y)
        Traceback (most recent call last):
            ...
        ValueError: 'x' must be finite with values in [0, 1] (pixel space; put normalisation in the model), got range [...]
    """

    def __init__(self, model: nn.Module | Sequence[nn.Module], eps: float, alpha: float, *, norm: str = "linf",
                 targeted: bool = False, seed: int = 0, loss: LossFn | None = None) -> None:
        if isinstance(model, (list, tuple)):
            from pyadvt.attacks.ensemble import Ensemble

            model = Ensemble(model)
        if not isinstance(model, nn.Module):
            raise TypeError(f"'model' must be an nn.Module (or a list of them), got {type(model).__name__}")
        if norm not in ("linf", "l2"):
            raise ValueError(f"'norm' must be 'linf' or 'l2', got {norm!r}")
        self.eps = _positive(eps, "eps")
        self.alpha = _positive(alpha, "alpha")
        if loss is not None and not callable(loss):
            raise TypeError(f"'loss' must be callable loss(logits, y) -> [B], got {type(loss).__name__}")
        self.model = model
        self.norm = norm
        self.targeted = bool(targeted)
        self.seed = int(seed)
        self.loss = loss or step_cross_entropy
        self.undefined = 0

    # ------------------------------------------------------------------ public call
    @renamed_parameters(target="target_labels")
    def __call__(self, x: torch.Tensor, y: torch.Tensor, target_labels: torch.Tensor | None = None,
                 eps: float | torch.Tensor | None = None, alpha: float | torch.Tensor | None = None,
                 sample_ids: Sequence[int] | torch.Tensor | None = None, batch_size: int | None = None
                 ) -> torch.Tensor:
        """Attack ``x`` (``[B, *in_shape]`` in [0, 1]) with labels ``y`` (``[B]``).

        Args:
            target_labels: ``[B]`` target labels (only with ``targeted=True``; default ``(y + 1) % C``).
                ``target=`` is a deprecated alias (a ``DeprecationWarning``; removed in the next release).
            eps: budget override: a number, or a 1-D tensor (or list) of ``K`` budgets (multi-budget).
            alpha: step override: a number or ``[K]`` per budget (default: each budget times the
                attack's ``alpha / eps`` ratio).
            sample_ids: explicit per-sample identities for the random streams (default: a hash of
                each sample's bytes).
            batch_size: at most this many (budget, sample) rows per pass (default: all ``K * B`` rows in
                one pass). Results do not depend on it; on CPU, passes whose activations outgrow the
                caches can be slower than a few smaller ones.

        Returns:
            ``[B, *in_shape]`` adversarial images, or ``[K, B, *in_shape]`` for ``K`` budgets.
        """
        self._check_inputs(x, y)
        budgets, multi = self._budgets(eps, x)
        alphas = self._alphas(alpha, budgets, x)
        K, B = budgets.numel(), x.shape[0]
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise ValueError(f"'batch_size' must be a positive int or None, got {batch_size!r}")
        x = x.detach()
        y = y.detach().long()
        with evaluating(self.model), torch.enable_grad():
            C = self._num_classes(x)
            _check_labels(y, C, "y")
            if target_labels is not None:
                if not self.targeted:
                    raise ValueError("'target_labels' was given but the attack was built with targeted=False; "
                                     "construct it with targeted=True")
                _check_label_tensor(target_labels, B, x.device, "target_labels")
                target_labels = target_labels.detach().long()
                _check_labels(target_labels, C, "target_labels")
            elif self.targeted:
                target_labels = (y + 1) % C
            batch = AttackBatch(
                x=x.repeat((K,) + (1,) * (x.dim() - 1)) if K > 1 else x,
                y=y.repeat(K) if K > 1 else y,
                target_labels=None if target_labels is None else (target_labels.repeat(K) if K > 1 else target_labels),
                eps=budgets.repeat_interleave(B),
                alpha=alphas.repeat_interleave(B),
                source=torch.arange(B, device=x.device).repeat(K),
                clean=x, sample_ids=sample_ids, seed=self.seed,
            )
            self.undefined = 0
            N = batch.x.shape[0]
            step = N if batch_size is None else batch_size
            out = torch.cat([self._attack(batch.rows(slice(s, s + step))).detach() for s in range(0, N, step)]) \
                if step < N else self._attack(batch).detach()
        if self.undefined:
            warnings.warn(f"{type(self).__name__}: {self.undefined} gradient(s) of (budget, sample) rows were "
                          "non-finite; those steps were skipped (the rows stay where they were)", RuntimeWarning,
                          stacklevel=2)
        return out.view((K,) + tuple(x.shape)) if multi else out

    @abc.abstractmethod
    def _attack(self, batch: AttackBatch) -> torch.Tensor:
        """Return ``[N, *in_shape]`` adversarial rows for ``batch`` (implemented by subclasses)."""

    # ------------------------------------------------------------------ helpers for subclasses
    def objective(self, logits: torch.Tensor, y: torch.Tensor, target_labels: torch.Tensor | None) -> torch.Tensor:
        """Per-sample objective ``[B]`` the attack ascends: ``loss(logits, y)`` untargeted,
        ``-loss(logits, target_labels)`` targeted."""
        if self.targeted:
            value = -self.loss(logits, target_labels)
        else:
            value = self.loss(logits, y)
        if value.shape != (logits.shape[0],):
            raise ValueError(f"'loss' must return a per-sample tensor of shape [{logits.shape[0]}], "
                             f"got {tuple(value.shape)}")
        return value

    def success(self, logits: torch.Tensor, y: torch.Tensor, target_labels: torch.Tensor | None) -> torch.Tensor:
        """``[B]`` bool: prediction != y (untargeted) or == target_labels (targeted)."""
        pred = logits.argmax(dim=1)
        return pred == target_labels if self.targeted else pred != y

    def input_grad(self, x_adv: torch.Tensor, y: torch.Tensor, target_labels: torch.Tensor | None,
                   transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """Gradient ``[B, *in_shape]`` of the per-sample objective w.r.t. ``x_adv`` (one backward for the
        batch; the objective is summed, so each row is its own sample's gradient). Non-finite gradient
        rows are zeroed (no step), counted in ``self.undefined`` and reported in one warning per call."""
        x_adv = x_adv.detach().requires_grad_(True)
        inp = x_adv if transform is None else transform(x_adv)
        value = self.objective(self.model(inp), y, target_labels)
        (grad,) = torch.autograd.grad(value.sum(), x_adv)
        # one reduction decides the common all-finite case; the per-row mask only when it is not
        if not bool(torch.isfinite(grad.sum())):
            bad = ~torch.isfinite(grad).reshape(grad.shape[0], -1).all(dim=1)
            grad = torch.where(bad.view((-1,) + (1,) * (grad.dim() - 1)), torch.zeros_like(grad), grad)
            self.undefined += int(bad.sum())
        return grad

    # ------------------------------------------------------------------ validation
    def _check_inputs(self, x, y) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"'x' must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"'x' must be a floating-point tensor in [0, 1], got {x.dtype}")
        if x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"'x' must be a non-empty batch [B, *in_shape], got shape {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()) or float(x.min()) < 0.0 or float(x.max()) > 1.0:
            raise ValueError("'x' must be finite with values in [0, 1] (pixel space; put normalisation in "
                             f"the model), got range [{float(x.min()):.4g}, {float(x.max()):.4g}]")
        device = model_device(self.model)
        if x.device != device:
            raise ValueError(f"'x' is on {x.device} but the model is on {device}; move them to one device")
        _check_label_tensor(y, x.shape[0], x.device, "y")

    def _budgets(self, eps, x) -> tuple[torch.Tensor, bool]:
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        if eps is None:
            return torch.tensor([self.eps], dtype=acc, device=x.device), False
        if isinstance(eps, (list, tuple)):
            eps = torch.tensor([float(e) for e in eps], dtype=acc)
        if isinstance(eps, torch.Tensor):
            if eps.dim() > 1 or eps.numel() == 0:
                raise ValueError(f"'eps' must be a number or a 1-D tensor of budgets, got shape {tuple(eps.shape)}")
            t = eps.detach().to(device=x.device, dtype=acc).reshape(-1)
            multi = eps.dim() == 1
        else:
            try:
                t = torch.tensor([float(eps)], dtype=acc, device=x.device)
            except (TypeError, ValueError):
                raise TypeError(f"'eps' must be a number or a tensor, got {type(eps).__name__}") from None
            multi = False
        if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
            raise ValueError(f"'eps' must be finite and >= 0, got {eps}")
        return t, multi

    def _alphas(self, alpha, budgets: torch.Tensor, x) -> torch.Tensor:
        if alpha is None:
            ratio = self.alpha / self.eps
            # a zero budget projects every step back to x: any positive step size gives x
            return torch.where(budgets > 0, budgets * ratio, torch.full_like(budgets, ratio))
        t = alpha.detach().to(device=x.device, dtype=budgets.dtype).reshape(-1) if isinstance(alpha, torch.Tensor) \
            else torch.tensor([float(alpha)], dtype=budgets.dtype, device=x.device)
        if t.numel() not in (1, budgets.numel()):
            raise ValueError(f"'alpha' must be a number or have one entry per budget ({budgets.numel()}), "
                             f"got {t.numel()}")
        if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
            raise ValueError(f"'alpha' must be finite and > 0, got {alpha}")
        return t.expand(budgets.numel()).clone()

    def _num_classes(self, x: torch.Tensor) -> int:
        with torch.no_grad():
            logits = self.model(x[:1])
        if logits.dim() != 2:
            raise ValueError(f"the model must return logits [B, C], got shape {tuple(logits.shape)}")
        return int(logits.shape[1])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(eps={self.eps:g}, alpha={self.alpha:g}, norm={self.norm!r}, "
                f"targeted={self.targeted}, seed={self.seed})")


def _positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"'{name}' must be a number, got {type(value).__name__}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise ValueError(f"'{name}' must be a finite number > 0, got {value}")
    return v


def _check_label_tensor(t, B: int, device: torch.device, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor of int64 labels, got {type(t).__name__}")
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ValueError(f"'{name}' must hold integer class labels (int64), got {t.dtype}")
    if t.shape != (B,):
        raise ValueError(f"'{name}' must have shape [B]=[{B}] to match x, got {tuple(t.shape)}")
    if t.device != device:
        raise ValueError(f"'{name}' is on {t.device} but 'x' is on {device}")


def _check_labels(t: torch.Tensor, C: int, name: str) -> None:
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= C:
        raise ValueError(f"'{name}' must hold labels in [0, {C}) for this model's {C} classes, "
                         f"got values in [{lo}, {hi}]")
