"""Each formula has one home: the helpers the rest of the package calls.

The recurrence ``xi -> xi_bar`` (:func:`skdistill._filter.xi_bar_prefixes`)
and its inverse, ridge's filter ``h = lam / (lam + alpha)`` with its guard
(:func:`skdistill._filter.shrinkage`), the numerical-rank cut-offs
(:func:`skdistill._spectral.rank_rtol`), each against an independent
computation.
"""

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from skdistill import RepeatedSelfDistillationRegressor, xi_bar_to_xi, xi_to_xi_bar
from skdistill._filter import (
    _sums_to_one,
    _xi_bar_rows_to_xi,
    _xi_from_tail_sums,
    inverse_filter_path,
    pure_inverse_filters,
    shrinkage,
    xi_bar_prefixes,
)
from skdistill._kernel import _rank_rtol as kernel_rank_rtol
from skdistill._linear import _rank_rtol as linear_rank_rtol
from skdistill._spectral import rank_rtol, work_dtype
from skdistill.theory import _svd_rtol

EPS = np.finfo(np.float64).eps

# Away from underflow: products of six factors stay normal numbers.
weights = st.one_of(st.just(0.0), st.floats(-10.0, -1e-3), st.floats(1e-3, 10.0))
xi_rows = st.integers(1, 4).flatmap(
    lambda t: st.integers(0, 6).flatmap(
        lambda k: st.lists(
            st.lists(weights, min_size=k, max_size=k),
            min_size=t,
            max_size=t,
        )
    )
)


def explicit_xi_bar(xi):
    """``xi_bar_m = (1 - xi_{k-m}) * prod_{j > k-m} xi_j``, ``xi_bar_k = prod xi``.

    Unrolling ``p_i(h) = (1 - xi_i) + xi_i h p_{i-1}(h)``: the coefficient of
    ``h^m`` comes from the last ``m`` steps keeping their teacher and the one
    before them not (1-based steps; ``prod`` over the empty set is 1).
    """
    k = len(xi)
    out = np.empty(k + 1)
    for m in range(k):
        out[m] = (1.0 - xi[k - 1 - m]) * math.prod(xi[k - m :])
    out[k] = math.prod(xi)
    return out


@given(xi_rows)
def test_xi_bar_prefixes_equal_the_explicit_products(rows):
    xis = np.array(rows, dtype=float).reshape(len(rows), -1)
    t, k = xis.shape
    got = xi_bar_prefixes(xis)
    assert got.shape == (k + 1, t, k + 1)
    for i in range(k + 1):
        for j in range(t):
            # Each coefficient is one product of at most k + 1 factors: no
            # cancellation, a relative error of at most (k + 1) eps.
            ref = explicit_xi_bar(list(xis[j, :i]))
            assert_allclose(got[i, j, : i + 1], ref, rtol=(k + 1) * EPS, atol=0)
            assert_array_equal(got[i, j, i + 1 :], 0.0)


@given(st.lists(weights, min_size=0, max_size=6))
def test_xi_to_xi_bar_is_the_last_prefix(xi):
    xi = np.array(xi, dtype=float)
    got = xi_to_xi_bar(xi)
    assert_array_equal(got, xi_bar_prefixes(xi[None, :])[-1, 0])
    assert_allclose(got, explicit_xi_bar(list(xi)), rtol=(xi.size + 1) * EPS, atol=0)


def scalar_tail_inverse(xi_bar):
    """``xi`` from the tail sums, one row, written as a plain loop.

    Returns None where a vanishing tail sum is followed by a non-zero one.
    """
    k = len(xi_bar) - 1
    tail = [1.0] + [sum(xi_bar[m:]) for m in range(1, k + 1)]
    xi = [0.0] * k
    for m in range(k):
        if tail[m] == 0.0:
            return None if any(v != 0.0 for v in tail[m:]) else xi
        xi[k - 1 - m] = tail[m + 1] / tail[m]
    return xi


