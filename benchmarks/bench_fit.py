"""Fit time of RepeatedSelfDistillationRegressor against Ridge baselines.

Targets (ratios measured in the same run, median of a few repeats):

- ``n_steps=5`` fit time / one ``Ridge`` fit (default solver, same alpha): <= 2,
  and <= 1.3 on wide data (``d > n``, the kernel form);
- naive loop of 6 ``Ridge`` fits on mixed labels / ``n_steps=5`` fit: >= 3.

Data families (``--family``, several by default, since isotropic data hide
what depends on the spectrum): ``isotropic`` (standard normal ``X``),
``decaying`` (column scales decreasing linearly from 1 to 0.05) and
``powerlaw`` (column ``j`` scaled by ``(1 + j) ** -1``).

Run with ``make bench`` or ``python benchmarks/bench_fit.py [--repeats R]``.
``--quick`` uses smaller shapes for a smoke run, ``--shape N D`` (repeatable)
chooses the shapes. BLAS runs on ``--threads``
threads (default 1): on a shared, loaded machine OpenBLAS threads that wait
for each other make timings erratic (a 2000 x 2000 ``eigh`` took 18 s with two
threads against 3 s with one), and the ratios are what matter. Each method is
run once untimed, then the methods take turns for the timed repeats; both
wall-clock and CPU times are reported, and the targets are judged on
wall-clock medians.
"""

import argparse
import time

import numpy as np
from _spectra import FAMILIES, scaled_design
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits

from skdistill import RepeatedSelfDistillationRegressor

N_STEPS = 5
XI = 0.5
ALPHA = 1.0
SHAPES = [(100_000, 100), (500, 2_000), (2_000, 5_000)]
QUICK_SHAPES = [(20_000, 50), (500, 1_500)]
TARGET, WIDE_TARGET, LOOP_TARGET = 2.0, 1.3, 3.0


def make_data(n, d, family, seed=0):
    """``X`` (n, d) of the family and ``y = X w + noise``."""
    rng = np.random.default_rng(seed)
    X = scaled_design(n, d, family, rng)
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    return X, y


def naive_loop(X, y, n_steps=N_STEPS, xi=XI, alpha=ALPHA):
    """Teacher and ``n_steps`` students as separate Ridge fits."""
    labels = y
    for i in range(n_steps + 1):
        ridge = Ridge(alpha=alpha).fit(X, labels)
        if i < n_steps:
            labels = xi * ridge.predict(X) + (1.0 - xi) * y
    return ridge


def median_times(funcs, args, repeats):
    """Median wall-clock and CPU seconds of each function, and its last result.

    Each function runs once untimed, then the functions take turns for
    ``repeats`` rounds, so that a change of the machine's load affects every
    one of them alike (the ratios are what the targets judge).
    """
    results = [func(*args) for func in funcs]
    wall = [[] for _ in funcs]
    cpu = [[] for _ in funcs]
    for _ in range(repeats):
        for i, func in enumerate(funcs):
            start, start_cpu = time.perf_counter(), time.process_time()
            results[i] = func(*args)
            wall[i].append(time.perf_counter() - start)
            cpu[i].append(time.process_time() - start_cpu)
    return [
        (float(np.median(w)), float(np.median(c)), r)
        for w, c, r in zip(wall, cpu, results, strict=True)
    ]


def run(shapes, families, repeats, solvers):
    rows = []
    for (n, d), family in ((shape, f) for shape in shapes for f in families):
        X, y = make_data(n, d, family)
        estimators = [
            RepeatedSelfDistillationRegressor(
                alpha=ALPHA, n_steps=N_STEPS, xi=XI, solver=solver
            )
            for solver in solvers
        ]
        ridge, loop, *fits = median_times(
            [Ridge(alpha=ALPHA).fit, naive_loop] + [est.fit for est in estimators],
            (X, y),
            repeats,
        )
        for solver, rsd in zip(solvers, fits, strict=True):
            fitted, last = rsd[2], loop[2]
            err = np.linalg.norm(fitted.coef_ - last.coef_)
            err /= np.linalg.norm(last.coef_)
            label = f"{solver}:{fitted.solver_}" if solver == "auto" else solver
            rows.append((n, d, family, label, rsd[:2], ridge[:2], loop[:2], err))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small shapes")
    parser.add_argument(
        "--solver",
        nargs="+",
        default=["auto", "cholesky"],
        choices=["auto", "svd", "gram", "dual", "cholesky"],
    )
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    parser.add_argument(
        "--family", nargs="+", default=["isotropic", "decaying"], choices=FAMILIES
    )
    parser.add_argument(
        "--shape", nargs=2, type=int, action="append", metavar=("N", "D")
    )
    args = parser.parse_args()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    if args.shape:
        shapes = [tuple(shape) for shape in args.shape]
    with threadpool_limits(args.threads):
        rows = run(shapes, args.family, args.repeats, args.solver)

    print(
        f"RepeatedSelfDistillationRegressor(n_steps={N_STEPS}, xi={XI}, "
        f"alpha={ALPHA}) vs Ridge(alpha={ALPHA}): median of {args.repeats} runs, "
        f"{args.threads} BLAS thread(s); times in s as wall (cpu)"
    )
    header = (
        f"{'n':>7} {'d':>5} {'family':>9} {'solver':>13} {'rsd':>13} {'ridge':>13} "
        f"{'6x ridge loop':>13} {'rsd/ridge':>9} {'loop/rsd':>8} {'rel.err':>8}"
        f"  targets: rsd/ridge <= {TARGET:g} ({WIDE_TARGET:g} if d > n), "
        f"loop/rsd >= {LOOP_TARGET:g}"
    )
    print(header)
    print("-" * len(header))
    for n, d, family, solver, t_rsd, t_ridge, t_loop, err in rows:
        vs_ridge, vs_loop = t_rsd[0] / t_ridge[0], t_loop[0] / t_rsd[0]
        target = WIDE_TARGET if d > n else TARGET
        status = "{} {}".format(
            "ok" if vs_ridge <= target else "MISS",
            "ok" if vs_loop >= LOOP_TARGET else "MISS",
        )
        times = "".join(f" {w:>6.3f} ({c:>5.3f})" for w, c in (t_rsd, t_ridge, t_loop))
        print(
            f"{n:>7} {d:>5} {family:>9} {solver:>13}{times} {vs_ridge:>9.2f} "
            f"{vs_loop:>8.2f} {err:>8.1e}  {status}"
        )
        print(
            f"{'':>37} cpu ratios: rsd/ridge {t_rsd[1] / t_ridge[1]:.2f}, "
            f"loop/rsd {t_loop[1] / t_rsd[1]:.2f}"
        )


if __name__ == "__main__":
    main()
