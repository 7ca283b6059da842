"""fit on streamed data: a Dataset follows a TensorData's seeded permutation (identical weights), a
DataLoader keeps its own order, at most one batch of items is alive, checkpoints still work."""

from __future__ import annotations

import weakref

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from pyadvt.data import TensorData, digits, load_dataset
from pyadvt.models import build
from pyadvt.train import evaluate, fit, load_checkpoint
from pyadvt.train.batches import TrainBatches


@pytest.fixture(scope="module")
def small():
    return digits(seed=0)[0].subset(range(150))


class ItemDataset(Dataset):
    """The samples of a TensorData as a plain map-style Dataset (items read one by one)."""

    def __init__(self, data: TensorData):
        self.data = data
        self.reads = 0

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.reads += 1
        return self.data.x[i].clone(), int(self.data.y[i])


class CountingDataset(ItemDataset):
    """Tracks how many of the item tensors it handed out are still alive."""

    def __init__(self, data: TensorData):
        super().__init__(data)
        self.alive = 0
        self.peak = 0

    def _gone(self):
        self.alive -= 1

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        self.alive += 1
        self.peak = max(self.peak, self.alive)
        weakref.finalize(x, self._gone)
        return x, y


def _mlp(seed=0):
    torch.manual_seed(seed)
    return build("mlp", hidden=(16,))


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("n", [150, 129])  # 129 = 2 * 64 + 1: the single-sample last batch is skipped alike
def test_dataset_gives_the_weights_of_the_same_tensor_data(small, n):
    data = small.subset(range(n))
    a, b, c = _mlp(), _mlp(), _mlp()
    ra = fit(a, data, epochs=2, seed=5, progress=False)
    ds = ItemDataset(data)
    rb = fit(b, ds, epochs=2, seed=5, progress=False)
    assert _same(a, b) and ra.steps == rb.steps == 2 * (n // 64 if n % 64 == 1 else -(-n // 64))
    assert [h["train_loss"] for h in ra.history] == [h["train_loss"] for h in rb.history]
    assert ds.reads == 2 * (n - (n % 64 == 1)) + 2  # every sample once per epoch, plus the 2-sample check
    fit(c, TensorDataset(data.x, data.y), epochs=2, seed=6, progress=False)
    assert not _same(a, c)  # the seed matters: another permutation


def test_dataset_epochs_are_reshuffled_permutations(small):
    data = small.subset(range(10))
    batches = TrainBatches(ItemDataset(data), 4, seed=3)
    epochs = [torch.cat([y for _, y in batches]) for _ in range(3)]
    for e in epochs:  # each epoch is a permutation of the labels, in a new order every epoch
        assert sorted(e.tolist()) == sorted(data.y.tolist())
    assert not torch.equal(epochs[0], epochs[1])
    g = torch.Generator().manual_seed(3)  # the permutations a TensorData's BatchLoader draws
    for e in epochs:
        assert torch.equal(e, data.y[torch.randperm(10, generator=g)])


def test_at_most_one_batch_of_items_is_alive(small):
    ds = CountingDataset(small)
    fit(_mlp(), ds, epochs=1, batch_size=16, seed=0, progress=False, eval_data=ds)
    assert ds.reads > len(small) and 0 < ds.peak <= 16 and ds.alive == 0


def test_dataloader_keeps_its_own_order_and_batches(small):
    model, ref = _mlp(), _mlp()
    loader = DataLoader(TensorDataset(small.x, small.y), batch_size=32, shuffle=False)
    res = fit(model, loader, epochs=2, batch_size=64, seed=0, progress=False, warmup_epochs=0.0)
    assert res.steps == 2 * len(loader)  # 150 = 4 * 32 + 22: five batches of its own size per epoch
    # the same loop written out: SGD over the loader's batches in its order, cosine schedule per step
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    total, step = 2 * len(loader), 0
    ref.train()
    for _ in range(2):
        for x, y in loader:
            for g in opt.param_groups:
                g["lr"] = 0.05 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * step / total))).item()
            opt.zero_grad()
            torch.nn.functional.cross_entropy(ref(x), y).backward()
            opt.step()
            step += 1
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_shuffling_dataloader_is_seeded_by_fit(small):
    def run(seed):
        net = _mlp()
        fit(net, DataLoader(ItemDataset(small), batch_size=32, shuffle=True), epochs=1, seed=seed, progress=False)
        return net

    assert _same(run(1), run(1)) and not _same(run(1), run(2))


def test_larger_loader_batches_are_split_to_batch_size(small):
    res = fit(_mlp(), DataLoader(ItemDataset(small), batch_size=100), epochs=1, batch_size=40, progress=False)
    assert res.steps == 5  # 100 -> 40 + 40 + 20, then 50 -> 40 + 10


def test_image_folder_trains_and_checkpoints(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for c in range(3):
        (tmp_path / "img" / f"c{c}").mkdir(parents=True)
        for i in range(6):
            px = (torch.rand(10, 12, 3, generator=g) * 80 + 80 * c).to(torch.uint8).numpy()
            Image.fromarray(px).save(tmp_path / "img" / f"c{c}" / f"{i}.png")
    folder = load_dataset("imagefolder", tmp_path / "img", size=8, channels=1)
    model = _mlp()
    res = fit(model, folder, epochs=3, batch_size=6, seed=1, progress=False, checkpoint=tmp_path / "run.pt",
              eval_data=folder)
    assert len(res.history) == 3 and res.final["eval_accuracy"] == evaluate(model, folder)["accuracy"]
    loaded, cfg = load_checkpoint(tmp_path / "run.pt")
    assert cfg["epoch"] == 3 and cfg["fit"]["seed"] == 1
    x = torch.stack([folder[i][0] for i in range(4)])
    assert torch.equal(loaded(x), model.eval()(x))
    twin = _mlp()  # the folder read into memory trains to the same weights
    fit(twin, TensorData(torch.stack([folder[i][0] for i in range(len(folder))]), torch.tensor(folder.targets)),
        epochs=3, batch_size=6, seed=1, progress=False)
    assert _same(model, twin)


class _Unsized(IterableDataset):
    def __iter__(self):
        yield from ((torch.rand(1, 8, 8), 0) for _ in range(4))


class _NoLabels(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.rand(1, 8, 8)


def test_bad_streamed_data_is_refused_before_training(small):
    model = _mlp()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="number of batches per epoch"):
        fit(model, DataLoader(_Unsized(), batch_size=2), epochs=1, progress=False)
    with pytest.raises(ValueError, match="must provide labels"):
        fit(model, _NoLabels(), epochs=1, progress=False)
    with pytest.raises(ValueError, match="label 9 but the model has only 3 outputs"):
        torch.manual_seed(0)
        fit(build("mlp", num_classes=3), ItemDataset(small.subset(range(9, 12))), epochs=1, progress=False)
    with pytest.raises(TypeError, match="'train' must be"):
        fit(model, iter([(small.x, small.y)]), epochs=1, progress=False)
    with pytest.raises(ValueError, match="at least 2 samples"):
        fit(model, ItemDataset(small.subset([0])), epochs=1, progress=False)
    with pytest.raises(ValueError, match="batch of at least 2"):
        fit(model, DataLoader(ItemDataset(small.subset(range(4))), batch_size=1), epochs=1, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))
    labels = torch.full((150,), 9)  # a later batch with a label the model lacks stops at that batch
    labels[:64] = small.y[:64] % 3
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"labels of 'train'.*\[0, 3\)"):
        fit(build("mlp", num_classes=3), DataLoader(TensorDataset(small.x, labels), batch_size=64), epochs=1,
            progress=False)
