"""Folds of data read once: iterables of chunks and dask collections.

Chunked, out-of-core and distributed rows reach the closed forms only through
the per-fold triangular factors of :mod:`skdistill._factors` (TSQR of
``[sqrt(w), sqrt(w) X, sqrt(w) Y]``): this module reads the chunks or dask
blocks into them (:func:`read_chunks`, :func:`read_dask`) and turns them into
the folds and the refit of :class:`StreamedFolds`.

Cross-validation folds are assigned to rows by a seeded hash of their global
row index (:func:`hash_folds`), so the fold of a row does not depend on how
the data were chunked, and each fold keeps its own ``R``. A training fold's
factor is the pooled factor of the other folds.
"""

import numbers
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils.validation import _check_sample_weight, validate_data

from ._cv_closed_form import PreparedFold
from ._factors import FoldFactors, out_dtype, spectrum_from_factor, stack_r
from ._linear import fit_from_factor

__all__ = [
    "StreamedFolds",
    "hash_folds",
    "prepared_fold_from_factors",
    "read_chunks",
    "read_dask",
]

_DASK_HINT = (
    "Fitting dask collections needs dask: pip install "
    "'dask[array,dataframe,distributed]' (or, in a clone of skdistill, "
    "pip install '.[dask]')."
)

# splitmix64 constants (Steele, Lea and Flood, 2014).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(z):
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def hash_folds(row_ids, n_splits, seed=0):
    """Fold of each row from a seeded hash of its global row index.

    The fold of row ``i`` is ``splitmix64(i + splitmix64(seed)) % n_splits``:
    deterministic, independent of how the rows are chunked, and close to a
    uniform random assignment (fold sizes are multinomial, not exactly equal).

    Parameters
    ----------
    row_ids : array-like of int, shape (n,)
        Global row indices (0 for the first row of the data), non-negative.
    n_splits : int
        Number of folds, at least 2.
    seed : int, default=0
        Seed of the assignment.

    Returns
    -------
    folds : ndarray of shape (n,), dtype int64
        Values in ``range(n_splits)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill import hash_folds
    >>> folds = hash_folds(np.arange(10_000), n_splits=5, seed=0)
    >>> np.bincount(folds).tolist()
    [2086, 1994, 1992, 1970, 1958]
    >>> bool(np.all(hash_folds(np.arange(5000, 10_000), 5) == folds[5000:]))
    True
    """
    if not _is_int(n_splits) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}.")
    if not _is_int(seed):
        raise ValueError(f"seed must be an integer, got {seed!r}.")
    ids = np.asarray(row_ids)
    if ids.ndim != 1 or not (ids.size == 0 or np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(
            "row_ids must be a 1-D array of integer row indices, got "
            f"an array of dtype {ids.dtype} and shape {ids.shape}."
        )
    if ids.size and ids.min() < 0:
        raise ValueError(f"row_ids must be non-negative, got {ids.min()}.")
    salt = _splitmix64(np.uint64(int(seed) % 2**64))
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) + salt
    return (_splitmix64(z) % np.uint64(n_splits)).astype(np.int64)


def _is_int(value):
    """Whether ``value`` is an integer (a bool is not)."""
    return isinstance(value, numbers.Integral) and not isinstance(
        value, bool | np.bool_
    )


