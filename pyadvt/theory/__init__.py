"""Exact, checkable geometry of transferable adversarial directions (seed 003: Charles, Rosenberg and
Papailiopoulos, "A Geometric Perspective on the Transferability of Adversarial Directions", AISTATS 2019).

numpy / scipy / cvxpy only (no torch). Contents, by the paper's numbering (docs/theory.md §6):

* :func:`max_margin_svm` - hard-margin SVM with duals (Lemma 3), cvxpy + Clarabel.
* Linear classifiers: :func:`check_theorem4`, :func:`check_theorem5`, :func:`check_corollary6`,
  :func:`check_theorem7` (independent samples), :func:`check_theorem8` / :func:`multiclass_direction`
  (multi-class ``v*_{k,l}``), :func:`check_theorem9`.
* Two-layer ReLU classifiers: :class:`TwoLayerReLU`, :class:`AllActiveReLU`, the classes
  :data:`CLASS_R`, :data:`CLASS_R_PRIME`, :data:`CLASS_R_DOUBLE_PRIME`; Lemmas 13/14
  (:func:`check_region_convexity`); Theorems 10/11/15/16 and Corollary 17 (direction ``x_b - x_a``).
* Section 6: :func:`section6_counterexample` (the max-margin direction fails for an S-accurate R' net).
* Random instances for property tests: :mod:`pyadvt.theory.random_instances`.

Every checker returns a :class:`TheoremCheck` (``hypothesis_ok``, ``claim_holds``, ``violations`` and
per-theorem fields: which points, which ``c``).

Example:
    >>> import numpy as np
    >>> from pyadvt.theory import max_margin_svm, check_theorem4, LinearClassifier
    >>> svm = max_margin_svm(np.array([[0.0], [1.0], [3.0]]), np.array([-1, 1, 1]))
    >>> round(svm.margin, 6), check_theorem4(svm, LinearClassifier(np.array([1.0]), -0.2)).claim_holds
    (0.5, True)
"""

from pyadvt.theory.checks import DirectionEval, TheoremCheck, evaluate_direction
from pyadvt.theory.counterexample import CounterexampleCheck, Section6Counterexample, section6_counterexample
from pyadvt.theory.independent_samples import TwoSampleCheck, check_theorem7, check_theorem9
from pyadvt.theory.linear import LinearClassifier, MultiClassLinear
from pyadvt.theory.linear_directions import (Corollary6Check, DirectionCheck, Theorem5Check, Theorem8Check,
                                             as_linear_classifier, check_corollary6, check_theorem4, check_theorem5,
                                             check_theorem8, multiclass_direction)
from pyadvt.theory.relu_classes import (CLASS_R, CLASS_R_DOUBLE_PRIME, CLASS_R_PRIME, AllActiveReLU, ConvexityCheck,
                                        ReLUClass, TwoLayerReLU, check_region_convexity)
from pyadvt.theory.relu_directions import (ConvexDirectionCheck, Corollary17Check, check_corollary17, check_theorem10,
                                           check_theorem11, check_theorem15, check_theorem16)
from pyadvt.theory.svm import MaxMarginSVM, is_linearly_separable, linear_separator, max_margin_svm

__all__ = [
    "AllActiveReLU", "CLASS_R", "CLASS_R_DOUBLE_PRIME", "CLASS_R_PRIME", "ConvexDirectionCheck", "ConvexityCheck",
    "Corollary17Check", "Corollary6Check", "CounterexampleCheck", "DirectionCheck", "DirectionEval",
    "LinearClassifier", "MaxMarginSVM", "MultiClassLinear", "ReLUClass", "Section6Counterexample", "Theorem5Check",
    "Theorem8Check", "TheoremCheck", "TwoLayerReLU", "TwoSampleCheck", "as_linear_classifier", "check_corollary17",
    "check_corollary6", "check_region_convexity", "check_theorem10", "check_theorem11", "check_theorem15",
    "check_theorem16", "check_theorem4", "check_theorem5", "check_theorem7", "check_theorem8", "check_theorem9",
    "evaluate_direction", "is_linearly_separable", "linear_separator", "max_margin_svm", "multiclass_direction",
    "section6_counterexample",
]
