"""Spectral and curvature quantities of half-precision models are computed in float32.

``tau1``, ``tau2``, ``lambda``, the virtual attack and smoothness rest on small differences of
Jacobian or Hessian products: float16's 11-bit mantissa (eps ~ 1e-3) puts the noise floor of a
Gram eigenvalue at ~6% of ``sigma1^2`` (so ``lambda`` below ~0.25 and every degenerate-gap test
would be meaningless), and CPU autograd lacks double backward for several half kernels. So a
float16/bfloat16 model (or input) is evaluated through a float32 copy of the model (cached while
its parameters are unchanged) on the float32 input; results come back in float32.

Example:
    >>> import torch
    >>> net = torch.nn.Linear(3, 2).half()
    >>> m32, x32 = float32_compute(net, torch.rand(4, 3, dtype=torch.float16))
    >>> m32.weight.dtype, x32.dtype, net.weight.dtype
    (torch.float32, torch.float32, torch.float16)
"""

from __future__ import annotations

import copy
import weakref

import torch
from torch import nn

__all__ = ["HALF_DTYPES", "float32_compute"]

HALF_DTYPES = (torch.float16, torch.bfloat16)

_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]]" = weakref.WeakKeyDictionary()


def _state_key(model: nn.Module) -> tuple:
    return tuple((id(t), t._version) for t in list(model.parameters()) + list(model.buffers()))


def float32_compute(model, x: torch.Tensor):
    """``(model, x)`` unchanged unless one of them is half precision; then a float32 copy of the
    model (cached; refreshed when a parameter changes) and ``x.float()``. The caller's model and
    tensor are never modified."""
    half_x = isinstance(x, torch.Tensor) and x.dtype in HALF_DTYPES
    half_model = isinstance(model, nn.Module) and any(
        t.dtype in HALF_DTYPES for t in list(model.parameters()) + list(model.buffers()))
    if not (half_x or half_model):
        return model, x
    if half_model:
        key = _state_key(model)
        hit = _CACHE.get(model)
        if hit is None or hit[0] != key:
            m32 = copy.deepcopy(model).float()
            for p in m32.parameters():
                p.requires_grad_(False)
            _CACHE[model] = (key, m32)
            hit = _CACHE[model]
        model = hit[1]
    return model, x.float() if half_x else x

