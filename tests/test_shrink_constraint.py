"""Shrinking filters stay within [0, 1] on every eigenvalue of every fold.

``filter_constraint="shrink"`` promises ``0 <= phi(h) <= 1`` at every
``h = lam / (lam + alpha)`` of every training fold's spectrum, and
``filter_constraint="nonnegative"`` promises ``phi(h) >= 0`` there. The
references here are independent: numpy SVDs of each training fold, brute
force evaluation of the filters at every eigenvalue, and scipy's NNLS on
the least-distance programme with every eigenvalue's constraints at once.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls
from sklearn.model_selection import KFold

from skdistill import SelfDistillCV
from skdistill._constrained import (
    _extreme_h,
    _reduce,
    constrained_lstsq,
    shrink_to_unit,
)

EPS = np.finfo(np.float64).eps


def _fold_spectra(X, cv):
    """Eigenvalues of every centred training fold, by numpy's SVD."""
    out = []
    for train, _ in cv.split(X):
        Xt = X[train] - X[train].mean(axis=0)
        lam = np.linalg.svd(Xt, compute_uv=False) ** 2
        out.append(lam[lam > max(Xt.shape) * EPS * lam.max()])
    return out


def _filter(xi_bar, h):
    m = np.arange(len(xi_bar))
    return (h[:, None] ** (m + 1)) @ xi_bar


def _margin(xi_bar, h, lam, alpha, lam_max, n, d):
    """Round-off in a filter's value at the engine's eigenvalues.

    The engine's eigenvalues (a Gram matrix's eigendecomposition or an SVD)
    and numpy's differ by about ``max(n, d) eps lam_max`` (absolute), which
    moves ``h`` by ``alpha dlam / (lam + alpha)^2`` and the filter by its
    slope (at most ``sum (m + 1) |xi_bar_m| h^m``) times that; evaluating the
    polynomial costs a few ulps of ``sum |xi_bar_m|``, and the programmes
    are solved to 1e-11 on constraints of scale one.
    """
    dlam = 10 * max(n, d) * EPS * lam_max
    dh = alpha * dlam / (lam + alpha) ** 2
    m = np.arange(len(xi_bar))
    slope = (h[:, None] ** m) @ (np.abs(xi_bar) * (m + 1))
    return slope * dh + 256 * EPS * (1 + np.abs(xi_bar).sum()) + 1e-10


def _assert_within_unit(est, X, cv, family="shrink"):
    upper = 1.0 if family == "shrink" else np.inf
    spectra = _fold_spectra(X, cv)
    lam = np.concatenate(spectra)
    lam_max = max(s.max() for s in spectra)
    n, d = X.shape
    res = est.cv_results_
    shrinking = np.flatnonzero(
        (res["filter_family"] == family) & (res["param_n_steps"] > 0)
    )
    assert shrinking.size
    checked = [(res["xi_bar"][i], res["param_alpha"][i]) for i in shrinking]
    if res["filter_family"][est.best_index_] == family and est.n_steps_ > 0:
        checked.append((est.xi_bar_, est.cv_alpha_))
    worst = 0.0
    for xi_bar, alpha in checked:
        xi_bar = np.asarray(xi_bar, dtype=float)
        h = lam / (lam + alpha)
        phi = _filter(xi_bar, h)
        tol = _margin(xi_bar, h, lam, alpha, lam_max, n, d)
        excess = np.maximum(-phi - tol, phi - upper - tol).max()
        worst = max(worst, excess)
    assert worst <= 0, f"a {family} filter leaves [0, {upper}] by {worst:.3g}"


