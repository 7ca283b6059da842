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
    >>> import torch
    >>> S = torch.nn.Linear(5, 3)
    >>> round(tau1(S, S, torch.rand(8, 5)).tau1, 6)
    1.0
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from pyadvt.attacks.virtual import virtual_direction
from pyadvt.ops.budget import MemoryBudgetError, RoutePlan, plan_route
from pyadvt.ops.matrix_free import FLAG_NOT_CONVERGED
from pyadvt.ops.precision import float32_compute
from pyadvt.utils.progress import progress as _progress
from pyadvt.utils.validation import check_inputs


def batches(n: int, batch_size: int, *, progress: bool = False, desc: str | None = None) -> Iterator[slice]:
    """Slices ``[i, i + batch_size)`` covering ``range(n)``, with an optional progress bar."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"'batch_size' must be a positive int, got {batch_size!r}")
    starts = range(0, n, batch_size)
    for i in _progress(starts, desc=desc, enabled=progress, total=len(starts)):
        yield slice(i, min(i + batch_size, n))


def warn_undefined(n_undefined: int, n_total: int, what: str) -> None:
    """Warn (docs/theory.md §0) that ``n_undefined`` of ``n_total`` samples were masked out of ``what``."""
    if n_undefined:
        warnings.warn(f"{what}: {n_undefined} of {n_total} samples have a zero or non-finite Jacobian; "
                      "they are undefined, masked and skipped by the means", RuntimeWarning, stacklevel=3)


def warn_not_converged(n: int, n_total: int, what: str) -> None:
    """Warn that the matrix-free route hit its iteration cap on ``n`` of ``n_total`` samples."""
    if n:
        warnings.warn(f"{what}: Lanczos did not converge within max_iter on {n} of {n_total} samples; their last "
                      "estimates are used (flag FLAG_NOT_CONVERGED)", RuntimeWarning, stacklevel=3)


def check_batch(x, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"'{name}' must be a non-empty batch [B, *in_shape], got shape {tuple(x.shape)}")


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
    if not auto and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"'batch_size' must be a positive int or None (as large as fits), got {batch_size!r}")
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


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> float:
    n = int(valid.sum())
    return float(values[valid].double().mean()) if n else float("nan")


@dataclass
class Tau1Result:
    """``per_sample [N]`` tau1(x) (0 where undefined), ``valid [N]`` bool, ``tau1`` = mean over valid
    samples, ``n_undefined``, ``n_degenerate`` (valid samples whose top singular value is degenerate
    for either model: v1 is then not unique and tau1(x) depends on the solver's choice) and
    ``n_not_converged`` (valid samples where the matrix-free route hit its iteration cap for either
    model; their last Lanczos estimates are used)."""

    per_sample: torch.Tensor
    valid: torch.Tensor
    n_degenerate: int
    n_not_converged: int = 0

    @property
    def tau1(self) -> float:
        return _masked_mean(self.per_sample, self.valid)

    @property
    def n_undefined(self) -> int:
        return int((~self.valid).sum())

    def summary(self) -> dict:
        return {"tau1": self.tau1, "n": int(self.valid.numel()), "n_undefined": self.n_undefined,
                "n_degenerate": self.n_degenerate, "n_not_converged": self.n_not_converged}


@dataclass
class SingularValueRatio:
    """Per-sample ``lam = sigma2 / sigma1`` of ``J_f(x)`` (``[N]``, 0 where undefined), ``sigma1``,
    ``sigma2`` (``[N]``) and ``valid [N]``; ``worst`` = ``max`` over valid samples (Definition 4)."""

    lam: torch.Tensor
    sigma1: torch.Tensor
    sigma2: torch.Tensor
    valid: torch.Tensor

    @property
    def worst(self) -> float:
        return float(self.lam[self.valid].max()) if bool(self.valid.any()) else float("nan")

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


def tau1(source, target, x: torch.Tensor, *, batch_size: int | None = None, progress: bool = False,
         method: str = "auto", route: str = "auto", max_memory=None) -> Tau1Result:
    """Adversarial transferability (angle), seed 000 Definition 2: ``tau1(x) = <v1_S, v1_T>^2``.

    Args:
        source, target: models ``[B, *in] -> [B, m]`` and ``[B, *in] -> [B, d]`` (same input space;
            output sizes may differ). Run in eval mode, restored on exit.
        x: ``[N, *in_shape]`` evaluation samples (not modified).
        batch_size: samples per batch; ``None`` (default): up to 256, fewer when ``max_memory`` needs
            it (results do not depend on the batch size).
        progress: show a tqdm bar.
        method: Jacobian method of the dense route (:func:`pyadvt.ops.jacobian.jacobian`).
        route: ``"auto"`` (cost/memory model), ``"dense"`` or ``"matrix_free"``.
        max_memory: memory budget per batch (bytes or e.g. ``"3GiB"``; default
            :func:`pyadvt.ops.budget.resolve_max_memory`).

    Returns:
        :class:`Tau1Result` (``.tau1`` the mean, ``.per_sample``, ``.summary()``).

    Raises:
        pyadvt.ops.budget.MemoryBudgetError: neither route fits ``max_memory`` at this ``batch_size``
            (raised before any backward pass).

    Example:
        >>> import torch
        >>> S = torch.nn.Linear(2, 1); T = torch.nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = S.weight.copy_(torch.tensor([[1.0, 0.0]])); _ = T.weight.copy_(torch.tensor([[1.0, 1.0]]))
        >>> round(tau1(S, T, torch.rand(4, 2)).tau1, 6)
        0.5
    """
    check_batch(x)
    check_inputs(x, models={"source": source, "target": target}, batch_size=batch_size)
    (ps, pt), batch_size = plan_models((source, target), x, batch_size, route=route, max_memory=max_memory,
                                       what="tau1")
    vals, valid, degenerate, not_conv = [], [], 0, 0
    for sl in batches(x.shape[0], batch_size, progress=progress, desc="tau1"):
        ds = virtual_direction(source, x[sl], method=method, plan=ps, keep_jac=False)
        dt = virtual_direction(target, x[sl], method=method, plan=pt, keep_jac=False)
        ok = ds.valid & dt.valid
        t = torch.where(ok, tau1_from_directions(ds.v1, dt.v1), torch.zeros_like(ds.sigma1))
        vals.append(t)
        valid.append(ok)
        degenerate += int((ok & (((ds.flags | dt.flags) & 2) != 0)).sum())
        not_conv += int((ok & (((ds.flags | dt.flags) & FLAG_NOT_CONVERGED) != 0)).sum())
    res = Tau1Result(per_sample=torch.cat(vals), valid=torch.cat(valid), n_degenerate=degenerate,
                     n_not_converged=not_conv)
    warn_undefined(res.n_undefined, x.shape[0], "tau1")
    warn_not_converged(not_conv, x.shape[0], "tau1")
    return res


def singular_value_ratio(model, x: torch.Tensor, *, batch_size: int | None = None, progress: bool = False,
                         method: str = "auto", route: str = "auto", max_memory=None) -> SingularValueRatio:
    """Singular-value ratio ``lambda_f(x) = sigma2(x) / sigma1(x)`` of ``J_f(x)`` (seed 000 Def. 4).

    Args:
        model: ``[B, *in] -> [B, m]`` (eval mode inside).
        x: ``[N, *in_shape]`` samples.
        batch_size, progress, method, route, max_memory: as :func:`tau1`.

    Returns:
        :class:`SingularValueRatio` with per-sample ``lam``, ``sigma1``, ``sigma2`` and ``.worst`` = max.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(3, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = net.weight.copy_(torch.tensor([[2.0, 0, 0], [0, 1.0, 0]]))
        >>> singular_value_ratio(net, torch.rand(5, 3)).worst
        0.5
    """
    check_batch(x)
    check_inputs(x, models={"model": model}, batch_size=batch_size)
    (plan,), batch_size = plan_models((model,), x, batch_size, route=route, max_memory=max_memory,
                                      what="singular_value_ratio")
    lam, s1, s2, valid = [], [], [], []
    for sl in batches(x.shape[0], batch_size, progress=progress, desc="singular value ratio"):
        d = virtual_direction(model, x[sl], method=method, plan=plan, keep_jac=False)
        ok = d.valid
        zero = torch.zeros_like(d.lam)
        lam.append(torch.where(ok, d.lam, zero))
        s1.append(torch.where(ok, d.sigma1, zero))
        s2.append(torch.where(ok, d.sigma2, zero))
        valid.append(ok)
    res = SingularValueRatio(lam=torch.cat(lam), sigma1=torch.cat(s1), sigma2=torch.cat(s2), valid=torch.cat(valid))
    warn_undefined(res.n_undefined, x.shape[0], "singular_value_ratio")
    return res
