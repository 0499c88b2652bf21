"""Exact leave-one-out of every pure distillate from one decomposition.

Notation (in the weighted coordinates ``y~ = sqrt(w) y``): ``H`` is the hat
matrix of the (intercept-augmented) ridge problem at ``alpha`` and
``E = I - H``. For row ``i`` write ``q_k = (H^k E y~)_i`` and
``Q_k = (H^k E)_ii``. The pure m-fold distillate trained without row ``i``
predicts ``G_m = y~_i + sum_{j <= m} c_j`` there (weighted), with::

    c_m = -(q_m + sum_{j < m} Q_{m-j} c_j) / Q_0.

This follows from the self-stability of ridge at every step: the model
trained without row ``i`` is the one trained on all rows with row ``i``'s
label replaced by its own leave-one-out prediction, and the k-th teacher's
labels differ from ``H^k y~`` only at row ``i``. Each ``q_k``, ``Q_k`` is
the spectral filter ``h^k (1 - h)`` with ``1 - h = alpha / (lam + alpha)``
formed directly, never as a difference: in the basis ``U`` of the centred
data's left singular vectors, ``H^k E = U diag(h^k (1 - h)) U^T`` for
``k >= 1`` and ``E = N + U diag(1 - h) U^T``, with ``N`` the projector on
what neither ``U`` nor the intercept spans. As ``0 <= Q_k <= Q_0``, the
recursion does not amplify round-off.

All alphas of a batch and all targets are one matrix product; the rows are
grouped into interleaved blocks (row ``i`` in block ``i % n_blocks``) whose
triangular factors serve the selection as folds.
"""

import numpy as np

from ._cv_closed_form import FoldStatistics
from ._filter import pure_filters, shrinkage
from ._spectral import _CentredData, _eigh, rank_rtol

__all__ = [
    "LooBasis",
    "loo_basis",
    "loo_residuals",
    "loo_statistics",
    "resolution",
]

# Bytes of working arrays per batch of alphas (the (n, alphas, steps, t) stack).
_BATCH_BYTES = 64 * 2**20

# A prediction of a filter xi_bar carries a round-off of at most about
# eps * kappa * |xi_bar|_1 * max|y| (kappa = 1 + lam_max / alpha); this is the
# margin the resolution bound puts on that order of magnitude.
ROUND_OFF_FACTOR = 1e3


class LooBasis:
    """One decomposition of all rows, what every alpha's leave-one-out reads.

    Attributes
    ----------
    lam : ndarray of shape (r,)
        Eigenvalues kept (above the rank cut-off).
    U : ndarray of shape (n, r)
        Orthonormal basis of the centred, weighted data (``sqrt(w)``-orthogonal
        when there is an intercept).
    UtY : ndarray of shape (r, t)
    Y : ndarray of shape (n, t)
        The targets, float64.
    y_tilde : ndarray of shape (n, t)
        ``sqrt(w) * Y``.
    null_diag : ndarray of shape (n,)
        ``N_ii``.
    null_y : ndarray of shape (n, t) or None
        ``N y~`` (None when it is zero).
    w : ndarray of shape (n,)
    """

    def __init__(self, lam, U, UtY, Y, null_diag, null_y, w):
        self.lam, self.U, self.UtY, self.Y = lam, U, UtY, Y
        self.null_diag, self.null_y, self.w = null_diag, null_y, w
        self.y_tilde = np.sqrt(w)[:, None] * Y
        self.U2 = U**2

    @property
    def lam_max(self):
        return float(self.lam.max(initial=0.0))


def _left_basis(data, X):
    """Eigenvalues and left singular vectors of the centred data, all of them.

    The kernel (n x n) form when ``n <= d``; the SVD of the centred data when
    it is dense and tall; the Gram form for sparse tall data.
    """
    n, d = X.shape
    if n <= d:
        return _eigh(data.kernel())
    if not data.sparse:
        U, s, _ = np.linalg.svd(
            np.asarray(data.Xc, dtype=np.float64), full_matrices=False
        )
        return s**2, U
    lam, V = _eigh(data.gram())
    XV = np.asarray(data.Xs @ V) - np.outer(data.c, data.X_offset @ V)
    return lam, XV / np.sqrt(np.where(lam > 0, lam, 1.0))


