"""The closed-form search of ``SelfDistillCV``: source -> statistics -> choice.

:func:`search_closed_form` asks a source (:mod:`skdistill._cv_sources`) for the
per-fold statistics of every pure distillate, :func:`choose` runs the
selection engine (:func:`skdistill._cv_engine.select`) on them and turns its
arrays into parameters, ``cv_results_`` and the scores of the choice, all in
one :class:`~skdistill._cv_results.SearchResult`. Nothing here sets attributes
on an estimator or refits one.
"""

import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ._array_api import to_numpy
from ._cv_engine import (
    FREE,
    NONNEGATIVE,
    RESOLVED,
    SHRINK,
    filter_powers,
    pool_targets,
    select,
)
from ._cv_loo import ROUND_OFF_FACTOR as _ROUND_OFF_FACTOR
from ._cv_results import SearchResult, format_cv_results
from ._filter import _xi_bar_rows_to_xi, xi_bar_to_xi
from ._progress import Progress, count_summary
from .exceptions import AlphaGridWarning, warn_user

__all__ = ["SearchSettings", "choose", "search_closed_form"]


@dataclass(frozen=True)
class SearchSettings:
    """The parameters of ``SelfDistillCV`` that the closed form reads."""

    selection: str = "stepwise"
    filter_constraint: str = "auto"
    alpha_per_target: bool = False
    return_honest_score: bool = True
    scoring: str = "neg_mean_squared_error"  # or "r2"
    rescale_alpha: bool = True


def search_closed_form(source, steps, alphas, settings, progress=None):
    """Score every candidate on ``source``'s folds and choose.

    Parameters
    ----------
    source : InMemorySplits, LeaveOneOutRows or StreamedSource
        Anything with ``statistics(alphas, max_steps, scoring, progress)``
        returning :class:`~skdistill._cv_sources.Statistics`, and the
        attributes ``n_targets``, ``n_ref`` (weight sum of all rows) and
        ``y_scale`` (what the targets were divided by).
    steps : list of int
    alphas : ndarray or None
        None: the source's default grid.
    settings : SearchSettings
    progress : Progress, default=None
        Where stages are reported (None: nowhere).

    Returns
    -------
    SearchResult
    """
    progress = Progress(0) if progress is None else progress
    data = source.statistics(alphas, max(steps), settings.scoring, progress)
    refit_scale = source.n_ref / data.n_train if settings.rescale_alpha else 1.0
    return choose(
        data,
        steps,
        settings,
        n_targets=source.n_targets,
        refit_scale=refit_scale,
        y_scale=source.y_scale,
        progress=progress,
    )


def _target_groups(settings, n_targets):
    """The groups of targets chosen together: each alone, or all at once."""
    if settings.alpha_per_target and n_targets > 1:
        return [np.array([j]) for j in range(n_targets)]
    return [np.arange(n_targets)]


def _families(settings, n_folds):
    """Which filter families the students may use (``_cv_engine.FREE``...)."""
    constraint = settings.filter_constraint
    if constraint == "auto":
        # Free filters only for the raw optimum (the papers' protocol):
        # offered to the cross-fitted rules with two or more steps, they
        # lose to RidgeCV on held-out data (benchmarks/bench_selection.py;
        # the refit extrapolates an expanding polynomial beyond the h the
        # folds validated), which no cross-fitted score can see.
        raw = settings.selection == "raw" or n_folds < 2
        constraint = "none" if raw else "shrink"
    return {"shrink": (SHRINK,), "none": (FREE,), "nonnegative": (NONNEGATIVE,)}[
        constraint
    ]


def _tie_tolerance(stats, groups):
    """(G,) errors closer than this are ties: round-off of each group's errors."""
    scale = np.mean([to_numpy(f.scale) for f in stats], axis=0)  # (t,)
    if len(groups) == scale.shape[0]:
        scale = scale[np.concatenate(groups)]
    else:
        scale = np.array([np.mean(scale[t]) for t in groups])
    return 1e3 * np.finfo(np.float64).eps * scale


