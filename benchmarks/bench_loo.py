"""Leave-one-out (``cv=None``): ``SelfDistillCV`` against scikit-learn's ``RidgeCV``.

The setting: one BLAS thread (set ``OMP_NUM_THREADS=1`` before running).

* Many targets: n = 2000, d = 100, 20 alphas, 2000 targets, per-target
  choices, on three data families (isotropic; column scales decaying
  linearly to 0.05; a power-law spectrum, scales ``1/j`` in a random basis).
  ``SelfDistillCV(cv=None, alpha_per_target=True)`` with ``n_steps=(0,)``
  (ridge only: the computation scikit-learn does) and ``(0, 1, 2)`` (also
  without the nested estimate, ``return_honest_score=False``), against
  ``RidgeCV(alpha_per_target=True)`` on the same alphas. The statistics
  stage alone (``loo_statistics``: one decomposition, the leave-one-out
  residuals and their block factors) is timed too, to separate it from the
  selection.
* One target, d > n: n = 500, d = 2000, the default grid of 50 alphas,
  ``n_steps=(0,)`` and ``(0, 1, 2, 3)``, against ``RidgeCV()`` (its default
  three alphas) and ``RidgeCV`` on the same 50 alphas.

Every time is the best of ``--repeat`` runs in this process, and every
ratio is against the reference measured in the same run.
Targets (issue 21): ridge only within 1.5x of ``RidgeCV``, ``n_steps=(0, 1,
2)`` within 3x; d > n within 1.5x of ``RidgeCV()``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_loo.py [--targets 2000]
[--repeat 1] [--families isotropic linear power]``.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.linear_model import RidgeCV

from skdistill import SelfDistillCV
from skdistill._cv_loo import loo_statistics

warnings.simplefilter("ignore")

FAMILIES = ("isotropic", "linear", "power")


def _design(family, n, d, rng):
    """``X`` of one family (n, d)."""
    Z = rng.normal(size=(n, d))
    if family == "isotropic":
        return Z
    if family == "linear":
        return Z * np.linspace(1.0, 0.05, d)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (Z / np.arange(1, d + 1)) @ Q.T


def _problem(family, n_targets, n=2000, d=100, seed=0):
    rng = np.random.default_rng(seed)
    X = _design(family, n, d, rng)
    coef = rng.normal(size=(d, n_targets)) * (rng.random((d, n_targets)) < 0.2)
    signal = X @ coef
    noise = rng.uniform(0.2, 2.0, size=n_targets) * signal.std(axis=0).clip(1e-3)
    return X, signal + noise * rng.normal(size=(n, n_targets))


def _grid(X, n_alphas, span=(-4.0, 1.0)):
    Xc = X - X.mean(axis=0)
    return np.linalg.norm(Xc, 2) ** 2 * np.logspace(*span, n_alphas)


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return min(times)


def _many_targets(family, n_targets, repeat):
    X, Y = _problem(family, n_targets)
    alphas = _grid(X, 20)
    Y_unit = Y / np.abs(Y).max(axis=0)
    ref = _best(lambda: RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y), repeat)
    print(f"{family:<10} scikit-learn RidgeCV(alpha_per_target)  {ref:8.3f} s")
    for steps, nested in (((0,), True), ((0, 1, 2), True), ((0, 1, 2), False)):
        search = SelfDistillCV(
            cv=None,
            alphas=alphas,
            n_steps=steps,
            alpha_per_target=True,
            return_honest_score=nested,
        )
        t = _best(lambda s=search: s.fit(X, Y), repeat)
        if not nested:
            print(
                f"{family:<10}   without the nested estimate  {t:8.3f} s  "
                f"{t / ref:6.2f}x"
            )
            continue
        stats = _best(
            lambda s=steps: loo_statistics(
                X, Y_unit, None, fit_intercept=True, alphas=alphas,
                max_steps=max(s),
            ),
            repeat,
        )  # fmt: skip
        print(
            f"{family:<10} SelfDistillCV n_steps={str(steps):<10} {t:8.3f} s  "
            f"{t / ref:6.2f}x   (statistics {stats:7.3f} s, {stats / ref:5.2f}x)"
        )


def _wide(repeat):
    rng = np.random.default_rng(1)
    n, d = 500, 2000
    X = _design("linear", n, d, rng)
    y = X[:, :20] @ rng.normal(size=20) + 0.5 * rng.normal(size=n)
    default = _best(lambda: RidgeCV().fit(X, y), repeat)
    alphas = _grid(X, 50, span=(-6.0, 1.0))
    same = _best(lambda: RidgeCV(alphas=alphas).fit(X, y), repeat)
    print(f"d > n      RidgeCV() {default:.3f} s, RidgeCV(50 alphas) {same:.3f} s")
    for steps in ((0,), (0, 1, 2, 3)):
        search = SelfDistillCV(cv=None, n_steps=steps)
        t = _best(lambda s=search: s.fit(X, y), repeat)
        print(
            f"d > n      SelfDistillCV n_steps={str(steps):<12} {t:7.3f} s  "
            f"{t / default:6.2f}x RidgeCV(), {t / same:5.2f}x RidgeCV(50 alphas)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--no-wide", action="store_true")
    args = parser.parse_args()
    print(f"n=2000, d=100, 20 alphas, {args.targets} targets, best of {args.repeat}")
    for family in args.families:
        _many_targets(family, args.targets, args.repeat)
    if not args.no_wide:
        _wide(args.repeat)


if __name__ == "__main__":
    main()
