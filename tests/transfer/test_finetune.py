"""Fine-tuning (last-k blocks, LP, FT, LP-FT, BatchNorm freezing), Gaussian-noise training and
subset sweeps with confidence intervals (seed 002 / 004, docs/theory.md §4 and §7)."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from pyadvt.data import digits
from pyadvt.models import build
from pyadvt.train.gaussian import GaussianNoise, fit_gaussian
from pyadvt.transfer.finetune import finetune, frozen_batchnorm, linear_probe, lp_ft, replace_head, trainable_modules
from pyadvt.transfer.sweep import balanced_subset, mean_ci, paired_delta, subset_sweep, summarize
from pyadvt.utils.sweep import CellStore


@pytest.fixture(scope="module")
def data():
    train, test = digits(seed=0)
    return train, test


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("blocks", ["head", 1, "all"])
def test_only_the_chosen_blocks_change_and_source_untouched(data, blocks):
    train, test = data
    src = build("cnn", num_classes=10)
    before = snapshot(src)
    res = finetune(src, train.subset(range(64)), blocks=blocks, num_classes=10, epochs=1, lr=0.05)
    assert all(torch.equal(before[k], v) for k, v in src.state_dict().items())   # source untouched
    after = res.model.state_dict()
    n_blocks = len(src.blocks)
    for name, old in before.items():
        if name.startswith("head."):
            continue
        changed = not torch.equal(old, after[name])
        idx = int(name.split(".")[1]) if name.startswith("blocks.") else -1
        should = blocks == "all" or (isinstance(blocks, int) and idx >= n_blocks - blocks)
        if name.startswith("normalize."):
            should = False
        if "num_batches_tracked" in name and should:
            continue
        assert changed == should, (blocks, name)
    assert all(p.requires_grad for p in res.model.parameters())


def test_legacy_bn_drift_updates_frozen_statistics(data):
    train, _ = data
    src = build("cnn", num_classes=10)
    frozen = finetune(src, train.subset(range(64)), blocks="head", num_classes=10, epochs=1)
    drift = finetune(src, train.subset(range(64)), blocks="head", num_classes=10, epochs=1, legacy_bn_drift=True)
    key = next(k for k in src.state_dict() if k.endswith("running_mean"))
    assert torch.equal(frozen.model.state_dict()[key], src.state_dict()[key])
    assert not torch.equal(drift.model.state_dict()[key], src.state_dict()[key])
    # weights other than BN stats and head stay frozen in both
    wkey = next(k for k in src.state_dict() if k.startswith("blocks.0") and k.endswith("weight"))
    assert torch.equal(drift.model.state_dict()[wkey], src.state_dict()[wkey])


def test_frozen_batchnorm_context_restores(data):
    m = build("cnn")
    with frozen_batchnorm(m, trainable_modules(m, 1)):
        m.train()
        bns = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)]
        assert not bns[0].training and bns[-1].training     # first block frozen, last trains
        assert not any(p.requires_grad for p in m.blocks[0].parameters())
    m.train()
    assert all(x.training for x in m.modules())
    assert all(p.requires_grad for p in m.parameters())
    assert not any("train" in vars(x) for x in m.modules())


def test_linear_probe_learns_and_curves_recorded(data):
    train, test = data
    src = build("mlp", hidden=(64,), num_classes=10)
    from pyadvt.train import fit
    fit(src, train, epochs=3, progress=False)
    res = linear_probe(src, train, num_classes=10, epochs=3, lr=0.05, eval_data=test)
    assert len(res.curve) == 3 and res.curve[-1] > 0.85 and res.method == "head"
    both = lp_ft(src, train, epochs=2, num_classes=10, eval_data=test, lp_lr=0.05, ft_lr=0.01)
    assert [h["phase"] for h in both.history] == ["lp", "lp", "ft"]
    assert [h["epoch"] for h in both.history] == [1, 2, 3] and both.method == "lp-ft"


def test_replace_head_and_block_validation():
    m = build("mlp", hidden=(8,), num_classes=4)
    a = replace_head(m, 3, seed=1).head.weight.clone()
    b = replace_head(m, 3, seed=1).head.weight.clone()
    assert torch.equal(a, b) and m.num_classes == 3
    with pytest.raises(ValueError, match="blocks"):
        trainable_modules(m, 5)
    with pytest.raises(ValueError, match="split model"):
        trainable_modules(torch.nn.Linear(2, 2), 1)
    assert trainable_modules(m, "head") == [m.head]


def test_gaussian_noise_rescaled_into_ball():
    g = torch.Generator().manual_seed(0)
    x = torch.full((16, 1, 8, 8), 0.5)
    big = GaussianNoise(eps=0.5, std=1.0)        # raw norm ~8 >> 0.5: always rescaled onto the sphere
    d = big.noise(x, g).flatten(1).norm(dim=1)
    assert torch.allclose(d, torch.full_like(d, 0.5), atol=1e-5)
    small = GaussianNoise(eps=100.0, std=0.01)    # never rescaled: plain N(0, 0.01^2)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.allclose(small.noise(x, g1), 0.01 * torch.randn(x.shape, generator=g2))
    inf = GaussianNoise(eps=0.1, std=1.0, norm="linf").noise(x, g)
    assert torch.allclose(inf.flatten(1).abs().max(1).values, torch.full((16,), 0.1), atol=1e-6)
    xn, _ = big(x, torch.zeros(16, dtype=torch.long), g)
    assert bool(((xn >= 0) & (xn <= 1)).all())
    with pytest.raises(ValueError, match="eps"):
        GaussianNoise(eps=0.0)
    with pytest.raises(ValueError, match="norm"):
        GaussianNoise(eps=1.0, norm="l1")


def test_fit_gaussian_sees_noisy_inputs(data):
    train, _ = data
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = build("mlp", hidden=(8,))

        def forward(self, x):
            if self.training:
                seen.append(x.detach())
            return self.net(x)

    sub = train.subset(range(32))
    fit_gaussian(Spy(), sub, eps=0.3, epochs=1, batch_size=32, progress=False)
    assert seen and not any(torch.equal(s, sub.x) for s in seen)
    # shuffled order: every noisy input lies within the L2 ball of radius eps around some clean input
    dist = torch.cdist(seen[0].flatten(1), sub.x.flatten(1)).min(dim=1).values
    assert bool((dist <= 0.3 + 1e-5).all()) and bool((dist > 0).all())
    with pytest.raises(ValueError, match="batch_transform"):
        fit_gaussian(Spy(), sub, eps=0.3, batch_transform=lambda x, y, g: (x, y))


def test_mean_ci_matches_scipy():
    v = [0.2, 0.5, 0.4, 0.9, 0.3]
    r = mean_ci(v)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=sum(v) / len(v), scale=stats.sem(v))
    assert r["lo"] == pytest.approx(lo) and r["hi"] == pytest.approx(hi)
    assert mean_ci([1.0])["lo"] is None and mean_ci([])["n"] == 0
    assert mean_ci([1.0, float("nan"), 3.0])["n"] == 2


def test_balanced_subset(data):
    train, _ = data
    s = balanced_subset(train, 25, seed=3)
    counts = torch.bincount(s.y, minlength=10)
    assert len(s) == 25 and bool((counts >= 2).all())
    assert torch.equal(balanced_subset(train, 25, seed=3).x, s.x)
    assert not torch.equal(balanced_subset(train, 25, seed=4).x, s.x)
    assert balanced_subset(train, None, 0) is train


def test_subset_sweep_resumes_and_pairs(tmp_path, data):
    train, _ = data
    calls = []

    def cell(sub, seed):
        calls.append((len(sub), seed))
        return {"acc": len(sub) / 100 + seed / 1000}

    store = CellStore(tmp_path / "cells")
    rows = subset_sweep(cell, train, [10, 20], [0, 1, 2], store=store, key=("a",), progress=False)
    assert len(rows) == 6 and len(calls) == 6
    again = subset_sweep(cell, train, [10, 20], [0, 1, 2], store=store, key=("a",), progress=False)
    assert again == rows and len(calls) == 6
    summ = summarize(rows, "acc")
    assert [s["size"] for s in summ] == [10, 20] and summ[0]["mean"] == pytest.approx(0.101)
    other = [dict(r, acc=r["acc"] - 0.05) for r in rows]
    delta = paired_delta(rows, other, "acc")
    assert all(d["mean"] == pytest.approx(0.05) and d["half_width"] == pytest.approx(0.0, abs=1e-12) for d in delta)
    with pytest.raises(ValueError, match="pairs"):
        paired_delta(rows, [], "acc")


def test_returned_model_has_one_mode(data):
    train, _ = data
    src = build("cnn", num_classes=10).train()
    res = finetune(src, train.subset(range(32)), blocks="head", num_classes=10, epochs=1)
    assert all(m.training for m in res.model.modules())
    src.eval()
    res = finetune(src, train.subset(range(32)), blocks=1, num_classes=10, epochs=1)
    assert not any(m.training for m in res.model.modules())
