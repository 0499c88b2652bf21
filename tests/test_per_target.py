"""Per-target ``alpha``, ``xi`` and ``n_steps`` of RepeatedSelfDistillationRegressor.

References that the per-target code does not use: a loop of single-target
fits with the corresponding scalar parameters, a chain of scikit-learn
``Ridge`` fits on mixed labels per target, and ``Ridge(alpha=array)``. The
per-target parameters are expanded to each target's scalar ones here, by the
rules of the docstring, independently of the estimator's own validation.
"""

import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.linear_model import Ridge

from skdistill import RepeatedSelfDistillationRegressor, xi_to_xi_bar

SOLVERS = ["auto", "svd", "gram", "dual", "cholesky"]
EPS = np.finfo(np.float64).eps

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def make_problem(seed, n, d, n_targets, weighted=False, spread=0.0):
    """Gaussian design with offsets and scales (condition ~ 10**spread)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d)
    X *= 10.0 ** -rng.uniform(0.0, spread, size=d)
    X += rng.normal(scale=3.0, size=d)
    W = rng.normal(size=(d, n_targets)) * rng.uniform(0.1, 10.0, size=n_targets)
    Y = X @ W + rng.normal(scale=0.5, size=(n, n_targets)) + 5.0
    sample_weight = rng.uniform(0.1, 3.0, size=n) if weighted else None
    return X, Y, sample_weight


def expand(alpha, xi, n_steps, n_targets):
    """Each target's scalar ``(alphas, xis, k)``, by the documented rules."""
    counts = np.broadcast_to(np.asarray(n_steps), (n_targets,)).astype(int)
    k = counts.max()
    alpha = np.asarray(alpha, dtype=float)
    xi = np.asarray(xi, dtype=float)
    if alpha.ndim == 1 and k == 0 and alpha.size == n_targets:
        alpha = alpha[:, None]  # Ridge's per-target alpha
    out = []
    for t in range(n_targets):
        a = alpha if alpha.ndim < 2 else alpha[min(t, alpha.shape[0] - 1)]
        x = xi if xi.ndim < 2 else xi[min(t, xi.shape[0] - 1)]
        a = np.broadcast_to(a, (k + 1,))[: counts[t] + 1]
        x = np.broadcast_to(x, (k,))[: counts[t]]
        out.append((a.copy(), x.copy(), int(counts[t])))
    return out


def naive_chain(X, y, alphas, xis, fit_intercept, sample_weight):
    """Predictions on ``X`` of the teacher and each student, by sklearn's Ridge."""
    preds = []
    labels = y
    for i, alpha in enumerate(alphas):
        ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept)
        ridge.fit(X, labels, sample_weight=sample_weight)
        preds.append(ridge.predict(X))
        if i < len(xis):
            labels = xis[i] * preds[-1] + (1.0 - xis[i]) * y
    return np.array(preds)


def chain_rtol(X, alphas, xis, sample_weight, fit_intercept):
    """``1e3 * eps * cond * max_i sum |xi_bar^(i)|`` of one target's chain.

    ``cond = (lam_max + alpha) / (lam_min + alpha)`` bounds the relative
    error of each regularised solve (the Gram solvers' squared condition
    number of X is this already); the chain combines the solves with weights
    ``xi_bar`` (or, with per-step penalties, products of the ``xi``).
    """
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    Xc = X - np.average(X, axis=0, weights=w) if fit_intercept else X
    s = np.linalg.svd(Xc * np.sqrt(w)[:, None], compute_uv=False)
    lam_min = s[-1] ** 2 if s.size == X.shape[1] else 0.0
    alpha = min(alphas)
    cond = (s[0] ** 2 + alpha) / (lam_min + alpha)
    amplification = max(
        np.abs(xi_to_xi_bar(xis[:i])).sum() for i in range(len(xis) + 1)
    )
    amplification = max(amplification, np.prod(1.0 + np.abs(xis)))
    return 1e3 * EPS * cond * amplification


def assert_normwise_close(actual, desired, rtol):
    err = np.linalg.norm(np.asarray(actual) - desired)
    ref = np.linalg.norm(desired)
    assert err <= rtol * ref, f"relative error {err / ref:.3e} > {rtol:.1e}"


