"""Selection of ``(alpha, n_steps, xi_bar)`` from per-fold statistics.

The closed-form search reduces every fold to triangular factors ``R`` of
``[Z, r]`` for each ``alpha`` (:mod:`skdistill._cv_closed_form`): the
validation error of a filter ``xi_bar`` on that fold is
``|R @ (xi_bar, -1)|^2``. This module turns those factors into a choice.

Why the raw optimum is not enough
---------------------------------
``xi_bar`` (``k + 1`` numbers) is fitted on the very validation folds that then
score it, so the raw cross-validated error falls with every extra step and the
raw optimum picks the largest ``k`` offered, fitted to validation noise. The
factors pool additively, so the fitting of ``xi_bar`` can itself be
cross-validated at the cost of a few small solves:

* **cross-fitted scores** (``cv_results_["split{i}_honest_test_score"]``): for
  every candidate ``(alpha, k)`` and fold ``j``, ``xi_bar`` is fitted on the
  other folds' validation statistics and scored on fold ``j``. For ridge
  (``k = 0``, nothing fitted) they equal the raw scores.
* **the nested estimate** of the whole selection (``honest_score_``): for each
  fold ``j``, the selection rule is re-run on the other folds only (its own
  cross-fitting leaves a second fold out), ``xi_bar`` of the chosen candidate
  is fitted on the other folds and scored on fold ``j``.

Neither is exactly nested cross-validation: the teachers whose predictions
form fold ``i``'s statistics were trained on rows that include fold ``j``.
Only ``k + 1`` numbers are fitted on those statistics, so the leak is small.

Selection rules (``SelfDistillCV(selection=...)``), over candidates ordered
by complexity (ridge; then for each ``k`` the shrinking, then the free filter):

* ``"raw"``: the best mean raw score (the paper's protocol; optimistic).
* ``"honest"``: the best mean cross-fitted score.
* ``"stepwise"``: start from the best ridge; move to the best candidate of the
  next level only when its cross-fitted per-fold errors beat the current
  choice's by more than two standard errors of the paired differences.
* ``"one_se"``: the simplest level with a candidate within one standard error
  (paired) of the best cross-fitted score.

Every rule chooses among the candidates offered: ridge, and the students
whose filter, fitted on all folds, does not cancel by more than
:data:`MAX_CANCELLATION` on the training spectra (:func:`_cancellation`);
the others are scored but not chosen.

All solves are batched over folds, candidates and subsets of folds, with the
same truncated, column-normalised least squares under ``sum(xi_bar) = 1``
(:mod:`skdistill._cv_subsets`).
"""

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from sklearn.externals.array_api_compat import array_namespace
from sklearn.externals.array_api_compat import device as _device

from ._array_api import to_numpy
from ._constrained import _like
from ._cv_closed_form import householder_r
from ._cv_subsets import subset_errors
from ._filter import pure_filters, shrinkage

__all__ = [
    "RULES",
    "SelectionResult",
    "pool_targets",
    "select",
]

RULES = ("stepwise", "one_se", "honest", "raw")

# The filter families of students (the third entry of a candidate): free,
# kept in [0, 1] on the training spectra, kept non-negative there.
FREE, SHRINK, NONNEGATIVE = 0, 1, 2
# Each bounded family's upper bound, and the families' order of complexity
# within one number of steps (the most constrained first).
_UPPER = {SHRINK: 1.0, NONNEGATIVE: np.inf}
_RANK = {SHRINK: 0, NONNEGATIVE: 1, FREE: 2}

# Standard errors by which a more complex level must win (see _apply_rule).
_Z = {"stepwise": 2.0, "one_se": 1.0}


