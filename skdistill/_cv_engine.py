"""Selection of ``(alpha, n_steps, xi_bar)`` from per-fold statistics.

The closed-form search reduces every fold to triangular factors ``R`` of
``[Z, r]`` for each ``alpha`` (:mod:`skdistill._cv_closed_form`): the
validation error of a filter ``xi_bar`` on that fold is
``|R @ (xi_bar, -1)|^2``. This module turns those factors into a choice.

Why the raw optimum is not enough
---------------------------------
``xi_bar`` (``k + 1`` numbers) is fitted on the very validation folds that then
score it, so the raw cross-validated error falls with every extra step and the
raw optimum picks the largest ``k`` offered, fitted to validation noise. The
factors pool additively, so the fitting of ``xi_bar`` can itself be
cross-validated at the cost of a few small solves:

* **cross-fitted scores** (``cv_results_["split{i}_honest_test_score"]``): for
  every candidate ``(alpha, k)`` and fold ``j``, ``xi_bar`` is fitted on the
  other folds' validation statistics and scored on fold ``j``. For ridge
  (``k = 0``, nothing fitted) they equal the raw scores.
* **the nested estimate** of the whole selection (``honest_score_``): for each
  fold ``j``, the selection rule is re-run on the other folds only (its own
  cross-fitting leaves a second fold out), ``xi_bar`` of the chosen candidate
  is fitted on the other folds and scored on fold ``j``.

Neither is exactly nested cross-validation: the teachers whose predictions
form fold ``i``'s statistics were trained on rows that include fold ``j``.
Only ``k + 1`` numbers are fitted on those statistics, so the leak is small.

Selection rules (``SelfDistillCV(selection=...)``), over candidates ordered
by complexity (ridge; then for each ``k`` the shrinking, then the free filter):

* ``"raw"``: the best mean raw score (the paper's protocol; optimistic).
* ``"honest"``: the best mean cross-fitted score.
* ``"stepwise"``: start from the best ridge; move to the best candidate of the
  next level only when its cross-fitted per-fold errors beat the current
  choice's by more than two standard errors of the paired differences.
* ``"one_se"``: the simplest level with a candidate within one standard error
  (paired) of the best cross-fitted score.

All solves are batched over folds, candidates and subsets of folds, with the
same truncated, column-normalised least squares under ``sum(xi_bar) = 1``.
"""

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ._filter import pure_filters

__all__ = [
    "RULES",
    "SelectionResult",
    "constrained_lstsq",
    "pool_targets",
    "select",
]

RULES = ("stepwise", "one_se", "honest", "raw")

# Standard errors by which a more complex level must win (see _apply_rule).
_Z = {"stepwise": 2.0, "one_se": 1.0}

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


def pool_targets(stats, groups):
    """Per-fold factors pooled over each group of targets.

    Returns ``F`` of shape ``(n_groups, n_folds, n_alphas, p, p)`` such that
    the fold's error of ``xi_bar``, averaged over the group's targets, is
    ``|F[g, f, a] @ (xi_bar, 0, ..., -1)|^2``.
    """
    n_folds = len(stats)
    n_alphas, _, p, _ = stats[0].R.shape
    F = np.empty((len(groups), n_folds, n_alphas, p, p))
    for g, targets in enumerate(groups):
        for f, s in enumerate(stats):
            R = s.R[:, targets] / np.sqrt(len(targets))  # (A, t_g, p, p)
            if len(targets) == 1:
                F[g, f] = R[:, 0]
            else:
                F[g, f] = np.linalg.qr(R.reshape(n_alphas, -1, p), mode="r")
    return F


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


