"""Tests of RepeatedSelfDistillationRegressor against independent computations.

The reference for every numerical property is something the closed form does
not use: a loop of scikit-learn ``Ridge`` fits on mixed labels, ``Ridge``
itself, a dense SVD / pseudo-inverse from numpy, or a fit on repeated rows.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import Ridge
from sklearn.utils._param_validation import InvalidParameterError

from skdistill import RepeatedSelfDistillationRegressor, xi_bar_to_xi, xi_to_xi_bar
from skdistill._filter import inverse_filter_path
from skdistill._spectral import decompose

EIGEN_SOLVERS = ["auto", "svd", "gram", "dual"]
SOLVERS = EIGEN_SOLVERS + ["cholesky"]  # "cholesky" needs every alpha > 0
# solver="svd" rejects sparse X (test_bad_input_raises_in_fit checks that), so
# it is left out of the sparse combinations rather than skipped.
SOLVER_AND_SPARSE = [
    (solver, sparse_input)
    for solver in SOLVERS
    for sparse_input in (False, True)
    if not (solver == "svd" and sparse_input)
]

# ---------------------------------------------------------------------------
# Helpers and independent references
# ---------------------------------------------------------------------------


def assert_normwise_close(actual, desired, rtol):
    """``||actual - desired|| <= rtol * ||desired||`` (Frobenius norms)."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape
    err = np.linalg.norm(actual - desired)
    ref = np.linalg.norm(desired)
    assert err <= rtol * ref, f"relative error {err / ref:.3e} > {rtol:.1e}"


def make_problem(seed, n, d, n_targets=None, weighted=False, spread=0.0):
    """Gaussian design with column offsets and scales, noisy linear targets.

    ``spread`` widens the column scales to ``10**-spread .. 1`` (an
    ill-conditioned design, condition number about ``10**spread``).
    ``weighted="zeros"`` gives about a quarter of the rows zero weight.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d)
    X *= 10.0 ** -rng.uniform(0.0, spread, size=d)
    X += rng.normal(scale=3.0, size=d)
    shape = (d,) if n_targets is None else (d, n_targets)
    w_true = rng.normal(size=shape)
    y = X @ w_true + rng.normal(scale=0.5, size=(n,) + shape[1:]) + 5.0
    sample_weight = rng.uniform(0.1, 3.0, size=n) if weighted else None
    if weighted == "zeros":
        sample_weight[rng.uniform(size=n) < 0.25] = 0.0
        sample_weight[:2] = 1.0  # at least two rows count
    return X, y, sample_weight


def naive_path(X, y, alphas, xis, fit_intercept=True, sample_weight=None):
    """Teacher and students fitted one after another with sklearn's Ridge.

    Returned in Ridge's own layout, stacked over the steps: ``coef`` (k+1, d)
    or (k+1, t, d) (Ridge ravels a one-column y's coefficients) and
    ``intercept`` (k+1,), (k+1, 1) or (k+1, t).
    """
    coefs, intercepts = [], []
    labels = y
    for i, alpha in enumerate(alphas):
        ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept)
        ridge.fit(X, labels, sample_weight=sample_weight)
        coefs.append(ridge.coef_)
        intercept = np.asarray(ridge.intercept_)
        if intercept.ndim == 0 and ridge.coef_.ndim == 2:
            intercept = np.broadcast_to(intercept, ridge.coef_.shape[:1])
        intercepts.append(intercept)
        if i < len(xis):
            pred = ridge.predict(X).reshape(y.shape)
            labels = xis[i] * pred + (1.0 - xis[i]) * y
    return np.array(coefs), np.array(intercepts)


def chain_rtol(X, alphas, xis, sample_weight=None, fit_intercept=True):
    """Relative tolerance of a k-step chain from the problem's conditioning.

    Each ridge solve has a relative error of about ``eps * cond`` with
    ``cond = (s_max**2 + alpha) / (s_min**2 + alpha)`` (the Gram solvers
    square the condition number of X, which this already is), and the chain
    combines the pure distillates with weights ``xi_bar`` that amplify it by
    ``sum |xi_bar|``; 1e3 covers the dimension-dependent constants.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight)
    Xc = X - np.average(X, axis=0, weights=w) if fit_intercept else X
    s = np.linalg.svd(Xc * np.sqrt(w)[:, None], compute_uv=False)
    lam_max = s[0] ** 2
    # Directions beyond rank n (d > n) have lam = 0: their factor is 1 / alpha.
    lam_min = s[-1] ** 2 if s.size == X.shape[1] else 0.0
    alpha = min(alphas)
    cond = (lam_max + alpha) / (lam_min + alpha)
    amplification = max(
        np.abs(xi_to_xi_bar(xis[:i])).sum() for i in range(len(xis) + 1)
    )
    return 1e3 * np.finfo(np.float64).eps * cond * amplification


def path_predictions(X, coef_path, intercept_path):
    return np.array(
        [X @ c.T + b for c, b in zip(coef_path, intercept_path, strict=True)]
    )


shapes = st.sampled_from([(30, 5), (40, 12), (12, 30), (8, 40), (25, 25)])
weightings = st.sampled_from([False, True, "zeros"])
spreads = st.sampled_from([0.0, 2.0, 3.0])  # condition numbers 1 to ~1e3
xi_values = st.floats(-3.0, 3.0, allow_nan=False)
alpha_values = st.floats(0.1, 10.0)


