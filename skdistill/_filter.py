"""Spectral filters of repeated self-distillation.

Helpers shared by the linear and kernel estimators and by the closed-form
cross-validation. The derivation is in the user guide's design page,
``docs/user_guide/design.rst``. The filters of eigenvalues ``lam`` are
computed in ``lam``'s array namespace and on its device (array API, with
``array_api_dispatch=True``), in float64 (float32 where the device has no
float64); the per-step parameters ``alpha``, ``xi`` and ``xi_bar`` are small
and handled in NumPy on the host.

In the eigenbasis of the training data, with eigenvalue ``lam`` of ``X^T X``
(or of the Gram matrix ``K``) and ``h = lam / (lam + alpha)``, the fitted
values of step ``i`` are ``g_i(lam)`` times the projection of ``y``, with

    g_0 = h_0,        g_i = h_i * (xi_i * g_{i-1} + 1 - xi_i).

With one ``alpha`` for every step, ``g_k = h * sum_m xi_bar_m h^m``.
The coefficients themselves need ``q_i = g_i / lam``, which obeys

    q_0 = 1 / (lam + alpha_0),
    q_i = (xi_i * lam * q_{i-1} + 1 - xi_i) / (lam + alpha_i)

and never divides by ``lam``: directions with ``lam = 0`` are harmless unless
``alpha_i = 0``.

Each of these formulas is written once: ``h`` (with the convention that a
direction with ``lam + alpha = 0`` contributes nothing) in :func:`shrinkage`,
the recurrence from ``xi`` to ``xi_bar`` in :func:`xi_bar_prefixes` and its
inverse in :func:`_xi_from_tail_sums`; the rest of the package calls them.
"""

from numbers import Integral

import numpy as np

from ._array_api import float_dtype, namespace, to_numpy
from ._validation import finite_array

__all__ = [
    "pure_filters",
    "pure_inverse_filters",
    "shrinkage",
    "xi_to_xi_bar",
    "xi_bar_to_xi",
    "filter_path",
    "inverse_filter_path",
    "inverse_filter_path_per_target",
    "xi_bar_prefixes",
]


def xi_to_xi_bar(xi):
    """Effective polynomial coefficients ``xi_bar`` of per-step weights ``xi``.

    The k-step student's filter is ``h * sum_m xi_bar[m] * h**m``. The
    coefficients follow from ``p_0 = 1`` and
    ``p_i(h) = (1 - xi_i) + xi_i * h * p_{i-1}(h)``; they always sum to one.

    Parameters
    ----------
    xi : array-like of shape (k,)
        Mixing weight of each student step, any real numbers.

    Returns
    -------
    xi_bar : ndarray of shape (k + 1,)
        ``xi_bar[m]`` multiplies ``h**m``.

    Raises
    ------
    ValueError
        If some ``xi`` is not a finite number.

    Examples
    --------
    >>> from skdistill import xi_to_xi_bar
    >>> xi_to_xi_bar([0.5])
    array([0.5, 0.5])
    >>> xi_to_xi_bar([0.5, 2.0])
    array([-1.,  1.,  1.])
    """
    xp, device, numpy_ = namespace(xi)
    xi = finite_array(to_numpy(xi), "xi").reshape(-1)
    xi_bar = xi_bar_prefixes(xi[None, :])[-1, 0].copy()
    return xi_bar if numpy_ else _on_device(xi_bar, xp, device)


def _on_device(a, xp, device):
    """A small host array ``a`` in ``xp`` on ``device`` (float64 if it has it)."""
    return xp.asarray(a, dtype=float_dtype(xp, device), device=device)


def shrinkage(lam, alpha):
    """Ridge's filter ``h = lam / (lam + alpha)``, zero where ``lam + alpha == 0``.

    The one place the package forms ``h``. ``lam`` is an array of
    non-negative eigenvalues of any namespace, ``alpha`` a float or an array
    of non-negative penalties that broadcasts against it; ``h`` is in
    ``lam``'s namespace and on its device.
    """
    return _over_penalty(lam, lam, alpha)


def _over_penalty(num, lam, alpha):
    """``num / (lam + alpha)``, zero where ``lam + alpha == 0``.

    The minimum-norm convention of every filter: a direction with no signal
    (``lam = 0``) and no penalty (``alpha = 0``) contributes nothing. Where
    ``lam > 0`` or ``alpha > 0`` this is the plain quotient, so the guard
    agrees with testing ``lam > 0`` for ``h`` (``0 / alpha = 0``).
    """
    xp, _, _ = namespace(lam)
    den = lam + alpha
    positive = den > 0
    return xp.where(positive, num / xp.where(positive, den, 1.0), 0.0)


