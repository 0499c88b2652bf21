"""Tests of SelfDistillationRegressor."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.tree import DecisionTreeRegressor

from skdistill import RepeatedSelfDistillationRegressor, SelfDistillationRegressor


@settings(deadline=None)
@given(
    n_steps=st.integers(0, 3),
    alpha=st.floats(1e-2, 1e2),
    xi=st.lists(st.floats(-2.0, 3.0), min_size=3, max_size=3),
    n_targets=st.sampled_from([0, 2]),
    weighted=st.booleans(),
    fit_intercept=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_ridge_equals_closed_form(
    n_steps, alpha, xi, n_targets, weighted, fit_intercept, seed
):
    """Refitting Ridge on mixed labels equals the closed-form spectral filter."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(30, 5))
    shape = (30,) if n_targets == 0 else (30, n_targets)
    y = rng.normal(size=shape) + 3.0
    sw = rng.uniform(0.2, 2.0, size=30) if weighted else None
    xi = np.asarray(xi[:n_steps])
    naive = SelfDistillationRegressor(
        Ridge(alpha=alpha, fit_intercept=fit_intercept), n_steps=n_steps, xi=xi
    ).fit(X, y, sample_weight=sw)
    closed = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=n_steps, xi=xi, fit_intercept=fit_intercept
    ).fit(X, y, sample_weight=sw)
    # Both sides solve ridge problems with cond(X^T X + alpha) < 1e2 on
    # N(0, 1) data; k <= 3 steps amplify rounding by at most (1 + max|xi|)^k
    # <= 64, and |y| ~ 3: errors stay below eps * 1e2 * 64 * 10 ~ 1e-11. The
    # tolerance keeps three orders of margin and fails on any wrong filter.
    for a, b in zip(naive.staged_predict(X), closed.staged_predict(X), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(naive.estimators_[-1].coef_, closed.coef_, atol=1e-8)


def test_default_is_ridge_and_matches_closed_form():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    y = X @ rng.normal(size=6) + rng.normal(size=40)
    reg = SelfDistillationRegressor(n_steps=2).fit(X, y)
    assert all(isinstance(e, Ridge) for e in reg.estimators_)
    closed = RepeatedSelfDistillationRegressor(n_steps=2).fit(X, y)
    np.testing.assert_allclose(reg.predict(X), closed.predict(X), rtol=1e-10)


@pytest.mark.parametrize(
    "estimator",
    [
        Ridge(alpha=3.0),
        DecisionTreeRegressor(max_depth=3, random_state=0),
        GradientBoostingRegressor(n_estimators=15, random_state=0),
    ],
)
def test_xi_zero_equals_base_estimator(estimator):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    y = np.sin(X[:, 0]) + rng.normal(scale=0.3, size=80)
    reg = SelfDistillationRegressor(estimator, n_steps=3, xi=0.0).fit(X, y)
    expected = estimator.fit(X, y).predict(X)
    for pred in reg.staged_predict(X):
        np.testing.assert_allclose(pred, expected, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_students_fit_mixed_labels_of_previous_step():
    """Independent loop of naive refits, with an MLP and per-step xi."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    y = X[:, 0] ** 2 + rng.normal(scale=0.2, size=60)
    mlp = MLPRegressor(hidden_layer_sizes=(8,), max_iter=200, random_state=0)
    xi = [0.5, 1.5, -0.5]
    reg = SelfDistillationRegressor(mlp, n_steps=3, xi=xi).fit(X, y)
    prev = mlp.fit(X, y).predict(X)
    preds = [prev]
    for x in xi:
        prev = MLPRegressor(**mlp.get_params()).fit(X, x * prev + (1 - x) * y)
        prev = prev.predict(X)
        preds.append(prev)
    for a, b in zip(reg.staged_predict(X), preds, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert len(reg.estimators_) == 4


def test_bad_parameters_raise_in_fit():
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = X[:, 0]
    with pytest.raises(ValueError, match="xi must be a float or an array"):
        SelfDistillationRegressor(n_steps=2, xi=[0.5]).fit(X, y)
    with pytest.raises(ValueError, match="xi must be finite"):
        SelfDistillationRegressor(n_steps=2, xi=[0.5, np.nan]).fit(X, y)
    with pytest.raises(ValueError, match="n_steps"):
        SelfDistillationRegressor(n_steps=-1).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        SelfDistillationRegressor(KNeighborsRegressor()).fit(
            X, y, sample_weight=np.ones(20)
        )


def _two_ridge_steps(X, y, alpha, xi):
    """Teacher and one student by hand: Ridge refitted on the mixed labels."""
    teacher = Ridge(alpha=alpha).fit(X, y)
    return Ridge(alpha=alpha).fit(X, xi * teacher.predict(X) + (1 - xi) * y)


@pytest.mark.parametrize("estimator", [Ridge(), None])
def test_nested_parameters_reach_the_fitted_steps(estimator):
    """estimator__alpha is listed, set and used by every step, also for None."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 5))
    y = X @ rng.normal(size=5) + rng.normal(size=40)
    reg = SelfDistillationRegressor(estimator, n_steps=1, xi=0.7)
    reg.set_params(estimator__alpha=30.0)
    assert reg.get_params()["estimator__alpha"] == 30.0
    reg.fit(X, y)
    assert [e.alpha for e in reg.estimators_] == [30.0, 30.0]
    expected = _two_ridge_steps(X, y, 30.0, 0.7).predict(X)
    # The same Ridge solves on the same arrays: equal up to rounding.
    np.testing.assert_allclose(reg.predict(X), expected, rtol=1e-12, atol=1e-12)
    default = _two_ridge_steps(X, y, 1.0, 0.7).predict(X)
    assert not np.allclose(reg.predict(X), default, rtol=1e-3)


def test_set_params_with_none_keeps_other_parameters_and_explicit_estimator():
    reg = SelfDistillationRegressor(n_steps=2)
    reg.set_params(n_steps=3, estimator__alpha=5.0, xi=0.2)
    assert (reg.n_steps, reg.xi) == (3, 0.2)
    assert isinstance(reg.estimator, Ridge) and reg.estimator.alpha == 5.0
    # An explicit estimator given with its nested parameter in one call.
    reg.set_params(estimator=DecisionTreeRegressor(), estimator__max_depth=2)
    assert isinstance(reg.estimator, DecisionTreeRegressor)
    assert reg.estimator.max_depth == 2
    with pytest.raises(ValueError, match="Invalid parameter"):
        SelfDistillationRegressor().set_params(estimator__no_such_param=1)


def test_grid_search_over_nested_parameter_of_default_estimator():
    """GridSearchCV(SelfDistillationRegressor(), {"estimator__alpha": ...})."""
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

    rng = np.random.default_rng(5)
    X = rng.normal(size=(50, 6))
    y = X @ rng.normal(size=6) + rng.normal(size=50)
    grid = [1e-2, 1e3]
    search = GridSearchCV(
        SelfDistillationRegressor(n_steps=1),
        {"estimator__alpha": grid},
        cv=KFold(3),
        scoring="neg_mean_squared_error",
    ).fit(X, y)
    expected = [
        cross_val_score(
            SelfDistillationRegressor(Ridge(alpha=a), n_steps=1),
            X,
            y,
            cv=KFold(3),
            scoring="neg_mean_squared_error",
        ).mean()
        for a in grid
    ]
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], expected, rtol=1e-12
    )
    assert expected[0] > 1.5 * expected[1]  # the parameter matters here
    assert search.best_params_ == {"estimator__alpha": 1e-2}
    assert search.best_estimator_.estimator.alpha == 1e-2


@pytest.mark.parametrize("estimator", [Ridge(), None])
def test_tuned_by_self_distill_cv(estimator):
    """The default optuna space tunes n_steps, xi and estimator__alpha.

    Also with ``estimator=None``: the default Ridge's alpha is searched.
    """
    pytest.importorskip("optuna")
    from sklearn.base import clone
    from sklearn.model_selection import KFold, cross_val_score

    from skdistill import SelfDistillCV

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 5))
    y = X @ rng.normal(size=5) + rng.normal(size=60)
    est = SelfDistillationRegressor(estimator)
    search = SelfDistillCV(est, n_steps=(0, 1, 2), n_trials=6, random_state=0)
    search.fit(X, y)
    assert {"n_steps", "estimator__alpha"} <= set(search.best_params_)
    expected = cross_val_score(
        clone(est).set_params(**search.best_params_),
        X,
        y,
        cv=KFold(5),
        scoring="neg_mean_squared_error",
    )
    np.testing.assert_allclose(search.best_score_, expected.mean(), rtol=1e-10)
