"""Training: the seeded SGD loop ``fit``, ``evaluate``, losses and checkpoints (docs/theory.md §4)."""

from pyadvt.train.checkpoint import load_checkpoint, save_checkpoint
from pyadvt.train.fit import FitResult, evaluate, fit, lr_factor
from pyadvt.train.losses import cross_entropy_loss, soft_cross_entropy
from pyadvt.train.adversarial import AdversarialLoss
from pyadvt.train.augment import Compose, CutMix, Cutout, LabelSmoothing, Mixup
from pyadvt.train.lgv import collect_lgv
from pyadvt.train.regularizers import ExplicitGradientRegularizer, InputGradientRegularizer, JacobianRegularizer
from pyadvt.train.sam import SAM
from pyadvt.train.gaussian import GaussianNoise, fit_gaussian
from pyadvt.train.recipes import METHODS as RECIPES, training_recipe
from pyadvt.train.zoo import ModelSpec, data_digest, train_or_load

__all__ = ["AdversarialLoss", "collect_lgv", "Compose", "cross_entropy_loss", "CutMix", "Cutout", "data_digest",
           "evaluate", "ExplicitGradientRegularizer", "fit", "fit_gaussian", "FitResult", "GaussianNoise",
           "InputGradientRegularizer", "JacobianRegularizer", "LabelSmoothing", "load_checkpoint", "lr_factor",
           "Mixup", "ModelSpec", "RECIPES", "SAM", "save_checkpoint", "soft_cross_entropy", "train_or_load",
           "training_recipe"]