def xi_bar_to_xi(xi_bar):
    """Per-step weights ``xi`` that realise given effective coefficients.

    The inverse of :func:`xi_to_xi_bar`. Writing ``T_m = sum_{l >= m}
    xi_bar[l]``, the weights are ``xi_{k-m} = T_{m+1} / T_m``, so a
    representation exists exactly when no tail sum vanishes before a non-zero
    one (a filter of lower degree padded with zeros is represented by steps
    that ignore their teacher, ``xi = 0``). The tail sums are computed
    directly (not as ``1 - xi_bar[0]``)
    so that tame ``xi_bar`` near ridge keep their accuracy even when the
    resulting ``xi`` are huge.

    Parameters
    ----------
    xi_bar : array-like of shape (k + 1,)
        Effective coefficients; they must sum to one.

    Returns
    -------
    xi : ndarray of shape (k,)

    Raises
    ------
    ValueError
        If ``xi_bar`` does not sum to one or no finite ``xi`` represents it.

    Examples
    --------
    >>> from skdistill import xi_bar_to_xi
    >>> xi_bar_to_xi([-1.0, 1.0, 1.0])
    array([0.5, 2. ])
    """
    xp, device, numpy_ = namespace(xi_bar)
    if not numpy_:
        return _on_device(xi_bar_to_xi(to_numpy(xi_bar)), xp, device)
    xi_bar = np.asarray(xi_bar, dtype=np.float64).reshape(-1)
    if xi_bar.size == 0:
        raise ValueError("xi_bar must have at least one entry.")
    if not np.all(np.isfinite(xi_bar)):
        raise ValueError("xi_bar must be finite.")
    if not _sums_to_one(xi_bar[None, :])[0]:
        raise ValueError(f"xi_bar must sum to 1, got a sum of {xi_bar.sum()!r}.")
    xi, ok = _xi_from_tail_sums(xi_bar[None, :])
    if not ok[0]:
        raise ValueError(
            "xi_bar has a vanishing tail sum followed by non-zero "
            "coefficients, so no finite per-step xi represents it."
        )
    return xi[0]


def _sums_to_one(xi_bar):
    """Whether each row of finite ``xi_bar`` (n, k + 1) sums to one.

    To ``1e-8`` times the larger of one and the row's absolute sum: the
    round-off of summing coefficients that cancel.
    """
    size = np.maximum(1.0, np.abs(xi_bar).sum(axis=1))
    return np.abs(xi_bar.sum(axis=1) - 1.0) <= 1e-8 * size


def _xi_from_tail_sums(xi_bar):
    """Per-step ``xi`` (n, k) of finite rows ``xi_bar`` (n, k + 1), NumPy.

    The inverse direction of :func:`xi_bar_prefixes`: with the tail sums
    ``T_m = sum_{l >= m} xi_bar[l]`` (and ``T_0 = 1``), ``xi_{k-m} = T_{m+1} /
    T_m``. A vanishing tail sum means that step ignores its teacher
    (``xi = 0``) and the earlier steps are free (left at 0), which represents
    the row only if every later tail sum vanishes too. Returns ``xi`` and
    whether each row passed that test; the caller sets the floating-point
    error state.
    """
    n, k1 = xi_bar.shape
    k = k1 - 1
    tail = np.cumsum(xi_bar[:, ::-1], axis=1)[:, ::-1].copy()
    tail[:, 0] = 1.0
    xi = np.zeros((n, k))
    ok = np.ones(n, dtype=bool)
    stopped = np.zeros(n, dtype=bool)
    for m in range(k):
        zero = ~stopped & (tail[:, m] == 0.0)
        ok &= ~(zero & np.any(tail[:, m:] != 0.0, axis=1))
        stopped |= zero
        live = ~stopped
        xi[live, k - 1 - m] = tail[live, m + 1] / tail[live, m]
    return xi, ok


