"""Attacks by name: the suite's classes and compositions such as ``"mi-di-ti-si"`` (docs/theory.md §10).

``create(name, model, eps=16/255)`` accepts

* a class name (case and ``-``/``_`` ignored): ``pgd``, ``fgsm``, ``mifgsm``, ``di``, ``dim``,
  ``nifgsm``, ``sinifgsm``, ``tifgsm``, ``vmifgsm``, ``vnifgsm``, ``pifgsm``, ``admix``, ``ssa``, ``bsr``,
  ``sgm``, ``linbp``, ``ila``, ``fia``, ``naa``, ``svre``: that class with its paper's defaults;
* a composition of tokens joined by ``-`` (an optional trailing ``fgsm`` is ignored): ``mi`` (momentum),
  ``ni`` (momentum + Nesterov), ``vt`` / ``vmi`` / ``vni`` (variance tuning), ``di``, ``si``, ``admix``,
  ``ssa``, ``bsr`` (input transforms, applied in the order admix, si, di, ssa, bsr), ``ti`` (kernel),
  ``pi`` (PI's update), ``sgm``, ``linbp`` (backward modifiers). Without ``mi``/``ni`` the update is
  I-FGSM (except ``admix`` and ``bsr``, whose papers build on MI).

Options of a composition: ``mu``, ``ti_kernel`` (15), ``ti_nsig`` (3), ``vt_neighbours`` (20),
``vt_beta`` (1.5), ``di_p`` (0.7), ``si_m`` (5), ``admix_eta`` (0.2), ``admix_m2`` (3), ``ssa_n`` (20),
``ssa_rho`` (0.5), ``bsr_n`` (3), ``bsr_copies`` (20), ``bsr_angle`` (24), ``sgm_gamma`` (0.2),
``linbp_layer``, ``pi_amplification`` (10), and every :class:`~pyadvt.attacks.TransferAttack` keyword
(``seed``, ``targeted``, ``objective``, ``random_start``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from pyadvt.attacks.base import Attack
from pyadvt.attacks.composed import TransferAttack
from pyadvt.attacks.di import DI, DIM
from pyadvt.attacks.feature_attacks import FIA, ILA, NAA
from pyadvt.attacks.fgsm import FGSM
from pyadvt.attacks.gradient_attacks import NIFGSM, PIFGSM, SINIFGSM, TIFGSM, VMIFGSM, VNIFGSM
from pyadvt.attacks.input_attacks import BSR, SSA, Admix
from pyadvt.attacks.mifgsm import MIFGSM
from pyadvt.attacks.model_attacks import SGM, LinBP
from pyadvt.attacks.modifiers import LinearBackprop, SkipGradient
from pyadvt.attacks.pgd import PGD
from pyadvt.attacks.svre import SVRE
from pyadvt.attacks.transforms import AdmixMix, BlockShuffleRotate, DiverseInputs, ScaleCopies, SpectrumTransform

SUITE = {"nifgsm": NIFGSM, "sinifgsm": SINIFGSM, "tifgsm": TIFGSM, "vmifgsm": VMIFGSM, "vnifgsm": VNIFGSM,
         "pifgsm": PIFGSM, "admix": Admix, "ssa": SSA, "bsr": BSR, "sgm": SGM, "linbp": LinBP, "ila": ILA,
         "fia": FIA, "naa": NAA, "svre": SVRE}
"""The fifteen attacks of the transfer suite, by lower-case name."""

CLASSES = {"pgd": PGD, "fgsm": FGSM, "mifgsm": MIFGSM, "di": DI, "dim": DIM, **SUITE}

TOKENS = ("mi", "ni", "vt", "vmi", "vni", "di", "si", "admix", "ssa", "bsr", "ti", "pi", "sgm", "linbp")

_CLASS_OPTIONS = {"tifgsm": {"ti_kernel": "len_kernel", "ti_nsig": "nsig"}}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def check_name(name: str) -> None:
    """``ValueError`` unless ``name`` is a class name or a valid composition (no model needed)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"'name' must be an attack name (str), got {name!r}")
    if _key(name) in CLASSES:
        return
    tokens = [t for t in name.lower().replace("_", "-").split("-") if t]
    if tokens and tokens[-1] == "fgsm":
        tokens = tokens[:-1]
    if not tokens or any(t not in TOKENS for t in tokens):
        raise ValueError(f"unknown attack {name!r}: use a class name ({', '.join(CLASSES)}) or tokens "
                         f"from {', '.join(TOKENS)} joined by '-' (e.g. 'mi-di-ti-si')")


