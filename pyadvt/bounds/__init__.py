"""Evaluators of the seed papers' bounds: each returns both sides of the inequality or identity."""

from pyadvt.bounds.seed000 import (BoundResult, PairJacobians, Proposition2Result, Theorem3Result, pair_jacobians,
                                   proposition2, theorem1, theorem2, theorem3)
from pyadvt.bounds.seed001 import Seed001Bound, lower_bound, lower_bound_from_terms
from pyadvt.bounds.seed004 import Lemma1Result, Theorem2Result, lemma1, theorem1_bound, theorem2_criterion

__all__ = ["BoundResult", "lemma1", "Lemma1Result", "lower_bound", "lower_bound_from_terms", "pair_jacobians",
           "PairJacobians", "proposition2", "Proposition2Result", "Seed001Bound", "theorem1", "theorem1_bound",
           "theorem2", "theorem2_criterion", "Theorem2Result", "theorem3", "Theorem3Result"]
