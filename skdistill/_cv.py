"""``SelfDistillCV``: exact, fast tuning of alpha, xi and the number of steps."""

import copy
import time
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.base import is_classifier as _is_classifier
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    check_random_state,
    validate_data,
)

from . import _streaming
from ._array_api import (
    check_same_namespace,
    max_abs,
    namespace,
    to_namespace,
    to_numpy,
)
from ._cv_closed_form import (
    _rows,
    fold_statistics,
    loo_statistics,
    prepare_fold,
    prepare_spectral_fold,
)
from ._cv_engine import RULES, filter_powers, pool_targets, select
from ._cv_results import format_cv_results
from ._filter import _xi_bar_rows_to_xi, xi_bar_to_xi, xi_to_xi_bar
from ._kernel import KernelSelfDistillationRegressor
from ._linear import RepeatedSelfDistillationRegressor
from ._meta import _DefaultEstimatorMixin
from ._spectral import resolve_solver
from .exceptions import AlphaGridWarning, warn_user

__all__ = ["SelfDistillCV"]

_CLOSED_FORM_SCORINGS = (None, "neg_mean_squared_error", "r2")
_CLOSED_FORM_ESTIMATORS = (
    RepeatedSelfDistillationRegressor,
    KernelSelfDistillationRegressor,
)
_DEFAULT_ALPHA_SPAN = (-6.0, 1.0, 50)
_MAX_CV_STEPS = 30


