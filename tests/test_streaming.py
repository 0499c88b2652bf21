"""Chunked, out-of-core and dask fitting against in-memory computations."""

import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from skdistill import (
    KernelSelfDistillationRegressor,
    RepeatedSelfDistillationRegressor,
    SelfDistillCV,
    hash_folds,
)
from skdistill._spectral import decompose
from skdistill._streaming import FoldFactors, _import_dask, spectrum_from_factor


def _data(n=120, d=5, t=None, seed=0, shift=3.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(3, 0.2, d) + shift
    coef = rng.normal(size=(d,) if t is None else (d, t))
    y = X @ coef + 0.5 * rng.normal(size=(n,) if t is None else (n, t)) + 10.0
    return X, y


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


def _assert_same_search(streamed, in_memory):
    """Equal selections and, candidate by candidate, equal CV scores.

    A candidate's error is evaluated as ``|R (xi_bar, -1)|^2``; its rounding
    error grows with ``|xi_bar|``, which reaches 1e9 for high-degree filters
    at huge alpha (nearly collinear columns h^m). The tolerance is 1e-8
    relative, times ``max(1, |xi_bar|_inf)``.
    """
    a, b = streamed.cv_results_, in_memory.cv_results_
    assert streamed.n_splits_ == in_memory.n_splits_
    np.testing.assert_allclose(
        a["param_alpha"].astype(float), b["param_alpha"].astype(float), rtol=1e-12
    )
    xi_size = np.array([max(1.0, np.abs(x).max()) for x in b["param_xi_bar"]])
    for i in range(in_memory.n_splits_):
        sa, sb = a[f"split{i}_test_score"], b[f"split{i}_test_score"]
        rel = np.abs(sa - sb) / np.maximum(np.abs(sb), 1e-300)
        assert np.all(rel <= 1e-8 * xi_size), rel.max()
    assert streamed.best_index_ == in_memory.best_index_
    assert streamed.n_steps_ == in_memory.n_steps_
    assert streamed.alpha_ == pytest.approx(in_memory.alpha_, rel=1e-12)
    assert streamed.alpha_refit_scale_ == pytest.approx(
        in_memory.alpha_refit_scale_, rel=1e-12
    )
    # The chosen filter is as well determined as its xi_bar is small.
    kappa = max(1.0, np.abs(in_memory.xi_bar_).max())
    rtol = 1e-8 * kappa
    np.testing.assert_allclose(streamed.xi_bar_, in_memory.xi_bar_, rtol=rtol)
    scale = np.abs(in_memory.coef_).max()
    np.testing.assert_allclose(
        streamed.coef_, in_memory.coef_, rtol=rtol, atol=1e-10 * scale
    )
    np.testing.assert_allclose(
        streamed.intercept_, in_memory.intercept_, rtol=rtol, atol=1e-10 * scale
    )
    return kappa


# ------------------------------------------------------------------ factors
@settings(max_examples=30, deadline=None)
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
@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    weighted=st.booleans(),
    t=st.sampled_from([None, 3]),
    fit_intercept=st.booleans(),
    n_steps=st.integers(0, 3),
    alpha=st.sampled_from([0.0, 0.3, 10.0]),
)
def test_partial_fit_equals_one_fit_for_any_chunking(
    seed, cuts, weighted, t, fit_intercept, n_steps, alpha
):
    X, y = _data(n=60, d=4, t=t, seed=seed)
    w = np.random.default_rng(seed).uniform(0.1, 3, size=60) if weighted else None
    xi = np.linspace(-0.5, 1.5, n_steps)
    kw = dict(alpha=alpha, n_steps=n_steps, xi=xi, fit_intercept=fit_intercept)
    est = RepeatedSelfDistillationRegressor(**kw)
    for chunk in _chunks(X, y, w, _cuts(cuts, 60)):
        est.partial_fit(*chunk[:2], sample_weight=chunk[2] if w is not None else None)
    ref = RepeatedSelfDistillationRegressor(solver="svd", **kw).fit(
        X, y, sample_weight=w
    )
    scale = np.abs(ref.coef_path_).max()
    np.testing.assert_allclose(
        est.coef_path_, ref.coef_path_, rtol=1e-8, atol=1e-10 * scale
    )
    np.testing.assert_allclose(
        est.intercept_path_,
        ref.intercept_path_,
        rtol=1e-8,
        atol=1e-10 * np.abs(y).max(),
    )
    np.testing.assert_allclose(est.singular_values_, ref.singular_values_, rtol=1e-10)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-8)
    assert est.coef_.shape == ref.coef_.shape and est.solver_ == "svd"


