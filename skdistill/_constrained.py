"""Small constrained least-squares problems, batched.

The closed-form search fits a filter's effective coefficients ``xi_bar`` by
minimising ``|M x - v|`` under ``sum(x) = 1`` for many small problems at once
(every target, alpha, subset of folds and degree), optionally with the filter
kept in [0, 1] on the training spectra. :mod:`skdistill.theory` solves the
same problem for the optimal filters of a known model.

One or two free coefficients (``n_steps <= 2``) are solved in closed form,
elementwise over the batch; the shrinking constraint then reduces to an
interval or to a least-distance programme in the plane, solved by a batched
dual active-set method. More coefficients use a batched SVD, and their
programmes the same dual method in their dimension
(:mod:`skdistill._least_distance`).

Every function works in the namespace of its input arrays (NumPy, or any
array API library: PyTorch, CuPy, ``array_api_strict``) and on their device.
The exceptions run on the host: the programmes of three or more free
coefficients (batched, NumPy), and NNLS (no such solve in the standard), one
problem at a time, where an active set fails to round-off.
"""

import numpy as np
from sklearn.externals.array_api_compat import array_namespace
from sklearn.externals.array_api_compat import device as _device

from ._array_api import to_numpy
from ._least_distance import ldp_dual

__all__ = ["XI_RCOND", "constrained_lstsq", "shrink_to_unit"]

# Relative singular-value cutoff of the xi_bar solve, on column-normalised
# factors. At small alpha every h is close to 1, the columns h^m are nearly
# collinear and the exact optimum can have |xi_bar| of 1e14: a polynomial that
# fits validation noise and that the refit (whose h differ slightly) cannot
# reproduce. Truncating directions below 1e-8 removes the worst of it, but
# candidates at the default grid's smallest alphas still reach |xi_bar| of
# 1e9 to 1e10 (standardised Airfoil data, 5-fold); the search does not offer
# those (skdistill._cv_engine.MAX_CANCELLATION). Every reported error is
# evaluated exactly at the returned xi_bar.
XI_RCOND = 1e-8


def constrained_lstsq(M, v, rcond=XI_RCOND):
    """Minimise ``|M x - v|`` subject to ``sum(x) = 1``, batched.

    Parameters
    ----------
    M : array of shape (..., n, p)
    v : array of shape (..., n)
    rcond : float
        Singular values of the column-normalised reduced problem below
        ``rcond`` times the largest are treated as zero (minimum-norm
        solution in the normalised coordinates).

    Returns
    -------
    x : array of shape (..., p), in the namespace of ``M``
    """
    if isinstance(M, (list, tuple)) or isinstance(M, np.ndarray):
        M, v = np.asarray(M, dtype=float), np.asarray(v, dtype=float)
    T, c, _ = _reduce(M, v, rcond)
    return _from_z(T, c)


def _like(xp, ref, values):
    """``values`` as an array of ``ref``'s dtype on ``ref``'s device."""
    return xp.asarray(values, dtype=ref.dtype, device=_device(ref))


def _basis(p, xp=np, ref=None):
    """``N``: columns ``e_m - e_0`` spanning ``{sum(x) = 0}``, shape (p, p - 1)."""
    N = np.vstack([-np.ones(p - 1), np.eye(p - 1)])
    return N if ref is None else _like(xp, ref, N)