def pool_targets(stats, groups):
    """Per-fold factors pooled over each group of targets.

    Returns ``F`` of shape ``(n_groups, n_folds, n_alphas, p, p)`` such that
    the fold's error of ``xi_bar``, averaged over the group's targets, is
    ``|F[g, f, a] @ (xi_bar, 0, ..., -1)|^2``; in the namespace and on the
    device of the statistics.
    """
    xp = array_namespace(stats[0].R)
    n_alphas, t, p, _ = stats[0].R.shape
    if all(len(g) == 1 for g in groups) and len(groups) == t:
        order = np.concatenate([np.asarray(g) for g in groups])
        F = xp.permute_dims(xp.stack([s.R for s in stats]), (2, 0, 1, 3, 4))
        if np.array_equal(order, np.arange(t)):
            return F
        return xp.take(F, xp.asarray(order, device=_device(F)), axis=0)
    pooled = []
    for targets in groups:
        idx = xp.asarray(np.asarray(targets), device=_device(stats[0].R))
        per_fold = []
        for s in stats:
            R = xp.take(s.R, idx, axis=1) / float(np.sqrt(len(targets)))
            R = xp.reshape(R, (n_alphas, -1, p))
            if isinstance(R, np.ndarray):
                per_fold.append(np.linalg.qr(R, mode="r"))
            else:
                per_fold.append(householder_r(R, xp))
        pooled.append(xp.stack(per_fold))
    return xp.stack(pooled)


# A student is offered only where its filter's terms cancel by at most this
# factor (see _cancellation).
MAX_CANCELLATION = 1e6


@dataclass
class ShrinkSpectrum:
    """The training spectra: where shrinking filters are kept in [0, 1]."""

    lam: np.ndarray  # (m,) every training fold's eigenvalues, distinct, ascending
    alphas: np.ndarray  # (A,)
    Phi: np.ndarray  # (A, m0, max_steps + 1): h ** (m + 1) at m0 <= n_points of lam
    h_max: np.ndarray  # (A,) the largest h of the spectra per alpha (0 if none)


def _cancellation(xi_bar, a_idx, spectrum):
    """How much a filter's terms cancel on the training spectra.

    ``xi_bar``: (n, p) filters ``phi(h) = sum_m xi_bar_m h^(m+1)``;
    ``a_idx``: (n,) their alphas. Returns ``sum_m |xi_bar_m| h_max^m``: the
    largest of ``sum_m |xi_bar_m h^(m+1)|`` over the spectra (at ``h_max``)
    relative to ridge's filter there (``h_max``), 1 for ridge. A relative
    error ``delta`` in the terms (the rounding of ``h``, the eigenvalues'
    error, the round-off of the sums that form predictions and leave-one-out
    corrections) moves the filter by that ratio times ``delta``: at the
    default grid's smallest alphas every ``h`` is within 1e-6 of 1 and the
    least-squares ``xi_bar`` reaches 1e9 to 1e13, a polynomial that cancels
    to an O(1) value float64 resolves only to 1e-3 or worse. NumPy; (n,).
    """
    xi_bar = np.abs(np.asarray(xi_bar, dtype=float))
    h = spectrum.h_max[np.asarray(a_idx)][:, None]
    return (xi_bar * h ** np.arange(xi_bar.shape[1])).sum(axis=1)


def filter_powers(lams, alphas, max_steps, n_points=64):
    """The training spectra, and the filter powers on a sample of them.

    ``lams``: the eigenvalues of every training fold. The constraints hold
    on all of them (:func:`~skdistill._constrained.shrink_to_unit`); up to
    ``n_points`` (always the smallest and largest) are the exchange's first
    set, ``Phi[a, i, m] = h_i ** (m + 1)`` per alpha.
    """
    lam = np.unique(np.concatenate([np.ravel(x) for x in lams]))
    lam = lam[lam > 0]
    sample = lam
    if lam.size > n_points:
        sample = lam[np.unique(np.linspace(0, lam.size - 1, n_points).astype(int))]
    alphas = np.asarray(alphas, dtype=float)
    h = shrinkage(sample[None, :], alphas[:, None])
    h_max = shrinkage(lam.max(), alphas) if lam.size else np.zeros(alphas.size)
    return ShrinkSpectrum(
        lam=lam,
        alphas=alphas,
        Phi=pure_filters(h, max_steps),
        h_max=h_max,
    )


@dataclass
class SelectionResult:
    """What the closed-form selection found, for ``G`` groups of targets.

    Errors are normalised as the score expects (mean squared error per
    validation weight, or the fraction of unexplained variance for R^2).
    """

    candidates: list  # [(n_steps, alpha_index, shrink)]
    xi_bar: list  # group 0's xi_bar of every candidate, fitted on all folds
    raw_errors: np.ndarray  # (G, n_candidates, K)
    honest_errors: np.ndarray  # (G, n_candidates, K): cross-fitted
    chosen: np.ndarray  # (G,) index into candidates
    chosen_xi_bar: np.ndarray  # (G, max_steps + 1), zero-padded
    nested_errors: np.ndarray  # (G, K): nested estimate of the rule, or NaN
    rule: str  # the rule actually applied ("raw" when no cross-fitting exists)
    unresolved: np.ndarray  # (G, n_candidates): not offered, score unresolved
    changed: np.ndarray  # (G,): whether not offering them changed the choice


