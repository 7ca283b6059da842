"""The metrics' former call forms: :func:`pyadvt.utils.deprecation.keyword_only` and friends, which every
package uses (they live in :mod:`pyadvt.utils.deprecation`; this module keeps the metrics' imports short).

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

from pyadvt.utils.deprecation import keyword_only, move_positional, n_positional

__all__ = ["keyword_only", "move_positional", "n_positional"]
