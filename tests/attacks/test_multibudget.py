"""Multi-budget calls (``eps`` a [K] tensor) equal K separate runs, in one batched pass."""

from __future__ import annotations

import pytest
import torch
from tests.attacks.test_guarantees import batch, tiny_cnn

from pyadvt.attacks import DI, DIM, FGSM, MIFGSM, PGD

BUDGETS = torch.tensor([0.02, 0.05, 0.1, 0.2])

ATTACKS = {
    "pgd-linf": lambda m: PGD(m, eps=0.1, steps=3),
    "pgd-l2-restarts": lambda m: PGD(m, eps=0.5, steps=3, norm="l2", restarts=2),
    "fgsm": lambda m: FGSM(m, eps=0.1),
    "mifgsm": lambda m: MIFGSM(m, eps=0.1, steps=3),
    "di": lambda m: DI(m, eps=0.1, steps=3),
    "dim-targeted": lambda m: DIM(m, eps=0.1, steps=3, targeted=True, random_start=True),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_multi_budget_equals_separate_runs(name):
    net = tiny_cnn()
    x, y = batch(10)
    atk = ATTACKS[name](net)
    out = atk(x, y, eps=BUDGETS)
    assert out.shape == (len(BUDGETS),) + tuple(x.shape)
    for k, e in enumerate(BUDGETS.tolist()):
        torch.testing.assert_close(out[k], atk(x, y, eps=e), atol=1e-6, rtol=0)


def test_alpha_scales_with_eps_unless_given_per_budget():
    net = tiny_cnn()
    x, y = batch(6)
    atk = PGD(net, eps=0.1, alpha=0.03, steps=2, random_start=False)
    out = atk(x, y, eps=BUDGETS)
    for k, e in enumerate(BUDGETS.tolist()):
        ref = PGD(net, eps=e, alpha=0.3 * e, steps=2, random_start=False)(x, y)
        torch.testing.assert_close(out[k], ref, atol=1e-6, rtol=0)
    alphas = torch.tensor([0.01, 0.01, 0.04, 0.05])
    out = atk(x, y, eps=BUDGETS, alpha=alphas)
    for k in range(len(BUDGETS)):
        ref = PGD(net, eps=float(BUDGETS[k]), alpha=float(alphas[k]), steps=2, random_start=False)(x, y)
        torch.testing.assert_close(out[k], ref, atol=1e-6, rtol=0)
    # a scalar call-time eps keeps the [B, ...] shape and the alpha/eps ratio
    torch.testing.assert_close(atk(x, y, eps=0.2), PGD(net, eps=0.2, alpha=0.06, steps=2, random_start=False)(x, y))


def test_zero_budget_returns_input_and_budgets_are_nested():
    net = tiny_cnn()
    x, y = batch(6)
    out = PGD(net, eps=0.1, steps=3)(x, y, eps=torch.tensor([0.0, 0.05, 0.1]))
    assert torch.equal(out[0], x)
    sizes = (out - x).flatten(2).abs().amax(dim=2)
    assert bool((sizes[1] <= 0.05 + 1e-6).all()) and bool((sizes[2] <= 0.1 + 1e-6).all())
    assert bool((sizes[2] > 0.05 + 1e-4).any())


def test_single_element_budget_tensor_keeps_budget_axis():
    net = tiny_cnn()
    x, y = batch(3)
    atk = FGSM(net, eps=0.1)
    assert atk(x, y, eps=torch.tensor([0.1])).shape == (1,) + tuple(x.shape)
    assert atk(x, y, eps=torch.tensor(0.1)).shape == tuple(x.shape)
    with pytest.raises(ValueError, match="1-D"):
        atk(x, y, eps=torch.ones(2, 2) * 0.1)


def test_multi_budget_is_one_batched_pass():
    net = tiny_cnn()
    x, y = batch(5)
    sizes = []
    net.register_forward_hook(lambda mod, inp, out: sizes.append(inp[0].shape[0]))
    PGD(net, eps=0.1, steps=3)(x, y, eps=BUDGETS)
    assert sizes == [1, 20, 20, 20]     # class count probe, then 3 steps over all K * B rows


def test_row_chunking_does_not_change_results():
    net = tiny_cnn()
    x, y = batch(7)
    atk = DIM(net, eps=0.1, steps=3, random_start=True, restarts=2)
    full = atk(x, y, eps=BUDGETS)
    torch.testing.assert_close(atk(x, y, eps=BUDGETS, batch_size=5), full, atol=1e-6, rtol=0)
    torch.testing.assert_close(atk(x, y, batch_size=3), atk(x, y), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="batch_size"):
        atk(x, y, batch_size=0)


def test_budget_list_and_no_grad_context():
    net = tiny_cnn()
    x, y = batch(4)
    atk = PGD(net, eps=0.1, steps=2)
    with torch.no_grad():                       # callers in no_grad still get a working attack
        out = atk(x, y, eps=[0.05, 0.1])
    torch.testing.assert_close(out, atk(x, y, eps=BUDGETS[1:3]), atol=0, rtol=0)
    assert not torch.equal(out[1], x)
