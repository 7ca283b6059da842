"""from_torchvision / from_timm: hub architectures as split models on [0, 1] pixels (docs/theory.md §9).

Random init, 3x32x32 inputs, nothing downloaded. Every expected value is recomputed here from the
hub module itself (its own layers called by hand), never from pyadvt's output.
"""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from torch import nn

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

from pyadvt.data import TensorData  # noqa: E402
from pyadvt.models import IMAGENET_MEAN, IMAGENET_STD, from_timm, from_torchvision  # noqa: E402
from pyadvt.transfer import finetune  # noqa: E402
from pyadvt.utils.validation import InvalidValueError  # noqa: E402

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _x(n=3, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_torchvision_resnet18_normalisation_inside_and_features_by_hand():
    torch.manual_seed(0)
    m = from_torchvision("resnet18", num_classes=10).eval()
    body, x = m.body, _x()
    with torch.no_grad():
        z = (x - MEAN) / STD
        h = body.maxpool(body.relu(body.bn1(body.conv1(z))))
        h = body.layer4(body.layer3(body.layer2(body.layer1(h))))
        feats = torch.flatten(body.avgpool(h), 1)
        assert torch.allclose(m.features(x), feats, atol=1e-5)
        assert torch.allclose(m(x), body.fc(feats), atol=1e-5)
        assert torch.allclose(m(x), body(z), atol=1e-5)
    assert m.head is body.fc and m.feature_dim == 512 and m.num_classes == 10
    assert m.hub_name == "torchvision:resnet18"


@pytest.mark.parametrize("hub,name,head,last", [
    ("tv", "resnet18", "fc", "layer4.1"),
    ("tv", "mobilenet_v3_small", "classifier.3", "classifier.0"),
    ("tv", "vgg11", "classifier.6", "classifier.3"),
    ("tv", "efficientnet_b0", "classifier.1", "features.8"),
    ("tv", "convnext_tiny", "classifier.2", ("features.7.2", "classifier.0")),
    ("tv", "densenet121", "classifier", ("features.denseblock4", "features.norm5")),
    ("tv", "regnet_y_400mf", "fc", "trunk_output.block4.block4-5"),
    ("tv", "googlenet", "fc", "inception5b"),  # auxiliary classifiers aux1/aux2 are not blocks
    ("timm", "resnet18", "fc", "layer4.1"),
    ("timm", "vit_tiny_patch16_224", "head", ("blocks.11", "norm")),
    ("timm", "mobilenetv3_small_100", "classifier", "conv_head"),
    ("timm", "convnext_atto", "head.fc", ("stages.3", "head.norm")),
    ("timm", "levit_128s", "head.linear", ("stages.2", "head.bn")),  # the distillation head is not a block
])
def test_head_and_blocks_of_the_common_families(hub, name, head, last):
    kwargs = {"img_size": 32} if name.startswith("vit") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LeViT's distillation-head warning (tested below)
        m = (from_torchvision if hub == "tv" else from_timm)(name, num_classes=5, **kwargs)
    assert m.head is m.body.get_submodule(head) and m.head.out_features == 5
    assert m.block_names[-1] == last
    for block in m.blocks:  # every block holds parameters; none is the head
        params = list(block.parameters())
        assert params and all(p is not m.head.weight for p in params)


def test_a_distilled_timm_model_warns_that_only_its_head_is_used():
    with pytest.warns(UserWarning, match="distillation head"):
        from_timm("levit_128s", num_classes=3)


def test_blocks_cover_all_feature_parameters_of_resnet_once():
    m = from_torchvision("resnet18", num_classes=10)
    in_blocks = [id(p) for b in m.blocks for p in b.parameters()]
    assert len(in_blocks) == len(set(in_blocks))
    expected = {id(p) for n, p in m.body.named_parameters() if not n.startswith("fc.")}
    assert set(in_blocks) == expected


def test_finetune_one_block_trains_the_last_residual_block_and_the_head():
    torch.manual_seed(0)
    m = from_torchvision("resnet18", num_classes=10)
    data = TensorData(_x(8, seed=1), torch.arange(8) % 4)
    res = finetune(m, data, blocks=1, num_classes=4, epochs=1, batch_size=4, lr=0.1, progress=False)
    before = dict(m.body.named_parameters())
    changed = {n for n, p in res.model.body.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("layer4.1.") for n in changed)
    assert {n.split(".")[0] + "." + n.split(".")[1] for n in changed} == {"layer4.1"}
    assert res.model.head.out_features == 4


def test_timm_vit_default_normalisation_and_features_are_the_head_input():
    torch.manual_seed(0)
    m = from_timm("vit_tiny_patch16_224", num_classes=10, img_size=32).eval()
    x = _x(2)
    with torch.no_grad():
        z = (x - MEAN) / STD
        feats = m.body.forward_head(m.body.forward_features(z), pre_logits=True)
        assert torch.allclose(m.features(x), feats, atol=1e-5)
        assert torch.allclose(m(x), m.body(z), atol=1e-5)
    assert torch.allclose(m.normalize.mean.flatten(), torch.tensor(IMAGENET_MEAN))


def test_local_weights_file_sets_classes_values_and_hub_normalisation(tmp_path):
    torch.manual_seed(1)
    src = timm.create_model("vit_tiny_patch16_224", num_classes=7, img_size=32)
    path = tmp_path / "vit.pt"
    torch.save({"state_dict": src.state_dict()}, path)
    m = from_timm("vit_tiny_patch16_224", weights=path, img_size=32).eval()
    assert m.num_classes == 7
    mean = torch.tensor(src.pretrained_cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(src.pretrained_cfg["std"]).view(1, 3, 1, 1)
    assert not torch.allclose(mean, MEAN)  # augreg ViTs use 0.5: the hub's values, not ImageNet's
    x = _x(2)
    with torch.no_grad():
        assert torch.allclose(m(x), src.eval()((x - mean) / std), atol=1e-5)


def test_torchvision_weights_with_module_prefix_and_mean_override(tmp_path):
    torch.manual_seed(2)
    src = torchvision.models.resnet18(num_classes=3).eval()
    path = tmp_path / "r.pth"
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, path)
    m = from_torchvision("resnet18", weights=path, mean=0.5, std=0.25).eval()
    x = _x(2)
    with torch.no_grad():
        assert torch.allclose(m(x), src((x - 0.5) / 0.25), atol=1e-5)


def test_bad_names_and_weights_are_clear_errors(tmp_path):
    with pytest.raises(InvalidValueError, match="did you mean resnet18"):
        from_torchvision("resnet_18")
    with pytest.raises(InvalidValueError, match="timm has no classification model 'no_such_net'"):
        from_timm("no_such_net")
    with pytest.raises(InvalidValueError, match="no such file"):
        from_torchvision("resnet18", weights=tmp_path / "missing.pt")
    with pytest.raises(InvalidValueError, match="'pretrained=True' would download"):
        from_timm("resnet18", pretrained=True)
    with pytest.raises(InvalidValueError, match="'num_classes'"):
        from_torchvision("resnet18", num_classes=0)
    with pytest.raises(InvalidValueError, match="squeezenet1_0 has no final nn.Linear"):
        from_torchvision("squeezenet1_0")
    wrong = tmp_path / "wrong.pt"
    torch.save(torchvision.models.resnet34(num_classes=3).state_dict(), wrong)
    with pytest.raises(InvalidValueError, match="does not fit torchvision resnet18"):
        from_torchvision("resnet18", weights=wrong)


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_a_pickle_with_code_is_refused_without_running_it(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"fc.weight": _Payload()}, f)
    with pytest.raises(InvalidValueError, match="weights_only=True"):
        from_torchvision("resnet18", weights=path)
    assert "code ran" not in capsys.readouterr().out


