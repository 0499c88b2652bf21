"""What users are told: where warnings point, when they are due, early errors."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdistill import SelfDistillCV
from skdistill.exceptions import AlphaGridWarning


def _data(n=60, d=4, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=d) + noise * rng.normal(size=n)


def test_grid_warning_through_cross_val_score_names_the_callers_line():
    # cross_val_score reaches fit through joblib: the warning must still point
    # here, not at joblib/parallel.py.
    X, y = _data()
    with pytest.warns(AlphaGridWarning, match="smallest value") as rec:
        cross_val_score(SelfDistillCV(alphas=[1e3, 1e4], n_steps=0, cv=3), X, y, cv=3)
    assert {w.filename for w in rec} == {__file__}


def test_least_squares_end_of_the_grid_is_no_edge():
    # On standardised diabetes the best ridge is least squares: the smallest
    # alpha of the default grid already leaves every h within 1e-3 of 1
    # (checked here from the data's own spectrum), so no smaller alpha could
    # change the fit, and no warning is due.
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xc = X - X.mean(axis=0)
    s = np.linalg.svd(Xc, compute_uv=False)
    alpha_min = s[0] ** 2 * 1e-6
    assert alpha_min / (0.7 * s[-1] ** 2) < 1e-3  # folds keep ~80% of the rows
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlphaGridWarning)
        SelfDistillCV(cv=5).fit(X, y)
        cross_val_score(make_pipeline(StandardScaler(), SelfDistillCV()), X, y, cv=5)


def test_small_end_that_still_shrinks_warns():
    # alpha = 10 on data whose smallest eigenvalue is about 60: h = 0.86 there.
    X, y = _data(n=60, d=4, noise=0.01)
    with pytest.warns(AlphaGridWarning, match="smallest value"):
        SelfDistillCV(alphas=[10.0, 100.0], n_steps=0, cv=3).fit(X, y)


@pytest.mark.parametrize(
    "kw, y, match",
    [
        ({"scoring": "accuracy"}, None, "scoring='accuracy' is a classification"),
        ({}, np.array(["low", "high"] * 15), "y must be numeric.*'low'"),
        ({"search": "optuna", "scoring": "f1"}, None, "classification metric"),
    ],
)
def test_regression_search_refuses_classification_input_up_front(kw, y, match):
    # Without the early check: numpy's "could not convert string to float",
    # or an optuna study that runs into a traceback inside its first trial.
    X, y0 = _data(n=30, d=3)
    with pytest.raises(ValueError, match=match):
        SelfDistillCV(**kw).fit(X, y0 if y is None else y)
