"""Reference networks split into ``features`` and a linear ``head``, and ``wrap`` for user models.

Every model starts with a :class:`Normalize` layer (data stay in [0, 1]) and exposes ``features(x)
-> [B, feature_dim]``, ``head: nn.Linear`` and ``blocks`` (input -> output, head excluded). :func:`from_torchvision` / :func:`from_timm` give hub
models in the same form (normalisation inside, nothing downloaded).
"""

from pyadvt.models.base import SplitModel
from pyadvt.models.cnn import SmallCNN
from pyadvt.models.hub import IMAGENET_MEAN, IMAGENET_STD, from_timm, from_torchvision
from pyadvt.models.lenet import LeNet
from pyadvt.models.mlp import MLP
from pyadvt.models.normalize import Normalize
from pyadvt.models.output import OutputSelector, model_logits, select_output
from pyadvt.models.registry import MODELS, build
from pyadvt.models.resnet import BasicBlock, SmallResNet
from pyadvt.models.wrap import WrappedModel, default_blocks, wrap

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "BasicBlock", "LeNet", "MLP", "MODELS", "Normalize", "OutputSelector", "SmallCNN", "SmallResNet", "SplitModel",
           "WrappedModel", "build", "default_blocks", "from_timm", "from_torchvision", "model_logits",
           "select_output", "wrap"]