@st.composite
def distillation_settings(draw, max_steps=6):
    n_steps = draw(st.integers(0, max_steps))
    if draw(st.booleans()):
        xi = draw(xi_values)
        xis = [xi] * n_steps
    else:
        xi = xis = draw(st.lists(xi_values, min_size=n_steps, max_size=n_steps))
    if draw(st.booleans()):
        alpha = draw(alpha_values)
        alphas = [alpha] * (n_steps + 1)
    else:
        alpha = alphas = draw(
            st.lists(alpha_values, min_size=n_steps + 1, max_size=n_steps + 1)
        )
    return dict(alpha=alpha, n_steps=n_steps, xi=xi), alphas, xis


# ---------------------------------------------------------------------------
# Closed form against a loop of Ridge fits
# ---------------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32 - 1),
    shape=shapes,
    n_targets=st.sampled_from([None, 1, 3]),
    fit_intercept=st.booleans(),
    weighted=weightings,
    spread=spreads,
    solver=st.sampled_from(SOLVERS),
    setting=distillation_settings(),
)
def test_closed_form_equals_ridge_loop(
    seed, shape, n_targets, fit_intercept, weighted, spread, solver, setting
):
    params, alphas, xis = setting
    X, y, sw = make_problem(
        seed, *shape, n_targets=n_targets, weighted=weighted, spread=spread
    )
    reg = RepeatedSelfDistillationRegressor(
        **params, fit_intercept=fit_intercept, solver=solver
    ).fit(X, y, sample_weight=sw)
    coefs, intercepts = naive_path(X, y, alphas, xis, fit_intercept, sw)
    rtol = chain_rtol(X, alphas, xis, sw, fit_intercept)

    assert reg.coef_path_.shape == coefs.shape
    assert reg.intercept_path_.shape == intercepts.shape
    for i in range(len(alphas)):
        assert_normwise_close(reg.coef_path_[i], coefs[i], rtol)
    assert_normwise_close(
        path_predictions(X, reg.coef_path_, reg.intercept_path_),
        path_predictions(X, coefs, intercepts),
        rtol,
    )
    assert_normwise_close(reg.predict(X), X @ coefs[-1].T + intercepts[-1], rtol)


@given(
    seed=st.integers(0, 2**32 - 1),
    shape=shapes,
    n_targets=st.sampled_from([None, 2]),
    fit_intercept=st.booleans(),
    weighted=weightings,
    spread=spreads,
    solver=st.sampled_from(["auto", "gram", "dual", "cholesky"]),
    fmt=st.sampled_from(["csr", "csc", "coo"]),
    setting=distillation_settings(),
)
def test_sparse_closed_form_equals_ridge_loop_on_dense_copy(
    seed, shape, n_targets, fit_intercept, weighted, spread, solver, fmt, setting
):
    # Ridge on sparse X uses iterative solvers (tol 1e-4), so the reference is
    # the loop on the dense copy; the estimator itself sees the sparse matrix.
    params, alphas, xis = setting
    X, y, sw = make_problem(
        seed, *shape, n_targets=n_targets, weighted=weighted, spread=spread
    )
    rng = np.random.default_rng(seed)
    X[rng.uniform(size=X.shape) < 0.6] = 0.0
    X_sparse = sp.csr_matrix(X).asformat(fmt)
    reg = RepeatedSelfDistillationRegressor(
        **params, fit_intercept=fit_intercept, solver=solver
    ).fit(X_sparse, y, sample_weight=sw)
    coefs, intercepts = naive_path(X, y, alphas, xis, fit_intercept, sw)
    rtol = chain_rtol(X, alphas, xis, sw, fit_intercept)
    for i in range(len(alphas)):
        assert_normwise_close(reg.coef_path_[i], coefs[i], rtol)
    assert_normwise_close(reg.predict(X_sparse), X @ coefs[-1].T + intercepts[-1], rtol)


@pytest.mark.parametrize("n_steps", [0, 1, 3])
@pytest.mark.parametrize(
    "solver, sparse_format",
    [(s, f) for s in SOLVERS for f in (None, "csr", "csc") if not (s == "svd" and f)],
)
def test_no_distillation_is_ridge(n_steps, solver, sparse_format):
    """``n_steps=0`` and ``xi=0`` (students ignore the teacher) are Ridge."""
    X, y, sw = make_problem(0, 40, 8, weighted=True)
    X[np.random.default_rng(1).uniform(size=X.shape) < 0.5] = 0.0
    ridge = Ridge(alpha=2.5).fit(X, y, sample_weight=sw)
    X_fit = X if sparse_format is None else sp.csr_matrix(X).asformat(sparse_format)
    reg = RepeatedSelfDistillationRegressor(
        alpha=2.5, n_steps=n_steps, xi=0.0, solver=solver
    ).fit(X_fit, y, sample_weight=sw)
    for coef, intercept in zip(reg.coef_path_, reg.intercept_path_, strict=True):
        assert_allclose(coef, ridge.coef_, rtol=1e-9)
        assert_allclose(intercept, ridge.intercept_, rtol=1e-9)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_teacher_matches_sparse_ridge(fmt):
    """Against Ridge run on the sparse matrix itself, with a tight CG tolerance."""
    X, y, _ = make_problem(3, 60, 10)
    X[np.random.default_rng(3).uniform(size=X.shape) < 0.7] = 0.0
    X_sparse = sp.csr_matrix(X).asformat(fmt)
    ridge = Ridge(alpha=1.0, solver="sparse_cg", tol=1e-14, max_iter=10_000)
    ridge.fit(X_sparse, y)
    reg = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=0).fit(X_sparse, y)
    assert_allclose(reg.coef_, ridge.coef_, rtol=1e-8)
    assert_allclose(reg.intercept_, ridge.intercept_, rtol=1e-8)


