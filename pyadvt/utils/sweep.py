"""Resumable per-cell result stores for long sweeps (zoo training, N x N transfer grids, subset sweeps).

A sweep is a list of *cells* (hashable keys such as ``("resnet", "at", 3)``); each cell's result is
a JSON-serialisable value. :class:`CellStore` keeps one small JSON file per finished cell, written
atomically (temporary file + ``os.replace``), so a crash or ``kill -9`` loses at most the cell being
computed and a rerun resumes from the cells on disk (docs/architecture.md §8 "Scaling out"). A cell may also
carry a torch checkpoint (model weights) saved atomically next to its JSON file.

:func:`run_cells` drives a sweep: it skips finished cells, computes the rest in order and stores
each one as soon as it finishes. With ``shard=(rank, world_size)`` it computes only that rank's
share (``cells[rank::world_size]``), which is how :mod:`pyadvt.utils.distributed` scales a grid out.

Keys are ``str``, ``int``, ``bool``, ``None`` or (nested) tuples of these; results go through
:func:`to_jsonable` (tensors and numpy arrays become nested lists, tuples become lists, non-finite
floats become ``None`` = undefined) and every returned result is the JSON round-trip of what was
stored, so a fresh run and a resumed run return identical values.

A cell that fails to load (truncated or garbage JSON, a record of the wrong schema or for another key,
a checkpoint that is missing, truncated or whose SHA-256 differs from the one recorded when it was
written) is never fatal and never silently reused: its files are moved aside to ``_corrupt/`` in the
store (kept for inspection), a :class:`CorruptCellWarning` prints the path, and the cell counts as not
finished, so :func:`run_cells` recomputes it. ``docs/reliability.md`` states the resume guarantees.

Example:
    >>> import tempfile
    >>> store = CellStore(tempfile.mkdtemp())
    >>> run_cells([("a", 1), ("b", 2)], lambda cell: {"n": cell[1] ** 2}, store, progress=False)
    {('a', 1): {'n': 1}, ('b', 2): {'n': 4}}
    >>> store.has(("a", 1)), len(store)
    (True, 2)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyadvt.utils.io import TMP_PREFIX, atomic_write_bytes, atomic_write_text  # re-exported (moved)
from pyadvt.utils.progress import progress as _progress
from pyadvt.utils.validation import InvalidValueError

__all__ = ["CellStore", "run_cells", "to_jsonable", "atomic_write_text", "atomic_write_bytes",
           "key_to_str", "config_digest", "CorruptCellWarning", "CorruptCellError"]

_TMP_PREFIX = TMP_PREFIX
_META = "_meta.json"
_CORRUPT = "_corrupt"
_MISSING = object()


class CorruptCellWarning(RuntimeWarning):
    """A stored cell could not be loaded; it was moved aside and will be recomputed."""


class CorruptCellError(InvalidValueError):
    """A cell's checkpoint could not be loaded (it was moved aside; rerun to recompute the cell)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` into plain JSON types (dict/list/str/int/float/bool/None).

    Tensors and numpy arrays become (nested) lists, numpy/torch scalars become Python numbers,
    tuples/sets become lists, dataclasses and ``Path`` objects become dicts/strings, and
    non-finite floats (NaN, +-inf) become ``None`` (docs/theory.md §0: undefined, never a silent NaN).
    Raises ``TypeError`` naming the offending type for anything else.

    Example:
        >>> import torch
        >>> to_jsonable({"m": torch.tensor([[1.0, float("nan")]]), "k": (1, 2)})
        {'m': [[1.0, None]], 'k': [1, 2]}
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"JSON object keys must be str/int/float/bool, got {type(k).__name__}")
            out[str(k) if not isinstance(k, str) else k] = to_jsonable(v)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    package = type(obj).__module__.split(".")[0]
    tolist = getattr(obj, "tolist", None)  # torch.Tensor, numpy arrays and numpy scalars
    if callable(tolist) and package in ("torch", "numpy"):
        if hasattr(obj, "detach"):
            obj = obj.detach().cpu()
        return to_jsonable(obj.tolist())
    if package == "torch" and type(obj).__name__ in ("device", "dtype"):
        return str(obj)
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON; convert it to lists/numbers first")


def _dumps(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=1, sort_keys=False, allow_nan=False)


def _key_to_json(key: Any) -> Any:
    if key is None or isinstance(key, (bool, int, str)):
        return key
    if isinstance(key, tuple):
        return [_key_to_json(k) for k in key]
    raise TypeError(f"cell keys must be str, int, bool, None or tuples of these, got {type(key).__name__}")


