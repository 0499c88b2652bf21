"""Where the rows of ``SelfDistillCV``'s closed form come from.

A source turns its rows into what the selection consumes, the per-fold
statistics of every pure distillate (:class:`Statistics`), and refits a chosen
candidate on all its rows. The search (:mod:`skdistill._cv_search`) sees only
these two methods, whatever the rows are:

- :class:`InMemorySplits`: arrays split by a cross-validation splitter, one
  decomposition per training fold;
- :class:`LeaveOneOutRows`: ``cv=None``, exact leave-one-out from one
  decomposition of all rows;
- :class:`StreamedSource`: chunks or dask arrays read once into per-fold
  factors (:mod:`skdistill._streaming`).

Every source divides the targets by :func:`target_scales` before computing
statistics, so that the choice does not depend on the scale of ``y``.
"""

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.externals.array_api_compat import array_namespace

from ._array_api import max_abs
from ._cv_closed_form import (
    _rows,
    fold_statistics,
    prepare_fold,
    prepare_spectral_fold,
)
from ._cv_loo import loo_basis, loo_statistics, resolution
from ._linear import RepeatedSelfDistillationRegressor
from ._spectral import resolve_solver

__all__ = [
    "DEFAULT_ALPHA_SPAN",
    "InMemorySplits",
    "LeaveOneOutRows",
    "Statistics",
    "StreamedSource",
    "check_x_magnitude",
    "target_scales",
]

# The default grid: lam_max * np.logspace(*DEFAULT_ALPHA_SPAN).
DEFAULT_ALPHA_SPAN = (-6.0, 1.0, 50)


@dataclass
class Statistics:
    """What a source hands to the selection."""

    stats: list  # FoldStatistics, one per fold (or leave-one-out block)
    alphas: np.ndarray  # the grid (the default one resolved)
    n_train: float  # mean weight sum of a training fold
    fit_times: np.ndarray  # seconds per fold spent decomposing
    seconds: float  # seconds spent computing ``stats`` (the scoring)
    # (n_alphas, t): round-off of each target's errors per unit |xi_bar|_1, in
    # square-root error units (skdistill._cv_loo.resolution); None: not bounded.
    resolution: np.ndarray = None


def target_scales(max_abs_per_target, per_target):
    """Scales (n_targets,) that the search divides the targets by.

    Positive and finite: the largest magnitude of each target when targets
    are chosen separately, else the largest of all (one scale keeps the
    targets' relative weights in a shared choice); 1 for an all-zero target.
    The search works on ``y / y_scale``: squared errors of ``y`` near 1e-300
    or 1e200 neither underflow to a tie nor overflow, and reported mean
    squared errors are scaled back.
    """
    scale = np.asarray(max_abs_per_target, dtype=float).reshape(-1)
    if not per_target:
        scale = np.full(scale.shape, scale.max(initial=0.0))
    return np.where((scale > 0) & np.isfinite(scale), scale, 1.0)


def check_x_magnitude(X, xp=np):
    """Refuse ``X`` whose squares over- or underflow in the fold decompositions.

    The estimator rescales such ``X`` by a power of two and ``alpha`` by its
    square; the search cannot, since the alphas it reports and refits with
    would themselves leave the floating-point range (``X`` of 1e300 turns an
    ``alpha`` of 1 into 1e-600).
    """
    top = max_abs(X, xp)
    if top > 0 and not 1e-140 < top < 1e140:
        raise ValueError(
            f"X has entries of magnitude up to {top:.3g}: the closed-form "
            "search squares X, which over- or underflows beyond about 1e140 "
            "or below 1e-140. Rescale X (for example with StandardScaler)."
        )


def _default_alphas(lam_max):
    """The default grid ``lam_max * logspace(*DEFAULT_ALPHA_SPAN)`` (1 for
    ``lam_max`` when the data have no variance)."""
    return (lam_max if lam_max > 0 else 1.0) * np.logspace(*DEFAULT_ALPHA_SPAN)