def prepared_fold_from_factors(R_train, R_val, n_features, *, fit_intercept=True):
    """The :class:`PreparedFold` of a split, from the R factors of its two sides.

    :func:`~skdistill._cv_closed_form.fold_statistics` sees the rows of
    ``R_val`` in place of the validation rows. The weighted validation rows
    enter it only through linear maps of ``M_val = Q_val R_val``, whose R
    factors (and so every squared error) are those of the same maps of
    ``R_val``. To keep the weight sum (the MSE's denominator) and the weighted
    total sum of squares (R^2's) those of the real rows, each row of ``R_val``
    is given the weight ``W / (2 p)`` and divided by its square root, and
    ``p`` rows with ``A = r = 0`` carry the opposite centred targets so that
    the pseudo targets' weighted mean is zero and their total sum of squares
    is that of the validation targets.
    """
    d = n_features
    p = R_val.shape[0]
    t = p - 1 - d
    spectrum = spectrum_from_factor(R_train, d, fit_intercept=fit_intercept)
    W_val = R_val[0, 0] ** 2
    if W_val <= 0:
        raise ValueError("A validation fold has no rows or a zero weight sum.")
    r = spectrum.lam.size
    offset_row = -(spectrum.X_offset @ spectrum.basis)[None, :]
    Tx = np.vstack([offset_row, spectrum.basis, np.zeros((t, r))])
    Ty = np.vstack([-spectrum.y_offset[None, :], np.zeros((d, t)), np.eye(t)])
    c = np.sqrt(W_val / (2 * p))
    A = np.zeros((2 * p, r))
    res = np.zeros((2 * p, t))
    A[:p] = (R_val @ Tx) / c
    res[:p] = (R_val @ Ty) / c
    Yc = np.zeros((p, t))
    Yc[: p - 1] = R_val[1:, 1 + d :] / (np.sqrt(2.0) * c)
    return PreparedFold(
        lam=spectrum.lam,
        A=A,
        proj=spectrum.proj,
        r=res,
        y_val=np.vstack([Yc, -Yc]),
        w_val=np.full(2 * p, c**2),
        n_train=float(R_train[0, 0] ** 2),
    )


# ------------------------------------------------------- SelfDistillCV
def is_dask_collection(X):
    """Whether ``X`` is a dask collection (without importing dask)."""
    return hasattr(X, "__dask_graph__") and callable(X.__dask_graph__)


def is_chunk_stream(X, y):
    """Whether ``SelfDistillCV.fit(X, y)`` was given an iterable of chunks."""
    return (
        y is None
        and isinstance(X, Iterable)
        and not isinstance(X, str | bytes)
        and not hasattr(X, "shape")
        and not hasattr(X, "__array__")
        and not sp.issparse(X)
        and not is_dask_collection(X)
    )


def check_stream_cv(cv, random_state):
    """``(n_splits, seed)`` of the hashed folds of streamed data."""
    if isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2:
        raise ValueError(
            "Streamed and dask data need cv to be an int >= 2 (rows are "
            f"assigned to folds by a seeded hash of their index); got cv={cv!r}."
        )
    rs = random_state
    if rs is None:
        seed = 0
    elif isinstance(rs, numbers.Integral):
        seed = int(rs)
    else:
        seed = int(rs.randint(2**31))
    return int(cv), seed


def _unpack_chunk(chunk):
    if not isinstance(chunk, tuple | list) or len(chunk) not in (2, 3):
        raise ValueError(
            "With y=None, X must be an iterable of chunks, each a tuple (X, y) "
            f"or (X, y, sample_weight); got a chunk of type {type(chunk).__name__}. "
            "To fit a data matrix, pass y."
        )
    return chunk if len(chunk) == 3 else (*chunk, None)


