"""Selection rules on real time series: rolling origin against ``RidgeCV``.

The UCI series of ``SKDISTILL_DATA`` in time order (Air Quality, hourly;
Appliances energy, its hourly rows ``[::6]`` as in Pareek, Oh and Du, 2024):
at each origin a model is trained on the first ``f`` of the rows
(``f = 0.3, 0.4, ..., 0.8``, six origins) and tested on the next 15%;
features are standardised on the training part. Inside the training part
the rules with ``cv5`` (``cv10``) choose by ``TimeSeriesSplit(5)`` (``10``),
and so does their ``RidgeCV`` baseline (same alphas, same splits,
``scoring="neg_mean_squared_error"``); ``loo`` rules use leave-one-out on the
training rows, which ignores time, against ``RidgeCV``'s leave-one-out.

Printed per rule and series: the geometric mean over origins of the test-MSE
ratios against that baseline, and the worst origin; and ``SelfDistillCV()``
against ``RidgeCV()`` (defaults against defaults). Target (issue 20):
geometric mean <= 0.9, no origin worse than 1.02. ``--oracle`` adds, per
origin, what the test rows would choose (not a rule: it reads them), against
the ``cv5`` baseline: the best ridge, the best one-step student and the best
one-step student whose filter is non-negative on the training spectrum, over
``logspace(-4, 6, 81)`` and a grid of ``xi``.

Run: ``SKDISTILL_DATA=... python benchmarks/bench_temporal.py [--rules ...]
[--jobs 2]``.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from sklearn.model_selection import TimeSeriesSplit
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_selection import (  # noqa: E402
    DEFAULT_RULE,
    _ridge_mse_cv,
    all_rules,
    evaluate,
)

from skdistill.datasets import fetch_air_quality, fetch_appliances_energy  # noqa: E402

ORIGINS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
TEST_SHARE = 0.15
SPLITTERS = {"cv5": TimeSeriesSplit(5), "cv10": TimeSeriesSplit(10), "loo": None}


def series():
    """The time-ordered series: name -> (X, y)."""
    X, y = fetch_air_quality(return_X_y=True, download_if_missing=False)
    Xa, ya = fetch_appliances_energy(return_X_y=True, download_if_missing=False)
    return {"air quality": (X, y), "appliances hourly": (Xa[::6], ya[::6])}


def _origin(name, f):
    """Standardised training rows (the first ``f``) and the next 15%."""
    X, y = series()[name]
    n = len(y)
    tr = np.arange(int(f * n))
    te = np.arange(tr.size, min(n, tr.size + int(TEST_SHARE * n)))
    sc = StandardScaler().fit(X[tr])
    return sc.transform(X[tr]), y[tr], sc.transform(X[te]), y[te]


def _origin_task(args):
    name, f, rules = args
    Xtr, ytr, Xte, yte = _origin(name, f)

    def score(est):
        return float(np.mean((yte - est.predict(Xte)) ** 2))

    return name, f, evaluate(Xtr, ytr, score, SPLITTERS, rules)


def _oracle_task(args):
    """Test-optimal ridge and one-step students at one origin (reads the test)."""
    name, f = args
    Xtr, ytr, Xte, yte = _origin(name, f)
    base = _ridge_mse_cv(Xtr, ytr, SPLITTERS["cv5"])
    mse0 = np.mean((yte - base.predict(Xte)) ** 2)
    xm, ym = Xtr.mean(axis=0), ytr.mean()
    U, s, Vt = np.linalg.svd(Xtr - xm, full_matrices=False)
    uty, P = U.T @ (ytr - ym), (Xte - xm) @ Vt.T
    # One step: phi(h) = (1 - xi) h + xi h^2; xi = 0 is ridge.
    xis = np.concatenate(
        [-np.logspace(-2, 2, 120)[::-1], [0.0], np.logspace(-2, 1, 60)]
    )
    best = np.full(3, np.inf)  # ridge, free, non-negative
    for alpha in np.logspace(-4, 6, 81):
        h = s**2 / (s**2 + alpha)
        phi = h[None, :] * (1.0 - xis[:, None] * (1.0 - h[None, :]))
        mse = np.mean((yte[None, :] - ((phi / s * uty) @ P.T + ym)) ** 2, axis=1)
        nonneg = phi.min(axis=1) >= 0
        best = np.minimum(best, [mse[xis == 0][0], mse.min(), mse[nonneg].min()])
    return name, f, best / mse0


def report(records, rules):
    """Geometric mean and worst origin per rule and series."""
    names = list(dict.fromkeys(r[0] for r in records))
    print(
        "\nRolling origin: test MSE / RidgeCV's (same splits); per series the "
        "geometric mean over origins and the worst origin (target <= 0.9, "
        "worst <= 1.02)"
    )
    print(f"  {'rule':<26}" + "".join(f" {s:>22}" for s in names))
    for rule in [*rules, "defaults"]:
        cells = []
        for s in names:
            r = np.array([rec[2][rule][0] for rec in records if rec[0] == s])
            cells.append(f"{np.exp(np.mean(np.log(r))):.3f} (worst {r.max():.3f})")
        print(f"  {rule:<26}" + "".join(f" {c:>22}" for c in cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument(
        "--rules", nargs="*", default=None, help="substrings of rule names"
    )
    parser.add_argument("--per-origin", nargs="*", default=[DEFAULT_RULE])
    parser.add_argument("--oracle", action="store_true", help="test-optimal fits")
    args = parser.parse_args()
    rules = all_rules()
    if args.rules:
        rules = {k: v for k, v in rules.items() if any(s in k for s in args.rules)}
    rules.setdefault(DEFAULT_RULE, all_rules()[DEFAULT_RULE])
    tic = time.perf_counter()
    pairs = [(name, f, rules) for name in series() for f in ORIGINS]
    if args.jobs == 1:
        records = [_origin_task(p) for p in pairs]
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            records = list(pool.map(_origin_task, pairs, chunksize=1))
    report(records, list(rules))
    for rule in args.per_origin:
        print(f"\n{rule}: per origin (ratio, chosen n_steps)")
        for name, f, res in records:
            if rule in res:
                print(f"  {name:>18} f={f:.1f} {res[rule][0]:7.3f} {res[rule][1]}")
    if args.oracle:
        print(
            "\nWhat the test rows would choose (an oracle, not a rule), test MSE "
            "/ RidgeCV's with TimeSeriesSplit(5):\n  series             origin "
            " ridge  1-step  1-step non-negative"
        )
        for name, f, (r, free, nonneg) in map(_oracle_task, pairs_of_origins()):
            print(f"  {name:>18} f={f:.1f} {r:6.3f} {free:7.3f} {nonneg:8.3f}")
    print(f"\n({time.perf_counter() - tic:.0f} s)")


def pairs_of_origins():
    """Every (series, origin)."""
    return [(name, f) for name in series() for f in ORIGINS]


if __name__ == "__main__":
    main()
