"""The results of scoring one candidate: :func:`~pyadvt.selection.score_source` and
:func:`~pyadvt.selection.score_surrogate`.

Each is the candidate's plain dictionary (one row of :func:`~pyadvt.selection.rank_sources`, or one
surrogate's measurements in :func:`~pyadvt.selection.rank_surrogates`: JSON-serialisable and indexable
by column) with the result protocol of every pyadvt metric on top: ``valid`` (which columns / targets
were measured), ``n_undefined``, a headline ``value`` and ``summary()``. The scores are seed 000's
adversarial transferability and the field's estimators (docs/theory.md §2, §11) for a source, seed 001's
attack success rate and predictors (docs/theory.md §3) for a surrogate; these classes only read them.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SourceScore", "SurrogateScore"]


def _mean(values: list) -> float | None:
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(kept)) if kept else None


class SourceScore(dict):
    """One candidate source's scores: ``{column: value or None}`` plus ``score`` (``tau1 * tau2``), the
    protocol on top.

    ``valid`` is ``{column: measured}`` over the score columns (``None`` = not asked, not applicable or
    failed); ``n_undefined`` the samples where tau1 is undefined (0 when tau1 was not computed); the
    headline ``value`` is ``score`` = ``tau1 * tau2`` (docs/theory.md §2, seed 000 Definitions 2-3).

    Raises nothing: it wraps the row :func:`~pyadvt.selection.score_source` built.

    Example:
        >>> s = SourceScore(logme=-1.2, tau1=0.5, tau2=None, score=None, n_undefined=2)
        >>> s.value, s.valid, s.n_undefined, s["logme"]
        (None, {'logme': True, 'tau1': True, 'tau2': False}, 2, -1.2)
        >>> s.summary()["n_undefined"]
        2
    """

    #: keys of the row that are not score columns
    _META = ("score", "n_undefined", "eq2_accuracy")

    @property
    def valid(self) -> dict[str, bool]:
        """``{column: True if it holds a number}`` for every score column of the row."""
        return {k: v is not None for k, v in self.items() if k not in self._META}

    @property
    def n_undefined(self) -> int:
        """Samples whose tau1 is undefined for the source or the reference (0 if tau1 was not computed)."""
        return int(self.get("n_undefined") or 0)

    @property
    def value(self) -> float | None:
        """The headline: ``score`` = ``tau1 * tau2`` (``None`` when not computed or undefined)."""
        return self.get("score")

    def summary(self) -> dict:
        """The row as a plain dict, with ``n_undefined`` (JSON-serialisable)."""
        return {**self, "n_undefined": self.n_undefined}


class SurrogateScore(dict):
    """One surrogate's attack success on each target and its seed-001 predictors, the protocol on top.

    Keys: ``accuracy`` (clean, of the surrogate), ``fooling`` (its own fooling rate), ``smoothness`` /
    ``smoothness_max`` (``sigma_F``), ``targets``: ``{target: {"asr", "rate", "similarity"}}``,
    ``mean_asr`` / ``mean_similarity`` over the targets other than the surrogate itself, and
    ``failed`` (``{metric: one-line reason}``; empty when everything ran).

    ``valid`` is ``{target: its ASR was measured}``; ``n_undefined`` the targets without one; the
    headline ``value`` is ``mean_asr`` (docs/theory.md §3, seed 001's transfer attack success).

    Raises nothing: it wraps what :func:`~pyadvt.selection.score_surrogate` measured.

    Example:
        >>> s = SurrogateScore(accuracy=1.0, fooling=0.9, smoothness=None, smoothness_max=None,
        ...                    targets={"a": {"asr": 0.4, "rate": 0.5, "similarity": None},
        ...                             "b": {"asr": None, "rate": None, "similarity": None}},
        ...                    mean_asr=0.4, mean_similarity=None, failed={"transferability to 'b'": "..."})
        >>> s.value, s.valid, s.n_undefined
        (0.4, {'a': True, 'b': False}, 1)
    """

    @classmethod
    def from_cell(cls, cell: dict, exclude: str | None = None) -> SurrogateScore:
        """Build from a measured cell (``accuracy``, ``fooling``, ``smoothness``, ``smoothness_max``,
        ``targets``) and its ``failed`` lines; the means leave out the target named ``exclude`` (the
        surrogate itself, the white-box case) unless it is the only one."""
        targets = cell["targets"]
        others = [t for t in targets if t != exclude] or list(targets)
        return cls(accuracy=cell["accuracy"], fooling=cell["fooling"], smoothness=cell["smoothness"],
                   smoothness_max=cell["smoothness_max"], targets=targets,
                   mean_asr=_mean([targets[t]["asr"] for t in others]),
                   mean_similarity=_mean([targets[t]["similarity"] for t in others]),
                   failed=dict(cell.get("failed") or {}))

    @property
    def valid(self) -> dict[str, bool]:
        """``{target: True if the surrogate's attack success on it was measured}``."""
        return {t: r.get("asr") is not None for t, r in self["targets"].items()}

    @property
    def n_undefined(self) -> int:
        """Targets without a measured attack success (a failed attack or transfer)."""
        return sum(not ok for ok in self.valid.values())

    @property
    def value(self) -> float | None:
        """The headline: ``mean_asr``, the mean transfer attack success over the other targets."""
        return self.get("mean_asr")

    def summary(self) -> dict:
        """Flat numbers: the predictors, ``mean_asr``, ``mean_similarity``, ``n_undefined`` and ``failed``."""
        keys = ("accuracy", "fooling", "smoothness", "smoothness_max", "mean_asr", "mean_similarity")
        return {**{k: self.get(k) for k in keys}, "n_undefined": self.n_undefined, "failed": dict(self["failed"])}
