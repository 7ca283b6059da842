"""Spectral adversarial-transferability metrics of seed 000 (docs/theory.md §2, §9).

* ``tau1(x) = <v1_S(x), v1_T(x)>^2`` (Definition 2, "angle"): squared cosine between the two virtual
  adversarial attacks (:mod:`pyadvt.attacks.virtual`), ``tau1 = E tau1(x)``.
* ``lambda_f(x) = sigma2(x) / sigma1(x)`` (Definition 4, singular-value ratio of ``J_f(x)``) and its
  worst case ``lambda_f = max_x lambda_f(x)``.

Everything is batched and batch-independent. Per model, a cost and memory model
(:func:`pyadvt.ops.budget.plan_route`) picks, once and before the first backward pass, the dense
route (one Jacobian per batch and the ``jacobian_spectrum`` kernel, for ``m <= 64`` outputs) or the
matrix-free route (Lanczos on the Gram operator through VJPs/JVPs,
:mod:`pyadvt.ops.matrix_free`, e.g. for 1000 ImageNet logits); when neither fits ``max_memory`` it
refuses with a message naming ``batch_size`` / ``max_memory``. Samples whose Jacobian is zero or
whose input or Jacobian is non-finite are *undefined*: masked, counted, reported with a warning, and
skipped by the means (docs/theory.md §0).

Example:
    >>> S = nn.Linear(5, 3)
    >>> round(tau1(S, S, torch.rand(8, 5)).tau1, 6)  # a model's attack direction agrees with itself
    1.0
    >>> singular_value_ratio(nn.Linear(5, 1), torch.rand(2, 5)).lam.tolist()  # one output: sigma2 = 0
    [0.0, 0.0]
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from pyadvt.attacks.virtual import virtual_direction
from pyadvt.ops.budget import MemoryBudgetError, RoutePlan, plan_route
from pyadvt.ops.matrix_free import FLAG_NOT_CONVERGED
from pyadvt.ops.precision import float32_compute
from pyadvt.utils.modes import model_device
from pyadvt.utils.progress import progress as _progress
from pyadvt.utils.validation import check_inputs

if TYPE_CHECKING:
    from pyadvt.metrics._pair_data import Data

__all__ = ["DEFAULT_BATCH_SIZE", "SingularValueRatio", "Tau1Result", "Tau1Stats", "planned_batches",
           "singular_value_ratio", "tau1", "tau1_from_directions"]


def batches(n: int, batch_size: int, *, progress: bool = False, desc: str | None = None) -> Iterator[slice]:
    """Slices ``[i, i + batch_size)`` covering ``range(n)``, with an optional progress bar."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"'batch_size' must be a positive int, got {batch_size!r}")
    starts = range(0, n, batch_size)
    for i in _progress(starts, desc=desc, enabled=progress, total=len(starts)):
        yield slice(i, min(i + batch_size, n))


def warn_undefined(n_undefined: int, n_total: int, what: str, *, stacklevel: int = 3) -> None:
    """Warn (docs/theory.md §0) that ``n_undefined`` of ``n_total`` samples were masked out of ``what``."""
    if n_undefined:
        warnings.warn(f"{what}: {n_undefined} of {n_total} samples have a zero or non-finite Jacobian; "
                      "they are undefined, masked and skipped by the means", RuntimeWarning, stacklevel=stacklevel)


def warn_not_converged(n: int, n_total: int, what: str, *, stacklevel: int = 3) -> None:
    """Warn that the matrix-free route hit its iteration cap on ``n`` of ``n_total`` samples."""
    if n:
        warnings.warn(f"{what}: Lanczos did not converge within max_iter on {n} of {n_total} samples; their last "
                      "estimates are used (flag FLAG_NOT_CONVERGED)", RuntimeWarning, stacklevel=stacklevel)


def check_batch(x, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"'{name}' must be a non-empty batch [B, *in_shape], got shape {tuple(x.shape)}")


def _check_auto_batch_size(batch_size) -> None:
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"'batch_size' must be a positive int or None (as large as fits), got {batch_size!r}")


#: ``batch_size=None`` means at most this many samples per batch, fewer when the memory budget says so
DEFAULT_BATCH_SIZE = 256


