"""Array API helpers: one namespace and device from the data to the fitted arrays.

With ``sklearn.set_config(array_api_dispatch=True)``, arrays of any library
that implements the array API standard (PyTorch, CuPy, ``array_api_strict``)
stay in their namespace and on their device; with dispatch off (the default)
every helper here returns NumPy's namespace and the NumPy code paths run
unchanged. The helpers follow :mod:`sklearn.utils._array_api` and fall back to
small local versions where an older scikit-learn lacks one.

What the standard lacks and how it is replaced (see also the user guide's
``array_api`` page):

- no triangular solve: :func:`cho_solver` uses ``torch.cholesky_solve`` or
  CuPy's ``solve_triangular`` when the namespace is one of those, otherwise
  ``xp.linalg.solve`` on the regularised matrix (an LU solve: same accuracy
  for a positive definite matrix, about twice the flops);
- no condition estimate: the singularity test of ``solver="cholesky"`` uses
  the bound ``rcond >= alpha / (||M||_1 + alpha)`` (:func:`cho_solver`);
- the (small) hyperparameter arrays ``alpha`` and ``xi`` are validated on the
  host, in NumPy, and sent to the data's device once.
"""

import math

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from sklearn import get_config
from sklearn.externals.array_api_compat import is_array_api_obj
from sklearn.utils._array_api import get_namespace_and_device

try:  # scikit-learn >= 1.8
    from sklearn.utils._array_api import move_to as _sk_move_to
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_move_to = None
try:  # scikit-learn >= 1.9
    from sklearn.utils._array_api import check_same_namespace as _sk_same_namespace
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_same_namespace = None

__all__ = [
    "check_numpy_only",
    "check_same_namespace",
    "cho_solver",
    "eigh",
    "eigvalsh",
    "float_dtype",
    "is_numpy_namespace",
    "ldexp",
    "max_abs",
    "namespace",
    "svd",
    "to_namespace",
    "to_numpy",
]

_NUMPY_NAMES = {
    "numpy",
    "array_api_compat.numpy",
    "sklearn.externals.array_api_compat.numpy",
}


def is_numpy_namespace(xp):
    """Whether ``xp`` is NumPy (or a wrapper of it)."""
    return xp.__name__ in _NUMPY_NAMES


def namespace(*arrays):
    """``(xp, device, is_numpy)`` of the arrays, ignoring None and sparse.

    ``xp`` is NumPy's namespace and ``device`` None when array API dispatch
    is off, when every array is a NumPy array, a sparse matrix, a list or a
    scalar, or when no array is given.
    """
    xp, _, device = get_namespace_and_device(*arrays)
    numpy_ = is_numpy_namespace(xp)
    return xp, (None if numpy_ else device), numpy_


def _is_xp_array(a):
    """Whether ``a`` is a dense array of some namespace (not a list or scalar)."""
    return (
        a is not None
        and not sp.issparse(a)
        and not isinstance(a, np.generic)
        and is_array_api_obj(a)  # torch tensors have no __array_namespace__
    )


def to_namespace(*arrays, xp, device):
    """The arrays moved to ``xp`` on ``device`` (None, lists, scalars unchanged).

    Used to bring ``y`` and ``sample_weight`` to the namespace and device of
    ``X``, as scikit-learn's estimators do ("everything follows X").
    """
    moved = []
    for a in arrays:
        if not _is_xp_array(a):
            moved.append(a)
        elif _sk_move_to is not None:
            moved.append(_sk_move_to(a, xp=xp, device=device))
        else:  # pragma: no cover - older scikit-learn: through NumPy
            a_xp, _, numpy_ = namespace(a)
            if a_xp is xp:
                moved.append(a)
            else:
                host = a if numpy_ else to_numpy(a)
                moved.append(host if is_numpy_namespace(xp) else xp.asarray(host))
    return moved[0] if len(moved) == 1 else tuple(moved)


