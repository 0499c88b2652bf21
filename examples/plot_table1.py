"""
=====================================================
Reproducing Table 1 of Pareek, Oh and Du (NeurIPS 2024)
=====================================================

The paper compares optimal ridge regression with optimal 1- and 2-step
self-distillation on three UCI data sets, following a fixed protocol: rows
split in file order into 30% training, 30% validation and 40% test;
features and target standardised with training statistics; ``alpha`` from
``10 ** {0, 0.5, ..., 4}`` and ``xi`` chosen on the validation split. The
package follows it with :class:`~skdistill.SelfDistillCV` on a
:class:`~sklearn.model_selection.PredefinedSplit`, which finds the optimal
``xi`` for every ``alpha`` exactly.

The data are read from the folder named by ``SKDISTILL_DATA`` when it is set,
otherwise downloaded once from the UCI repository (sha256-checked). The same
numbers come from ``python -m skdistill.reproduce table1 --out results``.
"""

# %%
# Run the protocol
# ----------------
import matplotlib.pyplot as plt
import numpy as np

from skdistill.reproduce import PAPER_TABLE1, table1

results = table1(max_steps=3, verbose=False)

print(f"{'data set':<12} {'':>7}" + "".join(f"{f'k={k}':>8}" for k in range(4)))
for name, entry in results.items():
    ours = [row["test_mse"] for row in entry["steps"]]
    print(f"{name:<12} {'ours':>7}" + "".join(f"{v:8.3f}" for v in ours))
    print(f"{'':<12} {'paper':>7}" + "".join(f"{v:8.2f}" for v in PAPER_TABLE1[name]))

# %%
# The gains differ by data set
# ----------------------------
# Two steps halve Air Quality's test error, help Airfoil a little and do
# nothing for the Appliances data (AEP), as in the paper. The protocol
# matters: tuned instead by unshuffled 5-fold CV on training + validation and
# refitted on both (printed below), the distilled model beats CV-tuned ridge on
# Air Quality but loses to it on Airfoil and AEP. These are time series, and
# a validation split right after the training rows is not what 5-fold CV
# measures.
fig, ax = plt.subplots(figsize=(6, 3.5))
width = 0.2
for k in range(4):
    values = [entry["steps"][k]["test_mse"] for entry in results.values()]
    ax.bar(np.arange(len(results)) + (k - 1.5) * width, values, width, label=f"k={k}")
ax.set_xticks(np.arange(len(results)), list(results))
ax.set_ylabel("test MSE (standardised)")
ax.legend(title="steps")
fig.tight_layout()

for name, entry in results.items():
    print(
        f"{name}: 5-fold CV ridge {entry['cv5_ridge']['test_mse']:.3f}, "
        f"5-fold CV k<=3 {entry['cv5']['test_mse']:.3f} (k={entry['cv5']['n_steps']})"
    )
