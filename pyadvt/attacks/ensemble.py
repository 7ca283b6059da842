"""Ensembles of models attacked through their mean logits (docs/theory.md §1 Ensemble / LGV)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.models.output import model_logits
from pyadvt.utils.validation import check_model_input


class Ensemble(nn.Module):
    """``forward(x) = mean_i models[i](x)``: the mean logits ``[B, C]`` of a list of models.

    The ensemble attack of docs/theory.md §1 (Ensembles and LGV; the LGV snapshots of Gubri et al.,
    ECCV 2022, are attacked through it). ``x`` is whatever the members take (e.g. ``[B, C, H, W]``).

    Raises:
        ValueError: on construction, when ``models`` is empty; in ``forward``, when the members
            return logits of different shapes (or a member's output selector selects nothing).
        TypeError: on construction, when a member is not an ``nn.Module``; in ``forward``, when
            ``x``'s dtype differs from a member's (floating) parameters (checked on metadata before
            any member runs) or a member's output holds no logits tensor.

    Example:
        >>> import torch
        >>> a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
        >>> x = torch.rand(4, 3)
        >>> torch.allclose(Ensemble([a, b])(x), (a(x) + b(x)) / 2)
        True
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        models = list(models)
        if not models:
            raise ValueError("'models' must contain at least one nn.Module")
        for i, m in enumerate(models):
            if not isinstance(m, nn.Module):
                raise TypeError(f"'models[{i}]' must be an nn.Module, got {type(m).__name__}")
        self.models = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, m in enumerate(self.models):  # metadata only: a float64 batch would fail inside conv2d
            check_model_input(m, x, "x", f"models[{i}]", check_device=False, allow_half=True)
        outs = [model_logits(m(x), name=f"models[{i}]") for i, m in enumerate(self.models)]
        for i, o in enumerate(outs[1:], start=1):
            if o.shape != outs[0].shape:
                raise ValueError(f"ensemble member {i} returns shape {tuple(o.shape)} but member 0 returns "
                                 f"{tuple(outs[0].shape)}; all members need the same logits shape")
        return torch.stack(outs).mean(dim=0)
