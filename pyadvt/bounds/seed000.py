"""Evaluators of seed 000's theory (Liang et al., ICML 2021; docs/theory.md §2): both sides of
Theorem 1 (identity), Theorem 2 (general and Lipschitz forms), Theorem 3 and Proposition 2.

The distribution ``D`` is the empirical distribution of the given samples ``x`` (those with a
defined virtual attack for both models). All the quantities come from the per-sample input
Jacobians ``J_S(x) [m, n]``, ``J_T(x) [d, n]`` (float64 recommended for checking identities) -
materialised on the dense route (``m, d <= 64``), or only through products on the matrix-free route
(docs/theory.md §9, chosen per model by :func:`pyadvt.ops.budget.plan_route` before any backward):
there ``U``, ``V`` are JVPs and ``||J_T(x) - A J_S(x)||_2`` is the top singular value of the
Jacobian of ``h(x) = f_T(x) - A f_S(x)``, found by the same Lanczos solver:

* ``tau1(x) = <v1_S, v1_T>^2``, ``tau1 = E tau1(x)``; ``tau2`` and the affine map's matrix ``A``
  from :func:`pyadvt.metrics.tau2.tau2_from_deviations` with ``U = J_S v1_S``, ``V = J_T v1_S``;
* ``lambda_f(x) = sigma2 / sigma1`` of ``J_f(x)``, ``lambda_f = max_x``;
* ``||F||_{D,2} = sqrt(E ||F(x)||_2^2)`` (spectral norm per sample);
* the Lipschitz constant ``L`` defaults to ``max_x ||J_T(x)||_2`` over ``D`` (what the proofs use).

Each evaluator returns a dataclass with ``lhs`` and ``rhs`` (and ``holds``/``summary()``).

Example:
    >>> import torch
    >>> S, T = torch.nn.Linear(4, 1).double(), torch.nn.Linear(4, 1).double()
    >>> r = theorem1(S, T, torch.rand(20, 4, dtype=torch.float64))
    >>> abs(r.lhs - r.rhs) <= 1e-9 * r.rhs
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from torch import nn

from pyadvt.attacks.virtual import virtual_direction
from pyadvt.metrics.spectral import batches, check_batch, plan_models, tau1_from_directions, warn_undefined
from pyadvt.metrics.tau2 import Tau2Result, tau2_from_deviations
from pyadvt.ops.jacobian import jvp
from pyadvt.ops.matrix_free import jacobian_top_singular
from pyadvt.utils.modes import evaluating
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError, check_tensor

#: a model of the pair: an ``nn.Module`` or any differentiable callable ``[B, *in] -> [B, *out]``
Model = nn.Module | Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PairJacobians:
    """Per-sample Jacobians (dense route) and spectra of a (source, target) pair on the valid samples.

    The ingredients of seed 000's bounds (docs/theory.md §2): ``JS [N, m, n]`` and ``JT [N, d, n]``
    (None on the matrix-free route), the source's top right-singular vectors ``v1S [N, n]``, the
    spectral norms ``sigmaS, sigmaT [N]``, the singular-value ratios ``lamS, lamT [N]``, the
    per-sample ``tau1_x [N]``, ``tau2`` (with the map ``A [d, m]``), the mask ``valid [N_all]`` and the
    valid samples ``x [N, *in]``.  Built by :func:`pair_jacobians`; a plain record (raises nothing).

    Example:
        >>> import torch
        >>> from pyadvt.bounds import pair_jacobians
        >>> _ = torch.manual_seed(0)
        >>> p = pair_jacobians(torch.nn.Linear(3, 2), torch.nn.Linear(3, 4), torch.randn(16, 3))
        >>> tuple(p.JS.shape), tuple(p.JT.shape), tuple(p.A.shape), p.n
        ((16, 2, 3), (16, 4, 3), (4, 2), 16)
    """

    JS: torch.Tensor | None  # [N, m, n] (None on the matrix-free route)
    JT: torch.Tensor | None  # [N, d, n]
    v1S: torch.Tensor  # [N, n]
    sigmaS: torch.Tensor  # [N] ||J_S(x)||_2
    sigmaT: torch.Tensor  # [N]
    lamS: torch.Tensor  # [N]
    lamT: torch.Tensor  # [N]
    tau1_x: torch.Tensor  # [N]
    tau2: Tau2Result
    valid: torch.Tensor  # [N_all] which of the given samples are used
    x: torch.Tensor  # [N, *in] the valid samples
    source: object = None
    target: object = None
    batch_size: int = 256

    @property
    def A(self) -> torch.Tensor:
        return self.tau2.A.to(self.v1S.dtype)

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


class _JacobianGap(nn.Module):
    """``h(x) = f_T(x) - A f_S(x)`` (flattened outputs), whose Jacobian is ``J_T - A J_S``."""

    def __init__(self, source, target, A: torch.Tensor):
        super().__init__()
        self.source, self.target, self.A = source, target, A

    def forward(self, x):
        fs = self.source(x).reshape(x.shape[0], -1)
        return self.target(x).reshape(x.shape[0], -1) - fs @ self.A.to(fs.dtype).T


def jacobian_gap_sq(p: PairJacobians) -> torch.Tensor:
    """``[N]`` per-sample ``||J_T(x) - A J_S(x)||_2^2`` (dense, or matrix-free through ``h``)."""
    if p.JS is not None and p.JT is not None:
        return _spec_sq(p.JT - p.A.to(p.JS.dtype) @ p.JS)
    h = _JacobianGap(p.source, p.target, p.tau2.A)
    out = []
    with evaluating([m for m in (p.source, p.target) if isinstance(m, nn.Module)]):
        for sl in batches(p.n, p.batch_size):
            out.append(jacobian_top_singular(h, p.x[sl]).sigma1.double().square())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def pair_jacobians(source: Model, target: Model, x: torch.Tensor, *, batch_size: int | None = None,
                   progress: bool = False, method: str = "auto", route: str = "auto",
                   max_memory: int | float | str | None = None) -> PairJacobians:
    """Collect everything the seed-000 bounds need for ``(source, target)`` on samples ``x``.

    ``route`` / ``max_memory`` as :func:`pyadvt.metrics.spectral.tau1`: both models are planned
    before any backward pass; the Jacobians are kept only when both take the dense route.
    Source: seed 000's tau1, tau2 and Jacobians, docs/theory.md §2.

    Args:
        source, target: models ``[B, *in] -> [B, m]`` and ``[B, *in] -> [B, d]``.
        x: ``[N, *in]`` floating-point samples.

    Returns:
        :class:`PairJacobians` on the samples where both models have a defined direction.

    Raises:
        InvalidTypeError: ``x`` is not a floating-point tensor.
        InvalidValueError: ``x`` is empty or non-finite, or no sample has a defined direction for both models.
        MemoryBudgetError: no route fits ``max_memory``.

    Example:
        >>> import torch
        >>> from pyadvt.bounds import pair_jacobians
        >>> _ = torch.manual_seed(0)
        >>> source = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> p = pair_jacobians(source, torch.nn.Linear(3, 4), torch.randn(16, 3), route="matrix_free")
        >>> p.JS is None, p.tau1_x.shape   # matrix-free: no Jacobian is materialised
        (True, torch.Size([16]))
    """
    check_batch(x)
    if not x.is_floating_point():  # before the memory probe, which would fail inside conv2d
        raise InvalidTypeError(f"'x' must be a floating-point tensor, got {x.dtype}; convert uint8 images with "
                               "x.float() / 255")
    (ps, pt), batch_size = plan_models((source, target), x, batch_size, route=route, max_memory=max_memory,
                                       what="seed-000 bounds")
    dense = ps.route == "dense" and pt.route == "dense"
    parts: dict[str, list] = {k: [] for k in ("JS", "JT", "v1S", "sS", "sT", "lS", "lT", "t1", "U", "V", "ok")}
    for sl in batches(x.shape[0], batch_size, progress=progress, desc="jacobians"):
        ds = virtual_direction(source, x[sl], method=method, plan=ps, want_jv1=True, keep_jac=dense, pixel_range=False)
        dt = virtual_direction(target, x[sl], method=method, plan=pt, keep_jac=dense, pixel_range=False)
        ok = ds.valid & dt.valid
        V = jvp(target, x[sl], ds.v1.reshape(x[sl].shape).to(x.dtype))
        for key, val in (("v1S", ds.v1), ("sS", ds.sigma1), ("sT", dt.sigma1), ("lS", ds.lam), ("lT", dt.lam),
                         ("t1", tau1_from_directions(ds.v1, dt.v1.to(ds.v1.dtype))), ("U", ds.jv1), ("V", V)):
            parts[key].append(val[ok])
        if dense:
            parts["JS"].append(ds.jac[ok])
            parts["JT"].append(dt.jac[ok])
        parts["ok"].append(ok)
    cat = {k: torch.cat(v) if v else None for k, v in parts.items()}
    valid = cat["ok"]
    warn_undefined(int((~valid).sum()), x.shape[0], "seed-000 bounds")
    if not bool(valid.any()):
        raise InvalidValueError(f"no sample of 'x' has a defined direction for both the source and the target model "
                                f"(all {x.shape[0]} are undefined: a non-finite input, NaN model weights or a zero "
                                "Jacobian); check the models' weights and the inputs")
    return PairJacobians(JS=cat["JS"], JT=cat["JT"], v1S=cat["v1S"], sigmaS=cat["sS"], sigmaT=cat["sT"],
                         lamS=cat["lS"], lamT=cat["lT"], tau1_x=cat["t1"],
                         tau2=tau2_from_deviations(cat["U"], cat["V"]),
                         valid=valid, x=x[valid], source=source, target=target, batch_size=batch_size)


def _mean(t: torch.Tensor) -> float:
    return float(t.double().mean())


def _spec_sq(M: torch.Tensor) -> torch.Tensor:
    """Per-sample squared spectral norm of ``M [N, a, b]``."""
    return torch.linalg.matrix_norm(M.double(), ord=2).square()


def _at_most(lhs: float, rhs: float) -> bool:
    """``lhs <= rhs`` up to a relative 1e-9 (float rounding)."""
    return lhs <= rhs * (1 + 1e-9) + 1e-300


def _summary(result, **flags) -> dict:
    """A result record's fields (``dataclasses.asdict``) followed by its verdicts ``flags``."""
    d = asdict(result)
    d.update(flags)
    return d