# Rows of coefficients from small integers and zeros: tail sums vanish
# exactly, before or after non-zero ones (sums of integers are exact).
integer_rows = st.integers(0, 4).flatmap(
    lambda k: st.lists(
        st.lists(st.integers(-2, 2).map(float), min_size=k, max_size=k).map(
            lambda r: [1.0 - sum(r)] + r
        ),
        min_size=1,
        max_size=6,
    )
)


@given(integer_rows)
def test_tail_sum_inverse_matches_the_scalar_loop(rows):
    xb = np.array(rows, dtype=float)
    xi, ok = _xi_from_tail_sums(xb)
    for j, row in enumerate(rows):
        ref = scalar_tail_inverse(row)
        assert ok[j] == (ref is not None)
        if ref is not None:
            # Quotients of exact integer sums: correctly rounded.
            assert_array_equal(xi[j], ref)
            assert_array_equal(xi_bar_to_xi(row), ref)
        else:
            with pytest.raises(ValueError, match="vanishing tail sum"):
                xi_bar_to_xi(row)


@given(integer_rows)
def test_rows_inverse_round_trips_through_the_recurrence(rows):
    """A row is representable exactly when its ``xi`` give it back."""
    xb = np.array(rows, dtype=float)
    xi, ok = _xi_bar_rows_to_xi(xb)
    for j, row in enumerate(rows):
        ref = scalar_tail_inverse(row)
        if ref is None:
            assert not ok[j]
            continue
        back = explicit_xi_bar(ref)
        close = np.linalg.norm(back - xb[j]) <= 1e-8 * max(1, np.linalg.norm(xb[j]))
        assert ok[j] == close


def test_sums_to_one_tolerance_scales_with_the_absolute_sum():
    near = np.array([[0.5, 0.5 + 0.9e-8], [0.5, 0.5 + 1.1e-8]])
    assert_array_equal(_sums_to_one(near), [True, False])
    # Cancelling coefficients: 1e-8 times their absolute sum (2e6) is allowed.
    cancelling = np.array([[-1e6, 1e6, 1.0 + 0.9e-2], [-1e6, 1e6, 1.0 + 2.1e-2]])
    assert_array_equal(_sums_to_one(cancelling), [True, False])


lams = st.lists(
    st.one_of(st.just(0.0), st.floats(1e-300, 1e300)), min_size=1, max_size=8
)
penalties = st.one_of(st.just(0.0), st.floats(1e-300, 1e300))


@given(lams, penalties)
def test_shrinkage_is_the_guarded_quotient(lam, alpha):
    lam = np.array(lam)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the guard divides by no zero
        got = shrinkage(lam, alpha)
    ref = [v / (v + alpha) if v + alpha > 0 else 0.0 for v in lam.tolist()]
    assert_array_equal(got, ref)
    assert np.all((got >= 0) & (got <= 1))


@given(lams, st.lists(penalties, min_size=1, max_size=4))
def test_shrinkage_broadcasts_one_row_per_penalty(lam, alphas):
    lam, alphas = np.array(lam), np.array(alphas)
    got = shrinkage(lam[None, :], alphas[:, None])
    assert got.shape == (alphas.size, lam.size)
    for a, row in zip(alphas, got, strict=True):
        assert_array_equal(row, shrinkage(lam, float(a)))


@given(
    st.lists(st.one_of(st.just(0.0), st.floats(1e-8, 1e8)), min_size=1, max_size=6),
    st.one_of(st.just(0.0), st.floats(1e-6, 1e6)),
    st.integers(0, 4),
)
def test_pure_inverse_filters_are_powers_over_the_penalty(lam, alpha, n_steps):
    lam = np.array(lam)
    got = pure_inverse_filters(lam, alpha, n_steps)
    assert got.shape == (n_steps + 1, lam.size)
    for j, v in enumerate(lam.tolist()):
        den = v + alpha
        for m in range(n_steps + 1):
            ref = (v / den) ** m / den if den > 0 else 0.0
            # One quotient, one power (m roundings), one more quotient.
            assert_allclose(got[m, j], ref, rtol=(m + 3) * EPS, atol=0)


