"""Small constrained least-squares problems, batched.

The closed-form search fits a filter's effective coefficients ``xi_bar`` by
minimising ``|M x - v|`` under ``sum(x) = 1`` for many small problems at once
(every target, alpha, subset of folds and degree), optionally with the filter
kept in [0, 1] on the training spectra. :mod:`skdistill.theory` solves the
same problem for the optimal filters of a known model.

One or two free coefficients (``n_steps <= 2``) are solved in closed form,
elementwise over the batch; the shrinking constraint then reduces to an
interval or to a least-distance programme in the plane, solved by a batched
dual active-set method. More coefficients use a batched SVD and NNLS.
"""

import numpy as np

__all__ = ["XI_RCOND", "constrained_lstsq"]

# Relative singular-value cutoff of the xi_bar solve, on column-normalised
# factors. At small alpha every h is close to 1, the columns h^m are nearly
# collinear and the exact optimum can have |xi_bar| of 1e14: a polynomial that
# fits validation noise and that the refit (whose h differ slightly) cannot
# reproduce. Truncating directions below 1e-8 keeps |xi_bar| moderate (1e4 on
# the Airfoil data) at a negligible cost in CV error; every reported error is
# still evaluated exactly at the returned xi_bar.
XI_RCOND = 1e-8


def constrained_lstsq(M, v, rcond=XI_RCOND):
    """Minimise ``|M x - v|`` subject to ``sum(x) = 1``, batched.

    Parameters
    ----------
    M : ndarray of shape (..., n, p)
    v : ndarray of shape (..., n)
    rcond : float
        Singular values of the column-normalised reduced problem below
        ``rcond`` times the largest are treated as zero (minimum-norm
        solution in the normalised coordinates).

    Returns
    -------
    x : ndarray of shape (..., p)
    """
    T, c, _ = _reduce(np.asarray(M, dtype=float), np.asarray(v, dtype=float), rcond)
    return _from_z(T, c)


def _basis(p):
    """``N``: columns ``e_m - e_0`` spanning ``{sum(x) = 0}``, shape (p, p - 1)."""
    return np.vstack([-np.ones(p - 1), np.eye(p - 1)])


def _reduce(M, v, rcond=XI_RCOND):
    """``min |M x - v|`` under ``sum(x) = 1`` in reduced coordinates, batched.

    With ``x = e_0 + N y`` (:func:`_basis`) and the columns of ``B = M N``
    normalised, the truncated least-squares solution is written through an
    orthonormal basis ``U`` of the retained column space of ``B``::

        x = e_0 + T @ (c + z),    |M x - v|^2 = |z|^2 + |M x0 - v|^2,

    for every ``z`` supported on the first ``rank`` coordinates, where
    ``x0 = e_0 + T @ c`` is the (truncated, minimum-norm) solution and
    ``c = U^T (v - M e_0)``. Directions whose singular value is below
    ``rcond`` times the largest (of the column-normalised ``B``) are dropped.

    One or two free coefficients (``n_steps <= 2``, the common case) are
    solved in closed form, elementwise over the batch: a unit column, or a
    Gram-Schmidt step with one reorthogonalisation (whose ``r22`` is accurate
    even for nearly collinear columns, so the truncation is decided as
    LAPACK's SVD decides it). More coefficients use a batched SVD.

    Returns
    -------
    T : ndarray of shape (..., p, p - 1)
        Zero beyond column ``rank``.
    c : ndarray of shape (..., p - 1)
        Zero beyond ``rank``.
    rank : ndarray of int, shape (...)
    """
    p = M.shape[-1]
    batch = M.shape[:-2]
    q = p - 1
    if q == 0:
        return np.zeros(batch + (1, 0)), np.zeros(batch + (0,)), np.zeros(batch, int)
    N = _basis(p)
    B = M[..., 1:] - M[..., :1]  # M @ N
    col = np.sqrt(np.einsum("...nk,...nk->...k", B, B))
    nonzero = col > 0
    col = np.where(nonzero, col, 1.0)
    B = B / col[..., None, :]
    rhs = v - M[..., 0]
    if q == 1:
        rank = nonzero[..., 0].astype(int)
        c = np.einsum("...n,...n->...", B[..., 0], rhs)[..., None]
        T = N[None, :, :] / col.reshape(-1, 1, 1)
        return T.reshape(batch + (p, 1)), c, rank
    if q == 2:
        return _reduce_two(B, rhs, col, nonzero, N, rcond)
    U, s, Vt = np.linalg.svd(B, full_matrices=False)
    keep = s > rcond * s[..., :1]
    sinv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    c = np.where(keep, np.einsum("...nk,...n->...k", U, rhs), 0.0)
    # x = e_0 + N diag(1/col) V diag(1/s) (c + z)
    W = np.swapaxes(Vt, -1, -2) * sinv[..., None, :] / col[..., :, None]
    return N @ W, c, keep.sum(axis=-1)


