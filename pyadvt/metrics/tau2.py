"""Adversarial transferability (deviation) ``tau2`` of seed 000, Definition 3 (docs/theory.md §2, §9).

With the source's virtual attack ``delta_S(x) = eps * v1_S(x)`` and the deviations (eq. 1)
``U(x) = J_S(x) delta_S(x)`` (``[m]``) and ``V(x) = J_T(x) delta_S(x)`` (``[d]``):

* ``B* = E[V U^T] (E[U U^T])^+`` (Moore-Penrose pseudo-inverse),
* ``r = sqrt(E||V||^2) / sqrt(E||U||^2)``,
* ``A = proj(B*, r)``: ``B*`` if ``||B*||_2 <= r`` else ``r B* / ||B*||_2``,
* ``tau2 = E<2V - A U, A U> / E||V||^2`` in [0, 1] (Proposition 1). For scalar outputs it reduces
  to ``E[UV]^2 / (E[U^2] E[V^2])``.

No Jacobian is needed: ``U = eps J_S v1_S`` and ``V = J_T delta_S`` are Jacobian-vector products
(``v1_S`` from the dense or the matrix-free route of :func:`pyadvt.attacks.virtual.virtual_direction`,
chosen by the memory model before the first backward pass, docs/theory.md §9).

tau2 is a population quantity: it is computed from the sufficient statistics ``E[V U^T]``,
``E[U U^T]``, ``E||V||^2``, ``E||U||^2`` accumulated over batches in float64, so batch size never
changes the result. It does not depend on ``eps`` (U and V scale together) nor on the sign of v1.

Example:
    >>> import torch
    >>> S = torch.nn.Linear(6, 3)
    >>> round(tau2(S, S, torch.rand(16, 6)).tau2, 6)
    1.0
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from pyadvt.attacks.virtual import virtual_direction
from pyadvt.metrics.spectral import Tau1Result, Tau1Stats, planned_batches, warn_undefined
from pyadvt.ops.precision import float32_compute
from pyadvt.ops.jacobian import jvp
from pyadvt.utils.deprecation import renamed_names

if TYPE_CHECKING:
    from pyadvt.metrics._pair_data import Data

__all__ = ["Tau2Result", "Tau2Stats", "AdversarialTransferabilityResult", "adversarial_transferability", "project_spectral",
           "tau2", "tau2_from_deviations"]


def project_spectral(B: torch.Tensor, r: float) -> torch.Tensor:
    """``proj(B, r)``: ``B`` if ``||B||_2 <= r`` else ``r B / ||B||_2`` (seed 000 notation)."""
    norm = float(torch.linalg.matrix_norm(B, ord=2)) if B.numel() else 0.0
    return B if norm <= r else B * (r / norm)


@dataclass
class Tau2Result:
    """tau2 (clamped to [0, 1]; ``raw`` is the unclamped value, which Proposition 1 puts in [0, 1] up
    to rounding) and its ingredients: ``A [d, m]`` (projected), ``B_star [d, m]``, ``r``, the
    statistics ``EVU [d, m]``, ``EUU [m, m]``, ``EVV = E||V||^2``, ``EUU_trace = E||U||^2`` (float64), and
    the counts ``n`` (valid samples) and ``n_undefined``. The headline ``value`` is :attr:`tau2`.

    An aggregate: tau2 is one number fitted to the pooled statistics of the valid samples, with no
    per-sample value, so there is no ``valid`` mask; ``n_undefined`` counts the masked samples.

    Returned by :func:`tau2` (seed 000 Definition 3, docs/theory.md §2).

    Example:
        >>> import torch
        >>> A = torch.tensor([[0.5]], dtype=torch.float64)
        >>> r = Tau2Result(tau2=0.25, A=A, B_star=A.clone(), r=1.0, EVU=A.clone(), EUU=torch.ones(1, 1),
        ...                EVV=1.0, n=4)
        >>> r.projected, r.summary()["A_norm"], r.value
        (False, 0.5, 0.25)
    """

    tau2: float
    A: torch.Tensor
    B_star: torch.Tensor
    r: float
    EVU: torch.Tensor
    EUU: torch.Tensor
    EVV: float
    n: int
    n_undefined: int = 0
    raw: float = float("nan")

    @property
    def value(self) -> float:
        """The headline number: :attr:`tau2`."""
        return self.tau2

    @property
    def projected(self) -> bool:
        """True when ``||B*||_2 > r`` and the projection shrank it."""
        return not torch.equal(self.A, self.B_star)

    def summary(self) -> dict:
        return {"tau2": self.tau2, "r": self.r, "A_norm": float(torch.linalg.matrix_norm(self.A, ord=2)),
                "projected": self.projected, "n": self.n, "n_undefined": self.n_undefined}


@dataclass
class Tau2Stats:
    """Streaming sufficient statistics of (U, V) pairs; :meth:`result` gives :class:`Tau2Result`."""

    svu: torch.Tensor | None = None
    suu: torch.Tensor | None = None
    svv: float = 0.0
    n: int = 0
    n_undefined: int = 0

    def add(self, U: torch.Tensor, V: torch.Tensor) -> None:
        """Add deviations ``U [B, m]``, ``V [B, d]`` of valid samples."""
        U, V = U.detach().double(), V.detach().double()
        if self.svu is None:
            self.svu = torch.zeros(V.shape[1], U.shape[1], dtype=torch.float64, device=U.device)
            self.suu = torch.zeros(U.shape[1], U.shape[1], dtype=torch.float64, device=U.device)
        self.svu += V.T @ U
        self.suu += U.T @ U
        self.svv += float(V.square().sum())
        self.n += U.shape[0]

    def add_batch(self, U: torch.Tensor, V: torch.Tensor, ds) -> None:
        """Add one batch's deviations, masking (and counting) the samples whose source direction
        ``ds`` is undefined or whose ``U`` / ``V`` is not finite."""
        ok = ds.valid & torch.isfinite(V).all(1) & torch.isfinite(U).all(1)
        self.add(U[ok], V[ok])
        self.n_undefined += int((~ok).sum())

    def result(self) -> Tau2Result:
        if self.n == 0 or self.svu is None:
            raise ValueError("tau2 is undefined: no sample has a nonzero, finite source Jacobian")
        EVU, EUU, EVV = self.svu / self.n, self.suu / self.n, self.svv / self.n
        EUU_tr = float(torch.trace(EUU))
        B_star = EVU @ torch.linalg.pinv(EUU, hermitian=True)
        if EVV <= 0.0:  # the target does not move at all along the source's attacks
            nan = float("nan")
            return Tau2Result(nan, torch.zeros_like(B_star), B_star, 0.0, EVU, EUU, EVV, self.n, self.n_undefined, nan)
        r = (EVV / EUU_tr) ** 0.5
        A = project_spectral(B_star, r)
        # E<2V - AU, AU> = 2 tr(A^T E[V U^T]) - tr(A E[U U^T] A^T)
        num = 2.0 * float((A * EVU).sum()) - float(torch.trace(A @ EUU @ A.T))
        raw = num / EVV
        return Tau2Result(min(max(raw, 0.0), 1.0), A, B_star, r, EVU, EUU, EVV, self.n, self.n_undefined, raw)


def tau2_from_deviations(U: torch.Tensor, V: torch.Tensor) -> Tau2Result:
    """tau2 from per-sample deviations ``U [N, m]`` (source) and ``V [N, d]`` (target), docs/theory.md §2
    (seed 000 Definition 3 on eq. (1)'s deviations). Rows with a non-finite entry are undefined:
    masked, counted in ``n_undefined`` and warned about.

    Raises ``TypeError`` for non-floating inputs and ``ValueError`` for mismatched or empty shapes, or
    when no row is finite.

    Example:
        >>> U = torch.tensor([[1.0], [2.0]]); V = 3 * U
        >>> round(tau2_from_deviations(U, V).tau2, 6)
        1.0
    """
    for name, t in (("U", U), ("V", V)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"'{name}' must be a floating-point tensor, got "
                            f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}")
    if U.dim() != 2 or V.dim() != 2 or U.shape[0] != V.shape[0]:
        raise ValueError(f"'U' and 'V' must be [N, m] and [N, d] with the same N, got {tuple(U.shape)} and "
                         f"{tuple(V.shape)}")
    if U.shape[0] == 0 or U.shape[1] == 0 or V.shape[1] == 0:
        raise ValueError(f"'U' and 'V' are empty (shapes {tuple(U.shape)} and {tuple(V.shape)}); pass at least one "
                         "sample with at least one output each")
    ok = torch.isfinite(U).all(1) & torch.isfinite(V).all(1)
    stats = Tau2Stats()
    stats.add(U[ok], V[ok])
    stats.n_undefined = int((~ok).sum())
    if stats.n_undefined:
        warnings.warn(f"tau2_from_deviations: {stats.n_undefined} of {U.shape[0]} rows of 'U' / 'V' are not finite; "
                      "they are undefined, masked and skipped by the expectations", RuntimeWarning, stacklevel=2)
    return stats.result()


def _deviations(source, target, x, eps: float, method: str, plans, target_spectrum: bool):
    """(U, V, source direction, target direction or None) for one batch: ``U = eps J_S v1_S`` and
    ``V = J_T (eps v1_S)`` (a JVP of the target)."""
    ps, pt = plans
    ds = virtual_direction(source, x, method=method, plan=ps, want_jv1=True, keep_jac=False)
    delta = eps * ds.v1
    U = eps * ds.jv1
    dt = None
    if target_spectrum:  # the dense route's Jacobian gives V for free; otherwise one JVP
        dt = virtual_direction(target, x, method=method, plan=pt, keep_jac=pt.route == "dense")
    if dt is not None and dt.jac is not None:
        V = torch.einsum("bdn,bn->bd", dt.jac, delta.to(dt.jac.dtype))
    else:
        t32, x32 = float32_compute(target, x)
        V = jvp(t32, x32, delta.reshape(x.shape).to(x32.dtype))
    return U, V, ds, dt


def _check_eps(eps) -> float:
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise ValueError(f"'eps' must be a positive number, got {eps!r}")
    return float(eps)


def tau2(source: nn.Module, target: nn.Module, x: Data, eps: float = 1.0, *, batch_size: int | None = None,
         progress: bool = False, method: str = "auto", route: str = "auto",
         max_memory: int | str | None = None) -> Tau2Result:
    """Adversarial transferability (deviation) from ``source`` to ``target``.

    docs/theory.md §2; seed 000 (Liang et al., ICML 2021) Definition 3 with the deviations of eq. (1):
    ``U = J_S delta_S`` from the source's spectrum, ``V = J_T delta_S`` from one batched JVP of the
    target, ``tau2 = E<2V - A U, A U> / E||V||^2`` from float64 sufficient statistics.

    Args:
        source: ``[B, *in] -> [B, m]``; target: ``[B, *in] -> [B, d]`` (eval mode inside).
        x: ``[N, *in_shape]`` samples in [0, 1] (the distribution D); or an ``(x, y)`` pair, a
            ``TensorData``, a ``Dataset`` or a ``DataLoader`` (labels unused) walked one batch at a
            time on the source's device (:func:`pyadvt.data.iter_batches`), result equal to the tensor call.
        eps: attack radius (tau2 does not depend on it; kept for fidelity with the definition).
        batch_size, progress, method: batching (``None``: as large as fits, up to 256), tqdm bar,
            Jacobian method of the dense route.
        route, max_memory: route of the source's spectrum and the memory budget
            (:func:`pyadvt.metrics.spectral.tau1`); the target needs only a JVP.

    Returns:
        :class:`Tau2Result` (``.tau2``, ``.A [d, m]``, ``.summary()``).

    Raises:
        TypeError, ValueError, pyadvt.ops.budget.MemoryBudgetError: as :func:`pyadvt.metrics.tau1`;
            ``ValueError`` also for ``eps <= 0`` and when no sample has a defined source direction.

    Example:
        >>> S = torch.nn.Linear(4, 1); T = torch.nn.Linear(4, 1)
        >>> x = torch.rand(10, 4)
        >>> 0.0 <= tau2(S, T, x).tau2 <= 1.0
        True
        >>> abs(tau2(S, T, torch.utils.data.TensorDataset(x)).tau2 - tau2(S, T, x).tau2) < 1e-12
        True
    """
    eps = _check_eps(eps)
    stats = Tau2Stats()
    for plans, xb in planned_batches(x, {"source": source, "target": target}, batch_size, n_plan=1, route=route,
                                     max_memory=max_memory, what="tau2", progress=progress):
        U, V, ds, _ = _deviations(source, target, xb, eps, method, plans + [None], target_spectrum=False)
        stats.add_batch(U, V, ds)
    warn_undefined(stats.n_undefined, stats.n + stats.n_undefined, "tau2")
    return stats.result()


@dataclass
class AdversarialTransferabilityResult:
    """tau1 and tau2 from one pass (both Jacobians per batch).

    The protocol follows the per-sample part, tau1: ``valid`` (``[N]`` bool) and ``n_undefined`` are
    those of :attr:`tau1`, and the headline ``value`` is ``tau1.tau1``; tau2's own number is
    ``tau2.value`` (its masked-sample count ``tau2.n_undefined`` may be smaller: tau2 masks only
    samples undefined for the source).

    Returned by :func:`adversarial_transferability` (seed 000 Definitions 2-3, docs/theory.md §2).

    Example:
        >>> import torch
        >>> t1 = Tau1Result(per_sample=torch.tensor([0.5, 0.7]), valid=torch.tensor([True, True]), n_degenerate=0)
        >>> A = torch.ones(1, 1, dtype=torch.float64)
        >>> t2 = Tau2Result(tau2=0.9, A=A, B_star=A, r=1.0, EVU=A, EUU=A, EVV=1.0, n=2)
        >>> s = AdversarialTransferabilityResult(t1, t2).summary()
        >>> round(s["tau1"], 6), s["tau2"], round(AdversarialTransferabilityResult(t1, t2).value, 6)
        (0.6, 0.9, 0.6)
    """

    tau1: Tau1Result
    tau2: Tau2Result
    extra: dict = field(default_factory=dict)

    @property
    def valid(self) -> torch.Tensor:
        """``[N]`` bool: :attr:`Tau1Result.valid` of :attr:`tau1`."""
        return self.tau1.valid

    @property
    def n_undefined(self) -> int:
        """:attr:`Tau1Result.n_undefined` of :attr:`tau1`."""
        return self.tau1.n_undefined

    @property
    def value(self) -> float:
        """The headline number: ``tau1.tau1`` (tau2 is ``tau2.value``)."""
        return self.tau1.tau1

    def summary(self) -> dict:
        return {"tau1": self.tau1.tau1, "tau2": self.tau2.tau2, "n": self.tau2.n,
                "n_undefined": self.tau1.n_undefined}


def adversarial_transferability(source: nn.Module, target: nn.Module, x: Data, eps: float = 1.0, *,
                                batch_size: int | None = None, progress: bool = False, method: str = "auto",
                                route: str = "auto", max_memory: int | str | None = None) -> AdversarialTransferabilityResult:
    """tau1 (Definition 2) and tau2 (Definition 3, source -> target) sharing one spectrum of each model per batch.

    docs/theory.md §2; seed 000 (Liang et al., ICML 2021) Definitions 2-3. ``route`` / ``max_memory``
    as :func:`pyadvt.metrics.spectral.tau1` (both models planned before the first backward pass);
    ``V`` is a JVP of the target, or read off its dense Jacobian.

    tau1 masks samples whose direction is undefined for either model; tau2 only those undefined for the
    source (a zero target Jacobian gives ``V = 0``, a legitimate deviation), as :func:`tau2` does.

    Args:
        source, target: models ``[B, *in] -> [B, m]`` and ``[B, *in] -> [B, d]``.
        x: ``[N, *in_shape]`` samples in [0, 1], or a dataset source as in :func:`tau2` (walked one
            batch at a time, result equal to the tensor call).
        eps, batch_size, progress, method, route, max_memory: as :func:`tau2`.

    Returns:
        :class:`AdversarialTransferabilityResult` with ``.tau1`` (:class:`~pyadvt.metrics.spectral.Tau1Result`)
        and ``.tau2`` (:class:`Tau2Result`).

    Raises:
        TypeError, ValueError, pyadvt.ops.budget.MemoryBudgetError: as :func:`tau2`.

    Example:
        >>> S = torch.nn.Linear(4, 3)
        >>> r = adversarial_transferability(S, S, torch.rand(8, 4))
        >>> round(r.tau1.tau1, 6), round(r.tau2.tau2, 6)
        (1.0, 1.0)
    """
    eps = _check_eps(eps)
    stats, t1 = Tau2Stats(), Tau1Stats()
    for plans, xb in planned_batches(x, {"source": source, "target": target}, batch_size, route=route,
                                     max_memory=max_memory, what="adversarial_transferability", progress=progress):
        U, V, ds, dt = _deviations(source, target, xb, eps, method, plans, target_spectrum=True)
        t1.add(ds, dt)
        stats.add_batch(U, V, ds)  # tau2 needs only the source's attack: a zero target Jacobian is a legitimate V = 0
    return AdversarialTransferabilityResult(tau1=t1.result("tau1/tau2"), tau2=stats.result())

__getattr__ = renamed_names(__name__, {"TransferabilityResult": "AdversarialTransferabilityResult"})  # the former name, for one release