def _check_filter_args(lam, alpha, xi, n_steps):
    """Validated ``lam``, per-step ``alpha`` (n_steps + 1,) and ``xi`` (n_steps,)."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, Integral) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}.")
    xp, device, numpy_ = namespace(lam)
    if numpy_:
        lam = finite_array(lam, "lam")
    else:  # stays on its device; one boolean is read back per check
        lam = xp.astype(lam, float_dtype(xp, device))
        if not bool(xp.all(xp.isfinite(lam))):
            raise ValueError("lam must be finite.")
    if bool(xp.any(lam < 0)):
        raise ValueError("lam (eigenvalues) must be non-negative.")
    alphas = _broadcast_steps(to_numpy(alpha), n_steps + 1, "alpha")
    if np.any(alphas < 0):
        raise ValueError(f"alpha must be non-negative, got {alpha!r}.")
    return lam, alphas, _broadcast_steps(to_numpy(xi), n_steps, "xi")


def _broadcast_steps(value, length, name):
    arr = finite_array(value, name)
    try:
        return np.broadcast_to(arr, (length,))
    except ValueError as exc:
        raise ValueError(
            f"{name} must be a float or an array of shape ({length},), got an "
            f"array of shape {arr.shape}."
        ) from exc


def filter_path(lam, alpha, xi, n_steps):
    """Filter factors ``g_i(lam)`` of the teacher and every student.

    Parameters
    ----------
    lam : array-like of shape (r,)
        Non-negative eigenvalues (squared singular values).
    alpha : float or array-like of shape (n_steps + 1,)
        Regularisation of each step.
    xi : float or array-like of shape (n_steps,)
        Mixing weight of each student.
    n_steps : int
        Number of student steps.

    Returns
    -------
    g : ndarray of shape (n_steps + 1, r)
        Row ``i`` is the shrinkage of each direction's least-squares fit at
        step ``i``; ridge is ``g = lam / (lam + alpha)``.

    Raises
    ------
    ValueError
        If ``lam`` or ``alpha`` is negative, any value is not finite, an
        array has the wrong length, or ``n_steps`` is not a non-negative
        integer.

    Examples
    --------
    >>> from skdistill import filter_path
    >>> filter_path([1.0, 3.0], alpha=1.0, xi=1.0, n_steps=1)
    array([[0.5   , 0.75  ],
           [0.25  , 0.5625]])
    """
    lam, alphas, xis = _check_filter_args(lam, alpha, xi, n_steps)
    xp, _, _ = namespace(lam)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = [shrinkage(lam, float(alphas[0]))]
        for i in range(1, n_steps + 1):
            h = shrinkage(lam, float(alphas[i]))
            x = float(xis[i - 1])
            g.append(h * (x * g[-1] + 1.0 - x))
    return xp.stack(g)


def inverse_filter_path(lam, alpha, xi, n_steps):
    """Coefficient factors ``q_i = g_i(lam) / lam``, computed without dividing by lam.

    The step-``i`` coefficients are ``B @ diag(q_i) @ P`` with ``B`` the
    right singular vectors and ``P = B^T X^T y``. Entries where
    ``lam + alpha_i == 0`` are set to zero (the minimum-norm convention: a
    direction with no signal and no penalty contributes nothing).

    Returns
    -------
    q : ndarray of shape (n_steps + 1, r)
    """
    lam, alphas, xis = _check_filter_args(lam, alpha, xi, n_steps)
    if np.all(alphas == alphas[0]):
        return _polynomial_inverse_path(lam, alphas[0], xis)
    xp, _, _ = namespace(lam)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = [_over_penalty(1.0, lam, float(alphas[0]))]
        for i in range(1, n_steps + 1):
            x = float(xis[i - 1])
            num = x * lam * q[-1] + 1.0 - x
            q.append(_over_penalty(num, lam, float(alphas[i])))
    return xp.stack(q)


def polynomial_inverse_filter(lam, alpha, xi_bar):
    """``q = p(h) / (lam + alpha)`` for the polynomial ``p(h) = sum xi_bar[m] h^m``.

    Horner's rule on ``xi_bar``, the coefficients cross-validation chooses
    (the per-step ``xi`` realising them can be of order 1e9).
    """
    xp, device, _ = namespace(lam)
    lam = xp.asarray(lam, dtype=float_dtype(xp, device), device=device)
    h = shrinkage(lam, float(alpha))
    p = xp.zeros_like(h)
    for c in np.asarray(to_numpy(xi_bar), dtype=np.float64)[::-1]:
        p = p * h + float(c)
    return _over_penalty(p, lam, float(alpha))


def _polynomial_inverse_path(lam, alpha, xis):
    """``q_i`` for every step with one shared ``alpha``, via each prefix's xi_bar."""
    xp, _, _ = namespace(lam)
    prefixes = xi_bar_prefixes(xis[None, :])[:, 0]  # (k + 1, k + 1)
    return xp.stack(
        [
            polynomial_inverse_filter(lam, alpha, prefixes[i, : i + 1])
            for i in range(xis.size + 1)
        ]
    )


