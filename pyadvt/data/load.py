"""``load_dataset(name, root, split)``: one entry point over every supported dataset."""

from __future__ import annotations

import os

from pyadvt.data.cifar import load_cifar
from pyadvt.data.digits import digits
from pyadvt.data.mnist import load_mnist
from pyadvt.data.stl10 import load_stl10
from pyadvt.data.tensor_data import TensorData

DATASETS = ("digits", "cifar10", "cifar100", "stl10", "mnist", "fashion-mnist", "kmnist")
_ALIASES = {"cifar-10": "cifar10", "cifar-100": "cifar100", "stl-10": "stl10", "fashion_mnist": "fashion-mnist",
            "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist"}


def load_dataset(name: str, root: str | os.PathLike | None = None, split: str = "train") -> TensorData:
    """The ``split`` ("train" or "test") of dataset ``name`` (see ``DATASETS``) read from ``root``.

    ``"digits"`` needs no ``root`` (it ships with scikit-learn; this gives ``digits()``'s default
    seeded split). File datasets are read from ``root`` and never downloaded.

    Example:
        >>> load_dataset("digits", split="test").x.shape
        torch.Size([450, 1, 8, 8])
    """
    if not isinstance(name, str):
        raise TypeError(f"'name' must be a str, got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"'split' must be 'train' or 'test', got {split!r}")
    if key == "digits":
        train, test = digits()
        return train if split == "train" else test
    if root is None:
        raise ValueError(f"dataset {name!r} is read from files: pass 'root', the directory holding them")
    if key in ("cifar10", "cifar100"):
        return load_cifar(root, split, num_classes=10 if key == "cifar10" else 100)
    if key == "stl10":
        return load_stl10(root, split)
    return load_mnist(root, split, variant=key)
