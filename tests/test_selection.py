"""The honest selection of SelfDistillCV, against independent computations."""

import warnings

import numpy as np
import pytest
from _oracles import pure_distillates
from hypothesis import given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, PredefinedSplit

from skdistill import RepeatedSelfDistillationRegressor, SelfDistillCV
from skdistill._constrained import constrained_lstsq
from skdistill._cv_loo import loo_statistics

ALPHAS = np.logspace(-2, 2, 9)


def _data(n=60, d=6, seed=0, noise=0.5, t=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(3, 0.2, d)
    coef = rng.normal(size=(d,) if t is None else (d, t))
    y = X @ coef + noise * rng.normal(size=(n,) if t is None else (n, t))
    return X, y


def _kkt_solve(Z, y, w):
    """Weighted least squares ``|sqrt(w) (y - Z x)|`` under ``sum(x) = 1``, by KKT."""
    p = Z.shape[1]
    Zw = Z * np.sqrt(w)[:, None]
    yw = y * np.sqrt(w)
    kkt = np.zeros((p + 1, p + 1))
    kkt[:p, :p] = 2 * Zw.T @ Zw
    kkt[:p, p] = kkt[p, :p] = 1.0
    rhs = np.concatenate([2 * Zw.T @ yw, [1.0]])
    return np.linalg.solve(kkt, rhs)[:p]


@given(
    seed=st.integers(0, 2**16),
    fit_intercept=st.booleans(),
    weighted=st.booleans(),
    wide=st.booleans(),
    max_steps=st.integers(0, 3),
    log_alpha=st.floats(-1, 2),
)
def test_leave_one_out_statistics_equal_explicit_refits(
    seed, fit_intercept, weighted, wide, max_steps, log_alpha
):
    # Each row's leave-one-out prediction of every pure distillate, from one
    # decomposition, equals the prediction of the chain refitted on the other
    # rows with scikit-learn's Ridge. Checked through the per-row factors:
    # |R_i (xi_bar, -1)|^2 is row i's leave-one-out squared error.
    n = 14
    X, y = _data(n=n, d=20 if wide else 3, seed=seed)
    rng = np.random.default_rng(seed + 1)
    w = rng.uniform(0.2, 3.0, size=n) if weighted else np.ones(n)
    alpha = 10.0**log_alpha
    stats, _ = loo_statistics(
        X,
        y[:, None],
        w if weighted else None,
        fit_intercept=fit_intercept,
        alphas=[alpha],
        max_steps=max_steps,
        n_blocks=n,
    )
    xi_bar = rng.normal(size=max_steps + 1)
    xi_bar[0] += 1 - xi_bar.sum()
    for i in range(n):
        keep = np.arange(n) != i
        Z = pure_distillates(
            X[keep], y[keep], X[i : i + 1], alpha, max_steps, w[keep], fit_intercept
        )
        expected = w[i] * (y[i] - Z[0] @ xi_bar) ** 2 / (w.sum() / n)
        got = np.sum((stats[i].R[0, 0] @ np.append(xi_bar, -1.0)) ** 2)
        # Well-conditioned: leverages stay below 1 - 1e-3 with alpha >= 0.1,
        # and the chain's round-off is a few eps times the labels' scale.
        assert got == pytest.approx(expected, rel=1e-7, abs=1e-9 * np.sum(y**2))


def test_leave_one_out_ridge_equals_ridgecv():
    X, y = _data(n=50, d=5, seed=3)
    ridge = RidgeCV(alphas=ALPHAS, scoring="neg_mean_squared_error").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(alphas=ALPHAS, n_steps=0, cv=None).fit(X, y)
    assert search.alpha_ == ridge.alpha_
    assert search.best_score_ == pytest.approx(ridge.best_score_, rel=1e-10)
    np.testing.assert_allclose(search.predict(X), ridge.predict(X), rtol=1e-10)


def test_leave_one_out_refuses_other_estimators_and_tiny_data():
    from skdistill import KernelSelfDistillationRegressor

    X, y = _data(n=20, d=3)
    with pytest.raises(ValueError, match="cv=None"):
        SelfDistillCV(KernelSelfDistillationRegressor(), cv=None).fit(X, y)
    with pytest.raises(ValueError, match="cv=None"):
        SelfDistillCV(cv=None).fit(X[:2], y[:2])


@given(seed=st.integers(0, 2**16), weighted=st.booleans())
def test_honest_split_scores_equal_cross_fitted_refits(seed, weighted):
    # split{j}_honest_test_score: xi_bar fitted (by an independent KKT solve)
    # on the other folds' validation predictions of per-fold Ridge chains,
    # then scored on fold j.
    X, y = _data(n=40, d=4, seed=seed)
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.3, 3.0, size=len(y)) if weighted else np.ones(len(y))
    folds = list(KFold(4, shuffle=True, random_state=seed).split(X))
    alphas = np.array([1.0, 30.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(
            alphas=alphas, n_steps=(0, 1), cv=folds, filter_constraint="none"
        ).fit(X, y, sample_weight=w if weighted else None)
    res = search.cv_results_
    for c, p in enumerate(res["params"]):
        if p["n_steps"] == 0:
            continue
        Zs = [
            pure_distillates(X[tr], y[tr], X[te], p["alpha"], 1, w[tr])
            for tr, te in folds
        ]
        for j, (_, te) in enumerate(folds):
            others = [i for i in range(len(folds)) if i != j]
            Z = np.vstack([Zs[i] for i in others])
            yy = np.concatenate([y[folds[i][1]] for i in others])
            # Each fold's error is normalised by its own weight sum.
            ww = np.concatenate([w[folds[i][1]] / w[folds[i][1]].sum() for i in others])
            x = _kkt_solve(Z, yy, ww)
            mse = np.average((y[te] - Zs[j] @ x) ** 2, weights=w[te])
            got = -res[f"split{j}_honest_test_score"][c]
            # The two-column problem is well posed (cond < 1e4 here).
            assert got == pytest.approx(mse, rel=1e-6)


def test_honest_equals_raw_for_ridge_and_ranks_are_consistent():
    X, y = _data(n=50, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(alphas=ALPHAS, n_steps=(0, 1, 2), cv=5).fit(X, y)
    res = search.cv_results_
    ridge = np.array([p["n_steps"] == 0 for p in res["params"]])
    np.testing.assert_array_equal(
        res["mean_honest_test_score"][ridge], res["mean_test_score"][ridge]
    )
    order = np.argsort(-res["mean_honest_test_score"], kind="stable")
    assert res["rank_honest_test_score"][order[0]] == 1


def _rule_from_results(res, n_splits, rule):
    """Re-derive the chosen row from cv_results_ alone (no package code)."""
    steps = np.array([p["n_steps"] for p in res["params"]])
    shrink = np.asarray(res["filter_family"]) == "shrink"
    alpha = np.array([p["alpha"] for p in res["params"]])
    level = np.where(steps == 0, 0, 2 * steps - 1 + (~shrink))
    key = "test" if rule == "raw" else "honest_test"
    split = np.column_stack([res[f"split{i}_{key}_score"] for i in range(n_splits)])
    mean = split.mean(axis=1)

    def best(rows):
        top = rows[mean[rows] == mean[rows].max()]
        return top[np.lexsort((-alpha[top], level[top]))[0]]

    if rule == "stepwise":
        current = best(np.flatnonzero(level == 0))
        for lev in np.unique(level)[1:]:
            challenger = best(np.flatnonzero(level == lev))
            d = split[challenger] - split[current]  # positive: challenger better
            if d.mean() - 2 * d.std(ddof=1) / np.sqrt(n_splits) > 0:
                current = challenger
        return current
    if rule != "one_se":
        return best(np.arange(len(mean)))
    # The simplest level with a candidate within one standard error of the
    # paired per-fold differences from the best; that level's best.
    top = best(np.arange(len(mean)))
    d = split[top] - split  # positive: worse than the best
    se = d.std(ddof=1, axis=1) / np.sqrt(n_splits)
    within = np.flatnonzero(d.mean(axis=1) <= se)
    return best(within[level[within] == level[within].min()])


@pytest.mark.parametrize("rule", ["raw", "honest", "stepwise", "one_se"])
@pytest.mark.parametrize("seed", range(6))
def test_chosen_candidate_follows_the_rule(rule, seed):
    X, y = _data(n=40, d=8, seed=seed, noise=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(
            alphas=ALPHAS, n_steps=(0, 1, 2, 3), cv=5, selection=rule
        ).fit(X, y)
    expected = _rule_from_results(search.cv_results_, 5, rule)
    assert search.best_index_ == expected
    p = search.cv_results_["params"][expected]
    assert search.n_steps_ == p["n_steps"]
    assert search.cv_alpha_ == p["alpha"]


def test_raw_rule_picks_most_steps_and_honest_rule_does_not_on_noise():
    # Pure noise: any student's raw CV gain is fitted noise. The raw optimum
    # takes the most steps offered; the honest rules mostly keep ridge.
    chosen_raw, chosen_1se = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        X, y = rng.normal(size=(40, 6)), rng.normal(size=40)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            kw = dict(alphas=ALPHAS, n_steps=(0, 1, 2, 3, 4), cv=5)
            chosen_raw.append(SelfDistillCV(selection="raw", **kw).fit(X, y).n_steps_)
            chosen_1se.append(SelfDistillCV(**kw).fit(X, y).n_steps_)
    assert np.mean(np.array(chosen_raw) == 4) >= 0.75
    assert np.mean(np.array(chosen_1se) == 0) >= 0.75


def test_shrinking_filters_stay_in_unit_interval_on_training_spectra():
    X, y = _data(n=40, d=5, seed=2)
    folds = list(KFold(4, shuffle=True, random_state=0).split(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(
            alphas=ALPHAS, n_steps=(0, 2, 3), cv=folds, filter_constraint="shrink"
        ).fit(X, y)
    res = search.cv_results_
    # Training spectra by an independent SVD of each centred training fold.
    lams = np.concatenate(
        [
            np.linalg.svd(X[tr] - X[tr].mean(axis=0), compute_uv=False) ** 2
            for tr, _ in folds
        ]
    )
    assert np.all(
        (res["filter_family"] == "shrink") == (np.array(res["param_n_steps"]) > 0)
    )
    for p, xi_bar in zip(res["params"], res["xi_bar"], strict=True):
        h = lams / (lams + p["alpha"])
        phi = h * np.polyval(xi_bar[::-1], h)
        # phi is a sum of at most 4 terms of size |xi_bar| h^m: round-off of
        # the QP's constraint is a few eps times that.
        slack = 1e-9 * (1 + np.abs(xi_bar).sum())
        assert phi.min() >= -slack and phi.max() <= 1 + slack


def test_single_split_warns_and_uses_the_raw_optimum():
    X, y = _data(n=40, seed=4)
    fold = np.where(np.arange(40) < 30, -1, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="not validated"):
            search = SelfDistillCV(
                alphas=ALPHAS, n_steps=(0, 1, 2), cv=PredefinedSplit(fold)
            ).fit(X, y)
    assert search.selection_ == "raw"
    assert np.isnan(search.honest_score_)
    assert search.best_index_ == int(np.argmax(search.cv_results_["mean_test_score"]))


def test_refit_alpha_scale_is_n_over_the_training_fold_size():
    # Guards the refit rescaling: a student is refitted at alpha * n / n_train
    # (here 60 / 45); ridge at the validated alpha.
    X, y = _data(n=60, seed=5)
    folds = list(KFold(4).split(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        student = SelfDistillCV(
            alphas=ALPHAS, n_steps=2, cv=folds, selection="raw"
        ).fit(X, y)
        ridge = SelfDistillCV(alphas=ALPHAS, n_steps=0, cv=folds).fit(X, y)
    assert student.alpha_refit_scale_ == 60 / 45
    assert student.best_estimator_.alpha == student.cv_alpha_ * 60 / 45
    assert student.alpha_ == student.best_estimator_.alpha
    assert ridge.best_estimator_.alpha == ridge.cv_alpha_ == ridge.alpha_
    # The student's refit is the filter evaluated on all rows at that alpha.
    direct = RepeatedSelfDistillationRegressor(
        alpha=student.cv_alpha_ * 60 / 45,
        n_steps=2,
        xi=student.xi_,
        solver="svd",
    ).fit(X, y)
    np.testing.assert_allclose(student.predict(X), direct.predict(X), rtol=1e-9)


def test_constrained_lstsq_matches_kkt_on_well_posed_problems():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(7, 20, 3))
    v = rng.normal(size=(7, 20))
    x = constrained_lstsq(M, v)
    for b in range(7):
        np.testing.assert_allclose(
            x[b], _kkt_solve(M[b], v[b], np.ones(20)), rtol=1e-10, atol=1e-12
        )
    np.testing.assert_allclose(x.sum(axis=-1), 1.0, rtol=1e-12)


def test_return_honest_score_false_skips_only_the_nested_estimate():
    X, Y = _data(n=80, d=6, seed=7, t=3)
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    kw = dict(alphas=ALPHAS, n_steps=(0, 1, 2), cv=folds, alpha_per_target=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = SelfDistillCV(**kw).fit(X, Y)
        quick = SelfDistillCV(return_honest_score=False, **kw).fit(X, Y)
    assert np.isfinite(full.honest_score_) and np.isnan(quick.honest_score_)
    np.testing.assert_array_equal(quick.n_steps_, full.n_steps_)
    np.testing.assert_array_equal(quick.alpha_, full.alpha_)
    np.testing.assert_array_equal(quick.xi_bar_, full.xi_bar_)
    for key in ("mean_test_score", "mean_honest_test_score"):
        np.testing.assert_array_equal(quick.cv_results_[key], full.cv_results_[key])
