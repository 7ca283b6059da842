"""The result of :func:`~pyadvt.selection.rank_sources` and :func:`~pyadvt.selection.rank_surrogates`.

A :class:`RankingResult` is the ranking's plain dictionary (``rows``, ``scores``, ``failed``, ...:
JSON-serialisable and indexable as before) with the result protocol of every pyadvt metric on top:
``valid`` (one flag per candidate: was it scored), ``n_undefined`` (candidates that failed), a headline
``value`` (the best candidate's name) and ``summary()``.
"""

from __future__ import annotations

__all__ = ["RankingResult"]


class RankingResult(dict):
    """A ranking of candidate models: ``rows`` best first, plus the result protocol.

    The keys are those the ranking functions document (``rows``: one dict per candidate, sorted by the
    ranking's lead score; ``failed``: ``{name: one-line reason}`` for the candidates a metric could not
    handle; ``scores``: the score columns). The ranking is seed 000's proxy / the field's estimators
    (docs/theory.md §2 and §11); this class only reads it.

    Raises nothing: it wraps the dictionary the ranking built (``KeyError`` for a missing key, as a dict).

    Example:
        >>> r = RankingResult(rows=[{"name": "b", "rank_score": 1}, {"name": "a", "rank_score": None}],
        ...                   failed={"a": "a: tau1 failed"}, scores=["tau1*tau2"])
        >>> r.value, r.valid, r.n_undefined, r["rows"][0]["name"]
        ('b', [True, False], 1, 'b')
        >>> r.summary()["order"]
        ['b']
    """

    @property
    def rows(self) -> list[dict]:
        """The candidates' rows, best first."""
        return self["rows"]

    @property
    def valid(self) -> list[bool]:
        """One flag per row (same order): ``False`` for a candidate listed in ``failed``."""
        failed = self.get("failed") or {}
        return [row["name"] not in failed for row in self["rows"]]

    @property
    def n_undefined(self) -> int:
        """How many candidates could not be scored (the ``failed`` entries)."""
        return len(self.get("failed") or {})

    @property
    def value(self) -> str | None:
        """The headline: the name of the best-ranked candidate that was scored (``None`` if none was)."""
        order = self.order
        return order[0] if order else None

    @property
    def order(self) -> list[str]:
        """Names of the scored candidates, best first."""
        return [row["name"] for row, ok in zip(self["rows"], self.valid) if ok]

    def summary(self) -> dict:
        """``{"best", "order", "n", "n_undefined", "failed", "scores"}`` (JSON-serialisable)."""
        return {"best": self.value, "order": self.order, "n": len(self["rows"]), "n_undefined": self.n_undefined,
                "failed": dict(self.get("failed") or {}), "scores": list(self.get("scores") or [])}
