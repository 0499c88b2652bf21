"""Exact cross-validation of spectral-filter distillates (DESIGN.md section 2).

For one training fold decomposed once, the centred validation predictions of
the filter ``q(lam)`` are ``A @ diag(q) @ proj``. For a fixed ``alpha`` the
k-step student's predictions are ``Z @ xi_bar`` where column ``m`` of ``Z``
holds the predictions of the pure m-fold distillate, ``q_m = h^m / (lam +
alpha)``. The validation error is therefore a quadratic in ``xi_bar``; the
per-fold quadratics are summed and minimised under ``sum(xi_bar) = 1`` by one
small constrained least-squares solve.

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

from ._spectral import decompose

__all__ = [
    "FoldStatistics",
    "PreparedFold",
    "fold_statistics",
    "prepare_fold",
    "prepare_spectral_fold",
    "solve_xi_bar",
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
    stacked = np.empty((t, n_val, K1 + 1))
    for a, alpha in enumerate(alphas):
        den = lam + alpha
        safe = np.where(den > 0, den, 1.0)
        h = np.where(den > 0, lam / safe, 0.0)
        Q = np.where(den > 0, h[None, :] ** powers / safe, 0.0)  # (K1, r)
        # M[:, m, t] = q_m * proj[:, t] / sqrt(norm[t]); Z = Aw @ M.
        M = (Q.T[:, :, None] * (proj / np.sqrt(norm))[:, None, :]).reshape(lam.size, -1)
        Z = (Aw @ M).reshape(n_val, K1, t)
        stacked[:, :, :K1] = Z.transpose(2, 0, 1)
        stacked[:, :, K1] = rw.T
        R[a] = _r_factor(stacked, K1 + 1)
    return FoldStatistics(R, norm, scale)


def _r_factor(M, p):
    """Square R factors (p x p) of a stack of tall or short matrices."""
    n = M.shape[-2]
    if n >= p:
        return np.linalg.qr(M, mode="r")
    R = np.zeros(M.shape[:-2] + (p, p))
    R[..., :n, :] = np.linalg.qr(M, mode="r")
    return R


# Relative singular-value cutoff of the xi_bar solve, on column-normalised
# factors. At small alpha every h is close to 1, the columns h^m are nearly
# collinear and the exact optimum can have |xi_bar| of 1e14: a polynomial that
# fits validation noise and that the refit (whose h differ slightly) cannot
# reproduce. Truncating directions below 1e-8 keeps |xi_bar| moderate (1e4 on
# the Airfoil data) at a negligible cost in CV error; every reported error is
# still evaluated exactly at the returned xi_bar.
XI_RCOND = 1e-8


def _constrained_lstsq(M, v):
    """Minimise ``|M x - v|`` subject to ``sum(x) = 1`` (minimum-norm solution)."""
    k1 = M.shape[1]
    if k1 == 1:
        return np.ones(1)
    # x = e_0 + N c, with N spanning {sum = 0}: columns e_m - e_0.
    N = np.vstack([-np.ones(k1 - 1), np.eye(k1 - 1)])
    MN = M @ N
    col = np.linalg.norm(MN, axis=0)
    col = np.where(col > 0, col, 1.0)
    c = np.linalg.lstsq(MN / col, v - M[:, 0], rcond=XI_RCOND)[0] / col
    x = N @ c
    x[0] += 1.0
    return x


def _residuals(stats, a, x, targets):
    """Per-fold normalised error ``mean_t |R (x, -1)|^2`` at alpha index ``a``."""
    v = np.zeros(stats[0].R.shape[-1])
    v[: x.size] = x
    v[-1] = -1.0
    return np.array(
        [np.mean(np.sum((f.R[a][targets] @ v) ** 2, axis=-1)) for f in stats]
    )


def solve_xi_bar(stats, a, k, targets):
    """Cross-validated optimum of ``xi_bar`` for the alpha index ``a`` and k steps.

    Returns ``xi_bar`` (k + 1,) and the per-fold errors (normalised as the
    score expects, averaged over ``targets``) at it, evaluated as residual
    norms. The solution is never worse than the best of its own
    lower-degree optima padded with zeros (in particular, than ridge).
    """
    K1 = stats[0].R.shape[-1] - 1
    blocks = [f.R[a][t] for f in stats for t in targets]  # (K1+1, K1+1) each
    M_all = np.vstack([b[:, :K1] for b in blocks])
    v = np.concatenate([b[:, K1] for b in blocks])
    best, best_err = None, np.inf
    for j in range(k + 1):
        x = np.zeros(k + 1)
        x[: j + 1] = _constrained_lstsq(M_all[:, : j + 1], v)
        err = _residuals(stats, a, x, targets)
        if err.sum() < best_err:
            best, best_err, best_folds = x, err.sum(), err
    return best, best_folds
