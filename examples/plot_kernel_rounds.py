"""
==========================================================
Self-distillation amplifies regularisation in kernel ridge
==========================================================

Mobahi, Farajtabar and Bartlett (2020) study kernel ridge regression distilled
into itself: every round fits the previous round's predictions with the
regularisation chosen so that the training error equals a fixed ``epsilon``.
They prove that each round shrinks the small-eigenvalue directions of the Gram
matrix more than the large ones, so fewer and fewer basis functions carry the
solution: a few rounds reduce over-fitting, more rounds under-fit, and after
a bounded number of rounds the solution collapses to zero.

``KernelSelfDistillationRegressor`` with
``alpha="constrained"`` runs this procedure from one eigendecomposition of the
Gram matrix. Here it reproduces the qualitative result on a handful of noisy
samples of a sinusoid.
"""

# %%
# Data: 30 noisy samples of a sinusoid
# ------------------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np

from skdistill import KernelSelfDistillationRegressor

rng = np.random.default_rng(0)
X = np.sort(rng.uniform(0, 2 * np.pi, size=30))[:, None]
y = np.sin(X[:, 0]) + rng.normal(scale=0.4, size=30)
X_test = np.linspace(0, 2 * np.pi, 500)[:, None]
y_test = np.sin(X_test[:, 0])

# %%
# Distil until the solution collapses
# -----------------------------------
# Every round has training mean squared error ``epsilon = 0.03`` against its
# own targets, well below the noise variance (0.16), so the teacher over-fits.
# We ask for up to 50 rounds; the fit stops, with a warning, once the targets'
# mean square falls to ``epsilon``.
reg = KernelSelfDistillationRegressor(
    alpha="constrained", epsilon=0.03, n_steps=50, kernel="rbf", gamma=1.0
)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    reg.fit(X, y)
print(caught[-1].message)

test_mse = [np.mean((pred - y_test) ** 2) for pred in reg.staged_predict(X_test)]
print("round  alpha      effective basis functions  test MSE")
for i, (alpha, dof, mse) in enumerate(
    zip(reg.alphas_, reg.effective_dof_, test_mse, strict=True)
):
    print(f"{i:5d}  {alpha:9.3g}  {dof:25.2f}  {mse:8.3f}")
best = int(np.argmin(test_mse))
print(
    f"Best round: {best} (test MSE {test_mse[best]:.3f} against the teacher's "
    f"{test_mse[0]:.3f}); collapse after {reg.n_steps_} rounds."
)

# %%
# The fit of each round
# ---------------------
# The teacher follows the noise; each round is smoother than the one before,
# and the last ones flatten towards zero.
colors = plt.cm.viridis(np.linspace(0, 1, reg.n_steps_ + 1))
fig, ax = plt.subplots(figsize=(7, 4))
ax.scatter(X[:, 0], y, color="k", s=12, label="training data")
ax.plot(X_test[:, 0], y_test, "k--", lw=1, label="sin(x)")
for i, pred in enumerate(reg.staged_predict(X_test)):
    ax.plot(X_test[:, 0], pred, color=colors[i], label=f"round {i}")
ax.set_ylim(-2, 2)
ax.set_xlabel("x")
ax.set_title("Fit of each round")
ax.legend(fontsize=7, ncols=2, loc="lower left")
fig.tight_layout()
plt.show()

# %%
# Sparsification against test error
# ---------------------------------
# The effective number of basis functions (the sum of the filter factors)
# falls every round, while the test error first falls and then rises.
rounds = np.arange(reg.n_steps_ + 1)
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(rounds, reg.effective_dof_, "o-", color="C0")
ax.set_xlabel("round")
ax.set_ylabel("sum of filter factors", color="C0")
ax2 = ax.twinx()
ax2.plot(rounds, test_mse, "s-", color="C3")
ax2.set_ylabel("test MSE", color="C3")
ax.set_title("Sparsification against test error")
fig.tight_layout()
plt.show()

# %%
# The shrinkage of each eigen-direction
# -------------------------------------
# Each round multiplies the shrinkage of every eigen-direction by a factor
# below one that is smallest for the small eigenvalues: the filter factors
# concentrate on the leading directions.
fig, ax = plt.subplots(figsize=(7, 4))
for i, g in enumerate(reg.filter_factors_):
    ax.semilogx(reg.eigenvalues_ + 1e-16, g, "o-", ms=3, color=colors[i])
ax.set_xlabel("eigenvalue of the Gram matrix")
ax.set_ylabel("filter factor")
ax.set_title("Shrinkage of each eigen-direction (colour: round, as above)")
fig.tight_layout()
plt.show()
