"""Optuna search of ``SelfDistillCV`` for estimators with no closed form.

optuna is an optional dependency (``pip install optuna``, or the ``optuna``
extra): it is imported only when this search runs, never when
:mod:`skdistill` is imported.
"""

import contextlib
import inspect
import time

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
)

from ._array_api import check_numpy_only
from ._cv_results import SearchResult, format_cv_results
from ._filter import xi_to_xi_bar
from ._progress import Progress
from ._validation import check_finite_target, check_splits
from .exceptions import warn_user

__all__ = ["default_distributions", "search_optuna"]

_OPTUNA_MISSING = (
    "search='optuna' needs optuna: pip install optuna (or, in a clone of "
    "skdistill, pip install '.[optuna]')"
)


def _import_optuna():
    """``optuna``, or an ImportError that says how to install it."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(_OPTUNA_MISSING) from exc
    return optuna


def _has_param(estimator, name):
    return name in estimator.get_params(deep=True)


def _explicit_estimator(estimator):
    """``estimator`` with ``estimator=None`` replaced by the default it means.

    ``get_params(deep=True)`` lists no ``estimator__*`` parameter while the
    inner estimator is None; with the default made explicit the search sees
    and tunes them (``estimator__C`` of the default LogisticRegression).
    """
    params = estimator.get_params(deep=False)
    if (
        "estimator" in params
        and params["estimator"] is None
        and hasattr(estimator, "_base_estimator")
    ):
        return clone(estimator).set_params(estimator=clone(estimator._base_estimator()))
    return estimator


def xi_bounds(estimator, default=(-1.0, 2.0)):
    """Search range of ``xi``: ``default`` clipped to the estimator's constraint."""
    for c in getattr(estimator, "_parameter_constraints", {}).get("xi", []):
        if isinstance(c, Interval):
            lo = default[0] if c.left is None else max(c.left, default[0])
            hi = default[1] if c.right is None else min(c.right, default[1])
            return float(lo), float(hi)
    return default


def default_distributions(estimator, alphas, steps):
    """The default search space for ``estimator`` (see ``SelfDistillCV``)."""
    distributions = _import_optuna().distributions
    estimator = _explicit_estimator(estimator)
    dist = {}
    if _has_param(estimator, "alpha"):
        lo, hi = (1e-3, 1e3) if alphas is None else (alphas.min(), alphas.max())
        if lo < hi:
            dist["alpha"] = distributions.FloatDistribution(lo, hi, log=True)
    if _has_param(estimator, "n_steps") and len(steps) > 1:
        dist["n_steps"] = distributions.CategoricalDistribution(steps)
    if _has_param(estimator, "temperature"):
        dist["temperature"] = distributions.FloatDistribution(0.1, 10.0, log=True)
    for name in ("estimator__C", "estimator__alpha"):
        if _has_param(estimator, name):
            dist[name] = distributions.FloatDistribution(1e-4, 1e4, log=True)
    return dist


def _accepts_sample_weight(scorer):
    try:
        params = inspect.signature(scorer).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without signature
        return False
    return any(
        p.name == "sample_weight" or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in params
    )


def _fit_and_score(estimator, X, y, sample_weight, train, test, scorer, weigh_score):
    tic = time.perf_counter()
    fit_params = {}
    if sample_weight is not None:
        fit_params["sample_weight"] = sample_weight[train]
    est = clone(estimator).fit(
        _safe_indexing(X, train), _safe_indexing(y, train), **fit_params
    )
    fit_time = time.perf_counter() - tic
    tic = time.perf_counter()
    kw = {"sample_weight": sample_weight[test]} if weigh_score else {}
    score = scorer(est, _safe_indexing(X, test), _safe_indexing(y, test), **kw)
    return float(score), fit_time, time.perf_counter() - tic


