"""tau1, tau2, adversarial_transferability, singular_value_ratio and smoothness walk a Dataset / DataLoader /
TensorData one batch at a time and give the tensor call's result (issue 13, docs/theory.md §9)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from pyadvt.data import TensorData
from pyadvt.metrics import adversarial_transferability, singular_value_ratio, smoothness, tau1, tau2

N, C, B = 13, 5, 4  # samples, classes, the metrics' batch size (13 = 4 + 4 + 4 + 1)


class Counted(nn.Module):
    """A model that counts its forward calls (Python side effects run under torch.func too)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


class Reads(Dataset):
    """``(x, y)`` items; records, for every item read, how many forward calls the model had made."""

    def __init__(self, x, y, model: Counted | None = None):
        self.x, self.y, self.model, self.at = x, y, model, []

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, i):
        self.at.append(None if self.model is None else self.model.calls)
        return self.x[i], self.y[i]

    def largest_burst(self) -> int:
        """The most items read with no forward pass in between: the most samples held at once."""
        runs = {}
        for c in self.at:
            runs[c] = runs.get(c, 0) + 1
        return max(runs.values())


class Stream(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y))


def mlp(seed: int, in_shape=(1, 6, 6), out=C) -> nn.Module:
    torch.manual_seed(seed)
    n = in_shape[0] * in_shape[1] * in_shape[2]
    return nn.Sequential(nn.Flatten(), nn.Linear(n, 16), nn.ReLU(), nn.Linear(16, out)).eval()


@pytest.fixture(scope="module")
def xy():
    g = torch.Generator().manual_seed(0)
    return torch.rand(N, 1, 6, 6, generator=g), torch.randint(0, C, (N,), generator=g)


def sources(x, y):
    """Every streamed form of ``(x, y)``; ``same_batches``: the metric's batches are those of the tensor call."""
    return {"tensordata": TensorData(x, y, C), "tensordataset": TensorDataset(x, y), "items": Reads(x, y),
            "iterable": Stream(x, y), "pair": (x, y), "loader": DataLoader(TensorDataset(x, y), batch_size=3),
            "loader_items": DataLoader(Reads(x, y), batch_size=B)}


KINDS = ["tensordata", "tensordataset", "items", "iterable", "pair", "loader", "loader_items"]