def plan_models(models, x: torch.Tensor, batch_size: int | None, *, route: str = "auto", max_memory=None,
                what: str = "spectrum") -> tuple[list[RoutePlan], int]:
    """``(plans, batch_size)``: one :class:`~pyadvt.ops.budget.RoutePlan` per model for batches of
    ``batch_size`` samples of ``x``, made before any backward pass. With ``batch_size=None`` the batch
    is :data:`DEFAULT_BATCH_SIZE` or the largest that fits ``max_memory`` for every model (results do
    not depend on it); an explicit ``batch_size`` that does not fit raises
    :class:`~pyadvt.ops.budget.MemoryBudgetError`."""
    auto = batch_size is None
    _check_auto_batch_size(batch_size)
    b = min(DEFAULT_BATCH_SIZE if auto else batch_size, x.shape[0])
    while True:
        try:
            plans = []
            for model in models:
                m32, xb = float32_compute(model, x[:b])
                xb = torch.nan_to_num(xb.detach(), nan=0.0, posinf=0.0, neginf=0.0)
                plans.append(plan_route(m32, xb, route=route, max_memory=max_memory, what=what))
            return plans, b
        except MemoryBudgetError as exc:
            if not auto or exc.fit_batch < 1 or exc.fit_batch >= b:
                raise
            b = exc.fit_batch


def planned_batches(x: Any, models: dict[str, Any], batch_size: int | None, *, n_plan: int | None = None,
                    route: str = "auto", max_memory=None, what: str = "spectrum",
                    progress: bool = False) -> Iterator[tuple[list[RoutePlan], torch.Tensor]]:
    """``(plans, x_b)`` for every batch of ``x``, with the route plans of the first ``n_plan`` of
    ``models`` (all by default) made before the first backward pass (docs/theory.md §9).

    ``x`` is an ``[N, *in_shape]`` tensor, checked whole up front (shape, range [0, 1], dtype against
    every model) and sliced; or an ``(x, y)`` pair, a ``TensorData``, a ``Dataset`` or a
    ``DataLoader`` walked by :func:`pyadvt.data.iter_batches` one batch at a time (labels ignored):
    each batch gets the same checks, with the same messages, before its work, and is moved to the
    first model's device. The plans come from the first batch, so batches are those of the tensor
    call (a ``DataLoader``'s own batches are split to the planned size); results do not depend on it.
    """
    from pyadvt.data.stream import as_data, iter_batches

    to_plan = tuple(models.values())[:n_plan]
    if isinstance(x, torch.Tensor):
        check_batch(x)
        check_inputs(x, models=models, batch_size=batch_size)
        plans, b = plan_models(to_plan, x, batch_size, route=route, max_memory=max_memory, what=what)
        for sl in batches(x.shape[0], b, progress=progress, desc=what):
            yield plans, x[sl]
        return
    _check_auto_batch_size(batch_size)
    data = as_data(x)
    first = next(iter(models.values()))
    device = model_device(first) if isinstance(first, nn.Module) else None
    plans, b = None, 0
    for xb, _ in iter_batches(data, batch_size or DEFAULT_BATCH_SIZE, device=device, progress=progress, desc=what,
                              labels=False):
        check_batch(xb)
        check_inputs(xb, models=models)
        if plans is None:
            plans, b = plan_models(to_plan, xb, batch_size, route=route, max_memory=max_memory, what=what)
        for i in range(0, xb.shape[0], b):
            yield plans, xb[i:i + b]


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> float:
    n = int(valid.sum())
    return float(values[valid].double().mean()) if n else float("nan")


@dataclass
class Tau1Result:
    """``per_sample [N]`` tau1(x) (0 where undefined), ``valid [N]`` bool, ``tau1`` = mean over valid
    samples (also the headline ``value``), ``n_undefined``, ``n_degenerate`` (valid samples whose top
    singular value is degenerate for either model: v1 is then not unique and tau1(x) depends on the solver's choice) and
    ``n_not_converged`` (valid samples where the matrix-free route hit its iteration cap for either
    model; their last Lanczos estimates are used).

    Returned by :func:`tau1` (seed 000 Definition 2, docs/theory.md §2).

    Example:
        >>> import torch
        >>> r = Tau1Result(per_sample=torch.tensor([0.2, 0.6, 0.0]), valid=torch.tensor([True, True, False]),
        ...                n_degenerate=0)
        >>> round(r.tau1, 6), round(r.value, 6), r.n_undefined
        (0.4, 0.4, 1)
    """

    per_sample: torch.Tensor
    valid: torch.Tensor
    n_degenerate: int
    n_not_converged: int = 0

    @property
    def tau1(self) -> float:
        return _masked_mean(self.per_sample, self.valid)

    @property
    def value(self) -> float:
        """The headline number: :attr:`tau1`."""
        return self.tau1

    @property
    def n_undefined(self) -> int:
        return int((~self.valid).sum())

    def summary(self) -> dict:
        return {"tau1": self.tau1, "n": int(self.valid.numel()), "n_undefined": self.n_undefined,
                "n_degenerate": self.n_degenerate, "n_not_converged": self.n_not_converged}


