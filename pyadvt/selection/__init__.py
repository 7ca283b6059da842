"""Choosing a source or a surrogate: the field's transferability estimators, adversarial
transferability rankings, and agreement with ground truth measured as the field does
(docs/theory.md §11).

* Estimators (higher = more transferable; float64 inside, validated inputs): :func:`leep`,
  :func:`nleep`, :func:`nce`, :func:`h_score`, :func:`h_score_shrinkage`, :func:`logme`,
  :func:`transrate`, :func:`gbc`, :func:`sfda`; the registry :data:`ESTIMATORS` and :func:`estimate`.
* :func:`extract`: a source's features / softmax / hard predictions over a tensor, ``Dataset`` or
  ``DataLoader``, one batch at a time.
* :func:`rank_sources` / :func:`rank_surrogates`: one row per candidate with every score;
  :func:`score_source` / :func:`score_surrogate` score one candidate (:class:`SourceScore`,
  :class:`SurrogateScore`).
* :func:`agreement`: Kendall tau, weighted tau, Pearson, Spearman and rel@1 with bootstrap CIs.

Example:
    >>> import torch
    >>> from pyadvt.models import build
    >>> from pyadvt.selection import extract, logme
    >>> ex = extract(build("mlp", num_classes=3), (torch.rand(40, 1, 8, 8), torch.arange(40) % 3))
    >>> isinstance(logme(ex.features, ex.y), float)
    True
"""

from pyadvt.selection._inputs import UndefinedScoreError
from pyadvt.selection.agreement import METRICS as AGREEMENT_METRICS
from pyadvt.selection.agreement import AgreementResult, agreement, incremental_value, rel_at_k
from pyadvt.selection.candidate_scores import SourceScore, SurrogateScore
from pyadvt.selection.estimators import ESTIMATORS, estimate
from pyadvt.selection.extract import Extracted, extract, split_model
from pyadvt.selection.gbc import gbc
from pyadvt.selection.h_score import h_score, h_score_shrinkage
from pyadvt.selection.leep import leep, nleep
from pyadvt.selection.logme import LEGACY_LOGME, logme
from pyadvt.selection.nce import nce
from pyadvt.selection.ranking import (ADVERSARIAL_SCORES, SOURCE_SCORES, SURROGATE_SCORES, rank_sources,
                                      rank_surrogates, score_source, score_surrogate, spearman_ci)
from pyadvt.selection.ranking_result import RankingResult
from pyadvt.selection.sfda import sfda
from pyadvt.selection.transrate import transrate

__all__ = ["ADVERSARIAL_SCORES", "AGREEMENT_METRICS", "AgreementResult", "ESTIMATORS", "Extracted", "LEGACY_LOGME",
           "SOURCE_SCORES", "SURROGATE_SCORES", "UndefinedScoreError", "agreement", "estimate", "extract", "gbc",
           "h_score", "h_score_shrinkage", "incremental_value", "leep", "logme", "nce", "nleep", "RankingResult",
           "rank_sources", "rank_surrogates", "rel_at_k", "score_source", "score_surrogate", "sfda", "SourceScore",
           "spearman_ci", "split_model", "SurrogateScore", "transrate"]
