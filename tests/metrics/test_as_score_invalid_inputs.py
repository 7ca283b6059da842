"""D8: as_score never turns a NaN input or NaN weights into a low ("robust") score."""

import warnings

import pytest
import torch
from torch import nn

from pyadvt.metrics.robustness_transfer import as_score, evaluate_robustness_transfer


def _linear_rep(d=8, k=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(d, k, bias=False))


def test_nan_input_is_flagged_and_skipped_not_distance_zero():
    g = _linear_rep()
    x = 0.4 + 0.2 * torch.rand(6, 1, 2, 4, generator=torch.Generator().manual_seed(1))  # ball inside [0, 1]
    clean = as_score(g, x, eps=0.1, norm="l2", steps=20)
    x_bad = x.clone()
    x_bad[[1, 4], 0, 0, 0] = float("nan")
    with pytest.warns(RuntimeWarning, match="as_score: 2 of 6 samples are invalid"):
        r = as_score(g, x_bad, eps=0.1, norm="l2", steps=20)
    keep = torch.tensor([True, False, True, True, False, True])
    assert r.valid.tolist() == keep.tolist() and r.n_invalid == 2
    assert torch.isnan(r.per_sample[~keep]).all()
    # per-sample results are batch-independent, so the valid rows equal the clean run's rows
    torch.testing.assert_close(r.per_sample[keep], clean.per_sample[keep])
    assert r.score == pytest.approx(float(clean.per_sample[keep].double().mean()))
    # linear g with an L2 ball: the max shift is eps * ||G||_2 (independent reference)
    sigma = float(torch.linalg.matrix_norm(g[1].weight.detach().double(), ord=2))
    assert r.score == pytest.approx(0.1 * sigma, rel=2e-2)


def test_nan_feature_weights_score_nan_not_perfectly_robust():
    g = _linear_rep()
    with torch.no_grad():
        g[1].weight[0, 0] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the attack's own non-finite-gradient warning
        r = as_score(g, torch.rand(4, 1, 2, 4), eps=0.1, steps=3)
    assert r.n_invalid == 4
    assert r.score != r.score  # NaN, not 0.0
    assert r.summary()["n_invalid"] == 4


@pytest.mark.parametrize("x, exc, match", [
    (torch.rand(3, 1, 2, 4) + 2, ValueError, "'x' must lie in \\[0, 1\\]"),
    (torch.rand(3, 1, 2, 4).double(), TypeError, "'x' has dtype torch.float64"),
    (torch.rand(0, 1, 2, 4), ValueError, "'x' is empty"),
])
def test_bad_inputs_refused(x, exc, match):
    with pytest.raises(exc, match=match):
        as_score(_linear_rep(), x, eps=0.1, steps=2)


def test_batch_size_zero_refused():
    with pytest.raises(ValueError, match="'batch_size' must be >= 1"):
        as_score(_linear_rep(), torch.rand(2, 1, 2, 4), eps=0.1, steps=2, batch_size=0)


class Split(nn.Module):
    def __init__(self):
        super().__init__()
        self.g, self.head = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), nn.Linear(3, 2)

    def features(self, x):
        return self.g(x)

    def forward(self, x):
        return self.head(self.g(x))


def test_robustness_transfer_labels_out_of_range_refused():
    with pytest.raises(ValueError, match="'y' must hold labels in \\[0, 2\\)"):
        evaluate_robustness_transfer(Split(), torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 2, 0]), eps=0.05, steps=2)
