"""Named training recipes build exactly the zoo pieces they stand for."""

from __future__ import annotations

import pytest
import torch

from pyadvt.models import build
from pyadvt.train import (SAM, AdversarialLoss, CutMix, Cutout, ExplicitGradientRegularizer, GaussianNoise,
                          InputGradientRegularizer, JacobianRegularizer, LabelSmoothing, Mixup, fit)
from pyadvt.train.recipes import METHODS, training_recipe
from pyadvt.data import TensorData

EXPECTED = {
    "st": (None, None), "sam": (None, None), "at": (AdversarialLoss, None), "gaussian": (None, GaussianNoise),
    "mixup": (None, Mixup), "cutmix": (None, CutMix), "cutout": (None, Cutout), "label_smoothing": (None, LabelSmoothing),
    "ir": (InputGradientRegularizer, None), "jr": (JacobianRegularizer, None), "er": (ExplicitGradientRegularizer, None),
    "sam_ir": (InputGradientRegularizer, None), "sam_jr": (JacobianRegularizer, None),
}


@pytest.mark.parametrize("method", METHODS)
def test_each_method_builds_its_pieces(method):
    model = build("mlp")
    kw = training_recipe(method, model, strength=0.5 if method != "cutout" else 2, sgd={"lr": 0.1})
    loss_cls, transform_cls = EXPECTED[method]
    assert (type(kw.get("loss_fn")) if "loss_fn" in kw else None) is loss_cls
    assert (type(kw.get("batch_transform")) if "batch_transform" in kw else None) is transform_cls
    assert isinstance(kw.get("optimizer"), SAM) == method.startswith("sam")


def test_threat_model_is_passed_through():
    loss = training_recipe("at", strength=0.3, steps=1, alpha=0.6, norm="linf", random_start=False)["loss_fn"]
    assert (loss.eps, loss.steps, loss.alpha, loss.norm, loss.random_start) == (0.3, 1, 0.6, "linf", False)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown training method"):
        training_recipe("adversarial")
    with pytest.raises(ValueError, match="strength"):
        training_recipe("jr")
    with pytest.raises(ValueError, match="needs the model"):
        training_recipe("sam_jr", strength=0.1)


def test_recipe_trains_with_fit():
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.rand(64, 1, 8, 8, generator=g), torch.randint(0, 10, (64,), generator=g))
    model = build("mlp")
    fit(model, data, epochs=1, batch_size=32, progress=False,
        **training_recipe("sam_jr", model, strength=0.05, sgd={"lr": 0.05, "momentum": 0.9}))
    assert all(torch.isfinite(p).all() for p in model.parameters())
