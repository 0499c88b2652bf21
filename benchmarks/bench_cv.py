"""Speed and quality of SelfDistillCV against the searches a user would run.

Prints ratios measured in one run (the machines are shared and noisy, so
compare within a run, never across runs):

1. ``SelfDistillCV(n_steps=(0, 1, 2, 3), 50 alphas, cv=5)`` against
   ``RidgeCV(same 50 alphas, cv=5)``: time ratio (target <= 1.5) and CV error.
2. Against ``GridSearchCV`` over ``RepeatedSelfDistillationRegressor(n_steps=2)``
   with 50 alphas x an 11 x 11 grid of xi (time extrapolated from a subset of
   candidates): target >= 100x faster at an equal or better CV error.
3. Against ``search="optuna"`` with 200 trials over (alpha, xi_1, xi_2):
   target >= 100x faster at an equal or better CV error.
4. Held-out quality on the shared UCI data (``SKDISTILL_DATA``): test MSE of
   ``SelfDistillCV(n_steps=(0, ..., 4))`` over ``RidgeCV``'s on the same alphas
   and folds, shuffled 70/30 splits over 5 seeds.

Run: ``make bench`` or ``python benchmarks/bench_cv.py [--quick]``.
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.preprocessing import StandardScaler

from skdistill import RepeatedSelfDistillationRegressor, SelfDistillCV

warnings.simplefilter("ignore", ConvergenceWarning)


def _grid(X, n=50):
    Xc = X - X.mean(axis=0)
    lam_max = np.linalg.norm(Xc, 2) ** 2
    return lam_max * np.logspace(-6, 1, n)


def _timed(estimator, X, y, repeats=1):
    """Fit ``estimator`` ``repeats`` times; return it and the median time."""
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        out = estimator.fit(X, y)
        times.append(time.perf_counter() - tic)
    return out, float(np.median(times))


def _problem(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * (1.0 / np.arange(1, d + 1)) ** 0.5
    coef = rng.normal(size=d)
    y = X @ coef + rng.normal(scale=1.0, size=n)
    return X, y


def bench_ridgecv(shapes, repeats):
    print("\n1. SelfDistillCV(n_steps=(0,1,2,3)) vs RidgeCV, 50 alphas, cv=5")
    print(
        f"{'n':>7} {'d':>6} {'t_sd':>8} {'t_ridge':>8} {'ratio':>6} "
        f"{'cv_mse_sd':>11} {'cv_mse_ridge':>12}"
    )
    for n, d in shapes:
        X, y = _problem(n, d)
        alphas = _grid(X)
        cv = KFold(5, shuffle=True, random_state=0)
        sd, t_sd = _timed(
            SelfDistillCV(alphas=alphas, n_steps=(0, 1, 2, 3), cv=cv), X, y, repeats
        )
        ridge, t_r = _timed(
            RidgeCV(alphas=alphas, cv=cv, scoring="neg_mean_squared_error"),
            X,
            y,
            repeats,
        )
        print(
            f"{n:>7} {d:>6} {t_sd:8.3f} {t_r:8.3f} {t_sd / t_r:6.2f} "
            f"{-sd.best_score_:11.5f} {-ridge.best_score_:12.5f}"
        )


def bench_grid_and_optuna(n_subset, n_trials):
    X, y = _problem(2000, 20, seed=1)
    alphas = _grid(X)
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    xi_grid = np.linspace(-1.0, 2.0, 11)
    sd, t_sd = _timed(SelfDistillCV(alphas=alphas, n_steps=2, cv=folds), X, y, 3)
    print(
        "\n2. vs GridSearchCV over n_steps=2: 50 alphas x 11 x 11 xi (6050 candidates)"
    )
    rng = np.random.default_rng(0)
    cand = [(a, [x1, x2]) for a in alphas for x1 in xi_grid for x2 in xi_grid]
    subset = [cand[i] for i in rng.choice(len(cand), size=n_subset, replace=False)]
    tic = time.perf_counter()
    for a, xi in subset:
        GridSearchCV(
            RepeatedSelfDistillationRegressor(n_steps=2),
            {"alpha": [a], "xi": [xi]},
            cv=folds,
            scoring="neg_mean_squared_error",
            refit=False,
        ).fit(X, y)
    t_grid = (time.perf_counter() - tic) / n_subset * len(cand)
    # The full grid's best score, computed exactly by the closed form on the
    # same folds: the best xi on the grid cannot beat the optimum over all xi.
    print(
        f"   SelfDistillCV {t_sd:.3f}s, GridSearchCV (extrapolated from "
        f"{n_subset} candidates) {t_grid:.1f}s: {t_grid / t_sd:.0f}x faster; "
        f"CV MSE {-sd.best_score_:.5f} (the optimum over all xi, so <= grid's)"
    )

    print(f"\n3. vs search='optuna' with {n_trials} trials over (alpha, xi_1, xi_2)")
    opt, t_opt = _timed(
        SelfDistillCV(
            alphas=alphas,
            n_steps=2,
            cv=folds,
            search="optuna",
            n_trials=n_trials,
            random_state=0,
        ),
        X,
        y,
    )
    print(
        f"   closed form {t_sd:.3f}s (CV MSE {-sd.best_score_:.5f}), optuna "
        f"{t_opt:.1f}s (CV MSE {-opt.best_score_:.5f}): "
        f"{t_opt / t_sd:.0f}x faster, "
        f"{'equal or better' if sd.best_score_ >= opt.best_score_ else 'WORSE'}"
    )


def _uci(data_dir):
    d = Path(data_dir)
    out = {}
    air = d / "airfoil_self_noise.dat"
    if air.exists():
        a = np.loadtxt(air)
        out["airfoil"] = (a[:, :5], a[:, 5])
    aq = d / "AirQualityUCI.csv"
    if aq.exists():
        rows = []
        for line in aq.read_text().splitlines()[1:]:
            f = line.split(";")
            if not f[0]:
                continue
            rows.append([float(v.replace(",", ".")) for v in f[2:15]])
        A = np.array(rows)
        A = np.delete(A, 2, axis=1)  # NMHC(GT)
        A = A[~np.any(A == -200, axis=1)]
        # target NO2(GT); features: five PT08 sensors, T, RH, AH
        cols = [
            "CO",
            "S1",
            "C6H6",
            "S2",
            "NOx",
            "S3",
            "NO2",
            "S4",
            "S5",
            "T",
            "RH",
            "AH",
        ]
        feats = [cols.index(c) for c in ("S1", "S2", "S3", "S4", "S5", "T", "RH", "AH")]
        out["air quality"] = (A[:, feats], A[:, cols.index("NO2")])
    ae = d / "energydata_complete.csv"
    if ae.exists():
        import csv

        with ae.open() as fh:
            reader = csv.reader(fh)
            header = next(reader)
            rows = [[float(v) for v in r[1:]] for r in reader]
        A = np.array(rows)
        names = header[1:]
        drop = {"lights", "Windspeed", "Visibility", "Appliances"}
        feats = [i for i, c in enumerate(names) if c not in drop]
        out["appliances"] = (A[::6, feats], A[::6, names.index("Appliances")])
    return out


def bench_heldout(data_dir, seeds):
    print(
        "\n4. Held-out test MSE, SelfDistillCV(n_steps=0..4) / RidgeCV, same "
        "alphas and folds, shuffled 70/30 splits"
    )
    for name, (X, y) in _uci(data_dir).items():
        ratios, steps = [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            perm = rng.permutation(len(y))
            ntr = int(0.7 * len(y))
            tr, te = perm[:ntr], perm[ntr:]
            sc = StandardScaler().fit(X[tr])
            Xtr, Xte = sc.transform(X[tr]), sc.transform(X[te])
            alphas = _grid(Xtr)
            cv = KFold(5, shuffle=True, random_state=seed)
            sd = SelfDistillCV(alphas=alphas, n_steps=(0, 1, 2, 3, 4), cv=cv)
            sd.fit(Xtr, y[tr])
            ridge = RidgeCV(alphas=alphas, cv=cv, scoring="neg_mean_squared_error")
            ridge.fit(Xtr, y[tr])
            ratios.append(
                mean_squared_error(y[te], sd.predict(Xte))
                / mean_squared_error(y[te], ridge.predict(Xte))
            )
            steps.append(sd.n_steps_)
        print(
            f"   {name:>12}: mean {np.mean(ratios):.4f}, worst {max(ratios):.4f}, "
            f"best {min(ratios):.4f}; chosen n_steps {steps}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    if args.quick:
        bench_ridgecv([(2000, 50), (200, 500)], repeats=1)
        bench_grid_and_optuna(n_subset=20, n_trials=20)
    else:
        bench_ridgecv([(20000, 50), (1000, 2000)], repeats=3)
        bench_grid_and_optuna(n_subset=100, n_trials=200)
    data_dir = os.environ.get("SKDISTILL_DATA")
    if data_dir:
        bench_heldout(data_dir, seeds=5)
    else:
        print("\n4. skipped: set SKDISTILL_DATA to the folder of the UCI files")


if __name__ == "__main__":
    main()
