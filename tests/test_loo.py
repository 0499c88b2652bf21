"""Exact leave-one-out (``cv=None``) against explicit refits and scikit-learn."""

import warnings

import numpy as np
import pytest
from _oracles import (
    assert_loo_score_is_exact,
    explicit_loo_mse,
    prediction_error_bound,
    pure_distillates,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV

from skdistill import SelfDistillCV
from skdistill._cv_loo import (
    _block_r_factors,
    _ridge_factors,
    loo_basis,
    loo_residuals,
    loo_statistics,
)

# The designs every property runs on: (n, d, fit_intercept, weighted, targets).
DESIGNS = {
    "tall": (30, 6, True, False, 1),
    "wide": (16, 40, True, False, 1),
    "square": (15, 15, True, False, 1),
    "weighted": (20, 30, True, True, 1),
    "no_intercept": (18, 5, False, True, 1),
    "wide_no_intercept": (14, 25, False, False, 1),
    "multi_target": (20, 8, True, True, 3),
}
RELATIVE_ALPHAS = np.array([1e-6, 1e-3, 1e-1, 1.0, 1e3])
FEW = settings(max_examples=2, deadline=None)


def _design(name, seed):
    n, d, fit_intercept, weighted, t = DESIGNS[name]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(1.0, 0.05, d)
    Y = X[:, :1] + 0.3 * rng.normal(size=(n, t))
    w = rng.uniform(0.2, 3.0, size=n) if weighted else None
    return X, Y, w, fit_intercept


def _lam_max(X, w, fit_intercept):
    w = np.ones(X.shape[0]) if w is None else w
    Xc = X - np.average(X, axis=0, weights=w) if fit_intercept else X
    return np.linalg.norm(Xc * np.sqrt(w)[:, None], 2) ** 2


@pytest.mark.parametrize("name", sorted(DESIGNS))
@FEW
@given(seed=st.integers(0, 2**16))
def test_residuals_of_every_pure_distillate_equal_explicit_refits(seed, name):
    # Row i's weighted leave-one-out residual of the pure m-fold distillate
    # is that of the Ridge chain refitted on the other rows, at alphas from
    # 1e-6 to 1e3 times lam_max (wide data: leverages within 1e-6 of one).
    X, Y, w, fit_intercept = _design(name, seed)
    n, t = Y.shape
    max_steps = 3
    alphas = _lam_max(X, w, fit_intercept) * RELATIVE_ALPHAS
    basis = loo_basis(X, Y, w, fit_intercept=fit_intercept)
    got = loo_residuals(basis, alphas, max_steps)  # (n, a, k + 1, t)
    assert got.shape == (n, alphas.size, max_steps + 1, t)
    ww = np.ones(n) if w is None else w
    for a, alpha in enumerate(alphas):
        # Each distillate's prediction (ours and the refit's) carries the
        # round-off of a unit filter: prediction_error_bound with xi_bar = 1,
        # times the steps the chain takes.
        tol = (max_steps + 1) * prediction_error_bound(
            X, Y, alpha, [1.0], w=ww, fit_intercept=fit_intercept
        )
        for i in range(n):
            keep = np.arange(n) != i
            P = pure_distillates(
                X[keep], Y[keep], X[i : i + 1], alpha, max_steps, ww[keep],
                fit_intercept,
            )[0]  # fmt: skip
            expected = np.sqrt(ww[i]) * (Y[i][:, None] - P.reshape(t, -1))
            np.testing.assert_allclose(got[i, a].T, expected, rtol=0, atol=tol)


@pytest.mark.parametrize("name", ["tall", "wide", "multi_target"])
def test_block_errors_are_the_residuals_sums(name):
    # The blocks' factors reproduce, for any xi_bar summing to one, the sum
    # over the block's rows of the squared residuals of that combination.
    X, Y, w, fit_intercept = _design(name, 0)
    n, t = Y.shape
    alphas = _lam_max(X, w, fit_intercept) * RELATIVE_ALPHAS
    basis = loo_basis(X, Y, w, fit_intercept=fit_intercept)
    res = loo_residuals(basis, alphas, 2)
    n_blocks = 4
    stats, _ = loo_statistics(
        X, Y, w, fit_intercept=fit_intercept, alphas=alphas, max_steps=2,
        n_blocks=n_blocks, basis=basis,
    )  # fmt: skip
    W = np.ones(n).sum() if w is None else w.sum()
    xi_bar = np.array([3.0, -4.0, 2.0])
    for b, s in enumerate(stats):
        rows = np.arange(b, n, n_blocks)
        for a in range(alphas.size):
            for j in range(t):
                expected = np.sum((res[rows, a, :, j] @ xi_bar) ** 2) / (W / n_blocks)
                got = np.sum((s.R[a, j] @ np.append(xi_bar, -1.0)) ** 2)
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 30),
    p=st.integers(1, 5),
    n_blocks=st.integers(1, 6),
)
def test_block_r_factors_have_the_blocks_gram(seed, n, p, n_blocks):
    # Gram-Schmidt factors of each block equal LAPACK's R up to row signs:
    # the same R^T R, to round-off of the columns' norms.
    rng = np.random.default_rng(seed)
    cols = rng.normal(size=(p, n, 3))
    cols[-1] = cols[0] + 1e-9 * cols[-1]  # nearly dependent columns
    R = _block_r_factors(cols.copy(), n_blocks)
    for b in range(n_blocks):
        for x in range(3):
            A = cols[:, b::n_blocks, x].T
            got = R[b, x]
            assert np.allclose(np.triu(got), got)
            ref = np.linalg.qr(A, mode="r") if A.shape[0] else np.zeros((0, p))
            scale = max(np.sum(A**2), 1e-300)
            np.testing.assert_allclose(
                got.T @ got, ref.T @ ref, rtol=0, atol=1e-13 * scale
            )


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 30),
    n_blocks=st.integers(1, 6),
    kind=st.sampled_from(["generic", "good_fit", "no_prediction"]),
)
def test_ridge_factors_have_the_blocks_gram_and_residual_error(seed, n, n_blocks, kind):
    # Ridge's factors from three sums: per block, R^T R is the Gram matrix
    # of [z, y] (z = y - e, computed densely) and |R (1, -1)|^2 is |e|^2.
    rng = np.random.default_rng(seed)
    a, t = 2, 3
    y = rng.normal(size=(n, t))
    e = {
        "generic": rng.normal(size=(n, a, t)),
        "good_fit": 1e-7 * rng.normal(size=(n, a, t)),  # z nearly y
        "no_prediction": np.broadcast_to(y[:, None, :], (n, a, t)),  # z = 0
    }[kind]
    n_pad = -(-n // n_blocks) * n_blocks
    cols = np.zeros((2, n_pad, a, t))
    cols[0, :n] = e
    y_pad = np.zeros((n_pad, t))
    y_pad[:n] = y
    R = _ridge_factors(cols, y_pad, n_blocks).reshape(n_blocks, a, t, 2, 2)
    for b in range(n_blocks):
        for i in range(a):
            for j in range(t):
                eb, yb = e[b::n_blocks, i, j], y[b::n_blocks, j]
                A = np.column_stack([yb - eb, yb])
                got = R[b, i, j]
                assert got[1, 0] == 0.0
                # Each entry of R^T R is a sum of products of the columns
                # (norms up to |z| + |e|): round-off of a few ulps of
                # |z|^2 + |e|^2, whatever the cancellation.
                scale = max(np.sum(A[:, 0] ** 2) + np.sum(eb**2), 1e-300)
                np.testing.assert_allclose(
                    got.T @ got, A.T @ A, rtol=0, atol=1e-13 * scale
                )
                err = np.sum((got @ np.array([1.0, -1.0])) ** 2)
                assert abs(err - np.sum(eb**2)) <= 1e-13 * scale


@pytest.mark.parametrize("shape", [(40, 6), (25, 60)])
def test_ridge_only_equals_ridgecv_per_alpha(shape):
    # n_steps=0: the leave-one-out squared errors of every row and alpha
    # are scikit-learn's (RidgeCV's own leave-one-out), for several targets.
    n, d = shape
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, d)) * np.linspace(1.0, 0.1, d)
    Y = X[:, :2] @ np.array([[1.0, -2.0], [0.5, 1.0]]) + 0.4 * rng.normal(size=(n, 2))
    alphas = _lam_max(X, None, True) * np.logspace(-4, 1, 7)
    ref = RidgeCV(alphas=alphas, store_cv_results=True).fit(X, Y)
    expected = ref.cv_results_  # (n, t, a): squared errors
    basis = loo_basis(X, Y, None, fit_intercept=True)
    got = loo_residuals(basis, alphas, 0)[:, :, 0, :] ** 2  # (n, a, t)
    for a, alpha in enumerate(alphas):
        tol = prediction_error_bound(X, Y, alpha, [1.0])
        np.testing.assert_allclose(
            got[:, a, :], expected[:, :, a], rtol=0, atol=tol * np.abs(Y).max()
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(
            alphas=alphas, n_steps=0, cv=None, alpha_per_target=True
        ).fit(X, Y)
    per_target = RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(search.alpha_, per_target.alpha_)


def _defect_2(seed=0, n=20, d=30):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X[:, 0] + 0.3 * rng.normal(size=n)


def test_the_defect_2_choice_is_exact():
    # Issue 18 defect 2: on wide data at small alpha the least-squares
    # xi_bar reaches 1e5 and more; the raw optimum reported 0.185 where
    # explicit refits give 0.334.
    X, y = _defect_2()
    search = SelfDistillCV(cv=None, n_steps=(0, 1, 2), selection="raw").fit(X, y)
    assert_loo_score_is_exact(search, X, y)


def test_unresolved_students_are_not_offered():
    # At alphas down to 1e-6 lam_max the raw optimum is a student float64
    # cannot score: it is dropped with one warning, and the choice is exact.
    X, y = _defect_2()
    alphas = _lam_max(X, None, True) * np.array([1e-6, 1e-5, 1e-4])
    search = SelfDistillCV(cv=None, alphas=alphas, n_steps=(0, 1, 2), selection="raw")
    with pytest.warns(UserWarning, match="student candidates were not offered"):
        search.fit(X, y)
    assert_loo_score_is_exact(search, X, y)


def test_every_target_of_a_per_target_search_gets_a_resolved_choice():
    # One choice per target: each target's chosen student (or ridge) has a
    # score that explicit refits of that target reproduce.
    X, y = _defect_2(seed=3, n=16, d=30)
    rng = np.random.default_rng(4)
    Y = np.column_stack([y, X[:, 1] - X[:, 2] + 0.3 * rng.normal(size=16)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search = SelfDistillCV(
            cv=None, n_steps=(0, 1, 2), selection="raw", alpha_per_target=True
        ).fit(X, Y)
    for j in range(2):
        alpha = search.cv_alpha_[j]
        k = int(search.n_steps_[j])
        xi_bar = np.asarray(search.xi_bar_[j, : k + 1], dtype=float)
        mse = explicit_loo_mse(X, Y[:, j], alpha, xi_bar)
        err = prediction_error_bound(X, Y[:, j], alpha, xi_bar)
        assert 2 * np.sqrt(mse) * err + err**2 <= 0.1 * mse
        assert -search.best_score_[j] == pytest.approx(mse, rel=1e-6, abs=0.1 * mse)


@pytest.mark.parametrize("name", ["tall", "wide", "weighted"])
def test_sparse_and_float32_input_give_the_dense_residuals(name):
    # The Gram (sparse, tall) and kernel (sparse, wide) forms, and float32
    # data decomposed in float64, give the dense float64 residuals to the
    # round-off of their decomposition (the Gram form squares the condition).
    import scipy.sparse as sp

    X, Y, w, fit_intercept = _design(name, 2)
    alphas = _lam_max(X, w, fit_intercept) * np.array([1e-3, 1.0])
    dense = loo_residuals(loo_basis(X, Y, w, fit_intercept=fit_intercept), alphas, 2)
    for a, alpha in enumerate(alphas):
        tol = 3 * prediction_error_bound(X, Y, alpha, [1.0], w=w)
        sparse = loo_residuals(
            loo_basis(sp.csr_matrix(X), Y, w, fit_intercept=fit_intercept), alphas, 2
        )
        np.testing.assert_allclose(sparse[:, a], dense[:, a], rtol=0, atol=tol)
    X32 = X.astype(np.float32)
    exact = loo_residuals(
        loo_basis(X32.astype(np.float64), Y, w, fit_intercept=fit_intercept), alphas, 2
    )
    got = loo_residuals(loo_basis(X32, Y, w, fit_intercept=fit_intercept), alphas, 2)
    for a, alpha in enumerate(alphas):
        tol = 3 * prediction_error_bound(X, Y, alpha, [1.0], w=w)
        np.testing.assert_allclose(got[:, a], exact[:, a], rtol=0, atol=tol)


def test_batches_of_targets_and_alphas_give_the_same_factors(monkeypatch):
    # Memory is bounded by batching targets and alphas; the factors do not
    # depend on the batches.
    from skdistill import _cv_loo

    X, Y, w, fit_intercept = _design("multi_target", 5)
    alphas = _lam_max(X, w, fit_intercept) * RELATIVE_ALPHAS
    kw = dict(fit_intercept=fit_intercept, alphas=alphas, max_steps=2)
    whole, _ = loo_statistics(X, Y, w, **kw)
    monkeypatch.setattr(_cv_loo, "_BATCH_BYTES", 8 * X.shape[0] * 4 * 2)
    assert _cv_loo._batches(X.shape[0], Y.shape[1], 3) == (2, 1)
    batched, _ = loo_statistics(X, Y, w, **kw)
    for s, b in zip(whole, batched, strict=True):
        # Nearly dependent columns leave round-off in R's trailing entries:
        # compare what the selection reads, the Gram matrices R^T R.
        gram = np.swapaxes(s.R, -1, -2) @ s.R
        np.testing.assert_allclose(
            np.swapaxes(b.R, -1, -2) @ b.R, gram, rtol=0, atol=1e-12 * gram.max()
        )
