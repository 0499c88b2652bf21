"""Exact cross-validation of spectral-filter distillates (docs/user_guide/design.rst).

For one training fold decomposed once, the centred validation predictions of
the filter ``q(lam)`` are ``A @ diag(q) @ proj``. For a fixed ``alpha`` the
k-step student's predictions are ``Z @ xi_bar`` where column ``m`` of ``Z``
holds the predictions of the pure m-fold distillate, ``q_m = h^m / (lam +
alpha)``. The validation error is therefore a quadratic in ``xi_bar``; the
per-fold quadratics are summed and minimised under ``sum(xi_bar) = 1`` by one
small constrained least-squares solve
(:mod:`skdistill._cv_engine`).

Numerics: the columns of ``Z`` are nearly collinear when ``h`` is close to 0
or 1, and the optimal ``xi_bar`` can then be large. Normal equations
(``Z^T Z``) would square that conditioning and the expanded quadratic
``|r|^2 - 2 b.x + x.S.x`` cancels catastrophically, reporting gains that
honest refits do not have. The per-fold statistics are therefore the
triangular factors ``R`` of thin QR decompositions of ``[Z, r]``: as small as
``Z^T Z`` (and as easy to pool across chunks or folds), but backward stable,
with every error evaluated as a residual norm ``|R @ (x, -1)|^2``.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.metaestimators import _safe_split

from ._filter import pure_filters
from ._spectral import _CentredData, _eigh, decompose

__all__ = [
    "FoldStatistics",
    "PreparedFold",
    "fold_statistics",
    "loo_statistics",
    "prepare_fold",
    "prepare_spectral_fold",
]


@dataclass
class FoldStatistics:
    """Validation error of one fold as triangular factors, for every alpha.

    ``R[a, t]`` is the R factor of ``[Z, r] / sqrt(norm[t])`` (rows weighted by
    ``sqrt(sample_weight)``) for ``alphas[a]`` and target ``t``, so that the
    normalised validation error of ``xi_bar`` is ``|R[a, t] @ (xi_bar, -1)|^2``
    (zeros padding ``xi_bar`` up to ``K + 1``). ``norm[t]`` is what the
    per-fold score divides by: the weight sum for the mean squared error, the
    total sum of squares for R^2.
    """

    R: np.ndarray  # (n_alphas, t, K + 2, K + 2)
    norm: np.ndarray  # (t,)
    scale: np.ndarray  # (t,): |r|^2 / norm, the error of predicting the mean
    lam: np.ndarray  # (r,): the training fold's eigenvalues


@dataclass
class PreparedFold:
    """One decomposed training fold and its validation data, in float64."""

    lam: np.ndarray  # (r,)
    A: np.ndarray  # (n_val, r): centred validation data in the fold's basis
    proj: np.ndarray  # (r, t)
    r: np.ndarray  # (n_val, t): validation targets minus the fold's y mean
    y_val: np.ndarray  # (n_val, t)
    w_val: np.ndarray  # (n_val,)
    n_train: float  # weight sum of the training fold

    @property
    def lam_max(self):
        return float(self.lam.max()) if self.lam.size else 0.0


def _validation_basis(X_val, spectrum):
    """Centred validation data in the fold's basis, ``(X_val - mean) @ basis``."""
    A = safe_sparse_dot(X_val, spectrum.basis, dense_output=True)
    return A - spectrum.X_offset @ spectrum.basis


def prepare_fold(X, Y, sample_weight, train, test, *, fit_intercept, solver):
    """Decompose one training fold (the only expensive step of the search)."""
    w_tr = None if sample_weight is None else sample_weight[train]
    spectrum = decompose(
        X[train],
        Y[train],
        sample_weight=w_tr,
        fit_intercept=fit_intercept,
        solver=solver,
    )
    y_val = Y[test].astype(np.float64)
    return PreparedFold(
        lam=spectrum.lam.astype(np.float64),
        A=_validation_basis(X[test], spectrum).astype(np.float64),
        proj=spectrum.proj.astype(np.float64),
        r=y_val - spectrum.y_offset,
        y_val=y_val,
        w_val=(
            np.ones(y_val.shape[0]) if sample_weight is None else sample_weight[test]
        ),
        n_train=float(len(train) if w_tr is None else w_tr.sum()),
    )