def run(fn: str, S, T, data, **kw):
    """One metric on ``data``; returns ``{name: tensor or number}`` of everything its result reports."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if fn == "tau1":
            r = tau1(S, T, data, batch_size=B, **kw)
            return {"per_sample": r.per_sample, "valid": r.valid, **r.summary()}
        if fn == "tau2":
            r = tau2(S, T, data, eps=0.5, batch_size=B, **kw)
            return {"A": r.A, "EVU": r.EVU, "EUU": r.EUU, **r.summary()}
        if fn == "adversarial_transferability":
            r = adversarial_transferability(S, T, data, batch_size=B, **kw)
            return {"per_sample": r.tau1.per_sample, "valid": r.tau1.valid, "A": r.tau2.A, **r.summary()}
        if fn == "singular_value_ratio":
            r = singular_value_ratio(S, data, batch_size=B, **kw)
            return {"lam": r.lam, "sigma1": r.sigma1, "valid": r.valid, **r.summary()}
        method = fn.split(":")[1]
        r = smoothness(S, *data, method=method, batch_size=B, max_iter=6, progress=False, **kw) \
            if isinstance(data, list) else smoothness(S, data, method=method, batch_size=B, max_iter=6,
                                                      progress=False, **kw)
        return {"values": r.values, "defined": r.valid, "iterations": r.iterations, **r.summary()}


FNS = ["tau1", "tau2", "adversarial_transferability", "singular_value_ratio", "smoothness:lanczos",
       "smoothness:exact"]


def assert_same(got: dict, ref: dict, exact: bool) -> None:
    assert got.keys() == ref.keys()
    for k, v in ref.items():
        if isinstance(v, torch.Tensor):
            if exact or v.dtype == torch.bool:
                assert torch.equal(got[k], v), k
            else:  # other batches: the float32 per-sample values agree to rounding
                torch.testing.assert_close(got[k], v, rtol=1e-5, atol=1e-6, equal_nan=True)
        elif k == "hvp_calls" and not exact:  # a count of batched passes: other batches, another count
            continue
        elif isinstance(v, float) and not exact:
            assert got[k] == pytest.approx(v, rel=1e-5, abs=1e-6), k
        else:
            assert got[k] == v or (v != v and got[k] != got[k]), k


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fn", FNS)
def test_streamed_result_equals_the_tensor_call(fn, kind, xy):
    x, y = xy
    S, T = mlp(1), mlp(2)
    ref = run(fn, S, T, [x, y] if fn.startswith("smoothness") else x)
    got = run(fn, S, T, sources(x, y)[kind])
    # a DataLoader with batches of 3 gives other batches (3+1, 2+2, ...): equal to rounding only
    assert_same(got, ref, exact=kind != "loader")


def test_the_reference_values_are_right(xy):
    """The tensor call itself against an independent computation (so the equalities above mean something)."""
    x, y = xy
    S, T = mlp(1), mlp(2)
    J = lambda m: torch.func.vmap(torch.func.jacrev(lambda z: m(z[None])[0]))(x).reshape(N, C, -1)  # noqa: E731
    with torch.no_grad():
        vs, vt = torch.linalg.svd(J(S))[2][:, 0], torch.linalg.svd(J(T))[2][:, 0]
        sv = torch.linalg.svdvals(J(S))
    torch.testing.assert_close(run("tau1", S, T, TensorDataset(x))["per_sample"], (vs * vt).sum(1).square(),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(run("singular_value_ratio", S, T, TensorDataset(x))["lam"], sv[:, 1] / sv[:, 0],
                               rtol=1e-4, atol=1e-5)
    H = torch.stack([torch.autograd.functional.hessian(
        lambda z: nn.functional.cross_entropy(S(z[None]), y[i:i + 1]), x[i]).reshape(36, 36) for i in range(N)])
    got = run("smoothness:exact", S, T, TensorDataset(x, y))["values"]
    torch.testing.assert_close(got, torch.linalg.eigvalsh(H.double())[:, -1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("fn", FNS)
def test_at_most_one_batch_is_held(fn, xy):
    """Items are read one batch at a time between forward passes, each once: a metric that gathered the
    dataset first would read all N items before its first forward pass."""
    x, y = xy
    S, T = Counted(mlp(1)), mlp(2)
    data = Reads(x, y, S)
    run(fn, S, T, data)
    assert len(data.at) == N  # every item read once, the route planned on the first batch
    assert data.largest_burst() <= B
    assert S.calls >= -(-N // B)


@pytest.fixture(scope="module")
def resnets():
    """Two random-init torchvision resnet18 at 3x32x32 and the tensor calls' results (computed once)."""
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    S, T = tv.models.resnet18(num_classes=C).eval(), tv.models.resnet18(num_classes=C).eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(6, 3, 32, 32, generator=g), torch.randint(0, C, (6,), generator=g)
    return S, T, x, y, _resnet_results(S, T, x, [x, y])