class _Scores:
    """Errors of the engine as scores, on ``y``'s own scale, per group."""

    def __init__(self, scoring, y_scale, groups, n_targets):
        self.scoring = scoring
        g_scale = np.broadcast_to(np.asarray(y_scale, dtype=float), (n_targets,))
        self.g_scale = np.array([g_scale[t[0]] for t in groups])
        weights = np.array([t.size for t in groups], dtype=float)
        self.weights = weights / weights.sum()

    def __call__(self, err):
        """Scores of errors (G, ...) of each group."""
        if self.scoring == "r2":
            return 1.0 - err
        s = self.g_scale.reshape((-1,) + (1,) * (err.ndim - 1))
        with np.errstate(over="ignore"):  # y near 1e200: an MSE of inf
            return -(err * s) * s

    def averaged(self, err):
        """A row's score: the groups' scores averaged (each at its optimum)."""
        with np.errstate(invalid="ignore"):  # -inf of several groups
            return np.tensordot(self.weights, self(err), axes=1)


def _smallest_eigenvalue(stats):
    """The smallest positive eigenvalue of every training fold (0 if none)."""
    lams = [to_numpy(f.lam) for f in stats]
    positive = np.concatenate([lam[lam > 0] for lam in lams])
    return float(positive.min()) if positive.size else 0.0


def _chosen_params(result, alphas, refit_scale, lam_min):
    """One parameter dict per group: the chosen candidate, refit alpha."""
    cands = result.candidates
    ks = np.array([k for k, _, _ in cands])[result.chosen]
    a_idx = np.array([a for _, a, _ in cands])[result.chosen]
    _warn_edge(alphas, a_idx, lam_min)
    # Ridge refits at the validated alpha, as RidgeCV does: its optimal
    # penalty does not grow with n. A student's filter is a polynomial in h
    # validated on the training folds' h only, which the rescaling keeps.
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
    per_target = dict(
        alpha=alpha_fit, cv_alpha=alpha_cv, n_steps=ks, xi=xi_all, xi_bar=xi_bar_all
    )
    return params, per_target


def choose(
    data, steps, settings, *, n_targets, refit_scale, y_scale=1.0, progress=None
):
    """Choose a candidate for every group of targets from fold statistics.

    Parameters
    ----------
    data : skdistill._cv_sources.Statistics
    steps : list of int
    settings : SearchSettings
    n_targets : int
    refit_scale : float
        The factor from a validated alpha to a student's refit alpha.
    y_scale : float or ndarray of shape (n_targets,), default=1.0
        What the targets were divided by (errors are scaled back).
    progress : Progress, default=None

    Returns
    -------
    SearchResult
    """
    tic = time.perf_counter()
    progress = Progress(0) if progress is None else progress
    stats, alphas = data.stats, data.alphas
    n_folds = len(stats)
    groups = _target_groups(settings, n_targets)
    nested = settings.return_honest_score and n_folds >= 3
    progress(
        f"selecting for {len(groups)} target group{'s' if len(groups) > 1 else ''}"
        f" (selection={settings.selection!r}"
        + (", with the nested estimate)" if nested else ")")
    )
    if n_folds < 2 and settings.selection != "raw":
        warn_user(
            f"selection={settings.selection!r} needs at least two validation "
            "folds to cross-fit xi_bar; with one split the raw optimum is "
            "used, and its choice of n_steps and xi is not validated.",
        )
    families = _families(settings, n_folds)
    # The training spectra: the shrinking constraint, and the cancellation
    # bound of every student (free filters too).
    Phi = filter_powers([to_numpy(f.lam) for f in stats], alphas, max(steps))
    F = pool_targets(stats, groups)
    resolution = None
    if data.resolution is not None:
        resolution = _group_resolution(data.resolution, groups)
    result = select(
        F,
        steps,
        rule=settings.selection,
        tol=_tie_tolerance(stats, groups),
        eligible_fn=_representable_rows,
        nested=settings.return_honest_score,
        Phi=Phi,
        families=families,
        resolution=resolution,
        progress=progress,
    )
    _warn_unresolved(result)
    score = _Scores(settings.scoring, y_scale, groups, n_targets)
    row_scores = score.averaged(result.raw_errors)
    # With one choice per target, best_index_ and best_score_ are per-target
    # arrays (as alpha_): the row each target chose and its mean raw score.
    chosen_scores = score(result.raw_errors[np.arange(len(groups)), result.chosen])
    chosen_scores = chosen_scores.mean(axis=1)
    if len(groups) == 1:
        best_index, best_score = int(result.chosen[0]), float(chosen_scores[0])
    else:
        best_index, best_score = result.chosen.astype(np.intp), chosen_scores
    score_time = (data.seconds + time.perf_counter() - tic) / len(result.candidates)
    cv_results = _closed_form_results(
        result.candidates,
        alphas,
        result.xi_bar,
        row_scores,
        score.averaged(result.honest_errors),
        data.fit_times,
        score_time,
    )
    params, per_target = _chosen_params(
        result, alphas, refit_scale, _smallest_eigenvalue(stats)
    )
    out = SearchResult(
        cv_results=cv_results,
        best_index=best_index,
        best_score=best_score,
        best_params=None,
        n_splits=n_folds,
        honest_score=float(np.mean(score.averaged(result.nested_errors))),
        selection=result.rule,
        alpha_refit_scale=refit_scale,
        refit_params=params,
        target_groups=groups,
    )
    _set_choice(out, params, per_target)
    _rank_by_rule(cv_results, out.selection, best_index if len(groups) == 1 else None)
    progress(_summary(out, len(result.candidates), n_folds))
    return out


