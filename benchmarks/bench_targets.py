"""Many targets: per-target ``SelfDistillCV`` against per-target ridge searches.

The setting: one BLAS thread (set ``OMP_NUM_THREADS=1`` and
``OPENBLAS_NUM_THREADS=1`` before running), n = 2000, d = 100, 20 alphas,
``cv=KFold(5)``, ``n_steps=(0, 1, 2)``, per-target tuning, targets with
varied noise, on several data families (``--family``; isotropic data hide
what depends on the spectrum): ``isotropic`` (standard normal ``X``),
``decaying`` (column scales decreasing linearly from 1 to 0.05) and
``powerlaw`` (column ``j`` scaled by ``(1 + j) ** -1``). In one run, each
fit in a forked child process whose peak resident memory is reported (it
includes the data, shared with the parent):

* ``SelfDistillCV(alpha_per_target=True)`` with the default rule, without
  the nested estimate ``honest_score_`` (``return_honest_score=False``), and
  with ``filter_constraint="none"`` (no shrinking-filter programmes);
* himalaya's ``RidgeCV(cv=5)`` on the same alphas and folds (ridge only;
  ``pip install himalaya``, a benchmark-only dependency; skipped if absent);
* scikit-learn's ``RidgeCV(alpha_per_target=True)`` (leave-one-out, ridge
  only).

Targets, on every family: at most half himalaya's time, within 3x of
scikit-learn's leave-one-out.

At the scale of one tenth of himalaya's voxel-wise tutorial (n = 3600
samples, d = 6820 features, 7000 targets: ``--n 3600 --d 6820 --targets
7000``; ``--rows`` picks rows by substring: the rows ``default "no
honest" himalaya sklearn`` took 30 minutes on one core of a quiet machine).

Run: ``python benchmarks/bench_targets.py [--targets 2000 20000]
[--family isotropic decaying powerlaw] [--n 2000] [--d 100] [--rows ...]``.
"""

import argparse
import multiprocessing
import resource
import time
import warnings
from functools import partial
from itertools import product

import numpy as np
from _spectra import FAMILIES, scaled_design
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from skdistill import SelfDistillCV

warnings.simplefilter("ignore")


def _problem(n_targets, family="isotropic", n=2000, d=100, seed=0):
    rng = np.random.default_rng(seed)
    X = scaled_design(n, d, family, rng)
    coef = rng.normal(size=(d, n_targets)) * (rng.random((d, n_targets)) < 0.2)
    noise = rng.uniform(0.5, 20.0, size=n_targets)
    Y = X @ coef + noise * rng.normal(size=(n, n_targets))
    return X, Y


def _child(fn, queue):
    tic = time.perf_counter()
    note = fn()
    elapsed = time.perf_counter() - tic
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    queue.put((elapsed, peak, note))


def _measure(fn):
    """Seconds, peak resident MiB and a note from ``fn()`` run in a fork."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def _fit_search(X, Y, **kw):
    est = SelfDistillCV(alpha_per_target=True, **kw).fit(X, Y)
    return f"n_steps chosen {np.bincount(est.n_steps_, minlength=3).tolist()}"


def _fit_himalaya(X, Y, alphas, cv):
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV

    HimalayaRidgeCV(alphas=alphas, cv=cv).fit(X, Y)
    return "ridge only"


def _fit_sklearn(X, Y, alphas):
    RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y)
    return "ridge only"


def _has_himalaya():
    try:
        import himalaya  # noqa: F401
    except ImportError:
        return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="*", default=[2000])
    parser.add_argument("--family", nargs="+", choices=FAMILIES, default=FAMILIES)
    parser.add_argument("--n", type=int, default=2000, help="samples")
    parser.add_argument("--d", type=int, default=100, help="features")
    parser.add_argument(
        "--rows", nargs="*", default=[], help="only the rows naming one of these"
    )
    args = parser.parse_args()
    cv = KFold(5)
    for t, family in product(args.targets, args.family):
        X, Y = _problem(t, family, n=args.n, d=args.d)
        # The same relative grid on every family (1e-4 to 1e2 times lam_max).
        lam_max = np.linalg.norm(X - X.mean(axis=0), 2) ** 2
        alphas = lam_max * np.logspace(-4, 2, 20)
        common = dict(alphas=alphas, n_steps=(0, 1, 2), cv=cv)
        fits = {
            "SelfDistillCV (default)": partial(_fit_search, X, Y, **common),
            "SelfDistillCV (no honest_score_)": partial(
                _fit_search, X, Y, return_honest_score=False, **common
            ),
            "SelfDistillCV (free filters)": partial(
                _fit_search, X, Y, filter_constraint="none", **common
            ),
            "himalaya RidgeCV(cv=5)": partial(_fit_himalaya, X, Y, alphas, cv),
            "sklearn RidgeCV (LOO, per target)": partial(_fit_sklearn, X, Y, alphas),
        }
        rows = {}
        for name, fit in fits.items():
            if args.rows and not any(r in name for r in args.rows):
                rows[name] = (np.nan, np.nan, "not run")
            elif name.startswith("himalaya") and not _has_himalaya():
                rows[name] = (np.nan, np.nan, "not installed")
            else:
                rows[name] = _measure(fit)
        base_h = rows["himalaya RidgeCV(cv=5)"][0]
        base_s = rows["sklearn RidgeCV (LOO, per target)"][0]
        print(
            f"\n{t} targets, {family} family, n = {X.shape[0]}, d = {X.shape[1]}, "
            "20 alphas"
        )
        print(
            f"  {'method':<36} {'seconds':>8} {'peak RSS MiB':>12} "
            f"{'/ himalaya':>11} {'/ sklearn':>10}"
        )
        for name, (secs, mib, note) in rows.items():
            print(
                f"  {name:<36} {secs:8.2f} {mib:12.0f} {secs / base_h:11.2f} "
                f"{secs / base_s:10.2f}  {note}"
            )


if __name__ == "__main__":
    main()
