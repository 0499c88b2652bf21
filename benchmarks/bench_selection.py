"""Does ``SelfDistillCV``'s selection beat ``RidgeCV`` on held-out data?

A cross-validated score of a tuned candidate is optimistic, so every rule is
judged here by error on rows (or on a distribution) it never saw, divided by
that of :class:`~sklearn.linear_model.RidgeCV` on the same alphas and folds.

* Negative controls (``real``): random training subsets of n = 40, 100, 300
  and 1000 rows of diabetes and of the three UCI sets (``SKDISTILL_DATA``),
  standardised features; the ratio of test mean squared errors on the
  remaining rows (at most 5000 of them). Targets: mean ratio <= 1.00 at every
  n, at most 5% of fits more than 5% worse.
* Positive controls (``aligned``): random design with covariance spectrum
  ``1/j`` (d = 20), true coefficients along the top eigenvector, noise 0.5;
  the ratio of excess risks (exact, from the covariance). And fixed designs
  (``fixed``) from :func:`make_self_distillation_regression` with singular
  values ``sqrt(n) / j`` (d = 20, noise 0.5; the generator's default
  ``1 / j`` would let the signal-to-noise ratio fall as ``1 / n``): excess
  risk on the design. Target: mean ratio <= 0.8 at n = 100, 300 and 1000
  with ``n_steps=(0, 1, 2, 3, 4)``, and never worse than offering ``(0, 1)``
  alone.
* ``nested``: the cheap nested estimate ``honest_score_`` against an
  explicit nested loop of ``SelfDistillCV`` fits.

Every method is ``SelfDistillCV(alphas=np.logspace(-3, 5, 40), cv=KFold(5,
shuffle=True))`` with a selection rule and a set of step counts (``cv=None``:
leave-one-out). Also printed: the distribution of the chosen ``n_steps``.
The rules were designed on seeds 0-9; by default the benchmark judges them on
seeds 10-19.

Run: ``python benchmarks/bench_selection.py [--seeds 10] [--quick]``.
"""

import argparse
import os
import time
import warnings
from collections import Counter

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from skdistill import SelfDistillCV
from skdistill.datasets import (
    fetch_air_quality,
    fetch_airfoil_self_noise,
    fetch_appliances_energy,
    make_self_distillation_regression,
)

warnings.simplefilter("ignore", ConvergenceWarning)
warnings.simplefilter("ignore", UserWarning)

ALPHAS = np.logspace(-3, 5, 40)
STEPS = (0, 1, 2, 3, 4)
METHODS = {
    # The raw optimum with free filters (the papers' protocol on one split).
    "raw free": dict(selection="raw", filter_constraint="none"),
    # The default: selection="stepwise", filter_constraint="auto".
    "default": dict(),
    "stepwise free": dict(selection="stepwise", filter_constraint="none"),
    "one_se": dict(selection="one_se"),
    "honest": dict(selection="honest"),
    "default loo": dict(cv=None),
    "default 0-1": dict(n_steps=(0, 1)),
    "default norescale": dict(rescale_alpha=False),
}


def real_datasets():
    out = {"diabetes": load_diabetes(return_X_y=True)}
    if os.environ.get("SKDISTILL_DATA"):
        for name, fetch in (
            ("airfoil", fetch_airfoil_self_noise),
            ("air quality", fetch_air_quality),
            ("appliances", fetch_appliances_energy),
        ):
            out[name] = fetch(return_X_y=True, download_if_missing=False)
    return out


def _fit_methods(X, y, cv, methods):
    ridge = RidgeCV(alphas=ALPHAS, cv=cv, scoring="neg_mean_squared_error").fit(X, y)
    fitted = {}
    for name in methods:
        kw = {"n_steps": STEPS, "cv": cv, **METHODS[name]}
        fitted[name] = SelfDistillCV(alphas=ALPHAS, **kw).fit(X, y)
    return ridge, fitted


def run_real(ns, seeds, methods, max_test=5000):
    rows = {}
    for n in ns:
        for X, y in real_datasets().values():
            if n >= len(y) - 20:
                continue
            for seed in seeds:
                rng = np.random.default_rng(1000 * seed + n)
                perm = rng.permutation(len(y))
                tr, te = perm[:n], perm[n:][:max_test]
                sc = StandardScaler().fit(X[tr])
                Xtr, Xte = sc.transform(X[tr]), sc.transform(X[te])
                cv = KFold(5, shuffle=True, random_state=seed)
                ridge, fitted = _fit_methods(Xtr, y[tr], cv, methods)
                base = np.mean((y[te] - ridge.predict(Xte)) ** 2)
                for m, est in fitted.items():
                    ratio = np.mean((y[te] - est.predict(Xte)) ** 2) / base
                    rows.setdefault((n, m), []).append((ratio, est.n_steps_))
    return rows


def _aligned(n, seed, d=20, noise=0.5):
    rng = np.random.default_rng(seed)
    cov = 1.0 / np.arange(1, d + 1)
    X = rng.normal(size=(n, d)) * np.sqrt(cov)
    coef = np.zeros(d)
    coef[0] = 1.0
    y = X @ coef + noise * rng.normal(size=n)

    def risk(est):
        delta = est.coef_ - coef
        return float(delta @ (cov * delta) + est.intercept_**2)

    return X, y, risk


def _fixed(n, seed, d=20, noise=0.5):
    X, y, coef = make_self_distillation_regression(n, d, noise=noise, random_state=seed)

    def risk(est):
        delta = X @ (est.coef_ - coef) + est.intercept_
        return float(np.mean(delta**2))

    return X, y, risk