def prepare_spectral_fold(estimator, X, Y, sample_weight, train, test):
    """Decompose one training fold with ``estimator._spectral_fit``.

    For estimators (such as :class:`KernelSelfDistillationRegressor`) whose
    spectrum maps validation samples into the fold's basis themselves, with
    ``predict_basis``. Precomputed kernels are sliced as cross-validation
    slices them (rows and training columns).
    """
    w_tr = None if sample_weight is None else sample_weight[train]
    X_tr, Y_tr = _safe_split(estimator, X, Y, train)
    X_val, y_val = _safe_split(estimator, X, Y, test, train)
    spectrum = estimator._spectral_fit(X_tr, Y_tr, w_tr)
    y_val = np.asarray(y_val, dtype=np.float64)
    return PreparedFold(
        lam=spectrum.lam.astype(np.float64),
        A=spectrum.predict_basis(X_val).astype(np.float64),
        proj=spectrum.proj.astype(np.float64),
        r=y_val - spectrum.y_offset,
        y_val=y_val,
        w_val=(
            np.ones(y_val.shape[0]) if sample_weight is None else sample_weight[test]
        ),
        n_train=float(len(train) if w_tr is None else w_tr.sum()),
    )


def fold_statistics(fold, *, alphas, max_steps, scoring="neg_mean_squared_error"):
    """Validation factors of a prepared fold for every alpha and up to K steps."""
    lam, A, proj, r, w_val = fold.lam, fold.A, fold.proj, fold.r, fold.w_val
    alphas = np.asarray(alphas, dtype=np.float64)
    n_val, t, K1 = r.shape[0], r.shape[1], max_steps + 1
    wsum = w_val.sum()
    if scoring == "r2":
        mean = (w_val @ fold.y_val) / wsum
        dev = fold.y_val - mean
        norm = np.einsum("nt,n,nt->t", dev, w_val, dev)
        norm = np.where(norm > 0, norm, 1.0)
    else:
        norm = np.full(t, wsum)
    sw = np.sqrt(w_val)[:, None]
    rw = (sw * r) / np.sqrt(norm)  # (n_val, t)
    Aw = sw * A
    scale = (rw**2).sum(axis=0)
    R = np.empty((alphas.size, t, K1 + 1, K1 + 1))
    powers = np.arange(K1)[:, None]
    if n_val > lam.size + 1:
        # Fewer rows, same factors: with Aw = Qa Ra, [Z, r] = [Qa, q] @
        # [[Ra M, Qa^T r], [0, |r - Qa Qa^T r|]] for an orthonormal [Qa, q],
        # so the (r + 1)-row matrix on the right has the R factor of the
        # n_val-row one (up to row signs, which no error sees).
        Qa, Aw = np.linalg.qr(Aw)
        inside = Qa.T @ rw
        perp = np.sqrt(np.sum((rw - Qa @ inside) ** 2, axis=0))
        rw = np.vstack([inside, perp[None, :]])
        n_val = lam.size + 1
    stacked = np.zeros((t, n_val, K1 + 1))
    for a, alpha in enumerate(alphas):
        den = lam + alpha
        safe = np.where(den > 0, den, 1.0)
        h = np.where(den > 0, lam / safe, 0.0)
        Q = np.where(den > 0, h[None, :] ** powers / safe, 0.0)  # (K1, r)
        # M[:, m, t] = q_m * proj[:, t] / sqrt(norm[t]); Z = Aw @ M.
        M = (Q.T[:, :, None] * (proj / np.sqrt(norm))[:, None, :]).reshape(lam.size, -1)
        Z = (Aw @ M).reshape(-1, K1, t)
        stacked[:, : Z.shape[0], :K1] = Z.transpose(2, 0, 1)
        stacked[:, :, K1] = rw.T
        R[a] = _r_factor(stacked, K1 + 1)
    return FoldStatistics(R, norm, scale, lam)