# ---------------------------------------------------------------------------
# Solvers, the filter, staged predictions
# ---------------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32 - 1),
    shape=shapes,
    weighted=weightings,
    spread=spreads,
    setting=distillation_settings(),
)
def test_all_solvers_agree(seed, shape, weighted, spread, setting):
    params, alphas, xis = setting
    X, y, sw = make_problem(seed, *shape, n_targets=2, weighted=weighted, spread=spread)
    rtol = chain_rtol(X, alphas, xis, sw)
    fits = {
        solver: RepeatedSelfDistillationRegressor(**params, solver=solver).fit(
            X, y, sample_weight=sw
        )
        for solver in SOLVERS
    }
    ref = fits["svd"]
    assert not hasattr(fits["cholesky"], "singular_values_")
    for solver in ["auto", "gram", "dual", "cholesky"]:
        if solver != "cholesky":
            assert fits[solver].singular_values_.shape == (min(shape),)
            # Eigenvalues of a Gram matrix carry an absolute error of order
            # eps * max(n, d) * s_max**2, so zero singular values come out as
            # about sqrt(eps * max(n, d)) * s_max.
            assert_allclose(
                fits[solver].singular_values_,
                ref.singular_values_,
                atol=np.sqrt(np.finfo(float).eps * max(shape))
                * ref.singular_values_[0],
            )
        for i in range(params["n_steps"] + 1):
            assert_normwise_close(fits[solver].coef_path_[i], ref.coef_path_[i], rtol)
        assert_normwise_close(fits[solver].predict(X), ref.predict(X), rtol)
    for solver in ["gram", "dual", "cholesky"]:
        reg = RepeatedSelfDistillationRegressor(**params, solver=solver)
        reg.fit(sp.csr_matrix(X), y, sample_weight=sw)
        assert_normwise_close(reg.coef_, ref.coef_, rtol)


@given(
    seed=st.integers(0, 2**32 - 1),
    shape=shapes,
    xi=st.lists(xi_values.filter(lambda v: abs(v) > 0.05), min_size=1, max_size=5),
    alpha=alpha_values,
)
def test_xi_bar_is_the_spectral_filter(seed, shape, xi, alpha):
    """coef_ = V diag(h p(h) / s) U^T y with p the polynomial of ``xi_bar_``."""
    X, y, _ = make_problem(seed, *shape)
    reg = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=len(xi), xi=xi, solver="svd"
    ).fit(X, y)
    assert_allclose(reg.xi_bar_.sum(), 1.0, rtol=1e-12)
    assert_allclose(xi_bar_to_xi(reg.xi_bar_), xi, rtol=1e-9)

    Xc, yc = X - X.mean(axis=0), y - y.mean()
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    h = s**2 / (s**2 + alpha)
    p = np.polynomial.polynomial.polyval(h, reg.xi_bar_)
    coef = Vt.T @ (h * p / s * (U.T @ yc))
    assert_normwise_close(reg.coef_, coef, rtol=1e-8)
    assert_allclose(reg.singular_values_, s, rtol=1e-10, atol=1e-10 * s[0])


@given(
    seed=st.integers(0, 2**32 - 1),
    shape=shapes,
    n_targets=st.sampled_from([None, 2]),
    setting=distillation_settings(),
)
def test_staged_predict(seed, shape, n_targets, setting):
    """Step i of staged_predict is the fit with i students; the last is predict."""
    params, alphas, xis = setting
    X, y, _ = make_problem(seed, *shape, n_targets=n_targets)
    X_test = make_problem(seed + 1, 7, shape[1])[0]
    reg = RepeatedSelfDistillationRegressor(**params).fit(X, y)
    staged = list(reg.staged_predict(X_test))
    assert len(staged) == params["n_steps"] + 1
    assert_array_equal(staged[-1], reg.predict(X_test))
    for i, pred in enumerate(staged):
        shorter = RepeatedSelfDistillationRegressor(
            alpha=alphas[: i + 1], n_steps=i, xi=xis[:i]
        ).fit(X, y)
        assert pred.shape == shorter.predict(X_test).shape
        assert_allclose(pred, shorter.predict(X_test), rtol=1e-10, atol=1e-10)