def _lipschitz(p: PairJacobians, L: float | None) -> float:
    if L is None:
        return float(p.sigmaT.max())
    if not L >= 0:
        raise ValueError(f"'L' must be a non-negative Lipschitz constant, got {L!r}")
    return float(L)


@dataclass
class BoundResult:
    """``lhs`` and ``rhs`` of seed 000's Theorem 1 or 2 (docs/theory.md §2); ``rhs_lipschitz``: the
    Lipschitz form's right side.  Returned by :func:`theorem1` / :func:`theorem2`; a plain record.

    Example:
        >>> import torch
        >>> from pyadvt.bounds import pair_jacobians, theorem2
        >>> _ = torch.manual_seed(0)
        >>> source, target, x = torch.nn.Linear(3, 2), torch.nn.Linear(3, 4), torch.randn(16, 3)
        >>> r = theorem2(source, target, x, pair=pair_jacobians(source, target, x))
        >>> r.holds, r.holds_lipschitz, r.n, list(r.summary())[-2:]
        (True, True, 16, ['holds', 'holds_lipschitz'])
    """

    lhs: float
    rhs: float
    rhs_lipschitz: float
    tau1: float
    tau2: float
    L: float
    n: int

    @property
    def holds(self) -> bool:
        """``lhs <= rhs`` up to a relative 1e-9 (float rounding)."""
        return _at_most(self.lhs, self.rhs)

    @property
    def holds_lipschitz(self) -> bool:
        return _at_most(self.lhs, self.rhs_lipschitz)

    @property
    def rel_error(self) -> float:
        """``|lhs - rhs| / |rhs|`` (for identities)."""
        return abs(self.lhs - self.rhs) / max(abs(self.rhs), 1e-300)

    def summary(self) -> dict:
        return _summary(self, holds=self.holds, holds_lipschitz=self.holds_lipschitz)


