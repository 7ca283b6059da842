"""The seed-003 Fig. 4 experiment (`pyadvt experiment geometry`): its building blocks against closed forms and
scikit-learn, the ordering logic, and an end-to-end smoke run through the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from pyadvt.cli import main as cli_main
from pyadvt.data import digits
from pyadvt.experiments import EXPERIMENTS, geometry
from pyadvt.utils.config import merge_config

TINY = merge_config(geometry.QUICK, {"models": 2, "subset_size": 80, "nn": {"epochs": 2, "width": [4, 8]},
                                     "attack": {"steps": 2}, "eps": [0.1, 0.3], "n_eval": 24})


@pytest.fixture(scope="module")
def digits_split():
    return digits(seed=0)


@pytest.mark.parametrize("classes", [None, (3, 8)])
def test_linear_scores_match_sklearn(classes):
    from sklearn.svm import LinearSVC

    train, test = digits(seed=0, classes=classes)
    X = train.x.flatten(1).numpy().astype(np.float64)
    svc = LinearSVC(C=1.0, max_iter=20000, random_state=0).fit(X, train.y.numpy())
    model = geometry.LinearScores(svc.coef_, svc.intercept_)
    pred = model(test.x).argmax(1).numpy()
    np.testing.assert_array_equal(pred, svc.predict(test.x.flatten(1).numpy().astype(np.float64)))
    np.testing.assert_array_equal(geometry.as_multiclass_linear(model).predict(test.x.flatten(1).numpy()), pred)
    if classes is not None:  # binary: the logit difference is the decision function
        logits = model(test.x).detach()
        np.testing.assert_allclose((logits[:, 1] - logits[:, 0]).numpy(),
                                   svc.decision_function(test.x.flatten(1).numpy()), rtol=1e-4, atol=1e-4)


def test_pgd_on_binary_linear_model_reaches_the_closed_form(digits_split):
    """For a binary linear model the L-inf-optimal perturbation is x - y_pm eps sign(w) (clipped); PGD with a
    total travel of 2.5 eps reaches it exactly from any random start."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 64))
    model = geometry.LinearScores(w, np.array([0.1]))
    x = digits_split[1].x[:40]
    y = model(x).argmax(1)
    adv = geometry.adversarial_examples(model, x, y, [0.05, 0.2], steps=10, random_start=True, seed=3)
    assert adv.shape == (2, 40, 1, 8, 8)
    sign_w = torch.from_numpy(np.sign(w)).float().view(1, 1, 8, 8)
    y_pm = (2 * y - 1).float().view(-1, 1, 1, 1)
    for j, eps in enumerate([0.05, 0.2]):
        expected = (x - y_pm * eps * sign_w).clamp(0, 1)
        torch.testing.assert_close(adv[j], expected, atol=1e-6, rtol=0)


def test_random_sign_perturbations(digits_split):
    x = digits_split[1].x[:50]
    eps = [0.05, 0.3]
    p = geometry.random_sign_perturbations(x, eps, seed=4)
    assert p.shape == (2, 50, 1, 8, 8)
    for j, e in enumerate(eps):
        d = p[j] - x
        assert d.abs().max() <= e + 1e-6 and p[j].min() >= 0 and p[j].max() <= 1
    inner = (x > 0.35) & (x < 0.65)  # away from the clip, the step is exactly +-eps
    assert torch.allclose((p[1] - x)[inner].abs(), torch.tensor(0.3))
    signs = torch.sign(p[1] - x)[inner]
    assert abs(signs.mean().item()) < 0.15  # uniform signs
    # batch independence: the first 10 samples get the same signs on their own
    torch.testing.assert_close(geometry.random_sign_perturbations(x[:10], eps, seed=4), p[:, :10])
    assert not torch.equal(geometry.random_sign_perturbations(x, eps, seed=5), p)


def test_transfer_accuracies_and_self_exclusion(digits_split):
    x, y = digits_split[1].x[:30], digits_split[1].y[:30]
    rng = np.random.default_rng(1)
    models = [geometry.LinearScores(rng.normal(size=(10, 64)), rng.normal(size=10)) for _ in range(3)]
    pert = [torch.stack([x, x.flip(0)]) for _ in range(3)]
    acc = geometry.transfer_accuracies(models, pert, y)
    for t, m in enumerate(models):
        assert np.isclose(acc[t, 0, 0], (m(x).argmax(1) == y).double().mean().item())
        assert np.isclose(acc[t, 2, 1], (m(x.flip(0)).argmax(1) == y).double().mean().item())
    masked = geometry.transfer_accuracies(models, pert, y, exclude_self=True)
    assert np.isnan(masked[[0, 1, 2], [0, 1, 2]]).all() and not np.isnan(masked[0, 1]).any()