@given(
    seed=st.integers(0, 2**32 - 1),
    shape=shapes,
    xi=st.floats(0.0, 0.9),
    alpha=alpha_values,
)
def test_constant_xi_converges_to_reregularised_ridge(seed, shape, xi, alpha):
    """A constant-xi chain run to convergence is Ridge(alpha / (1 - xi)).

    Per direction, ``g_i = h (xi g_{i-1} + 1 - xi)`` with ``h = lam / (lam +
    alpha)``. Its fixed point ``g = h (1 - xi) / (1 - xi h)`` equals
    ``lam (1 - xi) / (lam (1 - xi) + alpha) = lam / (lam + alpha / (1 - xi))``,
    the ridge filter with penalty ``alpha / (1 - xi)``, and
    ``g_i - g = (xi h) (g_{i-1} - g)`` contracts since ``0 <= xi h < 1``.
    With ``xi <= 0.9`` and 300 steps the remaining error is below 0.9**300.
    """
    X, y, _ = make_problem(seed, *shape)
    reg = RepeatedSelfDistillationRegressor(alpha=alpha, n_steps=300, xi=xi)
    reg.fit(X, y)
    ridge = Ridge(alpha=alpha / (1.0 - xi)).fit(X, y)
    assert_normwise_close(reg.coef_, ridge.coef_, rtol=1e-8)
    assert_allclose(reg.predict(X), ridge.predict(X), rtol=1e-8)


def test_many_steps_stay_finite_and_correct():
    X, y, _ = make_problem(5, 30, 10)
    rng = np.random.default_rng(5)
    for xi in [1.0, rng.uniform(-1.0, 1.0, size=50)]:
        reg = RepeatedSelfDistillationRegressor(alpha=3.0, n_steps=50, xi=xi)
        reg.fit(X, y)
        assert np.all(np.isfinite(reg.coef_path_))
        assert np.all(np.isfinite(reg.xi_bar_))
        coefs, intercepts = naive_path(X, y, [3.0] * 51, np.broadcast_to(xi, 50))
        for i in range(51):
            assert_normwise_close(reg.coef_path_[i], coefs[i], rtol=1e-8)
        assert_allclose(reg.intercept_path_, intercepts, rtol=1e-8)
    # Pure distillation (xi = 1) multiplies the filter by h at every step, so
    # the 51st filter is h**51: the coefficients must have shrunk.
    reg = RepeatedSelfDistillationRegressor(alpha=3.0, n_steps=50, xi=1.0).fit(X, y)
    assert np.linalg.norm(reg.coef_) < np.linalg.norm(reg.coef_path_[0])


# ---------------------------------------------------------------------------
# sample_weight, dtypes, pandas, rank deficiency
# ---------------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32 - 1),
    shape=shapes,
    solver_and_sparse=st.sampled_from(SOLVER_AND_SPARSE),
    setting=distillation_settings(),
)
def test_integer_sample_weight_equals_repeated_rows(
    seed, shape, solver_and_sparse, setting
):
    solver, sparse_input = solver_and_sparse
    params, _, _ = setting
    X, y, _ = make_problem(seed, *shape)
    rng = np.random.default_rng(seed)
    sw = rng.integers(0, 4, size=shape[0])
    sw[0] = 1  # at least one positive weight
    X_rep, y_rep = np.repeat(X, sw, axis=0), np.repeat(y, sw)
    to_input = sp.csr_matrix if sparse_input else np.asarray
    weighted = RepeatedSelfDistillationRegressor(**params, solver=solver)
    weighted.fit(to_input(X), y, sample_weight=sw)
    repeated = RepeatedSelfDistillationRegressor(**params, solver=solver)
    repeated.fit(to_input(X_rep), y_rep)
    for i in range(params["n_steps"] + 1):
        assert_normwise_close(weighted.coef_path_[i], repeated.coef_path_[i], 1e-8)
    assert_normwise_close(weighted.predict(X), repeated.predict(X), 1e-8)


@pytest.mark.parametrize("solver, sparse_input", SOLVER_AND_SPARSE)
@pytest.mark.parametrize("n_targets", [None, 2])
def test_float32_is_preserved(solver, sparse_input, n_targets):
    X, y, _ = make_problem(0, 50, 6, n_targets=n_targets)
    X32 = X.astype(np.float32)
    X_fit = sp.csr_matrix(X32) if sparse_input else X32
    params = dict(alpha=1.0, n_steps=2, xi=[0.5, 1.5], solver=solver)
    reg32 = RepeatedSelfDistillationRegressor(**params).fit(X_fit, y.astype(np.float32))
    reg64 = RepeatedSelfDistillationRegressor(**params).fit(X32.astype(np.float64), y)
    ridge32 = Ridge(alpha=1.0).fit(X32, y.astype(np.float32))
    assert ridge32.coef_.dtype == np.float32  # the behaviour we mirror
    assert reg32.coef_.dtype == np.float32
    assert reg32.coef_path_.dtype == np.float32
    assert np.asarray(reg32.intercept_).dtype == np.float32
    assert reg32.predict(X_fit).dtype == np.float32
    # float32 arithmetic (eps 1.2e-7) on a problem with condition number ~1e2.
    assert_normwise_close(reg32.coef_, reg64.coef_, rtol=1e-4)


