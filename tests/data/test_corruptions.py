"""Gaussian-noise and zoom-blur corruptions (seed 004 app. B.5, Table 11)."""

from __future__ import annotations

import pytest
import torch

from pyadvt.data.corruptions import GAUSSIAN_NOISE_STD, ZOOM_FACTORS, corrupt, gaussian_noise, zoom_blur


def test_severity_tables_match_the_paper():
    assert [GAUSSIAN_NOISE_STD[s] for s in (1, 2, 5)] == [0.04, 0.06, 0.10]
    assert [(ZOOM_FACTORS[s][0], ZOOM_FACTORS[s][-1]) for s in (1, 2, 5)] == [(1.0, 1.05), (1.0, 1.1), (1.0, 1.25)]


def test_gaussian_noise_std_and_batch_independence():
    x = torch.full((64, 1, 8, 8), 0.5)
    x += torch.linspace(0, 1e-3, 64).view(-1, 1, 1, 1)     # distinct samples
    out = gaussian_noise(x, 0.06, seed=3)
    assert (out - x).std().item() == pytest.approx(0.06, rel=0.05)
    assert torch.equal(gaussian_noise(x[10:20], 0.06, seed=3), out[10:20])
    assert not torch.equal(gaussian_noise(x, 0.06, seed=4), out)
    assert bool(((out >= 0) & (out <= 1)).all())


def test_zoom_blur_properties():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(zoom_blur(x, [1.0]), x)
    const = torch.full((2, 1, 8, 8), 0.7)
    assert torch.allclose(zoom_blur(const, ZOOM_FACTORS[5]), const, atol=1e-6)
    # a linear ramp zoomed by 2 about the centre (1.5, 1.5) is the ramp at half slope, exactly
    img = torch.arange(16.0).view(1, 1, 4, 4) / 15
    z2 = zoom_blur(img, [2.0]) * 2 - img
    r = 1.5 + (torch.arange(4.0) - 1.5) / 2
    expected = ((4 * r[:, None] + r[None, :]) / 15).view(1, 1, 4, 4)
    assert torch.allclose(z2, expected, atol=1e-6)


def test_distance_grows_with_severity():
    torch.manual_seed(1)
    x = torch.nn.functional.interpolate(torch.rand(16, 1, 4, 4), size=(8, 8), mode="bilinear") * 0.6 + 0.2
    for kind in ("gaussian_noise", "zoom_blur"):
        d = [(corrupt(x, kind, s) - x).abs().mean().item() for s in (0, 1, 2, 5)]
        assert d[0] == 0 and d[1] < d[2] < d[3], (kind, d)


def test_errors_and_purity():
    x = torch.rand(2, 1, 8, 8)
    c = x.clone()
    corrupt(x, "zoom_blur", 2), corrupt(x, "gaussian_noise", 1)
    assert torch.equal(x, c)
    with pytest.raises(ValueError, match="kind"):
        corrupt(x, "fog", 1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(x, "zoom_blur", 6)
    with pytest.raises(ValueError, match="factors"):
        zoom_blur(x, [0.9])
    with pytest.raises(ValueError, match="std"):
        gaussian_noise(x, -1.0)
