"""The cheap nested estimate ``honest_score_`` against explicit nesting."""

import numpy as np
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from skdistill import SelfDistillCV

STEPS = (0, 1, 2, 3, 4)


def _inner_splits(folds, j, n):
    """The other folds' splits, in the positions of the rows they hold."""
    rest = np.concatenate([f[1] for i, f in enumerate(folds) if i != j])
    pos = np.empty(n, dtype=int)
    pos[rest] = np.arange(rest.size)
    inner = [
        (np.setdiff1d(pos[rest], pos[f[1]]), pos[f[1]])
        for i, f in enumerate(folds)
        if i != j
    ]
    return rest, inner


def run_nested(datasets, alphas, ns, seeds, K=5):
    """The cheap nested estimate (``honest_score_``) against explicit nesting.

    Explicit: for each outer fold j, ``SelfDistillCV`` is fitted on the other
    folds' rows with those folds as its splits, and its predictions are
    scored on fold j. Cheap: the same selection re-run on the other folds'
    statistics, whose teachers also saw fold j's rows. Also reported: the
    test error of the fit on all rows, which both estimate.
    """
    rows = []
    for n in ns:
        for name, (X, y) in datasets.items():
            if n >= len(y) - 20:
                continue
            for seed in seeds:
                rng = np.random.default_rng(7 + 1000 * seed + n)
                perm = rng.permutation(len(y))
                tr, te = perm[:n], perm[n:][:5000]
                sc = StandardScaler().fit(X[tr])
                Xtr, Xte, ytr = sc.transform(X[tr]), sc.transform(X[te]), y[tr]
                folds = list(KFold(K, shuffle=True, random_state=seed).split(Xtr))
                kw = dict(alphas=alphas, n_steps=STEPS)
                full = SelfDistillCV(cv=folds, **kw).fit(Xtr, ytr)
                outer = []
                for j, (_, val) in enumerate(folds):
                    rest, inner = _inner_splits(folds, j, n)
                    est = SelfDistillCV(cv=inner, **kw).fit(Xtr[rest], ytr[rest])
                    outer.append(-np.mean((ytr[val] - est.predict(Xtr[val])) ** 2))
                test = -np.mean((y[te] - full.predict(Xte)) ** 2)
                rows.append((n, name, full.honest_score_, np.mean(outer), test))
    return rows


def report_nested(rows):
    """Print the agreement of the cheap and explicit estimates."""
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
