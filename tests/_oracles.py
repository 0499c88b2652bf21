"""Reference computations shared by the tests, independent of skdistill."""

import numpy as np
from sklearn.linear_model import Ridge


def pure_distillates(X_tr, y_tr, X_val, alpha, k, w_tr=None, fit_intercept=True):
    """Validation predictions of the pure m-fold distillates, m = 0..k.

    scikit-learn's Ridge refitted k times, each student on the previous
    step's training predictions (``xi = 1``). Returns an array of shape
    ``(n_val, [n_targets,] k + 1)``.
    """
    preds, labels = [], y_tr
    for _ in range(k + 1):
        ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="svd")
        ridge.fit(X_tr, labels, sample_weight=w_tr)
        preds.append(ridge.predict(X_val))
        labels = ridge.predict(X_tr)
    return np.stack(preds, axis=-1)


def fold_problem(X, y, folds, alpha, k, w=None, fit_intercept=True):
    """Each fold's validation predictions of the pure distillates, and weights.

    Returns a list over folds of ``(P, y_val, c)``: ``P`` (n_val, k + 1) from
    :func:`pure_distillates` (the teacher trained on the fold's training
    rows), and ``c = w_val / sum(w_val)``, so that the fold's (weighted) mean
    squared error of a filter ``xi_bar`` is ``sum(c * (y_val - P @ xi_bar)**2)``.
    """
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=float)
    out = []
    for tr, te in folds:
        P = pure_distillates(X[tr], y[tr], X[te], alpha, k, w[tr], fit_intercept)
        out.append((P, y[te], w[te] / w[te].sum()))
    return out


def stacked_problem(problems, subset=None):
    """``(M, v)`` with ``|M x - v|^2`` the sum over ``subset`` of folds' errors."""
    subset = range(len(problems)) if subset is None else subset
    M = np.vstack([problems[f][0] * np.sqrt(problems[f][2])[:, None] for f in subset])
    v = np.concatenate([problems[f][1] * np.sqrt(problems[f][2]) for f in subset])
    return M, v


def fold_eigenvalues(X, folds, w=None, fit_intercept=True):
    """Eigenvalues of every training fold's centred, weighted ``X^T X``.

    A numpy SVD of each fold; concatenated over folds (zeros included).
    """
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=float)
    lams = []
    for tr, _ in folds:
        Xt = np.asarray(X[tr], dtype=np.float64)
        if fit_intercept:
            Xt = Xt - np.average(Xt, axis=0, weights=w[tr])
        s = np.linalg.svd(Xt * np.sqrt(w[tr])[:, None], compute_uv=False)
        lams.append(s**2)
    return np.concatenate(lams)


def filter_values(xi_bar, h, eps=None):
    """``phi(h) = h * sum_m xi_bar[m] h^m`` and a bound on its round-off.

    The bound is ``64 eps`` times ``sum_m |xi_bar[m]| h^(m+1)``: evaluating the
    polynomial (with ``h`` known to a few ``eps``) cannot resolve ``phi``
    better than that, whatever the algorithm (``64`` covers the Horner steps
    and the computation of h). ``eps`` defaults to float64's.
    """
    xi_bar = np.asarray(xi_bar, dtype=float)
    powers = h[:, None] ** np.arange(1, xi_bar.size + 1)[None, :]
    phi = powers @ xi_bar
    eps = np.finfo(np.float64).eps if eps is None else eps
    slack = 64 * eps * (np.abs(powers) @ np.abs(xi_bar))
    return phi, slack


