"""Transferability metrics (SPEC sections 2, 3, 5): every function takes models and data and returns
a small dataclass of tensors with a ``.summary()`` dict."""

from pyadvt.metrics.spectral import SingularValueRatio, Tau1Result, singular_value_ratio, tau1
from pyadvt.metrics.tau2 import (Tau2Result, TransferabilityResult, adversarial_transferability, tau2,
                                 tau2_from_deviations)
