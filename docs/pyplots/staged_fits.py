"""The teacher and its students on one data set (user guide figure).

Forty noisy samples of a sine, on 30 Gaussian bumps as features, fitted by
``RepeatedSelfDistillationRegressor(alpha=0.3, n_steps=3)``: the teacher
(ridge) and the three students of ``staged_predict``, with every ``xi`` equal
to 1 (each student fits the previous predictions alone) or to -0.5 (each
pulls away from the previous predictions, towards the labels).
"""

import matplotlib.pyplot as plt
import numpy as np

from skdistill import RepeatedSelfDistillationRegressor

rng = np.random.default_rng(0)
x = np.sort(rng.uniform(0, 1, 40))
y = np.sin(2 * np.pi * x) + rng.normal(scale=0.3, size=x.size)
grid = np.linspace(0, 1, 300)
centres = np.linspace(0, 1, 30)


def features(t):
    return np.exp(-((t[:, None] - centres) ** 2) / (2 * 0.04**2))


fig, axes = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
for ax, xi in zip(axes, (1.0, -0.5), strict=True):
    reg = RepeatedSelfDistillationRegressor(alpha=0.3, n_steps=3, xi=xi)
    reg.fit(features(x), y)
    ax.plot(x, y, "k.", label="labels")
    ax.plot(grid, np.sin(2 * np.pi * grid), "k:", lw=1, label="sin(2 pi x)")
    colors = plt.cm.viridis(np.linspace(0, 0.85, reg.n_steps + 1))
    for i, pred in enumerate(reg.staged_predict(features(grid))):
        name = "teacher (ridge)" if i == 0 else f"student {i}"
        ax.plot(grid, pred, color=colors[i], label=name)
    ax.set_title(f"every xi = {xi}")
    ax.set_ylim(-1.8, 1.8)
axes[-1].set_xlabel("x")
axes[0].legend(fontsize="small", ncols=2, loc="lower left")
fig.tight_layout()
