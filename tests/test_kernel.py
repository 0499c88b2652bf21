"""Tests of KernelSelfDistillationRegressor against naive kernel ridge refits."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.model_selection import GridSearchCV, KFold

from skdistill import KernelSelfDistillationRegressor, SelfDistillCV
from skdistill._filter import inverse_filter_path, xi_to_xi_bar


def _data(n=30, d=2, n_targets=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    y = np.sin(X.sum(axis=1)) + rng.normal(scale=0.3, size=n)
    if n_targets is not None:
        y = np.column_stack([y * (j + 1) + j for j in range(n_targets)])
    return X, y


def _naive_path(X, y, alphas, xis, sample_weight=None, **kernel):
    """Teacher and students as separate KernelRidge fits on mixed labels."""
    models, targets = [], y
    for i, alpha in enumerate(alphas):
        if i > 0:
            fitted = models[-1].predict(X)
            targets = xis[i - 1] * fitted + (1 - xis[i - 1]) * y
        models.append(
            KernelRidge(alpha=alpha, **kernel).fit(
                X, targets, sample_weight=sample_weight
            )
        )
    return models


@given(
    n=st.integers(2, 12),
    n_steps=st.integers(0, 6),
    n_targets=st.sampled_from([None, 2]),
    weighted=st.booleans(),
    solver=st.sampled_from(["eigh", "cholesky"]),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_matches_naive_kernel_ridge_loop(
    n, n_steps, n_targets, weighted, solver, seed, data
):
    X, y = _data(n=n, n_targets=n_targets, seed=seed)
    alphas = data.draw(
        st.lists(st.floats(0.05, 10.0), min_size=n_steps + 1, max_size=n_steps + 1)
    )
    xis = data.draw(st.lists(st.floats(-3.0, 3.0), min_size=n_steps, max_size=n_steps))
    rng = np.random.default_rng(seed)
    sw = None
    if weighted:
        sw = rng.uniform(0, 3, size=n)
        sw[rng.uniform(size=n) < 0.25] = 0.0  # zero weights, as CV folds give
        sw[0] = 1.0
    reg = KernelSelfDistillationRegressor(
        alpha=alphas, n_steps=n_steps, xi=xis, kernel="rbf", gamma=0.7, solver=solver
    ).fit(X, y, sample_weight=sw)
    models = _naive_path(X, y, alphas, xis, sw, kernel="rbf", gamma=0.7)
    X_test, _ = _data(n=7, seed=seed + 1)
    assert reg.n_steps_ == n_steps
    staged = list(reg.staged_predict(X_test))
    assert len(staged) == n_steps + 1
    rtol = _kernel_chain_rtol(rbf_kernel(X, gamma=0.7), alphas, xis, sw)
    for i, model in enumerate(models):
        scale = np.abs(model.dual_coef_).max()
        assert_allclose(reg.dual_coef_path_[i], model.dual_coef_, atol=rtol * scale)
        scale = np.abs(model.predict(X_test)).max()
        assert_allclose(staged[i], model.predict(X_test), atol=rtol * scale)
    assert_allclose(reg.predict(X_test), staged[-1], rtol=0, atol=0)


@pytest.mark.parametrize(
    "kernel, params",
    [
        ("rbf", {}),
        ("rbf", {"gamma": 2.0}),
        ("laplacian", {"gamma": 0.5}),
        ("polynomial", {"degree": 2, "coef0": 0.5}),
        ("linear", {}),
        ("cosine", {}),
    ],
)
@pytest.mark.parametrize("solver", ["eigh", "cholesky"])
def test_teacher_equals_kernel_ridge(kernel, params, solver):
    X, y = _data(n=25, n_targets=2)
    sw = np.random.default_rng(1).uniform(0.5, 2, size=25)
    X_test, _ = _data(n=9, seed=5)
    for weights in (None, sw, 2.5):
        reg = KernelSelfDistillationRegressor(
            alpha=0.3, n_steps=0, kernel=kernel, solver=solver, **params
        ).fit(X, y, sample_weight=weights)
        krr = KernelRidge(alpha=0.3, kernel=kernel, **params).fit(
            X, y, sample_weight=weights
        )
        assert_allclose(reg.dual_coef_, krr.dual_coef_, rtol=1e-8, atol=1e-8)
        assert_allclose(reg.predict(X_test), krr.predict(X_test), atol=1e-8)


def test_teacher_precomputed_callable_and_sparse():
    X, y = _data(n=20)
    X_test, _ = _data(n=6, seed=3)
    krr = KernelRidge(alpha=0.2, kernel="rbf", gamma=0.5).fit(X, y)
    expected = krr.predict(X_test)

    pre = KernelSelfDistillationRegressor(alpha=0.2, n_steps=0, kernel="precomputed")
    pre.fit(rbf_kernel(X, gamma=0.5), y)
    assert_allclose(pre.predict(rbf_kernel(X_test, X, gamma=0.5)), expected, atol=1e-8)
    # The user's Gram matrix is left as it was, also when weights scale it.
    K = rbf_kernel(X, gamma=0.5)
    pre.fit(K, y, sample_weight=np.linspace(0.5, 2, 20))
    assert_allclose(K, rbf_kernel(X, gamma=0.5), rtol=0, atol=0)

    def my_rbf(a, b, scale):
        return np.exp(-scale * np.sum((a - b) ** 2))

    call = KernelSelfDistillationRegressor(
        alpha=0.2, n_steps=0, kernel=my_rbf, kernel_params={"scale": 0.5}
    ).fit(X, y)
    assert_allclose(call.predict(X_test), expected, atol=1e-8)

    sparse = KernelSelfDistillationRegressor(alpha=0.2, n_steps=0, gamma=0.5)
    sparse.fit(sp.csr_matrix(X), y)
    assert_allclose(sparse.predict(sp.csr_matrix(X_test)), expected, atol=1e-8)


def test_effective_dof_is_trace_of_naive_hat_matrix():
    # Fitting the naive loop to the identity targets gives each step's hat
    # matrix column by column: its trace is the effective number of basis
    # functions, and its eigenvalues the filter factors.
    X, _ = _data(n=15)
    alphas, xis = [0.5, 0.2, 1.0], [1.0, 1.5]
    reg = KernelSelfDistillationRegressor(
        alpha=alphas, n_steps=2, xi=xis, gamma=0.8
    ).fit(X, np.eye(15))
    models = _naive_path(X, np.eye(15), alphas, xis, kernel="rbf", gamma=0.8)
    for i, model in enumerate(models):
        hat = model.predict(X)
        assert_allclose(reg.effective_dof_[i], np.trace(hat), rtol=1e-9)
        assert_allclose(
            np.sort(reg.filter_factors_[i]),
            np.linalg.eigvalsh((hat + hat.T) / 2),
            atol=1e-9,
        )
    assert_allclose(
        reg.eigenvalues_, np.linalg.eigvalsh(rbf_kernel(X, gamma=0.8))[::-1], atol=1e-9
    )


def test_distillation_with_xi_one_reduces_effective_dof():
    X, y = _data(n=40)
    reg = KernelSelfDistillationRegressor(alpha=0.05, n_steps=6, xi=1.0).fit(X, y)
    assert np.all(np.diff(reg.effective_dof_) < 0)
    assert np.all(np.diff(reg.filter_factors_, axis=0) <= 1e-15)
    assert np.all(reg.filter_factors_ >= 0)


def _brute_force_constrained(X, y, epsilon, n_steps, sample_weight=None):
    """Mobahi's rounds by bisection on log(alpha) with KernelRidge refits."""
    w = np.ones(len(y)) if sample_weight is None else sample_weight
    alphas, targets = [], y
    for _ in range(n_steps + 1):
        if np.average(targets**2, weights=w) <= epsilon:
            break

        def mse(log_alpha, targets=targets):
            model = KernelRidge(alpha=np.exp(log_alpha), kernel="rbf")
            model.fit(X, targets, sample_weight=sample_weight)
            return np.average((model.predict(X) - targets) ** 2, weights=w)

        lo, hi = -25.0, 15.0
        assert mse(lo) < epsilon < mse(hi)
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if mse(mid) < epsilon else (lo, mid)
        alphas.append(np.exp((lo + hi) / 2))
        model = KernelRidge(alpha=alphas[-1], kernel="rbf")
        targets = model.fit(X, targets, sample_weight=sample_weight).predict(X)
    return np.array(alphas)


