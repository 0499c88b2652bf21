"""Array API support: RepeatedSelfDistillationRegressor and the filter helpers.

These tests need the environment variable SCIPY_ARRAY_API=1 before SciPy is
imported (scikit-learn refuses array API dispatch without it). It changes
SciPy's behaviour for the whole process, so the rest of the suite does not set
it: ``make test`` runs this file (and scikit-learn's array API checks of every
estimator) in a second pytest process with it set, and a plain ``pytest``
skips the file with a reason. Locally::

    SCIPY_ARRAY_API=1 python -m pytest tests -k array_api

Namespaces: ``array_api_strict`` (always, on its default device and on its
fake devices "device1" and "no_float64"), PyTorch on the CPU and on CUDA, and
CuPy, each skipped when not installed (or without a GPU).
"""

import os

import numpy as np
import pytest

if os.environ.get("SCIPY_ARRAY_API") != "1":
    pytest.skip(
        "array API tests need SCIPY_ARRAY_API=1 before scipy is imported; "
        "`make test` runs them in their own process",
        allow_module_level=True,
    )

import sklearn  # noqa: E402
from _xp import NAMESPACES, NS_IDS, namespace, same_place  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_array_api_input_and_values,
)

from skdistill import (  # noqa: E402
    KernelSelfDistillationRegressor,
    RepeatedSelfDistillationRegressor,
    SelfDistillationClassifier,
    SelfDistillationRegressor,
    filter_path,
    xi_bar_to_xi,
    xi_to_xi_bar,
)
from skdistill._array_api import to_numpy  # noqa: E402
from skdistill._filter import (  # noqa: E402
    inverse_filter_path_per_target,
    pure_filters,
)

EPS64 = np.finfo(np.float64).eps
EPS32 = np.finfo(np.float32).eps


@pytest.fixture(autouse=True)
def _dispatch():
    with sklearn.config_context(array_api_dispatch=True):
        yield