def to_numpy(a):
    """``a`` as a NumPy array if it is an array of another namespace, else ``a``.

    Copies the data to the host, so it is for arrays that are small next to
    the data (hyperparameters such as ``alpha`` and ``xi``, the search's
    per-candidate errors). Lists, scalars, None and NumPy arrays are returned
    unchanged.
    """
    if not _is_xp_array(a) or isinstance(a, np.ndarray):
        return a
    if _sk_move_to is not None:
        return np.asarray(_sk_move_to(a, xp=np, device="cpu"))
    name = type(a).__module__  # pragma: no cover - older scikit-learn
    if name.startswith("torch"):  # pragma: no cover
        return a.cpu().numpy()
    if name.startswith("cupy"):  # pragma: no cover
        return a.get()
    return np.asarray(a)  # pragma: no cover


def float_dtype(xp, device):
    """The most precise float dtype of ``xp`` on ``device``: float64 if it has it.

    The filters ``q(lam)`` are evaluated in this dtype, as the NumPy path
    evaluates them in float64 whatever the data's dtype; devices without
    float64 (Apple's MPS, ``array_api_strict``'s ``"no_float64"``) use float32.
    """
    if is_numpy_namespace(xp):
        return np.float64
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:  # pragma: no cover - pre-2023.12 namespaces
        return xp.float64
    dtypes = info().dtypes(kind="real floating", device=device)
    return xp.float64 if "float64" in dtypes else xp.float32


def max_abs(A, xp):
    """The largest magnitude of the entries of ``A`` as a Python float (0 if empty).

    One scalar is read back from the device.
    """
    values = A.data if sp.issparse(A) else A
    if math.prod(values.shape) == 0:
        return 0.0
    if is_numpy_namespace(xp):  # no temporary |values|
        return float(max(np.max(values), -np.min(values)))
    return float(xp.max(xp.abs(values)))


def ldexp(A, exponent, xp):
    """``A * 2**exponent``, exactly (as :func:`numpy.ldexp`), in ``A``'s dtype.

    Outside NumPy the factor is applied in steps of at most ``2**60`` so that
    each factor is representable in float32; every step is exact as long as
    the final result does not underflow.
    """
    exponent = int(exponent)
    if exponent == 0:
        return A
    if is_numpy_namespace(xp):
        return np.ldexp(A, exponent).astype(A.dtype, copy=False)
    step = 60 if exponent > 0 else -60
    while exponent != 0:
        e = step if abs(exponent) > 60 else exponent
        A = A * (2.0**e)
        exponent -= e
    return A


def eigh(A, xp):
    """Eigenvalues (clipped at zero, increasing) and eigenvectors of symmetric ``A``.

    NumPy: LAPACK's divide and conquer ``syevd`` through SciPy, overwriting
    ``A``. Other namespaces: ``xp.linalg.eigh``.
    """
    if is_numpy_namespace(xp):
        lam, vectors = linalg.eigh(
            A, overwrite_a=True, check_finite=False, driver="evd"
        )
        return np.maximum(lam, 0), vectors
    lam, vectors = xp.linalg.eigh(A)
    return xp.clip(lam, min=0.0), vectors


def eigvalsh(A, xp):
    """Eigenvalues (clipped at zero, increasing) of symmetric ``A``.

    NumPy: LAPACK's ``syevd`` without eigenvectors through SciPy, overwriting
    ``A``. Other namespaces: ``xp.linalg.eigvalsh``.
    """
    if is_numpy_namespace(xp):
        lam = linalg.eigh(
            A, eigvals_only=True, overwrite_a=True, check_finite=False, driver="evd"
        )
        return np.maximum(lam, 0)
    return xp.clip(xp.linalg.eigvalsh(A), min=0.0)


def svd(A, xp):
    """Thin SVD ``U, s, Vt`` of ``A`` (NumPy: SciPy's ``gesdd``, overwriting ``A``)."""
    if is_numpy_namespace(xp):
        return linalg.svd(A, full_matrices=False, overwrite_a=True, check_finite=False)
    return xp.linalg.svd(A, full_matrices=False)


