"""Input checks shared by the estimators."""

import numpy as np
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["check_predict_X", "check_step_array"]


def check_step_array(value, name, length, *, low=None, high=None):
    """Broadcast a float or array parameter to ``length`` finite values.

    ``low`` and ``high`` bound the values (inclusive) when given.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a float or an array of floats, got {value!r}."
        ) from exc
    if arr.ndim == 0:
        arr = np.full(length, float(arr))
    elif arr.ndim != 1 or arr.shape[0] != length:
        raise ValueError(
            f"{name} must be a float or an array of shape ({length},), "
            f"got an array of shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}.")
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
    return validate_data(
        estimator,
        X,
        accept_sparse=["csr", "csc"],
        ensure_all_finite=not get_tags(estimator).input_tags.allow_nan,
        reset=False,
    )
