"""The field's transfer protocol: sources x targets x attacks, ASR over all images and over the images
every model classifies correctly (docs/theory.md §10).

``evaluate(sources, targets, (x, y), attacks=[...], protocol="standard")`` crafts each attack on each source
(the ensemble attacks, SVRE, on all sources together) once, then measures every target on the same
adversarial images. A *cell* is one (attack, source) pair; with ``store`` (a directory or a
:class:`~pyadvt.utils.sweep.CellStore`) every finished cell is written at once and a rerun resumes, and
under ``torchrun`` the cells are dealt to the ranks (:func:`pyadvt.utils.distributed.map_cells`).
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from pyadvt.attacks.composed import cost_per_image
from pyadvt.attacks.presets import _key, check_name, create
from pyadvt.utils.deprecation import move_positional
from pyadvt.utils.distributed import map_cells
from pyadvt.utils.modes import evaluating
from pyadvt.utils.sweep import CellStore, config_digest


@dataclass(frozen=True)
class Protocol:
    """Budget and optimiser shared by every attack of a comparison.

    Attributes: ``eps``, ``alpha``, ``steps``, ``mu`` (for attacks with momentum), ``ti_kernel`` (TI's
    kernel length, scaled to the image size) and ``batch_size`` (images per attack call).

    The standard protocol of docs/theory.md §10 (L-inf, ``eps = 16/255``, ``alpha = 1.6/255``, 10
    iterations, ``mu = 1``) is ``PROTOCOLS["standard"]``; ``"digits"`` and ``"fashion-mnist"`` scale
    the budget and TI's kernel to small images.

    Raises:
        ValueError: on construction, when ``eps`` or ``alpha`` is not a finite number ``> 0``, ``mu``
            not a finite number ``>= 0``, or ``steps``/``ti_kernel``/``batch_size`` not an int ``>= 1``
            (bools are refused too).

    Example:
        >>> PROTOCOLS["standard"].eps == 16 / 255, PROTOCOLS["digits"].ti_kernel
        (True, 3)
        >>> Protocol("mine", eps=0.1, alpha=0.01, steps=0)
        Traceback (most recent call last):
            ...
        ValueError: Protocol 'mine': 'steps' must be an int >= 1, got 0
    """

    name: str
    eps: float
    alpha: float
    steps: int
    mu: float = 1.0
    ti_kernel: int = 15
    batch_size: int = 128

    def __post_init__(self):
        for name in ("eps", "alpha", "mu"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0 \
                    or (v == 0 and name != "mu"):
                raise ValueError(f"Protocol {self.name!r}: '{name}' must be a finite number "
                                 f"{'>= 0' if name == 'mu' else '> 0'}, got {v!r}")
        for name in ("steps", "ti_kernel", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"Protocol {self.name!r}: '{name}' must be an int >= 1, got {v!r}")


PROTOCOLS = {
    # the field's ImageNet protocol (TransferAttack, TA-Bench): L-inf 16/255, alpha 1.6/255, 10 iterations, mu 1
    "standard": Protocol("standard", 16 / 255, 1.6 / 255, 10, 1.0, 15),
    # 8 x 8 digits: 16/255 barely moves a trained model; 0.2 = 51/255 puts MI's transfer ASR mid-range.
    # TI's 15-pixel kernel (7% of a 224 image) becomes 3 pixels.
    "digits": Protocol("digits", 0.2, 0.02, 10, 1.0, 3),
    # 28 x 28 Fashion-MNIST: 0.1 (about 25/255), kernel 5
    "fashion-mnist": Protocol("fashion-mnist", 0.1, 0.01, 10, 1.0, 5),
}

ENSEMBLE_ATTACKS = ("svre",)
DEFAULT_ATTACKS = ("mifgsm", "dim", "nifgsm", "sinifgsm", "tifgsm", "vmifgsm", "vnifgsm", "pifgsm", "admix", "ssa",
                   "bsr", "sgm", "linbp", "ila", "fia", "naa", "svre")


def get_protocol(protocol: str | Protocol, **overrides) -> Protocol:
    """A :class:`Protocol` by name (``standard``, ``digits``, ``fashion-mnist``) with fields overridden."""
    if isinstance(protocol, Protocol):
        p = protocol
    elif protocol in PROTOCOLS:
        p = PROTOCOLS[protocol]
    else:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return replace(p, **{k: v for k, v in overrides.items() if v is not None})


def build_for_protocol(name: str, model, protocol: Protocol, seed: int = 0):
    """``create(name, model)`` with the protocol's eps, alpha, steps, momentum and TI kernel."""
    key = _key(name)
    opts: dict = {"seed": seed}
    if key in ("mifgsm", "dim", "nifgsm", "sinifgsm", "tifgsm", "vmifgsm", "vnifgsm", "admix", "bsr", "sgm", "fia",
               "naa", "svre"):
        opts["mu"] = protocol.mu
    tokens = set(name.lower().split("-"))
    if key == "tifgsm" or "ti" in tokens:
        opts["ti_kernel"] = protocol.ti_kernel
    if key == "fgsm":
        opts = {"seed": seed}
    return create(name, model, protocol.eps, protocol.alpha, protocol.steps, **opts)


