"""Batched input Jacobians and Jacobian-vector products of a model (docs/theory.md §2, §9).

``jacobian(model, x)`` returns ``J_f(x)`` for every sample of a batch, ``[B, m, n]`` with the input
flattened (``n = prod(in_shape)``) and the output flattened (``m``). Three exact methods:

* ``"batched_grad"``: one forward pass of the whole batch, then ``m`` reverse passes of the batch,
  one per output: on CPU one after the other on the retained graph (unless ``m > 32`` and every layer
  has a ``vmap`` batching rule), elsewhere vmapped together by
  ``torch.autograd.grad(..., is_grads_batched=True)``. Because the model runs in eval mode
  samples do not interact, so the gradient of ``sum_b f(x_b)[k]`` w.r.t. ``x_b`` is row ``k`` of
  ``J_f(x_b)``. Cost: ~``m`` backward passes of the batch. Best for few outputs (classifiers).
* ``"rev"``: ``torch.func.vmap(torch.func.jacrev(f_single))``, f applied to one sample at a time;
  needs every layer to support ``vmap`` (true for standard layers).
* ``"fwd"``: ``torch.func.vmap(torch.func.jacfwd(f_single))``: ``n`` forward-mode passes, best when
  the input is smaller than the output (``n < m``, e.g. a representation map on tiny inputs).

``method="auto"`` picks ``"fwd"`` when ``n < m`` (falling back to ``"batched_grad"`` when a layer does not
support ``torch.func``) and ``"batched_grad"`` otherwise, backed by
``benchmarks/bench_tau.py`` (CPU, 2 cores, m = 10 logits): SmallCNN on 256 digits (n = 64)
``batched_grad`` 53 ms vs ``rev`` 79 ms vs ``fwd`` 387 ms; on 64 CIFAR-shaped inputs (n = 3072)
180 ms vs 619 ms (``fwd`` would need n passes); for the MLP on digits ``batched_grad`` 3.5 ms vs
``rev`` 4.5 ms; for an MLP map with n = 16 < m = 64 ``fwd`` wins (1.0 vs 1.8 ms ``rev``, 2.7 ms
``batched_grad``).
``"rev"``/``"fwd"`` vmap at most :data:`VMAP_BUDGET` (sample, direction) pairs at once, and fewer
when the memory budget says so.

**Memory** (docs/theory.md §9): before the first backward pass ``jacobian`` measures what one
sample's autograd graph holds (:func:`pyadvt.ops.budget.graph_bytes_per_sample`) and checks the
output ``[B, m, n]`` plus the method's working memory against ``max_memory`` (default
:func:`pyadvt.ops.budget.resolve_max_memory`): ``batched_grad`` holds the batch's graph (its vmapped
order ~``m`` gradient copies, used only when that fits too); ``rev``/``fwd`` ~2 graphs per vmapped
(sample, direction) pair, so the vmap chunks shrink to fit. When even the smallest chunk does not
fit, :class:`pyadvt.ops.budget.MemoryBudgetError` names the size and what to pass.

``jvp(model, x, v)`` returns ``J_f(x_b) v_b`` for every sample with one forward-mode pass
(``torch.func.jvp``), falling back to the double-backward trick for layers lacking forward AD.

Both run the model under :func:`pyadvt.utils.evaluating` (eval mode, no parameter gradients) and
never modify ``x``.

Example:
    >>> import torch
    >>> net = torch.nn.Linear(3, 2)
    >>> J = jacobian(net, torch.rand(4, 3))
    >>> J.shape, torch.allclose(J[0], net.weight)
    (torch.Size([4, 2, 3]), True)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from pyadvt.ops.budget import MemoryBudgetError, format_bytes, graph_bytes_per_sample, resolve_max_memory
from pyadvt.utils.modes import evaluating
from pyadvt.utils.validation import finite_rows

_METHODS = ("auto", "batched_grad", "rev", "fwd")


def _check_inputs(model, x: torch.Tensor, name: str = "x") -> None:
    if not callable(model):
        raise TypeError(f"'model' must be an nn.Module or callable, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"'{name}' must be floating point, got dtype {x.dtype}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"'{name}' must be a non-empty batch [B, *in_shape], got shape {tuple(x.shape)}")


def _warn_nonfinite(x: torch.Tensor, out: torch.Tensor, what: str) -> torch.Tensor:
    """Warn when some samples' input or result holds NaN/Inf (a derivative there is undefined; a
    ReLU's backward can mask a NaN pixel, so the input is checked too). Returns ``out``."""
    if torch.compiler.is_compiling():
        return out
    bad = ~(finite_rows(x.detach()) & finite_rows(out.detach()))
    if bool(bad.any()):
        warnings.warn(f"{what}: the result of {int(bad.sum())} of {x.shape[0]} samples is undefined (NaN/Inf "
                      "in 'x' or non-finite model outputs/weights); mask them with "
                      "torch.isfinite(x).flatten(1).all(1) before using the result", RuntimeWarning, stacklevel=3)
    return out


