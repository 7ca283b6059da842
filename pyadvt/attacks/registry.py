"""Attacks by name for the CLI and configs: ``pgd``, ``fgsm``, ``mifgsm``, ``di``, ``dim`` and the fifteen
transfer-suite attacks (``nifgsm`` ... ``svre``, :data:`pyadvt.attacks.SUITE`)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from pyadvt.attacks.di import DI, DIM
from pyadvt.attacks.fgsm import FGSM
from pyadvt.attacks.iterative import IterativeAttack
from pyadvt.attacks.mifgsm import MIFGSM
from pyadvt.attacks.pgd import PGD
from pyadvt.attacks.presets import SUITE, create

ATTACKS: dict[str, type[IterativeAttack]] = {"pgd": PGD, "fgsm": FGSM, "mifgsm": MIFGSM, "di": DI, "dim": DIM, **SUITE}

_SUPPORTS_L2 = ("pgd", "di", "dim")


def build_attack(name: str, model: nn.Module | Sequence[nn.Module], eps: float, *, steps: int = 10,
                 alpha: float | None = None, norm: str = "linf", restarts: int = 1, random_start: bool | None = None,
                 targeted: bool = False, seed: int = 0, progress: bool = False) -> IterativeAttack:
    """Construct ``ATTACKS[name]`` with the options that attack understands.

    ``alpha=None`` keeps each attack's default step (PGD ``2.5 eps / steps``, MI/DI ``eps / steps``);
    FGSM ignores ``steps``/``alpha`` (one step of size eps); ``random_start=None`` keeps the attack's
    default (on for PGD, off otherwise). Options an attack cannot honour raise ``ValueError``.
    The attacks are those of docs/theory.md §1 (PGD, FGSM, MI-FGSM, DI, DIM) and the transfer suite
    of §10 (built through :func:`pyadvt.attacks.create`).

    Example:
        >>> import torch
        >>> atk = build_attack("dim", torch.nn.Linear(2, 2), eps=0.1, steps=5)
        >>> type(atk).__name__, atk.mu, atk.steps
        ('DIM', 1.0, 5)
    """
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")
    if norm != "linf" and name not in _SUPPORTS_L2:
        raise ValueError(f"attack {name!r} is L-inf only; norm={norm!r} needs one of {', '.join(_SUPPORTS_L2)}")
    if name in SUITE:
        extra = {} if random_start is None else {"random_start": random_start}
        return create(name, model, eps, alpha, steps, restarts=restarts, targeted=targeted, seed=seed,
                      progress=progress, **extra)
    if name == "fgsm":
        if restarts != 1 or random_start:
            raise ValueError("FGSM has no random start or restarts")
        return FGSM(model, eps=eps, targeted=targeted, seed=seed)
    kwargs = dict(alpha=alpha, steps=steps, restarts=restarts, targeted=targeted, seed=seed, progress=progress)
    if random_start is not None:
        kwargs["random_start"] = random_start
    if name != "mifgsm":
        kwargs["norm"] = norm
    return ATTACKS[name](model, eps=eps, **kwargs)
