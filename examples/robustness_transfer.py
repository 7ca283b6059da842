"""Does robustness survive linear probing?

You adversarially trained a source model and want to reuse it for a new task. Is the model you get
after transfer learning still robust - and can you know *which* predictions are, without attacking
them? Seed 004 answers for linear probing: a representation with a small adversarial sensitivity (the
AS score, eq. 2) keeps predictions robust, and Theorem 2 certifies a point when its margin beats the
representation's shift (docs/theory.md §5). This tutorial measures both for a standard and an
adversarially trained source, and compares linear probing (LP) with full fine-tuning (FT) and LP-FT
(docs/theory.md §4), which change the representation and void the certificate.
"""

# %%
# ## Two sources and a new task
#
# Sources: SmallCNNs trained on digits 0-4, one standard (`st`) and one adversarially (`at`, L-inf
# PGD). The target task has *new classes*: digits 5-9, relabelled 0-4.

import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from pyadvt.attacks import PGD
from pyadvt.bounds import theorem2_criterion
from pyadvt.data import TensorData, digits
from pyadvt.metrics import as_score
from pyadvt.models import build
from pyadvt.train import fit, training_recipe
from pyadvt.transfer import finetune, linear_probe, lp_ft

FAST = os.environ.get("PYADVT_TUTORIAL_FAST") == "1"
EPOCHS = 3 if FAST else 10
N_EVAL = 64 if FAST else 226        # target test images attacked / certified
AS_STEPS = 20 if FAST else 100      # steps of the representation attack (AS score)
EPS = 0.05                          # L-inf budget in pixel units, for every attack and the certificate
torch.manual_seed(0)
train, test = digits(seed=0)


def classes(data: TensorData, lo: int) -> TensorData:
    keep = (data.y >= lo) & (data.y < lo + 5)
    return TensorData(data.x[keep], data.y[keep] - lo, num_classes=5)


source_train = classes(train, 0)
target_train, target_test = classes(train, 5), classes(test, 5)
sources = {}
for method in ("st", "at"):
    model = build("cnn", num_classes=5)
    recipe = training_recipe(method, model, strength=None if method == "st" else 0.1, norm="linf", steps=5,
                             num_classes=5)
    sources[method] = fit(model, source_train, epochs=EPOCHS, progress=False, **recipe).model.eval()

# %%
# ## Transfer three ways
#
# `linear_probe` trains a new head on frozen features, `finetune(blocks="all")` trains everything,
# `lp_ft` probes first, then fine-tunes with a small learning rate. Each returns a copy; the source
# is never modified.

transfer = {"LP": lambda m: linear_probe(m, target_train, epochs=3 * EPOCHS, lr=0.05),  # only a head: cheap
            "FT": lambda m: finetune(m, target_train, blocks="all", epochs=EPOCHS),
            "LP-FT": lambda m: lp_ft(m, target_train, epochs=EPOCHS)}
models = {(s, t): fn(src).model.eval() for s, src in sources.items() for t, fn in transfer.items()}

# %%
# ## Robustness after transfer, measured and certified
#
# For every transferred model: clean and robust accuracy on the target test set (L-inf PGD-20 at
# `EPS`), the AS score of its representation (the mean shift the representation attack achieves -
# lower is more robust), and Theorem 2's criterion: the share of points it certifies and how many of
# those the attack actually broke (the theorem says none, for the representation attack's adversary).

x, y = target_test.x[:N_EVAL], target_test.y[:N_EVAL]
rows = []
for (s, t), model in models.items():
    x_adv = PGD(model, eps=EPS, steps=20)(x, y)
    with torch.no_grad():
        clean = float((model(x).argmax(1) == y).double().mean())
        robust = float((model(x_adv).argmax(1) == y).double().mean())
    score = as_score(model, x, EPS, steps=AS_STEPS, restarts=1).score
    cert = theorem2_criterion(model, x, y, EPS, steps=20, rep_steps=AS_STEPS, restarts=1).summary()
    rows.append((s, t, clean, robust, score, cert["prop_fulfilled"], cert["robust_among_fulfilled"]))
print(f"{'source':6s} {'transfer':8s} {'clean':>6s} {'robust':>7s} {'AS':>7s} {'certified':>10s} "
      f"{'robust|cert':>12s}")
for s, t, clean, robust, score, prop, among in rows:
    among_txt = "-" if among is None else f"{among:.3f}"
    print(f"{s:6s} {t:8s} {clean:6.3f} {robust:7.3f} {score:7.3f} {prop:10.3f} {among_txt:>12s}")

# %%
# ## Reading the table
#
# Under LP the representation is the source's, so its AS score is the source's: compare the `st`
# and `at` rows of LP to see how much of the adversarial training carries over. FT and LP-FT retrain
# the features on the target data, so the AS score, the robust accuracy and the certified share all
# change; a certified point should never be broken by the attack ("robust|cert" = 1). The
# numbers are small-sample (see the page's setting); `pyadvt experiment robustness-transfer` runs the
# full seed-004 design with confidence intervals.

fig, ax = plt.subplots(figsize=(7, 3.5))
labels = [f"{s}\n{t}" for s, t, *_ in rows]
pos = np.arange(len(rows))
ax.bar(pos - 0.2, [r[3] for r in rows], width=0.4, label="robust accuracy (PGD-20)")
ax.bar(pos + 0.2, [r[5] for r in rows], width=0.4, label="certified by Theorem 2")
ax.set_xticks(pos, labels)
ax.set(ylabel="share of target test points", title=f"robustness after transfer, eps = {EPS}")
ax.legend(fontsize=8)
fig.tight_layout()
lp = {s: score for s, t, clean, robust, score, *_ in rows if t == "LP"}
print(f"AS score under LP: st {lp['st']:.3f}, at {lp['at']:.3f} "
      f"({'lower' if lp['at'] < lp['st'] else 'not lower'} for the adversarially trained source)")
broken = [f"{s}/{t}" for s, t, *_, among in rows if among is not None and among < 1]
print(f"certified points broken by PGD: {', '.join(broken) if broken else 'none'}")