def _dot(a, b, xp):
    """Sums over the last axis of ``a * b`` (no temporary with NumPy)."""
    if isinstance(a, np.ndarray):
        return np.einsum("...n,...n->...", a, b)
    return xp.sum(a * b, axis=-1)


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
    T : array of shape (..., p, p - 1)
        Zero beyond column ``rank``.
    c : array of shape (..., p - 1)
        Zero beyond ``rank``.
    rank : array of int, shape (...)
    """
    xp = array_namespace(M, v)
    p = M.shape[-1]
    batch = tuple(M.shape[:-2])
    q = p - 1
    dev = _device(M)
    if q == 0:
        return (
            xp.zeros(batch + (1, 0), dtype=M.dtype, device=dev),
            xp.zeros(batch + (0,), dtype=M.dtype, device=dev),
            xp.zeros(batch, dtype=xp.int64, device=dev),
        )
    N = _basis(p, xp, M)
    B = M[..., 1:] - M[..., :1]  # M @ N
    col = xp.sqrt(_dot(xp.matrix_transpose(B), xp.matrix_transpose(B), xp))
    nonzero = col > 0
    col = xp.where(nonzero, col, 1.0)
    B = B / col[..., None, :]
    rhs = v - M[..., 0]
    if q == 1:
        rank = xp.astype(nonzero[..., 0], xp.int64)
        c = _dot(B[..., 0], rhs, xp)[..., None]
        return N / col[..., None, :], c, rank
    if q == 2:
        return _reduce_two(B, rhs, col, nonzero, N, rcond, xp)
    U, s, Vt = xp.linalg.svd(B, full_matrices=False)
    keep = s > rcond * s[..., :1]
    sinv = xp.where(keep, 1.0 / xp.where(keep, s, 1.0), 0.0)
    c = xp.where(keep, xp.sum(U * rhs[..., :, None], axis=-2), 0.0)
    # x = e_0 + N diag(1/col) V diag(1/s) (c + z)
    W = xp.matrix_transpose(Vt) * sinv[..., None, :] / col[..., :, None]
    return N @ W, c, xp.sum(xp.astype(keep, xp.int64), axis=-1)


def _reduce_two(B, rhs, col, nonzero, N, rcond, xp):
    """:func:`_reduce` for two unit (or zero) columns, elementwise."""
    return _two_factors(*_two_products(B, rhs, xp), col, nonzero, N, rcond, xp)


def _two_products(B, rhs, xp):
    """The products of two unit (or zero) columns ``B`` and ``rhs`` that
    :func:`_two_factors` needs: ``g = b1.b2``, ``r22 = |b2 - g b1|``,
    ``t1 = b1.rhs``, ``t2 = b2.rhs`` and ``wr = (b2 - g b1).rhs``, by a
    Gram-Schmidt step with one reorthogonalisation (whose ``r22`` is
    accurate even for nearly collinear columns, so the truncation is decided
    as LAPACK's SVD decides it)."""
    b1, b2 = B[..., 0], B[..., 1]
    g = _dot(b1, b2, xp)
    w = b2 - g[..., None] * b1
    d = _dot(b1, w, xp)  # reorthogonalise once
    w = w - d[..., None] * b1
    g = g + d
    r22 = xp.sqrt(_dot(w, w, xp))
    return g, r22, _dot(b1, rhs, xp), _dot(b2, rhs, xp), _dot(w, rhs, xp)


def _two_factors(g, r22, t1, t2, wr, col, nonzero, N, rcond, xp):
    """``T, c, rank`` of :func:`_reduce` from the products of
    :func:`_two_products` (of the columns normalised by ``col``)."""
    # Singular values of [b1, b2]: s1^2 + s2^2 = 2 and s1 s2 = r22, so
    # s1^2 = 1 + |g| and s2 / s1 = r22 / s1^2 (accurate through r22).
    s1sq = 1.0 + xp.abs(g)
    has1, has2 = nonzero[..., 0], nonzero[..., 1]
    full = has1 & has2 & (r22 > rcond * s1sq)
    safe = xp.where(full, r22, 1.0)
    # Rank one: the top singular pair, v1 = (1, sign g) / sqrt(2) (the Gram
    # matrix of unit columns has equal diagonals), or the one non-zero column.
    one_both = has1 & has2 & ~full
    one = one_both | (has1 != has2)
    ones = xp.ones_like(g)
    sg = xp.where(g < 0, -ones, ones)
    s1 = xp.where(one_both, xp.sqrt(s1sq), 1.0)
    half = 2.0**-0.5
    v1a = xp.where(has1 & has2, half, xp.astype(has1, g.dtype)) / s1
    v1b = xp.where(has1 & has2, half * sg, xp.astype(has2, g.dtype)) / s1
    zero = xp.zeros_like(g)
    # Full rank: [b1, b2] = [b1, w / r22] @ [[1, g], [0, r22]], inverted.
    r00 = xp.where(full, 1.0, xp.where(one, v1a, zero))
    r01 = xp.where(full, -g / safe, zero)
    r10 = xp.where(one, v1b, zero)
    r11 = xp.where(full, 1.0 / safe, zero)
    c0 = xp.where(full, t1, xp.where(one, v1a * t1 + v1b * t2, zero))
    c1 = xp.where(full, wr / safe, zero)
    Rinv = xp.stack(
        [xp.stack([r00, r01], axis=-1), xp.stack([r10, r11], axis=-1)], axis=-2
    )
    T = N @ (Rinv / col[..., :, None])
    rank = xp.astype(full, xp.int64) + xp.astype(full | one, xp.int64)
    return T, xp.stack([c0, c1], axis=-1), rank


def _from_z(T, y):
    """``x = e_0 + T @ y``, batched."""
    xp = array_namespace(T, y)
    x = xp.sum(T * y[..., None, :], axis=-1)
    e0 = np.zeros(T.shape[-2])
    e0[0] = 1.0
    return x + _like(xp, x, e0)


def _shrink(x, bad, phi, T, c, rank, P, upper=1.0):
    """Keep every filter in [0, upper] on the training spectra, batched.

    Minimises ``|M x - v|`` under ``sum(x) = 1`` and ``0 <= Phi @ x <= upper``
    (``Phi[i, m] = h_i ** (m + 1)``: the filter ``phi(h) = h * sum_m x_m
    h^m``), in the truncated coordinates of :func:`_reduce`: with ``x = e_0 +
    T (c + z)`` that is the least-distance programme ``min |z|^2`` under
    linear constraints on ``z``. Ridge (``z = -c``) is feasible, so a
    solution exists. Only problems whose free solution ``x`` is infeasible
    are solved: with one retained direction in closed form (an interval),
    with two by a dual active-set method in the plane (:func:`_ldp_plane`),
    both vectorised over the batch; with more by the same method in their
    dimension (:func:`~skdistill._least_distance.ldp_dual`), batched on the
    host. Where an active set fails to round-off (rare), by non-negative
    least squares (Lawson and Hanson, 1974, chapter 23), one problem at a
    time on the host.

    Parameters
    ----------
    x : array of shape (B, p)
        The free solutions.
    bad : array of bool, shape (B,)
        The problems whose free filter leaves [0, 1].
    phi : array of shape (n_bad, m)
        Their filters on the training spectra, in the order of ``bad``.
    T, c, rank : from :func:`_reduce`, flattened to the batch ``B``.
    P : array of shape (n_bad, m, p)
        The constraints of each bad problem: ``P[b, i, m] = h_i ** (m + 1)``
        at its points ``h_i``.
    upper : float, default=1.0
        The filters' upper bound; ``inf`` keeps them non-negative only.

    Returns
    -------
    x : array of shape (B, p)
    """
    xp = array_namespace(x, T)
    if phi.shape[0] == 0:
        return x
    T, c, rank = (_subset(a, bad, xp) for a in (T, c, rank))
    # (nb, q, m): the constraints' sensitivity to z, a row per coordinate.
    PT = xp.matrix_transpose(T) @ xp.matrix_transpose(P)
    base = phi  # the filter at z = 0
    ridge = _from_z(T[:, :, :0], c[:, :0])  # e_0 on every row
    out = xp.asarray(ridge, copy=True)
    r1 = rank == 1
    if bool(xp.any(r1)):
        out[r1] = _shrink_interval(
            _subset(T, r1, xp)[:, :, 0],
            _subset(c, r1, xp)[:, 0],
            _subset(base, r1, xp),
            _subset(PT, r1, xp)[:, 0, :],
            xp,
            upper,
        )
    r2 = rank == 2
    ok = ~(r2 | (rank > 2))
    if bool(xp.any(r2)):
        z, ok2 = _ldp_plane(_subset(PT, r2, xp)[:, :2, :], _subset(base, r2, xp), upper)
        x2 = _from_z(_subset(T, r2, xp)[:, :, :2], _subset(c, r2, xp)[:, :2] + z)
        x2 = xp.where(ok2[:, None], x2, _subset(ridge, r2, xp))
        out[r2] = x2
        ok[r2] = ok2
    if not bool(xp.all(ok)):  # three or more directions, on the host
        PT_h, base_h, h_h = to_numpy(PT), to_numpy(base), to_numpy(P[:, :, 0])
        T_h, c_h, rank_h = to_numpy(T), to_numpy(c), to_numpy(rank)
        fixed = np.array(to_numpy(out))
        ok_h = np.array(to_numpy(ok))
        for r in np.unique(rank_h[~ok_h & (rank_h > 2)]):
            sel = np.flatnonzero(~ok_h & (rank_h == r))
            G, hb = _rows_ge(PT_h[sel, :r], base_h[sel], upper)
            z, done = ldp_dual(G, hb, _FEAS_TOL)
            sel, z = sel[done], z[done]
            fixed[sel] = _from_z(T_h[sel, :, :r], c_h[sel, :r] + z)
            ok_h[sel] = True
        # Rare: NNLS, one problem at a time, where the others failed.
        for i in np.flatnonzero(~ok_h):
            r = int(rank_h[i])
            # Repeated points (the exchange's) are one constraint.
            _, once = np.unique(h_h[i], return_index=True)
            z = _ldp_nnls(PT_h[i, :r][:, once].T, base_h[i, once], upper)
            if z is not None:
                fixed[i] = _from_z(T_h[i, :, :r], c_h[i, :r] + z)
        out = _like(xp, out, fixed)
    if bool(xp.all(bad)):
        return out
    x = xp.asarray(x, copy=True)
    x[bad] = out
    return x


def _rows_ge(PT, base, upper):
    """``0 <= base + PT^T z <= upper`` as ``G z >= h`` (NumPy): the lower
    bounds, then (``upper`` finite) the upper ones."""
    G = np.swapaxes(PT, 1, 2)
    if upper == np.inf:
        return G, -base
    return np.concatenate([G, -G], axis=1), np.concatenate([-base, base - upper], 1)


def _subset(a, mask, xp):
    """``a[mask]``, without a copy where ``mask`` is all True."""
    return a if bool(xp.all(mask)) else a[mask]


def _shrink_interval(T, c, base, g, xp, upper=1.0):
    """One retained direction: ``0 <= base + g z <= upper`` bounds ``z``.

    The solution is 0 clipped to that interval, which contains ``-c``
    (ridge) in exact arithmetic; ridge where round-off empties it.
    """
    flat = g == 0
    safe = xp.where(flat, 1.0, g)
    a, b = -base / safe, (upper - base) / safe  # the bounds where g != 0
    lo, hi = xp.minimum(a, b), xp.maximum(a, b)
    flat_ok = True
    if bool(xp.any(flat)):
        lo = xp.where(flat, -xp.inf, lo)
        hi = xp.where(flat, xp.inf, hi)
        flat_ok = ~xp.any(flat & ~((base >= 0) & (base <= upper)), axis=1)
    lo, hi = xp.max(lo, axis=1), xp.min(hi, axis=1)
    feasible = flat_ok & (lo <= hi + 1e-12 * (1 + xp.abs(lo)))
    z = xp.minimum(xp.maximum(xp.zeros_like(lo), lo), xp.maximum(lo, hi))
    z = xp.where(feasible, z, -c)  # ridge where round-off empties it
    return _from_z(T[:, :, None], (c + z)[:, None])


# Constraint violations below this (the filter's own scale is 1) are round-off.
_FEAS_TOL = 1e-11


def _clip(x, xp, min=None, max=None):
    """``xp.clip``; NumPy's own for NumPy arrays (the compatibility layer's
    costs ten times as much, on the hot loops of the programmes)."""
    if isinstance(x, np.ndarray):
        return np.clip(x, min, max)
    return xp.clip(x, min=min, max=max)


def _gather(a, idx, xp):
    """``a[i, idx[i]]`` for every row ``i``."""
    return xp.take_along_axis(a, idx[:, None], axis=1)[:, 0]


def _lines(ax, ay, base, j, upper, xp):
    """Constraint ``j`` of every row as ``(gx, gy, h)``, ``g . z >= h``.

    ``j`` (one per problem, clipped at 0) indexes the lower bounds (``j <
    m``: ``A_j z >= -base_j``), then the upper ones (``j = i + m``: ``-A_i z
    >= base_i - upper``).
    """
    m = ax.shape[1]
    jj = _clip(j, xp, min=0)
    high = jj >= m
    row = xp.where(high, jj - m, jj)
    gx, gy, b = (_gather(a, row, xp) for a in (ax, ay, base))
    return (
        xp.where(high, -gx, gx),
        xp.where(high, -gy, gy),
        xp.where(high, b - upper, -b),
    )


def _most_violated(ax, ay, base, inv, zw, upper, xp, at_origin=False, work=None):
    """Each problem's most violated constraint (in distance) at ``zw``.

    Returns its index (as in :func:`_lines`) and whether it is violated
    beyond :data:`_FEAS_TOL`. A row's two bounds are never both violated.
    ``at_origin``: every ``zw`` is 0. ``work``: with NumPy, two scratch
    arrays of at least ``ax``'s rows (allocated if None).
    """
    if not isinstance(ax, np.ndarray):
        return _most_violated_masked(ax, ay, base, inv, zw, upper, xp)
    # In place, unmasked: the bound farthest away is the answer wherever it
    # is violated beyond round-off; the rest are checked masked (rare).
    n = ax.shape[0]
    d, t = (np.empty_like(ax), np.empty_like(ax)) if work is None else work
    d, t = d[:n], t[:n]
    if at_origin:
        np.copyto(d, base)
    else:
        np.multiply(ax, zw[:, :1], out=d)
        d += base
        d += np.multiply(ay, zw[:, 1:], out=t)
    if upper == np.inf:
        np.negative(d, out=d)
    else:  # max(-f, f - upper), one pass fewer
        d -= 0.5 * upper
        np.abs(d, out=d)
        d -= 0.5 * upper
    d *= inv
    row = np.argmax(d, axis=1)
    j, going = _side(ax, ay, base, zw, upper, row, xp)
    check = ~going & (_gather(d, row, xp) > 0)
    if np.any(check):
        sub = np.flatnonzero(check)
        j[sub], going[sub] = _most_violated_masked(
            ax[sub], ay[sub], base[sub], inv[sub], zw[sub], upper, xp
        )
    return j, going


def _most_violated_masked(ax, ay, base, inv, zw, upper, xp):
    """:func:`_most_violated`, among the bounds violated beyond round-off."""
    f = base + ax * zw[:, :1] + ay * zw[:, 1:]
    slack = xp.maximum(-f, f - upper)
    viol = xp.where(slack > _FEAS_TOL, slack * inv, -xp.inf)
    row = xp.argmax(viol, axis=1)
    return _side(ax, ay, base, zw, upper, row, xp)[0], _gather(viol, row, xp) > -xp.inf


def _side(ax, ay, base, zw, upper, row, xp):
    """The bound of ``row`` violated more at ``zw`` (its index as in
    :func:`_lines`), and whether it is violated beyond :data:`_FEAS_TOL`."""
    fw = _gather(base, row, xp) + _gather(ax, row, xp) * zw[:, 0]
    fw = fw + _gather(ay, row, xp) * zw[:, 1]
    high = fw - upper > -fw
    slack = xp.where(high, fw - upper, -fw)
    return xp.where(high, row + ax.shape[1], row), slack > _FEAS_TOL


def _ldp_plane(A, base, upper=1.0, max_iter=None):
    """``min |z|^2`` subject to ``0 <= base + A z <= upper``, ``z`` in the
    plane, batched.

    A dual active-set method (Goldfarb and Idnani, 1983) in two dimensions:
    from ``z = 0``, the most violated constraint (in distance) joins the
    active set, and the projection of the origin onto the active constraints
    (at most two in the plane, the new one always among them) is recomputed
    exactly by trying the new line alone and its vertices with each active
    line. ``|z|`` grows strictly, so no active set repeats and the loop ends;
    all problems advance in lockstep, those finished dropping out.

    Parameters
    ----------
    A : array of shape (B, 2, m)
        The coefficients of ``z`` in each row, ``A[b, k, i]`` for ``z_k``.
    base : array of shape (B, m)
    upper : float
        The upper bound of every row; ``inf`` for one-sided constraints
        ``A z >= -base``.
    max_iter : int, optional
        Default ``4 m``.

    Returns
    -------
    z : array of shape (B, 2)
    ok : array of bool, shape (B,)
        False where the iteration failed (round-off; the caller then solves
        that problem another way).
    """
    xp = array_namespace(A, base)
    nb, _, m = A.shape
    max_iter = 4 * m if max_iter is None else max_iter
    dev = _device(A)
    # Working copies of the unfinished problems, compacted as they finish;
    # finished ones are collected and put back in order at the end.
    idx = xp.arange(nb, device=dev)
    ax, ay, bw = A[:, 0, :], A[:, 1, :], base
    tiny = float(np.finfo(np.float64).tiny)
    inv = 1.0 / _clip(xp.sqrt(ax * ax + ay * ay), xp, min=tiny)
    zw = xp.zeros((nb, 2), dtype=A.dtype, device=dev)
    act = xp.full((nb, 2), -1, dtype=xp.int64, device=dev)  # active (-1: none)
    work = None  # NumPy's scratch arrays for _most_violated
    if isinstance(A, np.ndarray):
        work = (np.empty((nb, m), dtype=A.dtype), np.empty((nb, m), dtype=A.dtype))
    done_idx, done_z, done_ok = [], [], []

    def retire(mask, ok):
        done_idx.append(idx[mask])
        done_z.append(zw[mask])
        done_ok.append(
            xp.full((int(xp.sum(xp.astype(mask, xp.int64))),), ok, device=dev)
        )

    for it in range(max_iter):
        if idx.shape[0] == 0:
            break
        worst, going = _most_violated(ax, ay, bw, inv, zw, upper, xp, it == 0, work)
        if not bool(xp.all(going)):  # finished: retire and compact
            retire(~going, True)
            idx, ax, ay, bw, inv = (a[going] for a in (idx, ax, ay, bw, inv))
            zw, act, worst = zw[going], act[going], worst[going]
        if idx.shape[0] == 0:
            break
        zw, act, stuck = _plane_step(ax, ay, bw, zw, act, worst, upper, xp)
        if bool(xp.any(stuck)):
            retire(stuck, False)
            keep = ~stuck
            idx, ax, ay, bw, inv = (a[keep] for a in (idx, ax, ay, bw, inv))
            zw, act = zw[keep], act[keep]
    if idx.shape[0]:
        retire(xp.ones(idx.shape, dtype=xp.bool, device=dev), False)
    order = xp.argsort(xp.concat(done_idx))
    z = xp.take(xp.concat(done_z, axis=0), order, axis=0)
    ok = xp.take(xp.concat(done_ok), order)
    return z, ok


def _plane_step(ax, ay, bw, zw, act, worst, upper, xp):
    """One step of :func:`_ldp_plane`: constraint ``worst`` joins ``act``.

    Returns the new ``zw`` and ``act``, and where no candidate was feasible
    (round-off).
    """
    none = xp.full(worst.shape, -1, dtype=xp.int64, device=_device(zw))
    new = _lines(ax, ay, bw, worst, upper, xp)
    olds = [(act[:, s] >= 0, *_lines(ax, ay, bw, act[:, s], upper, xp)) for s in (0, 1)]
    new_z, pick, stuck = _plane_vertex(new, olds, zw, xp)
    other = xp.where(pick == 0, act[:, 0], xp.where(pick == 1, act[:, 1], none))
    return new_z, xp.stack([worst, other], axis=1), stuck


def _plane_vertex(new, olds, zw, xp):
    """The projection of the origin once line ``new`` joins the active ``olds``.

    ``new``: ``(px, py, hp)``, the constraint ``p . z >= hp``; ``olds``: two
    ``(on, qx, qy, hq)``, the active lines (``on`` False for an empty slot).
    Tries the new line alone and its vertex with each active line (with
    non-negative multipliers), each kept only where it satisfies the active
    lines. Returns the new ``z``, the active line kept with the new one
    (``pick``: 0, 1, or -1 for none) and where no candidate was feasible.
    """
    px, py, hp = new
    n2 = px * px + py * py
    scale = hp / xp.where(n2 > 0, n2, 1.0)
    cands = [xp.stack([px * scale, py * scale], axis=1)]
    for on, qx, qy, hq in olds:  # the vertex of the new line with an active one
        det = px * qy - py * qx
        dsafe = xp.where(det != 0, det, 1.0)
        u0 = (hp * qy - hq * py) / dsafe
        u1 = (px * hq - qx * hp) / dsafe
        # Multipliers of u = lp (px, py) + lq (qx, qy).
        lp = (u0 * qy - u1 * qx) / dsafe
        lq = (px * u1 - py * u0) / dsafe
        valid = on & (det != 0) & (lp >= 0) & (lq >= 0)
        cands.append(xp.where(valid[:, None], xp.stack([u0, u1], axis=1), xp.nan))
    # Each candidate must satisfy the constraints active before.
    best = xp.full(px.shape, xp.inf, dtype=zw.dtype, device=_device(zw))
    new_z = zw
    pick = xp.full(px.shape, -1, dtype=xp.int64, device=_device(zw))
    for k, u in enumerate(cands):
        fine = ~xp.isnan(u[:, 0])
        u0 = xp.where(fine[:, None], u, 0.0)
        for on, qx, qy, hq in olds:
            s = hq - qx * u0[:, 0] - qy * u0[:, 1]
            fine = fine & (~on | (s <= _FEAS_TOL * (1 + xp.abs(hq))))
        size = xp.where(fine, u0[:, 0] ** 2 + u0[:, 1] ** 2, xp.inf)
        take = size < best
        best = xp.where(take, size, best)
        new_z = xp.where(take[:, None], u0, new_z)
        pick = xp.where(take, k - 1, pick)
    return new_z, pick, xp.isinf(best)


# Steps of _ldp_spectrum before a problem is left to the exchange.
_SPECTRUM_STEPS = 32


def _worst_line(zw, x0, T, lam, alpha, upper, xp):
    """Each filter's most violated bound over the whole spectrum, as a line.

    ``x0 + T zw``: the filters at the current ``zw``. The candidates are
    the points where each filter takes its extreme values
    (:func:`_extreme_h`, exact over the spectrum); the bound farthest
    from ``zw`` (in distance) is returned as ``(gx, gy, h)``, ``g . z >= h``
    in the coordinates ``z`` of ``x0 + T z``, with whether it is violated
    beyond :data:`_FEAS_TOL` (as the rows of :func:`_ldp_plane`).
    """
    x = x0 + (T @ zw[:, :, None])[:, :, 0]
    Pw = _powers(_extreme_h(x, lam, alpha), x.shape[-1], xp)
    A = Pw @ T  # (nb, P, 2): the points' sensitivity to z
    base = _at_rows(x0, Pw)  # the filters at z = 0
    phi = base + A[..., 0] * zw[:, :1] + A[..., 1] * zw[:, 1:]
    high = phi - upper > -phi
    slack = xp.where(high, phi - upper, -phi)
    tol = _FEAS_TOL
    norm = xp.sqrt(A[..., 0] ** 2 + A[..., 1] ** 2)
    tiny = float(np.finfo(np.float64).tiny)
    dist = xp.where(slack > tol, slack / _clip(norm, xp, min=tiny), -xp.inf)
    row = xp.argmax(dist, axis=1)
    going = _gather(dist, row, xp) > -xp.inf
    gx, gy, b = (
        _gather(A[..., 0], row, xp),
        _gather(A[..., 1], row, xp),
        _gather(base, row, xp),
    )
    up = _gather(xp.astype(high, x.dtype), row, xp) > 0
    line = (xp.where(up, -gx, gx), xp.where(up, -gy, gy), xp.where(up, b - upper, -b))
    return line, going


def _ldp_spectrum(x0, T, lam, alpha, upper=1.0, max_steps=_SPECTRUM_STEPS):
    """Rank-two programmes of :func:`shrink_to_unit` on the whole spectrum.

    ``min |z|^2`` under ``0 <= phi(h) <= upper`` at every ``h`` of the
    spectrum for the filter ``x0 + T z`` (``T``: (B, p, 2)), by the dual
    active-set method of :func:`_ldp_plane` whose constraints come from the
    spectrum itself: at each step the most violated bound among each
    filter's extreme points (:func:`_worst_line`) joins the active set. Any
    violated constraint may join (Goldfarb and Idnani, 1983), so the result
    is the exact least-distance solution; no sampled points, no rounds.

    Returns
    -------
    x : array of shape (B, p)
    ok : array of bool, shape (B,)
        False where the steps ran out or found no feasible candidate
        (round-off): the caller solves those problems another way.
    """
    xp = array_namespace(x0, T)
    nb = x0.shape[0]
    dev = _device(x0)
    idx = xp.arange(nb, device=dev)
    zw = xp.zeros((nb, 2), dtype=x0.dtype, device=dev)
    zero = xp.zeros((nb,), dtype=x0.dtype, device=dev)
    off = xp.zeros((nb,), dtype=xp.bool, device=dev)
    olds = [(off, zero, zero, zero), (off, zero, zero, zero)]
    w0, wT, wa = x0, T, alpha
    done = []  # (indices, x, ok) of the problems that left, put back at the end

    def retire(mask, x, ok):
        n = int(xp.sum(xp.astype(mask, xp.int64)))
        done.append((idx[mask], x[mask], xp.full((n,), ok, device=dev)))

    for _ in range(max_steps):
        if idx.shape[0] == 0:
            break
        line, going = _worst_line(zw, w0, wT, lam, wa, upper, xp)
        if not bool(xp.all(going)):  # finished: exact on the spectrum
            retire(~going, w0 + (wT @ zw[:, :, None])[:, :, 0], True)
            keep = going
            idx, w0, wT, wa, zw = (a[keep] for a in (idx, w0, wT, wa, zw))
            line = tuple(a[keep] for a in line)
            olds = [tuple(a[keep] for a in o) for o in olds]
        if idx.shape[0] == 0:
            break
        zw, pick, stuck = _plane_vertex(line, olds, zw, xp)
        kept = [xp.where(pick == 0, a0, a1) for a0, a1 in zip(*olds, strict=True)]
        kept[0] = kept[0] & (pick >= 0)
        olds = [(xp.ones_like(kept[0]), *line), tuple(kept)]
        keep = ~stuck
        if not bool(xp.all(keep)):
            retire(stuck, w0, False)
            idx, w0, wT, wa, zw = (a[keep] for a in (idx, w0, wT, wa, zw))
            olds = [tuple(a[keep] for a in o) for o in olds]
    if idx.shape[0]:
        retire(xp.ones(idx.shape, dtype=xp.bool, device=dev), w0, False)
    order = xp.argsort(xp.concat([d[0] for d in done]))
    x = xp.take(xp.concat([d[1] for d in done], axis=0), order, axis=0)
    return x, xp.take(xp.concat([d[2] for d in done]), order)


def _ldp_nnls(PT, base, upper=1.0):
    """``min |z|^2`` under ``0 <= base + PT z <= upper`` by NNLS (one problem).

    Lawson and Hanson (1974, chapter 23): with ``G z >= h``, the
    least-distance solution is ``z = -rho[:r] / rho[r]`` where ``rho`` is the
    residual of ``min |[G^T; h^T] u - e_{r+1}|`` over ``u >= 0``. ``None``
    where the programme is numerically infeasible. NumPy arrays only.
    """
    from scipy.optimize import nnls

    r, m = PT.shape[1], PT.shape[0]
    sides = 1 if upper == np.inf else 2
    E = np.empty((r + 1, sides * m))
    E[:r, :m] = PT.T
    E[r, :m] = -base
    if sides == 2:
        E[:r, m:] = -PT.T
        E[r, m:] = base - upper
    target = np.zeros(r + 1)
    target[-1] = 1.0
    u, _ = nnls(E, target, maxiter=50 * E.shape[1])
    rho = E @ u - target
    if abs(rho[-1]) < 1e-12:
        return None
    z = -rho[:r] / rho[-1]
    # Polish: the multipliers u > 0 mark the active constraints, where the
    # solution is the minimum-norm point of G_A z = h_A; that point is
    # exact to round-off where NNLS's z misses them by its tolerance
    # (1e-9 seen). Kept only if it is feasible everywhere.
    G, h = E[:r].T, E[r]
    act = u > 0
    if act.any() and not np.all(G @ z - h >= -_FEAS_TOL):
        za = np.linalg.lstsq(G[act], h[act], rcond=None)[0]
        if np.all(G @ za - h >= -_FEAS_TOL):
            return za
    return z


def _critical_h(x):
    """Real parts of the roots of ``phi'`` for ``phi(h) = sum_m x_m h^(m+1)``.

    ``x``: (B, p). Returns (B, max(p - 1, 1)), NaN where a root does not
    exist. One or two roots (``p <= 3``) in closed form (the quadratic
    stably), on ``x``'s device; more as the eigenvalues of the companion
    matrix of ``phi'``, batched, on the host (no non-symmetric eigensolver in
    the array API standard). A complex pair contributes its real part, or
    another point of the interval: extra points only cost an evaluation.
    """
    xp = array_namespace(x)
    p = x.shape[-1]
    if p == 1:
        return xp.full((x.shape[0], 1), xp.nan, dtype=x.dtype, device=_device(x))
    if p <= 3:
        x0, x1 = x[:, 0], x[:, 1]
        x2 = x[:, 2] if p == 3 else xp.zeros_like(x0)
        # phi' = x0 + 2 x1 h + 3 x2 h^2.
        with np.errstate(divide="ignore", invalid="ignore"):
            disc = x1 * x1 - 3.0 * x2 * x0
            q = -(x1 + xp.copysign(xp.sqrt(_clip(disc, xp, min=0.0)), x1))
            r1 = xp.where(x2 != 0, q / (3.0 * x2), -x0 / (2.0 * x1))
            r2 = x0 / q
        return xp.stack([r1, r2], axis=1)
    coef = to_numpy(x) * np.arange(1.0, p + 1.0)  # phi', increasing degree
    j = p - 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        monic = coef[:, :-1] / coef[:, -1:]
    ok = np.all(np.isfinite(monic), axis=1)
    comp = np.zeros((coef.shape[0], j, j))
    comp[:, 1:, :-1] = np.eye(j - 1)
    comp[:, :, -1] = -np.where(ok[:, None], monic, 0.0)
    roots = np.full((coef.shape[0], j), np.nan)
    roots[ok] = np.linalg.eigvals(comp[ok]).real
    for i in np.flatnonzero(~ok):  # a vanishing leading coefficient (rare)
        r = np.roots(np.where(np.isfinite(coef[i]), coef[i], 0.0)[::-1]).real
        roots[i, : r.size] = r
    return _like(xp, x, roots)


def _powers(H, p, xp):
    """``H[..., i] ** (m + 1)`` for ``m < p``: the constraints' rows."""
    out = [H]
    for _ in range(1, p):  # products: far cheaper than a float power
        out.append(out[-1] * H)
    return xp.stack(out, axis=-1)


def _extreme_h(x, lam, alpha):
    """Points of the spectrum where each filter takes its extreme values.

    ``x``: (B, p) filters ``phi(h) = sum_m x_m h^(m+1)``; ``lam``: (m,) the
    eigenvalues, ascending (at least one); ``alpha``: (B,) each filter's
    penalty. ``h = lam / (lam + alpha)`` increases with ``lam`` and ``phi``
    is monotone between its critical points (:func:`_critical_h`), so over
    the discrete spectrum its minimum and maximum are at the two ends or at
    the eigenvalues next to a critical point. Those (two on each side, a
    margin for round-off in the roots) are returned: ``H`` of shape (B, P),
    each an exact ``h`` of the spectrum. Cost ``O(B p log m)``, whatever
    ``m``.
    """
    xp = array_namespace(x, lam)
    m = lam.shape[0]
    roots = _critical_h(x)
    a = alpha[:, None]
    inside = (roots > 0) & (roots < 1)  # False for NaN
    r = xp.where(inside, roots, 0.5)
    lam_r = xp.where(inside, a * r / (1.0 - r), 0.0)  # phi'(h) = 0 at lam_r
    i = xp.searchsorted(lam, xp.reshape(lam_r, (-1,)))
    i = xp.reshape(i, lam_r.shape)
    ends = xp.asarray([[0, m - 1]], dtype=i.dtype, device=_device(i))
    idx = xp.concat(
        [i - 2, i - 1, i, i + 1, xp.broadcast_to(ends, (i.shape[0], 2))], axis=1
    )
    idx = _clip(idx, xp, min=0, max=m - 1)
    L = xp.reshape(xp.take(lam, xp.reshape(idx, (-1,))), idx.shape)
    return L / (L + a)


def _unit_violation(x, lam, alpha):
    """Worst values of each filter over the spectrum: ``(H, phi)``, ``phi``
    at the points ``H`` of :func:`_extreme_h`."""
    xp = array_namespace(x, lam)
    H = _extreme_h(x, lam, alpha)
    return H, _at_rows(x, _powers(H, x.shape[-1], xp))


def _slack_tol(x, x0, xp):
    """Round-off in the values of a shrunk filter ``x`` of free solution
    ``x0``: the programmes' own tolerance (:data:`_FEAS_TOL`, on constraints
    of scale 1), the forming of ``x = x0 + T z`` and the evaluation of
    ``sum_m x_m h^(m+1)`` (a few ulps of ``sum |x_m|`` and ``sum |x0_m|``)."""
    size = xp.sum(xp.abs(x), axis=-1) + xp.sum(xp.abs(x0), axis=-1)
    return 2.0 * _FEAS_TOL + 64.0 * _EPS * (1.0 + size)


_EPS = float(np.finfo(np.float64).eps)


# Problems solved at a time by shrink_to_unit on NumPy.
_BLOCK = 16384


def shrink_to_unit(x, T, c, rank, Phi, a_idx, lam, alphas, max_rounds=8, upper=1.0):
    """Keep every filter within [0, upper] on every eigenvalue, batched.

    The constraints ``0 <= phi(h) <= 1`` hold at every ``h = lam / (lam +
    alpha)`` of the spectrum ``lam``, however many. Problems with two
    retained directions (degree two, the common case) are first solved on
    the whole spectrum in one pass (:func:`_ldp_spectrum`); the others, and
    those it leaves unsolved (round-off), by an exchange (cutting-plane)
    method: each problem whose free filter leaves [0, 1]
    somewhere (:func:`_extreme_h`, exact over the spectrum) is solved by
    :func:`_shrink` on the sampled points ``Phi`` and the free filter's two
    worst points; the solution's worst points over the whole spectrum are
    checked and, where it still leaves [0, 1] beyond round-off
    (:func:`_slack_tol`), added, and the problem solved again. A solution
    feasible on the whole spectrum is optimal for it (its constraints are a
    subset), so the result is the exact least-distance solution; the samples
    make one round the common case. Problems still infeasible after
    ``max_rounds`` get ridge (``x = e_0``, ``phi(h) = h``), which is
    feasible. All problems of a round are one batched solve.

    Parameters
    ----------
    x : array of shape (B, p)
        The free solutions.
    T, c, rank : from :func:`_reduce`, flattened to the batch ``B``.
    Phi : array of shape (A, m0, p)
        ``h ** (m + 1)`` at sampled eigenvalues, per alpha (the first set of
        constraints).
    a_idx : array of int, shape (B,)
        Each problem's alpha.
    lam : array of shape (m,)
        The eigenvalues (distinct, positive, ascending).
    alphas : array of shape (A,)
    max_rounds : int, default=8
    upper : float, default=1.0
        The upper bound; ``inf`` keeps the filters non-negative only (they
        may expand directions, never flip their sign).

    Returns
    -------
    x : array of shape (B, p)
    """
    xp = array_namespace(x, T)
    if lam.shape[0] == 0 or x.shape[0] == 0:
        return x  # no spectrum: nothing to keep in [0, 1]
    if isinstance(x, np.ndarray) and x.shape[0] > _BLOCK:
        # Problems are independent: in blocks, whose temporaries stay small.
        return np.concatenate(
            [
                shrink_to_unit(
                    *(a[s : s + _BLOCK] for a in (x, T, c, rank)),
                    Phi,
                    a_idx[s : s + _BLOCK],
                    lam,
                    alphas,
                    max_rounds,
                    upper,
                )
                for s in range(0, x.shape[0], _BLOCK)
            ]
        )
    p = x.shape[-1]
    alpha = xp.take(alphas, a_idx)
    H, phi = _unit_violation(x, lam, alpha)
    lo, hi = xp.argmin(phi, axis=1), xp.argmax(phi, axis=1)
    live = (_gather(phi, lo, xp) < 0.0) | (_gather(phi, hi, xp) > upper)
    if not bool(xp.any(live)):
        return x
    x = xp.asarray(x, copy=True)
    plane = live & (rank == 2)
    if bool(xp.any(plane)):  # on the whole spectrum at once; the rest exchange
        xs, ok = _ldp_spectrum(x[plane], T[plane][:, :, :2], lam, alpha[plane], upper)
        x[plane] = xs  # the free solution where not ok
        solved = xp.zeros_like(live)
        solved[plane] = ok
        live = live & ~solved
        if not bool(xp.any(live)):
            return x
    # The problems still being solved, compacted; ``live`` marks them in x.
    P = xp.concat([xp.take(Phi, a_idx[live], axis=0), _powers(H[live], p, xp)], axis=1)
    x0, T, c, rank, alpha = x[live], T[live], c[live], rank[live], alpha[live]
    for _ in range(max_rounds):
        every = xp.ones(alpha.shape, dtype=xp.bool, device=_device(x))
        xs = _shrink(x0, every, _at_rows(x0, P), T, c, rank, P, upper)
        x[live] = xs
        H, phi = _unit_violation(xs, lam, alpha)
        lo, hi = xp.argmin(phi, axis=1), xp.argmax(phi, axis=1)
        tol = _slack_tol(xs, x0, xp)
        again = (_gather(phi, lo, xp) < -tol) | (_gather(phi, hi, xp) > upper + tol)
        if not bool(xp.any(again)):
            return x
        P = xp.concat([P[again], _powers(H[again], p, xp)], axis=1)
        x0, T, c, rank, alpha = (a[again] for a in (x0, T, c, rank, alpha))
        live[live] = again
    x[live] = _from_z(T[:, :, :0], c[:, :0])  # ridge, e_0 (rare)
    return x


def _at_rows(x, P):
    """``P[b] @ x[b]`` for every problem: the filters at their constraints."""
    return (P @ x[:, :, None])[:, :, 0]