@st.composite
def per_target_settings(draw, n_targets):
    """``(alpha, xi, n_steps)`` in any accepted form, with NaN padding."""
    T = n_targets
    if draw(st.booleans()):
        n_steps = draw(st.integers(0, 4))
        counts = np.full(T, n_steps)
    else:
        length = draw(st.sampled_from([1, T]))
        counts = np.array(draw(st.lists(st.integers(0, 4), min_size=1, max_size=1)))
        if length == T:
            counts = np.array(draw(st.lists(st.integers(0, 4), min_size=T, max_size=T)))
        n_steps = counts
        counts = np.broadcast_to(counts, (T,))
    k = int(counts.max())
    values = st.floats(0.1, 10.0)
    xi_values = st.floats(-2.0, 2.0)

    def matrix(elements, rows, cols):
        return np.array(
            draw(
                st.lists(
                    st.lists(elements, min_size=cols, max_size=cols),
                    min_size=rows,
                    max_size=rows,
                )
            ),
            dtype=float,
        ).reshape(rows, cols)

    alpha_forms = ["float", "steps", "column", "matrix", "row"]
    if k == 0 and T > 1:
        alpha_forms.append("ridge")
    form = draw(st.sampled_from(alpha_forms))
    if form == "float":
        alpha = draw(values)
    elif form == "steps":
        alpha = matrix(values, 1, k + 1)[0]
    elif form == "column":
        alpha = matrix(values, T, 1)
    elif form == "row":
        alpha = matrix(values, 1, k + 1)
    elif form == "ridge":
        alpha = matrix(values, 1, T)[0]
    else:
        alpha = matrix(values, T, k + 1)
        # Some targets keep one penalty at every step (the polynomial route).
        for t in range(T):
            if draw(st.booleans()):
                alpha[t] = alpha[t, 0]
    form = draw(st.sampled_from(["float", "steps", "column", "matrix", "row"]))
    if form == "float":
        xi = draw(xi_values)
    elif form == "steps":
        xi = matrix(xi_values, 1, k)[0]
    elif form == "column":
        xi = matrix(xi_values, T, 1)
    elif form == "row":
        xi = matrix(xi_values, 1, k)
    else:
        xi = matrix(xi_values, T, k)
    # Entries beyond a target's own count are ignored: pad some with NaN.
    if isinstance(alpha, np.ndarray) and alpha.shape == (T, k + 1):
        for t in range(T):
            if draw(st.booleans()):
                alpha[t, counts[t] + 1 :] = np.nan
    if isinstance(xi, np.ndarray) and xi.shape == (T, k):
        for t in range(T):
            if draw(st.booleans()):
                xi[t, counts[t] :] = np.nan
    return alpha, xi, n_steps


def is_per_target(alpha, xi, n_steps, n_targets):
    alpha, xi = np.asarray(alpha), np.asarray(xi)
    ridge = np.max(n_steps) == 0 and alpha.ndim == 1 and alpha.size == n_targets != 1
    return alpha.ndim == 2 or xi.ndim == 2 or np.ndim(n_steps) == 1 or ridge


# ---------------------------------------------------------------------------
# One per-target fit equals a loop of single-target fits
# ---------------------------------------------------------------------------


