"""One way to walk data: ``iter_batches(data, batch_size)`` over tensors, ``TensorData``, ``Dataset`` and ``DataLoader``.

Every function of pyadvt that walks a dataset (metrics, attack drivers, rankings, experiments)
goes through :func:`iter_batches`, so each accepts the same inputs and holds at most one batch of
the dataset in memory at a time (docs/theory.md §9):

=====================================  ==========================================================
``data``                               batches
=====================================  ==========================================================
``x`` tensor ``[N, *in_shape]``        slices ``x[i:i+b]`` (views, no copy), ``y = None``
``(x, y)`` tensors (tuple or list)     slices of both; ``y`` may be ``None``
:class:`~pyadvt.data.TensorData`       slices of ``data.x`` and ``data.y``
map-style ``Dataset``                  ``b`` items ``data[i]`` stacked: each item is ``(x, y)``, a
                                       tensor ``x``, or a dict (``"x"``/``"image"``/``"pixel_values"``
                                       and ``"y"``/``"label"``/``"labels"``/``"target"``)
``IterableDataset``                    ``b`` consecutive items stacked, as above
``DataLoader`` (or any re-iterable     its own batches in the formats above; a batch larger than
object yielding batches)               ``batch_size`` is split, so ``batch_size`` bounds memory
=====================================  ==========================================================

Labels are returned as int64 ``[b]``; ``x`` as the floating tensor the source holds (moved to
``device`` when given). A generator or iterator is refused: it can be walked only once, and most
metrics walk their data more than once.

Example:
    >>> import torch
    >>> x, y = torch.rand(5, 1, 2, 2), torch.arange(5)
    >>> [tuple(yb.tolist()) for _, yb in iter_batches((x, y), 2)]
    [(0, 1), (2, 3), (4,)]
    >>> ds = torch.utils.data.TensorDataset(x, y)
    >>> [xb.shape[0] for xb, _ in iter_batches(torch.utils.data.DataLoader(ds, batch_size=4), 3)]
    [3, 1, 1]
    >>> num_samples(ds), num_batches(ds, 2)
    (5, 3)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from pyadvt.data.tensor_data import TensorData
from pyadvt.utils.deprecation import keyword_only
from pyadvt.utils.progress import progress as _progress
from pyadvt.utils.validation import InvalidTypeError, InvalidValueError, check_batch_size

Batch = tuple[torch.Tensor, "torch.Tensor | None"]

_X_KEYS = ("x", "image", "images", "img", "pixel_values", "input", "inputs")
_Y_KEYS = ("y", "label", "labels", "target", "targets")
_KINDS = ("a tensor x [N, ...], a pair (x, y), a TensorData, a torch.utils.data.Dataset of (x, y) items "
          "or a DataLoader")


def is_data(obj: Any) -> bool:
    """True when ``obj`` is a dataset source that :func:`iter_batches` walks (and not a bare tensor).

    Metrics with a ``(model, x, y)`` signature use it to accept ``x=dataset, y=None``.
    """
    return isinstance(obj, (TensorData, Dataset, DataLoader)) or (
        isinstance(obj, Iterable) and not isinstance(obj, (torch.Tensor, str, bytes, Mapping, Iterator)))


@keyword_only("name")
def as_data(x: Any, y: torch.Tensor | None = None, *, name: str = "x") -> Any:
    """Combine a metric's ``(x, y)`` arguments into one source for :func:`iter_batches`.

    ``x`` may be a tensor (then ``y`` is its label tensor or ``None``) or any dataset source (then
    ``y`` must be ``None``: the labels come from the source).  A tensor ``x`` is ``[N, *in]``, its
    ``y`` ``[N]``.

    Raises:
        InvalidValueError: ``y`` is given with a dataset source, or does not have one label per sample.
        InvalidTypeError: ``x`` is neither a tensor nor a dataset source.

    Example:
        >>> x, y = torch.rand(4, 1, 2, 2), torch.arange(4)
        >>> as_data(x, y)[1] is y, as_data(x) is x
        (True, True)
    """
    if isinstance(x, torch.Tensor):
        return x if y is None else (x, y)
    if y is not None:
        raise InvalidValueError(f"'y' must be None when '{name}' is a {type(x).__name__} (its labels are read from it); "
                         f"pass y only with a tensor '{name}'")
    if not is_data(x):
        raise InvalidTypeError(f"'{name}' must be {_KINDS}, got {type(x).__name__}")
    return x


def _check_labels(y: Any, n: int, where: str) -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.dim() == 0:
        y = y.reshape(1)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise InvalidValueError(f"{where}: labels must be integer class indices, got {y.dtype}")
    if y.dim() != 1 or y.shape[0] != n:
        raise InvalidValueError(f"{where}: labels must have shape [{n}] (one per sample), got {tuple(y.shape)}")
    return y.to(torch.int64)


def _check_inputs(x: Any, where: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        hint = (" (convert images with a transform such as torchvision.transforms.ToTensor())"
                if type(x).__module__.startswith("PIL") else "")
        raise InvalidTypeError(f"{where}: inputs must be torch.Tensors, got {type(x).__name__}{hint}")
    if x.dim() < 1:
        raise InvalidValueError(f"{where}: inputs must have a batch dimension, got a 0-d tensor")
    return x


def _split_item(item: Any, where: str) -> tuple[Any, Any]:
    """``(x, y)`` of one item or batch: a pair, a bare tensor or a dict."""
    if isinstance(item, torch.Tensor):
        return item, None
    if isinstance(item, Mapping):
        xk = next((k for k in _X_KEYS if k in item), None)
        if xk is None:
            raise InvalidValueError(f"{where}: a dict item needs one of the keys {_X_KEYS} for the inputs, "
                             f"got keys {sorted(map(str, item))}")
        yk = next((k for k in _Y_KEYS if k in item), None)
        return item[xk], (item[yk] if yk is not None else None)
    if isinstance(item, (tuple, list)) and len(item) in (1, 2):
        return item[0], (item[1] if len(item) == 2 else None)
    raise InvalidTypeError(f"{where}: each item must be (x, y), a tensor x or a dict with 'x'/'y' keys, "
                    f"got {type(item).__name__}" + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else ""))


def _stack(items: list, where: str) -> Batch:
    """Stack a list of single-sample items into one batch."""
    xs, ys = [], []
    for item in items:
        x, y = _split_item(item, where)
        xs.append(_check_inputs(x, where))
        ys.append(y)
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) > 1:
        raise InvalidValueError(f"{where}: items have different shapes {sorted(shapes)}; resize them to one shape "
                         "(e.g. load_dataset('imagefolder', root, size=...))")
    x = torch.stack(xs)
    has_y = [y is not None for y in ys]
    if any(has_y) and not all(has_y):
        raise InvalidValueError(f"{where}: some items have labels and some do not")
    y = _check_labels(torch.stack([torch.as_tensor(v) for v in ys]).reshape(-1), x.shape[0], where) if all(has_y) else None
    return x, y


def _from_batch(batch: Any, where: str) -> Batch:
    x, y = _split_item(batch, where)
    x = _check_inputs(x, where)
    return x, (None if y is None else _check_labels(y, x.shape[0], where))


def _tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(x, y)`` when ``data`` is held as tensors (sliced without copies), else ``None``."""
    if isinstance(data, torch.Tensor):
        return data, None
    if isinstance(data, TensorData):
        return data.x, data.y
    if isinstance(data, TensorDataset) and len(data.tensors) in (1, 2):  # sliced, not collated item by item
        x, *rest = data.tensors
        return x, (_check_labels(rest[0], x.shape[0], "'data' (TensorDataset labels)") if rest else None)
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor) and (
            data[1] is None or isinstance(data[1], torch.Tensor)):
        x, y = data
        if x.dim() < 1:
            raise InvalidValueError("'data': x must have shape [N, ...], got a 0-d tensor")
        return x, (None if y is None else _check_labels(y, x.shape[0], "'data' (x, y)"))
    return None


