"""
=======================================================
Reproducing Table 1 of Pareek, Oh and Du (NeurIPS 2024)
=======================================================

The paper compares optimal ridge regression with optimal 1- and 2-step
self-distillation on three UCI data sets, following a fixed protocol: rows
split in file order into 30% training, 30% validation and 40% test;
features and target standardised with training statistics; ``alpha`` from
``10 ** {0, 0.5, ..., 4}`` and ``xi`` chosen on the validation split. The
package follows it with ``SelfDistillCV`` on a
``PredefinedSplit``, which finds the optimal
``xi`` for every ``alpha`` exactly.

The data are read from the folder named by ``SKDISTILL_DATA`` when it is set,
otherwise downloaded once from the UCI repository (sha256-checked). The same
numbers come from ``python -m skdistill.reproduce table1 --out results`` (up
to four steps, its default ``--max-steps 4``).

.. note::

   If the code blocks below show no output, this page was built without the
   UCI files: the documentation build runs this example only when
   ``SKDISTILL_DATA`` names a folder holding ``AirQualityUCI.csv``,
   ``airfoil_self_noise.dat`` and ``energydata_complete.csv``, and never
   downloads them. Run the script or the command above to see the numbers.
"""

# %%
# Run the protocol
# ----------------
import matplotlib.pyplot as plt
import numpy as np

from skdistill.reproduce import PAPER_TABLE1, table1

max_steps = 4  # as python -m skdistill.reproduce table1
results = table1(max_steps=max_steps, verbose=False)

print("Test mean squared error (standardised units) with k distillation steps;")
print("k = 0 is ridge. 'paper': Table 1 of Pareek, Oh and Du (k = 0, 1, 2 only).")
steps = range(max_steps + 1)
print(f"{'data set':<12} {'':>7}" + "".join(f"{f'k={k}':>8}" for k in steps))
for name, entry in results.items():
    ours = [row["test_mse"] for row in entry["steps"]]
    print(f"{name:<12} {'ours':>7}" + "".join(f"{v:8.3f}" for v in ours))
    print(f"{'':<12} {'paper':>7}" + "".join(f"{v:8.2f}" for v in PAPER_TABLE1[name]))

# %%
# The gains differ by data set
# ----------------------------
# With the paper's protocol, two steps halve Air Quality's test error, help
# Airfoil a little and do nothing for the Appliances data (AEP), as in the
# paper (columns ``k=0`` to ``k=2`` above). More steps fit the validation
# split better, which need not carry over to the test split: compare the
# ``k=3`` and ``k=4`` columns.
fig, ax = plt.subplots(figsize=(6, 3.5))
width = 0.8 / len(steps)
for k in steps:
    values = [entry["steps"][k]["test_mse"] for entry in results.values()]
    offset = (k - (len(steps) - 1) / 2) * width
    ax.bar(np.arange(len(results)) + offset, values, width, label=f"k={k}")
ax.set_xticks(np.arange(len(results)), list(results))
ax.set_ylabel("test MSE (standardised)")
ax.legend(title="steps")
fig.tight_layout()

# %%
# Tuned by 5-fold cross-validation instead
# ----------------------------------------
# Beyond the paper, ``SelfDistillCV`` with its default rule and unshuffled
# 5-fold CV on training + validation (``n_steps`` from 0 to ``max_steps``),
# refitted on both, against ridge tuned the same way. The default rule keeps
# ridge unless a student's cross-fitted fold errors (its ``xi`` fitted on the
# other folds) beat ridge's by more than two standard errors: on these data
# no student does, so both searches return the same ridge.
print("Test MSE after 5-fold CV on train + validation (standardised units):")
for name, entry in results.items():
    ridge, sd = entry["cv5_ridge"]["test_mse"], entry["cv5"]["test_mse"]
    verdict = "beats" if sd < ridge else "does not beat"
    print(
        f"{name}: SelfDistillCV (k <= {max_steps}, chose k = "
        f"{entry['cv5']['n_steps']}) {sd:.3f} {verdict} ridge {ridge:.3f}"
    )

# %%
# Which protocol finds the Air Quality gain
# -----------------------------------------
# The same test rows (the last 40%), with ``alpha`` and the students chosen
# on training + validation by three splitters: unshuffled and shuffled
# 5-fold CV and scikit-learn's ``TimeSeriesSplit`` (each fold validated on
# later rows only, as the paper's split is), each with the default rule and
# with the raw optimum (``selection="raw"``: the best CV error, as the
# paper's protocol takes on its one split).
import warnings

from sklearn.model_selection import KFold, TimeSeriesSplit

from skdistill import SelfDistillCV
from skdistill.datasets import (
    fetch_air_quality,
    fetch_airfoil_self_noise,
    fetch_appliances_energy,
)
from skdistill.reproduce import TABLE1_ALPHAS


def paper_split(X, y):
    """The paper's split in file order, standardised with training statistics."""
    a, b = int(0.3 * len(y)), int(0.6 * len(y))
    X = (X - X[:a].mean(axis=0)) / X[:a].std(axis=0)
    y = (y - y[:a].mean()) / y[:a].std()
    return (X[:b], y[:b]), (X[b:], y[b:])  # training + validation, test


data = {
    "Air Quality": fetch_air_quality(return_X_y=True),
    "Airfoil": fetch_airfoil_self_noise(return_X_y=True),
    "AEP": tuple(a[::6] for a in fetch_appliances_energy(return_X_y=True)),
}
splitters = {
    "KFold(5)": KFold(5),
    "KFold(5, shuffle=True)": KFold(5, shuffle=True, random_state=0),
    "TimeSeriesSplit(5)": TimeSeriesSplit(5),
}
print("Test MSE (chosen number of steps) with n_steps from 0 to 4:")
print(f"{'data set':<12} {'splitter':<23} {'default rule':>14} {'raw optimum':>13}")
for name, (X, y) in data.items():
    (X_tv, y_tv), test = paper_split(X, y)
    for label, cv in splitters.items():
        cells = []
        for selection in ("stepwise", "raw"):
            search = SelfDistillCV(
                alphas=TABLE1_ALPHAS, n_steps=range(5), cv=cv, selection=selection
            )
            with warnings.catch_warnings():
                # the grid is the paper's: its edges are part of the protocol
                warnings.simplefilter("ignore")
                search.fit(X_tv, y_tv)
            mse = np.mean((test[1] - search.predict(test[0])) ** 2)
            cells.append(f"{mse:.3f} ({search.n_steps_})")
        print(f"{name:<12} {label:<23} {cells[0]:>14} {cells[1]:>13}")

# %%
# Only the paper's single split, fitted on 30% of the rows, finds the
# two-step student that halves ridge's Air Quality error. Every default
# choice above is ridge. The raw optimum of the folds takes four steps each
# time and does worse than ridge on Air Quality and Airfoil with every
# splitter (slightly better on AEP with two of them): a student chosen by its
# own validation error is fitted to those rows.
