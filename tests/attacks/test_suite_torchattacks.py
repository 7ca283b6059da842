"""NI-FGSM, SI-NI-FGSM, TI-FGSM (input diversity off) and PI-FGSM equal torchattacks' on the same model
and inputs (docs/theory.md §10.1-§10.3, §10.5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import pyadvt.attacks as A

torchattacks = pytest.importorskip("torchattacks")

TOL = dict(atol=1e-6, rtol=0)


def rgb_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1),
                        nn.ReLU(), nn.Flatten(), nn.Linear(6 * 100, 10))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(3)
    return rgb_cnn(), torch.rand(12, 3, 10, 10, generator=g), torch.randint(0, 10, (12,), generator=g)


@pytest.mark.parametrize("eps, alpha, steps, mu", [(16 / 255, 1.6 / 255, 10, 1.0), (8 / 255, 2 / 255, 5, 0.5)])
def test_nifgsm_equals_torchattacks(setup, eps, alpha, steps, mu):
    net, x, y = setup
    ours = A.NIFGSM(net, eps, alpha, steps, mu=mu)(x, y)
    ref = torchattacks.NIFGSM(net, eps, alpha, steps, decay=mu)(x, y)
    torch.testing.assert_close(ours, ref, **TOL)


@pytest.mark.parametrize("m", [1, 3, 5])
def test_sinifgsm_equals_torchattacks(setup, m):
    net, x, y = setup
    ours = A.SINIFGSM(net, 16 / 255, 1.6 / 255, 6, m=m)(x, y)
    ref = torchattacks.SINIFGSM(net, 16 / 255, 1.6 / 255, 6, decay=1.0, m=m)(x, y)
    torch.testing.assert_close(ours, ref, **TOL)


@pytest.mark.parametrize("mu, kernel, nsig", [(0.0, 15, 3), (1.0, 5, 3), (1.0, 7, 2)])
def test_tifgsm_without_diversity_equals_torchattacks(setup, mu, kernel, nsig):
    net, x, y = setup
    ours = A.TIFGSM(net, 16 / 255, 1.6 / 255, 8, mu=mu, len_kernel=kernel, nsig=nsig)(x, y)
    ref = torchattacks.TIFGSM(net, 16 / 255, 1.6 / 255, 8, decay=mu, len_kernel=kernel, nsig=nsig,
                              diversity_prob=0.0)(x, y)
    torch.testing.assert_close(ours, ref, **TOL)


def test_tifgsm_kernel_equals_torchattacks_gkern():
    ref = torchattacks.TIFGSM(rgb_cnn(), len_kernel=15, nsig=3).stacked_kernel[0, 0].double()
    torch.testing.assert_close(A.smoothing.gaussian_kernel(15, 3), ref, atol=1e-7, rtol=0)


@pytest.mark.parametrize("eps, steps", [(16 / 255, 10), (8 / 255, 4)])
def test_pifgsm_equals_torchattacks(setup, eps, steps):
    net, x, y = setup
    ours = A.PIFGSM(net, eps, None, steps)(x, y)
    ref = torchattacks.PIFGSM(net, max_epsilon=eps, num_iter_set=steps)(x, y)
    torch.testing.assert_close(ours, ref, **TOL)


def test_nifgsm_on_a_torchvision_resnet_equals_torchattacks():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10).eval()
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 3, 32, 32, generator=g), torch.tensor([1, 5, 7])
    ours = A.NIFGSM(net, 16 / 255, 1.6 / 255, 3)(x, y)
    ref = torchattacks.NIFGSM(net, 16 / 255, 1.6 / 255, 3)(x, y)
    torch.testing.assert_close(ours, ref, **TOL)
