"""``xi_bar`` fitted on every subset of folds, for every degree, batched.

The closed-form selection (:mod:`skdistill._cv_engine`) scores each
candidate ``(alpha, k)`` on every fold with ``xi_bar`` fitted on a subset
of the folds' statistics: all of them (the raw scores), all but one (the
cross-fitted scores) and all but two (the nested estimate). Every fold's
factor ``F`` is a ``p x p`` triangular matrix, so a subset's least-squares
problem is the stack of its folds' rows; ridge needs no fit, degrees one
and two are solved from per-fold sums of their columns' products, and
higher degrees from the stacked, masked rows. Filters kept in a family
(:func:`~skdistill._constrained.shrink_to_unit`) are solved on the
training spectra after the free fit.
"""

import numpy as np
from sklearn.externals.array_api_compat import array_namespace
from sklearn.externals.array_api_compat import device as _device

from ._array_api import to_numpy
from ._constrained import (
    XI_RCOND,
    _basis,
    _from_z,
    _like,
    _reduce,
    _two_factors,
    _two_products,
    shrink_to_unit,
)
from ._filter import shrinkage

__all__ = ["subset_errors"]


def subset_errors(F, masks, max_degree, Phi=None, upper=1.0):
    """Fit ``xi_bar`` on each subset of folds, for every degree up to the max.

    ``F``: (G, K, A, p, p), of any array API namespace (the work runs on its
    device); ``masks``: (S, K) booleans, True for the folds whose statistics
    fit ``xi_bar``; ``Phi``: :class:`ShrinkSpectrum` or None, the training
    spectra when the filter is kept in [0, upper] on them. Returns, in
    ``F``'s namespace, ``x`` (list over degrees of arrays (G, A, S, degree +
    1)) and ``err`` (G, A, S, max_degree + 1, K): every fold's error at each
    subset's solution. Ridge alone (``max_degree == 0``) does not depend on
    the subset: its ``x`` and ``err`` then have one subset, (G, A, 1, ...).
    """
    xp = array_namespace(F)
    G, K, A, p, _ = F.shape
    S = len(masks)
    # (G, A, K * p, p): every fold's rows (C-contiguous).
    Fa = xp.reshape(xp.permute_dims(F, (0, 2, 1, 3, 4)), (G, A, K * p, p))
    if max_degree == 0:  # ridge alone: xi_bar = (1,) whatever the subset
        x = xp.ones((G, A, 1, 1), dtype=F.dtype, device=_device(F))
        res = Fa[..., :1] - Fa[..., -1:]
        err = xp.sum(xp.reshape(res * res, (G, A, K, p)), axis=3)
        return [x], err[:, :, None, None, :]
    xs = [xp.ones((G, A, S, 1), dtype=F.dtype, device=_device(F))]
    xs.append(_degree_one(Fa, masks, Phi, upper))
    if max_degree >= 2:
        xs += _higher_degrees(Fa, masks, max_degree, Phi, upper)
    errs = []
    for x in xs:
        # Every fold's residual at every subset's solution, (G, A, K p, S).
        d = x.shape[-1]
        res = Fa[..., :d] @ xp.permute_dims(x, (0, 1, 3, 2)) - Fa[..., -1:]
        err = xp.sum(xp.reshape(res * res, (G, A, K, p, S)), axis=3)
        errs.append(xp.permute_dims(err, (0, 1, 3, 2)))
    return xs, xp.stack(errs, axis=3)


def _degree_one(Fa, masks, Phi, upper=1.0):
    """Degree 1 on every subset: (G, A, S, 2), free or kept in [0, upper].

    The one free coefficient of ``min |M x - v|`` under ``sum(x) = 1`` is
    ``x_1 = b.r / b.b`` with ``b = M_1 - M_0`` and ``r = v - M_0``; both
    sums over a subset's rows are sums of per-fold sums, formed once. With
    ``phi(h) = h (1 - x_1 (1 - h))``, ``0 <= phi <= 1`` at every ``h`` of a
    spectrum is ``-1 / h_max <= x_1 <= 1 / (1 - h_min)`` (``phi >= 0`` alone,
    ``upper = inf``, is the right-hand bound): the constrained solution is the
    free one clipped to that interval (the least-distance programme of
    :func:`~skdistill._constrained.shrink_to_unit` in one coordinate, whose
    binding constraints are the spectrum's two ends).
    """
    xp = array_namespace(Fa)
    b = Fa[..., 1] - Fa[..., 0]
    r = Fa[..., -1] - Fa[..., 0]
    bb, br = _subset_sum(b, b, masks), _subset_sum(b, r, masks)  # (G, A, S)
    x1 = br / xp.where(bb > 0, bb, 1.0)
    if Phi is not None and Phi.lam.shape[0]:
        hi = 1.0 / _like(xp, Fa, shrinkage(Phi.alphas, Phi.lam.min()))
        x1 = xp.minimum(x1, hi[:, None])
        if upper != np.inf:  # phi <= 1 binds at h_max (> 0 with a spectrum)
            x1 = xp.maximum(x1, -1.0 / _like(xp, Fa, Phi.h_max)[:, None])
    return xp.stack([1.0 - x1, x1], axis=-1)