def search_optuna(
    estimator,
    X,
    y,
    sample_weight,
    groups,
    steps,
    alphas,
    *,
    cv,
    scoring,
    n_trials,
    timeout,
    random_state,
    n_jobs,
    verbose,
    param_distributions,
    refit,
):
    """Search ``estimator``'s parameters with an optuna study and cross-validation.

    Parameters
    ----------
    estimator : estimator object
        The model to tune; ``estimator=None`` inside it is made explicit, so
        that ``estimator__C`` / ``estimator__alpha`` of the default are tuned.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training data: any indexable input (lists, arrays, DataFrames; sparse
        matrices are converted to CSR), as in scikit-learn's searches.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Targets; numeric ones must be finite (a ValueError naming ``y``
        before the study starts).
    sample_weight : array-like of shape (n_samples,) or None
        Passed to every fit, and to the scorer when it accepts
        ``sample_weight`` (otherwise the validation scores are unweighted,
        with a warning).
    groups : array-like of shape (n_samples,) or None
        Groups for the splitter.
    steps : list of int
        Candidate numbers of steps.
    alphas : ndarray or None
        The range of ``alpha`` (its end points).
    cv : int, cross-validation generator or iterable
        As in :class:`~sklearn.model_selection.GridSearchCV`. A shuffling
        splitter with ``random_state=None`` is seeded from ``random_state``
        on a copy; the object passed is never modified.
    scoring : str, callable or None
        None: negative mean squared error for regressors, the estimator's
        ``score`` for classifiers.
    n_trials : int
        Number of optuna trials.
    timeout : float or None
        Time budget of the study in seconds.
    random_state : int, RandomState instance or None
        Seeds the sampler (and a shuffling splitter without a seed).
    n_jobs : int or None
        Jobs over folds.
    verbose : int
        1: a line per stage; 2: also one line per trial, and optuna's own
        log lines (below 2 its verbosity is raised to WARNING for the study,
        then restored).
    param_distributions : dict or None
        Search space; None uses :func:`default_distributions` and each
        step's ``xi``.
    refit : bool
        Whether to refit the best parameters on all the data.

    Returns
    -------
    result : SearchResult
    """
    check_numpy_only("SelfDistillCV (optuna search)", X, y, sample_weight)
    optuna = _import_optuna()
    estimator = _explicit_estimator(estimator)
    X, y, groups = indexable(X, y, groups)
    check_finite_target(y)
    if sample_weight is not None:
        sample_weight = _check_sample_weight(
            sample_weight,
            np.empty((_num_samples(X), 0)),
            dtype=np.float64,
            ensure_non_negative=True,
        )
    classifier = is_classifier(estimator)
    splits = check_splits(
        cv, X, y, groups, classifier=classifier, random_state=random_state
    )
    scorer, weigh_score = _scorer(estimator, scoring, sample_weight, classifier)
    distributions, has_xi = _search_space(estimator, alphas, steps, param_distributions)
    params_of = _trial_params(optuna, estimator, distributions, has_xi, steps)
    records = []
    progress = Progress(verbose)

    def objective(trial):
        params = params_of(trial)
        est = clone(estimator).set_params(**params)
        out = Parallel(n_jobs=n_jobs)(
            delayed(_fit_and_score)(
                est, X, y, sample_weight, tr, te, scorer, weigh_score
            )
            for tr, te in splits
        )
        scores = np.array([o[0] for o in out])
        records.append((params, scores, [o[1] for o in out], [o[2] for o in out]))
        progress(f"trial {trial.number + 1}: score={scores.mean():.6g} {params}", 2)
        return float(scores.mean())

    with _quiet_optuna(optuna, verbose):  # creating a study logs a line
        sampler = optuna.samplers.TPESampler(seed=_seed(random_state))
        study = optuna.create_study(direction="maximize", sampler=sampler)
    if has_xi and _has_param(estimator, "n_steps"):
        # The teacher alone is always a candidate: the search never ends
        # worse than the best undistilled trial it could have proposed.
        start = {"n_steps": min(steps)} if "n_steps" in distributions else {}
        if "alpha" in distributions:
            d = distributions["alpha"]
            start["alpha"] = float(np.sqrt(d.low * d.high))
        start.update({f"xi_{i}": 0.0 for i in range(max(steps))})
        study.enqueue_trial(start, skip_if_exists=True)
    with _quiet_optuna(optuna, verbose):
        study.optimize(objective, n_trials=n_trials, timeout=timeout)

    out = _result(records, estimator, len(splits), scorer, study)
    progress(
        f"optuna: {len(records)} trials x {len(splits)} folds, "
        f"best score={out.best_score:.6g} with {out.best_params}"
    )
    if refit:
        tic = time.perf_counter()
        kw = {} if sample_weight is None else {"sample_weight": sample_weight}
        est = clone(estimator).set_params(**out.best_params)
        out.best_estimator = est.fit(X, y, **kw)
        out.refit_time = time.perf_counter() - tic
        progress(f"refitted on all rows in {out.refit_time:.3f}s")
    return out


