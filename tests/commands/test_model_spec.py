"""Model specs on the command line: torchvision/timm hub names, FILE.py:callable, MODULE:callable,
plain state dicts, and a model a metric cannot handle reported in one line while the others run."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from pyadvt.attacks import PGD
from pyadvt.cli import main
from pyadvt.commands.model_spec import ModelSpecError, load_model, named_model_specs, parse_model_spec
from pyadvt.data import load_dataset

pytest.importorskip("torchvision")

ZOO = textwrap.dedent('''
    import torch
    from torch import nn

    def make(num_classes=10, width=4):
        torch.manual_seed(width)
        return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                             nn.Linear(4 * width, num_classes))

    class Picky(nn.Module):
        """Fails on real pixels (like a layer without a kernel for them)."""

        def __init__(self, num_classes):
            super().__init__()
            self.net = make(num_classes)

        def forward(self, x):
            if bool(x.abs().sum() > 0):
                raise RuntimeError("derivative for aten::fancy_op is not implemented")
            return self.net(x)

    class Late(Picky):
        """Runs on the up-front check (a batch of one) but fails on the attack's larger batches."""

        def forward(self, x):
            if x.shape[0] > 1:
                raise RuntimeError("derivative for aten::fancy_op is not implemented")
            return self.net(x)

    class Outputs(nn.Module):
        """Returns a dict ({"logits": ...}) or a tuple (logits, features), as hub and HF models do."""

        def __init__(self, num_classes, kind="dict"):
            super().__init__()
            self.net, self.kind = make(num_classes, width=5), kind

        def forward(self, x):
            logits = self.net(x)
            return {"logits": logits, "features": x.flatten(1)} if self.kind == "dict" else (logits, x)

    def flat(num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(10, num_classes))

    instance = make(3)
