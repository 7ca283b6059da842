"""Shared plumbing of the dataset file loaders: locating files and reporting bad ones.

Loaders read only from a directory the user gives; nothing is downloaded. A missing file raises
``FileNotFoundError`` and an unreadable one :class:`DatasetFormatError` (a ``ValueError``), both
naming the file and the format that was expected there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


class DatasetFormatError(ValueError):
    """A dataset file exists but does not hold what its format prescribes.

    A ValueError, so ``except ValueError`` catches it.

    Example:
        >>> import os, tempfile
        >>> from pyadvt.data import read_idx
        >>> path = os.path.join(tempfile.mkdtemp(), "empty-idx1-ubyte")
        >>> open(path, "wb").close()
        >>> try:
        ...     read_idx(path)
        ... except DatasetFormatError as err:
        ...     print("too short" in str(err))
        True
    """


def format_error(path: str, expected: str, problem: str) -> DatasetFormatError:
    return DatasetFormatError(f"{path}: {problem}; expected {expected}")


def find_file(root: str | os.PathLike, names: Sequence[str], subdirs: Sequence[str], expected: str) -> str:
    """First existing ``root/<subdir>/<name>`` (``subdir`` "" = root itself), else ``FileNotFoundError``.

    ``names`` are alternatives tried in order (e.g. with and without ``.gz``).
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset directory {root!r} does not exist (pyadvt never downloads data; "
                                f"put the files there: {expected})")
    tried = []
    for sub in ("", *subdirs):
        for name in names:
            path = os.path.join(root, sub, name)
            if os.path.isfile(path):
                return path
            tried.append(path)
    raise FileNotFoundError(f"missing dataset file {names[0]!r} under {root!r} (looked for {', '.join(tried)}); "
                            f"expected {expected}. pyadvt never downloads data.")
