"""``build(name, ...)``: the reference networks by name, for configs and checkpoints."""

from __future__ import annotations

from collections.abc import Sequence

from pyadvt.models.base import SplitModel
from pyadvt.models.cnn import SmallCNN
from pyadvt.models.lenet import LeNet
from pyadvt.models.mlp import MLP
from pyadvt.models.resnet import SmallResNet

MODELS: dict[str, type[SplitModel]] = {"mlp": MLP, "cnn": SmallCNN, "resnet": SmallResNet, "lenet": LeNet}


def build(name: str, in_shape: Sequence[int] = (1, 8, 8), num_classes: int = 10, **kwargs) -> SplitModel:
    """A freshly initialised reference network (``MODELS[name]``); ``kwargs`` go to its constructor
    (e.g. ``channels`` for "cnn", ``hidden`` for "mlp", ``activation``, ``mean``/``std``).
    Initialisation draws from the global torch RNG: seed it first for reproducible weights.

    Raises:
        ValueError: ``name`` is not in ``MODELS`` (or the constructor refuses a keyword's value).
        TypeError: a keyword the constructor does not take.

    Example:
        >>> import torch
        >>> net = build("cnn", in_shape=(3, 32, 32), num_classes=100, channels=(16, 32))
        >>> net.build_config["name"], net(torch.rand(1, 3, 32, 32)).shape
        ('cnn', torch.Size([1, 100]))
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    try:
        return MODELS[name](in_shape=in_shape, num_classes=num_classes, **kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise TypeError(f"model {name!r} ({MODELS[name].__name__}): {exc}") from None
        raise
