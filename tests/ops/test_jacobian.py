"""Batched Jacobians and JVPs (pyadvt.ops.jacobian) against per-sample loops."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyadvt.ops import jacobian, jvp
from pyadvt.ops.jacobian import choose_method


def _cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3 * 9, 4), torch.nn.Tanh(), torch.nn.Linear(4, 5)).double()


def _loop_jacobian(model, x):
    model.eval()
    rows = []
    for i in range(x.shape[0]):
        f = lambda z: model(z.reshape(1, *x.shape[1:])).reshape(-1)  # noqa: E731
        rows.append(torch.autograd.functional.jacobian(f, x[i].reshape(-1)))
    return torch.stack(rows)


@pytest.mark.parametrize("method", ["auto", "batched_grad", "rev", "fwd"])
def test_jacobian_matches_per_sample_loop(method):
    net = _cnn()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    net.train()
    J = jacobian(net, x, method=method)
    assert net.training, "the model's mode must be restored"
    assert all(p.requires_grad for p in net.parameters())
    ref = _loop_jacobian(net, x)
    assert J.shape == (6, 5, 64)
    torch.testing.assert_close(J, ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=8, deadline=None)
@given(b=st.integers(1, 5), n=st.integers(1, 7), m=st.integers(1, 6), seed=st.integers(0, 1000))
def test_jacobian_batch_independent_and_methods_agree(b, n, m, seed):
    g = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(n, 8), torch.nn.Softplus(), torch.nn.Linear(8, m)).double()
    x = torch.rand(b, n, dtype=torch.float64, generator=g)
    x_copy = x.clone()
    Js = {meth: jacobian(net, x, method=meth) for meth in ("batched_grad", "rev", "fwd")}
    assert torch.equal(x, x_copy)
    for J in Js.values():
        torch.testing.assert_close(J, Js["rev"], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(jacobian(net, x[-1:])[0], Js["rev"][-1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("m", [1, 5])
def test_sequential_and_vmapped_reverse_passes_agree(m):
    """"batched_grad" runs its m reverse passes one by one on CPU and vmapped elsewhere: same rows."""
    from pyadvt.ops.jacobian import _rows_sequential, _rows_vmapped

    net = torch.nn.Sequential(*list(_cnn())[:-1], torch.nn.Linear(4, m).double()).eval()
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64).requires_grad_(True)
    seq, vm = (rows(net(x).reshape(6, -1), x) for rows in (_rows_sequential, _rows_vmapped))
    assert seq.shape == vm.shape == (6, m, 64)
    torch.testing.assert_close(seq, vm, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(seq, _loop_jacobian(net, x.detach()), rtol=1e-10, atol=1e-12)


def test_reverse_pass_order_rule():
    """Sequential on CPU for few outputs or layers without a vmap batching rule; vmapped otherwise."""
    from pyadvt.ops.jacobian import SEQUENTIAL_MAX_OUTPUTS, _sequential_passes

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Tanh())
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
    assert _sequential_passes(mlp, cpu, SEQUENTIAL_MAX_OUTPUTS)
    assert not _sequential_passes(mlp, cpu, SEQUENTIAL_MAX_OUTPUTS + 1)
    assert _sequential_passes(cnn, cpu, 200)
    assert not _sequential_passes(cnn, cuda, 10) and _sequential_passes(cnn, cuda, 1)
    # a wide map takes the vmapped path and still returns the exact Jacobian
    x = torch.rand(3, 4, dtype=torch.float64)
    net = mlp.double()
    torch.testing.assert_close(jacobian(net, x, method="batched_grad"), _loop_jacobian(net, x), rtol=1e-10, atol=1e-12)


def test_jacobian_of_linear_is_weight_and_wrong_method_fails():
    net = torch.nn.Linear(4, 3)
    J = jacobian(net, torch.rand(2, 4))
    torch.testing.assert_close(J, net.weight.detach().expand(2, 3, 4))
    # a corrupted "Jacobian" differs: the comparison above is not vacuous
    assert not torch.allclose(J, net.weight.detach().T.reshape(1, 3, 4).expand(2, 3, 4))
    with pytest.raises(ValueError, match="method"):
        jacobian(net, torch.rand(2, 4), method="magic")
    with pytest.raises(ValueError, match="batch"):
        jacobian(net, torch.rand(4))
    with pytest.raises(TypeError, match="x"):
        jacobian(net, [1.0, 2.0])


def test_auto_method_choice():
    assert choose_method(n=64, m=10) == "batched_grad"
    assert choose_method(n=3, m=10) == "fwd"


@pytest.mark.parametrize("method", ["fwd", "double_backward"])
def test_jvp_matches_jacobian(method):
    net = _cnn()
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    v = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    out = jvp(net, x, v, method=method)
    ref = torch.einsum("bmn,bn->bm", _loop_jacobian(net, x), v.reshape(5, -1))
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(jvp(net, x, v.reshape(5, -1), method=method), out)
    with pytest.raises(ValueError, match="'v'"):
        jvp(net, x, v[:2], method=method)


class _SquareNoForwardAD(torch.autograd.Function):
    """x^2 with a backward formula only (no jvp): forward-mode AD cannot go through it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_jvp_falls_back_to_double_backward_without_forward_ad():
    lin = torch.nn.Linear(3, 2).double()
    model = lambda z: lin(_SquareNoForwardAD.apply(z))  # noqa: E731
    x = torch.rand(4, 3, dtype=torch.float64)
    v = torch.randn(4, 3, dtype=torch.float64)
    expected = (2 * x * v) @ lin.weight.detach().T
    torch.testing.assert_close(jvp(model, x, v), expected)
    torch.testing.assert_close(jvp(model, x, v, method="double_backward"), expected)


def test_auto_falls_back_when_torch_func_cannot_trace_a_layer():
    lin = torch.nn.Linear(2, 5).double()  # n = 2 < m = 5: auto tries forward mode first
    model = lambda z: lin(_SquareNoForwardAD.apply(z))  # noqa: E731
    x = torch.rand(3, 2, dtype=torch.float64)
    expected = lin.weight.detach()[None] * (2 * x)[:, None, :]
    torch.testing.assert_close(jacobian(model, x), expected)
    with pytest.raises(RuntimeError):
        jacobian(model, x, method="fwd")