def loo_basis(X, Y, sample_weight, *, fit_intercept):
    """:class:`LooBasis` of ``(X, Y)``: the only decomposition leave-one-out needs."""
    data = _CentredData(X, Y, sample_weight, fit_intercept)
    n, d = X.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    lam, U = _left_basis(data, X)
    lam = np.asarray(lam, dtype=np.float64)
    keep = lam > rank_rtol("gram", (n, d), X.dtype, lam.dtype) * lam.max(initial=0)
    lam, U = lam[keep], np.asarray(U, dtype=np.float64)[:, keep]
    Yc = np.asarray(data.Yc, dtype=np.float64)
    UtY = U.T @ Yc
    positive = w > 0
    if lam.size >= int(positive.sum()) - int(fit_intercept):
        # U and the intercept span every row of positive weight: N is the
        # projector on the rows of zero weight, exactly.
        null_diag, null_y = np.where(positive, 0.0, 1.0), None
    else:
        lead = w / w.sum() if fit_intercept else np.zeros(n)
        null_diag = np.maximum(1.0 - lead - np.sum(U**2, axis=1), 0.0)
        null_y = Yc - U @ UtY
    return LooBasis(lam, U, UtY, np.asarray(Y, np.float64), null_diag, null_y, w)


def _step_filters(lam, alphas, max_steps):
    """``h^k (1 - h)`` for k = 0..max_steps: (n_alphas, max_steps + 1, r)."""
    h = shrinkage(lam[None, :], alphas[:, None])
    e = shrinkage(alphas[:, None], lam[None, :])  # 1 - h, without cancellation
    powers = np.concatenate(
        [
            np.ones_like(h)[:, None, :],
            np.moveaxis(pure_filters(h, max_steps - 1), -1, 1),
        ],
        axis=1,
    )
    return powers * e[:, None, :]


def loo_residuals(basis, alphas, max_steps):
    """Weighted leave-one-out residuals of the pure distillates at ``alphas``.

    Parameters
    ----------
    basis : LooBasis
    alphas : ndarray of shape (a,)
    max_steps : int

    Returns
    -------
    ndarray of shape (n, a, max_steps + 1, t)
        ``sqrt(w_i) (y_i - g_m)``, with ``g_m`` the prediction at row ``i``
        of the pure m-fold distillate trained on the other rows (for a row of
        zero weight, 0). Their squares are the weighted squared errors.
    """
    alphas = np.asarray(alphas, dtype=np.float64)
    n, t = basis.y_tilde.shape
    out = np.empty((max_steps + 1, n, alphas.size, t))
    _residuals_into(out, basis, alphas, max_steps, *_scaled(basis, np.ones(t)))
    return np.moveaxis(out, 0, 2)


def _scaled(basis, scale, targets=slice(None)):
    """What the residuals read of ``targets`` divided by ``scale`` (t,):
    ``U^T y`` (r, t) and ``N y~`` (n, t) or None."""
    null_y = basis.null_y
    return basis.UtY[:, targets] / scale, (
        None if null_y is None else null_y[:, targets] / scale
    )


def _residuals_into(out, basis, alphas, max_steps, UtY, null_y):
    """The residuals of :func:`loo_residuals` of the targets that ``UtY`` and
    ``null_y`` hold (:func:`_scaled`), into ``out[:, :n]`` of shape
    (max_steps + 1, >= n, a, t)."""
    K1, n, a, t = max_steps + 1, basis.U.shape[0], alphas.size, UtY.shape[1]
    F = _step_filters(basis.lam, alphas, max_steps)  # (a, K1, r)
    Q = np.einsum("nr,akr->kna", basis.U2, F)  # (K1, n, a)
    Q[0] += basis.null_diag[:, None]
    Q0 = Q[0]
    inv = np.where(Q0 > 0, 1.0 / np.where(Q0 > 0, Q0, 1.0), 0.0)[:, :, None]
    scratch = np.empty((n, a, t)) if K1 > 1 else None
    # With d_m = -c_m: d_m = (q_m - sum_{j<m} Q_{m-j} d_j) / Q_0, residual
    # sum_{j<=m} d_j; q_m = U diag(F[:, m]) U^T y~ is one product per step.
    for m in range(K1):
        d = out[m, :n]
        M = F[:, m, :].T[:, :, None] * UtY[:, None, :]  # (r, a, t)
        np.matmul(basis.U, M.reshape(-1, a * t), out=d.reshape(n, a * t))
        if m == 0 and null_y is not None:
            d += null_y[:, None, :]
        for j in range(m):
            scratch = np.multiply(Q[m - j][:, :, None], out[j, :n], out=scratch)
            d -= scratch
        d *= inv
    for m in range(1, K1):
        out[m, :n] += out[m - 1, :n]


