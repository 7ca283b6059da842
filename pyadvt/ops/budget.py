"""Memory budget and route choice for Jacobian spectra (docs/theory.md §9, scale rules).

Every spectral quantity of seed 000 (``tau1``, ``tau2``, ``lambda``, the virtual attack, the bounds)
and the exact smoothness of seed 001 needs either the per-sample Jacobian ``J_f(x) [m, n]`` (the
*dense* route: ``m`` reverse passes and ``B m n`` numbers) or only products with it (the
*matrix-free* route, :mod:`pyadvt.ops.matrix_free`: Lanczos on the Gram operator, one VJP and one
JVP per step). Before the first backward pass, :func:`plan_route` measures what one sample's
autograd graph holds (one forward pass of one sample under ``saved_tensors_hooks``), predicts the
peak memory of each route for the batch, picks

* ``"dense"`` when ``m <= 64`` (the ``jacobian_spectrum`` kernel; ``m`` reverse passes are then
  cheaper than the ~2 x 20-60 products of a Lanczos run) and the dense route fits ``max_memory``,
* ``"matrix_free"`` otherwise, when it fits,

and otherwise raises :class:`MemoryBudgetError` naming how much it would need and the
``batch_size`` / ``max_memory`` that would make it fit.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 100))
    >>> plan_route(net, torch.rand(4, 3, 2, 2)).route
    'matrix_free'
    >>> parse_bytes("1.5GiB") == int(1.5 * 2**30)
    True
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from pyadvt import _ext
from pyadvt.utils.errors import InvalidValueError
from pyadvt.utils.modes import evaluating

__all__ = ["DEFAULT_MAX_MEMORY", "MemoryBudgetError", "RoutePlan", "format_bytes", "graph_bytes_per_sample",
           "parse_bytes", "plan_route", "resolve_max_memory"]

#: Default memory budget: this many bytes, or half of the memory available on the device when
#: that is less (``/proc/meminfo`` MemAvailable on the CPU, ``torch.cuda.mem_get_info`` on CUDA).
DEFAULT_MAX_MEMORY = 8 * 2**30

#: Largest output width of the dense route (the ``jacobian_spectrum`` kernel's limit).
DENSE_MAX_OUTPUTS = 64

#: Routes a caller may ask for.
ROUTES = ("auto", "dense", "matrix_free")

#: The matrix-free route keeps the forward graph plus the graph of one reverse pass built with
#: ``create_graph=True`` (for the double-backward JVP): measured 2.2-2.6x the forward graph on
#: ResNet-18 / SmallCNN (benchmarks/bench_scale.py), so 3x is charged.
MATRIX_FREE_GRAPH_FACTOR = 3.0

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class MemoryBudgetError(ValueError, MemoryError):
    """A computation would exceed ``max_memory``; raised before any backward pass. The message says
    how much the route needs and which ``batch_size`` / ``max_memory`` would make it fit
    (``fit_batch``: the largest batch that fits, 0 if none; ``need``, ``budget``: bytes).

    Source: the memory model of docs/theory.md §9.  Both a ValueError and a MemoryError.

    Example:
        >>> import torch
        >>> from pyadvt.ops import plan_route
        >>> try:
        ...     plan_route(torch.nn.Linear(1000, 1000), torch.rand(4, 1000), route="dense", max_memory="1KiB")
        ... except MemoryBudgetError as err:
        ...     print(err.need > err.budget == 1024, err.fit_batch)
        True 0
    """

    def __init__(self, message: str, fit_batch: int = 0, need: int = 0, budget: int = 0):
        super().__init__(message)
        self.fit_batch, self.need, self.budget = fit_batch, need, budget


def parse_bytes(value) -> int:
    """``max_memory`` as bytes: an int/float number of bytes or a string like ``"3GiB"``, ``"500 MB"``."""
    if isinstance(value, bool):
        raise TypeError(f"'max_memory' must be a number of bytes or a string like '4GiB', got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"'max_memory' must be a positive number of bytes, got {value!r}")
        return int(value)
    if isinstance(value, str):
        mt = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        if mt and mt.group(2).lower() in _UNITS and float(mt.group(1)) > 0:
            return int(float(mt.group(1)) * _UNITS[mt.group(2).lower()])
    raise ValueError(f"'max_memory' must be a positive number of bytes or a string like '4GiB' or '500MB', "
                     f"got {value!r}")


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def _available(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def resolve_max_memory(max_memory, device: torch.device | str = "cpu") -> int:
    """The budget in bytes: ``max_memory`` parsed, or the default (:data:`DEFAULT_MAX_MEMORY`, at most
    half of what the device has available)."""
    if max_memory is not None:
        return parse_bytes(max_memory)
    avail = _available(torch.device(device))
    return DEFAULT_MAX_MEMORY if avail is None else int(min(DEFAULT_MAX_MEMORY, avail // 2))


def _param_ptrs(model) -> set[int]:
    if not isinstance(model, nn.Module):
        return set()
    return {p.untyped_storage().data_ptr() for p in model.parameters()} | \
        {b.untyped_storage().data_ptr() for b in model.buffers()}


def graph_bytes_per_sample(model, x1: torch.Tensor) -> tuple[int, int, torch.dtype]:
    """``(m, bytes, out_dtype)``: output width and the bytes one sample's autograd graph saves for the
    backward pass (parameters and buffers excluded), from one eval-mode forward pass of ``x1 [1, *in]``."""
    seen: dict[int, int] = {}
    params = _param_ptrs(model)

    def pack(t: torch.Tensor):
        try:
            st = t.untyped_storage()
            ptr = st.data_ptr()
            if ptr not in params:
                seen[ptr] = max(seen.get(ptr, 0), st.nbytes())
        except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. functional wrappers)
            seen[id(t)] = t.numel() * t.element_size()
        return t

    xr = x1.detach().clone().requires_grad_(True)
    ctx = evaluating(model) if isinstance(model, nn.Module) else evaluating([])
    with ctx, torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(xr)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model must return a tensor [B, *out], got {type(out).__name__}")
    return int(out[0].numel()), int(sum(seen.values())), out.dtype


@dataclass
class RoutePlan:
    """The route chosen for a batch and the predicted peak bytes of each route.

    Attributes: ``route`` (``"dense"`` | ``"matrix_free"``), ``m`` outputs, ``n`` inputs, ``batch``,
    ``graph_per_sample`` (bytes), ``dense_bytes``, ``matrix_free_bytes``, ``budget`` (bytes) and
    ``probe`` (the :func:`graph_bytes_per_sample` result, reusable by :func:`pyadvt.ops.jacobian.jacobian`).
    """

    route: str
    m: int
    n: int
    batch: int
    graph_per_sample: int
    dense_bytes: int
    matrix_free_bytes: int
    budget: int
    probe: tuple | None = None


def dense_bytes(batch: int, m: int, n: int, graph_per_sample: int, itemsize: int) -> int:
    """Peak of the dense route: ``J [B, m, n]`` (+ its float64 copy when the kernels are absent),
    the forward graph and one gradient ``[B, n]`` per reverse pass."""
    jac = batch * m * n * itemsize
    copy64 = 0 if _ext.extension_loaded() else batch * m * n * 8
    return int(jac + copy64 + batch * graph_per_sample + 2 * batch * n * itemsize)


def matrix_free_bytes(batch: int, m: int, n: int, graph_per_sample: int, max_iter: int) -> int:
    """Peak of the matrix-free route: graphs (:data:`MATRIX_FREE_GRAPH_FACTOR`), the float64 Lanczos
    basis ``[B, K + 1, min(m, n)]`` and a few ``[B, n]`` vectors."""
    d = min(m, n)
    k = min(max_iter, d) + 1
    return int(MATRIX_FREE_GRAPH_FACTOR * batch * graph_per_sample + batch * k * d * 8 + 6 * batch * (n + m) * 8)


def _largest_batch(fn, batch: int, budget: int) -> int:
    """Largest ``b <= batch`` with ``fn(b) <= budget`` (0 if none); ``fn`` is increasing."""
    lo, hi = 0, batch
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fn(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def refuse(what: str, route: str, batch: int, need: int, budget: int, fits_batch: int, detail: str = "") -> None:
    """Raise :class:`MemoryBudgetError` with the sizes and what to pass."""
    fix = (f"pass batch_size={fits_batch} (or smaller)" if fits_batch >= 1 else "no batch size fits")
    raise MemoryBudgetError(
        f"{what}: the {route} route would need about {format_bytes(need)} for batch_size={batch}{detail}, over "
        f"max_memory={format_bytes(budget)}; {fix}, or pass max_memory={format_bytes(need * 1.1)} or more",
        fit_batch=fits_batch, need=need, budget=budget)


def plan_route(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, route: str = "auto",
               max_memory: int | float | str | None = None, max_iter: int = 200,
               what: str = "spectrum", probe: tuple[int, int, torch.dtype] | None = None) -> RoutePlan:
    """Choose the spectral route for the batch ``x [B, *in]`` (see the module docstring).

    Args:
        model: ``[B, *in] -> [B, *out]`` (called once on ``x[:1]``, with grad, unless ``probe`` is given).
        x: the batch (its size is the ``batch_size`` the caller will run).
        route: ``"auto"``, ``"dense"`` or ``"matrix_free"`` (forced; still checked against the budget).
        max_memory: bytes or a string like ``"4GiB"``; ``None`` = :func:`resolve_max_memory`'s default.
        max_iter: Lanczos iteration cap (sizes the basis).
        what: name used in the refusal message.
        probe: a previous :func:`graph_bytes_per_sample` result.

    Raises:
        MemoryBudgetError: no allowed route fits ``max_memory`` (before any backward pass).
        ValueError: ``route`` is unknown.
        InvalidValueError: ``x`` is not a non-empty batch.

    Example:
        >>> import torch
        >>> plan = plan_route(torch.nn.Linear(8, 3), torch.rand(4, 8), max_memory="1GiB")
        >>> plan.route, plan.m, plan.n, plan.batch
        ('dense', 3, 8, 4)
    """
    if route not in ROUTES:
        raise ValueError(f"'route' must be one of {ROUTES}, got {route!r}")
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidValueError(f"'x' must be a non-empty batch [B, *in], got {shape}; pass at least one sample")
    budget = resolve_max_memory(max_memory, x.device)
    B, n = x.shape[0], x[0].numel()
    m, gps, out_dtype = probe if probe is not None else graph_bytes_per_sample(model, x[:1])
    isz = torch.empty((), dtype=out_dtype).element_size()

    def dense(b):
        return dense_bytes(b, m, n, gps, isz)

    def free(b):
        return matrix_free_bytes(b, m, n, gps, max_iter)

    plan = RoutePlan("dense", m, n, B, gps, dense(B), free(B), budget, (m, gps, out_dtype))
    if route == "dense" or (route == "auto" and m <= DENSE_MAX_OUTPUTS and dense(B) <= budget):
        if dense(B) > budget:
            refuse(what, "dense", B, dense(B), budget, _largest_batch(dense, B, budget),
                   f" (Jacobian [{B}, {m}, {n}])")
        return plan
    if free(B) > budget:
        refuse(what, "matrix-free", B, free(B), budget, _largest_batch(free, B, budget),
               f" (autograd graph {format_bytes(gps)} per sample)")
    plan.route = "matrix_free"
    return plan
