"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never a part.

Every pyadvt writer of results, checkpoints and reports goes through :func:`atomic_write`: the data
goes to a temporary file (name starting with :data:`TMP_PREFIX`) in the destination's directory, is
flushed and fsync'ed, then ``os.replace``'d over the destination, and the directory is fsync'ed. On
any error (``KeyboardInterrupt`` included) the temporary file is removed and the destination is left
as it was.

Example:
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "sub", "a.txt")
    >>> _ = atomic_write_text(p, "hello")
    >>> with atomic_write(p, "w") as fh:
    ...     _ = fh.write("bye")
    >>> open(p).read()
    'bye'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pyadvt.utils.errors import InvalidValueError

__all__ = ["TMP_PREFIX", "atomic_write", "atomic_write_bytes", "atomic_write_text"]

#: prefix of the temporary files (readers that scan a directory skip names starting with it)
TMP_PREFIX = ".tmp-"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None,
                 prefix: str = TMP_PREFIX) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; on a clean exit it replaces ``path``.

    Args:
        path: destination (its parent directories are created).
        mode: ``"wb"`` (bytes, e.g. ``torch.save(obj, fh)``) or ``"w"`` (text, UTF-8 unless ``encoding``).
        prefix: the temporary file's name prefix.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> with atomic_write(p) as fh:
        ...     _ = fh.write(b"\\x00\\x01")
        >>> p.read_bytes()
        b'\\x00\\x01'
    """
    if mode not in ("w", "wb"):
        raise InvalidValueError(f"'mode' must be 'w' (text) or 'wb' (bytes), got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": encoding or "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`); returns ``path`` as a ``Path``."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))