def theorem1(source: Model, target: Model, x: torch.Tensor, *, L: float | None = None,
             pair: PairJacobians | None = None, batch_size: int | None = None, progress: bool = False) -> BoundResult:
    """Theorem 1 (scalar ``f_S, f_T: R^n -> R``), with ``g(z) = A z + c``:

    ``lhs = E||grad f_T - A grad f_S||^2`` equals ``rhs = E[(1 - tau1(x) tau2) ||grad f_T(x)||^2]``
    exactly (an identity); Lipschitz form ``rhs_lipschitz = (1 - tau1 tau2) L^2``.

    Args:
        source, target: models with one output each (``[B, *in] -> [B, 1]``).
        x: ``[N, *in]`` samples; L: Lipschitz constant of f_T (default ``max_x ||grad f_T(x)||``).
        pair: precomputed :func:`pair_jacobians` (skips recomputation).

    Source: seed 000 (Liang et al., ICML 2021), Theorem 1; docs/theory.md §2.

    Raises:
        ValueError: the models are not scalar-output, or ``L`` is negative.
        InvalidTypeError, InvalidValueError: as :func:`pair_jacobians` for ``x``.

    Example:
        >>> import torch
        >>> from pyadvt.bounds import theorem1
        >>> _ = torch.manual_seed(0)
        >>> source, target = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
        >>> x = torch.randn(16, 3)
        >>> r = theorem1(source, target, x)  # an identity: both sides agree
        >>> r.rel_error < 1e-5
        True
    """
    p = pair or pair_jacobians(source, target, x, batch_size=batch_size, progress=progress)
    if p.JS is None or p.JS.shape[1] != 1 or p.JT.shape[1] != 1:
        widths = "wide outputs" if p.JS is None else f"m={p.JS.shape[1]}, d={p.JT.shape[1]}"
        raise ValueError("theorem1 needs scalar-output models (m = d = 1); use theorem2 for vector outputs, "
                         f"got {widths}")
    t2 = p.tau2.tau2
    diff = p.JT[:, 0] - p.A[0, 0] * p.JS[:, 0]
    lhs = _mean(diff.double().square().sum(-1))
    gT2 = p.sigmaT.double().square()
    rhs = _mean((1 - p.tau1_x.double() * t2) * gT2)
    Lv = _lipschitz(p, L)
    t1 = _mean(p.tau1_x)
    return BoundResult(lhs=lhs, rhs=rhs, rhs_lipschitz=(1 - t1 * t2) * Lv ** 2, tau1=t1, tau2=t2, L=Lv, n=p.n)