def _block_r_factors(cols, n_blocks, last=None):
    """R factors (p x p) of every block of rows of a stack of columns.

    ``cols``: (p, n, B), its rows padded with zeros to a multiple of
    ``n_blocks`` (and overwritten). Row ``i`` belongs to block
    ``i % n_blocks``; returns (n_blocks, B, p, p), upper triangular.
    ``last``: (n, B') with ``B`` a multiple of ``B'``, the last column where
    it repeats along ``B`` (``p >= 2``; ``cols[-1]`` is then only written,
    never read). Modified
    Gram-Schmidt over all blocks and columns at once: its R factor is that
    of a backward-stable QR (Bjorck and Paige), which is all the selection
    reads.
    """
    p, n, B = cols.shape
    if n % n_blocks:
        pad = np.zeros((p, n_blocks - n % n_blocks, B))
        cols = np.concatenate([cols, pad], axis=1)
        if last is not None:
            last = np.concatenate([last, pad[0, :, : last.shape[1]]])
        n = cols.shape[1]
    a = cols.reshape(p, n // n_blocks, n_blocks, B)
    R = np.zeros((n_blocks, B, p, p))
    scratch = np.empty(a.shape[1:]) if p > 2 or last is None else None
    for j in range(p):
        norm2 = np.einsum("jbx,jbx->bx", a[j], a[j])
        rjj = np.sqrt(norm2)
        R[:, :, j, j] = rjj
        inv = np.where(norm2 > 0, 1.0 / np.where(norm2 > 0, norm2, 1.0), 0.0)
        for k in range(j + 1, p):
            if k == p - 1 and j == 0 and last is not None:
                y = last.reshape(n // n_blocks, n_blocks, 1, -1)
                aj = a[j].reshape(y.shape[:2] + (-1, y.shape[-1]))
                dot = np.einsum("jbat,jbat->bat", aj, np.broadcast_to(y, aj.shape))
                dot = dot.reshape(n_blocks, B)
                np.multiply((dot * inv)[None], a[j], out=a[k])
                np.subtract(np.broadcast_to(y, aj.shape), a[k].reshape(aj.shape),
                            out=a[k].reshape(aj.shape))  # fmt: skip
            else:
                dot = np.einsum("jbx,jbx->bx", a[j], a[k])
                scratch = np.multiply((dot * inv)[None], a[j], out=scratch)
                a[k] -= scratch
            R[:, :, j, k] = np.where(rjj > 0, dot / np.where(rjj > 0, rjj, 1.0), 0.0)
    return R


def _batches(n, t, K1):
    """Targets and alphas per batch, so that one batch's columns (K1 + 1, n,
    alphas, targets) hold about :data:`_BATCH_BYTES`."""
    per_target = 8 * n * (K1 + 1)
    targets = max(1, min(t, _BATCH_BYTES // per_target))
    return targets, max(1, int(_BATCH_BYTES // (per_target * targets)))


def loo_statistics(
    X,
    Y,
    sample_weight,
    *,
    fit_intercept,
    alphas,
    max_steps,
    scoring="neg_mean_squared_error",
    n_blocks=10,
    basis=None,
):
    """Exact leave-one-out statistics of every pure distillate, in blocks of rows.

    From one decomposition of all the data (:func:`loo_basis`) and the
    residuals of :func:`loo_residuals`. The k-step student trained without
    row ``i`` is the combination ``sum_m xi_bar_m g_m`` of the pure
    distillates', so its leave-one-out error is a quadratic in ``xi_bar``.
    Rows are grouped into ``n_blocks`` interleaved blocks (row ``i`` in block
    ``i % n_blocks``), which serve the selection as folds: each block's
    factors, normalised so that the mean over blocks is the leave-one-out
    mean squared error (or one minus R^2) of all rows.

    Returns
    -------
    stats : list of FoldStatistics
    n_train : float
        The weight sum of a leave-one-out training set, on average.
    """
    if basis is None:
        basis = loo_basis(X, Y, sample_weight, fit_intercept=fit_intercept)
    y_tilde, w = basis.y_tilde, basis.w
    n, t = y_tilde.shape
    W = w.sum()
    K1 = max_steps + 1
    alphas = np.asarray(alphas, dtype=np.float64)
    n_b = min(n_blocks, n)
    norm = _block_norm(basis, scoring, n_b)
    root = np.sqrt(norm)
    R = np.empty((n_b, alphas.size, t, K1 + 1, K1 + 1))
    n_pad = -(-n // n_b) * n_b
    y_unit = np.zeros((n_pad, t))
    y_unit[:n] = y_tilde / root
    t_step, a_step = _batches(n, t, K1)
    # One buffer for every batch's columns (fresh pages per batch cost as
    # much as filling them).
    work = np.empty((K1 + 1) * n_pad * min(a_step, alphas.size) * t_step)
    for t0 in range(0, t, t_step):
        ts = slice(t0, min(t, t0 + t_step))
        y_ts = np.ascontiguousarray(y_unit[:, ts])
        scaled = _scaled(basis, root[ts], ts)
        for a0 in range(0, alphas.size, a_step):
            batch = alphas[a0 : a0 + a_step]
            R[:, a0 : a0 + batch.size, ts] = _batch_factors(
                basis, batch, max_steps, y_ts, scaled, n_b, work
            )
    stats = []
    for b in range(n_b):
        scale = np.sum(y_tilde[b::n_b] ** 2, axis=0) / norm
        stats.append(FoldStatistics(R[b], norm, scale, basis.lam))
    return stats, W - W / n


def _batch_factors(basis, alphas, max_steps, y_unit, scaled, n_b, work):
    """Blocks' factors (n_b, a, t', K1 + 1, K1 + 1) of one batch of alphas and
    targets: of ``[y~ - residual_0, ..., y~ - residual_K, y~] / root``.
    ``y_unit``: (n_pad, t') the batch's ``y~ / root``, zero padded;
    ``scaled``: their :func:`_scaled`; ``work``: a flat buffer of at least
    the batch's columns."""
    n, K1, a = basis.U.shape[0], max_steps + 1, alphas.size
    t = y_unit.shape[1]
    shape = (K1 + 1, y_unit.shape[0], a, t)
    cols = work[: np.prod(shape)].reshape(shape)
    cols[:, n:] = 0.0  # the padding rows
    _residuals_into(cols, basis, alphas, max_steps, *scaled)
    if K1 == 1:
        return _ridge_factors(cols, y_unit, n_b).reshape(n_b, a, t, 2, 2)
    for m in range(K1):  # the pure distillates' predictions, y~ - residual
        np.subtract(y_unit[:n, None, :], cols[m, :n], out=cols[m, :n])
    R = _block_r_factors(cols.reshape(K1 + 1, -1, a * t), n_b, last=y_unit)
    return R.reshape(n_b, a, t, K1 + 1, K1 + 1)


def _ridge_factors(cols, y_unit, n_b):
    """Blocks' factors (n_b, B, 2, 2) of ``[z, y]`` from ridge's residuals.

    ``cols``: (2, n_pad, a, t), the residuals ``e`` in ``cols[0]`` (zero
    padded); ``cols[1]`` is overwritten with the predictions ``z = y - e``.
    With ``R_e`` the factor of ``[z, e]`` (``|z|``, ``z.e / |z|`` and the
    norm of what of ``e`` is orthogonal to ``z``), ``[z, y] = [z, e] [[1,
    1], [0, 1]]`` gives ``R = R_e [[1, 1], [0, 1]]``: three sums per block,
    and the error of ``xi_bar = (1,)``, ``|R (1, -1)|^2``, is ``|e|^2``
    without cancellation.
    """
    _, n_pad, a, t = cols.shape
    e = cols[0].reshape(n_pad // n_b, n_b, a * t)
    z = cols[1].reshape(n_pad // n_b, n_b, a * t)
    np.subtract(y_unit[:, None, :], cols[0], out=cols[1])
    zz = np.einsum("jbx,jbx->bx", z, z)
    ze = np.einsum("jbx,jbx->bx", z, e)
    ee = np.einsum("jbx,jbx->bx", e, e)
    r00 = np.sqrt(zz)
    b = np.where(r00 > 0, ze / np.where(r00 > 0, r00, 1.0), 0.0)
    R = np.zeros((n_b, a * t, 2, 2))
    R[:, :, 0, 0] = r00
    R[:, :, 0, 1] = r00 + b
    R[:, :, 1, 1] = np.sqrt(np.maximum(ee - b * b, 0.0))
    return R


def _block_norm(basis, scoring, n_b):
    """(t,) what each block's error divides by, so that blocks average to the score."""
    w, Y = basis.w, basis.Y
    W = w.sum()
    if scoring != "r2":
        return np.full(Y.shape[1], W / n_b)
    dev = Y - (w @ Y) / W
    norm = np.einsum("nt,n,nt->t", dev, w, dev) / n_b
    return np.where(norm > 0, norm, 1.0)


def resolution(basis, alphas, scoring, n_blocks=10):
    """Round-off per unit ``|xi_bar|_1`` of leave-one-out errors: (a, t).

    ``ROUND_OFF_FACTOR * eps * kappa * max|y|`` with ``kappa = 1 + lam_max /
    alpha`` bounds the error of every leave-one-out prediction of a filter
    with ``|xi_bar|_1 = 1``; it is returned in the units of the statistics'
    errors (the square root of an error, as a prediction error is), so that
    an error ``err`` of a filter ``xi_bar`` is resolved to
    ``2 sqrt(err) e + e^2`` with ``e = resolution * max(|xi_bar|_1, 1)``.
    """
    w = basis.w
    n_b = min(n_blocks, w.shape[0])
    top = np.abs(basis.Y[w > 0]).max(axis=0, initial=0.0)  # (t,)
    kappa = 1.0 + basis.lam_max / np.asarray(alphas, dtype=np.float64)
    units = np.sqrt(w.sum() / (n_b * _block_norm(basis, scoring, n_b)))
    eps = np.finfo(np.float64).eps
    return ROUND_OFF_FACTOR * eps * kappa[:, None] * (top * units)[None, :]
