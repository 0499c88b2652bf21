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

:func:`cholesky_path` evaluates the same chain of fits without a spectrum,
from one Cholesky factor of the regularised Gram matrix per distinct ``alpha``:
cheaper when ``d >> n``, where an ``n x n`` eigendecomposition costs several
times the Cholesky factorisation that :class:`~sklearn.linear_model.Ridge` needs.

Dense arrays of any array API namespace (with ``array_api_dispatch=True``)
stay in it and on their device (:mod:`skdistill._array_api`); sparse ``X`` is
SciPy's, so NumPy.

Every decomposition is computed in float64 (where the device has it), float32
data included: a float32 Gram matrix squares the condition number of ``X`` in
float32 arithmetic, so its eigenvalues carry an absolute error of order
``eps32 * max(n, d) * lam_max`` and every direction whose singular-value ratio
is below about ``(eps32 * max(n, d))**0.5`` (1/20 at n = 20 000) would be
lost. The centred copy is then float64 (twice the memory of float32 ``X``),
except on the Gram path of NumPy arrays, which accumulates ``Xc^T Xc`` by
blocks of rows (:class:`_BlockedGram`); the estimators return float32
attributes. :func:`rank_rtol` is the one
numerical-rank cut-off of every solver.
"""

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from scipy.linalg.lapack import get_lapack_funcs

from . import _array_api
from ._array_api import namespace
from ._filter import combine_pure_distillates, xi_bar_prefixes

__all__ = [
    "Spectrum",
    "cholesky_path",
    "decompose",
    "kernel_fit",
    "rank_rtol",
    "resolve_solver",
    "work_dtype",
]


class Spectrum:
    """Eigen-representation of a centred least-squares problem.

    Parameters
    ----------
    lam : ndarray of shape (r,)
        Eigenvalues of ``Xc^T Xc``, non-negative.
    basis : ndarray of shape (d, r) or None
        ``V`` (``"svd"``, ``"gram"``) or ``Xc^T U`` (``"dual"``). May be None
        when ``left`` and ``rmatmat`` are given: it is then formed on first
        access as ``rmatmat(left)``.
    proj : ndarray of shape (r, t)
    X_offset : ndarray of shape (d,)
    y_offset : ndarray of shape (t,)
    left : ndarray of shape (n, r), default=None
        Eigenvectors ``U`` of ``Xc Xc^T`` (``"dual"`` only).
    rmatmat : callable, default=None
        ``M -> Xc^T @ M`` for ``M`` of shape (n, m) (``"dual"`` only).

    Notes
    -----
    With ``d >> n``, forming the ``(d, r)`` basis costs as much as the Gram
    matrix itself, whereas the coefficients need only
    ``Xc^T (U diag(q) proj)``: one thin product. :meth:`coef` and
    :meth:`coef_path` use that route until the basis has been asked for.
    """

    def __init__(
        self, lam, basis, proj, X_offset, y_offset, *, left=None, rmatmat=None
    ):
        if basis is None and (left is None or rmatmat is None):
            raise ValueError("Spectrum needs basis, or left and rmatmat.")
        self.lam = lam
        self._basis = basis
        self.proj = proj
        self.X_offset = X_offset
        self.y_offset = y_offset
        self.left = left
        self._rmatmat = rmatmat

    @property
    def basis(self):
        """Matrix ``(d, r)`` such that coefficients are ``basis @ diag(q) @ proj``."""
        if self._basis is None:
            self._basis = self._rmatmat(self.left)
        return self._basis

    @property
    def has_basis(self):
        """Whether :attr:`basis` is held (False: formed on its first access)."""
        return self._basis is not None

    @property
    def rmatmat(self):
        """``M -> Xc^T @ M`` (``"dual"``; None when only the basis was given)."""
        return self._rmatmat

    def __repr__(self):
        return (
            f"Spectrum(r={self.lam.shape[0]}, d={self.X_offset.shape[0]}, "
            f"t={self.y_offset.shape[0]})"
        )

    def truncated(self, rtol):
        """Drop directions with ``lam <= rtol * max(lam)`` (minimum-norm solutions)."""
        xp, device, numpy_ = namespace(self.lam)
        if self.lam.shape[0] == 0:
            return self
        keep = self.lam > rtol * xp.max(self.lam)
        if numpy_:
            take = keep
        else:  # the standard indexes one axis of several by integers only
            take = xp.nonzero(keep)[0]
        return Spectrum(
            self.lam[take] if numpy_ else xp.take(self.lam, take, axis=0),
            None if self._basis is None else _take_columns(self._basis, take, xp),
            self.proj[take] if numpy_ else xp.take(self.proj, take, axis=0),
            self.X_offset,
            self.y_offset,
            left=None if self.left is None else _take_columns(self.left, take, xp),
            rmatmat=self._rmatmat,
        )

    def coef(self, q):
        """Coefficients ``(t, d)`` for the factors ``q`` of shape (r,)."""
        xp, _, numpy_ = namespace(q)
        q = np.asarray(q) if numpy_ else q
        return self.coef_path(q[None, :])[0]

    def coef_path(self, q_path):
        """Coefficients ``(m, t, d)`` for ``m`` rows of factors ``q_path``.

        ``q_path`` of shape (m, r) filters every target alike; of shape
        (m, t, r) it gives target ``j`` its own factors ``q_path[:, j]``
        (one basis product for all targets, whatever their filters).
        """
        dtype = self.proj.dtype
        xp, device, numpy_ = namespace(self.proj)
        if numpy_:
            q_path = np.asarray(q_path, dtype=dtype)
        else:
            q_path = xp.astype(xp.asarray(q_path, device=device), dtype)
        m, t = q_path.shape[0], self.proj.shape[1]
        if q_path.ndim == 2:
            q_path = q_path[:, None, :]
        # (r, m * t): column block i holds diag(q_i) @ proj (target j's own
        # q_i in column j when the factors are per target).
        scaled = xp.permute_dims(q_path, (2, 0, 1)) * self.proj[:, None, :]
        scaled = xp.reshape(scaled, (-1, m * t))
        if self._basis is not None:
            coef = self._basis @ scaled
        else:
            coef = self._rmatmat(self.left @ scaled)
        coef = xp.permute_dims(xp.reshape(coef, (-1, m, t)), (1, 2, 0))
        return np.ascontiguousarray(coef) if numpy_ else coef


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


def work_dtype(A):
    """The dtype in which ``A`` (dense, sparse or array API) is decomposed.

    float64, whatever ``A``'s floating dtype, unless ``A``'s device has no
    float64 (Apple's MPS, ``array_api_strict``'s ``"no_float64"``), where it
    is float32.
    """
    xp, device, _ = namespace(A)
    return _array_api.float_dtype(xp, device)


def rank_rtol(solver, shape, dtype, work=None):
    """Relative cut-off on ``lam = s**2`` below which a direction is null.

    A direction with ``lam <= rank_rtol * max(lam)`` is numerically null. Two
    resolutions bound it, and the cut-off is the coarser:

    - the data's own: the SVD of ``X`` in its dtype resolves
      ``s > eps * max(n, d) * s_max``, the cut-off of :func:`numpy.linalg.lstsq`
      and :func:`numpy.linalg.pinv`, so ``(eps * max(n, d))**2`` on ``lam``;
    - the decomposition's, in the ``work`` dtype: the same for the SVD, and
      ``eps_work * max(n, d)`` for the eigendecomposition of a Gram matrix
      (``"gram"``, ``"dual"``, ``"cholesky"``), which carries an absolute
      error of order ``eps_work * lam_max``.

    For float64 data (``work`` float64) this is ``(eps * max(n, d))**2`` for
    ``"svd"`` and ``eps * max(n, d)`` otherwise. For float32 data decomposed
    in float64 it is float32's SVD cut-off (``(eps32 * max(n, d))**2``, above
    the float64 Gram's rounding whenever ``max(n, d) < 2**46``) for every solver.

    Parameters
    ----------
    solver : {"svd", "gram", "dual", "cholesky"}
    shape : tuple of int
        ``(n, d)`` of ``X``.
    dtype : dtype
        The data's dtype.
    work : dtype, default=None
        The dtype of the decomposition (:func:`work_dtype`); ``dtype`` when None.

    Returns
    -------
    float
    """
    n_max = max(shape)
    eps = _eps(dtype)
    eps_work = eps if work is None else _eps(work)
    data = (eps * n_max) ** 2
    if solver == "svd":
        return max(data, (eps_work * n_max) ** 2)
    return max(data, eps_work * n_max)


def _eps(dtype):
    """Machine epsilon of a floating dtype of any namespace, as a float."""
    if isinstance(dtype, np.dtype) or (
        isinstance(dtype, type) and issubclass(dtype, np.generic)
    ):  # NumPy's (and CuPy's) dtypes
        return float(np.finfo(dtype).eps)
    # torch.float32, array_api_strict.float32: NumPy's name last
    return float(np.finfo(str(dtype).rsplit(".", 1)[-1]).eps)


def _take_columns(A, index, xp):
    return (
        A[:, index] if _array_api.is_numpy_namespace(xp) else xp.take(A, index, axis=1)
    )


def _weighted_mean(A, w):
    xp, _, numpy_ = namespace(A, w)
    if not numpy_:
        if w is None:
            return xp.mean(A, axis=0)
        return xp.sum(A * w[:, None], axis=0) / xp.sum(w)
    if sp.issparse(A):
        if w is None:
            return np.asarray(A.mean(axis=0)).ravel()
        return np.asarray(A.T @ w).ravel() / w.sum()
    return np.average(A, axis=0, weights=w)


class _CentredData:
    """``Xc = diag(sqrt_w) (X - 1 X_offset^T)`` and ``Yc`` likewise, as Ridge does.

    Dense ``X`` is centred in a copy. Sparse ``X`` is never densified: with
    ``Xs = diag(sqrt_w) X`` and ``c = sqrt_w`` (or ones), ``Xc = Xs - c m^T``
    and the centring is applied to the small Gram matrices and products.
    Every array is in :func:`work_dtype` (float64 for float32 data, so that
    the offsets, the centring and the Gram matrices carry float64 rounding).
    """

    def __init__(self, X, Y, sample_weight, fit_intercept):
        n, d = X.shape
        dtype = work_dtype(X)
        w = sample_weight
        xp, device, numpy_ = namespace(X, Y, w)
        self.xp = xp
        copied = X.dtype != dtype
        if copied:  # float32 data: a float64 copy (exact), centred in place
            X = X.astype(dtype) if sp.issparse(X) or numpy_ else xp.astype(X, dtype)
        if Y.dtype != dtype:
            Y = xp.astype(Y, dtype)
        if w is not None and w.dtype != dtype:
            w = xp.astype(w, dtype)
        if fit_intercept:
            self.X_offset = xp.astype(_weighted_mean(X, w), dtype, copy=False)
            if numpy_:
                y_offset = np.average(Y, axis=0, weights=w)
            else:
                y_offset = _weighted_mean(Y, w)
            self.y_offset = xp.astype(y_offset, dtype, copy=False)
        else:
            self.X_offset = xp.zeros(d, dtype=dtype, device=device)
            self.y_offset = xp.zeros(Y.shape[1], dtype=dtype, device=device)
        sqrt_w = None if w is None else xp.astype(xp.sqrt(w), dtype, copy=False)
        Yc = Y - self.y_offset
        if sqrt_w is not None:
            Yc = Yc * sqrt_w[:, None]
        self.Yc = Yc
        self.sparse = sp.issparse(X)
        if self.sparse:
            self.Xs = X.tocsr() if sqrt_w is None else sp.diags(sqrt_w) @ X.tocsr()
            self.c = np.ones(n, dtype=dtype) if sqrt_w is None else sqrt_w
        else:
            if copied and numpy_:
                X -= self.X_offset
                Xc = X
            else:
                Xc = X - self.X_offset
            if sqrt_w is not None:
                if numpy_:
                    Xc *= sqrt_w[:, None]
                else:
                    Xc = Xc * sqrt_w[:, None]
            self.Xc = Xc

    def gram(self):
        """``Xc^T Xc`` of shape (d, d)."""
        if not self.sparse:
            return self.Xc.T @ self.Xc
        m, c = self.X_offset, self.c
        # Xs^T c = (c @ c) m when m is the weighted mean, or m = 0.
        return np.asarray((self.Xs.T @ self.Xs).toarray()) - (c @ c) * np.outer(m, m)

    def kernel(self):
        """``Xc Xc^T`` of shape (n, n)."""
        if not self.sparse:
            return self.Xc @ self.Xc.T
        m, c, Xs = self.X_offset, self.c, self.Xs
        Xm = np.asarray(Xs @ m).ravel()
        K = np.asarray((Xs @ Xs.T).toarray())
        K -= np.outer(Xm, c) + np.outer(c, Xm)
        K += (m @ m) * np.outer(c, c)
        return K

    def normal_rhs(self):
        """``Xc^T Yc`` of shape (d, t)."""
        return self.rmatmat(self.Yc)

    def rmatmat(self, M):
        """``Xc^T @ M`` for ``M`` of shape (n, m)."""
        if not self.sparse:
            if isinstance(M, np.ndarray):
                # (M^T Xc)^T: BLAS is several times faster than with Xc^T as
                # the transposed operand when M has few columns.
                return (M.T @ self.Xc).T
            return self.Xc.T @ M
        return np.asarray(self.Xs.T @ M) - np.outer(self.X_offset, self.c @ M)


class _BlockedGram:
    """``Xc^T Xc`` and ``Xc^T Yc`` in float64 from float32 NumPy ``X``, by row blocks.

    The numbers of :class:`_CentredData` (to round-off) for the Gram path of
    tall float32 data, without its float64 copy of ``X``: each block of rows
    is cast, centred and weighted in cache, and its Gram matrix accumulated
    (writing an ``n x d`` float64 copy costs about as much as the product).
    """

    _BLOCK = 2**17  # float64 entries per block of rows (1 MiB)

    def __init__(self, X, Y, sample_weight, fit_intercept):
        n, d = X.shape
        self.xp = namespace(X)[0]
        w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        step = max(1, self._BLOCK // max(d, 1))
        blocks = [slice(i, min(i + step, n)) for i in range(0, n, step)]
        if fit_intercept:
            self.y_offset = np.average(Y, axis=0, weights=w)  # raises if w sums to 0
            if w is None:
                total = sum(X[b].sum(axis=0, dtype=np.float64) for b in blocks)
                self.X_offset = total / n
            else:
                total = sum(w[b] @ X[b].astype(np.float64) for b in blocks)
                self.X_offset = total / w.sum()
        else:
            self.X_offset = np.zeros(d)
            self.y_offset = np.zeros(Y.shape[1])
        sqrt_w = None if w is None else np.sqrt(w)
        Yc = Y - self.y_offset
        if sqrt_w is not None:
            Yc *= sqrt_w[:, None]
        self.Yc = Yc
        G = np.zeros((d, d))
        Bt = np.zeros((Yc.shape[1], d))
        for b in blocks:
            Xb = X[b].astype(np.float64)
            Xb -= self.X_offset
            if sqrt_w is not None:
                Xb *= sqrt_w[b, None]
            G += Xb.T @ Xb
            Bt += Yc[b].T @ Xb  # (Yc^T Xc)^T: the faster operand order
        self._gram, self._rhs = G, Bt.T

    def gram(self):
        """``Xc^T Xc`` of shape (d, d)."""
        return self._gram

    def normal_rhs(self):
        """``Xc^T Yc`` of shape (d, t)."""
        return self._rhs


def _normal_equations_data(X, Y, sample_weight, fit_intercept):
    """What the Gram path needs: :class:`_BlockedGram` for float32 NumPy ``X``."""
    if isinstance(X, np.ndarray) and X.dtype != np.float64:
        return _BlockedGram(X, Y, sample_weight, fit_intercept)
    return _CentredData(X, Y, sample_weight, fit_intercept)


def _eigh(A):
    """Eigenvalues (clipped at zero) and eigenvectors of symmetric ``A``."""
    return _array_api.eigh(A, namespace(A)[0])


def decompose(X, Y, *, sample_weight=None, fit_intercept=True, solver="gram"):
    """Eigendecompose the centred, weighted least-squares problem ``(X, Y)``.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    Y : ndarray of shape (n, t)
    sample_weight : ndarray of shape (n,) or None
    fit_intercept : bool
    solver : {"svd", "gram", "dual", "cholesky"}
        ``"cholesky"`` (the estimator's solver that needs no spectrum) falls
        back to ``"gram"`` when ``n >= d`` and ``"dual"`` otherwise, so that
        callers holding such an estimator still get a spectrum.

    Returns
    -------
    Spectrum
        In :func:`work_dtype` (float64 for float32 data).
    """
    if solver == "cholesky":
        solver = "gram" if X.shape[0] >= X.shape[1] else "dual"
    if solver not in ("svd", "gram", "dual"):
        raise ValueError(f"Unknown solver {solver!r}.")
    if solver == "svd" and sp.issparse(X):
        raise TypeError(
            "solver='svd' does not support sparse X; use solver='gram', "
            "'dual' or 'auto'."
        )
    if solver == "gram":
        data = _normal_equations_data(X, Y, sample_weight, fit_intercept)
        lam, V = _array_api.eigh(data.gram(), data.xp)
        return Spectrum(lam, V, V.T @ data.normal_rhs(), data.X_offset, data.y_offset)
    data = _CentredData(X, Y, sample_weight, fit_intercept)
    if solver == "svd":
        U, s, Vt = _array_api.svd(data.Xc, data.xp)
        proj = s[:, None] * (U.T @ data.Yc)
        return Spectrum(s**2, Vt.T, proj, data.X_offset, data.y_offset)
    return _dual_spectrum(data, data.kernel())


def _dual_spectrum(data, K):
    """The ``"dual"`` spectrum from the kernel ``K = Xc Xc^T`` (overwritten)."""
    lam, U = _array_api.eigh(K, data.xp)
    # The (d, r) basis Xc^T U costs as much as the Gram matrix itself: it is
    # formed only if asked for, as coefficients need one thin product with Xc^T.
    return Spectrum(
        lam,
        None,
        U.T @ data.Yc,
        data.X_offset,
        data.y_offset,
        left=U,
        rmatmat=data.rmatmat,
    )


# At most this many distinct penalties are solved by Cholesky factors on wide
# data: the eigenvalues (a tridiagonal reduction, about 4/3 n^3 flops) and one
# factorisation per penalty (n^3 / 3) then cost less than an eigendecomposition
# with eigenvectors (the reduction, its back-transformation and the
# divide-and-conquer solver, above 3 n^3).
_MAX_KERNEL_FACTORS = 4


class KernelFit(NamedTuple):
    """The chain on wide data: the kernel's eigenvalues and the coefficients."""

    lam: Any  # (n,) eigenvalues of Xc Xc^T, increasing
    coef_path: Any  # (k + 1, t, d)
    X_offset: Any  # (d,)
    y_offset: Any  # (t,)


def kernel_fit(
    X, Y, alphas, xis, *, sample_weight=None, fit_intercept=True, rank_rtol=0.0
):
    """The ``"dual"`` fit on wide data (``d > n``) in the ``n x n`` kernel form.

    With ``K = Xc Xc^T``, the coefficients of every step come from Cholesky
    factors of ``K + alpha I`` (:func:`cholesky_path`'s chain, about the cost
    of one :class:`~sklearn.linear_model.Ridge` fit) and the eigenvalues from
    :func:`scipy.linalg.eigh` without eigenvectors (for ``singular_values_``):
    the spectral filter's numbers to round-off, as every penalty is then
    above the rank cut-off, where the eigendecomposition keeps every
    direction. Where some ``alpha`` is at most ``rank_rtol * trace(K)`` (an
    upper bound of ``rank_rtol * lam_max``: null directions may have to be
    dropped), or more than a few distinct penalties would need their own
    factorisation, the eigendecomposition of ``K`` is returned instead, as
    :func:`decompose` gives it for ``solver="dual"``.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    Y : ndarray of shape (n, t)
    alphas : ndarray of shape (k + 1,) or (t, k + 1)
    xis : ndarray of shape (k,) or (t, k)
    sample_weight : ndarray of shape (n,) or None
    fit_intercept : bool
    rank_rtol : float
        The relative rank cut-off of the fit (:func:`rank_rtol`).

    Returns
    -------
    KernelFit or Spectrum
        In :func:`work_dtype` (float64 for float32 data).
    """
    data = _CentredData(X, Y, sample_weight, fit_intercept)
    xp = data.xp
    K = data.kernel()
    if _array_api.is_numpy_namespace(xp):
        trace = float(np.trace(K))
    else:
        trace = float(xp.sum(xp.linalg.diagonal(K)))
    alphas = np.asarray(alphas)
    if (
        float(alphas.min()) > rank_rtol * trace
        and np.unique(alphas).size <= _MAX_KERNEL_FACTORS
    ):
        try:
            coef_path = _chain(data, K, True, alphas, xis, None)
        except linalg.LinAlgError:  # not positive definite in round-off
            pass
        else:
            lam = _array_api.eigvalsh(K, xp)  # K is no longer needed
            return KernelFit(lam, coef_path, data.X_offset, data.y_offset)
    return _dual_spectrum(data, K)


def cholesky_path(
    X, Y, alphas, xis, *, sample_weight=None, fit_intercept=True, rank_rtol=None
):
    """Coefficients of the teacher and every student from Cholesky factors.

    The same chain as the spectral filter, evaluated without an
    eigendecomposition: with ``M = Xc^T Xc`` (``d <= n``) or ``Xc Xc^T``
    (``d > n``), one Cholesky factorisation of ``M + alpha I`` per distinct
    ``alpha``, then per step one product with ``M`` and one pair of triangular
    solves, ``a_i = (M + alpha_i I)^{-1} (xi_i M a_{i-1} + (1 - xi_i) b)``.
    With a single ``alpha`` this costs about one :class:`~sklearn.linear_model.Ridge`
    fit. Every ``alpha`` must be positive.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    Y : ndarray of shape (n, t)
    alphas : ndarray of shape (k + 1,)
    xis : ndarray of shape (k,)
    sample_weight : ndarray of shape (n,) or None
    fit_intercept : bool
    rank_rtol : float, default=None
        When given, a regularised matrix ``M + alpha I`` whose reciprocal
        condition number (LAPACK's estimate from the factor) is at most
        ``rank_rtol`` raises :class:`scipy.linalg.LinAlgError`: it is singular
        to working precision, so its solves would amplify rounding errors
        without bound.

    Returns
    -------
    coef_path : ndarray of shape (k + 1, t, d)
    X_offset : ndarray of shape (d,)
    y_offset : ndarray of shape (t,)
        All three in :func:`work_dtype` (float64 for float32 data).
    """
    n, d = X.shape
    dual = d > n
    if dual:
        data = _CentredData(X, Y, sample_weight, fit_intercept)
        M = data.kernel()
    else:
        data = _normal_equations_data(X, Y, sample_weight, fit_intercept)
        M = data.gram()
    coef_path = _chain(data, M, dual, alphas, xis, rank_rtol)
    return coef_path, data.X_offset, data.y_offset


def _chain(data, M, dual, alphas, xis, rank_rtol):
    """Coefficients ``(k + 1, t, d)`` of the chain from ``M`` by Cholesky solves.

    ``M`` is ``Xc^T Xc`` or, when ``dual``, ``Xc Xc^T`` (kept unchanged);
    see :func:`cholesky_path`.
    """
    d = data.X_offset.shape[0]
    rhs = data.Yc if dual else data.normal_rhs()
    factors = {}
    xp, device, numpy_ = namespace(M)

    def solve(alpha, B):
        if not numpy_:
            if alpha not in factors:
                eye = xp.eye(M.shape[0], dtype=M.dtype, device=device)
                factors[alpha] = _array_api.cho_solver(
                    M + float(alpha) * eye, xp, alpha=float(alpha), rank_rtol=rank_rtol
                )
            return factors[alpha](B)
        if alpha not in factors:
            A = M.copy()
            A.flat[:: A.shape[0] + 1] += alpha
            norm = np.abs(A).sum(axis=0).max(initial=0.0)
            factors[alpha] = linalg.cho_factor(A, overwrite_a=True, check_finite=False)
            if rank_rtol is not None and A.size:
                c, lower = factors[alpha]
                (pocon,) = get_lapack_funcs(("pocon",), (c,))
                rcond, _ = pocon(c, norm, uplo="L" if lower else "U")
                if not rcond > rank_rtol:
                    raise linalg.LinAlgError(
                        f"X^T X + alpha I is singular to working precision "
                        f"(reciprocal condition number {rcond:.2g})."
                    )
        return linalg.cho_solve(factors[alpha], B, check_finite=False)

    if np.ndim(alphas) == 2:
        S = _per_target_chain(solve, M, rhs, alphas, xis, factors)
    else:
        S = _shared_chain(solve, M, rhs, alphas, xis)
    k1, r, t = S.shape
    if not numpy_:
        if dual:
            coef = data.rmatmat(xp.reshape(xp.permute_dims(S, (1, 0, 2)), (r, k1 * t)))
            coef_path = xp.permute_dims(xp.reshape(coef, (d, k1, t)), (1, 2, 0))
        else:
            coef_path = xp.permute_dims(S, (0, 2, 1))
        return coef_path
    if dual:
        coef = data.rmatmat(S.transpose(1, 0, 2).reshape(r, k1 * t))  # (d, k1 t)
        coef_path = coef.reshape(d, k1, t).transpose(1, 2, 0)
    else:
        coef_path = S.transpose(0, 2, 1)
    return np.ascontiguousarray(coef_path)


def _shared_chain(solve, M, rhs, alphas, xis):
    """Every step ``(k + 1, r, t)`` of the chain that all targets share."""
    xp, _, _ = namespace(M)
    steps = [solve(alphas[0], rhs)]
    if np.all(alphas == alphas[0]):
        # One alpha: the pure distillates combined by each step's xi_bar,
        # the same evaluation as the spectral solvers.
        for _ in xis:
            steps.append(solve(alphas[0], M @ steps[-1]))
        S = combine_pure_distillates(xp.stack(steps), xis)
    else:
        for alpha, xi in zip(alphas[1:], xis, strict=True):
            xi = float(xi)
            steps.append(solve(alpha, xi * (M @ steps[-1]) + (1.0 - xi) * rhs))
        S = xp.stack(steps)  # (k + 1, r, t)
    return S


def _per_target_chain(solve, M, rhs, alphas, xis, factors):
    """Every step ``(k + 1, r, t)`` of each target's own chain.

    ``alphas`` (t, k + 1) and ``xis`` (t, k) as
    :func:`~skdistill._validation.check_target_steps` returns them (NaN in
    ``xis`` beyond a target's count; such a target repeats its last step).
    Targets are grouped by penalty: one factorisation per distinct ``alpha``
    and one solve per step and group, never one per target. A target with one
    penalty at every step combines its group's pure distillates by its own
    ``xi_bar`` (as :func:`_shared_chain` does); the others follow the
    recursion, grouped by their whole row of penalties. A factor is released
    once no later group needs it, so memory holds the factors of one group
    (at most ``k + 1``) plus those that later groups share.
    """
    counts = np.sum(np.isfinite(xis), axis=1)
    xis = np.where(np.isfinite(xis), xis, 0.0)
    t, k1 = alphas.shape
    xp, device, numpy_ = namespace(M)

    def columns(A, cols):
        if numpy_:
            return A[:, cols]
        return xp.take(A, xp.asarray(cols, device=device), axis=1)

    def dev(a):
        return a if numpy_ else xp.asarray(a, dtype=M.dtype, device=device)

    blocks = []  # (cols, steps of shape (k_cols + 1, r, len(cols)))
    const = np.all(alphas == alphas[:, :1], axis=1)
    varying = np.flatnonzero(~const)
    needed_later = set(alphas[varying].ravel().tolist())
    uniform = np.flatnonzero(const)
    values, group = np.unique(alphas[uniform, 0], return_inverse=True)
    order = np.argsort(group.ravel(), kind="stable")
    bounds = np.searchsorted(group.ravel()[order], np.arange(values.size + 1))
    for g, alpha in enumerate(values.tolist()):
        cols = uniform[order[bounds[g] : bounds[g + 1]]]
        k_group = int(counts[cols].max())
        pure = [solve(alpha, columns(rhs, cols))]
        for _ in range(k_group):
            pure.append(solve(alpha, M @ pure[-1]))
        pure = xp.stack(pure)  # (k_group + 1, r, c)
        prefixes = xi_bar_prefixes(xis[cols, :k_group])
        # prefixes (k_group + 1, c, k_group + 1): step i of column j.
        if numpy_:
            steps = np.einsum("icm,mrc->irc", prefixes.astype(pure.dtype), pure)
        else:
            prefixes = dev(prefixes)
            steps = xp.stack(
                [
                    xp.sum(
                        xp.permute_dims(prefixes[i, ...], (1, 0))[:, None, :] * pure,
                        axis=0,
                    )
                    for i in range(k_group + 1)
                ]
            )
        blocks.append((cols, steps))
        if alpha not in needed_later:
            factors.pop(alpha, None)
    if varying.size:
        # Targets with the same row of penalties share their solves.
        rows, group = np.unique(alphas[varying], axis=0, return_inverse=True)
        order = np.argsort(group.ravel(), kind="stable")
        bounds = np.searchsorted(group.ravel()[order], np.arange(rows.shape[0] + 1))
        last_use = {a: g for g, row in enumerate(rows.tolist()) for a in row}
        for g, row in enumerate(rows.tolist()):
            cols = varying[order[bounds[g] : bounds[g + 1]]]
            rhs_cols = columns(rhs, cols)
            steps = [solve(row[0], rhs_cols)]
            for i in range(1, int(counts[cols].max()) + 1):
                xi = dev(xis[cols, i - 1])
                B = xi * (M @ steps[-1]) + (1.0 - xi) * rhs_cols
                steps.append(solve(row[i], B))
            blocks.append((cols, xp.stack(steps)))
            for alpha in set(row):
                if last_use[alpha] == g:
                    factors.pop(alpha, None)
    if numpy_:
        S = np.empty((k1, rhs.shape[0], t), dtype=np.result_type(M, rhs))
        for cols, steps in blocks:
            S[: steps.shape[0], :, cols] = steps
        stage = np.minimum(np.arange(k1)[:, None], counts[None, :])  # (k + 1, t)
        return np.take_along_axis(S, stage[:, None, :], axis=0)
    # Every block padded to k + 1 steps with its last, the targets put back in
    # order; then a target whose steps ran out repeats its last step.
    padded = [
        xp.concat([steps] + [steps[-1:, ...]] * (k1 - steps.shape[0]), axis=0)
        for _, steps in blocks
    ]
    S = xp.concat(padded, axis=2)
    order = np.argsort(np.concatenate([cols for cols, _ in blocks]), kind="stable")
    S = xp.take(S, xp.asarray(order, device=device), axis=2)
    steps = [S[i, ...] for i in range(k1)]
    for i in range(1, k1):
        for c in np.unique(counts[counts < i]).tolist():
            ran_out = xp.asarray(counts == c, device=device)[None, :]
            steps[i] = xp.where(ran_out, steps[c], steps[i])
    return xp.stack(steps)
