"""How often each number of steps is chosen (user guide figure).

Twelve random designs (n = 300, d = 20, covariance spectrum ``1/j``, noise
0.5) with the true coefficients along the top eigenvector (aligned) or spread
evenly over all of them (spread). For each, ``SelfDistillCV`` with the
default rule and with ``selection="raw"`` (the best raw CV score), the same
alphas and folds; the legends give the mean excess risk over that of ridge
tuned on the same alphas and folds (``n_steps=0``, the choice of ``RidgeCV``
with ``scoring="neg_mean_squared_error"``).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn.model_selection import KFold

from skdistill import SelfDistillCV

n, d, noise, seeds, steps = 300, 20, 0.5, range(12), (0, 1, 2, 3)
alphas = np.logspace(-3, 5, 20)
cov = 1.0 / np.arange(1, d + 1)
problems = {"aligned": np.eye(d)[0], "spread": 1.0 / np.sqrt(d * cov)}
rules = {"default (stepwise)": "stepwise", 'selection="raw"': "raw"}

fig, axes = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
for ax, (title, coef) in zip(axes, problems.items(), strict=True):
    chosen = {rule: [] for rule in rules}
    ratios = {rule: [] for rule in rules}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, d)) * np.sqrt(cov)
        y = X @ coef + noise * rng.normal(size=n)
        cv = KFold(5, shuffle=True, random_state=seed)

        def risk(est, coef=coef):
            delta = est.coef_ - coef
            return delta @ (cov * delta) + est.intercept_**2

        ridge = risk(SelfDistillCV(alphas=alphas, n_steps=0, cv=cv).fit(X, y))
        for rule, selection in rules.items():
            search = SelfDistillCV(
                alphas=alphas,
                n_steps=steps,
                cv=cv,
                selection=selection,
                return_honest_score=False,
            ).fit(X, y)
            chosen[rule].append(search.n_steps_)
            ratios[rule].append(risk(search) / ridge)
    for i, rule in enumerate(rules):
        counts = np.bincount(chosen[rule], minlength=len(steps))
        label = f"{rule}: risk {np.mean(ratios[rule]):.2f} x ridge's"
        ax.bar(np.arange(len(steps)) + (i - 0.5) * 0.4, counts, 0.4, label=label)
    ax.set_xticks(range(len(steps)), [f"k={k}" for k in steps])
    ax.set_ylabel("number of fits")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, len(seeds) * 1.35)
    ax.set_title(f"{title} signal, {len(seeds)} fits")
    ax.legend(fontsize="small", loc="upper center")
axes[-1].set_xlabel("chosen number of steps n_steps_ (k = 0: ridge)")
fig.tight_layout()