''')


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(0)
    for c, name in enumerate(["bird", "car", "dog"]):
        (tmp_path / "images" / name).mkdir(parents=True)
        for j in range(3):
            arr = rng.integers(0, 256, size=(40, 36, 3), dtype=np.uint8)
            arr[..., c] = 255  # a class cue
            Image.fromarray(arr).save(tmp_path / "images" / name / f"{j}.png")
    (tmp_path / "zoo.py").write_text(ZOO)
    return tmp_path


def _cli(capsys, *argv):
    code = main(["attack", "--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- the parser
def test_parse_every_form():
    s = parse_model_spec("r18=torchvision:resnet18:w/r18.pt")
    assert (s.name, s.kind, s.target, s.weights) == ("r18", "torchvision", "resnet18", "w/r18.pt")
    s = parse_model_spec("timm:vit_tiny_patch16_224,img_size=32,drop_rate=0.0")
    assert s.kind == "timm" and s.kwargs == {"img_size": 32, "drop_rate": 0.0} and s.weights is None
    s = parse_model_spec("zoo.py:make,width=8:net.pth")
    assert (s.kind, s.target, s.attr, s.kwargs, s.weights) == ("file", "zoo.py", "make", {"width": 8}, "net.pth")
    s = parse_model_spec("pkg.sub.zoo:make")
    assert (s.kind, s.target, s.attr) == ("module", "pkg.sub.zoo", "make")
    s = parse_model_spec("runs/source.pt")
    assert (s.kind, s.target) == ("checkpoint", "runs/source.pt")
    assert parse_model_spec("pyadvt:cnn").kind == "pyadvt"
    assert named_model_specs(["a=timm:resnet18", "runs/src.pt"], "--target") == {"a": "timm:resnet18",
                                                                                "src": "runs/src.pt"}


@pytest.mark.parametrize("bad, match", [
    ("", "non-empty"), ("torchvision:", "one model name"), ("zoo.py:", "FILE.py:CALLABLE"),
    ("zoo.py:make,oops", "KEY=VALUE"), ("ckpt.pt,a=1", "no ,KEY=VALUE"),
])
def test_parse_errors_name_the_flag(bad, match):
    with pytest.raises(ModelSpecError, match=match) as info:
        parse_model_spec(bad, "--source")
    assert str(info.value).startswith("--source")


def test_duplicate_names_are_refused():
    with pytest.raises(ModelSpecError, match="given twice"):
        named_model_specs(["a=timm:resnet18", "a=torchvision:resnet18"], "--target")


# ---------------------------------------------------------------- loading
def test_file_module_and_weights_load_the_same_network(tree, monkeypatch):
    monkeypatch.chdir(tree)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tree))])
    ref = load_model("zoo.py:make", num_classes=5)
    assert ref[-1].out_features == 5          # num_classes passed to the callable
    by_module = load_model("zoo:make,width=4", num_classes=5)   # the working directory is importable
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(by_module(x), ref(x))
    # a plain state dict (torch.save(model.state_dict())) into another initialisation
    trained = load_model("zoo.py:make,width=4", num_classes=5)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)
    torch.save(trained.state_dict(), tree / "net.pt")
    loaded = load_model("zoo.py:make:net.pt", num_classes=5)
    torch.testing.assert_close(loaded(x), trained(x))
    assert load_model("zoo.py:instance")[-1].out_features == 3   # an nn.Module instance
    with pytest.raises(ModelSpecError, match="do not fit"):
        load_model("zoo.py:make:net.pt", num_classes=7)
    with pytest.raises(ModelSpecError, match="has no attribute 'nope'"):
        load_model("zoo.py:nope")
    with pytest.raises(ModelSpecError, match="cannot import module"):
        load_model("no_such_zoo:make")
    with pytest.raises(ModelSpecError, match=r"maps an image .* expected \[1, 4\]"):
        load_model("zoo.py:make,num_classes=3", num_classes=4, in_shape=(3, 8, 8))
    with pytest.raises(ModelSpecError, match="plain state dict needs its model"):
        load_model(str(tree / "net.pt"))


def test_hub_state_dict_weights(tmp_path):
    tv = pytest.importorskip("torchvision")
    net = tv.models.resnet18(num_classes=3)
    torch.save(net.state_dict(), tmp_path / "r18.pt")
    model = load_model(f"torchvision:resnet18:{tmp_path / 'r18.pt'}", num_classes=3, in_shape=(3, 32, 32))
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net.eval()((x - mean) / std), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- the attack command
def test_attack_on_hub_models_and_an_image_folder(tree, capsys):
    tv = pytest.importorskip("torchvision")
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    torch.save(tv.models.resnet18(num_classes=3).state_dict(), tree / "r18.pt")
    torch.save(timm.create_model("resnet18", num_classes=3).state_dict(), tree / "t18.pt")
    out_file = tree / "res.json"
    code, out, err = _cli(capsys, "--dataset", "imagefolder", "--data-root", str(tree / "images"),
                          "--image-size", "32", "--source", f"torchvision:resnet18:{tree / 'r18.pt'}",
                          "--target", f"t18=timm:resnet18:{tree / 't18.pt'}", "--eps", "0.03", "--steps", "2",
                          "--attack-batch", "4", "--out", str(out_file))
    assert code == 0, err
    assert "imagefolder test samples" in out
    res = json.loads(out_file.read_text())["data"]
    assert res["n"] == 9 and res["targets"][0]["name"] == "t18" and res["failed"] == []
    # the same numbers from the library
    source = load_model(f"torchvision:resnet18:{tree / 'r18.pt'}", num_classes=3)
    target = load_model(f"timm:resnet18:{tree / 't18.pt'}", num_classes=3)
    data = load_dataset("imagefolder", tree / "images", split="test", size=32)
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.tensor(data.targets)
    x_adv = PGD(source, eps=0.03, steps=2, seed=0)(x, y)
    with torch.no_grad():
        fool = float((source(x_adv).argmax(1) != y).double().mean())
        transfer = float((target(x_adv).argmax(1) != y).double().mean())
        acc_t = float((target(x).argmax(1) == y).double().mean())
    row = res["budgets"][0]
    assert row["source_fooling"] == pytest.approx(fool) and row["transfer_success"] == pytest.approx(transfer)
    assert res["clean_accuracy"]["target"] == pytest.approx(acc_t)


def test_attack_with_a_timm_vit_target_and_rgb_conversion(tree, capsys, monkeypatch):
    pytest.importorskip("timm")
    monkeypatch.chdir(tree)
    code, out, err = _cli(capsys, "--dataset", "digits", "--image-size", "32", "--channels", "3", "--n-eval", "8",
                          "--source", "zoo.py:make", "--target", "vit=timm:vit_tiny_patch16_224,img_size=32",
                          "--target", "mob=torchvision:mobilenet_v3_small", "--eps", "0.05", "--steps", "1")
    assert code == 0, err
    assert "(vit)" in out and "(mob)" in out


def test_a_target_that_fails_is_one_line_and_the_others_run(tree, capsys, monkeypatch):
    monkeypatch.chdir(tree)
    out_file = tree / "partial.json"
    code, out, err = _cli(capsys, "--dataset", "imagefolder", "--data-root", "images", "--image-size", "8",
                          "--source", "zoo.py:make", "--target", "ok=zoo.py:make,width=6",
                          "--target", "late=zoo.py:Late", "--target", "flat=zoo.py:flat",
                          "--eps", "0.1", "--steps", "1", "--out", str(out_file))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert any("flat" in ln and "cannot run on the data's images" in ln for ln in lines)
    assert any("late" in ln and "transfer evaluation failed" in ln and "fancy_op" in ln for ln in lines)
    res = json.loads(out_file.read_text())["data"]
    assert [t["name"] for t in res["targets"]] == ["ok"]
    assert {f["name"] for f in res["failed"]} == {"late", "flat"}
    assert "(ok)" not in out and "clean accuracy" in out


@pytest.mark.parametrize("argv, match", [
    (["--source", "torchvision:no_such_net"], "--source 'torchvision:no_such_net'"),
    (["--source", "zoo.py:make", "--target", "zoo.py:flat"], "--target zoo.py:flat 'zoo.py:flat' cannot run on"),
    (["--source", "zoo.py:Picky"], "--source 'zoo.py:Picky' cannot run on the data's images [1, 3, 8, 8]"),
    (["--source", "zoo.py:flat"], "cannot run on the data's images"),
    (["--source", "zoo.py:make", "--channels", "1"], "convert them with --channels 3"),
    (["--dataset", "imagefolder", "--data-root", "images", "--source-model", "mlp"], "in-memory dataset"),
])
def test_user_errors_are_one_line(tree, capsys, monkeypatch, argv, match):
    monkeypatch.chdir(tree)
    code, _, err = _cli(capsys, "--image-size", "8", "--channels", "3", "--eps", "0.1", "--steps", "1", *argv)
    assert code == 2
    assert match in err.strip().splitlines()[-1] and err.strip().splitlines()[-1].startswith("pyadvt: error:")


# ---------------------------------------------------------------- rank commands on user models
@pytest.mark.slow
def test_rank_sources_on_an_image_folder_with_file_and_hub_models(tree, capsys, monkeypatch):
    monkeypatch.chdir(tree)
    code = main(["rank", "sources", "--source", "r18=torchvision:resnet18", "--source", "small=zoo.py:make,width=6",
                 "--reference", "zoo.py:make", "--dataset", "imagefolder", "--data-root", "images",
                 "--image-size", "16", "--n-eval", "6", "--no-probe", "--set", "steps=1", "--out", "out", "--quiet"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tree / "out" / "result.json").read_text())
    assert sorted(r["name"] for r in res["data"]["rows"]) == ["r18", "small"]
    assert res["data"]["n_eval"] == 6


def test_rank_surrogates_on_digits_as_rgb(tree, capsys, monkeypatch):
    monkeypatch.chdir(tree)
    code = main(["rank", "surrogates", "--surrogate", "a=zoo.py:make", "--surrogate", "b=zoo.py:make,width=5",
                 "--target", "t=zoo.py:make,width=3", "--channels", "3", "--image-size", "12", "--n-eval", "8",
                 "--set", "steps=1", "--set", "n_smooth=4", "--out", "out2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    res = json.loads((tree / "out2" / "result.json").read_text())
    assert sorted(r["name"] for r in res["data"]["rows"]) == ["a", "b"]


def test_dict_and_tuple_output_models(tree, capsys, monkeypatch):
    monkeypatch.chdir(tree)
    out_file = tree / "outputs.json"
    code, out, err = _cli(capsys, "--dataset", "imagefolder", "--data-root", "images", "--image-size", "8",
                          "--source", "zoo.py:Outputs", "--target", "d=zoo.py:Outputs",
                          "--target", "t=zoo.py:Outputs,kind='tuple'", "--target", "plain=zoo.py:make,width=5",
                          "--eps", "0.1", "--steps", "2", "--out", str(out_file))
    assert code == 0, err
    res = json.loads(out_file.read_text())["data"]
    by_name = {t["name"]: t for t in res["targets"]}
    # all three targets are the same network (width 5, same seed): the same numbers
    assert by_name["d"]["budgets"] == by_name["t"]["budgets"] == by_name["plain"]["budgets"]


def test_rank_surrogates_leaves_out_a_model_that_cannot_run(tree, capsys, monkeypatch):
    monkeypatch.chdir(tree)
    code = main(["rank", "surrogates", "--surrogate", "a=zoo.py:make", "--surrogate", "bad=zoo.py:Picky",
                 "--surrogate", "b=zoo.py:make,width=5", "--target", "t=zoo.py:make,width=3", "--channels", "3",
                 "--image-size", "12", "--n-eval", "8", "--set", "steps=1", "--set", "n_smooth=4", "--out", "out3",
                 "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "--surrogate bad" in err[0] and "fancy_op" in err[0] and "left out" in err[0]
    res = json.loads((tree / "out3" / "result.json").read_text())
    assert sorted(r["name"] for r in res["data"]["rows"]) == ["a", "b"]


def test_random_init_models_are_seeded(tree, capsys, monkeypatch):
    monkeypatch.chdir(tree)
    argv = ["--dataset", "imagefolder", "--data-root", "images", "--image-size", "16", "--source",
            "pyadvt:cnn", "--target", "pyadvt:mlp", "--eps", "0.05", "--steps", "1"]
    outs = []
    for i in range(2):
        torch.manual_seed(100 + i)  # the global RNG state must not matter
        code, _, err = _cli(capsys, *argv, "--out", str(tree / f"s{i}.json"))
        assert code == 0, err
        outs.append(json.loads((tree / f"s{i}.json").read_text())["data"]["targets"])
    assert outs[0] == outs[1]
