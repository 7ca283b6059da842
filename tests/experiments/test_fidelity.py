"""The papers' choices are the experiments' defaults (issue 19): seed 004's AS alone with a converged
representation attack, seed 002's pseudo-inverse influence (helpful and harmful, over seeds), seed 000's
direction of effect per eps, seed 001's rise-then-fall over usable surrogates, and --dataset."""

from __future__ import annotations

import argparse
import inspect
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from pyadvt.attacks.representation import RepresentationAttack
from pyadvt.experiments import mixture, robust_transfer, robustness_transfer, surrogates
from pyadvt.experiments._cli import dataset_layer, experiment_cli
from pyadvt.experiments._data import experiment_data, select_classes
from pyadvt.metrics.robustness_transfer import (ConvergedRepresentationAttack, as_score,
                                                evaluate_robustness_transfer)
from pyadvt.transfer.influence import head_influence

FASHION = "/usr/share/datasets/fashion-mnist"


class Split(nn.Module):
    def __init__(self, d_in=8, d=5, C=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.g = nn.Sequential(nn.Linear(d_in, 16), nn.Tanh(), nn.Linear(16, d))
        self.head = nn.Linear(d, C)

    def features(self, x):
        return self.g(x)

    def forward(self, x):
        return self.head(self.g(x))


class LinearSplit(nn.Module):
    def __init__(self, d_in=6, d=4, C=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.g = nn.Linear(d_in, d, bias=False)
        self.head = nn.Linear(d, C)

    def features(self, x):
        return self.g(x)

    def forward(self, x):
        return self.head(self.g(x))


# ------------------------------------------------------------------ seed 004: AS alone, converged attack

def test_converged_attack_reaches_the_exact_max_of_a_linear_map_and_only_grows():
    """L2 ball around interior points, g linear: max ||G d|| = eps ||G||_2 (closed form)."""
    model = LinearSplit()
    x = 0.4 + 0.2 * torch.rand(12, 6)            # eps 0.05 stays inside [0, 1]
    eps = 0.05
    exact = eps * torch.linalg.matrix_norm(model.g.weight.detach(), 2).item()
    atk = ConvergedRepresentationAttack(model, eps, steps=60, restarts=4, alpha=eps / 4, norm="l2", features=True)
    x_adv = atk(x)
    assert float(atk.last_distance.max()) <= exact * (1 + 1e-5)
    assert float(atk.last_distance.min()) >= 0.97 * exact
    assert float((x_adv - x).norm(dim=1).max()) <= eps * (1 + 1e-5)
    one = RepresentationAttack(model, eps, steps=60, alpha=eps / 4, norm="l2", features=True)  # restart 0 alone
    one(x)
    assert bool((atk.last_distance >= one.last_distance - 1e-7).all())
    assert 1 <= int(atk.last_restarts.min()) and int(atk.last_restarts.max()) <= 4


def test_converged_attack_rule_is_per_sample_and_batch_independent():
    model = Split()
    x = torch.rand(10, 8)
    full = ConvergedRepresentationAttack(model, 0.1, steps=8, restarts=5, features=True)
    full(x)
    part = ConvergedRepresentationAttack(model, 0.1, steps=8, restarts=5, features=True)
    part(x[3:7])
    assert torch.allclose(full.last_distance[3:7], part.last_distance, atol=1e-6)
    assert torch.equal(full.last_restarts[3:7], part.last_restarts)
    # without random starts every restart is the same run: the rule stops after the second
    det = ConvergedRepresentationAttack(model, 0.1, steps=8, restarts=5, random_start=False, features=True)
    det(x)
    assert int(det.last_restarts.max()) == 1
    with pytest.raises(ValueError, match="rtol"):
        ConvergedRepresentationAttack(model, 0.1, rtol=1.5)
    with pytest.raises(ValueError, match="restarts"):
        ConvergedRepresentationAttack(model, 0.1, restarts=0)


def _margins(W, b, g, y):
    """eq. 1's RHS, re-implemented: min over j != y of ((w_y - w_j).g + b_y - b_j) / ||w_y - w_j||."""
    out = []
    for i in range(len(y)):
        c = int(y[i])
        vals = [float(((W[c] - W[j]) @ g[i] + b[c] - b[j]) / (W[c] - W[j]).norm()) for j in range(W.shape[0]) if j != c]
        out.append(min(vals))
    return torch.tensor(out, dtype=torch.float64)


def test_theorem2_and_lemma1_default_to_the_papers_as_and_max_is_an_option():
    model = Split(seed=3)
    x, y = torch.rand(40, 8), torch.randint(0, 3, (40,))
    rec = evaluate_robustness_transfer(model, x, y, 0.2, steps=5, rep_steps=6, restarts=2)
    assert rec.sensitivity_rule == "as" and torch.equal(rec.sensitivity, rec.rep_shift)
    W, b = model.head.weight.detach().double(), model.head.bias.detach().double()
    with torch.no_grad():
        g = model.features(x).double()
    t2 = rec.theorem2()
    assert torch.equal(t2.fulfilled, rec.rep_shift.double() < _margins(W, b, g, y))
    lem = rec.lemma1("inf")
    assert lem.rhs == pytest.approx(float(rec.rep_shift.double().mean())) and lem.held == lem.held_as_score
    mx = evaluate_robustness_transfer(model, x, y, 0.2, steps=5, rep_steps=6, restarts=2, sensitivity="max")
    assert torch.equal(mx.sensitivity, torch.maximum(mx.rep_shift, mx.adv_shift))
    # the max rule is the stricter one and, by construction, never certifies a point its adversary breaks
    assert bool((mx.theorem2().fulfilled <= t2.fulfilled).all())
    assert mx.theorem2().summary()["fulfilled_but_not_robust"] == 0
    with pytest.raises(ValueError, match="sensitivity"):
        evaluate_robustness_transfer(model, x, y, 0.2, sensitivity="min")


def test_as_score_defaults_are_the_stronger_attack_and_report_a_lower_bound():
    sig = inspect.signature(as_score).parameters
    assert (sig["steps"].default, sig["restarts"].default, sig["rtol"].default) == (100, 5, 0.005)
    sig = inspect.signature(evaluate_robustness_transfer).parameters
    assert (sig["rep_steps"].default, sig["restarts"].default, sig["sensitivity"].default) == (100, 5, "as")
    model = Split()
    res = as_score(model, torch.rand(6, 8), 0.1, steps=4, restarts=3)
    s = res.summary()
    assert s["bound"] == "lower" and s["attack"]["steps"] == 4 and s["attack"]["max_restarts"] == 3
    assert 1 <= s["attack"]["restarts_run_max"] <= 3
    weak = as_score(model, torch.rand(6, 8, generator=torch.Generator().manual_seed(0)), 0.1, steps=4, restarts=1)
    strong = as_score(model, torch.rand(6, 8, generator=torch.Generator().manual_seed(0)), 0.1, steps=4, restarts=4)
    assert bool((strong.per_sample >= weak.per_sample - 1e-7).all())
    assert robustness_transfer.DEFAULTS["sensitivity"] == "as"
    assert robustness_transfer.DEFAULTS["rep_attack"] == {"steps": 100, "restarts": 5, "rtol": 0.005}


# ------------------------------------------------------------------ seed 002: pseudo-inverse influence

def _reference_influence(W, b, phi_tr, y_tr, phi_te, y_te, cutoff):
    """Autograd gradients/Hessian of the mean CE w.r.t. [W | b] and an eigh pseudo-inverse (numpy)."""
    C, d = W.shape
    theta0 = torch.cat([W, b[:, None]], 1).double().flatten()

    def loss(theta, phi, y):
        T = theta.view(C, d + 1)
        return F.cross_entropy(phi.double() @ T[:, :d].T + T[:, d], y, reduction="none")

    H = torch.autograd.functional.hessian(lambda t: loss(t, phi_tr, y_tr).mean(), theta0).numpy()
    def grads(phi, y):
        return torch.stack([torch.autograd.functional.jacobian(lambda t: loss(t, phi[i:i + 1], y[i:i + 1]).sum(),
                                                               theta0) for i in range(len(y))]).numpy()

    gtr, gte = grads(phi_tr, y_tr), grads(phi_te, y_te)
    w, V = np.linalg.eigh((H + H.T) / 2)
    inv = np.where(np.abs(w) > cutoff, 1.0 / np.where(w == 0, 1.0, w), 0.0)
    return -(gte @ (V * inv) @ V.T @ gtr.T)


def test_influence_default_is_the_undamped_pseudo_inverse():
    sig = inspect.signature(head_influence).parameters
    assert (sig["damping"].default, sig["solver"].default, sig["pinv_cutoff"].default) == (0.0, "pinv", 1e-20)
    torch.manual_seed(0)
    W, b = torch.randn(3, 4).double(), torch.randn(3).double()
    phi, y = torch.randn(30, 4).double(), torch.randint(0, 3, (30,))
    got = head_influence((W, b), phi, y, phi[:5], y[:5], pinv_cutoff=1e-8)
    ref = _reference_influence(W, b, phi, y, phi[:5], y[:5], 1e-8)
    assert np.allclose(got.numpy(), ref, rtol=1e-6, atol=1e-8)
    # the damped Cholesky solve is a different number (it was the default before)
    damped = head_influence((W, b), phi, y, phi[:5], y[:5], damping=0.01, solver="cholesky")
    assert not torch.allclose(damped, got, rtol=1e-3)
    with pytest.raises(ValueError, match="solver"):
        head_influence((W, b), phi, y, phi[:5], y[:5], solver="lu")


def test_robust_transfer_influence_defaults_and_summary_cis():
    inf = robust_transfer.DEFAULTS["influence"]
    assert inf["solver"] == "pinv" and inf["damping"] == 0.0 and inf["pinv_cutoff"] == 1e-20
    assert len(inf["seeds"]) >= 5 and "head" in inf["blocks"] and len(inf["blocks"]) >= 2
    rng = np.random.default_rng(0)
    seeds = [0, 1, 2, 3, 4]
    cells = {("influence", n, "head", s): {by: {"1": float(rng.uniform())} for by in ("helpful", "harmful")}
             for n in ("natural", "at_l2") for s in seeds}
    rows = robust_transfer.influence_summary(cells, {"sources": ["natural", "at_l2"], "blocks": ["head"],
                                                     "ks": [1], "seeds": seeds})
    assert [(r[0], r[2]) for r in rows] == [("natural", "helpful"), ("natural", "harmful"),
                                           ("at_l2", "helpful"), ("at_l2", "harmful")]
    for r in rows:
        v = np.array([cells[("influence", r[0], "head", s)][r[2]]["1"] for s in seeds])
        lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
        assert r[4] == pytest.approx(v.mean()) and (r[5], r[6]) == (pytest.approx(lo), pytest.approx(hi))
        if r[0] == "at_l2":
            base = np.array([cells[("influence", "natural", "head", s)][r[2]]["1"] for s in seeds])
            dlo, dhi = stats.t.interval(0.95, 4, loc=(v - base).mean(), scale=stats.sem(v - base))
            assert r[7] == pytest.approx((v - base).mean()) and r[8] == pytest.approx(dlo) and r[9] == pytest.approx(dhi)
        else:
            assert r[7] is None


# ------------------------------------------------------------------ seed 000 / 001 verdicts

def _row(y, r, ci):
    return {"x": "fraction", "y": y, "n": 15, "spearman": r, "spearman_ci": ci, "pearson": r, "pearson_ci": ci}


def test_mixture_direction_is_judged_per_eps_with_its_ci():
    adv = ["tau1", "eq2_loss@0.03", "eq2_loss@0.2"]
    corr = [_row("tau1", 0.7, [0.4, 0.9]), _row("eq2_loss@0.03", -0.47, [-0.82, -0.14]),
            _row("eq2_loss@0.2", 0.2, [-0.3, 0.6]), _row("probe_accuracy", 0.7, [0.3, 0.9]),
            _row("probe_loss", -0.8, [-0.95, -0.5])]
    v = mixture.direction_verdicts(corr, adv)
    assert {k: x["verdict"] for k, x in v.items()} == {
        "tau1": "holds", "eq2_loss@0.03": "reversed", "eq2_loss@0.2": "undetermined",
        "probe_accuracy": "holds", "probe_loss": "holds"}
    assert v["probe_loss"]["expected"] == "-"
    d = mixture.direction_of_effect(corr, adv)
    assert d["eq2_loss@0.03"] is False            # the small eps counts: direction_holds = all of them
    assert mixture.direction_verdicts([_row("tau1", None, None), _row("probe_accuracy", 0.1, None),
                                       _row("probe_loss", 0.0, [0.0, 0.0])], ["tau1"])["tau1"]["verdict"] == "undetermined"


def test_surrogate_rise_then_fall_ignores_unusable_surrogates():
    at_x, curve = [0.0, 0.5, 1.0, 2.0], [0.30, 0.40, 0.45, 0.20]
    acc = [0.95, 0.93, 0.85, 0.12]                # AT-2: 12 % clean accuracy
    kept = surrogates.rise_then_fall(curve, at_x, acc, 0.5)
    assert kept["rise_then_fall"] is False and kept["dropped_eps"] == [2.0] and kept["largest_kept_eps"] == 1.0
    assert surrogates.rise_then_fall(curve, at_x, acc, 0.0)["rise_then_fall"] is True
    assert surrogates.rise_then_fall(curve, at_x, [0.95, 0.2, 0.2, 0.2], 0.5)["rise_then_fall"] is None
    assert surrogates.DEFAULTS["min_clean_accuracy"] == 0.5


# ------------------------------------------------------------------ --dataset

def test_select_classes_relabels_in_the_given_order():
    from pyadvt.data import TensorData

    data = TensorData(torch.arange(12.0).view(12, 1, 1, 1) / 12, torch.arange(12) % 4, 4)
    sub = select_classes(data, [3, 1])
    assert sub.num_classes == 2 and sub.y.tolist() == [1, 0, 1, 0, 1, 0]
    assert torch.equal(sub.x.flatten(), torch.tensor([1, 3, 5, 7, 9, 11]) / 12)
    with pytest.raises(ValueError, match="classes"):
        select_classes(data, [4])


def test_digits_spec_is_the_digits_split():
    from pyadvt.data import digits

    a_tr, a_te = experiment_data({"name": "digits"}, seed=2, classes=[0, 5])
    b_tr, b_te = digits(seed=2, classes=[0, 5])
    assert torch.equal(a_tr.x, b_tr.x) and torch.equal(a_te.y, b_te.y)
    with pytest.raises(ValueError, match="dataset"):
        experiment_data({"name": "imagenet"})


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_subsets_are_balanced_28x28():
    tr, te = experiment_data({"name": "fashion-mnist", "train_size": 500, "test_size": 100}, seed=0,
                             classes=[5, 6, 7, 8, 9])
    assert tr.x.shape == (500, 1, 28, 28) and te.x.shape == (100, 1, 28, 28)
    assert tr.y.bincount().tolist() == [100] * 5 and te.y.bincount().tolist() == [20] * 5
    assert float(tr.x.min()) >= 0 and float(tr.x.max()) <= 1 and tr.num_classes == 5


def test_dataset_layer_and_cli_flag_reach_the_run():
    presets = {"fashion-mnist": {"scale": {"eps": 0.3}, "budget": {"epochs": 2}}}
    assert dataset_layer(presets, "Fashion_MNIST", "/d") == {"eps": 0.3, "epochs": 2,
                                                             "dataset": {"name": "fashion-mnist", "root": "/d"}}
    assert dataset_layer(presets, "mnist", quick=True) == {"dataset": {"name": "mnist", "root": None}}
    seen = {}

    def run(cfg, out_dir, progress):
        seen.update(cfg=cfg, out=str(out_dir))
        return {"summary": {}}

    defaults = {"eps": 0.1, "epochs": 9, "dataset": {"name": "digits", "root": None}}
    add, main = experiment_cli("toy", run, defaults, dict(defaults, epochs=1), presets=presets)
    parser = argparse.ArgumentParser()
    add(parser)
    main(parser.parse_args(["--dataset", "fashion-mnist", "--set", "epochs=4", "--quiet"]))
    assert seen["cfg"] == {"eps": 0.3, "epochs": 4, "dataset": {"name": "fashion-mnist", "root": None}}
    assert seen["out"] == "results/toy-fashion-mnist"
    main(parser.parse_args(["--dataset", "fashion-mnist", "--quick", "--quiet"]))
    assert seen["cfg"]["epochs"] == 1 and seen["cfg"]["eps"] == 0.3


@pytest.mark.parametrize("module", [mixture, robust_transfer, robustness_transfer, surrogates])
def test_every_experiment_has_a_fashion_preset_that_fits_its_schema(module):
    from pyadvt.utils.config import merge_config

    assert module.DEFAULTS["dataset"]["name"] == "digits"
    layer = dataset_layer(module.DATASET_PRESETS, "fashion-mnist")
    cfg = merge_config(module.DEFAULTS, layer)   # strict: every preset key exists in the schema
    assert cfg["dataset"]["name"] == "fashion-mnist"


def test_geometry_preset_fits_its_schema():
    from pyadvt.experiments import geometry
    from pyadvt.utils.config import merge_config

    cfg = merge_config(geometry.DEFAULTS, dataset_layer(geometry.DATASET_PRESETS, "fashion-mnist"))
    assert cfg["nn"]["arch"] == "lenet" and cfg["dataset"]["train_size"] == 5000
    assert math.isclose(max(cfg["eps"]), 0.3)
