"""Transferability metrics (docs/theory.md §2, §3, §5): every function takes models and data and returns
a small dataclass of tensors with a ``.summary()`` dict."""

from pyadvt.metrics.spectral import SingularValueRatio, Tau1Result, singular_value_ratio, tau1
from pyadvt.metrics.tau2 import (Tau2Result, TransferabilityResult, adversarial_transferability, tau2,
                                 tau2_from_deviations)
from pyadvt.metrics.robustness_transfer import as_score, evaluate_robustness_transfer, lemma1, theorem2_criterion
from pyadvt.metrics.similarity import SimilarityResult, gradient_similarity, loss_input_gradients
from pyadvt.metrics.smoothness import SmoothnessResult, smoothness
from pyadvt.metrics.statistics import StatisticsTable, ols_r2, pearson_r, statistics_table
from pyadvt.metrics.transfer_rates import TransferRates, transferability
from pyadvt.metrics.empirical_transfer import EmpiricalTransferResult, empirical_transferability
from pyadvt.metrics.legacy_alpha import LegacyAlphaResult, legacy_alpha
from pyadvt.metrics.atm import (TransferTable, cluster_tree, perron_vector, tournament_matrix, transfer_table,
                               transferability_matrix, within_cluster_entropy)

__all__ = ["adversarial_transferability", "as_score", "cluster_tree", "empirical_transferability",
           "EmpiricalTransferResult", "evaluate_robustness_transfer", "gradient_similarity", "legacy_alpha",
           "LegacyAlphaResult", "lemma1", "loss_input_gradients", "ols_r2", "pearson_r", "perron_vector",
           "SimilarityResult", "singular_value_ratio", "SingularValueRatio", "smoothness", "SmoothnessResult",
           "statistics_table", "StatisticsTable", "tau1", "Tau1Result", "tau2", "tau2_from_deviations",
           "Tau2Result", "theorem2_criterion", "tournament_matrix", "transfer_table", "transferability",
           "transferability_matrix", "TransferabilityResult", "TransferRates", "TransferTable",
           "within_cluster_entropy"]


def __getattr__(name: str):
    # deprecated: the rankings moved to pyadvt.selection (a layer above the metrics)
    if name in ("rank_sources", "rank_surrogates", "spearman_ci"):
        import warnings

        from pyadvt.selection import ranking

        warnings.warn(f"pyadvt.metrics.{name} is deprecated; import it from pyadvt.selection", DeprecationWarning,
                      stacklevel=2)
        return getattr(ranking, name)
    raise AttributeError(f"module 'pyadvt.metrics' has no attribute {name!r}")
