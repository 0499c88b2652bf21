"""Synthetic fixed-design regression problems for self-distillation."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["make_self_distillation_regression"]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "singular_values": ["array-like", None],
        "rank": [Interval(Integral, 1, None, closed="left"), None],
        "decay": [Interval(Real, 0, None, closed="left")],
        "coef_directions": ["array-like"],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_self_distillation_regression(
    n_samples=100,
    n_features=4,
    *,
    singular_values=None,
    rank=None,
    decay=1.0,
    coef_directions=(0,),
    noise=0.1,
    random_state=None,
):
    """Generate a fixed-design linear regression problem with a chosen spectrum.

    The design is ``X = U @ diag(s) @ V.T`` with ``U`` (n_samples, r) and
    ``V`` (n_features, r) random matrices with orthonormal columns, so that
    ``s`` are exactly the singular values of ``X``. The true coefficients are
    aligned with chosen right singular vectors,
    ``coef = sum_{j in coef_directions} V[:, j] / sqrt(len(coef_directions))``
    (unit norm), and ``y = X @ coef + noise * e`` with standard normal ``e``.
    These are the instances studied by Pareek, Oh and Du (2024), where
    multi-step self-distillation gains most when the singular values are
    distinct and ``coef`` is aligned with one singular direction.

    Parameters
    ----------
    n_samples : int, default=100
        Number of samples ``n``.
    n_features : int, default=4
        Number of features ``d``.
    singular_values : array-like of shape (r,), default=None
        Positive singular values of ``X``, ``r <= min(n_samples, n_features)``.
        If None, the power law ``s_j = j ** (-decay)`` for ``j = 1, ..., r``.
    rank : int, default=None
        Rank ``r`` of ``X`` when ``singular_values`` is None; defaults to
        ``min(n_samples, n_features)``. Ignored otherwise.
    decay : float, default=1.0
        Exponent of the power law used when ``singular_values`` is None.
    coef_directions : array-like of int, default=(0,)
        Indices (into ``singular_values``) of the right singular vectors that
        the true coefficients are aligned with.
    noise : float, default=0.1
        Standard deviation of the Gaussian noise added to ``y``.
    random_state : int, RandomState instance or None, default=None
        Seed of the singular vectors and of the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The design, with singular values ``singular_values``.
    y : ndarray of shape (n_samples,)
        The noisy targets.
    coef : ndarray of shape (n_features,)
        The true coefficients (unit norm).

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill.datasets import make_self_distillation_regression
    >>> X, y, coef = make_self_distillation_regression(
    ...     n_samples=20, n_features=4, singular_values=[1.0, 0.5, 1 / 3, 0.25],
    ...     noise=0.125, random_state=0)
    >>> np.linalg.svd(X, compute_uv=False).round(4)
    array([1.    , 0.5   , 0.3333, 0.25  ])
    >>> float(np.linalg.norm(coef))
    1.0
    """
    max_rank = min(n_samples, n_features)
    if singular_values is None:
        r = max_rank if rank is None else rank
        if r > max_rank:
            raise ValueError(
                f"rank must be at most min(n_samples, n_features) = {max_rank}, "
                f"got {r}."
            )
        s = np.arange(1, r + 1, dtype=np.float64) ** (-float(decay))
    else:
        s = np.asarray(singular_values, dtype=np.float64).reshape(-1)
        if s.size == 0 or s.size > max_rank:
            raise ValueError(
                "singular_values must have between 1 and min(n_samples, "
                f"n_features) = {max_rank} entries, got {s.size}."
            )
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError("singular_values must be positive and finite.")
        r = s.size
    directions = np.asarray(coef_directions).reshape(-1)
    if (
        directions.size == 0
        or not np.issubdtype(directions.dtype, np.integer)
        or np.any(directions < 0)
        or np.any(directions >= r)
        or np.unique(directions).size != directions.size
    ):
        raise ValueError(
            "coef_directions must be distinct integers in [0, rank) with "
            f"rank = {r}, got {coef_directions!r}."
        )
    rng = check_random_state(random_state)
    U, _ = np.linalg.qr(rng.standard_normal((n_samples, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n_features, r)))
    X = (U * s) @ V.T
    coef = V[:, directions].sum(axis=1) / np.sqrt(directions.size)
    y = X @ coef + noise * rng.standard_normal(n_samples)
    return X, y, coef
