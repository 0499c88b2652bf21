"""``SelfDistillCV``: exact, fast tuning of alpha, xi and the number of steps."""

import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.base import is_classifier as _is_classifier
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import _streaming
from ._array_api import check_same_namespace, namespace, to_namespace, to_numpy
from ._cv_engine import RULES
from ._cv_results import STORED
from ._cv_search import SearchSettings, search_closed_form
from ._cv_sources import (
    InMemorySplits,
    LeaveOneOutRows,
    StreamedSource,
    check_x_magnitude,
    target_scales,
)
from ._kernel import KernelSelfDistillationRegressor
from ._linear import RepeatedSelfDistillationRegressor
from ._meta import _DefaultEstimatorMixin
from ._progress import Progress
from ._validation import check_regression_target, check_splits

__all__ = ["SelfDistillCV"]

_CLOSED_FORM_SCORINGS = (None, "neg_mean_squared_error", "r2")
_CLOSED_FORM_ESTIMATORS = (
    RepeatedSelfDistillationRegressor,
    KernelSelfDistillationRegressor,
)
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
        ``None`` selects by the (weighted) mean squared error over all
        validation rows. That is not the default of
        :class:`~sklearn.linear_model.RidgeCV` with an int or splitter ``cv``,
        which scores by the mean over folds of each fold's R^2: on the same
        folds and alphas the two can choose different penalties. Compare with
        ``RidgeCV(scoring="neg_mean_squared_error")``, or pass ``"r2"`` here.
        The closed form also honours ``"neg_mean_squared_error"`` and
        ``"r2"``; any other scorer needs ``search="optuna"`` (``"auto"``
        switches to it).
    search : {"auto", "closed_form", "optuna"}, default="auto"
        ``"auto"`` uses the closed form whenever it applies.
    n_trials : int, default=100
        Number of optuna trials. Optuna's own log line per trial is shown
        with ``verbose >= 2`` only: below, its verbosity is raised to
        WARNING during the study and restored afterwards.
    timeout : float, default=None
        Time budget of the optuna study in seconds.
    n_jobs : int, default=None
        Number of jobs over folds.
    refit : bool, default=True
        Refit the best candidate on all the data as ``best_estimator_``.
    random_state : int, RandomState instance or None, default=None
        Seeds the optuna sampler (and shuffling splitters passed as ints).
    verbose : int, default=0
        Progress, printed (and flushed) as each stage ends, with the time
        elapsed: 1 for the stages (folds decomposed, candidates scored,
        selection, refit; counts rather than arrays with many targets), 2
        also for each fold or optuna trial.
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
          folds; one standard error lets students through on pure noise).
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
    filter_constraint : {"auto", "shrink", "nonnegative", "none"}, \
            default="auto"
        Which filters the closed form offers for ``n_steps >= 1``.
        ``"shrink"``: filters ``phi(h) = h * sum_m xi_bar_m h^m`` kept within
        ``[0, 1]`` on every training fold's spectrum (each direction shrunk,
        never expanded: the form of every optimal shrinkage of a
        well-specified linear model); ``"nonnegative"``: kept ``>= 0`` there
        (a direction may be expanded, never flipped in sign: the expanding
        one-step students of real time series are of this kind, the
        students whose scores mislead cross-validation most flip the sign
        of the small directions); ``"none"``: free filters, which may
        expand some directions (the paper's Air Quality gains come from
        those). ``"auto"``: ``"shrink"`` for the cross-fitted rules and
        ``"none"`` for the raw optimum (``selection="raw"`` or a single
        split, the papers' protocol). Free filters chosen by a cross-fitted
        rule can lose badly (``benchmarks/bench_selection.py`` measures it;
        see the user guide): the refit evaluates an expanding polynomial at
        the full data's ``h``, beyond what the folds validated, which no
        cross-fitted score sees. In every family, a student whose filter's
        terms cancel by more than ``1e6`` on the training spectra
        (``sum_m |xi_bar_m| h_max^m``, 1 for ridge) is scored in
        ``cv_results_`` but not chosen: its O(1) values are differences of
        terms a million times larger, which float64 and the refit's slightly
        different ``h`` do not reproduce.
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
        The chosen row's ``params`` in ``cv_results_``: the validated
        ``alpha`` (``cv_alpha_``), ``n_steps`` and ``xi``; one dict per target
        with ``alpha_per_target``. ``best_estimator_`` is the estimator with
        these parameters and ``alpha=alpha_`` (the refit penalty, which
        differs from the validated one for a student: see
        ``rescale_alpha``).
    best_score_ : float or ndarray of shape (n_targets,)
        Mean cross-validated score of the best candidate, as
        :class:`~sklearn.model_selection.GridSearchCV` reports it (raw: its
        ``xi_bar`` was fitted on the same folds, so it is optimistic for
        students). Negative mean squared error by default, whereas
        :meth:`score` returns R^2. With ``alpha_per_target``, one score per
        target: that of the candidate the target chose, on that target alone
        (as :class:`~sklearn.linear_model.RidgeCV` reports it).
    honest_score_ : float
        Closed form only: a nested estimate of the score of the whole
        selection. For each fold, the selection rule is re-run on the other
        folds' statistics and its choice, fitted on those folds, is scored on
        the left-out fold. NaN with one split, or with
        ``return_honest_score=False``.
    best_index_ : int or ndarray of shape (n_targets,)
        Index of the best candidate in ``cv_results_``; with
        ``alpha_per_target``, the row each target chose (the rows' scores
        average the targets, each at its own optimum of ``xi_bar``).
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
        ``alpha`` (the validated one, on the training folds' scale),
        ``n_steps`` and ``xi`` (None when no finite per-step ``xi``
        represents the filter); ``xi_bar`` the effective coefficients fitted
        on all folds; ``filter_family`` ``"ridge"``, ``"shrink"`` (kept within
        [0, 1]), ``"nonnegative"`` (kept >= 0) or ``"free"``. The closed form adds
        ``split{i}_honest_test_score``, ``mean_honest_test_score``,
        ``std_honest_test_score`` and ``rank_honest_test_score``: the
        cross-fitted scores (``xi_bar`` fitted on the other folds, scored on
        fold ``i``; equal to the raw scores for ridge). ``rank_test_score``
        ranks the rows by the selection rule, as scikit-learn's searches rank
        by their refit criterion: the chosen row ``best_index_`` is 1, the
        others follow by the score the rule reads (``mean_honest_test_score``,
        or ``mean_test_score`` for ``selection="raw"``). The closed form
        decomposes each fold once for every candidate, so ``mean_fit_time``
        is that shared time on every row. The user guide's tuning page shows
        how to read the table.
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
        "filter_constraint": [StrOptions({"auto", "shrink", "nonnegative", "none"})],
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
        check_regression_target(
            y, self.scorer_, self.scoring, classifier=_is_classifier(estimator)
        )
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
        """Black-box search (:func:`search_optuna`)."""
        from ._optuna_search import _import_optuna, search_optuna

        _import_optuna()
        validate_data(self, X, y, skip_check_array=True)
        self._store(
            search_optuna(
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
        )

    def _settings(self):
        return SearchSettings(
            selection=self.selection,
            filter_constraint=self.filter_constraint,
            alpha_per_target=self.alpha_per_target,
            return_honest_score=self.return_honest_score,
            scoring="r2" if self.scoring == "r2" else "neg_mean_squared_error",
            rescale_alpha=self.rescale_alpha,
        )

    def _fit_streamed(self, estimator, X, y, sample_weight, steps, alphas):
        """Chunks or dask data: per-fold factors read once, then the search.

        The data are read into factors before anything is set on ``self``,
        so that a stream that fails leaves a fitted search as it was.
        """
        n_splits, seed = _streaming.check_stream_cv(self.cv, self.random_state)
        tic = time.perf_counter()
        if _streaming.is_dask_collection(X):
            folds = _streaming.read_dask(X, y, sample_weight, n_splits, seed)
        else:  # the probe takes the chunks' width and feature names
            folds = _streaming.read_chunks(
                X, n_splits, seed, clone(self), sample_weight
            )
        source = StreamedSource(
            estimator,
            folds,
            per_target=self.alpha_per_target and folds.factors.n_targets > 1,
            read_seconds=time.perf_counter() - tic,
        )
        progress = Progress(self.verbose)
        result = search_closed_form(source, steps, alphas, self._settings(), progress)
        self._store(result)
        self._refit_closed_form(source, result, progress)
        # best_estimator_ saw the validated array, as in memory: it has no
        # feature names, and SelfDistillCV checks them at predict time.
        self.n_features_in_ = folds.factors.n_features
        if folds.names is not None:
            self.feature_names_in_ = folds.names
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
        check_x_magnitude(X, xp)
        # Targets chosen separately are scaled separately.
        per_target = self.alpha_per_target and Y.shape[1] > 1
        y_scale = target_scales(to_numpy(xp.max(xp.abs(Y), axis=0)), per_target)
        Y_unit = Y / (
            float(y_scale[0])
            if not per_target
            else xp.asarray(y_scale, dtype=Y.dtype, device=device)
        )
        n_ref = float(X.shape[0] if sample_weight is None else xp.sum(sample_weight))
        args = (estimator, X, y, Y, Y_unit, sample_weight)
        if self.cv is None:
            source = LeaveOneOutRows(*args, y_scale=y_scale, n_ref=n_ref)
        else:
            splits = check_splits(
                self.cv, X, y, groups, classifier=False, random_state=self.random_state
            )
            source = InMemorySplits(
                *args, splits, y_scale=y_scale, n_ref=n_ref, n_jobs=self.n_jobs
            )
        progress = Progress(self.verbose)
        result = search_closed_form(source, steps, alphas, self._settings(), progress)
        self._store(result, namespace(X))
        self._refit_closed_form(source, result, progress)

    def _store(self, result, ns=None):
        """Every fitted attribute of a search, from its :class:`SearchResult`.

        ``ns``: the namespace of the data, which the chosen parameters'
        arrays follow (array API inputs).
        """
        for name in STORED:
            value = getattr(result, name)
            if value is None:
                continue
            if ns is not None and not ns[2] and isinstance(value, np.ndarray):
                value = ns[0].asarray(value, device=ns[1])
            setattr(self, name + "_", value)

    def _refit_closed_form(self, source, result, progress):
        """``best_estimator_``: the choice refitted on all of ``source``'s rows."""
        if not self.refit:
            return
        tic = time.perf_counter()
        params, groups = result.refit_params, result.target_groups
        if len(params) == 1:
            best = source.refit(params[0], groups[0], True)
        elif source.refit_all is not None:
            # One decomposition for every target, each with its own alpha,
            # n_steps and xi (the result keeps them on the host).
            best = source.refit_all(
                result.alpha[:, None],
                result.n_steps,
                result.xi if result.xi.size else 0.5,
            )
        else:
            best = _PerTargetEstimator(
                [
                    source.refit(p, targets, False)
                    for p, targets in zip(params, groups, strict=True)
                ]
            )
        self.best_estimator_ = best
        self.refit_time_ = time.perf_counter() - tic
        progress(f"refitted on all rows in {self.refit_time_:.3f}s")

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