def _key_from_json(obj: Any) -> Hashable:
    return tuple(_key_from_json(k) for k in obj) if isinstance(obj, list) else obj


def config_digest(*parts: Any) -> str:
    """A short stable digest (10 hex digits) of JSON-serialisable settings.

    Put it in cell keys, e.g. ``("zoo", config_digest(seed, zoo_cfg), arch)``: a rerun with other
    settings then computes new cells instead of reusing stale ones, while cells whose settings did
    not change are reused.

    Example:
        >>> config_digest({"a": 1, "b": 2}) == config_digest({"b": 2, "a": 1}), len(config_digest(0))
        (True, 10)
    """
    text = json.dumps(to_jsonable(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def key_to_str(key: Hashable) -> str:
    """Canonical text of a cell key (used for hashing and file names)."""
    return json.dumps(_key_to_json(key), separators=(",", ":"))


class CellStore:
    """A directory of finished sweep cells: ``key -> JSON-serialisable result`` (+ optional checkpoint).

    Args:
        directory: where the cell files live (created if missing). One JSON file per cell named
            ``<readable key>-<sha1 prefix>.json``; checkpoints use the same stem with ``.pt``.
        meta: optional JSON-serialisable description of the sweep (its configuration). It is written
            to ``_meta.json`` on first use; reopening the directory with a *different* ``meta`` raises
            ``ValueError`` naming the first differing key, so a resumed run never mixes cells computed
            under another configuration.

    Writes are atomic, and a cell's JSON file is written last (after its checkpoint), so its
    existence means the cell is complete. Several processes may share one store (different cells).

    Example:
        >>> import tempfile
        >>> s = CellStore(tempfile.mkdtemp(), meta={"eps": 0.1})
        >>> _ = s.put(("vgg", 0), {"asr": 0.5}); s.get(("vgg", 0))
        {'asr': 0.5}
        >>> s.get("missing", default=-1)
        -1
    """

    def __init__(self, directory: str | os.PathLike, *, meta: Any = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()
        self.meta = None if meta is None else json.loads(_dumps(meta))
        if self.meta is not None:
            meta_path = self.directory / _META
            if meta_path.exists():
                try:
                    old = json.loads(meta_path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                    # unlike a cell, a lost configuration cannot be recomputed: the cells beside it
                    # may belong to another configuration, so refuse instead of guessing
                    raise InvalidValueError(
                        f"cell store configuration {meta_path} is unreadable ({exc}); delete the directory "
                        f"{self.directory} (or that file, if its cells are known to match) to start afresh"
                    ) from None
                diff = _first_difference(old, self.meta)
                if diff is not None:
                    raise ValueError(
                        f"cell store {self.directory} was written with a different configuration "
                        f"({diff}); use a new directory or delete the old one to start afresh")
            else:
                atomic_write_text(meta_path, _dumps(self.meta))

    def _remove_stale_temporaries(self, max_age_s: float = 3600.0) -> None:
        # a writer killed mid-write leaves its temporary file; a live write takes milliseconds
        now = time.time()
        for tmp in self.directory.glob(f"{_TMP_PREFIX}*"):
            try:
                if now - tmp.stat().st_mtime > max_age_s:
                    tmp.unlink()
            except OSError:  # pragma: no cover - removed concurrently
                pass

    # -- paths -------------------------------------------------------------------------------
    def _stem(self, key: Hashable) -> str:
        text = key_to_str(key)
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")[:60] or "cell"
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
        return f"{readable}-{digest}"

    def path(self, key: Hashable) -> Path:
        """The JSON file that holds ``key``'s result (whether or not it exists yet)."""
        return self.directory / f"{self._stem(key)}.json"

    def checkpoint_path(self, key: Hashable) -> Path:
        """The torch checkpoint file of ``key`` (see :meth:`put`'s ``checkpoint``)."""
        return self.directory / f"{self._stem(key)}.pt"

    # -- loading and quarantine ---------------------------------------------------------------
    def quarantine(self, path: Path, reason: str, key: Hashable | None = None) -> Path:
        """Move a cell's files (``path`` and its checkpoint) to ``_corrupt/`` and warn with the paths."""
        aside = self.directory / _CORRUPT
        aside.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved = None
        for f in (path, path.with_suffix(".pt")):
            dest = aside / f"{f.name}.{stamp}-{os.getpid()}"
            try:
                os.replace(f, dest)
            except FileNotFoundError:  # no checkpoint, or another process moved it first
                continue
            moved = moved or dest
        what = f"cell {key_to_str(key)}" if key is not None else "cell"
        warnings.warn(f"{what}: {path} could not be loaded ({reason}); moved aside to "
                      f"{moved if moved is not None else aside} for inspection; it will be recomputed",
                      CorruptCellWarning, stacklevel=3)
        return aside

    def _problem(self, record: Any, path: Path, key: Hashable | None, verify: bool) -> str | None:
        """Why ``record`` (parsed from ``path``) is not a usable cell, or None."""
        if not isinstance(record, dict) or "key" not in record or "result" not in record:
            return "not a cell record: expected a JSON object with 'key' and 'result'"
        if key is not None:
            try:
                stored = key_to_str(_key_from_json(record["key"]))
            except TypeError:
                stored = None
            if stored != key_to_str(key):
                return f"it holds the cell {stored}, not this one"
        ck = record.get("checkpoint")
        if ck is not None:
            pt = path.with_suffix(".pt")
            if not isinstance(ck, dict) or not isinstance(ck.get("bytes"), int):
                return "its checkpoint entry has the wrong schema"
            if not pt.exists():
                return f"its checkpoint {pt.name} is missing"
            if pt.stat().st_size != ck["bytes"]:
                return f"its checkpoint {pt.name} has {pt.stat().st_size} bytes, {ck['bytes']} were written"
            if verify and ck.get("sha256") and _sha256(pt) != ck["sha256"]:
                return f"its checkpoint {pt.name} does not match the SHA-256 recorded when it was written"
        return None

    def _read(self, path: Path, key: Hashable | None, verify: bool = True) -> Any:
        """The record at ``path``, or ``_MISSING`` (absent, or corrupt and moved aside)."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _MISSING
        except (OSError, UnicodeDecodeError) as exc:
            self.quarantine(path, f"unreadable: {exc}", key)
            return _MISSING
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            self.quarantine(path, f"invalid JSON: {exc}", key)
            return _MISSING
        problem = self._problem(record, path, key, verify)
        if problem is not None:
            self.quarantine(path, problem, key)
            return _MISSING
        return record

    # -- access ------------------------------------------------------------------------------
    def has(self, key: Hashable) -> bool:
        """True when ``key``'s result has been stored and loads (a corrupt cell is moved aside: False)."""
        return self._read(self.path(key), key) is not _MISSING

    __contains__ = has

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The stored result of ``key`` (JSON types), or ``default`` when it is not stored (or corrupt)."""
        record = self._read(self.path(key), key, verify=False)
        return default if record is _MISSING else record["result"]

    def put(self, key: Hashable, result: Any, *, checkpoint: Any = None) -> Any:
        """Store ``result`` for ``key`` atomically and return its JSON round-trip.

        ``checkpoint`` (optional, anything ``torch.save`` accepts, e.g. a ``state_dict``) is saved
        first to :meth:`checkpoint_path`, so a stored cell always has its checkpoint.
        """
        record = {"key": _key_to_json(key), "result": result}
        text = _dumps(record)  # refuse unserialisable results before touching the checkpoint
        ck_path = self.checkpoint_path(key)
        if checkpoint is not None:
            import io

            import torch

            buf = io.BytesIO()
            torch.save(checkpoint, buf)
            data = buf.getvalue()
            atomic_write_bytes(ck_path, data)
            record["checkpoint"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        elif ck_path.exists():  # rewriting a cell whose checkpoint fn already saved
            record["checkpoint"] = {"bytes": ck_path.stat().st_size, "sha256": _sha256(ck_path)}
        text = _dumps(record)
        atomic_write_text(self.path(key), text)
        return json.loads(text)["result"]

    def load_checkpoint(self, key: Hashable, map_location: Any = "cpu") -> Any:
        """Load the checkpoint stored with ``key`` (``FileNotFoundError`` if there is none).

        Loaded with ``weights_only=True``: checkpoints should be tensors/state dicts/plain data. A
        checkpoint that does not match its recorded SHA-256 or fails to load is moved aside with its
        cell and :class:`CorruptCellError` names it (a rerun recomputes the cell).
        """
        import torch

        path = self.checkpoint_path(key)
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint stored for cell {key_to_str(key)} in {self.directory}")
        cell = self.path(key)
        if self._read(cell, key) is _MISSING and not path.exists():  # verified (and moved aside if corrupt)
            raise CorruptCellError(f"the checkpoint {path} of cell {key_to_str(key)} is corrupt; it was moved "
                                   f"to {self.directory / _CORRUPT}; rerun to recompute the cell")
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # truncated zip, garbage bytes, unpickling refusal ...
            self.quarantine(cell, f"its checkpoint {path.name} fails to load: {type(exc).__name__}", key)
            raise CorruptCellError(f"the checkpoint {path} of cell {key_to_str(key)} fails to load "
                                   f"({type(exc).__name__}); it was moved to {self.directory / _CORRUPT}; "
                                   "rerun to recompute the cell") from None

    def _records(self) -> Iterator[dict]:
        for path in sorted(self.directory.glob("*.json")):
            if path.name == _META or path.name.startswith(_TMP_PREFIX):
                continue
            record = self._read(path, None, verify=False)
            if record is not _MISSING:
                yield record

    def keys(self) -> list[Hashable]:
        """Keys of all stored cells (sorted by file name, i.e. not in sweep order)."""
        return [_key_from_json(r["key"]) for r in self._records()]

    def items(self) -> list[tuple[Hashable, Any]]:
        """``(key, result)`` pairs of all stored cells."""
        return [(_key_from_json(r["key"]), r["result"]) for r in self._records()]

    def __len__(self) -> int:
        return len(self.keys())

    def __repr__(self) -> str:
        return f"CellStore({str(self.directory)!r})"


def _first_difference(old: Any, new: Any, prefix: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            name = f"{prefix}.{k}" if prefix else str(k)
            if k not in old or k not in new:
                return f"key {name!r} is only in the {'new' if k not in old else 'stored'} configuration"
            diff = _first_difference(old[k], new[k], name)
            if diff is not None:
                return diff
        return None
    if old != new:
        return f"{prefix or 'value'}: stored {old!r}, now {new!r}"
    return None


def _check_shard(shard: tuple[int, int] | None) -> tuple[int, int]:
    if shard is None:
        return 0, 1
    try:
        rank, world = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise TypeError(f"shard must be None or a (rank, world_size) pair, got {shard!r}") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard must satisfy 0 <= rank < world_size, got {shard!r}")
    return rank, world


def run_cells(cells: Iterable[Hashable], fn: Callable[[Hashable], Any], store: CellStore | None, *,
              progress: bool = True, shard: tuple[int, int] | None = None, desc: str = "cells",
              ) -> dict[Hashable, Any]:
    """Compute ``fn(cell)`` for every cell not yet in ``store``, storing each as soon as it finishes.

    Args:
        cells: the sweep's cell keys, in the order to compute them (duplicates are an error).
        fn: ``fn(cell) -> result`` (JSON-serialisable via :func:`to_jsonable`). To also save a
            checkpoint, call ``store.put(cell, result, checkpoint=...)`` inside ``fn`` and return
            the same result (``run_cells`` then rewrites the JSON and keeps the checkpoint).
        store: the :class:`CellStore` to resume from and write to; ``None`` computes everything
            in memory (no resumption).
        progress: show a tqdm bar (counting already-finished cells as done).
        shard: ``(rank, world_size)`` computes only ``cells[rank::world_size]``.

    Returns:
        ``{cell: result}`` for this shard's cells, in sweep order; results are JSON round-trips,
        identical whether computed now or loaded from ``store``.
    """
    rank, world = _check_shard(shard)
    cells = list(cells)
    strs = [key_to_str(c) for c in cells]
    if len(set(strs)) != len(strs):
        dup = next(s for s in strs if strs.count(s) > 1)
        raise ValueError(f"cells contains the key {dup} more than once")
    mine: Sequence[Hashable] = cells[rank::world]
    results: dict[Hashable, Any] = {}
    pending = []
    for cell in mine:
        if store is not None and store.has(cell):
            results[cell] = store.get(cell)
        else:
            pending.append(cell)
    bar = _progress(total=len(mine), initial=len(mine) - len(pending), desc=desc, enabled=progress)
    try:
        for cell in pending:
            bar.set_postfix_str(key_to_str(cell)[:40], refresh=False)
            value = fn(cell)
            if store is not None:
                results[cell] = store.put(cell, value)
            else:
                results[cell] = json.loads(_dumps(value))
            bar.update(1)
    finally:
        bar.close()
    return {cell: results[cell] for cell in mine}