def _r_factor(M, p):
    """Square R factors (p x p) of a stack of tall or short matrices."""
    n = M.shape[-2]
    if n >= p:
        return np.linalg.qr(M, mode="r")
    R = np.zeros(M.shape[:-2] + (p, p))
    R[..., :n, :] = np.linalg.qr(M, mode="r")
    return R


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
):
    """Exact leave-one-out statistics of every pure distillate, in blocks of rows.

    From one decomposition of all the data. With the hat matrix ``H`` of the
    (weighted, intercept-augmented) ridge problem, the prediction at row ``i``
    of the pure m-fold distillate trained without row ``i``, ``g_m``, follows
    from the self-stability of ridge (training on all rows with row ``i``'s
    label replaced by the leave-one-out prediction gives the leave-one-out
    model) applied at every step::

        g_m (1 - H_ii) = (H^{m+1} y)_i + sum_{j<m} c_j (H^{m-j+1})_ii
                         - H_ii g_{m-1},        c_j = g_j - g_{j-1},

    with ``g_{-1} = y_i``. The k-step student trained without row ``i`` is the
    same combination ``sum_m xi_bar_m g_m`` of these, so its leave-one-out
    error is again a quadratic in ``xi_bar``. Rows are grouped into
    ``n_blocks`` interleaved blocks (row ``i`` in block ``i % n_blocks``),
    which serve the selection as folds: each block's factors, normalised so
    that the mean over blocks is the leave-one-out mean squared error (or one
    minus R^2) of all rows.

    Returns
    -------
    stats : list of FoldStatistics
    n_train : float
        The weight sum of a leave-one-out training set, on average.
    """
    data = _CentredData(X, Y, sample_weight, fit_intercept)
    n, d = X.shape
    t = Y.shape[1]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    sw = np.sqrt(w)
    W = w.sum()
    if n <= d:
        lam, U = _eigh(data.kernel())
    else:
        lam, V = _eigh(data.gram())
        if data.sparse:
            XV = np.asarray(data.Xs @ V) - np.outer(data.c, data.X_offset @ V)
        else:
            XV = data.Xc @ V
        U = XV / np.sqrt(np.where(lam > 0, lam, 1.0))
    keep = lam > max(n, d) * np.finfo(np.float64).eps * max(lam.max(initial=0), 0)
    lam, U = lam[keep].astype(np.float64), U[:, keep].astype(np.float64)
    Yc = np.asarray(data.Yc, dtype=np.float64)
    y_tilde = sw[:, None] * np.asarray(Y, dtype=np.float64)
    UtY = U.T @ Yc  # (r, t)
    U2 = U**2
    const_p = sw[:, None] * np.asarray(data.y_offset, float)[None, :]
    const_d = w / W if fit_intercept else np.zeros(n)
    K1 = max_steps + 1
    alphas = np.asarray(alphas, dtype=np.float64)
    blocks = [np.arange(b, n, n_blocks) for b in range(min(n_blocks, n))]
    n_b = len(blocks)
    if scoring == "r2":
        mean = (w @ Y) / W
        norm = np.einsum("nt,n,nt->t", Y - mean, w, Y - mean) / n_b
        norm = np.where(norm > 0, norm, 1.0)
    else:
        norm = np.full(t, W / n_b)
    R = np.zeros((n_b, alphas.size, t, K1 + 1, K1 + 1))
    for a, alpha in enumerate(alphas):
        h = lam / (lam + alpha)
        hp = pure_filters(h, K1 - 1).T  # (K1, r): h^1..h^K1
        P = const_p[None] + np.einsum("nr,pr,rt->pnt", U, hp, UtY)  # (K1, n, t)
        D = const_d[None, :] + hp @ U2.T  # (K1, n)
        one_minus = np.maximum(1.0 - D[0], 1e-12)[:, None]
        g_prev, cs, G = y_tilde, [], np.empty((n, K1, t))
        for m in range(K1):
            num = P[m] - D[0][:, None] * g_prev
            for j, c in enumerate(cs):
                num = num + c * D[m - j][:, None]
            g = num / one_minus
            cs.append(g - g_prev)
            G[:, m] = g
            g_prev = g
        for b, rows in enumerate(blocks):
            stacked = np.concatenate([G[rows], y_tilde[rows][:, None, :]], axis=1)
            stacked = stacked.transpose(2, 0, 1) / np.sqrt(norm)[:, None, None]
            R[b, a] = _r_factor(stacked, K1 + 1)
    stats = []
    for b, rows in enumerate(blocks):
        scale = np.sum(y_tilde[rows] ** 2, axis=0) / norm
        stats.append(FoldStatistics(R[b], norm, scale, lam))
    return stats, W - W / n