def _curves(svm_svm, svm_nn, svm_rand, nn_svm, nn_nn, nn_rand):
    c = lambda v: {"mean": [v], "min": [v], "max": [v]}  # noqa: E731
    return {"svm": {"svm": c(svm_svm), "nn": c(svm_nn), "random": c(svm_rand)},
            "nn": {"svm": c(nn_svm), "nn": c(nn_nn), "random": c(nn_rand)}}


def test_ordering_reports_the_paper_pattern_and_its_absence():
    paper = geometry.ordering(_curves(0.2, 0.5, 0.9, 0.85, 0.3, 0.9))
    assert paper["paper_ordering"] and paper["svm_to_svm_strongest"]
    assert np.isclose(paper["nn_to_svm_relative_effect"], 0.4 / 0.7)
    assert np.isclose(paper["svm_to_nn_relative_effect"], 0.05 / 0.6)
    # SVM adversaries as strong as NN ones on NNs: claim (c) fails
    other = geometry.ordering(_curves(0.2, 0.5, 0.9, 0.35, 0.3, 0.9))
    assert not other["svm_to_nn_barely_above_random"] and not other["paper_ordering"]
    # NN adversaries no better than random on SVMs: claim (b) fails
    weak = geometry.ordering(_curves(0.2, 0.88, 0.9, 0.85, 0.3, 0.9))
    assert not weak["nn_to_svm_well_above_random"] and not weak["paper_ordering"]


@pytest.mark.parametrize("override, match", [
    ({"eps": []}, "eps"), ({"eps": [0.0, 0.1]}, "eps"), ({"models": 1}, "models"),
    ({"classes": [3]}, "classes"), ({"subset_size": 5000}, "exceeds"), ({"threads": 0}, "threads"),
    ({"theory_pair": [3, 3]}, "theory_pair"),
])
def test_bad_config_raises(tmp_path, override, match):
    with pytest.raises(ValueError, match=match):
        geometry.run(merge_config(TINY, override), out_dir=tmp_path, progress=False)


def test_end_to_end_cli_smoke(tmp_path, capsys):
    assert EXPERIMENTS["geometry"] == "pyadvt.experiments.geometry"
    threads = torch.get_num_threads()
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    rc = cli_main(["experiment", "geometry", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 0 and torch.get_num_threads() == threads
    assert "paper_ordering" in capsys.readouterr().out
    out = tmp_path / "out"
    result = json.loads((out / "result.json").read_text())
    assert result["kind"] == "geometry" and result["config"]["models"] == 2
    curves = result["data"]["curves"]
    for t in ("svm", "nn"):
        for s in ("svm", "nn", "random"):
            c = curves[t][s]
            assert len(c["mean"]) == 2
            assert all(lo <= m <= hi for lo, m, hi in zip(c["min"], c["mean"], c["max"]))
    assert set(result["summary"]) >= {"paper_ordering", "svm_to_svm_strongest", "svm_to_nn_relative_effect"}
    # white-box PGD on a linear SVM at eps = 0.3 fools it on most images (sanity of the attack wiring)
    assert result["data"]["whitebox"]["svm"][1] < 0.5 * np.mean(result["data"]["clean_accuracy"]["svm"])
    thm9 = result["data"]["theorem9"]  # the shared direction of Theorem 9 holds exactly on real digits
    assert thm9["claim2_holds"] and thm9["size_S"] == sum(thm9["sizes"]) > 0 and (thm9["k"], thm9["l"]) == (3, 8)
    rows = list(csv.reader((out / "geometry.csv").open()))
    assert rows[0][:3] == ["target_family", "perturbation", "eps"] and len(rows) == 1 + 2 * 3 * 2
    assert len(list((out / "figures").glob("*.png"))) == 2 and (out / "report.md").exists()
    assert cli_main(["experiment", "geometry", "--quick", "--set", "models=1", "--out", str(tmp_path / "x"),
                     "--quiet"]) == 2
