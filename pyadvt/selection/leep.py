"""LEEP and NLEEP: the log expected empirical prediction of a source (docs/theory.md §11.1, §11.2).

LEEP (Nguyen et al., ICML 2020) scores a source by how well the *dummy classifier* ``P(y | z)``
built from its softmax ``theta(x)`` over source classes ``z`` predicts the target labels:
``P(y, z) = (1/n) sum_{i: y_i = y} theta_z(x_i)``, ``P(y | z) = P(y, z) / P(z)``,
``LEEP = (1/n) sum_i log sum_z P(y_i | z) theta_z(x_i)``. NLEEP (Li et al., CVPR 2021) replaces
``theta`` by the posteriors of a Gaussian mixture fitted to PCA-reduced features.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pyadvt.selection._inputs import UndefinedScoreError, as_features, as_labels, as_probs, class_index
from pyadvt.selection._pca import pca_reduce
from pyadvt.utils.validation import InvalidValueError

__all__ = ["leep", "nleep"]


def _leep(theta: np.ndarray, y: np.ndarray, legacy_nolog: bool) -> float:
    yi, C = class_index(y)
    n = theta.shape[0]
    joint = np.zeros((C, theta.shape[1]))
    np.add.at(joint, yi, theta / n)
    pz = joint.sum(0)
    cond = np.divide(joint, pz, out=np.zeros_like(joint), where=pz > 0)  # divide_no_nan for unused z
    eep = np.einsum("iz,iz->i", theta, cond[yi])
    if legacy_nolog:
        return float(eep.mean())
    # eep_i >= theta_z(x_i)^2 / (n P(z)) > 0 for any z the sample uses; the guard only catches underflow
    logs = np.where(eep > 0, np.log(np.maximum(eep, np.finfo(float).tiny)), -np.log(C))
    return float(logs.mean())


def leep(probs: Any, y: Any, *, legacy_nolog: bool = False) -> float:
    """LEEP of a source on a target task (higher = more transferable; always ``<= 0``).

    Args:
        probs: ``[n, C_s]`` source softmax ``theta(x_i)`` on the target inputs (rows sum to 1).
        y: ``[n]`` integer target labels (at least two classes).
        legacy_nolog: the SFDA authors' variant, the mean of ``P(y_i | x_i)`` without the log.

    Equals 0 exactly for a perfect source (one-hot ``theta`` in bijection with the labels).
    Source: docs/theory.md §11.1 (Nguyen et al. 2020, eq. 2).

    Raises:
        TypeError: (``InvalidTypeError``) when ``probs`` or ``y`` is not a tensor, array or list, or
            ``probs`` does not hold real numbers.
        ValueError: (``InvalidValueError``) when ``probs`` is not ``[n, C_s]``, holds NaN/infinite or
            negative values or rows that do not sum to 1 (logits instead of softmax), or when ``y`` is
            not ``[n]`` integer labels ``>= 0`` with at least two distinct classes.

    Example:
        >>> import numpy as np
        >>> round(leep(np.eye(3)[[0, 1, 2, 0]], np.array([2, 0, 1, 2])), 12)
        0.0
    """
    p = as_probs(probs)
    return _leep(p, as_labels(y, p.shape[0]), legacy_nolog)


def nleep(features: Any, y: Any, *, pca_variance: float = 0.8, components_per_class: int = 5,
          seed: int = 123, legacy_nolog: bool = False) -> float:
    """NLEEP: LEEP with Gaussian-mixture posteriors on PCA-reduced features as ``theta``.

    Args:
        features: ``[n, D]`` source features of the target inputs.
        y: ``[n]`` target labels.
        pca_variance: explained-variance fraction kept by PCA (0.8, the authors' setting).
        components_per_class: mixture components per target class (5, the paper's setting); capped
            at ``n``.
        seed: ``random_state`` of the mixture (123, as in google-research/stable_transfer).
        legacy_nolog: omit the log (the SFDA authors' variant).

    The mixture is scikit-learn's ``GaussianMixture`` (full covariance, k-means init, tol 1e-3,
    reg_covar 1e-6, 100 iterations). Features without any variance give uniform posteriors
    (NLEEP = the mean log prior of the labels). Source: docs/theory.md §11.2.

    Raises:
        TypeError: (``InvalidTypeError``) when ``features`` or ``y`` is not a tensor, array or list,
            or ``features`` does not hold real numbers.
        ValueError: (``InvalidValueError``) when ``features`` is not ``[n, D]`` with ``n >= 2``, holds
            NaN or infinite values, or when ``y`` is not ``[n]`` integer labels ``>= 0`` with at least
            two distinct classes; when ``pca_variance`` is not in ``(0, 1]`` or
            ``components_per_class < 1``.
        UndefinedScoreError: (a ``ValueError``) when the Gaussian mixture cannot be fitted to so few
            samples.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1], 20)
        >>> f = rng.normal(size=(40, 3)) + 4 * y[:, None]
        >>> nleep(f, y, components_per_class=1) > -0.1
        True
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    f = as_features(features)
    labels = as_labels(y, f.shape[0])
    if not 0 < pca_variance <= 1:
        raise InvalidValueError(f"'pca_variance' must be in (0, 1], got {pca_variance}")
    if components_per_class < 1:
        raise InvalidValueError(f"'components_per_class' must be >= 1, got {components_per_class}")
    _, C = class_index(labels)
    if float(np.ptp(f, axis=0).max()) == 0.0:
        theta = np.ones((f.shape[0], 1))
    else:
        z = pca_reduce(f, float(pca_variance)) if pca_variance < 1 else f - f.mean(0)
        k = min(components_per_class * C, f.shape[0])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm = GaussianMixture(n_components=k, random_state=seed).fit(z)
        except ValueError as exc:  # sklearn: "some components have ill-defined empirical covariance"
            raise UndefinedScoreError(f"nleep: the {k}-component Gaussian mixture cannot be fitted to {f.shape[0]} "
                                      f"samples ({exc}); give more target samples or lower "
                                      "'components_per_class'") from None
        theta = gmm.predict_proba(z)
    return _leep(theta, labels, legacy_nolog)
