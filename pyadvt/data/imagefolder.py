"""Class-subfolder image trees (``root/<class>/<image>.png``) as a Dataset that reads from disk.

Layout (torchvision's ``ImageFolder``)::

    root/cat/0001.png
    root/cat/more/0002.jpg      # files in nested folders count for their top-level class
    root/dog/0003.jpeg

Class names are the sorted sub-folder names; labels are their positions ``0..C-1``. Each item is
read when it is asked for (one batch in memory at a time through :func:`pyadvt.data.iter_batches`
or a ``DataLoader``), converted to RGB (or grayscale with ``channels=1``), resized so that it covers
``size`` (the shorter side becomes ``size`` for a square target) and center-cropped to ``size``,
as float32 ``[C, H, W]`` in [0, 1] (docs/theory.md §0, §9). The resize and crop follow
torchvision's ``Resize(size)`` + ``CenterCrop(size)`` conventions for PIL images (bilinear, the
long side truncated, the crop offset rounded), so the pixels equal that pipeline's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from pyadvt.data.files import DatasetFormatError
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def _check_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)):
        raise InvalidTypeError(f"'size' must be an int or an (height, width) pair of ints, got {size!r}")
    if min(size) < 1:
        raise InvalidValueError(f"'size' must be positive, got {size!r}")
    return int(size[0]), int(size[1])


def resize_crop(image, size: tuple[int, int] | None):
    """``image`` (PIL) resized to cover ``size`` = (height, width), then center-cropped to it.

    For a square ``size`` the shorter side becomes ``size`` and the longer is scaled with the aspect
    ratio kept (truncated to an int), as ``torchvision.transforms.Resize(int)`` does.
    """
    from PIL import Image

    if size is None:
        return image
    th, tw = size
    w, h = image.size
    if th == tw:
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = th, int(th * long / short)
        nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    else:
        scale = max(th / h, tw / w)
        nh, nw = max(th, int(h * scale)), max(tw, int(w * scale))
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.BILINEAR)
    top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
    return image.crop((left, top, left + tw, top + th))


class ImageFolder(Dataset):
    """A class-subfolder tree of images, read lazily: item ``i`` is ``(x [C, H, W] float32 in [0, 1], y int)``.

    Args:
        root: the folder holding one sub-folder per class.
        size: ``int`` or ``(height, width)``: resize to cover it and center-crop to it (``None``:
            keep each image's size; batching then needs equal sizes).
        channels: 3 (RGB, default) or 1 (grayscale, PIL's ``"L"`` conversion).
        extensions: file-name endings counted as images (case-insensitive).

    Attributes: ``classes`` (sorted names), ``num_classes``, ``samples`` (``(path, label)`` list),
    ``in_shape`` (``(C, H, W)`` when ``size`` is given).

    Raises ``FileNotFoundError`` when ``root`` is missing and :class:`DatasetFormatError` (a
    ``ValueError``) when it holds no class folder or a class folder holds no image, or when an image
    cannot be decoded (naming the file).

    In the example: a two-class tree of tiny PNGs; on a real tree ``ImageFolder("~/pets/val", size=224)``
    or ``load_dataset("imagefolder", "~/pets", "test", size=224)``.

    Example:
        >>> import os, tempfile
        >>> from PIL import Image
        >>> root = tempfile.mkdtemp()
        >>> for cls in ("cat", "dog"):
        ...     os.makedirs(os.path.join(root, cls))
        ...     Image.new("RGB", (10, 8), "white").save(os.path.join(root, cls, "a.png"))
        >>> data = ImageFolder(root, size=6)
        >>> x, y = data[1]
        >>> len(data), data.classes, tuple(x.shape), y
        (2, ['cat', 'dog'], (3, 6, 6), 1)
    """

    def __init__(self, root: str | os.PathLike, size: int | Sequence[int] | None = None, *, channels: int = 3,
                 extensions: Sequence[str] = EXTENSIONS) -> None:
        self.root = os.path.expanduser(os.fspath(root))
        self.size = _check_size(size)
        if channels not in (1, 3):
            raise InvalidValueError(f"'channels' must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        self.channels = channels
        exts = tuple(e.lower() for e in extensions)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"image folder {self.root!r} does not exist (expected one sub-folder per class "
                                    "holding PNG/JPEG files)")
        self.classes = sorted(d.name for d in os.scandir(self.root) if d.is_dir() and not d.name.startswith("."))
        if not self.classes:
            raise DatasetFormatError(f"{self.root}: no class sub-folders; expected root/<class>/<image>.png "
                                     "(one sub-folder per class)")
        self.samples: list[tuple[str, int]] = []
        for label, name in enumerate(self.classes):
            folder = os.path.join(self.root, name)
            files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder, followlinks=True) for f in fs
                           if f.lower().endswith(exts) and not f.startswith("."))
            if not files:
                raise DatasetFormatError(f"{folder}: class folder {name!r} holds no image file ({', '.join(exts)})")
            self.samples.extend((path, label) for path in files)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def targets(self) -> list[int]:
        """Label of every sample, in order (no image is read)."""
        return [label for _, label in self.samples]

    @property
    def in_shape(self) -> tuple[int, int, int] | None:
        return None if self.size is None else (self.channels, *self.size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image, UnidentifiedImageError

        path, label = self.samples[i]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB" if self.channels == 3 else "L")
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise DatasetFormatError(f"{path}: cannot decode the image ({exc}); expected a PNG/JPEG file") from None
        array = np.asarray(resize_crop(image, self.size), dtype=np.uint8)
        if array.ndim == 2:
            array = array[:, :, None]
        x = torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
        return x, label

    def __repr__(self) -> str:
        return (f"ImageFolder({self.root!r}, n={len(self)}, classes={self.num_classes}, size={self.size}, "
                f"channels={self.channels})")
