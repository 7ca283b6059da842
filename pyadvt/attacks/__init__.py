"""Adversarial attacks (SPEC §1): ``atk = PGD(model, eps=8/255, steps=10); x_adv = atk(x, y)``.

All attacks share :class:`Attack`'s guarantees: eval mode, no parameter gradients, inputs never
mutated, output in [0, 1] and the eps-ball, per-sample seeded randomness, multi-budget calls
``atk(x, y, eps=torch.tensor([...]))`` returning ``[K, B, ...]``.
"""

from pyadvt.attacks.base import Attack, AttackBatch, cross_entropy_per_sample
from pyadvt.attacks.di import DI, DIM, diverse_input
from pyadvt.attacks.ensemble import Ensemble
from pyadvt.attacks.fgsm import FGSM
from pyadvt.attacks.iterative import IterativeAttack
from pyadvt.attacks.mifgsm import MIFGSM
from pyadvt.attacks.pgd import PGD
from pyadvt.attacks.registry import ATTACKS, build_attack
from pyadvt.attacks.representation import RepresentationAttack, representation_distance, representation_fn
from pyadvt.attacks.virtual import VirtualAdversarialAttack, VirtualDirection, virtual_direction
