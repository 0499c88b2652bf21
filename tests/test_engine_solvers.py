"""The engine's small batched solvers against independent computations.

The closed forms of :mod:`skdistill._cv_engine` (one or two free filter
coefficients, on every subset of folds from per-fold sums) and its
least-distance programmes (in the plane, and in any dimension by
:mod:`skdistill._least_distance`) are compared with NumPy's SVD least
squares, the stacked masked solve, SciPy's NNLS and a brute-force
enumeration of the feasible set's faces.
"""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdistill._constrained import (
    _FEAS_TOL,
    XI_RCOND,
    _basis,
    _ldp_nnls,
    _ldp_plane,
    _most_violated,
    _reduce,
    _rows_ge,
    _shrink,
    constrained_lstsq,
)
from skdistill._least_distance import ldp_dual


def _lstsq_oracle(M, v, rcond=XI_RCOND):
    """The truncated solution by NumPy's SVD least squares, one problem."""
    p = M.shape[1]
    if p == 1:
        return np.ones(1)
    N = _basis(p)
    B = M @ N
    col = np.linalg.norm(B, axis=0)
    col = np.where(col > 0, col, 1.0)
    y = np.linalg.lstsq(B / col, v - M[:, 0], rcond=rcond)[0] / col
    x = N @ y
    x[0] += 1.0
    return x


def _problems(rng, n_problems, n, p, kind):
    M = rng.normal(size=(n_problems, n, p))
    v = rng.normal(size=(n_problems, n))
    if kind == "collinear":  # the columns e_m - e_0 of M N nearly parallel
        eps = 10.0 ** rng.uniform(-14, -3, size=(n_problems, 1))
        M[:, :, 2] = (
            2 * M[:, :, 1] - M[:, :, 0] + eps * rng.normal(size=(n_problems, n))
        )
    elif kind == "zero":  # a column equal to the first
        M[: n_problems // 2, :, 1] = M[: n_problems // 2, :, 0]
        M[n_problems // 2 :, :, 2] = M[n_problems // 2 :, :, 0]
    return M, v


@pytest.mark.parametrize(
    "p, kind",
    [(p, "random") for p in range(1, 6)]
    + [(p, kind) for p in (3, 4) for kind in ("collinear", "zero")],
)
def test_constrained_lstsq_equals_numpy_truncated_lstsq(p, kind):
    rng = np.random.default_rng(p)
    M, v = _problems(rng, 200, 12, p, kind)
    x = constrained_lstsq(M, v)
    for b in range(len(M)):
        ref = _lstsq_oracle(M[b], v[b])
        # Both are backward stable for the column-normalised problem; the
        # solutions agree to eps times its retained condition number (at
        # most 1 / XI_RCOND), relative to the size of the solution.
        B = (M[b] @ _basis(p)) if p > 1 else np.ones((1, 1))
        s = np.linalg.svd(
            B / np.where(np.linalg.norm(B, axis=0) > 0, np.linalg.norm(B, axis=0), 1),
            compute_uv=False,
        )
        kept = s[s > XI_RCOND * s[0]]
        cond = kept[0] / kept[-1] if kept.size else 1.0
        tol = 1e3 * np.finfo(float).eps * cond * (1 + np.abs(ref).sum())
        # The residual is the well-posed quantity; compare it always, and
        # the solution where the truncation decision is clear-cut.
        r_got = np.linalg.norm(M[b] @ x[b] - v[b])
        r_ref = np.linalg.norm(M[b] @ ref - v[b])
        assert r_got <= r_ref * (1 + 1e-8) + tol
        if s.size and np.all(np.abs(s / s[0] - XI_RCOND) > 1e-3 * XI_RCOND):
            np.testing.assert_allclose(x[b], ref, atol=tol)
        assert x[b].sum() == pytest.approx(1.0, abs=tol)


def _ldp_brute_force(G, h, tol=1e-9):
    """Minimum-norm point of ``{z : G z >= h}`` in the plane, by enumeration.

    The projection of the origin onto a polygon is the origin, the
    projection onto one edge's line, or a vertex: the feasible candidate of
    least norm.
    """
    cands = [np.zeros(2)]
    for i in range(len(G)):
        n2 = G[i] @ G[i]
        if n2 > 0:
            cands.append(G[i] * h[i] / n2)
    for i, j in combinations(range(len(G)), 2):
        A = np.array([G[i], G[j]])
        if abs(np.linalg.det(A)) > 1e-12 * np.linalg.norm(A) ** 2:
            cands.append(np.linalg.solve(A, [h[i], h[j]]))
    feasible = [z for z in cands if np.all(G @ z >= h - tol * (1 + np.abs(h)))]
    return min(feasible, key=lambda z: z @ z)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 12))
