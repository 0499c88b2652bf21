"""Huge per-step weights with a tame filter: every solver stays accurate.

Cross-validation picks ``xi_bar`` (the filter's coefficients); the per-step
weights that realise it can be of order 1e9 even when ``xi_bar`` is of order
one. A recursion in ``xi`` then cancels catastrophically, so every solver must
evaluate the chain from ``xi_bar``. The reference is the filter computed
directly from ``xi_bar`` on a dense SVD (or eigendecomposition of K).
"""

import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel

from skdistill import (
    KernelSelfDistillationRegressor,
    RepeatedSelfDistillationRegressor,
    xi_bar_to_xi,
    xi_to_xi_bar,
)

XI_BAR = np.array([1.0 - 1e-9, -1.0, 1.0 + 1e-9])


def test_the_weights_are_huge_and_represent_the_filter():
    xi = xi_bar_to_xi(XI_BAR)
    assert np.abs(xi).max() > 1e8
    np.testing.assert_allclose(xi_to_xi_bar(xi), XI_BAR, rtol=0, atol=1e-12)


@pytest.mark.parametrize("solver", ["svd", "gram", "dual", "cholesky"])
@pytest.mark.parametrize("shape", [(60, 8), (20, 40)])
def test_linear_solvers_follow_xi_bar(solver, shape):
    rng = np.random.default_rng(0)
    X = rng.normal(size=shape)
    y = X @ rng.normal(size=shape[1]) + rng.normal(size=shape[0])
    alpha = 3.0
    est = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=2, xi=xi_bar_to_xi(XI_BAR), solver=solver
    ).fit(X, y)
    Xc, yc = X - X.mean(0), y - y.mean()
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    h = s**2 / (s**2 + alpha)
    phi = h * np.polyval(XI_BAR[::-1], h)
    expected = Vt.T @ (phi / s * (U.T @ yc))
    np.testing.assert_allclose(est.coef_, expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("solver", ["eigh", "cholesky"])
def test_kernel_solvers_follow_xi_bar(solver):
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, size=(50, 1))
    y = np.sin(2 * X[:, 0]) + 0.3 * rng.normal(size=50)
    alpha = 0.5
    est = KernelSelfDistillationRegressor(
        alpha=alpha, n_steps=2, xi=xi_bar_to_xi(XI_BAR), gamma=1.0, solver=solver
    ).fit(X, y)
    d, Q = np.linalg.eigh(rbf_kernel(X, gamma=1.0))
    h = d / (d + alpha)
    q = np.polyval(XI_BAR[::-1], h) / (d + alpha)
    expected = Q @ (q * (Q.T @ y))
    np.testing.assert_allclose(est.dual_coef_, expected, rtol=1e-7, atol=1e-9)