def _statistics_of_folds(folds, fit_times, alphas, max_steps, scoring, progress):
    """:class:`Statistics` of prepared folds (the default grid from their spectra)."""
    if alphas is None:
        alphas = _default_alphas(np.mean([f.lam_max for f in folds]))
    tic = time.perf_counter()
    stats = [
        fold_statistics(f, alphas=alphas, max_steps=max_steps, scoring=scoring)
        for f in folds
    ]
    n_train = float(np.mean([f.n_train for f in folds]))
    progress(
        f"scored {len(alphas)} alphas x {max_steps + 1} distillates on "
        f"{len(folds)} folds"
    )
    return Statistics(stats, alphas, n_train, fit_times, time.perf_counter() - tic)


class _ArrayRefits:
    """Refits of a chosen candidate on validated in-memory arrays."""

    def __init__(self, estimator, X, y, Y, sample_weight):
        self.estimator, self.X, self.y, self.Y = estimator, X, y, Y
        self.sample_weight = sample_weight
        self.n_targets = Y.shape[1]

    def refit(self, params, targets, single):
        """The candidate ``params`` fitted on all rows: every target
        (``single``) or target ``targets[0]`` alone."""
        est = clone(self.estimator).set_params(
            alpha=params["alpha"], n_steps=params["n_steps"], xi=params["xi"]
        )
        y_sub = self.y if single else self.Y[:, int(targets[0])]
        return est.fit(self.X, y_sub, sample_weight=self.sample_weight)

    @property
    def refit_all(self):
        """``(alpha, n_steps, xi) -> estimator``: one fit for every target with
        its own parameters, from one decomposition (None where unsupported)."""
        if type(self.estimator) is not RepeatedSelfDistillationRegressor:
            return None

        def refit_all(alpha, n_steps, xi):
            est = clone(self.estimator).set_params(alpha=alpha, n_steps=n_steps, xi=xi)
            return est.fit(self.X, self.y, sample_weight=self.sample_weight)

        return refit_all


class InMemorySplits(_ArrayRefits):
    """Validated arrays and the splits of a cross-validation splitter.

    Parameters
    ----------
    estimator : RepeatedSelfDistillationRegressor or KernelSelfDistillationRegressor
    X, y : validated arrays (``y`` as the user gave its shape)
    Y : array of shape (n_samples, n_targets), ``y`` in ``X``'s dtype
    Y_unit : ``Y / y_scale``
    sample_weight : validated array or None
    splits : list of (train, test)
    y_scale : ndarray of shape (n_targets,)
    n_ref : float
        Weight sum of all rows.
    n_jobs : int or None
    """

    def __init__(
        self, estimator, X, y, Y, Y_unit, sample_weight, splits, *, y_scale, n_ref,
        n_jobs=None,
    ):  # fmt: skip
        super().__init__(estimator, X, y, Y, sample_weight)
        if sample_weight is not None:
            xp = array_namespace(sample_weight)
            for i, (train, test) in enumerate(splits):
                for rows, part in ((train, "training"), (test, "validation")):
                    if not float(xp.sum(_rows(sample_weight, rows))) > 0:
                        raise ValueError(
                            f"sample_weight sums to zero on the {part} rows of "
                            f"split {i}: that split cannot be fitted or scored."
                        )
        self.Y_unit, self.splits, self.n_jobs = Y_unit, splits, n_jobs
        self.y_scale, self.n_ref = y_scale, n_ref

    def _prepare(self, train, test):
        tic = time.perf_counter()
        est, X, Y, w = self.estimator, self.X, self.Y_unit, self.sample_weight
        if hasattr(est, "_spectral_fit"):
            fold = prepare_spectral_fold(est, X, Y, w, train, test)
        else:
            solver = resolve_solver(est.solver, X, 1.0)
            if solver == "svd" and sp.issparse(X):
                solver = "gram"
            fold = prepare_fold(
                X, Y, w, train, test, fit_intercept=est.fit_intercept, solver=solver
            )
        return fold, time.perf_counter() - tic

    def statistics(self, alphas, max_steps, scoring, progress):
        """:class:`Statistics` of every split, one decomposition per fold."""
        n = len(self.splits)
        if self.n_jobs in (None, 1):  # one by one, each reported as it ends
            out = []
            for i, (train, test) in enumerate(self.splits):
                out.append(self._prepare(train, test))
                progress(f"fold {i + 1}/{n} decomposed in {out[-1][1]:.3f}s", 2)
        else:
            out = Parallel(n_jobs=self.n_jobs)(
                delayed(self._prepare)(train, test) for train, test in self.splits
            )
        folds = [f for f, _ in out]
        fit_times = np.array([t for _, t in out])
        progress(f"decomposed {n} training folds")
        return _statistics_of_folds(
            folds, fit_times, alphas, max_steps, scoring, progress
        )


