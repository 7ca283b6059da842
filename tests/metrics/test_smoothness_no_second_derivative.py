"""smoothness refuses a model whose backward is not differentiable instead of reporting zero curvature."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from pyadvt.metrics import smoothness


class _OnceReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0).to(g.dtype)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.b(_OnceReLU.apply(self.a(x.flatten(1))))


def test_once_differentiable_layer_is_refused_not_zero():
    torch.manual_seed(0)
    x, y = torch.rand(5, 6), torch.randint(0, 3, (5,))
    with pytest.raises(TypeError, match="double backward"):
        smoothness(_Net(), x, y)


def test_the_same_net_with_a_differentiable_relu_has_positive_curvature():
    torch.manual_seed(0)
    x, y = torch.rand(5, 6), torch.randint(0, 3, (5,))
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    # the CE Hessian of a ReLU net is W1' (diag(p) - p p') W1 restricted to the active units: PSD, nonzero
    assert smoothness(net, x, y).mean > 0