def theorem2(source: Model, target: Model, x: torch.Tensor, *, L: float | None = None,
             pair: PairJacobians | None = None, batch_size: int | None = None, progress: bool = False) -> BoundResult:
    """Theorem 2 (general ``f_S: R^n -> R^m``, ``f_T: R^n -> R^d``):

    ``lhs = ||J_T - A J_S||^2_{D,2}`` and
    ``rhs = 5 E[((1 - tau1(x) tau2) + (1 - tau1(x))(1 - tau2) lam_T(x)^2) ||J_T(x)||^2
    + (lam_T(x) + lam_S(x))^2 ||J_S(x)||^2 ||J_T||^2_{D,2} / ||J_S||^2_{D,2}]``;
    Lipschitz form ``((1 - tau1 tau2) + (1 - tau1)(1 - tau2) lam_T^2 + (lam_T + lam_S)^2) 5 L^2`` with the
    worst-case ratios ``lam = max_x lam(x)``.  Source: seed 000, Theorem 2; docs/theory.md §2.

    Args:
        source, target: models ``[B, *in] -> [B, m]`` and ``[B, *in] -> [B, d]``.
        x: ``[N, *in]`` samples; L: Lipschitz constant of f_T (default ``max_x ||J_T(x)||_2``).
        pair: precomputed :func:`pair_jacobians`.

    Raises:
        ValueError: ``L`` is negative.
        InvalidTypeError, InvalidValueError: as :func:`pair_jacobians` for ``x``.

    Example:
        >>> import torch
        >>> from pyadvt.bounds import theorem2
        >>> _ = torch.manual_seed(0)
        >>> source = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> target = torch.nn.Linear(3, 4)
        >>> x = torch.randn(16, 3)
        >>> theorem2(source, target, x).holds
        True
    """
    p = pair or pair_jacobians(source, target, x, batch_size=batch_size, progress=progress)
    t2 = p.tau2.tau2
    lhs = _mean(jacobian_gap_sq(p))
    t1x, lT, lS = p.tau1_x.double(), p.lamT.double(), p.lamS.double()
    sT2, sS2 = p.sigmaT.double().square(), p.sigmaS.double().square()
    ratio = _mean(sT2) / _mean(sS2)
    rhs = 5 * _mean(((1 - t1x * t2) + (1 - t1x) * (1 - t2) * lT ** 2) * sT2 + (lT + lS) ** 2 * sS2 * ratio)
    Lv = _lipschitz(p, L)
    t1 = _mean(t1x)
    lTm, lSm = float(lT.max()), float(lS.max())
    rhs_l = ((1 - t1 * t2) + (1 - t1) * (1 - t2) * lTm ** 2 + (lTm + lSm) ** 2) * 5 * Lv ** 2
    return BoundResult(lhs=lhs, rhs=rhs, rhs_lipschitz=rhs_l, tau1=t1, tau2=t2, L=Lv, n=p.n)