def run_synthetic(family, ns, seeds, methods):
    rows = {}
    for n in ns:
        for seed in seeds:
            X, y, risk = family(n, seed)
            cv = KFold(5, shuffle=True, random_state=seed)
            ridge, fitted = _fit_methods(X, y, cv, methods)
            base = risk(ridge)
            for m, est in fitted.items():
                rows.setdefault((n, m), []).append((risk(est) / base, est.n_steps_))
    return rows


def run_nested(ns, seeds, K=5):
    """The cheap nested estimate (``honest_score_``) against explicit nesting.

    Explicit: for each outer fold j, ``SelfDistillCV`` is fitted on the other
    folds' rows with those folds as its splits, and its predictions are
    scored on fold j. Cheap: the same selection re-run on the other folds'
    statistics, whose teachers also saw fold j's rows. Also reported: the
    test error of the fit on all rows, which both estimate.
    """
    rows = []
    for n in ns:
        for name, (X, y) in real_datasets().items():
            if n >= len(y) - 20:
                continue
            for seed in seeds:
                rng = np.random.default_rng(7 + 1000 * seed + n)
                perm = rng.permutation(len(y))
                tr, te = perm[:n], perm[n:][:5000]
                sc = StandardScaler().fit(X[tr])
                Xtr, Xte, ytr = sc.transform(X[tr]), sc.transform(X[te]), y[tr]
                folds = list(KFold(K, shuffle=True, random_state=seed).split(Xtr))
                kw = dict(alphas=ALPHAS, n_steps=STEPS)
                full = SelfDistillCV(cv=folds, **kw).fit(Xtr, ytr)
                outer = []
                for j, (_, val) in enumerate(folds):
                    rest = np.concatenate([f[1] for i, f in enumerate(folds) if i != j])
                    pos = np.empty(n, dtype=int)
                    pos[rest] = np.arange(rest.size)
                    inner = [
                        (np.setdiff1d(pos[rest], pos[f[1]]), pos[f[1]])
                        for i, f in enumerate(folds)
                        if i != j
                    ]
                    est = SelfDistillCV(cv=inner, **kw).fit(Xtr[rest], ytr[rest])
                    outer.append(-np.mean((ytr[val] - est.predict(Xtr[val])) ** 2))
                test = -np.mean((y[te] - full.predict(Xte)) ** 2)
                rows.append((n, name, full.honest_score_, np.mean(outer), test))
    return rows


def report_nested(rows):
    print(
        "\nNested estimate of the selection (honest_score_) vs an explicit "
        "nested loop of SelfDistillCV fits (same outer folds), in MSE"
    )
    print(
        f"  {'n':>5} {'cheap/explicit':>15} {'|diff|/explicit':>16} "
        f"{'cheap/test':>11} {'explicit/test':>14}"
    )
    for n in sorted({r[0] for r in rows}):
        r = np.array([x[2:] for x in rows if x[0] == n])
        cheap, explicit, test = -r[:, 0], -r[:, 1], -r[:, 2]
        print(
            f"  {n:>5} {np.mean(cheap / explicit):15.3f} "
            f"{np.mean(np.abs(cheap - explicit) / explicit):16.3f} "
            f"{np.mean(cheap / test):11.3f} {np.mean(explicit / test):14.3f}"
        )


def report(title, rows, methods):
    print(f"\n{title}")
    print(
        f"  {'n':>5} {'method':>16} {'mean':>7} {'median':>7} {'worst':>7} "
        f"{'>5% worse':>9}  chosen n_steps"
    )
    ns = sorted({n for n, _ in rows})
    for n in ns:
        for m in methods:
            if (n, m) not in rows:
                continue
            r = np.array([v for v, _ in rows[(n, m)]])
            ks = Counter(int(k) for _, k in rows[(n, m)])
            print(
                f"  {n:>5} {m:>16} {r.mean():7.3f} {np.median(r):7.3f} "
                f"{r.max():7.3f} {np.mean(r > 1.05):9.0%}  "
                f"{dict(sorted(ks.items()))}"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=10,
        help="seeds 0-9 were used to design the rules: judge them on others",
    )
    parser.add_argument("--quick", action="store_true", help="fewer sizes")
    parser.add_argument(
        "--methods", nargs="*", default=list(METHODS), choices=list(METHODS)
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=["real", "aligned", "fixed", "nested"],
        help="parts",
    )
    args = parser.parse_args()
    real_ns = (40, 100) if args.quick else (40, 100, 300, 1000)
    syn_ns = (100, 300) if args.quick else (100, 300, 1000)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tic = time.perf_counter()
    if "real" in args.only:
        rows = run_real(real_ns, seeds, args.methods)
        report(
            "Negative controls: test MSE / RidgeCV's (target: mean <= 1.00, "
            "<= 5% of fits > 1.05)",
            rows,
            args.methods,
        )
    if "aligned" in args.only:
        rows = run_synthetic(_aligned, syn_ns, seeds, args.methods)
        report(
            "Positive controls, aligned signal: excess risk / RidgeCV's "
            "(target: mean <= 0.8)",
            rows,
            args.methods,
        )
    if "fixed" in args.only:
        rows = run_synthetic(_fixed, syn_ns, seeds, args.methods)
        report(
            "Positive controls, the paper's fixed design: excess risk / "
            "RidgeCV's (target: mean <= 0.8)",
            rows,
            args.methods,
        )
    if "nested" in args.only:
        report_nested(run_nested((40, 100, 300), seeds[: max(3, len(seeds) // 2)]))
    print(f"\n({time.perf_counter() - tic:.0f} s)")


if __name__ == "__main__":
    main()
