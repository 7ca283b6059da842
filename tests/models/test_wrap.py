"""wrap(): user modules as SplitModels, without copying or modifying them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyadvt.models import Normalize, wrap


class Net(nn.Module):
    def __init__(self, post=None):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.proj = nn.Linear(64, 16)
        self.unused = nn.Linear(3, 3)
        self.classifier = nn.Sequential(nn.ReLU(), nn.Linear(16, 5))
        self.post = post

    def forward(self, x):
        h = torch.relu(self.conv(x)).mean(dim=1).flatten(1)
        out = self.classifier(self.proj(h))
        return self.post(out) if self.post else out


def test_sequential_auto_head():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    m = wrap(net)
    x = torch.rand(4, 1, 4, 4)
    assert m.head is net[3] and m.feature_dim == 8 and m.num_classes == 3
    assert torch.allclose(m.features(x), net[:3](x))
    assert torch.allclose(m(x), net(x))
    assert m.blocks == [net[1]]  # Flatten and ReLU hold no parameters: they are not blocks


def test_default_blocks_skip_parameter_free_layers_and_finetune_one_block_trains_parameters():
    from pyadvt.data import TensorData
    from pyadvt.transfer import finetune

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(), nn.Linear(4, 3))
    m = wrap(net)
    assert m.block_names == [("0", "1"), "3"]  # conv + its BatchNorm, then the inner conv stage
    data = TensorData(torch.rand(8, 1, 6, 6), torch.arange(8) % 2)
    res = finetune(m, data, blocks=1, num_classes=2, epochs=1, batch_size=4, lr=0.5, progress=False)
    before = dict(net.named_parameters())
    changed = {n for n, p in res.model.body.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"3.0.weight", "3.0.bias"}


def test_tuple_blocks_are_one_module_list():
    net = Net()
    m = wrap(net, head="classifier.1", blocks=[("conv", "proj")])
    (block,) = m.blocks
    assert isinstance(block, nn.ModuleList) and list(block) == [net.conv, net.proj]


def test_nested_explicit_head_blocks_and_no_leftover_hooks():
    net = Net()
    m = wrap(net, head="classifier.1", blocks=["conv", "proj"], example_input=torch.rand(2, 1, 8, 8))
    x = torch.rand(3, 1, 8, 8)
    assert torch.allclose(m(x), net(x))
    expected = torch.relu(net.proj(torch.relu(net.conv(x)).mean(dim=1).flatten(1)))
    assert torch.allclose(m.features(x), expected)
    assert m.blocks == [net.conv, net.proj]
    assert not net.classifier[1]._forward_pre_hooks
    # auto-detection picks the last Linear in named_modules order: classifier.1
    assert wrap(net).head is net.classifier[1]
    assert wrap(net).block_names == ["conv", "proj", "unused"]  # top-level children except the head's


def test_parameters_are_shared_and_head_can_be_replaced():
    net = Net()
    m = wrap(net, head="classifier.1")
    assert {id(p) for p in net.parameters()} <= {id(p) for p in m.parameters()}
    x = torch.rand(3, 1, 8, 8)
    feats = m.features(x)
    m.head = nn.Linear(m.feature_dim, 2)
    assert m(x).shape == (3, 2)
    assert torch.allclose(m(x), m.head(feats))
    assert net(x).shape == (3, 5)  # the user's module still has its own head


def test_normalize_is_applied_first():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    m = wrap(net, normalize=Normalize(0.5, 0.25))
    x = torch.rand(2, 1, 2, 2)
    assert torch.allclose(m(x), net((x - 0.5) / 0.25))


def test_example_check_leaves_batchnorm_statistics_alone():
    net = nn.Sequential(nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(4, 2)).train()
    wrap(net, example_input=torch.rand(3, 1, 2, 2) + 5)
    assert torch.equal(net[0].running_mean, torch.zeros(1)) and net.training


def test_post_processed_output_is_detected():
    net = Net(post=nn.LogSoftmax(dim=1))
    with pytest.raises(ValueError, match="does not reproduce"):
        wrap(net, head="classifier.1", example_input=torch.rand(2, 1, 8, 8))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="no nn.Linear"):
        wrap(nn.Sequential(nn.Conv2d(1, 1, 1)))
    with pytest.raises(ValueError, match="not an nn.Linear"):
        wrap(Net(), head="conv")
    with pytest.raises(ValueError, match="no submodule 'fc'"):
        wrap(Net(), head="fc")
    with pytest.raises(ValueError, match="'blocks'.*'layer9'"):
        wrap(Net(), blocks=["layer9"])
    with pytest.raises(TypeError, match="nn.Module"):
        wrap(lambda x: x)
    with pytest.raises(RuntimeError, match="never called its head 'unused'"):
        wrap(Net(), head="unused").features(torch.rand(1, 1, 8, 8))


def test_example_check_reads_the_logits_of_a_dict_output():
    class DictNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.fc = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), nn.Linear(3, 2)

        def forward(self, x):
            h = self.body(x)
            return {"features": h, "logits": self.fc(h)}

    net = DictNet()
    x = torch.rand(3, 1, 2, 2)
    m = wrap(net, head="fc", example_input=x)
    assert torch.allclose(m(x), net(x)["logits"]) and m.block_names == ["body"]
