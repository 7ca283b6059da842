"""Adversarial transferability matrix: tournaments, Perron vectors, clustering, entropy (synthetic cases
with known answers)."""

import numpy as np
import pytest
import torch

from pyadvt.attacks import PGD
from pyadvt.metrics.atm import (cluster_tree, cut_tree, entropy_curve, perron_vector, save_dendrogram,
                                tournament_matrix, transfer_table, transferability_matrix,
                                within_cluster_entropy)


def test_tournament_rules_and_antisymmetry():
    loss = torch.tensor([[1.0, 5.0, 2.0], [1.0, 1.0, 9.0], [0.0, 0.0, 0.0]])
    succ = torch.tensor([[False, False, True], [False, True, False], [False, False, False]])
    M = tournament_matrix(loss, succ)
    # 0 vs 1: s0 tie (0.5), s1 1 succeeds (0), s2 0 succeeds (1) -> 0.5
    assert float(M[0, 1]) == pytest.approx(0.5)
    # 0 vs 2: s0 higher loss, s1 higher loss, s2 success -> 1
    assert float(M[0, 2]) == pytest.approx(1.0)
    torch.testing.assert_close(M + M.T, torch.ones(3, 3, dtype=torch.float64))
    torch.testing.assert_close(torch.diagonal(M), torch.full((3,), 0.5, dtype=torch.float64))


def test_perron_vector_total_order_and_known_matrix():
    # sources ranked 0 > 1 > 2 on every sample: the Perron vector keeps that order
    loss = torch.tensor([[3.0] * 4, [2.0] * 4, [1.0] * 4])
    v = perron_vector(tournament_matrix(loss, torch.zeros(3, 4, dtype=torch.bool)))
    assert float(v.sum()) == pytest.approx(1.0) and bool((v[:-1] > v[1:]).all())
    # a positive matrix with a known principal eigenvector
    M = torch.tensor([[2.0, 1.0], [1.0, 2.0]])
    torch.testing.assert_close(perron_vector(M, damping=0.0), torch.tensor([0.5, 0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="non-negative"):
        perron_vector(-M)


def _grouped_losses(groups, seed=0, S=40):
    g = torch.Generator().manual_seed(seed)
    N = len(groups)
    loss = torch.rand(N, N, S, dtype=torch.float64, generator=g)
    same = torch.tensor([[groups[i] == groups[t] for t in range(N)] for i in range(N)])
    loss = loss + 1.5 * same[:, :, None]  # same-group sources hurt a target more
    return loss, torch.zeros_like(loss, dtype=torch.bool)


def test_clustering_recovers_groups_and_shuffled_reference_does_not():
    groups = ["2d", "2d", "3d", "3d", "sem", "sem"]
    atm = transferability_matrix(*_grouped_losses(groups))
    assert atm.shape == (6, 6)
    torch.testing.assert_close(atm.sum(0), torch.ones(6, dtype=torch.float64))
    Z = cluster_tree(atm)
    clusters = cut_tree(Z, 3)
    assert within_cluster_entropy(clusters, groups) == 0.0
    wrong = ["2d", "3d", "sem", "2d", "3d", "sem"]
    assert within_cluster_entropy(clusters, wrong) == pytest.approx(1.0)
    curve = entropy_curve(Z, groups)
    assert curve[1] == pytest.approx(np.log2(3)) and curve[3] == 0.0 and curve[6] == 0.0


def test_transfer_table_with_models(tmp_path):
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)) for _ in range(3)]
    x = torch.rand(12, 1, 4, 4)
    labels = [m(x).argmax(1).detach() for m in models]
    table = transfer_table(models, x, labels, lambda m: PGD(m, eps=0.3, steps=5))
    assert table.loss.shape == (3, 3, 12)
    # white-box examples fool their own source more often than not
    assert float(table.success[range(3), range(3)].double().mean()) > 0.5
    atm = table.atm()
    torch.testing.assert_close(atm.sum(0), torch.ones(3, dtype=torch.float64))
    path = save_dendrogram(cluster_tree(atm), ["a", "b", "c"], tmp_path / "tree.png")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="labels"):
        transfer_table(models, x, labels[:2], lambda m: PGD(m, eps=0.1))