def _maybe_evaluating(model):
    # higher_order: JVPs (forward AD or double backward) need layers with second derivatives
    if isinstance(model, nn.Module):
        return evaluating(model, higher_order=True)
    return evaluating([], higher_order=True)


def _single(model, in_shape):
    """``f`` on one flattened sample: [n] -> [m]."""

    def f(z: torch.Tensor) -> torch.Tensor:
        return model(z.reshape(1, *in_shape)).reshape(-1)

    return f


def choose_method(n: int, m: int) -> str:
    """The method ``method="auto"`` uses for input size ``n`` and output size ``m``."""
    return "fwd" if n < m else "batched_grad"


def _one_hot_cotangents(out: torch.Tensor) -> torch.Tensor:
    """``[m, B, m]`` cotangents for ``out [B, m]``: slice ``k`` selects output ``k`` of every sample."""
    B, m = out.shape
    eye = torch.eye(m, dtype=out.dtype, device=out.device)
    return eye[:, None, :].expand(m, B, m)


def _rows_vmapped(out: torch.Tensor, xr: torch.Tensor) -> torch.Tensor:
    """``[B, m, n]``: the ``m`` reverse passes of ``out [B, m]`` vmapped by ``is_grads_batched``."""
    B, m = out.shape
    (g,) = torch.autograd.grad(out, xr, grad_outputs=_one_hot_cotangents(out), is_grads_batched=True)
    return g.reshape(m, B, -1).permute(1, 0, 2).contiguous()


def _rows_sequential(out: torch.Tensor, xr: torch.Tensor) -> torch.Tensor:
    """``[B, m, n]``: the ``m`` reverse passes of ``out [B, m]`` one after the other (graph retained)."""
    B, m = out.shape
    cot = _one_hot_cotangents(out).contiguous()
    rows = xr.new_empty((B, m, xr[0].numel()))
    for k in range(m):
        (g,) = torch.autograd.grad(out, xr, grad_outputs=cot[k], retain_graph=k < m - 1)
        rows[:, k] = g.reshape(B, -1)
    return rows


#: Layers whose backward has no ``vmap`` batching rule: ``is_grads_batched`` runs them once per
#: cotangent and concatenates the slices.
_NO_BATCHING_RULE = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm)

#: On CPU, at most this many outputs run as sequential reverse passes when no layer forces it.
SEQUENTIAL_MAX_OUTPUTS = 32


def _sequential_passes(model, device: torch.device, m: int, vmapped_fits: bool = True) -> bool:
    """Whether ``batched_grad`` runs its ``m`` reverse passes one after the other (else vmapped).

    On CPU (interleaved timings of the ``benchmarks/bench_tau.py`` workloads, 2 cores, vmapped /
    sequential time): SmallCNN on 256 digits
    1.7x, on 64 CIFAR images 2.0x (``convolution_backward`` / ``native_batch_norm_backward`` fall back to
    a per-slice loop plus a ``cat`` under ``is_grads_batched``); MLP on digits (m = 10) 1.25x, a 3-layer
    MLP with m = 32 1.1x; but a tiny n = 16, m = 64 map 0.46x, where each pass is mostly the autograd
    engine's per-call overhead. Hence: sequential on CPU when a layer lacks a batching rule or
    ``m <= SEQUENTIAL_MAX_OUTPUTS``; other devices keep the vmapped passes (fewer kernel launches; not
    re-measured). Both orders compute the same rows up to float rounding. The vmapped order holds ``m``
    gradient copies at once, so it is used only when ``vmapped_fits`` (the memory budget allows it).
    """
    if m == 1 or not vmapped_fits:
        return True
    if device.type != "cpu":
        return False
    if m <= SEQUENTIAL_MAX_OUTPUTS:
        return True
    return isinstance(model, nn.Module) and any(isinstance(mod, _NO_BATCHING_RULE) for mod in model.modules())