@given(
    data=st.data(),
    seed=st.integers(0, 2**32 - 1),
    shape=st.sampled_from([(30, 5), (12, 30), (25, 25)]),
    n_targets=st.sampled_from([1, 3, 4]),
    fit_intercept=st.booleans(),
    weighted=st.booleans(),
    spread=st.sampled_from([0.0, 2.0]),
    solver=st.sampled_from(SOLVERS),
    sparse_input=st.booleans(),
)
def test_per_target_fit_equals_loop_of_single_target_fits(
    data,
    seed,
    shape,
    n_targets,
    fit_intercept,
    weighted,
    spread,
    solver,
    sparse_input,
):
    alpha, xi, n_steps = data.draw(per_target_settings(n_targets))
    X, Y, sw = make_problem(seed, *shape, n_targets, weighted, spread)
    if sparse_input and solver != "svd":
        rng = np.random.default_rng(seed)
        X[rng.uniform(size=X.shape) < 0.5] = 0.0
        X_fit = sp.csr_matrix(X)
    else:
        X_fit = X
    reg = RepeatedSelfDistillationRegressor(
        alpha=alpha, xi=xi, n_steps=n_steps, fit_intercept=fit_intercept, solver=solver
    ).fit(X_fit, Y, sample_weight=sw)

    settings = expand(alpha, xi, n_steps, n_targets)
    k = max(s[2] for s in settings)
    staged = np.array(list(reg.staged_predict(X_fit)))
    # A y of shape (n, 1) gives Ridge's shapes: coef_ (d,), predictions (n,).
    one_column = (X.shape[0],) if n_targets == 1 else (X.shape[0], n_targets)
    assert staged.shape == (k + 1, *one_column)
    coef_shape = (X.shape[1],) if n_targets == 1 else (n_targets, X.shape[1])
    assert reg.coef_.shape == coef_shape
    assert_array_equal(staged[-1], reg.predict(X_fit))
    staged = staged.reshape(k + 1, X.shape[0], n_targets)
    coef = reg.coef_.reshape(n_targets, X.shape[1])
    per_target = is_per_target(alpha, xi, n_steps, n_targets)
    assert reg.xi_bar_.shape == ((n_targets, k + 1) if per_target else (k + 1,))
    for t, (alphas, xis, k_t) in enumerate(settings):
        one = RepeatedSelfDistillationRegressor(
            alpha=alphas,
            xi=xis,
            n_steps=k_t,
            fit_intercept=fit_intercept,
            solver=solver,
        ).fit(X_fit, Y[:, t], sample_weight=sw)
        rtol = chain_rtol(X, alphas, xis, sw, fit_intercept)
        one_staged = np.array(list(one.staged_predict(X_fit)))
        naive = naive_chain(X, Y[:, t], alphas, xis, fit_intercept, sw)
        for i in range(k + 1):
            # A target whose steps ran out repeats its last stage.
            assert_normwise_close(staged[i, :, t], one_staged[min(i, k_t)], rtol)
            assert_normwise_close(staged[i, :, t], naive[min(i, k_t)], rtol)
        assert_normwise_close(coef[t], one.coef_, rtol)
        xi_bar = reg.xi_bar_[t] if per_target else reg.xi_bar_
        np.testing.assert_allclose(xi_bar[: k_t + 1], xi_to_xi_bar(xis), rtol=1e-12)
        assert_array_equal(xi_bar[k_t + 1 :], 0.0)


@pytest.mark.parametrize(
    "solver, sparse_input",
    # solver="svd" rejects sparse X (test_linear checks that).
    [
        (s, sparse)
        for s in SOLVERS
        for sparse in (False, True)
        if (s, sparse) != ("svd", True)
    ],
)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("form", ["1d", "column"])
def test_no_distillation_with_per_target_alpha_is_ridge(
    solver, sparse_input, fit_intercept, weighted, form
):
    X, Y, sw = make_problem(0, 40, 8, n_targets=5, weighted=weighted, spread=1.0)
    alpha = np.array([0.1, 1.0, 10.0, 3.0, 0.5])
    reg = RepeatedSelfDistillationRegressor(
        alpha=alpha if form == "1d" else alpha[:, None],
        n_steps=0,
        fit_intercept=fit_intercept,
        solver=solver,
    )
    reg.fit(sp.csr_matrix(X) if sparse_input else X, Y, sample_weight=sw)
    # Ridge on dense X solves directly (no iterative tolerance).
    ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="cholesky")
    ridge.fit(X, Y, sample_weight=sw)
    rtol = chain_rtol(X, [alpha.min()], [], sw, fit_intercept)
    assert_normwise_close(reg.predict(X), ridge.predict(X), rtol)
    for t in range(5):
        assert_normwise_close(reg.coef_[t], ridge.coef_[t], rtol)
    np.testing.assert_allclose(
        reg.intercept_, ridge.intercept_, rtol=rtol, atol=rtol * np.abs(Y).max()
    )
    assert_array_equal(reg.xi_bar_, np.ones((5, 1)))


@pytest.mark.parametrize("solver", ["svd", "gram", "dual"])
@pytest.mark.parametrize("shape", [(40, 10), (10, 40)])
def test_tiny_per_target_alpha_on_rank_deficient_x(solver, shape):
    """Each target drops the null directions exactly when its fit alone does.

    A target with a tiny alpha gets the minimum-norm least-squares solution
    (``numpy.linalg.lstsq``) although another target's large alpha would
    keep every direction.
    """
    rng = np.random.default_rng(1)
    n, d = shape
    X = rng.normal(size=(n, 3)) @ rng.normal(size=(3, d))  # rank 3
    Y = rng.normal(size=(n, 2))
    alpha = np.array([[1e-300], [1.0]])
    reg = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=0, fit_intercept=False, solver=solver
    ).fit(X, Y)
    lstsq = np.linalg.lstsq(X, Y[:, 0], rcond=None)[0]
    s = np.linalg.svd(X, compute_uv=False)
    # The Gram solvers square the condition number of X's range, s_1 / s_3.
    rtol = 1e3 * EPS * max(n, d) * (s[0] / s[2]) ** 2
    assert_normwise_close(reg.coef_[0], lstsq, rtol)
    ridge = Ridge(alpha=1.0, fit_intercept=False, solver="svd").fit(X, Y[:, 1])
    assert_normwise_close(reg.coef_[1], ridge.coef_, 1e3 * EPS * (s[0] ** 2 + 1.0))


