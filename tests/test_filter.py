"""Tests of the spectral-filter helpers against direct scalar recursions."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from skdistill import filter_path, xi_bar_to_xi, xi_to_xi_bar
from skdistill._filter import inverse_filter_path
from skdistill.theory import excess_risk

# Bounded away from zero so that every partial product of xi is non-zero and
# the map xi -> xi_bar is invertible.
nonzero_xi = st.one_of(st.floats(-5.0, -0.05), st.floats(0.05, 5.0))


def scalar_chain(lam, alphas, xis):
    """Fitted-value factor of every step for one direction, step by step.

    A one-dimensional ridge problem with ``x^T x = lam`` and ``x^T y = lam``
    (so least squares gives 1): the teacher's coefficient is
    ``lam / (lam + alpha_0)``; student i regresses on the mixed labels, whose
    projection is ``xi_i * g_{i-1} * lam + (1 - xi_i) * lam``.
    """
    g, out = None, []
    for i, alpha in enumerate(alphas):
        target = lam if i == 0 else xis[i - 1] * g * lam + (1 - xis[i - 1]) * lam
        g = target / (lam + alpha)
        out.append(g)
    return np.array(out)


@given(st.lists(nonzero_xi, min_size=0, max_size=8))
def test_xi_bar_round_trip(xi):
    xi_bar = xi_to_xi_bar(xi)
    assert xi_bar.shape == (len(xi) + 1,)
    # Entries reach prod |xi| (5**8 here) and cancel: the rounding error of
    # the sum is relative to sum |xi_bar|, not to 1.
    assert_allclose(xi_bar.sum(), 1.0, rtol=0, atol=1e-13 * np.abs(xi_bar).sum())
    assert_allclose(xi_bar_to_xi(xi_bar), xi, rtol=1e-9)


@given(
    st.lists(st.floats(-3.0, 3.0), min_size=0, max_size=6),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5),
)
def test_xi_bar_is_the_polynomial_of_the_recursion(xi, h):
    """``p_0 = 1``, ``p_i(h) = 1 - xi_i + xi_i h p_{i-1}(h)`` evaluated directly."""
    h = np.array(h)
    p = np.ones_like(h)
    for x in xi:
        p = 1.0 - x + x * h * p
    poly = np.polynomial.polynomial.polyval(h, xi_to_xi_bar(xi))
    assert_allclose(poly, p, rtol=1e-10, atol=1e-10 * max(1.0, np.abs(p).max()))


@given(
    st.lists(st.floats(0.0, 1e4), min_size=1, max_size=6),
    st.integers(0, 5).flatmap(
        lambda k: st.tuples(
            st.lists(st.floats(0.01, 10.0), min_size=k + 1, max_size=k + 1),
            st.lists(st.floats(-3.0, 3.0), min_size=k, max_size=k),
        )
    ),
)
def test_filter_path_matches_scalar_chain(lam, steps):
    alphas, xis = steps
    k = len(xis)
    lam = np.array(lam)
    g = filter_path(lam, alphas, xis, k)
    q = inverse_filter_path(lam, alphas, xis, k)
    assert g.shape == q.shape == (k + 1, lam.size)
    for j, value in enumerate(lam):
        if value > 0:
            expected = scalar_chain(value, alphas, xis)
            assert_allclose(g[:, j], expected, rtol=1e-10, atol=1e-12)
            assert_allclose(q[:, j] * value, expected, rtol=1e-10, atol=1e-12)
        else:
            # No signal in a null direction: nothing is fitted there, while
            # q stays finite (1 / alpha for the teacher).
            assert_array_equal(g[:, j], 0.0)
            assert np.all(np.isfinite(q[:, j]))


def test_filter_path_constant_alpha_is_h_times_polynomial():
    lam = np.array([0.0, 0.3, 1.0, 7.0, 1e3])
    xi = [0.4, -1.2, 2.5]
    h = lam / (lam + 2.0)
    g = filter_path(lam, 2.0, xi, 3)
    for k in range(4):
        p = np.polynomial.polynomial.polyval(h, xi_to_xi_bar(xi[:k]))
        assert_allclose(g[k], h * p, rtol=1e-12, atol=1e-15)


def test_inverse_filter_path_alpha_zero_is_pseudo_inverse():
    """``alpha = 0``: q = 1 / lam on the range, 0 on the null space."""
    lam = np.array([0.0, 0.5, 4.0])
    q = inverse_filter_path(lam, 0.0, [0.3, 1.7], 2)
    assert_allclose(q, np.tile([0.0, 2.0, 0.25], (3, 1)), rtol=1e-14)


def test_known_values():
    assert_allclose(xi_to_xi_bar([]), [1.0])
    assert_allclose(xi_to_xi_bar([1.0, 1.0]), [0.0, 0.0, 1.0])
    # k = 2: xi_bar = (1 - xi_2, (1 - xi_1) xi_2, xi_1 xi_2)
    assert_allclose(xi_to_xi_bar([0.5, 2.0]), [-1.0, 1.0, 1.0])
    assert_allclose(xi_bar_to_xi([1.0]), np.empty(0))


@pytest.mark.parametrize(
    "xi_bar",
    [
        [1.0 - 1e-9, -0.5, 0.5 + 1e-9],
        [0.8, 0.2 - 1e-10, -0.3, 0.3 + 1e-10],
        [1.0 + 1e-7, 0.25, -0.5, 0.25 - 1e-7],
    ],
)
def test_near_ridge_xi_bar_round_trips_through_huge_xi(xi_bar):
    """Tame ``xi_bar`` whose tail sums nearly vanish need huge ``xi``.

    Computing the tails directly (not as ``1 - xi_bar[0]``) lets the forward
    map recover ``xi_bar`` to rounding error although ``xi`` is huge.
    """
    xi_bar = np.array(xi_bar)
    xi_bar[0] = 1.0 - xi_bar[1:].sum()  # sum exactly one in floating point
    xi = xi_bar_to_xi(xi_bar)
    assert np.abs(xi).max() > 1e6
    assert_allclose(xi_to_xi_bar(xi), xi_bar, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "xi_bar, match",
    [
        ([], "at least one entry"),
        ([0.5, np.nan], "must be finite"),
        ([0.5, 0.6], "must sum to 1"),
        ([1.0, 1.0, -1.0], "vanishing tail sum"),
    ],
)
def test_xi_bar_to_xi_errors(xi_bar, match):
    with pytest.raises(ValueError, match=match):
        xi_bar_to_xi(xi_bar)


@pytest.mark.parametrize("func", [filter_path, inverse_filter_path])
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha=-1.0), "alpha must be non-negative"),
        (dict(alpha=[1.0, -0.5]), "alpha must be non-negative"),
        (dict(alpha=np.nan), "alpha must be finite"),
        (dict(alpha=[1.0, 2.0, 3.0]), r"alpha must be a float or an array of shape"),
        (dict(alpha="a"), "alpha must be a float or an array of floats"),
        (dict(xi=np.inf), "xi must be finite"),
        (dict(xi=[0.5, 0.5]), r"xi must be a float or an array of shape \(1,\)"),
        (dict(lam=[1.0, -2.0]), "lam .* must be non-negative"),
        (dict(lam=[np.nan]), "lam must be finite"),
        (dict(n_steps=-1), "n_steps must be a non-negative integer"),
        (dict(n_steps=1.5), "n_steps must be a non-negative integer"),
    ],
)
def test_filter_helpers_reject_bad_arguments(func, kwargs, match):
    """``filter_path(alpha=-1)`` returned inf; now a ValueError names it."""
    args = dict(lam=[0.5, 2.0], alpha=1.0, xi=0.5, n_steps=1) | kwargs
    with pytest.raises(ValueError, match=match):
        func(**args)


@pytest.mark.parametrize("xi", [[np.nan], [0.5, np.inf], ["a"]])
def test_xi_to_xi_bar_rejects_non_finite_xi(xi):
    """``xi_to_xi_bar([nan])`` returned NaN; the theory helpers inherit it."""
    with pytest.raises(ValueError, match="xi must be"):
        xi_to_xi_bar(xi)
    X = np.eye(2)
    with pytest.raises(ValueError, match="xi must be"):
        excess_risk(X, [1.0, 0.0], noise=0.1, alpha=0.1, xi=xi)


@given(
    xi=st.lists(
        st.floats(-3, 3, allow_nan=False).filter(lambda v: abs(v) > 1e-3),
        min_size=1,
        max_size=4,
    )
)
def test_xi_bar_rows_to_xi_equals_the_scalar_inverse(xi):
    # Rows of representable filters, of one zero-padded lower degree, and of
    # filters with a vanishing tail followed by a non-zero coefficient.
    from skdistill._filter import _xi_bar_rows_to_xi

    xb = xi_to_xi_bar(xi)
    k = len(xi)
    padded = np.concatenate([xi_to_xi_bar(xi[:-1]) if k > 1 else [1.0], [0.0]])
    broken = np.zeros(k + 1)
    broken[0], broken[-1] = 1.0, 0.0
    if k >= 2:
        broken[[0, 1, -1]] = [1.0, 1.0, -1.0]  # tail T_2 .. vanishes early
    rows = np.vstack([xb, padded, broken])
    got, ok = _xi_bar_rows_to_xi(rows)
    for row, g, o in zip(rows, got, ok, strict=True):
        try:
            ref = xi_bar_to_xi(row)
        except ValueError:
            assert not o
            continue
        back = xi_to_xi_bar(ref)
        fine = np.all(np.isfinite(back)) and np.linalg.norm(back - row) <= 1e-8 * max(
            1.0, np.linalg.norm(row)
        )
        assert o == fine
        if o:
            np.testing.assert_array_equal(g, ref)
