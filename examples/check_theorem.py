"""Checking a theorem: seed 000's Theorem 1 as an identity, seed 003's max-margin directions

You read a transferability theorem and want to know whether it holds - exactly, on your models, not
just in the paper's experiments. This tutorial checks two of them with pyadvt: Theorem 1 of seed 000
(the gradient gap of a source and a target equals ``(1 - tau1 tau2)`` times the target's gradient
norm, docs/theory.md §2) on trained digits models and on a random-init timm ResNet-18, against a
re-implementation in plain autograd; and Theorem 4 of seed 003 (for every S-accurate linear classifier,
``-y w*`` of the max-margin SVM is an adversarial direction at every point of S, docs/theory.md §6)
on many random instances drawn by the property-test helpers and on two classes of the digits.
"""

# %%
# ## Setting
#
# `PYADVT_TUTORIAL_FAST=1` (the test suite's setting) uses fewer samples and instances.

import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from pyadvt.bounds import theorem1
from pyadvt.data import digits
from pyadvt.models import build, from_timm
from pyadvt.theory import as_linear_classifier, check_theorem4, max_margin_svm
from pyadvt.theory.random_instances import random_linear_separator, random_separable_set
from pyadvt.train import fit

FAST = os.environ.get("PYADVT_TUTORIAL_FAST") == "1"
N_SAMPLES = 64 if FAST else 256     # samples of the expectation in Theorem 1
N_INSTANCES = 20 if FAST else 200   # random instances for Theorem 4
torch.manual_seed(0)
train, test = digits(seed=0)
x = test.x[:N_SAMPLES]              # [N, 1, 8, 8] in [0, 1]

# %%
# ## Theorem 1 of seed 000: an identity, not a bound
#
# For scalar models `f_S, f_T` and the best affine map `g(z) = A z + c` between them, Theorem 1 says
# `E||grad f_T - A grad f_S||^2 = E[(1 - tau1(x) tau2) ||grad f_T(x)||^2]`: tau1 measures how well the
# gradient directions align, tau2 how well their magnitudes are related by one `A`.
# `pyadvt.bounds.theorem1` returns both sides. The models must have one output, so we read one logit
# (the margin of class 0 over class 1) of two digits classifiers trained from different seeds.


