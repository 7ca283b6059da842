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


def test_sam_ir_recipe_is_sam_on_the_input_gradient_regularised_loss():
    # Seed 001 sec. 4.3 / docs/theory.md §4: SAM&IR = SAM (Foret et al.) on the IR loss
    # mean_i [l_i + lambda ||grad_{x_i} l_i||] (per-sample norm, not squared). One step by hand:
    # g = grad L(theta), e = rho g / ||g||, theta' = theta - lr grad L(theta + e).
    import math

    import torch.nn.functional as F
    from torch import nn
    from torch.func import functional_call

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 2, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=g)
    lam, rho, lr = 0.3, 0.2, 0.1
    kw = training_recipe("sam_ir", model, strength=lam, sam_rho=rho, sgd={"lr": lr})
    opt, loss_fn = kw["optimizer"], kw["loss_fn"]
    assert isinstance(opt, SAM) and isinstance(opt.base_optimizer, torch.optim.SGD)
    assert opt.rho == rho and opt.model is model and opt.param_groups[0]["lr"] == lr

    def ir_loss(params):
        total = 0.0
        for i in range(4):
            xi = x[i:i + 1].clone().requires_grad_(True)
            li = F.cross_entropy(functional_call(model, params, (xi,)), y[i:i + 1])
            (gi,) = torch.autograd.grad(li, xi, create_graph=True)
            total = total + li + lam * gi.flatten().norm()
        return total / 4

    theta = {k: v.detach().clone() for k, v in model.named_parameters()}
    expect_loss = ir_loss(theta)
    plain = F.cross_entropy(model(x), y)
    assert float(expect_loss) > float(plain) + 1e-6  # the regulariser is there
    torch.testing.assert_close(loss_fn(model, x, y), expect_loss)

    def grad_at(params):
        ps = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        return dict(zip(ps, torch.autograd.grad(ir_loss(ps), list(ps.values()))))

    g0 = grad_at(theta)
    norm = math.sqrt(sum(float(v.pow(2).sum()) for v in g0.values()))
    g1 = grad_at({k: theta[k] + rho * g0[k] / norm for k in theta})

    def closure():
        opt.zero_grad()
        loss = loss_fn(model, x, y)
        loss.backward()
        return loss

    returned = opt.step(closure)
    torch.testing.assert_close(returned, expect_loss.detach())
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), theta[k] - lr * g1[k])