def _reduce_two(B, rhs, col, nonzero, N, rcond):
    """:func:`_reduce` for two unit (or zero) columns, elementwise."""
    b1, b2 = B[..., 0], B[..., 1]
    g = np.einsum("...n,...n->...", b1, b2)
    w = b2 - g[..., None] * b1
    d = np.einsum("...n,...n->...", b1, w)  # reorthogonalise once
    w -= d[..., None] * b1
    g = g + d
    r22 = np.sqrt(np.einsum("...n,...n->...", w, w))
    # Singular values of [b1, b2]: s1^2 + s2^2 = 2 and s1 s2 = r22, so
    # s1^2 = 1 + |g| and s2 / s1 = r22 / s1^2 (accurate through r22).
    s1sq = 1.0 + np.abs(g)
    both = nonzero[..., 0] & nonzero[..., 1]
    full = both & (r22 > rcond * s1sq)
    safe = np.where(full, r22, 1.0)
    t1 = np.einsum("...n,...n->...", b1, rhs)
    t2 = np.einsum("...n,...n->...", b2, rhs)
    shape = B.shape[:-2]
    # Full rank: [b1, b2] = [b1, w / r22] @ [[1, g], [0, r22]].
    Rinv = np.zeros(shape + (2, 2))
    Rinv[..., 0, 0] = 1.0
    Rinv[..., 0, 1] = -g / safe
    Rinv[..., 1, 1] = 1.0 / safe
    c = np.stack([t1, np.einsum("...n,...n->...", w, rhs) / safe], axis=-1)
    # Rank one: the top singular pair, v1 = (1, sign g) / sqrt(2) (the Gram
    # matrix of unit columns has equal diagonals), or the one non-zero column.
    sg = np.where(g < 0, -1.0, 1.0)
    s1 = np.sqrt(s1sq)
    one_both = both & ~full
    v1 = np.stack([np.ones(shape), sg], axis=-1) / np.sqrt(2.0)
    c1 = (t1 + sg * t2) / (np.sqrt(2.0) * s1)
    only2 = ~nonzero[..., 0] & nonzero[..., 1]
    v1 = np.where(only2[..., None], np.array([0.0, 1.0]), v1)
    c1 = np.where(only2, t2, c1)
    s1 = np.where(one_both, s1, 1.0)
    only1 = nonzero[..., 0] & ~nonzero[..., 1]
    v1 = np.where(only1[..., None], np.array([1.0, 0.0]), v1)
    c1 = np.where(only1, t1, c1)
    one = one_both | only1 | only2
    Rinv[..., :, 0] = np.where(one[..., None], v1 / s1[..., None], Rinv[..., :, 0])
    Rinv[..., :, 1] = np.where(one[..., None], 0.0, Rinv[..., :, 1])
    c = np.where(one[..., None], np.stack([c1, np.zeros(shape)], axis=-1), c)
    none = ~(full | one)
    Rinv[none] = 0.0
    c[none] = 0.0
    T = N @ (Rinv / col[..., :, None])
    rank = np.where(full, 2, np.where(one, 1, 0))
    return T, c, rank


