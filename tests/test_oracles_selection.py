"""The selection code against independent computations (issue 18, "Tests that
let bugs through"): each test here kills a mutant of the search that the
rest of the suite let live (listed in the test's comment)."""

import warnings

import numpy as np
import pytest
from _oracles import (
    filter_values,
    fold_eigenvalues,
    fold_problem,
    nested_score_oracle,
    shrink_qp,
)
from _oracles import stacked_problem as _stacked
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold

from skdistill import (
    KernelSelfDistillationRegressor,
    RepeatedSelfDistillationRegressor,
    SelfDistillCV,
)
from skdistill._cv_engine import _apply_rule


def _data(n=60, d=6, seed=0, noise=0.5, t=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(3, 0.2, d)
    coef = rng.normal(size=(d,) if t is None else (d, t))
    y = X @ coef + noise * rng.normal(size=(n,) if t is None else (n, t))
    return X, y


def _fit(search, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # alpha on the grid's edge
        return search.fit(*args, **kwargs)


# ------------------------------------------------------------ the rules
# Hand-built fold errors of known answer, on _apply_rule directly. The paired
# differences d = m + c * u with u = (-1, -1, 1, 1) (mean 0, std 1 with
# ddof=0, sqrt(4/3) with ddof=1) put m / se between the ddof=0 and ddof=1
# values, so only the sample (ddof=1) standard error gives the answer.
U4 = np.array([-1.0, -1.0, 1.0, 1.0])


def _rule(rule, errors, level, alpha_idx, tol=0.0):
    """_apply_rule on one group with the same raw and cross-fitted errors."""
    E = np.asarray(errors, dtype=float)[None]  # (1, C, K)
    eligible = np.ones(E.shape[:2], dtype=bool)
    out = _apply_rule(
        rule, E, E, np.asarray(level), np.asarray(alpha_idx), np.array([tol]), eligible
    )
    return int(out[0])


def _t_stats(d):
    n = d.size
    return (
        d.mean() / (d.std(ddof=1) / np.sqrt(n)),
        d.mean() / (d.std(ddof=0) / np.sqrt(n)),
    )


def test_one_se_uses_the_sample_standard_error_of_the_paired_differences():
    # Kills: one_se with ddof=0 in its paired standard error.
    student = np.array([1.0, 1.0, 1.0, 1.0])
    d = 0.2 + 0.2 * 1.85 * U4  # ridge minus student, per fold
    t1, t0 = _t_stats(d)
    assert t1 < 0.95 and t0 > 1.05  # within 1 SE (ddof=1), not within (ddof=0)
    errors = [student + d, student + d + 0.5, student, student + 0.3]
    level, alpha_idx = [0, 0, 1, 2], [0, 1, 0, 0]
    # The best is the student (index 2); the ridge at alpha 0 is within one
    # sample standard error of it, so the simplest level wins: that ridge.
    assert _rule("honest", errors, level, alpha_idx) == 2
    assert _rule("one_se", errors, level, alpha_idx) == 0
    # Beyond one standard error (a larger mean gap), the student.
    far = [student + d + 0.2, student + d + 0.5, student, student + 0.3]
    assert _rule("one_se", far, level, alpha_idx) == 2


def test_stepwise_uses_the_sample_standard_error_of_the_paired_differences():
    ridge = np.array([2.0, 2.0, 2.0, 2.0])
    gain = 0.2 + 0.2 * 0.93 * U4  # ridge minus student, per fold
    t1, t0 = _t_stats(gain)
    assert t1 < 1.9 and t0 > 2.1  # a 2-SE win with ddof=0 only
    level, alpha_idx = [0, 1], [0, 0]
    assert _rule("stepwise", [ridge, ridge - gain], level, alpha_idx) == 0
    assert _rule("stepwise", [ridge, ridge - gain - 0.1], level, alpha_idx) == 1


@pytest.mark.parametrize("rule", ["raw", "honest", "stepwise", "one_se"])
def test_ties_go_to_the_simplest_candidate(rule):
    # Kills: ties won by the more complex level (or the smaller alpha).
    rng = np.random.default_rng(0)
    e = rng.uniform(1.0, 2.0, size=5)
    # Candidates out of complexity order: two free students, a shrinking
    # student, two ridges; every one with the same fold errors.
    level = [2, 2, 1, 0, 0]
    alpha_idx = [3, 1, 2, 0, 4]
    errors = [e] * 5
    assert _rule(rule, errors, level, alpha_idx) == 4  # ridge, largest alpha
    # Ties within tol: the complex candidates better by tol / 2 still lose.
    tol = 1e-9
    close = [e - tol / 2, e - tol / 2, e - tol / 2, e, e]
    assert _rule(rule, close, level, alpha_idx, tol=tol) == 4
    # Without the ridges, the shrinking student; then the larger alpha.
    assert _rule(rule, errors[:3], level[:3], alpha_idx[:3]) == 2
    assert _rule(rule, errors[:2], level[:2], alpha_idx[:2]) == 0


@pytest.mark.parametrize("rule", ["raw", "honest"])
def test_a_gap_beyond_tol_is_not_a_tie(rule):
    e = np.array([1.0, 1.5, 1.2, 1.7, 1.1])
    tol = 1e-9
    errors = [e, e - 3 * tol]
    assert _rule(rule, errors, [0, 1], [0, 0], tol=tol) == 1


# ------------------------------------------------- the nested estimate
NESTED_ALPHAS = np.logspace(-1, 3, 9)


def _nested_data(seed, n=48, d=8):
    # A spread spectrum, the signal in its large directions, much noise:
    # students win on some outer folds and not on others, so the inner
    # choices differ between folds and depend on which folds they see.
    rng = np.random.default_rng(seed)
    s = np.logspace(1, -1.5, d)
    X = rng.normal(size=(n, d)) * s
    y = X @ (s * rng.normal(size=d) / 3) + rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("rule", ["honest", "stepwise", "one_se", "raw"])
@pytest.mark.parametrize("seed", range(4))
def test_honest_score_equals_an_explicit_nested_loop(rule, seed):
    # Kills: the leave-two-out subsets off by one (m[[i, j]]), the inner
    # cross-fit leaving one fold out instead of two (fold j leaks into the
    # inner choice), and the nested estimate scoring a fit that saw fold j.
    # Free filters only: the shrinking constraint of the inner search would
    # see one training spectrum fewer than honest_score_'s (all folds').
    X, y = _nested_data(seed)
    rng = np.random.default_rng(seed + 100)
    w = rng.uniform(0.5, 2.0, size=X.shape[0])
    folds = list(KFold(4, shuffle=True, random_state=seed).split(X))

    def make(splits):
        return SelfDistillCV(
            alphas=NESTED_ALPHAS,
            n_steps=(0, 1, 2),
            cv=splits,
            selection=rule,
            filter_constraint="none",
            refit=False,
        )

    search = _fit(make(folds), X, y, sample_weight=w)
    expected, _ = nested_score_oracle(
        lambda s: _fit_later(make(s)), X, y, folds, rule, w=w
    )
    # Every xi_bar solves a constrained least squares whose reduced,
    # column-normalised matrix has condition < 200 here (alpha >= 0.1), and
    # each Ridge chain's conditioning is below 1e5 (eigenvalues 0.03 to 6e3):
    # both computations agree to about 1e-11 relative, and 1e-8 is still
    # far below what a mutant changes (a different inner choice or xi_bar).
    assert search.honest_score_ == pytest.approx(expected, rel=1e-8)


class _fit_later:
    """A search whose fit ignores warnings (the oracle calls ``fit``)."""

    def __init__(self, search):
        self.search = search

    def fit(self, *args, **kwargs):
        return _fit(self.search, *args, **kwargs)


# ------------------------------------------- shrinking programmes, rank 3
@pytest.mark.parametrize("family", ["shrink", "nonnegative"])
@pytest.mark.parametrize("seed", range(2))
def test_three_step_shrinking_filters_are_the_exact_constrained_optimum(seed, family):
    # Kills: shrinking programmes of rank above two skipping the NNLS
    # fallback (left at ridge). Three steps: four coefficients, three free
    # after sum(xi_bar) = 1, so every infeasible free solution goes to NNLS.
    # The oracle enumerates the active sets of the exact QP (shrink_qp) on
    # the eigenvalues of every training fold (a numpy SVD of each; 9 values,
    # all of which filter_powers keeps).
    rng = np.random.default_rng(seed)
    n, d = 45, 3
    X = rng.normal(size=(n, d)) * np.array([4.0, 1.0, 0.25])
    # Signal in the small directions pushes free filters above 1; in the
    # large one, below 0 in the small ones: either way some constraints bind.
    coef = [0.2, 1.0, 3.0] if family == "shrink" else [3.0, 1.0, 0.2]
    y = X @ np.array(coef) + 0.5 * rng.normal(size=n)
    folds = list(KFold(3, shuffle=True, random_state=seed).split(X))
    alphas = np.logspace(-0.5, 2, 6)
    search = _fit(
        SelfDistillCV(
            alphas=alphas,
            n_steps=(0, 3),
            cv=folds,
            filter_constraint=family,
            selection="honest",
            refit=False,
        ),
        X,
        y,
    )
    res = search.cv_results_
    lams = fold_eigenvalues(X, folds)
    assert lams.size == 9 and lams.min() > 0
    n_active = 0
    upper = 1.0 if family == "shrink" else np.inf
    for c, p in enumerate(res["params"]):
        if p["n_steps"] != 3:
            continue
        assert res["filter_family"][c] == family
        M, v = _stacked(fold_problem(X, y, folds, p["alpha"], 3))
        h = lams / (lams + p["alpha"])
        x, best, active = shrink_qp(M, v, h, upper=upper)
        n_active += active > 0
        got = -3 * res["mean_test_score"][c]  # the sum of the folds' MSEs
        xi_bar = np.asarray(res["xi_bar"][c], dtype=float)
        phi, slack = filter_values(xi_bar, h)
        assert phi.min() >= -slack.max() - 1e-10 and phi.max() <= upper + 1e-10
        # Reduced, column-normalised M of condition < 1e4 here (checked
        # below), far from the 1e-8 truncation: the two optima agree to
        # round-off in the objective (1e-9 relative) and, the objective
        # being strictly convex, to 1e-4 in xi_bar (sqrt of the objective's
        # tolerance over its smallest curvature, generously).
        B = M[:, 1:] - M[:, :1]
        assert np.linalg.cond(B / np.linalg.norm(B, axis=0)) < 1e4
        assert got == pytest.approx(best, rel=1e-9)
        np.testing.assert_allclose(xi_bar, x, rtol=0, atol=1e-4 * (1 + np.abs(x).max()))
    # Some programmes have active constraints: the check exercises them.
    assert n_active >= 2


# ------------------------------------------------------------- refits
def test_leave_one_out_student_is_refitted_at_alpha_times_n_over_n_minus_1():
    # Kills: the leave-one-out training size taken as n instead of n - 1
    # (refit scale 1). A student validated by leave-one-out was trained on
    # n - 1 rows (weight W - W / n on average, whatever the weights).
    X, y = _data(n=30, d=4, seed=3)
    w = np.random.default_rng(3).uniform(0.5, 2.0, size=30)
    alphas = np.logspace(-1, 2, 7)
    search = _fit(
        SelfDistillCV(alphas=alphas, n_steps=2, cv=None, selection="raw"),
        X,
        y,
        sample_weight=w,
    )
    assert search.n_steps_ >= 1  # a student, which the rescaling concerns
    assert search.alpha_refit_scale_ == pytest.approx(30 / 29, rel=1e-12)
    assert search.alpha_ == pytest.approx(search.cv_alpha_ * 30 / 29, rel=1e-12)
    direct = RepeatedSelfDistillationRegressor(
        alpha=search.cv_alpha_ * 30 / 29, n_steps=search.n_steps_, xi=search.xi_
    ).fit(X, y, sample_weight=w)
    # Ridge chains of condition < 1e4 (alpha >= 0.1, eigenvalues below 1e3).
    np.testing.assert_allclose(search.predict(X), direct.predict(X), rtol=1e-8)


def _three_targets(n=90, d=4, seed=11):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.array([2.0, 1.0, 0.5, 0.3])
    Y = np.column_stack(
        [
            X @ np.array([1.0, 0.0, 0.0, 2.0]) + 0.3 * rng.normal(size=n),
            np.sin(2 * X[:, 0]) + 0.5 * rng.normal(size=n),
            X @ np.array([0.0, -1.0, 3.0, 0.0]) + 1.0 * rng.normal(size=n),
        ]
    )
    return X, Y


def _chunks(X, Y, cuts):
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        yield X[a:b], Y[a:b]


@pytest.mark.parametrize("source", ["memory", "kernel", "loo", "chunks", "dask"])
def test_every_per_target_refit_fits_each_targets_own_labels(source):
    # Kills: the per-target refit (refit_one in _cv.py, the streamed refit)
    # fitting target 0's labels for every target. Oracle: each target's
    # column of best_estimator_'s predictions against a fit of that target
    # alone with the parameters chosen for it.
    X, Y = _three_targets()
    kw = dict(
        alphas=np.logspace(-1, 2, 6),
        n_steps=(0, 1, 2),
        alpha_per_target=True,
        selection="raw",  # students for most targets: xi matters
    )
    if source == "kernel":
        kernel = KernelSelfDistillationRegressor(kernel="rbf", gamma=0.2)
        search = _fit(SelfDistillCV(kernel, cv=3, **kw), X, Y)
    elif source == "loo":
        search = _fit(SelfDistillCV(cv=None, **kw), X, Y)
    elif source == "chunks":
        search = _fit(SelfDistillCV(cv=3, **kw), _chunks(X, Y, [0, 40, 41, 90]))
    elif source == "dask":
        da = pytest.importorskip("dask.array")
        data = (da.from_array(X, chunks=40), da.from_array(Y, chunks=40))
        search = _fit(SelfDistillCV(cv=3, **kw), *data)
    else:
        search = _fit(SelfDistillCV(cv=3, **kw), X, Y)
    pred = np.asarray(search.predict(X))
    assert pred.shape == Y.shape
    for t in range(3):
        k = int(search.n_steps_[t])
        params = dict(alpha=float(search.alpha_[t]), n_steps=k, xi=search.xi_[t, :k])
        if source == "kernel":
            alone = KernelSelfDistillationRegressor(kernel="rbf", gamma=0.2, **params)
        else:
            alone = RepeatedSelfDistillationRegressor(**params)
        ref = alone.fit(X, Y[:, t]).predict(X)
        # alpha >= 0.1 against eigenvalues below 1e3 (and a kernel's below
        # n): chains of condition < 1e4, k <= 2 steps.
        np.testing.assert_allclose(
            pred[:, t], ref, rtol=0, atol=1e-8 * np.abs(Y[:, t]).max()
        )
    # The targets' labels differ enough for a wrong column to show.
    assert np.abs(Y[:, 1] - Y[:, 0]).max() > 1