def _scaled_problem(n, d, seed=0):
    """Column scales 1 / sqrt(j): a spread spectrum with distinct values."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) / np.sqrt(np.arange(1, d + 1))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    return X, y


@pytest.mark.parametrize(
    "n, d, params",
    [
        (240, 80, dict(selection="honest", n_steps=(0, 1, 2, 3))),
        (40, 200, dict(selection="honest", n_steps=(0, 1, 2, 3))),
        (240, 80, dict()),
        (60, 30, dict(selection="stepwise", n_steps=(0, 1, 2, 3, 4))),
    ],
)
@pytest.mark.parametrize("family", ["shrink", "nonnegative"])
def test_every_shrinking_candidate_is_within_unit_on_every_fold_eigenvalue(
    n, d, params, family
):
    # 5 folds of up to 192 x 80 (or 32 x 200): 400 (160) distinct
    # eigenvalues, more than the 64 the exchange starts from.
    X, y = _scaled_problem(n, d)
    cv = KFold(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SelfDistillCV(cv=cv, filter_constraint=family, **params).fit(X, y)
    _assert_within_unit(est, X, cv, family)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    n=st.integers(60, 160),
    d=st.integers(16, 60),
    spread=st.floats(0.5, 3.0),
    noise=st.floats(0.1, 3.0),
    seed=st.integers(0, 2**16),
    selection=st.sampled_from(["stepwise", "honest", "raw"]),
    max_steps=st.integers(1, 3),
    family=st.sampled_from(["shrink", "nonnegative"]),
)
def test_property_shrinking_filters_within_unit(
    n, d, spread, noise, seed, selection, max_steps, family
):
    # Each fold has min(0.8 n, d) >= 16 distinct eigenvalues: at least 80
    # over five folds, more than any sampling of 64.
    rng = np.random.default_rng(seed)
    scales = 10.0 ** (-spread * rng.random(d))
    X = rng.normal(size=(n, d)) * scales
    y = X @ rng.normal(size=d) + noise * rng.normal(size=n)
    cv = KFold(5, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SelfDistillCV(
            cv=cv,
            filter_constraint=family,
            selection=selection,
            n_steps=tuple(range(max_steps + 1)),
            return_honest_score=False,
        ).fit(X, y)
    _assert_within_unit(est, X, cv, family)


@settings(max_examples=60, deadline=None)
@given(
    p=st.integers(1, 5),
    m=st.integers(1, 400),
    seed=st.integers(0, 2**16),
    log_alpha=st.floats(-4, 2),
)
def test_extreme_points_are_the_spectrum_extremes(p, m, seed, log_alpha):
    # Brute force: the filter at every eigenvalue.
    rng = np.random.default_rng(seed)
    lam = np.unique(np.exp(rng.normal(scale=3, size=m)))
    x = rng.normal(size=(50, p)) * 10.0 ** rng.uniform(-1, 3, size=(50, 1))
    alpha = np.full(50, 10.0**log_alpha)
    H = _extreme_h(x, lam, alpha)
    h_all = lam[None, :] / (lam[None, :] + alpha[:, None])
    powers = np.arange(1, p + 1)
    phi_all = np.einsum("bip,bp->bi", h_all[..., None] ** powers, x)
    phi_H = np.einsum("bip,bp->bi", H[..., None] ** powers, x)
    # Every point is an eigenvalue's h, so the extremes at the points are
    # values of the filter on the spectrum, and they are the extremes.
    assert np.all(np.isin(H, h_all))
    np.testing.assert_array_equal(phi_H.min(axis=1), phi_all.min(axis=1))
    np.testing.assert_array_equal(phi_H.max(axis=1), phi_all.max(axis=1))


def _ldp_all_points(PT, base, upper=1.0):
    """``min |z|`` under ``0 <= base + PT z <= upper`` (every row), by NNLS.

    Lawson and Hanson (1974, chapter 23), written out here: with ``G z >=
    h``, ``z = -rho[:r] / rho[r]`` for the residual ``rho`` of ``min |[G^T;
    h^T] u - e_{r+1}|`` over ``u >= 0``.
    """
    G, h = PT, -base
    if upper < np.inf:
        G, h = np.vstack([PT, -PT]), np.concatenate([-base, base - upper])
    r = G.shape[1]
    E = np.vstack([G.T, h[None, :]])
    target = np.zeros(r + 1)
    target[-1] = 1.0
    u, _ = nnls(E, target, maxiter=100 * E.shape[1])
    rho = E @ u - target
    return -rho[:r] / rho[-1]


@pytest.mark.parametrize("upper", [1.0, np.inf])
@pytest.mark.parametrize("p", [2, 3, 4, 5])
def test_exchange_equals_least_distance_on_every_eigenvalue(p, upper):
    # 600 eigenvalues; the exchange starts from four of them (the three
    # smallest and the largest) and the free filter's worst two, the
    # reference imposes all 600 at once. The free solutions are near filters
    # with interior bumps out of [0, 1], which the first points miss.
    rng = np.random.default_rng(p)
    lam = np.unique(rng.exponential(size=600))
    alphas = np.array([0.05, 0.5, 5.0])
    sample = lam[[0, 1, 2, -1]]
    h_s = sample[None, :] / (sample[None, :] + alphas[:, None])
    Phi = h_s[..., None] ** np.arange(1, p + 1)  # (A, 4, p)
    nb = 300
    M = rng.normal(size=(nb, 15, p)) * 3.0 ** np.arange(p)
    target = rng.normal(size=(nb, p)) * 3
    target[:, 0] = 1 - target[:, 1:].sum(axis=1)
    v = np.einsum("bnp,bp->bn", M, target) + 0.3 * rng.normal(size=(nb, 15))
    a_idx = rng.integers(0, 3, size=nb)
    T, c, rank = _reduce(M, v)
    x = constrained_lstsq(M, v)
    got = shrink_to_unit(x, T, c, rank, Phi, a_idx, lam, alphas, upper=upper)
    h_all = lam[None, :] / (lam[None, :] + alphas[:, None])
    P_all = h_all[..., None] ** np.arange(1, p + 1)  # (A, 600, p)
    free = np.einsum("bip,bp->bi", P_all[a_idx], x)
    infeasible = (free.min(axis=1) < 0) | (free.max(axis=1) > upper)
    on_samples = np.einsum("bip,bp->bi", Phi[a_idx], x)
    between = infeasible & (on_samples.min(1) >= 0) & (on_samples.max(1) <= upper)
    # A degree-one filter (p = 2) is monotone beyond its one critical point,
    # so it leaves [0, 1] at an end whenever it does; higher ones need not.
    # Enough problems exercise the programme (fewer with one bound).
    assert infeasible.sum() > 50 and (p == 2 or between.sum() > 0)
    np.testing.assert_array_equal(got[~infeasible], x[~infeasible])
    for b in np.flatnonzero(infeasible):
        f = P_all[a_idx[b]] @ got[b]
        # The programmes' tolerance (1e-11) plus evaluation round-off.
        slack = 1e-10 * (1 + np.abs(got[b]).sum())
        assert f.min() >= -slack and f.max() <= upper + slack
        r = int(rank[b])
        z = _ldp_all_points(P_all[a_idx[b]] @ T[b][:, :r], free[b], upper)
        ref = T[b][:, :r] @ (c[b][:r] + z)
        ref[0] += 1.0
        r_got = np.linalg.norm(M[b] @ got[b] - v[b])
        r_ref = np.linalg.norm(M[b] @ ref - v[b])
        # The least-distance point is unique; both are exact to the
        # round-off of small solves on O(1) constraint rows.
        assert r_got == pytest.approx(r_ref, rel=1e-7)


def _plane_problems(upper, seed=0, nb=400):
    """Degree-two problems on 600 eigenvalues whose free filters mostly leave
    [0, upper]: ``(M, v, T, c, rank, x, lam, alphas, a_idx, P_all)``."""
    rng = np.random.default_rng(seed)
    lam = np.unique(rng.exponential(size=600))
    alphas = np.array([0.05, 0.5, 5.0])
    M = rng.normal(size=(nb, 15, 3)) * 3.0 ** np.arange(3)
    target = rng.normal(size=(nb, 3)) * 3
    target[:, 0] = 1 - target[:, 1:].sum(axis=1)
    v = np.einsum("bnp,bp->bn", M, target) + 0.3 * rng.normal(size=(nb, 15))
    T, c, rank = _reduce(M, v)
    x = constrained_lstsq(M, v)
    h_all = lam[None, :] / (lam[None, :] + alphas[:, None])
    P_all = h_all[..., None] ** np.arange(1, 4)
    a_idx = rng.integers(0, 3, size=nb)
    return M, v, T, c, rank, x, lam, alphas, a_idx, P_all


@pytest.mark.parametrize("upper", [1.0, np.inf])
def test_spectrum_active_set_equals_nnls_on_every_eigenvalue(upper):
    # The one-pass dual active set of the plane against scipy's NNLS with all
    # 600 eigenvalues' constraints at once (the residual: the least-distance
    # point is unique, both exact to the round-off of small solves).
    from skdistill._constrained import _ldp_spectrum

    M, v, T, c, rank, x, lam, alphas, a_idx, P_all = _plane_problems(upper)
    free = np.einsum("bip,bp->bi", P_all[a_idx], x)
    bad = ((free.min(axis=1) < 0) | (free.max(axis=1) > upper)) & (rank == 2)
    assert bad.sum() > 100
    got, ok = _ldp_spectrum(x[bad], T[bad], lam, alphas[a_idx[bad]], upper)
    assert ok.mean() > 0.9  # the rest go to the exchange
    for i, b in enumerate(np.flatnonzero(bad)):
        if not ok[i]:
            continue
        f = P_all[a_idx[b]] @ got[i]
        slack = 1e-10 * (1 + np.abs(got[i]).sum())
        assert f.min() >= -slack and f.max() <= upper + slack
        z = _ldp_all_points(P_all[a_idx[b]] @ T[b], free[b], upper)
        ref = T[b] @ (c[b] + z)
        ref[0] += 1.0
        r_got = np.linalg.norm(M[b] @ got[i] - v[b])
        r_ref = np.linalg.norm(M[b] @ ref - v[b])
        assert r_got == pytest.approx(r_ref, rel=1e-7)


@pytest.mark.parametrize("upper", [1.0, np.inf])
def test_spectrum_active_set_equals_the_exchange(upper, monkeypatch):
    # shrink_to_unit with the one-pass solve against the exchange alone (the
    # one-pass solve made to fail everywhere): the same programmes.
    from skdistill import _constrained

    M, v, T, c, rank, x, lam, alphas, a_idx, P_all = _plane_problems(upper, 1)
    sample = lam[np.unique(np.linspace(0, lam.size - 1, 64).astype(int))]
    h_s = sample[None, :] / (sample[None, :] + alphas[:, None])
    Phi = h_s[..., None] ** np.arange(1, 4)
    args = (x, T, c, rank, Phi, a_idx, lam, alphas)
    got = shrink_to_unit(*args, upper=upper)

    def failing(x0, *a, **k):  # the free solutions, none solved
        return np.array(x0), np.zeros(x0.shape[0], dtype=bool)

    monkeypatch.setattr(_constrained, "_ldp_spectrum", failing)
    ref = shrink_to_unit(*args, upper=upper)
    assert not np.array_equal(got, x)
    # Where the exchange's rounds ran out it returns ridge (e_0); the
    # one-pass solve is exact there, so the residual can only be smaller.
    ridge = np.all(ref == np.eye(3)[0], axis=1)
    assert ridge.mean() < 0.1
    r_got = np.linalg.norm(np.einsum("bnp,bp->bn", M, got) - v, axis=1)
    r_ref = np.linalg.norm(np.einsum("bnp,bp->bn", M, ref) - v, axis=1)
    np.testing.assert_allclose(r_got[~ridge], r_ref[~ridge], rtol=1e-7)
    assert np.all(r_got[ridge] <= r_ref[ridge] * (1 + 1e-7))


def _no_variance_cases():
    rng = np.random.default_rng(0)
    n = 30
    y, Y = rng.normal(size=n), rng.normal(size=(n, 3))
    X = rng.normal(size=(n, 4))
    w_one = np.r_[1.0, np.zeros(n - 1)]
    return {
        "constant": (np.full((n, 4), 3.0), y, {}, {}, True),
        "zero, no intercept": (np.zeros((n, 4)), y, {}, {}, False),
        "per target": (np.full((n, 4), -2.0), Y, dict(alpha_per_target=True), {}, True),
        "one weighted row": (X, y, dict(cv=None), dict(sample_weight=w_one), True),
    }


@pytest.mark.parametrize("case", list(_no_variance_cases()))
@pytest.mark.parametrize("constraint", ["auto", "shrink"])
def test_no_variance_predicts_as_ridgecv(case, constraint):
    # Without variance in X (on the rows of positive weight) every filter
    # is the same; the search must predict the (weighted) mean, or zero
    # without an intercept, as RidgeCV does.
    from sklearn.linear_model import RidgeCV

    from skdistill import RepeatedSelfDistillationRegressor

    X, y, params, fit_params, intercept = _no_variance_cases()[case]
    est = SelfDistillCV(
        estimator=RepeatedSelfDistillationRegressor(fit_intercept=intercept),
        filter_constraint=constraint,
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, **fit_params)
        per_target = params.get("alpha_per_target", False)
        ridge = RidgeCV(  # scikit-learn tunes per target by leave-one-out only
            fit_intercept=intercept,
            alphas=np.logspace(-3, 3, 7),
            cv=None if per_target else params.get("cv", 5),
            alpha_per_target=per_target,
        ).fit(X, y, **fit_params)
    rng = np.random.default_rng(1)
    X_new = X[rng.integers(0, X.shape[0], size=5)]
    w = fit_params.get("sample_weight", np.ones(X.shape[0]))
    mean = np.average(y, axis=0, weights=w) if intercept else np.zeros(y.shape[1:])
    expected = np.broadcast_to(mean, (5,) + y.shape[1:])
    # Both are the mean of y (a sum of n values): round-off of n ulps.
    atol = 1e-13 * (1 + np.abs(y).max())
    np.testing.assert_allclose(est.predict(X_new), expected, rtol=0, atol=atol)
    np.testing.assert_allclose(ridge.predict(X_new), expected, rtol=0, atol=atol)
    assert np.all(np.asarray(est.n_steps_) == 0)


def _cancellation_of(est, X):
    """``sum_m |xi_bar_m| h_max^m`` of the chosen filter, by numpy's SVD of
    the centred data (``cv=None``: the spectrum is that of all rows)."""
    lam_max = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)[0] ** 2
    h_max = lam_max / (lam_max + est.cv_alpha_)
    xi_bar = np.asarray(est.xi_bar_, dtype=float)
    return np.abs(xi_bar) @ h_max ** np.arange(xi_bar.size)


@pytest.mark.parametrize("seed", [0, 3])
def test_students_whose_filter_cancels_are_not_offered(seed):
    # Issue 18, defect 7: wide data, leave-one-out, the raw optimum chose a
    # two-step filter with |xi_bar| of 8.9e9 (seed 0) and 1.3e9 (seed 3) at
    # alpha near 1e-6 lam_max, whose O(1) values cancel from terms 1e9
    # times larger.
    from skdistill._cv_engine import MAX_CANCELLATION

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20, 30))
    y = X[:, 0] + 0.3 * rng.normal(size=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = SelfDistillCV(cv=None, selection="raw").fit(X, y)
    assert est.n_steps_ > 0
    # The bound, and the SVD's h_max to round-off (relative 1e-12).
    assert _cancellation_of(est, X) <= MAX_CANCELLATION * (1 + 1e-9)


def test_cancellation_bounds_the_round_off_of_the_filter():
    # float64 evaluation of sum_m xi_bar_m h^(m+1) against long double, at
    # h within 1e-6 of 1 where the least-squares filters cancel: the error
    # is within a few ulps of the cancellation ratio times h.
    from skdistill._cv_engine import _cancellation, filter_powers

    rng = np.random.default_rng(0)
    lam = np.sort(rng.uniform(0.4, 1.0, size=200))
    alphas = np.array([1e-6, 1e-3, 1.0])
    spectrum = filter_powers([lam], alphas, 3)
    for a in range(3):
        h = lam / (lam + alphas[a])
        # Filters with O(1) values near h = 1 and huge coefficients:
        # phi(h) = h (1 + c (h - h0)^3) expanded in powers of h.
        c = 10.0 ** rng.uniform(0, 12, size=30)
        h0 = h.mean()
        xi_bar = np.stack(
            [1 - c * h0**3, 3 * c * h0**2, -3 * c * h0, c], axis=1
        )  # (30, 4)
        ratio = _cancellation(xi_bar, np.full(30, a), spectrum)
        powers = h[:, None] ** np.arange(1, 5)
        phi64 = powers @ xi_bar.T
        hl = h.astype(np.longdouble)
        phild = (hl[:, None] ** np.arange(1, 5)) @ xi_bar.T.astype(np.longdouble)
        err = np.abs(phi64 - phild).max(axis=0).astype(float)
        assert np.all(err <= 8 * EPS * ratio * h.max())
        if a == 0:  # the bound is attained: the error grows with it
            assert err.max() > 1e-6


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(30, 120),
    d=st.integers(3, 20),
    seed=st.integers(0, 2**16),
    selection=st.sampled_from(["raw", "honest"]),
    constraint=st.sampled_from(["shrink", "none"]),
)
def test_choice_unchanged_where_the_filter_is_resolved(
    n, d, seed, selection, constraint
):
    # The rules "raw" and "honest" take the best eligible candidate: where
    # the unbounded choice passes the bound, the bounded search picks the
    # same candidate, with the same scores.
    import skdistill._cv_engine as engine

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 10.0 ** rng.uniform(-2, 0, size=d)
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    cv = KFold(5, shuffle=True, random_state=seed)
    params = dict(cv=cv, selection=selection, filter_constraint=constraint)
    bound = engine.MAX_CANCELLATION
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bounded = SelfDistillCV(**params).fit(X, y)
        try:
            engine.MAX_CANCELLATION = np.inf
            free = SelfDistillCV(**params).fit(X, y)
        finally:
            engine.MAX_CANCELLATION = bound
    res = free.cv_results_
    xi_bar = np.asarray(free.xi_bar_, dtype=float)
    spectra = _fold_spectra(X, cv)
    lam_max = max(s.max() for s in spectra)
    h_max = lam_max / (lam_max + free.cv_alpha_)
    ratio = np.abs(xi_bar) @ h_max ** np.arange(xi_bar.size)
    for key in ("mean_test_score", "mean_honest_test_score"):
        np.testing.assert_array_equal(bounded.cv_results_[key], res[key])
    if ratio <= bound * (1 - 1e-9):  # away from the bound by round-off
        assert bounded.best_index_ == free.best_index_
        np.testing.assert_array_equal(bounded.xi_bar_, free.xi_bar_)
        assert bounded.alpha_ == free.alpha_
