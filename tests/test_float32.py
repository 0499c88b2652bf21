"""float32 data: every solver as accurate as the float64 computation allows.

float32 data are decomposed in float64 (``skdistill._spectral.work_dtype``), so
a float32 fit is the float64 fit of the same (exactly representable) numbers,
rounded once to float32. The references are float64 computations on the
float32 data cast to float64: scikit-learn ``Ridge(solver="svd")`` refits,
NumPy SVDs of the centred data, and ``SelfDistillCV`` on the float64 copy.

Tolerances, for a quantity ``w`` of the reference:

- rounding to float32: ``eps32 / 2 * |w|`` per entry, so ``eps32 * ||w||``;
- the float64 decomposition: the eigendecomposition of a Gram matrix carries
  an absolute error of order ``max(n, d) * eps64 * lam_max`` in its
  eigenvalues, and a filter (ridge or a distillate) amplifies it by at most
  ``kappa = (lam_max + alpha) / (lam_min + alpha)`` (with ``1 + sum |xi_bar|``
  for a student), so ``C * max(n, d) * eps64 * kappa * ||w||`` with a small
  constant ``C``. The float64 references (SVD-based) are more accurate still.

The issue's reproducer (issue 18, defect 1) lost the direction of singular
value 6.97 at n = 20 000: a float32 Gram matrix was given the cut-off
``eps32 * max(n, d) * lam_max``, and its coefficients were off by 14.
"""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from skdistill import RepeatedSelfDistillationRegressor, SelfDistillCV, xi_to_xi_bar

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
SOLVERS = ["auto", "gram", "cholesky", "svd"]


def _reproducer(n=20_000, d=8, seed=0):
    """Issue 18's data: columns 0 and 1 nearly collinear (condition number 28)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    z = rng.normal(size=n)
    X[:, 1] = X[:, 0] + 0.07 * z
    y = z + 0.5 * rng.normal(size=n)
    return X.astype(np.float32), y.astype(np.float32)


def _centred_singular_values(X, w=None):
    """Singular values of the (weighted) centred float64 data, by NumPy's SVD."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    Xc = np.sqrt(w)[:, None] * (X - np.average(X, axis=0, weights=w))
    return np.linalg.svd(Xc, compute_uv=False)


def _refits(X, y, alpha, xis, w=None):
    """Teacher and students as float64 ``Ridge(solver="svd")`` refits."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    labels, fits = y, []
    for i in range(len(xis) + 1):
        ridge = Ridge(alpha=alpha, solver="svd").fit(X, labels, sample_weight=w)
        fits.append(ridge)
        if i < len(xis):
            labels = xis[i] * ridge.predict(X) + (1.0 - xis[i]) * y
    return fits


def _tolerance(s, alpha, n_max, xis):
    """Norm-wise relative tolerance of a float32 fit (see the module docstring)."""
    lam = s**2
    kappa = (lam.max() + alpha) / (lam.min() + alpha)
    amplification = float(np.sum(np.abs(xi_to_xi_bar(np.asarray(xis, float)))))
    return EPS32 + 16 * n_max * EPS64 * kappa * max(1.0, amplification)


def _assert_close(got, ref, rtol, scale=None):
    """``||got - ref|| <= rtol * scale`` (``scale`` defaults to ``||ref||``)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    scale = np.linalg.norm(ref) if scale is None else scale
    err = np.linalg.norm(got - ref)
    assert err <= rtol * scale, f"error {err:.3g} > {rtol:.3g} * {scale:.3g}"


@pytest.mark.parametrize("solver", SOLVERS)
def test_reproducer_keeps_every_direction(solver):
    """Issue 18 (1): the float32 fit equals the float64 refit on the same data."""
    X32, y32 = _reproducer()
    X64, y64 = X32.astype(np.float64), y32.astype(np.float64)
    s = _centred_singular_values(X64)
    assert s.max() / s.min() > 25  # the direction that was lost: s = 6.97
    est = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=0, solver=solver)
    est.fit(X32, y32)
    assert est.coef_.dtype == np.float32 and est.coef_path_.dtype == np.float32
    ref = _refits(X64, y64, 1.0, [])[0]
    rtol = _tolerance(s, 1.0, max(X32.shape), [])
    _assert_close(est.coef_, ref.coef_, rtol)
    # intercept = y_mean - coef . X_mean: the coefficients' error times |X_mean|.
    scale = abs(ref.intercept_) + np.linalg.norm(ref.coef_) * np.linalg.norm(
        X64.mean(axis=0)
    )
    _assert_close(est.intercept_, ref.intercept_, rtol, scale)
    if solver != "cholesky":
        assert est.singular_values_.dtype == np.float32
        # sqrt of eigenvalues with absolute error ~ n eps64 lam_max: an error
        # of n eps64 lam_max / (2 s) in s, beside the rounding to float32.
        tol = EPS32 * s + 16 * max(X32.shape) * EPS64 * s.max() ** 2 / s
        err = np.abs(est.singular_values_ - s)
        assert np.all(err <= tol), (err, tol)


@pytest.mark.parametrize("solver", SOLVERS)
def test_reproducer_students(solver):
    """Students on the reproducer equal float64 refits on mixed labels."""
    X32, y32 = _reproducer()
    xis = [0.5, 1.5]
    est = RepeatedSelfDistillationRegressor(alpha=3.0, n_steps=2, xi=xis, solver=solver)
    est.fit(X32, y32)
    refs = _refits(X32, y32, 3.0, xis)
    rtol = _tolerance(_centred_singular_values(X32), 3.0, max(X32.shape), xis)
    for step, ref in enumerate(refs):
        _assert_close(est.coef_path_[step], ref.coef_, rtol)