def _summary(out, n_candidates, n_folds):
    """One line on the choice; counts, not arrays, for many targets."""
    head = f"chose among {n_candidates} candidates x {n_folds} folds: "
    if np.ndim(out.n_steps) == 0:
        return head + (
            f"n_steps={out.n_steps}, alpha={out.alpha:.4g}, "
            f"score={out.best_score:.6g}, honest={out.honest_score:.6g}"
        )
    return head + "n_steps " + count_summary(out.n_steps, "target")


def _set_choice(out, params, per_target):
    """The chosen parameters on ``out``: scalars for one group, else arrays.

    ``best_params`` holds the validated alpha, as the chosen row of
    ``cv_results`` does (that row's ``params`` is ``best_params`` itself, as
    in :class:`~sklearn.model_selection.GridSearchCV`); ``alpha`` is the
    refit one.
    """

    def row(p):
        return {"alpha": p["alpha_cv"], "n_steps": p["n_steps"], "xi": p["xi"]}

    if len(params) == 1:
        p = params[0]
        out.alpha, out.cv_alpha = p["alpha"], p["alpha_cv"]
        out.n_steps, out.xi, out.xi_bar = p["n_steps"], p["xi"], p["xi_bar"]
        out.best_params = row(p)
        # The row's xi is the chosen one (the same filter converted once).
        out.cv_results["params"][out.best_index] = out.best_params
        out.cv_results["param_xi"][out.best_index] = p["xi"]
        return
    # One type per attribute: arrays over targets, padded to the most steps
    # chosen (xi with NaN, xi_bar with zeros).
    for name, value in per_target.items():
        setattr(out, name, value)
    out.best_params = [row(p) for p in params]


def _rank_by_rule(cv_results, rule, chosen):
    """``rank_test_score`` by the selection rule: the chosen row first.

    The other rows follow by the score the rule reads (the cross-fitted
    ``mean_honest_test_score``, or ``mean_test_score`` for the raw optimum),
    so that ``best_index_`` is the row ranked first, as in scikit-learn.
    With one choice per target, the rows are ranked by that score alone.
    """
    key = "mean_test_score" if rule == "raw" else "mean_honest_test_score"
    score = np.asarray(cv_results[key], dtype=float)
    score = np.where(np.isnan(score), -np.inf, score)
    if chosen is not None:
        score = score.copy()
        score[chosen] = np.inf
    cv_results["rank_test_score"] = rankdata(-score, method="min").astype(np.int32)


