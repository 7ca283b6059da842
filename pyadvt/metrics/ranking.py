"""Deprecated alias: the rankings moved to :mod:`pyadvt.selection.ranking` (``from pyadvt.selection import
rank_sources, rank_surrogates, spearman_ci``). This module re-exports them for one release."""

import warnings

from pyadvt.selection.ranking import rank_sources, rank_surrogates, spearman_ci

__all__ = ["rank_sources", "rank_surrogates", "spearman_ci"]

warnings.warn("pyadvt.metrics.ranking is deprecated; import rank_sources, rank_surrogates and spearman_ci from "
              "pyadvt.selection", DeprecationWarning, stacklevel=2)
