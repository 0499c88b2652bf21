"""Optuna search of ``SelfDistillCV`` for estimators with no closed form."""

import time

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.base import clone, is_classifier
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_sample_weight, validate_data

__all__ = ["default_distributions", "fit_optuna"]


def _has_param(estimator, name):
    return name in estimator.get_params(deep=True)


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
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
    )

    dist = {}
    if _has_param(estimator, "alpha"):
        lo, hi = (1e-3, 1e3) if alphas is None else (alphas.min(), alphas.max())
        if lo < hi:
            dist["alpha"] = FloatDistribution(lo, hi, log=True)
    if _has_param(estimator, "n_steps") and len(steps) > 1:
        dist["n_steps"] = CategoricalDistribution(steps)
    if _has_param(estimator, "temperature"):
        dist["temperature"] = FloatDistribution(0.1, 10.0, log=True)
    for name in ("estimator__C", "estimator__alpha"):
        if _has_param(estimator, name):
            dist[name] = FloatDistribution(1e-4, 1e4, log=True)
    return dist


def _fit_and_score(estimator, X, y, sample_weight, train, test, scorer):
    tic = time.perf_counter()
    fit_params = {}
    if sample_weight is not None:
        fit_params["sample_weight"] = sample_weight[train]
    est = clone(estimator).fit(_take(X, train), _take(y, train), **fit_params)
    fit_time = time.perf_counter() - tic
    tic = time.perf_counter()
    kw = {} if sample_weight is None else {"sample_weight": sample_weight[test]}
    score = scorer(est, _take(X, test), _take(y, test), **kw)
    return float(score), fit_time, time.perf_counter() - tic


def _take(A, idx):
    if hasattr(A, "iloc"):
        return A.iloc[idx]
    return A[idx]


