"""``load_dataset(name, root, split)``: one entry point over every supported dataset."""

from __future__ import annotations

import os

from pyadvt.data.cifar import load_cifar
from pyadvt.data.digits import digits
from pyadvt.data.imagefolder import ImageFolder
from pyadvt.data.mnist import load_mnist
from pyadvt.data.stl10 import load_stl10
from pyadvt.data.tensor_data import TensorData
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

DATASETS = ("digits", "cifar10", "cifar100", "stl10", "mnist", "fashion-mnist", "kmnist", "imagefolder")
_ALIASES = {"cifar-10": "cifar10", "cifar-100": "cifar100", "stl-10": "stl10", "fashion_mnist": "fashion-mnist",
            "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist", "image-folder": "imagefolder",
            "image_folder": "imagefolder", "folder": "imagefolder"}

# Where a distribution's package puts a dataset when no root is given. Debian ships only
# Fashion-MNIST (``apt-get install dataset-fashion-mnist``; no MNIST or KMNIST package exists).
SYSTEM_ROOTS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist", "apt-get install dataset-fashion-mnist")}
_SPLIT_DIRS = {"train": ("train",), "test": ("test", "val", "valid", "validation")}


def canonical_name(name: str) -> str:
    """The ``DATASETS`` key of a dataset name or alias (``"CIFAR-10"`` -> ``"cifar10"``); unknown names pass through."""
    return _ALIASES.get(name.lower(), name.lower())


def default_root(name: str) -> str:
    """The system directory of dataset ``name`` (e.g. Debian's Fashion-MNIST package), or
    ``FileNotFoundError`` saying how to install it or which ``root`` to pass.

    Raises:
        FileNotFoundError: the system package of ``name`` is not installed.
        InvalidValueError: no system package provides ``name`` (pass ``root``).

    Example:
        >>> try:
        ...     default_root("cifar10")
        ... except InvalidValueError as err:
        ...     print("pass 'root'" in str(err))
        True
    """
    key = canonical_name(name)
    if key in SYSTEM_ROOTS:
        path, install = SYSTEM_ROOTS[key]
        if os.path.isdir(path):
            return path
        raise FileNotFoundError(f"dataset {name!r}: no root given and {path} does not exist; install Debian's "
                                f"package (`sudo {install}`) or pass root=<directory holding the IDX files>")
    raise InvalidValueError(f"dataset {name!r} is read from files and no system package provides it: pass 'root', "
                            "the directory holding them (pyadvt never downloads data)")


def _imagefolder_split(root: str | os.PathLike, split: str) -> str:
    """``root/<split>`` (``test`` also found as ``val`` / ``valid`` / ``validation``) when the tree is split,
    else ``root`` itself (one tree serves both splits)."""
    root = os.path.expanduser(os.fspath(root))
    for sub in _SPLIT_DIRS[split]:
        if os.path.isdir(os.path.join(root, sub)):
            return os.path.join(root, sub)
    other = [s for k, subs in _SPLIT_DIRS.items() if k != split for s in subs]
    if any(os.path.isdir(os.path.join(root, s)) for s in other):
        raise FileNotFoundError(f"image folder {root!r} is split into {'/'.join(s for s in other if os.path.isdir(os.path.join(root, s)))} "
                                f"but has no {'/'.join(_SPLIT_DIRS[split])} folder for split={split!r}")
    return root


@keyword_only("split")
def load_dataset(name: str, root: str | os.PathLike | None = None, *, split: str = "train",
                 size: int | tuple[int, int] | None = None, channels: int = 3) -> TensorData | ImageFolder:
    """The ``split`` ("train" or "test") of dataset ``name`` (see ``DATASETS``) read from ``root``.

    * ``"digits"`` needs no ``root`` (it ships with scikit-learn; this gives ``digits()``'s default
      seeded split).
    * ``"fashion-mnist"`` without ``root`` reads Debian's package directory
      ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``); other file
      datasets need ``root``. They are read into a :class:`TensorData` (itself a ``Dataset``) and
      never downloaded.
    * ``"imagefolder"`` gives an :class:`~pyadvt.data.imagefolder.ImageFolder` that streams
      ``root/<class>/*.png|jpg`` from disk, resized and center-cropped to ``size`` (``channels`` 3
      or 1); a tree split into ``root/train`` and ``root/test`` (or ``val``) gives the named split.

    Returns ``x [N, C, H, W]`` float32 in [0, 1] and ``y [N]`` int64 (a :class:`TensorData`, or an
    :class:`ImageFolder` yielding such samples).

    Raises:
        InvalidTypeError: ``name`` is not a string.
        InvalidValueError: unknown ``name``, ``split`` or ``channels``, or ``root`` missing where needed.
        FileNotFoundError, DatasetFormatError: as the dataset's loader.

    Example:
        >>> load_dataset("digits", split="test").x.shape
        torch.Size([450, 1, 8, 8])
    """
    if not isinstance(name, str):
        raise InvalidTypeError(f"'name' must be a str, got {type(name).__name__}")
    key = canonical_name(name)
    if key not in DATASETS:
        raise InvalidValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise InvalidValueError(f"'split' must be 'train' or 'test', got {split!r}")
    if key == "imagefolder":
        if root is None:
            raise InvalidValueError("dataset 'imagefolder' needs 'root', the folder holding one sub-folder per class")
        return ImageFolder(_imagefolder_split(root, split), size=size, channels=channels)
    if size is not None:
        raise InvalidValueError(f"'size' applies to 'imagefolder' only; {name!r} has a fixed image size")
    if key == "digits":
        train, test = digits()
        return train if split == "train" else test
    if root is None:
        root = default_root(key)
    if key in ("cifar10", "cifar100"):
        return load_cifar(root, split=split, num_classes=10 if key == "cifar10" else 100)
    if key == "stl10":
        return load_stl10(root, split)
    return load_mnist(root, split=split, variant=key)