def test_partial_fit_stays_accurate_where_the_gram_solver_does_not():
    # Condition number 1e7: the Gram matrix's is 1e14, near 1 / eps.
    rng = np.random.default_rng(0)
    n, d = 400, 6
    U = np.linalg.qr(rng.normal(size=(n, d)))[0]
    V = np.linalg.qr(rng.normal(size=(d, d)))[0]
    X = (U * np.logspace(0, -7, d)) @ V.T + 5.0  # a large mean to centre away
    X = X - X.mean(0) + 5.0
    y = X @ rng.normal(size=d) + 1e-9 * rng.normal(size=n)
    kw = dict(alpha=1e-13, n_steps=1, xi=0.5)
    svd = RepeatedSelfDistillationRegressor(solver="svd", **kw).fit(X, y)
    gram = RepeatedSelfDistillationRegressor(solver="gram", **kw).fit(X, y)
    est = RepeatedSelfDistillationRegressor(**kw)
    for start in range(0, n, 37):
        est.partial_fit(X[start : start + 37], y[start : start + 37])
    norm = np.linalg.norm(svd.coef_)
    err_stream = np.linalg.norm(est.coef_ - svd.coef_) / norm
    err_gram = np.linalg.norm(gram.coef_ - svd.coef_) / norm
    assert err_stream < 1e-6
    assert err_gram > 1e3 * err_stream  # what squaring the condition number costs


def test_one_pass_centring_survives_a_large_offset():
    # Means of 1e6 and spreads of 1: centring one-pass moments
    # (X^T X - n m m^T) cancels about 12 digits; the R factor's does not.
    X, y = _data(n=300, d=4, seed=6, shift=1e6)
    kw = dict(alpha=1e-3, n_steps=2, xi=[0.5, 1.5])
    ref = RepeatedSelfDistillationRegressor(solver="svd", **kw).fit(X, y)
    est = RepeatedSelfDistillationRegressor(**kw)
    for start in range(0, 300, 50):
        est.partial_fit(X[start : start + 50], y[start : start + 50])
    norm = np.linalg.norm(ref.coef_)
    assert np.linalg.norm(est.coef_ - ref.coef_) / norm < 1e-7
    # The naive one-pass moments, for contrast (ridge coefficients).
    n, m, my = len(y), X.mean(0), y.mean()
    G = X.T @ X - n * np.outer(m, m)
    b = X.T @ y - n * m * my
    naive = np.linalg.solve(G + 1e-3 * np.eye(4), b)
    ridge = RepeatedSelfDistillationRegressor(alpha=1e-3, n_steps=0, solver="svd")
    ridge_coef = ridge.fit(X, y).coef_
    stream_ridge = RepeatedSelfDistillationRegressor(alpha=1e-3, n_steps=0)
    for start in range(0, 300, 50):
        stream_ridge.partial_fit(X[start : start + 50], y[start : start + 50])
    err_naive = np.linalg.norm(naive - ridge_coef) / np.linalg.norm(ridge_coef)
    err_stream = np.linalg.norm(stream_ridge.coef_ - ridge_coef) / np.linalg.norm(
        ridge_coef
    )
    assert err_stream < 1e-7
    assert err_naive > 1e3 * err_stream


def test_fit_discards_partial_fit_data_and_shapes_are_checked():
    X, y = _data(n=60, d=4)
    est = RepeatedSelfDistillationRegressor(alpha=1.0).partial_fit(X[:30], y[:30])
    est.fit(X[30:], y[30:])
    est.partial_fit(X[:30], y[:30])  # a new stream: only these 30 rows
    ref = RepeatedSelfDistillationRegressor(alpha=1.0).fit(X[:30], y[:30])
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9)
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="targets"):
        est.partial_fit(X, np.column_stack([y, y]))
    with pytest.raises(ValueError, match="sample_weight|negative"):
        RepeatedSelfDistillationRegressor().partial_fit(
            X, y, sample_weight=-np.ones(60)
        )


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