def _resnet_results(S, T, x, xy):
    """tau1, both, tau2, the singular-value ratio on x; smoothness on xy (a [x, y] list or a dataset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        both = adversarial_transferability(S, T, x, batch_size=B)
        sm = smoothness(S, *xy, method="lanczos", max_iter=3, batch_size=B, progress=False) if isinstance(xy, list) \
            else smoothness(S, xy, method="lanczos", max_iter=3, batch_size=B, progress=False)
        return {"tau1": tau1(S, T, x, batch_size=B), "both": both, "tau2": tau2(S, T, x, batch_size=B),
                "svr": singular_value_ratio(S, x, batch_size=B), "smooth": sm}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tensordataset", "loader", "tensordata"])
def test_resnet18_streams_like_the_tensor(kind, resnets):
    S, T, x, y, ref = resnets
    got = _resnet_results(S, T, sources(x, y)[kind], sources(x, y)[kind])
    exact = kind != "loader"
    tol = dict(rtol=0, atol=0) if exact else dict(rtol=1e-4, atol=1e-5)
    assert torch.equal(got["tau1"].valid, ref["tau1"].valid)
    torch.testing.assert_close(got["tau1"].per_sample, ref["tau1"].per_sample, **tol)
    torch.testing.assert_close(got["both"].tau1.per_sample, ref["both"].tau1.per_sample, **tol)
    assert got["both"].tau2.tau2 == pytest.approx(ref["both"].tau2.tau2, rel=1e-12 if exact else 1e-4)
    assert got["tau2"].tau2 == pytest.approx(ref["tau2"].tau2, rel=1e-12 if exact else 1e-4)
    torch.testing.assert_close(got["svr"].lam, ref["svr"].lam, **tol)
    torch.testing.assert_close(got["smooth"].values, ref["smooth"].values, rtol=1e-4, atol=1e-6)
    assert torch.equal(got["smooth"].valid, ref["smooth"].valid)


# --- bad streamed input is refused clearly (the tensor call's messages) --------------------------------------

def _calls(S, T):
    return {"tau1": lambda d: tau1(S, T, d, batch_size=B),
            "tau2": lambda d: tau2(S, T, d, batch_size=B),
            "adversarial_transferability": lambda d: adversarial_transferability(S, T, d, batch_size=B),
            "singular_value_ratio": lambda d: singular_value_ratio(S, d, batch_size=B),
            "smoothness": lambda d: smoothness(S, d, batch_size=B, max_iter=3, progress=False)}


BAD = {
    "outside_01": (lambda x, y: TensorDataset(x * 3 - 1, y), ValueError, "'x' must lie in [0, 1]"),
    "float64": (lambda x, y: TensorDataset(x.double(), y), TypeError, "'x' has dtype torch.float64"),
    "range_bad_in_a_later_batch": (lambda x, y: TensorDataset(torch.cat([x[:9], x[9:] + 2]), y), ValueError,
                                   "'x' must lie in [0, 1]"),
    "generator": (lambda x, y: ((a, b) for a, b in zip(x, y)), TypeError, "got generator"),
    "empty": (lambda x, y: TensorDataset(x[:0], y[:0]), ValueError, "empty"),
    "flat": (lambda x, y: TensorDataset(torch.rand(N), y), ValueError, "'x' must be a non-empty batch"),
    "pil_like": (lambda x, y: [(object(), 0)] * 3, TypeError, "inputs must be torch.Tensors"),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("fn", list(_calls(None, None)))
def test_bad_streamed_input_is_refused(fn, case, xy):
    make, exc, needle = BAD[case]
    x, y = xy
    if fn == "smoothness" and case == "flat":
        needle = "'x' must be a floating-point tensor"
    with pytest.raises(exc) as info:
        _calls(mlp(1), mlp(2))[fn](make(x, y))
    assert needle in str(info.value)
    assert "/torch/" not in str(info.traceback[-1].path)


def test_a_bad_batch_is_refused_before_its_work(xy):
    """The batches before the bad one are worked on; the bad batch gets no forward pass."""
    x, y = xy
    S, T = Counted(mlp(1)), mlp(2)
    tau1(S, T, TensorDataset(x[:B]), batch_size=B)
    first_batch_calls, S.calls = S.calls, 0
    with pytest.raises(ValueError, match=r"'x' must lie in \[0, 1\]"):
        tau1(S, T, TensorDataset(torch.cat([x[:B], x[B:] + 2])), batch_size=B)
    assert S.calls == first_batch_calls > 0


@pytest.mark.parametrize("case, needle, exc", [
    ("label_out_of_range", "must hold labels in [0, 5)", ValueError),
    ("no_labels", "must provide labels", ValueError),
    ("y_with_dataset", "'y' must be None", ValueError),
    ("batch_size_0", "'batch_size'", ValueError),
    ("batch_size_0_auto", "'batch_size' must be a positive int or None", ValueError),
])
def test_smoothness_and_spectra_stream_argument_errors(case, needle, exc, xy):
    x, y = xy
    S = mlp(1)
    with pytest.raises(exc) as info:
        if case == "label_out_of_range":
            smoothness(S, TensorDataset(x, torch.full_like(y, 7)), progress=False)
        elif case == "no_labels":
            smoothness(S, TensorDataset(x), progress=False)
        elif case == "y_with_dataset":
            smoothness(S, TensorDataset(x, y), y, progress=False)
        elif case == "batch_size_0":
            smoothness(S, TensorDataset(x, y), batch_size=0, progress=False)
        else:
            tau1(S, S, TensorDataset(x), batch_size=0)
    assert needle in str(info.value)
