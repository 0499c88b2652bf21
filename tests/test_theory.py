"""Tests of skdistill.theory against the estimator itself."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from skdistill import RepeatedSelfDistillationRegressor, xi_to_xi_bar
from skdistill.datasets import make_self_distillation_regression
from skdistill.theory import (
    excess_risk,
    excess_risk_quadratic,
    optimal_xi,
    optimal_xi_bar,
    risk_lower_bound,
)


def _problem(n_samples=12, s=(1.0, 0.5, 1 / 3, 0.25), directions=(0,), seed=0):
    X, _, coef = make_self_distillation_regression(
        n_samples=n_samples,
        n_features=len(s),
        singular_values=s,
        coef_directions=directions,
        random_state=seed,
    )
    return X, coef


def _exact_risk_by_estimator(X, coef, noise, alpha, xi):
    """E ||X (theta_hat - coef)||^2 / n from the estimator's linear smoother.

    The estimator is linear in y: fitting it on the n unit vectors (one
    multi-output fit) gives the matrix S with theta_hat = S y, so the mean
    and covariance of theta_hat under y = X coef + noise * e are exact.
    """
    n = X.shape[0]
    reg = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=len(xi), xi=xi, fit_intercept=False, solver="svd"
    )
    S = reg.fit(X, np.eye(n)).coef_.T  # (d, n)
    bias = X @ (S @ (X @ coef)) - X @ coef
    return (bias @ bias + noise**2 * np.sum((X @ S) ** 2)) / n


@pytest.mark.parametrize(
    "alpha, xi", [(0.1, []), (0.1, [0.5]), (0.05, [2.0, -1.5]), (1.0, [-3, 4, 0.7])]
)
def test_excess_risk_matches_the_estimator_exactly(alpha, xi):
    X, coef = _problem(directions=(0, 2))
    expected = _exact_risk_by_estimator(X, coef, 0.2, alpha, xi)
    assert excess_risk(X, coef, noise=0.2, alpha=alpha, xi=xi) == pytest.approx(
        expected, rel=1e-10
    )


def test_excess_risk_matches_monte_carlo():
    # Monte-Carlo average over noise draws, all fitted at once as the columns
    # of a multi-output y.
    X, coef = _problem(n_samples=20)
    noise, alpha, xi = 0.125, 0.1, [-1.0, 1.5]
    n_draws = 4000
    rng = np.random.default_rng(0)
    Y = (X @ coef)[:, None] + noise * rng.standard_normal((X.shape[0], n_draws))
    reg = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=2, xi=xi, fit_intercept=False
    ).fit(X, Y)
    errors = np.sum((X @ (reg.coef_ - coef).T) ** 2, axis=0) / X.shape[0]
    exact = excess_risk(X, coef, noise=noise, alpha=alpha, xi=xi)
    stderr = errors.std(ddof=1) / np.sqrt(n_draws)
    assert abs(errors.mean() - exact) < 4 * stderr
    assert stderr < 0.05 * exact  # the check has power


@given(
    xi_bar=st.lists(st.floats(-5, 5), min_size=1, max_size=4),
    alpha=st.floats(1e-2, 10),
)
def test_quadratic_form_equals_risk(xi_bar, alpha):
    xi_bar = np.asarray(xi_bar)
    xi_bar = np.append(xi_bar, 1 - xi_bar.sum())  # sum to one
    X, coef = _problem(directions=(1,))
    A, b, c = excess_risk_quadratic(
        X, coef, noise=0.3, alpha=alpha, n_steps=xi_bar.size - 1
    )
    via_quadratic = xi_bar @ A @ xi_bar - 2 * b @ xi_bar + c
    direct = excess_risk(X, coef, noise=0.3, alpha=alpha, xi_bar=xi_bar)
    assert via_quadratic == pytest.approx(direct, rel=1e-8, abs=1e-12)
    assert np.all(np.linalg.eigvalsh(A) > -1e-12)


@given(
    perturbation=st.lists(st.floats(-1, 1), min_size=3, max_size=3),
    alpha=st.floats(0.05, 5),
)
def test_optimum_beats_perturbed_and_ridge(perturbation, alpha):
    X, coef = _problem()
    xi_bar, risk = optimal_xi_bar(X, coef, noise=0.125, alpha=alpha, n_steps=2)
    assert xi_bar.sum() == pytest.approx(1.0)
    d = np.asarray(perturbation) - np.mean(perturbation)  # keeps the sum at one
    other = excess_risk(X, coef, noise=0.125, alpha=alpha, xi_bar=xi_bar + d)
    assert risk <= other + 1e-12
    ridge = excess_risk(X, coef, noise=0.125, alpha=alpha, xi=[])
    assert risk <= ridge + 1e-12
    assert risk >= risk_lower_bound(X, coef, noise=0.125) - 1e-12


def test_optimal_xi_realises_optimal_xi_bar():
    X, coef = _problem()
    xi, risk = optimal_xi(X, coef, noise=0.125, alpha=0.5, n_steps=3)
    xi_bar, risk_bar = optimal_xi_bar(X, coef, noise=0.125, alpha=0.5, n_steps=3)
    np.testing.assert_allclose(xi_to_xi_bar(xi), xi_bar, rtol=1e-8)
    assert risk == risk_bar
    # and the estimator with those xi has that risk
    assert _exact_risk_by_estimator(X, coef, 0.125, 0.5, xi) == pytest.approx(
        risk, rel=1e-7
    )


def test_lower_bound_is_the_best_shrinkage_per_direction():
    X, coef = _problem(directions=(0, 1, 3))
    noise = 0.4
    n = X.shape[0]
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    total = 0.0
    for sj, vj in zip(s, Vt, strict=True):
        w = (sj * vj @ coef) ** 2
        best = minimize_scalar(lambda phi, w=w: w * (1 - phi) ** 2 + noise**2 * phi**2)
        total += best.fun
    assert risk_lower_bound(X, coef, noise=noise) == pytest.approx(total / n)


@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0, 10.0])
def test_r_steps_reach_the_lower_bound(alpha):
    # d = r = 4 distinct singular values: the filter h * p_r(h) with
    # p_r(1) = 1 has r free coefficients, enough for the r optimal shrinkages.
    X, coef = _problem()
    bound = risk_lower_bound(X, coef, noise=0.125)
    risks = [
        optimal_xi_bar(X, coef, noise=0.125, alpha=alpha, n_steps=k)[1]
        for k in range(5)
    ]
    assert risks[4] == pytest.approx(bound, rel=1e-8)
    assert risks[3] > bound * (1 + 1e-8)  # one step fewer does not reach it
    assert np.all(np.diff(risks) <= 1e-15)  # more steps never hurt


def test_noise_free_bound_is_zero_and_errors():
    X, coef = _problem()
    assert risk_lower_bound(X, coef, noise=0.0) == 0.0
    with pytest.raises(ValueError, match="alpha"):
        excess_risk(X, coef, noise=0.1, alpha=0.0, xi=[])
    with pytest.raises(ValueError, match="noise"):
        optimal_xi_bar(X, coef, noise=-1.0, alpha=1.0, n_steps=1)
    with pytest.raises(ValueError, match="n_steps"):
        optimal_xi_bar(X, coef, noise=0.1, alpha=1.0, n_steps=-1)
    with pytest.raises(ValueError, match="exactly one"):
        excess_risk(X, coef, noise=0.1, alpha=1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        excess_risk(X, coef, noise=0.1, alpha=1.0, xi_bar=[0.5, 0.6])
    with pytest.raises(ValueError, match="coef"):
        risk_lower_bound(X, coef[:2], noise=0.1)
