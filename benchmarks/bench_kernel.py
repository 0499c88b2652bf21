"""Speed of KernelSelfDistillationRegressor against naive KernelRidge loops.

Prints ratios measured in one run (the machines are shared and noisy, so
compare within a run, never across runs):

1. A 5-step fit (teacher and 5 students, ``xi = 1``) against the naive loop of
   6 ``KernelRidge`` fits on the previous step's predictions, n = 5000
   (target: faster), for ``solver="auto"`` (Cholesky at this size) and
   ``solver="eigh"`` (which also gives the eigen-diagnostics), with the largest
   difference of the dual coefficients from the naive loop.
2. ``SelfDistillCV(KernelSelfDistillationRegressor(), 30 alphas,
   n_steps=(0, 1, 2, 3), cv=5)`` against ``GridSearchCV(KernelRidge(),
   30 alphas, cv=5)`` on the same folds (target: faster with a CV error at
   least as good). Skipped, with the reason, when this ``SelfDistillCV`` does
   not support kernel estimators.

Run: ``python benchmarks/bench_kernel.py [--n 5000] [--cv-n 5000]``.
"""

import argparse
import time

import numpy as np
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, KFold

from skdistill import KernelSelfDistillationRegressor


def _problem(n, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    y = np.sin(X @ np.linspace(1, 0.2, d)) + rng.normal(scale=0.3, size=n)
    return X, y


def _naive_loop(X, y, alpha, n_steps, **kernel):
    models, targets = [], y
    for _ in range(n_steps + 1):
        model = KernelRidge(alpha=alpha, **kernel).fit(X, targets)
        targets = model.predict(X)
        models.append(model)
    return models


def bench_fit(n, n_steps=5, alpha=1.0):
    X, y = _problem(n)
    kernel = {"kernel": "rbf", "gamma": 0.5}
    tic = time.perf_counter()
    models = _naive_loop(X, y, alpha, n_steps, **kernel)
    t_naive = time.perf_counter() - tic
    naive = np.stack([m.dual_coef_ for m in models])
    scale = np.abs(naive).max()
    print(f"n = {n}: naive loop of {n_steps + 1} KernelRidge fits: {t_naive:.2f} s")
    for solver in ("auto", "eigh"):
        reg = KernelSelfDistillationRegressor(
            alpha=alpha, n_steps=n_steps, xi=1.0, solver=solver, **kernel
        )
        tic = time.perf_counter()
        reg.fit(X, y)
        t = time.perf_counter() - tic
        err = np.abs(reg.dual_coef_path_ - naive).max() / scale
        print(
            f"  {n_steps}-step fit, solver={solver!r} ({reg.solver_}): {t:.2f} s, "
            f"speed-up x{t_naive / t:.2f} (target > 1), "
            f"max relative dual-coefficient difference {err:.1e}"
        )


def bench_cv(n, n_alphas=30):
    try:
        from skdistill import SelfDistillCV
    except ImportError:
        print("SelfDistillCV comparison skipped: skdistill has no SelfDistillCV.")
        return
    X, y = _problem(n, seed=1)
    alphas = np.logspace(-4, 2, n_alphas)
    cv = KFold(5, shuffle=True, random_state=0)
    search = SelfDistillCV(
        KernelSelfDistillationRegressor(gamma=0.5),
        alphas=alphas,
        n_steps=(0, 1, 2, 3),
        cv=cv,
    )
    tic = time.perf_counter()
    try:
        search.fit(X, y)
    except (ValueError, TypeError, AttributeError) as exc:
        print(f"SelfDistillCV comparison skipped: {exc}")
        return
    t_sd = time.perf_counter() - tic
    grid = GridSearchCV(
        KernelRidge(kernel="rbf", gamma=0.5),
        {"alpha": alphas},
        cv=cv,
        scoring="neg_mean_squared_error",
    )
    tic = time.perf_counter()
    grid.fit(X, y)
    t_grid = time.perf_counter() - tic
    print(
        f"n = {n}, {n_alphas} alphas, cv=5: SelfDistillCV(n_steps=(0, 1, 2, 3)) "
        f"{t_sd:.1f} s (CV MSE {-search.best_score_:.5f}, {search.best_params_}), "
        f"GridSearchCV(KernelRidge) {t_grid:.1f} s (CV MSE {-grid.best_score_:.5f}, "
        f"{grid.best_params_}): speed-up x{t_grid / t_sd:.2f} (target > 1), "
        f"CV MSE ratio {search.best_score_ / grid.best_score_:.4f} (target <= 1)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--cv-n", type=int, default=5000)
    parser.add_argument("--skip-cv", action="store_true")
    args = parser.parse_args()
    bench_fit(args.n)
    if not args.skip_cv:
        bench_cv(args.cv_n)
