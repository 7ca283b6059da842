"""Rankings on every data kind: a Dataset, a DataLoader and an ImageFolder give the rows of the same
samples in memory (checked against direct metric and estimator calls); eval_samples reads only n."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from pyadvt.data import TensorData, load_dataset
from pyadvt.metrics import adversarial_transferability, attack_transferability
from pyadvt.attacks import build_attack
from pyadvt.models import build
from pyadvt.selection import extract, logme, rank_sources, rank_surrogates, score_source
from pyadvt.selection._samples import eval_samples, num_classes_of
from pyadvt.train import fit


class Items(Dataset):
    """A TensorData's samples as a plain map-style Dataset, counting reads."""

    def __init__(self, data: TensorData, num_classes: bool = True):
        self.data, self.reads = data, 0
        if num_classes:
            self.num_classes = data.num_classes

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.reads += 1
        return self.data.x[i], int(self.data.y[i])


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)
    y = (x.flatten(1)[:, :8].sum(1) > x.flatten(1)[:, 8:].sum(1)).long() + 2 * (x[:, 0, 0, 0] > 0.5).long()
    return TensorData(x, y, 4)


def _net(seed, hidden=8):
    torch.manual_seed(seed)
    return build("mlp", in_shape=(1, 4, 4), num_classes=4, hidden=(hidden,), activation="tanh").eval()


@pytest.fixture(scope="module")
def task():
    data = _data()
    reference = _net(10)
    fit(reference, data, epochs=2, lr=0.1, progress=False)
    return data, reference.eval(), {f"s{i}": _net(i, 4 + 4 * i) for i in range(2)}


SCORES = ["logme", "leep", "tau1", "tau2", "tau1*tau2", "eq2_loss"]


def test_rank_sources_same_rows_for_tensor_data_dataset_and_loader(task):
    data, reference, sources = task
    kw = dict(n_eval=24, eps=0.2, steps=2, scores=SCORES, probe_epochs=1, progress=False)
    ref = rank_sources(sources, reference, data, target_train=data, **kw)
    ds = Items(data)
    as_ds = rank_sources(sources, reference, ds, target_train=Items(data, num_classes=False), **kw)
    assert as_ds["rows"] == ref["rows"] and as_ds["n_eval"] == 24 and ref["failed"] == {}
    # a DataLoader of the training data keeps its own order: the probe differs, nothing else
    loader = rank_sources(sources, reference, DataLoader(TensorDataset(data.x, data.y), batch_size=7),
                          target_train=DataLoader(TensorDataset(data.x, data.y), batch_size=16), **kw)
    for a, b in zip(loader["rows"], ref["rows"]):
        assert {k: v for k, v in a.items() if "probe" not in k} == {k: v for k, v in b.items() if "probe" not in k}
        assert 0 <= a["probe_accuracy"] <= 1
    for row in ref["rows"]:  # independent: the metric and the estimator called directly on the same samples
        tr = adversarial_transferability(sources[row["name"]], reference, data.x[:24])
        assert row["tau1"] == pytest.approx(tr.tau1.tau1) and row["tau2"] == pytest.approx(tr.tau2.tau2)
        assert row["logme"] == pytest.approx(logme(extract(sources[row["name"]], data).features, data.y), rel=1e-9)


def test_rank_surrogates_on_a_dataset_equals_tensor_data(task):
    data, _, models = task
    kw = dict(n_eval=16, eps=0.2, steps=2, n_smooth=4, seed=1, progress=False)
    a = rank_surrogates(models, models, data, **kw)
    b = rank_surrogates(models, models, Items(data), **kw)
    assert a["rows"] == b["rows"] and a["asr"] == b["asr"] and b["failed"] == {}
    x, y = data.x[:16], data.y[:16]
    for i, s in enumerate(a["surrogates"]):
        x_adv = build_attack("pgd", models[s], 0.2, steps=2, seed=1)(x, y)
        for j, t in enumerate(a["targets"]):
            assert a["asr"][i][j] == pytest.approx(attack_transferability(models[s], models[t], x, y, x_adv).asr)


def test_score_source_takes_a_dataset(task):
    data, reference, sources = task
    src = sources["s0"]
    direct = score_source(src, reference, data.x[:20], data.y[:20], scores=["logme", "tau1"])
    assert score_source(src, reference, Items(data), n_eval=20, scores=["logme", "tau1"]) == direct
    with pytest.raises(ValueError, match="'y' .*needed with a tensor 'x'"):
        score_source(src, reference, data.x, scores=["tau1"])
    with pytest.raises(ValueError, match="'y' must be None"):
        score_source(src, reference, Items(data), data.y, scores=["tau1"])


def test_eval_samples_reads_only_n():
    data = _data(30)
    ds = Items(data)
    sub = eval_samples(ds, 5)
    assert ds.reads == 5 and torch.equal(sub.x, data.x[:5]) and torch.equal(sub.y, data.y[:5])
    g = torch.Generator().manual_seed(3)  # a seeded random subset: to_tensor_data's randperm draw
    idx = torch.randperm(30, generator=g)[:6]
    assert torch.equal(eval_samples(ds, 6, seed=3).y, data.y[idx])
    loader = DataLoader(ds, batch_size=4)
    ds.reads = 0
    got = eval_samples(loader, 6)
    assert len(got) == 6 and ds.reads == 8 and torch.equal(got.y, data.y[:6])  # two loader batches of 4
    assert eval_samples(data, 100).x.shape[0] == 30 and eval_samples(data, 3).num_classes == 4
    assert num_classes_of(Items(data, num_classes=False)) == int(data.y.max()) + 1 and num_classes_of(ds) == 4
    with pytest.raises(ValueError, match="n_eval"):
        eval_samples(ds, 0)


def _png_tree(root, classes=3, per=5, size=(10, 12)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for j in range(per):
            arr = rng.integers(0, 200, size=(*size, 3), dtype=np.uint8)
            arr[..., c] = 255
            Image.fromarray(arr).save(root / f"class{c}" / f"{j}.png")
    return root


def test_rank_sources_on_an_image_folder(tmp_path):
    folder = load_dataset("imagefolder", _png_tree(tmp_path / "img"), size=8)
    torch.manual_seed(0)
    nets = {f"c{i}": build("cnn", in_shape=(3, 8, 8), num_classes=5, channels=(2 + i,)).eval() for i in range(2)}
    reference = build("cnn", in_shape=(3, 8, 8), num_classes=3, channels=(3,)).eval()
    res = rank_sources(nets, reference, folder, target_train=folder, n_eval=6, eval_seed=0, steps=1,
                       scores=["logme", "nce", "tau1*tau2"], probe_epochs=1, progress=False)
    mem = TensorData(torch.stack([folder[i][0] for i in range(len(folder))]), torch.tensor(folder.targets), 3)
    again = rank_sources(nets, reference, mem, target_train=mem, n_eval=6, eval_seed=0, steps=1,
                         scores=["logme", "nce", "tau1*tau2"], probe_epochs=1, progress=False)
    assert res["rows"] == again["rows"] and res["n_eval"] == 6
    ev = eval_samples(mem, 6, seed=0)
    assert len(set(ev.y.tolist())) > 1  # a seeded subset mixes the class-ordered files
    for row in res["rows"]:
        tr = adversarial_transferability(nets[row["name"]], reference, ev.x)
        assert row["score"] == pytest.approx(tr.tau1.tau1 * tr.tau2.tau2)
        assert row["logme"] == pytest.approx(logme(extract(nets[row["name"]], mem).features, mem.y), rel=1e-9)
