"""Tests of SelfDistillCV's optuna search (``search="optuna"``).

Expectations come from independent computations: ``cross_val_score`` or
explicit loops of fits on the same folds with the reported parameters.
"""

import importlib.util
import logging
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_absolute_error, mean_squared_error
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

from skdistill import (
    RepeatedSelfDistillationRegressor,
    SelfDistillationClassifier,
    SelfDistillationRegressor,
    SelfDistillCV,
)

needs_optuna = pytest.mark.skipif(
    importlib.util.find_spec("optuna") is None,
    reason="optuna is an optional extra: pip install optuna",
)

ALPHAS = np.logspace(-2, 2, 9)


def _data(n=60, d=5, seed=9, noise=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(3, 0.2, d)
    y = X @ rng.normal(size=d) + noise * rng.normal(size=n)
    return X, y


def _weighted_cv_scores(params, X, y, folds, sample_weight, metric, weigh_score):
    """Per-fold score of ``params``: weighted fits, (un)weighted metric."""
    out = []
    for train, test in folds:
        est = RepeatedSelfDistillationRegressor(**params).fit(
            X[train], y[train], sample_weight=sample_weight[train]
        )
        w = sample_weight[test] if weigh_score else None
        out.append(-metric(y[test], est.predict(X[test]), sample_weight=w))
    return np.array(out)


@needs_optuna
def test_list_and_sparse_input_equal_array_input():
    """Lists and COO matrices are indexed like arrays (sparse as CSR)."""
    X, y = _data(n=45, d=4)
    kw = dict(search="optuna", n_trials=4, cv=KFold(3), alphas=ALPHAS, random_state=0)
    ref = SelfDistillCV(**kw).fit(X, y)
    # Fewer trials than TPE's 10 random start-up trials: the same seed
    # proposes the same parameters whatever the scores.
    for X_in, y_in in [(X.tolist(), y.tolist()), (sp.coo_matrix(X), y)]:
        search = SelfDistillCV(**kw).fit(X_in, y_in)
        assert [str(p) for p in search.cv_results_["params"]] == [
            str(p) for p in ref.cv_results_["params"]
        ]
        # Same ridge problems (cond(X) < 20) by another solver for sparse X.
        np.testing.assert_allclose(
            search.cv_results_["mean_test_score"],
            ref.cv_results_["mean_test_score"],
            rtol=1e-9,
        )
        np.testing.assert_allclose(search.predict(X_in), ref.predict(X), rtol=1e-9)


@needs_optuna
@pytest.mark.parametrize("kind", ["empty list", "exhausted generator"])
def test_cv_without_splits_is_a_clear_error(kind):
    X, y = _data(n=30, d=3)
    if kind == "empty list":
        cv = []
    else:
        cv = KFold(3).split(X)
        list(cv)
    search = SelfDistillCV(search="optuna", n_trials=2, cv=cv)
    with pytest.raises(ValueError, match="cv=.* produced no train/test split"):
        search.fit(X, y)


@needs_optuna
def test_user_splitter_is_not_modified_and_the_search_is_reproducible():
    X, y = _data(n=45, d=4)
    cv = KFold(3, shuffle=True, random_state=None)
    kw = dict(search="optuna", n_trials=3, cv=cv, alphas=ALPHAS, random_state=0)
    a = SelfDistillCV(**kw).fit(X, y)
    assert cv.random_state is None
    b = SelfDistillCV(**kw).fit(X, y)
    assert cv.random_state is None
    # random_state seeds the copy: both searches saw the same folds.
    np.testing.assert_array_equal(
        a.cv_results_["split0_test_score"], b.cv_results_["split0_test_score"]
    )


@needs_optuna
def test_scorer_without_sample_weight_scores_unweighted_with_a_warning():
    X, y = _data(n=45, d=4)
    w = np.random.default_rng(1).uniform(0.0, 3.0, size=45)
    folds = list(KFold(3).split(X))

    def mae(est, X, y):
        return -mean_absolute_error(y, est.predict(X))

    def weighted_mae(est, X, y, sample_weight=None):
        return -mean_absolute_error(y, est.predict(X), sample_weight=sample_weight)

    kw = dict(search="optuna", n_trials=3, cv=folds, alphas=ALPHAS, random_state=0)
    with pytest.warns(UserWarning, match="does not accept sample_weight"):
        plain = SelfDistillCV(scoring=mae, **kw).fit(X, y, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        weighted = SelfDistillCV(scoring=weighted_mae, **kw).fit(X, y, sample_weight=w)
    for search, weigh in [(plain, False), (weighted, True)]:
        expected = _weighted_cv_scores(
            search.best_params_, X, y, folds, w, mean_absolute_error, weigh
        )
        # Same ridge fits on the same folds: equal up to rounding.
        np.testing.assert_allclose(search.best_score_, expected.mean(), rtol=1e-10)
    # The weights change the scores of the same (seeded) trials.
    assert not np.allclose(
        plain.cv_results_["mean_test_score"],
        weighted.cv_results_["mean_test_score"],
        rtol=1e-3,
    )


@needs_optuna
def test_optuna_honours_other_scorers():
    """best_score_ is the cross-validated MAE of best_params_, not the MSE."""
    X, y = _data()
    search = SelfDistillCV(
        scoring="neg_mean_absolute_error",
        n_trials=6,
        cv=3,
        alphas=ALPHAS,
        random_state=0,
    ).fit(X, y)
    assert hasattr(search, "study_")
    est = RepeatedSelfDistillationRegressor(**search.best_params_)
    mae = cross_val_score(est, X, y, cv=KFold(3), scoring="neg_mean_absolute_error")
    mse = cross_val_score(est, X, y, cv=KFold(3), scoring="neg_mean_squared_error")
    np.testing.assert_allclose(search.best_score_, mae.mean(), rtol=1e-10)
    assert abs(mse.mean() - mae.mean()) > 0.1 * abs(mae.mean())


@needs_optuna
def test_optuna_search_is_reproducible_and_not_worse_than_its_teacher():
    X, y = _data()
    kw = dict(search="optuna", n_trials=15, n_steps=(0, 1), cv=3, alphas=ALPHAS)
    a = SelfDistillCV(random_state=0, **kw).fit(X, y)
    b = SelfDistillCV(random_state=0, **kw).fit(X, y)
    assert a.best_params_["alpha"] == b.best_params_["alpha"]
    assert len(a.cv_results_["params"]) == 15
    # The first trial is the teacher at the geometric middle of the grid.
    first = a.cv_results_["params"][0]
    assert first["n_steps"] == 0
    assert first["alpha"] == pytest.approx(np.sqrt(ALPHAS[0] * ALPHAS[-1]))
    assert a.best_score_ == np.max(a.cv_results_["mean_test_score"])
    assert a.best_score_ >= a.cv_results_["mean_test_score"][0]
    # Scores are honest cross-validated errors of the reported parameters.
    est = RepeatedSelfDistillationRegressor(**a.best_params_)
    expected = cross_val_score(est, X, y, cv=3, scoring="neg_mean_squared_error")
    np.testing.assert_allclose(a.best_score_, expected.mean(), rtol=1e-10)


@needs_optuna
def test_optuna_default_search_of_a_classifier_respects_its_xi_range():
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    search = SelfDistillCV(
        SelfDistillationClassifier(), n_steps=(1, 2), n_trials=6, cv=3, random_state=0
    ).fit(X, y)
    xis = np.concatenate([np.atleast_1d(p["xi"]) for p in search.cv_results_["params"]])
    assert xis.size and np.all((xis >= 0) & (xis <= 1))
    assert set(search.classes_) == {0, 1}
    # Classification splitters are stratified by default, as in scikit-learn.
    assert search.best_score_ == pytest.approx(
        cross_val_score(
            clone(SelfDistillationClassifier()).set_params(**search.best_params_),
            X,
            y,
            cv=StratifiedKFold(3),
        ).mean(),
        rel=1e-12,
    )


@needs_optuna
@pytest.mark.parametrize(
    "estimator, nested",
    [
        (SelfDistillationClassifier(), "estimator__C"),
        (SelfDistillationRegressor(), "estimator__alpha"),
    ],
)
def test_default_space_tunes_the_default_inner_estimator(estimator, nested):
    """estimator=None: the default's C / alpha is searched, like an explicit one."""
    from sklearn.datasets import make_classification

    if nested == "estimator__C":
        X, y = make_classification(n_samples=60, n_features=4, random_state=1)
        cv, scoring = StratifiedKFold(3), "accuracy"
    else:
        X, y = _data(n=45, d=4)
        cv, scoring = KFold(3), "neg_mean_squared_error"
    search = SelfDistillCV(estimator, n_steps=(0, 1), n_trials=4, cv=3, random_state=0)
    search.fit(X, y)
    values = [p[nested] for p in search.cv_results_["params"]]
    assert len(set(values)) == 4  # searched, not fixed
    expected = cross_val_score(
        clone(estimator).set_params(**search.best_params_),
        X,
        y,
        cv=cv,
        scoring=scoring,
    )
    np.testing.assert_allclose(search.best_score_, expected.mean(), rtol=1e-10)
    assert (
        getattr(search.best_estimator_.estimator, nested.split("__")[1])
        == (search.best_params_[nested])
    )


@needs_optuna
@pytest.mark.parametrize("verbose", [0, 2])
def test_optuna_logging_is_quiet_unless_asked_and_restored(verbose):
    """optuna's trial lines only with verbose >= 2; the user's level after."""
    import optuna

    X, y = _data(n=30, d=3)
    seen = []

    def scorer(est, X, y):
        seen.append(optuna.logging.get_verbosity())
        return -mean_squared_error(y, est.predict(X))

    before = optuna.logging.get_verbosity()
    try:
        for level in (optuna.logging.DEBUG, optuna.logging.INFO, optuna.logging.ERROR):
            optuna.logging.set_verbosity(level)
            seen.clear()
            SelfDistillCV(
                scoring=scorer, n_trials=2, cv=3, random_state=0, verbose=verbose
            ).fit(X, y)
            quiet = max(level, optuna.logging.WARNING)
            assert seen and set(seen) == {level if verbose >= 2 else quiet}
            assert optuna.logging.get_verbosity() == level
    finally:
        optuna.logging.set_verbosity(before)


@needs_optuna
@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize(
    "kw", [{"search": "optuna"}, {"estimator": SelfDistillationRegressor()}]
)
def test_non_finite_target_is_refused_before_any_trial(bad, kw):
    """The closed form's message, naming y, and no fit or score of a trial."""
    X, y = _data(n=30, d=3)
    y[4] = bad
    calls = []

    def scorer(est, X, y):
        calls.append(1)
        return -mean_squared_error(y, est.predict(X))

    with pytest.raises(ValueError, match="Input y contains") as optuna_error:
        SelfDistillCV(scoring=scorer, n_trials=2, cv=3, **kw).fit(X, y)
    assert not calls
    with pytest.raises(ValueError, match="Input y contains") as closed_error:
        SelfDistillCV(cv=3).fit(X, y)
    assert str(optuna_error.value) == str(closed_error.value)


@needs_optuna
def test_optuna_study_creation_is_quiet_at_verbose_0():
    """Not even optuna's "A new study created" line, at its default INFO level."""
    import optuna

    X, y = _data(n=30, d=3)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("optuna")
    before = optuna.logging.get_verbosity()
    logger.addHandler(handler)
    try:
        optuna.logging.set_verbosity(optuna.logging.INFO)
        SelfDistillCV(search="optuna", n_trials=2, cv=3, random_state=0).fit(X, y)
        assert not records
        SelfDistillCV(search="optuna", n_trials=2, cv=3, random_state=0, verbose=2).fit(
            X, y
        )
        assert any("study created" in r.getMessage() for r in records)
    finally:
        logger.removeHandler(handler)
        optuna.logging.set_verbosity(before)


@needs_optuna
def test_search_optuna_returns_a_result_and_writes_nothing():
    """search_optuna leaves its estimator alone; SelfDistillCV stores its result."""
    from skdistill._cv_results import SearchResult
    from skdistill._optuna_search import search_optuna

    X, y = _data(n=45, d=4)
    est = RepeatedSelfDistillationRegressor()
    before = dict(vars(est))
    kw = dict(
        cv=KFold(3),
        scoring="neg_mean_absolute_error",
        n_trials=3,
        timeout=None,
        random_state=0,
        n_jobs=None,
        verbose=0,
        param_distributions=None,
        refit=True,
    )
    res = search_optuna(est, X, y, None, None, [0, 1], ALPHAS, **kw)
    assert isinstance(res, SearchResult)
    assert vars(est) == before
    assert res.n_splits == 3 and res.refit_time >= 0
    assert res.best_score == res.cv_results["mean_test_score"][res.best_index]
    assert res.cv_results["params"][res.best_index] is res.best_params
    expected = cross_val_score(
        RepeatedSelfDistillationRegressor(**res.best_params),
        X,
        y,
        cv=KFold(3),
        scoring="neg_mean_absolute_error",
    )
    np.testing.assert_allclose(res.best_score, expected.mean(), rtol=1e-10)
    fitted = RepeatedSelfDistillationRegressor(**res.best_params).fit(X, y)
    np.testing.assert_allclose(res.best_estimator.predict(X), fitted.predict(X))
    assert (
        search_optuna(
            est, X, y, None, None, [0], ALPHAS, **{**kw, "refit": False}
        ).best_estimator
        is None
    )

    search = SelfDistillCV(
        est,
        cv=KFold(3),
        scoring="neg_mean_absolute_error",
        n_trials=3,
        n_steps=(0, 1),
        alphas=ALPHAS,
        random_state=0,
    ).fit(X, y)
    assert search.best_params_.keys() == res.best_params.keys()
    assert search.best_score_ == res.best_score
    assert search.n_splits_ == 3 and search.scorer_ is not None
    assert search.alpha_ == res.best_params["alpha"]
    assert search.n_steps_ == res.best_params["n_steps"]


def test_missing_optuna_is_a_clear_import_error(monkeypatch):
    """optuna is optional: only the optuna search needs it."""
    monkeypatch.setitem(sys.modules, "optuna", None)
    X, y = _data(n=30, d=3)
    match = r"search='optuna' needs optuna: pip install optuna"
    with pytest.raises(ImportError, match=match):
        SelfDistillCV(search="optuna", n_trials=2, cv=3).fit(X, y)
    with pytest.raises(ImportError, match=match):
        SelfDistillCV(SelfDistillationClassifier(), cv=3).fit(X, y > 0)
    # The closed form needs no optuna.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(cv=3, alphas=ALPHAS).fit(X, y)
    assert search.best_score_ < 0


def test_importing_skdistill_does_not_import_optuna():
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        "import skdistill\n"
        "import skdistill._optuna_search\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
