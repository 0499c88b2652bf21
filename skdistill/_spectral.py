"""One eigendecomposition of the (centred, weighted) training data.

Every solver returns the same object: eigenvalues ``lam`` of ``Xc^T Xc`` and
matrices ``basis`` (d, r) and ``proj`` (r, t) such that any spectral filter
``q(lam)`` gives the coefficients ``basis @ diag(q) @ proj``. For ``"svd"`` and
``"gram"`` the basis is the right singular vectors ``V`` and
``proj = V^T Xc^T Yc``; for ``"dual"`` it is ``Xc^T U`` and ``proj = U^T Yc``
(the same product, since ``Xc^T U = V diag(s)``).

Intercepts follow :class:`sklearn.linear_model.Ridge`: with ``fit_intercept``
the columns of ``X`` and ``y`` are centred by their (weighted) means and rows
are scaled by ``sqrt(sample_weight)``. Sparse ``X`` is never densified: the
centring is applied implicitly to the small ``d x d`` or ``n x n`` Gram matrix.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import linalg

__all__ = ["Spectrum", "decompose", "resolve_solver"]


@dataclass
class Spectrum:
    """Eigen-representation of a centred least-squares problem."""

    lam: np.ndarray  # (r,) eigenvalues of Xc^T Xc, non-negative
    basis: np.ndarray  # (d, r)
    proj: np.ndarray  # (r, t)
    X_offset: np.ndarray  # (d,)
    y_offset: np.ndarray  # (t,)

    def truncated(self, rtol):
        """Drop directions with ``lam <= rtol * max(lam)`` (minimum-norm solutions)."""
        if self.lam.size == 0:
            return self
        keep = self.lam > rtol * self.lam.max()
        return Spectrum(
            self.lam[keep],
            self.basis[:, keep],
            self.proj[keep],
            self.X_offset,
            self.y_offset,
        )

    def coef(self, q):
        """Coefficients ``(t, d)`` for the factors ``q`` of shape (r,)."""
        q = np.asarray(q, dtype=self.basis.dtype)
        return (self.basis @ (q[:, None] * self.proj)).T


def resolve_solver(solver, X, alpha_min):
    """The concrete solver that ``"auto"`` stands for on this ``X``."""
    if solver != "auto":
        return solver
    n, d = X.shape
    if sp.issparse(X):
        return "gram" if d <= n else "dual"
    if alpha_min == 0:
        # Minimum-norm least squares needs the accuracy of the SVD: a Gram
        # matrix squares the condition number.
        return "svd"
    return "gram" if n >= d else "dual"


def _weighted_mean(A, w):
    if sp.issparse(A):
        if w is None:
            return np.asarray(A.mean(axis=0)).ravel()
        return np.asarray(A.T @ w).ravel() / w.sum()
    return np.average(A, axis=0, weights=w)


def decompose(X, Y, *, sample_weight=None, fit_intercept=True, solver="gram"):
    """Eigendecompose the centred, weighted least-squares problem ``(X, Y)``.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    Y : ndarray of shape (n, t)
    sample_weight : ndarray of shape (n,) or None
    fit_intercept : bool
    solver : {"svd", "gram", "dual"}

    Returns
    -------
    Spectrum
    """
    n, d = X.shape
    dtype = X.dtype
    w = sample_weight
    if fit_intercept:
        X_offset = _weighted_mean(X, w).astype(dtype, copy=False)
        y_offset = np.average(Y, axis=0, weights=w).astype(dtype, copy=False)
    else:
        X_offset = np.zeros(d, dtype=dtype)
        y_offset = np.zeros(Y.shape[1], dtype=dtype)
    sqrt_w = None if w is None else np.sqrt(w).astype(dtype, copy=False)

    Yc = Y - y_offset
    if sqrt_w is not None:
        Yc = Yc * sqrt_w[:, None]

    if sp.issparse(X):
        if solver == "svd":
            raise TypeError(
                "solver='svd' does not support sparse X; use solver='gram', "
                "'dual' or 'auto'."
            )
        # Xc = Xs - c m^T, with Xs = diag(sqrt_w) X and c = sqrt_w (or ones).
        Xs = X.tocsr() if sqrt_w is None else sp.diags(sqrt_w) @ X.tocsr()
        c = np.ones(n, dtype=dtype) if sqrt_w is None else sqrt_w
        m = X_offset
        if solver == "gram":
            G = np.asarray((Xs.T @ Xs).toarray()) - (c @ c) * np.outer(m, m)
            b = np.asarray(Xs.T @ Yc) - np.outer(m, c @ Yc)
            lam, V = linalg.eigh(G, overwrite_a=True)
            return Spectrum(np.maximum(lam, 0), V, V.T @ b, X_offset, y_offset)
        Xm = np.asarray(Xs @ m).ravel()
        K = np.asarray((Xs @ Xs.T).toarray())
        K -= np.outer(Xm, c) + np.outer(c, Xm)
        K += (m @ m) * np.outer(c, c)
        lam, U = linalg.eigh(K, overwrite_a=True)
        basis = np.asarray(Xs.T @ U) - np.outer(m, c @ U)
        return Spectrum(np.maximum(lam, 0), basis, U.T @ Yc, X_offset, y_offset)

    Xc = X - X_offset
    if sqrt_w is not None:
        Xc *= sqrt_w[:, None]
    if solver == "svd":
        U, s, Vt = linalg.svd(
            Xc, full_matrices=False, overwrite_a=True, check_finite=False
        )
        return Spectrum(s**2, Vt.T, s[:, None] * (U.T @ Yc), X_offset, y_offset)
    if solver == "gram":
        lam, V = linalg.eigh(Xc.T @ Xc, overwrite_a=True, check_finite=False)
        return Spectrum(np.maximum(lam, 0), V, V.T @ (Xc.T @ Yc), X_offset, y_offset)
    if solver == "dual":
        lam, U = linalg.eigh(Xc @ Xc.T, overwrite_a=True, check_finite=False)
        return Spectrum(np.maximum(lam, 0), Xc.T @ U, U.T @ Yc, X_offset, y_offset)
    raise ValueError(f"Unknown solver {solver!r}.")
