"""pgd_step_ across precisions and magnitudes: the reference squares in float64 (an L2 step for any
float32 gradient magnitude), float16/bfloat16 on the CPU kernel computed in float32, bitwise
determinism, per-sample random draws in every floating dtype, and the attacks (PGD, MI-FGSM) under
``torch.autocast`` and on float16/bfloat16 models."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from torch import nn

from pyadvt import _ext
from pyadvt.attacks import MIFGSM, PGD
from pyadvt.ops import pgd_step_
from pyadvt.utils.rng import per_sample_rand, sample_seeds

needs_kernel = pytest.mark.skipif(not _ext.kernel_available("pgd_step_", "cpu"), reason="pyadvt._C not built")
BACKENDS = ["reference", pytest.param("kernel", marks=needs_kernel)]
HALF = (torch.float16, torch.bfloat16)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("magnitude", [1e-30, 1e-25, 1e-20, 1e20, 1e25, 1e30])
@pytest.mark.parametrize("use_momentum", [False, True])
def test_l2_step_for_any_float32_gradient_magnitude(backend, magnitude, use_momentum):
    """Regression (reliability D3): the reference squared float32 gradients before accumulating in
    float64 and took no step below ~1e-23 or above ~1e19."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((3, 50), 0.5)
    grad = (torch.randn(3, 50, generator=g, dtype=torch.float64) * magnitude).float()
    x = x0.clone()
    m = torch.zeros_like(x) if use_momentum else None
    pgd_step_(x, grad, x0, eps=1.0, alpha=0.1, norm="l2", momentum=m, backend=backend)
    step = (x - x0).double()
    torch.testing.assert_close(step.norm(dim=1), torch.full((3,), 0.1, dtype=torch.float64), rtol=1e-5, atol=0)
    direction = grad.double() / magnitude  # cosine_similarity's eps would swamp tiny norms
    cos = torch.nn.functional.cosine_similarity(step, direction, dim=1)
    torch.testing.assert_close(cos, torch.ones(3, dtype=torch.float64), rtol=1e-5, atol=0)


@needs_kernel
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_half_precision_cpu_kernel_computes_in_float32(dtype, norm):
    """float16/bfloat16 on the CPU kernel (it had no such dispatch): the result is the float32
    computation on the stored values, rounded once, i.e. the float32 kernel's output rounded."""
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(4, 3, 8, 8, generator=g).to(dtype)
    x = (x0.float() + 0.01 * torch.randn(4, 3, 8, 8, generator=g)).clamp(0, 1).to(dtype)
    grad = torch.randn(4, 3, 8, 8, generator=g).to(dtype)
    out = x.clone()
    pgd_step_(out, grad, x0, 0.05, 0.01, norm=norm, backend="kernel")
    f32 = x.float()
    pgd_step_(f32, grad.float(), x0.float(), 0.05, 0.01, norm=norm, backend="kernel")
    assert out.dtype == dtype
    torch.testing.assert_close(out, f32.to(dtype), rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, *HALF])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_runs_are_bitwise_identical(backend, dtype, norm):
    g = torch.Generator().manual_seed(3)
    x0 = torch.rand(6, 5000, generator=g).to(dtype)
    grad = torch.randn(6, 5000, generator=g).to(dtype)
    outs = []
    for _ in range(2):
        x, m = x0.clone(), torch.zeros_like(x0)
        pgd_step_(x, grad, x0, 0.05, 0.01, norm=norm, momentum=m, backend=backend)
        outs.append((x, m))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_gradient_elements_take_no_linf_step(backend):
    x0 = torch.full((2, 4), 0.5)
    x = x0.clone()
    grad = torch.tensor([[float("nan"), 1.0, -1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    pgd_step_(x, grad, x0, 0.1, 0.05, backend=backend)
    torch.testing.assert_close(x, torch.tensor([[0.5, 0.55, 0.45, 0.5], [0.55, 0.55, 0.55, 0.55]]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                   torch.float8_e4m3fn, torch.float8_e5m2])
@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_per_sample_rand_every_floating_dtype(dtype, distribution):
    x = torch.rand(4, 6).to(dtype)
    r = per_sample_rand(x, (3, 2), seed=5, distribution=distribution)
    assert r.dtype == dtype and r.shape == (4, 3, 2)
    ref = per_sample_rand(x, (3, 2), seed=5, distribution=distribution, dtype=torch.float64)
    torch.testing.assert_close(r.double(), ref.to(dtype).double(), rtol=0, atol=0)  # drawn in float64, one rounding
    assert torch.equal(per_sample_rand(x[2:], (3, 2), seed=5, distribution=distribution).double(), r[2:].double())


def test_sample_seeds_unchanged_for_numpy_dtypes():
    """The uint8-view identity gives the same CRC32 as the former numpy path (float32/float64)."""
    for dt in (torch.float32, torch.float64, torch.int64):
        x = (torch.rand(3, 5) * 10).to(dt)
        arr = x.contiguous().reshape(3, -1).numpy()
        old_ids = [zlib.crc32(np.ascontiguousarray(row).tobytes()) for row in arr]
        assert sample_seeds(x, 7) == sample_seeds(x, 7, sample_ids=old_ids)


def _net(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10)).eval().to(dtype)


def _mean_loss(model, x, y):
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x).float(), y))


ATTACKS = [pytest.param(lambda m: PGD(m, eps=8 / 255, steps=4, random_start=True), id="PGD"),
           pytest.param(lambda m: MIFGSM(m, eps=8 / 255, steps=4), id="MIFGSM")]


@pytest.mark.parametrize("make", ATTACKS)
def test_attacks_under_autocast_bfloat16(make):
    model = _net()
    x = torch.rand(6, 3, 16, 16)
    y = torch.randint(0, 10, (6,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_adv = make(model)(x, y)
    assert x_adv.dtype == torch.float32 and torch.equal(x, x.clone())
    assert float((x_adv - x).abs().max()) <= 8 / 255 + 1e-6 and 0 <= float(x_adv.min()) and float(x_adv.max()) <= 1
    assert _mean_loss(model, x_adv, y) > _mean_loss(model, x, y)


@pytest.mark.parametrize("make", ATTACKS)
@pytest.mark.parametrize("dtype", HALF)
def test_attacks_on_half_precision_models(make, dtype):
    model = _net(dtype)
    x = torch.rand(6, 3, 16, 16).to(dtype)
    y = torch.randint(0, 10, (6,))
    x_adv = make(model)(x, y)
    assert x_adv.dtype == dtype
    # inside the ball up to the storage rounding of x_adv (half an ulp below 1.0)
    slack = torch.finfo(dtype).eps / 2
    assert float((x_adv.float() - x.float()).abs().max()) <= 8 / 255 + slack
    assert 0 <= float(x_adv.min()) and float(x_adv.max()) <= 1
    assert _mean_loss(model, x_adv, y) > _mean_loss(model, x, y)