def shrink_qp(M, v, h, feas_tol=1e-10, upper=1.0):
    """``min |M x - v|^2`` under ``sum(x) = 1``, ``0 <= phi_x(h_i) <= upper``.

    ``phi_x(h) = sum_m x_m h^(m+1)``. Solved exactly by enumerating active
    sets: with ``p = len(x)``, the reduced problem has ``p - 1`` dimensions,
    so the optimum is the equality-constrained optimum of some set of at
    most ``p - 1`` active constraints (each ``h_i`` at 0 or at ``upper``;
    only at 0 for ``upper = inf``). Every such
    set is solved by its KKT system; the best feasible solution wins (any
    feasible point is no better than the optimum, and the optimum is one of
    them). Meant for few points (``sum_{s < p} C(m, s) 2^s`` solves). ``M``
    must have full column rank (a unique optimum).

    Returns ``(x, objective, active)``, ``active`` the number of active
    constraints at the solution.
    """
    from itertools import combinations, product

    M, v, h = (np.asarray(a, dtype=float) for a in (M, v, h))
    p = M.shape[1]
    A = h[:, None] ** np.arange(1, p + 1)[None, :]  # (m, p)
    G = 2 * M.T @ M
    g = 2 * M.T @ v
    best = (None, np.inf, 0)
    for size in range(p):
        for rows in combinations(range(len(h)), size):
            sides = (0.0,) if upper == np.inf else (0.0, upper)
            for bounds in product(sides, repeat=size):
                E = np.vstack([np.ones((1, p)), A[list(rows)]])
                f = np.concatenate([[1.0], bounds])
                kkt = np.block([[G, E.T], [E, np.zeros((size + 1, size + 1))]])
                rhs = np.concatenate([g, f])
                sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
                x = sol[:p]
                if abs(x.sum() - 1) > 1e-9 or np.any(np.abs(E @ x - f) > feas_tol):
                    continue  # an inconsistent set of active constraints
                phi = A @ x
                if phi.min() < -feas_tol or phi.max() > upper + feas_tol:
                    continue
                obj = float(np.sum((M @ x - v) ** 2))
                if obj < best[1]:
                    best = (x, obj, size)
    return best


def candidate_levels(cv_results):
    """Each ``cv_results_`` row's complexity: 0 ridge, then per k shrink, free."""
    steps = np.array([p["n_steps"] for p in cv_results["params"]])
    shrink = np.asarray(cv_results["filter_family"]) == "shrink"
    return np.where(steps == 0, 0, 2 * steps - 1 + (~shrink))


def rule_choice(cv_results, n_splits, rule, rtol=1e-12):
    """The row a selection rule chooses, from ``cv_results_`` scores alone.

    Written from the user guide's definitions (not the package's code):
    candidates ordered by complexity (level, then the larger alpha); ties
    within ``rtol`` of the scores' scale go to the simplest.
    """
    res = cv_results
    level = candidate_levels(res)
    alpha = np.array([p["alpha"] for p in res["params"]])
    key = "test" if rule == "raw" else "honest_test"
    split = np.column_stack([res[f"split{i}_{key}_score"] for i in range(n_splits)])
    mean = split.mean(axis=1)
    tol = rtol * np.max(np.abs(mean))

    def best(rows):
        top = rows[mean[rows] >= mean[rows].max() - tol]
        return top[np.lexsort((-alpha[top], level[top]))[0]]

    if rule in ("raw", "honest"):
        return best(np.arange(mean.size))
    if rule == "stepwise":
        current = best(np.flatnonzero(level == 0))
        for lev in np.unique(level)[1:]:
            challenger = best(np.flatnonzero(level == lev))
            d = split[challenger] - split[current]  # positive: challenger better
            if d.mean() - 2 * d.std(ddof=1) / np.sqrt(n_splits) > tol:
                current = challenger
        return current
    top = best(np.arange(mean.size))
    d = split[top] - split  # positive: worse than the best
    se = d.std(ddof=1, axis=1) / np.sqrt(n_splits)
    within = np.flatnonzero(d.mean(axis=1) <= se + tol)
    return best(within[level[within] == level[within].min()])