@dataclass
class StreamedFolds:
    """Per-fold factors of data read once, and what the refit needs."""

    factors: "FoldFactors"
    y_ndim: int
    n_ref: float  # weight sum of all rows
    n_rows: int
    names: object  # feature names (ndarray) or None
    dtype: object  # dtype of the fitted attributes

    def target_rms(self):
        """(n_targets,) weighted root mean square of each target, all rows.

        The norms of the factors' target columns: ``||sqrt(w) y||``.
        """
        d = self.factors.n_features
        R = self.factors.R[:, :, 1 + d :]
        W = float(np.sum(self.factors.R[:, 0, 0] ** 2))
        with np.errstate(over="ignore", under="ignore"):
            # Scaled per column first, so that y near 1e-200 or 1e200 keeps
            # its norm in range.
            top = np.max(np.abs(R), axis=(0, 1))
            top = np.where(top > 0, top, 1.0)
            norm = top * np.sqrt(np.sum((R / top) ** 2, axis=(0, 1)))
        return norm / np.sqrt(W) if W > 0 else norm

    def prepared_folds(self, fit_intercept, y_scale=None):
        """One :class:`PreparedFold` per hashed fold, from the pooled factors.

        ``y_scale`` (n_targets,): the folds see ``y / y_scale`` (the target
        columns of the factors divided, which is exact for an R factor).
        """
        factors, d = self.factors, self.factors.n_features
        if np.any(factors.n_rows == 0):
            empty = np.flatnonzero(factors.n_rows == 0).tolist()
            raise ValueError(
                f"cv={factors.R.shape[0]} left folds {empty} empty: too few rows "
                "for that many folds."
            )
        R = factors.R
        if y_scale is not None:
            R = R.copy()
            R[:, :, 1 + d :] /= np.asarray(y_scale, dtype=np.float64)
        return [
            prepared_fold_from_factors(
                stack_r(*R[[g for g in range(R.shape[0]) if g != f]]),
                R[f],
                d,
                fit_intercept=fit_intercept,
            )
            for f in range(R.shape[0])
        ]

    def refit_function(self, estimator):
        """``refit(params, targets, single)`` from the factor of all rows.

        Private protocol: the refit reaches the estimator only through
        :func:`skdistill._linear.fit_from_factor`, the one hand-off from a
        factor to fitted attributes (the rows themselves are gone).
        """
        d, R_all = self.factors.n_features, self.factors.pooled()

        def refit(params, targets, single):
            est = clone(estimator).set_params(
                alpha=params["alpha"], n_steps=params["n_steps"], xi=params["xi"]
            )
            alphas_, xis_ = _steps(params, est.n_steps)
            if single:
                R, ndim = R_all, self.y_ndim
            else:
                cols = list(range(1 + d)) + [1 + d + int(targets[0])]
                R, ndim = stack_r(R_all[:, cols]), 1
            return fit_from_factor(
                est,
                R,
                d,
                alphas_,
                xis_,
                n_samples=self.n_rows,
                y_ndim=ndim,
                dtype=self.dtype,
            )

        return refit


def read_chunks(chunks, n_splits, seed, probe, sample_weight=None):
    """Per-fold factors of an iterable of chunks, read once.

    ``probe`` is a fresh estimator that validates the chunks (and takes their
    width and feature names), so that a stream that fails (say, a chunk of
    another width) leaves the caller as it was.
    """
    if sample_weight is not None:
        raise ValueError(
            "sample_weight cannot be passed with an iterable of chunks: give "
            "each chunk's weights inside it, as (X, y, sample_weight) tuples."
        )
    factors, offset, y_ndim, n_ref, dtypes = None, 0, None, 0.0, set()
    for chunk in chunks:
        Xc, yc, wc = _unpack_chunk(chunk)
        if Xc is None or getattr(Xc, "shape", (1,))[0] == 0:
            continue
        Xc, yc = validate_data(
            probe,
            Xc,
            yc,
            reset=factors is None,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
        )
        Yc = np.asarray(yc, dtype=np.float64).reshape(Xc.shape[0], -1)
        if factors is None:
            factors = FoldFactors(n_splits, Xc.shape[1], Yc.shape[1])
            y_ndim = yc.ndim
        elif yc.ndim != y_ndim or Yc.shape[1] != factors.n_targets:
            raise ValueError("Every chunk of y must have the same number of targets.")
        if wc is not None:
            wc = _check_sample_weight(
                wc, Xc, dtype=np.float64, ensure_non_negative=True
            )
            n_ref += float(wc.sum())
        else:
            n_ref += Xc.shape[0]
        dtypes.add(Xc.dtype)
        n = Xc.shape[0]
        folds = hash_folds(np.arange(offset, offset + n), n_splits, seed)
        offset += n
        factors.add(Xc, Yc, wc, folds)
    if factors is None:
        raise ValueError("X yielded no chunk with rows.")
    return StreamedFolds(
        factors,
        y_ndim,
        n_ref,
        offset,
        getattr(probe, "feature_names_in_", None),
        out_dtype(*dtypes),
    )


def _steps(params, n_steps):
    alphas = np.full(n_steps + 1, float(params["alpha"]))
    xis = np.asarray(params["xi"], dtype=np.float64).reshape(n_steps)
    return alphas, xis