class SelfDistillCV(_DefaultEstimatorMixin, MetaEstimatorMixin, BaseEstimator):
    """Self-distillation tuned by cross-validation: ``alpha``, ``xi``, ``n_steps``.

    For ridge distillates (:class:`RepeatedSelfDistillationRegressor`, the
    default) the search is exact and cheap: each training fold is decomposed
    once; for every ``alpha`` on the grid and every number of steps ``k`` the
    validation error is a quadratic in the effective coefficients ``xi_bar``,
    whose cross-validated optimum is one small constrained least-squares
    solve. No grid over ``xi`` is searched and no model is refitted per
    candidate. Ridge is the candidate ``xi_bar = (1, 0, ..., 0)``, so the tuned
    cross-validation error is never above that of ridge on the same folds.

    For other estimators or scorers (for example classifiers, or
    ``scoring="neg_mean_absolute_error"``) an optuna study searches the
    parameters with cross-validation (``search="optuna"``).

    Parameters
    ----------
    estimator : estimator object, default=None
        The model to tune. ``None`` means
        ``RepeatedSelfDistillationRegressor()``. Its ``fit_intercept`` and
        ``solver`` are kept; ``alpha``, ``xi`` and ``n_steps`` are tuned. A
        :class:`KernelSelfDistillationRegressor` (whose kernel parameters are
        kept) is tuned by the same closed form, from one eigendecomposition of
        each training fold's Gram matrix.
    alphas : array-like of shape (n_alphas,), default=None
        Positive penalties to try. ``None`` uses 50 values
        ``lam_max * np.logspace(-6, 1, 50)``, where ``lam_max`` is the mean
        over training folds of the largest eigenvalue of the centred
        (weighted) ``X^T X`` (of the Gram matrix for kernel estimators): the
        grid scales with the data. With
        ``search="optuna"``, ``alpha`` is searched log-uniformly between the
        grid's end points.
    n_steps : int or iterable of int, default=(0, 1, 2)
        Candidate numbers of student steps; ``0`` is ridge.
    cv : int, cross-validation generator, iterable or None, default=5
        As in :class:`~sklearn.model_selection.GridSearchCV`: an int gives
        (Stratified)KFold, or pass a splitter or an iterable of splits.
        ``None`` means exact leave-one-out, as in
        :class:`~sklearn.linear_model.RidgeCV`: from one decomposition of all
        the data (:class:`RepeatedSelfDistillationRegressor` only). The
        leave-one-out errors of the rows are then grouped into 10 interleaved
        blocks (row ``i`` in block ``i % 10``), which play the part of the
        folds for the selection rule; ``mean_test_score`` is the leave-one-out
        score of all rows.
    scoring : str or callable, default=None
        ``None`` selects by the (weighted) mean squared error. The closed
        form also honours ``"neg_mean_squared_error"`` and ``"r2"``; any other
        scorer needs ``search="optuna"`` (``"auto"`` switches to it).
    search : {"auto", "closed_form", "optuna"}, default="auto"
        ``"auto"`` uses the closed form whenever it applies.
    n_trials : int, default=100
        Number of optuna trials. Optuna's own log lines follow
        :func:`optuna.logging.set_verbosity`, which ``SelfDistillCV`` never
        changes.
    timeout : float, default=None
        Time budget of the optuna study in seconds.
    n_jobs : int, default=None
        Number of jobs over folds.
    refit : bool, default=True
        Refit the best candidate on all the data as ``best_estimator_``.
    random_state : int, RandomState instance or None, default=None
        Seeds the optuna sampler (and shuffling splitters passed as ints).
    verbose : int, default=0
        Progress messages: 1 for a summary, 2 per fold or per trial.
    alpha_per_target : bool, default=False
        With several targets, tune ``(alpha, n_steps, xi)`` for each target
        separately from the same fold decompositions (closed form only). The
        selection is batched over targets (memory bounded whatever their
        number), and ``best_estimator_`` is one
        :class:`RepeatedSelfDistillationRegressor` with per-target
        parameters, fitted from one decomposition. The fitted ``alpha_``,
        ``cv_alpha_`` and ``n_steps_`` are then arrays of shape
        ``(n_targets,)``, ``xi_`` and ``xi_bar_`` padded arrays.
    rescale_alpha : bool, default=True
        Refit a chosen student (``n_steps_ >= 1``) with ``alpha * n /
        n_train``, where ``n_train`` is the mean (weighted) size of the
        training folds. Squared singular values grow with the number of rows;
        the rescaling keeps ``h = s**2 / (s**2 + alpha)`` where the filter, a
        polynomial in ``h``, was validated. A chosen ridge is refitted at the
        validated alpha, as :class:`~sklearn.linear_model.RidgeCV` does
        (closed form only).
    selection : {"stepwise", "one_se", "honest", "raw"}, default="stepwise"
        How a candidate ``(alpha, n_steps, xi)`` is chosen from the closed
        form's scores. ``xi_bar`` (``n_steps + 1`` numbers) is fitted on the
        validation folds, so the raw cross-validated score of a student is
        optimistic and grows with every step offered. The honest rules use
        cross-fitted scores instead (``xi_bar`` fitted on the other folds,
        scored on the left-out one; see ``cv_results_``), and order the
        candidates by complexity: ridge, then for ``k = 1, 2, ...`` the
        shrinking filter with ``k`` steps, then the free one (when offered:
        see ``filter_constraint``).

        - ``"stepwise"``: start from the best ridge; move to the best
          candidate of the next level only when its per-fold cross-fitted
          errors beat the current choice's by more than two standard errors
          of the paired differences (about a one-sided 95% test with five
          folds). One standard error let students through on pure noise.
        - ``"one_se"``: the simplest level holding a candidate within one
          standard error (of the paired differences) of the best
          cross-fitted score; that level's best candidate.
        - ``"honest"``: the best mean cross-fitted score.
        - ``"raw"``: the best mean raw score (the papers' protocol on a single
          validation split).

        ``benchmarks/bench_selection.py`` measures the rules on held-out data
        (see the user guide). With one split (for example a
        :class:`~sklearn.model_selection.PredefinedSplit` with one validation
        fold) nothing can be cross-fitted: the raw optimum is used, with a
        warning that its choice is not validated. The optuna search ignores
        this parameter.
    filter_constraint : {"auto", "shrink", "none"}, default="auto"
        Which filters the closed form offers for ``n_steps >= 1``.
        ``"shrink"``: filters ``phi(h) = h * sum_m xi_bar_m h^m`` kept within
        ``[0, 1]`` on every training fold's spectrum (each direction shrunk,
        never expanded: the form of every optimal shrinkage of a
        well-specified linear model); ``"none"``: free filters, which may
        expand some directions (the paper's Air Quality gains come from
        those). ``"auto"``: ``"shrink"`` for the cross-fitted rules and
        ``"none"`` for the raw optimum (``selection="raw"`` or a single
        split, the papers' protocol). Free filters chosen by a cross-fitted
        rule lost up to 22 times the excess risk of ``RidgeCV`` on
        ``benchmarks/bench_selection.py``'s fixed-design family: the refit
        evaluates an expanding polynomial at the full data's ``h``, beyond
        what the folds validated, which no cross-fitted score sees. In
        either family, a student whose filter's terms cancel by more than
        ``1e6`` on the training spectra (``sum_m |xi_bar_m| h_max^m``, 1 for
        ridge) is scored in ``cv_results_`` but not chosen: its O(1) values
        are differences of terms a million times larger, which float64 and
        the refit's slightly different ``h`` do not reproduce.
    return_honest_score : bool, default=True
        Closed form only: compute ``honest_score_``, the nested estimate of
        the whole selection. It re-runs the selection rule once per fold,
        cross-fitted on every pair of left-out folds, which takes about twice
        the time of the selection itself (``benchmarks/bench_targets.py``
        measures both with many targets). ``False`` leaves ``honest_score_``
        NaN; the choice and ``cv_results_`` are the same.
    param_distributions : dict, default=None
        Optuna search space: parameter name to an
        :mod:`optuna.distributions` object. ``None`` searches ``alpha``
        (log-uniform), ``n_steps`` (categorical), each step's ``xi`` in
        ``[-1, 2]`` (clipped to the estimator's own range, ``[0, 1]`` for
        classifiers) and, when the estimator has them, ``temperature`` and
        ``estimator__C`` / ``estimator__alpha`` (log-uniform).

    Attributes
    ----------
    best_estimator_ : estimator
        The chosen model refitted on all the data (``refit=True``).
    best_params_ : dict or list of dict
        Parameters of ``best_estimator_``: ``alpha`` (as ``alpha_``),
        ``n_steps`` and ``xi``; one dict per target with
        ``alpha_per_target``.
    best_score_ : float
        Mean cross-validated score of the best candidate, as
        :class:`~sklearn.model_selection.GridSearchCV` reports it (raw: its
        ``xi_bar`` was fitted on the same folds, so it is optimistic for
        students). Negative mean squared error by default, whereas
        :meth:`score` returns R^2.
    honest_score_ : float
        Closed form only: a nested estimate of the score of the whole
        selection. For each fold, the selection rule is re-run on the other
        folds' statistics and its choice, fitted on those folds, is scored on
        the left-out fold. NaN with one split, or with
        ``return_honest_score=False``.
    best_index_ : int
        Index of the best candidate in ``cv_results_``.
    alpha_ : float or ndarray of shape (n_targets,)
        The penalty of ``best_estimator_`` (as ``RidgeCV.alpha_``), that is
        ``cv_alpha_``, times ``alpha_refit_scale_`` for a student.
    cv_alpha_ : float or ndarray of shape (n_targets,)
        Closed form only: the validated ``alpha``, on the training folds'
        scale (as in ``cv_results_["param_alpha"]``).
    alpha_refit_scale_ : float
        Closed form only: the factor from ``cv_alpha_`` to ``alpha_`` for a
        student (``n / n_train`` with ``rescale_alpha``, else 1); a chosen
        ridge keeps ``alpha_ == cv_alpha_``.
    selection_ : str
        Closed form only: the rule applied (``"raw"`` when a single split
        leaves nothing to cross-fit).
    n_steps_ : int or ndarray of shape (n_targets,)
        The chosen number of steps: the ``n_steps`` of the chosen candidate.
        Its filter may use fewer (trailing ``xi_bar`` of zero, ``xi`` of 1)
        when a lower-degree filter fitted the folds better.
    xi_ : ndarray of shape (n_steps_,) or (n_targets, max_steps)
        The chosen per-step mixing weights; with ``alpha_per_target``, one
        row per target, padded with NaN beyond its steps (``max_steps`` is
        the largest ``n_steps_`` chosen).
    xi_bar_ : ndarray of shape (n_steps_ + 1,) or (n_targets, max_steps + 1)
        The chosen effective filter coefficients; with ``alpha_per_target``,
        one row per target, padded with zeros.
    coef_, intercept_ : ndarray
        Those of ``best_estimator_``.
    cv_results_ : dict of ndarrays
        In :class:`~sklearn.model_selection.GridSearchCV`'s format, one row
        per candidate ``(alpha, n_steps, filter family)``: ``params`` holds
        ``alpha`` (training folds' scale), ``n_steps`` and ``xi`` (None when
        no finite per-step ``xi`` represents the filter); ``param_xi_bar`` the
        effective coefficients fitted on all folds; ``shrink`` whether the
        filter was kept within [0, 1]. The closed form adds
        ``split{i}_honest_test_score``, ``mean_honest_test_score``,
        ``std_honest_test_score`` and ``rank_honest_test_score``: the
        cross-fitted scores (``xi_bar`` fitted on the other folds, scored on
        fold ``i``; equal to the raw scores for ridge).
    n_splits_ : int
        Number of cross-validation splits.
    refit_time_ : float
        Seconds spent refitting the best model.
    scorer_ : callable
        The scorer used to select the model.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    RepeatedSelfDistillationRegressor : The estimator tuned by default.
    sklearn.linear_model.RidgeCV : The same search restricted to ``n_steps=0``.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skdistill import SelfDistillCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> search = SelfDistillCV(n_steps=(0, 1, 2), cv=5).fit(X, y)
    >>> sorted(search.best_params_)
    ['alpha', 'n_steps', 'xi']
    >>> bool(abs(search.xi_bar_.sum() - 1) < 1e-12)
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "alphas": ["array-like", None],
        "n_steps": [Interval(Integral, 0, None, closed="left"), "array-like"],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "search": [StrOptions({"auto", "closed_form", "optuna"})],
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "n_jobs": [Integral, None],
        "refit": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "alpha_per_target": ["boolean"],
        "rescale_alpha": ["boolean"],
        "param_distributions": [dict, None],
        "return_honest_score": ["boolean"],
        "selection": [StrOptions(set(RULES))],
        "filter_constraint": [StrOptions({"auto", "shrink", "none"})],
    }

    def __init__(
        self,
        estimator=None,
        *,
        alphas=None,
        n_steps=(0, 1, 2),
        cv=5,
        scoring=None,
        search="auto",
        n_trials=100,
        timeout=None,
        n_jobs=None,
        refit=True,
        random_state=None,
        verbose=0,
        alpha_per_target=False,
        rescale_alpha=True,
        param_distributions=None,
        selection="stepwise",
        filter_constraint="auto",
        return_honest_score=True,
    ):
        self.estimator = estimator
        self.alphas = alphas
        self.n_steps = n_steps
        self.cv = cv
        self.scoring = scoring
        self.search = search
        self.n_trials = n_trials
        self.timeout = timeout
        self.n_jobs = n_jobs
        self.refit = refit
        self.random_state = random_state
        self.verbose = verbose
        self.alpha_per_target = alpha_per_target
        self.rescale_alpha = rescale_alpha
        self.param_distributions = param_distributions
        self.selection = selection
        self.filter_constraint = filter_constraint
        self.return_honest_score = return_honest_score

    # ------------------------------------------------------------------ tags
    def _base_estimator(self):
        if self.estimator is None:
            return RepeatedSelfDistillationRegressor()
        return self.estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = self._base_estimator().__sklearn_tags__()
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = sub.classifier_tags
        tags.regressor_tags = sub.regressor_tags
        tags.target_tags = sub.target_tags
        tags.input_tags.sparse = sub.input_tags.sparse
        tags.input_tags.pairwise = sub.input_tags.pairwise
        # The closed form over K folds keeps array API inputs on their device.
        tags.array_api_support = (
            type(self._base_estimator()) is RepeatedSelfDistillationRegressor
            and self.search != "optuna"
            and self.cv is not None
            and self.scoring in _CLOSED_FORM_SCORINGS
        )
        return tags

    # ------------------------------------------------------------ validation
    def _check_n_steps(self):
        # Booleans are Integral, and numpy turns [True, 2] into [1, 2]: check
        # the given elements themselves.
        raw = self.n_steps if np.ndim(self.n_steps) else [self.n_steps]
        if any(isinstance(s, bool | np.bool_) for s in raw):
            raise ValueError(
                f"n_steps must be non-negative integers, got {self.n_steps!r}."
            )
        steps = np.atleast_1d(np.asarray(self.n_steps))
        if steps.size == 0:
            raise ValueError("n_steps must name at least one number of steps.")
        if steps.ndim != 1 or not all(
            isinstance(s, Integral | np.integer) and s >= 0 for s in steps.tolist()
        ):
            raise ValueError(
                f"n_steps must be non-negative integers, got {self.n_steps!r}."
            )
        steps = sorted(set(int(s) for s in steps))
        if steps[-1] > _MAX_CV_STEPS and self.search != "optuna":
            raise ValueError(
                f"n_steps={steps[-1]} is more than the closed-form search "
                f"supports ({_MAX_CV_STEPS}): its cost grows as n_steps**3 per "
                "alpha and fold subset (4.5 s at 20 steps and 20 alphas on "
                "one core), and filters of that degree are numerically "
                "indistinguishable on the training spectrum (the columns h**m "
                "are collinear). Fit RepeatedSelfDistillationRegressor with "
                "many steps directly instead."
            )
        return steps

    def _check_alphas(self):
        if self.alphas is None:
            return None
        alphas = np.asarray(self.alphas, dtype=np.float64)
        if alphas.ndim == 0:
            alphas = alphas.reshape(1)
        if alphas.ndim != 1 or alphas.size == 0:
            raise ValueError("alphas must be a non-empty 1-D array of positive values.")
        if not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
            raise ValueError(
                f"alphas must be positive and finite, got {self.alphas!r}."
            )
        return alphas

    def _use_closed_form(self, estimator):
        applies = type(estimator) in _CLOSED_FORM_ESTIMATORS and (
            self.scoring in _CLOSED_FORM_SCORINGS
        )
        if self.search == "closed_form" and not applies:
            raise ValueError(
                "search='closed_form' needs estimator=None, a "
                "RepeatedSelfDistillationRegressor or a "
                "KernelSelfDistillationRegressor and scoring in "
                f"{_CLOSED_FORM_SCORINGS}; got estimator={estimator!r}, "
                f"scoring={self.scoring!r}. Use search='optuna'."
            )
        if self.search == "optuna":
            return False
        if self.alpha_per_target and not applies:
            raise ValueError("alpha_per_target=True needs the closed-form search.")
        return applies

    def _splits(self, X, y, groups, classifier):
        cv = check_cv(self.cv, y, classifier=classifier)
        if getattr(cv, "shuffle", False) and getattr(cv, "random_state", 0) is None:
            # Seed a copy: the user's splitter object is never modified.
            cv = copy.deepcopy(cv)
            cv.random_state = check_random_state(self.random_state).randint(2**31)
        try:
            splits = list(cv.split(X, y, groups))
        except ValueError as exc:
            raise ValueError(f"cv={self.cv!r} cannot split these data: {exc}") from exc
        if not splits:
            raise ValueError(f"cv={self.cv!r} produced no train/test split.")
        for train, test in splits:
            if len(train) == 0 or len(test) == 0:
                raise ValueError(f"cv={self.cv!r} produced an empty fold.")
        return splits

    # ------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None, *, groups=None):
        """Search the candidates by cross-validation, then refit the best.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), \
                dask array or DataFrame, or iterable of chunks
            Training data. Data larger than memory can be given as a dask
            array or DataFrame, or as an iterable of ``(X, y)`` or
            ``(X, y, sample_weight)`` chunks (with ``y=None``), for example
            from :func:`pandas.read_csv` with ``chunksize``. These are read
            once, into per-fold triangular factors, by the closed form only;
            ``cv`` must then be an int: row ``i`` (counting from 0 over all
            chunks) goes to fold :func:`hash_folds` ``(i, cv, seed)`` with
            ``seed = random_state`` (0 when None). Dask computes the factors
            of its chunks with the active scheduler (threads, processes or a
            ``dask.distributed`` client); the lengths of a dask DataFrame's
            partitions are computed first (persist it to avoid a second read).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values (a dask array or Series with dask ``X``).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights used both to fit each fold and to weight its validation
            error.
        groups : array-like of shape (n_samples,), default=None
            Group labels for group-aware splitters such as
            :class:`~sklearn.model_selection.GroupKFold`.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        estimator = self._base_estimator()
        steps = self._check_n_steps()
        alphas = self._check_alphas()
        closed = self._use_closed_form(estimator)
        self._closed_form_ = closed
        scoring = self.scoring
        if scoring is None and not _is_classifier(estimator):
            scoring = "neg_mean_squared_error"
        self.scorer_ = check_scoring(estimator, scoring=scoring)
        if _streaming.is_dask_collection(X) or _streaming.is_chunk_stream(X, y):
            if not closed or type(estimator) is not RepeatedSelfDistillationRegressor:
                raise ValueError(
                    "Streamed and dask data need the closed-form search "
                    "(a RepeatedSelfDistillationRegressor and scoring in "
                    f"{_CLOSED_FORM_SCORINGS})."
                )
            if groups is not None:
                raise ValueError("groups are not supported for streamed data.")
            self._fit_streamed(estimator, X, y, sample_weight, steps, alphas)
            return self
        _, _, numpy_ = namespace(X, y, sample_weight)
        if not numpy_ and not (
            closed
            and type(estimator) is RepeatedSelfDistillationRegressor
            and self.cv is not None
        ):
            raise TypeError(
                "SelfDistillCV supports array API inputs (array_api_dispatch="
                "True) with the closed-form search of a "
                "RepeatedSelfDistillationRegressor over K folds only; got "
                f"estimator={type(estimator).__name__}, cv={self.cv!r}, "
                f"search={self.search!r}. Convert the data to NumPy arrays."
            )
        if closed:
            self._fit_closed_form(estimator, X, y, sample_weight, groups, steps, alphas)
        else:
            self._fit_optuna(estimator, X, y, sample_weight, groups, steps, alphas)
        return self

    def _fit_optuna(self, estimator, X, y, sample_weight, groups, steps, alphas):
        """Black-box search (:func:`search_optuna`); set the attributes."""
        from ._optuna_search import _has_param, _import_optuna, search_optuna

        _import_optuna()
        validate_data(self, X, y, skip_check_array=True)
        res = search_optuna(
            estimator,
            X,
            y,
            sample_weight,
            groups,
            steps,
            alphas,
            cv=self.cv,
            scoring=self.scoring,
            n_trials=self.n_trials,
            timeout=self.timeout,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            param_distributions=self.param_distributions,
            refit=self.refit,
        )
        self.study_ = res.study
        self.scorer_ = res.scorer
        self.n_splits_ = res.n_splits
        self.cv_results_ = res.cv_results
        self.best_index_ = res.best_index
        self.best_score_ = res.best_score
        self.best_params_ = bp = res.best_params
        if "alpha" in bp:
            self.alpha_ = bp["alpha"]
        if _has_param(res.estimator, "n_steps"):
            self.n_steps_ = bp.get("n_steps", res.estimator.get_params()["n_steps"])
        if "xi" in bp:
            self.xi_ = np.asarray(bp["xi"], dtype=float)
            self.xi_bar_ = xi_to_xi_bar(self.xi_)
        if res.best_estimator is not None:
            self.best_estimator_ = res.best_estimator
            self.refit_time_ = res.refit_time

    def _fit_streamed(self, estimator, X, y, sample_weight, steps, alphas):
        """Chunks or dask data: per-fold factors read once, then the search.

        The data are read into factors before anything is set on ``self``,
        so that a stream that fails leaves a fitted search as it was.
        """
        n_splits, seed = _streaming.check_stream_cv(self.cv, self.random_state)
        tic = time.perf_counter()
        if _streaming.is_dask_collection(X):
            source = _streaming.read_dask(X, y, sample_weight, n_splits, seed)
        else:  # the probe takes the chunks' width and feature names
            source = _streaming.read_chunks(
                X, n_splits, seed, clone(self), sample_weight
            )
        folds = source.prepared_folds(estimator.fit_intercept)
        fit_times = np.full(n_splits, (time.perf_counter() - tic) / n_splits)
        self._select_closed_form(
            estimator,
            folds,
            fit_times,
            steps,
            alphas,
            n_targets=source.factors.n_targets,
            n_ref=source.n_ref,
            refit_one=source.refit_function(estimator),
        )
        # best_estimator_ saw the validated array, as in memory: it has no
        # feature names, and SelfDistillCV checks them at predict time.
        self.n_features_in_ = source.factors.n_features
        if source.names is not None:
            self.feature_names_in_ = source.names
        else:
            self.__dict__.pop("feature_names_in_", None)

    def _fit_closed_form(self, estimator, X, y, sample_weight, groups, steps, alphas):
        xp, device, numpy_ = namespace(X, y, sample_weight)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            dtype=[xp.float64, xp.float32],
            multi_output=True,
            y_numeric=True,
        )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=xp.float64, ensure_non_negative=True
            )
        if numpy_:
            Y = np.asarray(y, dtype=X.dtype).reshape(X.shape[0], -1)
        else:
            y, sample_weight = to_namespace(y, sample_weight, xp=xp, device=device)
            Y = xp.reshape(xp.astype(y, X.dtype), (X.shape[0], -1))
        _check_x_magnitude(X, xp)
        # The search works on y / y_scale: the choice is scale-free, and
        # squared errors of y near 1e-300 or 1e200 neither underflow to a
        # tie nor overflow; reported mean squared errors are scaled back.
        y_scale = max_abs(Y, xp)
        y_scale = y_scale if y_scale > 0 else 1.0
        Y_unit = Y / y_scale
        n_ref = float(X.shape[0] if sample_weight is None else xp.sum(sample_weight))

        def refit_one(p, targets, single):
            est = clone(estimator).set_params(
                alpha=p["alpha"], n_steps=p["n_steps"], xi=p["xi"]
            )
            y_sub = y if single else Y[:, int(targets[0])]
            return est.fit(X, y_sub, sample_weight=sample_weight)

        refit_all = None
        if type(estimator) is RepeatedSelfDistillationRegressor:

            def refit_all(alpha, n_steps, xi):
                """One fit for every target with its own parameters."""
                est = clone(estimator).set_params(alpha=alpha, n_steps=n_steps, xi=xi)
                return est.fit(X, y, sample_weight=sample_weight)

        if self.cv is None:
            self._fit_leave_one_out(
                estimator,
                X,
                Y_unit,
                sample_weight,
                steps,
                alphas,
                n_ref,
                refit_one,
                y_scale=y_scale,
                refit_all=refit_all,
            )
            return
        splits = self._splits(X, y, groups, classifier=False)
        if sample_weight is not None:
            for i, (train, test) in enumerate(splits):
                for rows, part in ((train, "training"), (test, "validation")):
                    if not float(xp.sum(_rows(sample_weight, rows))) > 0:
                        raise ValueError(
                            f"sample_weight sums to zero on the {part} rows of "
                            f"split {i}: that split cannot be fitted or scored."
                        )
        spectral = hasattr(estimator, "_spectral_fit")
        if not spectral:
            fit_intercept = estimator.fit_intercept
            solver = resolve_solver(estimator.solver, X, 1.0)
            if solver == "svd" and sp.issparse(X):
                solver = "gram"

        def _prepare(train, test):
            tic = time.perf_counter()
            if spectral:
                fold = prepare_spectral_fold(
                    estimator, X, Y_unit, sample_weight, train, test
                )
            else:
                fold = prepare_fold(
                    X,
                    Y_unit,
                    sample_weight,
                    train,
                    test,
                    fit_intercept=fit_intercept,
                    solver=solver,
                )
            return fold, time.perf_counter() - tic

        out = Parallel(n_jobs=self.n_jobs)(
            delayed(_prepare)(train, test) for train, test in splits
        )
        folds = [f for f, _ in out]
        fit_times = np.array([t for _, t in out])
        self._select_closed_form(
            estimator,
            folds,
            fit_times,
            steps,
            alphas,
            n_targets=Y.shape[1],
            n_ref=n_ref,
            refit_one=refit_one,
            refit_all=refit_all,
            y_scale=y_scale,
        )

    def _fit_leave_one_out(
        self,
        estimator,
        X,
        Y,
        sample_weight,
        steps,
        alphas,
        n_ref,
        refit_one,
        y_scale,
        refit_all=None,
    ):
        """``cv=None``: exact leave-one-out from one decomposition of all rows."""
        if type(estimator) is not RepeatedSelfDistillationRegressor:
            raise ValueError(
                "cv=None (leave-one-out) needs a RepeatedSelfDistillationRegressor; "
                f"got {type(estimator).__name__}. Pass an int or a splitter as cv."
            )
        if X.shape[0] < 3:
            raise ValueError(
                f"cv=None (leave-one-out) needs at least 3 samples, got {X.shape[0]}."
            )
        tic = time.perf_counter()
        if alphas is None:
            Xd = X.toarray() if sp.issparse(X) else X
            lam_max = (
                np.linalg.norm(
                    (Xd - np.average(Xd, axis=0, weights=sample_weight))
                    * (
                        1.0
                        if sample_weight is None
                        else np.sqrt(sample_weight)[:, None]
                    ),
                    2,
                )
                ** 2
            )
            alphas = (lam_max if lam_max > 0 else 1.0) * np.logspace(
                *_DEFAULT_ALPHA_SPAN
            )
        scoring = "r2" if self.scoring == "r2" else "neg_mean_squared_error"
        stats, n_train = loo_statistics(
            X,
            Y,
            sample_weight,
            fit_intercept=estimator.fit_intercept,
            alphas=alphas,
            max_steps=max(steps),
            scoring=scoring,
        )
        fit_times = np.full(len(stats), (time.perf_counter() - tic) / len(stats))
        self._select_from_statistics(
            stats,
            fit_times,
            tic,
            steps,
            alphas,
            n_targets=Y.shape[1],
            refit_scale=n_ref / n_train if self.rescale_alpha else 1.0,
            refit_one=refit_one,
            refit_all=refit_all,
            y_scale=y_scale,
        )

    def _select_closed_form(
        self,
        estimator,
        folds,
        fit_times,
        steps,
        alphas,
        *,
        n_targets,
        n_ref,
        refit_one,
        y_scale=1.0,
        refit_all=None,
    ):
        """Score every candidate on prepared folds, choose, and refit.

        ``refit_one(params, targets, single)`` returns the estimator refitted
        on all the data (``single``: one estimator for every target).
        """
        scoring = "r2" if self.scoring == "r2" else "neg_mean_squared_error"
        if self.verbose > 1:
            for i, t in enumerate(fit_times):
                print(
                    f"[SelfDistillCV] fold {i + 1}/{len(folds)} decomposed in {t:.3f}s"
                )
        if alphas is None:
            lam_ref = np.mean([f.lam_max for f in folds])
            lam_ref = lam_ref if lam_ref > 0 else 1.0
            alphas = lam_ref * np.logspace(*_DEFAULT_ALPHA_SPAN)
        tic = time.perf_counter()
        stats = [
            fold_statistics(f, alphas=alphas, max_steps=max(steps), scoring=scoring)
            for f in folds
        ]
        n_train = np.mean([f.n_train for f in folds])
        self._select_from_statistics(
            stats,
            fit_times,
            tic,
            steps,
            alphas,
            n_targets=n_targets,
            refit_scale=n_ref / n_train if self.rescale_alpha else 1.0,
            refit_one=refit_one,
            refit_all=refit_all,
            y_scale=y_scale,
        )

    def _select_from_statistics(
        self,
        stats,
        fit_times,
        tic,
        steps,
        alphas,
        *,
        n_targets,
        refit_scale,
        refit_one,
        y_scale=1.0,
        refit_all=None,
    ):
        n_folds = len(stats)
        self.n_splits_ = n_folds
        scoring = "r2" if self.scoring == "r2" else "neg_mean_squared_error"
        groups_of_targets = (
            [np.array([j]) for j in range(n_targets)]
            if self.alpha_per_target and n_targets > 1
            else [np.arange(n_targets)]
        )
        if n_folds < 2 and self.selection != "raw":
            warn_user(
                f"selection={self.selection!r} needs at least two validation "
                "folds to cross-fit xi_bar; with one split the raw optimum is "
                "used, and its choice of n_steps and xi is not validated.",
            )
        F = pool_targets(stats, groups_of_targets)
        constraint = self.filter_constraint
        if constraint == "auto":
            # Free filters only for the raw optimum (the papers' protocol):
            # offered to the cross-fitted rules, they lost up to 22x to
            # RidgeCV on bench_selection.py's fixed-design family (the
            # refit extrapolates an expanding polynomial beyond the h the
            # folds validated), which no cross-fitted score can see.
            raw = self.selection == "raw" or n_folds < 2
            constraint = "none" if raw else "shrink"
        families = {"shrink": (True,), "none": (False,)}[constraint]
        Phi = filter_powers([to_numpy(f.lam) for f in stats], alphas, max(steps))
        scale = np.mean([to_numpy(f.scale) for f in stats], axis=0)  # (t,)
        if len(groups_of_targets) == n_targets:
            scale = scale[np.concatenate(groups_of_targets)]
        else:
            scale = np.array([np.mean(scale[t]) for t in groups_of_targets])
        tol = 1e3 * np.finfo(np.float64).eps * scale
        result = select(
            F,
            steps,
            rule=self.selection,
            tol=tol,
            eligible_fn=_representable_rows,
            nested=self.return_honest_score,
            Phi=Phi,
            families=families,
        )
        cands = result.candidates
        score_time = (time.perf_counter() - tic) / len(cands)

        def to_score(err):
            if scoring == "r2":
                return 1.0 - err
            with np.errstate(over="ignore"):  # y near 1e200: an MSE of inf
                return -(err * y_scale) * y_scale

        # A row's score averages the targets' groups (each at its own optimum).
        weights = np.array([t.size for t in groups_of_targets], dtype=float)
        weights /= weights.sum()
        row_scores = to_score(np.tensordot(weights, result.raw_errors, axes=1))
        honest_scores = to_score(np.tensordot(weights, result.honest_errors, axes=1))
        nested = to_score(np.tensordot(weights, result.nested_errors, axes=1))
        best_index = (
            int(result.chosen[0])
            if len(groups_of_targets) == 1
            else int(np.argmax(row_scores.mean(axis=1)))
        )
        self.cv_results_ = _closed_form_results(
            cands,
            alphas,
            result.xi_bar,
            row_scores,
            honest_scores,
            fit_times,
            score_time,
        )
        self.best_index_ = best_index
        self.best_score_ = float(row_scores[best_index].mean())
        self.honest_score_ = float(np.mean(nested))
        self.selection_ = result.rule
        self.alpha_refit_scale_ = refit_scale

        cand_k = np.array([k for k, _, _ in cands])
        ks = cand_k[result.chosen]
        a_idx = np.array([a for _, a, _ in cands])[result.chosen]
        _warn_edge(alphas, a_idx)
        # Ridge refits at the validated alpha, as RidgeCV does: its optimal
        # penalty does not grow with n. A student's filter is a polynomial in
        # h validated on the training folds' h only, which the rescaling
        # keeps (without it, bench_selection.py's aligned family had 28x
        # RidgeCV's excess risk at n = 100 instead of 0.71x).
        alpha_cv = np.asarray(alphas, dtype=float)[a_idx]
        alpha_fit = alpha_cv * np.where(ks > 0, refit_scale, 1.0)
        width = int(ks.max())
        xi_all = np.full((ks.size, width), np.nan)
        for k in np.unique(ks[ks > 0]):
            sel = np.flatnonzero(ks == k)
            xi_all[sel, :k] = _xi_bar_rows_to_xi(result.chosen_xi_bar[sel, : k + 1])[0]
        xi_bar_all = result.chosen_xi_bar[:, : width + 1].copy()
        params = [
            {
                "alpha": float(alpha_fit[j]),
                "n_steps": int(ks[j]),
                "xi": xi_all[j, : ks[j]].copy(),
                "xi_bar": xi_bar_all[j, : ks[j] + 1].copy(),
                "alpha_cv": float(alpha_cv[j]),
            }
            for j in range(ks.size)
        ]
        if len(params) == 1:
            p = params[0]
            self.alpha_, self.cv_alpha_ = p["alpha"], p["alpha_cv"]
            self.n_steps_, self.xi_, self.xi_bar_ = p["n_steps"], p["xi"], p["xi_bar"]
            self.best_params_ = {k: p[k] for k in ("alpha", "n_steps", "xi")}
        else:
            # One type per attribute: arrays over targets, padded to the most
            # steps chosen (xi with NaN, xi_bar with zeros).
            self.alpha_, self.cv_alpha_, self.n_steps_ = alpha_fit, alpha_cv, ks
            self.xi_, self.xi_bar_ = xi_all, xi_bar_all
            self.best_params_ = [
                {k: p[k] for k in ("alpha", "n_steps", "xi")} for p in params
            ]
        if self.verbose:
            print(
                f"[SelfDistillCV] {n_folds} folds x {len(cands)} candidates "
                f"(closed form, selection={self.selection_!r}): best "
                f"n_steps={self.n_steps_}, alpha={self.alpha_}, "
                f"score={self.best_score_:.6g}, honest={self.honest_score_:.6g}"
            )
        if self.refit:
            tic = time.perf_counter()
            if len(params) == 1:
                self.best_estimator_ = refit_one(params[0], groups_of_targets[0], True)
            elif refit_all is not None:
                # One decomposition for every target, each with its own alpha,
                # n_steps and xi.
                self.best_estimator_ = refit_all(
                    self.alpha_[:, None],
                    self.n_steps_,
                    self.xi_ if self.xi_.size else 0.5,
                )
            else:
                self.best_estimator_ = _PerTargetEstimator(
                    [
                        refit_one(p, targets, False)
                        for p, targets in zip(params, groups_of_targets, strict=True)
                    ]
                )
            self.refit_time_ = time.perf_counter() - tic
        xp, device, numpy_ = namespace(stats[0].R)
        if not numpy_:  # the fitted arrays follow the data's namespace
            for name in ("alpha_", "cv_alpha_", "n_steps_", "xi_", "xi_bar_"):
                value = getattr(self, name)
                if isinstance(value, np.ndarray):
                    setattr(self, name, xp.asarray(value, device=device))

    # ------------------------------------------------------------ delegation
    def _check_refitted(self):
        check_is_fitted(self)
        if not hasattr(self, "best_estimator_"):
            raise AttributeError(
                "This SelfDistillCV was fitted with refit=False; predictions "
                "need refit=True."
            )

    def predict(self, X):
        """Predict with ``best_estimator_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        self._check_refitted()
        self._check_namespace(X, "predict")
        return self.best_estimator_.predict(self._validated(X))

    def score(self, X, y, sample_weight=None):
        """The score of ``best_estimator_`` (R^2 for regressors).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        self._check_refitted()
        self._check_namespace(X, "score")
        return self.best_estimator_.score(
            self._validated(X), y, sample_weight=sample_weight
        )

    def _check_namespace(self, X, method):
        """``X`` must be of the namespace and device of the fit (array API)."""
        if isinstance(self.best_estimator_, RepeatedSelfDistillationRegressor):
            check_same_namespace(X, self, attribute="coef_", method=method)

    def _validated(self, X):
        """``X`` as ``best_estimator_`` saw it: the closed form refits on arrays."""
        if not self._closed_form_:
            return X
        xp, _, _ = namespace(X)
        return validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            dtype=[xp.float64, xp.float32],
            reset=False,
        )

    @property
    def coef_(self):
        self._check_refitted()
        return self.best_estimator_.coef_

    @property
    def intercept_(self):
        self._check_refitted()
        return self.best_estimator_.intercept_

    @property
    def classes_(self):
        self._check_refitted()
        return self.best_estimator_.classes_


