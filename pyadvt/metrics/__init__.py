"""Transferability metrics (docs/theory.md §2, §3, §5): every function takes models and data and returns
a small dataclass of tensors with a ``.summary()`` dict."""

from pyadvt.metrics.spectral import SingularValueRatio, Tau1Result, singular_value_ratio, tau1
from pyadvt.metrics.tau2 import (AdversarialTransferabilityResult, Tau2Result, adversarial_transferability, tau2,
                                 tau2_from_deviations)
from pyadvt.metrics.robust_accuracy import robust_accuracy
from pyadvt.metrics.robustness_transfer import as_score, evaluate_robustness_transfer
from pyadvt.metrics.similarity import SimilarityResult, gradient_similarity, loss_input_gradients
from pyadvt.metrics.smoothness import SmoothnessResult, smoothness
from pyadvt.metrics.statistics import StatisticsTable, ols_r2, pearson_r, statistics_table
from pyadvt.metrics import transfer_rates as _transfer_rates
from pyadvt.metrics.transfer_rates import AttackTransferabilityResult, attack_transferability
from pyadvt.metrics.empirical_transfer import EmpiricalTransferabilityResult, empirical_transferability
from pyadvt.metrics.legacy_transfer import LegacyTransferabilityResult, legacy_transferability
from pyadvt.metrics.atm import (TransferTable, cluster_tree, perron_vector, tournament_matrix, transfer_table,
                               transferability_matrix, within_cluster_entropy)
from pyadvt.utils.deprecation import renamed_names as _renamed_names

__all__ = ["adversarial_transferability", "AdversarialTransferabilityResult", "as_score", "attack_transferability",
           "AttackTransferabilityResult", "cluster_tree", "empirical_transferability",
           "EmpiricalTransferabilityResult", "evaluate_robustness_transfer", "gradient_similarity",
           "legacy_transferability", "LegacyTransferabilityResult", "loss_input_gradients", "ols_r2",
           "pearson_r", "perron_vector", "robust_accuracy", "SimilarityResult", "singular_value_ratio", "SingularValueRatio",
           "smoothness", "SmoothnessResult", "statistics_table", "StatisticsTable", "tau1", "Tau1Result", "tau2",
           "tau2_from_deviations", "Tau2Result", "tournament_matrix", "transfer_table",
           "transferability_matrix", "TransferTable", "within_cluster_entropy"]

#: former public names (issue 15's naming scheme, docs/theory.md §0): they resolve for one release, with a
#: DeprecationWarning
_RENAMED = {**_transfer_rates._RENAMED, "TransferabilityResult": "AdversarialTransferabilityResult",
           "EmpiricalTransferResult": "EmpiricalTransferabilityResult", "legacy_alpha": "legacy_transferability",
           "LegacyAlphaResult": "LegacyTransferabilityResult"}


#: names that moved to another package, {name: new module}: deprecated here for one release (the rankings
#: to pyadvt.selection, a layer above the metrics; the seed-004 bounds to pyadvt.bounds)
_MOVED = {**dict.fromkeys(("rank_sources", "rank_surrogates", "spearman_ci"), "pyadvt.selection.ranking"),
          **dict.fromkeys(("lemma1", "theorem2_criterion"), "pyadvt.bounds.seed004")}


def _moved(name: str):
    if name in _MOVED:
        import importlib
        import warnings

        package = _MOVED[name].rpartition(".")[0]
        warnings.warn(f"pyadvt.metrics.{name} is deprecated (it moved to {package}); import it from {package}",
                      DeprecationWarning, stacklevel=3)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'pyadvt.metrics' has no attribute {name!r}")


__getattr__ = _renamed_names(__name__, _RENAMED, former={"transferability": _transfer_rates._former_transferability},
                            fallback=_moved)
