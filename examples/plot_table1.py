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
# Beyond the paper, ``SelfDistillCV`` with unshuffled 5-fold CV on training +
# validation (``n_steps`` from 0 to ``max_steps``), refitted on both, against
# ridge tuned the same way. Which one wins on the test split is fragile on
# these data: the lines below say which, and the answer on Air Quality and
# AEP changes with the largest number of steps allowed (compare
# ``--max-steps 3``). These are time series, and a validation split right
# after the training rows is not what 5-fold CV measures.
print("Test MSE after 5-fold CV on train + validation (standardised units):")
for name, entry in results.items():
    ridge, sd = entry["cv5_ridge"]["test_mse"], entry["cv5"]["test_mse"]
    verdict = "beats" if sd < ridge else "does not beat"
    print(
        f"{name}: SelfDistillCV (k <= {max_steps}, chose k = "
        f"{entry['cv5']['n_steps']}) {sd:.3f} {verdict} ridge {ridge:.3f}"
    )
