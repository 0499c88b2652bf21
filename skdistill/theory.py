"""Exact fixed-design risk of repeated self-distillation (Pareek, Oh and Du, 2024).

Fixed design: ``X`` (n, d) is deterministic, ``y = X @ coef + noise * e`` with
``e`` standard normal, and the k-step estimator (``fit_intercept=False``) is
the spectral filter of the user guide's design page
(``docs/user_guide/design.rst``): with ``X = U diag(s) V^T`` and
``h_j = s_j^2 / (s_j^2 + alpha)``, direction ``j`` of the least-squares fit is
shrunk by ``phi_j = sum_m xi_bar[m] h_j^(m+1)``. Writing
``w_j = s_j^2 <v_j, coef>^2`` for the signal in direction ``j``, the excess
risk

    E || theta_hat - coef ||^2_{Sigma_hat},   Sigma_hat = X^T X / n,

is ``(1 / n) sum_j [ w_j (1 - phi_j)^2 + noise^2 phi_j^2 ]`` (squared bias
plus variance, direction by direction). As ``phi = P @ xi_bar`` with
``P[j, m] = h_j^(m+1)``, it is a quadratic in ``xi_bar`` (the paper's
Theorem 7):

    risk(xi_bar) = xi_bar^T A xi_bar - 2 b^T xi_bar + c,
    A = P^T diag(w + noise^2) P / n,  b = P^T w / n,  c = sum(w) / n,

minimised under ``sum(xi_bar) = 1`` by a small KKT solve. No spectral filter
can do better in direction ``j`` than ``phi_j = w_j / (w_j + noise^2)``, which
gives the lower bound of the paper's Theorem 4,

    (1 / n) sum_j noise^2 w_j / (w_j + noise^2),

reached at every ``alpha`` by ``r`` steps when ``X`` has ``r`` distinct
non-zero singular values: ``p_k`` has degree ``k`` and the constraint
``p_k(1) = 1`` (``sum(xi_bar) = 1``), so ``k = r`` leaves ``r`` free
coefficients to interpolate the ``r`` optimal ``phi_j``. With ``k = r - 1``
steps the bound is approached closely for large ``alpha`` but not reached in
general.

Numerics: for ``alpha`` much smaller than the squared singular values, all
``h_j`` are close to one and the optimal ``xi_bar`` become huge; the
solvers here work on the least-squares problem itself (never its normal
equations) but cannot beat the conditioning of the monomial basis.
"""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_array

from ._constrained import constrained_lstsq
from ._filter import pure_filters, shrinkage, xi_bar_to_xi, xi_to_xi_bar
from ._spectral import rank_rtol

__all__ = [
    "excess_risk",
    "excess_risk_quadratic",
    "optimal_xi",
    "optimal_xi_bar",
    "risk_lower_bound",
]


def _svd_rtol(shape):
    """Relative cut-off on singular values of a float64 matrix of ``shape``.

    ``eps * max(n, d)``, the square root of :func:`~skdistill._spectral.rank_rtol`'s
    cut-off on ``lam = s**2`` (that of :func:`numpy.linalg.lstsq`).
    """
    return math.sqrt(rank_rtol("svd", shape, np.float64))


def _spectrum(X, coef):
    """Squared singular values ``lam`` and signal ``w`` of ``(X, coef)``."""
    X = check_array(X, dtype=np.float64, input_name="X")
    coef = np.asarray(coef, dtype=np.float64)
    if coef.shape != (X.shape[1],):
        raise ValueError(
            f"coef must have shape ({X.shape[1]},) to match X, got {coef.shape}."
        )
    if not np.all(np.isfinite(coef)):
        raise ValueError("coef must be finite.")
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    keep = s > s.max(initial=0.0) * _svd_rtol(X.shape)
    s, Vt = s[keep], Vt[keep]
    w = (s * (Vt @ coef)) ** 2
    return s**2, w, X.shape[0]


def _check_common(noise, alpha, n_steps=0):
    """Clear errors for the scalar parameters shared by every function."""
    if not isinstance(noise, Real) or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a non-negative float, got {noise!r}.")
    if not isinstance(alpha, Real) or not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive float, got {alpha!r}.")
    if not isinstance(n_steps, Integral) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}.")


def _powers(lam, alpha, n_steps):
    """``P[j, m] = h_j^(m+1)`` for ``m = 0..n_steps``."""
    return pure_filters(shrinkage(lam, alpha), n_steps)