@dataclass
class SuiteResult:
    """Rows ``(attack, source, target, asr_all, asr_correct, n_all, n_correct, cost)`` of
    :func:`evaluate`; ``cost`` is gradient evaluations per image; ``protocol`` the settings used.

    The attack success rates of the transfer protocol of docs/theory.md §10 (``asr_correct`` over
    the ``correct_mask_size`` images every source and target classifies correctly); the costs are
    those of §10's cost table.

    Example:
        >>> rows = [{"attack": "mifgsm", "source": s, "target": t, "asr_all": v, "asr_correct": v,
        ...          "n_all": 4, "n_correct": 2, "cost": 10.0}
        ...         for s, t, v in [("a", "a", 1.0), ("a", "b", 0.5), ("c", "b", 0.25)]]
        >>> SuiteResult(rows, {"name": "digits"}, 2).matrix()  # mean over sources, source != target
        (['mifgsm'], ['a', 'b'], [[None, 0.375]])
        >>> SuiteResult(rows, {}, 2).table()["rows"][1]
        ['mifgsm', 'a', 'b', 0.5, 0.5, 4, 2, 10.0]
    """

    rows: list[dict]
    protocol: dict
    correct_mask_size: int

    def table(self) -> dict:
        """``{"title", "columns", "rows"}`` for :func:`pyadvt.report.make_result`'s ``tables``."""
        cols = ["attack", "source", "target", "asr_all", "asr_correct", "n_all", "n_correct", "cost"]
        return {"title": "attack success rates", "columns": cols, "rows": [[r[c] for c in cols] for r in self.rows]}

    def matrix(self, value: str = "asr_correct", transfer_only: bool = True) -> tuple[list[str], list[str], list]:
        """``(attacks, targets, M)`` with ``M[a][t]`` the mean of ``value`` over the sources (excluding
        source == target when ``transfer_only``)."""
        attacks = list(dict.fromkeys(r["attack"] for r in self.rows))
        targets = list(dict.fromkeys(r["target"] for r in self.rows))
        M = []
        for a in attacks:
            line = []
            for t in targets:
                vals = [r[value] for r in self.rows if r["attack"] == a and r["target"] == t
                        and not (transfer_only and r["source"] == t) and r[value] is not None]
                line.append(sum(vals) / len(vals) if vals else None)
            M.append(line)
        return attacks, targets, M


def _as_named(models, what: str) -> dict[str, nn.Module]:
    if isinstance(models, nn.Module):
        models = {"model": models}
    if isinstance(models, Mapping):
        out = dict(models)
    elif isinstance(models, Sequence):
        out = {f"{what}{i}": m for i, m in enumerate(models)}
    else:
        raise TypeError(f"'{what}s' must be an nn.Module, a list or a dict of them, got {type(models).__name__}")
    if not out:
        raise ValueError(f"'{what}s' must not be empty")
    for k, m in out.items():
        if not isinstance(m, nn.Module):
            raise TypeError(f"'{what}s[{k!r}]' must be an nn.Module, got {type(m).__name__}")
    return out


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    with evaluating(model):
        return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)])


def _is_names(value: Any) -> bool:
    """Whether ``value`` is attack names (a str, or a list/tuple of str): never ``evaluate``'s data."""
    return isinstance(value, str) or (isinstance(value, (list, tuple)) and all(isinstance(a, str) for a in value))


