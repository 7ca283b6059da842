"""``SplitModel``: a classifier split into a representation ``features(x)`` and a linear ``head``.

Later metrics need the representation ``g(x)`` and the head ``W g(x) + b`` separately
(docs/theory.md §5), and transfer learning replaces the head or fine-tunes the last ``k`` blocks
(docs/theory.md §4), so every pyadvt model exposes that split.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pyadvt.models.normalize import Normalize
from pyadvt.utils.deprecation import keyword_only


class SplitModel(nn.Module):
    """``forward(x) = head(features(x))`` with ``features(x) = neck(blocks[-1](...blocks[0](normalize(x))))``.

    Args:
        blocks: modules applied in order after ``normalize`` (input -> output). ``blocks[-k:]``
            are "the last k blocks" for fine-tuning; the head is not a block.
        head: the final ``nn.Linear`` (``feature_dim -> num_classes``).
        normalize: the input layer (default identity); see :class:`Normalize`.
        neck: parameter-free map from the last block's output to ``[B, feature_dim]`` (default
            ``nn.Flatten(1)``; e.g. global average pooling for CNNs).
        in_shape: ``(C, H, W)`` the model accepts; when given, inputs are checked against it.

    Shapes: ``x: [B, C, H, W]`` in [0, 1] -> ``features: [B, feature_dim]`` -> logits ``[B, num_classes]``.

    Models made by :func:`pyadvt.models.build` (or the reference classes) carry ``build_config =
    {"name": ..., "kwargs": {...}}`` so that checkpoints can rebuild them.

    Raises:
        TypeError: ``head`` is not an nn.Linear, or ``blocks`` hold non-modules.
        ValueError: (on a call) an input that is not ``[B, *in_shape]`` when ``in_shape`` is known.

    Example:
        >>> m = SplitModel([nn.Flatten(1), nn.Linear(4, 3), nn.ReLU()], nn.Linear(3, 2), in_shape=(1, 2, 2))
        >>> m.features(torch.rand(5, 1, 2, 2)).shape, m(torch.rand(5, 1, 2, 2)).shape, m.feature_dim
        (torch.Size([5, 3]), torch.Size([5, 2]), 3)
    """

    build_config: dict | None = None

    @keyword_only("in_shape")
    def __init__(self, blocks: Sequence[nn.Module], head: nn.Linear, normalize: nn.Module | None = None,
                 neck: nn.Module | None = None, *, in_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        if not isinstance(head, nn.Linear):
            raise TypeError(f"'head' must be an nn.Linear, got {type(head).__name__}")
        bad = [type(b).__name__ for b in blocks if not isinstance(b, nn.Module)]
        if bad:
            raise TypeError(f"'blocks' must hold nn.Modules, got {', '.join(bad)}")
        self.normalize = normalize if normalize is not None else nn.Identity()
        self.blocks = nn.ModuleList(blocks)
        self.neck = neck if neck is not None else nn.Flatten(1)
        self.head = head
        self.in_shape = tuple(int(s) for s in in_shape) if in_shape is not None else None

    @property
    def feature_dim(self) -> int:
        """Width ``d`` of the representation (the head's input)."""
        return int(self.head.in_features)

    @property
    def num_classes(self) -> int:
        """Number of logits (the head's output)."""
        return int(self.head.out_features)

    def check_input(self, x: torch.Tensor) -> None:
        """``ValueError`` unless ``x`` is ``[B, *in_shape]`` (skipped when ``in_shape`` is unknown)."""
        if self.in_shape is not None and (x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape):
            raise ValueError(f"input must have shape [B, {', '.join(map(str, self.in_shape))}] for this model, "
                             f"got {tuple(x.shape)}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Representation ``g(x)``: ``[B, C, H, W] -> [B, feature_dim]``."""
        self.check_input(x)
        h = self.normalize(x)
        for block in self.blocks:
            h = block(h)
        return self.neck(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``head(features(x))``: ``[B, C, H, W] -> [B, num_classes]``."""
        return self.head(self.features(x))


def record_config(model: SplitModel, name: str, **kwargs) -> None:
    """Store how to rebuild ``model`` with :func:`pyadvt.models.build` (tuples become lists so the
    config is JSON-friendly)."""
    def plain(v):
        return [plain(e) for e in v] if isinstance(v, (tuple, list)) else v
    model.build_config = {"name": name, "kwargs": {k: plain(v) for k, v in kwargs.items()}}


def default_normalize(in_shape: Sequence[int], mean, std) -> Normalize:
    """``Normalize(mean, std)`` for ``in_shape = (C, H, W)``; the defaults map [0, 1] to [-1, 1]
    (mean 0.5, std 0.5). ``mean``/``std`` need 1 or C entries."""
    norm = Normalize(0.5 if mean is None else mean, 0.5 if std is None else std)
    channels = max(norm.mean.shape[1], norm.std.shape[1])
    if channels not in (1, in_shape[0]):
        raise ValueError(f"'mean'/'std' have {channels} channels but in_shape has C={in_shape[0]}")
    return norm
