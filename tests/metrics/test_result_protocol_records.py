"""The result protocol (issue 15, item 2) on the records of seed 004 and the tables of seeds 000 / 001:
``Lemma1Result``, ``Theorem2Result`` (pyadvt.bounds.seed004), ``RobustnessRecord`` (pyadvt.metrics.robustness_transfer),
``StatisticsTable`` (pyadvt.metrics.statistics) and ``TransferTable`` (pyadvt.metrics.atm).

Each case has undefined entries (NaN losses, shifts, margins, a constant factor). The expected
``valid``, ``n_undefined`` and headline ``value`` are worked out here from the fields with plain
Python (loops, ``math``), sklearn for an R^2; ``summary()`` must be plain JSON-able Python holding
``"n_undefined"`` and every key it had before the protocol.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from torch import nn

from pyadvt.metrics import StatisticsTable, TransferTable, statistics_table, transfer_table
from pyadvt.bounds.seed004 import Lemma1Result, Theorem2Result
from pyadvt.metrics.robustness_transfer import RobustnessRecord, evaluate_robustness_transfer
from tests.metrics.test_result_protocol import _NaNLogitsAbove  # NaN logits where the first pixel > 0.99

NAN, INF = float("nan"), float("inf")


def _plain(obj) -> bool:
    """Whether ``obj`` is made of plain Python values only (what ``json.dumps`` writes as is)."""
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return all(_plain(v) for v in obj)
    return obj is None or type(obj) in (bool, int, float, str)


def _check_summary(s: dict, n_undefined: int, old_keys: set[str]) -> None:
    assert _plain(s), s
    json.dumps(s)
    assert s["n_undefined"] == n_undefined
    assert set(s) == old_keys | {"n_undefined"}


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else NAN


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-12)


# ---- RobustnessRecord / Lemma1Result / Theorem2Result ------------------------------------------------

CLEAN = [0.5, NAN, 0.25, 1.0, 0.75]
ADV = [1.5, 2.0, 0.5, 1.0, 1.25]
REP = [0.2, 0.1, INF, 0.4, 0.3]
ADV_SHIFT = [0.1, 0.2, 0.3, 0.5, 0.1]
TIGHT = [0.3, 0.3, 0.3, 0.3, 0.3]
FEATS = [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [NAN, 0.0], [-1.0, 2.0]]
W = [[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]
Y = [0, 1, 2, 0, 1]
VALID = [True, False, False, False, True]  # sample 1: NaN clean loss; 2: infinite shift; 3: a NaN feature


def _record(**kw) -> RobustnessRecord:
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    correct = torch.tensor([True, True, False, True, False])
    adv_correct = torch.tensor([False, True, False, True, False])
    return RobustnessRecord(eps=0.1, norm="linf", loss="ce", clean_loss=t(CLEAN), adv_loss=t(ADV), rep_shift=t(REP),
                            adv_shift=t(ADV_SHIFT), tight=t(TIGHT), feats=t(FEATS), y=torch.tensor(Y),
                            correct=correct, adv_correct=adv_correct, W=t(W), b=torch.zeros(3, dtype=torch.float64),
                            **kw)


def test_robustness_record_valid_marks_every_non_finite_quantity():
    rec = _record()
    assert rec.valid.dtype == torch.bool and rec.valid.tolist() == VALID
    assert isinstance(rec.n_undefined, int) and rec.n_undefined == VALID.count(False) == 3
    # the headline is the AS score: the mean of the finite representation shifts (a lower bound)
    expected = _mean(v for v in REP if math.isfinite(v))
    assert isinstance(rec.value, float) and rec.value == pytest.approx(expected) == pytest.approx(0.25)
    s = rec.summary()
    _check_summary(s, 3, {"eps", "norm", "loss", "sensitivity", "n", "as_score", "as_bound", "clean_loss",
                          "adv_loss", "clean_accuracy", "robust_accuracy"})
    assert s["n"] == 5 and s["as_score"] == rec.value and s["as_bound"] == "lower"
    assert math.isnan(s["clean_loss"])  # a NaN sample is counted, not dropped, in Lemma 1's means
    assert s["adv_loss"] == pytest.approx(_mean(ADV))
    assert s["clean_accuracy"] == pytest.approx(3 / 5) and s["robust_accuracy"] == pytest.approx(2 / 5)


def test_robustness_record_all_finite_has_no_undefined_sample():
    rec = _record()
    rec.clean_loss[1], rec.rep_shift[2], rec.feats[3, 0] = 0.5, 0.6, 0.0
    assert rec.valid.all() and rec.n_undefined == 0 and rec.summary()["n_undefined"] == 0
    assert rec.value == pytest.approx(_mean([0.2, 0.1, 0.6, 0.4, 0.3]))


@pytest.mark.parametrize("q", ["inf", 2])
def test_lemma1_result_headline_is_lhs_and_counts_the_records_undefined_samples(q):
    rec = _record()
    rec.clean_loss[1] = 0.5  # one finite version (to compare the numbers) ...
    lem = rec.lemma1(q)
    # |mean adv - mean clean| / (L ||W||), with L and ||W|| worked out here
    L = 2.0 if q == "inf" else math.sqrt(2.0)
    w_norm = (max(math.hypot(*row) for row in W) if q == "inf"
              else float(np.linalg.norm(np.array(W), ord=2)))
    clean = [0.5 if i == 1 else v for i, v in enumerate(CLEAN)]
    lhs = abs(_mean(ADV) - _mean(clean)) / (L * w_norm)
    assert isinstance(lem, Lemma1Result) and not hasattr(lem, "valid")  # an aggregate: no per-sample mask
    assert isinstance(lem.value, float) and lem.value == pytest.approx(lhs, rel=1e-12) and lem.value == lem.lhs
    assert lem.n_undefined == 2  # the infinite shift and the NaN feature remain
    s = lem.summary()
    fields = {"q", "loss", "clean_loss", "adv_loss", "lipschitz", "w_norm", "lhs", "as_score", "rhs", "held",
              "held_as_score", "tight_lhs", "tight_rhs", "tight_held", "diff_loss"}
    _check_summary(s, 2, fields)
    assert s["diff_loss"] == pytest.approx(abs(_mean(ADV) - _mean(clean)))
    # ... and the NaN clean loss of the record makes the means NaN, with the count saying why
    nan_lem = _record().lemma1(q)
    assert nan_lem.n_undefined == 3 and math.isnan(nan_lem.value) and nan_lem.held is False


def test_lemma1_result_built_by_hand_has_no_undefined_sample():
    lem = Lemma1Result("inf", "ce", 0.5, 0.75, 2.0, 1.0, 0.125, 0.2, 0.2, True, True, 0.25, 0.3, True)
    assert lem.n_undefined == 0 and lem.value == 0.125 and lem.summary()["n_undefined"] == 0


def test_theorem2_result_valid_is_finite_sensitivity_and_a_margin_that_is_not_nan():
    sens = [0.1, NAN, 0.2, 0.3, INF, 0.4]
    margin = [0.5, 0.4, NAN, INF, 1.0, -INF]
    fulfilled = torch.tensor([s < m for s, m in zip(sens, margin)])
    correct = torch.tensor([True, True, False, True, True, True])
    robust = torch.tensor([True, False, False, False, True, False])
    res = Theorem2Result(fulfilled, correct, robust, torch.tensor(sens, dtype=torch.float64),
                         torch.tensor(margin, dtype=torch.float64))
    # +-inf margins are defined (an unreachable class); NaN sensitivity / margin and an infinite shift are not
    assert res.valid.tolist() == [True, False, False, True, False, True]
    assert res.n_undefined == 3
    # the headline: the share of all N samples certified (0.1 < 0.5 and 0.3 < inf): 2 of 6
    assert fulfilled.tolist() == [True, False, False, True, False, False]
    assert isinstance(res.value, float) and res.value == pytest.approx(2 / 6) == res.prop_fulfilled
    s = res.summary()
    _check_summary(s, 3, {"n", "clean_accuracy", "robust_accuracy", "prop_fulfilled", "robust_among_fulfilled",
                          "fulfilled_but_not_robust"})
    assert s["prop_fulfilled"] == res.value and s["n"] == 6
    assert s["robust_among_fulfilled"] == pytest.approx(1 / 2) and s["fulfilled_but_not_robust"] == 1


class _NaNFeaturesBelow(nn.Module):
    """A split model whose features are NaN for the inputs with a first pixel below 0.05."""

    def __init__(self):
        super().__init__()
        self.g = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
        self.head = nn.Linear(3, 2).double()

    def features(self, x):
        f = self.g(x)
        return torch.where((x.flatten(1)[:, 0] < 0.05)[:, None], torch.full_like(f, NAN), f)

    def forward(self, x):
        return self.head(self.features(x))


def test_an_evaluation_with_an_undefined_sample_flags_it_everywhere():
    x = 0.2 + 0.6 * torch.rand(6, 1, 2, 2, dtype=torch.float64)
    x[2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rec = evaluate_robustness_transfer(_NaNFeaturesBelow(), x, torch.tensor([0, 1] * 3), 0.05, steps=2,
                                           rep_steps=2, restarts=1)
    expected = [i != 2 for i in range(6)]
    assert rec.valid.tolist() == expected and rec.n_undefined == 1
    assert rec.theorem2().valid.tolist() == expected and rec.theorem2().n_undefined == 1
    assert rec.lemma1().n_undefined == 1 and rec.summary()["n_undefined"] == 1
    assert rec.value == pytest.approx(_mean(float(v) for i, v in enumerate(rec.rep_shift) if i != 2))


# ---- StatisticsTable ----------------------------------------------------------------------------------

ASR = [0.5, 0.62, 0.71, 0.8, 0.93, 0.85]
ACC = [0.9, 0.8, 0.9, 0.8, 0.9, 0.7]
FP = [1.0, 0.9, 0.95, 0.9, 1.0, 0.97]
MS = [5.0, 4.0, 3.0, 2.0, 1.0, 1.5]
GS = [0.1, 0.3, 0.2, 0.5, 0.4, 0.45]


def _r2(y, *cols) -> float:
    X = np.column_stack(cols)
    return float(LinearRegression().fit(X, y).score(X, y))


def test_statistics_table_headline_is_r2_of_smoothness_and_similarity():
    t = statistics_table(ASR, ACC, FP, MS, GS)
    assert not hasattr(t, "valid")  # an aggregate over the surrogates (their values must be finite)
    assert t.n_undefined == 0
    assert isinstance(t.value, float) and t.value == pytest.approx(_r2(ASR, MS, GS), rel=1e-9)
    assert t.value == t.r2_smooth_sim
    s = t.summary()
    _check_summary(s, 0, {"r_accuracy", "r_fooling", "r_smoothness", "r_similarity", "R2_1", "R2_2", "n"})
    assert s["R2_1"] == t.value and s["n"] == 6


def test_statistics_table_counts_the_undefined_statistics():
    with pytest.warns(RuntimeWarning):
        t = statistics_table(ASR, [0.9] * 6, FP, MS, GS)  # a constant accuracy: its r is undefined
    assert math.isnan(t.r["accuracy"]) and t.n_undefined == 1
    assert t.value == pytest.approx(_r2(ASR, MS, GS), rel=1e-9)
    _check_summary(t.summary(), 1, {"r_accuracy", "r_fooling", "r_smoothness", "r_similarity", "R2_1", "R2_2", "n"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        const = statistics_table([0.5] * 6, ACC, FP, MS, GS)  # a constant ASR: every statistic undefined
    assert const.n_undefined == 4 + 2 and math.isnan(const.value)
    assert StatisticsTable().n_undefined == 2 and math.isnan(StatisticsTable().value)  # empty: two NaN R^2


# ---- TransferTable -----------------------------------------------------------------------------------

def test_transfer_table_valid_samples_and_off_diagonal_rate():
    loss = torch.rand(3, 3, 5, dtype=torch.float64)
    loss[0, 1, 2] = NAN
    loss[2, 2, 4] = INF
    g = torch.Generator().manual_seed(1)
    success = torch.rand(3, 3, 5, generator=g) > 0.5
    table = TransferTable(loss=loss, success=success)
    assert table.valid.tolist() == [True, True, False, True, False] and table.n_undefined == 2
    expected = _mean(float(success[i, t, s]) for i in range(3) for t in range(3) for s in (0, 1, 3) if i != t)
    assert isinstance(table.value, float) and table.value == pytest.approx(expected, rel=1e-12)
    assert table.value == table.transfer_rate
    s = table.summary()
    _check_summary(s, 2, {"n_sources", "n_targets", "n", "transfer_rate"})
    assert (s["n_sources"], s["n_targets"], s["n"]) == (3, 3, 5)


def test_transfer_table_without_an_off_diagonal_pair_or_valid_sample_has_a_nan_rate():
    one = TransferTable(loss=torch.zeros(1, 1, 3), success=torch.ones(1, 1, 3, dtype=torch.bool))
    assert one.n_undefined == 0 and math.isnan(one.value)
    none_valid = TransferTable(loss=torch.full((2, 2, 2), NAN), success=torch.ones(2, 2, 2, dtype=torch.bool))
    assert none_valid.n_undefined == 2 and math.isnan(none_valid.value)
    assert none_valid.summary()["n_undefined"] == 2


def test_transfer_table_of_a_model_with_nan_logits_flags_that_sample():
    from pyadvt.attacks import FGSM

    models = [nn.Sequential(nn.Flatten(), nn.Linear(12, 3)) for _ in range(2)]
    models[1] = _NaNLogitsAbove(models[1])
    x = 0.2 + 0.6 * torch.rand(4, 3, 2, 2)
    x[1, 0, 0, 0] = 1.0  # only this sample can reach the NaN threshold (the others stay <= 0.8 + eps)
    y = torch.tensor([0, 1, 2, 0])
    table = transfer_table(models, x, [y, y], lambda m: FGSM(m, eps=0.05))
    assert table.valid.tolist() == [True, False, True, True] and table.n_undefined == 1
    expected = _mean(float(table.success[i, t, s]) for i, t in ((0, 1), (1, 0)) for s in (0, 2, 3))
    assert table.value == pytest.approx(expected, rel=1e-12)