def test_pandas_input_and_feature_names():
    X, y, sw = make_problem(2, 40, 4, weighted=True)
    columns = ["a", "b", "c", "d"]
    X_df = pd.DataFrame(X, columns=columns)
    y_sr = pd.Series(y, name="target")
    reg = RepeatedSelfDistillationRegressor(n_steps=2, xi=[0.3, 1.2])
    reg.fit(X_df, y_sr, sample_weight=pd.Series(sw))
    assert_array_equal(reg.feature_names_in_, columns)
    assert reg.n_features_in_ == 4
    ref = RepeatedSelfDistillationRegressor(n_steps=2, xi=[0.3, 1.2])
    ref.fit(X, y, sample_weight=sw)
    assert not hasattr(ref, "feature_names_in_")
    assert_allclose(reg.coef_, ref.coef_, rtol=1e-12)
    assert_allclose(reg.predict(X_df), ref.predict(X), rtol=1e-12)

    y_df = pd.DataFrame({"u": y, "v": -2.0 * y})
    multi = RepeatedSelfDistillationRegressor(n_steps=2, xi=[0.3, 1.2]).fit(X_df, y_df)
    assert multi.coef_.shape == (2, 4)
    single = RepeatedSelfDistillationRegressor(n_steps=2, xi=[0.3, 1.2]).fit(X, y)
    assert_allclose(multi.coef_[0], single.coef_, rtol=1e-10)
    assert_allclose(multi.coef_[1], -2.0 * single.coef_, rtol=1e-10)
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(X_df[columns[::-1]])


def test_multi_output_equals_separate_fits():
    X, Y, sw = make_problem(4, 30, 6, n_targets=3, weighted=True)
    reg = RepeatedSelfDistillationRegressor(n_steps=2, xi=[1.5, -0.5]).fit(
        X, Y, sample_weight=sw
    )
    assert reg.coef_.shape == (3, 6)
    assert reg.intercept_.shape == (3,)
    assert reg.coef_path_.shape == (3, 3, 6)
    for j in range(3):
        single = RepeatedSelfDistillationRegressor(n_steps=2, xi=[1.5, -0.5])
        single.fit(X, Y[:, j], sample_weight=sw)
        assert_allclose(reg.coef_path_[:, j], single.coef_path_, rtol=1e-10)
        assert_allclose(reg.intercept_path_[:, j], single.intercept_path_, rtol=1e-10)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("solver", SOLVERS)
def test_column_vector_y_has_the_shapes_of_ridge(fit_intercept, solver):
    """y of shape (n, 1): every shape and value as the installed Ridge's.

    (scikit-learn's Ridge ravels ``coef_`` to (n_features,), keeps
    ``intercept_`` of shape (1,), or the float 0.0 without an intercept, and
    predicts an array of shape (n_samples,).)
    """
    X, Y, sw = make_problem(4, 30, 6, n_targets=1, weighted=True)
    ridge = Ridge(alpha=1.5, fit_intercept=fit_intercept).fit(X, Y, sample_weight=sw)
    reg = RepeatedSelfDistillationRegressor(
        alpha=1.5, n_steps=2, xi=0.0, fit_intercept=fit_intercept, solver=solver
    ).fit(X, Y, sample_weight=sw)
    assert reg.coef_.shape == ridge.coef_.shape
    assert np.shape(reg.intercept_) == np.shape(ridge.intercept_)
    assert type(reg.intercept_) is type(ridge.intercept_)
    assert reg.predict(X).shape == ridge.predict(X).shape
    assert [p.shape for p in reg.staged_predict(X)] == [ridge.predict(X).shape] * 3
    assert reg.coef_path_.shape == (3,) + ridge.coef_.shape
    # xi = 0: every step is the teacher; a well-conditioned ridge problem.
    assert_allclose(reg.predict(X), ridge.predict(X), rtol=1e-10)
    assert_allclose(reg.coef_, ridge.coef_, rtol=1e-10)


def make_rank_deficient(seed, n, d, rank):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) + rng.normal(size=d)
    y = rng.normal(size=n) + 2.0
    return X, y


@pytest.mark.parametrize("shape", [(40, 10), (10, 40), (20, 20)])
@pytest.mark.parametrize(
    "solver, sparse_input", [p for p in SOLVER_AND_SPARSE if p[0] != "cholesky"]
)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_rank_deficient_alpha_zero_is_minimum_norm(
    shape, solver, sparse_input, fit_intercept
):
    """With alpha = 0 every step is the minimum-norm least-squares solution.

    (The filter is ``h = 1`` on the range of X whatever ``xi`` is, and null
    directions must contribute nothing.) Reference: ``np.linalg.pinv``.
    """
    X, y = make_rank_deficient(7, *shape, rank=4)
    if fit_intercept:
        Xc, yc = X - X.mean(axis=0), y - y.mean()
    else:
        Xc, yc = X, y
    coef_min_norm = np.linalg.pinv(Xc) @ yc
    lstsq = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    assert_allclose(coef_min_norm, lstsq, rtol=1e-8, atol=1e-12)
    X_fit = sp.csr_matrix(X) if sparse_input else X
    reg = RepeatedSelfDistillationRegressor(
        alpha=0.0, n_steps=2, xi=[0.7, 2.5], solver=solver, fit_intercept=fit_intercept
    ).fit(X_fit, y)
    for coef in reg.coef_path_:
        assert_normwise_close(coef, coef_min_norm, rtol=1e-8)
    # Rank 4 (plus 1 without centring): the rest are zero singular values.
    n_nonzero = np.sum(reg.singular_values_ > 1e-6 * reg.singular_values_[0])
    assert n_nonzero == (4 if fit_intercept else 5)