@dataclass
class Theorem3Result:
    """``lhs = ||g o f_S - y||_D`` and ``rhs = ||f_T - y||_D + ||J_T - A J_S||_{D,2}
    + (1 + ||J_T||_{D,2} / ||J_S||_{D,2}) beta`` (the square roots of Theorem 3's two sides; seed 000,
    docs/theory.md §2).  Returned by :func:`theorem3`; a plain record.

    Example:
        >>> import torch
        >>> from pyadvt.bounds import theorem3
        >>> _ = torch.manual_seed(0)
        >>> x = torch.nn.functional.normalize(torch.randn(16, 3), dim=1) / 2   # ||x||_2 = 1/2
        >>> r = theorem3(torch.nn.Linear(3, 2), torch.nn.Linear(3, 4), x, torch.zeros(16, 4), beta=0.0)
        >>> r.holds, r.lhs <= r.target_error + r.jacobian_gap + r.smoothness_term + 1e-9, r.smoothness_term
        (True, True, 0.0)
    """

    lhs: float
    rhs: float
    target_error: float
    jacobian_gap: float
    smoothness_term: float
    n: int

    @property
    def holds(self) -> bool:
        return _at_most(self.lhs, self.rhs)

    def summary(self) -> dict:
        return _summary(self, holds=self.holds)


def _flat_outputs(model, x: torch.Tensor) -> torch.Tensor:
    with evaluating(model) if isinstance(model, torch.nn.Module) else evaluating([]), torch.no_grad():
        return model(x).reshape(x.shape[0], -1)


def theorem3(source: Model, target: Model, x: torch.Tensor, y: torch.Tensor, beta: float, *,
             pair: PairJacobians | None = None, batch_size: int | None = None,
             progress: bool = False) -> Theorem3Result:
    """Theorem 3: the transferred model ``g o f_S``, ``g(z) = A z + c`` with ``c = f_T(0) - A f_S(0)``,
    against the ground truth ``y``.

    Args:
        source, target: models (both beta-smooth for the theorem to apply).
        x: ``[N, *in]`` samples with ``||x||_2 <= 1`` (the theorem's normalisation; ValueError otherwise).
        y: ``[N, d]`` ground-truth values of the target task (e.g. one-hot labels for an MSE task).
        beta: common smoothness constant (``||J(x) - J(x')||_2 <= beta ||x - x'||``); 0 for linear models.

    Source: seed 000, Theorem 3; docs/theory.md §2.

    Raises:
        ValueError: ``beta`` is negative, a sample has ``||x||_2 > 1``, or ``y`` does not match the
            target's outputs.
        InvalidTypeError: ``y`` is not floating-point.  InvalidValueError: ``y`` has the wrong
            length or is non-finite.

    Example:
        >>> import torch
        >>> from pyadvt.bounds import theorem3
        >>> _ = torch.manual_seed(0)
        >>> source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 4)
        >>> x = torch.randn(16, 3) / 4
        >>> theorem3(source, target, x, torch.zeros(16, 4), beta=0.0).holds
        True
    """
    check_batch(x)
    if not isinstance(beta, (int, float)) or not beta >= 0:
        raise ValueError(f"'beta' must be a non-negative smoothness constant, got {beta!r}")
    norms = x.reshape(x.shape[0], -1).double().norm(dim=1)
    if float(norms.max()) > 1 + 1e-12:
        raise ValueError(f"theorem3 assumes ||x||_2 <= 1 for every sample; max norm is {float(norms.max()):.4g} "
                         "(rescale the inputs, e.g. into the model, first)")
    check_tensor(y, "y")
    if y.dim() < 1 or y.shape[0] != x.shape[0]:
        raise InvalidValueError(f"'y' must be [N, d] with N = {x.shape[0]} (one ground-truth row per sample of 'x'), "
                                f"got shape {tuple(y.shape)}")
    if not y.is_floating_point():
        raise InvalidTypeError(f"'y' must hold floating-point ground-truth values (e.g. one-hot rows), got {y.dtype}")
    if not bool(torch.isfinite(y).all()):
        raise InvalidValueError("'y' contains NaN or infinite values; pass finite ground-truth values")
    p = pair or pair_jacobians(source, target, x, batch_size=batch_size, progress=progress)
    y = y[p.valid].reshape(p.x.shape[0], -1).double()
    A = p.tau2.A.double()
    zero = torch.zeros_like(p.x[:1])
    c = _flat_outputs(target, zero).double()[0] - A @ _flat_outputs(source, zero).double()[0]
    fS, fT = _flat_outputs(source, p.x).double(), _flat_outputs(target, p.x).double()
    if y.shape != fT.shape:
        raise ValueError(f"'y' must be [N, d] = {tuple(fT.shape)} matching the target's outputs, got {tuple(y.shape)}")
    lhs = _mean((fS @ A.T + c - y).square().sum(-1)) ** 0.5
    target_err = _mean((fT - y).square().sum(-1)) ** 0.5
    gap = _mean(jacobian_gap_sq(p)) ** 0.5
    smooth = (1 + (_mean(p.sigmaT.double().square()) / _mean(p.sigmaS.double().square())) ** 0.5) * float(beta)
    return Theorem3Result(lhs=lhs, rhs=target_err + gap + smooth, target_error=target_err, jacobian_gap=gap,
                          smoothness_term=smooth, n=p.n)