class Margin(nn.Module):
    """``f(x) = logit_0(x) - logit_1(x)``: a scalar model ``[B, *in] -> [B, 1]``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        z = self.model(x)
        return z[:, :1] - z[:, 1:2]


source = Margin(fit(build("cnn"), train, epochs=2, progress=False).model).eval()
target = Margin(fit(build("mlp"), train, epochs=5, seed=1, progress=False).model).eval()
result = theorem1(source, target, x)
print(f"lhs = {result.lhs:.6g}   rhs = {result.rhs:.6g}   tau1 = {result.tau1:.3f}   tau2 = {result.tau2:.3f}")
print(f"relative difference: {abs(result.lhs - result.rhs) / result.rhs:.1e}")

# %%
# ## The same quantity in plain autograd
#
# An independent re-implementation of the left-hand side: the input gradients of both scalar models,
# the least-squares `A = E[<gT, gS>] / E[||gS||^2]`, the mean squared gap. If pyadvt's Jacobians, its
# `A` or its tau values were wrong, this number would not match.


def input_gradients(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xr).sum(), xr)
    return grad.flatten(1).double()  # [N, n]


def gradient_gap(source: nn.Module, target: nn.Module, x: torch.Tensor) -> float:
    gS, gT = input_gradients(source, x), input_gradients(target, x)
    A = (gT * gS).sum() / (gS * gS).sum()
    return float((gT - A * gS).square().sum(1).mean())


manual = gradient_gap(source, target, x)
print(f"autograd lhs = {manual:.6g}   pyadvt lhs = {result.lhs:.6g}")
assert abs(manual - result.lhs) <= 1e-6 * manual, "pyadvt's Theorem 1 lhs differs from autograd"
assert abs(result.lhs - result.rhs) <= 1e-6 * result.rhs, "Theorem 1 is an identity"

# %%
# ## Any pair of models: a random-init hub model
#
# The identity holds for any pair of differentiable models, so it is a sharp test of the
# implementation. Here the target is a randomly initialised timm ResNet-18 with one output and one
# input channel (nothing is downloaded), against the trained CNN's margin.

hub = from_timm("resnet18", num_classes=1, in_chans=1, mean=0.5, std=0.25).eval()  # one-channel normalisation
hub_result = theorem1(source, hub, x)
hub_manual = gradient_gap(source, hub, x)
print(f"timm resnet18: lhs = {hub_result.lhs:.6g}   rhs = {hub_result.rhs:.6g}   autograd = {hub_manual:.6g}")
print(f"tau1 = {hub_result.tau1:.3f} (random directions in n = 64 dimensions give about 1/64 = 0.016)")
assert abs(hub_result.lhs - hub_result.rhs) <= 1e-6 * hub_result.rhs
assert abs(hub_manual - hub_result.lhs) <= 1e-6 * hub_manual

# %%
# ## Theorem 4 of seed 003 on random instances
#
# `S` is linearly separable with max-margin SVM direction `w*`. Theorem 4: for every classifier `h`
# that is S-accurate (right on every point of S), moving a point `(x, y)` of S along `-y w*` far
# enough flips `h`. The property-test helpers in `pyadvt.theory.random_instances` draw instances that
# satisfy the hypotheses by construction: a separable set, and a random S-accurate separator that is
# *not* the SVM. `check_theorem4` computes the exact critical step `c` at which `h` flips.

rng = np.random.default_rng(0)
critical, all_adversarial = [], True
for i in range(N_INSTANCES):
    d = int(rng.integers(2, 8))
    X, y = random_separable_set(rng, n=30, d=d, margin=0.5)
    svm = max_margin_svm(X, y)
    h = random_linear_separator(X, y, rng)
    check = check_theorem4(svm, h)
    all_adversarial &= bool(check.adversarial.all())
    critical.append(np.asarray(check.critical_c))
critical = np.concatenate(critical)
print(f"{N_INSTANCES} instances, {critical.size} points: every point adversarial along -y w*: {all_adversarial}")
print(f"critical step c: median {np.median(critical):.3f}, max {critical.max():.3f}")
assert all_adversarial

# %%
# A claim that can fail: a random direction is *not* adversarial at every point. The same check with
# a random unit vector instead of `-y w*` (through `pyadvt.theory.evaluate_direction`) finds points
# where it never flips `h`, which is what makes Theorem 4 a statement about `w*`.

from pyadvt.theory import evaluate_direction  # noqa: E402

X, y = random_separable_set(rng, n=30, d=5, margin=0.5)
h = random_linear_separator(X, y, rng)
v = rng.normal(size=5)
random_dir = evaluate_direction(h, X, y, np.tile(v / np.linalg.norm(v), (len(X), 1)))
print(f"random direction adversarial at {int(random_dir.adversarial.sum())} of {len(X)} points")

# %%
# ## Theorem 4 on the digits
#
# The digits 3 and 8 (64 pixels) are linearly separable. Any S-accurate linear model - here
# scikit-learn's logistic regression - is then flipped along `-y w*` of the max-margin SVM at every
# training point, although it never saw the SVM.

from sklearn.linear_model import LogisticRegression  # noqa: E402

pair = (train.y == 3) | (train.y == 8)
X38 = train.x[pair].flatten(1).double().numpy()
y38 = np.where(train.y[pair].numpy() == 8, 1, -1)
if FAST:
    X38, y38 = X38[:120], y38[:120]
svm38 = max_margin_svm(X38, y38)
logreg = LogisticRegression(C=1e4, max_iter=5000).fit(X38, y38)
h38 = as_linear_classifier(logreg)
assert np.all(h38.predict(X38) == y38), "the logistic regression is S-accurate"
check38 = check_theorem4(svm38, h38)
print(f"digits 3 vs 8: {len(y38)} points, margin {svm38.margin:.4f}, "
      f"adversarial along -y w* at {int(check38.adversarial.sum())} of {len(y38)}")
fig, ax = plt.subplots(1, 2, figsize=(8, 3))
ax[0].hist(critical, bins=30)
ax[0].set(title="random instances", xlabel="critical step c along -y w*", ylabel="points")
ax[1].hist(np.asarray(check38.critical_c), bins=30, color="tab:orange")
ax[1].set(title="digits 3 vs 8", xlabel="critical step c along -y w*")
fig.tight_layout()