def _shrink(x, bad, phi, T, c, rank, Phi, a_idx):
    """Keep every filter in [0, 1] on the training spectra, batched.

    Minimises ``|M x - v|`` under ``sum(x) = 1`` and ``0 <= Phi @ x <= 1``
    (``Phi[i, m] = h_i ** (m + 1)``: the filter ``phi(h) = h * sum_m x_m
    h^m``), in the truncated coordinates of :func:`_reduce`: with ``x = e_0 +
    T (c + z)`` that is the least-distance programme ``min |z|^2`` under
    linear constraints on ``z``. Ridge (``z = -c``) is feasible, so a
    solution exists. Only problems whose free solution ``x`` is infeasible
    are solved: with one retained direction in closed form (an interval),
    with two by a dual active-set method in the plane (:func:`_ldp_plane`),
    both vectorised over the batch; with more by non-negative least squares
    (Lawson and Hanson, 1974, chapter 23), one problem at a time.

    Parameters
    ----------
    x : ndarray of shape (B, p)
        The free solutions.
    bad : ndarray of int
        The problems whose free filter leaves [0, 1].
    phi : ndarray of shape (len(bad), m)
        Their filters on the training spectra, ``Phi[a_idx[bad]] @ x[bad]``.
    T, c, rank : from :func:`_reduce`, flattened to the batch ``B``.
    Phi : ndarray of shape (A, m, p)
        Filter powers per alpha (:func:`filter_powers`).
    a_idx : ndarray of int, shape (B,)
        Each problem's alpha.

    Returns
    -------
    x : ndarray of shape (B, p)
    """
    x = x.copy()
    if bad.size == 0:
        return x
    T, c, rank, P = T[bad], c[bad], rank[bad], Phi[a_idx[bad]]
    PT = P @ T  # (nb, m, q): the constraints' sensitivity to z
    base = phi  # the filter at z = 0
    out = np.zeros((bad.size, x.shape[1]))
    out[:, 0] = 1.0  # ridge, where nothing better is feasible
    r1 = rank == 1
    if r1.any():
        out[r1] = _shrink_interval(T[r1, :, 0], c[r1, 0], base[r1], PT[r1, :, 0])
    r2 = np.flatnonzero(rank == 2)
    if r2.size:
        G = np.concatenate([PT[r2, :, :2], -PT[r2, :, :2]], axis=1)
        h = np.concatenate([-base[r2], base[r2] - 1.0], axis=1)
        z, ok = _ldp_plane(G, h)
        out[r2[ok]] = _from_z(T[r2[ok], :, :2], c[r2[ok], :2] + z[ok])
        rest = r2[~ok]
    else:
        rest = np.zeros(0, int)
    for i in np.concatenate([np.flatnonzero(rank > 2), rest]):
        r = int(rank[i])
        z = _ldp_nnls(PT[i, :, :r], base[i])
        if z is not None:
            out[i] = _from_z(T[i, :, :r], c[i, :r] + z)
    x[bad] = out
    return x


def _from_z(T, y):
    """``x = e_0 + T @ y``, batched."""
    x = np.einsum("...pq,...q->...p", T, y)
    x[..., 0] += 1.0
    return x