def _check_source(data: Any) -> None:
    if isinstance(data, (Iterator, str, bytes, Mapping)) or not (is_data(data) or _tensors(data) is not None):
        extra = (" (a generator or iterator can be walked only once: wrap it in a list or a DataLoader)"
                 if isinstance(data, Iterator) else "")
        raise InvalidTypeError(f"'data' must be {_KINDS}, got {type(data).__name__}{extra}")


def num_samples(data: Any) -> int | None:
    """Number of samples in ``data``, or ``None`` when the source cannot tell without walking it.

    Raises:
        InvalidTypeError: ``data`` is not a dataset source (e.g. a one-shot iterator).

    Example:
        >>> num_samples(torch.zeros(7, 3)), num_samples((torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)))
        (7, 4)
    """
    _check_source(data)
    tensors = _tensors(data)
    if tensors is not None:
        return int(tensors[0].shape[0])
    if isinstance(data, DataLoader):
        if isinstance(data.dataset, IterableDataset):
            return _len(data.dataset)
        if data.batch_size is not None and data.batch_sampler is not None and type(
                data.batch_sampler).__name__ == "BatchSampler":
            n = _len(data.sampler)
            if n is None:
                return None
            return (n // data.batch_size) * data.batch_size if data.drop_last else n
        return None
    if isinstance(data, Dataset):
        return _len(data)
    return None


def num_batches(data: Any, batch_size: int) -> int | None:
    """Number of batches :func:`iter_batches` yields, or ``None`` when unknown without walking ``data``.

    Raises:
        InvalidValueError: ``batch_size`` is not a positive int.
        InvalidTypeError: ``data`` is not a dataset source.

    Example:
        >>> num_batches(torch.zeros(10, 3), 4), num_batches(torch.zeros(8, 3), 4)
        (3, 2)
    """
    batch_size = check_batch_size(batch_size)
    if isinstance(data, DataLoader):
        if data.batch_size is not None and data.batch_size <= batch_size:
            return _len(data)
        n = num_samples(data)
        if n is None or data.batch_size is None:
            return None
        full, rest = divmod(n, data.batch_size)
        return full * math.ceil(data.batch_size / batch_size) + math.ceil(rest / batch_size)
    n = num_samples(data)
    return None if n is None else math.ceil(n / batch_size)


def _len(obj: Any) -> int | None:
    try:
        return int(len(obj))
    except (TypeError, NotImplementedError):
        return None


def _raw_batches(data: Any, batch_size: int) -> Iterator[Batch]:
    tensors = _tensors(data)
    if tensors is not None:
        x, y = tensors
        for i in range(0, x.shape[0], batch_size):
            yield x[i:i + batch_size], (None if y is None else y[i:i + batch_size])
        return
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset) and _len(data) is not None:
        n = _len(data)
        for i in range(0, n, batch_size):
            yield _stack([data[j] for j in range(i, min(i + batch_size, n))], f"dataset items {i}..")
        return
    if isinstance(data, IterableDataset) or (isinstance(data, DataLoader) and data.batch_size is None
                                             and data.batch_sampler is None):
        chunk: list = []  # single items (a DataLoader with batch_size=None yields samples, not batches)
        for item in data:
            chunk.append(item)
            if len(chunk) == batch_size:
                yield _stack(chunk, f"items of the {type(data).__name__}")
                chunk = []
        if chunk:
            yield _stack(chunk, f"items of the {type(data).__name__}")
        return
    for k, batch in enumerate(data):  # a DataLoader or another re-iterable source of batches
        x, y = _from_batch(batch, f"batch {k} of the {type(data).__name__}")
        for i in range(0, x.shape[0], batch_size):
            yield x[i:i + batch_size], (None if y is None else y[i:i + batch_size])