# ------------------------------------------------------------ SelfDistillCV
@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 150), max_size=6),
    weighted=st.booleans(),
    fit_intercept=st.booleans(),
    scoring=st.sampled_from([None, "r2"]),
    t=st.sampled_from([None, 2]),
)
def test_streamed_cv_equals_in_memory_on_the_same_folds(
    seed, cuts, weighted, fit_intercept, scoring, t
):
    n = 150
    X, y = _data(n=n, d=5, t=t, seed=seed)
    w = np.random.default_rng(seed).uniform(0.2, 3, size=n) if weighted else None
    est = RepeatedSelfDistillationRegressor(fit_intercept=fit_intercept, solver="svd")
    kw = dict(n_steps=(0, 1, 2, 3), scoring=scoring, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        streamed = SelfDistillCV(est, cv=4, **kw).fit(_chunks(X, y, w, _cuts(cuts, n)))
        in_memory = SelfDistillCV(est, cv=_hashed_cv(n, 4, seed), **kw).fit(
            X, y, sample_weight=w
        )
    kappa = _assert_same_search(streamed, in_memory)
    np.testing.assert_allclose(
        streamed.predict(X), in_memory.predict(X), rtol=1e-8 * kappa
    )


def test_streamed_alpha_per_target_equals_in_memory():
    X, Y = _data(n=120, d=4, t=2, seed=1)
    Y[:, 1] = np.sin(X[:, 0]) * 4
    kw = dict(n_steps=(0, 1, 2), alpha_per_target=True, alphas=np.logspace(-2, 3, 12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        streamed = SelfDistillCV(cv=3, **kw).fit(_chunks(X, Y, None, [0, 50, 51, 120]))
        in_memory = SelfDistillCV(cv=_hashed_cv(120, 3), **kw).fit(X, Y)
    np.testing.assert_array_equal(streamed.n_steps_, in_memory.n_steps_)
    np.testing.assert_allclose(streamed.alpha_, in_memory.alpha_, rtol=1e-12)
    np.testing.assert_allclose(streamed.predict(X), in_memory.predict(X), rtol=1e-8)


def test_csv_chunks_with_pandas_keep_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = _data(n=300, d=4, seed=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(target=y)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    chunks = (
        (c.drop(columns="target"), c["target"]) for c in pd.read_csv(path, chunksize=64)
    )
    streamed = SelfDistillCV(cv=5, random_state=7).fit(chunks)
    in_memory = SelfDistillCV(
        RepeatedSelfDistillationRegressor(solver="svd"), cv=_hashed_cv(300, 5, 7)
    ).fit(frame.drop(columns="target"), y)
    _assert_same_search(streamed, in_memory)
    assert list(streamed.feature_names_in_) == ["a", "b", "c", "d"]
    assert list(streamed.best_estimator_.feature_names_in_) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(
        streamed.predict(frame.drop(columns="target")), in_memory.predict(X), rtol=1e-8
    )


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
    with pytest.raises(ImportError, match=r"pip install skdistill\[dask\]"):
        _import_dask()


# ---------------------------------------------------------------------- dask
def test_dask_array_and_dataframe_equal_in_memory():
    da = pytest.importorskip("dask.array")
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    import dask

    X, y = _data(n=400, d=6, seed=3)
    w = np.random.default_rng(3).uniform(0.5, 2, size=400)
    Xd = da.from_array(X, chunks=(90, 3))  # column chunks are merged
    yd = da.from_array(y, chunks=50)  # row chunks are aligned to X's
    wd = da.from_array(w, chunks=400)
    kw = dict(n_steps=(0, 1, 2), random_state=5)
    in_memory = SelfDistillCV(
        RepeatedSelfDistillationRegressor(solver="svd"), cv=_hashed_cv(400, 5, 5), **kw
    ).fit(X, y, sample_weight=w)
    with dask.config.set(scheduler="threads"):
        on_dask = SelfDistillCV(cv=5, **kw).fit(Xd, yd, sample_weight=wd)
    _assert_same_search(on_dask, in_memory)
    assert on_dask.n_features_in_ == 6

    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    ddf = dd.from_pandas(frame, npartitions=3)
    dy = dd.from_pandas(pd.Series(y), npartitions=3)
    with dask.config.set(scheduler="sync"):
        from_frame = SelfDistillCV(cv=5, **kw).fit(ddf, dy)
    unweighted = SelfDistillCV(
        RepeatedSelfDistillationRegressor(solver="svd"), cv=_hashed_cv(400, 5, 5), **kw
    ).fit(frame, y)
    _assert_same_search(from_frame, unweighted)
    assert list(from_frame.feature_names_in_) == list(frame.columns)


def test_dask_distributed_local_cluster():
    pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    X, y = _data(n=300, d=4, t=2, seed=4)
    in_memory = SelfDistillCV(
        RepeatedSelfDistillationRegressor(solver="svd"),
        cv=_hashed_cv(300, 3),
        n_steps=(0, 1),
    ).fit(X, y)
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
    ):
        Xd = da.from_array(X, chunks=(70, 4))
        yd = da.from_array(y, chunks=(70, 2))
        on_cluster = SelfDistillCV(cv=3, n_steps=(0, 1)).fit(Xd, yd)
        import dask

        assert dask.base.get_scheduler() == client.get  # the cluster computes
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    _assert_same_search(on_cluster, in_memory)
