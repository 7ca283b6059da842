"""Argument validation shared by the op wrappers: errors name the argument and the fix."""

from __future__ import annotations

import torch


def require_tensor(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor, got {type(t).__name__}")
    return t


def require_like(ref: torch.Tensor, t: torch.Tensor, ref_name: str, name: str) -> None:
    """``t`` must match ``ref`` in shape, dtype and device."""
    require_tensor(t, name)
    if t.device != ref.device:
        raise ValueError(f"'{name}' is on {t.device} but '{ref_name}' is on {ref.device}; move them to one device")
    if t.shape != ref.shape:
        raise ValueError(f"'{name}' has shape {tuple(t.shape)} but '{ref_name}' has shape {tuple(ref.shape)}")
    if t.dtype != ref.dtype:
        raise ValueError(f"'{name}' has dtype {t.dtype} but '{ref_name}' has dtype {ref.dtype}")


def require_mutable(t: torch.Tensor, name: str) -> None:
    """``t`` may be updated in place as torch's own in-place ops allow: not a leaf that requires grad
    while grad mode is on (torch raises for that; under ``torch.no_grad()`` it is allowed)."""
    if torch.is_grad_enabled() and t.requires_grad and t.is_leaf:
        raise ValueError(
            f"'{name}' is a leaf tensor that requires grad and would be updated in place; pass "
            f"'{name}.detach()' (or a clone), or call under torch.no_grad()"
        )


def require_floating(t: torch.Tensor, name: str) -> None:
    if not t.is_floating_point():
        raise ValueError(f"'{name}' must be a floating-point tensor, got {t.dtype}")


def per_sample_tensor(value, x: torch.Tensor, name: str, *, positive: bool) -> torch.Tensor:
    """A scalar or a [B] tensor -> float tensor of shape [1] or [B] on x's device.

    Raises ValueError when negative (or non-positive with ``positive=True``), non-finite, or of
    the wrong length.
    """
    B = x.shape[0]
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    if isinstance(value, torch.Tensor):
        t = value.detach().to(device=x.device, dtype=acc).reshape(-1)
        if t.numel() not in (1, B):
            raise ValueError(f"'{name}' must be a scalar or have B={B} entries (one per sample), got {t.numel()}")
    else:
        try:
            t = torch.tensor([float(value)], dtype=acc, device=x.device)
        except (TypeError, ValueError):
            raise TypeError(f"'{name}' must be a number or a tensor, got {type(value).__name__}") from None
    if torch.compiler.is_compiling():
        return t
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"'{name}' must be finite, got {value}")
    if positive and bool((t <= 0).any()):
        raise ValueError(f"'{name}' must be > 0, got {value}")
    if not positive and bool((t < 0).any()):
        raise ValueError(f"'{name}' must be >= 0, got {value}")
    return t