# --------------------------------------------------------------- dask
def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised without dask
        raise ImportError(_DASK_HINT) from exc
    return dask, da


def _as_dask_array(obj, name):
    _, da = _import_dask()
    if obj is None:
        return None
    if hasattr(obj, "to_dask_array"):  # dask DataFrame or Series
        arr = obj.to_dask_array(lengths=True)
    elif isinstance(obj, da.Array):
        arr = obj
    else:
        arr = da.from_array(np.asarray(obj))
    if arr.ndim not in ((1,) if name == "sample_weight" else (1, 2)):
        raise ValueError(
            f"{name} must be "
            + ("1-D" if name == "sample_weight" else "1-D or 2-D")
            + f", got an array of shape {arr.shape}."
        )
    if any(np.isnan(c) for c in arr.chunks[0]):
        arr = arr.compute_chunk_sizes()
    return arr


def _block_factors(X, y, w, offset, n_splits, seed, n_targets):
    """Per-fold factors of one block (runs on a dask worker)."""
    from sklearn.utils import check_array

    X = check_array(X, dtype=np.float64)
    Y = check_array(np.asarray(y).reshape(X.shape[0], -1), dtype=np.float64)
    if w is not None:
        w = np.asarray(w, dtype=np.float64)
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("sample_weight must be finite and non-negative.")
    folds = hash_folds(np.arange(offset, offset + X.shape[0]), n_splits, seed)
    return FoldFactors(n_splits, X.shape[1], n_targets).add(X, Y, w, folds)


def _merge(a, b):
    return a.merge(b)


def read_dask(X, y, sample_weight, n_splits, seed):
    """Per-fold factors of dask arrays or DataFrames, read once."""
    dask, _ = _import_dask()
    columns = getattr(X, "columns", None)
    X = _as_dask_array(X, "X")
    y = _as_dask_array(y, "y")
    if X.ndim != 2:
        raise ValueError("X must be 2-D.")
    if y is None:
        raise ValueError("SelfDistillCV requires y to be passed, but y is None.")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have different numbers of rows: {X.shape[0]} and {y.shape[0]}."
        )
    X = X.rechunk({1: -1})
    y = y.rechunk({0: X.chunks[0]} if y.ndim == 1 else {0: X.chunks[0], 1: -1})
    if sample_weight is not None and np.ndim(sample_weight) == 0:  # a constant
        _, da = _import_dask()
        sample_weight = da.full(X.shape[0], float(sample_weight), chunks=X.chunks[0])
    w = _as_dask_array(sample_weight, "sample_weight")
    if w is not None:
        if w.shape[0] != X.shape[0]:
            raise ValueError(
                f"sample_weight has {w.shape[0]} rows, but X has {X.shape[0]}."
            )
        w = w.rechunk({0: X.chunks[0]})
    n_targets = 1 if y.ndim == 1 else y.shape[1]
    names = None
    if columns is not None and all(isinstance(c, str) for c in columns):
        names = np.asarray(columns, dtype=object)
    xb = X.to_delayed().ravel()
    yb = y.to_delayed().ravel()
    wb = [None] * len(xb) if w is None else w.to_delayed().ravel()
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]])
    parts = [
        dask.delayed(_block_factors)(xi, yi, wi, int(o), n_splits, seed, n_targets)
        for xi, yi, wi, o in zip(xb, yb, wb, offsets, strict=True)
    ]
    while len(parts) > 1:  # pairwise tree reduction of the factors
        pairs = [parts[i : i + 2] for i in range(0, len(parts), 2)]
        parts = [dask.delayed(_merge)(*pr) if len(pr) == 2 else pr[0] for pr in pairs]
    if w is None:
        (factors,) = dask.compute(parts[0])
        n_ref = float(X.shape[0])
    else:
        factors, n_ref = dask.compute(parts[0], w.sum())
        n_ref = float(n_ref)
    return StreamedFolds(
        factors, y.ndim, n_ref, int(X.shape[0]), names, out_dtype(X.dtype)
    )
