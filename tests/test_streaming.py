"""Chunked, out-of-core and dask fitting against in-memory computations."""

import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from _oracles import pure_distillates
from hypothesis import given
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_squared_error, r2_score

from skdistill import (
    KernelSelfDistillationRegressor,
    RepeatedSelfDistillationRegressor,
    SelfDistillCV,
    hash_folds,
)
from skdistill._factors import FoldFactors, spectrum_from_factor
from skdistill._spectral import decompose
from skdistill._streaming import _import_dask

EPS = np.finfo(np.float64).eps


def _data(n=120, d=5, t=None, seed=0, shift=3.0, cond=None):
    """Random regression data; ``cond`` (if given) fixes X's condition number."""
    rng = np.random.default_rng(seed)
    if cond is None:
        X = rng.normal(size=(n, d)) * np.linspace(3, 0.2, d) + shift
    else:
        U = np.linalg.qr(rng.normal(size=(n, d)))[0]
        V = np.linalg.qr(rng.normal(size=(d, d)))[0]
        X = (U * (3 * np.sqrt(n) * np.logspace(0, -np.log10(cond), d))) @ V.T + shift
    coef = rng.normal(size=(d,) if t is None else (d, t))
    y = X @ coef + 0.5 * rng.normal(size=(n,) if t is None else (n, t)) + 10.0
    return X, y


def _weights(n, seed, zeros):
    """Positive weights, a fraction of them zero when ``zeros``."""
    rng = np.random.default_rng(seed + 1)
    w = rng.uniform(0.2, 3, size=n)
    if zeros:
        w[rng.random(n) < 0.25] = 0.0
    return w


def _cuts(draw_cuts, n):
    cuts = sorted(set(c for c in draw_cuts if 0 < c < n))
    return [0, *cuts, n]


def _chunks(X, y, w, cuts):
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        yield (X[a:b], y[a:b]) if w is None else (X[a:b], y[a:b], w[a:b])


def _hashed_cv(n, n_splits, seed=0):
    folds = hash_folds(np.arange(n), n_splits, seed)
    return [
        (np.flatnonzero(folds != f), np.flatnonzero(folds == f))
        for f in range(n_splits)
    ]


def _lam_max(X, w=None, fit_intercept=True):
    """Largest eigenvalue of the (centred, weighted) X^T X, by a dense SVD."""
    Xc = X - np.average(X, axis=0, weights=w) if fit_intercept else X
    if w is not None:
        Xc = Xc * np.sqrt(w)[:, None]
    return np.linalg.svd(Xc, compute_uv=False)[0] ** 2


def _score(y, pred, w, scoring):
    if scoring == "r2":
        return r2_score(y, pred, sample_weight=w)
    return -mean_squared_error(y, pred, sample_weight=w)


def _score_tol(y_val, w, pred, delta, scoring):
    """Bound on a score's error when the predictions are off by ``delta``.

    ``|mse(p + e) - mse(p)| <= 2 rms(y - p) |e|_inf + |e|_inf**2``; R^2 divides
    the mean squared error by the validation targets' weighted variance.
    """
    mse = mean_squared_error(y_val, pred, sample_weight=w)
    tol = 2 * np.sqrt(mse) * delta + delta**2
    if scoring == "r2":
        Y = y_val.reshape(len(y_val), -1)
        var = np.average((Y - np.average(Y, 0, w)) ** 2, axis=0, weights=w)
        tol = tol / var.min()
    return tol


