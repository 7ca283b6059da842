"""Reference networks: shapes, the features/head split, blocks, Normalize and the build registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyadvt.models import MODELS, BasicBlock, LeNet, Normalize, SmallCNN, SplitModel, build

SHAPES = [(1, 8, 8), (3, 32, 32), (1, 16, 16)]


def _compose(model, x):
    h = model.normalize(x)
    for block in model.blocks:
        h = block(h)
    return model.neck(h)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_is_head_of_features_and_blocks_compose(name, shape):
    model = build(name, in_shape=shape, num_classes=7).eval()
    x = torch.rand(5, *shape)
    feats = model.features(x)
    assert feats.shape == (5, model.feature_dim)
    assert model(x).shape == (5, 7) and model.num_classes == 7
    assert torch.allclose(model(x), model.head(feats))
    assert torch.allclose(feats, _compose(model, x))
    assert isinstance(model.head, nn.Linear) and isinstance(model.normalize, Normalize)


@pytest.mark.parametrize("name", list(MODELS))
def test_blocks_plus_head_hold_every_parameter(name):
    model = build(name)
    in_blocks = {id(p) for b in model.blocks for p in b.parameters()}
    in_head = {id(p) for p in model.head.parameters()}
    assert not in_blocks & in_head
    assert in_blocks | in_head == {id(p) for p in model.parameters()}
    # fine-tuning "the last k blocks" touches the output side: the last block feeds the neck/head
    assert all(len(list(b.parameters())) > 0 for b in model.blocks)


@pytest.mark.parametrize("name", list(MODELS))
def test_eval_outputs_are_batch_independent_and_differentiable(name):
    model = build(name).eval()
    x = torch.rand(6, 1, 8, 8, requires_grad=True)
    out = model(x)
    single = torch.cat([model(x[i:i + 1]) for i in range(6)])
    assert torch.allclose(out, single, atol=1e-5)
    out[:, 0].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


@pytest.mark.parametrize("name", list(MODELS))
def test_build_config_rebuilds_the_same_architecture(name):
    model = build(name, in_shape=(3, 16, 16), num_classes=4, activation="tanh", mean=(0.1, 0.2, 0.3), std=0.2)
    cfg = model.build_config
    assert cfg["name"] == name and cfg["kwargs"]["in_shape"] == [3, 16, 16]
    twin = build(cfg["name"], **cfg["kwargs"])
    twin.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(twin.eval()(x), model.eval()(x))
    assert any(isinstance(m, nn.Tanh) for m in model.modules())


def test_normalize_layer():
    norm = Normalize((0.5, 0.25), (0.5, 0.125))
    x = torch.rand(3, 2, 4, 4)
    expected = torch.stack([(x[:, 0] - 0.5) / 0.5, (x[:, 1] - 0.25) / 0.125], dim=1)
    assert torch.allclose(norm(x), expected)
    assert set(norm.state_dict()) == {"mean", "std"}
    assert norm.double()(x.double()).dtype == torch.float64
    assert torch.allclose(Normalize(0.5, 2.0)(torch.ones(1, 3)), torch.full((1, 3), 0.25))
    with pytest.raises(ValueError, match="std"):
        Normalize(0.0, (1.0, 0.0))
    with pytest.raises(ValueError, match="channels"):
        Normalize((0.1, 0.2), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="mean"):
        Normalize(float("nan"))


def test_model_normalises_its_input():
    model = build("mlp", hidden=(), mean=0.3, std=0.2)  # linear: features = normalised pixels
    x = torch.rand(2, 1, 8, 8)
    assert torch.allclose(model.features(x), ((x - 0.3) / 0.2).flatten(1))
    with pytest.raises(ValueError, match="channels"):
        build("cnn", in_shape=(3, 8, 8), mean=(0.1, 0.2))


def test_cnn_uses_batchnorm_and_resnet_has_skip_connections():
    cnn = SmallCNN()
    assert sum(isinstance(m, nn.BatchNorm2d) for m in cnn.modules()) == 3
    x = torch.rand(4, 1, 8, 8)
    assert not torch.allclose(cnn.train()(x), cnn.eval()(x))
    block = BasicBlock(4, 4, stride=1, activation="relu").eval()
    nn.init.zeros_(block.body[-1].weight)  # residual branch outputs zero -> block is relu(identity)
    z = torch.randn(2, 4, 5, 5)
    assert torch.allclose(block(z), torch.relu(z))
    down = BasicBlock(4, 8, stride=2, activation="relu")
    assert down(z).shape == (2, 8, 3, 3)


def test_input_and_argument_validation():
    model = build("cnn")
    with pytest.raises(ValueError, match=r"\[B, 1, 8, 8\]"):
        model(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="unknown model"):
        build("vgg")
    with pytest.raises(TypeError, match="'cnn'.*hidden"):
        build("cnn", hidden=(3,))
    for kwargs, match in [({"num_classes": 1}, "num_classes"), ({"in_shape": (8, 8)}, "in_shape"),
                          ({"activation": "sigmoidish"}, "activation"), ({"channels": ()}, "channels"),
                          ({"channels": (8, -1)}, "channels")]:
        with pytest.raises(ValueError, match=match):
            build("cnn", **kwargs)
    with pytest.raises(ValueError, match="depth"):
        build("resnet", depth=0)
    with pytest.raises(ValueError, match="4x4"):
        LeNet(in_shape=(1, 3, 3))
    with pytest.raises(TypeError, match="head"):
        SplitModel([nn.Flatten()], nn.Conv2d(1, 1, 1))