def test_plane_least_distance_equals_enumeration(seed, m):
    rng = np.random.default_rng(seed)
    B = 5
    G = rng.normal(size=(B, m, 2)) * 10.0 ** rng.uniform(-2, 2, size=(B, m, 1))
    z0 = rng.normal(size=(B, 1, 2)) * 3  # feasible by construction
    h = np.einsum("bmk,bk->bm", G, z0[:, 0]) - rng.exponential(size=(B, m))
    z, ok = _ldp_plane(np.swapaxes(G, 1, 2), -h, upper=np.inf)
    for b in range(B):
        ref = _ldp_brute_force(G[b], h[b])
        if not ok[b]:  # the caller falls back to NNLS; it must be rare
            continue
        # The minimum-norm point is unique; both are exact up to round-off
        # of 2 x 2 solves whose condition is that of the constraint rows.
        scale = 1 + np.abs(ref).max()
        np.testing.assert_allclose(z[b], ref, atol=1e-7 * scale)
    assert ok.mean() >= 0.8


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), m=st.integers(1, 10))
def test_plane_box_least_distance_equals_enumeration(seed, m):
    # Two-sided rows 0 <= base + A z <= 1 (the shrinking programmes' form)
    # against the enumeration of the polygon of their 2 m half-planes.
    rng = np.random.default_rng(seed)
    B = 5
    A = rng.normal(size=(B, 2, m)) * 10.0 ** rng.uniform(-2, 2, size=(B, 1, m))
    z0 = rng.normal(size=(B, 2)) * 3  # feasible by construction
    base = rng.uniform(0, 1, size=(B, m)) - np.einsum("bkm,bk->bm", A, z0)
    z, ok = _ldp_plane(A, base)
    for b in range(B):
        G = np.concatenate([A[b].T, -A[b].T])
        h = np.concatenate([-base[b], base[b] - 1.0])
        ref = _ldp_brute_force(G, h)
        if not ok[b]:  # the caller falls back to NNLS; it must be rare
            continue
        scale = 1 + np.abs(ref).max()
        np.testing.assert_allclose(z[b], ref, atol=1e-7 * scale)
    assert ok.mean() >= 0.8


def _ldp_enumeration(G, h, tol=1e-9):
    """Minimum-norm point of ``{z : G z >= h}`` in any dimension, by
    enumeration: the optimum is the projection of the origin onto the
    affine span of some set of at most ``r`` independent constraints (the
    origin for the empty set); the feasible one of least norm."""
    r = G.shape[1]
    cands = [np.zeros(r)]
    for size in range(1, r + 1):
        for rows in combinations(range(len(G)), size):
            E = G[list(rows)]
            s = np.linalg.svd(E, compute_uv=False)
            if s[-1] > 1e-9 * s[0]:
                cands.append(E.T @ np.linalg.solve(E @ E.T, h[list(rows)]))
    feasible = [z for z in cands if np.all(G @ z >= h - tol * (1 + np.abs(h)))]
    return min(feasible, key=lambda z: z @ z)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    m=st.integers(1, 7),
    r=st.integers(2, 4),
    box=st.booleans(),
)
def test_dual_least_distance_equals_enumeration(seed, m, r, box):
    # The batched dual active set of three or more retained directions (r = 2
    # too, as a check of the general code) against the enumeration of every
    # face, for one-sided rows and for the shrinking programmes' two-sided
    # rows 0 <= base + A z <= 1.
    rng = np.random.default_rng(seed)
    B = 4
    A = rng.normal(size=(B, r, m)) * 10.0 ** rng.uniform(-2, 2, size=(B, 1, m))
    z0 = rng.normal(size=(B, r)) * 3  # feasible by construction
    lo = rng.uniform(0, 1, size=(B, m)) if box else rng.exponential(size=(B, m))
    base = lo - np.einsum("bkm,bk->bm", A, z0)
    G, h = _rows_ge(A, base, 1.0 if box else np.inf)
    z, ok = ldp_dual(G, h, _FEAS_TOL)
    for b in range(B):
        ref = _ldp_enumeration(G[b], h[b])
        if not ok[b]:  # the caller falls back to NNLS; it must be rare
            continue
        # The minimum-norm point is unique; both are exact up to round-off
        # of r x r solves whose condition is that of the constraint rows.
        np.testing.assert_allclose(z[b], ref, atol=1e-7 * (1 + np.abs(ref).max()))
    assert ok.mean() >= 0.75