def _check_against_refits(search, X, y, w, *, n_splits, seed, alphas, scoring=None):
    """A streamed SelfDistillCV against refits of each hashed fold in memory.

    For every candidate (alpha, k) and fold, the streamed split score must
    equal the score of its ``xi_bar`` evaluated with scikit-learn Ridge refits
    on the fold's training rows (``tests/_oracles.py``), and the refitted
    model must be an in-memory fit with ``alpha * n / mean(n_train)``. The
    tolerance follows the conditioning: a filter's predictions carry an error
    of about ``eps * kappa * (1 + |xi_bar|_1) * max|y|``, ``kappa = 1 +
    lam_max / alpha`` (the regularised condition number), with a factor
    1e3 for the accumulation over rows and steps.
    """
    fit_intercept = search.best_estimator_.fit_intercept
    folds = hash_folds(np.arange(X.shape[0]), n_splits, seed)
    res = search.cv_results_
    y_max = np.abs(y).max()
    n_checked = 0
    for f in range(n_splits):
        tr, va = folds != f, folds == f
        w_tr = None if w is None else w[tr]
        w_va = None if w is None else w[va]
        lam_max = _lam_max(X[tr], w_tr, fit_intercept)
        for alpha in alphas:
            Z = pure_distillates(X[tr], y[tr], X[va], alpha, 3, w_tr, fit_intercept)
            for c in np.flatnonzero(res["param_alpha"].astype(float) == alpha):
                xi_bar = np.asarray(res["xi_bar"][c], dtype=float)
                pred = Z[..., : xi_bar.size] @ xi_bar
                expected = _score(y[va], pred, w_va, scoring)
                kappa = 1 + lam_max / alpha
                delta = 1e3 * EPS * kappa * (1 + np.abs(xi_bar).sum()) * y_max
                tol = _score_tol(y[va], w_va, pred, delta, scoring)
                got = res[f"split{f}_test_score"][c]
                assert abs(got - expected) <= tol, (f, c, got, expected, tol)
                n_checked += 1
    assert n_checked == n_splits * len(res["params"])
    # The refit: alpha rescaled by the weight sum over the mean training one.
    W = X.shape[0] if w is None else w.sum()
    W_tr = [
        W - (np.sum(folds == f) if w is None else w[folds == f].sum())
        for f in range(n_splits)
    ]
    best = search.best_params_
    # A student is refitted at the validated alpha times W / mean(W_tr); a
    # chosen ridge at the validated alpha itself, as RidgeCV.
    scale = W / np.mean(W_tr) if search.n_steps_ > 0 else 1.0
    assert search.alpha_ == pytest.approx(search.cv_alpha_ * scale, rel=1e-12)
    assert best["alpha"] == search.cv_alpha_
    best = {**best, "alpha": search.alpha_}
    ref = RepeatedSelfDistillationRegressor(
        solver="svd", fit_intercept=fit_intercept, **best
    ).fit(X, y, sample_weight=w)
    kappa = 1 + _lam_max(X, w, fit_intercept) / best["alpha"]
    delta = 1e3 * EPS * kappa * (1 + np.abs(search.xi_bar_).sum()) * y_max
    with warnings.catch_warnings():  # X is an array, for searches fitted on frames
        warnings.filterwarnings("ignore", "X does not have valid feature names")
        pred = search.predict(X)
    np.testing.assert_allclose(pred, ref.predict(X), rtol=0, atol=delta)


# ------------------------------------------------------------------ factors
@given(
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 40), max_size=5),
    weighted=st.booleans(),
    fit_intercept=st.booleans(),
    wide=st.booleans(),
)
def test_spectrum_from_factor_equals_decompose_svd(
    seed, cuts, weighted, fit_intercept, wide
):
    X, y = _data(n=40, d=50 if wide else 6, t=2, seed=seed)
    w = np.random.default_rng(seed).uniform(0.1, 3, size=40) if weighted else None
    F = FoldFactors(1, X.shape[1], 2)
    for a, b in zip(_cuts(cuts, 40)[:-1], _cuts(cuts, 40)[1:], strict=True):
        F.add(X[a:b], y[a:b], None if w is None else w[a:b])
    got = spectrum_from_factor(F.R[0], X.shape[1], fit_intercept=fit_intercept)
    ref = decompose(X, y, sample_weight=w, fit_intercept=fit_intercept, solver="svd")
    r = ref.lam.size
    np.testing.assert_allclose(
        got.lam[:r], ref.lam, rtol=1e-10, atol=1e-10 * ref.lam.max()
    )
    assert np.all(got.lam[r:] <= 1e-20 * ref.lam.max())  # padding of wide data
    np.testing.assert_allclose(got.X_offset, ref.X_offset, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.y_offset, ref.y_offset, rtol=1e-12, atol=1e-12)
    # Bases differ by signs: compare the sign-free filtered coefficients.
    for alpha in (1e-2, 1.0, 100.0):
        np.testing.assert_allclose(
            got.coef(1 / (got.lam + alpha)),
            ref.coef(1 / (ref.lam + alpha)),
            rtol=1e-9,
            atol=1e-11,
        )


# --------------------------------------------------------------- partial_fit
def _prediction_atol(X, y, w, alpha, xis, fit_intercept):
    """Error bound of a filter's predictions: ``1e3 eps kappa (1 + |xi_bar|_1)``.

    ``kappa`` is the regularised condition number ``1 + lam_max / alpha``
    (``cond(X)**2`` at ``alpha = 0``), times ``max|y|``.
    """
    from skdistill import xi_to_xi_bar

    s = np.linalg.svd(
        (X - np.average(X, 0, w) if fit_intercept else X)
        * (1.0 if w is None else np.sqrt(w)[:, None]),
        compute_uv=False,
    )
    kappa = 1 + s[0] ** 2 / alpha if alpha > 0 else (s[0] / s[-1]) ** 2
    xi_bar = xi_to_xi_bar(np.asarray(xis, dtype=float).reshape(-1))
    return 1e3 * EPS * kappa * (1 + np.abs(xi_bar).sum()) * np.abs(y).max()