def test_pure_inverse_filters_combine_into_the_chain():
    """``q_k = sum_m xi_bar_m h^m / (lam + alpha)``: the chain of one alpha."""
    lam = np.array([0.0, 1e-3, 0.4, 2.0, 50.0])
    xi = [0.5, 2.0, -0.7]
    xi_bar = xi_to_xi_bar(xi)
    got = pure_inverse_filters(lam, 0.3, len(xi)).T @ xi_bar
    ref = inverse_filter_path(lam, 0.3, xi, len(xi))[-1]
    # Terms of size up to sum |xi_bar| / alpha, summed in two orders.
    bound = 8 * EPS * np.abs(xi_bar).sum() / 0.3
    assert_allclose(got, ref, rtol=0, atol=bound)


@pytest.mark.skipif(
    os.environ.get("SCIPY_ARRAY_API") != "1",
    reason="array API dispatch needs SCIPY_ARRAY_API=1 (second test process)",
)
def test_shrinkage_array_api_stays_on_device():
    import array_api_strict as xp
    import sklearn
    from _xp import same_place

    from skdistill._array_api import to_numpy

    device = xp.Device("device1")
    lam = np.array([0.0, 0.3, 1.0, 7.0])
    with sklearn.config_context(array_api_dispatch=True):
        lam_xp = xp.asarray(lam, device=device)
        alpha_xp = xp.asarray([[0.0], [0.5]], device=device)
        h = shrinkage(lam_xp, alpha_xp)
        q = pure_inverse_filters(lam_xp, 0.5, 2)
    same_place(h, xp, device)
    same_place(q, xp, device)
    assert_array_equal(to_numpy(h), shrinkage(lam[None, :], np.array([[0.0], [0.5]])))
    assert_array_equal(to_numpy(q), pure_inverse_filters(lam, 0.5, 2))


SHAPES = [(1, 1), (5, 3), (3, 5), (20, 1000), (1000, 20), (50_000, 7), (7, 2**20)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_cutoffs_keep_their_values(shape, dtype):
    """The callers' cut-offs, as each was written before it called rank_rtol."""
    n = max(shape)
    eps = float(np.finfo(dtype).eps)
    # The kernel's: 100 n eps on the n x n kernel, at least 1e-10.
    assert kernel_rank_rtol(n, np.dtype(dtype)) == max(1e-10, 100 * n * eps)
    # The theory helpers' (float64): s > s_max * max(n, d) * eps, and the
    # same as lstsq's rcond.
    assert _svd_rtol(shape) == n * EPS
    for s_max in [1e-150, 3e-7, 1.0, 7.3, 2.0**40 + 1, 1e150]:
        assert s_max * _svd_rtol(shape) == s_max * n * EPS
    # The linear estimator's: the data's SVD resolution (eps n)**2 on lam,
    # the decomposition's in its dtype (float64 here: squared for "svd").
    X = np.zeros((1, 1), dtype=dtype)
    work = float(np.finfo(work_dtype(X)).eps)
    for solver in ["svd", "gram", "dual", "cholesky"]:
        decomposition = (work * n) ** 2 if solver == "svd" else work * n
        expected = max((eps * n) ** 2, decomposition)
        assert rank_rtol(solver, shape, np.dtype(dtype), work_dtype(X)) == expected
        Xs = np.lib.stride_tricks.as_strided(X, shape=shape, strides=(0, 0))
        assert linear_rank_rtol(solver, Xs) == expected


def test_null_direction_with_no_penalty_draws_as_zero():
    """The display's last filter uses ``h``'s guard, as :func:`filter_path` does."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from skdistill.plotting import SpectralFilterDisplay

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4))
    X[:, 3] = X[:, 2]  # one null direction
    y = rng.normal(size=20)
    reg = RepeatedSelfDistillationRegressor(alpha=0.0, n_steps=2, xi=[0.5, 2.0])
    reg.fit(X, y)
    assert reg.singular_values_[-1] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        display = SpectralFilterDisplay.from_estimator(reg)
    # With alpha = 0 every direction with lam > 0 is fitted exactly (h = 1)
    # and the null one contributes nothing, at every step.
    assert_allclose(display.filter_factors[:, :3], 1.0, rtol=1e-12)
    assert_array_equal(display.filter_factors[:, 3], 0.0)
    import matplotlib.pyplot as plt

    plt.close("all")
