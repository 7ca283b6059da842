"""Options keyword-only (issue 15, item 2) outside ``metrics`` and ``attacks``: each option (a parameter with a
default that tunes how a result is computed) is keyword-only, while the subject of the call (models, data,
labels, the points and classifier of a theorem check, the threat-model ``eps``, ...) stays positional. The former
positional call still works for one release, through :func:`pyadvt.utils.deprecation.keyword_only`, with a
``DeprecationWarning`` that points at the caller and gives the same result as the keyword call."""

from __future__ import annotations

import importlib
import inspect
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from pyadvt.data import digits
from pyadvt.models import SmallCNN
from pyadvt.theory import TwoLayerReLU, check_theorem11
from pyadvt.train import AdversarialLoss
from pyadvt.transfer import summarize

KW = inspect.Parameter.KEYWORD_ONLY

# "package.name": (parameters that stay positional, options now keyword-only in their former order)
CHANGED = {
    "bounds.lower_bound": (("source", "target", "x", "y", "x_adv", "eps"),
                           ("smooth_source", "smooth_target", "smoothness_kwargs", "batch_size")),
    "data.BatchLoader": (("data", "batch_size"), ("shuffle", "seed", "drop_last")),
    "data.as_data": (("x", "y"), ("name",)),
    "data.digits": ((), ("seed", "test_size", "classes", "size", "relabel")),
    "data.load_cifar": (("root",), ("split", "num_classes", "label")),
    "data.load_dataset": (("name", "root"), ("split",)),
    "data.load_mnist": (("root",), ("split", "variant")),
    "metrics.cluster_tree": (("atm",), ("method", "metric")),
    "models.LeNet": (("in_shape", "num_classes"), ("activation", "mean", "std")),
    "models.MLP": (("in_shape", "num_classes"), ("hidden", "activation", "mean", "std")),
    "models.SmallCNN": (("in_shape", "num_classes"), ("channels", "activation", "mean", "std")),
    "models.SmallResNet": (("in_shape", "num_classes"), ("widths", "depth", "activation", "mean", "std")),
    "models.SplitModel": (("blocks", "head", "normalize", "neck"), ("in_shape",)),
    "models.from_timm": (("name", "num_classes"), ("weights",)),
    "models.from_torchvision": (("name", "num_classes"), ("weights",)),
    "models.model_logits": (("out",), ("output", "name")),
    "models.wrap": (("module",), ("head", "blocks", "normalize", "example_input")),
    "ops.lanczos_step_": (("Q", "w", "alpha", "beta", "ritz", "y", "status", "active", "j"),
                          ("npairs", "tol", "invariant_rtol")),
    "selection.estimate": (("extracted", "y"), ("scores",)),
    "theory.check_corollary6": (("svm", "h"), ("c", "rtol")),
    "theory.check_corollary17": (("classifiers", "X", "y"), ("a_index", "b_index", "points")),
    "theory.check_region_convexity": (("h", "points", "label"), ("n_pairs", "rng", "relu_class")),
    "theory.check_theorem5": (("svm", "h", "X", "y"), ("rtol",)),
    "theory.check_theorem10": (("h", "X", "y"), ("a_index", "b_index", "points")),
    "theory.check_theorem11": (("h", "X", "y", "convex_label"), ("a_index", "b_index", "points", "relu_class",
                                                                 "theorem")),
    "theory.check_theorem15": (("h", "X", "y"), ("a_index", "b_index", "points")),
    "theory.check_theorem16": (("h", "X", "y"), ("a_index", "b_index", "points")),
    "train.AdversarialLoss": (("eps",), ("steps", "alpha", "norm", "random_start", "seed")),
    "train.GaussianNoise": (("eps",), ("std", "norm")),
    "train.JacobianRegularizer": (("lam",), ("n_proj", "legacy_squared", "seed")),
    "train.load_checkpoint": (("path", "model"), ("map_location",)),
    "train.SAM": (("params", "base_optimizer"), ("rho", "model")),
    "transfer.head_influence": (("head", "phi_train", "y_train", "phi_test", "y_test"),
                                ("damping", "solver", "pinv_cutoff")),
    "transfer.influence_match_rate": (("influence", "y_train", "y_test"), ("ks", "by")),
    "transfer.paired_delta": (("rows_a", "rows_b", "metric"), ("by", "confidence")),
    "transfer.summarize": (("rows", "metric"), ("by", "confidence")),
    "utils.per_sample_generators": (("x", "seed", "sample_ids"), ("stream",)),
    "utils.per_sample_rand": (("x", "shape", "seed", "sample_ids"), ("stream", "distribution", "dtype")),
    "utils.sample_seeds": (("x", "seed", "sample_ids"), ("stream",)),
}


def _callable(qualified: str):
    package, name = qualified.split(".")
    obj = getattr(importlib.import_module(f"pyadvt.{package}"), name)
    return obj.__init__ if inspect.isclass(obj) else obj


@pytest.mark.parametrize("qualified", sorted(CHANGED))
def test_options_are_keyword_only_and_subjects_positional(qualified):
    subjects, options = CHANGED[qualified]
    params = inspect.signature(_callable(qualified)).parameters
    positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD and n != "self"]
    assert tuple(positional) == subjects, qualified
    for name in options:
        assert params[name].kind is KW, f"{qualified}: {name!r} is not keyword-only"


