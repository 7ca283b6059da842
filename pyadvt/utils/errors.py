"""The error classes of pyadvt's bad-input contract; this module imports nothing.

:class:`UserError` marks an error caused by the caller's input: the CLI prints it as one line and
exits with status 2. :class:`InvalidValueError` and :class:`InvalidTypeError` also subclass
``ValueError`` / ``TypeError``, so ``except ValueError`` in user code keeps working. The checks
that raise them live in :mod:`pyadvt.utils.validation`.

Example:
    >>> issubclass(InvalidValueError, ValueError) and issubclass(InvalidValueError, UserError)
    True
"""

__all__ = ["UserError", "InvalidValueError", "InvalidTypeError"]


class UserError(Exception):
    """An error caused by the caller's input: the CLI reports it as one line with exit status 2."""


class InvalidValueError(UserError, ValueError):
    """An argument has the right type but a bad value (range, shape, device, NaN ...)."""


class InvalidTypeError(UserError, TypeError):
    """An argument has the wrong type or dtype."""
