"""The choice logic of the closed form on hand-built fold statistics.

:func:`skdistill._cv_search.choose` sees only per-fold factors ``R`` of
``[Z, r]`` (``Z``: validation predictions of the pure distillates, ``r``: the
validation targets). Built here from chosen ``Z`` and ``r``, the right answer
is known without any fit: which candidate reproduces ``r``, its score, the
refit alpha and the per-step ``xi``.
"""

import numpy as np
import pytest

from skdistill._cv_closed_form import FoldStatistics
from skdistill._cv_search import SearchSettings, choose
from skdistill._cv_sources import Statistics

ALPHAS = np.array([0.1, 1.0, 10.0])
N_VAL, N_FOLDS = 30, 5


def _stats(targets, seed=0):
    """Fold statistics of targets given as ``(fold, rng) -> (Z, r)`` per alpha.

    ``targets``: one function per target returning ``Z`` (A, n_val, 2), the
    ridge and one-step columns for every alpha, and ``r`` (n_val,).
    """
    seeds = (
        [seed] if isinstance(seed, tuple) else [(seed, t) for t in range(len(targets))]
    )
    rngs = [np.random.default_rng(list(s)) for s in seeds]
    stats = []
    for f in range(N_FOLDS):
        R = np.zeros((ALPHAS.size, len(targets), 3, 3))
        scale = np.zeros(len(targets))
        for t, make in enumerate(targets):
            Z, r = make(f, rngs[t])
            scale[t] = r @ r
            for a in range(ALPHAS.size):
                R[a, t] = np.linalg.qr(np.column_stack([Z[a], r]), mode="r")
        stats.append(FoldStatistics(R, np.ones(len(targets)), scale, np.ones(3)))
    return Statistics(stats, ALPHAS, 80.0, np.zeros(N_FOLDS), 0.0)


def _ridge_target(f, rng):
    """Ridge at ALPHAS[1] reproduces r up to small noise; others are far off."""
    base = rng.normal(size=N_VAL)
    Z = np.stack(
        [np.column_stack([base + d, rng.normal(size=N_VAL)]) for d in (3.0, 0.0, -3.0)]
    )
    return Z, base + 0.01 * rng.normal(size=N_VAL)


def _student_target(f, rng):
    """r is exactly half ridge plus half the one-step distillate at ALPHAS[2]."""
    Z = rng.normal(size=(ALPHAS.size, N_VAL, 2))
    return Z, 0.5 * Z[2, :, 0] + 0.5 * Z[2, :, 1]


SETTINGS = SearchSettings(filter_constraint="none", selection="stepwise")

pytestmark = pytest.mark.filterwarnings("ignore::skdistill.exceptions.AlphaGridWarning")


def test_exact_ridge_is_chosen_with_its_score():
    data = _stats([_ridge_target])
    res = choose(data, [0, 1], SETTINGS, n_targets=1, refit_scale=1.25, y_scale=2.0)
    assert res.n_steps == 0
    assert res.cv_alpha == res.alpha == ALPHAS[1]  # a ridge keeps its alpha
    row = res.cv_results["params"][res.best_index]
    assert (row["n_steps"], row["alpha"]) == (0, ALPHAS[1])
    # Ridge's raw error on each fold, scaled back by y_scale**2.
    errs = [
        np.linalg.norm(s.R[1, 0] @ np.array([1.0, 0.0, -1.0])) ** 2 for s in data.stats
    ]
    assert res.best_score == pytest.approx(-4.0 * np.mean(errs), rel=1e-12)
    assert res.best_score == res.cv_results["mean_test_score"][res.best_index]


@pytest.mark.parametrize("rule", ["stepwise", "one_se", "honest", "raw"])
def test_exact_student_is_chosen_with_its_filter(rule):
    data = _stats([_student_target])
    settings = SearchSettings(filter_constraint="none", selection=rule)
    res = choose(data, [0, 1], settings, n_targets=1, refit_scale=1.25)
    assert res.n_steps == 1
    assert res.cv_alpha == ALPHAS[2]
    assert res.alpha == pytest.approx(1.25 * ALPHAS[2], rel=1e-15)
    np.testing.assert_allclose(res.xi_bar, [0.5, 0.5], atol=1e-10)
    np.testing.assert_allclose(res.xi, [0.5], atol=1e-10)  # xi_1 = 1 - xi_bar_0
    assert res.best_score == pytest.approx(0.0, abs=1e-20)
    assert res.refit_params[0]["alpha"] == res.alpha


def test_per_target_choices_are_each_targets_own():
    data = _stats([_ridge_target, _student_target])
    settings = SearchSettings(filter_constraint="none", alpha_per_target=True)
    res = choose(
        data, [0, 1], settings, n_targets=2, refit_scale=2.0, y_scale=[1.0, 3.0]
    )
    assert res.n_steps.tolist() == [0, 1]
    assert res.cv_alpha.tolist() == [ALPHAS[1], ALPHAS[2]]
    assert res.alpha.tolist() == [ALPHAS[1], 2.0 * ALPHAS[2]]
    alone = [
        choose(
            _stats([make], seed=(0, t)), [0, 1], SETTINGS, n_targets=1, refit_scale=2.0
        )
        for t, make in enumerate((_ridge_target, _student_target))
    ]
    for j, a in enumerate(alone):
        assert res.best_index[j] == a.best_index
    assert res.best_score[0] == pytest.approx(alone[0].best_score, rel=1e-12)
    assert res.best_score[1] == pytest.approx(9.0 * alone[1].best_score, abs=1e-20)
    assert [g.tolist() for g in res.target_groups] == [[0], [1]]


def test_one_split_falls_back_to_the_raw_optimum_with_a_warning():
    data = _stats([_student_target])
    one = Statistics(data.stats[:1], ALPHAS, 80.0, np.zeros(1), 0.0)
    with pytest.warns(UserWarning, match="not validated"):
        res = choose(one, [0, 1], SETTINGS, n_targets=1, refit_scale=1.0)
    assert res.selection == "raw"
    assert np.isnan(res.honest_score)
