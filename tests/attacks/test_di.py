"""Diverse-input transform and the DI / DIM attacks (docs/theory.md §1, Xie et al. 2019)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.attacks.test_guarantees import batch, tiny_cnn

from pyadvt.attacks import DI, DIM, MIFGSM, PGD, diverse_input


def loop_reference(x, draws, p, low, high, mode="nearest"):
    """One sample at a time with explicit F.pad / slicing."""
    H, W = x.shape[-2:]
    outs = []
    for img, (u_apply, u_r, u_top, u_left) in zip(x, draws.tolist()):
        r = low + (high - low) * u_r
        h, w = int(r * H + 0.5), int(r * W + 0.5)
        if u_apply >= p or (h, w) == (H, W):
            outs.append(img)
            continue
        res = F.interpolate(img[None], size=(h, w), mode=mode)[0]
        top = min(int(u_top * (abs(H - h) + 1)), abs(H - h))
        left = min(int(u_left * (abs(W - w) + 1)), abs(W - w))
        if h < H:
            res = F.pad(res, (0, 0, top, H - h - top))
        else:
            res = res[:, top:top + H]
        if w < W:
            res = F.pad(res, (left, W - w - left, 0, 0))
        else:
            res = res[:, :, left:left + W]
        outs.append(res)
    return torch.stack(outs)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), H=st.integers(4, 12), W=st.integers(4, 12),
       low=st.floats(0.5, 1.0), span=st.floats(0.0, 0.6), p=st.floats(0.0, 1.0))
def test_diverse_input_matches_loop_reference(seed, H, W, low, span, p):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 2, H, W, generator=g)
    draws = torch.rand(6, 4, generator=g, dtype=torch.float64)
    out = diverse_input(x, draws, p=p, resize_low=low, resize_high=low + span)
    assert out.shape == x.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    torch.testing.assert_close(out, loop_reference(x, draws, p, low, low + span), atol=0, rtol=0)


def test_diverse_input_pad_and_crop_by_hand():
    x = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
    # r = 0.5 -> 2x2 nearest (rows/cols 0 and 2), padded with top = 1, left = 2
    small = diverse_input(x, torch.tensor([[0.0, 0.0, 0.4, 0.9]]), resize_low=0.5, resize_high=0.5)
    expected = torch.zeros(4, 4)
    expected[1:3, 2:4] = torch.tensor([[1.0, 3.0], [9.0, 11.0]])
    assert torch.equal(small[0, 0], expected)
    # r = 1.5 -> 6x6 nearest, then the crop starting at (top, left) = (2, 0)
    big = diverse_input(x, torch.tensor([[0.0, 0.0, 0.99, 0.0]]), resize_low=1.5, resize_high=1.5)
    up = F.interpolate(x, size=(6, 6), mode="nearest")
    assert torch.equal(big, up[:, :, 2:6, 0:4])


def test_diverse_input_is_differentiable():
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    draws = torch.tensor([[0.1, 0.0, 0.3, 0.6], [0.1, 1.0 - 1e-9, 0.5, 0.2], [0.9, 0.5, 0.5, 0.5],
                          [0.2, 0.3, 0.0, 0.99], [0.0, 0.8, 0.7, 0.1]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: diverse_input(t, draws, resize_low=0.6, resize_high=1.4,
                                                            interpolation="bilinear"), (x,))
    out = diverse_input(x, draws, resize_low=0.6, resize_high=1.4)
    (g,) = torch.autograd.grad(out.sum(), x)
    assert g[2].eq(1).all()                  # untransformed sample: identity
    assert g.abs().sum() > 0


def test_diverse_input_validation():
    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="draws"):
        diverse_input(x, torch.rand(3, 4))
    with pytest.raises(ValueError, match="images"):
        diverse_input(x[:, 0], torch.rand(2, 4))
    with pytest.raises(ValueError, match="interpolation"):
        diverse_input(x, torch.rand(2, 4), interpolation="cubic")
    with pytest.raises(ValueError, match="'p'"):
        DI(tiny_cnn(), eps=0.1, p=1.5)
    with pytest.raises(ValueError, match="resize_low"):
        DI(tiny_cnn(), eps=0.1, resize_low=1.2, resize_high=1.1)


def test_di_with_p0_is_ifgsm_and_dim_with_p0_is_mifgsm():
    net = tiny_cnn()
    x, y = batch(8)
    torch.testing.assert_close(DI(net, eps=0.1, steps=4, p=0.0)(x, y),
                               PGD(net, eps=0.1, alpha=0.025, steps=4, random_start=False)(x, y), atol=0, rtol=0)
    torch.testing.assert_close(DIM(net, eps=0.1, steps=4, p=0.0)(x, y), MIFGSM(net, eps=0.1, steps=4)(x, y),
                               atol=0, rtol=0)


def test_di_transform_changes_the_attack_and_draws_are_per_sample():
    net = tiny_cnn()
    x, y = batch(8)
    di = DI(net, eps=0.1, steps=4, p=1.0)
    assert not torch.equal(di(x, y), DI(net, eps=0.1, steps=4, p=0.0)(x, y))
    # identical images with different sample ids get different per-sample transforms ...
    same = x[:1].expand(8, -1, -1, -1).contiguous()
    ids = torch.arange(8)
    per_sample = di(same, y[:1].expand(8), sample_ids=ids)
    assert len({tuple(r.flatten().tolist()) for r in per_sample}) > 1
    # ... but one shared draw per step with the authors' legacy_batch_draw
    legacy = DI(net, eps=0.1, steps=4, p=1.0, legacy_batch_draw=True)(same, y[:1].expand(8), sample_ids=ids)
    assert all(torch.equal(legacy[0], r) for r in legacy)


def test_legacy_batch_draw_transforms_every_sample_alike():
    x = torch.rand(6, 1, 8, 8) * 0.6 + 0.2      # no pixel of an iterate reaches 0: zeros are padding
    y = torch.zeros(6, dtype=torch.long)
    seen = []
    net = tiny_cnn()

    def record(mod, inp, out):
        seen.append(inp[0].detach().clone())

    net.register_forward_hook(record)
    DI(net, eps=0.1, steps=3, p=1.0, resize_low=0.5, resize_high=0.75, legacy_batch_draw=True)(x, y)
    for inp in seen[1:]:                     # the class-count probe is untransformed
        zero_rows = (inp.flatten(2).abs().sum(dim=1) == 0).view(6, 8, 8)
        assert all(torch.equal(zero_rows[0], z) for z in zero_rows), "one padding layout for the whole batch"
