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

All solves are batched over folds, candidates and subsets of folds, with the
same truncated, column-normalised least squares under ``sum(xi_bar) = 1``.
"""

from dataclasses import dataclass
from itertools import combinations

import numpy as np

__all__ = [
    "RULES",
    "SelectionResult",
    "constrained_lstsq",
    "pool_targets",
    "select",
]

RULES = ("stepwise", "one_se", "honest", "raw")

# Standard errors by which a more complex level must win (see _apply_rule).
_Z = {"stepwise": 2.0, "one_se": 1.0}

# Relative singular-value cutoff of the xi_bar solve, on column-normalised
# factors. At small alpha every h is close to 1, the columns h^m are nearly
# collinear and the exact optimum can have |xi_bar| of 1e14: a polynomial that
# fits validation noise and that the refit (whose h differ slightly) cannot
# reproduce. Truncating directions below 1e-8 keeps |xi_bar| moderate (1e4 on
# the Airfoil data) at a negligible cost in CV error; every reported error is
# still evaluated exactly at the returned xi_bar.
XI_RCOND = 1e-8


def constrained_lstsq(M, v, rcond=XI_RCOND):
    """Minimise ``|M x - v|`` subject to ``sum(x) = 1``, batched.

    Parameters
    ----------
    M : ndarray of shape (..., n, p)
    v : ndarray of shape (..., n)
    rcond : float
        Singular values of the column-normalised reduced problem below
        ``rcond`` times the largest are treated as zero (minimum-norm
        solution in the normalised coordinates).

    Returns
    -------
    x : ndarray of shape (..., p)
    """
    p = M.shape[-1]
    batch = M.shape[:-2]
    if p == 1:
        return np.ones(batch + (1,))
    # x = e_0 + N c, with N spanning {sum = 0}: columns e_m - e_0.
    N = np.vstack([-np.ones(p - 1), np.eye(p - 1)])
    MN = M @ N
    col = np.linalg.norm(MN, axis=-2)
    col = np.where(col > 0, col, 1.0)
    B = MN / col[..., None, :]
    rhs = v - M[..., 0]
    U, s, Vt = np.linalg.svd(B, full_matrices=False)
    keep = s > rcond * s[..., :1]
    sinv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    Utb = np.einsum("...nk,...n->...k", U, rhs)
    c = np.einsum("...kj,...k->...j", Vt, sinv * Utb) / col
    x = c @ N.T
    x[..., 0] += 1.0
    return x


def _shrinking_lstsq(M, v, Phi, x_free, rcond=XI_RCOND):
    """:func:`constrained_lstsq` with the filter kept in [0, 1] as well, batched.

    Minimises ``|M x - v|`` subject to ``sum(x) = 1`` and
    ``0 <= Phi @ x <= 1`` (``Phi[i, m] = h_i ** (m + 1)``: the filter
    ``phi(h) = h * sum_m x_m h^m`` on the training spectra), in the same
    truncated coordinates as the free solve. Ridge (``x = e_0``) is feasible,
    so a solution always exists. Solved as a least-distance programme by
    non-negative least squares (Lawson and Hanson, 1974, chapter 23): one
    small NNLS per problem whose free solution ``x_free`` is infeasible.

    Parameters
    ----------
    M : ndarray of shape (B, n, p)
    v : ndarray of shape (B, n)
    Phi : ndarray of shape (B, m, p)
    x_free : ndarray of shape (B, p)

    Returns
    -------
    x : ndarray of shape (B, p)
    """
    from scipy.optimize import nnls

    x = x_free.copy()
    p = M.shape[-1]
    if p == 1:
        return x
    phi = np.einsum("bmp,bp->bm", Phi, x_free)
    bad = np.flatnonzero((phi.min(axis=1) < 0.0) | (phi.max(axis=1) > 1.0))
    if bad.size == 0:
        return x
    M, v, Phi = M[bad], v[bad], Phi[bad]
    N = np.vstack([-np.ones(p - 1), np.eye(p - 1)])
    MN = M @ N
    col = np.linalg.norm(MN, axis=-2)
    col = np.where(col > 0, col, 1.0)
    U, sv, Vt = np.linalg.svd(MN / col[:, None, :], full_matrices=False)
    keep = sv > rcond * sv[:, :1]
    rhs = v - M[..., 0]
    for i, b in enumerate(bad):
        r = int(keep[i].sum())
        out = np.zeros(p)
        out[0] = 1.0
        if r > 0:
            # x = e_0 + T (u + c), with |M x - v|^2 = |u|^2 + const.
            T = N @ ((Vt[i, :r].T / sv[i, :r]) / col[i][:, None])
            c = U[i, :, :r].T @ rhs[i]
            PT = Phi[i] @ T
            base = Phi[i, :, 0] + PT @ c
            A = np.empty((r + 1, 2 * PT.shape[0]))
            A[:r, : PT.shape[0]] = PT.T
            A[:r, PT.shape[0] :] = -PT.T
            A[r, : PT.shape[0]] = -base
            A[r, PT.shape[0] :] = base - 1.0
            target = np.zeros(r + 1)
            target[-1] = 1.0
            z, _ = nnls(A, target, maxiter=50 * A.shape[1])
            rho = A @ z - target
            if abs(rho[-1]) >= 1e-12:  # else numerically infeasible: ridge
                out = T @ (c - rho[:r] / rho[-1])
                out[0] += 1.0
        x[b] = out
    return x


def pool_targets(stats, groups):
    """Per-fold factors pooled over each group of targets.

    Returns ``F`` of shape ``(n_groups, n_folds, n_alphas, p, p)`` such that
    the fold's error of ``xi_bar``, averaged over the group's targets, is
    ``|F[g, f, a] @ (xi_bar, 0, ..., -1)|^2``.
    """
    n_folds = len(stats)
    n_alphas, _, p, _ = stats[0].R.shape
    F = np.empty((len(groups), n_folds, n_alphas, p, p))
    for g, targets in enumerate(groups):
        for f, s in enumerate(stats):
            R = s.R[:, targets] / np.sqrt(len(targets))  # (A, t_g, p, p)
            if len(targets) == 1:
                F[g, f] = R[:, 0]
            else:
                F[g, f] = np.linalg.qr(R.reshape(n_alphas, -1, p), mode="r")
    return F


def _subset_errors(F, masks, max_degree, Phi=None):
    """Fit ``xi_bar`` on each subset of folds, for every degree up to the max.

    ``F``: (G, K, A, p, p); ``masks``: (S, K) booleans, True for the folds
    whose statistics fit ``xi_bar``; ``Phi``: (A, m, p - 1) or None, the
    filter's powers on the training spectra when it is kept in [0, 1].
    Returns ``x`` (list over degrees of arrays (G, A, S, degree + 1)) and
    ``err`` (G, A, S, max_degree + 1, K): every fold's error at each subset's
    solution.
    """
    G, K, A, p, _ = F.shape
    masks = np.asarray(masks, dtype=float)
    S = masks.shape[0]
    # (G, A, S, K * p, p): excluded folds contribute zero rows.
    Fs = F.transpose(0, 2, 1, 3, 4)[:, :, None] * masks[None, None, :, :, None, None]
    Fs = Fs.reshape(G, A, S, K * p, p)
    v = Fs[..., -1]
    xs, errs = [], []
    for j in range(max_degree + 1):
        M = Fs[..., : j + 1]
        x = constrained_lstsq(M, v)
        if Phi is not None and j > 0:
            P = np.broadcast_to(
                Phi[None, :, None, :, : j + 1], (G, A, S) + Phi.shape[1:2] + (j + 1,)
            )
            x = _shrinking_lstsq(
                M.reshape(-1, *M.shape[-2:]),
                v.reshape(-1, v.shape[-1]),
                P.reshape(-1, *P.shape[-2:]),
                x.reshape(-1, j + 1),
            ).reshape(x.shape)
        xs.append(x)
        full = np.zeros(x.shape[:-1] + (p,))
        full[..., : j + 1] = x
        full[..., -1] = -1.0
        # (G, A, S, K, p) residual vectors for every subset's solution.
        res = np.einsum("gkaij,gasj->gaski", F, full)
        errs.append(np.sum(res**2, axis=-1))
    return xs, np.stack(errs, axis=3)


def filter_powers(lams, alphas, max_steps, n_points=64):
    """``Phi[a, i, m] = h_i ** (m + 1)`` on the training spectra, per alpha.

    ``lams``: the eigenvalues of every training fold. Up to ``n_points``
    eigenvalues (always the smallest and largest) stand for all of them.
    """
    lam = np.unique(np.concatenate([np.ravel(x) for x in lams]))
    lam = lam[lam > 0]
    if lam.size > n_points:
        lam = lam[np.unique(np.linspace(0, lam.size - 1, n_points).astype(int))]
    h = lam[None, :] / (lam[None, :] + np.asarray(alphas)[:, None])
    return h[..., None] ** np.arange(1, max_steps + 2)


@dataclass
class SelectionResult:
    """What the closed-form selection found, for one group of targets.

    Errors are normalised as the score expects (mean squared error per
    validation weight, or the fraction of unexplained variance for R^2).
    """

    candidates: list  # [(n_steps, alpha_index, shrink)]
    xi_bar: list  # per candidate, fitted on all folds: (n_steps + 1,)
    raw_errors: np.ndarray  # (n_candidates, K)
    honest_errors: np.ndarray  # (n_candidates, K): cross-fitted
    chosen: int  # index into candidates
    nested_errors: np.ndarray  # (K,): nested estimate of the rule, or NaN
    rule: str  # the rule actually applied ("raw" when no cross-fitting exists)


def _apply_rule(rule, raw, honest, level, alpha_idx, tol, eligible):
    """Index of the chosen candidate.

    ``raw``, ``honest``: (C, K') errors on the folds available; ``level``:
    each candidate's complexity (0 for ridge); ``tol``: errors within ``tol``
    of each other are ties, won by the simplest candidate (lowest level, then
    largest alpha).
    """
    score = raw if rule == "raw" else honest
    mean = score.mean(axis=1)
    idx = np.flatnonzero(eligible)

    def best(among):
        m = mean[among]
        tied = among[m <= m.min() + tol]
        # Lowest level, then largest alpha (alpha indices increase with alpha).
        return tied[np.lexsort((-alpha_idx[tied], level[tied]))[0]]

    if rule not in _Z or score.shape[1] < 2:
        return int(best(idx))
    n_folds, z = score.shape[1], _Z[rule]
    if rule == "stepwise":
        levels = np.unique(level[idx])
        current = best(idx[level[idx] == levels[0]])
        for lev in levels[1:]:
            challenger = best(idx[level[idx] == lev])
            d = score[challenger] - score[current]
            se = d.std(ddof=1) / np.sqrt(n_folds)
            if d.mean() + z * se < -tol:
                current = challenger
        return int(current)
    # The simplest level holding a candidate within one standard error (of
    # the paired per-fold differences) of the best; its best candidate.
    top = best(idx)
    d = score[idx] - score[top]
    se = d.std(ddof=1, axis=1) / np.sqrt(n_folds)
    within = idx[d.mean(axis=1) <= z * se + tol]
    lowest = level[within].min()
    return int(best(within[level[within] == lowest]))


def select(
    F, steps, *, rule, tol, eligible_fn=None, nested=True, Phi=None, families=None
):
    """Score every candidate of one group of targets and choose.

    Parameters
    ----------
    F : ndarray of shape (K, A, p, p)
        Per-fold factors of one target group (:func:`pool_targets`).
    steps : list of int
        Candidate numbers of steps.
    rule : {"stepwise", "one_se", "honest", "raw"}
    tol : float
        Ties (see :func:`_apply_rule`).
    eligible_fn : callable, default=None
        ``xi_bar -> bool``: whether a candidate fitted on all folds may be
        chosen (for example, is representable by per-step ``xi``).
    nested : bool, default=True
        Also compute the nested estimate of the rule (``K`` more selections).
    Phi : ndarray of shape (A, m, p - 1), default=None
        :func:`filter_powers`; needed for shrinking filters.
    families : tuple of bool, default=(False,)
        Which filter families to offer for ``k >= 1``: ``False`` free,
        ``True`` kept in [0, 1] on the training spectra.

    Returns
    -------
    SelectionResult
    """
    families = (False,) if families is None else tuple(families)
    K, A, p, _ = F.shape
    max_steps = max(steps)
    cands = [
        (k, a, shrink)
        for k in steps
        for shrink in ((False,) if k == 0 else families)
        for a in range(A)
    ]
    n_c = len(cands)
    level = np.array([0 if k == 0 else 2 * k - 1 + (not sh) for k, _, sh in cands])
    alpha_idx = np.array([a for _, a, _ in cands])
    s_idx = {k: i for i, k in enumerate(steps)}

    full = np.ones(K, dtype=bool)
    masks = [full]
    leave1 = {}
    for j in range(K):
        m = full.copy()
        m[j] = False
        leave1[j] = len(masks)
        masks.append(m)
    leave2 = {}
    if nested and K >= 3:
        for i, j in combinations(range(K), 2):
            m = full.copy()
            m[[i, j]] = False
            leave2[(i, j)] = leave2[(j, i)] = len(masks)
            masks.append(m)
    masks = np.array(masks)
    fits = {}
    for shrink in families:
        xs, err = _subset_errors(F[None], masks, max_steps, Phi if shrink else None)
        xs = [x[0] for x in xs]  # (A, S, deg + 1)
        err = err[0]  # (A, S, D, K)
        # Degree used by candidate (k, a) fitted on subset s: the best, on
        # the subset's own folds, of the degrees up to k.
        insample = np.einsum("asdk,sk->sad", err, masks.astype(float))
        picks = np.stack(
            [np.argmin(insample[:, :, : k + 1], axis=2) for k in steps], axis=1
        )  # (S, n_steps, A)
        fits[shrink] = (xs, err, picks)
    if False not in fits:  # ridge comes from the free solve, whatever families
        xs, err = _subset_errors(F[None], masks, 0)
        fits[False] = ([x[0] for x in xs], err[0], np.zeros((len(masks), 1, A), int))
        s_idx_free = {0: 0}
    else:
        s_idx_free = s_idx

    def pick(c, s):
        k, a, shrink = cands[c]
        xs, err, picks = fits[shrink]
        deg = picks[s, (s_idx if shrink else s_idx_free)[k], a]
        return xs, err, deg

    def cand_err(s, folds):
        """(C, len(folds)) errors on ``folds`` of every candidate fitted on s."""
        out = np.empty((n_c, len(folds)))
        for c in range(n_c):
            _, err, deg = pick(c, s)
            out[c] = err[cands[c][1], s, deg, folds]
        return out

    def cand_xi(s, c):
        xs, _, deg = pick(c, s)
        x = np.zeros(cands[c][0] + 1)
        x[: deg + 1] = xs[deg][cands[c][1], s]
        return x

    all_folds = np.arange(K)
    raw = cand_err(0, all_folds)
    if K >= 2:
        honest = np.empty_like(raw)
        for j in range(K):
            honest[:, j] = cand_err(leave1[j], np.array([j]))[:, 0]
    else:
        honest = np.full_like(raw, np.nan)
    xi_bars = [cand_xi(0, c) for c in range(n_c)]
    eligible = np.ones(n_c, dtype=bool)
    if eligible_fn is not None:
        eligible = np.array([bool(eligible_fn(x)) for x in xi_bars])
        eligible[level == 0] = True
    applied = rule if K >= 2 else "raw"
    chosen = _apply_rule(applied, raw, honest, level, alpha_idx, tol, eligible)

    nested_errors = np.full(K, np.nan)
    if nested and K >= 2:
        every = np.ones(n_c, dtype=bool)
        for j in range(K):
            others = all_folds[all_folds != j]
            s = leave1[j]
            raw_in = cand_err(s, others)
            if leave2:
                hon_in = np.column_stack(
                    [cand_err(leave2[(j, i)], np.array([i]))[:, 0] for i in others]
                )
            else:
                hon_in = raw_in
            inner_rule = applied if len(others) >= 2 else "raw"
            c = _apply_rule(inner_rule, raw_in, hon_in, level, alpha_idx, tol, every)
            nested_errors[j] = cand_err(s, np.array([j]))[c, 0]
    return SelectionResult(
        candidates=cands,
        xi_bar=xi_bars,
        raw_errors=raw,
        honest_errors=honest,
        chosen=chosen,
        nested_errors=nested_errors,
        rule=applied,
    )