def _apply_rule(rule, raw, honest, level, alpha_idx, tol, eligible):
    """Index of the chosen candidate of every group.

    ``raw``, ``honest``: (G, C, K') errors on the folds available; ``level``:
    (C,) each candidate's complexity (0 for ridge); ``tol``: (G,) errors within
    ``tol`` of each other are ties, won by the simplest candidate (lowest
    level, then largest alpha); ``eligible``: (G, C) candidates that may be
    chosen (every ridge is).
    """
    score = raw if rule == "raw" else honest
    mean = score.mean(axis=2)  # (G, C)
    G = mean.shape[0]
    rows = np.arange(G)
    # Candidates from simplest to most complex (lowest level, largest alpha).
    order = np.lexsort((-alpha_idx, level))

    def best(mask):
        """(G,) best candidate among ``mask`` (G, C); ties to the simplest."""
        m = np.where(mask, mean, np.inf)
        tied = mask & (m <= m.min(axis=1, keepdims=True) + tol[:, None])
        return order[np.argmax(tied[:, order], axis=1)]

    if rule not in _Z or score.shape[2] < 2:
        return best(eligible)
    n_folds, z = score.shape[2], _Z[rule]
    if rule == "stepwise":
        levels = np.unique(level)
        current = best(eligible & (level == levels[0]))
        for lev in levels[1:]:
            mask = eligible & (level == lev)
            challenger = best(mask)
            d = score[rows, challenger] - score[rows, current]  # (G, K)
            se = d.std(ddof=1, axis=1) / np.sqrt(n_folds)
            move = mask.any(axis=1) & (d.mean(axis=1) + z * se < -tol)
            current = np.where(move, challenger, current)
        return current
    # The simplest level holding a candidate within one standard error (of
    # the paired per-fold differences) of the best; its best candidate.
    top = best(eligible)
    d = score - score[rows, top][:, None, :]
    se = d.std(ddof=1, axis=2) / np.sqrt(n_folds)
    within = eligible & (d.mean(axis=2) <= z * se + tol[:, None])
    lowest = np.where(within, level, np.iinfo(np.int64).max).min(axis=1)
    return best(within & (level == lowest[:, None]))


