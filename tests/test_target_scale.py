"""The choice of SelfDistillCV is invariant to the scale of each target.

Whatever the source of the rows (in memory, an iterable of chunks, a dask
array) and whether the targets are chosen together or one by one. The oracle
is the same search on the unscaled targets: scaling ``y`` by ``c`` scales
every validation error by ``c**2``, so the ordering of the candidates, and
with it every choice, cannot move.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import PredefinedSplit

from skdistill import SelfDistillCV, hash_folds
from skdistill._streaming import _import_dask
from skdistill.exceptions import AlphaGridWarning

ALPHAS = np.logspace(-2, 3, 12)
KW = dict(alphas=ALPHAS, n_steps=(0, 1, 2))


def _data(n=150, d=6, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(2, 0.3, d)
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    return X, y


def _fit(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, AlphaGridWarning))
        return SelfDistillCV(**{**KW, **kw}).fit(X, y)


def _chunks(X, y, size=40):
    return [(X[a : a + size], y[a : a + size]) for a in range(0, len(X), size)]


def _choice(search):
    return (
        np.asarray(search.best_index_).tolist(),
        np.asarray(search.n_steps_).tolist(),
        np.asarray(search.cv_alpha_).tolist(),
    )


@pytest.mark.parametrize("scale", [1e-170, 1e-80, 1e155])
def test_streamed_choice_is_scale_free(scale):
    # Unscaled, the paired standard errors of y * 1e-80 would underflow to 0,
    # and a zero-width test passes any student.
    X, y = _data()
    folds = hash_folds(np.arange(len(X)), 5, 0)
    memory = _fit(X, y, cv=PredefinedSplit(folds))
    ref = _fit(_chunks(X, y), None, cv=5)
    got = _fit(_chunks(X, y * scale), None, cv=5)
    assert _choice(got) == _choice(ref) == _choice(memory)
    np.testing.assert_allclose(got.xi_bar_, ref.xi_bar_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.predict(X) / scale, ref.predict(X), rtol=1e-9)


def test_dask_choice_is_scale_free():
    try:
        _, da = _import_dask()
    except ImportError:
        pytest.skip("dask is not installed")
    X, y = _data()
    ref = _fit(da.from_array(X, chunks=50), da.from_array(y, chunks=50), cv=5)
    got = _fit(da.from_array(X, chunks=50), da.from_array(y * 1e-80, chunks=50), cv=5)
    assert _choice(got) == _choice(ref)


@pytest.mark.parametrize("source", ["memory", "chunks"])
def test_each_target_is_chosen_on_its_own_scale(source):
    # A target 1e-80 times smaller than the other chooses as it would alone
    # (on the largest target's scale its errors would round to 0).
    X, y = _data()
    Y = np.column_stack([y, y * 1e-80, 3 * y[::-1]])
    if source == "memory":
        got = _fit(X, Y, cv=5, alpha_per_target=True)
        alone = [_fit(X, Y[:, j], cv=5) for j in range(3)]
    else:
        got = _fit(_chunks(X, Y), None, cv=5, alpha_per_target=True)
        alone = [_fit(_chunks(X, Y[:, j]), None, cv=5) for j in range(3)]
    for j, a in enumerate(alone):
        assert got.best_index_[j] == a.best_index_
        assert got.n_steps_[j] == a.n_steps_
        assert got.cv_alpha_[j] == a.cv_alpha_
    assert got.best_index_[0] == got.best_index_[1]


def test_per_target_best_index_and_score_are_each_targets_choice():
    # best_index_ / best_score_ are per-target arrays: the row each target
    # chose and its score on that target alone (a single-target search on the
    # same folds), as alpha_ is, not the best row shared by all targets.
    rng = np.random.default_rng(0)
    X, _ = _data(n=120, d=8, seed=1)
    Y = X @ rng.normal(size=(8, 4)) + rng.normal(size=(120, 4)) * [0.2, 1, 3, 8]
    got = _fit(X, Y, cv=4, alpha_per_target=True)
    assert got.best_index_.shape == got.best_score_.shape == (4,)
    for j in range(4):
        alone = _fit(X, Y[:, j], cv=4)
        assert got.best_index_[j] == alone.best_index_
        assert got.best_score_[j] == pytest.approx(alone.best_score_, rel=1e-9)
        params = got.cv_results_["params"][got.best_index_[j]]
        assert params["n_steps"] == got.n_steps_[j]
        assert params["alpha"] == got.cv_alpha_[j]
