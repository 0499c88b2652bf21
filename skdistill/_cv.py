"""``SelfDistillCV``: exact, fast tuning of alpha, xi and the number of steps."""

import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.base import is_classifier as _is_classifier
from sklearn.exceptions import ConvergenceWarning
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
from ._cv_closed_form import (
    fold_statistics,
    prepare_fold,
    prepare_spectral_fold,
    solve_xi_bar,
)
from ._filter import xi_bar_to_xi, xi_to_xi_bar
from ._kernel import KernelSelfDistillationRegressor
from ._linear import RepeatedSelfDistillationRegressor
from ._spectral import resolve_solver

__all__ = ["SelfDistillCV"]

_CLOSED_FORM_SCORINGS = (None, "neg_mean_squared_error", "r2")
_CLOSED_FORM_ESTIMATORS = (
    RepeatedSelfDistillationRegressor,
    KernelSelfDistillationRegressor,
)
_DEFAULT_ALPHA_SPAN = (-6.0, 1.0, 50)


class SelfDistillCV(MetaEstimatorMixin, BaseEstimator):
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
    cv : int, cross-validation generator or iterable, default=5
        As in :class:`~sklearn.model_selection.GridSearchCV`: an int gives
        (Stratified)KFold, or pass a splitter or an iterable of splits.
    scoring : str or callable, default=None
        ``None`` selects by the (weighted) mean squared error. The closed
        form also honours ``"neg_mean_squared_error"`` and ``"r2"``; any other
        scorer needs ``search="optuna"`` (``"auto"`` switches to it).
    search : {"auto", "closed_form", "optuna"}, default="auto"
        ``"auto"`` uses the closed form whenever it applies.
    n_trials : int, default=100
        Number of optuna trials.
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
        separately from the same fold decompositions (closed form only).
    rescale_alpha : bool, default=True
        Refit with ``alpha * n / n_train``, where ``n_train`` is the mean
        (weighted) size of the training folds. Squared singular values grow
        with the number of rows; the rescaling keeps
        ``h = s**2 / (s**2 + alpha)`` where it was validated, which matters
        for high-degree filters (closed form only).
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
    best_params_ : dict
        Parameters of ``best_estimator_``: ``alpha`` (rescaled when
        ``rescale_alpha``), ``n_steps`` and ``xi``.
    best_score_ : float
        Mean cross-validated score of the best candidate.
    best_index_ : int
        Index of the best candidate in ``cv_results_``.
    alpha_ : float
        The validated ``alpha`` (on the training folds' scale).
    n_steps_ : int
        The chosen number of steps.
    xi_ : ndarray of shape (n_steps_,)
        The chosen per-step mixing weights.
    xi_bar_ : ndarray of shape (n_steps_ + 1,)
        The chosen effective filter coefficients.
    coef_, intercept_ : ndarray
        Those of ``best_estimator_``.
    cv_results_ : dict of ndarrays
        In :class:`~sklearn.model_selection.GridSearchCV`'s format.
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
        return tags

    # ------------------------------------------------------------ validation
    def _check_n_steps(self):
        steps = np.atleast_1d(np.asarray(self.n_steps))
        if steps.size == 0:
            raise ValueError("n_steps must name at least one number of steps.")
        if (
            steps.ndim != 1
            or steps.dtype == bool
            or not all(
                isinstance(s, Integral | np.integer) and s >= 0 for s in steps.tolist()
            )
        ):
            raise ValueError(
                f"n_steps must be non-negative integers, got {self.n_steps!r}."
            )
        return sorted(set(int(s) for s in steps))

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
            cv.random_state = check_random_state(self.random_state).randint(2**31)
        try:
            splits = list(cv.split(X, y, groups))
        except ValueError as exc:
            raise ValueError(f"cv={self.cv!r} cannot split these data: {exc}") from exc
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
            if _streaming.is_dask_collection(X):
                return _streaming.fit_dask(
                    self, estimator, X, y, sample_weight, steps, alphas
                )
            return _streaming.fit_chunks(
                self, estimator, X, steps, alphas, sample_weight
            )
        if closed:
            self._fit_closed_form(estimator, X, y, sample_weight, groups, steps, alphas)
        else:
            from ._optuna_search import fit_optuna

            fit_optuna(self, estimator, X, y, sample_weight, groups, steps, alphas)
        return self

    def _fit_closed_form(self, estimator, X, y, sample_weight, groups, steps, alphas):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=True,
        )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        Y = np.asarray(y, dtype=X.dtype).reshape(X.shape[0], -1)
        splits = self._splits(X, y, groups, classifier=False)
        self.n_splits_ = len(splits)
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
                    estimator, X, Y, sample_weight, train, test
                )
            else:
                fold = prepare_fold(
                    X,
                    Y,
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
        n_ref = float(X.shape[0] if sample_weight is None else sample_weight.sum())

        def refit_one(p, targets, single):
            est = clone(estimator).set_params(
                alpha=p["alpha"], n_steps=p["n_steps"], xi=p["xi"]
            )
            y_sub = y if single else Y[:, targets[0]]
            return est.fit(X, y_sub, sample_weight=sample_weight)

        self._select_closed_form(
            estimator,
            folds,
            fit_times,
            steps,
            alphas,
            n_targets=Y.shape[1],
            n_ref=n_ref,
            refit_one=refit_one,
        )

    def _select_closed_form(
        self, estimator, folds, fit_times, steps, alphas, *, n_targets, n_ref, refit_one
    ):
        """Score every candidate on prepared folds, choose, and refit.

        ``refit_one(params, targets, single)`` returns the estimator refitted
        on all the data (``single``: one estimator for every target).
        """
        self.n_splits_ = len(folds)
        max_steps = max(steps)
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
            fold_statistics(f, alphas=alphas, max_steps=max_steps, scoring=scoring)
            for f in folds
        ]
        groups_of_targets = (
            [np.array([j]) for j in range(n_targets)]
            if self.alpha_per_target and n_targets > 1
            else [np.arange(n_targets)]
        )
        # For each target group, each candidate: xi_bar and per-fold errors.
        cands = [(k, a) for k in steps for a in range(alphas.size)]
        xi_bars = [[None] * len(cands) for _ in groups_of_targets]
        errors = np.empty((len(groups_of_targets), len(cands), len(folds)))
        for g, targets in enumerate(groups_of_targets):
            for c, (k, a) in enumerate(cands):
                xi_bars[g][c], errors[g, c] = solve_xi_bar(stats, a, k, targets)
        score_time = (time.perf_counter() - tic) / len(cands)
        split_scores = -errors if scoring != "r2" else 1.0 - errors
        # A row's score averages the targets' groups (each at its own optimum).
        weights = np.array([t.size for t in groups_of_targets], dtype=float)
        row_scores = np.tensordot(weights / weights.sum(), split_scores, axes=1)

        chosen = []
        for g, targets in enumerate(groups_of_targets):
            scale = np.mean([np.mean(f.scale[targets]) for f in stats])
            tol = 1e3 * np.finfo(np.float64).eps * scale
            chosen.append(self._choose(split_scores[g], cands, xi_bars[g], alphas, tol))
        best_index = (
            chosen[0][0]
            if len(chosen) == 1
            else int(np.argmax(row_scores.mean(axis=1)))
        )
        self.cv_results_ = _closed_form_results(
            cands, alphas, xi_bars, row_scores, fit_times, score_time
        )
        self.best_index_ = best_index
        self.best_score_ = float(row_scores[best_index].mean())
        n_train = np.mean([f.n_train for f in folds])
        scale = n_ref / n_train if self.rescale_alpha else 1.0
        self.alpha_refit_scale_ = scale

        params = []
        for _, k, a, xi, xi_bar in chosen:
            params.append(
                {
                    "alpha": float(alphas[a] * scale),
                    "n_steps": k,
                    "xi": xi,
                    "xi_bar": xi_bar,
                    "alpha_cv": float(alphas[a]),
                }
            )
        if len(params) == 1:
            p = params[0]
            self.alpha_, self.n_steps_, self.xi_, self.xi_bar_ = (
                p["alpha_cv"],
                p["n_steps"],
                p["xi"],
                p["xi_bar"],
            )
            self.best_params_ = {k: p[k] for k in ("alpha", "n_steps", "xi")}
        else:
            self.alpha_ = np.array([p["alpha_cv"] for p in params])
            self.n_steps_ = np.array([p["n_steps"] for p in params])
            self.xi_ = [p["xi"] for p in params]
            self.xi_bar_ = [p["xi_bar"] for p in params]
            self.best_params_ = [
                {k: p[k] for k in ("alpha", "n_steps", "xi")} for p in params
            ]
        if self.verbose:
            print(
                f"[SelfDistillCV] {len(folds)} folds x {len(cands)} candidates "
                f"(closed form): best n_steps={self.n_steps_}, alpha={self.alpha_}, "
                f"score={self.best_score_:.6g}"
            )
        if self.refit:
            tic = time.perf_counter()
            fitted = []
            for p, targets in zip(params, groups_of_targets, strict=True):
                fitted.append(refit_one(p, targets, len(params) == 1))
            if len(fitted) == 1:
                self.best_estimator_ = fitted[0]
            else:
                self.best_estimator_ = _PerTargetEstimator(fitted)
            self.refit_time_ = time.perf_counter() - tic

    def _choose(self, split_scores, cands, xi_bars, alphas, tol):
        """Best representable candidate; warn when that is not the best one."""
        mean = split_scores.mean(axis=1)
        # Scores within the precision of the quadratic statistics
        # (eps * |y|^2) are ties: the simplest candidate (fewest steps, then
        # largest alpha) wins, so that rounding never decides the choice.
        tied = mean >= mean.max() - tol
        simplicity = [(k, -alphas[a]) for k, a in cands]
        order = sorted(
            range(len(cands)),
            key=lambda c: (not tied[c], simplicity[c] if tied[c] else (0, 0), -mean[c]),
        )
        for rank, c in enumerate(order):
            k, a = cands[c]
            xi_bar = xi_bars[c]
            try:
                xi = xi_bar_to_xi(xi_bar)
            except ValueError:
                continue
            back = xi_to_xi_bar(xi)
            if not np.all(np.isfinite(back)) or np.linalg.norm(
                back - xi_bar
            ) > 1e-8 * max(1.0, np.linalg.norm(xi_bar)):
                continue
            if rank > 0:
                warnings.warn(
                    f"The best candidate (n_steps={cands[order[0]][0]}, "
                    f"alpha={alphas[cands[order[0]][1]]:.4g}) has an xi_bar that no "
                    "finite per-step xi represents; using the best representable "
                    f"candidate (n_steps={k}, alpha={alphas[a]:.4g}).",
                    UserWarning,
                    stacklevel=5,
                )
            if alphas.size > 1 and a in (0, alphas.size - 1):
                edge = "smallest" if a == 0 else "largest"
                warnings.warn(
                    f"The chosen alpha={alphas[a]:.4g} is the {edge} value of the "
                    "grid; the optimum may lie outside it. Consider extending "
                    "alphas.",
                    ConvergenceWarning,
                    stacklevel=5,
                )
            return int(c), k, a, xi, xi_bar
        raise ValueError("No candidate has a representable xi_bar.")  # pragma: no cover

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
        return self.best_estimator_.score(
            self._validated(X), y, sample_weight=sample_weight
        )

    def _validated(self, X):
        """``X`` as ``best_estimator_`` saw it: the closed form refits on arrays."""
        if not self._closed_form_:
            return X
        return validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
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


