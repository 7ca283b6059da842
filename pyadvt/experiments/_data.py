"""The data every experiment reads: ``cfg["dataset"]`` names it (docs/theory.md §0).

``{"name": "digits"}`` (the default) is scikit-learn's 8x8 digits with ``digits()``'s seeded stratified
split. Any other name of :data:`pyadvt.data.load.DATASETS` (``"fashion-mnist"``, ``"mnist"``,
``"kmnist"``, ``"cifar10"``, ``"imagefolder"`` ...) is read with :func:`pyadvt.data.load_dataset`
from ``root`` (``None``: the system package's directory, e.g. Debian's
``/usr/share/datasets/fashion-mnist``), and its official train / test splits are cut to seeded,
class-balanced subsets of ``train_size`` / ``test_size`` images (``None``: all) so that the presets
fit a small CPU budget. Images stay in [0, 1] (eps is in those units for every data set).
:func:`split_transfer_defaults` gives the data and class keys that the experiments transferring from
one half of the classes to the other start their configs with.

Example:
    >>> train, test = experiment_data({"name": "digits"}, seed=0, classes=[3, 8])
    >>> train.x.shape[1:], train.num_classes
    (torch.Size([1, 8, 8]), 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pyadvt.data import TensorData, digits
from pyadvt.utils.validation import InvalidValueError

__all__ = ["DIGITS", "experiment_data", "dataset_name", "select_classes", "split_transfer_defaults"]

DIGITS: dict = {"name": "digits", "root": None, "train_size": None, "test_size": None}


def split_transfer_defaults() -> dict:
    """The first config keys of the experiments that train sources on one half of the classes and
    transfer them to the other (robust-transfer, robustness-transfer): ``seed``, ``dataset``
    (:data:`DIGITS`), ``model`` (a three-block SmallCNN), ``source_classes`` 0-4 and
    ``target_classes`` 5-9. A new dict at each call, so that no two experiments share a mutable part.

    Example:
        >>> cfg = {**split_transfer_defaults(), "eps": 0.1}
        >>> list(cfg), cfg["target_classes"]
        (['seed', 'dataset', 'model', 'source_classes', 'target_classes', 'eps'], [5, 6, 7, 8, 9])
    """
    return {"seed": 0, "dataset": dict(DIGITS), "model": {"arch": "cnn", "channels": [16, 32, 64]},
            "source_classes": [0, 1, 2, 3, 4], "target_classes": [5, 6, 7, 8, 9]}


def dataset_name(spec: dict | str | None) -> str:
    """The canonical name of ``cfg["dataset"]`` (``"digits"`` when absent)."""
    from pyadvt.data.load import canonical_name

    if spec is None:
        return "digits"
    return canonical_name(spec if isinstance(spec, str) else spec.get("name", "digits"))


def select_classes(data: TensorData, classes: Sequence[int] | None) -> TensorData:
    """Keep ``classes`` (in that order, relabelled ``0..k-1``); ``None`` keeps all."""
    if classes is None:
        return data
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes) or not classes:
        raise InvalidValueError(f"'classes' must be distinct class indices, got {classes}")
    C = int(data.num_classes)
    bad = [c for c in classes if not 0 <= c < C]
    if bad:
        raise InvalidValueError(f"classes {bad} do not exist: the data set has classes 0..{C - 1}")
    lookup = torch.full((C,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    y = data.y.long()
    mask = lookup[y] >= 0
    return TensorData(data.x[mask], lookup[y[mask]], len(classes))


def _subset(data: TensorData, size, seed: int) -> TensorData:
    from pyadvt.transfer.sweep import balanced_subset

    if size is None:
        return data
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InvalidValueError(f"'dataset.train_size' / 'dataset.test_size' must be a positive int or null, got {size!r}")
    return balanced_subset(data, size, seed)


def experiment_data(spec: dict | str | None, seed: int = 0, classes: Sequence[int] | None = None,
                    ) -> tuple[TensorData, TensorData]:
    """``(train, test)`` of the data set ``spec`` (``cfg["dataset"]``), restricted to ``classes``.

    Args:
        spec: ``{"name", "root", "train_size", "test_size"}`` (missing keys: :data:`DIGITS`'s) or a name.
        seed: digits' split seed; for file data sets the seed of the class-balanced subsets (the
            official train / test split itself is fixed).
        classes: the classes kept and relabelled ``0..k-1`` in that order (``None``: all).

    Returns ``TensorData`` pairs with images ``[N, C, H, W]`` in [0, 1] (``in_shape = train.x.shape[1:]``).
    """
    from pyadvt.data.load import DATASETS, load_dataset

    spec = dict(DIGITS, **({"name": spec} if isinstance(spec, str) else (spec or {})))
    name = dataset_name(spec)
    if name not in DATASETS:
        raise InvalidValueError(f"unknown dataset {spec['name']!r} in 'dataset.name'; choose one of {', '.join(DATASETS)}")
    if name == "digits":
        if spec["root"] is not None:
            raise InvalidValueError("'dataset.root' does not apply to digits (it ships with scikit-learn)")
        train, test = digits(seed=seed, classes=classes)
    else:
        parts = []
        for split in ("train", "test"):
            data = load_dataset(name, spec["root"], split=split)
            if not isinstance(data, TensorData):  # an image folder: read it into memory (small sets only)
                xs, ys = zip(*[data[i] for i in range(len(data))])
                data = TensorData(torch.stack(xs), torch.as_tensor(ys, dtype=torch.long), data.num_classes)
            parts.append(select_classes(data, classes))
        train, test = parts
    return _subset(train, spec["train_size"], seed), _subset(test, spec["test_size"], seed + 1)