def iter_batches(data: Any, batch_size: int, *, device: torch.device | str | None = None, progress: bool = False,
                 desc: str | None = None, labels: bool | None = None) -> Iterator[Batch]:
    """Batches ``(x [b, *in_shape], y [b] int64 or None)`` of ``data``, ``b <= batch_size``.

    Args:
        data: a tensor, an ``(x, y)`` pair, a ``TensorData``, a ``Dataset`` or a ``DataLoader``
            (see the module docstring for the item formats).
        batch_size: the most samples held at once (a ``DataLoader``'s larger batches are split).
        device: where each batch is moved (``None``: left where the source puts it).
        progress: a tqdm bar over the batches (``desc`` labels it).
        labels: ``True`` requires labels (``ValueError`` at the first batch without them), ``False``
            drops them, ``None`` passes on what the source has.

    Raises ``ValueError`` (``TypeError`` for a non-int) for a ``batch_size`` below 1, an empty source, or items of the wrong
    kind or shape, and ``TypeError`` for an unsupported ``data`` -- the source's type and size are
    checked before the first batch is read.

    Example:
        >>> xb, yb = next(iter_batches(torch.utils.data.TensorDataset(torch.rand(3, 2), torch.arange(3)), 8))
        >>> xb.shape, yb.tolist()
        (torch.Size([3, 2]), [0, 1, 2])
    """
    batch_size = check_batch_size(batch_size)
    _check_source(data)
    n = num_samples(data)
    if n == 0:
        raise InvalidValueError(f"'data' is empty (a {type(data).__name__} with 0 samples); give at least one sample")
    return _walk(data, batch_size, device, progress, desc, labels)


