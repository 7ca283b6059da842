"""D11: `experiment geometry` stores cells and resumes: a rerun after a crash recomputes only what is missing
and gives the same result as an uninterrupted run."""

import pytest

from pyadvt.experiments import geometry
from pyadvt.utils.config import merge_config

TINY = merge_config(geometry.QUICK, {"models": 2, "subset_size": 80, "nn": {"epochs": 1, "width": [4, 8]},
                                     "attack": {"steps": 2}, "eps": [0.1, 0.3], "n_eval": 16})


def _data(result):
    d = dict(result["data"])
    return {k: d[k] for k in ("curves", "whitebox", "clean_accuracy", "theorem9")}


def test_crash_then_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    fresh = geometry.run(TINY, out_dir=tmp_path / "fresh", progress=False)

    calls = {"nn": 0, "pgd": 0}
    real_nn, real_pgd = geometry.train_nn, geometry.adversarial_examples

    def crashing_nn(*a, **k):
        calls["nn"] += 1
        if calls["nn"] == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second network trains
        return real_nn(*a, **k)

    monkeypatch.setattr(geometry, "train_nn", crashing_nn)
    with pytest.raises(KeyboardInterrupt):
        geometry.run(TINY, out_dir=tmp_path / "resumed", progress=False)
    stored = list((tmp_path / "resumed" / "cells").glob("*.json"))
    assert len(stored) == 3  # svm 0, nn 0, svm 1 (cell order: svm 0, nn 0, svm 1, nn 1); nn 1 died

    def counting_nn(*a, **k):
        calls["nn"] += 1
        return real_nn(*a, **k)

    def counting_pgd(*a, **k):
        calls["pgd"] += 1
        return real_pgd(*a, **k)

    calls.update(nn=0, pgd=0)
    monkeypatch.setattr(geometry, "train_nn", counting_nn)
    monkeypatch.setattr(geometry, "adversarial_examples", counting_pgd)
    resumed = geometry.run(TINY, out_dir=tmp_path / "resumed", progress=False)
    assert calls == {"nn": 1, "pgd": 4}  # only the missing network; all PGD cells were missing
    assert _data(resumed) == _data(fresh)

    # a third run computes nothing at all
    for name in ("train_svm", "train_nn", "adversarial_examples", "theorem9_on_digits"):
        monkeypatch.setattr(geometry, name, lambda *a, **k: pytest.fail("recomputed a finished cell"))
    again = geometry.run(TINY, out_dir=tmp_path / "resumed", progress=False)
    assert _data(again) == _data(fresh)


def test_changing_eps_reuses_the_trained_models(tmp_path, monkeypatch):
    geometry.run(TINY, out_dir=tmp_path, progress=False)
    for name in ("train_svm", "train_nn"):
        monkeypatch.setattr(geometry, name, lambda *a, **k: pytest.fail("retrained a model"))
    r = geometry.run(merge_config(TINY, {"eps": [0.2]}), out_dir=tmp_path, progress=False)
    assert r["data"]["eps"] == [0.2]
