"""The registry of transferability estimators and :func:`estimate`, which runs any of them on one
:func:`~pyadvt.selection.extract` pass (docs/theory.md §11).

==================  =========  ===============================================  =====================
name                reads      what it measures                                 source
==================  =========  ===============================================  =====================
``leep``            probs      log-likelihood of the source-label dummy         Nguyen et al. 2020
                               classifier ``P(y | z)``
``nleep``           features   LEEP with Gaussian-mixture posteriors            Li et al. 2021
``nce``             preds      ``-H(Y | Z)`` of the hard source predictions     Tran et al. 2019
``h_score``         features   ``tr(Sigma_f^+ Sigma_g)``                        Bao et al. 2019
``h_score_shrinkage``  features  H-score with a Ledoit-Wolf covariance          Ibrahim et al. 2023
``logme``           features   maximised log evidence of a linear model         You et al. 2021
``transrate``       features   coding-rate gain given the labels                Huang et al. 2022
``gbc``             features   Bhattacharyya overlap of the class Gaussians     Pándy et al. 2022
``sfda``            features   self-challenging shrinkage-LDA posterior         Shao et al. 2022
==================  =========  ===============================================  =====================

Every score is "higher = more transferable".
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from pyadvt.selection._inputs import UndefinedScoreError
from pyadvt.selection.extract import Extracted
from pyadvt.selection.gbc import gbc
from pyadvt.selection.h_score import h_score, h_score_shrinkage
from pyadvt.selection.leep import leep, nleep
from pyadvt.selection.logme import logme
from pyadvt.selection.nce import nce
from pyadvt.selection.sfda import sfda
from pyadvt.selection.transrate import transrate
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

__all__ = ["ESTIMATORS", "estimate"]

#: name -> (the view of the source it reads, the function ``fn(view, y) -> float``)
ESTIMATORS: dict[str, tuple[str, Callable[..., float]]] = {
    "leep": ("probs", leep),
    "nleep": ("features", nleep),
    "nce": ("preds", nce),
    "h_score": ("features", h_score),
    "h_score_shrinkage": ("features", h_score_shrinkage),
    "logme": ("features", logme),
    "transrate": ("features", transrate),
    "gbc": ("features", gbc),
    "sfda": ("features", sfda),
}


def check_estimators(names: Sequence[str] | None) -> list[str]:
    """``names`` (default: every estimator) checked against :data:`ESTIMATORS`."""
    if names is None:
        return list(ESTIMATORS)
    bad = [n for n in names if n not in ESTIMATORS]
    if bad:
        raise InvalidValueError(f"unknown estimator(s) {', '.join(map(repr, bad))}; "
                                f"choose from {', '.join(ESTIMATORS)}")
    return list(names)


@keyword_only("scores")
def estimate(extracted: Extracted, y: Any = None, *, scores: Sequence[str] | None = None) -> dict[str, float | None]:
    """``{name: value}`` of the estimators ``scores`` (default all) on one :func:`extract` result.

    ``y`` defaults to the labels ``extracted`` read from the data. An estimator whose input is
    undefined for these features (e.g. SFDA on features constant within every class) gives ``None``
    and a warning naming it and why, instead of stopping the others. The estimators are those of
    docs/theory.md §11.1-§11.8 (their papers in this module's table).

    Raises:
        ValueError: (``InvalidValueError``) when a name in ``scores`` is not in :data:`ESTIMATORS`, when
            there are no labels (neither ``y`` nor labelled data), when an estimator's view was not
            extracted, or for the estimator's own input checks (labels not ``[n]``, fewer than two
            classes, non-finite features); :class:`UndefinedScoreError` is caught and gives ``None``.
        TypeError: (``InvalidTypeError``) when ``extracted`` is not an :class:`Extracted`.

    Example:
        >>> import torch
        >>> from pyadvt.models import build
        >>> from pyadvt.selection import extract
        >>> ex = extract(build("mlp", num_classes=3), (torch.rand(30, 1, 8, 8), torch.arange(30) % 3))
        >>> sorted(estimate(ex, scores=["leep", "logme"]))
        ['leep', 'logme']
    """
    names = check_estimators(scores)
    if not isinstance(extracted, Extracted):
        raise InvalidTypeError(f"'extracted' must be the Extracted result of pyadvt.selection.extract, got "
                               f"{type(extracted).__name__}")
    labels = extracted.y if y is None else y
    if labels is None:
        raise InvalidValueError("estimate needs the target labels: pass 'y' or extract from labelled data")
    out: dict[str, float | None] = {}
    for name in names:
        view, fn = ESTIMATORS[name]
        data = getattr(extracted, view)
        if data is None:
            raise InvalidValueError(f"estimator {name!r} reads the source's {view!r}; extract them "
                                    f"(extract(..., outputs=(..., {view!r})))")
        try:
            out[name] = fn(data, labels)
        except UndefinedScoreError as exc:
            warnings.warn(f"estimator {name!r} is undefined here: {exc}", RuntimeWarning, stacklevel=2)
            out[name] = None
    return out
