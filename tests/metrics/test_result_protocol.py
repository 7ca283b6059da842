"""One result protocol for every metric result (issue 15, item 2).

Each metric runs on a tiny model and data where sample 2 is undefined (a NaN input, or - where the
metric refuses non-finite inputs before the work starts - a NaN logit or a zero logit change). Each
result must have ``valid`` (``[N]`` bool, False at sample 2), ``n_undefined`` (``(~valid).sum()``, or
the documented count), a headline ``value`` equal to the documented field, recomputed here from the
per-sample tensors, and ``summary()["n_undefined"]``. A renamed field (``defined``) still reads,
with a ``DeprecationWarning`` naming ``valid``. A result class added to ``pyadvt.metrics.__all__``
without a case here fails :func:`test_every_result_class_is_covered`.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

import pyadvt.metrics as M
from pyadvt.metrics.robustness_transfer import ASScore

N, BAD = 6, 2


def _mlp(seed: int, act: type[nn.Module] = nn.Tanh) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 8), act(), nn.Linear(8, 3)).double()


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = 0.2 + 0.6 * torch.rand(N, 1, 2, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (N,), generator=g)
    return x, y


def _nan_data():
    x, y = _data()
    x[BAD, 0, 0, 0] = float("nan")
    return x, y


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> float:
    return float(values[valid].double().mean())


class _NaNLogitsAbove(nn.Module):
    """``model(x)`` with NaN logits for the rows whose first pixel exceeds ``0.99``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        hit = x.flatten(1)[:, 0] > 0.99
        return torch.where(hit[:, None], torch.full_like(out, float("nan")), out)


