"""Low-resolution and low-pass target transforms (seed 002 sec. 5, Table 2)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.transfer.target_transforms import low_pass, low_pass_mask, low_resolution


@settings(max_examples=15, deadline=None)
@given(st.integers(4, 12), st.integers(4, 12), st.floats(0.0, 0.9))
def test_mask_is_hermitian_and_removes_at_least_k(H, W, fraction):
    keep = low_pass_mask(H, W, fraction)
    flipped = torch.roll(torch.flip(keep, (0, 1)), shifts=(1, 1), dims=(0, 1))  # index -i mod H
    assert torch.equal(keep, flipped)
    assert int((~keep).sum()) >= round(fraction * H * W) or bool(keep[0, 0])
    assert bool(keep[0, 0])


def test_low_pass_zeroes_exactly_the_removed_frequencies():
    torch.manual_seed(0)
    x = 0.5 + 0.05 * torch.randn(3, 2, 8, 8)           # small amplitude: no clipping
    out = low_pass(x, 0.3)
    spec = torch.fft.fft2(out.double())
    keep = low_pass_mask(8, 8, 0.3)
    assert spec[..., ~keep].abs().max() < 1e-5  # float32 output rounding
    assert torch.allclose(spec[..., keep], torch.fft.fft2(x.double())[..., keep], atol=1e-5)
    assert torch.allclose(low_pass(x, 0.0), x, atol=1e-6)
    assert out.dtype == x.dtype and not torch.equal(out, x)


def test_low_pass_keeps_smooth_images():
    i = torch.arange(8, dtype=torch.float64)
    smooth = (0.5 + 0.2 * torch.cos(2 * torch.pi * i / 8))[None, None, :, None].expand(1, 1, 8, 8).float()
    assert torch.allclose(low_pass(smooth.contiguous(), 0.5), smooth, atol=1e-6)


def test_low_resolution_depends_only_on_block_means():
    torch.manual_seed(1)
    x = torch.rand(2, 1, 8, 8) * 0.5 + 0.25
    bump = torch.tensor([[0.1, -0.1], [-0.1, 0.1]]).repeat(4, 4)   # zero mean on every 2x2 block
    assert torch.allclose(low_resolution(x, 4), low_resolution(x + bump, 4), atol=1e-6)
    assert not torch.allclose(low_resolution(x, 4), x)
    const = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(low_resolution(const, 3), const, atol=1e-6)
    assert torch.equal(low_resolution(x, 8), x) and low_resolution(x, (2, 4)).shape == x.shape


def test_inputs_not_mutated_and_errors():
    x = torch.rand(2, 1, 8, 8)
    c = x.clone()
    low_pass(x, 0.2), low_resolution(x, 3)
    assert torch.equal(x, c)
    with pytest.raises(ValueError, match="fraction"):
        low_pass(x, 1.0)
    with pytest.raises(ValueError, match="size"):
        low_resolution(x, 0)
    with pytest.raises(ValueError, match="N, C, H, W"):
        low_pass(torch.rand(8, 8))
    with pytest.raises(TypeError, match="floating"):
        low_resolution(torch.zeros(1, 1, 4, 4, dtype=torch.long), 2)
