"""Renamed keywords keep working for one release, with a ``DeprecationWarning``.

pyadvt's vocabulary (docs/theory.md §0): a model pair is ``source, target`` (a surrogate is a source,
a victim a target), labels are ``y`` and the labels of a targeted attack ``target_labels``. When a
public parameter is renamed to fit it, :func:`renamed_parameters` maps the old keyword to the new
one, warns once per call site and refuses a call that passes both.

Example:
    >>> import warnings
    >>> @renamed_parameters(surrogate="source")
    ... def f(source, target):
    ...     return source - target
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     f(surrogate=3, target=1), w[0].category.__name__
    (2, 'DeprecationWarning')
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from pyadvt.utils.errors import InvalidTypeError

__all__ = ["renamed_parameters"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed_parameters(**renames: str) -> Callable[[F], F]:
    """Decorator: accept each deprecated keyword ``old`` as an alias of ``renames[old]``.

    The wrapped function's signature (``inspect.signature``, the docs) shows only the new names.
    """
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise InvalidTypeError(f"{fn.__qualname__}() got both {old!r} (deprecated) and {new!r}; "
                                               f"pass only {new!r}")
                    warnings.warn(f"{fn.__qualname__}(): the keyword {old!r} is deprecated and will be removed "
                                  f"in the next release; use {new!r}", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
