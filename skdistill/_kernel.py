"""Repeated self-distillation of kernel ridge regression in closed form.

With the (weighted) training Gram matrix ``K = Q diag(d) Q^T`` the dual
coefficients of distillation step ``i`` are ``Q diag(q_i) Q^T y`` with
``q_i = g_i(d) / d`` the filter of :mod:`skdistill._filter`; see Mobahi,
Farajtabar and Bartlett (2020) and the user guide's design page,
``docs/user_guide/design.rst``.
"""

import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy import linalg, optimize
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.metrics.pairwise import PAIRWISE_KERNEL_FUNCTIONS, pairwise_kernels
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._array_api import check_numpy_only
from ._filter import (
    filter_path,
    inverse_filter_path,
    shrinkage,
    xi_to_xi_bar,
)
from ._spectral import _shared_chain, rank_rtol
from ._validation import check_step_array

__all__ = ["KernelSelfDistillationRegressor"]

# "auto" uses the Cholesky solver above this many samples when it can: one
# Cholesky factorisation is several times cheaper than one eigendecomposition.
_EIGH_MAX_SAMPLES = 1000


@dataclass
class _KernelSpectrum:
    """Eigen-representation of a (weighted) kernel ridge problem.

    For any filter ``q`` of the eigenvalues ``lam`` the dual coefficients are
    ``basis @ diag(q) @ proj`` and the predictions at new points are
    ``predict_basis(X_new) @ diag(q) @ proj + y_offset``.
    """

    lam: np.ndarray  # (r,) eigenvalues of S K S, S = diag(sqrt(w))
    basis: np.ndarray  # (n, r): S Q
    proj: np.ndarray  # (r, t): Q^T S Y
    y_offset: np.ndarray  # (t,) zeros: kernel ridge has no intercept
    X_fit: object  # training samples (the Gram matrix if precomputed)
    kernel: object  # callable (X, Y) -> kernel matrix
    precomputed: bool = False

    def coef(self, q):
        """Dual coefficients ``(n, t)`` for the factors ``q`` of shape (r,)."""
        return self.basis @ (np.asarray(q)[:, None] * self.proj)

    def predict_basis(self, X):
        """``K(X, X_fit) @ basis``, shape (n_new, r).

        For ``kernel="precomputed"`` ``X`` is the kernel between the new and
        the training samples.
        """
        if self.precomputed:
            return safe_sparse_dot(X, self.basis, dense_output=True)
        return safe_sparse_dot(
            self.kernel(X, self.X_fit), self.basis, dense_output=True
        )


def _float_dtype(X):
    """The floating dtype that ``X``'s values are accurate to."""
    return np.result_type(X.dtype, np.float32)


def _rank_rtol(n, dtype):
    """Eigenvalues below this fraction of the largest are numerically zero.

    The cut-off of the eigendecomposition of an ``n x n`` Gram matrix
    (:func:`~skdistill._spectral.rank_rtol`, ``eps * n`` in the kernel's
    dtype), with this estimator's margin of 100 and floor of ``1e-10``.
    """
    return max(1e-10, 100 * rank_rtol("gram", (n, n), dtype))


def _psd_rtol(dtype):
    """Largest negative eigenvalue, relative to the largest, that is rounding.

    The thresholds of scikit-learn's check of user-provided kernels
    (``sklearn.utils.validation._check_psd_eigenvalues``, used by KernelPCA).
    """
    return 1e-5 if dtype == np.float64 else 5e-3