def test_one_row_is_shared_by_every_target():
    X, Y, _ = make_problem(2, 30, 6, n_targets=3)
    shared = RepeatedSelfDistillationRegressor(alpha=[2.0, 1.0], xi=[1.5]).fit(X, Y)
    row = RepeatedSelfDistillationRegressor(alpha=[[2.0, 1.0]], xi=[[1.5]]).fit(X, Y)
    rtol = chain_rtol(X, [1.0], [1.5], None, True)
    assert_normwise_close(row.coef_path_, shared.coef_path_, rtol)
    assert shared.xi_bar_.shape == (2,)
    assert_array_equal(row.xi_bar_, np.tile(shared.xi_bar_, (3, 1)))


@pytest.mark.parametrize("solver", SOLVERS)
def test_per_target_shapes_follow_ridge(solver):
    """y of shape (n,) or (n, 1) with a one-row per-target parameter."""
    X, Y, _ = make_problem(3, 30, 6, n_targets=1)
    reg = RepeatedSelfDistillationRegressor(
        alpha=[[1.0]], xi=[[0.5]], n_steps=[1], solver=solver
    )
    ref = RepeatedSelfDistillationRegressor(alpha=1.0, xi=0.5, n_steps=1)
    for y in (Y[:, 0], Y):
        reg.fit(X, y)
        ref.fit(X, y)
        assert reg.coef_.shape == ref.coef_.shape == (6,)
        assert reg.predict(X).shape == ref.predict(X).shape == (30,)
        assert reg.coef_path_.shape == ref.coef_path_.shape
        assert reg.xi_bar_.shape == (1, 2)
        assert_normwise_close(reg.predict(X), ref.predict(X), 1e-10)


@pytest.mark.parametrize("solver", SOLVERS)
def test_per_target_float32_is_preserved(solver):
    X, Y, _ = make_problem(4, 30, 6, n_targets=3)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    params = dict(alpha=[[1.0], [2.0], [3.0]], xi=[[0.5], [1.5], [-1.0]], n_steps=2)
    reg = RepeatedSelfDistillationRegressor(**params, solver=solver).fit(X32, Y32)
    ref = RepeatedSelfDistillationRegressor(**params, solver=solver).fit(X, Y)
    assert reg.coef_.dtype == reg.coef_path_.dtype == np.float32
    assert reg.predict(X32).dtype == np.float32
    rtol = 1e3 * np.finfo(np.float32).eps * np.linalg.cond(X - X.mean(0)) ** 2
    assert_normwise_close(reg.predict(X32), ref.predict(X), rtol)


def test_per_target_partial_fit_equals_fit():
    X, Y, _ = make_problem(5, 60, 6, n_targets=3)
    params = dict(
        alpha=[[1.0, 1.0, 1.0], [0.5, 2.0, np.nan], [3.0, 3.0, 3.0]],
        xi=[[0.5, 1.5], [2.0, np.nan], [-1.0, 0.3]],
        n_steps=[2, 1, 2],
        solver="svd",
    )
    full = RepeatedSelfDistillationRegressor(**params).fit(X, Y)
    chunks = RepeatedSelfDistillationRegressor(**params)
    for start in range(0, 60, 25):
        chunks.partial_fit(X[start : start + 25], Y[start : start + 25])
    rtol = 1e3 * EPS * np.linalg.cond(X - X.mean(0)) ** 2 * 8
    assert_normwise_close(chunks.coef_path_, full.coef_path_, rtol)
    assert_array_equal(chunks.xi_bar_, full.xi_bar_)


