"""Transfer by fine-tuning (seeds 002 and 004, docs/theory.md §4): new head, last-k blocks, full FT, LP-FT.

* ``blocks="head"`` (or 0): linear probing (LP) — only the new head trains;
* ``blocks=k``: the last ``k`` entries of ``model.blocks`` and the head train (seed 002 fine-tunes
  1 / 3 / 9 "convolutional blocks");
* ``blocks="all"``: full fine-tuning (FT);
* :func:`lp_ft`: LP, then FT of everything with half the epochs (Kumar et al. 2022; seed 004 B.4).

BatchNorm layers inside the frozen part keep their running statistics and run in eval mode while the
rest trains (docs/theory.md §4); ``legacy_bn_drift=True`` lets them update in train mode, as the authors'
code did. Every run records a per-epoch history (``train_loss`` and, with ``eval_data``, the test
accuracy curve of seed 002 Fig. 3).

The source model is never modified: a deep copy is fine-tuned and returned.

Example:
    >>> import torch
    >>> from pyadvt.data import TensorData
    >>> from pyadvt.models import build
    >>> src = build("mlp", hidden=(16,), num_classes=5)
    >>> data = TensorData(torch.rand(40, 1, 8, 8), torch.arange(40) % 3)
    >>> res = finetune(src, data, blocks="head", num_classes=3, epochs=2, eval_data=data)
    >>> res.model.num_classes, len(res.curve), src.num_classes
    (3, 2, 5)
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pyadvt.train.fit import EvalData, TrainData, fit
from pyadvt.utils.errors import InvalidValueError

__all__ = ["FinetuneResult", "replace_head", "trainable_modules", "frozen_batchnorm", "finetune", "linear_probe",
           "lp_ft"]

_BN = nn.modules.batchnorm._BatchNorm


@dataclass
class FinetuneResult:
    """The fine-tuned copy, its per-epoch ``history`` (dicts from :func:`pyadvt.train.fit`, with a
    ``phase`` key) and the ``method`` (``"head"``, ``"last-k"``, ``"all"`` or ``"lp-ft"``).

    Returned by :func:`finetune`, :func:`linear_probe` and :func:`lp_ft` (the transfer protocols of
    docs/theory.md §4; seed 002 Section 4, seed 004 Section 5); a plain record.

    Example:
        >>> from torch import nn
        >>> history = [{"epoch": 1, "eval_accuracy": 0.5}, {"epoch": 2, "eval_accuracy": 0.75}]
        >>> res = FinetuneResult(nn.Linear(4, 2), history, "head")
        >>> res.curve, res.final["epoch"]
        ([0.5, 0.75], 2)
    """

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    method: str = ""

    @property
    def curve(self) -> list[float]:
        """Per-epoch evaluation accuracy (empty without ``eval_data``)."""
        return [h["eval_accuracy"] for h in self.history if "eval_accuracy" in h]

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def _blocks_of(model: nn.Module) -> list[nn.Module]:
    blocks = getattr(model, "blocks", None)
    if blocks is None or not isinstance(getattr(model, "head", None), nn.Linear):
        raise ValueError("fine-tuning needs a split model with 'blocks' (input -> output) and a linear 'head' "
                         "(see pyadvt.models.wrap)")
    return list(blocks)


def replace_head(model: nn.Module, num_classes: int, seed: int = 0) -> nn.Module:
    """Give ``model`` (in place) a fresh ``nn.Linear(feature_dim, num_classes)`` head, initialised
    from ``seed`` (PyTorch's default init) on the old head's device and dtype; returns ``model``.

    Source: the fresh linear head of the transfer protocols, docs/theory.md §4.

    Raises:
        ValueError: ``model`` is not a split model (``blocks`` and a linear ``head``), or
            ``num_classes`` is not a positive int.

    Example:
        >>> from pyadvt.models import build
        >>> net = build("mlp", hidden=(16,), num_classes=5)
        >>> replace_head(net, 3, seed=1).head
        Linear(in_features=16, out_features=3, bias=True)
    """
    _blocks_of(model)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"'num_classes' must be a positive int, got {num_classes!r}")
    old = model.head
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    model.head = new.to(device=old.weight.device, dtype=old.weight.dtype)
    return model


def trainable_modules(model: nn.Module, blocks: str | int) -> list[nn.Module]:
    """The modules that train for ``blocks`` (``"head"``/0, an int ``k``, or ``"all"``): the head plus
    the last ``k`` blocks; ``"all"`` is the whole model."""
    all_blocks = _blocks_of(model)
    if blocks == "all":
        return [model]
    if blocks == "head":
        blocks = 0
    if not isinstance(blocks, int) or isinstance(blocks, bool) or not 0 <= blocks <= len(all_blocks):
        raise ValueError(f"'blocks' must be 'head', 'all' or an int in [0, {len(all_blocks)}], got {blocks!r}")
    return [model.head] + (all_blocks[len(all_blocks) - blocks:] if blocks else [])


@contextlib.contextmanager
def frozen_batchnorm(model: nn.Module, trainable: list[nn.Module], drift: bool = False) -> Iterator[None]:
    """Inside the block, BatchNorm layers outside ``trainable`` stay in eval mode even when
    ``model.train()`` is called (unless ``drift``); ``requires_grad`` is on exactly for ``trainable``'s
    parameters. Flags and modes are restored on exit."""
    train_ids = {id(p) for m in trainable for p in m.parameters()}
    inside = {id(m) for t in trainable for m in t.modules()}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    patched: list[nn.Module] = []
    try:
        for p in model.parameters():
            p.requires_grad_(id(p) in train_ids)
        if not drift:
            for m in model.modules():
                if isinstance(m, _BN) and id(m) not in inside:
                    m.train = _stay_eval.__get__(m)  # instance override: model.train() recurses into it
                    m.training = False
                    patched.append(m)
        yield
    finally:
        for m in patched:
            del m.train
        for p, flag in flags:
            p.requires_grad_(flag)


def _stay_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


def finetune(model: nn.Module, train: TrainData, *, blocks: str | int = "all", num_classes: int | None = None,
             epochs: int = 10, lr: float = 0.01, batch_size: int = 64, weight_decay: float = 5e-4,
             warmup_epochs: float = 0.0, seed: int = 0, eval_data: EvalData | None = None,
             legacy_bn_drift: bool = False, new_head: bool = True, progress: bool = False, phase: str | None = None,
             **fit_kwargs: Any) -> FinetuneResult:
    """Fine-tune a copy of ``model`` on ``train`` (TensorData) with ``blocks`` trainable.

    Args:
        model: split model (``blocks``, ``head``); not modified.
        train: target data; ``num_classes`` defaults to ``train.num_classes``.
        blocks: ``"head"`` (LP), an int ``k`` (last k blocks + head) or ``"all"`` (FT).
        epochs, lr, batch_size, weight_decay, warmup_epochs, seed: :func:`pyadvt.train.fit` settings
            (SGD + momentum 0.9, cosine schedule).
        eval_data: evaluated after each epoch (the accuracy curve).
        legacy_bn_drift: let frozen BatchNorm layers update their statistics (authors' code).
        new_head: replace the head (default); ``False`` keeps the current head (used by LP-FT).
        fit_kwargs: passed to :func:`pyadvt.train.fit` (e.g. ``loss_fn``, ``batch_transform``).

    Raises:
        ValueError: ``train`` is empty, or the model to train (after the head is replaced) has
            NaN/Inf weights.

    Source: fine-tuning the last ``k`` blocks / all weights, docs/theory.md §4 (seed 002 Section 4).
    Inputs ``x [N, *in]``; the copy outputs ``[B, num_classes]``.

    Example:
        >>> import torch
        >>> from pyadvt.data import TensorData
        >>> from pyadvt.models import build
        >>> _ = torch.manual_seed(0)
        >>> src = build("mlp", hidden=(16,), num_classes=5)
        >>> tr = TensorData(torch.rand(40, 1, 8, 8), torch.arange(40) % 3)
        >>> res = finetune(src, tr, blocks=1, epochs=1)
        >>> res.method, res.model is src, res.model(tr.x[:2]).shape
        ('last-k', False, torch.Size([2, 3]))
    """
    if hasattr(train, "__len__") and len(train) == 0:  # before num_classes is read from the (empty) labels
        raise InvalidValueError("'train' is empty (0 samples); pass a dataset with at least one sample")
    model = copy.deepcopy(model)
    if new_head:
        C = num_classes if num_classes is not None else getattr(train, "num_classes", None)
        if C is None:
            raise ValueError("'num_classes' is needed when 'train' does not carry it")
        replace_head(model, int(C), seed=seed)
    _check_finite_weights(model)
    trainable = trainable_modules(model, blocks)
    was_training = model.training
    with frozen_batchnorm(model, trainable, drift=legacy_bn_drift):
        res = fit(model, train, epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                  warmup_epochs=warmup_epochs, seed=seed, eval_data=eval_data, progress=progress, **fit_kwargs)
    model.train(was_training)  # one consistent mode (frozen BatchNorm layers were held in eval)
    name = "head" if blocks in ("head", 0) else ("all" if blocks == "all" else "last-k")
    history = [dict(h, phase=phase or name) for h in res.history]
    return FinetuneResult(model, history, name)


def _check_finite_weights(model: nn.Module) -> None:
    """The model to train (its new head already in place) must have finite weights: NaN/Inf weights
    make every loss NaN, and training would return a NaN model with no error."""
    bad = [n for n, t in model.named_parameters() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise InvalidValueError(f"'model' has non-finite (NaN/Inf) weights in {', '.join(bad[:3])}"
                                + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
                                + "; training it gives NaN losses: load a finite checkpoint")


def linear_probe(model: nn.Module, train: TrainData, **kwargs: Any) -> FinetuneResult:
    """Linear probing: :func:`finetune` with ``blocks="head"``.

    Source: linear probing (LP), docs/theory.md §4 (seed 004 Section 5).

    Raises:
        ValueError: as :func:`finetune` (empty ``train``, NaN/Inf weights, not a split model).

    Example:
        >>> import torch
        >>> from pyadvt.data import digits
        >>> from pyadvt.models import build
        >>> train, test = digits(classes=(3, 8))
        >>> cnn = build("cnn", num_classes=10)
        >>> res = linear_probe(cnn, train, epochs=1, eval_data=test)
        >>> kept = cnn.blocks.state_dict()  # the source's features and BatchNorm statistics
        >>> res.method, all(torch.equal(v, kept[k]) for k, v in res.model.blocks.state_dict().items())
        ('head', True)
    """
    return finetune(model, train, blocks="head", **kwargs)


def lp_ft(model: nn.Module, train: TrainData, *, epochs: int = 10, lp_lr: float = 0.01, ft_lr: float = 0.001,
          ft_epochs: int | None = None, **kwargs: Any) -> FinetuneResult:
    """LP-FT: linear probing for ``epochs`` then full fine-tuning of the probed model for
    ``ft_epochs`` (default ``max(1, epochs // 2)``, docs/theory.md §4) starting from the probed head.

    The history concatenates both phases (``phase`` = ``"lp"`` / ``"ft"``, epochs renumbered).

    Raises:
        ValueError: as :func:`finetune`.

    Example:
        >>> from pyadvt.data import digits
        >>> from pyadvt.models import build
        >>> train, _ = digits(classes=(0, 1, 2))
        >>> res = lp_ft(build("mlp", num_classes=10), train, epochs=2)  # 2 LP epochs, then 2 // 2 = 1 FT epoch
        >>> res.method, [(h["phase"], h["epoch"]) for h in res.history]
        ('lp-ft', [('lp', 1), ('lp', 2), ('ft', 3)])
    """
    lp = finetune(model, train, blocks="head", epochs=epochs, lr=lp_lr, phase="lp", **kwargs)
    kwargs.pop("num_classes", None)
    ft = finetune(lp.model, train, blocks="all", epochs=ft_epochs or max(1, epochs // 2), lr=ft_lr,
                  new_head=False, phase="ft", **kwargs)
    history = lp.history + [dict(h, epoch=h["epoch"] + epochs) for h in ft.history]
    return FinetuneResult(ft.model, history, "lp-ft")