class LeaveOneOutRows(_ArrayRefits):
    """``cv=None``: exact leave-one-out from one decomposition of all rows.

    The same parameters as :class:`InMemorySplits`, without ``splits``.
    """

    def __init__(self, estimator, X, y, Y, Y_unit, sample_weight, *, y_scale, n_ref):
        if type(estimator) is not RepeatedSelfDistillationRegressor:
            raise ValueError(
                "cv=None (leave-one-out) needs a RepeatedSelfDistillationRegressor; "
                f"got {type(estimator).__name__}. Pass an int or a splitter as cv."
            )
        if X.shape[0] < 3:
            raise ValueError(
                f"cv=None (leave-one-out) needs at least 3 samples, got {X.shape[0]}."
            )
        super().__init__(estimator, X, y, Y, sample_weight)
        self.Y_unit, self.y_scale, self.n_ref = Y_unit, y_scale, n_ref

    def statistics(self, alphas, max_steps, scoring, progress):
        """:class:`Statistics` of the leave-one-out blocks."""
        tic = time.perf_counter()
        fit_intercept = self.estimator.fit_intercept
        basis = loo_basis(
            self.X, self.Y_unit, self.sample_weight, fit_intercept=fit_intercept
        )
        if alphas is None:  # the default grid, from the centred data's lam_max
            alphas = _default_alphas(basis.lam_max)
        stats, n_train = loo_statistics(
            self.X,
            self.Y_unit,
            self.sample_weight,
            fit_intercept=fit_intercept,
            alphas=alphas,
            max_steps=max_steps,
            scoring=scoring,
            basis=basis,
        )
        seconds = time.perf_counter() - tic
        fit_times = np.full(len(stats), seconds / len(stats))
        progress(
            f"leave-one-out of {self.X.shape[0]} rows: {len(alphas)} alphas x "
            f"{max_steps + 1} distillates from one decomposition"
        )
        bound = resolution(basis, alphas, scoring, n_blocks=len(stats))
        return Statistics(stats, alphas, n_train, fit_times, seconds, bound)


class StreamedSource:
    """Chunks or dask arrays read once into per-fold factors.

    Parameters
    ----------
    estimator : RepeatedSelfDistillationRegressor
    folds : skdistill._streaming.StreamedFolds
    per_target : bool
        Whether the targets are chosen separately (scaled separately).
    read_seconds : float
        Time spent reading the data, shared out over the folds.
    """

    refit_all = None

    def __init__(self, estimator, folds, *, per_target, read_seconds):
        self.estimator, self.folds = estimator, folds
        self.n_targets = folds.factors.n_targets
        self.n_ref = folds.n_ref
        self.y_scale = target_scales(folds.target_rms(), per_target)
        self.read_seconds = read_seconds
        self.refit = folds.refit_function(estimator)

    def statistics(self, alphas, max_steps, scoring, progress):
        """:class:`Statistics` of the hashed folds."""
        tic = time.perf_counter()
        prepared = self.folds.prepared_folds(
            self.estimator.fit_intercept, y_scale=self.y_scale
        )
        n = len(prepared)
        seconds = self.read_seconds + time.perf_counter() - tic
        fit_times = np.full(n, seconds / n)
        progress(f"read {self.folds.n_rows} rows into {n} fold factors")
        return _statistics_of_folds(
            prepared, fit_times, alphas, max_steps, scoring, progress
        )
