"""Agreement of a score with ground-truth transfer accuracy (docs/theory.md §11.9) against scipy, and
the bootstrap over targets and seeds against a re-implementation of its resampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pyadvt.selection import agreement, rel_at_k


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 12))
def test_per_target_metrics_equal_scipy(seed, n):
    rng = np.random.default_rng(seed)
    s, a = rng.normal(size=n), rng.uniform(0.2, 1.0, size=n)
    r = agreement(s, a, n_boot=0)
    assert r.mean["kendall"] == pytest.approx(stats.kendalltau(s, a).statistic)
    assert r.mean["weighted_tau"] == pytest.approx(stats.weightedtau(s, a).statistic)
    assert r.mean["pearson"] == pytest.approx(stats.pearsonr(s, a).statistic)
    assert r.mean["spearman"] == pytest.approx(stats.spearmanr(s, a).statistic)
    assert r.mean["rel@1"] == pytest.approx(a[np.argmax(s)] / a.max())
    assert r.ci["kendall"] is None and r.n_targets == 1


def test_rel_at_k_by_hand_and_ties_go_to_the_first_candidate():
    assert rel_at_k([0.1, 0.9, 0.5], [0.8, 0.6, 0.9]) == pytest.approx(0.6 / 0.9)
    assert rel_at_k([0.1, 0.9, 0.5], [0.8, 0.6, 0.9], k=2) == 1.0
    assert rel_at_k([1.0, 1.0], [0.5, 1.0]) == 0.5


def test_weighted_tau_weighs_the_top_more_than_kendall():
    acc = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    swap_top = np.array([5, 6, 4, 3, 2, 1.0])  # the two best swapped
    swap_bottom = np.array([6, 5, 4, 3, 1, 2.0])  # the two worst swapped
    top, bottom = agreement(swap_top, acc, n_boot=0), agreement(swap_bottom, acc, n_boot=0)
    assert top.mean["kendall"] == pytest.approx(bottom.mean["kendall"])
    assert top.mean["weighted_tau"] < bottom.mean["weighted_tau"]
    assert top.mean["rel@1"] == pytest.approx(0.8 / 0.9) and bottom.mean["rel@1"] == 1.0


def test_targets_and_seeds_bootstrap_matches_a_reimplementation():
    rng = np.random.default_rng(3)
    T, S, N = 4, 3, 7
    scores = rng.normal(size=(T, N))
    acc = rng.uniform(0.3, 0.9, size=(T, S, N)) + 0.1 * scores[:, None]
    r = agreement(scores, acc, n_boot=200, seed=11)
    per = [stats.weightedtau(scores[t], acc[t].mean(0)).statistic for t in range(T)]
    assert r.per_target["weighted_tau"] == pytest.approx(per)
    assert r.mean["weighted_tau"] == pytest.approx(np.mean(per))
    draws = np.random.default_rng(11)
    boots = []
    for _ in range(200):
        ti, si = draws.integers(0, T, T), draws.integers(0, S, S)
        boots.append(np.mean([stats.weightedtau(scores[t], acc[t][si].mean(0)).statistic for t in ti]))
    assert r.ci["weighted_tau"] == pytest.approx((np.quantile(boots, 0.025), np.quantile(boots, 0.975)))
    assert r.ci["weighted_tau"][0] <= r.mean["weighted_tau"] <= r.ci["weighted_tau"][1]
    many = agreement({"a": scores, "b": -scores}, acc, n_boot=0)
    assert many["b"].mean["kendall"] == pytest.approx(-many["a"].mean["kendall"])


def test_undefined_targets_are_counted_and_bad_shapes_refused():
    acc = np.array([[0.5, 0.6, 0.7], [0.5, 0.5, 0.5]])  # second target: constant accuracy
    r = agreement(np.array([[1.0, 2, 3], [1, 2, 3]]), acc, n_boot=0)
    assert r.n_undefined["kendall"] == 1 and r.mean["kendall"] == pytest.approx(1.0)
    assert r.summary()["per_target"]["kendall"][1] is None
    with pytest.raises(ValueError, match="'scores' has shape"):
        agreement(np.ones((3, 3)), acc)
    with pytest.raises(ValueError, match="NaN"):
        agreement([1.0, np.nan, 2.0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="at least 2 candidates"):
        agreement([1.0], [0.3])
