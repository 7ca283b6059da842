"""Renamed keywords keep working for one release, with a ``DeprecationWarning``.

pyadvt's vocabulary (docs/theory.md §0): a model pair is ``source, target`` (a surrogate is a source,
a victim a target), labels are ``y`` and the labels of a targeted attack ``target_labels``. When a
public parameter is renamed to fit it, :func:`renamed_parameters` maps the old keyword to the new
one, warns once per call site and refuses a call that passes both.

Options that became keyword-only may still be passed by position for one release with
:func:`keyword_only` (warning that they should be passed by keyword).

Renamed public *names* (a function or a class) stay importable under the former name through the
module ``__getattr__`` that :func:`renamed_names` builds (PEP 562): the former name resolves to the
new object, with a ``DeprecationWarning`` at each access.

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
import inspect
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from pyadvt.utils.errors import InvalidTypeError

__all__ = ["keyword_only", "move_positional", "n_positional", "renamed_names", "renamed_parameters"]

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


def renamed_names(module: str, renames: dict[str, str], former: dict[str, Any] | None = None,
                  fallback: Callable[[str], Any] | None = None) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) under which each former name ``old`` of ``renames`` still resolves,
    for one release, to the renamed object ``renames[old]`` of ``module``, with a ``DeprecationWarning``.

    Args:
        module: the module's ``__name__``.
        renames: ``{former name: new name}``.
        former: ``{former name: object}`` to return instead of the new object (e.g. a wrapper that also
            accepts the former keywords); default: the new object itself.
        fallback: called with any other name (default: ``AttributeError``).

    Returns:
        the function to assign to the module's ``__getattr__``.

    Example:
        >>> import types, warnings
        >>> m = types.ModuleType("m"); m.new = 1
        >>> m.__getattr__ = renamed_names("m", {"old": "new"})
        >>> import sys; sys.modules["m"] = m
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     m.old, "use 'm.new'" in str(w[0].message)
        (1, True)
        >>> del sys.modules["m"]
    """
    def __getattr__(name: str) -> Any:
        if name in renames:
            new = renames[name]
            warnings.warn(f"{module}.{name} is deprecated and will be removed in the next release; use "
                          f"'{module}.{new}'", DeprecationWarning, stacklevel=2)
            if former is not None and name in former:
                return former[name]
            return getattr(sys.modules[module], new)
        if fallback is not None:
            return fallback(name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


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
