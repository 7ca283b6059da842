"""Update rules of the transfer-attack suite (docs/theory.md §10.1, §10.4, §10.5, §8).

* :func:`nesterov_point` - NI's look-ahead ``x + alpha * mu * m`` (one pass);
* :func:`variance_momentum_step_` - VMI/VNI's update: momentum on ``grad + v``, ``v <- neighbours - grad``
  and the projected sign step;
* :func:`patch_step_` - PI-FGSM's amplified step with the projection of the cut noise.

Each runs the compiled kernel ``torch.ops.pyadvt.<name>`` when the extension provides one for the
device and otherwise the pure-PyTorch reference in this module (the test oracle).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pyadvt import _ext
from pyadvt.ops._checks import require_floating, require_like, require_tensor
from pyadvt.ops.pgd import pgd_step_
from pyadvt.utils.errors import InvalidTypeError, InvalidValueError

if _ext.extension_loaded() and hasattr(torch.ops.pyadvt, "nesterov_point"):

    @torch.library.register_fake("pyadvt::nesterov_point")
    def _nesterov_point_fake(x, momentum, alpha, mu):
        return torch.empty_like(x)

    @torch.library.register_fake("pyadvt::variance_momentum_step_")
    def _variance_momentum_step_fake(x, grad, variance, neighbours, x_orig, eps, alpha, momentum, mu):
        return None

    @torch.library.register_fake("pyadvt::patch_step_")
    def _patch_step_fake(x, grad, x_orig, amplification, eps, alpha, beta, gamma, kernel):
        return None


def _per_row(p: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(p, dtype=x.dtype, device=x.device).reshape(-1)
    return t.view((-1,) + (1,) * (x.dim() - 1))


def _use_kernel(op: str, x: torch.Tensor, backend: str) -> bool:
    if backend not in ("auto", "kernel", "reference"):
        raise InvalidValueError(f"'backend' must be 'auto', 'kernel' or 'reference', got {backend!r}")
    return backend == "kernel" or (backend == "auto" and _ext.kernel_available(op, x.device.type))


def _check_state(x, tensors: dict, rows: dict, *, kernel=None) -> None:
    """Shape / dtype / device checks of an update's arguments (metadata only: no host sync), so a bad
    argument is an error naming it on both the kernel and the reference path."""
    require_tensor(x, "x")
    try:
        require_floating(x, "x")
        for name, t in tensors.items():
            require_like(x, t, "x", name)
    except TypeError as exc:
        raise InvalidTypeError(str(exc)) from None
    except ValueError as exc:
        raise (InvalidTypeError if "dtype" in str(exc) else InvalidValueError)(str(exc)) from None
    for name, p in rows.items():
        if isinstance(p, torch.Tensor) and p.numel() not in (1, x.shape[0]):
            raise InvalidValueError(f"'{name}' must be a number or a 1-D tensor with 1 or B={x.shape[0]} entries "
                                    f"(one per sample), got shape {tuple(p.shape)}")
    if kernel is not None and (not isinstance(kernel, torch.Tensor) or kernel.dim() != 2
                               or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0):
        shape = tuple(kernel.shape) if isinstance(kernel, torch.Tensor) else type(kernel).__name__
        raise InvalidValueError(f"'kernel' must be a square [k, k] tensor with k odd, got {shape}")


def nesterov_point_reference(x, momentum, alpha, mu):
    """``x + alpha * mu * momentum`` with ``alpha`` a number or per-row ``[B]``."""
    return x + _per_row(alpha, x) * float(mu) * momentum


def nesterov_point(x: torch.Tensor, momentum: torch.Tensor, alpha: torch.Tensor | float, mu: float,
                   backend: str = "auto") -> torch.Tensor:
    """NI-FGSM's look-ahead point ``x + alpha * mu * m`` (docs/theory.md §10.1), a new tensor.

    Args:
        x: ``[B, *]`` iterate. momentum: ``[B, *]`` the accumulated ``g_t``.
        alpha: step, a number or ``[B]``. mu: momentum decay.

    Raises:
        InvalidTypeError: a tensor argument is not a tensor, or dtypes differ.
        InvalidValueError: ``momentum`` is missing or not shaped like ``x``, ``alpha`` has neither 1 nor
            ``B`` entries, or ``backend`` is unknown.

    Example:
        >>> nesterov_point(torch.zeros(2, 2), torch.ones(2, 2), torch.tensor([1.0, 2.0]), 0.5).tolist()
        [[0.5, 0.5], [1.0, 1.0]]
    """
    if momentum is None or not isinstance(momentum, torch.Tensor) or momentum.shape != x.shape:
        raise InvalidValueError("'momentum' must be a tensor shaped like 'x' (NI needs momentum: pass mu)")
    _check_state(x, {"momentum": momentum}, {"alpha": alpha})
    if _use_kernel("nesterov_point", x, backend):
        a = torch.as_tensor(alpha, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32,
                            device=x.device).reshape(-1)
        return torch.ops.pyadvt.nesterov_point(x, momentum, a, float(mu))
    return nesterov_point_reference(x, momentum, alpha, mu)


def variance_momentum_step_reference_(x, grad, variance, neighbours, x_orig, eps, alpha, momentum, mu):
    """Eager form of :func:`variance_momentum_step_` (three passes: sum, neighbours update, pgd step)."""
    tuned = grad + variance
    variance.copy_(neighbours - grad)
    pgd_step_(x, tuned, x_orig, eps, alpha, "linf", 0.0, 1.0, momentum, mu if momentum is not None else None,
              validate=False)
    return x


def variance_momentum_step_(x: torch.Tensor, grad: torch.Tensor, variance: torch.Tensor, neighbours: torch.Tensor,
                            x_orig: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor,
                            momentum: torch.Tensor | None, mu: float = 1.0, backend: str = "auto") -> torch.Tensor:
    """VMI/VNI-FGSM's update (docs/theory.md §10.4), in place on ``x``, ``variance`` and ``momentum``:

    ``m <- mu m + (grad + v) / mean|grad + v|``, ``v <- neighbours - grad``,
    ``x <- clip_{x_orig, eps}(x + alpha sign(m))`` (sign of ``grad + v`` without momentum).

    Args:
        x, grad, variance, neighbours, x_orig, momentum: ``[B, *]`` alike (``neighbours`` is the mean
            neighbour gradient). eps, alpha: ``[B]`` or ``[1]``.

    Raises:
        InvalidTypeError: a state argument is not a tensor, or dtypes differ.
        InvalidValueError: shapes or devices differ, ``eps`` / ``alpha`` have neither 1 nor ``B``
            entries, or ``backend`` is unknown.

    Example:
        >>> x0 = torch.full((1, 2), 0.5); x = x0.clone(); v = torch.zeros(1, 2); m = torch.zeros(1, 2)
        >>> variance_momentum_step_(x, torch.tensor([[1., -1.]]), v, torch.tensor([[3., 3.]]), x0,
        ...                         torch.tensor([0.1]), torch.tensor([0.05]), m).tolist(), v.tolist()
        ([[0.550000011920929, 0.44999998807907104]], [[2.0, 4.0]])
    """
    _check_state(x, {"grad": grad, "variance": variance, "neighbours": neighbours, "x_orig": x_orig,
                     **({"momentum": momentum} if momentum is not None else {})}, {"eps": eps, "alpha": alpha})
    if _use_kernel("variance_momentum_step_", x, backend) and momentum is not None:
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        torch.ops.pyadvt.variance_momentum_step_(x, grad, variance, neighbours, x_orig, eps.to(acc).reshape(-1),
                                                 alpha.to(acc).reshape(-1), momentum, float(mu))
        return x
    return variance_momentum_step_reference_(x, grad, variance, neighbours, x_orig, eps, alpha, momentum, mu)


def patch_step_reference_(x, grad, x_orig, amplification, eps, alpha, beta, gamma, kernel):
    """Eager form of :func:`patch_step_`."""
    step = _per_row(alpha, x) * float(beta) * torch.sign(grad)
    e = _per_row(eps, x)
    amplification.add_(step)
    cut = torch.clamp(amplification.abs() - e, min=0.0) * torch.sign(amplification)
    C = x.shape[1]
    k = kernel.to(dtype=x.dtype, device=x.device).expand(C, 1, *kernel.shape)
    projection = _per_row(gamma, x) * torch.sign(F.conv2d(cut, k, padding=kernel.shape[-1] // 2, groups=C))
    amplification.add_(projection)
    stepped = x + step + projection
    x.copy_(torch.minimum(torch.maximum(stepped, x_orig - e), x_orig + e).clamp_(0.0, 1.0))
    return x


def patch_step_(x: torch.Tensor, grad: torch.Tensor, x_orig: torch.Tensor, amplification: torch.Tensor,
                eps: torch.Tensor, alpha: torch.Tensor, beta: float, gamma: torch.Tensor, kernel: torch.Tensor,
                backend: str = "auto") -> torch.Tensor:
    """PI-FGSM's step (docs/theory.md §10.5), in place on ``x`` and ``amplification`` (``a``):

    ``s = sign(grad)``; ``a += beta alpha s``; ``C = sign(a) max(|a| - eps, 0)``;
    ``P = gamma sign(W_p * C)`` (project kernel per channel, zero padding); ``a += P``;
    ``x <- clip_{x_orig, eps}(x + beta alpha s + P)``.

    Args:
        x, grad, x_orig, amplification: ``[B, C, H, W]``. eps, alpha, gamma: ``[B]`` or ``[1]``.
        beta: amplification factor. kernel: ``[k, k]`` (:func:`pyadvt.attacks.smoothing.project_kernel`).

    Raises:
        InvalidTypeError: a state argument is not a tensor, or dtypes differ.
        InvalidValueError: shapes or devices differ, ``eps`` / ``alpha`` / ``gamma`` have neither 1
            nor ``B`` entries, ``kernel`` is not ``[k, k]`` with ``k`` odd, or ``backend`` is unknown.

    Example:
        >>> from pyadvt.attacks.smoothing import project_kernel
        >>> x0 = torch.full((1, 1, 3, 3), 0.5); x = x0.clone(); a = torch.zeros_like(x)
        >>> _ = patch_step_(x, torch.ones_like(x), x0, a, torch.tensor([0.1]), torch.tensor([0.02]), 10.0,
        ...                 torch.tensor([0.2]), project_kernel(3))
        >>> round(float(x.max() - 0.5), 4), round(float(a.max()), 4)
        (0.1, 0.4)
    """
    _check_state(x, {"grad": grad, "x_orig": x_orig, "amplification": amplification},
                 {"eps": eps, "alpha": alpha, "gamma": gamma}, kernel=kernel)
    if _use_kernel("patch_step_", x, backend):
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        torch.ops.pyadvt.patch_step_(x, grad, x_orig, amplification, eps.to(acc).reshape(-1),
                                     alpha.to(acc).reshape(-1), float(beta), gamma.to(acc).reshape(-1),
                                     kernel.to(x.dtype))
        return x
    return patch_step_reference_(x, grad, x_orig, amplification, eps, alpha, beta, gamma, kernel)