def _representable_rows(xi_bar):
    """Rows ``(n, k + 1)`` of ``xi_bar`` that finite per-step ``xi`` reproduce."""
    return _xi_bar_rows_to_xi(xi_bar)[1]


def _group_resolution(resolution, groups):
    """(G, A) round-off per unit ``|xi_bar|_1`` of each group's mean error.

    ``resolution``: (A, t), in square-root error units; a group's mean error
    moves by at most ``2 sqrt(err) e + e^2`` with ``e`` the root mean square
    of its targets' bounds (Cauchy-Schwarz).
    """
    r = np.asarray(resolution, dtype=float)
    return np.stack([np.sqrt(np.mean(r[:, g] ** 2, axis=1)) for g in groups])


def _warn_unresolved(result):
    """One warning where not offering students whose score float64 cannot
    resolve changed a choice: how many were dropped there, for how many
    targets."""
    groups = np.flatnonzero(result.changed)
    if not groups.size:
        return
    dropped = int(result.unresolved[groups].sum())
    where = "" if result.changed.size == 1 else f" (for {groups.size} targets)"
    were = "s were" if dropped > 1 else " was"
    warn_user(
        f"{dropped} student candidate{were} not offered{where}: "
        "float64 cannot resolve their leave-one-out "
        f"scores (the round-off bound {_ROUND_OFF_FACTOR:g} eps kappa "
        "|xi_bar|_1 max|y|, kappa = 1 + lam_max / alpha, moves the score by "
        f"more than {RESOLVED:.0%}). Ridge and the other students remain."
    )


def _representable(xi_bar):
    """Whether finite per-step ``xi`` reproduce ``xi_bar`` (to round-off)."""
    return bool(_representable_rows(np.asarray(xi_bar, dtype=float)[None, :])[0])


# A chosen alpha at the small end of the grid is a real edge only while it
# still shrinks some direction by more than this: below, every h is within
# this of 1, the fit is least squares, and a smaller alpha changes nothing.
_OLS_LIMIT = 1e-3


def _warn_edge(alphas, a_idx, lam_min):
    """Warn once per end of the grid that some chosen alpha sits on.

    ``lam_min``: the smallest positive eigenvalue of the training folds (0:
    none, X has no variance and alpha changes nothing). The smallest alpha is
    no edge when ``alpha / lam_min`` is below ``_OLS_LIMIT`` (the
    least-squares limit, reached on standardised data).
    """
    a_idx = np.asarray(a_idx)
    if alphas.size < 2 or not lam_min > 0:  # no spectrum: alpha changes nothing
        return
    ends = [(alphas.size - 1, "largest")]
    if not (lam_min > 0 and alphas[0] < _OLS_LIMIT * lam_min):
        ends.insert(0, (0, "smallest"))
    for a, edge in ends:
        count = int(np.sum(a_idx == a))
        if count:
            which = "" if a_idx.size == 1 else f" (for {count} of {a_idx.size} targets)"
            warn_user(
                f"The chosen alpha={alphas[a]:.4g} is the {edge} value of the "
                f"grid{which}; the optimum may lie outside it. Consider "
                "extending alphas.",
                AlphaGridWarning,
            )


_FAMILY = {FREE: "free", SHRINK: "shrink", NONNEGATIVE: "nonnegative"}


def _closed_form_results(
    cands, alphas, xi_bars, row_scores, honest_scores, fit_times, score_time
):
    """``cv_results_`` of the closed form: one row per candidate."""
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
            "xi_bar": xi_bar_col,
            "filter_family": np.array(
                [_FAMILY[sh] if k > 0 else "ridge" for k, _, sh in cands]
            ),
        },
    )