def cho_solver(A, xp, *, alpha=None, rank_rtol=None):
    """``B -> A^{-1} B`` for a symmetric positive definite ``A`` (not NumPy).

    The NumPy path keeps SciPy's ``cho_factor``/``cho_solve`` and LAPACK's
    condition estimate ``pocon`` (see :func:`skdistill._spectral.cholesky_path`);
    this is its array API counterpart. PyTorch and CuPy solve with the
    Cholesky factor; other namespaces (``array_api_strict``) have no
    triangular solve in the standard and use ``xp.linalg.solve(A, B)``.

    Raises :class:`numpy.linalg.LinAlgError` when the factorisation fails
    (or gives non-finite numbers, as CuPy does) and, with ``rank_rtol``, when
    the lower bound ``alpha / ||A||_1`` of the reciprocal condition number
    is at most ``rank_rtol`` (``A = M + alpha I`` with ``M`` positive
    semi-definite, so every eigenvalue of ``A`` is at least ``alpha`` and at
    most ``||A||_1``). The standard
    has no condition estimator; the bound is conservative (it may call a
    well-conditioned ``A`` singular when ``alpha`` is tiny beside ``||A||``),
    and the caller then uses an eigendecomposition, which is accurate in
    every case.
    """
    if rank_rtol is not None and math.prod(A.shape):
        norm = float(xp.max(xp.sum(xp.abs(A), axis=0)))
        if not alpha / norm > rank_rtol:
            raise np.linalg.LinAlgError(
                "X^T X + alpha I may be singular to working precision "
                f"(lower bound of its reciprocal condition number {alpha / norm:.2g})."
            )
    name = xp.__name__.rsplit(".", 1)[-1]
    try:
        L = xp.linalg.cholesky(A)
    except Exception as exc:  # torch and NumPy raise their own LinAlgError
        raise np.linalg.LinAlgError(str(exc)) from exc
    if not bool(xp.all(xp.isfinite(L))):
        raise np.linalg.LinAlgError("The Cholesky factorisation failed.")
    if name == "torch":
        import torch

        return lambda B: torch.cholesky_solve(B, L)
    if name == "cupy":  # pragma: no cover - needs a GPU
        from cupyx.scipy.linalg import solve_triangular

        return lambda B: solve_triangular(
            L, solve_triangular(L, B, lower=True), lower=True, trans="T"
        )
    return lambda B: xp.linalg.solve(A, B)


def check_same_namespace(X, estimator, *, attribute, method):
    """Raise if ``X`` is not of the namespace and device of ``estimator.attribute``.

    scikit-learn's check (>= 1.9), a no-op with an older scikit-learn or with
    dispatch off.
    """
    if _sk_same_namespace is not None:
        _sk_same_namespace(X, estimator, attribute=attribute, method=method)


def check_numpy_only(estimator, *arrays, method="fit"):
    """Raise a TypeError if array API dispatch is on and some array is not NumPy.

    For the estimators that support NumPy (and sparse) input only; one call
    at the top of their ``fit`` (and ``predict``). With dispatch off,
    non-NumPy arrays are left to scikit-learn's validation (which converts
    what :func:`numpy.asarray` can convert), as before.

    Parameters
    ----------
    estimator : estimator or str
        The estimator (or its name) that the message names.
    *arrays : arrays, lists, scalars or None
        The inputs of the call.
    method : str, default="fit"
        The method that the message names.
    """
    name = estimator if isinstance(estimator, str) else type(estimator).__name__
    if not get_config()["array_api_dispatch"]:
        return
    for a in arrays:
        if _is_xp_array(a) and not isinstance(a, np.ndarray):
            _, _, numpy_ = namespace(a)
            if numpy_:
                continue
            raise TypeError(
                f"{name}.{method}() supports NumPy arrays "
                "(and sparse matrices) only, got an array of "
                f"{type(a).__module__}.{type(a).__name__} with "
                "array_api_dispatch=True. Only RepeatedSelfDistillationRegressor "
                "(and the closed-form SelfDistillCV) support the array API; "
                "convert the data to NumPy to use this estimator."
            )
