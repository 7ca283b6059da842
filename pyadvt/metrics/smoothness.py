"""Model smoothness: the per-sample top eigenvalue of the input Hessian of the cross-entropy.

Seed 001 (Zhang et al., S&P 2024), Definition 1 / docs/theory.md §3: ``sigma(x) = lambda_max(H(x))`` with
``H(x) = Hessian_x CE(f(x), y)``; the model's smoothness is the mean ``sigma_F`` and its *upper*
smoothness the max. Three batched methods:

* ``"lanczos"`` (default) - Lanczos with full re-orthogonalisation, one double-backward
  Hessian-vector product (HVP) per iteration for the whole batch (:mod:`pyadvt.metrics.lanczos`);
* ``"power"`` - power iteration with per-sample convergence (``power_iteration_update_`` kernel);
* ``"exact"`` - for piecewise-linear networks ``H = J^T S J`` almost everywhere
  (``S = diag p - p p^T``, ``J`` the logits' input Jacobian), so
  ``lambda_max = lambda_max(S^1/2 J J^T S^1/2)``: a C x C eigenproblem (docs/theory.md §3, §9).
  For ``C <= 64`` it is built from C batched VJPs and solved by ``small_sym_eig`` (dense route);
  for more classes (1000 ImageNet logits) it is solved matrix-free: Lanczos on the C x C operator
  ``u -> P D_q J J^T D_q P u`` through one VJP and one JVP per step (ARPACK residual test, tol
  1e-6; :func:`pyadvt.ops.matrix_free.lanczos_top_pairs`). ``route="dense"`` forces the C-VJP
  Jacobian with ``torch.linalg.eigh`` for any C. The route and its memory are decided before the
  first backward pass; when nothing fits ``max_memory`` it refuses naming ``batch_size`` /
  ``max_memory`` (the same budget bounds the ``lanczos``/``power`` HVP graphs and Krylov bases).

Half-precision models are evaluated through a float32 copy (:func:`pyadvt.ops.precision.float32_compute`).

Converged samples are masked out of later HVPs, and the autograd graph is rebuilt on the
still-active samples when fewer than half remain, so a slow sample does not make the whole batch
pay. Start vectors come from :func:`pyadvt.utils.per_sample_rand`, so each sample's value does
not depend on the batch it is in.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    >>> a = smoothness(net, x, y, method="exact", progress=False)
    >>> b = smoothness(net, x, y, method="lanczos", tol=1e-6, progress=False)
    >>> bool(torch.allclose(a.values, b.values, rtol=1e-3, atol=1e-7))
    True
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from pyadvt import ops
from pyadvt.metrics._legacy_arguments import keyword_only
from pyadvt.metrics._result_protocol import MaskedValues, deprecated_field_alias, masked_float
from pyadvt.utils.deprecation import renamed_parameters
from pyadvt.metrics.lanczos import EigResult, lanczos_top_eig, power_top_eig
from pyadvt.ops.budget import (MATRIX_FREE_GRAPH_FACTOR, format_bytes, graph_bytes_per_sample, plan_route, refuse,
                               resolve_max_memory)
from pyadvt.ops.matrix_free import DEFAULT_MAX_ITER, JacobianProducts, lanczos_top_pairs, noise_rtol
from pyadvt.ops.precision import HALF_DTYPES, float32_compute
from pyadvt.utils.modes import evaluating, model_device
from pyadvt.utils.progress import progress as _progress
from pyadvt.utils.rng import per_sample_rand
from pyadvt.utils.errors import InvalidTypeError
from pyadvt.utils.validation import check_inputs

if TYPE_CHECKING:
    from pyadvt.metrics._pair_data import Data

__all__ = ["SMOOTH_NONLINEARITIES", "SmoothnessResult", "smoothness"]

#: Module types whose second derivative is not zero almost everywhere: the Gauss-Newton identity
#: behind ``method="exact"`` does not hold for networks containing them. (Non-linearities called
#: functionally inside a custom ``forward`` cannot be detected; pyadvt's models use modules.)
SMOOTH_NONLINEARITIES: tuple[type[nn.Module], ...] = (
    nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.Softplus, nn.ELU, nn.SELU, nn.CELU, nn.Mish,
    nn.LogSigmoid, nn.Softsign, nn.Tanhshrink, nn.Softmax, nn.LogSoftmax, nn.Softmin,
    nn.Hardswish, nn.MultiheadAttention,
)

_METHODS = ("lanczos", "power", "exact")


@dataclass
class SmoothnessResult(MaskedValues):
    """Per-sample input-Hessian top eigenvalues.

    Attributes:
        values: ``[N]`` float64 ``sigma(x_i) = lambda_max(H(x_i))`` (NaN where undefined).
        iterations: ``[N]`` int64 HVPs (``power``/``lanczos``) or VJPs (``exact``) per sample.
        converged: ``[N]`` bool convergence flags (always True for ``exact``).
        valid: ``[N]`` bool, False where the Hessian was non-finite (masked from mean/max). The former
            name ``defined`` is a deprecated read-only alias (``DeprecationWarning``), and the keyword
            ``defined=`` of the constructor a deprecated alias of ``valid=`` (``InvalidTypeError`` when
            both are passed).
        hvp_calls: batched double-backward calls (``exact``: batched VJPs) in total.
        method: the method used.

    ``n_undefined`` counts the masked samples; the headline ``value`` is :attr:`mean` (``sigma_F``).

    Returned by :func:`smoothness` (seed 001 Definition 1, docs/theory.md §3).

    Example:
        >>> import torch
        >>> r = SmoothnessResult(values=torch.tensor([2.0, 4.0], dtype=torch.float64),
        ...                      iterations=torch.tensor([5, 5]), converged=torch.tensor([True, True]),
        ...                      valid=torch.tensor([True, True]), hvp_calls=5, method="power")
        >>> r.mean, r.max, r.value, r.n_undefined
        (3.0, 4.0, 3.0, 0)
    """

    values: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    valid: torch.Tensor
    hvp_calls: int
    method: str

    defined = deprecated_field_alias("defined", "valid")

    @property
    def max(self) -> float:
        """Upper smoothness ``bar sigma_F``: max over valid samples."""
        return masked_float(self.values, self.valid, torch.max)

    def summary(self) -> dict:
        """Plain-Python summary: mean, max, counts, convergence rate, mean HVPs per sample
        (``undefined`` is the former key of ``n_undefined``, same number)."""
        n = int(self.values.numel())
        return {
            "method": self.method, "n": n, "mean": self.mean, "max": self.max,
            "n_undefined": self.n_undefined, "undefined": self.n_undefined,
            "converged": float(self.converged.float().mean()) if n else 0.0,
            "mean_hvps_per_sample": float(self.iterations.double().mean()) if n else 0.0,
            "hvp_calls": self.hvp_calls,
        }


SmoothnessResult.__init__ = renamed_parameters(defined="valid")(SmoothnessResult.__init__)  # type: ignore[method-assign]


class _BatchInputHessian:
    """Batched HVP operator ``v -> Hessian_x CE(f(x), y) v`` for every sample of a batch.

    The first-order graph ``g = grad_x CE`` is built once (``create_graph=True``) and each product is
    one ``autograd.grad(g, x, v)``; it is rebuilt on the active rows when at most half are active.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        self.model, self.x, self.y = model, x, y
        self.n = x[0].numel()
        self._build(torch.arange(x.shape[0], device=x.device))

    def _build(self, rows: torch.Tensor) -> None:
        self.rows = rows
        xr = self.x[rows].detach().clone().requires_grad_(True)
        loss = F.cross_entropy(self.model(xr), self.y[rows], reduction="sum")
        (g,) = torch.autograd.grad(loss, xr, create_graph=True)
        self.xr, self.g = xr, g

    def __call__(self, v: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        idx = active.nonzero().squeeze(1)
        pos = torch.full((self.x.shape[0],), -1, dtype=torch.long, device=v.device)
        pos[self.rows] = torch.arange(self.rows.numel(), device=v.device)
        if 2 * idx.numel() <= self.rows.numel() or bool((pos[idx] < 0).any()):
            self._build(idx)
            pos[self.rows] = torch.arange(self.rows.numel(), device=v.device)
        vv = torch.zeros(self.rows.numel(), self.n, dtype=self.g.dtype, device=v.device)
        vv[pos[idx]] = v[idx].to(self.g.dtype)
        # cross-entropy's input gradient always depends on x (through the softmax), so a gradient without
        # a graph back to x means a layer computed its backward without recording it (e.g. an autograd
        # Function marked @once_differentiable): refuse rather than report zero curvature
        hv = None if self.g.grad_fn is None else torch.autograd.grad(
            self.g, self.xr, grad_outputs=vv.view_as(self.g), retain_graph=True, allow_unused=True)[0]
        if hv is None:
            raise InvalidTypeError(
                f"smoothness: the input gradient of {type(self.model).__name__} has no autograd graph back to "
                "the input, so its Hessian cannot be computed (a layer's backward is not differentiable, e.g. "
                "an autograd Function marked @once_differentiable); use layers that support double backward")
        hv = hv.reshape(vv.shape)
        out = torch.zeros(self.x.shape[0], self.n, dtype=v.dtype, device=v.device)
        out[idx] = hv[pos[idx]].to(v.dtype)
        return out


def _check_exact_allowed(model: nn.Module, force: bool) -> None:
    if force:
        return
    smooth = sorted({type(m).__name__ for m in model.modules() if isinstance(m, SMOOTH_NONLINEARITIES)})
    if smooth:
        raise ValueError(
            f"method='exact' uses H = J^T (diag p - p p^T) J, valid only for piecewise-linear networks, but the "
            f"model contains smooth non-linearities ({', '.join(smooth)}); use method='lanczos' or 'power', or "
            "pass force=True to get the Gauss-Newton value anyway")


def _exact_chunk(model: nn.Module, x: torch.Tensor, y: torch.Tensor, use_eigh: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``lambda_max(S^1/2 J J^T S^1/2)`` per sample (Gauss-Newton route), ``J`` from C VJPs.

    One forward pass and C backward passes (one per logit, each for the whole batch; measured
    faster on CPU than one backward over the batch replicated C times or a vmapped backward). With
    ``q = sqrt(p)``, ``S = diag p - p p^T = A A^T`` for ``A = diag(q) (I - q q^T)``
    (``I - q q^T`` is a projection since ``||q|| = 1``), so the nonzero eigenvalues of ``J^T S J``
    are those of the symmetric ``C x C`` matrix ``P K P``, ``K = diag(q) J J^T diag(q)``,
    ``P = I - q q^T``: one ``small_sym_eig`` call (``torch.linalg.eigvalsh`` when ``use_eigh`` or
    ``C > 64``), no matrix square root.
    """
    xr = x.detach().clone().requires_grad_(True)
    logits = model(xr)
    if logits.dim() != 2:
        raise ValueError(f"the model must return logits of shape [B, C], got {tuple(logits.shape)}")
    C = logits.shape[1]
    rows = []
    for c in range(C):
        (jc,) = torch.autograd.grad(logits[:, c].sum(), xr, retain_graph=c < C - 1, allow_unused=True)
        rows.append(torch.zeros_like(xr) if jc is None else jc)
    J = torch.stack([r.reshape(x.shape[0], -1) for r in rows], dim=1).double()  # [B, C, n]
    q = torch.softmax(logits.detach().double(), dim=1).sqrt()
    G = J @ J.transpose(1, 2)
    K = q[:, :, None] * G * q[:, None, :]
    P = torch.eye(C, dtype=torch.float64, device=x.device) - q[:, :, None] * q[:, None, :]
    M = P @ K @ P
    M = 0.5 * (M + M.transpose(1, 2))
    finite = torch.isfinite(M).all(dim=(1, 2))
    M = torch.where(finite[:, None, None], M, torch.zeros_like(M))
    if use_eigh or C > ops.linalg.MAX_K:
        lam = torch.linalg.eigvalsh(M)[:, -1]
    else:
        lam = ops.small_sym_eig(M.contiguous(), check=False)[0][:, -1]
    finite = finite & torch.isfinite(lam)
    return torch.where(finite, lam, torch.full_like(lam, float("nan"))), finite, C


def _exact_matrix_free(model: nn.Module, x: torch.Tensor, max_iter: int, seed: int
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """The Gauss-Newton ``lambda_max(P D_q J J^T D_q P)`` by Lanczos on the C x C operator
    (one VJP and one JVP per step, never ``J``).

    Returns ``(values [B], products per sample [B], converged [B], defined [B], batched passes)`` (the order of
    :func:`_batch_smoothness`).
    """
    P = JacobianProducts(model, x)
    if P.out.dim() != 2:
        raise ValueError(f"the model must return logits of shape [B, C], got {tuple(P.out.shape)}")
    q = torch.softmax(P.out.detach().double(), dim=1).sqrt()  # the graph of the whole batch

    def proj(u):
        return u - (u * q).sum(1, keepdim=True) * q

    def matvec(u, active):
        return proj(q * P.jvp(P.vjp(q * proj(u), active), active))

    v0 = proj(per_sample_rand(x, (P.m,), seed=seed, distribution="normal", dtype=torch.float64))
    inv = max(noise_rtol(P.dtype), 64 * 2.0**-52)
    r = lanczos_top_pairs(matvec, v0, npairs=1, tol=1e-6, max_iter=max_iter, invariant_rtol=inv)
    lam = r.theta[:, 0].clamp_min(0.0)
    finite = r.defined & torch.isfinite(lam) & torch.isfinite(q).all(1)
    lam = torch.where(finite, lam, torch.full_like(lam, float("nan")))
    return lam, 2 * r.iterations, r.converged & finite, finite, P.passes  # _batch_smoothness's order


def _check_hvp_budget(model, x: torch.Tensor, method: str, batch: int, max_iter: int, max_memory) -> None:
    """Refuse (before any backward) when the HVP graph and Krylov basis of ``lanczos``/``power`` exceed
    the budget: ~``MATRIX_FREE_GRAPH_FACTOR`` graphs plus ``[B, max_iter + 1, n]`` (Lanczos)."""
    budget = resolve_max_memory(max_memory, x.device)
    _, gps, dt = graph_bytes_per_sample(model, x[:1])
    n, isz = x[0].numel(), torch.empty((), dtype=dt).element_size()
    width = (min(max_iter, n) + 1) if method == "lanczos" else 3

    def need(b):
        return int(MATRIX_FREE_GRAPH_FACTOR * b * gps + b * width * n * isz + 4 * b * n * isz)

    if need(batch) > budget:
        fit = max((b for b in range(batch, 0, -1) if need(b) <= budget), default=0)
        refuse(f"smoothness(method={method!r})", "Hessian-vector", batch, need(batch), budget, fit,
               f" (HVP graph {format_bytes(gps)} per sample, Krylov basis [{batch}, {width}, {n}])")


def _check_tensor_xy(x, y) -> None:
    """The checks of one ``(x, y)`` tensor pair (the whole input, or one streamed batch)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise ValueError("'x' must be a floating-point tensor [N, *in_shape]")
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],) or y.dtype != torch.long:
        raise ValueError(f"'y' must be an int64 tensor of shape [{x.shape[0]}] (one label per sample)")