class _PerTargetEstimator:
    """Stacks one fitted single-target estimator per column of ``y``."""

    def __init__(self, estimators):
        self.estimators_ = estimators

    def predict(self, X):
        return np.column_stack([e.predict(X) for e in self.estimators_])

    def score(self, X, y, sample_weight=None):
        from sklearn.metrics import r2_score

        return r2_score(y, self.predict(X), sample_weight=sample_weight)

    @property
    def coef_(self):
        return np.vstack([e.coef_ for e in self.estimators_])

    @property
    def intercept_(self):
        return np.array([e.intercept_ for e in self.estimators_])


def _check_x_magnitude(X, xp=np):
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


def _representable_rows(xi_bar):
    """Rows ``(n, k + 1)`` of ``xi_bar`` that finite per-step ``xi`` reproduce."""
    return _xi_bar_rows_to_xi(xi_bar)[1]


def _representable(xi_bar):
    """Whether finite per-step ``xi`` reproduce ``xi_bar`` (to round-off)."""
    return bool(_representable_rows(np.asarray(xi_bar, dtype=float)[None, :])[0])


def _warn_edge(alphas, a_idx):
    """Warn once per end of the grid that some chosen alpha sits on."""
    a_idx = np.asarray(a_idx)
    if alphas.size < 2:
        return
    for a, edge in ((0, "smallest"), (alphas.size - 1, "largest")):
        count = int(np.sum(a_idx == a))
        if count:
            which = "" if a_idx.size == 1 else f" (for {count} of {a_idx.size} targets)"
            warn_user(
                f"The chosen alpha={alphas[a]:.4g} is the {edge} value of the "
                f"grid{which}; the optimum may lie outside it. Consider "
                "extending alphas.",
                AlphaGridWarning,
            )


def _closed_form_results(
    cands, alphas, xi_bars, row_scores, honest_scores, fit_times, score_time
):
    n_c = len(cands)
    params, xi_bar_col = [], np.empty(n_c, dtype=object)
    for c, (k, a, _) in enumerate(cands):
        xi_bar = xi_bars[c]
        xi = xi_bar_to_xi(xi_bar) if _representable(xi_bar) else None
        params.append({"alpha": float(alphas[a]), "n_steps": k, "xi": xi})
        xi_bar_col[c] = xi_bar
    return format_cv_results(
        params,
        {"test": row_scores, "honest_test": honest_scores},
        np.broadcast_to(fit_times, (n_c, len(fit_times))),
        np.full(n_c, score_time),
        extra={
            "param_xi_bar": np.ma.MaskedArray(xi_bar_col, mask=False),
            "shrink": np.array([sh for _, _, sh in cands]),
        },
    )
