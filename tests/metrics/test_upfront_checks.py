"""D13: dtype mismatches, out-of-range labels, empty batches, batch_size=0 and inputs outside [0, 1] are
refused up front (a pyadvt ValueError/TypeError naming the argument), not deep inside torch."""

import warnings

import pytest
import torch
from torch import nn

from pyadvt.data import TensorData
from pyadvt.metrics import gradient_similarity, smoothness, tau1, tau2
from pyadvt.metrics.robustness_transfer import as_score
from pyadvt.metrics.tau2 import adversarial_transferability
from pyadvt.train import evaluate


def _cnn(seed=0, C=4):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 16, C))


X = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 3, 0])


def _calls():
    S, T = _cnn(0), _cnn(1)
    return {
        "tau1": lambda x, y, bs: tau1(S, T, x, batch_size=bs),
        "tau2": lambda x, y, bs: tau2(S, T, x, batch_size=bs),
        "adversarial_transferability": lambda x, y, bs: adversarial_transferability(S, T, x, batch_size=bs),
        "smoothness": lambda x, y, bs: smoothness(S, x, y, batch_size=bs, progress=False, max_iter=5),
        "gradient_similarity": lambda x, y, bs: gradient_similarity(S, T, x, y, batch_size=bs),
        "as_score": lambda x, y, bs: as_score(S, x, eps=0.1, steps=2, batch_size=bs, features=False),
        "evaluate": lambda x, y, bs: evaluate(S, TensorData(x, y) if len(x) else (x, y), batch_size=bs),
    }


CASES = {
    "float64_input": (lambda: (X.double(), Y, 4), TypeError, ["'x'", "dtype torch.float64", "float32"]),
    "outside_01": (lambda: (X * 3 - 1, Y, 4), ValueError, ["[0, 1]"]),
    "empty": (lambda: (X[:0], Y[:0], 4), ValueError, ["empty"]),
    "batch_size_0": (lambda: (X, Y, 0), ValueError, ["batch_size"]),
    "label_10": (lambda: (X, torch.tensor([0, 1, 2, 10, 0]), 4), ValueError, ["labels", "[0, 4)", "10"]),
    "label_neg": (lambda: (X, torch.tensor([0, -5, 2, 1, 0]), 4), ValueError, ["labels", "-5"]),
    "float_labels": (lambda: (X, Y.float(), 4), TypeError, ["'y'", "int"]),
}
NEEDS_LABELS = {"smoothness", "gradient_similarity", "evaluate"}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("fn", list(_calls()))
def test_refused_up_front_naming_the_argument(fn, case):
    make, _, needles = CASES[case]
    if case.startswith(("label", "float_labels")) and fn not in NEEDS_LABELS:
        pytest.skip("label-free metric")
    if fn == "evaluate" and case in ("outside_01", "float64_input"):
        pytest.skip("TensorData refuses out-of-range images and converts images to float32")
    x, y, bs = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((ValueError, TypeError)) as info:
            _calls()[fn](x, y, bs)
    # raised by pyadvt's own validation, not from inside torch
    assert "/pyadvt/" in str(info.traceback[-1].path) and "/torch/" not in str(info.traceback[-1].path)
    msg = str(info.value)
    for n in needles:
        assert n in msg, (fn, case, msg)
