"""Regression tests of issue 16's contract gaps in ops, bounds and transfer: exact flags and messages
(the contract test only checks that *some* flag, warning or named error appears)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from pyadvt import bounds as B
from pyadvt import ops as O
from pyadvt import transfer as TR
from pyadvt.data import TensorData
from pyadvt.models import build
from pyadvt.ops.linalg import FLAG_NONFINITE

IN = (3, 8, 8)


def _resnet(seed=0):
    torch.manual_seed(seed)
    return build("resnet", in_shape=IN, num_classes=4, widths=(4, 8)).eval()


def test_top_singular_flags_exactly_the_nan_sample_a_relu_would_hide():
    net = _resnet()
    x = torch.rand(3, *IN, generator=torch.Generator().manual_seed(0))
    ref = O.jacobian_top_singular(net, x, max_iter=30)
    x[1, 0, 0, 0] = float("nan")
    s = O.jacobian_top_singular(net, x, max_iter=30)
    assert s.flags.tolist()[1] == FLAG_NONFINITE and torch.isnan(s.sigma1[1]) and torch.isnan(s.v1[1]).all()
    keep = torch.tensor([True, False, True])
    assert torch.equal(s.flags[keep], ref.flags[keep])
    torch.testing.assert_close(s.sigma1[keep], ref.sigma1[keep])


@pytest.mark.parametrize("op", ["jacobian", "jvp"])
def test_jacobian_ops_warn_on_a_nan_pixel_and_stay_quiet_otherwise(op):
    net = _resnet()
    x = torch.rand(2, *IN, generator=torch.Generator().manual_seed(1))
    call = (lambda t: O.jacobian(net, t)) if op == "jacobian" else (lambda t: O.jvp(net, t, torch.ones_like(t)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clean = call(x)
    assert torch.isfinite(clean).all()
    assert not [w for w in caught if "undefined" in str(w.message)]
    x[0, 0, 0, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="1 of 2 samples is undefined"):
        call(x)


def test_lower_bound_with_nan_weights_is_undefined_not_a_torch_error():
    S, T = _resnet(0), _resnet(1)
    with torch.no_grad():
        next(p for p in S.parameters() if p.dim() > 1).view(-1)[0] = float("nan")
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, *IN, generator=g)
    y = torch.randint(0, 4, (3,), generator=g)
    x_adv = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        res = B.lower_bound(S, T, x, y, x_adv, smooth_source=1.0, smooth_target=1.0)
    assert res.vacuous and res.value != res.value and res.terms["c_F"] != res.terms["c_F"]


def test_lower_bound_empty_batch_names_x():
    S, T = _resnet(0), _resnet(1)
    x = torch.rand(0, *IN)
    with pytest.raises(ValueError, match="'x' is empty"):
        B.lower_bound(S, T, x, torch.zeros(0, dtype=torch.long), x.clone())


@pytest.mark.parametrize("fn", [B.pair_jacobians, B.theorem2])
def test_seed000_bounds_refuse_uint8_before_the_probe(fn):
    S, T = _resnet(0), _resnet(1)
    with pytest.raises(TypeError, match="'x' must be a floating-point tensor"):
        fn(S, T, (torch.rand(2, *IN) * 255).to(torch.uint8))


@pytest.mark.parametrize("fn", [lambda x: TR.low_pass(x), lambda x: TR.low_resolution(x, 4)])
def test_target_transforms_refuse_nan_and_empty(fn):
    x = torch.rand(2, *IN)
    x[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="'x' contains NaN or infinite"):
        fn(x)
    with pytest.raises(ValueError, match="'x' is empty"):
        fn(torch.rand(0, *IN))


def test_linear_probe_empty_train_names_train():
    with pytest.raises(ValueError, match="'train' is empty"):
        TR.linear_probe(_resnet(), TensorData(torch.rand(0, *IN), torch.zeros(0, dtype=torch.long)), epochs=1)


def test_finetune_refuses_nan_backbone_but_not_a_nan_head_it_replaces():
    data = TensorData(torch.rand(4, *IN), torch.tensor([0, 1, 2, 3]))
    bad_head = _resnet()
    head = [m for m in bad_head.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        head.weight.view(-1)[0] = float("nan")
    res = TR.finetune(bad_head, data, epochs=1, num_classes=4, blocks="head")  # the NaN head is replaced
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
    bad_body = copy.deepcopy(_resnet())
    with torch.no_grad():
        next(p for p in bad_body.parameters() if p.dim() > 1).view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="'model' has non-finite"):
        TR.finetune(bad_body, data, epochs=1, num_classes=4)
