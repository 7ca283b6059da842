"""In-place semantics of the mutating ops (``pgd_step_``, ``power_iteration_update_``) are those of
torch's own in-place ops: a leaf that requires grad is refused while grad mode is on, and the
version counter of every written tensor is bumped, so a backward that saved it raises instead of
silently using the modified values. Each case is checked against what plain torch does."""

from __future__ import annotations

import pytest
import torch

from pyadvt import _ext
from pyadvt.ops import pgd_step_, power_iteration_update_

needs_kernel = pytest.mark.skipif(not _ext.kernel_available("pgd_step_", "cpu"), reason="pyadvt._C not built")
BACKENDS = ["reference", pytest.param("kernel", marks=needs_kernel)]


def _pgd(x, backend, momentum=None):
    pgd_step_(x, torch.randn_like(x), x.detach().clone(), 0.1, 0.01, momentum=momentum, backend=backend)


def _power(v, eig, backend):
    power_iteration_update_(v, torch.randn_like(v), eig, torch.ones(v.shape[0], dtype=torch.bool), backend=backend)


def test_plain_torch_behaves_as_the_ops_must():
    """The reference behaviour the op tests below reproduce."""
    leaf = torch.rand(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        leaf.add_(1.0)
    w = torch.rand(2, 3, requires_grad=True)
    x = w * 1.0
    loss = (x * x).sum()  # saves x
    with torch.no_grad():
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@pytest.mark.parametrize("backend", BACKENDS)
def test_pgd_step_refuses_leaf_that_requires_grad(backend):
    x = torch.rand(2, 3, requires_grad=True)
    before = x.detach().clone()
    with pytest.raises(ValueError, match="'x' is a leaf tensor that requires grad"):
        _pgd(x, backend)
    assert torch.equal(x.detach(), before)
    m = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match="'momentum'"):
        _pgd(torch.rand(2, 3), backend, momentum=m)
    with torch.no_grad():  # allowed, as for torch's in-place ops
        _pgd(x, backend)
    assert not torch.equal(x.detach(), before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pgd_step_refuses_leaf_on_the_unvalidated_path(backend):
    x = torch.rand(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match="'x'"):
        pgd_step_(x, torch.randn(2, 3), x.detach(), torch.tensor([0.1]), torch.tensor([0.01]), validate=False,
                  backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_momentum", [False, True])
def test_pgd_step_bumps_version_so_a_later_backward_raises(backend, with_momentum):
    w = torch.rand(3, 4, requires_grad=True)
    x = w * 1.0
    m = torch.zeros(3, 4) if with_momentum else None
    loss = (x * x).sum()
    v0 = x._version
    m0 = None if m is None else m._version
    with torch.no_grad():
        _pgd(x, backend, momentum=m)
    assert x._version > v0
    if m is not None:
        assert m._version > m0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


@needs_kernel
def test_direct_op_call_has_torch_semantics():
    """torch.ops.pyadvt.pgd_step_ itself (not only the wrapper): leaf refused, version bumped."""
    op = torch.ops.pyadvt.pgd_step_
    args = (torch.tensor([0.1]), torch.tensor([0.01]), "linf", 0.0, 1.0)
    leaf = torch.rand(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        op(leaf, torch.randn(2, 3), leaf.detach(), *args, None, 1.0)
    x = torch.rand(2, 3)
    m = torch.zeros(2, 3)
    v0, m0 = x._version, m._version
    op(x, torch.randn(2, 3), x.clone(), *args, m, 1.0)
    assert x._version == v0 + 1 and m._version == m0 + 1
    with torch.inference_mode():  # inference tensors have no version counter: still fine
        y = torch.rand(2, 3)
        op(y, torch.randn(2, 3), y.clone(), *args, None, 1.0)


@pytest.mark.parametrize("backend", ["reference", pytest.param("kernel", marks=pytest.mark.skipif(
    not _ext.kernel_available("power_iteration_update_", "cpu"), reason="pyadvt._C not built"))])
def test_power_iteration_update_inplace_semantics(backend):
    v = torch.rand(2, 5, requires_grad=True)
    eig = torch.full((2,), float("nan"))
    with pytest.raises(ValueError, match="'v' is a leaf tensor that requires grad"):
        _power(v, eig, backend)
    eig_leaf = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="'eig'"):
        _power(torch.rand(2, 5), eig_leaf, backend)
    w = torch.rand(2, 5, requires_grad=True)
    u = w * 2.0
    loss = (u * u).sum()
    e = torch.full((2,), float("nan"))
    v0, e0 = u._version, e._version
    with torch.no_grad():
        _power(u, e, backend)
    assert u._version > v0 and e._version > e0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
