"""Repeated self-distillation of ridge regression in closed form."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import _array_api
from ._array_api import check_same_namespace, namespace, to_namespace
from ._factors import (
    PartialFitState,
    next_stream_state,
    spectrum_from_factor,
    stream_from_fit,
)
from ._filter import (
    inverse_filter_path,
    inverse_filter_path_per_target,
    xi_bar_prefixes,
    xi_to_xi_bar,
)
from ._spectral import (
    KernelFit,
    cholesky_path,
    decompose,
    kernel_fit,
    rank_rtol,
    resolve_solver,
    work_dtype,
)
from ._validation import check_target_steps

__all__ = ["RepeatedSelfDistillationRegressor"]


def _check_steps(alpha, xi, n_steps, n_targets):
    """Validated ``alpha`` and ``xi``: per step, or per target and step.

    1-D ``alphas`` (k + 1,) and ``xis`` (k,) when no parameter is per target;
    otherwise ``alphas`` (n_targets, K + 1) and ``xis`` (n_targets, K) with NaN
    beyond each target's own number of steps (see
    :func:`~skdistill._validation.check_target_steps`).
    """
    return check_target_steps(alpha, xi, n_steps, n_targets)


def _xi_bar_of(xis):
    """``xi_bar_``: (k + 1,) for shared steps, (n_targets, K + 1) zero-padded."""
    if xis.ndim == 1:
        return xi_to_xi_bar(xis)
    finite = np.isfinite(xis)
    prefixes = xi_bar_prefixes(np.where(finite, xis, 0.0))
    return prefixes[finite.sum(axis=1), np.arange(xis.shape[0])]


def _n_targets(y):
    return 1 if y.ndim == 1 else y.shape[1]


def _rank_rtol(solver, X):
    """:func:`~skdistill._spectral.rank_rtol` of ``X`` decomposed by ``solver``."""
    return rank_rtol(solver, X.shape, X.dtype, work_dtype(X))


def _power_of_two_scale(A):
    """Exponent ``e`` such that ``A * 2**e`` has entries of order one, or 0.

    Only data whose largest magnitude lies outside
    ``[2**-(maxexp/4), 2**(maxexp/4)]`` (about 1e-77 to 1e77 in float64, 2e-10
    to 4e9 in float32) are rescaled: there, squares and Gram matrices would
    overflow or underflow. Powers of two keep the rescaled data exact.
    """
    xp, _, _ = namespace(A)
    top = _array_api.max_abs(A, xp)  # one number read back from the device
    if top == 0.0:
        return 0
    exponent = np.frexp(top)[1]
    # maxexp (the standard's finfo lacks it): 1024 in float64, 128 in float32
    bound = np.frexp(float(xp.finfo(A.dtype).max))[1] // 4
    return 0 if -bound <= exponent <= bound else -int(exponent)


def _scaled(A, exponent):
    """``A * 2**exponent`` in a copy (sparse matrices keep their format)."""
    if exponent == 0:
        return A
    if sp.issparse(A):
        A = A.copy()
        A.data = np.ldexp(A.data, exponent).astype(A.dtype, copy=False)
        return A
    return _array_api.ldexp(A, exponent, namespace(A)[0])


def _x_exponent(X, alphas):
    """Power of two that brings ``X`` to order one without harming ``alpha``.

    Scaling ``X`` by ``2**e`` multiplies the penalties by ``4**e`` (with
    ``w = 2**e w'``, ``||y - X w||^2 + alpha ||w||^2`` is
    ``||y - X' w'||^2 + alpha 4**e ||w'||^2``). A huge ``X`` is scaled down
    (a penalty that underflows to zero was negligible). A tiny ``X`` is scaled
    up only while the penalties stay at most one: beyond that the penalty
    dominates the tiny eigenvalues, the unscaled arithmetic is accurate, and
    scaling up would only push the (tiny) coefficients towards underflow.
    """
    exponent = _power_of_two_scale(X)
    alpha_max = float(np.max(alphas))
    if exponent > 0 and alpha_max > 0:
        exponent = min(exponent, max(0, -np.frexp(alpha_max)[1] // 2))
    return exponent


def _singular_values(lam, rank_rtol, n_components, x_exponent, dtype):
    """``singular_values_`` from eigenvalues ``lam`` of the scaled problem.

    In decreasing order; every solver reports ``n_components = min(n, d)``.
    Null directions (``lam <= rank_rtol * lam_max``, round-off of zero) are
    reported as 0: their square roots, up to ``1e-8 * lam_max**0.5`` for a
    Gram matrix, differ between eigensolvers and libraries.
    """
    xp, _, numpy_ = namespace(lam)
    lam_max = float(xp.max(lam)) if lam.shape[0] else 0.0
    null = rank_rtol * lam_max
    if numpy_:
        s2 = np.where(lam > null, lam, 0.0)
        singular_values = np.sqrt(np.sort(s2)[::-1][:n_components])
    else:
        s2 = xp.where(lam > null, lam, xp.zeros_like(lam))
        singular_values = xp.sqrt(xp.sort(s2, descending=True)[:n_components])
    singular_values = _array_api.ldexp(singular_values, -x_exponent, xp)
    return xp.astype(singular_values, dtype)


class RepeatedSelfDistillationRegressor(RegressorMixin, BaseEstimator):
    """Ridge regression distilled into itself ``n_steps`` times, in closed form.

    The teacher is ridge regression with penalty ``alpha``. Student ``i`` is
    ridge regression fitted to the mixed labels
    ``xi_i * (previous step's predictions) + (1 - xi_i) * y``. All steps are
    computed from one decomposition of the training data as a spectral filter
    (Pareek, Oh and Du, 2024): each principal direction of the least-squares
    fit is shrunk by ``h * p_k(h)`` with ``h = s**2 / (s**2 + alpha)`` and
    ``p_k(h) = sum_m xi_bar_[m] * h**m``, where ridge is ``p_k = 1``.

    Every parameter of the chain may also be given per target (column of
    ``y``), as :class:`~sklearn.linear_model.Ridge` takes one ``alpha`` per
    target: the targets still share one decomposition, and each gets its own
    filter (see "Per-target parameters" in the Notes).

    Parameters
    ----------
    alpha : float or array-like, default=1.0
        Non-negative L2 penalty. ``alpha = 0`` gives minimum-norm least
        squares. Shapes:

        - a float: every step and target;
        - shape (n_steps + 1,): the teacher and each student get their own
          penalty (a 1-D ``alpha`` is always per step);
        - shape (n_targets, 1): one penalty per target, at every step;
        - shape (n_targets, n_steps + 1): per target and step;
        - shape (n_targets,), only when ``n_steps`` is 0 for every target
          (there one penalty per step is one penalty): one penalty per
          target, exactly as in :class:`~sklearn.linear_model.Ridge`.

        Otherwise per-target penalties must be a column: a 1-D array whose
        length is not ``n_steps + 1`` raises a ``ValueError`` that says so
        (deciding between "per step" and "per target" by the length would
        change the meaning when ``n_targets == n_steps + 1``).
    n_steps : int or array-like of int of shape (n_targets,), default=1
        Number of student steps ``k``; ``n_steps=0`` is ridge regression. An
        array gives each target its own count: target ``t`` uses the first
        ``n_steps[t]`` students, and ``n_steps + 1`` in the shapes of
        ``alpha`` and ``xi`` means ``max(n_steps) + 1``.
    xi : float or array-like, default=0.5
        Weight of the previous step's predictions in each student's labels.
        Any real number: optimal values are often negative or above one.
        A float, shape (n_steps,) (one per step), or 2-D of shape
        (n_targets, 1) or (n_targets, n_steps) (per target and step).
    fit_intercept : bool, default=True
        Whether to fit an intercept (the data are centred as in
        :class:`~sklearn.linear_model.Ridge`).
    solver : {"auto", "svd", "gram", "dual", "cholesky"}, default="auto"
        How the training data are decomposed, once per fit:

        - ``"svd"``: thin SVD of the centred ``X`` (dense only; most accurate);
        - ``"gram"``: eigendecomposition of ``X^T X`` (best for ``n >> d`` and
          for sparse ``X``);
        - ``"dual"``: the ``n x n`` kernel ``X X^T`` (best for ``d >> n``). On
          wide data (``d > n``) its eigenvalues (without eigenvectors) and the
          Cholesky chain of ``"cholesky"``, the same numbers to round-off at
          about the cost of one :class:`~sklearn.linear_model.Ridge` fit plus
          an eigenvalue computation; its eigendecomposition when some
          ``alpha`` is below the rank cut-off (null directions are then
          dropped) or the chain has more than four distinct penalties;
        - ``"auto"``: ``"svd"`` when some ``alpha`` is zero on dense data,
          otherwise ``"gram"`` when ``n >= d`` and ``"dual"`` when ``n < d``;
        - ``"cholesky"``: no eigendecomposition; one Cholesky factorisation of
          ``X^T X + alpha I`` (or ``X X^T + alpha I`` when ``n < d``) per
          distinct ``alpha``, then two triangular solves per step. About the
          cost of one :class:`~sklearn.linear_model.Ridge` fit when ``d > n``
          (``"dual"`` also computes the eigenvalues of ``X X^T``). Needs every
          ``alpha > 0`` and does not set ``singular_values_``. When
          ``X^T X + alpha I`` is singular to working precision (a tiny
          ``alpha`` on rank-deficient ``X``) it warns and uses ``"gram"``
          (``n >= d``) or ``"dual"`` instead, as ``solver_`` then says.

        Directions whose eigenvalue is below the decomposition's rounding
        error (``eps * max(n, d)`` times the largest singular value for
        ``"svd"``, times the largest eigenvalue for ``"gram"`` and ``"dual"``)
        are numerically null. ``"svd"`` always drops them, as
        :func:`numpy.linalg.lstsq` does; ``"gram"`` and ``"dual"`` drop them
        when some ``alpha`` is that small too. So as ``alpha -> 0`` every
        solver tends to the minimum-norm least-squares solution. ``X`` and
        ``y`` of extreme magnitude (beyond about 1e77 or below 1e-77 in
        float64) are rescaled internally by powers of two.

        float32 data are decomposed in float64 (for ``"gram"`` and
        ``"cholesky"`` on tall NumPy data by blocks of rows, otherwise from a
        float64 centred copy of ``X``) and the fitted arrays rounded to float32:
        a Gram matrix formed in float32 would square the condition number in
        float32 arithmetic. Their numerically null directions are those of
        the float32 SVD (``eps32 * max(n, d)`` times the largest singular
        value) for every solver.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Coefficients of the last student (of each target's own last student
        when ``n_steps`` is per target). As with
        :class:`~sklearn.linear_model.Ridge`, a ``y`` of shape
        (n_samples, 1) gives shape (n_features,) and predictions of shape
        (n_samples,).
    intercept_ : float or ndarray of shape (n_targets,)
        Intercept of the last student.
    coef_path_ : ndarray of shape (n_steps + 1, n_features) or \
            (n_steps + 1, n_targets, n_features)
        Coefficients of the teacher (index 0) and of every student. With
        ``n_steps`` per target, the first axis has ``max(n_steps) + 1``
        entries and a target whose steps ran out repeats its last student.
    intercept_path_ : ndarray of shape (n_steps + 1,) or (n_steps + 1, n_targets)
        Intercepts of the teacher and of every student.
    xi_bar_ : ndarray of shape (n_steps + 1,) or (n_targets, max(n_steps) + 1)
        Effective polynomial coefficients of the filter; they sum to one.
        Of shape (n_steps + 1,) when ``alpha``, ``xi`` and ``n_steps`` are
        shared by every target, whatever ``y``; of shape
        (n_targets, max(n_steps) + 1) as soon as one of them is per target
        (a 2-D ``alpha`` or ``xi``, an array ``n_steps``, or Ridge's
        ``alpha`` of shape (n_targets,)): row ``t`` is target ``t``'s, padded
        with zeros beyond its own ``n_steps[t] + 1`` entries.
    singular_values_ : ndarray of shape (min(n_samples, n_features),)
        Singular values of the centred (weighted) training data, in
        decreasing order; those of null directions (below the solver's rank
        cut-off, round-off of zero) are 0. Not set by ``solver="cholesky"``.
    solver_ : str
        The solver used.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    Notes
    -----
    **Per-target parameters.** All targets share one decomposition (or, for
    ``solver="cholesky"``, one factorisation per distinct penalty); target
    ``t``'s coefficients are ``basis @ (q_t * proj[:, t])`` with its own
    filter ``q_t``, so a per-target fit costs about as much as a shared one
    and equals a loop of single-target fits with the corresponding scalar
    parameters. A per-target array with one row (or ``n_steps`` of length
    one) is shared by every target, as :class:`~sklearn.linear_model.Ridge`
    broadcasts an ``alpha`` of shape (1,). With ``n_steps`` per target, the
    entries of ``alpha`` and ``xi`` beyond a target's own count are ignored:
    they may be NaN (convenient padding), and numbers there must still be
    valid (finite; non-negative for ``alpha``). ``staged_predict`` then yields
    ``max(n_steps) + 1`` stages, a target whose steps ran out repeating its
    last stage, so the last stage is always :meth:`predict`.

    See Also
    --------
    SelfDistillCV : Tunes ``alpha``, ``xi`` and ``n_steps`` by exact
        cross-validation.
    sklearn.linear_model.Ridge : The teacher (``n_steps=0``).

    References
    ----------
    .. [1] D. Pareek, S. Oh and S. S. Du. "Understanding the Gains from
       Repeated Self-Distillation". NeurIPS 2024. arXiv:2407.04600.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skdistill import RepeatedSelfDistillationRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=50)
    >>> reg = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=2, xi=[0.5, 1.5])
    >>> reg.fit(X, y).coef_.round(3)
    array([ 0.953, -1.827,  0.487])
    >>> reg.xi_bar_
    array([-0.5 ,  0.75,  0.75])
    >>> teacher = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=0).fit(X, y)
    >>> bool(np.allclose(teacher.coef_, Ridge(alpha=1.0).fit(X, y).coef_))
    True

    Per-target penalties, weights and step counts, from one decomposition:

    >>> Y = np.column_stack([y, -y, 2 * y])
    >>> reg = RepeatedSelfDistillationRegressor(
    ...     alpha=[[1.0], [0.5], [2.0]], xi=[[0.5, np.nan], [1.5, 0.2], [0.5, 0.5]],
    ...     n_steps=[1, 2, 2],
    ... ).fit(X, Y)
    >>> reg.coef_.shape, reg.xi_bar_.shape
    ((3, 3), (3, 3))
    >>> reg.xi_bar_[0]
    array([0.5, 0.5, 0. ])
    >>> one = RepeatedSelfDistillationRegressor(alpha=0.5, n_steps=2, xi=[1.5, 0.2])
    >>> bool(np.allclose(reg.coef_[1], one.fit(X, -y).coef_))
    True
    """

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="left"), "array-like"],
        "n_steps": [Interval(Integral, 0, None, closed="left"), "array-like"],
        "xi": [Interval(Real, None, None, closed="neither"), "array-like"],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"auto", "svd", "gram", "dual", "cholesky"})],
    }

    def __init__(
        self, alpha=1.0, n_steps=1, xi=0.5, *, fit_intercept=True, solver="auto"
    ):
        self.alpha = alpha
        self.n_steps = n_steps
        self.xi = xi
        self.fit_intercept = fit_intercept
        self.solver = solver

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self.solver != "svd"
        tags.target_tags.multi_output = True
        tags.array_api_support = True
        return tags

    def _validate_fit_data(self, X, y, sample_weight):
        xp, device, numpy_ = namespace(X)
        if not numpy_:  # y and sample_weight follow X, as in scikit-learn
            y, sample_weight = to_namespace(y, sample_weight, xp=xp, device=device)
        X, y = validate_data(
            self,
            X,
            y,
            validate_separately=(
                dict(
                    accept_sparse=["csr", "csc", "coo"],
                    dtype=[xp.float64, xp.float32],
                ),
                dict(ensure_2d=False, dtype="numeric"),
            ),
        )
        if X.shape[0] != y.shape[0]:
            raise ValueError(
                "X and y have inconsistent numbers of samples: X has "
                f"{X.shape[0]} rows and y has {y.shape[0]}."
            )
        y = np.asarray(y, dtype=X.dtype) if numpy_ else xp.astype(y, X.dtype)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
        return X, y, sample_weight

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the teacher and every student.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; integer weights equal repeated rows.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, y, sample_weight = self._validate_fit_data(X, y, sample_weight)
        xp, _, numpy_ = namespace(X)
        # alpha and xi are validated in NumPy on the host (small arrays).
        alphas, xis = _check_steps(
            _array_api.to_numpy(self.alpha),
            _array_api.to_numpy(self.xi),
            _array_api.to_numpy(self.n_steps),
            _n_targets(y),
        )
        solver = resolve_solver(self.solver, X, alphas.min())
        if solver == "cholesky" and alphas.min() <= 0:
            raise ValueError(
                "solver='cholesky' needs every alpha > 0, got "
                f"alpha={self.alpha!r}; use solver='svd' for alpha=0."
            )
        Y = xp.reshape(y, (-1, 1)) if y.ndim == 1 else y
        X_in = X
        # Data of magnitude far from one (say 1e300 or 1e-300) would overflow
        # or underflow in squares and Gram matrices: fit a rescaled copy (by
        # powers of two, so exactly) and undo the scaling in the coefficients.
        x_exponent = _x_exponent(X, alphas)
        y_exponent = _power_of_two_scale(Y)
        X = _scaled(X, x_exponent)
        Y = _scaled(Y, y_exponent)
        alphas = np.ldexp(alphas, 2 * x_exponent)
        if solver == "cholesky":
            fitted = self._fit_cholesky(
                X, Y, alphas, xis, sample_weight, X_in, y, (x_exponent, y_exponent)
            )
            if fitted is not None:
                return fitted
            solver = "gram" if X.shape[0] >= X.shape[1] else "dual"
            warnings.warn(
                "solver='cholesky': the regularised Gram matrix is singular "
                "to working precision (alpha is too small for the rank "
                f"deficiency of X); using solver={solver!r}, which treats "
                "the numerically null directions of X as exactly null.",
                UserWarning,
                stacklevel=3,
            )
        if solver == "dual" and X.shape[1] > X.shape[0]:
            # Wide data: Cholesky solves with the kernel and its eigenvalues
            # (or its eigendecomposition where that is needed).
            spectrum = kernel_fit(
                X,
                Y,
                alphas,
                xis,
                sample_weight=sample_weight,
                fit_intercept=self.fit_intercept,
                rank_rtol=_rank_rtol(solver, X),
            )
            if isinstance(spectrum, KernelFit):
                return self._set_from_kernel_fit(
                    spectrum,
                    X_in,
                    y,
                    sample_weight,
                    xis,
                    rank_rtol=_rank_rtol(solver, X),
                    x_exponent=x_exponent,
                    y_exponent=y_exponent,
                )
        else:
            spectrum = decompose(
                X,
                Y,
                sample_weight=sample_weight,
                fit_intercept=self.fit_intercept,
                solver=solver,
            )
        if x_exponent == 0 and y_exponent == 0:
            self._stream = self._stream_state(X, y, sample_weight, spectrum, solver)
        else:  # a rescaled spectrum: partial_fit starts afresh (with a warning)
            self._stream = self._stream_state(X_in, y, sample_weight, None, "cholesky")
        return self._set_from_spectrum(
            spectrum,
            alphas,
            xis,
            y_ndim=y.ndim,
            n_components=min(X.shape),
            rank_rtol=_rank_rtol(solver, X),
            solver=solver,
            x_exponent=x_exponent,
            y_exponent=y_exponent,
            dtype=X.dtype,
        )

    def _fit_cholesky(self, X, Y, alphas, xis, sample_weight, X_in, y, exponents):
        """``fit`` by Cholesky solves on the rescaled ``X`` and ``Y``.

        Returns the fitted estimator, or None where the regularised Gram
        matrix is singular to working precision (``fit`` then falls back to a
        decomposition). ``X_in`` and ``y`` are the data as given, ``exponents``
        the powers of two that scaled ``X`` and ``Y``.
        """
        xp, _, _ = namespace(X)
        x_exponent, y_exponent = exponents
        try:
            coef_path, X_offset, y_offset = cholesky_path(
                X,
                Y,
                alphas,
                xis,
                sample_weight=sample_weight,
                fit_intercept=self.fit_intercept,
                rank_rtol=_rank_rtol("cholesky", X),
            )
        except linalg.LinAlgError:
            return None
        # No decomposition to continue from (see stream_from_fit).
        self._stream = self._stream_state(X_in, y, sample_weight, None, "cholesky")
        with np.errstate(over="ignore"):  # _set_path reports it
            coef_path = _array_api.ldexp(coef_path, x_exponent - y_exponent, xp)
        return self._set_path(
            coef_path,
            _array_api.ldexp(X_offset, -x_exponent, xp),
            _array_api.ldexp(y_offset, -y_exponent, xp),
            xis,
            y_ndim=y.ndim,
            solver="cholesky",
            dtype=X.dtype,
        )

    def _stream_state(self, X, y, sample_weight, spectrum, solver):
        """``partial_fit``'s state after ``fit`` (none after non-NumPy data)."""
        if namespace(X)[2]:
            return stream_from_fit(
                X, y, sample_weight, spectrum, solver, fit_intercept=self.fit_intercept
            )
        return PartialFitState(
            X.shape[1],
            1 if y.ndim == 1 else y.shape[1],
            y.ndim,
            unavailable=(
                "partial_fit cannot add rows to a fit on non-NumPy arrays "
                "(array API): it starts from this chunk, without the rows fit saw"
            ),
        )

    def _set_from_kernel_fit(
        self, fitted, X, y, sample_weight, xis, *, rank_rtol, x_exponent, y_exponent
    ):
        """Fitted attributes from :func:`~skdistill._spectral.kernel_fit`'s chain.

        The numbers of :meth:`_set_from_spectrum` for ``solver="dual"``, to
        round-off (every ``alpha`` is above the rank cut-off there).
        """
        xp, _, _ = namespace(fitted.coef_path)
        # The rows themselves (wide data): partial_fit needs no spectrum.
        self._stream = self._stream_state(X, y, sample_weight, None, "dual")
        with np.errstate(over="ignore"):  # _set_path reports an overflow
            coef_path = _array_api.ldexp(fitted.coef_path, x_exponent - y_exponent, xp)
        return self._set_path(
            coef_path,
            _array_api.ldexp(fitted.X_offset, -x_exponent, xp),
            _array_api.ldexp(fitted.y_offset, -y_exponent, xp),
            xis,
            y_ndim=y.ndim,
            solver="dual",
            singular_values=_singular_values(
                fitted.lam, rank_rtol, min(X.shape), x_exponent, X.dtype
            ),
            dtype=X.dtype,
        )

    def _set_from_spectrum(
        self,
        spectrum,
        alphas,
        xis,
        *,
        y_ndim,
        n_components,
        rank_rtol,
        solver,
        x_exponent=0,
        y_exponent=0,
        dtype=None,
    ):
        """Fitted attributes from one decomposition (``fit`` and ``partial_fit``).

        Directions with ``lam <= rank_rtol * max(lam)`` are below the
        resolution of the decomposition. They are treated as exactly null (the
        minimum-norm convention of :func:`numpy.linalg.lstsq`) by the SVD, and
        by the eigendecompositions of ``X^T X`` and ``X X^T`` whenever some
        ``alpha`` is that small too: there an eigenvalue's rounding error,
        of order ``eps * max(lam)``, would be divided by ``lam + alpha`` and
        amplified without bound. With every ``alpha`` above it the
        eigendecompositions keep every direction, which ``alpha`` resolves.

        ``x_exponent`` and ``y_exponent`` are the powers of two by which the
        decomposed ``X`` and ``y`` were scaled (``alphas`` are those of the
        scaled problem); the fitted attributes are in the original units.

        ``alphas`` and ``xis`` are 1-D (one chain for every target) or 2-D,
        one row per target, as :func:`_check_steps` returns them. Per target,
        the null directions are dropped for exactly the targets whose own
        smallest ``alpha`` is that small, as a fit of that target alone does.

        ``dtype`` is that of the fitted arrays (the data's), by default the
        spectrum's: float32 data are decomposed in float64 and every number
        is computed there, then rounded once to float32.
        """
        if dtype is None:
            dtype = spectrum.proj.dtype
        xp, device, numpy_ = namespace(spectrum.proj)
        lam = spectrum.lam
        lam_max = float(xp.max(lam)) if lam.shape[0] else 0.0
        singular_values = _singular_values(
            lam, rank_rtol, n_components, x_exponent, dtype
        )
        per_target = alphas.ndim == 2
        if lam_max > 0 and (
            solver == "svd" or (not per_target and alphas.min() <= rank_rtol * lam_max)
        ):
            spectrum = spectrum.truncated(rank_rtol)
        if per_target:
            q_path = inverse_filter_path_per_target(spectrum.lam, alphas, xis)
            small = alphas.min(axis=1) <= rank_rtol * lam_max
            if lam_max > 0 and solver != "svd" and np.any(small):
                null = spectrum.lam <= rank_rtol * lam_max
                if numpy_:
                    q_path[:, small[:, None] & null[None, :]] = 0.0
                else:
                    small = xp.asarray(small, device=device)
                    q_path = xp.where(small[:, None] & null[None, :], 0.0, q_path)
        else:
            q_path = inverse_filter_path(spectrum.lam, alphas, xis, xis.shape[0])
        coef_path = spectrum.coef_path(q_path)  # (k+1, t, d)
        with np.errstate(over="ignore"):  # _set_path reports an overflow
            coef_path = _array_api.ldexp(coef_path, x_exponent - y_exponent, xp)
        return self._set_path(
            coef_path,
            _array_api.ldexp(spectrum.X_offset, -x_exponent, xp),
            _array_api.ldexp(spectrum.y_offset, -y_exponent, xp),
            xis,
            y_ndim=y_ndim,
            solver=solver,
            singular_values=singular_values,
            dtype=dtype,
        )

    def _set_path(
        self,
        coef_path,
        X_offset,
        y_offset,
        xis,
        *,
        y_ndim,
        solver,
        singular_values=None,
        dtype=None,
    ):
        """Fitted attributes from the coefficient path of every step.

        Shapes follow :class:`~sklearn.linear_model.Ridge`: a ``y`` of shape
        (n_samples, 1) gives ``coef_`` of shape (n_features,) and predictions
        of shape (n_samples,), with ``intercept_`` of shape (1,) (or the float
        0.0 without an intercept). The intercepts are computed in the dtype
        of ``coef_path``; then both are rounded to ``dtype`` (when given).
        """
        xp, device, numpy_ = namespace(coef_path)
        with np.errstate(over="ignore", invalid="ignore"):
            intercept_path = y_offset - coef_path @ X_offset
            if dtype is not None:
                coef_path = xp.astype(coef_path, dtype)
                intercept_path = xp.astype(intercept_path, dtype)
        if not (
            bool(xp.all(xp.isfinite(coef_path)))
            and bool(xp.all(xp.isfinite(intercept_path)))
        ):
            raise ValueError(
                "The fitted coefficients overflow the floating-point range of "
                f"{coef_path.dtype}: X and y are too far apart in magnitude "
                f"(the largest |X| is tiny where |y| is huge). Rescale X or y."
            )
        if y_ndim == 1:
            coef_path = coef_path[:, 0, :]
            intercept_path = intercept_path[:, 0]
        elif coef_path.shape[1] == 1:
            coef_path = coef_path[:, 0, :]
            if not self.fit_intercept:
                intercept_path = xp.zeros(
                    coef_path.shape[0], dtype=coef_path.dtype, device=device
                )
        self.coef_path_ = coef_path
        self.intercept_path_ = intercept_path
        last = -1 if numpy_ else (-1, ...)  # the standard wants every axis
        self.coef_ = coef_path[last]
        self.intercept_ = intercept_path[last]
        if y_ndim == 2 and coef_path.ndim == 2 and not self.fit_intercept:
            self.intercept_ = 0.0
        self.xi_bar_ = _xi_bar_of(xis)
        if not numpy_:  # computed on the host from the parameters
            self.xi_bar_ = xp.asarray(
                self.xi_bar_, dtype=_array_api.float_dtype(xp, device), device=device
            )
        if singular_values is not None:
            self.singular_values_ = singular_values
        elif hasattr(self, "singular_values_"):
            del self.singular_values_
        self.solver_ = solver
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Add a chunk of rows to the data seen so far and refit on all of it.

        As in scikit-learn, :meth:`fit` resets the estimator and
        ``partial_fit`` continues from its current state, including the state
        that :meth:`fit` left: the rows :meth:`fit` saw stay part of the data
        (a ``(1 + n_features + n_targets)``-column factor derived from
        :meth:`fit`'s decomposition, with that decomposition's accuracy; after
        ``solver="cholesky"`` on more rows than columns, or sparse ``X`` with
        fewer rows than columns, there is none: ``partial_fit`` then warns
        and starts from its own chunk).

        The rows are folded into a float64 triangular factor of
        ``[sqrt(w), sqrt(w) X, sqrt(w) y]`` (TSQR), so memory stays
        ``O((n_features + n_targets)**2)`` whatever the number of rows, and
        the coefficients after any sequence of chunks equal those of one
        :meth:`fit` on their concatenation with ``solver="svd"``. The centring
        and the decomposition come from the factor, never from ``X^T X``:
        unlike ``solver="gram"`` they keep their accuracy on ill-conditioned
        ``X`` (the Gram matrix squares the condition number, so ``"gram"``
        loses all digits at a condition number near ``1e8``). ``solver`` is
        ignored and ``solver_`` is ``"svd"``. Each call costs one QR of the
        chunk and one SVD of a ``n_features x n_features`` factor. The fitted
        arrays are float32 when every chunk (and the data of :meth:`fit`) was
        float32, as :meth:`fit` keeps float32; the computation is in float64.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data (sparse chunks are densified).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Its targets; the number of targets must not change between calls.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the chunk's rows.

        Returns
        -------
        self : object
            Fitted estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from skdistill import RepeatedSelfDistillationRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(100, 3))
        >>> y = X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=100)
        >>> reg = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=2)
        >>> for start in range(0, 100, 30):
        ...     reg = reg.partial_fit(X[start : start + 30], y[start : start + 30])
        >>> full = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=2).fit(X, y)
        >>> bool(np.allclose(reg.coef_, full.coef_, rtol=1e-10))
        True

        ``fit`` then ``partial_fit`` equals one fit on both sets of rows:

        >>> reg = RepeatedSelfDistillationRegressor(alpha=1.0, n_steps=2)
        >>> reg = reg.fit(X[:60], y[:60]).partial_fit(X[60:], y[60:])
        >>> bool(np.allclose(reg.coef_, full.coef_, rtol=1e-10))
        True
        """
        _array_api.check_numpy_only(self, X, y, sample_weight, method="partial_fit")
        first = getattr(self, "_stream", None) is None
        X, y = validate_data(
            self,
            X,
            y,
            reset=first,
            accept_sparse=["csr", "csc", "coo"],
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
        )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        alphas, xis = _check_steps(self.alpha, self.xi, self.n_steps, _n_targets(y))
        state = next_stream_state(
            getattr(self, "_stream", None), X, y, sample_weight, self.fit_intercept
        )
        self._set_from_factor(
            state.rows,
            X.shape[1],
            alphas,
            xis,
            n_samples=state.n_rows,
            y_ndim=state.y_ndim,
            dtype=state.dtype,
        )
        self._stream = state
        return self

    def _set_from_factor(self, R, n_features, alphas, xis, *, n_samples, y_ndim, dtype):
        """Fitted attributes from a triangular factor of ``[1, X, Y]``.

        The same filter as ``fit`` computes, from an SVD of the centred factor
        (:func:`~skdistill._factors.spectrum_from_factor`): the accurate
        ``solver="svd"`` path even for ill-conditioned ``X``. The computation
        is in float64; the fitted arrays are kept in ``dtype`` (float32 when
        the data were float32, as ``fit`` does). Called by :meth:`partial_fit`
        and, from other modules, only through :func:`fit_from_factor`.
        """
        spectrum = spectrum_from_factor(R, n_features, fit_intercept=self.fit_intercept)
        self._set_from_spectrum(
            spectrum,
            alphas,
            xis,
            y_ndim=y_ndim,
            n_components=min(n_samples, n_features),
            rank_rtol=rank_rtol("svd", (n_samples, n_features), np.float64),
            solver="svd",
        )
        if np.dtype(dtype) != np.float64:
            self.coef_path_ = self.coef_path_.astype(dtype)
            self.intercept_path_ = self.intercept_path_.astype(dtype)
            self.coef_ = self.coef_path_[-1]
            self.intercept_ = self.intercept_path_[-1]
            if hasattr(self, "singular_values_"):
                self.singular_values_ = self.singular_values_.astype(dtype)
        return self

    def _check_predict_data(self, X, method):
        check_is_fitted(self)
        check_same_namespace(X, self, attribute="coef_", method=method)
        xp, _, _ = namespace(X)
        return validate_data(
            self,
            X,
            accept_sparse=["csr", "csc", "coo"],
            dtype=[xp.float64, xp.float32],
            reset=False,
        )

    @staticmethod
    def _linear_predict(X, coef, intercept):
        xp, _, numpy_ = namespace(X)
        if numpy_:
            return safe_sparse_dot(X, coef.T, dense_output=True) + intercept
        return (X @ (coef if coef.ndim == 1 else coef.T)) + intercept

    def predict(self, X):
        """Predict with the last student.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        X = self._check_predict_data(X, "predict")
        return self._linear_predict(X, self.coef_, self.intercept_)

    def staged_predict(self, X):
        """Predictions of the teacher, then of each student in turn.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Yields
        ------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Step ``i`` yields the predictions of student ``i`` (``i = 0`` is
            the teacher); the last equals :meth:`predict`. With ``n_steps``
            per target there are ``max(n_steps) + 1`` stages and a target
            whose steps ran out repeats its last student.
        """
        X = self._check_predict_data(X, "staged_predict")
        if namespace(X)[2]:
            stages = zip(self.coef_path_, self.intercept_path_, strict=True)
        else:  # the standard does not iterate over an array's first axis
            stages = (
                (self.coef_path_[i, ...], self.intercept_path_[i, ...])
                for i in range(self.coef_path_.shape[0])
            )
        for coef, intercept in stages:
            yield self._linear_predict(X, coef, intercept)