def _data(n=40, d=6, t=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + 0.3
    Y = X @ rng.normal(size=(d, t)) + rng.normal(scale=0.5, size=(n, t)) + 2.0
    w = rng.uniform(0.5, 2.0, size=n)
    return X.astype(dtype), Y.astype(dtype), w.astype(dtype)


def _ridge(X, y, alpha, w, fit_intercept):
    """Weighted ridge by a dense solve of the normal equations, float64."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, np.float64)
    Xm = np.average(X, 0, w) if fit_intercept else np.zeros(X.shape[1])
    ym = np.average(y, 0, w) if fit_intercept else 0.0
    Xc = X - Xm
    A = Xc.T @ (w[:, None] * Xc) + alpha * np.eye(X.shape[1])
    coef = np.linalg.solve(A, Xc.T @ (w * (y - ym)))
    return coef, ym - Xm @ coef


def _naive_chain(X, y, alphas, xis, w, fit_intercept):
    """Predictions on ``X`` of the teacher and each student: explicit refits."""
    labels, preds = y, []
    for i, alpha in enumerate(alphas):
        coef, b = _ridge(X, labels, alpha, w, fit_intercept)
        preds.append(X @ coef + b)
        if i < len(xis):
            labels = xis[i] * preds[-1] + (1.0 - xis[i]) * y
    return np.array(preds)


def _cond(X, w, alpha_min, fit_intercept):
    """Condition number of the regularised weighted Gram matrix."""
    Xm = np.average(X, 0, w) if fit_intercept else 0.0
    Xc = (X - Xm) * np.sqrt(w)[:, None]
    lam = np.linalg.eigvalsh(Xc.T @ Xc)
    return (lam.max() + alpha_min) / (max(lam.min(), 0.0) + alpha_min)


# Estimator settings with per-step, per-target and shared parameters, and the
# chain each target follows: (alphas per step, xis per step) for target j.
CASES = {
    "shared": (
        dict(alpha=0.7, n_steps=2, xi=[0.5, 1.5]),
        lambda j: ([0.7] * 3, [0.5, 1.5]),
    ),
    "per_step_alpha": (
        dict(alpha=[1.0, 0.3, 2.0], n_steps=2, xi=-0.5),
        lambda j: ([1.0, 0.3, 2.0], [-0.5, -0.5]),
    ),
    "per_target_alpha": (
        dict(alpha=[[0.5], [1.0], [3.0]], n_steps=2, xi=0.8),
        lambda j: ([[0.5], [1.0], [3.0]][j] * 3, [0.8, 0.8]),
    ),
    "per_target_steps": (
        dict(
            alpha=[[0.5, 0.5, 0.5], [1.0, 2.0, np.nan], [3.0, 1.0, 0.4]],
            n_steps=[2, 1, 2],
            xi=[[0.5, 2.0], [1.5, np.nan], [-1.0, 0.3]],
        ),
        lambda j: (
            [[0.5, 0.5, 0.5], [1.0, 2.0], [3.0, 1.0, 0.4]][j],
            [[0.5, 2.0], [1.5], [-1.0, 0.3]][j],
        ),
    ),
    # Targets sharing their penalties (one group of solves) but not their
    # number of steps: the ones whose steps ran out repeat their last.
    "per_target_steps_one_alpha": (
        dict(
            alpha=0.8, n_steps=[2, 0, 1], xi=[[0.5, 2.0], [np.nan] * 2, [1.5, np.nan]]
        ),
        lambda j: ([0.8] * [3, 1, 2][j], [[0.5, 2.0], [], [1.5]][j]),
    ),
    "per_target_steps_alpha_per_step": (
        dict(
            alpha=[1.0, 0.5, 2.0],
            n_steps=[2, 1, 2],
            xi=[[0.5, 2.0], [1.5, 0], [-1, 0.3]],
        ),
        lambda j: ([1.0, 0.5, 2.0][: [3, 2, 3][j]], [[0.5, 2.0], [1.5], [-1, 0.3]][j]),
    ),
}


def _reference(X, Y, w, case, fit_intercept):
    """(stages, targets, n) predictions of every target's own chain, padded."""
    _, chain = CASES[case]
    per_target = [
        _naive_chain(X, Y[:, j], *chain(j), w, fit_intercept) for j in range(Y.shape[1])
    ]
    k1 = max(p.shape[0] for p in per_target)
    padded = [
        np.concatenate([p, np.repeat(p[-1:], k1 - len(p), 0)]) for p in per_target
    ]
    alpha_min = min(min(chain(j)[0]) for j in range(Y.shape[1]))
    return np.stack(padded, axis=1), alpha_min


@pytest.mark.parametrize(("ns", "device_name"), NAMESPACES, ids=NS_IDS)
@pytest.mark.parametrize("solver", ["svd", "gram", "dual", "cholesky"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_fit_predict_match_refits_and_numpy(
    ns, device_name, solver, case, fit_intercept
):
    """Every stage equals explicit ridge refits; fitted arrays stay in place."""
    xp, device = namespace(ns, device_name)
    X, Y, w = _data()
    params, _ = CASES[case]
    est = RepeatedSelfDistillationRegressor(
        **params, solver=solver, fit_intercept=fit_intercept
    )
    X_xp, Y_xp, w_xp = (xp.asarray(a, device=device) for a in (X, Y, w))
    est_xp = sklearn.clone(est).fit(X_xp, Y_xp, sample_weight=w_xp)
    ref, alpha_min = _reference(X, Y, w, case, fit_intercept)
    rtol = 1e3 * EPS64 * _cond(X, w, alpha_min, fit_intercept)
    atol = rtol * np.abs(ref).max()
    stages = list(est_xp.staged_predict(X_xp))
    assert len(stages) == ref.shape[0]
    for got, want in zip(stages, ref, strict=True):
        same_place(got, xp, device)
        assert_allclose(to_numpy(got), want.T, rtol=rtol, atol=atol)
    pred = est_xp.predict(X_xp)
    same_place(pred, xp, device)
    assert_allclose(to_numpy(pred), ref[-1].T, rtol=rtol, atol=atol)
    # The same numbers as the NumPy path, attribute by attribute.
    est_np = sklearn.clone(est).fit(X, Y, sample_weight=w)
    for name in ("coef_", "intercept_", "coef_path_", "intercept_path_", "xi_bar_"):
        got = getattr(est_xp, name)
        same_place(got, xp, device)
        want = np.asarray(getattr(est_np, name))
        assert_allclose(to_numpy(got), want, rtol=rtol, atol=rtol * np.abs(want).max())
    assert (solver == "cholesky") != hasattr(est_xp, "singular_values_")
    if solver != "cholesky":
        same_place(est_xp.singular_values_, xp, device)
        assert_allclose(
            to_numpy(est_xp.singular_values_), est_np.singular_values_, rtol=rtol
        )
    assert est_xp.solver_ == est_np.solver_


@pytest.mark.parametrize(("ns", "device_name"), NAMESPACES, ids=NS_IDS)
@pytest.mark.parametrize("shape", [(40, 6), (12, 20)], ids=["tall", "wide"])
def test_float32_stays_float32(ns, device_name, shape):
    """float32 data give float32 fits within the float32 tolerance.

    The stated tolerance is ``1e3 * eps(float32) * cond`` relative to the
    largest prediction, ``cond`` that of the regularised Gram matrix (the
    "gram" and "dual" solvers square the condition number of ``X``).
    """
    xp, device = namespace(ns, device_name)
    X, Y, w = _data(*shape, t=2)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    est = RepeatedSelfDistillationRegressor(alpha=0.7, n_steps=2, xi=[0.5, 1.5])
    est.fit(xp.asarray(X32, device=device), xp.asarray(Y32, device=device))
    for name in ("coef_", "intercept_", "coef_path_", "singular_values_"):
        assert to_numpy(getattr(est, name)).dtype == np.float32, name
    pred = est.predict(xp.asarray(X32, device=device))
    assert to_numpy(pred).dtype == np.float32
    # Reference: float64 refits on the float32 data.
    X64, Y64 = X32.astype(np.float64), Y32.astype(np.float64)
    ref = np.stack(
        [
            _naive_chain(X64, Y64[:, j], [0.7] * 3, [0.5, 1.5], None, True)[-1]
            for j in (0, 1)
        ],
        axis=1,
    )
    cond = _cond(X64, np.ones(shape[0]), 0.7, True)
    tol = 1e3 * EPS32 * cond
    assert_allclose(to_numpy(pred), ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_device_without_float64():
    """On a device without float64 the filters are evaluated in float32."""
    xp = pytest.importorskip("array_api_strict")

    device = xp.Device("no_float64")
    X, Y, _ = _data(t=1)
    X32, y32 = X.astype(np.float32), Y[:, 0].astype(np.float32)
    est = RepeatedSelfDistillationRegressor(alpha=0.7, n_steps=2, xi=[0.5, 1.5])
    est.fit(xp.asarray(X32, device=device), xp.asarray(y32, device=device))
    assert est.coef_.device == device and est.coef_.dtype == xp.float32
    assert est.xi_bar_.device == device and est.xi_bar_.dtype == xp.float32
    ref = _naive_chain(
        X32.astype(float), y32.astype(float), [0.7] * 3, [0.5, 1.5], None, True
    )
    tol = 1e3 * EPS32 * _cond(X32.astype(float), np.ones(40), 0.7, True)
    pred = to_numpy(est.predict(xp.asarray(X32, device=device)))
    assert_allclose(pred, ref[-1], rtol=tol, atol=tol * np.abs(ref).max())


def test_numpy_inputs_with_dispatch_on_are_unchanged():
    """NumPy data with dispatch on take the NumPy path: identical numbers."""
    X, Y, w = _data()
    params = CASES["per_target_steps"][0]
    for solver in ("svd", "gram", "dual", "cholesky"):
        est = RepeatedSelfDistillationRegressor(**params, solver=solver)
        on = sklearn.clone(est).fit(X, Y, sample_weight=w)
        with sklearn.config_context(array_api_dispatch=False):
            off = sklearn.clone(est).fit(X, Y, sample_weight=w)
        assert isinstance(on.coef_path_, np.ndarray)
        assert_array_equal(on.coef_path_, off.coef_path_)
        assert_array_equal(on.predict(X), off.predict(X))


def test_mixed_inputs_follow_X():
    """``y`` and ``sample_weight`` in NumPy move to the namespace/device of X."""
    xp = pytest.importorskip("array_api_strict")

    device = xp.Device("device1")
    X, Y, w = _data()
    est = RepeatedSelfDistillationRegressor(alpha=[[0.5], [1.0], [3.0]], n_steps=1)
    est.fit(xp.asarray(X, device=device), Y, sample_weight=w)
    assert est.coef_.device == device
    ref = RepeatedSelfDistillationRegressor(alpha=[[0.5], [1.0], [3.0]], n_steps=1)
    ref.fit(X, Y, sample_weight=w)
    assert_allclose(to_numpy(est.coef_), ref.coef_, rtol=1e-10)


def test_parameters_as_arrays_of_thenamespace():
    """``alpha`` and ``xi`` given as arrays of the data's namespace (on a device)."""
    xp = pytest.importorskip("array_api_strict")

    device = xp.Device("device1")
    X, Y, _ = _data()
    alpha = xp.asarray([[0.5], [1.0], [3.0]], device=device)
    xi = xp.asarray([0.5, 1.5], device=device)
    est = RepeatedSelfDistillationRegressor(alpha=alpha, n_steps=2, xi=xi)
    est.fit(xp.asarray(X, device=device), xp.asarray(Y, device=device))
    ref = RepeatedSelfDistillationRegressor(
        alpha=[[0.5], [1.0], [3.0]], n_steps=2, xi=[0.5, 1.5]
    ).fit(X, Y)
    assert_allclose(to_numpy(est.coef_), ref.coef_, rtol=1e-10)


def test_score_is_a_float():
    xp = pytest.importorskip("array_api_strict")

    X, Y, _ = _data(t=1)
    y = Y[:, 0]
    est = RepeatedSelfDistillationRegressor(n_steps=2).fit(xp.asarray(X), xp.asarray(y))
    score = est.score(xp.asarray(X), xp.asarray(y))
    assert isinstance(score, float)
    with sklearn.config_context(array_api_dispatch=False):
        want = RepeatedSelfDistillationRegressor(n_steps=2).fit(X, y).score(X, y)
    assert abs(score - want) < 1e-10


def test_predict_in_another_namespace_raises():
    xp = pytest.importorskip("array_api_strict")

    X, Y, _ = _data(t=1)
    est = RepeatedSelfDistillationRegressor().fit(xp.asarray(X), xp.asarray(Y[:, 0]))
    for method in ("predict", "staged_predict"):
        with pytest.raises(ValueError, match=f"{method}.. must use the same namespace"):
            result = getattr(est, method)(X)
            list(result) if method == "staged_predict" else result


def test_partial_fit_after_array_api_fit_starts_afresh():
    """partial_fit is NumPy only: after a fit on other arrays it warns and restarts."""
    xp = pytest.importorskip("array_api_strict")

    X, Y, _ = _data(t=1)
    est = RepeatedSelfDistillationRegressor().fit(xp.asarray(X), xp.asarray(Y[:, 0]))
    with pytest.raises(
        TypeError, match=r"RepeatedSelfDistillationRegressor\.partial_fit"
    ):
        est.partial_fit(xp.asarray(X), xp.asarray(Y[:, 0]))
    with pytest.warns(UserWarning, match="non-NumPy arrays"):
        est.partial_fit(X[:30], Y[:30, 0])
    ref = RepeatedSelfDistillationRegressor(solver="svd").fit(X[:30], Y[:30, 0])
    assert_allclose(est.coef_, ref.coef_, rtol=1e-8)


@pytest.mark.parametrize(
    "est",
    [
        KernelSelfDistillationRegressor(),
        SelfDistillationRegressor(),
        SelfDistillationClassifier(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_estimators_refuse_other_namespaces(est):
    """Estimators without array API support say so, naming themselves."""
    xp = pytest.importorskip("array_api_strict")

    X, Y, _ = _data(t=1)
    y = (
        (Y[:, 0] > np.median(Y[:, 0])).astype(int)
        if "Classifier" in repr(est)
        else Y[:, 0]
    )
    name = type(est).__name__
    with pytest.raises(TypeError, match=rf"{name}\.fit\(\) supports NumPy arrays"):
        sklearn.clone(est).fit(xp.asarray(X), xp.asarray(y))
    fitted = sklearn.clone(est).fit(X, y)  # NumPy with dispatch on: works
    with pytest.raises(TypeError, match=rf"{name}\.predict\(\) supports NumPy arrays"):
        fitted.predict(xp.asarray(X))


@pytest.mark.parametrize(("ns", "device_name"), NAMESPACES, ids=NS_IDS)
def test_filter_helpers_stay_innamespace(ns, device_name):
    xp, device = namespace(ns, device_name)
    lam = np.array([0.0, 0.3, 1.0, 7.0])
    lam_xp = xp.asarray(lam, device=device)
    got = filter_path(lam_xp, alpha=[1.0, 0.5, 2.0], xi=[0.5, 1.5], n_steps=2)
    same_place(got, xp, device)
    # Independent: g_i = h_i (xi_i g_{i-1} + 1 - xi_i), written out.
    h = [lam / (lam + a) for a in (1.0, 0.5, 2.0)]
    g0 = h[0]
    g1 = h[1] * (0.5 * g0 + 0.5)
    g2 = h[2] * (1.5 * g1 - 0.5)
    assert_allclose(to_numpy(got), [g0, g1, g2], rtol=1e2 * EPS64)
    xi_bar = xi_to_xi_bar(xp.asarray([0.5, 2.0], device=device))
    same_place(xi_bar, xp, device)
    assert_allclose(to_numpy(xi_bar), [-1.0, 1.0, 1.0])
    xi = xi_bar_to_xi(xi_bar)
    same_place(xi, xp, device)
    assert_allclose(to_numpy(xi), [0.5, 2.0])
    powers = pure_filters(xp.asarray([0.5, 0.25], device=device), 2)
    same_place(powers, xp, device)
    assert_allclose(to_numpy(powers), [[0.5, 0.25, 0.125], [0.25, 0.0625, 0.015625]])
    # Per target: a target with one step repeats it; Horner and recursion.
    q = inverse_filter_path_per_target(
        lam_xp,
        np.array([[1.0, 1.0, 1.0], [1.0, 0.5, 2.0]]),
        np.array([[0.5, np.nan], [0.5, 1.5]]),
    )
    same_place(q, xp, device)
    with np.errstate(divide="ignore", invalid="ignore"):
        want_t0 = [1 / (lam + 1), (0.5 * lam / (lam + 1) + 0.5) / (lam + 1)]
        q0 = 1 / (lam + 1.0)
        q1 = (0.5 * lam * q0 + 0.5) / (lam + 0.5)
        q2 = (1.5 * lam * q1 - 0.5) / (lam + 2.0)
    assert_allclose(to_numpy(q)[:, 0], [*want_t0, want_t0[1]], rtol=1e2 * EPS64)
    assert_allclose(to_numpy(q)[:, 1], [q0, q1, q2], rtol=1e2 * EPS64)


def test_filter_path_rejects_negative_lam_on_device():
    xp = pytest.importorskip("array_api_strict")
    with pytest.raises(ValueError, match="lam"):
        filter_path(xp.asarray([-1.0, 1.0]), alpha=1.0, xi=0.5, n_steps=1)


ESTIMATORS = [
    RepeatedSelfDistillationRegressor(),
    RepeatedSelfDistillationRegressor(n_steps=3, xi=[0.5, 1.5, -0.5], solver="svd"),
    RepeatedSelfDistillationRegressor(alpha=[1.0, 0.5, 2.0], n_steps=2, solver="dual"),
    RepeatedSelfDistillationRegressor(
        solver="cholesky", n_steps=3, xi=[0.5, 2.0, -1.0], alpha=[1.0, 1.0, 0.3, 1.0]
    ),
    RepeatedSelfDistillationRegressor(fit_intercept=False, n_steps=2),
]


@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
@pytest.mark.parametrize(("ns", "device_name"), NAMESPACES, ids=NS_IDS)
@pytest.mark.parametrize("sample_weight", [False, True])
def test_sklearn_array_api_values_check(est, ns, device_name, sample_weight):
    """scikit-learn's check with values compared (parametrize_with_checks
    runs it without values, in tests/test_linear.py)."""
    namespace(ns, device_name)
    check_array_api_input_and_values(
        type(est).__name__,
        est,
        array_namespace=ns,
        device_name=device_name,
        check_sample_weight=sample_weight,
    )


def test_cholesky_singular_falls_back_like_numpy():
    """A singular regularised Gram matrix: solver='cholesky' warns, uses 'gram'.

    Outside NumPy the test is a bound on the condition number (the standard
    has no condition estimator); the fit then equals the NumPy one.
    """
    xp = pytest.importorskip("array_api_strict")
    X, Y, _ = _data(t=1)
    X = np.column_stack([X, X[:, :2]])  # rank deficient
    est = RepeatedSelfDistillationRegressor(alpha=1e-14, n_steps=1, solver="cholesky")
    with pytest.warns(UserWarning, match="singular"):
        ref = sklearn.clone(est).fit(X, Y[:, 0])
    with pytest.warns(UserWarning, match="singular"):
        got = sklearn.clone(est).fit(xp.asarray(X), xp.asarray(Y[:, 0]))
    assert got.solver_ == ref.solver_ == "gram"
    pred = to_numpy(got.predict(xp.asarray(X)))
    # Both drop the null directions of the duplicated columns: the tolerance
    # follows the condition number of the Gram matrix on its range.
    lam = np.linalg.eigvalsh(np.cov(X.T))
    cond = lam.max() / lam[lam > 1e-10 * lam.max()].min()
    tol = 1e3 * EPS64 * cond
    assert_allclose(pred, ref.predict(X), rtol=tol, atol=tol * np.abs(Y).max())
