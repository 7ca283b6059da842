"""Cross-checks against torchattacks (test extra) on the same model and data, and the documented
differences where docs/theory.md §1 and torchattacks disagree."""

from __future__ import annotations

import pytest
import torch
from tests.attacks.test_guarantees import batch, tiny_cnn

from pyadvt.attacks import FGSM, MIFGSM, PGD

torchattacks = pytest.importorskip("torchattacks")

TOL = dict(atol=1e-6, rtol=0)


@pytest.fixture
def setup():
    net = tiny_cnn()
    x, y = batch(24)
    return net, x, y


@pytest.mark.parametrize("eps, alpha, steps", [(0.1, 0.02, 10), (0.03, 0.01, 5), (0.3, 0.1, 3)])
def test_pgd_linf_no_random_start_equals_torchattacks(setup, eps, alpha, steps):
    net, x, y = setup
    ours = PGD(net, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    ref = torchattacks.PGD(net, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    torch.testing.assert_close(ours, ref, **TOL)


@pytest.mark.parametrize("eps, alpha, steps", [(0.5, 0.1, 10), (1.0, 0.5, 4)])
def test_pgd_l2_no_random_start_equals_torchattacks_pgdl2(setup, eps, alpha, steps):
    net, x, y = setup
    ours = PGD(net, eps=eps, alpha=alpha, steps=steps, norm="l2", random_start=False)(x, y)
    ref = torchattacks.PGDL2(net, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
    # torchattacks adds 1e-10 to the gradient norm of its batch-mean loss (pyadvt: exact
    # per-sample normalisation, docs/theory.md §1); the difference stays far below this tolerance here.
    torch.testing.assert_close(ours, ref, **TOL)


def test_fgsm_equals_torchattacks(setup):
    net, x, y = setup
    torch.testing.assert_close(FGSM(net, eps=0.07)(x, y), torchattacks.FGSM(net, eps=0.07)(x, y), **TOL)


def test_mifgsm_equals_torchattacks(setup):
    net, x, y = setup
    ours = MIFGSM(net, eps=0.1, alpha=0.01, steps=10, mu=1.0)(x, y)
    ref = torchattacks.MIFGSM(net, eps=0.1, alpha=0.01, steps=10, decay=1.0)(x, y)
    torch.testing.assert_close(ours, ref, **TOL)


def test_targeted_pgd_equals_torchattacks(setup):
    net, x, y = setup
    ref_atk = torchattacks.PGD(net, eps=0.1, alpha=0.02, steps=5, random_start=False)
    ref_atk.set_mode_targeted_by_function(lambda images, labels: (labels + 1) % 10, quiet=True)
    ours = PGD(net, eps=0.1, alpha=0.02, steps=5, random_start=False, targeted=True)(x, y)
    torch.testing.assert_close(ours, ref_atk(x, y), **TOL)


def test_mifgsm_zero_gradient_sample_takes_no_step():
    """docs/theory.md §0: a zero gradient never yields NaN. pyadvt's kernel skips the 0/0 normalisation; torchattacks
    computes NaN momentum there, which its sign step happens to turn into a zero step (torch.sign(nan) == 0),
    so both leave the sample in place and agree on the other samples."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Threshold(0.5, 0.0), torch.nn.Linear(64, 10))
    x, y = batch(4)
    x[0] = x[0] * 0.3                     # every pixel below the threshold: zero gradient
    ours = MIFGSM(net, eps=0.1, steps=3)(x, y)
    ref = torchattacks.MIFGSM(net, eps=0.1, alpha=0.1 / 3, steps=3)(x, y)
    assert torch.equal(ours[0], x[0]) and torch.isfinite(ours).all()
    torch.testing.assert_close(ours, ref, **TOL)
    assert not torch.equal(ours[1:], x[1:])


def test_pgd_sign_steps_do_not_depend_on_batch_mean_reduction(setup):
    """torchattacks differentiates the batch-mean loss, pyadvt the per-sample losses' sum: for sign steps
    the two agree, and pyadvt's L2 step equals torchattacks' even for a single sample (B = 1)."""
    net, x, y = setup
    ours = PGD(net, eps=0.5, alpha=0.2, steps=3, norm="l2", random_start=False)(x[:1], y[:1])
    ref = torchattacks.PGDL2(net, eps=0.5, alpha=0.2, steps=3, random_start=False)(x[:1], y[:1])
    torch.testing.assert_close(ours, ref, **TOL)
