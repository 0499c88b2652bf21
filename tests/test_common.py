"""scikit-learn's estimator checks, for every estimator of skdistill.

One list of estimator instances (``ESTIMATORS``), one table of the checks
expected to fail with the reason why (``EXPECTED_FAILED_CHECKS``) and one
table of the warnings a check may ignore (``IGNORED_WARNINGS``), as in the
``tests/test_common.py`` of scikit-learn and imbalanced-learn. The numerical
properties of each estimator are tested against independent computations in
its own test file.

No check is skipped by us. scikit-learn itself skips its array API checks
unless the environment variable SCIPY_ARRAY_API=1 is set before scipy is
imported; it changes scipy globally, so ``make test`` runs them in a second
process: ``SCIPY_ARRAY_API=1 pytest tests -k array_api`` (see
tests/test_array_api.py).
"""

import importlib.util
import inspect
import re
import warnings

import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
    parametrize_with_checks,
)

import skdistill
from skdistill import (
    KernelSelfDistillationRegressor,
    RepeatedSelfDistillationRegressor,
    SelfDistillationClassifier,
    SelfDistillationRegressor,
    SelfDistillCV,
)

needs_optuna = pytest.mark.skipif(
    importlib.util.find_spec("optuna") is None,
    reason="optuna is an optional extra: pip install optuna",
)

# ---------------------------------------------------------------------------
# The estimators
# ---------------------------------------------------------------------------

LINEAR = [
    RepeatedSelfDistillationRegressor(),
    RepeatedSelfDistillationRegressor(n_steps=0),
    RepeatedSelfDistillationRegressor(n_steps=3, xi=[0.5, 1.5, -0.5]),
    RepeatedSelfDistillationRegressor(n_steps=3, xi=2.0, alpha=[1.0, 0.5, 2.0, 0.1]),
    RepeatedSelfDistillationRegressor(alpha=0.0, n_steps=2, xi=-1.0),
    RepeatedSelfDistillationRegressor(fit_intercept=False, n_steps=2),
    # "svd" declares input_tags.sparse = False, so the sparse checks verify
    # that it rejects sparse X with a TypeError mentioning "sparse".
    RepeatedSelfDistillationRegressor(solver="svd", n_steps=3, xi=1.5),
    RepeatedSelfDistillationRegressor(solver="gram", n_steps=3, xi=1.5),
    RepeatedSelfDistillationRegressor(solver="dual", n_steps=3, xi=1.5),
    RepeatedSelfDistillationRegressor(
        solver="cholesky", n_steps=3, xi=[0.5, 2.0, -1.0], alpha=[1.0, 1.0, 0.3, 1.0]
    ),
]

# One row (or one count) is shared by every target, so these estimators fit
# any y and go through scikit-learn's whole set of checks in the per-target
# setting.
PER_TARGET = [
    RepeatedSelfDistillationRegressor(alpha=[[1.0]], n_steps=2, xi=[[0.5, 2.0]]),
    RepeatedSelfDistillationRegressor(
        alpha=[[1.0, 0.5, 2.0]], n_steps=[2], xi=[1.5, -0.5], solver="cholesky"
    ),
    RepeatedSelfDistillationRegressor(alpha=[[0.5]], n_steps=[0], solver="dual"),
]

PRECOMPUTED_KERNEL = KernelSelfDistillationRegressor(kernel="precomputed", n_steps=2)
KERNEL = [
    KernelSelfDistillationRegressor(),
    KernelSelfDistillationRegressor(alpha=0.5, n_steps=2, xi=[0.5, 2.0]),
    KernelSelfDistillationRegressor(n_steps=2, solver="cholesky"),
    PRECOMPUTED_KERNEL,
]

META = [
    SelfDistillationRegressor(),
    SelfDistillationRegressor(
        DecisionTreeRegressor(max_depth=4, random_state=0), n_steps=2, xi=[0.3, 1.2]
    ),
]

EARLY_STOPPING_CLASSIFIER = SelfDistillationClassifier(
    n_steps=3, early_stopping=True, random_state=0
)
CLASSIFIER = [
    SelfDistillationClassifier(n_steps=2, xi=[0.8, 1.0], temperature=2.0),
    SelfDistillationClassifier(n_steps=2, pseudo_labels="hard", fix_intercept=True),
    EARLY_STOPPING_CLASSIFIER,
]

CV = [
    SelfDistillCV(cv=3, n_steps=(0, 1)),
    SelfDistillCV(cv=3, n_steps=2, alphas=[0.1, 1.0, 10.0]),
]

# Few trials keep the checks fast. No check is expected to fail; the only
# skip is scikit-learn's own check_array_api_input, which skips itself with
# the reason "SCIPY_ARRAY_API is not set".
OPTUNA = [
    SelfDistillCV(search="optuna", n_trials=3, cv=3, n_steps=(0, 1), random_state=0),
    SelfDistillCV(
        SelfDistillationClassifier(),
        search="optuna",
        n_trials=3,
        cv=3,
        n_steps=(0, 1),
        random_state=0,
    ),
]