def _shrink_interval(T, c, base, g):
    """One retained direction: ``0 <= base + g z <= 1`` bounds ``z``.

    The solution is 0 clipped to that interval, which contains ``-c``
    (ridge) in exact arithmetic; ridge where round-off empties it.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = -base / g, (1.0 - base) / g  # the bounds where g != 0
    pos, neg = g > 0, g < 0
    lo = np.max(np.where(pos, a, np.where(neg, b, -np.inf)), axis=1)
    hi = np.min(np.where(pos, b, np.where(neg, a, np.inf)), axis=1)
    flat_ok = np.all(pos | neg | ((base >= 0) & (base <= 1)), axis=1)
    feasible = flat_ok & (lo <= hi + 1e-12 * (1 + np.abs(lo)))
    z = np.clip(0.0, lo, np.maximum(lo, hi))
    x = T * (c + z)[:, None]
    x[:, 0] += 1.0
    x[~feasible] = 0.0
    x[~feasible, 0] = 1.0
    return x


# Constraint violations below this (the filter's own scale is 1) are round-off.
_FEAS_TOL = 1e-11


def _ldp_plane(G, h, max_iter=None):
    """``min |z|^2`` subject to ``G z >= h`` with ``z`` in the plane, batched.

    A dual active-set method (Goldfarb and Idnani, 1983) in two dimensions:
    from ``z = 0``, the most violated constraint (in distance) joins the
    active set, and the projection of the origin onto the active constraints
    (at most two in the plane, the new one always among them) is recomputed
    exactly by trying the new line alone and its vertices with each active
    line. ``|z|`` grows strictly, so no active set repeats and the loop ends;
    all problems advance in lockstep, those finished dropping out.

    Returns
    -------
    z : ndarray of shape (B, 2)
    ok : ndarray of bool, shape (B,)
        False where the iteration failed (round-off; the caller then solves
        that problem another way).
    """
    nb, m, _ = G.shape
    max_iter = 4 * m if max_iter is None else max_iter
    z = np.zeros((nb, 2))
    ok = np.ones(nb, dtype=bool)
    # Working copies of the unfinished problems, compacted as they finish.
    idx = np.arange(nb)
    gx, gy, hw = G[..., 0].copy(), G[..., 1].copy(), h.copy()
    inv = 1.0 / np.maximum(np.sqrt(gx**2 + gy**2), np.finfo(float).tiny)
    zw = np.zeros((nb, 2))
    act = np.full((nb, 2), -1)  # active constraints (-1: none)
    for _ in range(max_iter):
        slack = hw - gx * zw[:, :1] - gy * zw[:, 1:]
        viol = np.where(slack > _FEAS_TOL, slack * inv, -np.inf)
        worst = np.argmax(viol, axis=1)
        rows = np.arange(idx.size)
        going = np.isfinite(viol[rows, worst])
        if not going.all():  # finished: store and compact
            z[idx[~going]] = zw[~going]
            idx, gx, gy, hw, inv = (a[going] for a in (idx, gx, gy, hw, inv))
            zw, act, worst = zw[going], act[going], worst[going]
            rows = np.arange(idx.size)
        if idx.size == 0:
            break
        px, py, hp = gx[rows, worst], gy[rows, worst], hw[rows, worst]
        n2 = px**2 + py**2
        scale = hp / np.where(n2 > 0, n2, 1.0)
        cands = [(np.stack([px * scale, py * scale], axis=1), np.full(idx.size, -1))]
        for slot in range(2):  # the vertex of the new line with an active one
            q = act[:, slot]
            qq = np.maximum(q, 0)
            qx, qy, hq = gx[rows, qq], gy[rows, qq], hw[rows, qq]
            det = px * qy - py * qx
            dsafe = np.where(det != 0, det, 1.0)
            u = (
                np.stack([hp * qy - hq * py, px * hq - qx * hp], axis=1)
                / dsafe[:, None]
            )
            # Multipliers of u = lp (px, py) + lq (qx, qy).
            lp = (u[:, 0] * qy - u[:, 1] * qx) / dsafe
            lq = (px * u[:, 1] - py * u[:, 0]) / dsafe
            valid = (q >= 0) & (det != 0) & (lp >= 0) & (lq >= 0)
            cands.append((np.where(valid[:, None], u, np.nan), np.where(valid, q, -1)))
        # Each candidate must satisfy the constraints active before.
        best = np.full(idx.size, np.inf)
        new_z, new_other = zw.copy(), np.full(idx.size, -1)
        for u, other in cands:
            fine = np.isfinite(u[:, 0])
            u0 = np.where(fine[:, None], u, 0.0)
            for slot in range(2):
                q = act[:, slot]
                qq = np.maximum(q, 0)
                s = hw[rows, qq] - gx[rows, qq] * u0[:, 0] - gy[rows, qq] * u0[:, 1]
                fine &= (q < 0) | (s <= _FEAS_TOL * (1 + np.abs(hw[rows, qq])))
            size = np.where(fine, u0[:, 0] ** 2 + u0[:, 1] ** 2, np.inf)
            take = size < best
            best = np.where(take, size, best)
            new_z[take], new_other[take] = u0[take], other[take]
        stuck = ~np.isfinite(best)
        ok[idx[stuck]] = False
        zw = new_z
        act = np.stack([worst, new_other], axis=1)
        if stuck.any():
            keep = ~stuck
            idx, gx, gy, hw, inv = (a[keep] for a in (idx, gx, gy, hw, inv))
            zw, act = zw[keep], act[keep]
    else:
        ok[idx] = False
    return z, ok


def _ldp_nnls(PT, base):
    """``min |z|^2`` under ``0 <= base + PT z <= 1`` by NNLS (one problem).

    Lawson and Hanson (1974, chapter 23): with ``G z >= h``, the
    least-distance solution is ``z = -rho[:r] / rho[r]`` where ``rho`` is the
    residual of ``min |[G^T; h^T] u - e_{r+1}|`` over ``u >= 0``. ``None``
    where the programme is numerically infeasible.
    """
    from scipy.optimize import nnls

    r, m = PT.shape[1], PT.shape[0]
    E = np.empty((r + 1, 2 * m))
    E[:r, :m] = PT.T
    E[:r, m:] = -PT.T
    E[r, :m] = -base
    E[r, m:] = base - 1.0
    target = np.zeros(r + 1)
    target[-1] = 1.0
    u, _ = nnls(E, target, maxiter=50 * E.shape[1])
    rho = E @ u - target
    if abs(rho[-1]) < 1e-12:
        return None
    return -rho[:r] / rho[-1]


def _may_leave_unit(x, h):
    """Whether ``phi(h) = sum_m x_m h^(m+1)`` may leave [0, 1], batched.

    ``x``: (G, A, S, j + 1); ``h``: (A, m) the points where the filter must
    stay in [0, 1]. For ``j <= 2`` the extremes of the polynomial over the
    interval ``[min h, max h]`` (its ends and the roots of ``phi'`` inside)
    bound its values at the points, so a filter inside [0, 1] there (with a
    round-off margin) needs no point-by-point check. Returns (G, A, S) bool.
    """
    j = x.shape[-1] - 1
    if j > 2:
        return np.ones(x.shape[:-1], dtype=bool)
    lo = h.min(axis=1)[:, None]  # (A, 1), broadcast over (G, A, S)
    hi = h.max(axis=1)[:, None]
    x0, x1 = x[..., 0], x[..., 1]
    x2 = x[..., 2] if j == 2 else np.zeros_like(x0)
    # Roots of phi' = x0 + 2 x1 h + 3 x2 h^2, stably; NaN where none.
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = x1 * x1 - 3.0 * x2 * x0
        q = -(x1 + np.copysign(np.sqrt(disc), x1))
        r1 = np.where(x2 != 0, q / (3.0 * x2), -x0 / (2.0 * x1))
        r2 = x0 / q
    pts = [lo, hi, r1, r2]
    vals = []
    for t in pts:
        t = np.clip(np.where(np.isfinite(t), t, lo), lo, hi)
        vals.append(t * (x0 + t * (x1 + t * x2)))
    vals = np.stack(vals)
    margin = 1e-12 * (1.0 + np.abs(x).sum(axis=-1))
    return (vals.min(axis=0) < margin) | (vals.max(axis=0) > 1.0 - margin)