def _subset_errors(F, masks, max_degree, Phi=None):
    """Fit ``xi_bar`` on each subset of folds, for every degree up to the max.

    ``F``: (G, K, A, p, p); ``masks``: (S, K) booleans, True for the folds
    whose statistics fit ``xi_bar``; ``Phi``: (A, m, p - 1) or None, the
    filter's powers on the training spectra when it is kept in [0, 1].
    Returns ``x`` (list over degrees of arrays (G, A, S, degree + 1)) and
    ``err`` (G, A, S, max_degree + 1, K): every fold's error at each subset's
    solution.
    """
    G, K, A, p, _ = F.shape
    masks = np.asarray(masks, dtype=float)
    S = masks.shape[0]
    # (G, A, S, K * p, p): excluded folds contribute zero rows.
    Fs = F.transpose(0, 2, 1, 3, 4)[:, :, None] * masks[None, None, :, :, None, None]
    Fs = Fs.reshape(G, A, S, K * p, p)
    v = Fs[..., -1]
    Fa = F.transpose(0, 2, 1, 3, 4).reshape(G, A, K * p, p)
    a_idx = np.broadcast_to(np.arange(A)[None, :, None], (G, A, S)).reshape(-1)
    xs, errs = [], []
    for j in range(max_degree + 1):
        T, c, rank = _reduce(Fs[..., : j + 1], v)
        x = _from_z(T, c)
        if Phi is not None and j > 0:
            # Only solutions whose filter may leave [0, 1] on the interval
            # of the training spectra's h are checked point by point.
            maybe = np.flatnonzero(_may_leave_unit(x, Phi[:, :, 0]))
            phi = np.einsum(
                "bp,bmp->bm", x.reshape(-1, j + 1)[maybe], Phi[a_idx[maybe], :, : j + 1]
            )
            out = (phi.min(axis=1) < 0.0) | (phi.max(axis=1) > 1.0)
            x = _shrink(
                x.reshape(-1, j + 1),
                maybe[out],
                phi[out],
                T.reshape(-1, j + 1, j),
                c.reshape(-1, j),
                rank.reshape(-1),
                Phi[..., : j + 1],
                a_idx,
            ).reshape(x.shape)
        xs.append(x)
        # Every fold's residual at every subset's solution, (G, A, S, K, p).
        res = np.matmul(Fa[..., : j + 1], x.transpose(0, 1, 3, 2))  # (G, A, K p, S)
        res -= Fa[..., -1:]
        errs.append(
            np.sum((res**2).reshape(G, A, K, p, S), axis=3).transpose(0, 1, 3, 2)
        )
    return xs, np.stack(errs, axis=3)


def filter_powers(lams, alphas, max_steps, n_points=64):
    """``Phi[a, i, m] = h_i ** (m + 1)`` on the training spectra, per alpha.

    ``lams``: the eigenvalues of every training fold. Up to ``n_points``
    eigenvalues (always the smallest and largest) stand for all of them.
    """
    lam = np.unique(np.concatenate([np.ravel(x) for x in lams]))
    lam = lam[lam > 0]
    if lam.size > n_points:
        lam = lam[np.unique(np.linspace(0, lam.size - 1, n_points).astype(int))]
    h = lam[None, :] / (lam[None, :] + np.asarray(alphas)[:, None])
    return pure_filters(h, max_steps)


@dataclass
class SelectionResult:
    """What the closed-form selection found, for ``G`` groups of targets.

    Errors are normalised as the score expects (mean squared error per
    validation weight, or the fraction of unexplained variance for R^2).
    """

    candidates: list  # [(n_steps, alpha_index, shrink)]
    xi_bar: list  # group 0's xi_bar of every candidate, fitted on all folds
    raw_errors: np.ndarray  # (G, n_candidates, K)
    honest_errors: np.ndarray  # (G, n_candidates, K): cross-fitted
    chosen: np.ndarray  # (G,) index into candidates
    chosen_xi_bar: np.ndarray  # (G, max_steps + 1), zero-padded
    nested_errors: np.ndarray  # (G, K): nested estimate of the rule, or NaN
    rule: str  # the rule actually applied ("raw" when no cross-fitting exists)