@dataclass
class Proposition2Result:
    """``loss = E||f_T(x + eps v1_S(x)) - f_T(x)||^2`` (MSE of a zero-loss target under the source's virtual
    attack) with ``lower = eps^2 E[tau1(x) ||J_T||^2]``, ``upper = eps^2 E[(lam_T(x)^2 + (1 - lam_T(x)^2)
    tau1(x)) ||J_T||^2]`` and ``upper_worst`` (the same with ``lam_T = max_x lam_T(x)``); seed 000's
    Proposition 2, docs/theory.md §2.  Returned by :func:`proposition2`; a plain record.

    Example:
        >>> import torch
        >>> from pyadvt.bounds import proposition2
        >>> _ = torch.manual_seed(0)
        >>> r = proposition2(torch.nn.Linear(3, 2), torch.nn.Linear(3, 4), torch.randn(16, 3), eps=0.1)
        >>> r.lower <= r.loss <= r.upper <= r.upper_worst
        True
    """

    loss: float
    lower: float
    upper: float
    upper_worst: float
    eps: float
    n: int

    @property
    def holds(self) -> bool:
        tol = 1e-9 * max(abs(self.upper), 1e-300)
        return self.lower - tol <= self.loss <= self.upper + tol

    def summary(self) -> dict:
        return _summary(self, holds=self.holds)


def proposition2(source: Model, target: Model, x: torch.Tensor, eps: float, *, pair: PairJacobians | None = None,
                 batch_size: int | None = None, progress: bool = False) -> Proposition2Result:
    """Proposition 2: bounds on the empirical adversarial transferability (eq. 2) under the MSE loss,
    for a target with zero loss (``y = f_T(x)``) and the source's virtual attack of L2 radius ``eps``.

    Exact (no ``O(eps^3)`` term) for linear targets; otherwise holds up to ``O(eps^3)``.
    Source: seed 000, Proposition 2; docs/theory.md §2.

    Args:
        source, target: models ``[B, *in] -> [B, m]`` and ``[B, *in] -> [B, d]``.
        x: ``[N, *in]`` samples; eps: the L2 radius of the attack.

    Raises:
        ValueError: ``eps`` is not positive.
        InvalidTypeError, InvalidValueError: as :func:`pair_jacobians` for ``x``.

    Example:
        >>> import torch
        >>> from pyadvt.bounds import proposition2
        >>> _ = torch.manual_seed(0)
        >>> source, target, x = torch.nn.Linear(3, 2), torch.nn.Linear(3, 4), torch.randn(16, 3)
        >>> r = proposition2(source, target, x, eps=0.1)
        >>> r.holds, round(proposition2(source, target, x, eps=0.2).loss / r.loss, 3)   # linear target: loss ~ eps^2
        (True, 4.0)
    """
    if not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"'eps' must be a positive number, got {eps!r}")
    p = pair or pair_jacobians(source, target, x, batch_size=batch_size, progress=progress)
    x_adv = p.x + eps * p.v1S.reshape(p.x.shape).to(p.x.dtype)
    moved = _flat_outputs(target, x_adv).double() - _flat_outputs(target, p.x).double()
    loss = _mean(moved.square().sum(-1))
    t1x, lT, sT2 = p.tau1_x.double(), p.lamT.double(), p.sigmaT.double().square()
    lower = eps ** 2 * _mean(t1x * sT2)
    upper = eps ** 2 * _mean((lT ** 2 + (1 - lT ** 2) * t1x) * sT2)
    lw = float(lT.max())
    upper_worst = eps ** 2 * _mean((lw ** 2 + (1 - lw ** 2) * t1x) * sT2)
    return Proposition2Result(loss=loss, lower=lower, upper=upper, upper_worst=upper_worst, eps=float(eps),
                              n=p.n)
