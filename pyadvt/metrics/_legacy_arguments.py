"""The metrics' former call forms, kept for one release with a ``DeprecationWarning``.

The vocabulary of docs/theory.md §0 made the metrics' options keyword-only and renamed their model
pairs ``source, target``: :func:`keyword_only` lets an option that used to be positional still be
passed by position (warning that it should be passed by keyword), and maps the old keyword names
through :func:`pyadvt.utils.deprecation.renamed_parameters`.

Example:
    >>> import warnings
    >>> @keyword_only("scale", renames={"surrogate": "source"})
    ... def f(source, x, *, scale=1):
    ...     return source + scale * x
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     f(1, 2, 10), f(surrogate=1, x=2), [str(m.message).split(";")[1].strip() for m in w]
    (21, 3, ["pass 'scale' by keyword (scale=...)", "use 'source'"])
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from pyadvt.utils.deprecation import renamed_parameters
from pyadvt.utils.errors import InvalidTypeError

__all__ = ["keyword_only", "move_positional"]

F = TypeVar("F", bound=Callable[..., Any])


def n_positional(fn: Callable) -> int:
    """Number of parameters of ``fn`` that may be passed by position."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds for p in inspect.signature(fn).parameters.values())


def move_positional(qualname: str, n: int, names: tuple[str, ...], args: tuple, kwargs: dict,
                    stacklevel: int) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with the positional arguments beyond the first ``n`` moved to the keywords
    ``names`` (their former order), warning once that they should be passed by keyword.

    Raises ``TypeError`` for more positional arguments than the former signature took, or for an
    option given both by position and by keyword.
    """
    if len(args) <= n:
        return args, kwargs
    extra = args[n:]
    if len(extra) > len(names):
        raise InvalidTypeError(f"{qualname}() takes at most {n + len(names)} positional arguments but {len(args)} "
                               f"were given")
    moved = names[:len(extra)]
    for name, value in zip(moved, extra):
        if name in kwargs:
            raise InvalidTypeError(f"{qualname}() got multiple values for argument {name!r}")
        kwargs[name] = value
    warnings.warn(f"{qualname}(): passing {', '.join(map(repr, moved))} by position is deprecated and will be an "
                  f"error in the next release; pass {', '.join(f'{m!r} by keyword ({m}=...)' for m in moved)}",
                  DeprecationWarning, stacklevel=stacklevel + 1)
    return args[:n], kwargs


def keyword_only(*former_positional: str, renames: dict[str, str] | None = None) -> Callable[[F], F]:
    """Decorator: the keyword-only options ``former_positional`` (in their former positional order)
    may still be passed by position, and each deprecated keyword of ``renames`` (``{old: new}``) is an
    alias of its new name, both for one release with a ``DeprecationWarning`` pointing at the caller.

    ``inspect.signature`` of the result shows the new signature only.
    """
    def decorate(fn: F) -> F:
        n = n_positional(fn)
        # renamed_parameters, when there are renames, is the outer wrapper: one more frame to the caller
        level = 3 if renames else 2

        @functools.wraps(fn)
        def positional(*args: Any, **kwargs: Any) -> Any:
            args, kwargs = move_positional(fn.__qualname__, n, former_positional, args, kwargs, level)
            return fn(*args, **kwargs)

        return renamed_parameters(**renames)(positional) if renames else positional  # type: ignore[return-value]

    return decorate