def _walk(data, batch_size, device, progress, desc, labels) -> Iterator[Batch]:
    seen = 0
    bar = _progress(None, desc=desc, total=num_batches(data, batch_size), enabled=True) if progress else None
    try:
        for x, y in _raw_batches(data, batch_size):
            if x.shape[0] == 0:
                continue
            if labels and y is None:
                raise InvalidValueError(f"'data' must provide labels y (a pair (x, y), a TensorData or (x, y) items); "
                                 f"a {type(data).__name__} without labels was given")
            if labels is False:
                y = None
            if device is not None:
                x = x.to(device)
                y = None if y is None else y.to(device)
            seen += x.shape[0]
            yield x, y
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if seen == 0:
        raise InvalidValueError(f"'data' is empty (the {type(data).__name__} yielded no samples); give at least one sample")


def first_batch(data: Any, batch_size: int = 1) -> Batch:
    """The first batch (at most ``batch_size`` samples) of ``data``, for checking shapes before the work starts."""
    return next(iter_batches(data, batch_size))


def collect(data: Any, batch_size: int = 1024, *, device: torch.device | str | None = None) -> Batch:
    """All of ``data`` as one ``(x, y)`` pair -- for the few callers that need it in memory (prefer
    :func:`iter_batches`)."""
    xs, ys = [], []
    for x, y in iter_batches(data, batch_size, device=device):
        xs.append(x)
        ys.append(y)
    has = [y is not None for y in ys]
    if any(has) and not all(has):
        raise InvalidValueError("'data': some batches have labels and some do not")
    return torch.cat(xs), (torch.cat(ys) if all(has) else None)


def _take_rows(data: Any, idx: torch.Tensor, batch_size: int) -> Batch:
    """Rows ``idx`` (in that order) of a re-iterable source, walked once and stopped after the last
    wanted row; only the wanted rows are kept."""
    want = torch.full((int(idx.max()) + 1,), -1, dtype=torch.long)
    want[idx] = torch.arange(idx.numel())
    xs, ys, pos, start = [], [], [], 0
    for x, y in iter_batches(data, batch_size):
        stop = start + x.shape[0]
        if start < want.numel():
            where = want[start:min(stop, want.numel())]
            keep = (where >= 0).nonzero().squeeze(1)
            if keep.numel():
                xs.append(x[keep])
                ys.append(None if y is None else y[keep])
                pos.append(where[keep])
        start = stop
        if start >= want.numel():
            break
    order = torch.argsort(torch.cat(pos))
    x = torch.cat(xs)[order]
    y = None if any(v is None for v in ys) else torch.cat(ys)[order]
    return x, y


def to_tensor_data(data: Any, n: int | None = None, *, seed: int | None = None, batch_size: int = 256) -> TensorData:
    """``data`` (or ``n`` of its samples) in memory as a :class:`TensorData`, for the few callers that
    index samples at random (probes, rankings on the first ``n_eval`` samples).

    ``n`` samples are the first ``n``, or with ``seed`` a seeded random subset in random order (an
    ImageFolder lists its samples class by class, so its first ``n`` are usually all of one class).
    ``num_classes`` is taken from ``data.num_classes`` when the source has it.

    Returns a :class:`TensorData` with ``x [n, *in]`` and ``y [n]``.

    Raises:
        InvalidValueError: ``n`` is not a positive int, or ``data`` holds no sample or no labels.
        InvalidTypeError: ``data`` is not a dataset source.

    Example:
        >>> ds = torch.utils.data.TensorDataset(torch.rand(6, 1, 2, 2), torch.tensor([0, 0, 1, 1, 2, 2]))
        >>> len(to_tensor_data(ds, 4, seed=0)), to_tensor_data(ds).y.tolist()
        (4, [0, 0, 1, 1, 2, 2])
    """
    from torch.utils.data import Subset

    classes = getattr(data, "num_classes", None)
    size = num_samples(data)
    if n is not None:
        n = check_batch_size(n, "n")
        if size is None:
            raise InvalidValueError("'n' needs a source of known length (a Dataset, TensorData or tensors)")
        n = min(n, size)
        if seed is None:
            idx = torch.arange(n)
        else:
            g = torch.Generator().manual_seed(int(seed))
            idx = torch.randperm(size, generator=g)[:n]
        if isinstance(data, TensorData):
            return data.subset(idx)
        if _tensors(data) is not None:
            x, y = _tensors(data)
            data = (x[idx], None if y is None else y[idx])
        elif isinstance(data, DataLoader):
            data = _take_rows(data, idx, batch_size)
        else:
            data = Subset(data, idx.tolist())
    elif isinstance(data, TensorData):
        return data
    x, y = collect(data, batch_size)
    if y is None:
        raise InvalidValueError("'data' must provide labels y to become a TensorData")
    return TensorData(x, y, classes)
