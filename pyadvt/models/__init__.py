"""Reference networks split into ``features`` and a linear ``head``, and ``wrap`` for user models.

Every model starts with a :class:`Normalize` layer (data stay in [0, 1]) and exposes ``features(x)
-> [B, feature_dim]``, ``head: nn.Linear`` and ``blocks`` (input -> output, head excluded).
"""

from pyadvt.models.base import SplitModel
from pyadvt.models.cnn import SmallCNN
from pyadvt.models.lenet import LeNet
from pyadvt.models.mlp import MLP
from pyadvt.models.normalize import Normalize
from pyadvt.models.registry import MODELS, build
from pyadvt.models.resnet import BasicBlock, SmallResNet
from pyadvt.models.wrap import WrappedModel, wrap

__all__ = ["BasicBlock", "LeNet", "MLP", "MODELS", "Normalize", "SmallCNN", "SmallResNet", "SplitModel",
           "WrappedModel", "build", "wrap"]