def nested_score_oracle(make_search, X, y, folds, rule, w=None):
    """``honest_score_`` by an explicit nested loop of ``SelfDistillCV`` fits.

    ``honest_score_`` is defined (``docs/user_guide/tuning.rst``) as: for each
    fold ``j``, the rule re-run on the other folds' statistics (its own
    cross-fitting leaving a second fold out), the chosen filter fitted on
    those folds and scored on fold ``j``. The other folds' teachers are
    trained with fold ``j``'s rows, so the inner search is a ``SelfDistillCV``
    fit on all rows whose splits are the outer splits without fold ``j``
    (``make_search(splits)`` returns it unfitted). Its choice is re-derived
    from its ``cv_results_`` (:func:`rule_choice`), its ``xi_bar`` (fitted on
    the other folds) applied to scikit-learn Ridge chains trained on fold
    ``j``'s training rows. Returns minus the mean over folds of the weighted
    validation MSE, and the chosen rows' ``(n_steps, alpha)``.
    """
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=float)
    K = len(folds)
    errors, choices = [], []
    for j in range(K):
        inner = [folds[i] for i in range(K) if i != j]
        search = make_search(inner).fit(X, y, sample_weight=w)
        res = search.cv_results_
        c = rule_choice(res, K - 1, rule)
        p = res["params"][c]
        xi_bar = np.asarray(res["xi_bar"][c], dtype=float)
        tr, te = folds[j]
        P = pure_distillates(X[tr], y[tr], X[te], p["alpha"], p["n_steps"], w[tr])
        errors.append(np.average((y[te] - P @ xi_bar) ** 2, weights=w[te]))
        choices.append((p["n_steps"], p["alpha"]))
    return -float(np.mean(errors)), choices


def prediction_error_bound(X, y, alpha, xi_bar, w=None, fit_intercept=True, eps=None):
    """Round-off bound of a filter's predictions: ``1e3 eps kappa |xi_bar|_1 |y|``.

    ``kappa = 1 + lam_max / alpha`` is the regularised condition number of
    the (centred, weighted) ``X^T X + alpha I`` (a numpy SVD), ``|y|`` the
    largest label; each pure distillate's predictions are accurate to about
    ``eps kappa |y|`` and the filter combines them with weights ``xi_bar``.
    ``eps`` defaults to float64's.
    """
    eps = np.finfo(np.float64).eps if eps is None else eps
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=float)
    Xc = X - np.average(X, axis=0, weights=w) if fit_intercept else X
    s = np.linalg.svd(Xc * np.sqrt(w)[:, None], compute_uv=False)
    kappa = 1 + s[0] ** 2 / alpha
    l1 = np.abs(np.asarray(xi_bar, dtype=float)).sum()
    return 1e3 * eps * kappa * max(l1, 1.0) * np.abs(np.asarray(y, float)).max()


def explicit_loo_mse(X, y, alpha, xi_bar, w=None, fit_intercept=True):
    """Leave-one-out (weighted) MSE of a filter, by ``n`` Ridge-chain refits."""
    n = X.shape[0]
    w = np.ones(n) if w is None else np.asarray(w, dtype=float)
    xi_bar = np.asarray(xi_bar, dtype=float)
    k = xi_bar.size - 1
    err = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        P = pure_distillates(
            X[keep], y[keep], X[i : i + 1], alpha, k, w[keep], fit_intercept
        )
        err[i] = (y[i] - P[0] @ xi_bar) ** 2
    return float(np.average(err, weights=w))


def assert_loo_score_is_exact(search, X, y):
    """A ``cv=None`` search's score of its choice is that of explicit refits.

    To a tolerance the choice's conditioning allows
    (:func:`prediction_error_bound`), and that tolerance resolves the score
    (at most 10% of it).
    """
    import pytest

    res = search.cv_results_
    c = search.best_index_
    alpha = res["params"][c]["alpha"]
    xi_bar = np.asarray(res["xi_bar"][c], dtype=float)
    mse = explicit_loo_mse(X, y, alpha, xi_bar)
    err = prediction_error_bound(X, y, alpha, xi_bar)
    tol = 2 * np.sqrt(mse) * err + err**2
    assert tol <= 0.1 * mse
    assert -res["mean_test_score"][c] == pytest.approx(mse, rel=1e-6, abs=tol)