class _DeadBelowHalf(nn.Module):
    """Logits of ``relu(x - 0.5)``: constant (zero logit change under a small attack) for ``x < 0.4``."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(4, 3).double()

    def forward(self, x):
        return self.lin(torch.relu(x.flatten(1) - 0.5))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


# each case: () -> (result, expected headline, expected n_undefined or None for (~valid).sum())
def _tau1():
    x, _ = _nan_data()
    r = _quiet(M.tau1, _mlp(0), _mlp(1), x)
    return r, _masked_mean(r.per_sample, r.valid), None


def _singular_value_ratio():
    x, _ = _nan_data()
    r = _quiet(M.singular_value_ratio, _mlp(0), x)
    return r, float(r.lam[r.valid].max()), None


def _tau2():
    x, _ = _nan_data()
    r = _quiet(M.tau2, _mlp(0), _mlp(1), x)
    return r, r.tau2, 1  # an aggregate: one masked sample, no per-sample mask


def _adversarial_transferability():
    x, _ = _nan_data()
    r = _quiet(M.adversarial_transferability, _mlp(0), _mlp(1), x)
    assert r.valid is r.tau1.valid
    return r, _masked_mean(r.tau1.per_sample, r.tau1.valid), None


def _similarity():
    x, y = _nan_data()
    r = _quiet(M.gradient_similarity, _mlp(0), _mlp(1), x, y)
    return r, _masked_mean(r.values, r.valid), None


def _smoothness():
    x, y = _nan_data()
    r = _quiet(M.smoothness, _mlp(0), x, y, progress=False)
    return r, _masked_mean(r.values, r.valid), None


def _transfer_rates():
    x, y = _nan_data()
    x_adv = (x + 0.05).clamp(0, 1)
    r = _quiet(M.transferability, _mlp(0), _mlp(1), x, y, x_adv)
    return r, r.rate, None


def _empirical_transfer():
    x, y = _data()
    x[BAD, 0, 0, 0] = 1.0  # only this row can reach the NaN threshold (the others stay <= 0.8 + eps)
    r = _quiet(M.empirical_transferability, _mlp(0), _NaNLogitsAbove(_mlp(1)), x, y, eps=0.1, steps=2)
    assert math.isnan(r.value)  # an invalid sample propagates NaN into eq. 2's mean, never silently dropped
    return r, float(r.loss[-1].double().mean()), None


def _legacy_alpha():
    x, _ = _data()
    x[BAD] = 0.0  # relu(x - 0.5) stays 0 under eps = 0.1: the source's logit change is zero
    source, target = _DeadBelowHalf(0), _DeadBelowHalf(1)
    with torch.no_grad():
        y = source(x).argmax(1)
    y[4] = (y[4] + 1) % 3  # misclassified by the source: not used, but not undefined either
    r = _quiet(M.legacy_transferability, source, target, x, y, eps=0.1, steps=3)
    assert not bool(r.valid[4]) and r.valid is r.used
    return r, r.combined, 1  # the source-correct samples with a zero logit change


def _as_score():
    x, _ = _nan_data()
    rep = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
    r = _quiet(M.as_score, rep, x, eps=0.1, norm="l2", steps=5, restarts=1, features=False)
    return r, _masked_mean(r.per_sample, r.valid), None


CASES = {
    "Tau1Result": _tau1, "SingularValueRatio": _singular_value_ratio, "Tau2Result": _tau2,
    "AdversarialTransferabilityResult": _adversarial_transferability, "SimilarityResult": _similarity,
    "SmoothnessResult": _smoothness, "AttackTransferabilityResult": _transfer_rates,
    "EmpiricalTransferabilityResult": _empirical_transfer, "LegacyTransferabilityResult": _legacy_alpha, "ASScore": _as_score,
}
AGGREGATES = {"Tau2Result"}  # no per-sample notion (their docstrings say so)
RENAMED = {"SimilarityResult": ("defined", "valid"), "SmoothnessResult": ("defined", "valid")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_result_protocol(name):
    r, headline, n_undefined = CASES[name]()
    assert type(r).__name__ == name
    if name in AGGREGATES:
        assert not hasattr(r, "valid")
    else:
        assert isinstance(r.valid, torch.Tensor) and r.valid.dtype == torch.bool and r.valid.shape == (N,)
        assert not bool(r.valid[BAD])
        if n_undefined is None:
            n_undefined = int((~r.valid).sum())
    assert isinstance(r.n_undefined, int) and r.n_undefined == n_undefined >= 1
    assert isinstance(r.value, float)
    if math.isnan(headline):
        assert math.isnan(r.value)
    else:
        assert r.value == pytest.approx(headline, rel=1e-12, abs=1e-12)
    s = r.summary()
    assert s["n_undefined"] == r.n_undefined


@pytest.mark.parametrize("name", sorted(RENAMED))
def test_renamed_field_warns_and_equals_the_new_one(name):
    r, _, _ = CASES[name]()
    old, new = RENAMED[name]
    with pytest.warns(DeprecationWarning, match=rf"\.{new}\b"):
        got = getattr(r, old)
    assert torch.equal(got, getattr(r, new))


def test_every_result_class_is_covered():
    public = {n for n in M.__all__ if n.endswith(("Result", "Rates"))}
    assert public, "no result class found in pyadvt.metrics.__all__"
    assert public <= set(CASES), f"result classes without a protocol case: {sorted(public - set(CASES))}"
    assert {ASScore.__name__} <= set(CASES)  # as_score's result, not exported by name


def test_transfer_rates_built_without_a_mask_is_all_valid():
    r = M.AttackTransferabilityResult(success=torch.tensor([True, False, True]), both_correct=3, rate=2 / 3, asr=2 / 3,
                        fooling=1.0, acc_source=1.0, acc_target=1.0, targeted=False)
    assert r.valid.tolist() == [True, True, True] and r.n_undefined == 0 and r.value == pytest.approx(2 / 3)


@pytest.mark.parametrize("cls", [M.SimilarityResult, M.SmoothnessResult])
def test_renamed_constructor_keyword_warns_and_maps_to_valid(cls):
    mask = torch.tensor([True, False])
    extra = {} if cls is M.SimilarityResult else dict(iterations=torch.tensor([3, 3]),
                                                        converged=torch.tensor([True, True]), hvp_calls=3,
                                                        method="power")
    values = torch.tensor([0.5, float("nan")], dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="'valid'"):
        old = cls(values=values, defined=mask, **extra)
    assert torch.equal(old.valid, mask) and old.n_undefined == 1 and old.value == 0.5
    with pytest.raises(TypeError, match="pass only 'valid'"):
        cls(values=values, defined=mask, valid=mask, **extra)