def combine_pure_distillates(pure, xi):
    """Every step of the chain from the pure distillates of one ``alpha``.

    ``pure[m]`` holds the coefficients of the filter ``h^m / (lam + alpha)``
    (``pure[0]`` is ridge, ``pure[m] = (M + alpha I)^{-1} M pure[m-1]``);
    step ``i`` is ``sum_m xi_bar^{(i)}_m pure[m]`` with ``xi_bar^{(i)}`` the
    coefficients of the first ``i`` weights.

    Parameters
    ----------
    pure : ndarray of shape (k + 1, ...)
    xi : ndarray of shape (k,)

    Returns
    -------
    path : ndarray of shape (k + 1, ...)
    """
    xp, device, numpy_ = namespace(pure)
    if numpy_:
        pure = np.asarray(pure)
    xi = np.asarray(to_numpy(xi))
    prefixes = xi_bar_prefixes(xi[None, : pure.shape[0] - 1])[:, 0]
    path = []
    for i in range(pure.shape[0]):
        xi_bar = xp.asarray(prefixes[i, : i + 1], dtype=pure.dtype, device=device)
        path.append(xp.tensordot(xi_bar, pure[: i + 1, ...], axes=1))
    return xp.stack(path)


def xi_bar_prefixes(xis):
    """``xi_bar`` of every prefix of each row of ``xis``, zero-padded.

    The one home of the recurrence ``p_0 = 1``, ``p_i(h) = (1 - xi_i) + xi_i
    * h * p_{i-1}(h)`` on the coefficients: :func:`xi_to_xi_bar`, the chains
    of one ``alpha`` and the check of :func:`_xi_bar_rows_to_xi` all read
    their coefficients from here.

    Parameters
    ----------
    xis : ndarray of shape (t, k)
        Finite per-step weights of ``t`` chains.

    Returns
    -------
    xi_bar : ndarray of shape (k + 1, t, k + 1)
        ``xi_bar[i, j, : i + 1]`` is ``xi_to_xi_bar(xis[j, :i])``; the rest is
        zero.
    """
    xis = np.asarray(xis, dtype=np.float64)
    t, k = xis.shape
    out = np.zeros((k + 1, t, k + 1))
    current = np.ones((t, 1))
    out[0, :, :1] = current
    for i in range(k):
        x = xis[:, i : i + 1]
        current = np.concatenate((1.0 - x, x * current), axis=1)
        out[i + 1, :, : i + 2] = current
    return out


def inverse_filter_path_per_target(lam, alphas, xis):
    """``q_i = g_i(lam) / lam`` of every step, one chain per target.

    The per-target form of :func:`inverse_filter_path`, vectorised over
    targets, with the same evaluation for each target: Horner's rule on each
    prefix's ``xi_bar`` when the target's penalty is the same at every step,
    the recursion on ``q`` otherwise.

    Parameters
    ----------
    lam : ndarray of shape (r,)
        Non-negative eigenvalues.
    alphas : ndarray of shape (t, k + 1)
        Non-negative penalty of each target at each step.
    xis : ndarray of shape (t, k)
        Weights of each target at each step; NaN beyond a target's own
        number of steps, which is the number of its finite entries.

    Returns
    -------
    q : ndarray of shape (k + 1, t, r)
        Target ``j``'s step ``i`` uses the factors ``q[min(i, k_j), j]``: a
        target whose steps ran out repeats its last step.
    """
    xp, device, _ = namespace(lam)
    dtype = float_dtype(xp, device)
    lam = xp.asarray(lam, dtype=dtype, device=device)
    # The parameters are small (t, k + 1) host arrays; only what the filters
    # need goes to the device.
    alphas = np.asarray(to_numpy(alphas), dtype=np.float64)
    xis = np.asarray(to_numpy(xis), dtype=np.float64)
    counts = np.sum(np.isfinite(xis), axis=1)
    xis = np.where(np.isfinite(xis), xis, 0.0)
    t, k1 = alphas.shape

    def dev(a):
        return xp.asarray(a, dtype=dtype, device=device)

    const = np.all(alphas == alphas[:, :1], axis=1)
    blocks = []  # (targets, q of shape (k + 1, len(targets), r))
    with np.errstate(invalid="ignore", divide="ignore"):
        if np.any(const):
            alpha = dev(alphas[const, :1])  # (c, 1)
            h = shrinkage(lam, alpha)  # (c, r)
            prefixes = xi_bar_prefixes(xis[const])  # (k + 1, c, k + 1)
            rows = []
            for i in range(k1):
                p = xp.zeros_like(h)
                for m in range(i, -1, -1):
                    p = p * h + dev(prefixes[i, :, m : m + 1])
                rows.append(_over_penalty(p, lam, alpha))
            blocks.append((np.flatnonzero(const), rows))
        if not np.all(const):
            a, x = alphas[~const], xis[~const]
            prev = _over_penalty(1.0, lam, dev(a[:, :1]))
            rows = [prev]
            for i in range(1, k1):
                xi_i = dev(x[:, i - 1 : i])
                num = xi_i * lam * prev + 1.0 - xi_i
                prev = _over_penalty(num, lam, dev(a[:, i : i + 1]))
                rows.append(prev)
            blocks.append((np.flatnonzero(~const), rows))
    if len(blocks) == 1:
        q = xp.stack(blocks[0][1])
    else:  # targets back in their order
        order = np.argsort(np.concatenate([b[0] for b in blocks]), kind="stable")
        q = xp.concat([xp.stack(b[1]) for b in blocks], axis=1)
        q = xp.take(q, xp.asarray(order, device=device), axis=1)
    # A target whose steps ran out repeats its last step: row i of target j
    # is row min(i, counts[j]).
    if np.all(counts == k1 - 1):
        return q
    rows = [q[i, ...] for i in range(k1)]
    for i in range(1, k1):
        for c in np.unique(counts[counts < i]).tolist():
            ran_out = xp.asarray(counts == c, device=device)[:, None]
            rows[i] = xp.where(ran_out, rows[c], rows[i])
    return xp.stack(rows)


