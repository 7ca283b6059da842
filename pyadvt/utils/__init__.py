"""Small framework-level helpers used across pyadvt (no imports from other pyadvt packages)."""

from pyadvt.utils.modes import evaluating
from pyadvt.utils.rng import per_sample_generators, per_sample_rand, sample_seeds

__all__ = ["evaluating", "per_sample_generators", "per_sample_rand", "sample_seeds"]