class KernelSelfDistillationRegressor(RegressorMixin, BaseEstimator):
    """Kernel ridge regression distilled into itself, in closed form.

    The teacher is :class:`~sklearn.kernel_ridge.KernelRidge` with penalty
    ``alpha``. Student ``i`` is kernel ridge regression fitted to the mixed
    labels ``xi_i * (previous step's predictions) + (1 - xi_i) * y``; with
    ``xi = 1`` this is the self-distillation studied by Mobahi, Farajtabar and
    Bartlett (2020). With ``K = Q diag(d) Q^T`` the eigendecomposition of the
    training Gram matrix, every step is a spectral filter: eigen-direction
    ``j`` of the targets is shrunk by ``g_i(d_j)``, where the teacher has
    ``g_0 = d / (d + alpha)`` and
    ``g_i = d / (d + alpha_i) * (xi_i * g_{i-1} + 1 - xi_i)``.
    All steps come from one decomposition; no step is refitted.

    Each round of distillation with ``xi = 1`` shrinks the small-eigenvalue
    directions further than the large ones, so fewer basis functions carry
    the solution (see ``effective_dof_``): a few rounds reduce over-fitting,
    more rounds under-fit.

    Parameters
    ----------
    alpha : float, array-like of shape (n_steps + 1,) or "constrained", \
            default=1.0
        Non-negative penalty, as in :class:`~sklearn.kernel_ridge.KernelRidge`.
        An array gives the teacher and each student its own penalty (unlike
        ``KernelRidge``, an array is per step, not per target).
        ``"constrained"`` is the procedure of Mobahi et al.: every round
        chooses its own penalty so that its training mean squared error
        against that round's targets equals ``epsilon``; the rounds stop early
        (with a warning) once the targets' mean square falls to ``epsilon``,
        at which point the solution has collapsed to zero.
    n_steps : int, default=1
        Number of student steps; ``n_steps=0`` is kernel ridge regression.
        With ``alpha="constrained"`` the largest number of steps.
    xi : float or array-like of shape (n_steps,), default=1.0
        Weight of the previous step's predictions in each student's labels;
        any real number. ``xi = 1`` trains on the predictions alone.
    epsilon : float, default=None
        Training mean squared error of every round when
        ``alpha="constrained"`` (averaged over samples, weighted by
        ``sample_weight``, and over targets). Required then, ignored otherwise.
    kernel : str or callable, default="rbf"
        Kernel, as in :class:`~sklearn.kernel_ridge.KernelRidge`: a name
        understood by :func:`~sklearn.metrics.pairwise.pairwise_kernels`,
        ``"precomputed"`` (``X`` is then the Gram matrix), or a callable. The
        Gram matrix must be positive semi-definite.
    gamma : float, default=None
        Parameter of the RBF, laplacian, polynomial, exponential chi2 and
        sigmoid kernels; ``None`` uses the kernel's default.
    degree : float, default=3
        Degree of the polynomial kernel.
    coef0 : float, default=1
        Zero coefficient of the polynomial and sigmoid kernels.
    kernel_params : dict, default=None
        Additional keyword arguments of a callable kernel.
    solver : {"auto", "eigh", "cholesky"}, default="auto"
        How the steps are computed:

        - ``"eigh"``: one eigendecomposition of the Gram matrix; gives the
          diagnostics ``filter_factors_`` and ``effective_dof_``;
        - ``"cholesky"``: one Cholesky factorisation per distinct ``alpha``
          and two triangular solves per step, several times faster for large
          ``n_samples`` but without the diagnostics (they are ``None``);
        - ``"auto"``: ``"eigh"`` when ``alpha="constrained"``, some ``alpha``
          is zero, or ``n_samples <= 1000``; otherwise ``"cholesky"``.

    Attributes
    ----------
    dual_coef_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Dual coefficients of the last student. Computed in float64 and
        returned in the dtype :class:`~sklearn.kernel_ridge.KernelRidge`
        returns (float32 when ``X`` and ``y`` are float32), as are
        ``dual_coef_path_`` and the predictions; the diagnostics stay float64.
    dual_coef_path_ : ndarray of shape (n_rounds + 1, n_samples) or \
            (n_rounds + 1, n_samples, n_targets)
        Dual coefficients of the teacher (index 0) and of every student.
    X_fit_ : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Training data, needed for prediction (the Gram matrix for
        ``kernel="precomputed"``).
    n_steps_ : int
        Number of student steps fitted, written ``n_rounds`` in the shapes
        here; less than ``n_steps`` only when a constrained fit collapsed.
    alphas_ : ndarray of shape (n_rounds + 1,)
        Penalty of each step (chosen by the constraint for
        ``alpha="constrained"``).
    xi_bar_ : ndarray of shape (n_rounds + 1,)
        Effective polynomial coefficients of the filter (see
        :func:`xi_to_xi_bar`); they describe the filter exactly when all
        ``alphas_`` are equal.
    eigenvalues_ : ndarray of shape (n_samples,) or None
        Eigenvalues of the (weighted) training Gram matrix, in decreasing
        order. ``None`` for the Cholesky solver.
    filter_factors_ : ndarray of shape (n_rounds + 1, n_samples) or None
        Shrinkage ``g_i(d_j)`` of each eigen-direction (ordered as
        ``eigenvalues_``) at each step: the fitted training values of step
        ``i`` are ``Q diag(g_i) Q^T y``. ``None`` for the Cholesky solver.
    effective_dof_ : ndarray of shape (n_rounds + 1,) or None
        Effective number of basis functions of each step, the sum of its
        filter factors (the trace of its hat matrix). ``None`` for the
        Cholesky solver.
    solver_ : str
        The solver used.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.kernel_ridge.KernelRidge : The teacher (``n_steps=0``).
    RepeatedSelfDistillationRegressor : The same filter for linear ridge.

    References
    ----------
    .. [1] H. Mobahi, M. Farajtabar and P. L. Bartlett. "Self-Distillation
       Amplifies Regularization in Hilbert Space". NeurIPS 2020.
       arXiv:2002.05715.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.kernel_ridge import KernelRidge
    >>> from skdistill import KernelSelfDistillationRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-3, 3, size=(40, 1))
    >>> y = np.sin(X[:, 0]) + rng.normal(scale=0.3, size=40)
    >>> reg = KernelSelfDistillationRegressor(alpha=0.1, n_steps=3).fit(X, y)
    >>> reg.effective_dof_.round(2)
    array([9.  , 7.89, 7.28, 6.85])
    >>> teacher = KernelSelfDistillationRegressor(alpha=0.1, n_steps=0).fit(X, y)
    >>> krr = KernelRidge(alpha=0.1, kernel="rbf").fit(X, y)
    >>> bool(np.allclose(teacher.predict(X), krr.predict(X)))
    True
    >>> mobahi = KernelSelfDistillationRegressor(
    ...     alpha="constrained", epsilon=0.1, n_steps=2
    ... ).fit(X, y)
    >>> mobahi.alphas_.round(3)
    array([ 0.996,  8.94 , 92.413])
    """

    _parameter_constraints: dict = {
        "alpha": [
            Interval(Real, 0, None, closed="left"),
            "array-like",
            StrOptions({"constrained"}),
        ],
        "n_steps": [Interval(Integral, 0, None, closed="left")],
        "xi": [Interval(Real, None, None, closed="neither"), "array-like"],
        "epsilon": [Interval(Real, 0, None, closed="neither"), None],
        "kernel": [
            StrOptions(set(PAIRWISE_KERNEL_FUNCTIONS.keys()) | {"precomputed"}),
            callable,
        ],
        "gamma": [Interval(Real, 0, None, closed="left"), None],
        "degree": [Interval(Real, 0, None, closed="left")],
        "coef0": [Interval(Real, None, None, closed="neither")],
        "kernel_params": [dict, None],
        "solver": [StrOptions({"auto", "eigh", "cholesky"})],
    }

    def __init__(
        self,
        alpha=1.0,
        n_steps=1,
        xi=1.0,
        *,
        epsilon=None,
        kernel="rbf",
        gamma=None,
        degree=3,
        coef0=1,
        kernel_params=None,
        solver="auto",
    ):
        self.alpha = alpha
        self.n_steps = n_steps
        self.xi = xi
        self.epsilon = epsilon
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.kernel_params = kernel_params
        self.solver = solver

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.pairwise = self.kernel == "precomputed"
        tags.target_tags.multi_output = True
        return tags

    def _get_kernel(self, X, Y=None):
        # Exactly as sklearn.kernel_ridge.KernelRidge.
        if callable(self.kernel):
            params = self.kernel_params or {}
        else:
            params = {"gamma": self.gamma, "degree": self.degree, "coef0": self.coef0}
        return pairwise_kernels(X, Y, metric=self.kernel, filter_params=True, **params)

    def _gram(self, X, sample_weight):
        """The weighted training Gram matrix ``S K S`` as a dense float array."""
        if self.kernel == "precomputed" and X.shape[0] != X.shape[1]:
            raise ValueError(
                "With kernel='precomputed', X must be a square Gram matrix of "
                f"shape (n_samples, n_samples), got shape {X.shape}."
            )
        K = self._get_kernel(X)
        # A precomputed kernel is the user's X: copy it before scaling it.
        K = K.toarray() if sp.issparse(K) else np.asarray(K)
        K = K.astype(np.float64, copy=self.kernel == "precomputed")
        # Named kernels are symmetric by construction; check the others.
        user_kernel = callable(self.kernel) or self.kernel == "precomputed"
        scale = np.abs(K).max() if user_kernel and K.size else 0.0
        if user_kernel and np.any(np.abs(K - K.T) > _psd_rtol(_float_dtype(X)) * scale):
            raise ValueError(
                f"The Gram matrix of kernel={self._kernel_name()} is not "
                "symmetric; a positive semi-definite kernel is required."
            )
        if sample_weight is not None:
            sw = np.sqrt(sample_weight)
            K *= np.outer(sw, sw)
        return K

    def _kernel_name(self):
        return self.kernel.__name__ if callable(self.kernel) else repr(self.kernel)

    def _eigh(self, K, dtype):
        """Eigendecomposition of the Gram matrix (overwritten) with a PSD check."""
        d, Q = linalg.eigh(K, overwrite_a=True, check_finite=False)
        d_max = max(d[-1], 0.0) if d.size else 0.0
        if d.size and d[0] < -_psd_rtol(dtype) * max(d_max, abs(d[0])):
            raise ValueError(
                f"The Gram matrix of kernel={self._kernel_name()} is not positive "
                f"semi-definite: its smallest eigenvalue is {d[0]:.3g} and its "
                f"largest {d[-1]:.3g}. Kernel ridge self-distillation needs a "
                "positive semi-definite kernel."
            )
        return np.maximum(d, 0.0), Q

    def _validate_params_fit(self):
        """Per-step ``alpha`` (or None when constrained) and ``xi``."""
        constrained = isinstance(self.alpha, str)
        if constrained and self.epsilon is None:
            raise ValueError(
                "alpha='constrained' requires epsilon, the training mean squared "
                "error of every round; got epsilon=None."
            )
        xis = check_step_array(self.xi, "xi", self.n_steps)
        if constrained:
            return None, xis
        alphas = check_step_array(self.alpha, "alpha", self.n_steps + 1, low=0)
        return alphas, xis

    def _resolve_solver(self, n, alphas):
        if self.solver != "auto":
            if self.solver == "cholesky" and alphas is None:
                raise ValueError(
                    "solver='cholesky' does not support alpha='constrained', "
                    "which needs the eigendecomposition; use solver='eigh' or "
                    "'auto'."
                )
            return self.solver
        if alphas is None or alphas.min() == 0 or n <= _EIGH_MAX_SAMPLES:
            return "eigh"
        return "cholesky"

    def _validate_fit_data(self, X, y, sample_weight):
        check_numpy_only(self, X, y, sample_weight)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=("csr", "csc"),
            multi_output=True,
            y_numeric=True,
        )
        # KernelRidge's dual coefficients have the dtype of K and y together.
        out_dtype = np.result_type(_float_dtype(X), y.dtype)
        y = np.asarray(y, dtype=np.float64)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        return X, y, sample_weight, out_dtype

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the teacher and every student.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; with ``kernel="precomputed"`` the Gram matrix of
            shape (n_samples, n_samples).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : float or array-like of shape (n_samples,), default=None
            Non-negative weights of the squared errors, as in
            :class:`~sklearn.kernel_ridge.KernelRidge`; integer weights equal
            repeated rows.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        alphas, xis = self._validate_params_fit()
        X, y, sample_weight, out_dtype = self._validate_fit_data(X, y, sample_weight)
        n = X.shape[0]
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        K = self._gram(X, sample_weight)
        sw = np.ones(n) if sample_weight is None else np.sqrt(sample_weight)
        Yw = Y * sw[:, None]
        solver = self._resolve_solver(n, alphas)

        dual_path = None
        if solver == "cholesky":
            dual_path = _cholesky_path(K, Yw, alphas, xis)
            if dual_path is None:
                warnings.warn(
                    "The regularised Gram matrix is singular; using solver='eigh'.",
                    UserWarning,
                    stacklevel=3,
                )
                solver = "eigh"
        if solver == "eigh":
            d, Q = self._eigh(K, _float_dtype(X))
            del K
            proj = Q.T @ Yw
            if alphas is None:
                total = n if sample_weight is None else sample_weight.sum()
                alphas = _constrained_alphas(
                    d, proj, total, self.epsilon, xis, self.n_steps
                )
            elif alphas.min() == 0:
                # Minimum-norm interpolation: drop numerically null directions.
                rtol = _rank_rtol(n, _float_dtype(X))
                d = np.where(d > rtol * d.max(initial=0), d, 0.0)
            n_steps = alphas.size - 1
            xis = xis[:n_steps]
            q_path = inverse_filter_path(d, alphas, xis, n_steps)
            basis = Q * sw[:, None]
            dual_path = np.stack([basis @ (q[:, None] * proj) for q in q_path])
            g = filter_path(d, alphas, xis, n_steps)
            self.eigenvalues_ = d[::-1].copy()
            self.filter_factors_ = g[:, ::-1].copy()
            self.effective_dof_ = g.sum(axis=1)
        else:
            dual_path *= sw[:, None]
            self.eigenvalues_ = None
            self.filter_factors_ = None
            self.effective_dof_ = None

        if y.ndim == 1:
            dual_path = dual_path[:, :, 0]
        # Computed in float64; returned in the dtype KernelRidge returns, that
        # of the Gram matrix and y together (float32 for float32 X and y).
        dual_path = dual_path.astype(out_dtype, copy=False)
        self.dual_coef_path_ = dual_path
        self.dual_coef_ = dual_path[-1]
        self.X_fit_ = X
        self.n_steps_ = alphas.size - 1
        self.alphas_ = np.asarray(alphas, dtype=np.float64)
        self.xi_bar_ = xi_to_xi_bar(xis)
        self.solver_ = solver
        return self

    def _spectral_fit(self, X, y, sample_weight=None):
        """One eigendecomposition of a training fold, for closed-form CV.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
            Validated training samples (for ``kernel="precomputed"`` the
            square Gram matrix of the fold).
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : ndarray of shape (n_samples,) or None

        Returns
        -------
        spectrum : _KernelSpectrum
            With eigenvalues ``lam`` and, for any filter ``q``, validation
            predictions ``spectrum.predict_basis(X_val) @ diag(q) @ proj``
            (for ``kernel="precomputed"`` ``X_val`` is the kernel between the
            validation and the training samples of the fold). The step
            filters are ``inverse_filter_path(lam, alpha, xi, n_steps)``.
        """
        y = np.asarray(y, dtype=np.float64)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        n = X.shape[0]
        K = self._gram(X, sample_weight)
        sw = np.ones(n) if sample_weight is None else np.sqrt(sample_weight)
        d, Q = self._eigh(K, _float_dtype(X))
        return _KernelSpectrum(
            lam=d,
            basis=Q * sw[:, None],
            proj=Q.T @ (Y * sw[:, None]),
            y_offset=np.zeros(Y.shape[1]),
            X_fit=X,
            precomputed=self.kernel == "precomputed",
            kernel=self._get_kernel,
        )

    def _check_predict_data(self, X):
        check_is_fitted(self)
        check_numpy_only(self, X, method="predict")
        return validate_data(self, X, accept_sparse=("csr", "csc"), reset=False)

    def predict(self, X):
        """Predict with the last student.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples; with ``kernel="precomputed"`` the kernel between them and
            the training samples, of shape (n_samples, n_samples_fitted).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        X = self._check_predict_data(X)
        return np.dot(self._get_kernel(X, self.X_fit_), self.dual_coef_)

    def staged_predict(self, X):
        """Predictions of the teacher, then of each student in turn.

        The kernel between ``X`` and the training data is computed once.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples; with ``kernel="precomputed"`` the kernel between them and
            the training samples, of shape (n_samples, n_samples_fitted).

        Yields
        ------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Step ``i`` yields the predictions of student ``i`` (``i = 0`` is
            the teacher); the last equals :meth:`predict`.
        """
        X = self._check_predict_data(X)
        K = self._get_kernel(X, self.X_fit_)
        for dual_coef in self.dual_coef_path_:
            yield np.dot(K, dual_coef)


def _cholesky_path(K, Yw, alphas, xis):
    """Weighted dual coefficients ``u_i`` of every step, by Cholesky solves.

    With ``Kw = S K S`` and ``Yw = S Y``, step ``i`` solves
    ``(Kw + alpha_i I) u_i = xi_i Kw u_{i-1} + (1 - xi_i) Yw``; the dual
    coefficients are ``S u_i``. The chain is the linear estimator's
    (:func:`skdistill._spectral._shared_chain`: with one alpha, the pure
    distillates combined by each step's ``xi_bar``). Returns None if a
    factorisation fails.
    """
    factors = {}
    diag = K.diagonal().copy()

    def solve(a, B):
        if a not in factors:
            K.flat[:: K.shape[0] + 1] = diag + a
            try:
                factors[a] = linalg.cho_factor(K, lower=True, check_finite=False)
            finally:
                K.flat[:: K.shape[0] + 1] = diag
        return linalg.cho_solve(factors[a], B, check_finite=False)

    try:
        return _shared_chain(solve, K, Yw, np.asarray(alphas), np.asarray(xis))
    except linalg.LinAlgError:
        return None


def _constrained_alphas(d, proj, total, epsilon, xis, n_steps):
    """Penalty of each round so that its training MSE equals ``epsilon``.

    In the eigenbasis, round ``t``'s (weighted) targets are ``f_t * proj``
    with ``f_0 = 1`` and ``f_t = xi_t * g_{t-1} + 1 - xi_t``; its training
    mean squared error with penalty ``a`` is
    ``sum_j (a / (d_j + a))**2 * c_j`` with ``c_j`` the mean square of the
    targets' component ``j``, increasing in ``a`` from the null-space part of
    the targets to their whole mean square. Each round is one root find.
    """
    c0 = np.sum(proj**2, axis=1) / (total * proj.shape[1])
    scale = d.max(initial=0.0)
    scale = scale if scale > 0 else 1.0
    alphas = []
    factor = np.ones_like(d)
    g = np.zeros_like(d)  # filter of the previous round
    for t in range(n_steps + 1):
        if t > 0:
            factor = xis[t - 1] * g + 1.0 - xis[t - 1]
        c = factor**2 * c0
        if c.sum() <= epsilon:
            if t == 0:
                raise ValueError(
                    f"epsilon={epsilon!r} is not below the mean squared target "
                    f"({c.sum():.6g}): the zero function already meets the "
                    "constraint. Choose a smaller epsilon."
                )
            warnings.warn(
                f"The solution collapsed after {t - 1} distillation steps: the "
                f"targets of step {t} have a mean square of {c.sum():.6g}, not "
                f"above epsilon={epsilon!r}, so the next step would be zero. "
                f"Stopping after n_steps_={t - 1} steps.",
                UserWarning,
                stacklevel=3,
            )
            break
        null = c[d == 0].sum()
        if null >= epsilon:
            raise ValueError(
                f"epsilon={epsilon!r} is below the smallest training mean squared "
                f"error any penalty reaches ({null:.6g}, the part of the targets "
                "outside the span of the kernel). Choose a larger epsilon."
            )
        a = _solve_penalty(d, c, epsilon, scale)
        alphas.append(a)
        g = shrinkage(d, a) * factor
    return np.asarray(alphas)


def _solve_penalty(d, c, epsilon, scale):
    """The ``a > 0`` with ``sum_j (a / (d_j + a))**2 c_j = epsilon``."""

    def excess(log_a):
        a = np.exp(log_a)
        return np.sum((a / (d + a)) ** 2 * c) - epsilon

    lo, hi = np.log(scale) - 30.0, np.log(scale) + 30.0
    for _ in range(20):
        if excess(lo) < 0:
            break
        lo -= 30.0
    else:
        raise ValueError(
            f"epsilon={epsilon!r} is below the training mean squared error of "
            "every penalty. Choose a larger epsilon."
        )
    for _ in range(10):
        if excess(hi) > 0:
            break
        hi += 30.0
    else:
        # The targets' mean square exceeds epsilon by less than rounding.
        return float(np.exp(hi))
    return float(np.exp(optimize.brentq(excess, lo, hi, xtol=1e-13, rtol=1e-15)))
