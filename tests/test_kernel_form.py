"""Wide data (d > n): the ``"dual"`` fit in the kernel form.

``skdistill._spectral.kernel_fit`` solves the chain by Cholesky factors of
``K + alpha I`` (``K = Xc Xc^T``) and takes ``singular_values_`` from the
eigenvalues of ``K``; it falls back to the eigendecomposition of ``K`` when
some ``alpha`` is below the rank cut-off or more than four penalties would
need their own factor. Every route must give the numbers of explicit refits:
scikit-learn ``Ridge(solver="svd")`` fits on the mixed labels (float64), and
NumPy's SVD of the centred data for the singular values.

Tolerance: an eigendecomposition or a Cholesky solve of ``K + alpha I`` is
backward stable with an error of order ``max(n, d) * eps * lam_max``; a
filter amplifies it by at most ``kappa = (lam_max + alpha) / (lam_min +
alpha)`` over the non-null directions (the centring's null direction carries
no part of ``y``), and a student's filter by ``1 + sum |xi_bar|`` more.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge

from skdistill import RepeatedSelfDistillationRegressor, xi_to_xi_bar
from skdistill._spectral import KernelFit, Spectrum, kernel_fit

EPS64 = float(np.finfo(np.float64).eps)


def _refit_path(X, y, alphas, xis, w=None, fit_intercept=True):
    """Coefficients of the teacher and every student by ``Ridge`` refits."""
    labels, path = y, []
    for i, alpha in enumerate(alphas):
        ridge = Ridge(alpha=alpha, solver="svd", fit_intercept=fit_intercept)
        ridge.fit(X, labels, sample_weight=w)
        path.append(ridge.coef_)
        if i < len(xis):
            labels = xis[i] * ridge.predict(X) + (1.0 - xis[i]) * y
    return np.array(path)


def _centred_s(X, w=None, fit_intercept=True):
    w = np.ones(X.shape[0]) if w is None else w
    Xc = X - np.average(X, axis=0, weights=w) if fit_intercept else X
    return np.linalg.svd(np.sqrt(w)[:, None] * Xc, compute_uv=False)


def _rtol(s, alpha, shape, xis):
    lam = s[s > s.max() * 1e-12] ** 2
    kappa = (lam.max() + alpha) / (lam.min() + alpha)
    amp = float(np.sum(np.abs(xi_to_xi_bar(np.asarray(xis, float))))) if xis else 1
    return 64 * max(shape) * EPS64 * kappa * max(amp, 1.0)


def _wide(n=30, d=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(1.0, 0.05, d) + 1.0
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n) + 3.0
    return X, y


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_chain_equals_refits(sparse, weighted, fit_intercept):
    """The Cholesky chain on wide data equals Ridge refits on mixed labels."""
    X, y = _wide()
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0]) if weighted else None
    alphas, xis = [0.5, 2.0, 2.0, 0.5], [0.5, 1.5, -0.3]
    got = kernel_fit(
        sp.csr_matrix(X) if sparse else X,
        y[:, None],
        np.array(alphas),
        np.array(xis),
        sample_weight=w,
        fit_intercept=fit_intercept,
        rank_rtol=max(X.shape) * EPS64,
    )
    assert isinstance(got, KernelFit)
    est = RepeatedSelfDistillationRegressor(
        alpha=alphas, n_steps=3, xi=xis, fit_intercept=fit_intercept
    ).fit(sp.csr_matrix(X) if sparse else X, y, sample_weight=w)
    assert est.solver_ == "dual"
    ref = _refit_path(X, y, alphas, xis, w, fit_intercept)
    s = _centred_s(X, w, fit_intercept)
    rtol = _rtol(s, min(alphas), X.shape, xis)
    for step in range(4):
        for coef in (est.coef_path_[step], got.coef_path[step, 0]):
            err = np.linalg.norm(coef - ref[step])
            assert err <= rtol * np.linalg.norm(ref[step])
    # sqrt of eigenvalues with absolute error ~ max(n, d) eps lam_max.
    tol = 64 * max(X.shape) * EPS64 * s.max() ** 2 / np.maximum(s, s.max() * 1e-4)
    nonnull = s > s.max() * 1e-6
    assert np.all(np.abs(est.singular_values_[nonnull] - s[nonnull]) <= tol[nonnull])


def test_many_penalties_and_tiny_alpha_use_the_eigendecomposition():
    """More than four penalties, or an alpha below the cut-off: the spectrum."""
    X, y = _wide()
    Y = y[:, None]
    rtol = max(X.shape) * EPS64
    five = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert isinstance(kernel_fit(X, Y, five, np.full(4, 0.5), rank_rtol=rtol), Spectrum)
    tiny = np.array([1e-30])
    assert isinstance(kernel_fit(X, Y, tiny, np.zeros(0), rank_rtol=rtol), Spectrum)
    # Both routes still equal refits (the fallback is today's "dual").
    est = RepeatedSelfDistillationRegressor(alpha=five, n_steps=4, xi=0.5).fit(X, y)
    ref = _refit_path(X, y, five, [0.5] * 4)
    tol = _rtol(_centred_s(X), 0.1, X.shape, [0.5] * 4)
    assert np.linalg.norm(est.coef_path_ - ref) <= tol * np.linalg.norm(ref)


def test_per_target_penalties():
    """Per-target alphas (few distinct): each target equals its own refits."""
    X, y = _wide()
    Y = np.column_stack([y, -2 * y + X[:, 0], X[:, 3]])
    alpha = np.array([[0.3], [1.0], [3.0]])
    est = RepeatedSelfDistillationRegressor(alpha=alpha, n_steps=2, xi=0.7).fit(X, Y)
    assert est.solver_ == "dual"
    for t in range(3):
        ref = _refit_path(X, Y[:, t], [alpha[t, 0]] * 3, [0.7, 0.7])
        tol = _rtol(_centred_s(X), alpha[t, 0], X.shape, [0.7, 0.7])
        err = np.linalg.norm(est.coef_path_[:, t] - ref)
        assert err <= tol * np.linalg.norm(ref)


@st.composite
def _wide_problems(draw):
    n = draw(st.integers(3, 25))
    d = draw(st.integers(n + 1, 3 * n + 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = 10 ** draw(st.floats(-2.0, 0.0))
    X = rng.normal(size=(n, d)) * np.linspace(1.0, scale, d)
    y = X @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    s = _centred_s(X)
    alpha = float(s.max() ** 2 * 10 ** draw(st.floats(-6.0, 1.0)))
    k = draw(st.integers(0, 3))
    xis = draw(st.lists(st.floats(-1.0, 2.0), min_size=k, max_size=k))
    return X, y, alpha, xis


@settings(max_examples=40, deadline=None)
@given(_wide_problems())
def test_wide_fit_matches_refits(problem):
    """Property: the default fit on wide data equals Ridge refits."""
    X, y, alpha, xis = problem
    est = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=len(xis), xi=xis if xis else 0.5
    ).fit(X, y)
    ref = _refit_path(X, y, [alpha] * (len(xis) + 1), xis)
    tol = _rtol(_centred_s(X), alpha, X.shape, xis)
    for step in range(len(xis) + 1):
        err = np.linalg.norm(est.coef_path_[step] - ref[step])
        assert err <= tol * np.linalg.norm(ref[step]) + 1e-300