@given(
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    weights=st.sampled_from([None, "positive", "zeros"]),
    t=st.sampled_from([None, 3]),
    fit_intercept=st.booleans(),
    n_steps=st.integers(0, 3),
    alpha=st.sampled_from([0.0, 0.3, 10.0]),
    cond=st.sampled_from([None, 1e3, 1e6]),
)
def test_partial_fit_equals_one_fit_for_any_chunking(
    seed, cuts, weights, t, fit_intercept, n_steps, alpha, cond
):
    X, y = _data(n=60, d=4, t=t, seed=seed, cond=cond)
    w = None if weights is None else _weights(60, seed, weights == "zeros")
    xi = np.linspace(-0.5, 1.5, n_steps)
    kw = dict(alpha=alpha, n_steps=n_steps, xi=xi, fit_intercept=fit_intercept)
    est = RepeatedSelfDistillationRegressor(**kw)
    for chunk in _chunks(X, y, w, _cuts(cuts, 60)):
        est.partial_fit(*chunk[:2], sample_weight=chunk[2] if w is not None else None)
    ref = RepeatedSelfDistillationRegressor(solver="svd", **kw).fit(
        X, y, sample_weight=w
    )
    atol = _prediction_atol(X, y, w, alpha, xi, fit_intercept)
    for got, want in zip(est.staged_predict(X), ref.staged_predict(X), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)
    np.testing.assert_allclose(
        est.singular_values_,
        ref.singular_values_,
        rtol=0,
        atol=1e3 * EPS * ref.singular_values_[0],
    )
    assert est.coef_.shape == ref.coef_.shape and est.solver_ == "svd"


@given(
    seed=st.integers(0, 2**16),
    solver=st.sampled_from(["auto", "svd", "gram", "dual", "cholesky"]),
    n_fit=st.sampled_from([3, 8, 40]),
    weights=st.sampled_from([None, "positive", "zeros"]),
    t=st.sampled_from([None, 2]),
    fit_intercept=st.booleans(),
    cond=st.sampled_from([None, 1e4]),
    n_chunks=st.integers(1, 3),
)
def test_partial_fit_after_fit_equals_one_fit_on_all_rows(
    seed, solver, n_fit, weights, t, fit_intercept, cond, n_chunks
):
    # scikit-learn's convention: fit resets, partial_fit continues from the
    # state fit left (here for every solver that keeps a decomposition, and
    # for n_fit <= n_features + n_targets, where fit keeps the rows).
    n, d = n_fit + 30, 6
    X, y = _data(n=n, d=d, t=t, seed=seed, cond=cond)
    w = None if weights is None else _weights(n, seed, weights == "zeros")
    if w is not None:
        w[0] = 1.0  # the fitted rows never weigh zero in all
    kw = dict(alpha=0.05 * _lam_max(X), n_steps=2, xi=[0.5, 1.5])
    kw["fit_intercept"] = fit_intercept
    est = RepeatedSelfDistillationRegressor(solver=solver, **kw)
    est.fit(X[:n_fit], y[:n_fit], sample_weight=None if w is None else w[:n_fit])
    cuts = np.linspace(n_fit, n, n_chunks + 1).astype(int)
    if solver == "cholesky" and n_fit + 1 > d + (t or 1) + 1:
        with pytest.warns(UserWarning, match="solver='cholesky' keeps no"):
            est.partial_fit(X[n_fit:], y[n_fit:])
        ref = RepeatedSelfDistillationRegressor(solver="svd", **kw).fit(
            X[n_fit:], y[n_fit:]
        )  # what the warning says: the chunk alone
        atol = _prediction_atol(X, y, None, kw["alpha"], kw["xi"], fit_intercept)
        np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=0, atol=atol)
        return
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        est.partial_fit(X[a:b], y[a:b], sample_weight=None if w is None else w[a:b])
    ref = RepeatedSelfDistillationRegressor(solver="svd", **kw).fit(
        X, y, sample_weight=w
    )
    atol = _prediction_atol(X, y, w, kw["alpha"], kw["xi"], fit_intercept)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=0, atol=atol)
    # Ignoring what fit saw (the former behaviour) is far off.
    alone = RepeatedSelfDistillationRegressor(solver="svd", **kw).fit(
        X[n_fit:], y[n_fit:], sample_weight=None if w is None else w[n_fit:]
    )
    assert np.abs(alone.predict(X) - ref.predict(X)).max() > 100 * atol


def test_partial_fit_continues_a_dual_fit_on_tall_data_without_its_basis():
    # The dual spectrum of tall data holds U (n x n), not its basis:
    # stream_from_fit reads it through Spectrum.has_basis and .rmatmat.
    X, y = _data(n=70, d=5, t=2, seed=4)
    kw = dict(alpha=0.05 * _lam_max(X), n_steps=2, xi=[0.5, 1.5])
    spectrum = decompose(X[:40], y[:40], solver="dual")
    assert not spectrum.has_basis
    M = np.random.default_rng(0).normal(size=(40, 3))
    Xc = X[:40] - X[:40].mean(axis=0)
    # 40-term dot products of entries below 12 and 4: rounding of the sums
    # and of the means, a few eps per term.
    bound = 40 * 10 * EPS * np.abs(Xc).max() * np.abs(M).max()
    np.testing.assert_allclose(spectrum.rmatmat(M), Xc.T @ M, rtol=0, atol=bound)
    assert spectrum.basis.shape == (5, 40) and spectrum.has_basis
    assert decompose(X, y, solver="svd").rmatmat is None

    est = RepeatedSelfDistillationRegressor(solver="dual", **kw).fit(X[:40], y[:40])
    assert est._stream.rows is not None  # fit left a state to continue
    est.partial_fit(X[40:], y[40:])
    ref = RepeatedSelfDistillationRegressor(solver="svd", **kw).fit(X, y)
    atol = _prediction_atol(X, y, None, kw["alpha"], kw["xi"], True)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=0, atol=atol)