def test_dual_least_distance_at_most_nnls_on_ill_conditioned_rows():
    # Filter powers h^(m+1) of four coefficients down to small h, in rotated
    # coordinates, with free solutions up to 1e3 away. The dual active set
    # must be as feasible (within the tolerance, in the filter's units) and
    # never farther from the free solution than NNLS's feasible point. (On
    # wide data the search meets rows whose norms span 13 decades, where
    # NNLS stops short by up to 2% in z; that is not reproduced here.)
    rng = np.random.default_rng(5)
    h = np.sort(rng.uniform(1e-3, 0.6, size=30))
    P = np.stack([h ** (k + 1) for k in range(4)], axis=1)  # (m, 4)
    B = 200
    Q = np.linalg.qr(rng.normal(size=(B, 4, 4)))[0]
    PT = np.swapaxes(P[None] @ Q, 1, 2)  # (B, 4, m): rotated coordinates
    z0 = rng.normal(size=(B, 4)) * 10.0 ** rng.uniform(-1, 3, size=(B, 1))
    base = rng.uniform(0, 1, size=(B, h.size)) - np.einsum("bkm,bk->bm", PT, z0)
    G, hb = _rows_ge(PT, base, 1.0)
    z, ok = ldp_dual(G, hb, _FEAS_TOL)
    assert ok.all()
    # Inactive rows are accepted within _FEAS_TOL; active ones hold to the
    # round-off of a backward-stable solve, a few ulps of the terms' size.
    Gz = (G @ z[:, :, None])[:, :, 0]
    size = np.abs(Gz).max(axis=1) + np.abs(hb).max(axis=1)
    viol = (hb - Gz).max(axis=1)
    assert np.all(viol <= _FEAS_TOL + 64 * np.finfo(float).eps * size)
    for b in range(B):
        ref = _ldp_nnls(PT[b].T, base[b])
        if ref is None:
            continue
        # NNLS's own solution is feasible: the optimum is at most its norm,
        # up to the round-off of a point feasible within _FEAS_TOL.
        assert z[b] @ z[b] <= (ref @ ref) * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("upper", [1.0, np.inf])
