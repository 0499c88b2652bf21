"""Synthetic families with an exact population risk, and their oracles.

Each instance draws ``n`` rows ``x = Q diag(sqrt(lam)) z`` with ``lam_j =
j^(-decay)`` and ``y = x @ coef + noise * e``. ``z`` is standard normal in a
*rotated* design (``Q`` a random orthogonal matrix) and has independent
Student-t (5 degrees of freedom, unit variance) coordinates in a
*coordinate* design (``Q = I``); ridge and its students are equivariant
under rotations, so the heavy tails are what makes the two designs differ.
The covariance ``Sigma = Q diag(lam) Q^T`` and ``coef`` are known, and
``E x = 0``, so the excess risk of a linear model ``(w, b)`` is exact:

    (w - coef)^T Sigma (w - coef) + b^2.

Positive controls put the signal along one, two or three top eigenvectors
(equal weights) or along a middle one; negative controls draw ``coef`` at
random, isotropic in the eigenbasis, where ridge with the right penalty is
the Bayes rule and no filter beats it on average. ``coef`` is scaled to a
signal variance ``coef^T Sigma coef = 1``; ``snr = 1 / noise^2``.

The oracles are tuned on the true risk: the oracle ridge minimises it over
``alpha``, the oracle ``k``-step student over ``alpha`` and ``xi_bar``. For a
fixed ``alpha`` the fitted coefficients and intercept are linear in
``xi_bar`` (each step's filter ``h^(m+1)`` applied to the sample's
least-squares fit), so the risk is a quadratic in ``xi_bar``, minimised
under ``sum(xi_bar) = 1`` by a small least-squares solve (see
``skdistill/theory.py`` for the fixed-design version).
"""

from dataclasses import dataclass

import numpy as np

#: Spectrum decay, design, d / n, signal-to-noise ratio and signal placement.
#: ``half`` says whether the family was used to choose among the rules
#: ("design") or only to report them ("report").
FAMILIES = {
    # Positive controls (aligned signal).
    "top1 j^-1 rot d/n=.1 snr=1": dict(
        decay=1.0, design="rot", ratio=0.1, snr=1.0, signal="top1", half="design"
    ),
    "top2 j^-.5 coord d/n=.05 snr=4": dict(
        decay=0.5, design="coord", ratio=0.05, snr=4.0, signal="top2", half="design"
    ),
    "top3 j^-2 rot d/n=.2 snr=.25": dict(
        decay=2.0, design="rot", ratio=0.2, snr=0.25, signal="top3", half="design"
    ),
    "mid j^-1 coord d/n=.02 snr=1": dict(
        decay=1.0, design="coord", ratio=0.02, snr=1.0, signal="mid", half="design"
    ),
    "top1 j^-2 coord d/n=.5 snr=16": dict(
        decay=2.0, design="coord", ratio=0.5, snr=16.0, signal="top1", half="report"
    ),
    "top1 j^-.5 coord d/n=.2 snr=1": dict(
        decay=0.5, design="coord", ratio=0.2, snr=1.0, signal="top1", half="report"
    ),
    "top2 j^-1 rot d/n=.02 snr=.25": dict(
        decay=1.0, design="rot", ratio=0.02, snr=0.25, signal="top2", half="report"
    ),
    "top3 j^-.5 rot d/n=.1 snr=4": dict(
        decay=0.5, design="rot", ratio=0.1, snr=4.0, signal="top3", half="report"
    ),
    "mid j^-1.5 rot d/n=.2 snr=4": dict(
        decay=1.5, design="rot", ratio=0.2, snr=4.0, signal="mid", half="report"
    ),
    # Negative controls (random coefficients).
    "random j^-1 rot d/n=.1 snr=1": dict(
        decay=1.0, design="rot", ratio=0.1, snr=1.0, signal="random", half="design"
    ),
    "random j^-2 coord d/n=.2 snr=4": dict(
        decay=2.0, design="coord", ratio=0.2, snr=4.0, signal="random", half="report"
    ),
    "random j^-.5 rot d/n=.5 snr=.25": dict(
        decay=0.5, design="rot", ratio=0.5, snr=0.25, signal="random", half="report"
    ),
    "random j^-1 coord d/n=.02 snr=16": dict(
        decay=1.0, design="coord", ratio=0.02, snr=16.0, signal="random", half="report"
    ),
}

#: Penalties of the oracles' search: the rules' grid and a wider, finer one.
ORACLE_ALPHAS = np.union1d(np.logspace(-4, 6, 81), np.logspace(-3, 5, 40))


def is_positive(family):
    """Whether ``family`` is a positive control (aligned signal)."""
    return FAMILIES[family]["signal"] != "random"


@dataclass
class Instance:
    """One draw of a family: data, population and the risk of a linear model."""

    X: np.ndarray
    y: np.ndarray
    lam: np.ndarray
    Q: np.ndarray
    coef: np.ndarray

    def risk(self, coef, intercept=0.0):
        """Exact excess risk of the model ``x -> x @ coef + intercept``."""
        delta = self.Q.T @ (np.asarray(coef, dtype=float).ravel() - self.coef)
        return float(delta @ (self.lam * delta) + float(np.ravel(intercept)[0]) ** 2)

    def risk_of(self, est):
        """Exact excess risk of a fitted linear estimator."""
        return self.risk(est.coef_, getattr(est, "intercept_", 0.0))