@pytest.mark.parametrize(
    "alpha, n_steps",
    [
        (np.array([[1.0], [2.0], [1.0], [2.0], [1.0], [3.0]]), 3),
        # Rows that vary by step, sharing their values with other rows.
        (np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [2, 1], [1, 1]]), 1),
        (np.array([[1.0, 2.0, 3.0]] * 6), [2, 1, 0, 2, 2, 1]),
    ],
)
def test_cholesky_factorises_once_per_distinct_alpha(monkeypatch, alpha, n_steps):
    from scipy import linalg

    calls = []
    cho_factor = linalg.cho_factor

    def counting(A, *args, **kwargs):
        calls.append(A.shape)
        return cho_factor(A, *args, **kwargs)

    monkeypatch.setattr(linalg, "cho_factor", counting)
    X, Y, _ = make_problem(6, 40, 6, n_targets=6)
    reg = RepeatedSelfDistillationRegressor(
        alpha=alpha, n_steps=n_steps, xi=1.5, solver="cholesky"
    ).fit(X, Y)
    assert len(calls) == 3
    ref = RepeatedSelfDistillationRegressor(alpha=alpha, n_steps=n_steps, xi=1.5)
    rtol = chain_rtol(X, [1.0], [1.5] * 3, None, True)
    assert_normwise_close(reg.coef_path_, ref.fit(X, Y).coef_path_, rtol)


# ---------------------------------------------------------------------------
# Bad shapes raise a ValueError naming the parameter
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, match",
    [
        (
            # 1-D alpha of length n_targets with n_steps >= 1: ambiguous.
            dict(alpha=[1.0, 2.0, 3.0], n_steps=1),
            r"alpha must be a float or an array of shape \(2,\).*"
            r"\(n_targets, 1\) = \(3, 1\).*give per-target penalties as a column",
        ),
        (
            dict(alpha=[1.0, 2.0], n_steps=0),
            r"alpha must be a float or an array of shape \(1,\).*"
            r"of shape \(n_targets,\) = \(3,\)",
        ),
        (dict(alpha=np.ones((2, 1)), n_steps=1), r"alpha must .*\(3, 1\)"),
        (dict(alpha=np.ones((3, 3)), n_steps=1), r"alpha must .*\(3, 2\)"),
        (dict(alpha=np.ones((3, 1, 1))), r"alpha must be a float or an array"),
        (dict(xi=np.ones((3, 2)), n_steps=1), r"xi must .*\(n_targets, n_steps\)"),
        (dict(xi=np.ones((4, 1)), n_steps=1), r"xi must .*\(3, 1\)"),
        (dict(n_steps=[1, 2]), r"n_steps must .*shape \(n_targets,\) = \(3,\)"),
        (dict(n_steps=[1, -1, 2]), r"n_steps must be a non-negative int"),
        (dict(n_steps=[1, 1.5, 2]), r"n_steps must be a non-negative int"),
        (dict(n_steps=[[1, 1, 2]]), r"n_steps must be a non-negative int"),
        (dict(n_steps=[True, False, True]), r"n_steps must be a non-negative int"),
        (dict(n_steps=np.array(-1)), r"n_steps must be a non-negative int"),
        (dict(n_steps=np.array(1.5)), r"n_steps must be a non-negative int"),
        (
            dict(n_steps=[1, 2, 2], xi=[[0.5, np.nan], [np.nan, 1.0], [1.0, 1.0]]),
            r"xi must be finite \(NaN is allowed only beyond",
        ),
        (
            dict(n_steps=[1, 2, 2], xi=[[0.5, np.inf], [1.0, 1.0], [1.0, 1.0]]),
            r"xi must be finite",
        ),
        (dict(alpha=[[1.0], [-1.0], [1.0]]), r"alpha must be non-negative"),
        (
            dict(alpha=[[1.0, -1.0], [1.0, 1.0], [1.0, 1.0]], n_steps=[0, 1, 1]),
            r"alpha must be non-negative",
        ),
        (
            dict(alpha=[[1.0], [0.0], [1.0]], solver="cholesky"),
            r"solver='cholesky' needs every alpha > 0",
        ),
    ],
)
def test_bad_per_target_shapes_raise(params, match):
    X, Y, _ = make_problem(7, 20, 4, n_targets=3)
    reg = RepeatedSelfDistillationRegressor(**params)
    with pytest.raises(ValueError, match=match):
        reg.fit(X, Y)


def test_per_target_shape_must_match_partial_fit_targets():
    X, Y, _ = make_problem(8, 20, 4, n_targets=3)
    reg = RepeatedSelfDistillationRegressor(alpha=[[1.0], [2.0], [3.0]])
    with pytest.raises(ValueError, match=re.escape("(n_targets, 1) = (2, 1)")):
        reg.partial_fit(X, Y[:, :2])