def create(name: str, model: nn.Module | Sequence[nn.Module], eps: float = 16 / 255, alpha: float | None = None,
           steps: int = 10, **options: Any) -> Attack:
    """Build the attack ``name`` (a class name or a ``-`` composition, see the module doc).

    The presets and compositions of the transfer suite, docs/theory.md §10 (each class's own
    subsection §10.1-§10.14 gives its paper and defaults). The attack maps ``x [B, C, H, W]`` in
    [0, 1] and ``y [B]`` to ``[B, C, H, W]``.

    Raises:
        TypeError: when ``name`` is not a non-empty str, or an option is not a keyword of the class
            (or of :class:`TransferAttack` for a composition).
        ValueError: when ``name`` is neither a class name nor a composition of the listed tokens, or
            a composition combines ``pi`` with ``ni``/``vni``.
        TypeError, ValueError: the built class's own checks (e.g. :class:`pyadvt.attacks.Attack`'s on
            ``eps``, :class:`pyadvt.attacks.SGM`'s and ``linbp``'s need of a ResNet).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))
        >>> atk = create("mi-di-ti-si", net, eps=16/255, ti_kernel=3)
        >>> atk.mu, [t.name for t in atk.transforms], atk.ti_size
        (1.0, ['si', 'di'], 3)
        >>> type(create("VMI-FGSM", net)).__name__
        'VMIFGSM'
    """
    check_name(name)
    key = _key(name)
    if key in CLASSES:
        cls = CLASSES[key]
        opts = {_CLASS_OPTIONS.get(key, {}).get(k, k): v for k, v in options.items()}
        if cls is FGSM:
            return FGSM(model, eps=eps, **opts)
        return cls(model, eps, alpha, steps, **opts)
    tokens = [t for t in name.lower().replace("_", "-").split("-") if t]
    t = set(tokens) - {"fgsm"}
    o = dict(options)
    pop = o.pop
    momentum = bool(t & {"mi", "ni", "vmi", "vni", "admix", "bsr"})
    kwargs = dict(mu=pop("mu", 1.0 if momentum else None), nesterov=bool(t & {"ni", "vni"}))
    transforms = []
    if "admix" in t:
        transforms.append(AdmixMix(pop("admix_eta", 0.2), pop("admix_m2", 3)))
    if "si" in t or "admix" in t:
        transforms.append(ScaleCopies(pop("si_m", 5)))
    if "di" in t:
        transforms.append(DiverseInputs(pop("di_p", 0.7)))
    if "ssa" in t:
        transforms.append(SpectrumTransform(pop("ssa_n", 20), pop("ssa_rho", 0.5)))
    if "bsr" in t:
        transforms.append(BlockShuffleRotate(pop("bsr_n", 3), pop("bsr_copies", 20), pop("bsr_angle", 24.0)))
    modifiers = []
    if "sgm" in t:
        modifiers.append(SkipGradient(pop("sgm_gamma", 0.2)))
    if "linbp" in t:
        lb = LinearBackprop(pop("linbp_layer", None))
        lb.start = lb.first_block(model)
        modifiers.append(lb)
    ti = pop("ti_kernel", 15) if "ti" in t else None
    nsig = pop("ti_nsig", 3.0)
    vt = pop("vt_neighbours", 20) if t & {"vt", "vmi", "vni"} else 0
    vt_beta = pop("vt_beta", 1.5)
    amp = pop("pi_amplification", 10.0)
    for k in ("ti_kernel", "vt_neighbours"):
        o.pop(k, None)
    common = dict(transforms=transforms, ti_kernel=ti, ti_nsig=nsig, vt_neighbours=vt, vt_beta=vt_beta,
                  modifiers=modifiers, **kwargs, **o)
    if "pi" in t:
        if common.pop("nesterov"):
            raise ValueError("PI's update does not combine with NI's look-ahead; drop 'ni'")
        return PIFGSM(model, eps, alpha, steps, amplification=amp, **common)
    return TransferAttack(model, eps, alpha, steps, **common)
