"""The robust source models of seed 002 as :class:`~pyadvt.train.zoo.ModelSpec` s (docs/theory.md §4, §7).

Seed 002 (Utrera et al., ICLR 2021) compares sources trained naturally, adversarially (L2 / L-inf
PGD(k) with step ``2.5 eps / k``, and PGD(1): one step of ``2 eps`` from ``x``, app. A.10) and with
Gaussian noise rescaled into the L2 ball (sec. 7). :func:`robust_source_spec` names one such source
as a :class:`~pyadvt.train.zoo.ModelSpec`, so :func:`~pyadvt.train.zoo.train_or_load` trains it once
and every experiment that needs it (robust-transfer, robustness-transfer) loads the same weights.

========================  ==========================================================
kind                      recipe (``pyadvt.train.training_recipe``)
========================  ==========================================================
``natural``               ``st``
``at_l2`` / ``at_linf``   ``at``, ``steps`` PGD steps of ``2.5 eps / steps``
``at_l2_pgd1`` / ...      ``at``, 1 step of ``2 eps``, no random start
``gaussian_l2``           ``gaussian``, N(0, std^2) rescaled into the L2 ``eps_l2`` ball
========================  ==========================================================

Example:
    >>> spec = robust_source_spec("at_linf", arch="cnn", model_kwargs={"channels": [8]}, eps_l2=1.0,
    ...                           eps_linf=0.1, steps=4, fit_kwargs={"epochs": 1})
    >>> spec.recipe, spec.recipe_kwargs["norm"], spec.recipe_kwargs["alpha"]
    ('at', 'linf', 0.0625)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyadvt.train.zoo import ModelSpec
from pyadvt.utils.validation import InvalidValueError

__all__ = ["SOURCE_KINDS", "robust_source_spec", "source_recipe"]

#: the source kinds of seed 002 (sec. 4 and 7)
SOURCE_KINDS = ("natural", "at_l2", "at_linf", "at_l2_pgd1", "at_linf_pgd1", "gaussian_l2")


def source_recipe(kind: str, *, eps_l2: float, eps_linf: float, steps: int,
                  gaussian_std: float = 1.0) -> tuple[str, dict]:
    """``(recipe, recipe_kwargs)`` of a source ``kind`` (see the module table); the eps of the
    kind's norm is ``eps_l2`` or ``eps_linf``.

    Example:
        >>> source_recipe("at_l2_pgd1", eps_l2=1.0, eps_linf=0.1, steps=10)
        ('at', {'strength': 1.0, 'steps': 1, 'alpha': 2.0, 'norm': 'l2', 'random_start': False})
    """
    if kind not in SOURCE_KINDS:
        raise InvalidValueError(f"unknown source kind {kind!r}; choose from {SOURCE_KINDS}")
    norm = "linf" if "linf" in kind else "l2"
    eps = eps_l2 if norm == "l2" else eps_linf
    if kind == "natural":
        return "st", {}
    if kind == "gaussian_l2":
        return "gaussian", {"strength": eps_l2, "gaussian_std": gaussian_std, "norm": "l2"}
    if kind.endswith("pgd1"):
        return "at", {"strength": eps, "steps": 1, "alpha": 2 * eps, "norm": norm, "random_start": False}
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InvalidValueError(f"'steps' (PGD steps of adversarial training) must be an int >= 1, got {steps!r}")
    return "at", {"strength": eps, "steps": steps, "alpha": 2.5 * eps / steps, "norm": norm}


def robust_source_spec(kind: str, *, arch: str, model_kwargs: Mapping[str, Any] | None = None, eps_l2: float,
                       eps_linf: float, steps: int, gaussian_std: float = 1.0,
                       fit_kwargs: Mapping[str, Any] | None = None, seed: int = 0) -> ModelSpec:
    """The :class:`~pyadvt.train.zoo.ModelSpec` of a ``kind`` source (:data:`SOURCE_KINDS`).

    Args:
        arch, model_kwargs: the architecture (:func:`pyadvt.models.build`; input shape and classes
            come from the training data).
        eps_l2, eps_linf: the threat model's radius for the L2 and the L-inf kinds ([0, 1] pixel units).
        steps: PGD steps of the ``at_l2`` / ``at_linf`` kinds.
        gaussian_std: standard deviation of ``gaussian_l2``'s noise before rescaling.
        fit_kwargs: :func:`pyadvt.train.fit` settings (``epochs``, ``lr``, ``batch_size``).
        seed: initialisation, PGD starts and data order.
    """
    recipe, recipe_kwargs = source_recipe(kind, eps_l2=eps_l2, eps_linf=eps_linf, steps=steps,
                                          gaussian_std=gaussian_std)
    return ModelSpec(arch, dict(model_kwargs or {}), recipe, recipe_kwargs, dict(fit_kwargs or {}), int(seed))