# The best alpha of these data is the grid's smallest (little noise, n large).
@pytest.mark.filterwarnings("ignore::skdistill.exceptions.AlphaGridWarning")
@pytest.mark.parametrize("cv", [KFold(5), None], ids=["kfold", "loo"])
def test_reproducer_search(cv):
    """SelfDistillCV on float32 data chooses and predicts as on float64 data.

    Both searches see the same numbers (the float64 copy is exact), and the
    float32 one is computed in float64: the choice is the same, the scores
    agree to float64 round-off, the predictions to float32 rounding.
    """
    X32, y32 = _reproducer()
    X_test, y_test = _reproducer(n=5_000, seed=1)
    X64, y64 = X32.astype(np.float64), y32.astype(np.float64)
    params = dict(n_steps=(0, 1, 2), cv=cv)
    cv32 = SelfDistillCV(**params).fit(X32, y32)
    cv64 = SelfDistillCV(**params).fit(X64, y64)
    assert cv32.best_params_["n_steps"] == cv64.best_params_["n_steps"]
    assert cv32.best_params_["alpha"] == pytest.approx(cv64.best_params_["alpha"])
    assert_array_equal(cv32.best_index_, cv64.best_index_)
    # The test MSE of the float64 search is about 0.25 (the noise); the
    # float32 one was 1.23 when the weak direction was dropped.
    mse32 = np.mean((cv32.predict(X_test) - y_test) ** 2)
    mse64 = np.mean((cv64.predict(X_test.astype(np.float64)) - y_test) ** 2)
    assert mse32 == pytest.approx(mse64, rel=1e-4)
    assert cv32.best_score_ == pytest.approx(cv64.best_score_, rel=1e-8)


@st.composite
def _float32_problems(draw):
    """float32 designs with singular values from 1 down to 1/cond, cond <= 1e3."""
    n = draw(st.integers(10, 120))
    d = draw(st.integers(2, min(12, n - 2)))
    log_cond = draw(st.floats(0.0, 3.0))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(n, d)))
    V, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s = np.logspace(0.0, -log_cond, d) * draw(st.sampled_from([1e-2, 1.0, 1e3]))
    X = (U * s) @ V.T + draw(st.sampled_from([0.0, 5.0]))  # an offset to centre
    w_true = rng.normal(size=d)
    y = X @ w_true + draw(st.floats(0.0, 1.0)) * rng.normal(size=n) * s.max()
    # alpha from far below the smallest eigenvalue to the largest one.
    alpha = float(s.max() ** 2 * 10 ** draw(st.floats(-9.0, 0.0)))
    n_steps = draw(st.integers(0, 2))
    xis = draw(st.lists(st.floats(-1.0, 2.0), min_size=n_steps, max_size=n_steps))
    weighted = draw(st.booleans())
    w = rng.uniform(0.5, 2.0, size=n).astype(np.float32) if weighted else None
    solver = draw(st.sampled_from(SOLVERS))
    return X.astype(np.float32), y.astype(np.float32), w, alpha, xis, solver


@settings(max_examples=60, deadline=None)
@given(_float32_problems())
def test_float32_matches_float64_reference(problem):
    """Property: a float32 fit is the float64 refit of its data, rounded.

    On designs with condition numbers up to 1e3 (1e6 in the Gram matrix), at
    every alpha down to 1e-9 lam_max, every solver and up to two students.
    """
    X32, y32, w, alpha, xis, solver = problem
    s = _centred_singular_values(X32, w)
    lam = s**2
    # Directions below float32's own resolution (an SVD cut-off at
    # eps32 * max(n, d) * s_max) are null by convention; keep clear of it.
    if lam.min() <= (EPS32 * max(X32.shape)) ** 2 * lam.max() * 1e2:
        return
    est = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=len(xis), xi=xis if xis else 0.5, solver=solver
    )
    est.fit(X32, y32, sample_weight=w)
    assert est.coef_.dtype == np.float32
    refs = _refits(X32, y32, alpha, xis, w)
    rtol = _tolerance(s, alpha, max(X32.shape), xis)
    for step, ref in enumerate(refs):
        _assert_close(est.coef_path_[step], ref.coef_, rtol)
    if solver != "cholesky":
        tol = EPS32 * s + 16 * max(X32.shape) * EPS64 * s.max() ** 2 / s
        assert np.all(np.abs(est.singular_values_ - s) <= tol)


@pytest.mark.skipif(
    os.environ.get("SCIPY_ARRAY_API") != "1",
    reason="array API dispatch needs SCIPY_ARRAY_API=1 before scipy is imported",
)
@pytest.mark.parametrize("solver", ["auto", "gram", "cholesky"])
def test_float32_array_api_keeps_every_direction(solver):
    """The reproducer under array API dispatch (array_api_strict, float32)."""
    import sklearn
    from _xp import namespace

    from skdistill._array_api import to_numpy

    xp, device = namespace("array_api_strict", "CPU_DEVICE")
    X32, y32 = _reproducer()
    est = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=1, solver=solver)
    with sklearn.config_context(array_api_dispatch=True):
        est.fit(xp.asarray(X32, device=device), xp.asarray(y32, device=device))
    assert est.coef_.dtype == xp.float32
    refs = _refits(X32, y32, 1.0, [0.5])
    rtol = _tolerance(_centred_singular_values(X32), 1.0, max(X32.shape), [0.5])
    coef_path = to_numpy(est.coef_path_)
    for step, ref in enumerate(refs):
        _assert_close(coef_path[step], ref.coef_, rtol)
    if solver != "cholesky":
        s = _centred_singular_values(X32)
        tol = EPS32 * s + 16 * max(X32.shape) * EPS64 * s.max() ** 2 / s
        assert np.all(np.abs(to_numpy(est.singular_values_) - s) <= tol)