def _risk(lam, w, n, noise, alpha, xi_bar):
    """Bias^2 + variance, direction by direction (no cancellation in a quadratic)."""
    phi = _powers(lam, alpha, xi_bar.size - 1) @ xi_bar
    return float(np.sum(w * (1.0 - phi) ** 2 + noise**2 * phi**2) / n)


def excess_risk_quadratic(X, coef, *, noise, alpha, n_steps):
    """The excess risk of the ``n_steps``-step estimator as a quadratic in ``xi_bar``.

    Returns ``(A, b, c)`` with
    ``risk(xi_bar) = xi_bar @ A @ xi_bar - 2 * b @ xi_bar + c`` for the
    fixed-design excess risk ``E ||theta_hat - coef||^2`` in the norm of
    ``X^T X / n_samples`` (Pareek, Oh and Du, 2024, Theorem 7).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The fixed design.
    coef : array-like of shape (n_features,)
        The true coefficients.
    noise : float
        Standard deviation of the Gaussian label noise.
    alpha : float
        Positive ridge penalty, the same at every step.
    n_steps : int
        Number of distillation steps ``k`` (``0`` is ridge).

    Returns
    -------
    A : ndarray of shape (n_steps + 1, n_steps + 1)
        Positive semi-definite matrix of the quadratic term.
    b : ndarray of shape (n_steps + 1,)
        Linear term.
    c : float
        Constant term: the risk of predicting zero.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.theory import excess_risk_quadratic
    >>> A, b, c = excess_risk_quadratic(np.eye(2), [1.0, 0.0], noise=0.5,
    ...                                 alpha=1.0, n_steps=0)
    >>> float(A[0, 0] - 2 * b[0] + c)  # ridge: h = 1/2 in both directions
    0.1875
    """
    _check_common(noise, alpha, n_steps)
    lam, w, n = _spectrum(X, coef)
    P = _powers(lam, alpha, n_steps)
    A = P.T @ ((w + noise**2)[:, None] * P) / n
    b = P.T @ w / n
    c = float(w.sum() / n)
    return A, b, c


def excess_risk(X, coef, *, noise, alpha, xi=None, xi_bar=None):
    """Exact fixed-design excess risk of the k-step self-distilled estimator.

    The estimator is :class:`~skdistill.RepeatedSelfDistillationRegressor`
    with ``fit_intercept=False``, one ``alpha`` for every step and weights
    ``xi`` (or effective coefficients ``xi_bar``), fitted on
    ``y = X @ coef + noise * e``. The risk is
    ``E ||theta_hat - coef||^2`` in the norm of ``X^T X / n_samples``, the
    expectation being over the noise.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The fixed design.
    coef : array-like of shape (n_features,)
        The true coefficients.
    noise : float
        Standard deviation of the Gaussian label noise.
    alpha : float
        Positive ridge penalty.
    xi : array-like of shape (k,), default=None
        Per-step mixing weights; ``[]`` is ridge.
    xi_bar : array-like of shape (k + 1,), default=None
        Effective filter coefficients (summing to one). Give exactly one of
        ``xi`` and ``xi_bar``.

    Returns
    -------
    risk : float

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.theory import excess_risk
    >>> X = np.diag([1.0, 0.5])
    >>> round(excess_risk(X, [1.0, 0.0], noise=0.1, alpha=0.1, xi=[]), 5)
    0.01082
    >>> round(excess_risk(X, [1.0, 0.0], noise=0.1, alpha=0.1, xi=[-1.0]), 5)
    0.00917
    """
    if (xi is None) == (xi_bar is None):
        raise ValueError("Give exactly one of xi and xi_bar.")
    if xi_bar is None:
        xi_bar = xi_to_xi_bar(xi)
    else:
        xi_bar = np.asarray(xi_bar, dtype=np.float64).reshape(-1)
        if xi_bar.size == 0 or not np.all(np.isfinite(xi_bar)):
            raise ValueError("xi_bar must be a non-empty array of finite numbers.")
        if abs(xi_bar.sum() - 1.0) > 1e-8 * max(1.0, np.abs(xi_bar).sum()):
            raise ValueError(f"xi_bar must sum to 1, got a sum of {xi_bar.sum()!r}.")
    _check_common(noise, alpha)
    lam, w, n = _spectrum(X, coef)
    return _risk(lam, w, n, noise, alpha, xi_bar)