def test_fit_resets_partial_fit_and_states_that_cannot_continue():
    X, y = _data(n=60, d=4)
    est = RepeatedSelfDistillationRegressor(alpha=1.0).partial_fit(X[:30], y[:30])
    est.fit(X[30:45], y[30:45])  # forgets the first 30 rows
    est.partial_fit(X[45:], y[45:])
    ref = RepeatedSelfDistillationRegressor(alpha=1.0, solver="svd").fit(X[30:], y[30:])
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-10)
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="targets"):
        est.partial_fit(X, np.column_stack([y, y]))
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-10)
    with pytest.raises(ValueError, match="sample_weight|negative"):
        RepeatedSelfDistillationRegressor().partial_fit(
            X, y, sample_weight=-np.ones(60)
        )
    # A fit without intercept keeps no column means.
    est = RepeatedSelfDistillationRegressor(fit_intercept=False).fit(X, y)
    with pytest.raises(ValueError, match="fit_intercept=True"):
        est.set_params(fit_intercept=True).partial_fit(X, y)
    # Sparse X with fewer rows than columns: no dense copy is kept.
    Xs = sp.random(10, 40, density=0.2, random_state=0, format="csr")
    est = RepeatedSelfDistillationRegressor().fit(Xs, np.arange(10.0))
    with pytest.warns(UserWarning, match="sparse X"):
        est.partial_fit(Xs, np.arange(10.0))


def test_float32_stays_float32_through_partial_fit_and_streams():
    X, y = _data(n=90, d=4, seed=8)
    X32 = X.astype(np.float32)
    fitted = RepeatedSelfDistillationRegressor(alpha=1.0).fit(X32, y)
    est = RepeatedSelfDistillationRegressor(alpha=1.0)
    for start in range(0, 90, 30):
        est.partial_fit(X32[start : start + 30], y[start : start + 30])
    for attr in ("coef_", "coef_path_", "intercept_path_", "singular_values_"):
        assert getattr(est, attr).dtype == getattr(fitted, attr).dtype == np.float32
    assert est.predict(X32).dtype == fitted.predict(X32).dtype == np.float32
    # Computed in float64 from the float32 data, then rounded: the float32
    # predictions differ from float64 ones by the rounding of x . coef + b.
    X64 = X32.astype(np.float64)
    ref = RepeatedSelfDistillationRegressor(alpha=1.0, solver="svd").fit(X64, y)
    bound = np.abs(X64) @ np.abs(ref.coef_) + abs(ref.intercept_)
    atol = 10 * np.finfo(np.float32).eps * bound.max()
    np.testing.assert_allclose(est.predict(X32), ref.predict(X64), rtol=0, atol=atol)
    # One float64 chunk makes the result float64.
    est.partial_fit(X[:5], y[:5])
    assert est.coef_.dtype == np.float64
    fitted.partial_fit(X32[:5], y[:5])  # fit's float32 state continues in float32
    assert fitted.coef_.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cv = SelfDistillCV(cv=3).fit(_chunks(X32, y, None, [0, 40, 90]))
        cv64 = SelfDistillCV(cv=3).fit(_chunks(X, y, None, [0, 40, 90]))
    assert cv.predict(X32).dtype == np.float32 and cv.coef_.dtype == np.float32
    assert cv64.predict(X).dtype == np.float64


# ---------------------------------------------------------------- hash folds
def test_hash_folds_are_balanced_seeded_and_chunk_free():
    ids = np.arange(200_000)
    folds = hash_folds(ids, 7, seed=3)
    counts = np.bincount(folds, minlength=7)
    expected = ids.size / 7
    # Multinomial counts: within 5 standard deviations of n / k.
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    assert np.array_equal(hash_folds(ids[123:4567], 7, seed=3), folds[123:4567])
    other = hash_folds(ids, 7, seed=4)
    assert 0.8 < np.mean(other != folds) < 0.9  # independent: 6/7 differ
    # Neighbouring rows are not correlated: pairs agree at the 1/7 rate.
    assert abs(np.mean(folds[1:] == folds[:-1]) - 1 / 7) < 0.01


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.arange(5), 0), "n_splits"),
        ((np.arange(5), 1), "n_splits"),
        ((np.arange(5), 2.5), "n_splits"),
        ((np.arange(5), True), "n_splits"),
        ((np.arange(5.0), 3), "row_ids"),
        ((np.arange(6).reshape(2, 3), 3), "row_ids"),
        ((np.array([3, -1]), 3), "row_ids"),
        ((np.arange(5), 3, 1.5), "seed"),
    ],
)
def test_hash_folds_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        hash_folds(*args)