def _scorer(estimator, scoring, sample_weight, classifier):
    """The scorer, and whether it weighs the validation rows."""
    if scoring is None and not classifier:
        scoring = "neg_mean_squared_error"
    scorer = check_scoring(estimator, scoring=scoring)
    weigh_score = sample_weight is not None and _accepts_sample_weight(scorer)
    if sample_weight is not None and not weigh_score:
        warn_user(
            f"scoring={scoring!r} does not accept sample_weight: the validation "
            "scores are unweighted (the fits use the weights). Give the scorer "
            "a sample_weight argument to weigh them.",
        )
    return scorer, weigh_score


def _search_space(estimator, alphas, steps, param_distributions):
    """The distributions searched, and whether each step's ``xi`` is too."""
    distributions = (
        param_distributions
        if param_distributions is not None
        else default_distributions(estimator, alphas, steps)
    )
    has_xi = _has_param(estimator, "xi") and param_distributions is None
    if not distributions and not has_xi:
        raise ValueError(
            f"SelfDistillCV does not know which parameters of {estimator!r} to "
            "tune (it looks for alpha, n_steps, xi, temperature, estimator__C "
            "and estimator__alpha); pass param_distributions."
        )
    return distributions, has_xi


def _trial_params(optuna, estimator, distributions, has_xi, steps):
    """``trial -> params``: the estimator's parameters a trial proposes."""
    fixed_steps = steps[0] if len(steps) == 1 else None
    xi_lim = xi_bounds(estimator)

    def params_of(trial):
        params = {
            name: _suggest(optuna, trial, name, dist)
            for name, dist in distributions.items()
        }
        if fixed_steps is not None and _has_param(estimator, "n_steps"):
            params["n_steps"] = fixed_steps
        if has_xi:
            k = params.get("n_steps", estimator.get_params().get("n_steps", 1))
            params["xi"] = np.array(
                [trial.suggest_float(f"xi_{i}", *xi_lim) for i in range(k)]
            )
        return params

    return params_of


def _result(records, estimator, n_splits, scorer, study):
    """The :class:`SearchResult` of the trials (the best by mean score)."""
    cv_results = _results(records)
    best = int(np.argmax(cv_results["mean_test_score"]))
    best_params = records[best][0]
    out = SearchResult(
        best_params=best_params,
        best_score=float(cv_results["mean_test_score"][best]),
        best_index=best,
        cv_results=cv_results,
        n_splits=n_splits,
        scorer=scorer,
        study=study,
        estimator=estimator,
    )
    if "alpha" in best_params:
        out.alpha = best_params["alpha"]
    if _has_param(estimator, "n_steps"):
        out.n_steps = best_params.get("n_steps", estimator.get_params()["n_steps"])
    if "xi" in best_params:
        out.xi = np.asarray(best_params["xi"], dtype=float)
        out.xi_bar = xi_to_xi_bar(out.xi)
    return out


@contextlib.contextmanager
def _quiet_optuna(optuna, verbose):
    """optuna's own log lines (one per trial) only when asked (``verbose >= 2``).

    Below that, its verbosity is raised to WARNING for the study, unless the
    user set it quieter; the user's setting is restored afterwards.
    """
    before = optuna.logging.get_verbosity()
    if verbose < 2:
        optuna.logging.set_verbosity(max(before, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _suggest(optuna, trial, name, dist):
    distributions = optuna.distributions
    if isinstance(dist, distributions.FloatDistribution):
        return trial.suggest_float(
            name, dist.low, dist.high, log=dist.log, step=dist.step
        )
    if isinstance(dist, distributions.IntDistribution):
        return trial.suggest_int(
            name, dist.low, dist.high, log=dist.log, step=dist.step
        )
    if isinstance(dist, distributions.CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise ValueError(
        f"param_distributions[{name!r}] must be an optuna distribution, got {dist!r}."
    )


def _seed(random_state):
    if random_state is None or isinstance(random_state, int | np.integer):
        return random_state
    return int(random_state.randint(2**31))


def _results(records):
    fit_t = np.array([r[2] for r in records])
    score_t = np.array([r[3] for r in records])
    scores = np.array([r[1] for r in records])
    return format_cv_results(
        [params for params, *_ in records], {"test": scores}, fit_t, score_t
    )
