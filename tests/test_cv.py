"""Tests of SelfDistillCV against independent computations."""

import os
import pickle
import statistics
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    PredefinedSplit,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdistill import (
    RepeatedSelfDistillationRegressor,
    SelfDistillCV,
    xi_bar_to_xi,
)
from skdistill._cv_results import format_cv_results

ALPHAS = np.logspace(-2, 2, 9)


def _data(n=60, d=6, t=None, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(3, 0.2, d)
    coef = rng.normal(size=(d,) if t is None else (d, t))
    y = X @ coef + noise * rng.normal(size=(n,) if t is None else (n, t))
    return X, y


def _refit_cv_scores(X, y, folds, alpha, n_steps, xi_bar, sample_weight=None, **kw):
    """Per-fold negative MSE of the candidate, by fitting each training fold."""
    xi = xi_bar_to_xi(xi_bar)
    out = []
    for train, test in folds:
        w_tr = None if sample_weight is None else sample_weight[train]
        w_te = None if sample_weight is None else sample_weight[test]
        est = RepeatedSelfDistillationRegressor(
            alpha=alpha, n_steps=n_steps, xi=xi, solver="svd", **kw
        ).fit(X[train], y[train], sample_weight=w_tr)
        out.append(
            -mean_squared_error(y[test], est.predict(X[test]), sample_weight=w_te)
        )
    return np.array(out)


@given(
    seed=st.integers(0, 2**16),
    n_steps=st.sampled_from([(0,), (0, 1), (1, 2), (0, 1, 2, 3)]),
    fit_intercept=st.booleans(),
    weighted=st.booleans(),
    wide=st.booleans(),
)
def test_cv_results_equal_refits_on_every_fold(
    seed, n_steps, fit_intercept, weighted, wide
):
    # Each candidate's reported split scores are the validation errors of the
    # model refitted on that training fold with the reported xi_bar.
    X, y = _data(n=30, d=45 if wide else 5, seed=seed)
    rng = np.random.default_rng(seed + 1)
    w = rng.uniform(0.2, 3.0, size=len(y)) if weighted else None
    if weighted and seed % 3 == 0:
        w[rng.choice(len(y), size=5, replace=False)] = 0.0  # zero weights too
    folds = list(KFold(3, shuffle=True, random_state=seed).split(X))
    est = RepeatedSelfDistillationRegressor(fit_intercept=fit_intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(
            est, alphas=ALPHAS, n_steps=n_steps, cv=folds, selection="raw"
        ).fit(X, y, sample_weight=w)
    res = search.cv_results_
    for idx in rng.choice(len(res["params"]), size=4, replace=False):
        p = res["params"][idx]
        xi_bar = res["xi_bar"][idx]
        expected = _refit_cv_scores(
            X,
            y,
            folds,
            p["alpha"],
            p["n_steps"],
            xi_bar,
            w,
            fit_intercept=fit_intercept,
        )
        got = np.array([res[f"split{i}_test_score"][idx] for i in range(3)])
        # Evaluating a filter with coefficients xi_bar rounds predictions by
        # about eps * sum|xi_bar| * |y| (times a modest factor for the
        # decompositions), so a squared error by twice that times |y|.
        atol = 1e-10 * (1 + np.abs(xi_bar).sum()) * np.mean(y**2)
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=atol)


@given(seed=st.integers(0, 2**16), t=st.sampled_from([None, 2]))
def test_never_worse_than_ridgecv_and_steps_zero_is_ridgecv(seed, t):
    X, y = _data(n=40, d=8, t=t, seed=seed)
    cv = KFold(4, shuffle=True, random_state=seed)
    ridge = RidgeCV(alphas=ALPHAS, cv=cv, scoring="neg_mean_squared_error").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        zero = SelfDistillCV(alphas=ALPHAS, n_steps=0, cv=cv).fit(X, y)
        tuned = SelfDistillCV(
            alphas=ALPHAS, n_steps=(0, 1, 2, 3), cv=cv, selection="raw"
        ).fit(X, y)
    # Ridge is refitted at the validated alpha, exactly as RidgeCV.
    assert zero.alpha_ == ridge.alpha_
    np.testing.assert_allclose(zero.predict(X), ridge.predict(X), rtol=1e-9)
    assert zero.best_score_ == pytest.approx(ridge.best_score_, rel=1e-9)
    # The solver's optimum includes ridge (xi_bar = e_0) at every alpha: the
    # raw optimum's CV error can only be lower.
    assert tuned.best_score_ >= ridge.best_score_ - 1e-9 * abs(ridge.best_score_)


def test_at_least_as_good_as_brute_force_grid_over_xi():
    X, y = _data(n=50, d=6, seed=3, noise=2.0)
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    xi_grid = np.linspace(-1.0, 3.0, 11)
    grid = GridSearchCV(
        RepeatedSelfDistillationRegressor(n_steps=2, solver="svd"),
        {"alpha": ALPHAS, "xi": [[a, b] for a in xi_grid for b in xi_grid]},
        cv=folds,
        scoring="neg_mean_squared_error",
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = SelfDistillCV(
            alphas=ALPHAS,
            n_steps=2,
            cv=folds,
            selection="raw",
            filter_constraint="none",
        ).fit(X, y)
    assert search.best_score_ >= grid.best_score_ - 1e-9 * abs(grid.best_score_)
    # And the refits on each fold agree with the closed form's score.
    refits = _refit_cv_scores(X, y, folds, search.cv_alpha_, 2, search.xi_bar_).mean()
    assert search.best_score_ == pytest.approx(refits, rel=1e-8)
    assert search.best_params_["n_steps"] == 2


def test_refit_filter_equals_chosen_xi_bar_and_alpha_rescaling():
    X, y = _data(n=80, d=10, seed=5, noise=1.0)
    search = SelfDistillCV(
        n_steps=(0, 1, 2, 3, 4), cv=4, selection="raw", filter_constraint="none"
    ).fit(X, y)
    best = search.best_estimator_
    assert best.n_steps == search.n_steps_ > 0
    # Training folds of 60 rows, refit on 80: alpha scaled by 80 / 60.
    assert search.alpha_ == best.alpha == search.cv_alpha_ * 80 / 60
    # best_params_ is the chosen row (validated alpha), ranked first.
    row = search.cv_results_["params"][search.best_index_]
    assert search.best_params_ is row and row["alpha"] == search.cv_alpha_
    assert search.cv_results_["rank_test_score"][search.best_index_] == 1
    assert np.sum(search.cv_results_["rank_test_score"] == 1) == 1
    again = clone(best).set_params(**{**row, "alpha": search.alpha_}).fit(X, y)
    np.testing.assert_array_equal(again.predict(X), best.predict(X))
    # The refit is the chosen polynomial filter, evaluated here with a dense
    # SVD. Coefficients xi_bar of mixed signs cancel: compare the filter
    # values and the predictions, whose round-off is about eps * sum|xi_bar|
    # (the per-step xi round trip adds as much again), not the ill-posed
    # coefficients themselves.
    Xc, yc = X - X.mean(0), y - y.mean()
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    h = s**2 / (s**2 + best.alpha)
    size = 1 + np.abs(search.xi_bar_).sum()
    phi = h * np.polyval(search.xi_bar_[::-1], h)
    phi_refit = h * np.polyval(best.xi_bar_[::-1], h)
    np.testing.assert_allclose(phi_refit, phi, rtol=0, atol=1e-11 * size)
    pred = (
        X @ (Vt.T @ (phi / s * (U.T @ yc)))
        + y.mean()
        - X.mean(0) @ (Vt.T @ (phi / s * (U.T @ yc)))
    )
    np.testing.assert_allclose(
        best.predict(X), pred, rtol=0, atol=1e-10 * size * np.abs(y).max()
    )
    no_rescale = SelfDistillCV(
        n_steps=(0, 1), cv=4, rescale_alpha=False, selection="raw"
    ).fit(X, y)
    assert no_rescale.best_params_["alpha"] == no_rescale.alpha_ == no_rescale.cv_alpha_


def test_predefined_split_and_r2_scoring():
    X, y = _data(n=60, d=5, seed=7, noise=1.0)
    fold = np.r_[np.full(40, -1), np.zeros(20)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # One split leaves nothing to cross-fit: the user is told so.
        with pytest.warns(UserWarning, match="two validation folds"):
            search = SelfDistillCV(
                alphas=ALPHAS, n_steps=(0, 1, 2), cv=PredefinedSplit(fold), scoring="r2"
            ).fit(X, y)
    assert search.n_splits_ == 1 and search.selection_ == "raw"
    est = RepeatedSelfDistillationRegressor(
        alpha=search.cv_alpha_, n_steps=search.n_steps_, xi=search.xi_
    ).fit(X[:40], y[:40])
    assert search.best_score_ == pytest.approx(r2_score(y[40:], est.predict(X[40:])))


def test_alpha_per_target_equals_separate_fits():
    X, Y = _data(n=60, d=5, t=2, seed=11)
    Y[:, 1] = np.sin(X[:, 0]) * 4  # a second target with another optimum
    cv = KFold(3, shuffle=True, random_state=0)
    kw = dict(alphas=ALPHAS, n_steps=(0, 1, 2), cv=cv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        joint = SelfDistillCV(alpha_per_target=True, **kw).fit(X, Y)
        sep = [SelfDistillCV(**kw).fit(X, Y[:, j]) for j in range(2)]
    assert joint.xi_bar_.shape == (2, joint.n_steps_.max() + 1)
    assert isinstance(joint.best_estimator_, RepeatedSelfDistillationRegressor)
    for j in range(2):
        assert joint.alpha_[j] == sep[j].alpha_
        assert joint.n_steps_[j] == sep[j].n_steps_
        k = sep[j].n_steps_
        np.testing.assert_allclose(joint.xi_bar_[j, : k + 1], sep[j].xi_bar_)
        assert not joint.xi_bar_[j, k + 1 :].any()
    np.testing.assert_allclose(
        joint.predict(X), np.column_stack([s.predict(X) for s in sep])
    )
    assert joint.coef_.shape == (2, 5)


def test_groups_and_sample_weight_are_used():
    X, y = _data(n=60, d=4, seed=2)
    groups = np.random.default_rng(0).permutation(np.repeat(np.arange(6), 10))
    search = SelfDistillCV(alphas=[1.0], n_steps=0, cv=GroupKFold(3)).fit(
        X, y, groups=groups
    )
    # The split scores are those of the group folds (not of plain KFold).
    group_folds = list(GroupKFold(3).split(X, y, groups))
    got = [search.cv_results_[f"split{i}_test_score"][0] for i in range(3)]
    expected = _refit_cv_scores(X, y, group_folds, 1.0, 0, np.ones(1))
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    plain = _refit_cv_scores(X, y, list(KFold(3).split(X)), 1.0, 0, np.ones(1))
    assert not np.allclose(got, plain, rtol=1e-3)
    # Integer weights on the validation side: a weighted fold equals repeats
    # of its rows (checked through the reported score of ridge).
    w = np.random.default_rng(0).integers(1, 4, size=60).astype(float)
    folds = list(KFold(3).split(X))
    ws = SelfDistillCV(alphas=[1.0], n_steps=0, cv=folds).fit(X, y, sample_weight=w)
    expected = _refit_cv_scores(X, y, folds, 1.0, 0, np.ones(1), w)
    got = [ws.cv_results_[f"split{i}_test_score"][0] for i in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


# The grid edge is not what this test is about: its warning is tested in
# test_cv.py::test_edge_of_grid_warning_names_the_callers_line.
@pytest.mark.filterwarnings("ignore::skdistill.exceptions.AlphaGridWarning")
def test_pipeline_nested_cv_clone_and_pickle():
    X, y = _data(n=80, d=5, seed=4)
    pipe = make_pipeline(StandardScaler(), SelfDistillCV(n_steps=(0, 1), cv=3))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)
    outer = GridSearchCV(pipe, {"selfdistillcv__n_steps": [(0,), (0, 1, 2)]}, cv=3)
    outer.fit(X, y)
    # The nested parameter reaches the inner search: its choice is among the
    # step counts of the winning grid point, and the outer split scores are
    # those of clones refitted on each outer fold.
    offered = outer.best_params_["selfdistillcv__n_steps"]
    assert outer.best_estimator_[-1].n_steps_ in offered
    best = clone(pipe).set_params(selfdistillcv__n_steps=offered)
    np.testing.assert_allclose(
        [
            outer.cv_results_[f"split{i}_test_score"][outer.best_index_]
            for i in range(3)
        ],
        cross_val_score(best, X, y, cv=3),
        rtol=1e-12,
    )
    fitted = pipe.fit(X, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    assert clone(pipe).get_params()["selfdistillcv__cv"] == 3


def test_edge_of_grid_warning_names_the_callers_line():
    from skdistill.exceptions import AlphaGridWarning

    X, y = _data(n=50, d=4, seed=0, noise=0.01)
    with pytest.warns(AlphaGridWarning, match="smallest value of the grid") as rec:
        SelfDistillCV(alphas=[1e3, 1e4], n_steps=0, cv=3).fit(X, y)
    assert rec[0].filename == __file__
    with pytest.warns(AlphaGridWarning) as rec:
        SelfDistillCV(alphas=[1e3, 1e4], n_steps=0, cv=None).fit(X, y)
    assert rec[0].filename == __file__
    assert issubclass(AlphaGridWarning, ConvergenceWarning)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alphas": [1.0, -1.0]}, "alphas must be positive"),
        ({"alphas": [0.0]}, "alphas must be positive"),
        ({"n_steps": []}, "n_steps must name at least one"),
        ({"n_steps": [1.5]}, "n_steps must be non-negative integers"),
        ({"n_steps": True}, "n_steps must be non-negative integers"),
        ({"n_steps": [True, 2]}, "n_steps must be non-negative integers"),
        ({"n_steps": 1000}, "more than the closed-form search supports"),
        ({"cv": []}, "no train/test split"),
        ({"cv": iter([])}, "no train/test split"),
        ({"selection": "best"}, "selection"),
        ({"filter_constraint": "box"}, "filter_constraint"),
        ({"search": "grid"}, "search"),
        ({"cv": 100}, "cv=100 cannot split"),
        ({"estimator": LinearRegression(), "search": "closed_form"}, "closed_form"),
    ],
)
def test_bad_input(params, match):
    X, y = _data(n=20, d=3)
    with pytest.raises(ValueError, match=match):
        SelfDistillCV(**params).fit(X, y)


def test_estimator_without_tunable_parameters():
    X, y = _data(n=20, d=3)
    with pytest.raises(ValueError, match="param_distributions"):
        SelfDistillCV(LinearRegression()).fit(X, y)


def test_nan_in_y_is_rejected():
    X, y = _data(n=20, d=3)
    y[3] = np.nan
    with pytest.raises(ValueError, match="y"):
        SelfDistillCV().fit(X, y)


def test_verbose_reports_progress(capsys):
    X, y = _data(n=40, d=3)
    SelfDistillCV(n_steps=(0, 1), cv=3, verbose=2).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" in ")[0] for line in lines[:3]] == [
        f"[SelfDistillCV] fold {i}/3 decomposed" for i in (1, 2, 3)
    ]
    stages = ["decomposed 3 training folds", "scored", "selecting", "chose", "refit"]
    assert [next(s for s in stages if s in line) for line in lines[3:]] == stages
    assert all(line.endswith("s)") for line in lines)  # elapsed time
    SelfDistillCV(n_steps=(0, 1), cv=3, verbose=1).fit(X, y)
    assert len(capsys.readouterr().out.splitlines()) == len(stages)


def test_verbose_with_many_targets_prints_counts_not_arrays(capsys):
    X, Y = _data(n=40, d=3, t=50)
    search = SelfDistillCV(n_steps=(0, 1), cv=3, verbose=1, alpha_per_target=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, Y)
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 5 and "[" not in out.replace("[SelfDistillCV]", "")
    k, count = np.unique(search.n_steps_, return_counts=True)
    assert f"{k[0]} for {count[0]} target" in out


def test_verbose_reports_each_batch_of_target_groups(capsys, monkeypatch):
    # Many targets are selected in batches: one line per batch, with the count.
    import skdistill._cv_engine as engine

    monkeypatch.setattr(engine, "_group_batch", lambda *args, **kw: 20)
    X, Y = _data(n=40, d=3, t=50)
    search = SelfDistillCV(n_steps=(0, 1), cv=3, verbose=1, alpha_per_target=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, Y)
    lines = capsys.readouterr().out.splitlines()
    batches = [line for line in lines if "target groups (" in line and "/" in line]
    assert [b.split("] ")[1].split(" (")[0] for b in batches] == [
        f"selected for {m}/50 target groups" for m in (20, 40, 50)
    ]


def test_closed_form_score_is_at_least_optunas_on_the_same_folds():
    pytest.importorskip("optuna")
    X, y = _data(n=100, d=8, seed=12, noise=2.0)
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        closed = SelfDistillCV(
            alphas=ALPHAS,
            n_steps=2,
            cv=folds,
            selection="raw",
            filter_constraint="none",
        ).fit(X, y)
        opt = SelfDistillCV(
            alphas=ALPHAS,
            n_steps=2,
            cv=folds,
            search="optuna",
            n_trials=20,
            random_state=0,
        ).fit(X, y)
    assert closed.best_score_ >= opt.best_score_ - 1e-9 * abs(opt.best_score_)


@pytest.mark.skipif(
    not os.environ.get("SKDISTILL_DATA"), reason="SKDISTILL_DATA is not set"
)
def test_more_steps_do_not_lose_on_real_data_held_out():
    # Design page (refit): with the alpha rescaling, high-degree filters tuned
    # by CV do not lose to low-degree ones on held-out data (Airfoil).
    path = Path(os.environ["SKDISTILL_DATA"]) / "airfoil_self_noise.dat"
    data = np.loadtxt(path)
    X, y = data[:, :5], data[:, 5]
    ratios = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(y))
        tr, te = perm[: int(0.7 * len(y))], perm[int(0.7 * len(y)) :]
        scaler = StandardScaler().fit(X[tr])
        Xtr, Xte = scaler.transform(X[tr]), scaler.transform(X[te])
        cv = KFold(5, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            low = SelfDistillCV(n_steps=(0, 1), cv=cv).fit(Xtr, y[tr])
            high = SelfDistillCV(n_steps=(0, 1, 2, 3, 4), cv=cv).fit(Xtr, y[tr])
        ratios.append(
            mean_squared_error(y[te], high.predict(Xte))
            / mean_squared_error(y[te], low.predict(Xte))
        )
    assert np.mean(ratios) <= 1.0
    assert max(ratios) <= 1.01


def test_pandas_input_keeps_feature_names_without_warnings():
    import pandas as pd

    X, y = _data(n=40, d=3)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    search = SelfDistillCV(alphas=ALPHAS, n_steps=(0, 1), cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(df, pd.Series(y))
        pred = search.predict(df)
    np.testing.assert_array_equal(search.feature_names_in_, ["a", "b", "c"])
    # A plain array after fitting on names warns, as every scikit-learn
    # estimator does, and predicts the same.
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_allclose(pred, search.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        search.predict(df[["c", "b", "a"]])


def test_zero_weight_folds_get_a_clear_error():
    X, y = _data(n=30, d=3)
    folds = list(KFold(3).split(X))
    w = np.ones(30)
    w[folds[0][1]] = 0.0  # fold 0's validation rows
    with pytest.raises(ValueError, match="sample_weight sums to zero on the valid"):
        SelfDistillCV(cv=folds).fit(X, y, sample_weight=w)
    w = np.zeros(30)
    w[folds[0][1]] = 1.0  # only fold 0's rows: split 1 trains on no weight
    with pytest.raises(ValueError, match="sample_weight sums to zero on the train"):
        SelfDistillCV(cv=folds).fit(X, y, sample_weight=w)


# The grid edge is not what this test is about: its warning is tested in
# test_cv.py::test_edge_of_grid_warning_names_the_callers_line.
@pytest.mark.filterwarnings("ignore::skdistill.exceptions.AlphaGridWarning")
def test_user_splitter_is_not_modified():
    X, y = _data(n=30, d=3)
    cv = KFold(3, shuffle=True)
    SelfDistillCV(cv=cv, random_state=0).fit(X, y)
    assert cv.random_state is None


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e200])
def test_extreme_target_scales_give_the_same_choice(scale):
    # The choice is scale-free: y * scale must choose as y does (neither
    # underflowing squared errors into a tie that predicts the mean, nor
    # overflowing into a crash); reported MSEs scale by scale**2.
    X, y = _data(n=40, d=4, seed=8)
    kw = dict(alphas=ALPHAS, n_steps=(0, 1, 2), cv=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SelfDistillCV(**kw).fit(X, y)
        got = SelfDistillCV(**kw).fit(X, y * scale)
    assert got.best_index_ == ref.best_index_
    np.testing.assert_allclose(got.xi_bar_, ref.xi_bar_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.predict(X) / scale, ref.predict(X), rtol=1e-9)
    if scale <= 1e150:  # beyond, the MSE itself overflows to -inf
        assert got.best_score_ == pytest.approx(ref.best_score_ * scale**2, rel=1e-9)
    else:
        assert got.best_score_ == -np.inf


def test_score_spread_of_a_target_scaled_by_1e150_is_finite_and_quiet():
    # Squared errors near 1e300: their squares overflow, not their spread.
    X, y = _data(n=40, d=4, seed=8)
    kw = dict(alphas=ALPHAS, n_steps=(0, 1, 2), cv=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SelfDistillCV(**kw).fit(X, y)
        warnings.simplefilter("error", RuntimeWarning)
        got = SelfDistillCV(**kw).fit(X, y * 1e150)
    std = got.cv_results_["std_test_score"]
    assert np.all(np.isfinite(std))
    np.testing.assert_allclose(
        std, ref.cv_results_["std_test_score"] * 1e300, rtol=1e-9
    )


@pytest.mark.parametrize("top", [1e300, 1.7e308])
def test_cv_results_mean_and_std_match_exact_arithmetic(top):
    # statistics computes in exact rationals: no overflow. The float results
    # may differ by the rounding of the mean (a few ulps of the largest score).
    split = -np.array([[top, top / 3, top / 7], [1.0, 2.0, 4.0], [top, top, top]])
    res = format_cv_results([{}] * 3, {"test": split}, np.zeros(3), np.zeros(3))
    for i, row in enumerate(split.tolist()):
        ulps = 8 * np.finfo(float).eps * max(abs(v) for v in row)
        assert res["mean_test_score"][i] == pytest.approx(
            statistics.mean(row), rel=1e-15
        )
        assert res["std_test_score"][i] == pytest.approx(
            statistics.pstdev(row), rel=1e-14, abs=ulps
        )


def test_cv_results_of_an_infinite_score_keep_it_in_the_mean():
    split = np.array([[-np.inf, -1.0], [-1.0, -3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = format_cv_results([{}] * 2, {"test": split}, np.zeros(2), np.zeros(2))
    assert res["mean_test_score"][0] == -np.inf
    assert np.isnan(res["std_test_score"][0])
    assert res["std_test_score"][1] == 1.0
    assert list(res["rank_test_score"]) == [2, 1]


def test_weighted_r2_split_scores_equal_sklearns_r2():
    # Guards the weights in the R^2 denominator: each split's score equals
    # sklearn's weighted r2_score of the refitted fold model.
    X, y = _data(n=45, d=4, seed=6)
    w = np.random.default_rng(1).uniform(0.1, 5.0, size=45)
    folds = list(KFold(3, shuffle=True, random_state=2).split(X))
    search = SelfDistillCV(alphas=[0.5], n_steps=0, cv=folds, scoring="r2").fit(
        X, y, sample_weight=w
    )
    for i, (tr, te) in enumerate(folds):
        est = RepeatedSelfDistillationRegressor(alpha=0.5, n_steps=0, solver="svd")
        est.fit(X[tr], y[tr], sample_weight=w[tr])
        expected = r2_score(y[te], est.predict(X[te]), sample_weight=w[te])
        assert search.cv_results_[f"split{i}_test_score"][0] == pytest.approx(
            expected, rel=1e-10
        )


def test_nested_parameters_of_the_default_estimator():
    # estimator=None stands for RepeatedSelfDistillationRegressor(): its
    # parameters can be set (and grid-searched) through estimator__*.
    X, y = _data(n=40, d=3, seed=1)
    search = SelfDistillCV(alphas=ALPHAS, n_steps=0, cv=3)
    search.set_params(estimator__fit_intercept=False)
    assert search.estimator.fit_intercept is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X + 100.0, y)
    assert search.best_estimator_.fit_intercept is False
    assert search.intercept_ == 0.0
    grid = GridSearchCV(
        SelfDistillCV(alphas=ALPHAS, n_steps=0, cv=3),
        {"estimator__fit_intercept": [False, True]},
        cv=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X + 100.0, y + 50.0)
    assert grid.best_params_ == {"estimator__fit_intercept": True}


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_x_whose_squares_overflow_is_refused_clearly(scale):
    X, y = _data(n=30, d=3)
    with pytest.raises(ValueError, match="Rescale X"):
        SelfDistillCV(cv=3).fit(X * scale, y)


@pytest.mark.parametrize("scale", [1e-120, 1e120])
def test_x_of_large_or_small_magnitude_gives_the_same_predictions(scale):
    X, y = _data(n=40, d=3, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SelfDistillCV(cv=4).fit(X, y)
        got = SelfDistillCV(cv=4).fit(X * scale, y)
    assert got.n_steps_ == ref.n_steps_
    np.testing.assert_allclose(got.predict(X * scale), ref.predict(X), rtol=1e-8)
