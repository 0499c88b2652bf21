"""What every search of ``SelfDistillCV`` returns: one result type, one formatter."""

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

__all__ = ["STORED", "SearchResult", "format_cv_results"]

# The fields of SearchResult that SelfDistillCV stores as ``<name>_`` (the
# ones that are not None).
STORED = (
    "cv_results",
    "best_index",
    "best_score",
    "best_params",
    "n_splits",
    "scorer",
    "study",
    "best_estimator",
    "refit_time",
    "alpha",
    "cv_alpha",
    "alpha_refit_scale",
    "n_steps",
    "xi",
    "xi_bar",
    "honest_score",
    "selection",
)


@dataclass
class SearchResult:
    """What a search found, for :class:`~skdistill.SelfDistillCV` to store.

    Both engines return it: the closed form
    (:func:`skdistill._cv_search.search_closed_form`) and optuna
    (:func:`skdistill._optuna_search.search_optuna`). The estimator stores
    every field named in :data:`STORED` that is not None as ``<name>_``, in one
    place; the attributes are documented in ``SelfDistillCV``'s docstring.

    ``refit_params`` and ``target_groups`` are the closed form's hand-off to
    the refit: one parameter dict per group of targets chosen together (with
    ``alpha`` the refit penalty), and the targets of each group.
    """

    cv_results: dict
    best_index: Any
    best_score: Any
    best_params: Any
    n_splits: int
    scorer: Any = None
    study: Any = None
    estimator: Any = None
    best_estimator: Any = None
    refit_time: float | None = None
    alpha: Any = None
    cv_alpha: Any = None
    alpha_refit_scale: float | None = None
    n_steps: Any = None
    xi: Any = None
    xi_bar: Any = None
    honest_score: float | None = None
    selection: str | None = None
    refit_params: list | None = None
    target_groups: list | None = None


def format_cv_results(params, scores, fit_time, score_time, extra=None):
    """``cv_results_`` in :class:`~sklearn.model_selection.GridSearchCV`'s format.

    Parameters
    ----------
    params : list of dict
        Each candidate's parameters; a ``param_<name>`` column (masked where
        a candidate lacks the name) is made for every name.
    scores : dict of str to ndarray of shape (n_candidates, n_splits)
        Per-split scores under a prefix: ``{"test": ...}`` gives
        ``split{i}_test_score``, ``mean_test_score``, ``std_test_score`` and
        ``rank_test_score`` (NaN ranks last).
    fit_time, score_time : ndarray of shape (n_candidates,) or \
            (n_candidates, n_splits)
        Seconds, averaged (and their spread taken) over splits.
    extra : dict of str to array-like, default=None
        Further columns, stored as given.

    Returns
    -------
    results : dict
    """
    n = len(params)
    results = {}
    for name, t in (("fit", fit_time), ("score", score_time)):
        t = np.asarray(t, dtype=float).reshape(n, -1)
        results[f"mean_{name}_time"] = t.mean(axis=1)
        results[f"std_{name}_time"] = t.std(axis=1)
    for name in sorted({k for p in params for k in p}):
        col = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
        for i, p in enumerate(params):
            if name in p:
                col[i] = p[name]
        results[f"param_{name}"] = col
    results["params"] = list(params)
    for key, value in (extra or {}).items():
        results[key] = value
    for prefix, split in scores.items():
        split = np.asarray(split, dtype=float)
        for i in range(split.shape[1]):
            results[f"split{i}_{prefix}_score"] = split[:, i]
        mean, std = _mean_std(split)
        results[f"mean_{prefix}_score"] = mean
        results[f"std_{prefix}_score"] = std
        ranked = np.where(np.isnan(mean), -np.inf, mean)
        results[f"rank_{prefix}_score"] = rankdata(-ranked, method="min").astype(
            np.int32
        )
    return results


def _mean_std(split):
    """Row means and standard deviations of ``split``, without overflow.

    Each row is divided by the power of two just above its largest finite
    magnitude first (exact, so that ordinary scores give the plain results
    bit for bit), so that scores near the largest float (a target scaled by
    ``1e150`` has squared errors near ``1e300``) overflow neither in the
    squares of the spread nor in the sum of the mean. Rows with an infinite
    score get a NaN spread.
    """
    finite = np.where(np.isfinite(split), np.abs(split), 0.0)
    _, exponent = np.frexp(finite.max(axis=1, initial=0.0))
    scale = np.ldexp(1.0, np.minimum(exponent, 1023))[:, None]  # 2**1024 is inf
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = split / scale
        mean = scaled.mean(axis=1) * scale[:, 0]
        std = scaled.std(axis=1) * scale[:, 0]
    return mean, std
