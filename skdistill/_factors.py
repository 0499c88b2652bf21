"""TSQR factors of weighted rows, the spectrum of a factor, ``partial_fit``'s state.

Everything the closed forms need from a set of rows is held by the triangular
factor ``R`` (``p x p``, ``p = 1 + n_features + n_targets``) of the augmented
matrix ``M = [sqrt(w), sqrt(w) * X, sqrt(w) * Y]``, accumulated in float64 by
TSQR: the running ``R`` is stacked on top of each new chunk's rows and the
stack is factorised again (Householder QR). ``R`` is as small as the Gram
matrix ``M^T M`` and pools across chunks, folds or machines the same way
(stack the factors, factorise again), but it never forms ``M^T M``: the
singular values of its blocks are those of the data, not their squares, and
every squared error is evaluated as ``|R v|^2`` of a vector ``v``, without the
cancellation of an expanded quadratic (see :mod:`skdistill._cv_closed_form`).
Large chunks reach the factors through a Gram matrix of *preconditioned*
rows ``B P^{-1}`` (``P`` the factor of rows seen before), whose condition
number is tested to be at most 10: the data's squared condition number never
enters (:meth:`FoldFactors._add_preconditioned`).

From ``R``, with ``q_0 = sqrt(w) / |sqrt(w)|`` the first column of ``Q``:

- ``R[0, 0]**2`` is the weight sum and ``R[0, 1:] / R[0, 0]`` the weighted
  means of ``X`` and ``Y`` (a stable, one-pass centring);
- ``R[1:, 1:]`` is the R factor of the centred data ``[Xc, Yc]``, because
  ``Q[:, 1:] @ R[1:, 1:] = M - q_0 q_0^T M``. Its leading ``d x d`` block
  ``R_X`` has the singular values of ``Xc``; with ``R_X = U S V^T`` and
  ``R_Xy`` the block beside it, the problem's spectrum is ``lam = s**2``,
  ``basis = V`` and ``proj = S U^T R_Xy``, exactly what
  ``decompose(..., solver="svd")`` returns for the raw rows;
- any weighted squared error ``sum_i w_i (a_i + x_i b + y_i c)^2`` equals
  ``|R (a, b, c)|^2``: the rows of ``R`` stand in for the data rows.

The factors sit below the estimators: :mod:`skdistill._linear` fits from one
(``partial_fit``, and the refit of a streamed search) and keeps
``partial_fit``'s state here; the readers of chunks and dask collections, and
the folds of streamed rows, are in :mod:`skdistill._streaming`.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from scipy.linalg import blas, lapack

from ._spectral import Spectrum, rank_rtol

__all__ = [
    "FoldFactors",
    "PartialFitState",
    "next_stream_state",
    "out_dtype",
    "spectrum_from_factor",
    "stack_r",
    "stream_from_fit",
]

EPS = np.finfo(np.float64).eps


# ------------------------------------------------------------------ factors
def _qr_r(B):
    """Upper-triangular R (n_cols x n_cols) of a Fortran array; B is overwritten."""
    m, p = B.shape
    if m < p:
        B = np.vstack([B, np.zeros((p - m, p))])
    nb = max(1, min(16, p))
    a, _, info = lapack.dgeqrt(nb, B, overwrite_a=1)
    if info != 0:  # pragma: no cover - LAPACK argument errors only
        raise RuntimeError(f"dgeqrt failed with info={info}.")
    return np.triu(a[:p])


def stack_r(*factors):
    """R factor of the rows of several R factors stacked (their pooled factor)."""
    B = np.asfortranarray(np.vstack(factors), dtype=np.float64)
    return _qr_r(B)


# Rows per tpqrt call: a block and its Fortran copy stay in cache (measured
# on one core: 256 to 4096 rows within 10%, whole 20,000-row folds 15% slower).
_BLOCK = 1024
_TPQRT_NB = 8
# The preconditioned Cholesky path (FoldFactors._add_preconditioned): rows of
# the Householder head that builds the preconditioner, the least rows per
# fold and column of a chunk that takes the path (its checks cost O(p**3) per
# fold), rows per block of the triangular solve, the largest accepted
# condition number of a preconditioned Gram matrix, and the rejections after
# which a stream stays on the Householder path.
_PRECOND_ROWS = 2048
_FAST_MIN_ROWS_PER_FOLD = 16
_FAST_BLOCK = 2048
_MAX_GRAM_COND = 100.0
_MAX_FAILURES = 2


def _preconditioner(R, weight_sum):
    """``R / sqrt(weight_sum)`` if it is safely invertible, else None."""
    if weight_sum <= 0:
        return None
    P = np.asfortranarray(R / np.sqrt(weight_sum))
    diag = np.abs(np.diag(P))
    if not np.all(np.isfinite(P)) or diag.min() <= np.sqrt(EPS) * diag.max():
        return None
    return P


def _absorb(R, X, Y, sw):
    """R factor of ``R`` stacked over the augmented rows ``[sw, sw X, sw Y]``."""
    k, d = X.shape
    p = R.shape[0]
    B = np.empty((k, p), order="F")
    B[:, 0] = 1.0
    B[:, 1 : 1 + d] = X
    B[:, 1 + d :] = Y
    if sw is not None:
        B *= sw[:, None]
    a, _, _, info = lapack.dtpqrt(
        0, min(_TPQRT_NB, p), np.asfortranarray(R), B, overwrite_a=1, overwrite_b=1
    )
    if info != 0:  # pragma: no cover - LAPACK argument errors only
        raise RuntimeError(f"dtpqrt failed with info={info}.")
    return np.triu(a)


class FoldFactors:
    """Per-fold R factors of ``[sqrt(w), sqrt(w) X, sqrt(w) Y]``, in float64.

    Rows enter the factors by Householder reflections (:func:`_absorb`) or,
    when the data allow it, by the preconditioned Cholesky products of
    :meth:`_add_preconditioned`, which cost BLAS-3 products of the chunk
    instead of a QR. ``R`` holds every row added after each :meth:`add`.

    Parameters
    ----------
    n_folds : int
    n_features : int
    n_targets : int
    """

    def __init__(self, n_folds, n_features, n_targets):
        self.n_features = n_features
        self.n_targets = n_targets
        p = 1 + n_features + n_targets
        self.R = np.zeros((n_folds, p, p))
        self.n_rows = np.zeros(n_folds, dtype=np.int64)
        # Preconditioner of the Cholesky path (None: not built yet), and
        # whether that path may still be tried (False after _MAX_FAILURES).
        self._P = None
        self._failures = 0
        self.n_rows_preconditioned = 0

    @property
    def n_columns(self):
        return self.R.shape[-1]

    def add(self, X, Y, sample_weight=None, folds=None):
        """Fold the rows of a chunk into the factors of their folds.

        ``X`` is (n, d) and ``Y`` (n, t); ``folds`` (n,) gives each row's fold
        (``None``: all in fold 0).

        Large chunks take the preconditioned Cholesky path
        (:meth:`_add_preconditioned`) once a preconditioner exists (built
        from the first ``_PRECOND_ROWS`` rows, factored by Householder); the
        rest, and any chunk that path rejects, are factored by Householder
        reflections (:meth:`_add_householder`).
        """
        if sp.issparse(X):
            X = X.toarray()
        n = X.shape[0]
        if folds is None:
            folds = np.zeros(n, dtype=np.int64)
        sw = None if sample_weight is None else np.sqrt(sample_weight)
        n_folds, p = self.R.shape[0], self.n_columns
        big = n >= _FAST_MIN_ROWS_PER_FOLD * p * n_folds
        if self._P is None and big and self._failures < _MAX_FAILURES:
            # Householder on a head of the chunk; its pooled factor
            # preconditions the rest.
            m0 = max(_PRECOND_ROWS, 4 * p)
            head = slice(0, m0)
            self._add_householder(
                X[head], Y[head], None if sw is None else sw[head], folds[head]
            )
            self._P = _preconditioner(
                self.pooled(), float(self.R[:, 0, 0] @ self.R[:, 0, 0])
            )
            if self._P is None:  # collinear or constant columns in the head
                self._failures += 1
            X, Y, folds = X[m0:], Y[m0:], folds[m0:]
            sw = None if sw is None else sw[m0:]
            n -= m0
        if self._P is not None and n >= _FAST_MIN_ROWS_PER_FOLD * p * n_folds:
            if self._add_preconditioned(X, Y, sw, folds):
                return self
            # Rejected: Householder for this chunk, a fresh preconditioner
            # from every row seen (after it) for the next ones.
            self._failures += 1
            self._P = None
            self._add_householder(X, Y, sw, folds)
            if self._failures < _MAX_FAILURES:
                W = float(self.R[:, 0, 0] @ self.R[:, 0, 0])
                self._P = _preconditioner(self.pooled(), W)
            return self
        self._add_householder(X, Y, sw, folds)
        return self

    def _add_householder(self, X, Y, sw, folds):
        """Householder path: each fold's rows in blocks of ``_BLOCK`` rows.

        Each block is gathered into a small Fortran-ordered buffer (cheap to
        transpose while it is in cache) and absorbed by a triangular-pentagonal
        QR (LAPACK ``tpqrt``: Householder reflections of ``[R; block]`` that
        keep ``R``'s zeros), the arithmetic of a QR of the stacked rows at the
        cost of the block alone.
        """
        for f in range(self.R.shape[0]):
            idx = np.flatnonzero(folds == f)
            for start in range(0, idx.size, _BLOCK):
                ii = idx[start : start + _BLOCK]
                self.R[f] = _absorb(
                    self.R[f], X[ii], Y[ii], None if sw is None else sw[ii]
                )
            self.n_rows[f] += idx.size

    def _add_preconditioned(self, X, Y, sw, folds):
        """Preconditioned Cholesky path; False (nothing added) if rejected.

        With ``P`` the (scaled) R factor of rows seen before, each fold's
        augmented rows ``B_f`` (C-ordered, no transposed copy) are mapped to
        ``Z_f = B_f P^{-1}`` by a triangular solve and their Gram matrix
        ``G_f = Z_f^T Z_f`` is accumulated by ``syrk``; ``U_f P`` with
        ``G_f = U_f^T U_f`` (Cholesky) is an R factor of ``B_f``, stacked
        onto the fold's factor by a small QR.

        Accuracy. When the rows are alike, ``Z_f`` has orthogonal columns of
        about equal norms up to sampling noise, and the chunk is accepted only
        if ``kappa(G_f) <= _MAX_GRAM_COND`` for every fold (``kappa(Z_f) <=
        10``). Then: the rounding errors of ``G_f`` and of its Cholesky
        factor are at most ``c eps |G_f|``, a relative error of at most ``c
        eps kappa(G_f)`` in ``|B_f v|^2`` for *every* direction ``v`` (a
        Householder QR guarantees ``eps |B_f| |v|``, relative ``eps
        kappa(B_f)``); the triangular solve is row-wise backward stable,
        which with ``kappa(Z_f) <= 10`` perturbs each column ``b_j`` of
        ``B_f`` by at most ``c p eps kappa(Z_f) |b_j|``, the column-wise
        backward error of a Householder QR up to that factor. The squared
        condition number of a Gram matrix of the data never enters: it is
        that of ``Z_f``, bounded by the test. A chunk that fails it (rows
        unlike those that built ``P``, collinear or constant columns) is
        factored by Householder.
        """
        n_folds, p, d = self.R.shape[0], self.n_columns, self.n_features
        P = self._P
        G = np.zeros((n_folds, p, p))
        for start in range(0, X.shape[0], _FAST_BLOCK):
            rows = slice(start, start + _FAST_BLOCK)
            Xb, fb = X[rows], folds[rows]
            B = np.empty((Xb.shape[0], p))
            B[:, 0] = 1.0
            B[:, 1 : 1 + d] = Xb
            B[:, 1 + d :] = Y[rows]
            if sw is not None:
                B *= sw[rows, None]
            # Z^T = P^{-T} B^T on the Fortran view B^T, in place.
            Z = blas.dtrsm(1.0, P, B.T, side=0, lower=0, trans_a=1, overwrite_b=1).T
            for f in range(n_folds):
                Zf = Z[fb == f]
                G[f] += Zf.T @ Zf
        pieces = []
        for f in range(n_folds):
            mu = linalg.eigvalsh(G[f], check_finite=False)
            if not (mu[0] > 0 and mu[-1] <= _MAX_GRAM_COND * mu[0]):
                return False
            U, info = lapack.dpotrf(G[f], lower=0, clean=1)
            if info != 0:  # pragma: no cover - positive definite by the test above
                return False
            pieces.append(U @ P)
        for f in range(n_folds):
            self.R[f] = stack_r(self.R[f], pieces[f])
            self.n_rows[f] += int(np.count_nonzero(folds == f))
        self.n_rows_preconditioned += X.shape[0]
        return True

    def merge(self, other):
        """Pool another accumulator's factors into this one, fold by fold."""
        for f in range(self.R.shape[0]):
            self.R[f] = stack_r(self.R[f], other.R[f])
        self.n_rows += other.n_rows
        return self

    def pooled(self, exclude=None):
        """R factor of all folds but ``exclude`` (all folds when None)."""
        keep = [f for f in range(self.R.shape[0]) if f != exclude]
        return stack_r(*self.R[keep])


# ----------------------------------------------------------------- spectrum
def spectrum_from_factor(R, n_features, *, fit_intercept=True):
    """The :class:`Spectrum` of the rows behind an augmented R factor.

    Equals ``decompose(X, Y, sample_weight=w, fit_intercept=fit_intercept,
    solver="svd")`` on those rows (up to the signs of singular vectors and
    padding with zero singular values when there are fewer rows than
    features): the SVD is of the small ``d x d`` factor of the centred data,
    whose singular values are those of the data (no squared condition number).

    Parameters
    ----------
    R : ndarray of shape (p, p)
        Upper-triangular factor of ``[sqrt(w), sqrt(w) X, sqrt(w) Y]``.
    n_features : int
    fit_intercept : bool, default=True

    Returns
    -------
    Spectrum
    """
    d = n_features
    t = R.shape[1] - 1 - d
    if fit_intercept:
        r00 = R[0, 0]
        if r00 == 0:
            raise ValueError("The weights of the rows sum to zero.")
        X_offset = R[0, 1 : 1 + d] / r00
        y_offset = R[0, 1 + d :] / r00
        Rc = R[1:, 1:]
    else:
        X_offset = np.zeros(d)
        y_offset = np.zeros(t)
        Rc = stack_r(R[:, 1:])
    U, s, Vt = linalg.svd(Rc[:d, :d], check_finite=False)
    proj = s[:, None] * (U.T @ Rc[:d, d:])
    return Spectrum(s**2, Vt.T, proj, X_offset, y_offset)


# ---------------------------------------------------- partial_fit's state
def out_dtype(*dtypes):
    """float32 when every input was float32, float64 otherwise."""
    return np.float32 if all(np.dtype(d) == np.float32 for d in dtypes) else np.float64


class PartialFitState:
    """State of ``partial_fit``: the data seen so far, as rows of a factor.

    ``rows`` (``m x p`` with ``p = 1 + n_features + n_targets``) are any
    matrix with the Gram matrix of ``M = [sqrt(w), sqrt(w) X, sqrt(w) Y]``
    over the rows seen; they are the triangular factor ``R`` once
    ``partial_fit`` has added a chunk. ``fit`` leaves rows derived from its
    decomposition (:func:`stream_from_fit`), kept in the data's dtype and
    triangularised in float64 only when ``partial_fit`` continues.

    ``has_intercept`` is False when the rows do not carry the column of
    ``sqrt(w)`` (a ``fit`` with ``fit_intercept=False``): such a state can
    only be continued with ``fit_intercept=False``. ``unavailable`` holds the
    reason why a ``fit`` left no state: ``partial_fit`` then warns and starts
    from its chunk (it must not raise: scikit-learn calls ``partial_fit``
    after ``fit`` in its estimator checks).
    """

    def __init__(
        self,
        n_features,
        n_targets,
        y_ndim,
        *,
        dtype=np.float64,
        rows=None,
        n_rows=0,
        has_intercept=True,
        unavailable=None,
    ):
        self.n_features = n_features
        self.n_targets = n_targets
        self.y_ndim = y_ndim
        self.dtype = np.dtype(dtype)
        self.rows = rows
        self.n_rows = int(n_rows)
        self.has_intercept = has_intercept
        self.unavailable = unavailable

    def added(self, X, Y, sample_weight):
        """A new state with the rows of a chunk added (this one is unchanged)."""
        d, t = self.n_features, self.n_targets
        factors = FoldFactors(1, d, t)
        if self.rows is not None:
            factors.R[0] = stack_r(self.rows)
        factors.add(X, Y, sample_weight)
        return PartialFitState(
            d,
            t,
            self.y_ndim,
            dtype=out_dtype(self.dtype, X.dtype),
            rows=factors.R[0],
            n_rows=self.n_rows + X.shape[0],
            has_intercept=self.has_intercept,
        )


def next_stream_state(state, X, y, sample_weight, fit_intercept):
    """``partial_fit``'s state after adding a chunk to ``state`` (or None).

    ``X``, ``y`` and ``sample_weight`` are validated by the caller, which sets
    its own attributes from the returned state only once this succeeded.
    """
    Y = y.reshape(-1, 1) if y.ndim == 1 else y
    if state is None:
        state = PartialFitState(X.shape[1], Y.shape[1], y.ndim, dtype=X.dtype)
    elif (Y.shape[1], y.ndim) != (state.n_targets, state.y_ndim):
        raise ValueError(
            "y has a different number of targets (or dimensions) than in "
            f"fit or previous calls to partial_fit: shape {y.shape[1:]} instead "
            f"of {(state.n_targets,) if state.y_ndim == 2 else ()}."
        )
    elif state.unavailable is not None:
        warnings.warn(state.unavailable, UserWarning, stacklevel=4)
        state = PartialFitState(X.shape[1], Y.shape[1], y.ndim, dtype=X.dtype)
    elif fit_intercept and not state.has_intercept:
        raise ValueError(
            "partial_fit cannot continue with fit_intercept=True from a fit "
            "with fit_intercept=False, which kept no column means; call fit "
            "again with fit_intercept=True."
        )
    w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    return state.added(X, np.asarray(Y, dtype=np.float64), w)


_MAX_STATE_TARGETS = 64


def stream_from_fit(X, y, sample_weight, spectrum, solver, *, fit_intercept):
    """The state that ``partial_fit`` continues from after ``fit``.

    Built from what ``fit`` computed, at a cost small beside ``fit``'s own
    (no QR of the data):

    - with fewer rows than columns (``n < n_features + n_targets``), the
      centred rows themselves, ``O(n p)`` (exact);
    - from a spectrum with a basis (``"svd"``, ``"gram"``), ``O(d**2 + n
      t**2)``: with ``Xc = U diag(s) V^T``, the rows ``[diag(s) V^T, U^T
      Yc]`` (``U^T Yc = proj / s``) have the Gram matrix of ``[Xc, Yc]``
      except for the residual block ``Yc^T (I - U U^T) Yc``, added as ``t``
      rows; a row ``sqrt(W) [1, X_offset, y_offset]`` restores the
      intercept column when ``fit_intercept`` (it is orthogonal to the
      centred data). The state has the accuracy of the decomposition: that
      of a Gram matrix for ``"gram"``, whose directions below its rank
      cut-off carry no correlation with ``y``;
    - from ``"dual"`` on tall data, the ``d`` leading directions of
      ``Xc^T U``.

    ``solver="cholesky"`` keeps no decomposition (deriving a factor would
    cost another pass of ``X^T X``, as much as that fit), and a dense copy of
    sparse wide ``X`` would be larger than the data: there ``fit`` leaves a
    state that makes ``partial_fit`` warn and start from its own chunk.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n, d)
    y : ndarray of shape (n,) or (n, t)
    sample_weight : ndarray of shape (n,) or None
    spectrum : Spectrum or None
    solver : str
        The solver ``fit`` used.
    fit_intercept : bool
        The ``fit_intercept`` of that fit.

    Returns
    -------
    PartialFitState
    """
    Y = y.reshape(-1, 1) if y.ndim == 1 else y
    n, d = X.shape
    t = Y.shape[1]
    p = 1 + d + t
    dtype = X.dtype
    W = float(n if sample_weight is None else np.sum(sample_weight, dtype=float))
    state = dict(dtype=dtype, n_rows=n)

    def unavailable(why):
        return PartialFitState(
            d,
            t,
            y.ndim,
            unavailable=(
                f"partial_fit cannot add rows to this fit ({why}): it starts "
                "from this chunk, without the rows fit saw. Fit with "
                "solver='svd' or 'gram' to continue a fit, or pass every "
                "chunk to partial_fit."
            ),
            **state,
        )

    if t > _MAX_STATE_TARGETS:
        # The factor holds (1 + d + t)**2 numbers and its residual block needs
        # a t x t eigendecomposition: with thousands of targets that would be
        # most of fit's time and gigabytes (measured: 0.20 of a 0.22 s fit
        # with 1000 targets).
        return unavailable(
            f"{t} targets, more than {_MAX_STATE_TARGETS}: the state would hold "
            f"(1 + n_features + n_targets)**2 = {p**2} numbers"
        )
    if n + 1 <= p:
        if sp.issparse(X):
            return unavailable(
                "sparse X with fewer rows than columns: the state would be a "
                "dense copy of X"
            )
        # The centred rows themselves: exact, whatever fit_intercept.
        rows = np.zeros((n + 1, p), dtype=dtype)
        if W > 0:
            rows[0, 0] = np.sqrt(W)
            rows[0, 1 : 1 + d] = np.sqrt(W) * np.average(X, 0, sample_weight)
            rows[0, 1 + d :] = np.sqrt(W) * np.average(Y, 0, sample_weight)
        # In place (no hstack temporaries): this copy is most of the state's cost.
        shift = rows[0, 1:] / max(np.sqrt(W), 1e-300)
        rows[1:, 1 : 1 + d] = X
        rows[1:, 1 : 1 + d] -= shift[:d]
        rows[1:, 1 + d :] = Y
        rows[1:, 1 + d :] -= shift[d:]
        if sample_weight is not None:
            rows[1:] *= np.sqrt(sample_weight).astype(dtype)[:, None]
        return PartialFitState(d, t, y.ndim, rows=rows, **state)
    if spectrum is None:
        return unavailable(f"solver={solver!r} keeps no decomposition of X")
    lam = np.asarray(spectrum.lam, dtype=np.float64)
    proj = np.asarray(spectrum.proj, dtype=np.float64)
    if not spectrum.has_basis:  # "dual" on tall data: U is n x n
        top = np.argsort(lam)[::-1]
        top, rest = top[:d], top[d:]
        BX = np.asarray(spectrum.rmatmat(spectrum.left[:, top]), np.float64).T
        P = proj[top]
        G_res = proj[rest].T @ proj[rest]
    else:
        s = np.sqrt(lam)
        BX = s[:, None] * np.asarray(spectrum.basis, dtype=np.float64).T
        cut = 0.0
        if solver != "svd" and lam.size:
            cut = rank_rtol(solver, (n, d), dtype, np.float64) * lam.max()
        keep = lam > cut
        P = np.zeros_like(proj)
        P[keep] = proj[keep] / s[keep, None]
        Yc = np.asarray(Y, dtype=np.float64) - spectrum.y_offset
        Yw = Yc if sample_weight is None else Yc * sample_weight[:, None]
        G_res = Yc.T @ Yw - P.T @ P
    r = BX.shape[0]
    rows = np.zeros((1 + r + t, p))
    if fit_intercept:
        rows[0, 0] = np.sqrt(W)
        rows[0, 1 : 1 + d] = np.sqrt(W) * spectrum.X_offset
        rows[0, 1 + d :] = np.sqrt(W) * spectrum.y_offset
    rows[1 : 1 + r, 1 : 1 + d] = BX
    rows[1 : 1 + r, 1 + d :] = P
    mu, vec = linalg.eigh(G_res)
    rows[1 + r :, 1 + d :] = np.sqrt(np.maximum(mu, 0))[:, None] * vec.T
    return PartialFitState(
        d,
        t,
        y.ndim,
        rows=rows.astype(dtype, copy=False),
        has_intercept=bool(fit_intercept),
        **state,
    )
