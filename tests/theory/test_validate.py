"""The theory checkers' shared input validation (pyadvt/theory/_validate.py)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("call", ["evaluate_direction", "check_theorem11", "check_theorem10", "check_region_convexity"])
def test_a_classifier_without_its_methods_is_a_type_error(call):
    """A (w, b) tuple is not a classifier of the exact checkers: TypeError naming 'h', before any work."""
    import pyadvt.theory as T

    X, y = np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([1.0, -1.0])
    args = {"evaluate_direction": (X, y, np.array([1.0, 0.0])), "check_theorem11": (X, y, -1.0),
            "check_theorem10": (X, y), "check_region_convexity": (X, 1.0)}[call]
    with pytest.raises(TypeError, match="'h' must be a classifier.*tuple without predict and first_flip"):
        getattr(T, call)((np.ones(2), 0.0), *args)
