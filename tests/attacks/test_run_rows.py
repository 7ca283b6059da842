"""``iterative.run_rows``: the rows one restart of IterativeAttack, TransferAttack and SVRE works on."""

from __future__ import annotations

import torch

from pyadvt.attacks import AttackBatch
from pyadvt.attacks.iterative import run_rows


def _batch(targeted: bool) -> AttackBatch:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 2, 2, generator=g)
    K = 2
    return AttackBatch(x=x.repeat(K, 1, 1, 1), y=torch.tensor([0, 1, 2]).repeat(K),
                       target_labels=torch.tensor([1, 2, 0]).repeat(K) if targeted else None,
                       eps=torch.tensor([0.1, 0.2]).repeat_interleave(3), alpha=torch.linspace(0.01, 0.06, 6),
                       source=torch.arange(3).repeat(K), clean=x, sample_ids=None, seed=0)


def test_all_rows_are_the_batch_itself():
    batch = _batch(targeted=False)
    x0, y, eps, alpha, target = run_rows(batch, None)
    assert x0 is batch.x and y is batch.y and eps is batch.eps and alpha is batch.alpha and target is None


def test_selected_rows_match_indexing_each_field():
    batch = _batch(targeted=True)
    rows = torch.tensor([4, 1])
    got = run_rows(batch, rows)
    sub = batch.rows(rows)  # AttackBatch's own sub-batch, built field by field
    for a, b in zip(got, (sub.x, sub.y, sub.eps, sub.alpha, sub.target_labels)):
        assert torch.equal(a, b)
    assert got[1].tolist() == [1, 1] and got[4].tolist() == [2, 2] and torch.equal(got[2], torch.tensor([0.2, 0.1]))