ESTIMATORS = LINEAR + PER_TARGET + KERNEL + META + CLASSIFIER + CV + OPTUNA

# ---------------------------------------------------------------------------
# What the checks expect
# ---------------------------------------------------------------------------

# Early stopping holds out a random part of the data, so a zero weight is not
# the same as a removed row: the held-out split differs (as for
# HistGradientBoostingClassifier with early stopping in scikit-learn).
_ES_REASON = "the early-stopping split depends on which rows are present"

# Estimator instance (that very object) or class -> {check name: reason}.
EXPECTED_FAILED_CHECKS = {
    EARLY_STOPPING_CLASSIFIER: {
        "check_sample_weight_equivalence_on_dense_data": _ES_REASON,
        "check_sample_weight_equivalence_on_sparse_data": _ES_REASON,
    },
    # Both checks turn a precomputed (linear) Gram matrix into an
    # indefinite one (the first subtracts its mean, the second
    # truncates it to integers), which the estimator rejects on
    # purpose: the closed form needs a positive semi-definite kernel.
    PRECOMPUTED_KERNEL: {
        "check_positive_only_tag_during_fit": "indefinite precomputed kernel",
        "check_estimators_dtypes": "Gram matrix truncated to integers",
    },
}

# Estimator class -> warning categories its checks ignore.
IGNORED_WARNINGS = {
    # Tiny check data often puts the optimum at the edge of the grid.
    SelfDistillCV: (ConvergenceWarning,),
}


def _matches(key, estimator):
    """Whether a table key (an instance or a class) covers ``estimator``."""
    if isinstance(key, type):
        return isinstance(estimator, key)
    return key is estimator


def _expected_failed_checks(estimator):
    """{check name: reason} of the checks ``estimator`` is expected to fail."""
    out = {}
    for key, checks in EXPECTED_FAILED_CHECKS.items():
        if _matches(key, estimator):
            out.update(checks)
    return out


def _run_check(check, estimator):
    """Run one check, with the warnings of ``IGNORED_WARNINGS`` ignored."""
    with warnings.catch_warnings():
        for key, categories in IGNORED_WARNINGS.items():
            if _matches(key, estimator):
                for category in categories:
                    warnings.simplefilter("ignore", category)
        check(estimator)


def _marks(estimator):
    """The marks of ``estimator``'s checks: optuna's search needs optuna."""
    return [needs_optuna] if getattr(estimator, "search", None) == "optuna" else []


def _with_optuna_marks(decorator):
    """``decorator``'s parameters, those of the optuna search marked ``needs_optuna``.

    ``parametrize_with_checks`` returns one ``pytest.mark.parametrize``; its
    parameter sets are rebuilt with the same ids, adding the skip-if-no-optuna
    mark to the checks of the estimators that search with optuna.
    """
    argnames, params = decorator.mark.args
    marked = []
    for param in params:
        if not hasattr(param, "marks"):  # a plain (estimator, check) tuple
            param = pytest.param(*param)
        marks = [*param.marks, *_marks(param.values[0])]
        marked.append(pytest.param(*param.values, marks=marks, id=param.id))
    return pytest.mark.parametrize(argnames, marked, **decorator.mark.kwargs)


def _estimator_params(estimators):
    """One ``pytest.param`` per estimator, its id the repr without whitespace."""
    return [
        pytest.param(est, marks=_marks(est), id=re.sub(r"\s", "", repr(est)))
        for est in estimators
    ]


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------


@_with_optuna_marks(
    parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
)
def test_sklearn_compatible(estimator, check):
    _run_check(check, estimator)


def test_every_public_estimator_is_checked():
    public = [getattr(skdistill, name) for name in skdistill.__all__]
    classes = {
        obj for obj in public if inspect.isclass(obj) and issubclass(obj, BaseEstimator)
    }
    assert classes, "skdistill.__all__ names no estimator"
    assert {type(est) for est in ESTIMATORS} == classes


def test_expected_failures_name_checks_that_run():
    # A key or a check name that matches nothing (a typo, a renamed check, an
    # instance no longer in ESTIMATORS) would silently expect nothing.
    _, params = test_sklearn_compatible.pytestmark[0].args
    ran = {}
    for param in params:
        estimator, check = param.values
        name = getattr(check, "func", check).__name__
        ran.setdefault(id(estimator), (estimator, set()))[1].add(name)
    for key, checks in EXPECTED_FAILED_CHECKS.items():
        covered = [names for est, names in ran.values() if _matches(key, est)]
        assert covered, f"{key!r} is not among ESTIMATORS"
        for names in covered:
            assert set(checks) <= names, set(checks) - names


@pytest.mark.parametrize("estimator", _estimator_params(ESTIMATORS))
def test_check_param_validation(estimator):
    _run_check(lambda est: check_param_validation(type(est).__name__, est), estimator)


@pytest.mark.parametrize("estimator", _estimator_params(ESTIMATORS))
def test_check_dataframe_column_names_consistency(estimator):
    _run_check(
        lambda est: check_dataframe_column_names_consistency(type(est).__name__, est),
        estimator,
    )
