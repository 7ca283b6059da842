"""Named training recipes: the ``fit`` keyword arguments of each surrogate / source training method
(docs/theory.md §4), so every experiment and command builds them one way.

======================  ==============================================================  ==============
method                  what ``fit`` gets                                               ``strength``
======================  ==============================================================  ==============
``st``                  nothing (plain cross-entropy)                                   --
``at``                  ``loss_fn=AdversarialLoss`` (PGD(``steps``), ``norm``)          eps
``gaussian``            ``batch_transform=GaussianNoise`` (rescaled into the ball)      eps
``mixup`` / ``cutmix``  ``batch_transform`` applied with probability p (Beta(1, 1))      p
``cutout``              ``batch_transform=Cutout`` (square side up to M)                M
``label_smoothing``     ``batch_transform=LabelSmoothing``                              p
``ir`` / ``jr`` / ``er``  ``loss_fn`` input-gradient / Jacobian / explicit regulariser    lambda
``sam``, ``sam_ir``,    the same ``loss_fn`` as without ``sam_`` plus the ``SAM``        lambda (rho is
``sam_jr``              optimizer wrapper around SGD                                    ``sam_rho``)
======================  ==============================================================  ==============

Example:
    >>> from pyadvt.models import build
    >>> from pyadvt.data import digits
    >>> from pyadvt.train import fit
    >>> model = build("mlp")
    >>> kwargs = training_recipe("sam_jr", model, strength=0.05, sgd={"lr": 0.05})
    >>> sorted(kwargs)
    ['loss_fn', 'optimizer']
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from pyadvt.train.adversarial import AdversarialLoss
from pyadvt.train.augment import CutMix, Cutout, LabelSmoothing, Mixup
from pyadvt.train.gaussian import GaussianNoise
from pyadvt.train.regularizers import ExplicitGradientRegularizer, InputGradientRegularizer, JacobianRegularizer
from pyadvt.train.sam import SAM

METHODS = ("st", "at", "gaussian", "mixup", "cutmix", "cutout", "label_smoothing", "ir", "jr", "er", "sam",
           "sam_ir", "sam_jr")


def training_recipe(method: str, model: nn.Module | None = None, *, strength: float | None = None,
                    num_classes: int = 10, seed: int = 0, norm: str = "l2", steps: int = 10,
                    alpha: float | None = None, random_start: bool = True, n_proj: int = 1,
                    gaussian_std: float = 1.0, sam_rho: float = 0.05,
                    sgd: Mapping | None = None) -> dict:
    """``fit`` keyword arguments (``loss_fn``, ``batch_transform``, ``optimizer``) of ``method``.

    Args:
        method: one of :data:`METHODS`.
        model: the model being trained (needed by the SAM methods, which wrap its parameters).
        strength: the method's knob (table above); required except for ``st`` and ``sam``.
        num_classes: classes, for the soft labels of mixup / cutmix / label smoothing.
        seed: seed of the method's own randomness (PGD starts, JR projections).
        norm, steps, alpha, random_start: the AT / Gaussian threat model (``alpha=None``:
            :class:`AdversarialLoss`'s default step).
        n_proj: random projections of JR.
        gaussian_std: standard deviation of the Gaussian noise before rescaling.
        sam_rho, sgd: SAM radius and the SGD keyword arguments (``lr``, ``momentum``, ...).

    Source: docs/theory.md §4 (the training methods of seeds 001 and 002).

    Raises:
        ValueError: when ``method`` is not in :data:`METHODS`, ``strength`` is missing for a method
            that needs it, a SAM method gets no ``model``, or a method's own check fails (``eps``,
            ``p``, ``lam``, ``norm``, ``steps``, ``n_proj``, ``sam_rho`` out of range; see each class).

    Example:
        >>> kwargs = training_recipe("at", strength=0.5, steps=2)
        >>> sorted(kwargs), type(kwargs["loss_fn"]).__name__
        (['loss_fn'], 'AdversarialLoss')
    """
    if method not in METHODS:
        raise ValueError(f"unknown training method {method!r}; choose from {', '.join(METHODS)}")
    base = method[4:] if method.startswith("sam_") else method
    if base not in ("st", "sam") and strength is None:
        raise ValueError(f"training method {method!r} needs a 'strength' (see pyadvt.train.recipes)")
    s = strength
    factories = {
        "st": dict,
        "sam": dict,
        "at": lambda: {"loss_fn": AdversarialLoss(s, steps=steps, alpha=alpha, norm=norm, random_start=random_start,
                                                  seed=seed)},
        "gaussian": lambda: {"batch_transform": GaussianNoise(s, std=gaussian_std, norm=norm)},
        "mixup": lambda: {"batch_transform": Mixup(p=s, num_classes=num_classes)},
        "cutmix": lambda: {"batch_transform": CutMix(p=s, num_classes=num_classes)},
        "cutout": lambda: {"batch_transform": Cutout(int(s))},
        "label_smoothing": lambda: {"batch_transform": LabelSmoothing(s, num_classes=num_classes)},
        "ir": lambda: {"loss_fn": InputGradientRegularizer(s)},
        "jr": lambda: {"loss_fn": JacobianRegularizer(s, n_proj=n_proj, seed=seed)},
        "er": lambda: {"loss_fn": ExplicitGradientRegularizer(s)},
    }
    out = factories[base]()
    if method.startswith("sam"):
        if model is None:
            raise ValueError(f"training method {method!r} needs the model (SAM wraps its parameters)")
        out["optimizer"] = SAM(model.parameters(), torch.optim.SGD, rho=sam_rho, model=model, **dict(sgd or {}))
    return out