def _min_norm_lstsq(X, y, fit_intercept=True):
    """Minimum-norm least squares from numpy, and its numerical rank's cond."""
    Xc, yc = (X - X.mean(axis=0), y - y.mean()) if fit_intercept else (X, y)
    coef, _, rank, s = np.linalg.lstsq(Xc, yc, rcond=None)
    intercept = y.mean() - X.mean(axis=0) @ coef if fit_intercept else 0.0
    return coef, intercept, s[0] / s[rank - 1]


@pytest.mark.parametrize("shape", [(40, 10), (10, 40), (20, 20)])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("alpha", [1e-16, 1e-13, 1e-300])
def test_tiny_alpha_on_rank_deficient_x_is_minimum_norm(shape, solver, alpha):
    """Ridge tends to minimum-norm least squares as alpha -> 0, for every solver.

    Below the rounding error of the decomposition (about ``eps * max(n, d)``
    times the largest eigenvalue for X^T X or X X^T) an eigenvalue of a
    numerically null direction is noise; dividing it by ``lam + alpha`` gave
    coefficients of order 10 (against 0.02) and prediction errors of 6 with
    "dual". Reference: ``np.linalg.lstsq`` (cut-off ``eps * max(n, d)``).
    """
    X, y = make_rank_deficient(7, *shape, rank=4)
    coef, intercept, cond = _min_norm_lstsq(X, y)
    reg = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=2, xi=[0.7, 2.5], solver=solver
    )
    if solver == "cholesky":
        with pytest.warns(UserWarning, match="singular to working precision") as rec:
            reg.fit(X, y)
        # The warning points at the caller, not at scikit-learn's wrapper.
        assert rec[0].filename == __file__
        assert reg.solver_ == ("gram" if shape[0] >= shape[1] else "dual")
    else:
        reg.fit(X, y)
    # Coefficients of the Gram solvers carry an error of eps * cond**2 (the
    # Gram matrix squares the condition number of the numerical range); the
    # ridge bias alpha / s_min**2 is far below that.
    rtol = 1e3 * np.finfo(float).eps * cond**2
    for step in range(3):
        assert_normwise_close(reg.coef_path_[step], coef, rtol)
    assert_normwise_close(reg.predict(X), X @ coef + intercept, rtol)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", [(30, 5), (5, 30)])
def test_fit_is_invariant_to_scaling_x_with_alpha(solver, shape):
    """fit(c X, alpha) predicts as fit(X, alpha / c**2): X * 1e50 was off by 2e84.

    With ``c = 1e50`` and ``alpha = 1`` the effective penalty 1e-100 is far
    below the rounding error, so the reference is least squares (numpy).
    """
    X, y, _ = make_problem(11, *shape)
    coef, intercept, cond = _min_norm_lstsq(X, y)
    reg = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=1, solver=solver)
    with warnings.catch_warnings():
        # solver="cholesky" may fall back (with a UserWarning): alpha = 1 is
        # below the rounding error of (X * 1e50)^T (X * 1e50).
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        reg.fit(X * 1e50, y)
    rtol = 1e3 * np.finfo(float).eps * cond**2
    assert_normwise_close(reg.predict(X * 1e50), X @ coef + intercept, rtol)
    assert_normwise_close(reg.coef_ * 1e50, coef, rtol)


def _mean_predictor(X, y):
    return np.zeros(X.shape[1]), y.mean()


def _ridge_unit(X, y):
    ridge = Ridge(alpha=1.0).fit(X, y)
    return ridge.coef_, ridge.intercept_


def _least_squares(X, y):
    return _min_norm_lstsq(X, y)[:2]


@pytest.mark.parametrize(
    "x_scale, y_scale, alpha, reference",
    [
        # Huge X: alpha is negligible, the fit is least squares.
        (1e300, 1.0, 1.0, _least_squares),
        (1e300, 1e300, 1.0, _least_squares),
        (1e200, 1e-100, 1.0, _least_squares),
        # Tiny X without penalty: least squares is scale invariant.
        (1e-300, 1.0, 0.0, _least_squares),
        (1e-150, 1e-150, 0.0, _least_squares),
        # Tiny X with alpha = 1: the penalty wins, the fit is the mean.
        (1e-300, 1.0, 1.0, _mean_predictor),
        # Extreme y alone: ridge is linear in y.
        (1.0, 1e300, 1.0, _ridge_unit),
        (1.0, 1e-300, 1.0, _ridge_unit),
        (1.0, 1e-300, 0.0, _least_squares),
    ],
)
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", [(30, 5), (5, 30)])
def test_extreme_magnitudes_fit_and_predict_correctly(
    x_scale, y_scale, alpha, reference, solver, shape
):
    """X or y near 1e300 or 1e-300: correct predictions, no overflow, no NaN.

    Before, X near 1e300 gave NaN predictions with RuntimeWarnings (or a raw
    LinAlgError / OverflowError), and alpha = 0 on X near 1e-300 predicted the
    mean. The reference is computed on the unscaled data (numpy's lstsq,
    Ridge, or the mean), where the problem is well conditioned.
    """
    if solver == "cholesky" and alpha == 0:
        pytest.skip("solver='cholesky' rejects alpha=0 (tested elsewhere)")
    X, y, _ = make_problem(12, *shape)
    coef, intercept = reference(X, y)
    cond = _min_norm_lstsq(X, y)[2]
    reg = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=2, xi=[0.0, 0.0], solver=solver
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a cholesky fallback
        warnings.simplefilter("error", RuntimeWarning)  # overflow, NaN
        reg.fit(X * x_scale, y * y_scale)
        pred = reg.predict(X * x_scale)
    rtol = 1e3 * np.finfo(float).eps * cond**2
    assert_normwise_close(pred / y_scale, X @ coef + intercept, rtol)
    if reference is not _mean_predictor:
        assert_normwise_close(reg.coef_ * (x_scale / y_scale), coef, rtol)
    else:
        # The exact coefficients X^T y / alpha are of order 1e-300.
        assert np.all(np.abs(reg.coef_) < 1e-290)