def pure_inverse_filters(lam, alpha, n_steps):
    """Coefficient factors ``h**m / (lam + alpha)`` of the pure distillates.

    ``m = 0..n_steps``, so that ``pure_inverse_filters(lam, alpha, k).T @
    xi_bar`` is the k-step student's ``q = g / lam``, without dividing by
    ``lam``. ``lam`` is an array of shape ``(r,)`` of any namespace, ``alpha``
    a float; the result, of shape ``(n_steps + 1, r)``, is in ``lam``'s
    namespace and on its device.
    """
    xp, device, _ = namespace(lam)
    powers = xp.asarray(
        np.arange(n_steps + 1, dtype=np.float64)[:, None], device=device
    )
    return _over_penalty(shrinkage(lam, alpha)[None, :] ** powers, lam, alpha)


def pure_filters(h, n_steps):
    """Filters ``h ** (m + 1)`` of the pure m-fold distillates, m = 0..n_steps.

    The k-step filter is ``pure_filters(h, k) @ xi_bar``. ``h`` is any array
    of shrinkage factors ``lam / (lam + alpha)``; the result has one more
    trailing axis, of length ``n_steps + 1``. This is the one place the
    package forms these powers for a whole path of filters.
    """
    xp, device, numpy_ = namespace(h)
    if numpy_:
        h = np.asarray(h, dtype=np.float64)
        return h[..., None] ** np.arange(1, n_steps + 2)
    dtype = float_dtype(xp, device)
    h = xp.astype(h, dtype)
    powers = xp.arange(1, n_steps + 2, dtype=dtype, device=device)
    return h[..., None] ** powers


def _xi_bar_rows_to_xi(xi_bar):
    """:func:`xi_bar_to_xi` for rows ``(n, k + 1)`` at once, NumPy.

    Returns ``xi`` of shape ``(n, k)`` and whether each row is represented
    (finite ``xi`` whose ``xi_bar`` equals the row to round-off, as
    ``SelfDistillCV`` requires of a chosen filter); rows that are not have
    meaningless ``xi``.
    """
    xi_bar = np.asarray(xi_bar, dtype=np.float64)
    finite = np.all(np.isfinite(xi_bar), axis=1)
    xb = np.where(finite[:, None], xi_bar, 0.0)
    ok = finite & _sums_to_one(xb)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        xi, tails_ok = _xi_from_tail_sums(xb)
        back = xi_bar_prefixes(xi)[-1]  # back to xi_bar, row-wise
        err = np.linalg.norm(back - xb, axis=1)
    ok &= tails_ok
    ok &= np.all(np.isfinite(back), axis=1) & np.all(np.isfinite(xi), axis=1)
    ok &= err <= 1e-8 * np.maximum(1.0, np.linalg.norm(xb, axis=1))
    return xi, ok
