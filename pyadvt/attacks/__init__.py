"""Adversarial attacks (docs/theory.md §1): ``atk = PGD(model, eps=8/255, steps=10); x_adv = atk(x, y)``.

All attacks share :class:`Attack`'s guarantees: eval mode, no parameter gradients, inputs never
mutated, output in [0, 1] and the eps-ball, per-sample seeded randomness, multi-budget calls
``atk(x, y, eps=torch.tensor([...]))`` returning ``[K, B, ...]``.

The transfer-attack suite (docs/theory.md §10) composes objective, input transforms, gradient
transforms, backward modifiers, ensembles and the fused update in :class:`TransferAttack`; presets by
name via ``create("mi-di-ti-si", model, eps=16/255)``; the protocol in :func:`evaluate`.

Positional and keyword-only arguments (one rule for every attack): ``model``, ``eps``, ``alpha`` and
``steps`` are positional, in torchattacks' order, so ``PGD(model, 8/255, 2/255, 10)`` reads as it does
there; every other option of an attack's constructor is keyword-only (``PGD(model, eps, norm="l2")``,
``MIFGSM(model, eps, mu=0.9)``). :class:`RepresentationAttack` and :class:`VirtualAdversarialAttack`
take only ``(model, eps)`` by position (their iterations and step are options), :func:`diverse_input`
only ``(x, draws)``, and :func:`evaluate` the subject ``(sources, targets, data)``. The former positional
forms still work for one release with a ``DeprecationWarning``
(:func:`pyadvt.utils.deprecation.keyword_only`).
"""

from pyadvt.attacks.base import Attack, AttackBatch, cross_entropy_per_sample
from pyadvt.attacks.composed import TransferAttack, cost_per_image, margin_loss
from pyadvt.attacks.di import DI, DIM, diverse_input
from pyadvt.attacks.ensemble import Ensemble
from pyadvt.attacks.feature_attacks import FIA, ILA, NAA
from pyadvt.attacks.fgsm import FGSM
from pyadvt.attacks.gradient_attacks import NIFGSM, PIFGSM, SINIFGSM, TIFGSM, VMIFGSM, VNIFGSM
from pyadvt.attacks.input_attacks import BSR, SSA, Admix
from pyadvt.attacks.iterative import IterativeAttack
from pyadvt.attacks.mifgsm import MIFGSM
from pyadvt.attacks.model_attacks import SGM, LinBP
from pyadvt.attacks.pgd import PGD
from pyadvt.attacks.presets import SUITE, create
from pyadvt.attacks.protocol import PROTOCOLS, Protocol, SuiteResult, evaluate
from pyadvt.attacks.registry import ATTACKS, build_attack
from pyadvt.attacks.stream import AttackedBatch, attack_all, run_on
from pyadvt.attacks.representation import RepresentationAttack, representation_distance, representation_fn
from pyadvt.attacks.svre import SVRE
from pyadvt.attacks.virtual import VirtualAdversarialAttack, VirtualDirection, virtual_direction

__all__ = ["Admix", "Attack", "attack_all", "AttackBatch", "AttackedBatch", "ATTACKS", "BSR", "build_attack",
           "cost_per_image", "create", "cross_entropy_per_sample", "DI", "DIM", "diverse_input", "Ensemble",
           "evaluate", "FGSM", "FIA", "ILA", "IterativeAttack", "LinBP", "margin_loss", "MIFGSM", "NAA", "NIFGSM",
           "PGD", "PIFGSM", "Protocol", "PROTOCOLS", "representation_distance", "representation_fn",
           "RepresentationAttack", "run_on", "SGM", "SINIFGSM", "SSA", "SUITE", "SuiteResult", "SVRE", "TIFGSM",
           "TransferAttack", "virtual_direction", "VirtualAdversarialAttack", "VirtualDirection", "VMIFGSM",
           "VNIFGSM"]
