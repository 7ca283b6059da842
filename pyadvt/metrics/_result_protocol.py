"""The protocol every metric result follows (issue 15, item 2), and the read-only alias of a renamed field.

Every per-sample result has ``valid`` (``[N]`` bool, True where the sample's value is defined and
counted in the means), ``n_undefined`` (int), a headline ``value`` (float; each class's docstring
says which number it is) and ``summary()`` (a dict with ``"n_undefined"``). A result that is an
aggregate with no per-sample notion says so and still has ``value``, ``n_undefined`` and ``summary()``.

The shared pieces: :class:`ValidMask` (``n_undefined`` from ``valid``), :class:`MaskedValues`
(``values [N]`` with their mean over the valid samples as the headline), :func:`masked_float` and
:func:`headline` (a ``value`` property naming the attribute it returns).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

__all__ = ["MaskedValues", "ValidMask", "deprecated_field_alias", "headline", "masked_float"]


def deprecated_field_alias(old: str, new: str) -> property:
    """A read-only property ``old`` that returns ``self.<new>`` with a ``DeprecationWarning`` naming ``new``."""
    def get(self):
        warnings.warn(f"{type(self).__name__}.{old} is deprecated and will be removed in the next release; "
                      f"use .{new}", DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    return property(get, doc=f"Deprecated alias of :attr:`{new}` (warns).")


def headline(name: str, what: str = "") -> property:
    """The protocol's read-only ``value``: ``self.<name>`` (``what`` says which number it is)."""
    return property(lambda self: getattr(self, name),
                    doc=f"The headline number: :attr:`{name}`" + (f" ({what})." if what else "."))


def masked_float(values: torch.Tensor, valid: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """``float(reduce(values[valid]))``, NaN when no entry is valid (never a reduction of nothing)."""
    v = values[valid]
    return float(reduce(v)) if v.numel() else float("nan")


class ValidMask:
    """Mixin of a result with a bool mask ``valid``: :attr:`n_undefined` counts its False entries."""

    @property
    def n_undefined(self) -> int:
        """Number of undefined entries (False in :attr:`valid`)."""
        return int((~self.valid).sum())


class MaskedValues(ValidMask):
    """Mixin of a result with ``values [N]`` and ``valid [N]``: :attr:`mean` over the valid samples is
    the headline :attr:`value`."""

    @property
    def mean(self) -> float:
        """Mean of ``values`` over the valid samples (NaN when none is valid)."""
        return masked_float(self.values, self.valid, torch.mean)

    value = headline("mean")