@pytest.mark.parametrize("qualified", sorted(CHANGED))
def test_the_former_positional_form_is_still_accepted(qualified):
    """The shim takes exactly the former positional options, in their former order: one more is an error."""
    subjects, options = CHANGED[qualified]
    fn = _callable(qualified)
    n_self = 1 if "self" in inspect.signature(fn).parameters else 0
    too_many = (None,) * (n_self + len(subjects) + len(options) + 1)
    with pytest.raises(TypeError, match="positional arguments"):
        fn(*too_many)


def _former(fn, *args, match="by position is deprecated", **kwargs):
    """``fn(*args, **kwargs)``, asserting one DeprecationWarning that points at this file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    dep = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(dep) == 1, [str(w.message) for w in caught]
    assert dep[0].filename == __file__
    assert match in str(dep[0].message)
    return out, str(dep[0].message)


def _keyword(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        return fn(*args, **kwargs)


def test_digits_former_positional_form():
    ref = _keyword(digits, seed=3, test_size=0.5, classes=(3, 8), size=4, relabel=False)
    got, msg = _former(digits, 3, 0.5, (3, 8), 4, False)
    assert "'seed', 'test_size', 'classes', 'size', 'relabel'" in msg
    for r, g in zip(ref, got):
        assert torch.equal(r.x, g.x) and torch.equal(r.y, g.y)
    assert set(got[0].y.tolist()) == {3, 8} and got[0].x.shape[-1] == 4  # the options took effect
    with pytest.raises(TypeError, match="multiple values for argument 'seed'"):
        digits(3, seed=3)


def test_check_theorem11_former_positional_form():
    X = np.array([[0.0, 0.0], [0.5, 0.0], [2.0, 1.0], [2.0, -1.0]])
    y = np.array([-1, -1, 1, 1])
    h = TwoLayerReLU(W=np.array([[0.0, 1.0], [0.0, -1.0]]), b=np.zeros(2), v=np.ones(2), a=0.5)
    extra = np.array([[0.1, 0.0]])
    ref = _keyword(check_theorem11, h, X, y, -1.0, a_index=1, b_index=3, points=extra, theorem="mine")
    got, msg = _former(check_theorem11, h, X, y, -1.0, 1, 3, extra, None, "mine")
    assert "'a_index', 'b_index', 'points', 'relu_class', 'theorem'" in msg
    assert (got.theorem, got.a_index, got.b_index) == ("mine", 1, 3) == (ref.theorem, ref.a_index, ref.b_index)
    np.testing.assert_array_equal(got.v, X[3] - X[1])
    np.testing.assert_array_equal(got.points, ref.points)
    assert got.points.shape == (3, 2) and got.claim_holds == ref.claim_holds


def test_summarize_former_positional_form():
    rows = [{"size": s, "seed": k, "acc": 0.1 * s + 0.05 * k, "group": s % 2} for s in (1, 2) for k in range(3)]
    ref = _keyword(summarize, rows, "acc", by="group", confidence=0.5)
    got, msg = _former(summarize, rows, "acc", "group", 0.5)
    assert "'by', 'confidence'" in msg and got == ref
    assert [r["group"] for r in got] == [0, 1]
    # an independent reference: mean and the t interval at the given confidence
    from scipy import stats
    vals = np.array([r["acc"] for r in rows if r["group"] == 0])
    half = stats.t.ppf(0.75, len(vals) - 1) * vals.std(ddof=1) / np.sqrt(len(vals))
    assert got[0]["mean"] == pytest.approx(vals.mean())
    assert got[0]["hi"] - got[0]["mean"] == pytest.approx(half, rel=1e-6)


def test_adversarial_loss_former_positional_form():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    ref = _keyword(AdversarialLoss, 0.3, steps=3, alpha=0.1, norm="linf", random_start=False, seed=5)
    got, msg = _former(AdversarialLoss, 0.3, 3, 0.1, "linf", False, 5)
    assert "'steps', 'alpha', 'norm', 'random_start', 'seed'" in msg
    assert (got.steps, got.alpha, got.norm, got.random_start, got.seed) == (3, 0.1, "linf", False, 5)
    x_ref, x_got = ref.perturb(net, x, y), got.perturb(net, x, y)
    assert torch.equal(x_ref, x_got)
    assert (x_got - x).abs().max() <= 0.3 + 1e-6 and (x_got - x).abs().max() > 0.1  # linf ball, 3 steps of 0.1


def test_model_constructor_former_positional_form():
    torch.manual_seed(0)
    ref = _keyword(SmallCNN, (1, 8, 8), 3, channels=(4, 8), activation="tanh")
    torch.manual_seed(0)
    got, msg = _former(SmallCNN, (1, 8, 8), 3, (4, 8), "tanh")
    assert "'channels', 'activation'" in msg
    assert [p.shape for p in got.parameters()] == [p.shape for p in ref.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(got.parameters(), ref.parameters()))
    convs = [m for m in got.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs][:2] == [4, 8]