@dataclass
class SingularValueRatio:
    """Per-sample ``lam = sigma2 / sigma1`` of ``J_f(x)`` (``[N]``, 0 where undefined), ``sigma1``,
    ``sigma2`` (``[N]``) and ``valid [N]``; ``worst`` = ``max`` over valid samples (Definition 4), also
    the headline ``value``.

    Returned by :func:`singular_value_ratio` (seed 000 Definition 4, docs/theory.md §2).

    Example:
        >>> import torch
        >>> r = SingularValueRatio(lam=torch.tensor([0.25, 0.5]), sigma1=torch.tensor([4.0, 2.0]),
        ...                        sigma2=torch.tensor([1.0, 1.0]), valid=torch.tensor([True, True]))
        >>> r.worst, r.value
        (0.5, 0.5)
    """

    lam: torch.Tensor
    sigma1: torch.Tensor
    sigma2: torch.Tensor
    valid: torch.Tensor

    @property
    def worst(self) -> float:
        return float(self.lam[self.valid].max()) if bool(self.valid.any()) else float("nan")

    @property
    def value(self) -> float:
        """The headline number: :attr:`worst` (Definition 4's ``lambda``)."""
        return self.worst

    @property
    def mean(self) -> float:
        return _masked_mean(self.lam, self.valid)

    @property
    def n_undefined(self) -> int:
        return int((~self.valid).sum())

    def summary(self) -> dict:
        return {"lambda_max": self.worst, "lambda_mean": self.mean,
                "sigma1_mean": _masked_mean(self.sigma1, self.valid),
                "n": int(self.valid.numel()), "n_undefined": self.n_undefined}


def tau1_from_directions(v1_s: torch.Tensor, v1_t: torch.Tensor) -> torch.Tensor:
    """``<v1_S, v1_T>^2`` row-wise for unit vectors ``[B, n]`` (clamped to [0, 1] against rounding)."""
    return (v1_s * v1_t).sum(-1).square().clamp(0.0, 1.0)


class Tau1Stats:
    """Per-sample tau1 accumulated batch by batch from the two models' virtual directions."""

    def __init__(self) -> None:
        self.vals: list[torch.Tensor] = []
        self.valid: list[torch.Tensor] = []
        self.degenerate = 0
        self.not_converged = 0

    def add(self, ds, dt) -> None:
        """Add one batch: ``ds``, ``dt`` the :class:`~pyadvt.attacks.virtual.VirtualDirection` of the
        source and the target (a sample is valid when both directions are defined)."""
        ok = ds.valid & dt.valid
        self.vals.append(torch.where(ok, tau1_from_directions(ds.v1, dt.v1.to(ds.v1.dtype)),
                                     torch.zeros_like(ds.sigma1)))
        self.valid.append(ok)
        flags = ds.flags | dt.flags
        self.degenerate += int((ok & ((flags & 2) != 0)).sum())
        self.not_converged += int((ok & ((flags & FLAG_NOT_CONVERGED) != 0)).sum())

    def result(self, what: str) -> Tau1Result:
        """The :class:`Tau1Result`, warning (as ``what``) about undefined and unconverged samples."""
        res = Tau1Result(per_sample=torch.cat(self.vals), valid=torch.cat(self.valid), n_degenerate=self.degenerate,
                         n_not_converged=self.not_converged)
        n = int(res.valid.numel())
        warn_undefined(res.n_undefined, n, what, stacklevel=4)
        warn_not_converged(self.not_converged, n, what, stacklevel=4)
        return res