def _apply_rule(rule, raw, honest, level, alpha_idx, tol, eligible):
    """Index of the chosen candidate of every group.

    ``raw``, ``honest``: (G, C, K') errors on the folds available; ``level``:
    (C,) each candidate's complexity (0 for ridge); ``tol``: (G,) errors within
    ``tol`` of each other are ties, won by the simplest candidate (lowest
    level, then largest alpha); ``eligible``: (G, C) candidates that may be
    chosen (every ridge is).
    """
    score = raw if rule == "raw" else honest
    mean = score.mean(axis=2)  # (G, C)
    G = mean.shape[0]
    rows = np.arange(G)
    # Candidates from simplest to most complex (lowest level, largest alpha).
    order = np.lexsort((-alpha_idx, level))

    def best(mask):
        """(G,) best candidate among ``mask`` (G, C); ties to the simplest."""
        m = np.where(mask, mean, np.inf)
        tied = mask & (m <= m.min(axis=1, keepdims=True) + tol[:, None])
        return order[np.argmax(tied[:, order], axis=1)]

    if rule not in _Z or score.shape[2] < 2:
        return best(eligible)
    n_folds, z = score.shape[2], _Z[rule]
    if rule == "stepwise":
        levels = np.unique(level)
        current = best(eligible & (level == levels[0]))
        for lev in levels[1:]:
            mask = eligible & (level == lev)
            challenger = best(mask)
            d = score[rows, challenger] - score[rows, current]  # (G, K)
            se = d.std(ddof=1, axis=1) / np.sqrt(n_folds)
            move = mask.any(axis=1) & (d.mean(axis=1) + z * se < -tol)
            current = np.where(move, challenger, current)
        return current
    # The simplest level holding a candidate within one standard error (of
    # the paired per-fold differences) of the best; its best candidate.
    top = best(eligible)
    d = score - score[rows, top][:, None, :]
    se = d.std(ddof=1, axis=2) / np.sqrt(n_folds)
    within = eligible & (d.mean(axis=2) <= z * se + tol[:, None])
    lowest = np.where(within, level, np.iinfo(np.int64).max).min(axis=1)
    return best(within & (level == lowest[:, None]))