def _group_batch(A, S, K, p, D, budget=64 * 2**20):
    """Groups of targets per batch so that the largest arrays stay in budget."""
    per_group = 8 * A * S * (K * p * p + 2 * D * K + K * p)
    return max(1, int(budget // per_group))


def select(
    F,
    steps,
    *,
    rule,
    tol,
    eligible_fn=None,
    nested=True,
    Phi=None,
    families=None,
    max_cancellation=None,
    resolution=None,
    progress=None,
):
    """Score every candidate of every group of targets and choose, batched.

    Parameters
    ----------
    F : ndarray of shape (G, K, A, p, p)
        Per-fold factors of each target group (:func:`pool_targets`).
    steps : list of int
        Candidate numbers of steps.
    rule : {"stepwise", "one_se", "honest", "raw"}
    tol : ndarray of shape (G,)
        Ties (see :func:`_apply_rule`).
    eligible_fn : callable, default=None
        ``xi_bar (n, k + 1) -> bool (n,)``: whether candidates fitted on all
        folds may be chosen (for example, are representable by per-step
        ``xi``). Checked on the chosen candidates; an ineligible choice is
        excluded and the rule re-run for that group.
    nested : bool, default=True
        Also compute the nested estimate of the rule (``K`` more selections).
    Phi : ShrinkSpectrum, default=None
        :func:`filter_powers`; needed for shrinking filters and for the
        bound on cancellation.
    max_cancellation : float, default=None
        A student (``n_steps >= 1``) whose filter, fitted on all folds,
        cancels by more than this on the training spectra
        (:func:`_cancellation`) is not offered; ridge always is. ``None``:
        :data:`MAX_CANCELLATION`; ``np.inf``: every candidate is offered.
    resolution : ndarray of shape (G, A), default=None
        Round-off of each group's errors per unit ``|xi_bar|_1``, in the
        units of the square root of an error: a student whose mean error
        ``err`` over the folds, fitted on all of them, is moved by more than
        :data:`RESOLVED` of itself by its bound ``2 sqrt(err) e + e^2``,
        ``e = resolution * max(|xi_bar|_1, 1)``, is not offered (ridge always
        is). None: every score is taken as resolved.
    progress : callable, default=None
        ``progress(message)`` after each batch of groups when there are
        several (a :class:`~skdistill._progress.Progress`); None: silent.

    Returns
    -------
    SelectionResult

    Notes
    -----
    Groups are processed in batches whose working arrays take at most about
    64 MiB (:func:`_group_batch`; 1 GiB for arrays of other namespaces, on an
    accelerator's device): memory is bounded whatever the number of targets,
    and every solve within a batch is one batched call. The per-subset fits
    run in ``F``'s namespace and on its device; the rules, on their
    ``(targets, candidates, folds)`` errors, run on the host.
    """
    families = (False,) if families is None else tuple(families)
    max_cancellation = (
        MAX_CANCELLATION if max_cancellation is None else float(max_cancellation)
    )
    G, K, A, p, _ = F.shape
    tol = np.broadcast_to(np.asarray(tol, dtype=float), (G,))
    max_steps = max(steps)
    cands = [
        (k, a, shrink)
        for k in steps
        for shrink in ((False,) if k == 0 else families)
        for a in range(A)
    ]
    C = len(cands)
    level = np.array([0 if k == 0 else 3 * k - 2 + _RANK[sh] for k, _, sh in cands])
    cand_a = np.array([a for _, a, _ in cands])
    cand_k = np.array([k for k, _, _ in cands])
    cand_shrink = np.array([sh for _, _, sh in cands])
    s_idx = {k: i for i, k in enumerate(steps)}
    cand_kidx = np.array([s_idx[k] for k in cand_k])

    # The raw rule reads no cross-fitted score: its nested selections need
    # no leave-two-out fits.
    masks, leave1, leave2 = _fold_subsets(K, nested and rule != "raw")
    applied = rule if K >= 2 else "raw"
    out = dict(
        raw=np.empty((G, C, K)),
        honest=np.full((G, C, K), np.nan),
        chosen=np.empty(G, dtype=int),
        chosen_xi=np.zeros((G, max_steps + 1)),
        nested=np.full((G, K), np.nan),
        unresolved=np.zeros((G, C), dtype=bool),
        changed=np.zeros(G, dtype=bool),
    )
    xi_bar0 = None
    plan = _Plan(
        steps=steps,
        families=families,
        Phi=Phi,
        cands=cands,
        level=level,
        cand_a=cand_a,
        cand_kidx=cand_kidx,
        cand_shrink=cand_shrink,
        masks=masks,
        leave1=leave1,
        leave2=leave2,
        rule=applied,
        nested=nested,
        max_cancellation=max_cancellation,
    )
    budget = 64 * 2**20 if isinstance(F, np.ndarray) else 2**30
    # Ridge alone fits nothing per subset: its arrays have one subset.
    n_subsets = 1 if max_steps == 0 else len(masks)
    batch = _group_batch(A, n_subsets, K, p, max_steps + 1, budget=budget)
    for g0 in range(0, G, batch):
        sl = slice(g0, min(G, g0 + batch))
        bound = None if resolution is None else np.asarray(resolution)[sl]
        res = _select_batch(F[sl, ...], plan, tol[sl], eligible_fn, bound)
        for key in out:
            out[key][sl] = res[key]
        if xi_bar0 is None:
            xi_bar0 = res["xi_bar0"]
        if progress is not None and batch < G:
            progress(f"selected for {sl.stop}/{G} target groups")
    return SelectionResult(
        candidates=cands,
        xi_bar=xi_bar0,
        raw_errors=out["raw"],
        honest_errors=out["honest"],
        chosen=out["chosen"],
        chosen_xi_bar=out["chosen_xi"],
        nested_errors=out["nested"],
        rule=applied,
        unresolved=out["unresolved"],
        changed=out["changed"],
    )


def _fold_subsets(K, nested):
    """The subsets of ``K`` folds that fit ``xi_bar``: all of them, all but
    one (cross-fitting) and, for the nested estimate, all but two.

    Returns ``masks`` (S, K) and the rows of the leave-one-out
    (``leave1[j]``) and leave-two-out (``leave2[(i, j)]``) subsets.
    """
    full = np.ones(K, dtype=bool)
    masks, leave1, leave2 = [full], {}, {}
    for j in range(K):
        m = full.copy()
        m[j] = False
        leave1[j] = len(masks)
        masks.append(m)
    if nested and K >= 3:
        for i, j in combinations(range(K), 2):
            m = full.copy()
            m[[i, j]] = False
            leave2[(i, j)] = leave2[(j, i)] = len(masks)
            masks.append(m)
    return np.array(masks), leave1, leave2


@dataclass
class _Plan:
    """What every batch of target groups shares: candidates and fold subsets."""

    steps: list  # candidate numbers of steps
    families: tuple  # filter families offered (True: shrinking)
    Phi: ShrinkSpectrum  # the training spectra, or None
    cands: list  # [(n_steps, alpha_index, shrink)]
    level: np.ndarray  # (C,) complexity of each candidate
    cand_a: np.ndarray  # (C,) alpha index
    cand_kidx: np.ndarray  # (C,) index of n_steps in steps
    cand_shrink: np.ndarray  # (C,) shrinking family
    masks: np.ndarray  # (S, K) folds fitting xi_bar in each subset
    leave1: dict  # fold j -> subset without j
    leave2: dict  # (i, j) -> subset without i and j
    rule: str
    nested: bool
    max_cancellation: float  # students offered where _cancellation <= this


def _select_batch(F, plan, tol, eligible_fn, resolution=None):
    """One batch of target groups: fits and gathers on ``F``'s device, rules on
    the host (on ``(groups, candidates, folds)`` errors)."""
    K = F.shape[1]
    fits = _subset_fits(F, plan)
    gather = _CandidateErrors(F, plan, fits)
    table = gather.table  # (S, G, C, K)
    raw = np.array(table[0])
    honest = np.full_like(raw, np.nan)
    if K >= 2:  # fold j's error of the fit on the other folds
        leave1 = [plan.leave1[j] for j in range(K)]
        honest = np.moveaxis(table[leave1, :, :, np.arange(K)], 0, -1)
    deg0 = gather.degrees(0)
    # The fits on all folds, on the host: (G, A, d + 1) per family and degree.
    xs0 = {sh: [to_numpy(x[:, :, 0, :]) for x in fits[sh][0]] for sh in gather.fams}
    eligible = _offered(plan, deg0, xs0)
    unresolved = _unresolved(plan, deg0, xs0, raw.mean(axis=2), resolution)
    args = (deg0, xs0, gather.fams, eligible_fn)
    changed = np.zeros(raw.shape[0], dtype=bool)
    if unresolved.any():  # what the rule would choose with every score
        unbounded, _ = _choose(plan, raw, honest, tol, eligible.copy(), *args)
    eligible &= ~unresolved
    offered = eligible.copy()
    chosen, chosen_xi = _choose(plan, raw, honest, tol, eligible, *args)
    if unresolved.any():
        changed = unbounded != chosen
    xi_bar0 = []  # the first group's, for cv_results_
    for c, (k, a, sh) in enumerate(plan.cands):
        x = np.zeros(k + 1)
        d = deg0[0, c]
        x[: d + 1] = xs0[sh][d][0, a]
        xi_bar0.append(x)
    return dict(
        raw=raw,
        honest=honest,
        chosen=chosen,
        chosen_xi=chosen_xi,
        nested=_nested_errors(plan, gather, tol, offered),
        xi_bar0=xi_bar0,
        unresolved=unresolved,
        changed=changed,
    )


def _subset_fits(F, plan):
    """``{shrink: (xs, err, picks)}``: every family's fits on every fold subset.

    ``xs`` and ``err`` as :func:`~skdistill._cv_subsets.subset_errors`
    returns them; ``picks`` (G, A, S, n_steps): the degree used by candidate
    ``(k, a)`` fitted on subset ``s``, the best, on the subset's own folds,
    of the degrees up to ``k``. Ridge comes from the free solve, whatever
    the families.
    """
    xp = array_namespace(F)
    G, _, A, _, _ = F.shape
    steps, masks = plan.steps, plan.masks
    in_subset = _like(xp, F, masks.astype(float))[None, None, :, None, :]
    # Ridge alone (one degree, one subset): nothing to pick.
    ridge_picks = xp.zeros((G, A, 1, len(steps)), dtype=xp.int64, device=_device(F))
    fits = {}
    for shrink in plan.families:
        bounded = shrink != FREE
        xs, err = subset_errors(
            F, masks, max(steps), plan.Phi if bounded else None, _UPPER.get(shrink)
        )
        if err.shape[3] == 1:
            fits[shrink] = (xs, err, ridge_picks)
            continue
        insample = xp.sum(err * in_subset, axis=-1)  # (G, A, S, D)
        picks = xp.stack(
            [xp.argmin(insample[..., : k + 1], axis=3) for k in steps], axis=3
        )  # (G, A, S, n_steps)
        fits[shrink] = (xs, err, picks)
    if False not in fits:
        fits[False] = (*subset_errors(F, masks, 0), ridge_picks)
    return fits


class _CandidateErrors:
    """Every candidate's degrees and fold errors, gathered from the fits.

    ``fits``: :func:`_subset_fits`. The gathers run on ``F``'s device, once;
    what :meth:`degrees` returns and :attr:`table` are on the host, in
    candidate order.

    Attributes
    ----------
    table : ndarray of shape (S, G, C, K)
        Every fold's error of every candidate fitted on every subset (a
        read-only broadcast along the subsets where no family depends on
        them).
    """

    def __init__(self, F, plan, fits):
        xp = array_namespace(F)
        dev = _device(F)
        self.xp, self.dev, self.fits = xp, dev, fits
        self.G, K, self.A, _, _ = F.shape
        S = len(plan.masks)
        self.fams = list(fits)
        fam_idx = {sh: np.flatnonzero(plan.cand_shrink == sh) for sh in self.fams}
        # Candidates grouped by family, and back to their order.
        self.back = xp.asarray(
            np.argsort(np.concatenate([fam_idx[sh] for sh in self.fams])), device=dev
        )
        self.n_k = n_k = len(plan.steps)
        fam_k = {
            sh: plan.cand_kidx[idx] if sh or n_k == fits[sh][2].shape[3] else 0 * idx
            for sh, idx in fam_idx.items()
        }
        # Each family's candidates as flat indices into (alpha, n_steps).
        self.flat = {
            sh: xp.asarray(plan.cand_a[idx] * n_k + fam_k[sh], device=dev)
            for sh, idx in fam_idx.items()
        }
        # Every fold's error of each candidate on every subset, at the degree
        # it picks there: (S', G, C_f, K) per family, gathered once (S' = 1
        # for a family that does not depend on the subset).
        per = []
        for sh, (_, err, picks) in fits.items():
            picks = picks[:, :, : err.shape[2], ...]
            e = xp.take_along_axis(err, picks[..., None], axis=3)  # (G, A, S', n_k, K)
            e = xp.reshape(
                xp.permute_dims(e, (2, 0, 1, 3, 4)), (e.shape[2], self.G, -1, K)
            )
            per.append(xp.take(e, self.flat[sh], axis=2))
        if any(e.shape[0] != 1 for e in per):
            per = [xp.broadcast_to(e, (S,) + tuple(e.shape[1:])) for e in per]
        table = to_numpy(xp.take(xp.concat(per, axis=2), self.back, axis=2))
        self.table = np.broadcast_to(table, (S,) + table.shape[1:])

    def degrees(self, s):
        """(G, C) degree of every candidate's solution on subset s (host)."""
        xp, G, A, n_k = self.xp, self.G, self.A, self.n_k
        per = []
        for sh in self.fams:
            picks = self.fits[sh][2]
            on_s = picks[:, :, min(s, picks.shape[2] - 1), :]
            per.append(
                xp.take(
                    xp.reshape(on_s, (G, A * n_k)),
                    self.flat[sh],
                    axis=1,
                )
            )
        return to_numpy(xp.take(xp.concat(per, axis=1), self.back, axis=1))


def _offered(plan, deg0, xs0):
    """(G, C) candidates offered: students whose filter, fitted on all folds,
    cancels too much on the training spectra are not (ridge always is)."""
    G, C = deg0.shape
    eligible = np.ones((G, C), dtype=bool)
    if plan.Phi is None or not plan.max_cancellation < np.inf:
        return eligible
    cand_k = np.array([k for k, _, _ in plan.cands])
    for c in np.flatnonzero(cand_k > 0):
        fam, d = plan.cand_shrink[c], deg0[:, c]
        for dd in np.unique(d[d > 0]):
            g = np.flatnonzero(d == dd)
            x = xs0[fam][dd][g, plan.cand_a[c]]
            ratio = _cancellation(x, np.full(g.size, plan.cand_a[c]), plan.Phi)
            eligible[g, c] = ratio <= plan.max_cancellation
    return eligible


# A student is offered only where the round-off bound of its score moves it
# by at most this fraction (see select's ``resolution``).
RESOLVED = 0.05


def _unresolved(plan, deg0, xs0, err, resolution):
    """(G, C) students whose mean error ``err`` (G, C), fitted on all folds,
    float64 cannot resolve (see :func:`select`'s ``resolution``)."""
    G, C = deg0.shape
    out = np.zeros((G, C), dtype=bool)
    if resolution is None:
        return out
    groups = np.arange(G)
    for c, (k, a, sh) in enumerate(plan.cands):
        if k == 0:
            continue
        l1 = np.ones(G)
        for d in np.unique(deg0[:, c]):
            g = deg0[:, c] == d
            l1[g] = np.abs(xs0[sh][d][groups[g], a]).sum(axis=-1)
        e = resolution[:, a] * np.maximum(l1, 1.0)
        e_err = err[:, c]
        out[:, c] = 2.0 * np.sqrt(np.maximum(e_err, 0.0)) * e + e**2 > RESOLVED * e_err
    return out


def _choose(plan, raw, honest, tol, eligible, deg0, xs0, fams, eligible_fn):
    """The rule's choice per group and its ``xi_bar`` (G, max_steps + 1).

    A choice ``eligible_fn`` rejects is made ineligible (``eligible`` is
    updated in place) and the rule re-run for that group.
    """
    G = raw.shape[0]
    groups = np.arange(G)
    cand_a = plan.cand_a
    cand_k = np.array([k for k, _, _ in plan.cands])
    while True:
        chosen = _apply_rule(plan.rule, raw, honest, plan.level, cand_a, tol, eligible)
        chosen_xi = np.zeros((G, max(plan.steps) + 1))
        deg, a, sh = deg0[groups, chosen], cand_a[chosen], plan.cand_shrink[chosen]
        for fam in fams:
            for d, x in enumerate(xs0[fam]):
                sel = np.flatnonzero((sh == fam) & (deg == d))
                chosen_xi[sel, : d + 1] = x[sel, a[sel]]
        redo = np.zeros(G, dtype=bool)
        if eligible_fn is not None:
            k_chosen = cand_k[chosen]
            for k in np.unique(k_chosen[k_chosen > 0]):
                sel = np.flatnonzero(k_chosen == k)
                out = sel[~eligible_fn(chosen_xi[sel, : k + 1])]
                eligible[out, chosen[out]] = False
                redo[out] = True
        if not redo.any():
            return chosen, chosen_xi


def _nested_errors(plan, gather, tol, offered):
    """(G, K) nested estimate of the rule: each fold scored by the choice the
    rule makes on the others (NaN without ``plan.nested`` or with one fold).

    The nested selections offer the same candidates as the outer one.
    """
    G, K = gather.G, plan.masks.shape[1]
    nested_errors = np.full((G, K), np.nan)
    if not (plan.nested and K >= 2):
        return nested_errors
    all_folds = np.arange(K)
    inner_rule = plan.rule if K >= 3 else "raw"
    table = gather.table  # (S, G, C, K)
    for j in range(K):
        others = all_folds[all_folds != j]
        s = plan.leave1[j]
        raw_in = table[s][:, :, others]
        if plan.leave2 and inner_rule != "raw":
            leave2 = [plan.leave2[(j, i)] for i in others]
            hon_in = np.moveaxis(table[leave2, :, :, others], 0, -1)
        else:
            hon_in = raw_in
        c = _apply_rule(
            inner_rule, raw_in, hon_in, plan.level, plan.cand_a, tol, offered
        )
        nested_errors[:, j] = table[s, np.arange(G), c, j]
    return nested_errors
