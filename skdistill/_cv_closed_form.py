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
import scipy.sparse as sp
from sklearn.externals.array_api_compat import array_namespace
from sklearn.externals.array_api_compat import device as _device
from sklearn.utils import _safe_indexing
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.metaestimators import _safe_split

from ._filter import pure_inverse_filters
from ._spectral import decompose

__all__ = [
    "FoldStatistics",
    "PreparedFold",
    "fold_statistics",
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
        if not self.lam.shape[0]:
            return 0.0
        return float(array_namespace(self.lam).max(self.lam))


def _validation_basis(X_val, spectrum):
    """Centred validation data in the fold's basis, ``(X_val - mean) @ basis``."""
    basis = spectrum.basis
    if sp.issparse(X_val) or isinstance(X_val, np.ndarray):
        A = safe_sparse_dot(X_val, basis, dense_output=True)
    else:
        A = array_namespace(basis).astype(X_val, basis.dtype) @ basis  # one dtype
    return A - spectrum.X_offset @ basis


def _rows(A, index):
    """Rows ``index`` of ``A`` (None stays None), in ``A``'s namespace."""
    return None if A is None else _safe_indexing(A, index)


def _float64(a):
    """``a`` as float64 in its own namespace and on its device."""
    xp = array_namespace(a)
    return xp.astype(a, xp.float64, copy=False)


def prepare_fold(X, Y, sample_weight, train, test, *, fit_intercept, solver):
    """Decompose one training fold (the only expensive step of the search).

    Dense arrays of an array API namespace stay in it and on their device;
    the fold's arrays are float64 there.
    """
    w_tr = _rows(sample_weight, train)
    spectrum = decompose(
        _rows(X, train),
        _rows(Y, train),
        sample_weight=w_tr,
        fit_intercept=fit_intercept,
        solver=solver,
    )
    y_val = _float64(_rows(Y, test))
    xp = array_namespace(y_val)
    return PreparedFold(
        lam=_float64(spectrum.lam),
        A=_float64(_validation_basis(_rows(X, test), spectrum)),
        proj=_float64(spectrum.proj),
        r=y_val - _float64(spectrum.y_offset),
        y_val=y_val,
        w_val=(
            xp.ones(y_val.shape[0], dtype=xp.float64, device=_device(y_val))
            if sample_weight is None
            else _float64(_rows(sample_weight, test))
        ),
        n_train=float(len(train) if w_tr is None else array_namespace(w_tr).sum(w_tr)),
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
        n_train=float(len(train) if w_tr is None else array_namespace(w_tr).sum(w_tr)),
    )


def fold_statistics(fold, *, alphas, max_steps, scoring="neg_mean_squared_error"):
    """Validation factors of a prepared fold for every alpha and up to K steps.

    In the namespace and on the device of the fold's arrays.
    """
    lam, A, proj, r, w_val = fold.lam, fold.A, fold.proj, fold.r, fold.w_val
    xp = array_namespace(A, r)
    dev = _device(r)
    alphas = [float(a) for a in np.asarray(alphas, dtype=np.float64)]
    n_val, t, K1 = r.shape[0], r.shape[1], max_steps + 1
    n_lam = lam.shape[0]
    wsum = xp.sum(w_val)
    if scoring == "r2":
        mean = (w_val @ fold.y_val) / wsum
        dev_y = fold.y_val - mean
        norm = xp.sum(dev_y * w_val[:, None] * dev_y, axis=0)
        norm = xp.where(norm > 0, norm, 1.0)
    else:
        norm = xp.ones(t, dtype=r.dtype, device=dev) * wsum
    sw = xp.sqrt(w_val)[:, None]
    rw = (sw * r) / xp.sqrt(norm)  # (n_val, t)
    Aw = sw * A
    scale = xp.sum(rw**2, axis=0)
    if n_val > n_lam + 1:
        # Fewer rows, same factors: with Aw = Qa Ra, [Z, r] = [Qa, q] @
        # [[Ra M, Qa^T r], [0, |r - Qa Qa^T r|]] for an orthonormal [Qa, q],
        # so the (r + 1)-row matrix on the right has the R factor of the
        # n_val-row one (up to row signs, which no error sees).
        Qa, Aw = xp.linalg.qr(Aw)
        inside = xp.matrix_transpose(Qa) @ rw
        perp = xp.sqrt(xp.sum((rw - Qa @ inside) ** 2, axis=0))
        rw = xp.concat([inside, perp[None, :]], axis=0)
        n_val = n_lam + 1
    scaled_proj = (proj / xp.sqrt(norm))[:, None, :]
    pad = n_val - Aw.shape[0]
    last = xp.matrix_transpose(rw)[:, :, None]  # (t, n_val, 1)
    R = []
    for alpha in alphas:
        Q = pure_inverse_filters(lam, alpha, K1 - 1)  # (K1, r)
        # M[:, m, t] = q_m * proj[:, t] / sqrt(norm[t]); Z = Aw @ M.
        M = xp.reshape(xp.matrix_transpose(Q)[:, :, None] * scaled_proj, (n_lam, -1))
        Z = xp.permute_dims(xp.reshape(Aw @ M, (-1, K1, t)), (2, 0, 1))
        if pad:
            Z = xp.concat(
                [Z, xp.zeros((t, pad, K1), dtype=Z.dtype, device=dev)], axis=1
            )
        R.append(_r_factor(xp.concat([Z, last], axis=2), K1 + 1, xp))
    return FoldStatistics(xp.stack(R), norm, scale, lam)


def _r_factor(M, p, xp=np):
    """Square R factors (p x p) of a stack of tall or short matrices."""
    n = M.shape[-2]
    if isinstance(M, np.ndarray):
        R = np.linalg.qr(M, mode="r")
    else:
        R = householder_r(M, xp)
    if n >= p:
        return R
    zeros = xp.zeros(tuple(M.shape[:-2]) + (p - n, p), dtype=R.dtype, device=_device(R))
    return xp.concat([R, zeros], axis=-2)


def householder_r(M, xp):
    """R factors of a stack of matrices with few columns, elementwise.

    Householder reflections applied to the whole stack at once, one column
    at a time: as stable as LAPACK's QR, and a handful of array operations
    for the ``(targets, rows, k + 2)`` stacks of the search, where a
    library's batched QR may loop over the matrices or call a solver per
    matrix. Returns ``(..., min(n, p), p)``, upper triangular.
    """
    A = xp.asarray(M, copy=True)
    n, p = A.shape[-2], A.shape[-1]
    for j in range(min(n, p)):
        x = A[..., j:, j]
        norm = xp.sqrt(xp.sum(x * x, axis=-1))
        head = x[..., 0]
        alpha = xp.where(head < 0, norm, -norm)  # -sign(head) |x|
        v = xp.concat([(head - alpha)[..., None], x[..., 1:]], axis=-1)
        vv = xp.sum(v * v, axis=-1)
        scale = xp.where(vv > 0, 2.0 / xp.where(vv > 0, vv, 1.0), 0.0)
        sub = A[..., j:, j:]
        w = xp.sum(v[..., :, None] * sub, axis=-2)
        step = (scale[..., None, None] * v[..., :, None]) * w[..., None, :]
        A[..., j:, j:] = sub - step
    k = min(n, p)
    rows = xp.arange(k, device=_device(A))[:, None]
    cols = xp.arange(p, device=_device(A))[None, :]
    return xp.where(cols >= rows, A[..., :k, :], 0.0)
