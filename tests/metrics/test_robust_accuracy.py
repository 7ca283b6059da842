"""pyadvt.metrics.robust_accuracy against the closed-form robust accuracy of a linear two-class model."""

from __future__ import annotations

import pytest
import torch

from pyadvt.data import TensorData
from pyadvt.metrics.robust_accuracy import robust_accuracy


def _linear_model(w: torch.Tensor) -> torch.nn.Module:
    lin = torch.nn.Linear(w.numel(), 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.stack([torch.zeros_like(w), w]))
    return torch.nn.Sequential(torch.nn.Flatten(), lin)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("batch_size", [256, 7])
def test_matches_the_exact_worst_case_of_a_linear_classifier(norm, batch_size):
    torch.manual_seed(0)
    w = torch.randn(16)
    x = torch.rand(60, 1, 4, 4) * 0.6 + 0.2            # away from the [0, 1] box, so clipping never binds
    logit = x.flatten(1) @ w
    y = (logit > 0).long()
    y[:10] = 1 - y[:10]                                  # some misclassified points
    eps = 0.05 if norm == "linf" else 0.3
    dual = w.abs().sum() if norm == "linf" else w.norm()
    margin = torch.where(y == 1, logit, -logit)          # exact: correct under attack iff margin > eps ||w||_*
    keep = (margin - eps * dual).abs() > 1e-3            # no ties for the attack to round either way
    data = TensorData(x[keep], y[keep], 2)
    expected = int((margin[keep] > eps * dual).sum()) / int(keep.sum())
    got = robust_accuracy(_linear_model(w), data, eps, norm, steps=20, batch_size=batch_size)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0.1 < expected < 0.9


def test_unlabelled_data_rejected():
    with pytest.raises(ValueError, match="labels"):
        robust_accuracy(_linear_model(torch.ones(16)), torch.rand(4, 1, 4, 4), 0.1, "linf")


def test_bad_options_and_empty_data_rejected_before_the_work():
    model = _linear_model(torch.ones(16))
    data = TensorData(torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 0, 1]), 2)
    with pytest.raises(ValueError, match="eps"):
        robust_accuracy(model, data, -0.1, "linf")
    with pytest.raises(ValueError, match="norm"):
        robust_accuracy(model, data, 0.1, "l1")
    with pytest.raises(ValueError, match="empty"):
        robust_accuracy(model, (torch.rand(0, 1, 4, 4), torch.zeros(0, dtype=torch.long)), 0.1, "linf")


def test_options_are_keyword_only_with_a_deprecated_positional_form():
    import pyadvt.metrics as M

    model = _linear_model(torch.ones(16))
    data = TensorData(torch.rand(8, 1, 4, 4), torch.tensor([0, 1] * 4), 2)
    assert M.robust_accuracy is robust_accuracy and "robust_accuracy" in M.__all__
    ref = robust_accuracy(model, data, 0.1, "linf", steps=3, seed=1)
    with pytest.warns(DeprecationWarning, match="by keyword"):
        assert robust_accuracy(model, data, 0.1, "linf", 3, 1) == ref
