"""How visible is a student's gain to a selection rule? Leave-one-out t-ratios.

For one-step students ``phi(h) = h (1 - xi (1 - h))``, kept non-negative on
the spectrum, the leave-one-out residual of each row is ``b_i - xi a_i``
(``b``: ridge's, ``a``: ridge's minus the pure one-step distillate's, both
from :func:`skdistill._cv_loo.loo_residuals`), so the leave-one-out error is
a quadratic in ``xi``. For every draw this prints the best such student's
(over ``alpha`` and ``xi``) mean per-row error difference to the best ridge's,
in standard errors of those differences: what a paired test on the rows (or,
about as well, on blocks of them) compares with its threshold; and the oracle
(true-risk) gain of a one-step student, beside the noise variance.

At the fitted ``xi`` the mean difference to ridge at the same ``alpha`` is
about half its standard error times the t-statistic of ``xi`` (``d_i = xi^2
a_i^2 - 2 xi a_i b_i``): one standard error asks for ``|t| > 2``, two for
``|t| > 4``.

Run: ``python benchmarks/bench_selection_power.py [--seeds 10] [--ns 100 300]
[--first-seed 0] [--families ...]`` (``--families``: any family of
``benchmarks/_selection_families.py``, by substring; the report half's seeds
start at 100).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _selection_families import FAMILIES, make_instance, oracle_risks  # noqa: E402

from skdistill._cv_loo import loo_basis, loo_residuals  # noqa: E402

ALPHAS = np.logspace(-3, 5, 40)
SHOWN = (
    "top1 j^-1 rot d/n=.1 snr=1",
    "top1 j^-.5 coord d/n=.2 snr=1",
    "top3 j^-.5 rot d/n=.1 snr=4",
    "random j^-1 rot d/n=.1 snr=1",
    "random j^-.5 rot d/n=.5 snr=.25",
)


def loo_t_ratio(X, y, alphas=ALPHAS):
    """Best non-negative one-step student against the best ridge, by
    leave-one-out: the mean per-row error difference over its standard error
    (positive: the student is better)."""
    n, d = X.shape
    basis = loo_basis(X, y[:, None], None, fit_intercept=True)
    R = loo_residuals(basis, alphas, 1)[..., 0]  # (n, A, 2)
    full_rank = basis.lam.size >= min(n - 1, d)
    best_ridge, best_student = None, None
    for a, alpha in enumerate(alphas):
        b, a_ = R[:, a, 0], R[:, a, 0] - R[:, a, 1]
        h = basis.lam / (basis.lam + alpha)
        # phi >= 0 on the spectrum (h = 0 on null directions): xi <= 1/(1 - h_min).
        xi_max = 1.0 / (1.0 - (h.min() if full_rank else 0.0))
        xi = min((a_ @ b) / (a_ @ a_), xi_max) if a_ @ a_ > 0 else 0.0
        ridge, student = b**2, (b - xi * a_) ** 2
        if best_ridge is None or ridge.mean() < best_ridge.mean():
            best_ridge = ridge
        if best_student is None or student.mean() < best_student.mean():
            best_student = student
    diff = best_student - best_ridge
    return -diff.mean() / (diff.std(ddof=1) / np.sqrt(n))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--ns", type=int, nargs="*", default=[100, 300])
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--families", nargs="*", default=[])
    args = parser.parse_args()
    shown = [f for f in FAMILIES if any(s in f for s in args.families)] or SHOWN
    print(
        "family                                n   t-ratio: median [min, max]   "
        "oracle ridge excess  oracle 1-step gain  noise variance"
    )
    for family in shown:
        for n in args.ns:
            ratios, excess, gain = [], [], []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                inst = make_instance(family, n, seed)
                ratios.append(loo_t_ratio(inst.X, inst.y))
                risks = oracle_risks(inst, max_steps=1)
                excess.append(risks[0])
                gain.append(risks[0] - risks[1])
            print(
                f"{family:34s} {n:5d}   {np.median(ratios):5.2f} "
                f"[{np.min(ratios):5.2f}, {np.max(ratios):5.2f}]"
                f"       {np.mean(excess):8.4f}           {np.mean(gain):8.4f}"
                f"         {1 / FAMILIES[family]['snr']:6.2f}"
            )


if __name__ == "__main__":
    main()