def fit_optuna(search, estimator, X, y, sample_weight, groups, steps, alphas):
    """Run the optuna study and fill ``search``'s fitted attributes."""
    import optuna

    X, y = validate_data(search, X, y, skip_check_array=True)
    X_arr = X
    y_arr = np.asarray(y) if not hasattr(y, "iloc") else y
    if sample_weight is not None:
        sample_weight = _check_sample_weight(
            sample_weight, np.empty((len(y_arr), 0)), ensure_non_negative=True
        )
    splits = search._splits(X_arr, y_arr, groups, classifier=is_classifier(estimator))
    search.n_splits_ = len(splits)
    distributions = (
        search.param_distributions
        if search.param_distributions is not None
        else default_distributions(estimator, alphas, steps)
    )
    has_xi = _has_param(estimator, "xi") and search.param_distributions is None
    if not distributions and not has_xi:
        raise ValueError(
            f"SelfDistillCV does not know which parameters of {estimator!r} to "
            "tune (it looks for alpha, n_steps, xi, temperature, estimator__C "
            "and estimator__alpha); pass param_distributions."
        )
    fixed_steps = steps[0] if len(steps) == 1 else None
    max_steps = max(steps)
    scorer = search.scorer_
    xi_lim = xi_bounds(estimator)

    def params_of(trial):
        params = {
            name: _suggest(trial, name, dist) for name, dist in distributions.items()
        }
        if fixed_steps is not None and _has_param(estimator, "n_steps"):
            params["n_steps"] = fixed_steps
        if has_xi:
            k = params.get("n_steps", estimator.get_params().get("n_steps", 1))
            params["xi"] = np.array(
                [trial.suggest_float(f"xi_{i}", *xi_lim) for i in range(k)]
            )
        return params

    records = []

    def objective(trial):
        params = params_of(trial)
        est = clone(estimator).set_params(**params)
        out = Parallel(n_jobs=search.n_jobs)(
            delayed(_fit_and_score)(est, X_arr, y_arr, sample_weight, tr, te, scorer)
            for tr, te in splits
        )
        scores = np.array([o[0] for o in out])
        records.append((params, scores, [o[1] for o in out], [o[2] for o in out]))
        if search.verbose > 1:
            print(
                f"[SelfDistillCV] trial {trial.number + 1}: "
                f"score={scores.mean():.6g} {params}"
            )
        return float(scores.mean())

    sampler = optuna.samplers.TPESampler(seed=_seed(search.random_state))
    if has_xi and _has_param(estimator, "n_steps"):
        # The teacher alone is always a candidate: the search never ends
        # worse than the best undistilled trial it could have proposed.
        start = {"n_steps": min(steps)} if "n_steps" in distributions else {}
        if "alpha" in distributions:
            d = distributions["alpha"]
            start["alpha"] = float(np.sqrt(d.low * d.high))
        start.update({f"xi_{i}": 0.0 for i in range(max_steps)})
        enqueue = start
    else:
        enqueue = None
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        if enqueue is not None:
            study.enqueue_trial(enqueue, skip_if_exists=True)
        study.optimize(objective, n_trials=search.n_trials, timeout=search.timeout)
    finally:
        optuna.logging.set_verbosity(verbosity)

    search.study_ = study
    search.cv_results_ = _results(records)
    best = int(np.argmax(search.cv_results_["mean_test_score"]))
    search.best_index_ = best
    search.best_score_ = float(search.cv_results_["mean_test_score"][best])
    search.best_params_ = records[best][0]
    bp = search.best_params_
    if "alpha" in bp:
        search.alpha_ = bp["alpha"]
    if _has_param(estimator, "n_steps"):
        search.n_steps_ = bp.get("n_steps", estimator.get_params()["n_steps"])
    if "xi" in bp:
        from ._filter import xi_to_xi_bar

        search.xi_ = np.asarray(bp["xi"], dtype=float)
        search.xi_bar_ = xi_to_xi_bar(search.xi_)
    if search.verbose:
        print(
            f"[SelfDistillCV] optuna: {len(records)} trials x {len(splits)} folds, "
            f"best score={search.best_score_:.6g} with {bp}"
        )
    if search.refit:
        tic = time.perf_counter()
        kw = {} if sample_weight is None else {"sample_weight": sample_weight}
        search.best_estimator_ = clone(estimator).set_params(**bp).fit(X, y, **kw)
        search.refit_time_ = time.perf_counter() - tic


def _suggest(trial, name, dist):
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(
            name, dist.low, dist.high, log=dist.log, step=dist.step
        )
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(
            name, dist.low, dist.high, log=dist.log, step=dist.step
        )
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise ValueError(
        f"param_distributions[{name!r}] must be an optuna distribution, got {dist!r}."
    )


def _seed(random_state):
    if random_state is None or isinstance(random_state, int | np.integer):
        return random_state
    return int(random_state.randint(2**31))


def _results(records):
    n = len(records)
    n_splits = len(records[0][1])
    names = sorted({k for params, *_ in records for k in params})
    results = {}
    fit_t = np.array([r[2] for r in records])
    score_t = np.array([r[3] for r in records])
    results["mean_fit_time"] = fit_t.mean(axis=1)
    results["std_fit_time"] = fit_t.std(axis=1)
    results["mean_score_time"] = score_t.mean(axis=1)
    results["std_score_time"] = score_t.std(axis=1)
    for name in names:
        col = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
        for i, (params, *_) in enumerate(records):
            if name in params:
                col[i] = params[name]
        results[f"param_{name}"] = col
    results["params"] = [params for params, *_ in records]
    scores = np.array([r[1] for r in records])
    for i in range(n_splits):
        results[f"split{i}_test_score"] = scores[:, i]
    results["mean_test_score"] = scores.mean(axis=1)
    results["std_test_score"] = scores.std(axis=1)
    results["rank_test_score"] = rankdata(
        -results["mean_test_score"], method="min"
    ).astype(np.int32)
    return results
