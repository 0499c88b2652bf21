"""Input checks shared by the estimators."""

import copy

import numpy as np
from sklearn.model_selection import check_cv
from sklearn.utils import assert_all_finite, check_random_state, get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from ._array_api import check_numpy_only

__all__ = [
    "check_finite_target",
    "check_predict_X",
    "check_splits",
    "check_step_array",
    "check_target_steps",
]


def finite_array(value, name):
    """``value`` as a float64 array, or a ValueError naming ``name``."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a float or an array of floats, got {value!r}."
        ) from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return arr


def check_step_array(value, name, length, *, low=None, high=None):
    """Broadcast a float or array parameter to ``length`` finite values.

    ``low`` and ``high`` bound the values (inclusive) when given.
    """
    arr = finite_array(value, name)
    if arr.ndim == 0:
        arr = np.full(length, float(arr))
    elif arr.ndim != 1 or arr.shape[0] != length:
        raise ValueError(
            f"{name} must be a float or an array of shape ({length},), "
            f"got an array of shape {arr.shape}."
        )
    if low == 0 and high is None:
        if np.any(arr < 0):
            raise ValueError(f"{name} must be non-negative, got {value!r}.")
    elif (low is not None and np.any(arr < low)) or (
        high is not None and np.any(arr > high)
    ):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}.")
    return arr


def check_predict_X(estimator, X):
    """Validate ``X`` at predict time for a fitted meta-estimator."""
    check_is_fitted(estimator)
    check_numpy_only(estimator, X, method="predict")
    return validate_data(
        estimator,
        X,
        accept_sparse=["csr", "csc"],
        ensure_all_finite=not get_tags(estimator).input_tags.allow_nan,
        reset=False,
    )


def _float_array(value, name):
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a float or an array of floats, got {value!r}."
        ) from exc


def _check_n_steps(n_steps, n_targets):
    """``n_steps`` as an int, or as an int array of shape (n_targets,)."""
    if isinstance(n_steps, bool | np.bool_):  # an Integral, but not a count
        raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}.")
    arr = np.asarray(n_steps)
    message = (
        "n_steps must be a non-negative int or a 1-D array of non-negative "
        f"ints of shape (n_targets,) = ({n_targets},), got {n_steps!r}."
    )
    if arr.dtype == bool or arr.ndim > 1:
        raise ValueError(message)
    if arr.ndim == 1 and arr.shape[0] not in (1, n_targets):
        raise ValueError(message)
    try:
        as_float = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(message) from exc
    if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
        raise ValueError(message)
    if np.any(as_float < 0):
        raise ValueError(message)
    if arr.ndim == 0:
        return int(as_float)
    return np.broadcast_to(as_float.astype(np.intp), (n_targets,)).copy()


def check_target_steps(alpha, xi, n_steps, n_targets):
    """Validated penalties and weights, per step and possibly per target.

    Parameters
    ----------
    alpha : float or array-like
        A float; shape (n_steps + 1,) (per step); shape (n_targets,) when
        every target has ``n_steps = 0`` (per target, as
        :class:`~sklearn.linear_model.Ridge`); or 2-D of shape
        (1 or n_targets, 1 or n_steps + 1) (per target, and per step).
    xi : float or array-like
        A float; shape (n_steps,) (per step); or 2-D of shape
        (1 or n_targets, 1 or n_steps) (per target, and per step).
    n_steps : int or array-like of shape (n_targets,)
        A count shared by every target, or one count per target (then
        ``n_steps`` above means ``max(n_steps)``).
    n_targets : int
        Number of columns of ``y``.

    Returns
    -------
    alphas, xis : ndarray
        Without any per-target parameter, ``alphas`` of shape (k + 1,) and
        ``xis`` of shape (k,), as :func:`check_step_array` gives them. With
        one, ``alphas`` of shape (n_targets, K + 1) and ``xis`` of shape
        (n_targets, K) with ``K = max(n_steps)``: the entries beyond target
        ``t``'s own count are NaN in ``xis`` (so the arrays say each target's
        count) and repeat its last penalty in ``alphas``.
    """
    steps = _check_n_steps(n_steps, n_targets)
    per_target_steps = isinstance(steps, np.ndarray)
    k = int(steps.max(initial=0)) if per_target_steps else steps
    a = _float_array(alpha, "alpha")
    x = _float_array(xi, "xi")
    ridge_alpha = k == 0 and a.ndim == 1 and a.shape[0] == n_targets != 1
    if not (per_target_steps or a.ndim == 2 or x.ndim == 2 or ridge_alpha):
        if a.ndim == 1 and a.shape[0] != k + 1:
            raise ValueError(_alpha_shape_message(k, n_targets, a.shape))
        if x.ndim == 1 and x.shape[0] != k:
            raise ValueError(_xi_shape_message(k, n_targets, x.shape))
        return (
            check_step_array(alpha, "alpha", k + 1, low=0),
            check_step_array(xi, "xi", k),
        )
    if ridge_alpha:
        a = a[:, None]
    alphas = _broadcast_per_target(a, "alpha", n_targets, k + 1, alpha)
    xis = _broadcast_per_target(x, "xi", n_targets, k, xi)
    counts = steps if per_target_steps else np.full(n_targets, k)
    used_alpha = np.arange(k + 1) <= counts[:, None]
    used_xi = np.arange(k) < counts[:, None]
    for name, arr, used, value in (
        ("alpha", alphas, used_alpha, alpha),
        ("xi", xis, used_xi, xi),
    ):
        if not np.all(np.isfinite(arr[used])) or np.any(np.isinf(arr)):
            raise ValueError(
                f"{name} must be finite (NaN is allowed only beyond a target's "
                f"own n_steps), got {value!r}."
            )
    if np.any(alphas[used_alpha] < 0) or np.any(alphas[~used_alpha] < 0):
        raise ValueError(f"alpha must be non-negative, got {alpha!r}.")
    last = alphas[np.arange(n_targets), counts]
    alphas = np.where(used_alpha, alphas, last[:, None])
    xis = np.where(used_xi, xis, np.nan)
    return alphas, xis


def _broadcast_per_target(arr, name, n_targets, width, value):
    """``arr`` (a float, (width,) or 2-D) broadcast to (n_targets, width)."""
    if arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] == width):
        return np.broadcast_to(arr, (n_targets, width)).copy()
    if arr.ndim == 2 and arr.shape[0] in (1, n_targets) and arr.shape[1] in (1, width):
        return np.broadcast_to(arr, (n_targets, width)).copy()
    if name == "alpha":
        message = _alpha_shape_message(width - 1, n_targets, arr.shape)
    else:
        message = _xi_shape_message(width, n_targets, arr.shape)
    raise ValueError(message)


def _alpha_shape_message(k, n_targets, shape):
    ridge = (
        f", of shape (n_targets,) = ({n_targets},) (one penalty per target, as "
        "in Ridge)"
        if k == 0
        else ""
    )
    return (
        f"alpha must be a float or an array of shape ({k + 1},) (one penalty "
        f"per step, n_steps + 1){ridge}, or 2-D of shape (n_targets, 1) = "
        f"({n_targets}, 1) (one penalty per target) or (n_targets, n_steps + 1) "
        f"= ({n_targets}, {k + 1}) (per target and step); got an array of "
        f"shape {shape}. A 1-D alpha is per step: give per-target penalties "
        "as a column."
    )


def _xi_shape_message(k, n_targets, shape):
    return (
        f"xi must be a float or an array of shape ({k},), got an array of "
        f"shape {shape}; per-target weights are 2-D, of shape (n_targets, 1) = "
        f"({n_targets}, 1) or (n_targets, n_steps) = ({n_targets}, {k})."
    )


def check_splits(cv, X, y, groups, *, classifier, random_state):
    """The list of ``(train, test)`` splits, without touching the user's ``cv``.

    One check for both searches of ``SelfDistillCV``: a shuffling splitter
    without a seed is seeded (a copy) from ``random_state``; no split, an empty
    fold or a splitter that cannot split the data raise a ValueError naming
    ``cv``.
    """
    splitter = check_cv(cv, y, classifier=classifier)
    if (
        getattr(splitter, "shuffle", False)
        and getattr(splitter, "random_state", 0) is None
    ):
        # Seed a copy: the user's splitter keeps random_state=None.
        splitter = copy.deepcopy(splitter)
        splitter.random_state = check_random_state(random_state).randint(2**31)
    try:
        splits = list(splitter.split(X, y, groups))
    except ValueError as exc:
        raise ValueError(f"cv={cv!r} cannot split these data: {exc}") from exc
    if not splits:
        raise ValueError(
            f"cv={cv!r} produced no train/test split (an empty iterable or an "
            "exhausted generator?); pass an int, a splitter or a list of splits."
        )
    for train, test in splits:
        if len(train) == 0 or len(test) == 0:
            raise ValueError(f"cv={cv!r} produced an empty fold.")
    return splits


_CLASSIFICATION_METRICS = (
    "sklearn.metrics._classification",
    "sklearn.metrics._ranking",
)


def check_regression_target(y, scorer, scoring, *, classifier):
    """Clear errors, before any fit, for targets a regression search cannot use.

    String labels given to a regressor, and a classification scorer (say
    ``"accuracy"``) on a continuous target, would otherwise fail deep inside
    numpy or an optuna trial. ``y`` that is not array-like (chunks, dask)
    is left to the readers.
    """
    if classifier or y is None or not hasattr(y, "__len__"):
        return
    arr = np.asarray(y)
    if arr.dtype.kind in "OUS":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            example = next((v for v in arr.ravel().tolist() if not _is_number(v)), None)
            raise ValueError(
                f"y must be numeric for a regressor, got labels such as {example!r}. "
                "For classification, use SelfDistillationClassifier (or "
                "SelfDistillCV(estimator=SelfDistillationClassifier()))."
            ) from None
    func = getattr(scorer, "_score_func", None)
    if getattr(func, "__module__", None) in _CLASSIFICATION_METRICS:
        from sklearn.utils.multiclass import type_of_target

        if type_of_target(arr) in ("continuous", "continuous-multioutput"):
            raise ValueError(
                f"scoring={scoring!r} is a classification metric, but y is "
                "continuous and the estimator a regressor. Use a regression "
                "scorer such as 'neg_mean_squared_error' or 'r2'."
            )


def check_finite_target(y):
    """A ValueError naming ``y`` when a numeric target holds NaN or infinity.

    The closed-form search rejects such targets while validating its input;
    this gives the optuna search the same message before its study starts,
    instead of one from inside the first trial's fit or scorer. Non-numeric
    targets (class labels) and inputs that are not array-like are left to the
    estimator.
    """
    if y is None or not hasattr(y, "__len__"):
        return
    arr = np.asarray(y)
    if arr.dtype.kind in "fc":
        assert_all_finite(arr, input_name="y")


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
