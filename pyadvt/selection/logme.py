"""LogME: the log marginal evidence of a Bayesian linear model on the features (You et al., ICML
2021; docs/theory.md §11.5)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from pyadvt.selection._inputs import as_features, as_labels, class_index
from pyadvt.utils.validation import InvalidValueError

__all__ = ["logme", "LEGACY_LOGME"]

#: the authors' stopping rules, offered for reproduction (docs/theory.md §11.5)
LEGACY_LOGME = ("icml", "unpadded")


def _evidence(alpha: float, beta: float, sigma: np.ndarray, m2: float, res2: float, n: int, D: int) -> float:
    return (D / 2 * math.log(alpha) + n / 2 * math.log(beta) - n / 2 * math.log(2 * math.pi)
            - beta / 2 * res2 - alpha / 2 * m2 - 0.5 * float(np.log(alpha + beta * sigma).sum()))


def _class_evidence(sigma: np.ndarray, x2: np.ndarray, res_x2: float, t2: float, n: int, D: int,
                    tol: float, max_iter: int) -> tuple[float, bool]:
    """Maximised evidence ``L_c`` for one one-vs-rest target; ``sigma`` holds all ``D`` eigenvalues of
    ``F^T F`` (zeros included), ``x2 = (U^T t)^2`` over the non-zero ones, ``res_x2 = ||t||^2 - sum x2``."""
    s = sigma[: x2.size]
    alpha, beta = 1.0, 1.0
    converged, last, value = False, math.inf, -math.inf
    prior_only = 1e14 * (float(s.max()) if s.size else 1.0)
    for _ in range(max_iter):
        lam = alpha / beta
        gamma = float((s / (s + lam)).sum())
        m2 = float((s * x2 / (s + lam) ** 2).sum())
        res2 = float((x2 * (lam / (s + lam)) ** 2).sum()) + res_x2
        if m2 <= 0 or gamma <= 0 or lam > prior_only:
            # the features explain nothing of t: the evidence rises towards its alpha -> infinity limit
            beta = n / t2
            return n / 2 * math.log(beta) - n / 2 * math.log(2 * math.pi) - n / 2, True
        res2 = max(res2, np.finfo(float).tiny)
        alpha, beta = gamma / m2, max(n - gamma, np.finfo(float).tiny) / res2
        lam_new = alpha / beta
        m2 = float((s * x2 / (s + lam_new) ** 2).sum())
        res2 = float((x2 * (lam_new / (s + lam_new)) ** 2).sum()) + res_x2
        value = _evidence(alpha, beta, sigma, m2, res2, n, D)
        # stop on lambda, or on the evidence when lambda drifts towards a supremum at 0 (n <= rank F)
        if abs(lam_new - lam) <= tol * lam or abs(value - last) <= tol * max(1.0, abs(value)):
            converged = True
            break
        last = value
    return value, converged


def _legacy_icml(f: np.ndarray, t: np.ndarray) -> float:
    """TLlib / LogME ``_fit_icml``: eigen-decomposition of ``F^T F``, at most 11 updates, 1 % stop; the
    final evidence uses the updated ``alpha, beta`` with ``m`` and the residual of the last step."""
    n, D = f.shape
    v, s, _ = np.linalg.svd(f.T @ f)
    tmp = v.T @ (f.T @ t)
    alpha, beta = 1.0, 1.0
    lam = alpha / beta
    for _ in range(11):
        gamma = (s / (s + lam)).sum()
        m = v @ (tmp * beta / (alpha + beta * s))
        alpha_de = (m * m).sum()
        alpha = gamma / alpha_de
        beta_de = ((t - f @ m) ** 2).sum()
        beta = (n - gamma) / beta_de
        new_lam = alpha / beta
        if abs(new_lam - lam) / lam < 0.01:
            break
        lam = new_lam
    return _evidence(alpha, beta, s, alpha_de, beta_de, n, D)


def _legacy_unpadded(s_nz: np.ndarray, x2: np.ndarray, res_x2: float, n: int, D: int) -> float:
    """thuml/LogME ``_fit_fixed_point``: at most 11 updates, stop at a 1e-3 relative change, and
    ``log|A|`` summed over the non-zero eigenvalues only (thuml/LogME issue #23)."""
    alpha, beta = 1.0, 1.0
    for _ in range(11):
        t = alpha / beta
        gamma = (s_nz / (s_nz + t)).sum()
        m2 = (s_nz * x2 / (t + s_nz) ** 2).sum()
        res2 = (x2 / (1 + s_nz / t) ** 2).sum() + res_x2
        alpha = gamma / (m2 + 1e-5)
        beta = (n - gamma) / (res2 + 1e-5)
        if abs(alpha / beta - t) / t <= 1e-3:
            break
    return _evidence(alpha, beta, s_nz, m2, res2, n, D)


def logme(features: Any, y: Any, *, tol: float = 1e-10, max_iter: int = 10_000, legacy: str | None = None) -> float:
    """LogME: mean over target classes of the maximised log evidence per sample (higher = better).

    For each class ``c`` with one-vs-rest target ``t = 1[y = c]``, the evidence of
    ``t ~ N(F m, 1/beta)``, ``m ~ N(0, I/alpha)`` is
    ``L = D/2 log alpha + n/2 log beta - n/2 log 2 pi - beta/2 ||F m - t||^2 - alpha/2 ||m||^2
    - 1/2 log|alpha I + beta F^T F|`` at the posterior mean ``m``, maximised over ``alpha, beta`` by
    MacKay's fixed point ``alpha <- gamma / ||m||^2``, ``beta <- (n - gamma) / ||F m - t||^2``,
    ``gamma = sum_i sigma_i / (sigma_i + alpha / beta)`` (``sigma``: the ``D`` eigenvalues of
    ``F^T F``, zeros included, so ``log|A|`` is right for ``n < D`` or rank-deficient ``F``). The score
    is ``(1/C) sum_c L_c / n``.

    Args:
        features: ``[n, D]`` source features (not centred, as the authors).
        y: ``[n]`` target labels.
        tol, max_iter: iterate until ``|lambda' - lambda| <= tol * lambda`` (``lambda = alpha/beta``);
            a warning says when ``max_iter`` was reached first.
        legacy: ``"icml"``: the authors' ICML loop (at most 11 updates, stop at a 1 % change of
            lambda; TLlib ``logme.py``); ``"unpadded"``: thuml/LogME's default fixed point (11
            updates, 1e-3 stop, ``1e-5`` in the denominators, ``log|A|`` over the non-zero eigenvalues
            only). Source: docs/theory.md §11.5.

    A class the features cannot explain at all (``F^T t = 0``) takes the ``alpha -> infinity`` limit
    ``n/2 log(n/||t||^2) - n/2 log 2 pi - n/2`` instead of a NaN.

    Raises:
        TypeError: (``InvalidTypeError``) when ``features`` or ``y`` is not a tensor, array or list,
            or ``features`` does not hold real numbers.
        ValueError: (``InvalidValueError``) when ``features`` is not ``[n, D]`` with ``n >= 2``, holds
            NaN or infinite values, or when ``y`` is not ``[n]`` integer labels ``>= 0`` with at least
            two distinct classes; when ``legacy`` is not ``None`` or one of
            ``LEGACY_LOGME``, or when ``tol <= 0`` or ``max_iter < 1``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1], 50)
        >>> informative = np.c_[y + 0.1 * rng.normal(size=100), rng.normal(size=100)]
        >>> logme(informative, y) > logme(rng.normal(size=(100, 2)), y)
        True
    """
    f = as_features(features)
    labels = as_labels(y, f.shape[0])
    if legacy is not None and legacy not in LEGACY_LOGME:
        raise InvalidValueError(f"'legacy' must be None or one of {LEGACY_LOGME}, got {legacy!r}")
    if not tol > 0 or max_iter < 1:
        raise InvalidValueError(f"'tol' must be > 0 and 'max_iter' >= 1, got tol={tol}, max_iter={max_iter}")
    n, D = f.shape
    yi, C = class_index(labels)
    targets = [(yi == c).astype(np.float64) for c in range(C)]
    if legacy == "icml":
        return float(np.mean([_legacy_icml(f, t) for t in targets]) / n)
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > 1e-10 * max(float(s[0]), 1e-300) if s.size else s > 0
    u, s_nz = u[:, keep], s[keep] ** 2
    sigma = np.concatenate([s_nz, np.zeros(D - s_nz.size)])
    out, not_converged = [], 0
    for t in targets:
        x = u.T @ t
        x2 = x ** 2
        res_x2 = max(float(t @ t - x2.sum()), 0.0)
        if legacy == "unpadded":
            out.append(_legacy_unpadded(s_nz, x2, res_x2, n, D))
            continue
        value, ok = _class_evidence(sigma, x2, res_x2, float(t @ t), n, D, tol, max_iter)
        out.append(value)
        not_converged += not ok
    if not_converged:
        warnings.warn(f"logme: the evidence fixed point did not reach tol={tol:g} in {max_iter} iterations for "
                      f"{not_converged} of {C} classes; the last iterate is used", RuntimeWarning, stacklevel=2)
    return float(np.mean(out) / n)