def test_most_violated_bound_equals_explicit_loop(upper):
    # The in-place search takes the bound farthest away and checks it is
    # violated beyond round-off; rows of tiny norm whose slack is round-off
    # (far in distance) must not be taken where another row is violated.
    rng = np.random.default_rng(1)
    n, m = 300, 6
    A = rng.normal(size=(n, 2, m))
    zw = rng.normal(size=(n, 2)) * 0.1
    f = rng.uniform(-0.3, 1.3, size=(n, m))
    tiny = rng.random(n) < 0.5  # row 0: slack 5e-12 (below _FEAS_TOL) at norm 1e-14
    A[tiny, :, 0] *= 1e-14 / np.linalg.norm(A[tiny, :, 0], axis=1, keepdims=True)
    f[tiny, 0] = -5e-12
    f[: n // 10] = rng.uniform(0.1, 0.9, size=(n // 10, m))  # nothing violated
    f[: n // 10, 0] = np.where(tiny[: n // 10], -5e-12, 0.5)
    base = f - np.einsum("bkm,bk->bm", A, zw)
    ax, ay = A[:, 0], A[:, 1]
    inv = 1.0 / np.sqrt(ax * ax + ay * ay)
    j, going = _most_violated(ax, ay, base, inv, zw, upper, np)
    assert np.any(tiny & going) and not np.all(going)
    for b in range(n):
        G = np.concatenate([A[b].T, -A[b].T])
        h = np.concatenate([-base[b], base[b] - upper])
        slack = h - G @ zw[b]
        viol = np.where(slack > _FEAS_TOL, slack / np.linalg.norm(G, axis=1), -np.inf)
        assert going[b] == np.isfinite(viol.max())
        if going[b]:
            assert j[b] == np.argmax(viol)


@pytest.mark.parametrize(
    "p, seed, n_problems, v_scale", [(3, 0, 2000, 5), (4, 6, 1000, 20)]
)
def test_shrinking_solutions_equal_nnls_least_distance(p, seed, n_problems, v_scale):
    # Realistic programmes: filter powers h^(m+1) on a spectrum, solutions of
    # two or three free coefficients whose filters leave [0, 1]. The batched
    # solvers (closed form, the plane active set, the dual active set in
    # three dimensions) against scipy's NNLS, per problem.
    rng = np.random.default_rng(seed)
    lam = np.sort(rng.exponential(size=40))
    alphas = np.array([0.05, 0.5, 5.0])
    h = lam[None, :] / (lam[None, :] + alphas[:, None])
    Phi = np.stack([h ** (k + 1) for k in range(p)], axis=-1)  # (A, m, p)
    M = rng.normal(size=(n_problems, 15, p)) * 3.0 ** np.arange(p)
    v = rng.normal(size=(n_problems, 15)) * v_scale
    a_idx = rng.integers(0, 3, size=n_problems)
    T, c, rank = _reduce(M, v)
    x = constrained_lstsq(M, v)
    phi = np.einsum("bp,bmp->bm", x, Phi[a_idx])
    infeasible = (phi.min(axis=1) < 0) | (phi.max(axis=1) > 1)
    P = Phi[a_idx[infeasible]]
    got = _shrink(x, infeasible, phi[infeasible], T, c, rank, P)
    assert infeasible.sum() > 80 and np.all(rank == p - 1)
    # The batched active set (not its NNLS fallback) solved every one of them.
    PT = np.swapaxes(Phi[a_idx[infeasible]] @ T[infeasible], 1, 2)
    if p == 3:
        assert _ldp_plane(PT, phi[infeasible])[1].all()
    else:
        assert ldp_dual(*_rows_ge(PT, phi[infeasible], 1.0), _FEAS_TOL)[1].all()
    for b in np.flatnonzero(infeasible):
        PT = Phi[a_idx[b]] @ T[b]
        z = _ldp_nnls(PT, phi[b])
        ref = T[b] @ (c[b] + z)
        ref[0] += 1.0
        f = Phi[a_idx[b]] @ got[b]
        slack = 1e-9 * (1 + np.abs(got[b]).sum())
        assert f.min() >= -slack and f.max() <= 1 + slack
        r_got = np.linalg.norm(M[b] @ got[b] - v[b])
        r_ref = np.linalg.norm(M[b] @ ref - v[b])
        assert r_got == pytest.approx(r_ref, rel=1e-7)


def test_shrink_to_unit_in_blocks_equals_one_batch(monkeypatch):
    # NumPy batches are solved in blocks of independent problems: the same
    # solutions as one batch, bit for bit, including blocks of one problem.
    from skdistill import _constrained

    rng = np.random.default_rng(3)
    lam = np.sort(rng.exponential(size=30))
    alphas = np.array([0.05, 0.5, 5.0])
    h = lam[None, ::3] / (lam[None, ::3] + alphas[:, None])
    Phi = np.stack([h, h**2, h**3], axis=-1)  # sampled points, per alpha
    nb = 400
    M = rng.normal(size=(nb, 15, 3)) * [1.0, 3.0, 9.0]
    v = rng.normal(size=(nb, 15)) * 5
    a_idx = rng.integers(0, 3, size=nb)
    T, c, rank = _reduce(M, v)
    x = constrained_lstsq(M, v)
    args = (x, T, c, rank, Phi, a_idx, lam, alphas)
    whole = _constrained.shrink_to_unit(*args)
    assert not np.array_equal(whole, x)  # some programmes were solved
    for block in (1, 7, 128):
        monkeypatch.setattr(_constrained, "_BLOCK", block)
        np.testing.assert_array_equal(_constrained.shrink_to_unit(*args), whole)


@pytest.mark.parametrize("shape", [(20, 30, 4), (7, 3, 4), (5, 101, 3)])
def test_householder_r_equals_lapack_qr(shape):
    from sklearn.externals.array_api_compat import numpy as xnp

    from skdistill._cv_closed_form import householder_r

    rng = np.random.default_rng(0)
    M = rng.normal(size=shape) * np.logspace(0, -6, shape[-1])
    R = householder_r(M, xnp)
    ref = np.linalg.qr(M, mode="r")
    # R is unique up to the signs of its rows for full column rank; both
    # are backward stable: errors of eps times |M| times a small factor.
    tol = 1e3 * np.finfo(float).eps * np.linalg.norm(M, axis=(-2, -1))
    np.testing.assert_allclose(np.abs(R), np.abs(ref), atol=float(tol.max()), rtol=0)
    assert np.all(np.tril(R[..., : min(shape[1:]), :], -1) == 0)


@pytest.mark.parametrize("shrink, upper", [(False, 1.0), (True, 1.0), (True, np.inf)])
def test_degree_one_on_every_subset_equals_the_masked_solve(shrink, upper):
    # Degree 1 from per-fold sums (and, shrinking, the clip to the interval
    # of the spectrum's ends) against the stacked, masked solve of
    # _reduce and the exchange of shrink_to_unit, on every fold subset.
    from skdistill._constrained import _from_z, shrink_to_unit
    from skdistill._cv_engine import _fold_subsets, filter_powers
    from skdistill._cv_subsets import _degree_one

    rng = np.random.default_rng(4)
    G, K, A, p = 3, 5, 4, 3
    F = rng.normal(size=(G, K, A, p, p)) * [1.0, 2.0, 0.5]
    F[..., 1] += 3.0 * F[..., 0]  # columns far from orthogonal
    F[..., -1] *= 10.0  # free filters far outside [0, 1]
    F[0, :, 0, :, 1] = F[0, :, 0, :, 0]  # b = M_1 - M_0 = 0: rank zero
    lam = np.sort(rng.exponential(size=25))
    alphas = np.array([0.01, 0.3, 3.0, 30.0])
    Phi = filter_powers([lam], alphas, 1)
    masks = _fold_subsets(K, True)[0]
    S = len(masks)
    Fa = np.transpose(F, (0, 2, 1, 3, 4)).reshape(G, A, K * p, p)
    got = _degree_one(Fa, masks, Phi if shrink else None, upper)
    rows = np.repeat(masks.astype(float), p, axis=1)
    Fs = Fa[:, :, None] * rows[None, None, :, :, None]
    T, c, rank = _reduce(Fs[..., :2], Fs[..., -1])
    ref = _from_z(T, c)
    if shrink:
        a_idx = np.broadcast_to(np.arange(A)[None, :, None], (G, A, S)).ravel()
        ref = shrink_to_unit(
            ref.reshape(-1, 2), T.reshape(-1, 2, 1), c.reshape(-1, 1),
            rank.reshape(-1), Phi.Phi[..., :2], a_idx, Phi.lam, alphas,
            upper=upper,
        ).reshape(G, A, S, 2)  # fmt: skip
        assert not np.allclose(ref, _from_z(T, c))  # some filters were shrunk
        h = lam[None, :] / (lam[None, :] + alphas[:, None])  # (A, m)
        f = got[..., :1] * h[None, :, None] + got[..., 1:] * h[None, :, None] ** 2
        assert f.min() >= -1e-12 and f.max() <= upper + 1e-12
    # x_1 = b.r / b.b: summed in another order, a relative error of a few
    # ulps of sum |b_i r_i| / b.b (the dot product's conditioning).
    b, r = Fs[..., 1] - Fs[..., 0], Fs[..., -1] - Fs[..., 0]
    bb = np.sum(b * b, axis=-1)
    cond = np.sum(np.abs(b * r), axis=-1) / np.where(bb > 0, bb, 1.0)
    tol = 64 * K * p * np.finfo(float).eps * (cond + np.abs(ref[..., 1]))
    assert np.all(np.abs(got[..., 1] - ref[..., 1]) <= tol)
    # 1 - x_1 rounded, then added back: within an ulp of 1 + |x_1|.
    eps = np.finfo(float).eps
    assert np.all(np.abs(got.sum(axis=-1) - 1.0) <= eps * (1 + np.abs(got[..., 1])))
    np.testing.assert_array_equal(got[0, 0, :, 1], 0.0)  # rank zero: ridge


@pytest.mark.parametrize("collinear", [False, True])
def test_degree_two_from_fold_sums_equals_the_masked_solve(collinear):
    # Degree 2 on every fold subset from per-fold sums (and, for nearly
    # collinear columns, from the subset's rows) against _reduce on the
    # stacked, masked rows. The sums are a normal-equations form: their
    # error grows as the square of the columns' condition, where the rows'
    # Gram-Schmidt step grows as its first power.
    from skdistill._constrained import _from_z
    from skdistill._cv_engine import _fold_subsets
    from skdistill._cv_subsets import _SUMS_R22, _degree_two_factors

    rng = np.random.default_rng(7)
    G, K, A, p = 4, 5, 6, 4
    F = rng.normal(size=(G, K, A, p, p)) * [1.0, 2.0, 0.5, 3.0]
    if collinear:  # b2 = 2 b1 + a little: r22 from 1e-9 to 1e-2
        eps = 10.0 ** rng.uniform(-9, -2, size=(G, 1, A, 1))
        b1 = F[..., 1] - F[..., 0]
        F[..., 2] = F[..., 0] + 2 * b1 + eps * rng.normal(size=b1.shape)
    F[0, :, 0, :, 1] = F[0, :, 0, :, 0]  # b1 = 0: rank one at most
    masks = _fold_subsets(K, True)[0]
    Fa = np.transpose(F, (0, 2, 1, 3, 4)).reshape(G, A, K * p, p)
    rows = np.repeat(masks.astype(float), p, axis=1)
    T, c, rank = _degree_two_factors(Fa, masks, rows)
    Fs = Fa[:, :, None] * rows[None, None, :, :, None]
    T0, c0, rank0 = _reduce(Fs[..., :3], Fs[..., -1])
    np.testing.assert_array_equal(rank, rank0)
    x, x0 = _from_z(T, c), _from_z(T0, c0)
    # The condition of the normalised columns [b1, b2]: s1 / s2 = s1^2 / r22.
    B = Fs[..., 1:3] - Fs[..., :1]
    col = np.linalg.norm(B, axis=-2)
    s = np.linalg.svd(B / np.where(col > 0, col, 1.0)[..., None, :], compute_uv=False)
    kappa = s[..., 0] / np.where(s[..., 1] > 0, s[..., 1], s[..., 0])
    square = kappa <= 2.0 / _SUMS_R22  # solved from sums
    cond = np.where(square, kappa**2, kappa)
    cond = np.where(rank0 == 2, cond, 1.0)  # rank one: a unit direction
    tol = 256 * np.finfo(float).eps * cond * (1 + np.abs(x0).sum(axis=-1))
    assert np.all(np.abs(x - x0).max(axis=-1) <= tol)
    if collinear:
        assert np.any(~square & (rank0 == 2))  # the rows' path was taken