def _subset_sum(u, w, masks):
    """``sum(u * w)`` over each subset's rows, (G, A, S), from ``u``, ``w``
    of shape (G, A, K * p): the per-fold sums, formed once, then summed over
    each subset's folds."""
    xp = array_namespace(u)
    G, A, Kp = u.shape
    K = masks.shape[1]
    on = xp.permute_dims(_like(xp, u, masks.astype(float)), (1, 0))  # (K, S)
    return xp.sum(xp.reshape(u * w, (G, A, K, Kp // K)), axis=3) @ on


# The plane programmes' (degree 2) first set of constraints: this many of the
# sampled points. The exchange of shrink_to_unit adds every point where a
# solution leaves [0, 1], so the solutions do not depend on it; fewer points
# make each programme cheaper than the extra rounds they may need.
_PLANE_POINTS = 8


def _first_points(Phi_h, j):
    """The sampled points that start degree ``j``'s exchange: (A, m', j + 1)."""
    m = Phi_h.shape[1]
    if j != 2 or m <= _PLANE_POINTS:
        return Phi_h[..., : j + 1]
    idx = np.unique(np.linspace(0, m - 1, _PLANE_POINTS).astype(int))
    xp = array_namespace(Phi_h)
    return xp.take(Phi_h, xp.asarray(idx, device=_device(Phi_h)), axis=1)[..., :3]


def _higher_degrees(Fa, masks, max_degree, Phi, upper=1.0):
    """Degrees 2 to ``max_degree`` on every subset: [(G, A, S, j + 1)]."""
    xp = array_namespace(Fa)
    G, A, Kp, p = Fa.shape
    S = len(masks)
    # (G, A, S, K * p, p): the rows of the folds outside each subset zeroed;
    # formed only for three or more free coefficients (degree two comes from
    # per-fold sums).
    rows = np.repeat(np.asarray(masks, dtype=float), Kp // masks.shape[1], axis=1)
    Fs = None
    if Phi is not None:
        lam, alphas = _like(xp, Fa, Phi.lam), _like(xp, Fa, Phi.alphas)
        Phi_h = _like(xp, Fa, Phi.Phi)
        a_idx = xp.reshape(
            xp.broadcast_to(xp.arange(A, device=_device(Fa))[None, :, None], (G, A, S)),
            (-1,),
        )
    xs = []
    for j in range(2, max_degree + 1):
        if j == 2:
            T, c, rank = _degree_two_factors(Fa, masks, rows)
        else:
            if Fs is None:
                Fs = Fa[:, :, None, ...] * _like(xp, Fa, rows)[None, None, :, :, None]
            T, c, rank = _reduce(Fs[..., : j + 1], Fs[..., -1])
        x = _from_z(T, c)
        if Phi is not None:
            x = shrink_to_unit(
                xp.reshape(x, (-1, j + 1)),
                xp.reshape(T, (-1, j + 1, j)),
                xp.reshape(c, (-1, j)),
                xp.reshape(rank, (-1,)),
                _first_points(Phi_h, j),
                a_idx,
                lam,
                alphas,
                upper=upper,
            )
            x = xp.reshape(x, (G, A, S, j + 1))
        xs.append(x)
    return xs


# Degree two on a subset from per-fold sums where its two normalised columns
# are at least this far from collinear (r22 = sin of their angle); below, the
# products are formed from the subset's rows, as _reduce forms them.
_SUMS_R22 = 1e-3


def _degree_two_factors(Fa, masks, rows):
    """:func:`~skdistill._constrained._reduce` of degree two on every subset.

    ``_reduce(Fs[..., :3], Fs[..., -1])`` for the rows ``Fs`` of each
    subset's folds, without forming them: its products of the columns ``b1 =
    M_1 - M_0``, ``b2 = M_2 - M_0`` and ``r = v - M_0`` are sums over the
    subset's folds of per-fold sums. From sums, ``r22 = sqrt(1 - g^2)``
    (``g`` the cosine of the normalised columns) loses ``eps / r22`` to
    cancellation; where ``r22 < _SUMS_R22`` (about 2% of the problems on the
    benchmark's spectra) the products come from the rows, with the
    reorthogonalised Gram-Schmidt step of ``_reduce``. Returns ``T``, ``c``
    and ``rank`` of shape (G, A, S, ...).
    """
    xp = array_namespace(Fa)
    G, A, Kp, p = Fa.shape
    b1 = Fa[..., 1] - Fa[..., 0]
    b2 = Fa[..., 2] - Fa[..., 0]
    r = Fa[..., -1] - Fa[..., 0]
    s11, s22 = _subset_sum(b1, b1, masks), _subset_sum(b2, b2, masks)
    s12 = _subset_sum(b1, b2, masks)
    col = xp.stack([xp.sqrt(s11), xp.sqrt(s22)], axis=-1)
    nonzero = col > 0
    col = xp.where(nonzero, col, 1.0)
    g = s12 / (col[..., 0] * col[..., 1])
    t1 = _subset_sum(b1, r, masks) / col[..., 0]
    t2 = _subset_sum(b2, r, masks) / col[..., 1]
    r22 = xp.sqrt(xp.clip(1.0 - g * g, min=0.0))
    wr = t2 - g * t1
    near = nonzero[..., 0] & nonzero[..., 1] & (r22 < _SUMS_R22)
    if bool(xp.any(near)):  # nearly collinear: the products from the rows
        ig, ia, i_s = np.nonzero(to_numpy(near))
        dev = _device(Fa)
        Fn = xp.take(
            xp.reshape(Fa, (G * A, Kp, p)), xp.asarray(ig * A + ia, device=dev), axis=0
        )
        Fn = (
            Fn
            * xp.take(_like(xp, Fa, rows), xp.asarray(i_s, device=dev), axis=0)[
                :, :, None
            ]
        )
        B = (Fn[..., 1:3] - Fn[..., :1]) / col[near][:, None, :]
        prods = _two_products(B, Fn[..., -1] - Fn[..., 0], xp)
        for full, part in zip((g, r22, t1, t2, wr), prods, strict=True):
            full[near] = part
    N = _basis(3, xp, Fa)
    return _two_factors(g, r22, t1, t2, wr, col, nonzero, N, XI_RCOND, xp)