def test_float32_extreme_magnitudes():
    """float32 overflows already near 1e19 in X^T X: rescaled the same way."""
    X, y, _ = make_problem(13, 40, 5)
    coef, intercept, cond = _min_norm_lstsq(X, y)
    for solver in SOLVERS:
        reg = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=0, solver=solver)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", RuntimeWarning)
            reg.fit((X * 1e25).astype(np.float32), y.astype(np.float32))
        assert reg.coef_.dtype == np.float32
        pred = reg.predict((X * 1e25).astype(np.float32))
        rtol = 1e3 * np.finfo(np.float32).eps * cond**2
        assert_normwise_close(pred, X @ coef + intercept, rtol)


def test_coefficients_that_overflow_raise_a_clear_error():
    """Least squares on X ~ 1e-200 and y ~ 1e200 needs coefficients ~ 1e400."""
    X, y, _ = make_problem(14, 30, 5)
    reg = RepeatedSelfDistillationRegressor(alpha=0.0)
    with pytest.raises(ValueError, match="coefficients overflow"):
        reg.fit(X * 1e-200, y * 1e200)


def test_alpha_zero_full_rank_is_least_squares():
    X, y, _ = make_problem(8, 50, 5)
    reg = RepeatedSelfDistillationRegressor(alpha=0.0, n_steps=3, xi=1.7).fit(X, y)
    ols = Ridge(alpha=0.0).fit(X, y)
    assert_allclose(reg.coef_, ols.coef_, rtol=1e-9)
    assert_allclose(reg.intercept_, ols.intercept_, rtol=1e-9)


def test_per_step_alpha_with_a_zero_entry():
    """Only the teacher unpenalised: it is OLS, the students are ridge chains."""
    X, y, _ = make_problem(9, 40, 6)
    alphas, xis = [0.0, 2.0, 0.5], [0.8, 1.6]
    reg = RepeatedSelfDistillationRegressor(alpha=alphas, n_steps=2, xi=xis)
    reg.fit(X, y)
    coefs, _ = naive_path(X, y, alphas, xis)
    for i in range(3):
        assert_normwise_close(reg.coef_path_[i], coefs[i], rtol=1e-8)


# ---------------------------------------------------------------------------
# Bad input: clear errors raised in fit, never in __init__
# ---------------------------------------------------------------------------

X_OK, Y_OK, _ = make_problem(0, 20, 3)


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