def _n_features(ratio, n):
    return max(5, int(round(ratio * n)))


def _eigen_coef(signal, d, rng):
    """Coefficients in the eigenbasis, before scaling."""
    beta = np.zeros(d)
    if signal == "random":
        return rng.normal(size=d)
    if signal == "mid":
        beta[d // 2] = 1.0
        return beta
    beta[: int(signal[-1])] = 1.0
    return beta


def make_instance(family, n, seed):
    """Draw ``n`` rows of ``family`` with ``seed``.

    Parameters
    ----------
    family : str
        A key of :data:`FAMILIES`.
    n : int
        Number of rows.
    seed : int
        Seed of the draw (design, coefficients and noise).

    Returns
    -------
    instance : Instance
    """
    spec = FAMILIES[family]
    d = _n_features(spec["ratio"], n)
    rng = np.random.default_rng([seed, n, sum(map(ord, family))])
    lam = np.arange(1, d + 1) ** -spec["decay"]
    if spec["design"] == "rot":
        Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        Z = rng.normal(size=(n, d))
    else:
        Q = np.eye(d)
        Z = rng.standard_t(5, size=(n, d)) / np.sqrt(5 / 3)
    beta = _eigen_coef(spec["signal"], d, rng)
    beta /= np.sqrt(beta @ (lam * beta))
    coef = Q @ beta
    X = (Z * np.sqrt(lam)) @ Q.T
    y = X @ coef + rng.normal(size=n) / np.sqrt(spec["snr"])
    return Instance(X=X, y=y, lam=lam, Q=Q, coef=coef)


def _filter_basis(inst, alpha, n_steps, svd):
    """Columns ``[Sigma^(1/2) w_m; b_m]`` of the ``m``-step pure filters."""
    U, s, Vt, x_mean, y_mean, yc = svd
    h = s**2 / (s**2 + alpha)
    uty = U.T @ yc
    cols = []
    for m in range(n_steps + 1):
        w = Vt.T @ (h ** (m + 1) / s * uty)
        b = y_mean - x_mean @ w
        cols.append(np.concatenate([np.sqrt(inst.lam) * (inst.Q.T @ w), [b]]))
    return np.column_stack(cols)


def _best_xi_bar(M, t):
    """Minimise ``||M xi - t||`` under ``sum(xi) = 1`` (by substitution)."""
    if M.shape[1] == 1:
        return np.ones(1)
    D = M[:, 1:] - M[:, :1]
    scale = np.linalg.norm(D, axis=0)
    scale[scale == 0] = 1.0
    z = np.linalg.lstsq(D / scale, t - M[:, 0], rcond=None)[0] / scale
    return np.concatenate([[1.0 - z.sum()], z])


def _centred_svd(inst):
    x_mean, y_mean = inst.X.mean(axis=0), inst.y.mean()
    Xc, yc = inst.X - x_mean, inst.y - y_mean
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    keep = s > s[0] * max(Xc.shape) * np.finfo(float).eps
    return U[:, keep], s[keep], Vt[keep], x_mean, y_mean, yc


def _target(inst):
    return np.concatenate([np.sqrt(inst.lam) * (inst.Q.T @ inst.coef), [0.0]])


def student_risk(inst, alpha, xi_bar):
    """Exact risk of the student ``(alpha, xi_bar)`` fitted on ``inst``.

    The quadratic the oracles minimise, at one point (to check it against a
    fitted estimator).
    """
    xi_bar = np.asarray(xi_bar, dtype=float)
    M = _filter_basis(inst, alpha, xi_bar.size - 1, _centred_svd(inst))
    return float(np.sum((M @ xi_bar - _target(inst)) ** 2))


def oracle_risks(inst, max_steps=2, alphas=ORACLE_ALPHAS):
    """Oracle excess risks of ridge and of 1..``max_steps``-step students.

    Parameters
    ----------
    inst : Instance
        The draw, with its population.
    max_steps : int, default=2
        Largest number of student steps.
    alphas : ndarray, default=ORACLE_ALPHAS
        Penalties searched.

    Returns
    -------
    risks : ndarray of shape (max_steps + 1,)
        ``risks[k]``: the smallest true risk over ``alpha`` (and ``xi_bar``)
        of the ``k``-step estimator; ``risks[0]`` is the oracle ridge.
    """
    svd, t = _centred_svd(inst), _target(inst)
    best = np.full(max_steps + 1, np.inf)
    for alpha in alphas:
        M = _filter_basis(inst, alpha, max_steps, svd)
        for k in range(max_steps + 1):
            xi_bar = _best_xi_bar(M[:, : k + 1], t)
            best[k] = min(best[k], float(np.sum((M[:, : k + 1] @ xi_bar - t) ** 2)))
    return best
