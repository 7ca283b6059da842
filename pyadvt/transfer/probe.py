"""Knowledge transferability of a source model to a target task (seed 000 §3.1 / §4.1, docs/theory.md §2).

Seed 000 measures knowledge transfer by the *final loss* (and accuracy) of the transferred model on
the target data, for two protocols:

* ``"probe"`` (the paper's "direct transfer", used in §4.1): replace the head by a fresh linear layer
  and train only it, features frozen (BatchNorm statistics frozen too, docs/theory.md §4);
* ``"finetune"``: new head, then all weights train; the per-epoch evaluation history is the
  fine-tuning curve of the paper's Fig. 3 (right): more transferable sources converge faster.

Both reuse :func:`pyadvt.transfer.finetune.finetune` (hence :func:`pyadvt.train.fit`); the source is
never modified.

Example:
    >>> import torch
    >>> from pyadvt.data import TensorData
    >>> from pyadvt.models import build
    >>> torch.manual_seed(0) is not None
    True
    >>> src = build("mlp", hidden=(16,), num_classes=5)
    >>> tr = TensorData(torch.rand(40, 1, 8, 8), torch.arange(40) % 3)
    >>> kt = knowledge_transferability(src, tr, tr, epochs=2)
    >>> sorted(kt.summary())[:3], len(kt.curve)
    (['accuracy', 'auc_loss', 'curve'], 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from pyadvt.train.fit import EvalData, TrainData, evaluate
from pyadvt.transfer.finetune import finetune
from pyadvt.utils.deprecation import renamed_names

_METHODS = {"probe": "head", "finetune": "all"}


@dataclass
class KnowledgeTransferabilityResult:
    """Target-test ``loss`` and ``accuracy`` of the transferred model, its per-epoch ``curve``
    (``[{"epoch", "eval_loss", "eval_accuracy", "train_loss"}, ...]``), the ``method`` and the ``model``.

    Returned by :func:`knowledge_transferability` (seed 000's knowledge transferability,
    docs/theory.md §2); a plain record.

    Example:
        >>> kt = KnowledgeTransferabilityResult(method="probe", loss=0.5, accuracy=0.8,
        ...                        curve=[{"epoch": 1, "eval_loss": 0.7}, {"epoch": 2, "eval_loss": 0.5}])
        >>> kt.auc_loss, kt.summary()["epochs"]
        (0.6, 2)
    """

    method: str
    loss: float
    accuracy: float
    curve: list[dict] = field(default_factory=list)
    model: nn.Module | None = None

    @property
    def auc_loss(self) -> float:
        """Mean test loss over the epochs: lower = faster convergence (Fig. 3 right)."""
        vals = [c["eval_loss"] for c in self.curve]
        return sum(vals) / len(vals) if vals else float("nan")

    def summary(self) -> dict:
        return {"method": self.method, "loss": self.loss, "accuracy": self.accuracy, "auc_loss": self.auc_loss,
                "epochs": len(self.curve),
                "curve": [{k: c[k] for k in ("epoch", "train_loss", "eval_loss", "eval_accuracy") if k in c}
                          for c in self.curve]}


def knowledge_transferability(source: nn.Module, train: TrainData, test: EvalData, *, method: str = "probe", epochs: int = 10,
                              lr: float = 0.05, batch_size: int = 64, weight_decay: float = 5e-4, seed: int = 0,
                              legacy_bn_drift: bool = False, progress: bool = False) -> KnowledgeTransferabilityResult:
    """Transfer ``source`` to the target task and report the target-test loss and accuracy.

    Args:
        source: split model (``features``/``blocks``/``head``, see :mod:`pyadvt.models`); not modified.
        train, test: target :class:`~pyadvt.data.TensorData` (the head gets ``train.num_classes`` outputs).
        method: ``"probe"`` (linear probe, frozen features and BatchNorm statistics) or ``"finetune"`` (all).
        epochs, lr, batch_size, weight_decay, seed: :func:`pyadvt.train.fit` settings (SGD, momentum 0.9,
            cosine schedule, no warmup).
        legacy_bn_drift: let frozen BatchNorm layers update (the authors' code).

    Source: seed 000 (Liang et al., ICML 2021) §3.1 / §4.1; docs/theory.md §2.  Inputs ``x [N, *in]``.

    Raises:
        ValueError: ``method`` is unknown, or as :func:`pyadvt.transfer.finetune` (empty ``train``,
            NaN/Inf weights, not a split model).

    Example:
        >>> from pyadvt.data import digits
        >>> from pyadvt.models import build
        >>> train, test = digits(classes=(0, 1))
        >>> kt = knowledge_transferability(build("mlp", num_classes=10), train, test, method="finetune", epochs=1)
        >>> kt.method, len(kt.curve), kt.model.head.out_features, 0.0 <= kt.accuracy <= 1.0
        ('finetune', 1, 2, True)
    """
    if method not in _METHODS:
        raise ValueError(f"'method' must be one of {sorted(_METHODS)}, got {method!r}")
    res = finetune(source, train, blocks=_METHODS[method], epochs=epochs, lr=lr, batch_size=batch_size,
                   weight_decay=weight_decay, seed=seed, eval_data=test, legacy_bn_drift=legacy_bn_drift,
                   progress=progress)
    final = evaluate(res.model, test)
    return KnowledgeTransferabilityResult(method=method, loss=float(final["loss"]), accuracy=float(final["accuracy"]),
                             curve=list(res.history), model=res.model)

__getattr__ = renamed_names(__name__, {"KnowledgeTransfer": "KnowledgeTransferabilityResult"})  # the former name, for one release