@pytest.mark.parametrize(
    "params, X, y, fit_kwargs, error, match",
    [
        ({}, _with(X_OK, (3, 1), np.nan), Y_OK, {}, ValueError, "Input X contains NaN"),
        ({}, _with(X_OK, (0, 0), np.inf), Y_OK, {}, ValueError, "X contains infinity"),
        ({}, X_OK, _with(Y_OK, 5, np.nan), {}, ValueError, "Input y contains NaN"),
        ({}, X_OK, _with(Y_OK, 2, -np.inf), {}, ValueError, "y contains infinity"),
        (
            {"n_steps": 2, "xi": [0.5]},
            X_OK,
            Y_OK,
            {},
            ValueError,
            r"xi must be a float or an array of shape \(2,\), got an array of "
            r"shape \(1,\)",
        ),
        (
            {"n_steps": 1, "xi": [[0.5], [0.5]]},  # two rows, one target
            X_OK,
            Y_OK,
            {},
            ValueError,
            r"xi must be a float or an array of shape \(1,\)",
        ),
        ({"xi": [np.nan]}, X_OK, Y_OK, {}, ValueError, "xi must be finite"),
        ({"xi": ["a"]}, X_OK, Y_OK, {}, ValueError, "xi must be a float or an array"),
        (
            {"n_steps": 2, "alpha": [1.0, 1.0]},
            X_OK,
            Y_OK,
            {},
            ValueError,
            r"alpha must be a float or an array of shape \(3,\)",
        ),
        (
            {"alpha": -1.0},
            X_OK,
            Y_OK,
            {},
            InvalidParameterError,
            "The 'alpha' parameter",
        ),
        (
            {"n_steps": 1, "alpha": [1.0, -0.5]},
            X_OK,
            Y_OK,
            {},
            ValueError,
            "alpha must be non-negative",
        ),
        ({"alpha": [1.0, np.inf]}, X_OK, Y_OK, {}, ValueError, "alpha must be finite"),
        ({"n_steps": -1}, X_OK, Y_OK, {}, InvalidParameterError, "'n_steps' param"),
        ({"n_steps": 1.5}, X_OK, Y_OK, {}, InvalidParameterError, "'n_steps' param"),
        ({"n_steps": "2"}, X_OK, Y_OK, {}, InvalidParameterError, "'n_steps' param"),
        ({"solver": "qr"}, X_OK, Y_OK, {}, InvalidParameterError, "'solver' param"),
        (
            {},
            X_OK,
            Y_OK[:-1],
            {},
            ValueError,
            "X and y have inconsistent numbers of samples: X has 20 rows and y has 19",
        ),
        (
            {},
            X_OK,
            Y_OK,
            {"sample_weight": _with(np.ones(20), 4, -1.0)},
            ValueError,
            "Negative values in data passed to `sample_weight`",
        ),
        (
            {},
            X_OK,
            Y_OK,
            {"sample_weight": np.ones(19)},
            ValueError,
            r"sample_weight.shape == \(19,\), expected \(20,\)",
        ),
        (
            {},
            X_OK,
            Y_OK,
            {"sample_weight": np.zeros(20)},
            ValueError,
            "Sample weights must contain at least one non-zero number",
        ),
        (
            {"solver": "cholesky", "n_steps": 1, "alpha": [1.0, 0.0]},
            X_OK,
            Y_OK,
            {},
            ValueError,
            "solver='cholesky' needs every alpha > 0",
        ),
        (
            {"solver": "svd"},
            sp.csr_matrix(X_OK),
            Y_OK,
            {},
            TypeError,
            "solver='svd' does not support sparse X",
        ),
    ],
)
def test_bad_input_raises_in_fit(params, X, y, fit_kwargs, error, match):
    reg = RepeatedSelfDistillationRegressor(**params)  # __init__ never raises
    assert reg.get_params()["solver"] == params.get("solver", "auto")
    with pytest.raises(error, match=match):
        reg.fit(X, y, **fit_kwargs)


def test_bad_input_at_predict():
    reg = RepeatedSelfDistillationRegressor().fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        reg.predict(_with(X_OK, (0, 0), np.nan))
    with pytest.raises(ValueError, match="X has 2 features, but"):
        reg.predict(X_OK[:, :2])
    with pytest.raises(ValueError, match="X has 2 features, but"):
        next(reg.staged_predict(X_OK[:, :2]))


def test_error_messages_name_the_parameter_exactly():
    """The message quotes the offending value, so users can find it."""
    reg = RepeatedSelfDistillationRegressor(n_steps=1, alpha=[1.0, -0.5])
    with pytest.raises(ValueError, match=re.escape("got [1.0, -0.5]")):
        reg.fit(X_OK, Y_OK)


@pytest.mark.parametrize(
    "solver, sparse_input",
    [p for p in SOLVER_AND_SPARSE if p[0] in ("svd", "gram", "dual")],
)
def test_spectrum_basis_gives_the_naive_refits(solver, sparse_input):
    """``basis @ diag(q) @ proj`` (the route of the cross-validation) is the chain.

    For "dual" the basis is formed lazily; both routes, and ``coef``, must
    give the coefficients of a loop of weighted Ridge fits on mixed labels.
    """
    X, y, sw = make_problem(6, 15, 25, n_targets=2, weighted=True)
    alphas, xis = [0.7] * 3, [1.5, -0.5]
    X_fit = sp.csr_matrix(X) if sparse_input else X
    spectrum = decompose(X_fit, y, sample_weight=sw, solver=solver)
    q = inverse_filter_path(spectrum.lam, 0.7, xis, 2)
    lazy = spectrum.coef_path(q)
    explicit = np.stack(
        [(spectrum.basis @ (qi[:, None] * spectrum.proj)).T for qi in q]
    )
    coefs, _ = naive_path(X, y, alphas, xis, sample_weight=sw)
    assert spectrum.basis.shape[0] == 25
    rtol = chain_rtol(X, alphas, xis, sw)
    for i in range(3):
        assert_normwise_close(lazy[i], coefs[i], rtol)
        assert_normwise_close(explicit[i], coefs[i], rtol)
        assert_normwise_close(spectrum.coef(q[i]), coefs[i], rtol)


@pytest.mark.parametrize("shape, expected", [((30, 5), "gram"), ((5, 30), "dual")])
def test_decompose_accepts_the_cholesky_solver_name(shape, expected):
    """An estimator with solver="cholesky" can still be decomposed (e.g. for CV)."""
    X, y, _ = make_problem(0, *shape, n_targets=1)
    got = decompose(X, y, solver="cholesky")
    ref = decompose(X, y, solver=expected)
    assert_array_equal(got.lam, ref.lam)
    assert_array_equal(got.coef(1.0 / (got.lam + 1.0)), ref.coef(1.0 / (ref.lam + 1.0)))
