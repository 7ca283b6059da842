"""The protocol every metric result follows (issue 15, item 2), and the read-only alias of a renamed field.

Every per-sample result has ``valid`` (``[N]`` bool, True where the sample's value is defined and
counted in the means), ``n_undefined`` (int), a headline ``value`` (float; each class's docstring
says which number it is) and ``summary()`` (a dict with ``"n_undefined"``). A result that is an
aggregate with no per-sample notion says so and still has ``value``, ``n_undefined`` and ``summary()``.
"""

from __future__ import annotations

import warnings

__all__ = ["deprecated_field_alias"]


def deprecated_field_alias(old: str, new: str) -> property:
    """A read-only property ``old`` that returns ``self.<new>`` with a ``DeprecationWarning`` naming ``new``."""
    def get(self):
        warnings.warn(f"{type(self).__name__}.{old} is deprecated and will be removed in the next release; "
                      f"use .{new}", DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    return property(get, doc=f"Deprecated alias of :attr:`{new}` (warns).")