@pytest.mark.parametrize("weighted", [False, True])
def test_constrained_matches_brute_force_bisection(weighted):
    X, y = _data(n=25, seed=3)
    sw = np.random.default_rng(2).uniform(0.2, 2, size=25) if weighted else None
    epsilon = 0.05
    expected = _brute_force_constrained(X, y, epsilon, 10, sw)
    reg = KernelSelfDistillationRegressor(
        alpha="constrained", epsilon=epsilon, n_steps=10
    )
    with pytest.warns(UserWarning, match="collapsed"):
        reg.fit(X, y, sample_weight=sw)
    assert 2 <= reg.n_steps_ < 10
    assert reg.n_steps_ == len(expected) - 1
    assert_allclose(reg.alphas_, expected, rtol=1e-7)
    # Each round's training MSE against its own targets is epsilon.
    w = np.ones(25) if sw is None else sw
    targets = y
    for pred in reg.staged_predict(X):
        assert_allclose(np.average((pred - targets) ** 2, weights=w), epsilon)
        targets = pred
    assert np.average(targets**2, weights=w) <= epsilon


def test_constrained_without_collapse_does_not_warn():
    X, y = _data(n=25, seed=3)
    reg = KernelSelfDistillationRegressor(alpha="constrained", epsilon=0.05, n_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.fit(X, y)
    assert reg.n_steps_ == 1
    assert reg.alphas_.shape == (2,)


def test_constrained_weights_equal_repeated_rows():
    X, y = _data(n=12, seed=4)
    sw = np.random.default_rng(0).integers(0, 4, size=12)
    kw = dict(alpha="constrained", epsilon=0.03, n_steps=2)
    weighted = KernelSelfDistillationRegressor(**kw).fit(X, y, sample_weight=sw)
    repeated = KernelSelfDistillationRegressor(**kw).fit(
        np.repeat(X, sw, axis=0), np.repeat(y, sw)
    )
    assert_allclose(weighted.alphas_, repeated.alphas_, rtol=1e-8)
    X_test, _ = _data(n=5, seed=9)
    assert_allclose(weighted.predict(X_test), repeated.predict(X_test), atol=1e-8)


def _kernel_chain_rtol(K, alphas, xis, sample_weight=None):
    """Relative tolerance from the conditioning of ``S K S + alpha I``.

    Each kernel ridge solve has a relative error of about ``eps * cond``; the
    chain amplifies it by at most ``sum |xi_bar|`` of its steps; 1e3 covers
    the dimension-dependent constants.
    """
    sw = np.ones(K.shape[0]) if sample_weight is None else np.sqrt(sample_weight)
    d = np.linalg.eigvalsh(K * np.outer(sw, sw))
    alpha = min(alphas)
    cond = (d[-1] + alpha) / (max(d[0], 0.0) + alpha)
    amplification = max(
        np.abs(xi_to_xi_bar(xis[:i])).sum() for i in range(len(xis) + 1)
    )
    return 1e3 * np.finfo(np.float64).eps * cond * amplification


def test_spectral_fit_gives_validation_predictions():
    """The closed-form CV's route gives the validation predictions of naive
    weighted KernelRidge refits on mixed labels (not of the estimator itself)."""
    X, y = _data(n=30, n_targets=2)
    X_val, _ = _data(n=8, seed=7)
    sw = np.random.default_rng(3).uniform(0.5, 2, size=30)
    alphas, xis = [0.3, 0.1, 0.5], [1.0, -0.5]
    est = KernelSelfDistillationRegressor(alpha=alphas, n_steps=2, xi=xis, gamma=0.4)
    spectrum = est._spectral_fit(X, y, sw)
    B_val = spectrum.predict_basis(X_val)
    q_path = inverse_filter_path(spectrum.lam, alphas, xis, 2)
    models = _naive_path(X, y, alphas, xis, sw, kernel="rbf", gamma=0.4)
    rtol = _kernel_chain_rtol(rbf_kernel(X, gamma=0.4), alphas, xis, sw)
    for q, model in zip(q_path, models, strict=True):
        pred = B_val @ (q[:, None] * spectrum.proj) + spectrum.y_offset
        expected = model.predict(X_val)
        assert_allclose(pred, expected, rtol=0, atol=rtol * np.abs(expected).max())

    pre = KernelSelfDistillationRegressor(kernel="precomputed")
    spectrum = pre._spectral_fit(rbf_kernel(X, gamma=0.4), y, sw)
    B_pre = spectrum.predict_basis(rbf_kernel(X_val, X, gamma=0.4))
    q = inverse_filter_path(spectrum.lam, alphas, xis, 2)[-1]
    assert_allclose(
        B_pre @ (q[:, None] * spectrum.proj),
        expected,
        rtol=0,
        atol=rtol * np.abs(expected).max(),
    )


def test_minimum_norm_interpolation_with_zero_alpha():
    # alpha = 0 with a linear kernel on few features is least squares without
    # an intercept: the fitted values are the projection of y on span(X).
    X, y = _data(n=20, d=3)
    reg = KernelSelfDistillationRegressor(alpha=0.0, n_steps=2, kernel="linear")
    reg.fit(X, y)
    projection = X @ np.linalg.lstsq(X, y, rcond=None)[0]
    for pred in reg.staged_predict(X):
        assert_allclose(pred, projection, atol=1e-8)
    assert_allclose(reg.effective_dof_, [3, 3, 3], atol=1e-8)


@pytest.mark.parametrize(
    "params, X_kind, match",
    [
        ({"alpha": "constrained"}, "features", "epsilon"),
        ({"alpha": "constrained", "epsilon": 0.0}, "features", "epsilon"),
        ({"alpha": "constrained", "epsilon": -1.0}, "features", "epsilon"),
        ({"alpha": "constrained", "epsilon": 100.0}, "features", "epsilon"),
        ({"alpha": -1.0}, "features", "alpha"),
        ({"alpha": [1.0, np.nan]}, "features", "alpha"),
        ({"alpha": [1.0, 2.0, 3.0], "n_steps": 1}, "features", "alpha"),
        ({"alpha": "constrain"}, "features", "alpha"),
        ({"xi": [0.5, 0.5], "n_steps": 1}, "features", "xi"),
        ({"xi": np.nan}, "features", "xi"),
        ({"n_steps": -1}, "features", "n_steps"),
        ({"kernel": "precomputed"}, "features", "square"),
        ({"kernel": "precomputed"}, "indefinite", "positive semi-definite"),
        ({"kernel": "precomputed"}, "asymmetric", "symmetric"),
        ({"kernel": "sigmoid", "gamma": 5.0}, "features", "positive semi-definite"),
        (
            {"alpha": "constrained", "epsilon": 0.1, "solver": "cholesky"},
            "features",
            "solver",
        ),
    ],
)
def test_bad_input_raises_in_fit(params, X_kind, match):
    X, y = _data(n=10)
    if X_kind == "indefinite":
        X = rbf_kernel(X) - 0.5 * np.eye(10)
    elif X_kind == "asymmetric":
        X = rbf_kernel(X)
        X[0, 1] += 0.1
    reg = KernelSelfDistillationRegressor(**params)
    with pytest.raises(ValueError, match=match):
        reg.fit(X, y)


def test_nan_input_raises():
    X, y = _data(n=10)
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        KernelSelfDistillationRegressor().fit(X, y)


def test_psd_tolerance_accepts_rounding_errors():
    # A valid Gram matrix with a rounding-sized negative eigenvalue is accepted.
    X, y = _data(n=10)
    K = rbf_kernel(X)
    d, Q = np.linalg.eigh(K)
    d[0] = -1e-7 * d[-1]
    K = (Q * d) @ Q.T
    K = (K + K.T) / 2
    reg = KernelSelfDistillationRegressor(kernel="precomputed", n_steps=0).fit(K, y)
    krr = KernelRidge(alpha=1.0, kernel="precomputed").fit(K, y)
    assert_allclose(reg.dual_coef_, krr.dual_coef_, atol=1e-6)
    K -= 1e-4 * d[-1] * np.outer(Q[:, 0], Q[:, 0])
    with pytest.raises(ValueError, match="positive semi-definite"):
        reg.fit(K, y)


def test_auto_solver():
    X, y = _data(n=20)
    assert KernelSelfDistillationRegressor().fit(X, y).solver_ == "eigh"
    reg = KernelSelfDistillationRegressor(solver="cholesky").fit(X, y)
    assert reg.solver_ == "cholesky"
    assert reg.effective_dof_ is None and reg.filter_factors_ is None


def _cv_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    return X, np.sin(X.sum(axis=1)) + rng.normal(scale=0.3, size=n)


@pytest.mark.parametrize("weighted", [False, True])
def test_selfdistillcv_fold_scores_match_naive_refits(weighted):
    # The closed-form fold errors of the chosen candidate equal the weighted
    # validation errors of naive KernelRidge loops refitted on each fold.
    X, y = _cv_data()
    sw = np.random.default_rng(1).uniform(0.2, 2, size=60) if weighted else None
    cv = KFold(4, shuffle=True, random_state=0)
    search = SelfDistillCV(
        KernelSelfDistillationRegressor(gamma=0.5),
        alphas=np.logspace(-3, 1, 7),
        n_steps=(0, 1, 2),
        cv=cv,
        selection="raw",
    ).fit(X, y, sample_weight=sw)
    best = search.best_index_
    assert search.n_steps_ >= 1  # the raw optimum is a student on these data
    xis = list(search.xi_)
    alphas = [search.cv_alpha_] * (search.n_steps_ + 1)
    w = np.ones(60) if sw is None else sw
    for i, (train, test) in enumerate(cv.split(X)):
        models = _naive_path(
            X[train],
            y[train],
            alphas,
            xis,
            None if sw is None else sw[train],
            kernel="rbf",
            gamma=0.5,
        )
        pred = models[-1].predict(X[test])
        mse = np.average((pred - y[test]) ** 2, weights=w[test])
        assert_allclose(
            -search.cv_results_[f"split{i}_test_score"][best], mse, rtol=1e-7
        )
    # The refit uses the alpha rescaled from fold size to the full data.
    assert_allclose(search.alpha_, search.cv_alpha_ * 4 / 3)
    assert search.best_estimator_.alpha == search.alpha_
    assert search.best_params_["alpha"] == search.cv_alpha_
    assert isinstance(search.best_estimator_, KernelSelfDistillationRegressor)


def test_selfdistillcv_teacher_only_reproduces_grid_search():
    X, y = _cv_data(seed=2)
    alphas = np.logspace(-3, 1, 9)
    cv = KFold(5, shuffle=True, random_state=0)
    grid = GridSearchCV(
        KernelRidge(kernel="rbf", gamma=0.5),
        {"alpha": alphas},
        cv=cv,
        scoring="neg_mean_squared_error",
    ).fit(X, y)
    est = KernelSelfDistillationRegressor(gamma=0.5)
    ridge_only = SelfDistillCV(est, alphas=alphas, n_steps=(0,), cv=cv).fit(X, y)
    assert ridge_only.alpha_ == grid.best_params_["alpha"]
    assert_allclose(ridge_only.best_score_, grid.best_score_, rtol=1e-9)
    tuned = SelfDistillCV(est, alphas=alphas, n_steps=(0, 1, 2), cv=cv).fit(X, y)
    assert tuned.best_score_ >= grid.best_score_ - 1e-12

    # A precomputed kernel is sliced like in cross-validation: same result.
    pre = SelfDistillCV(
        KernelSelfDistillationRegressor(kernel="precomputed"),
        alphas=alphas,
        n_steps=(0, 1, 2),
        cv=cv,
    ).fit(rbf_kernel(X, gamma=0.5), y)
    assert_allclose(pre.best_score_, tuned.best_score_, rtol=1e-9)
    assert pre.best_params_["n_steps"] == tuned.best_params_["n_steps"]


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("y_dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("kernel", ["rbf", "precomputed"])
@pytest.mark.parametrize("solver", ["eigh", "cholesky"])
def test_dtype_is_kernel_ridges(x_dtype, y_dtype, kernel, solver):
    """float32 X and y give float32 dual coefficients and predictions, as
    KernelRidge does (the fit used to return float64 whatever the input)."""
    X, y = _data(n=20, d=2)
    X, y = (X * 3).astype(x_dtype), (y * 3).astype(y_dtype)
    if kernel == "precomputed":
        X = rbf_kernel(X, gamma=0.3).astype(x_dtype)
        if x_dtype is np.int64:
            X = (X * 10).astype(np.int64) + 20 * np.eye(20, dtype=np.int64)
    params = dict(kernel=kernel, gamma=None if kernel == "precomputed" else 0.3)
    krr = KernelRidge(alpha=0.5, **params).fit(X, y)
    reg = KernelSelfDistillationRegressor(
        alpha=0.5, n_steps=0, solver=solver, **params
    ).fit(X, y)
    assert reg.dual_coef_.dtype == krr.dual_coef_.dtype
    assert reg.dual_coef_path_.dtype == krr.dual_coef_.dtype
    assert reg.predict(X).dtype == krr.predict(X).dtype
    assert next(reg.staged_predict(X)).dtype == krr.predict(X).dtype
    # Both solve (K + alpha I) c = y in the output precision at worst; the
    # Gram matrix is well conditioned (alpha = 0.5 against eigenvalues <= n).
    eps = np.finfo(krr.dual_coef_.dtype).eps
    K = np.asarray(X if kernel == "precomputed" else rbf_kernel(X, gamma=0.3))
    cond = np.linalg.cond(K.astype(np.float64) + 0.5 * np.eye(20))
    assert_allclose(
        reg.predict(X), krr.predict(X), rtol=1e3 * eps * cond, atol=1e3 * eps * cond
    )


@pytest.mark.parametrize("solver", ["eigh", "cholesky"])
def test_column_vector_y_has_the_shapes_of_kernel_ridge(solver):
    """y of shape (n, 1) keeps its column shape, as KernelRidge does."""
    X, y = _data(n=15)
    Y = y[:, None]
    krr = KernelRidge(alpha=0.4, kernel="rbf", gamma=0.5).fit(X, Y)
    reg = KernelSelfDistillationRegressor(
        alpha=0.4, n_steps=2, xi=0.0, gamma=0.5, solver=solver
    ).fit(X, Y)
    assert reg.dual_coef_.shape == krr.dual_coef_.shape == (15, 1)
    assert reg.predict(X).shape == krr.predict(X).shape == (15, 1)
    assert all(p.shape == (15, 1) for p in reg.staged_predict(X))
    # xi = 0: each step is the teacher; cond(K + 0.4 I) <= 1 + 15 / 0.4.
    assert_allclose(reg.predict(X), krr.predict(X), rtol=1e-10, atol=1e-10)


def test_cholesky_fallback_warns_at_the_callers_line():
    """The warning of a failed Cholesky factorisation names the user's line."""
    X, y = _data(n=12)
    K = rbf_kernel(X)
    d, Q = np.linalg.eigh(K)
    d[0] = -1e-7 * d[-1]  # a rounding-sized negative eigenvalue, accepted
    K = (Q * d) @ Q.T
    K = (K + K.T) / 2
    reg = KernelSelfDistillationRegressor(
        alpha=1e-12, n_steps=1, kernel="precomputed", solver="cholesky"
    )
    with pytest.warns(UserWarning, match="singular") as record:
        reg.fit(K, y)
    assert record[0].filename == __file__
    assert reg.solver_ == "eigh"
