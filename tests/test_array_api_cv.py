"""Array API support of SelfDistillCV's closed form, against the NumPy path.

Needs SCIPY_ARRAY_API=1 before SciPy is imported, like
``tests/test_array_api.py``: ``make test`` runs both in a second process.
"""

import os
import warnings

import numpy as np
import pytest

if os.environ.get("SCIPY_ARRAY_API") != "1":
    pytest.skip(
        "array API tests need SCIPY_ARRAY_API=1 before scipy is imported; "
        "`make test` runs them in their own process",
        allow_module_level=True,
    )

import sklearn  # noqa: E402
from _xp import NAMESPACES, NS_IDS, namespace, same_place  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from skdistill import KernelSelfDistillationRegressor, SelfDistillCV  # noqa: E402
from skdistill._array_api import to_numpy  # noqa: E402

ALPHAS = np.logspace(-2, 3, 8)


@pytest.fixture(autouse=True)
def _dispatch():
    with sklearn.config_context(array_api_dispatch=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            yield


def _data(n=90, d=5, t=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(2.0, 0.3, d) + 0.5
    coef = rng.normal(size=(d, t))
    Y = X @ coef + rng.uniform(0.2, 2.0, size=t) * rng.normal(size=(n, t)) + 1.0
    w = rng.uniform(0.5, 2.0, size=n)
    return X, Y, w


@pytest.mark.parametrize(("ns", "device_name"), NAMESPACES, ids=NS_IDS)
@pytest.mark.parametrize("per_target", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_search_equals_numpy_and_stays_on_device(ns, device_name, per_target, weighted):
    xp, device = namespace(ns, device_name)
    X, Y, w = _data()
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    kw = dict(alphas=ALPHAS, n_steps=(0, 1, 2), cv=folds, alpha_per_target=per_target)
    sw = w if weighted else None
    with sklearn.config_context(array_api_dispatch=False):
        ref = SelfDistillCV(**kw).fit(X, Y, sample_weight=sw)
    put = (lambda a: xp.asarray(a, device=device)) if device else xp.asarray
    got = SelfDistillCV(**kw).fit(
        put(X), put(Y), sample_weight=None if sw is None else put(sw)
    )
    # Scores are residual norms of small QR factors: equal to round-off of
    # the fold decompositions (well conditioned here: cond(X) < 10).
    for key in ("mean_test_score", "mean_honest_test_score"):
        assert_allclose(got.cv_results_[key], ref.cv_results_[key], rtol=1e-9)
    assert got.honest_score_ == pytest.approx(ref.honest_score_, rel=1e-9)
    assert_array_equal(to_numpy(got.n_steps_), ref.n_steps_)
    assert_array_equal(to_numpy(got.cv_alpha_), ref.cv_alpha_)
    assert_allclose(to_numpy(got.xi_bar_), ref.xi_bar_, rtol=1e-7, atol=1e-9)
    pred = got.predict(put(X))
    same_place(pred, xp, device)
    ref_pred = ref.predict(X)
    assert_allclose(
        to_numpy(pred), ref_pred, rtol=0, atol=1e-9 * np.abs(ref_pred).max()
    )
    if per_target:  # the per-target arrays follow the data's namespace
        for name in ("alpha_", "cv_alpha_", "n_steps_", "xi_bar_"):
            assert not isinstance(getattr(got, name), np.ndarray)


@pytest.mark.parametrize(
    "params",
    [
        {"cv": None},
        {"estimator": KernelSelfDistillationRegressor()},
        {"search": "optuna", "n_trials": 2},
    ],
    ids=["loo", "kernel", "optuna"],
)
def test_other_searches_refuse_other_namespaces(params):
    xp = pytest.importorskip("array_api_strict")
    X, Y, _ = _data(t=1)
    with pytest.raises(TypeError, match="array API inputs"):
        SelfDistillCV(alphas=ALPHAS, **params).fit(xp.asarray(X), xp.asarray(Y[:, 0]))