def tau1(source: nn.Module, target: nn.Module, x: Data, *, batch_size: int | None = None, progress: bool = False,
         method: str = "auto", route: str = "auto", max_memory: int | str | None = None) -> Tau1Result:
    """Adversarial transferability (angle) from ``source`` to ``target``: ``tau1(x) = <v1_S(x), v1_T(x)>^2``.

    docs/theory.md §2; seed 000 (Liang et al., ICML 2021) Definition 2, with ``v1_f(x)`` the top
    right singular vector of the input Jacobian ``J_f(x)`` (Definition 1's virtual attack).

    Args:
        source, target: models ``[B, *in] -> [B, m]`` and ``[B, *in] -> [B, d]`` (same input space;
            output sizes may differ). Run in eval mode, restored on exit.
        x: ``[N, *in_shape]`` evaluation samples in [0, 1] (not modified); or an ``(x, y)`` pair, a
            ``TensorData``, a ``Dataset`` of ``(x, y)`` or a ``DataLoader`` (labels unused), walked
            one batch at a time on the source's device (:func:`pyadvt.data.iter_batches`): at most
            one batch of the dataset is held, and the result equals the tensor call.
        batch_size: samples per batch; ``None`` (default): up to 256, fewer when ``max_memory`` needs
            it (results do not depend on the batch size).
        progress: show a tqdm bar.
        method: Jacobian method of the dense route (:func:`pyadvt.ops.jacobian.jacobian`).
        route: ``"auto"`` (cost/memory model), ``"dense"`` or ``"matrix_free"``.
        max_memory: memory budget per batch (bytes or e.g. ``"3GiB"``; default
            :func:`pyadvt.ops.budget.resolve_max_memory`).

    Returns:
        :class:`Tau1Result`: ``.per_sample [N]`` (0 where undefined), ``.valid [N]``, ``.tau1`` the
        mean over valid samples, ``.summary()``.

    Raises:
        TypeError: ``x`` is not a tensor or a dataset source, or its dtype is not the models'.
        ValueError: an empty ``x``, values outside [0, 1], a bad ``batch_size`` (a streamed batch is
            checked before its own work, with the messages of the tensor call).
        pyadvt.ops.budget.MemoryBudgetError: neither route fits ``max_memory`` at this ``batch_size``
            (raised before any backward pass).

    Example:
        >>> import torch
        >>> S = torch.nn.Linear(2, 1); T = torch.nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = S.weight.copy_(torch.tensor([[1.0, 0.0]])); _ = T.weight.copy_(torch.tensor([[1.0, 1.0]]))
        >>> x = torch.rand(4, 2)
        >>> round(tau1(S, T, x).tau1, 6), round(tau1(S, T, torch.utils.data.TensorDataset(x)).tau1, 6)
        (0.5, 0.5)
    """
    stats = Tau1Stats()
    for (ps, pt), xb in planned_batches(x, {"source": source, "target": target}, batch_size, route=route,
                                        max_memory=max_memory, what="tau1", progress=progress):
        stats.add(virtual_direction(source, xb, method=method, plan=ps, keep_jac=False),
                  virtual_direction(target, xb, method=method, plan=pt, keep_jac=False))
    return stats.result("tau1")


def singular_value_ratio(model: nn.Module, x: Data, *, batch_size: int | None = None, progress: bool = False,
                         method: str = "auto", route: str = "auto",
                         max_memory: int | str | None = None) -> SingularValueRatio:
    """Singular-value ratio ``lambda_f(x) = sigma2(x) / sigma1(x)`` of the input Jacobian ``J_f(x)``.

    docs/theory.md §2; seed 000 (Liang et al., ICML 2021) Definition 4, whose worst case
    ``lambda_f = max_x lambda_f(x)`` enters Theorem 2.

    Args:
        model: ``[B, *in] -> [B, m]`` (eval mode inside).
        x: ``[N, *in_shape]`` samples in [0, 1]; or a dataset source as in :func:`tau1` (walked one
            batch at a time, result equal to the tensor call).
        batch_size, progress, method, route, max_memory: as :func:`tau1`.

    Returns:
        :class:`SingularValueRatio`: per-sample ``lam``, ``sigma1``, ``sigma2`` ``[N]`` (0 where
        undefined), ``valid [N]`` and ``.worst`` = the max over valid samples.

    Raises:
        TypeError, ValueError, pyadvt.ops.budget.MemoryBudgetError: as :func:`tau1`.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(3, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = net.weight.copy_(torch.tensor([[2.0, 0, 0], [0, 1.0, 0]]))
        >>> singular_value_ratio(net, torch.rand(5, 3)).worst
        0.5
        >>> singular_value_ratio(net, torch.utils.data.DataLoader(torch.rand(5, 3), batch_size=2)).worst
        0.5
    """
    lam, s1, s2, valid = [], [], [], []
    for (plan,), xb in planned_batches(x, {"model": model}, batch_size, route=route, max_memory=max_memory,
                                       what="singular_value_ratio", progress=progress):
        d = virtual_direction(model, xb, method=method, plan=plan, keep_jac=False)
        ok = d.valid
        zero = torch.zeros_like(d.lam)
        lam.append(torch.where(ok, d.lam, zero))
        s1.append(torch.where(ok, d.sigma1, zero))
        s2.append(torch.where(ok, d.sigma2, zero))
        valid.append(ok)
    res = SingularValueRatio(lam=torch.cat(lam), sigma1=torch.cat(s1), sigma2=torch.cat(s2), valid=torch.cat(valid))
    warn_undefined(res.n_undefined, int(res.valid.numel()), "singular_value_ratio")
    return res
