"""Building and choosing a surrogate for transfer attacks

You attack a black-box target by crafting adversarial examples on a surrogate you control. Which
surrogate - which architecture, which training - transfers best? This tutorial trains a small zoo
(a plain CNN, a CNN adversarially trained with a small budget - seed 001's "little robustness" -, an
MLP, and a timm ResNet-18 trained from random initialisation), attacks two held-out targets with
several suite attacks under one protocol (`pyadvt.attacks.evaluate`, docs/theory.md §10), and reads
the surrogate diagnostics of seed 001: input-Hessian smoothness and gradient similarity with the
target (docs/theory.md §3).
"""

# %%
# ## The zoo
#
# `ModelSpec` + `train_or_load` train each member from a hashable description (and, given a
# `CellStore`, load it again instead of retraining). `recipe` names a training method
# (`pyadvt.train.RECIPES`); the AT budget follows `pyadvt quickstart`'s defaults.

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from pyadvt.attacks import evaluate
from pyadvt.data import digits
from pyadvt.metrics import gradient_similarity, smoothness
from pyadvt.models import from_timm
from pyadvt.train import ModelSpec, evaluate as accuracy, fit, train_or_load

FAST = os.environ.get("PYADVT_TUTORIAL_FAST") == "1"
EPOCHS = 2 if FAST else 6
N_ATTACK = 64 if FAST else 128      # test images attacked
N_DIAG = 32 if FAST else 100        # images for smoothness / similarity
ATTACKS = ["mifgsm", "dim"] if FAST else ["mifgsm", "dim", "tifgsm", "vmifgsm", "admix", "ssa"]
torch.manual_seed(0)
train, test = digits(seed=0)

fit_kwargs = {"epochs": EPOCHS}
specs = {
    "cnn (standard)": ModelSpec("cnn", recipe="st", fit_kwargs=fit_kwargs),
    "cnn (AT, L2 0.5)": ModelSpec("cnn", recipe="at", recipe_kwargs={"strength": 0.5, "norm": "l2", "steps": 3},
                                  fit_kwargs=fit_kwargs),
    "mlp (standard)": ModelSpec("mlp", recipe="st", fit_kwargs=fit_kwargs),
}
surrogates = {name: train_or_load(spec, train)[0] for name, spec in specs.items()}
hub = from_timm("resnet18", num_classes=10, in_chans=1, mean=0.5, std=0.25)
surrogates["timm resnet18"] = fit(hub, train, epochs=1 if FAST else EPOCHS, progress=False).model.eval()
targets = {name: train_or_load(ModelSpec(arch, seed=7, fit_kwargs={"epochs": 3 * EPOCHS}),
                               train)[0] for name, arch in (("resnet", "resnet"), ("lenet", "lenet"))}
for name, model in {**surrogates, **targets}.items():
    print(f"{name:18s} test accuracy {accuracy(model, test)['accuracy']:.3f}")

# %%
# ## Attacks under one protocol
#
# The comparison is only fair when every attack gets the same budget, step and iterations:
# `evaluate(..., protocol="digits")` runs each attack from each surrogate (L-inf 0.2, step 0.02, 10
# iterations, momentum 1) and measures every target. `asr_correct` is the attack success rate on
# the images that every model classifies correctly; `cost` the gradient evaluations per image.

x, y = test.x[:N_ATTACK], test.y[:N_ATTACK]
suite = evaluate(surrogates, targets, (x, y), attacks=ATTACKS, protocol="digits", seed=0)
asr = {}
for r in suite.rows:
    if r["target"] in targets:
        asr.setdefault(r["source"], {}).setdefault(r["attack"], []).append(r["asr_correct"])
print(f"{'surrogate':18s}" + "".join(f"{a:>10s}" for a in ATTACKS) + f"{'mean':>10s}")
mean_asr = {}
for source, per_attack in asr.items():
    row = [float(np.mean(per_attack[a])) for a in ATTACKS]
    mean_asr[source] = float(np.mean(row))
    print(f"{source:18s}" + "".join(f"{v:10.3f}" for v in row) + f"{mean_asr[source]:10.3f}")
best = max(mean_asr, key=mean_asr.get)
print(f"best surrogate (mean transfer ASR over attacks and targets): {best}")

# %%
# ## Why: smoothness and gradient similarity
#
# Seed 001 explains transfer by two surrogate properties: a *smoother* loss surface (a smaller top
# eigenvalue of the input Hessian, `smoothness`) and input gradients *aligned* with the target's
# (`gradient_similarity`, the cosine per sample). Both are cheap compared with running attacks, so
# they can screen candidate surrogates.

xd, yd = test.x[:N_DIAG], test.y[:N_DIAG]
diagnostics = {}
for name, model in surrogates.items():
    smooth = smoothness(model, xd, yd, progress=False).mean
    sim = float(np.mean([gradient_similarity(model, t, xd, yd).mean for t in targets.values()]))
    diagnostics[name] = (smooth, sim)
    print(f"{name:18s} smoothness (top Hessian eigenvalue) {smooth:9.3f}   gradient similarity {sim:.3f}"
          f"   mean ASR {mean_asr[name]:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for name, (smooth, sim) in diagnostics.items():
    axes[0].scatter(smooth, mean_asr[name])
    axes[0].annotate(name, (smooth, mean_asr[name]), fontsize=7)
    axes[1].scatter(sim, mean_asr[name])
    axes[1].annotate(name, (sim, mean_asr[name]), fontsize=7)
axes[0].set(xscale="log", xlabel="smoothness (lower = smoother)", ylabel="mean transfer ASR")
axes[1].set(xlabel="gradient similarity with the targets", ylabel="mean transfer ASR")
fig.tight_layout()

# %%
# ## What to take away
#
# Pick the surrogate by the protocol's ASR on targets like yours; smoothness and gradient similarity
# tell you *why* one transfers better and can pre-screen a larger zoo. For many candidates,
# `pyadvt.selection.rank_surrogates` (or `pyadvt rank-surrogates`) computes these columns for you,
# and `pyadvt benchmark-attacks` runs the whole suite with confidence intervals over seeds.