def _closed_form_results(cands, alphas, xi_bars, row_scores, fit_times, score_time):
    n_c, n_splits = row_scores.shape
    results = {}
    results["mean_fit_time"] = np.full(n_c, fit_times.mean())
    results["std_fit_time"] = np.full(n_c, fit_times.std())
    results["mean_score_time"] = np.full(n_c, score_time)
    results["std_score_time"] = np.zeros(n_c)
    p_alpha = np.ma.MaskedArray(np.empty(n_c, dtype=object), mask=False)
    p_steps = np.ma.MaskedArray(np.empty(n_c, dtype=object), mask=False)
    p_xi_bar = np.ma.MaskedArray(np.empty(n_c, dtype=object), mask=False)
    params = []
    for c, (k, a) in enumerate(cands):
        p_alpha[c] = float(alphas[a])
        p_steps[c] = k
        p_xi_bar[c] = xi_bars[0][c]
        params.append({"alpha": float(alphas[a]), "n_steps": k})
    results["param_alpha"] = p_alpha
    results["param_n_steps"] = p_steps
    results["param_xi_bar"] = p_xi_bar
    results["params"] = params
    for i in range(n_splits):
        results[f"split{i}_test_score"] = row_scores[:, i]
    mean = row_scores.mean(axis=1)
    results["mean_test_score"] = mean
    results["std_test_score"] = row_scores.std(axis=1)
    results["rank_test_score"] = rankdata(-mean, method="min").astype(np.int32)
    return results
