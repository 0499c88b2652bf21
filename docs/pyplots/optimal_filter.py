"""The best filter against ridge's and the students' (user guide figure).

Two fixed designs with the same singular values ``s_j = 1/j`` (d = 8) and
noise 0.05: the true coefficients along the top singular direction
(aligned), or spread evenly over all eight (spread). For each, the oracle
filter ``phi*_j`` and the filters of ridge and of the 1- and 2-step students,
each at its best ``alpha`` with its best ``xi_bar``
(:func:`skdistill.theory.optimal_xi_bar`), drawn against the singular value.
"""

import matplotlib.pyplot as plt
import numpy as np

from skdistill.datasets import make_self_distillation_regression
from skdistill.theory import optimal_xi_bar, risk_lower_bound

d, noise = 8, 0.05
s = 1.0 / np.arange(1, d + 1)
alphas = np.logspace(-5, 1, 25)
s_line = np.logspace(np.log10(s[-1]) - 0.2, 0.1, 200)

fig, axes = plt.subplots(2, 1, figsize=(6, 6.6), sharex=True)
problems = [("aligned: coef = v_1", (0,)), ("spread: coef on all 8", range(d))]
for ax, (title, directions) in zip(axes, problems, strict=True):
    X, _, coef = make_self_distillation_regression(
        n_samples=d,
        n_features=d,
        singular_values=s,
        coef_directions=tuple(directions),
        noise=noise,
        random_state=0,
    )
    c2 = (np.linalg.svd(X)[2] @ coef) ** 2  # squared coefficient per direction
    bound = risk_lower_bound(X, coef, noise=noise)
    best = s**2 * c2 / (s**2 * c2 + noise**2)
    ax.plot(s, best, "ko", ms=7, label="best filter $\\phi^\\star_j$")
    for k, style in [(0, "--"), (1, "-"), (2, "-")]:
        grid = alphas
        for _ in range(2):  # a coarse grid, then a finer one around its best
            fits = [
                optimal_xi_bar(X, coef, noise=noise, alpha=a, n_steps=k) for a in grid
            ]
            i = int(np.argmin([risk for _, risk in fits]))
            grid = grid[i] * np.logspace(-0.2, 0.2, 9)
        alpha = grid[4]
        xi_bar, risk = fits[i]
        h = s_line**2 / (s_line**2 + alpha)
        phi = h * np.polyval(xi_bar[::-1], h)
        name = "ridge" if k == 0 else f"{k}-step"
        ax.plot(s_line, phi, style, label=f"{name} (risk {risk / bound:.2f} x bound)")
    ax.set_xscale("log")
    ax.set_ylabel("filter factor $\\phi$")
    ax.set_ylim(-0.1, 1.3)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left")
axes[-1].set_xlabel("singular value $s_j$ (dots: the design's)")
fig.tight_layout()
