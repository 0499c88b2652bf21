"""Tests of skdistill.plotting: the data each display holds, and that it draws."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

import skdistill
from skdistill import RepeatedSelfDistillationRegressor
from skdistill.plotting import SelfDistillCVDisplay, SpectralFilterDisplay

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)) * [3.0, 2.0, 1.0, 0.5, 0.1]
    y = X @ rng.normal(size=5) + rng.normal(scale=0.5, size=40)
    return X, y


def _filters_from_coefficients(X, y, coef_path):
    """Filter factors read off fitted coefficients through an independent SVD.

    Along right singular vector ``v_j`` the least-squares coefficient is
    ``u_j^T yc / s_j``; a filtered fit multiplies it by ``phi_j``.
    """
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    ols = (U.T @ yc) / s
    return s**2, (coef_path @ Vt.T) / ols


def test_spectral_filter_matches_fitted_coefficients(data):
    X, y = data
    reg = RepeatedSelfDistillationRegressor(alpha=2.0, n_steps=3, xi=[0.5, 1.5, -0.7])
    reg.fit(X, y)
    display = SpectralFilterDisplay.from_estimator(reg)

    lam, expected = _filters_from_coefficients(X, y, reg.coef_path_)
    assert_allclose(display.eigenvalues, lam, rtol=1e-10)
    assert display.filter_factors.shape == (4, 5)
    assert_allclose(display.filter_factors, expected, rtol=1e-8)
    # The teacher's row is ridge: scikit-learn's Ridge gives the same filter.
    _, ridge = _filters_from_coefficients(X, y, Ridge(alpha=2.0).fit(X, y).coef_)
    assert_allclose(display.filter_factors[0], ridge, rtol=1e-8)


def test_spectral_filter_per_step_alpha(data):
    X, y = data
    reg = RepeatedSelfDistillationRegressor(
        alpha=[1.0, 3.0, 0.5], n_steps=2, xi=[0.8, 2.0]
    ).fit(X, y)
    display = SpectralFilterDisplay.from_estimator(reg)
    _, expected = _filters_from_coefficients(X, y, reg.coef_path_)
    assert_allclose(display.filter_factors, expected, rtol=1e-8)


def test_spectral_filter_huge_xi_last_step_accurate(data):
    # Per-step xi of order 1e8 realise a tame filter; the display's last row
    # must still equal the fitted coefficients' filter.
    X, y = data
    xi = skdistill.xi_bar_to_xi([1 - 1e-7, -0.6, 0.6, 1e-7])
    assert np.max(np.abs(xi)) > 1e6
    reg = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=3, xi=xi).fit(X, y)
    display = SpectralFilterDisplay.from_estimator(reg)
    _, expected = _filters_from_coefficients(X, y, reg.coef_)
    assert_allclose(display.filter_factors[-1], expected, rtol=1e-6)


def test_spectral_filter_draws(data):
    X, y = data
    reg = RepeatedSelfDistillationRegressor(alpha=2.0, n_steps=2, xi=0.5).fit(X, y)
    fig, ax = plt.subplots()
    display = SpectralFilterDisplay.from_estimator(reg, ax=ax)
    assert display.ax_ is ax
    assert display.figure_ is fig
    assert len(display.lines_) == 2
    assert_allclose(display.ridge_line_.get_xdata(), display.eigenvalues)
    assert_allclose(display.ridge_line_.get_ydata(), display.filter_factors[0])
    for step, line in enumerate(display.lines_, start=1):
        assert_allclose(line.get_ydata(), display.filter_factors[step])
    assert ax.get_xscale() == "log"
    assert "RepeatedSelfDistillationRegressor (step 2)" in [
        t.get_text() for t in ax.get_legend().get_texts()
    ]
    fig.canvas.draw()  # renders without a display (Agg)

    # Drawing a chosen subset of students on a fresh figure.
    display.plot(steps=2)
    assert len(display.lines_) == 1
    assert display.ax_ is not ax
    assert_allclose(display.lines_[0].get_ydata(), display.filter_factors[2])


def test_spectral_filter_skips_zero_eigenvalues():
    display = SpectralFilterDisplay(
        eigenvalues=[4.0, 1.0, 0.0],
        filter_factors=[[0.8, 0.5, 0.0], [0.9, 0.6, 0.0]],
        alpha=1.0,
    ).plot()
    assert_allclose(display.ridge_line_.get_xdata(), [4.0, 1.0])
    assert_allclose(display.lines_[0].get_ydata(), [0.9, 0.6])


@pytest.mark.parametrize("steps", [0, 3, [1, 5]])
def test_spectral_filter_rejects_bad_steps(steps):
    display = SpectralFilterDisplay(
        eigenvalues=[2.0, 1.0], filter_factors=np.ones((3, 2)), alpha=1.0
    )
    with pytest.raises(ValueError, match="steps must lie between 1 and n_steps=2"):
        display.plot(steps=steps)


def test_spectral_filter_unwraps_search_and_rejects_unknown(data):
    X, y = data
    search = GridSearchCV(
        RepeatedSelfDistillationRegressor(n_steps=1),
        {"alpha": [0.1, 10.0], "xi": [0.5, 1.5]},
        cv=3,
    ).fit(X, y)
    display = SpectralFilterDisplay.from_estimator(search)
    direct = SpectralFilterDisplay.from_estimator(search.best_estimator_)
    assert_allclose(display.filter_factors, direct.filter_factors)

    with pytest.raises(TypeError, match="neither singular_values_ nor eigenvalues_"):
        SpectralFilterDisplay.from_estimator(Ridge().fit(X, y))

    # A kernel estimator's alpha="constrained" mode has no single filter.
    reg = RepeatedSelfDistillationRegressor().fit(X, y)
    reg.alpha = "constrained"
    with pytest.raises(ValueError, match="needs numeric alpha"):
        SpectralFilterDisplay.from_estimator(reg)


def test_spectral_filter_unfitted_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SpectralFilterDisplay.from_estimator(RepeatedSelfDistillationRegressor())


# ---------------------------------------------------------------------------
# SelfDistillCVDisplay


def _masked(values):
    return np.ma.MaskedArray(np.asarray(values, dtype=object), mask=False)


class _StubSelfDistillCV:
    """A fitted SelfDistillCV as documented in issue 3 (GridSearchCV format)."""

    scoring = None

    def __init__(self):
        alphas = [0.1, 1.0, 10.0]
        steps = [0, 1, 2]
        grid = [(a, k) for k in steps for a in alphas]
        mse = {
            (0.1, 0): 5.0, (1.0, 0): 4.0, (10.0, 0): 4.5,
            (0.1, 1): 4.2, (1.0, 1): 3.5, (10.0, 1): 3.9,
            (0.1, 2): 4.1, (1.0, 2): 3.6, (10.0, 2): 3.2,
        }  # fmt: skip
        self.cv_results_ = {
            "param_alpha": _masked([a for a, _ in grid]),
            "param_n_steps": _masked([k for _, k in grid]),
            "mean_test_score": np.array([-mse[c] for c in grid]),
            "params": [{"alpha": a, "n_steps": k} for a, k in grid],
        }
        self.best_index_ = grid.index((10.0, 2))
        # The refit alpha is rescaled by n / n_fold (issue 3): not on the grid.
        self.alpha_ = 12.5
        self.n_steps_ = 2
        self.best_params_ = {"alpha": 12.5, "n_steps": 2}
        self.expected = np.array([[mse[(a, k)] for a in alphas] for k in steps])


def test_cv_display_from_documented_format():
    stub = _StubSelfDistillCV()
    display = SelfDistillCVDisplay.from_estimator(stub)
    assert_allclose(display.alphas, [0.1, 1.0, 10.0])
    assert_allclose(display.n_steps, [0, 1, 2])
    assert_allclose(display.cv_errors, stub.expected)
    # The marked point is the validated candidate, not the rescaled refit alpha.
    assert display.best_alpha == 10.0
    assert display.best_n_steps == 2
    assert display.best_error == 3.2
    assert display.error_name == "CV mean squared error"

    assert len(display.lines_) == 3
    for row, line in zip(stub.expected, display.lines_, strict=True):
        assert_allclose(line.get_xdata(), [0.1, 1.0, 10.0])
        assert_allclose(line.get_ydata(), row)
    assert_allclose(display.best_marker_.get_xdata(), [10.0])
    assert_allclose(display.best_marker_.get_ydata(), [3.2])
    assert display.ax_.get_xscale() == "log"
    assert display.ax_.get_ylabel() == "CV mean squared error"
    display.figure_.canvas.draw()


def test_cv_display_keeps_best_candidate_per_pair_and_gaps():
    # Two candidates at (1.0, 1) (e.g. two xi in a grid): the lower error is
    # drawn. (10.0, 0) was never tried: a gap, not a zero.
    results = {
        "param_alpha": _masked([1.0, 1.0, 1.0, 10.0]),
        "param_n_steps": _masked([0, 1, 1, 1]),
        "mean_test_score": np.array([-2.0, -3.0, -1.5, -1.8]),
    }
    display = SelfDistillCVDisplay.from_cv_results(results)
    assert_allclose(display.cv_errors, [[2.0, np.nan], [1.5, 1.8]])
    assert (display.best_alpha, display.best_n_steps) == (1.0, 1)
    assert_allclose(display.lines_[0].get_xdata(), [1.0])


def test_cv_display_matches_cross_val_score():
    # Independent computation: the error of each (alpha, n_steps) pair from
    # cross_val_score on the same folds.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4))
    y = X @ [1.0, 0.0, -1.0, 2.0] + rng.normal(size=60)
    cv = KFold(4, shuffle=True, random_state=0)
    alphas, steps = [0.1, 3.0, 30.0], [0, 2]
    search = GridSearchCV(
        RepeatedSelfDistillationRegressor(xi=0.7),
        {"alpha": alphas, "n_steps": steps},
        scoring="neg_mean_squared_error",
        cv=cv,
    ).fit(X, y)
    display = SelfDistillCVDisplay.from_estimator(search)
    expected = [
        [
            -cross_val_score(
                RepeatedSelfDistillationRegressor(alpha=a, n_steps=k, xi=0.7),
                X,
                y,
                scoring="neg_mean_squared_error",
                cv=cv,
            ).mean()
            for a in alphas
        ]
        for k in steps
    ]
    assert_allclose(display.cv_errors, expected, rtol=1e-10)
    assert display.best_alpha == search.best_params_["alpha"]
    assert display.best_n_steps == search.best_params_["n_steps"]
    assert display.error_name == "CV mean squared error"


def test_cv_display_scores_that_are_not_losses():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 3))
    y = X.sum(axis=1) + rng.normal(size=30)
    search = GridSearchCV(
        RepeatedSelfDistillationRegressor(n_steps=1),
        {"alpha": [0.1, 1.0]},
        scoring="r2",
        cv=3,
    ).fit(X, y)
    display = SelfDistillCVDisplay.from_estimator(search)
    # r2 is drawn as is (higher is better), one curve for the fixed n_steps.
    assert_allclose(display.cv_errors[0], search.cv_results_["mean_test_score"])
    assert_allclose(display.n_steps, [1])
    assert display.error_name == "CV r2"


def test_cv_display_unfitted_and_missing_keys():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="has no cv_results_"):
        SelfDistillCVDisplay.from_estimator(GridSearchCV(Ridge(), {"alpha": [1.0]}))

    with pytest.raises(ValueError, match="'mean_test_score'"):
        SelfDistillCVDisplay.from_cv_results({"param_alpha": _masked([1.0])})


# The grid edge is not what this test is about: its warning is tested in
# test_cv.py::test_edge_of_grid_warning_names_the_callers_line.
@pytest.mark.filterwarnings("ignore::skdistill.exceptions.AlphaGridWarning")
def test_cv_display_real_selfdistillcv(data):
    X, y = data
    alphas, steps = np.logspace(-3, 3, 7), (0, 1, 2)
    search = skdistill.SelfDistillCV(alphas=alphas, n_steps=steps, cv=3).fit(X, y)
    display = SelfDistillCVDisplay.from_estimator(search)
    results = search.cv_results_
    assert_allclose(display.alphas, alphas)
    assert_allclose(display.n_steps, steps)
    # Each drawn error is the negated best mean_test_score of the candidates
    # (shrinking or free filters) with that alpha and number of steps.
    a_col = np.asarray(results["param_alpha"], dtype=float)
    k_col = np.asarray(results["param_n_steps"], dtype=int)
    for row, k in enumerate(steps):
        for col, alpha in enumerate(alphas):
            cell = np.isclose(a_col, alpha) & (k_col == k)
            best = results["mean_test_score"][cell].max()
            assert display.cv_errors[row, col] == -best
    # The marked point is the validated candidate (cv_alpha_, n_steps_), not
    # the refit's rescaled alpha of best_params_.
    assert display.best_alpha == pytest.approx(search.cv_alpha_)
    assert display.best_n_steps == search.n_steps_
    assert display.best_error == pytest.approx(-search.best_score_)


def _display(alphas, errors):
    errors = np.atleast_2d(errors)
    best = np.unravel_index(np.nanargmin(errors), errors.shape)
    return SelfDistillCVDisplay(
        alphas=alphas,
        n_steps=np.arange(errors.shape[0]),
        cv_errors=errors,
        best_alpha=alphas[best[1]],
        best_n_steps=best[0],
        best_error=errors[best],
    ).plot()


def test_cv_display_alpha_axis_is_logarithmic_even_with_alpha_zero():
    # A grid with alpha = 0 used to get a linear axis, which crowds every
    # small alpha (where the optimum often is) into one corner.
    display = _display(np.array([0.0, 1e-3, 1e-2, 1e-1, 1.0]), [5, 2, 1, 3, 4.0])
    assert display.ax_.get_xscale() == "symlog"
    assert display.ax_.xaxis.get_transform().linthresh == 1e-3
    # The optimum at 1e-2 is drawn a third of the way between 1e-3 and 1,
    # not within the first 1% of the axis as on a linear one.
    to_x = display.ax_.transData.transform
    x = [to_x((a, 1.0))[0] for a in (1e-3, 1e-2, 1.0)]
    assert (x[1] - x[0]) / (x[2] - x[0]) == pytest.approx(1 / 3, rel=1e-6)
    assert _display(np.logspace(-2, 2, 5), [3, 2, 1, 2, 3.0]).ax_.get_xscale() == "log"


def test_cv_display_error_axis_is_logarithmic_when_errors_span_decades():
    alphas = np.logspace(-2, 2, 5)
    # Errors from 1 to 1000: the minimum region would be flattened.
    wide = _display(alphas, [[1.0, 1.2, 10.0, 100.0, 1000.0]])
    assert wide.ax_.get_yscale() == "log"
    # Within a factor 10, or with a non-positive value (e.g. an R^2 score),
    # the axis stays linear.
    assert _display(alphas, [[3.0, 2.0, 1.0, 2.0, 3.0]]).ax_.get_yscale() == "linear"
    assert _display(alphas, [[-1.0, 2.0, 1.0, 20.0, 300.0]]).ax_.get_yscale() == (
        "linear"
    )