# ------------------------------------------------------------ SelfDistillCV
@given(
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 150), max_size=6),
    weights=st.sampled_from([None, "positive", "zeros"]),
    fit_intercept=st.booleans(),
    scoring=st.sampled_from([None, "r2"]),
    t=st.sampled_from([None, 2]),
    cond=st.sampled_from([None, 1e3, 1e6]),
)
def test_streamed_cv_scores_equal_refits_on_the_hashed_folds(
    seed, cuts, weights, fit_intercept, scoring, t, cond
):
    n, n_splits = 150, 4
    X, y = _data(n=n, d=5, t=t, seed=seed, cond=cond)
    w = None if weights is None else _weights(n, seed, weights == "zeros")
    alphas = _lam_max(X) * np.logspace(-6, 1, 5)
    est = RepeatedSelfDistillationRegressor(fit_intercept=fit_intercept)
    kw = dict(n_steps=(0, 1, 2, 3), scoring=scoring, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        streamed = SelfDistillCV(est, cv=n_splits, alphas=alphas, **kw).fit(
            _chunks(X, y, w, _cuts(cuts, n))
        )
    _check_against_refits(
        streamed, X, y, w, n_splits=n_splits, seed=seed, alphas=alphas, scoring=scoring
    )


def test_streamed_selection_is_the_constrained_optimum_of_the_refits():
    # One alpha and k = 2: the selected xi_bar minimises the summed
    # per-fold validation error of sum_m xi_bar[m] * (pure m-fold distillate)
    # under sum(xi_bar) = 1, solved here from Ridge refits with numpy.
    n, n_splits, k = 200, 5, 2
    X, y = _data(n=n, d=5, seed=11)
    w = _weights(n, 11, zeros=True)
    alpha = 0.3 * _lam_max(X, w)
    streamed = SelfDistillCV(
        cv=n_splits,
        alphas=[alpha],
        n_steps=(k,),
        random_state=3,
        selection="raw",
        filter_constraint="none",
    ).fit(_chunks(X, y, w, [0, 70, 71, 200]))
    folds = hash_folds(np.arange(n), n_splits, 3)
    rows, rhs = [], []
    for f in range(n_splits):
        tr, va = folds != f, folds == f
        Z = pure_distillates(X[tr], y[tr], X[va], alpha, k, w[tr], True)
        scale = np.sqrt(w[va] / w[va].sum())[:, None]
        rows.append(scale * Z)
        rhs.append(scale[:, 0] * y[va])
    M, v = np.vstack(rows), np.concatenate(rhs)
    N = np.vstack([-np.ones(k), np.eye(k)])  # x = e_0 + N c spans sum(x) = 1
    c = np.linalg.lstsq(M @ N, v - M[:, 0], rcond=None)[0]
    x = N @ c
    x[0] += 1
    best = -np.sum((M @ x - v) ** 2) / n_splits
    cond = np.linalg.cond(M @ N)
    # Both minimise a well-conditioned least-squares problem.
    assert cond < 1e4
    assert streamed.best_score_ == pytest.approx(best, rel=1e3 * EPS * cond**2)
    np.testing.assert_allclose(
        streamed.xi_bar_, x, rtol=0, atol=1e3 * EPS * cond * np.abs(x).max()
    )
    assert abs(streamed.xi_bar_[1:]).max() > 0.05  # a real distillate, not ridge


# The grid edge is not what this test is about: its warning is tested in
# test_cv.py::test_edge_of_grid_warning_names_the_callers_line.
@pytest.mark.filterwarnings("ignore::skdistill.exceptions.AlphaGridWarning")
def test_streamed_alpha_per_target_refits_each_target():
    X, Y = _data(n=120, d=4, t=2, seed=1)
    Y[:, 1] = np.sin(X[:, 0]) * 4
    kw = dict(n_steps=(0, 1, 2), alpha_per_target=True, alphas=np.logspace(-2, 3, 12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        streamed = SelfDistillCV(cv=3, **kw).fit(_chunks(X, Y, None, [0, 50, 51, 120]))
    pred = streamed.predict(X)
    for j, params in enumerate(streamed.best_params_):
        single = SelfDistillCV(cv=3, **{**kw, "alpha_per_target": False}).fit(
            _chunks(X, Y[:, j], None, [0, 120])
        )
        assert single.best_params_["n_steps"] == params["n_steps"]
        assert single.best_params_["alpha"] == pytest.approx(params["alpha"])
        params = {**params, "alpha": streamed.alpha_[j]}  # the refit alpha
        ref = RepeatedSelfDistillationRegressor(solver="svd", **params).fit(X, Y[:, j])
        atol = _prediction_atol(X, Y[:, j], None, params["alpha"], params["xi"], True)
        np.testing.assert_allclose(pred[:, j], ref.predict(X), rtol=0, atol=atol)


def test_csv_chunks_with_pandas_keep_feature_names(tmp_path):
    X, y = _data(n=300, d=4, seed=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(target=y)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    chunks = (
        (c.drop(columns="target"), c["target"]) for c in pd.read_csv(path, chunksize=64)
    )
    alphas = _lam_max(X) * np.logspace(-6, 1, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        streamed = SelfDistillCV(cv=5, random_state=7, alphas=alphas).fit(chunks)
    assert list(streamed.feature_names_in_) == ["a", "b", "c", "d"]
    _check_against_refits(streamed, X, y, None, n_splits=5, seed=7, alphas=alphas)
    # Predicting on the same columns does not warn; on a bare array it does,
    # as scikit-learn does, once.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_frame = streamed.predict(frame.drop(columns="target"))
    with pytest.warns(UserWarning, match="valid feature names") as record:
        from_array = streamed.predict(X)
    assert len(record) == 1
    bound = np.abs(X) @ np.abs(streamed.coef_) + abs(streamed.intercept_)
    atol = 10 * EPS * bound.max()
    np.testing.assert_allclose(from_frame, from_array, rtol=0, atol=atol)


def test_chunks_reject_a_separate_sample_weight():
    X, y = _data(n=30, d=3)
    with pytest.raises(ValueError, match="sample_weight.*inside"):
        SelfDistillCV(cv=2).fit(iter([(X, y)]), sample_weight=np.ones(30))


def test_a_failed_stream_leaves_a_fitted_search_as_it_was():
    X, y = _data(n=60, d=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(cv=2).fit(iter([(frame, y)]))
    before = search.predict(frame)
    bad = iter([(X[:30], y[:30]), (X[30:, :2], y[30:])])  # a narrower chunk
    with pytest.raises(ValueError, match="features"):
        search.fit(bad)
    assert search.n_features_in_ == 3
    assert list(search.feature_names_in_) == ["a", "b", "c"]
    np.testing.assert_array_equal(search.predict(frame), before)
    bad = iter([(frame[:30], y[:30]), (frame[["a", "b"]][30:], y[30:])])
    with pytest.raises(ValueError, match="feature"):
        search.fit(bad)
    np.testing.assert_array_equal(search.predict(frame), before)


@pytest.mark.parametrize(
    "params, est_cls",
    [({"n_steps": True}, SelfDistillCV), ({"n_steps": True}, None)],
)
def test_a_bool_is_not_a_number_of_steps(params, est_cls):
    X, y = _data(n=30, d=3)
    if est_cls is None:
        est = RepeatedSelfDistillationRegressor(**params)
        with pytest.raises(ValueError, match="n_steps"):
            est.fit(X, y)
        with pytest.raises(ValueError, match="n_steps"):
            est.partial_fit(X, y)
    else:
        with pytest.raises(ValueError, match="n_steps"):
            est_cls(cv=2, **params).fit(iter([(X, y)]))


@pytest.mark.parametrize(
    "kwargs, chunks, match",
    [
        ({"cv": [([0], [1])]}, None, "cv to be an int"),
        ({"cv": 3}, [np.ones(3)], "tuple"),
        ({"cv": 40}, None, "empty"),
        ({"cv": 3, "search": "optuna"}, None, "closed-form"),
        ({"cv": 3}, [], "no chunk"),
        (
            {"cv": 3, "estimator": KernelSelfDistillationRegressor()},
            None,
            "closed-form",
        ),
    ],
)
def test_streamed_bad_input(kwargs, chunks, match):
    X, y = _data(n=30, d=3)
    if chunks is None:
        chunks = [(X[:15], y[:15]), (X[15:], y[15:])]
    with pytest.raises(ValueError, match=match):
        SelfDistillCV(**kwargs).fit(iter(chunks))


def test_streamed_chunks_must_agree():
    X, y = _data(n=30, d=3)
    with pytest.raises(ValueError, match="features"):
        SelfDistillCV(cv=2).fit(iter([(X[:15], y[:15]), (X[15:, :2], y[15:])]))
    with pytest.raises(ValueError, match="groups"):
        SelfDistillCV(cv=2).fit(iter([(X, y)]), groups=np.zeros(30))


def test_missing_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"pip install .dask\[array,dataframe"):
        _import_dask()


# ---------------------------------------------------------------------- dask
def test_dask_array_and_dataframe_equal_refits_on_the_hashed_folds():
    da = pytest.importorskip("dask.array")
    dd = pytest.importorskip("dask.dataframe")
    import dask

    X, y = _data(n=400, d=6, seed=3)
    w = np.random.default_rng(3).uniform(0.5, 2, size=400)
    Xd = da.from_array(X, chunks=(90, 3))  # column chunks are merged
    yd = da.from_array(y, chunks=50)  # row chunks are aligned to X's
    wd = da.from_array(w, chunks=400)
    alphas = _lam_max(X, w) * np.logspace(-6, 1, 6)
    kw = dict(n_steps=(0, 1, 2), random_state=5, alphas=alphas)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with dask.config.set(scheduler="threads"):
            on_dask = SelfDistillCV(cv=5, **kw).fit(Xd, yd, sample_weight=wd)
        assert on_dask.n_features_in_ == 6
        assert not hasattr(on_dask, "feature_names_in_")
        _check_against_refits(on_dask, X, y, w, n_splits=5, seed=5, alphas=alphas)

        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
        ddf = dd.from_pandas(frame, npartitions=3)
        dy = dd.from_pandas(pd.Series(y), npartitions=3)
        alphas = _lam_max(X) * np.logspace(-6, 1, 6)
        with dask.config.set(scheduler="sync"):
            from_frame = SelfDistillCV(cv=5, **{**kw, "alphas": alphas}).fit(ddf, dy)
    _check_against_refits(from_frame, X, y, None, n_splits=5, seed=5, alphas=alphas)
    assert list(from_frame.feature_names_in_) == list(frame.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same columns: no feature-name warning
        from_frame.predict(frame)
    with pytest.warns(UserWarning, match="valid feature names"):
        from_frame.predict(X)


def test_dask_float32_and_bad_sample_weight():
    da = pytest.importorskip("dask.array")
    X, y = _data(n=90, d=3, seed=9)
    Xd = da.from_array(X.astype(np.float32), chunks=(30, 3))
    yd = da.from_array(y, chunks=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(cv=3).fit(Xd, yd)
    assert search.coef_.dtype == np.float32
    assert search.predict(X.astype(np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="sample_weight must be 1-D"):
        SelfDistillCV(cv=3).fit(Xd, yd, sample_weight=np.ones((90, 2)))
    with pytest.raises(ValueError, match="sample_weight has 89 rows"):
        SelfDistillCV(cv=3).fit(Xd, yd, sample_weight=np.ones(89))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        constant = SelfDistillCV(cv=3).fit(Xd, yd, sample_weight=2.0)
        explicit = SelfDistillCV(cv=3).fit(Xd, yd, sample_weight=np.full(90, 2.0))
    np.testing.assert_array_equal(constant.predict(X), explicit.predict(X))


def test_dask_distributed_local_cluster():
    pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    X, y = _data(n=300, d=4, t=2, seed=4)
    alphas = _lam_max(X) * np.logspace(-6, 1, 4)
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", ConvergenceWarning)
        Xd = da.from_array(X, chunks=(70, 4))
        yd = da.from_array(y, chunks=(70, 2))
        on_cluster = SelfDistillCV(cv=3, n_steps=(0, 1), alphas=alphas).fit(Xd, yd)
        import dask

        assert dask.base.get_scheduler() == client.get  # the cluster computes
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    _check_against_refits(on_cluster, X, y, None, n_splits=3, seed=0, alphas=alphas)


def test_fit_with_many_targets_keeps_no_quadratic_state():
    # A factor of [1, X, Y] would hold (1 + d + t)**2 numbers: above 64
    # targets fit keeps none, and partial_fit says so and starts afresh.
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 70))
    est = RepeatedSelfDistillationRegressor().fit(X, Y)
    assert est._stream.rows is None and "70 targets" in est._stream.unavailable
    with pytest.warns(UserWarning, match="70 targets"):
        est.partial_fit(X[:10], Y[:10])
    fresh = RepeatedSelfDistillationRegressor().partial_fit(X[:10], Y[:10])
    np.testing.assert_allclose(est.coef_, fresh.coef_, rtol=1e-12)


@pytest.mark.parametrize("source", ["chunks", "dask"])
def test_per_target_streamed_search_equals_single_target_searches(source):
    # alpha_per_target on streamed data: every target's choice, scores and
    # predictions equal a streamed search of that target alone (same folds).
    X, Y = _data(n=160, d=4, t=3, seed=9)
    Y[:, 2] = np.sin(X[:, 0]) * 3  # a target with another optimum
    kw = dict(cv=4, n_steps=(0, 1, 2), random_state=2, alphas=np.logspace(-2, 3, 8))

    def fit(y, **extra):
        if source == "dask":
            da = pytest.importorskip("dask.array")
            data = (da.from_array(X, chunks=50), da.from_array(y, chunks=50))
        else:
            data = (_chunks(X, y, None, [0, 50, 110, 160]),)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return SelfDistillCV(**kw, **extra).fit(*data)

    joint = fit(Y, alpha_per_target=True)
    for j in range(3):
        alone = fit(Y[:, j])
        assert joint.cv_alpha_[j] == alone.cv_alpha_
        assert joint.n_steps_[j] == alone.n_steps_
        k = alone.n_steps_
        np.testing.assert_allclose(
            joint.xi_bar_[j, : k + 1], alone.xi_bar_, rtol=1e-6, atol=1e-12
        )
        np.testing.assert_allclose(
            joint.predict(X)[:, j], alone.predict(X), rtol=1e-6, atol=1e-9
        )


# ------------------------------------------- preconditioned Cholesky path
def _factors(X, y, w, n_folds, seed, chunk):
    """FoldFactors of hashed folds, the rows added in chunks of ``chunk`` rows."""
    n = X.shape[0]
    folds = hash_folds(np.arange(n), n_folds, seed)
    Y = y.reshape(n, -1)
    F = FoldFactors(n_folds, X.shape[1], Y.shape[1])
    for a in range(0, n, chunk):
        rows = slice(a, a + chunk)
        F.add(X[rows], Y[rows], None if w is None else w[rows], folds[rows])
    return F, folds


@pytest.mark.parametrize("cond", [1.0, 1e4, 1e8])
@pytest.mark.parametrize("weighted", [False, True])
def test_preconditioned_factors_have_the_spectrum_of_each_fold(cond, weighted):
    # Chunks large enough for the Cholesky path (after a Householder head):
    # each fold's factor has the singular values of the fold's centred rows
    # to eps * s_max (a Householder QR's normwise accuracy), at condition
    # numbers where an unpreconditioned Gram matrix would lose them all
    # (its error in s_min would be eps * s_max * cond = s_max at cond 1e8).
    n, d = 6000, 6
    X, y = _data(n=n, d=d, seed=4, cond=cond)
    w = _weights(n, 4, zeros=True) if weighted else None
    F, folds = _factors(X, y, w, 4, 1, 3000)
    assert F.n_rows_preconditioned > n // 2  # the path under test was taken
    assert F._failures == 0
    for f in range(4):
        va = folds == f
        got = spectrum_from_factor(F.R[f], d)
        Yv = y[va].reshape(-1, 1)
        wv = None if w is None else w[va]
        ref = decompose(X[va], Yv, sample_weight=wv, solver="svd")
        s_max = np.sqrt(ref.lam.max())
        np.testing.assert_allclose(
            np.sqrt(np.sort(got.lam)),
            np.sqrt(np.sort(ref.lam)),
            rtol=0,
            atol=1e3 * EPS * s_max,
        )
        for rel in (1e-8, 1e-3, 1.0):  # filtered coefficients, sign-free
            alpha = rel * ref.lam.max()
            kappa = 1 + 1 / rel
            np.testing.assert_allclose(
                got.coef(1 / (got.lam + alpha)),
                ref.coef(1 / (ref.lam + alpha)),
                rtol=1e3 * EPS * kappa,
                atol=1e3 * EPS * kappa * np.abs(ref.coef(1 / (ref.lam + alpha))).max(),
            )


def test_preconditioned_streamed_cv_equals_refits_on_the_hashed_folds():
    # The whole search on chunks that take the Cholesky path, against Ridge
    # refits of each fold (tolerances from the regularised condition number).
    n, n_splits, seed = 8000, 4, 5
    X, y = _data(n=n, d=5, seed=seed, cond=1e6)
    w = _weights(n, seed, zeros=True)
    alphas = _lam_max(X, w) * np.logspace(-6, 1, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        streamed = SelfDistillCV(
            cv=n_splits, alphas=alphas, n_steps=(0, 1, 2, 3), random_state=seed
        ).fit(_chunks(X, y, w, [0, 4000, 8000]))
    F, _ = _factors(X, y, w, n_splits, seed, 4000)
    assert F.n_rows_preconditioned > n // 2
    _check_against_refits(
        streamed, X, y, w, n_splits=n_splits, seed=seed, alphas=alphas
    )


@pytest.mark.parametrize("change", ["scale", "collinear"])
def test_rows_unlike_the_preconditioner_fall_back_to_householder(change):
    # A chunk whose rows differ from the head that built the preconditioner
    # (one feature 1e5 times larger, or two features made equal) fails the
    # condition test and is factored by Householder: the factors still have
    # each fold's spectrum.
    n, d = 9000, 6
    X, y = _data(n=n, d=d, seed=8)
    if change == "scale":
        X[3000:, 2] *= 1e5
    else:
        X[3000:, 1] = X[3000:, 0]
    F, folds = _factors(X, y, None, 4, 2, 3000)
    assert F._failures >= 1
    for f in range(4):
        va = folds == f
        got = spectrum_from_factor(F.R[f], d)
        ref = decompose(X[va], y[va].reshape(-1, 1), solver="svd")
        s_max = np.sqrt(ref.lam.max())
        np.testing.assert_allclose(
            np.sqrt(np.sort(np.maximum(got.lam, 0))),
            np.sqrt(np.sort(np.maximum(ref.lam, 0))),
            rtol=0,
            atol=1e3 * EPS * s_max,
        )


def test_the_estimator_and_its_factors_import_no_search_module():
    # _linear (and the _factors it fits from) sit below the searches: the
    # package-relative imports reachable from them name no CV, search or
    # streaming module (read statically: importing would load the package).
    import ast
    from pathlib import Path

    import skdistill

    root = Path(skdistill.__file__).parent

    def imports(name):
        tree = ast.parse((root / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module is None:
                    yield from (alias.name for alias in node.names)
                else:
                    yield node.module.split(".")[0]

    seen, todo = set(), ["_linear"]
    while todo:
        name = todo.pop()
        if name not in seen and (root / f"{name}.py").exists():
            seen.add(name)
            todo.extend(imports(name))
    assert {"_linear", "_factors", "_spectral"} <= seen
    searches = {n for n in seen if n.startswith("_cv") or n.endswith("_search")}
    assert not searches and "_streaming" not in seen, sorted(seen)