def _jac_batched_grad(model, x: torch.Tensor, vmapped_fits: bool = True) -> torch.Tensor:
    """``[B, m, n]``: one forward pass of ``x [B, *in]``, then ``m`` reverse passes of the batch,
    sequential or vmapped as :func:`_sequential_passes` decides."""
    B = x.shape[0]
    xr = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(xr).reshape(B, -1)
        if _sequential_passes(model, xr.device, out.shape[1], vmapped_fits):
            return _rows_sequential(out, xr)
        return _rows_vmapped(out, xr)


#: at most this many (sample, tangent/cotangent) pairs are vmapped at once by "rev"/"fwd": forward mode
#: on a 3x32x32 CNN otherwise holds B x n activation copies (tens of GB for B = 16)
VMAP_BUDGET = 4096


def _jac_func(model, x: torch.Tensor, forward: bool, max_pairs: int = VMAP_BUDGET) -> torch.Tensor:
    """``[B, m, n]`` by vmapped forward- or reverse-mode products, at most ``max_pairs``
    (sample, direction) pairs at once: whole samples when ``width`` directions fit, else one sample
    at a time with its directions in chunks."""
    in_shape = x.shape[1:]
    f = _single(model, in_shape)
    flat = x.detach().reshape(x.shape[0], -1)
    n = flat.shape[1]
    m = max(1, f(flat[0]).numel())
    width = n if forward else m
    pairs = max(1, min(VMAP_BUDGET, int(max_pairs)))
    inner = min(width, pairs)
    outer = max(1, pairs // width) if inner == width else 1
    if forward:
        basis = torch.eye(n, dtype=flat.dtype, device=flat.device)

        def jac(z):
            cols = torch.func.vmap(lambda t: torch.func.jvp(f, (z,), (t,))[1], chunk_size=inner)(basis)
            return cols.T  # [m, n]
    else:
        jac = torch.func.jacrev(f, chunk_size=inner)
    return torch.func.vmap(jac, chunk_size=min(outer, flat.shape[0]))(flat)


def _budget_check(model, x: torch.Tensor, method: str, max_memory, probe=None) -> tuple[int, bool, int]:
    """``(m, vmapped_fits, max_pairs)`` for ``method`` under the budget; raises
    :class:`MemoryBudgetError` before any backward pass when the Jacobian cannot fit."""
    budget = resolve_max_memory(max_memory, x.device)
    m, gps, dt = probe if probe is not None else graph_bytes_per_sample(model, x[:1])
    B, n = x.shape[0], x[0].numel()
    isz = torch.empty((), dtype=dt).element_size()
    out = B * m * n * isz
    if method == "batched_grad":
        need = out + B * gps + 2 * B * n * isz
        pair = 0
    else:
        pair = 2 * gps + 2 * (n + m) * isz
        need = out + pair
    if need > budget:
        per_sample = need / B
        fit = int(budget // per_sample)
        fix = f"pass batch_size={fit} (or smaller)" if fit >= 1 else "a single sample does not fit"
        raise MemoryBudgetError(
            f"jacobian: method={method!r} would need about {format_bytes(need)} for B={B} (Jacobian [{B}, {m}, {n}] "
            f"{format_bytes(out)}, autograd graph {format_bytes(gps)} per sample), over max_memory="
            f"{format_bytes(budget)}; {fix}, or pass max_memory={format_bytes(need * 1.1)} or more; for wide "
            "outputs the spectral metrics take the matrix-free route (route='matrix_free') instead")
    vmapped_fits = need + m * B * gps <= budget
    max_pairs = VMAP_BUDGET if pair == 0 else max(1, int((budget - out) // pair))
    return m, vmapped_fits, max_pairs


def jacobian(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, method: str = "auto",
             max_memory: int | float | str | None = None,
             probe: tuple[int, int, torch.dtype] | None = None) -> torch.Tensor:
    """Per-sample input Jacobians ``J_f(x_b)``, batched.

    Args:
        model: ``nn.Module`` (run in eval mode, restored on exit) or callable, ``[B, *in] -> [B, *out]``.
        x: ``[B, *in_shape]`` floating point inputs (not modified).
        method: ``"auto"`` | ``"batched_grad"`` | ``"rev"`` | ``"fwd"`` (see module docstring).
        max_memory: memory budget in bytes or a string like ``"4GiB"`` (default
            :func:`pyadvt.ops.budget.resolve_max_memory`).
        probe: ``(m, graph bytes per sample, output dtype)`` from
            :func:`pyadvt.ops.budget.graph_bytes_per_sample` for this model (skips measuring it).

    Returns:
        ``[B, m, n]`` with ``m = prod(out_shape)``, ``n = prod(in_shape)``, dtype of the output.

    Raises:
        pyadvt.ops.budget.MemoryBudgetError: the method cannot fit ``max_memory`` (before any backward).

    Warns:
        RuntimeWarning: some samples' ``x`` or Jacobian holds NaN/Inf (their Jacobian is undefined;
        docs/theory.md §0). Any input range is accepted: this is the Jacobian of any function.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
        >>> jacobian(net, torch.rand(2, 1, 2, 2)).shape
        torch.Size([2, 3, 4])
    """
    _check_inputs(model, x)
    if method not in _METHODS:
        raise ValueError(f"'method' must be one of {_METHODS}, got {method!r}")
    with _maybe_evaluating(model):
        if probe is None:
            probe = graph_bytes_per_sample(model, x[:1])
        if method == "auto":
            try:
                m, _, pairs = _budget_check(model, x, "fwd", max_memory, probe)
                use_fwd = choose_method(x[0].numel(), m) == "fwd"
            except MemoryBudgetError:  # batched_grad may still fit (checked below)
                use_fwd = False
            if use_fwd:
                try:
                    return _warn_nonfinite(x, _jac_func(model, x, forward=True, max_pairs=pairs), "jacobian")
                except (RuntimeError, NotImplementedError):
                    pass  # a layer unsupported by torch.func (e.g. an old-style autograd.Function)
            method = "batched_grad"
        m, vmapped_fits, pairs = _budget_check(model, x, method, max_memory, probe)
        if method == "batched_grad":
            return _warn_nonfinite(x, _jac_batched_grad(model, x, vmapped_fits), "jacobian")
        return _warn_nonfinite(x, _jac_func(model, x, forward=(method == "fwd"), max_pairs=pairs), "jacobian")


def jvp(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, v: torch.Tensor, *,
        method: str = "fwd") -> torch.Tensor:
    """Per-sample Jacobian-vector products ``J_f(x_b) v_b`` (docs/theory.md §2 deviation ``Delta_{f,delta}``).

    Args:
        model: ``[B, *in] -> [B, *out]`` module or callable (eval mode inside).
        x: ``[B, *in_shape]`` inputs (not modified).
        v: ``[B, *in_shape]`` or ``[B, n]`` tangent directions, one per sample.
        method: ``"fwd"`` (forward-mode AD, one pass) or ``"double_backward"`` (two reverse passes,
            for layers without forward-mode support).

    Returns:
        ``[B, m]`` (output flattened per sample). A RuntimeWarning names the samples whose ``x`` or
        product holds NaN/Inf (undefined there).

    Raises:
        TypeError: ``model`` is not callable, or ``x`` / ``v`` is not a floating-point tensor.
        ValueError: ``x`` is an empty batch, ``v`` does not match it, or ``method`` is unknown.

    Example:
        >>> net = torch.nn.Linear(3, 2)
        >>> x, v = torch.rand(4, 3), torch.rand(4, 3)
        >>> torch.allclose(jvp(net, x, v), v @ net.weight.T, atol=1e-6)
        True
    """
    _check_inputs(model, x)
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"'v' must be a torch.Tensor, got {type(v).__name__}")
    if v.shape[0] != x.shape[0] or v.numel() != x.numel():
        raise ValueError(f"'v' must have shape {tuple(x.shape)} or [B, n], got {tuple(v.shape)}")
    if method not in ("fwd", "double_backward"):
        raise ValueError(f"'method' must be 'fwd' or 'double_backward', got {method!r}")
    B = x.shape[0]
    xd = x.detach()
    vd = v.detach().reshape(x.shape).to(x.dtype)
    with _maybe_evaluating(model):
        if method == "fwd":
            try:
                _, out = torch.func.jvp(model, (xd,), (vd,))
                return _warn_nonfinite(xd, out.reshape(B, -1), "jvp")
            except (RuntimeError, NotImplementedError):
                pass  # a layer without forward-mode AD: the exact double-backward route below
        xr = xd.clone().requires_grad_(True)
        with torch.enable_grad():
            out = model(xr).reshape(B, -1)
            u = torch.zeros_like(out, requires_grad=True)
            (g,) = torch.autograd.grad(out, xr, grad_outputs=u, create_graph=True)
            (res,) = torch.autograd.grad(g, u, grad_outputs=vd)
        return _warn_nonfinite(xd, res.reshape(B, -1).detach(), "jvp")
