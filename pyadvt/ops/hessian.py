"""Batched power-iteration bookkeeping ``power_iteration_update_`` (docs/theory.md §3(a), §8).

The Hessian-vector products come from autograd (one double-backward for the whole batch); this op
does the per-sample rest of an iteration in one pass: Rayleigh quotient, normalisation and the
convergence mask, for the smoothness metric of seed 001 (``sigma(x) = lambda_max(H(x))``).
"""

from __future__ import annotations

import math

import torch

from pyadvt import _ext
from pyadvt.ops._checks import require_mutable, require_tensor
from pyadvt.ops.reference.hessian import power_iteration_update_reference_

__all__ = ["power_iteration_update_"]

if _ext.extension_loaded():

    @torch.library.register_fake("pyadvt::power_iteration_update_")
    def _power_iteration_update_fake(v, hv, eig, active, tol):
        return None


def power_iteration_update_(
    v: torch.Tensor,
    hv: torch.Tensor,
    eig: torch.Tensor,
    active: torch.Tensor,
    tol: float = 1e-4,
    *,
    backend: str = "auto",
) -> None:
    """One power-iteration step's bookkeeping for a batch, in place (docs/theory.md §3(a)).

    For every row ``b`` with ``active[b]`` (other rows are not touched):

    * ``rayleigh = <v_b, hv_b>`` (``v_b`` is unit norm, as this op leaves it),
    * ``v_b <- hv_b / ||hv_b||`` (kept unchanged when ``hv_b`` is zero or not finite; ``eig_b`` then
      holds the non-finite Rayleigh quotient, so callers can mask such samples),
    * converged when ``|rayleigh - eig_b| <= tol * |rayleigh|`` (``eig_b`` NaN means no previous
      value, hence not converged),
    * ``eig_b <- rayleigh``; ``active_b <- not converged``.

    Sums are accumulated in float64; a row whose ``||hv||^2`` would over- or underflow float64
    (entries beyond ~1e145 or below ~1e-145) is normalised after scaling by a power of two, so every
    finite nonzero ``hv`` gives a unit ``v``. In-place semantics are torch's: leaves that require
    grad are refused while grad mode is on, and the version counters of ``v``, ``eig`` and
    ``active`` are bumped.

    Args:
        v: ``[B, n]`` current unit vectors, float32/float64, any strides; updated in place.
        hv: ``[B, n]`` ``H_b v_b`` (same dtype/device/shape as ``v``).
        eig: ``[B]`` previous Rayleigh quotients (NaN = none), dtype of ``v``; updated in place.
        active: ``[B]`` bool mask of rows still iterating; updated in place.
        tol: relative tolerance, ``>= 0`` (docs/theory.md default 1e-4).
        backend: ``"auto"``, ``"kernel"`` or ``"reference"``.

    Raises:
        TypeError: ``v`` is not float32/float64, or ``tol`` is not a number.
        ValueError: ``v`` is not ``[B, n]``, ``Hv`` / ``eig`` / ``active`` do not match it, ``tol`` is
            negative or non-finite, or ``backend`` is unknown.

    Example:
        >>> H = torch.diag(torch.tensor([3.0, 1.0]))
        >>> v = torch.tensor([[0.6, 0.8]]); eig = torch.full((1,), float("nan"))
        >>> active = torch.ones(1, dtype=torch.bool)
        >>> power_iteration_update_(v, v @ H, eig, active, tol=1e-4)
        >>> round(float(eig), 4), bool(active)
        (1.72, True)
    """
    for t, name in ((v, "v"), (hv, "hv"), (eig, "eig"), (active, "active")):
        require_tensor(t, name)
    if v.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"'v' must be float32 or float64, got {v.dtype}")
    if v.dim() != 2:
        raise ValueError(f"'v' must have shape [B, n], got {tuple(v.shape)}; flatten the sample dims")
    B = v.shape[0]
    if hv.shape != v.shape or hv.dtype != v.dtype or hv.device != v.device:
        raise ValueError(
            f"'hv' must match 'v' (shape {tuple(v.shape)}, {v.dtype}, {v.device}), "
            f"got {tuple(hv.shape)}, {hv.dtype}, {hv.device}"
        )
    if eig.shape != (B,) or eig.dtype != v.dtype or eig.device != v.device:
        raise ValueError(
            f"'eig' must have shape [{B}], dtype {v.dtype} on {v.device}, got {tuple(eig.shape)}, {eig.dtype}, {eig.device}"
        )
    if active.shape != (B,) or active.dtype != torch.bool or active.device != v.device:
        raise ValueError(
            f"'active' must be a bool tensor of shape [{B}] on {v.device}, got {tuple(active.shape)}, {active.dtype}"
        )
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        raise TypeError(f"'tol' must be a number, got {type(tol).__name__}") from None
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"'tol' must be finite and >= 0, got {tol}")
    if backend not in ("auto", "kernel", "reference"):
        raise ValueError(f"'backend' must be 'auto', 'kernel' or 'reference', got {backend!r}")
    if not torch.compiler.is_compiling():
        require_mutable(v, "v")
        require_mutable(eig, "eig")
    if B == 0:
        return
    use_kernel = backend == "kernel" or (
        backend == "auto" and _ext.kernel_available("power_iteration_update_", v.device.type)
    )
    if use_kernel:
        torch.ops.pyadvt.power_iteration_update_(v, hv, eig, active, tol)
    else:
        if backend == "auto":
            _ext.warn_fallback("power_iteration_update_")
        power_iteration_update_reference_(v, hv, eig, active, tol)
