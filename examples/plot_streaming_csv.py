"""
===================================
Tuning on a CSV file read in chunks
===================================

``SelfDistillCV`` can be fitted on data that do not fit in
memory: give it an iterable of ``(X, y)`` chunks, here from
``pandas.read_csv`` with ``chunksize``. Each row is assigned to a
cross-validation fold by a seeded hash of its row number
(``hash_folds``), and each fold keeps only a small triangular
factor of its rows, ``(1 + n_features + n_targets)`` squared numbers, updated
by a QR decomposition per chunk. The file is read once; memory is bounded by
the chunk size, whatever the number of rows.

The search is the same exact closed form as in memory: fitted on the same
folds, the streamed and in-memory searches choose the same candidate and
report the same cross-validation scores.
"""

# %%
# Write a CSV file
# ----------------
# 100,000 rows of 20 correlated features, written in pieces so that the
# whole table is never in memory at once.
import tempfile
import time
import tracemalloc
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from skdistill import RepeatedSelfDistillationRegressor, SelfDistillCV, hash_folds

n_rows, n_features, chunksize = 100_000, 20, 5_000
rng = np.random.default_rng(0)
mixing = rng.normal(size=(n_features, n_features)) * np.logspace(0, -2, n_features)
coef = rng.normal(size=n_features) / np.arange(1, n_features + 1)
columns = [f"x{i}" for i in range(n_features)]

tmp = tempfile.TemporaryDirectory()
path = Path(tmp.name) / "data.csv"
for start in range(0, n_rows, 50_000):
    Z = rng.normal(size=(50_000, n_features)) @ mixing
    y = Z @ coef + 2.0 * rng.normal(size=50_000)
    piece = pd.DataFrame(Z, columns=columns).assign(y=y)
    piece.to_csv(path, mode="a", header=start == 0, index=False)
print(f"{path.name}: {path.stat().st_size / 2**20:.1f} MiB on disk")

# %%
# Stream it into SelfDistillCV
# ----------------------------
# A generator of ``(X, y)`` chunks, read once; ``tracemalloc`` records the
# peak memory allocated while fitting.


def chunks():
    for frame in pd.read_csv(path, chunksize=chunksize):
        yield frame[columns], frame["y"]


tracemalloc.start()
tic = time.perf_counter()
streamed = SelfDistillCV(n_steps=(0, 1, 2, 3), cv=5, random_state=0).fit(chunks())
streamed_time = time.perf_counter() - tic
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
table_mib = n_rows * (n_features + 1) * 8 / 2**20
print(
    f"streamed: {streamed_time:.1f} s, peak memory {peak / 2**20:.1f} MiB "
    f"(the table is {table_mib:.1f} MiB, one chunk "
    f"{chunksize * (n_features + 1) * 8 / 2**20:.1f} MiB)"
)
print(
    f"chosen: n_steps={streamed.n_steps_}, alpha={streamed.alpha_:.4g}, "
    f"xi={np.round(streamed.xi_, 3)}"
)

# %%
# Compare with the in-memory search on the same folds
# ---------------------------------------------------
# The folds of the stream are those of ``hash_folds`` with the
# seed ``random_state``; passing them as an explicit ``cv`` reproduces the
# search in memory (with the SVD solver, which the streamed factors match).
frame = pd.read_csv(path)
X, y = frame[columns], frame["y"].to_numpy()
fold = hash_folds(np.arange(n_rows), n_splits=5, seed=0)
cv = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(5)]
in_memory = SelfDistillCV(
    RepeatedSelfDistillationRegressor(solver="svd"), n_steps=(0, 1, 2, 3), cv=cv
).fit(X, y)
rel = np.abs(streamed.coef_ - in_memory.coef_).max() / np.abs(in_memory.coef_).max()
print(f"same choice: {streamed.best_params_['n_steps'] == in_memory.n_steps_}")
print(f"largest relative difference of the coefficients: {rel:.1e}")

# %%
# The cross-validation curves coincide
# ------------------------------------
fig, ax = plt.subplots(figsize=(6, 4))
for search, name, style in [(streamed, "streamed", "-"), (in_memory, "in memory", ":")]:
    res = search.cv_results_
    alphas = res["param_alpha"].astype(float)
    steps = res["param_n_steps"].astype(int)
    for k in (0, 3):
        sel = steps == k
        ax.semilogx(
            alphas[sel],
            -res["mean_test_score"][sel],
            style,
            lw=2 if style == "-" else 3,
            label=f"{name}, n_steps={k}",
        )
ax.set_xlabel("alpha")
ax.set_ylabel("cross-validated MSE")
ax.set_ylim(top=2 * -in_memory.cv_results_["mean_test_score"].max() + 1)
ax.legend()
ax.set_title("SelfDistillCV on a CSV read in chunks")
fig.tight_layout()
tmp.cleanup()