def _constrained_least_squares(M, t):
    """Minimise ``||M x - t||`` subject to ``sum(x) = 1``.

    The search's solver (:func:`skdistill._constrained.constrained_lstsq`),
    on the matrix itself (not the normal equations, whose condition number
    is squared), without its truncation: only directions singular to working
    precision are dropped (as :func:`numpy.linalg.lstsq` drops them), and
    then the minimiser of least norm in its coordinates is returned.
    """
    M = np.asarray(M, dtype=float)
    return constrained_lstsq(M, np.asarray(t, dtype=float), rcond=_svd_rtol(M.shape))


def optimal_xi_bar(X, coef, *, noise, alpha, n_steps):
    """Oracle-optimal effective coefficients ``xi_bar`` for a given ``alpha``.

    Minimises the exact excess risk (:func:`excess_risk_quadratic`) over
    ``xi_bar`` with ``sum(xi_bar) = 1``. When the minimiser is not unique
    (more steps than distinct singular values) the minimum-norm one is
    returned.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The fixed design.
    coef : array-like of shape (n_features,)
        The true coefficients.
    noise : float
        Standard deviation of the Gaussian label noise.
    alpha : float
        Positive ridge penalty.
    n_steps : int
        Number of distillation steps ``k``.

    Returns
    -------
    xi_bar : ndarray of shape (n_steps + 1,)
        The optimal effective coefficients.
    risk : float
        The excess risk they achieve.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.theory import optimal_xi_bar, risk_lower_bound
    >>> X, coef = np.diag([1.0, 0.5]), [1.0, 0.0]
    >>> xi_bar, risk = optimal_xi_bar(X, coef, noise=0.1, alpha=0.1, n_steps=2)
    >>> bool(np.isclose(risk, risk_lower_bound(X, coef, noise=0.1)))
    True
    """
    _check_common(noise, alpha, n_steps)
    lam, w, n = _spectrum(X, coef)
    # risk * n = ||D^(1/2) P xi_bar - D^(-1/2) w||^2 + const, D = diag(w + noise^2)
    d = np.sqrt(w + noise**2)
    P = _powers(lam, alpha, n_steps)
    xi_bar = _constrained_least_squares(d[:, None] * P, w / d)
    return xi_bar, _risk(lam, w, n, noise, alpha, xi_bar)


def optimal_xi(X, coef, *, noise, alpha, n_steps):
    """Oracle-optimal per-step weights ``xi`` for a given ``alpha``.

    The optimal ``xi_bar`` of :func:`optimal_xi_bar` converted with
    :func:`~skdistill.xi_bar_to_xi`; the weights can be large or negative.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The fixed design.
    coef : array-like of shape (n_features,)
        The true coefficients.
    noise : float
        Standard deviation of the Gaussian label noise.
    alpha : float
        Positive ridge penalty.
    n_steps : int
        Number of distillation steps ``k``.

    Returns
    -------
    xi : ndarray of shape (n_steps,)
        The optimal per-step weights.
    risk : float
        The excess risk they achieve.

    Raises
    ------
    ValueError
        If no finite ``xi`` represents the optimal ``xi_bar``.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.theory import optimal_xi
    >>> xi, risk = optimal_xi(np.diag([1.0, 0.5]), [1.0, 0.0], noise=0.1,
    ...                       alpha=0.1, n_steps=1)
    >>> xi.round(3)
    array([-0.725])
    """
    xi_bar, risk = optimal_xi_bar(X, coef, noise=noise, alpha=alpha, n_steps=n_steps)
    return xi_bar_to_xi(xi_bar), risk


def risk_lower_bound(X, coef, *, noise):
    """Lower bound on the excess risk of every spectral filter (Theorem 4).

    ``(1 / n) sum_j noise^2 w_j / (w_j + noise^2)`` with
    ``w_j = s_j^2 <v_j, coef>^2``: the risk of the best shrinkage of each
    principal direction separately. It holds for every ``alpha``, number of
    steps and ``xi``, and ``r`` steps reach it at every ``alpha`` when ``X``
    has ``r`` distinct non-zero singular values.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The fixed design.
    coef : array-like of shape (n_features,)
        The true coefficients.
    noise : float
        Standard deviation of the Gaussian label noise.

    Returns
    -------
    bound : float

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.theory import risk_lower_bound
    >>> round(risk_lower_bound(np.diag([1.0, 0.5]), [1.0, 0.0], noise=0.1), 6)
    0.00495
    """
    _check_common(noise, 1.0)
    _, w, n = _spectrum(X, coef)
    if noise == 0:
        return 0.0
    return float(np.sum(noise**2 * w / (w + noise**2)) / n)