def _batch_smoothness(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, method: str, exact_route: str | None,
                      route: str, tol: float, max_iter: int, seed: int):
    """``(values, iterations, converged, defined, batched calls)`` of one batch (inside eval mode and
    ``enable_grad``)."""
    if method == "exact" and exact_route == "matrix_free":
        return _exact_matrix_free(model, xb, DEFAULT_MAX_ITER, seed)
    if method == "exact":
        lam, ok, C = _exact_chunk(model, xb, yb, use_eigh=route == "dense")
        return lam, torch.full((xb.shape[0],), C, dtype=torch.long, device=xb.device), ok.clone(), ok, C
    v0 = per_sample_rand(xb, (xb[0].numel(),), seed=seed, distribution="normal")
    solver = lanczos_top_eig if method == "lanczos" else power_top_eig
    r: EigResult = solver(_BatchInputHessian(model, xb, yb), v0, tol=tol, max_iter=max_iter)
    return r.values, r.iterations, r.converged, r.defined, r.calls


@keyword_only("method", "tol", "max_iter", "batch_size", "seed", "force", "progress", "route", "max_memory")
def smoothness(model: nn.Module, x: Data, y: torch.Tensor | None = None, *, method: str = "lanczos",
               tol: float = 1e-4, max_iter: int = 100, batch_size: int = 256, seed: int = 0, force: bool = False,
               progress: bool = False, route: str = "auto", max_memory: int | str | None = None) -> SmoothnessResult:
    """Per-sample ``sigma(x) = lambda_max(Hessian_x CE(model(x), y))``: the model's smoothness.

    docs/theory.md §3; seed 001 (Zhang et al., S&P 2024) Definition 1: ``sigma_F`` is the mean and
    the upper smoothness the max of ``sigma(x)`` over the samples.

    The model runs in eval mode (BatchNorm uses, and keeps, its running statistics) without
    parameter gradients; ``x`` is not modified.

    Args:
        model: classifier returning logits ``[B, C]``.
        x: ``[N, *in_shape]`` inputs in [0, 1] with ``y``; or an ``(x, y)`` pair, a ``TensorData``, a
            ``Dataset`` of ``(x, y)`` or a ``DataLoader`` (then ``y=None``), walked one batch of
            ``batch_size`` at a time on the model's device (:func:`pyadvt.data.iter_batches`): at
            most one batch is held and the result equals the tensor call.
        y: ``[N]`` int64 true labels in ``[0, C)`` (with a tensor ``x`` only).
        method: ``"lanczos"`` (default), ``"power"`` or ``"exact"`` (piecewise-linear nets only).
        tol: relative tolerance on the change of the eigenvalue estimate between iterations.
        max_iter: maximum HVPs per sample (``power`` may spend up to twice this for samples whose
            dominant-magnitude eigenvalue is negative).
        batch_size: samples per batched HVP.
        seed: seed of the per-sample random start vectors.
        force: allow ``exact`` on models with smooth non-linearities (returns the Gauss-Newton
            eigenvalue, not the Hessian's).
        progress: tqdm progress bar over batches (off by default, as in every metric).
        route: ``exact`` only: ``"auto"`` (C x C problem dense for ``C <= 64``, matrix-free beyond),
            ``"dense"`` (C VJPs, ``torch.linalg.eigvalsh`` when ``C > 64``) or ``"matrix_free"``.
        max_memory: memory budget per batch (bytes or e.g. ``"4GiB"``; default
            :func:`pyadvt.ops.budget.resolve_max_memory`).

    Returns:
        :class:`SmoothnessResult`: ``values [N]`` float64 (NaN where undefined), ``valid [N]``,
        ``converged [N]``; ``.mean`` is ``sigma_F``, ``.max`` the upper smoothness.

    Raises:
        ValueError: unknown method, bad ``tol`` / ``max_iter`` / ``batch_size``, bad shapes, labels
            or values outside [0, 1], ``y`` given with a dataset, or ``exact`` on a smooth network
            without ``force`` (a streamed batch is checked before its own work, with the messages
            of the tensor call).
        TypeError: ``x`` of another dtype than the model, or not a tensor or dataset source.
        pyadvt.ops.budget.MemoryBudgetError: the method does not fit ``max_memory`` at this
            ``batch_size`` (raised before any backward pass).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
        >>> a = smoothness(net, x, y, method="exact", progress=False)  # a dataset streams the same values:
        >>> b = smoothness(net, torch.utils.data.TensorDataset(x, y), method="exact", batch_size=2, progress=False)
        >>> bool(torch.allclose(a.values, b.values)), a.summary()["n"]
        (True, 5)
    """
    from pyadvt.data.stream import as_data, iter_batches

    if method not in _METHODS:
        raise ValueError(f"'method' must be one of {_METHODS}, got {method!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol > 0:
        raise ValueError(f"'tol' must be a number > 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"'max_iter' must be an int >= 1, got {max_iter!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"'batch_size' must be an int >= 1, got {batch_size!r}")
    tol, max_iter, batch_size = float(tol), int(max_iter), int(batch_size)
    if isinstance(x, torch.Tensor):  # everything checked before the work starts
        _check_tensor_xy(x, y)
        check_inputs(x, y, models={"model": model}, batch_size=batch_size, label_range=True)
    data = as_data(x, y)
    if method == "exact":
        _check_exact_allowed(model, force)
    model32, _ = float32_compute(model, None)
    dev = model_device(model32)
    exact_route = None
    values, iters, conv, defined, calls = [], [], [], [], 0
    with evaluating(model32, higher_order=True), torch.enable_grad():  # HVPs: double backward
        for xb, yb in iter_batches(data, batch_size, device=dev, progress=progress, desc=f"smoothness[{method}]",
                                   labels=True):
            if not isinstance(x, torch.Tensor):  # a streamed batch: the tensor call's checks, before its work
                _check_tensor_xy(xb, yb)
                check_inputs(xb, yb, models={"model": model}, label_range=True)
            xb = xb.detach().float() if xb.dtype in HALF_DTYPES else xb.detach()
            if not values:  # the route and its memory, decided on the first batch before any backward pass
                first = torch.nan_to_num(xb, nan=0.0, posinf=0.0, neginf=0.0)
                if method == "exact":
                    exact_route = plan_route(model32, first, route=route, max_memory=max_memory,
                                             max_iter=DEFAULT_MAX_ITER, what="smoothness(method='exact')").route
                else:
                    _check_hvp_budget(model32, first, method, first.shape[0], max_iter, max_memory)
            lam, it, ok, fin, n_calls = _batch_smoothness(model32, xb, yb, method, exact_route, route, tol, max_iter,
                                                          seed)
            values.append(lam)
            iters.append(it)
            conv.append(ok)
            defined.append(fin)
            calls += n_calls
    res = SmoothnessResult(values=torch.cat(values).double(), iterations=torch.cat(iters),
                           converged=torch.cat(conv), valid=torch.cat(defined), hvp_calls=calls, method=method)
    N = int(res.values.numel())
    undefined = res.n_undefined
    if undefined:
        warnings.warn(f"smoothness: {undefined} of {N} samples have a non-finite Hessian; they are reported as "
                      "undefined (NaN) and skipped by mean/max", RuntimeWarning, stacklevel=3)
    not_conv = int((res.valid & ~res.converged).sum())
    if not_conv and (method != "exact" or exact_route == "matrix_free"):
        warnings.warn(f"smoothness: {not_conv} of {N} samples did not converge within max_iter={max_iter} "
                      f"(tol={tol:g}); their last estimates are kept", RuntimeWarning, stacklevel=3)
    return res
