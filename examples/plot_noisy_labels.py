"""
=================================================
Self-distillation denoises labels: noisy mixtures
=================================================

Takanami, Takahashi and Sakata (NeurIPS 2025) analysed multi-stage
self-distillation of a linear classifier on a two-class Gaussian mixture whose
training labels are flipped at random. Their replica theory predicts that,
with tuned regularisation, a student trained on the *hard* pseudo-labels of
the previous stage beats its teacher: for as many samples as features
(``n = d``), noise variance 0.5, balanced classes and 30% of the labels
flipped, the test error falls from about 0.24 (teacher) to 0.19 after one
stage and 0.16 after five, and the gain is largest at moderate sample sizes.

This example reproduces that on finite data with
``skdistill.SelfDistillationClassifier`` and
``skdistill.datasets.make_noisy_gaussian_mixture``. Errors are measured
against the *clean* labels of a large test set. The regularisation ``C`` of
logistic regression (shared by all stages of a fit) is tuned separately for
every number of stages, either on the test set itself (the paper's choice:
its hyperparameters minimise the generalisation error) or, honestly, on an
independent validation set of ``n`` samples with *noisy* labels. The mixture
is centred and balanced, so the logistic regressions are fitted without an
intercept (the optimal bias is zero).

``benchmarks/bench_noisy_labels.py`` runs the same comparison with larger
dimensions and more seeds.
"""

# %%
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from skdistill import SelfDistillationClassifier
from skdistill.datasets import make_noisy_gaussian_mixture

warnings.filterwarnings("ignore", category=ConvergenceWarning)
t_start = time.perf_counter()

Cs = np.logspace(-5, 1, 4)
n_steps = 5


def errors(d, alpha, seed, modes):
    """Test and validation error of every stage, shape (mode, C, stage)."""
    n = int(alpha * d)
    X, y, _ = make_noisy_gaussian_mixture(n, d, random_state=3 * seed)
    X_val, y_val, _ = make_noisy_gaussian_mixture(n, d, random_state=3 * seed + 1)
    X_te, _, y_te = make_noisy_gaussian_mixture(4000, d, random_state=3 * seed + 2)
    test = np.empty((len(modes), len(Cs), n_steps + 1))
    val = np.empty_like(test)
    for m, mode in enumerate(modes):
        for c, C in enumerate(Cs):
            clf = SelfDistillationClassifier(
                LogisticRegression(C=C, fit_intercept=False),
                n_steps=n_steps,
                pseudo_labels=mode,
            ).fit(X, y)
            test[m, c] = [np.mean(p != y_te) for p in clf.staged_predict(X_te)]
            val[m, c] = [np.mean(p != y_val) for p in clf.staged_predict(X_val)]
    return test, val


def tuned(test, val):
    """Test error per number of stages, C chosen by oracle and by validation."""
    oracle = test.min(axis=-2)
    best = val.argmin(axis=-2)[..., None, :]
    return oracle, np.take_along_axis(test, best, axis=-2)[..., 0, :]


# %%
# Test error after each stage, ``n = d = 200``, five data sets
# ------------------------------------------------------------
d, n_seeds, modes = 200, 5, ["hard", "soft"]
runs = [errors(d, 1.0, s, modes) for s in range(n_seeds)]
test = np.stack([r[0] for r in runs])  # (seed, mode, C, stage)
val = np.stack([r[1] for r in runs])
oracle, by_val = tuned(test, val)  # (seed, mode, stage)

fig, ax = plt.subplots(figsize=(6, 4))
stages = np.arange(n_steps + 1)
for m, mode in enumerate(modes):
    for errs, style, name in [(oracle, "-", "oracle C"), (by_val, "--", "val. C")]:
        mean = errs[:, m].mean(axis=0)
        se = errs[:, m].std(axis=0, ddof=1) / np.sqrt(n_seeds)
        ax.errorbar(
            stages, mean, yerr=se, ls=style, marker="o", capsize=3,
            label=f"{mode}, {name}",
        )  # fmt: skip
ax.plot([0, 1, 5], [0.24, 0.19, 0.16], "k*", ms=12, label="paper (replica)")
ax.set_xlabel("stage (0 = teacher)")
ax.set_ylabel("clean test error")
ax.set_title("n = d = 200, noise variance 0.5, 30% flipped")
ax.set_ylim(top=ax.get_ylim()[1] + 0.06)  # room for the legend above the curves
ax.legend(loc="upper left", ncols=2, fontsize="small")
fig.tight_layout()

hard = oracle[:, 0].mean(axis=0)
print(
    "n = d, hard pseudo-labels, oracle C: teacher / 1 stage / 5 stages = "
    f"{hard[0]:.3f} / {hard[1]:.3f} / {hard[5]:.3f} (paper 0.24 / 0.19 / 0.16)"
)
for m, mode in enumerate(modes):
    print(
        f"{mode:>4}, validation C: "
        + " ".join(f"{e:.3f}" for e in by_val[:, m].mean(axis=0))
    )

# %%
# The gain fades for large samples
# --------------------------------
# Teacher against the best of five hard-label stages (C and the number of
# stages chosen on the noisy validation set), for growing ``n / d``.
# ``n / d = 1`` reuses the hard-label runs above.


def teacher_and_student(test, val):
    """Validation-tuned teacher, and student with C and stages tuned."""
    teacher = test[0, val[0, :, 0].argmin(), 0]
    c, t = np.unravel_index(val[0].argmin(), val[0].shape)
    return teacher, test[0, c, t]


alphas, n_new = [0.5, 1, 2, 16], 3
results = []
for alpha in alphas:
    if alpha == 1:
        pairs = [teacher_and_student(t[:1], v[:1]) for t, v in runs]
    else:
        pairs = [
            teacher_and_student(*errors(d, alpha, s, ["hard"])) for s in range(n_new)
        ]
    results.append(np.array(pairs))
    print(
        f"n/d = {alpha:>4}: teacher {results[-1][:, 0].mean():.3f}, "
        f"distilled {results[-1][:, 1].mean():.3f}"
    )

fig, ax = plt.subplots(figsize=(6, 4))
for i, name in enumerate(["teacher", "self-distilled (hard)"]):
    ax.errorbar(
        alphas,
        [r[:, i].mean() for r in results],
        yerr=[r[:, i].std(ddof=1) / np.sqrt(len(r)) for r in results],
        marker="o",
        capsize=3,
        label=name,
    )
ax.axhline(0.0786, color="k", lw=0.8, ls=":", label="Bayes error")
ax.set_xscale("log")
ax.set_xlabel("n / d")
ax.set_ylabel("clean test error (validation-tuned)")
ax.legend()
fig.tight_layout()
print(f"total {time.perf_counter() - t_start:.0f} s")
plt.show()

# %%
# Reading the result
# ------------------
# In one run of this script, the hard-label students with the oracle ``C``
# went from 0.237 (teacher) to 0.193 after one stage and 0.172 after five,
# close to the paper's 0.24 / 0.19 / 0.16, and choosing ``C`` on the noisy
# validation set cost little (0.174 after five stages). The gain is largest
# at moderate ``n / d`` and small at ``n / d = 16`` (0.099 -> 0.086).
#
# Soft pseudo-labels at temperature 1 did about as well as hard ones after
# one or two stages, which does not reproduce the paper's "hard beats soft"
# at this temperature; they were less stable over more stages when ``C`` was
# chosen on the validation set. ``benchmarks/bench_noisy_labels.py`` has the
# larger comparison.
