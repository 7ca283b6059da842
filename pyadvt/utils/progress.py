"""Progress bars and status messages that honour a global ``--quiet`` and distributed ranks.

Every long loop in pyadvt takes ``progress=True`` and wraps its iterable with :func:`progress`.
A bar is shown only when all of these hold:

* the caller asked for it (``enabled=True``),
* the process is not quiet: :func:`set_quiet` was not called with ``True`` (the CLI's ``--quiet``)
  and the environment variable ``PYADVT_QUIET`` is unset, empty or ``0``,
* the process is rank 0 of a ``torchrun`` job (``RANK`` unset or ``0``), so K ranks do not draw
  K interleaved bars.

:func:`log` prints a one-line status message to stderr under the same rules (without ``enabled``).

Example:
    >>> set_quiet(True)
    >>> sum(progress(range(3), desc="demo"))
    3
    >>> set_quiet(False)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

_QUIET: bool | None = None  # None: defer to the PYADVT_QUIET environment variable


def set_quiet(quiet: bool | None) -> None:
    """Turn progress bars and :func:`log` messages off (``True``) or on (``False``) process-wide.

    ``None`` restores the default (read ``PYADVT_QUIET`` from the environment).
    """
    global _QUIET
    if quiet is not None and not isinstance(quiet, bool):
        raise TypeError(f"quiet must be a bool or None, got {type(quiet).__name__}")
    _QUIET = quiet


def is_quiet() -> bool:
    """True when output is suppressed by :func:`set_quiet` or ``PYADVT_QUIET`` or a non-zero rank."""
    if os.environ.get("RANK", "0") not in ("", "0"):
        return True
    if _QUIET is not None:
        return _QUIET
    return os.environ.get("PYADVT_QUIET", "").strip().lower() not in ("", "0", "false", "no")


def progress(iterable: Iterable | None = None, *, desc: str | None = None, total: int | None = None,
             enabled: bool = True, **kwargs: Any) -> tqdm:
    """A ``tqdm`` bar over ``iterable`` that is disabled when ``enabled`` is false or output is quiet.

    Extra keyword arguments go to ``tqdm`` (``initial``, ``unit``, ``leave`` ...). The bar writes to
    stderr, so stdout stays clean for machine-readable output.
    """
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, desc=desc, total=total, disable=(not enabled) or is_quiet(), **kwargs)


def log(message: str) -> None:
    """Print ``message`` to stderr unless output is quiet (see module docstring)."""
    if not is_quiet():
        tqdm.write(str(message), file=sys.stderr)
