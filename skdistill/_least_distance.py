"""Least-distance programmes of any small dimension, batched (NumPy).

``min |z|^2`` subject to ``G z >= h`` for many problems at once, where
``z`` has a few coordinates (three or more retained directions of the
shrinking programmes in :mod:`skdistill._constrained`; two have their own
solver in the plane). The dual active-set method of Goldfarb and Idnani
(1983): from ``z = 0`` the most violated constraint (in distance) joins the
active set, and the minimum-norm point of the active constraints and the new
one is found exactly, by trying every subset of the active set with the new
constraint (at most ``2^r - 1`` small systems for ``z`` of dimension ``r``)
and keeping the one whose multipliers are non-negative and that satisfies
the other active constraints. ``|z|`` grows strictly, so no active set
repeats and the loop ends; problems advance in lockstep, those finished
dropping out. Problems where round-off leaves no candidate are reported, for
the caller to solve another way.
"""

from itertools import combinations

import numpy as np

__all__ = ["ldp_dual"]

# Active constraints whose normalised rows are this close to dependent
# (the determinant of their Gram matrix, at most 1) are not a candidate.
_DEPENDENT = 1e-12


def ldp_dual(G, h, tol, max_iter=None):
    """``min |z|^2`` under ``G[b] @ z >= h[b]``, batched.

    Parameters
    ----------
    G : ndarray of shape (B, M, r)
    h : ndarray of shape (B, M)
    tol : float
        Constraints violated by at most this (in ``h``'s units) are taken
        as satisfied.
    max_iter : int, optional
        Default ``4 M``.

    Returns
    -------
    z : ndarray of shape (B, r)
    ok : ndarray of bool, shape (B,)
        False where the iteration found no candidate or ran out (round-off).
    """
    nb, m, r = G.shape
    max_iter = 4 * m if max_iter is None else max_iter
    norm = np.linalg.norm(G, axis=2)
    inv = 1.0 / np.maximum(norm, np.finfo(np.float64).tiny)
    z = np.zeros((nb, r))
    ok = np.zeros(nb, dtype=bool)
    live = np.arange(nb)
    act = np.full((nb, r), -1)  # active constraints, -1 for an empty slot
    for _ in range(max_iter):
        Gl = G[live]
        slack = h[live] - (Gl @ z[live][:, :, None])[:, :, 0]
        dist = np.where(slack > tol, slack * inv[live], -np.inf)
        # The active constraints hold with equality: what slack they show is
        # the round-off of the last solve, never a reason to add them again.
        a_live = act[live]
        held = np.flatnonzero(a_live >= 0)
        dist[held // r, a_live.ravel()[held]] = -np.inf
        worst = np.argmax(dist, axis=1)
        going = dist[np.arange(live.size), worst] > -np.inf
        ok[live[~going]] = True
        live, worst = live[going], worst[going]
        if live.size == 0:
            break
        z_new, act_new, found = _step(Gl[going], h[live], act[live], worst, tol)
        z[live], act[live] = z_new, act_new
        live = live[found]  # the others stay not ok
    return z, ok


def _step(G, h, act, new, tol):
    """Constraint ``new`` joins ``act``: the new minimum-norm point.

    Returns ``z`` (b, r), the new active set and where a candidate was
    found.
    """
    nb, _, r = G.shape
    rows = np.arange(nb)
    old_g = np.take_along_axis(G, np.maximum(act, 0)[:, :, None], axis=1)  # (b, r, r)
    old_h = np.take_along_axis(h, np.maximum(act, 0), axis=1)  # (b, r)
    on = act >= 0
    g_new, h_new = G[rows, new], h[rows, new]
    best = np.full(nb, np.inf)
    z = np.zeros((nb, r))
    act_new = np.full((nb, r), -1)
    for n_kept in range(r):  # subsets of the active slots, with the new one
        for keep in combinations(range(r), n_kept):
            keep = list(keep)
            sel = np.flatnonzero(on[:, keep].all(axis=1))  # those slots filled
            if sel.size == 0:
                continue
            E = np.concatenate([old_g[sel][:, keep], g_new[sel, None]], axis=1)
            hE = np.concatenate([old_h[sel][:, keep], h_new[sel, None]], axis=1)
            cand, valid = _min_norm_point(E, hE)
            # The constraints active before, dropped or not, must hold.
            oh = old_h[sel]
            slack = oh - (old_g[sel] @ cand[:, :, None])[:, :, 0]
            valid &= np.all(~on[sel] | (slack <= tol * (1.0 + np.abs(oh))), axis=1)
            norm2 = np.where(valid, np.sum(cand * cand, axis=1), np.inf)
            take = norm2 < best[sel]
            t = sel[take]
            best[t] = norm2[take]
            z[t] = cand[take]
            act_new[t] = -1
            act_new[t, :n_kept] = act[t][:, keep]
            act_new[t, n_kept] = new[t]
    return z, act_new, np.isfinite(best)


def _min_norm_point(E, hE):
    """The minimum-norm point of ``E z = hE`` (b, s, r), and where it is a
    candidate: rows independent and multipliers non-negative.

    Unit rows, then ``E^T = Q R``: ``z = Q w`` with ``R^T w = hE`` (backward
    stable, where the Gram matrix ``E E^T`` would square the rows'
    condition) and ``u = R^-1 w`` its multipliers; ``prod(diag R)^2``, the
    Gram determinant (at most 1), says how far the rows are from dependent.
    """
    s = E.shape[1]
    scale = 1.0 / np.maximum(np.linalg.norm(E, axis=2), np.finfo(np.float64).tiny)
    E, hE = E * scale[:, :, None], hE * scale
    Q, R = np.linalg.qr(np.swapaxes(E, 1, 2))
    diag = np.abs(np.diagonal(R, axis1=1, axis2=2))
    valid = np.prod(diag, axis=1) ** 2 > _DEPENDENT
    R[~valid] = np.eye(s)
    w = np.linalg.solve(np.swapaxes(R, 1, 2), hE[:, :, None])
    u = np.linalg.solve(R, w)[:, :, 0]
    valid &= np.all(u >= 0.0, axis=1)
    return (Q @ w)[:, :, 0], valid