@pytest.mark.slow
def test_hub_packages_are_imported_lazily():
    import subprocess
    import sys
    code = "import sys, pyadvt.models; print('torchvision' in sys.modules, 'timm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_hub_model_is_a_plain_module_of_the_hub_in_body():
    m = from_torchvision("resnet18", num_classes=2)
    assert isinstance(m.body, torchvision.models.ResNet) and isinstance(m, nn.Module)


def test_a_saved_pyadvt_hub_model_round_trips_with_its_new_head_and_normalisation(tmp_path):
    torch.manual_seed(3)
    m = from_torchvision("resnet18", num_classes=10, mean=0.4, std=0.2)
    data = TensorData(_x(4, seed=2), torch.tensor([0, 1, 2, 0]))
    tuned = finetune(m, data, blocks="head", num_classes=3, epochs=1, batch_size=2, progress=False).model.eval()
    path = tmp_path / "tuned.pt"
    torch.save(tuned.state_dict(), path)
    back = from_torchvision("resnet18", weights=path).eval()
    x = _x(2, seed=4)
    with torch.no_grad():
        assert torch.equal(back(x), tuned(x))
    assert back.num_classes == 3 and back.normalize.mean.flatten().tolist() == pytest.approx([0.4])
    timm_m = from_timm("resnet18", num_classes=4).eval()
    torch.save(timm_m.state_dict(), tmp_path / "t.pt")
    with torch.no_grad():
        assert torch.equal(from_timm("resnet18", weights=tmp_path / "t.pt").eval()(x), timm_m(x))
