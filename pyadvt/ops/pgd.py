"""The fused PGD update ``pgd_step_`` (docs/theory.md §8): Python wrapper and fake registration."""

from __future__ import annotations

import torch

from pyadvt import _ext
from pyadvt.ops._checks import per_sample_tensor, require_floating, require_like, require_mutable, require_tensor
from pyadvt.ops.reference.pgd import pgd_step_reference_

_NORMS = {"linf": "linf", "inf": "linf", "l2": "l2"}

if _ext.extension_loaded():

    @torch.library.register_fake("pyadvt::pgd_step_")
    def _pgd_step_fake(x, grad, x_orig, eps, alpha, norm, lo, hi, momentum, mu):
        return None


def pgd_step_(
    x: torch.Tensor,
    grad: torch.Tensor,
    x_orig: torch.Tensor,
    eps: float | torch.Tensor,
    alpha: float | torch.Tensor,
    norm: str = "linf",
    lo: float = 0.0,
    hi: float = 1.0,
    momentum: torch.Tensor | None = None,
    mu: float | None = None,
    backend: str = "auto",
    validate: bool = True,
) -> torch.Tensor:
    """One projected-gradient step, in place, for a whole batch (one pass for L-inf).

    For each sample ``b`` (docs/theory.md §1 PGD/MI-FGSM, §8):

    * momentum (optional, MI-FGSM, Dong et al. 2018 eq. 6):
      ``m <- mu * m + g / mean(|g|)`` with the mean over the sample's own elements;
      the direction is then ``d = m``, else ``d = g``.
    * L-inf: ``x' = x + alpha * sign(d)``; L2: ``x' = x + alpha * d / ||d||_2``.
    * ``delta = x' - x_orig`` projected onto the eps-ball, then ``x = clamp(x_orig + delta, lo, hi)``.

    A zero gradient gives a zero step (never NaN); a NaN gradient element gives no L-inf step
    there (``sign(NaN) = 0``). NaN is not checked for (a per-step reduction the attack loops cannot
    afford; they validate their pixels once, up front): as with torch's in-place ops, a NaN entry
    of ``x`` or ``x_orig`` stays NaN in exactly that entry, and the other entries and samples are
    updated normally. float16/bfloat16 tensors are stored as such and computed in float32
    (one rounding at the end), on CPU and CUDA.

    In-place semantics are those of torch's own in-place ops: a leaf that requires grad is refused
    while grad mode is on, and the version counters of ``x`` (and ``momentum``) are bumped, so a
    backward that saved them raises instead of silently using the new values.

    Args:
        x: ``[B, *]`` current iterate, float16/bfloat16/float32/float64; updated in place.
        grad: ``[B, *]`` gradient of the attack loss at ``x`` (same shape/dtype/device).
        x_orig: ``[B, *]`` clean inputs, the centres of the eps-balls.
        eps: radius, a number or a ``[B]`` tensor (per-sample budgets), ``>= 0``.
        alpha: step size, a number or a ``[B]`` tensor, ``> 0``.
        norm: ``"linf"`` or ``"l2"``.
        lo, hi: valid input range (pixel space ``[0, 1]`` by default).
        momentum: optional ``[B, *]`` buffer updated in place (MI-FGSM).
        mu: momentum decay; only with ``momentum`` (default 1.0 then).
        backend: ``"auto"`` (kernel when compiled for the device, else reference),
            ``"kernel"`` or ``"reference"``.
        validate: check every argument first (default). Loops that validated their tensors once
            (the attacks) pass ``False`` to skip the per-call checks; the kernel still checks
            shapes, dtypes and devices.

    Returns:
        ``x`` (the same tensor, updated).

    Raises:
        TypeError: an argument is not a tensor (or a number where one is allowed).
        ValueError: empty batch, mismatched shape/dtype/device, non-finite or non-positive ``eps`` /
            ``alpha``, ``mu`` without ``momentum``, unknown ``norm`` or ``backend``, ``lo > hi``, or a
            read-only / overlapping ``x``.

    Example:
        >>> import torch
        >>> x0 = torch.full((2, 3), 0.5); x = x0.clone()
        >>> g = torch.tensor([[1., -1., 0.], [2., 2., -2.]])
        >>> pgd_step_(x, g, x0, eps=0.1, alpha=0.05).tolist()
        [[0.550000011920929, 0.44999998807907104, 0.5], [0.550000011920929, 0.550000011920929, 0.44999998807907104]]
    """
    if validate:
        eps_t, alpha_t, mu = _validated(x, grad, x_orig, eps, alpha, norm, lo, hi, momentum, mu, backend)
    else:
        if not torch.compiler.is_compiling():
            require_mutable(x, "x")
            if momentum is not None:
                require_mutable(momentum, "momentum")
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        eps_t = torch.as_tensor(eps, dtype=acc, device=x.device).reshape(-1)
        alpha_t = torch.as_tensor(alpha, dtype=acc, device=x.device).reshape(-1)
        mu = 1.0 if mu is None else float(mu)
    use_kernel = backend == "kernel" or (backend == "auto" and _ext.kernel_available("pgd_step_", x.device.type))
    if use_kernel:
        torch.ops.pyadvt.pgd_step_(x, grad, x_orig, eps_t, alpha_t, _NORMS[norm], float(lo), float(hi), momentum, mu)
    else:
        if backend == "auto":
            _ext.warn_fallback("pgd_step_")
        pgd_step_reference_(x, grad, x_orig, eps_t, alpha_t, _NORMS[norm], float(lo), float(hi), momentum, mu)
    return x


def _validated(x, grad, x_orig, eps, alpha, norm, lo, hi, momentum, mu, backend):
    """Every check of :func:`pgd_step_`; returns ``(eps [1|B], alpha [1|B], mu)``."""
    require_tensor(x, "x")
    require_floating(x, "x")
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"'x' must have a non-empty batch dimension, got shape {tuple(x.shape)}")
    require_mutable(x, "x")
    require_like(x, grad, "x", "grad")
    require_like(x, x_orig, "x", "x_orig")
    if momentum is not None:
        require_like(x, momentum, "x", "momentum")
        require_mutable(momentum, "momentum")
        mu = 1.0 if mu is None else float(mu)
    elif mu is not None:
        raise ValueError("'mu' was given but 'momentum' is None: pass a momentum buffer (e.g. torch.zeros_like(x))")
    else:
        mu = 1.0
    if norm not in _NORMS:
        raise ValueError(f"'norm' must be 'linf' or 'l2', got {norm!r}")
    if not lo <= hi:
        raise ValueError(f"'lo' ({lo}) must not exceed 'hi' ({hi})")
    eps_t = per_sample_tensor(eps, x, "eps", positive=False)
    alpha_t = per_sample_tensor(alpha, x, "alpha", positive=True)
    if backend not in ("auto", "kernel", "reference"):
        raise ValueError(f"'backend' must be 'auto', 'kernel' or 'reference', got {backend!r}")
    return eps_t, alpha_t, mu