def fit_from_factor(estimator, R, n_features, alphas, xis, *, n_samples, y_ndim, dtype):
    """Fit ``estimator`` from the triangular factor of rows it never saw.

    Private protocol: the one hand-off through which another module fits a
    :class:`RepeatedSelfDistillationRegressor` from a factor instead of data
    (the refit of a search on streamed data,
    :meth:`skdistill._streaming.StreamedFolds.refit_function`). The caller
    owns the factor and the parameters; this module owns the fitted
    attributes, set as :meth:`~RepeatedSelfDistillationRegressor.partial_fit`
    sets them. It sets no feature names: the caller saw no column names, or
    keeps them itself.

    Parameters
    ----------
    estimator : RepeatedSelfDistillationRegressor
        Fitted in place, with its own ``fit_intercept``; its ``alpha``,
        ``xi`` and ``n_steps`` are those that ``alphas`` and ``xis`` spell.
    R : ndarray of shape (p, p)
        Upper-triangular factor of ``[sqrt(w), sqrt(w) X, sqrt(w) Y]``,
        ``p = 1 + n_features + n_targets`` (:mod:`skdistill._factors`).
    n_features : int
    alphas : ndarray of shape (n_steps + 1,)
        Penalty of each step.
    xis : ndarray of shape (n_steps,)
        Weight of each student.
    n_samples : int
        Number of rows behind ``R`` (for the rank cut-off).
    y_ndim : {1, 2}
        Dimension of the ``y`` that ``R`` stands for.
    dtype : dtype
        Dtype of the fitted arrays (float32 when the data were float32).

    Returns
    -------
    estimator : RepeatedSelfDistillationRegressor
        The same object, fitted.
    """
    estimator.n_features_in_ = n_features
    return estimator._set_from_factor(
        R,
        n_features,
        alphas,
        xis,
        n_samples=n_samples,
        y_ndim=y_ndim,
        dtype=dtype,
    )