def _former_order(fn: Callable) -> Callable:
    """Decorator: ``evaluate``'s former call form ``evaluate(sources, targets, attacks, data, protocol)``
    (attack names before the data) keeps working for one release, with a ``DeprecationWarning`` pointing
    at the caller. A third positional argument that is attack names (:func:`_is_names`) starts it."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(args) > 2 and _is_names(args[2]):
            args, kwargs = move_positional(fn.__qualname__, 2, ("attacks", "data", "protocol"), args, kwargs, 2)
        return fn(*args, **kwargs)

    return wrapper


@_former_order
def evaluate(sources: nn.Module | Sequence[nn.Module] | Mapping[str, nn.Module],
             targets: nn.Module | Sequence[nn.Module] | Mapping[str, nn.Module],
             data: Any, *, attacks: Sequence[str] = DEFAULT_ATTACKS, protocol: str | Protocol = "standard",
             seed: int = 0, store: str | os.PathLike | CellStore | None = None, progress: bool = False
             ) -> SuiteResult:
    """Run ``attacks`` on every source and measure every target (the field's transfer protocol).

    Args:
        sources, targets: models (``nn.Module``, list or ``{name: model}``), logits over the same classes.
        data: ``(x [N, C, H, W] in [0, 1], y [N])`` or an object with ``.x`` / ``.y``.
        attacks: attack names for :func:`pyadvt.attacks.create` (class names or compositions);
            ``svre`` uses all sources together (its source is named ``"a+b+..."``).
        protocol: ``"standard"`` (L-inf 16/255, alpha 1.6/255, 10 iterations, mu 1), ``"digits"``,
            ``"fashion-mnist"`` or a :class:`Protocol`.
        seed: the attacks' per-sample random streams.
        store: directory (or :class:`CellStore`) of finished (attack, source) cells to resume from.

    The models and the data are the subject (positional, as in :func:`pyadvt.train.evaluate`); every
    option is keyword-only. The former order ``evaluate(sources, targets, attacks, data, protocol)``
    still works for one release, with a ``DeprecationWarning``.

    Returns:
        :class:`SuiteResult`: per (attack, source, target) the ASR over all images (target wrong after
        the attack) and over the images that every source and target classifies correctly, and the
        attack's gradient evaluations per image. An attack that does not apply to a source (SGM or
        LinBP on a network without residual blocks) has no rows for it.

    The protocol is that of docs/theory.md §10 (surrogates × targets, presets in
    :data:`PROTOCOLS`); the costs are gradient evaluations per image (§10's cost table).

    Raises:
        TypeError: when ``sources``/``targets`` is not an ``nn.Module``, a list or a dict of them (or
            holds something else), or an attack name is empty.
        ValueError: before any attack runs, when ``sources``/``targets`` is empty, ``data`` is missing
            or not ``x [N, ...]`` and ``y [N]`` tensors of one length, ``protocol`` is an unknown
            name, an attack name is neither a class name nor a valid composition, or an ensemble
            attack (``svre``) is given fewer than 2 sources; on the attack calls, the attacks' own
            errors (:class:`pyadvt.attacks.Attack`: inputs outside [0, 1], labels out of range, ...).

    Example:
        >>> import torch
        >>> nets = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)) for _ in range(2)]
        >>> x, y = torch.rand(6, 1, 4, 4), torch.randint(0, 3, (6,))
        >>> res = evaluate({"a": nets[0]}, {"b": nets[1]}, (x, y), attacks=["mifgsm"], protocol="digits")
        >>> [(r["attack"], r["source"], r["target"]) for r in res.rows]
        [('mifgsm', 'a', 'b')]
    """
    src, tgt = _as_named(sources, "source"), _as_named(targets, "target")
    if data is None:
        raise ValueError("'data' must be (x, y) tensors or an object with .x and .y")
    x, y = (data.x, data.y) if hasattr(data, "x") else data
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or x.shape[0] != y.shape[0]:
        raise ValueError("'data' must hold x [N, ...] and y [N] tensors of the same length")
    p = get_protocol(protocol)
    names = [str(a) for a in attacks]
    for a in names:                               # an unknown name fails before any work
        check_name(a)
        if _key(a) in ENSEMBLE_ATTACKS and len(src) < 2:
            raise ValueError(f"attack {a!r} is an ensemble attack: it needs at least 2 sources")
    preds_clean = {k: _predict(m, x, p.batch_size) for k, m in {**src, **tgt}.items()}
    correct = torch.stack([preds_clean[k] == y for k in preds_clean]).all(dim=0)
    cells = []
    for a in names:
        if _key(a) in ENSEMBLE_ATTACKS:
            if len(src) > 1:
                cells.append((a, "+".join(src)))
        else:
            cells += [(a, s) for s in src]

    def run(cell):
        attack_name, source_name = cell
        # the ensemble attacks' cell is named "a+b+..." and uses every source; any other cell is one
        # source, whatever its name (a source may itself be called "a+b")
        model = list(src.values()) if _key(attack_name) in ENSEMBLE_ATTACKS else src[source_name]
        try:
            atk = build_for_protocol(attack_name, model, p, seed)
        except ValueError as exc:                 # e.g. SGM on a network without residual blocks
            return {"not_applicable": str(exc)}
        advs, costs = [], []
        for i in range(0, x.shape[0], p.batch_size):
            advs.append(atk(x[i:i + p.batch_size], y[i:i + p.batch_size]))
            costs.append(cost_per_image(atk) * advs[-1].shape[0])
        adv = torch.cat(advs)
        out = {"cost": sum(costs) / x.shape[0]}
        for t, m in tgt.items():
            wrong = _predict(m, adv, p.batch_size) != y
            out[t] = {"asr_all": float(wrong.float().mean()),
                      "asr_correct": float(wrong[correct].float().mean()) if bool(correct.any()) else None}
        return out

    if store is not None and not isinstance(store, CellStore):
        store = CellStore(store, meta={"protocol": asdict(p), "seed": seed, "n": int(x.shape[0]),
                                       "data": config_digest(x.shape, float(x.double().sum()), y.tolist()),
                                       "targets": sorted(tgt)})
    results = map_cells(cells, run, store, progress=progress, desc="attack cells")
    rows = []
    for (a, s), res in results.items():
        if "not_applicable" in res:
            continue
        for t in tgt:
            rows.append({"attack": a, "source": s, "target": t, "asr_all": res[t]["asr_all"],
                         "asr_correct": res[t]["asr_correct"], "n_all": int(x.shape[0]),
                         "n_correct": int(correct.sum()), "cost": res["cost"]})
    return SuiteResult(rows, asdict(p), int(correct.sum()))
