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


# ---------------------------------------------------------------------------------------------------
# Independent re-implementations (seed 000 §4.3 / App. G.3, docs/theory.md §2 "Transferability matrix")
# ---------------------------------------------------------------------------------------------------

def _tournament_by_hand(loss, success):
    """M_T[i, j] = mean over samples of: 1 if i's example beats j's, 1/2 on a tie, 0 otherwise, where
    a successful (untargeted) attack on T beats a failed one and only equal outcomes are ranked by the
    target loss - a plain double loop, no vectorisation shared with pyadvt."""
    N, S = len(loss), len(loss[0])
    M = np.zeros((N, N))
    for i in range(N):
        for j in range(N):
            total = 0.0
            for s in range(S):
                si, sj = bool(success[i][s]), bool(success[j][s])
                if si != sj:
                    total += 1.0 if si else 0.0
                elif loss[i][s] > loss[j][s]:
                    total += 1.0
                elif loss[i][s] == loss[j][s]:
                    total += 0.5
            M[i, j] = total / S
    return M


def test_tournament_success_beats_higher_loss_by_hand():
    # ATM tournament rule: success first, loss only between equal outcomes. Every sample here has the
    # *failed* source with the higher target loss, so ranking by loss alone would reverse the result.
    loss = torch.tensor([[0.1, 0.2, 0.3, 5.0],    # source 0: fools T on samples 0..2 with a low loss
                         [4.0, 4.0, 4.0, 1.0]])   # source 1: never fools T, higher loss on 0..2
    succ = torch.tensor([[True, True, True, False],
                         [False, False, False, False]])
    M = tournament_matrix(loss, succ)
    # samples 0..2: source 0 succeeds -> wins despite the lower loss; sample 3: both fail, 5.0 > 1.0
    assert float(M[0, 1]) == pytest.approx(1.0)
    assert float(M[1, 0]) == pytest.approx(0.0)
    # both succeed -> loss decides; equal success and equal loss -> 1/2
    M2 = tournament_matrix(torch.tensor([[1.0, 2.0], [3.0, 2.0]]), torch.tensor([[True, True], [True, True]]))
    assert float(M2[0, 1]) == pytest.approx((0.0 + 0.5) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tournament_matches_double_loop_on_random_outcomes(seed):
    rng = np.random.default_rng(seed)
    N, S = 5, 30
    # integer losses so that exact ties happen; success independent of the loss so rules conflict
    loss = rng.integers(0, 4, (N, S)).astype(np.float64)
    succ = rng.random((N, S)) < 0.4
    M = tournament_matrix(torch.from_numpy(loss), torch.from_numpy(succ))
    np.testing.assert_allclose(M.numpy(), _tournament_by_hand(loss, succ), rtol=0, atol=1e-12)


def _perron_by_power_iteration(M, iters=5000):
    """Principal eigenvector of a positive matrix by plain power iteration, normalised to sum 1."""
    A = np.asarray(M, dtype=np.float64) + 1e-6
    v = np.ones(A.shape[0]) / A.shape[0]
    for _ in range(iters):
        v = A @ v
        v = v / v.sum()
    return v


def test_atm_columns_are_perron_vectors_of_the_hand_tournaments():
    # the ATM's column T is the Perron vector of M_T (normalised to sum 1), M_T built with the
    # success-then-loss rule: check both steps against the independent versions above
    rng = np.random.default_rng(7)
    N, S = 4, 25
    loss = rng.integers(0, 3, (N, N, S)).astype(np.float64)
    succ = rng.random((N, N, S)) < 0.5
    atm = transferability_matrix(torch.from_numpy(loss), torch.from_numpy(succ)).numpy()
    for t in range(N):
        expect = _perron_by_power_iteration(_tournament_by_hand(loss[:, t], succ[:, t]))
        np.testing.assert_allclose(atm[:, t], expect, atol=1e-6)
    # a source that fools the target on every sample with the *lowest* loss still ranks first
    loss1 = np.array([[0.0] * 6, [9.0] * 6, [5.0] * 6])
    succ1 = np.array([[True] * 6, [False] * 6, [False] * 6])
    col = perron_vector(tournament_matrix(torch.from_numpy(loss1), torch.from_numpy(succ1))).numpy()
    assert col.argmax() == 0 and col[1] > col[2]


def test_within_cluster_entropy_is_in_bits_by_hand():
    # mean over clusters of -sum p log2 p of the reference labels inside each cluster
    clusters = [1, 1, 1, 2, 2, 2, 2, 3]
    reference = ["a", "a", "b", "c", "c", "d", "e", "f"]
    h1 = -(2 / 3 * np.log2(2 / 3) + 1 / 3 * np.log2(1 / 3))          # 0.918... bits
    h2 = -(0.5 * np.log2(0.5) + 2 * (0.25 * np.log2(0.25)))           # 1.5 bits
    h3 = 0.0
    assert within_cluster_entropy(clusters, reference) == pytest.approx((h1 + h2 + h3) / 3, abs=1e-12)
    assert within_cluster_entropy([1, 1, 1, 1], ["a", "b", "c", "d"]) == pytest.approx(2.0)  # log2(4)
