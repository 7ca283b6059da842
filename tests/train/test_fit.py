"""fit / evaluate: accuracy on digits, determinism, schedule, hooks, closure optimizers, validation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pyadvt.data import TensorData, digits
from pyadvt.models import build
from pyadvt.train import evaluate, fit, load_checkpoint, lr_factor


@pytest.fixture(scope="module")
def data():
    return digits(seed=0)


@pytest.fixture(scope="module")
def small(data):
    return data[0].subset(range(200))


def _mlp(seed=0, **kw):
    torch.manual_seed(seed)
    return build("mlp", hidden=(32,), **kw)


def test_small_cnn_reaches_95_percent_on_digits(data):
    train, test = data
    torch.manual_seed(0)
    model = build("cnn")
    result = fit(model, train, epochs=3, eval_data=test, progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.steps == 3 * math.ceil(len(train) / 64)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert evaluate(model, test)["accuracy"] >= 0.95
    assert result.final["eval_accuracy"] == evaluate(model, test)["accuracy"]


def test_same_seed_same_weights_and_global_rng_untouched(small):
    a, b, c = _mlp(), _mlp(), _mlp()
    state = torch.get_rng_state()
    fit(a, small, epochs=2, seed=3, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    fit(b, small, epochs=2, seed=3, progress=False)
    fit(c, small, epochs=2, seed=4, progress=False)
    for (k, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(pa, pb), k
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_dropout_draws_are_seeded(small):
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
    a, b = net(), net()
    torch.manual_seed(123)
    fit(a, small, epochs=1, seed=1, progress=False)
    torch.manual_seed(456)  # a different global RNG state must not matter
    fit(b, small, epochs=1, seed=1, progress=False)
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))


def test_lr_factor_shape():
    assert [lr_factor(s, 10, 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 10, 4) == 1.0
    assert lr_factor(7, 10, 4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 6)))
    decay = [lr_factor(s, 10, 4) for s in range(4, 10)]
    assert all(x > y > 0 for x, y in zip(decay, decay[1:]))
    assert [lr_factor(s, 10, 2, "constant") for s in range(4)] == [0.5, 1.0, 1.0, 1.0]
    assert lr_factor(0, 5, 0) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(0, 5, 0, "step")


def test_optimizer_sees_the_scheduled_learning_rate(small):
    model, seen = _mlp(), []
    fit(model, small, epochs=2, lr=0.1, batch_size=50, warmup_epochs=1, weight_decay=0.0, progress=False,
        on_step=lambda m, epoch, step: seen.append((epoch, step)))
    assert seen == [(e, s) for e, s in zip([0] * 4 + [1] * 4, range(1, 9))]
    lrs = []
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    fit(model, small, epochs=2, batch_size=50, warmup_epochs=0.5, optimizer=opt, progress=False,
        on_step=lambda m, e, s: lrs.append(opt.param_groups[0]["lr"]))
    assert lrs == pytest.approx([0.2 * lr_factor(s, 8, 2) for s in range(8)])
    lrs.clear()  # a reused optimizer restarts the schedule from its initial lr
    fit(model, small, epochs=2, batch_size=50, warmup_epochs=0.5, optimizer=opt, progress=False,
        on_step=lambda m, e, s: lrs.append(opt.param_groups[0]["lr"]))
    assert lrs == pytest.approx([0.2 * lr_factor(s, 8, 2) for s in range(8)])


def test_batch_transform_and_loss_fn_hooks(small):
    calls = {"transform": 0, "loss": 0, "gens": set()}

    def smooth(x, y, gen):
        calls["transform"] += 1
        calls["gens"].add(id(gen))
        assert isinstance(gen, torch.Generator)
        noise = torch.rand(x.shape, generator=gen) * 0.01
        return (x + noise).clamp(0, 1), 0.9 * F.one_hot(y, 10).float() + 0.01  # soft labels

    def loss_fn(model, x, y):
        calls["loss"] += 1
        assert y.shape == (x.shape[0], 10) and y.is_floating_point()
        return -(y * F.log_softmax(model(x), dim=1)).sum(1).mean()

    result = fit(_mlp(), small, epochs=2, batch_size=40, batch_transform=smooth, loss_fn=loss_fn, progress=False)
    assert calls["transform"] == calls["loss"] == result.steps == 10
    assert len(calls["gens"]) == 1
    # default loss accepts the soft labels too
    fit(_mlp(), small, epochs=1, batch_transform=smooth, progress=False)


class ClosureSGD(torch.optim.SGD):
    """SAM-like stand-in: evaluates the closure twice per step (ascent + descent)."""

    needs_closure = True

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.closure_calls = 0

    def step(self, closure):
        for _ in range(2):
            closure()
            self.closure_calls += 1
        return super().step()


def test_needs_closure_optimizer_path(small):
    model = _mlp()
    before = evaluate(model, small)["loss"]
    opt = ClosureSGD(model.parameters(), lr=0.1)
    result = fit(model, small, epochs=3, batch_size=50, optimizer=opt, progress=False)
    assert opt.closure_calls == 2 * result.steps == 24
    assert evaluate(model, small)["loss"] < before


def test_freeze_bn_and_partial_training(small):
    torch.manual_seed(0)
    cnn = build("cnn", channels=(8, 8))
    stats = [b.running_mean.clone() for b in cnn.modules() if isinstance(b, nn.BatchNorm2d)]
    fit(cnn, small, epochs=1, freeze_bn=True, progress=False)
    assert all(torch.equal(s, b.running_mean) for s, b in zip(stats, [m for m in cnn.modules()
                                                                      if isinstance(m, nn.BatchNorm2d)]))
    fit(cnn, small, epochs=1, progress=False)
    assert not torch.equal(stats[0], next(m for m in cnn.modules() if isinstance(m, nn.BatchNorm2d)).running_mean)
    model = _mlp()
    for p in model.blocks.parameters():
        p.requires_grad_(False)
    block_w, head_w = model.blocks[0][1].weight.clone(), model.head.weight.clone()
    fit(model, small, epochs=1, progress=False)
    assert torch.equal(block_w, model.blocks[0][1].weight) and not torch.equal(head_w, model.head.weight)


def test_mode_restored_and_single_sample_batch_skipped(small):
    torch.manual_seed(0)
    cnn = build("cnn", channels=(4,)).eval()
    result = fit(cnn, small.subset(range(41)), epochs=2, batch_size=20, progress=True)  # 41 = 2 * 20 + 1
    assert result.steps == 4 and not cnn.training
    cnn.train()
    fit(cnn, small.subset(range(10)), epochs=1, progress=False)
    assert cnn.training


def test_checkpoint_written_each_epoch(small, tmp_path):
    model = _mlp()
    path = tmp_path / "run.pt"
    fit(model, small, epochs=2, checkpoint=path, progress=False, seed=7)
    loaded, cfg = load_checkpoint(path)
    assert cfg["epoch"] == 2 and cfg["fit"]["seed"] == 7 and len(cfg["history"]) == 2
    x = small.x[:8]
    assert torch.equal(loaded(x), model.eval()(x))


def test_evaluate_matches_manual_and_leaves_model_alone(data):
    _, test = data
    model = _mlp().train()
    res = evaluate(model, test, batch_size=37)
    with torch.no_grad():
        logits = model.eval()(test.x)
    model.train()
    assert res["n"] == len(test)
    assert res["accuracy"] == pytest.approx(float((logits.argmax(1) == test.y).float().mean()))
    assert res["loss"] == pytest.approx(float(F.cross_entropy(logits, test.y)), rel=1e-5)
    assert model.training and all(p.grad is None and p.requires_grad for p in model.parameters())
    assert evaluate(model, (test.x, test.y), batch_size=1000) == pytest.approx(res)


def test_validation_errors(small):
    model = _mlp()
    with pytest.raises(ValueError, match="label 9 but the model has only 3 outputs"):
        fit(_mlp(num_classes=3), small, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit(model, (small.x * 3, small.y), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"\[B, 1, 8, 8\]"):
        fit(model, (torch.rand(10, 1, 4, 4), torch.zeros(10, dtype=torch.long)), epochs=1, progress=False)
    for kwargs, match in [({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"), ({"batch_size": 2.5}, "batch_size"),
                          ({"warmup_epochs": 3, "epochs": 2}, "warmup_epochs"), ({"schedule": "step"}, "schedule"),
                          ({"momentum": -0.1}, "momentum")]:
        with pytest.raises(ValueError, match=match):
            fit(model, small, progress=False, **{"epochs": 1, **kwargs})
    with pytest.raises(TypeError, match="'train'"):
        fit(model, small.x, epochs=1)
    frozen = _mlp()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        fit(frozen, small, epochs=1, progress=False)
    with pytest.raises(ValueError, match="scalar"):
        fit(model, small, epochs=1, progress=False, loss_fn=lambda m, x, y: F.cross_entropy(m(x), y, reduction="none"))
    with pytest.raises(FloatingPointError, match="diverged"):
        fit(model, small, epochs=1, progress=False, loss_fn=lambda m, x, y: m(x).sum() * float("nan"))
    with pytest.raises(ValueError, match="eval_data"):
        fit(model, small, epochs=1, progress=False,
            eval_data=TensorData(small.x[:2], torch.tensor([0, 12])))
