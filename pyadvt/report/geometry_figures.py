"""Figure specs of the geometry experiment (seed 003, Fig. 4; docs/theory.md §6): one accuracy-vs-eps
panel per target family, a curve per perturbation source with its min-max band over the target models.

The specs are plain dicts that :func:`pyadvt.report.plot` (called by ``publish``) draws.

Example:
    >>> band = {"mean": [0.9, 0.5], "min": [0.8, 0.4], "max": [1.0, 0.6]}
    >>> specs = fig4_specs({"svm": {"svm": band, "random": band}}, [0.1, 0.3], 3)
    >>> specs[0]["title"], sorted(specs[0]["series"])
    ('SVM targets (mean, min-max over 3 models)', ['SVM adversaries', 'random signs'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["PERTURBATION_LABELS", "fig4_specs"]

#: legend label of each perturbation source
PERTURBATION_LABELS = {"svm": "SVM adversaries", "nn": "NN adversaries", "random": "random signs"}


def fig4_specs(curves: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], eps: Sequence[float],
               n_models: int) -> list[dict]:
    """One ``"curves"`` figure spec per target family of ``curves[family][source] = {"mean", "min", "max"}``
    (each ``[E]``, accuracies over the budgets ``eps``); ``n_models`` = target models per family (``K``)."""
    specs = []
    for family, by_source in curves.items():
        label = {s: PERTURBATION_LABELS.get(s, s) for s in by_source}
        specs.append({"type": "curves", "x": list(eps),
                      "series": {label[s]: band["mean"] for s, band in by_source.items()},
                      "lower": {label[s]: band["min"] for s, band in by_source.items()},
                      "upper": {label[s]: band["max"] for s, band in by_source.items()},
                      "title": f"{'SVM' if family == 'svm' else 'NN'} targets (mean, min-max over {n_models} models)",
                      "xlabel": "L-inf eps", "ylabel": "accuracy"})
    return specs