def _group_batch(A, S, K, p, D, budget=64 * 2**20):
    """Groups of targets per batch so that the largest arrays stay in budget."""
    per_group = 8 * A * S * (K * p * p + 2 * D * K + K * p)
    return max(1, int(budget // per_group))


def select(
    F, steps, *, rule, tol, eligible_fn=None, nested=True, Phi=None, families=None
):
    """Score every candidate of every group of targets and choose, batched.

    Parameters
    ----------
    F : ndarray of shape (G, K, A, p, p)
        Per-fold factors of each target group (:func:`pool_targets`).
    steps : list of int
        Candidate numbers of steps.
    rule : {"stepwise", "one_se", "honest", "raw"}
    tol : ndarray of shape (G,)
        Ties (see :func:`_apply_rule`).
    eligible_fn : callable, default=None
        ``xi_bar -> bool``: whether a candidate fitted on all folds may be
        chosen (for example, is representable by per-step ``xi``). Checked on
        the chosen candidate; an ineligible choice is excluded and the rule
        re-run for that group.
    nested : bool, default=True
        Also compute the nested estimate of the rule (``K`` more selections).
    Phi : ndarray of shape (A, m, p - 1), default=None
        :func:`filter_powers`; needed for shrinking filters.
    families : tuple of bool, default=(False,)
        Which filter families to offer for ``k >= 1``: ``False`` free,
        ``True`` kept in [0, 1] on the training spectra.

    Returns
    -------
    SelectionResult

    Notes
    -----
    Groups are processed in batches whose working arrays take at most about
    64 MiB (:func:`_group_batch`): memory is bounded whatever the number of
    targets, and every solve within a batch is one batched LAPACK call.
    """
    families = (False,) if families is None else tuple(families)
    G, K, A, p, _ = F.shape
    tol = np.broadcast_to(np.asarray(tol, dtype=float), (G,))
    max_steps = max(steps)
    cands = [
        (k, a, shrink)
        for k in steps
        for shrink in ((False,) if k == 0 else families)
        for a in range(A)
    ]
    C = len(cands)
    level = np.array([0 if k == 0 else 2 * k - 1 + (not sh) for k, _, sh in cands])
    cand_a = np.array([a for _, a, _ in cands])
    cand_k = np.array([k for k, _, _ in cands])
    cand_shrink = np.array([sh for _, _, sh in cands])
    s_idx = {k: i for i, k in enumerate(steps)}
    cand_kidx = np.array([s_idx[k] for k in cand_k])

    full = np.ones(K, dtype=bool)
    masks, leave1, leave2 = [full], {}, {}
    for j in range(K):
        m = full.copy()
        m[j] = False
        leave1[j] = len(masks)
        masks.append(m)
    if nested and K >= 3:
        for i, j in combinations(range(K), 2):
            m = full.copy()
            m[[i, j]] = False
            leave2[(i, j)] = leave2[(j, i)] = len(masks)
            masks.append(m)
    masks = np.array(masks)
    applied = rule if K >= 2 else "raw"
    out = dict(
        raw=np.empty((G, C, K)),
        honest=np.full((G, C, K), np.nan),
        chosen=np.empty(G, dtype=int),
        chosen_xi=np.zeros((G, max_steps + 1)),
        nested=np.full((G, K), np.nan),
    )
    xi_bar0 = None
    plan = _Plan(
        steps=steps,
        families=families,
        Phi=Phi,
        cands=cands,
        level=level,
        cand_a=cand_a,
        cand_kidx=cand_kidx,
        cand_shrink=cand_shrink,
        masks=masks,
        leave1=leave1,
        leave2=leave2,
        rule=applied,
        nested=nested,
    )
    batch = _group_batch(A, len(masks), K, p, max_steps + 1)
    for g0 in range(0, G, batch):
        sl = slice(g0, min(G, g0 + batch))
        res = _select_batch(F[sl], plan, tol[sl], eligible_fn)
        for key in out:
            out[key][sl] = res[key]
        if xi_bar0 is None:
            xi_bar0 = res["xi_bar0"]
    return SelectionResult(
        candidates=cands,
        xi_bar=xi_bar0,
        raw_errors=out["raw"],
        honest_errors=out["honest"],
        chosen=out["chosen"],
        chosen_xi_bar=out["chosen_xi"],
        nested_errors=out["nested"],
        rule=applied,
    )


@dataclass
class _Plan:
    """What every batch of target groups shares: candidates and fold subsets."""

    steps: list  # candidate numbers of steps
    families: tuple  # filter families offered (True: shrinking)
    Phi: np.ndarray  # filter powers on the training spectra, or None
    cands: list  # [(n_steps, alpha_index, shrink)]
    level: np.ndarray  # (C,) complexity of each candidate
    cand_a: np.ndarray  # (C,) alpha index
    cand_kidx: np.ndarray  # (C,) index of n_steps in steps
    cand_shrink: np.ndarray  # (C,) shrinking family
    masks: np.ndarray  # (S, K) folds fitting xi_bar in each subset
    leave1: dict  # fold j -> subset without j
    leave2: dict  # (i, j) -> subset without i and j
    rule: str
    nested: bool


def _select_batch(F, plan, tol, eligible_fn):
    steps, families, Phi, cands = plan.steps, plan.families, plan.Phi, plan.cands
    level, cand_a, cand_kidx = plan.level, plan.cand_a, plan.cand_kidx
    masks, leave1, leave2 = plan.masks, plan.leave1, plan.leave2
    rule, nested = plan.rule, plan.nested
    max_steps = max(steps)
    G, K, A, p, _ = F.shape
    C = len(cands)
    S = len(masks)
    fits = {}
    for shrink in families:
        xs, err = _subset_errors(F, masks, max_steps, Phi if shrink else None)
        # Degree used by candidate (k, a) fitted on subset s: the best, on
        # the subset's own folds, of the degrees up to k.
        insample = np.einsum("gasdk,sk->gsad", err, masks.astype(float))
        picks = np.stack(
            [np.argmin(insample[..., : k + 1], axis=3) for k in steps], axis=2
        )  # (G, S, n_steps, A)
        fits[shrink] = (xs, err, picks)
    if False not in fits:  # ridge comes from the free solve, whatever families
        xs, err = _subset_errors(F, masks, 0)
        picks = np.zeros((G, S, len(steps), A), dtype=int)
        fits[False] = (xs, err, picks)
    fam_idx = {sh: np.flatnonzero(plan.cand_shrink == sh) for sh in fits}
    # Every fold's error of each (k, alpha) on every subset, at the degree
    # it picks there: (S, A, n_steps, G, K) per family.
    picked = {}
    for sh, (_, err, picks) in fits.items():
        e = np.take_along_axis(
            err, picks.transpose(0, 3, 1, 2)[..., None], axis=3
        )  # (G, A, S, n_steps, K)
        picked[sh] = e.transpose(2, 1, 3, 0, 4)
    fam_k = {
        sh: cand_kidx[idx] if sh or len(steps) == fits[sh][2].shape[2] else 0 * idx
        for sh, idx in fam_idx.items()
    }

    def degrees(s):
        """(G, C) degree of every candidate's solution on subset s."""
        deg = np.zeros((G, C), dtype=int)
        for sh, idx in fam_idx.items():
            deg[:, idx] = fits[sh][2][:, s, fam_k[sh], cand_a[idx]]
        return deg

    def cand_err(s, folds):
        """(G, C, len(folds)) errors on ``folds`` of every candidate fitted on s."""
        res = np.empty((G, C, len(folds)))
        for sh, idx in fam_idx.items():
            e = picked[sh][s][cand_a[idx], fam_k[sh]]  # (Cf, G, K)
            res[:, idx] = e[..., folds].transpose(1, 0, 2)
        return res

    all_folds = np.arange(K)
    raw = cand_err(0, all_folds)
    honest = np.full_like(raw, np.nan)
    if K >= 2:
        for j in range(K):
            honest[:, :, j] = cand_err(leave1[j], np.array([j]))[:, :, 0]
    deg0 = degrees(0)
    eligible = np.ones((G, C), dtype=bool)
    while True:
        chosen = _apply_rule(rule, raw, honest, level, cand_a, tol, eligible)
        chosen_xi = np.zeros((G, max_steps + 1))
        redo = np.zeros(G, dtype=bool)
        for g in range(G):
            c = chosen[g]
            d = deg0[g, c]
            xs = fits[cands[c][2]][0]
            chosen_xi[g, : d + 1] = xs[d][g, cand_a[c], 0]
            k = cands[c][0]
            if eligible_fn is not None and k > 0:
                if not eligible_fn(chosen_xi[g, : k + 1]):
                    eligible[g, c] = False
                    redo[g] = True
        if not redo.any():
            break
    xi_bar0 = []  # the first group's, for cv_results_
    for c, (k, a, sh) in enumerate(cands):
        x = np.zeros(k + 1)
        d = deg0[0, c]
        x[: d + 1] = fits[sh][0][d][0, a, 0]
        xi_bar0.append(x)

    nested_errors = np.full((G, K), np.nan)
    if nested and K >= 2:
        every = np.ones((G, C), dtype=bool)
        inner_rule = rule if K >= 3 else "raw"
        for j in range(K):
            others = all_folds[all_folds != j]
            s = leave1[j]
            raw_in = cand_err(s, others)
            if leave2:
                hon_in = np.stack(
                    [cand_err(leave2[(j, i)], np.array([i]))[:, :, 0] for i in others],
                    axis=2,
                )
            else:
                hon_in = raw_in
            c = _apply_rule(inner_rule, raw_in, hon_in, level, cand_a, tol, every)
            nested_errors[:, j] = cand_err(s, np.array([j]))[np.arange(G), c, 0]
    return dict(
        raw=raw,
        honest=honest,
        chosen=chosen,
        chosen_xi=chosen_xi,
        nested=nested_errors,
        xi_bar0=xi_bar0,
    )
