"""Plain CSV tables written atomically (``pyadvt.utils.io.atomic_write``): a header row, then one row
per record; ``None`` (undefined) is written as an empty cell.

Example:
    >>> import tempfile, pathlib
    >>> p = write_csv(pathlib.Path(tempfile.mkdtemp()) / "t.csv", ["a", "b"], [[1, None], [2, 0.5]])
    >>> p.read_text().splitlines()
    ['a,b', '1,', '2,0.5']
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from pyadvt.utils.io import atomic_write

__all__ = ["write_csv"]


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Write ``columns`` and ``rows`` to ``path`` (replaced atomically; parents created); returns the path."""
    path = Path(path)
    with atomic_write(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(list(columns))
        writer.writerows(rows)
    return path
