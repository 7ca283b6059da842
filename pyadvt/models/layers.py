"""Building blocks shared by the reference networks."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
}


def check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"'activation' must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return name


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of ``ACTIVATIONS``). ReLU/LeakyReLU keep a network
    piecewise linear, which the exact Gauss-Newton smoothness route needs (docs/theory.md §3)."""
    return ACTIVATIONS[check_activation(name)]()


def conv_bn_act(c_in: int, c_out: int, act: str, stride: int = 1) -> list[nn.Module]:
    """3x3 convolution (no bias: BatchNorm has one), BatchNorm, activation."""
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), activation(act)]


def check_in_shape(in_shape) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in in_shape)
    except (TypeError, ValueError):
        raise TypeError(f"'in_shape' must be a (C, H, W) tuple of ints, got {in_shape!r}") from None
    if len(shape) != 3 or any(s < 1 for s in shape) or list(shape) != list(in_shape):
        raise ValueError(f"'in_shape' must be a (C, H, W) tuple of positive ints, got {in_shape!r}")
    return shape


def check_num_classes(num_classes) -> int:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"'num_classes' must be an int >= 2, got {num_classes!r}")
    return num_classes


def check_widths(widths, name: str, allow_empty: bool = False) -> list[int]:
    try:
        out = [int(w) for w in widths]
    except (TypeError, ValueError):
        raise TypeError(f"'{name}' must be a sequence of positive ints, got {widths!r}") from None
    if (not out and not allow_empty) or any(w < 1 for w in out) or out != list(widths):
        raise ValueError(f"'{name}' must be a {'' if allow_empty else 'non-empty '}sequence of positive ints, "
                         f"got {widths!r}")
    return out
