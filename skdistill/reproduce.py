"""Reproduce the experiments of Pareek, Oh and Du (2024) with one command.

Usage::

    python -m skdistill.reproduce table1 --out DIR
    python -m skdistill.reproduce separation --out DIR

``table1`` fits ridge and 1- to 4-step self-distillation to the three UCI data
sets with the paper's protocol (one training, one validation and one test
split, in file order) and prints the test errors next to the paper's
Table 1, with 5-fold :class:`~skdistill.SelfDistillCV` beside them.
``separation`` evaluates the exact fixed-design risks of
:mod:`skdistill.theory` on the synthetic problems of the paper's Figures 2
and 3. Each writes a PNG figure (matplotlib, Agg backend) and a JSON file
into ``DIR``: the numbers under ``"results"``, what each of them means under
``"keys"`` and the versions of Python and the packages under ``"versions"``.

The UCI files are read from the cache of :mod:`skdistill.datasets` (set
``SKDISTILL_DATA`` or pass ``--data-home``) and downloaded when missing. A
missing file that cannot be downloaded, a missing matplotlib (pass
``--no-plot`` to write only the JSON file) or an unwritable ``--out`` is
reported in one line before the experiment starts. ``--help`` lists the
options and their defaults.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from http.client import HTTPException
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold, PredefinedSplit

from ._cv import SelfDistillCV
from ._filter import xi_bar_to_xi
from ._linear import RepeatedSelfDistillationRegressor
from .datasets import (
    fetch_air_quality,
    fetch_airfoil_self_noise,
    fetch_appliances_energy,
    make_self_distillation_regression,
)
from .theory import _constrained_least_squares, _powers, _risk, _spectrum

__all__ = ["main", "separation", "table1"]

# Test MSE in standardised units, Pareek, Oh and Du (2024), Table 1:
# optimal ridge, optimal 1-step and optimal 2-step self-distillation.
PAPER_TABLE1 = {
    "Air Quality": (2.01, 1.99, 1.06),
    "Airfoil": (1.34, 1.22, 1.19),
    "AEP": (0.62, 0.62, 0.63),
}
TABLE1_ALPHAS = 10.0 ** np.arange(0.0, 4.01, 0.5)


class _Progress:
    """One line per event on stderr, with the elapsed time."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.start = time.perf_counter()

    def __call__(self, message):
        if self.verbose:
            elapsed = time.perf_counter() - self.start
            print(f"[{elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


def _table1_data(data_home):
    """The three regression problems of Table 1, rows in file order."""
    X, y = fetch_air_quality(data_home=data_home, return_X_y=True)
    yield "Air Quality", X, y
    X, y = fetch_airfoil_self_noise(data_home=data_home, return_X_y=True)
    yield "Airfoil", X, y
    X, y = fetch_appliances_energy(data_home=data_home, return_X_y=True)
    yield "AEP", X[::6], y[::6]  # the hourly series


def _split_standardise(X, y):
    """30/30/40 split in file order, standardised with training statistics."""
    n = X.shape[0]
    a, b = int(np.floor(0.3 * n)), int(np.floor(0.6 * n))
    X_mean, X_std = X[:a].mean(axis=0), X[:a].std(axis=0)
    y_mean, y_std = y[:a].mean(), y[:a].std()
    X = (X - X_mean) / X_std
    y = (y - y_mean) / y_std
    return (X[:a], y[:a]), (X[a:b], y[a:b]), (X[b:], y[b:])


def _filter_coefs(svd, alpha, n_steps):
    """Coefficients (d, k + 1) of the pure m-fold filters ``h^(m+1)``."""
    s, Vt, Uty = svd
    P = _powers(s**2, alpha, n_steps)  # (r, k + 1)
    return Vt.T @ (P / s[:, None] * Uty[:, None])


def _select_on_validation(svd, val, alphas, n_steps):
    """Best ``(alpha, xi_bar)`` on the validation split, exactly.

    For a fixed ``alpha`` the validation predictions of the k-step student
    are ``Z @ xi_bar``, column ``m`` of ``Z`` being the predictions of the
    pure m-fold filter ``h^(m+1)`` fitted on the training split, so the best
    ``xi_bar`` with ``sum(xi_bar) = 1`` is a constrained least-squares solve.
    """
    X_val, y_val = val
    best = (np.inf, None, None)
    for alpha in alphas:
        Z = X_val @ _filter_coefs(svd, alpha, n_steps)
        xi_bar = _constrained_least_squares(Z, y_val)
        mse = np.mean((y_val - Z @ xi_bar) ** 2)
        if mse < best[0]:
            best = (mse, alpha, xi_bar)
    return best


def _fit_quietly(search, X, y):
    """Fit a search, turning its warnings (alpha at a grid edge) into notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(X, y)
    return sorted({str(w.message).split(".")[0] for w in caught})


def table1(data_home=None, max_steps=4, verbose=True):
    """Reproduce Table 1 of Pareek, Oh and Du (2024).

    For each data set the rows are split in file order into the first 30%
    (training), the next 30% (validation) and the last 40% (test); features
    and target are standardised with the training mean and population
    standard deviation. For each number of steps ``k``,
    :class:`~skdistill.SelfDistillCV` with a
    :class:`~sklearn.model_selection.PredefinedSplit` (train on the training
    split, validate on the validation split) and ``selection="raw"`` (the
    best validation error: the paper's protocol; one split leaves nothing to
    cross-fit) chooses ``alpha`` from ``10 ** {0, 0.5, ..., 4}`` and ``xi``
    (exactly, for each alpha), and
    :class:`~skdistill.RepeatedSelfDistillationRegressor` with those values
    is fitted on the training split and scored on the test split. The same
    choice is also made by a separate, direct optimiser of the validation
    error (the ``*_check`` entries), as an independent check.

    Beyond the paper's protocol, ``SelfDistillCV`` with its defaults
    (``selection="stepwise"``) and ``KFold(5)`` (unshuffled: five contiguous
    blocks) on training + validation, ``n_steps`` from 0 to ``max_steps``
    and ridge alone, refitted on both, is scored on the same test split.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache directory of the UCI files, see :mod:`skdistill.datasets`.
    max_steps : int, default=4
        Largest number of distillation steps ``k``.
    verbose : bool, default=True
        Report progress on stderr.

    Returns
    -------
    results : dict
        For each data set, ``"steps"``: a list over ``k = 0..max_steps`` of
        dicts with ``test_mse``, ``val_mse``, ``alpha``, ``xi``, ``xi_bar``
        (from ``SelfDistillCV``), and ``test_mse_check``, ``val_mse_check``,
        ``alpha_check``, ``xi_bar_check`` (from the direct optimiser) and
        ``test_mse_filter`` (the direct optimiser's filter evaluated from the
        training SVD, without converting to ``xi``); ``"cv5"`` and
        ``"cv5_ridge"``: dicts with ``test_mse``, ``alpha``, ``n_steps``.
        ``TABLE1_KEYS`` explains every key; the command line writes it
        into the JSON file with the versions of the packages.
    """
    progress = _Progress(verbose)
    progress(
        "k = 0..4: the paper's protocol, one validation split (alpha and xi "
        "chosen by the best validation MSE); then 5-fold SelfDistillCV"
    )
    results = {}
    for name, X, y in _table1_data(data_home):
        progress(f"{name}: n = {X.shape[0]}, d = {X.shape[1]}")
        train, val, test = _split_standardise(X, y)
        X_tv = np.vstack([train[0], val[0]])
        y_tv = np.concatenate([train[1], val[1]])
        split = PredefinedSplit(
            np.r_[np.full(train[0].shape[0], -1), np.zeros(val[0].shape[0])]
        )
        U, s, Vt = np.linalg.svd(train[0], full_matrices=False)
        svd = (s, Vt, U.T @ train[1])
        rows = []
        for k in range(max_steps + 1):
            search = SelfDistillCV(
                alphas=TABLE1_ALPHAS,
                n_steps=(k,),
                cv=split,
                refit=False,
                selection="raw",
            )
            notes = _fit_quietly(search, X_tv, y_tv)
            reg = RepeatedSelfDistillationRegressor(
                alpha=search.cv_alpha_, n_steps=k, xi=search.xi_
            ).fit(*train)
            test_mse = float(np.mean((test[1] - reg.predict(test[0])) ** 2))

            val_mse, alpha, xi_bar = _select_on_validation(svd, val, TABLE1_ALPHAS, k)
            check = RepeatedSelfDistillationRegressor(
                alpha=alpha, n_steps=k, xi=xi_bar_to_xi(xi_bar), solver="svd"
            ).fit(*train)
            direct = test[0] @ _filter_coefs(svd, alpha, k) @ xi_bar
            rows.append(
                {
                    "n_steps": k,
                    "test_mse": test_mse,
                    "val_mse": float(-search.best_score_),
                    "alpha": float(search.cv_alpha_),
                    "xi": np.asarray(search.xi_).tolist(),
                    "xi_bar": np.asarray(search.xi_bar_).tolist(),
                    "test_mse_check": float(
                        np.mean((test[1] - check.predict(test[0])) ** 2)
                    ),
                    "test_mse_filter": float(np.mean((test[1] - direct) ** 2)),
                    "val_mse_check": float(val_mse),
                    "alpha_check": float(alpha),
                    "xi_bar_check": xi_bar.tolist(),
                }
            )
            progress(
                f"{name}: k = {k}, alpha = {search.cv_alpha_:g}, validation MSE "
                f"{-search.best_score_:.4f}, test MSE {test_mse:.4f}"
                + "".join(f" ({note})" for note in notes)
            )
        entry = {"steps": rows}
        for key, steps in (("cv5", range(max_steps + 1)), ("cv5_ridge", (0,))):
            search = SelfDistillCV(
                alphas=TABLE1_ALPHAS, n_steps=tuple(steps), cv=KFold(5)
            )
            _fit_quietly(search, X_tv, y_tv)
            entry[key] = {
                "test_mse": float(np.mean((test[1] - search.predict(test[0])) ** 2)),
                "alpha": float(search.best_params_["alpha"]),
                "n_steps": int(search.n_steps_),
            }
            progress(
                f"{name}: 5-fold SelfDistillCV (n_steps <= {max(steps)}) on "
                f"train+validation: k = {search.n_steps_}, test MSE "
                f"{entry[key]['test_mse']:.4f}"
            )
        results[name] = entry
    return results


def _format_table1(results):
    max_steps = len(next(iter(results.values()))["steps"]) - 1
    head = (
        f"{'data set':<12}"
        + "".join(f"{f'k={k}':>8}" for k in range(max_steps + 1))
        + f"{'cv5 ridge':>11}{'cv5 k<=' + str(max_steps):>10}"
    )
    lines = [
        "Test MSE (standardised units); k = 0 is ridge. Paper: Table 1 of "
        "Pareek, Oh and Du (2024).",
        "k columns: the paper's protocol (train 30%, choose alpha and xi on the "
        "next 30%, test on the last 40%, in file order).",
        "cv5 columns: SelfDistillCV's default rule, KFold(5) on train + "
        "validation, refit on both (chosen k in brackets).",
        head,
    ]
    for name, entry in results.items():
        ours = "".join(f"{row['test_mse']:8.3f}" for row in entry["steps"])
        cv5 = entry["cv5"]
        extra = (
            f"{entry['cv5_ridge']['test_mse']:11.3f}"
            f"{cv5['test_mse']:7.3f} ({cv5['n_steps']})"
        )
        paper = "".join(f"{v:8.2f}" for v in PAPER_TABLE1[name])
        lines.append(f"{name:<12}{ours}{extra}")
        lines.append(f"{'  paper':<12}{paper}")
    lines += [
        "The k columns take the best validation error, as the paper does: with "
        "one split",
        "nothing can check a student's fitted xi on other rows. The default "
        "rule of the cv5",
        "columns keeps ridge unless a student's cross-fitted errors (xi fitted "
        "on other folds)",
        "beat ridge's by more than two standard errors over the folds; where "
        "it shows (0), no",
        "student did, and the column equals cv5 ridge (ridge at the alpha that "
        "5-fold CV chose).",
    ]
    return "\n".join(lines)


def _plot_table1(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(results)
    n_k = len(results[names[0]]["steps"])
    width = 0.8 / n_k
    for k in range(n_k):
        x = np.arange(len(names)) + (k - (n_k - 1) / 2) * width
        ax.bar(
            x,
            [results[n]["steps"][k]["test_mse"] for n in names],
            width,
            label=f"k={k}",
        )
    for i, name in enumerate(names):
        for k, value in enumerate(PAPER_TABLE1[name]):
            x = i + (k - (n_k - 1) / 2) * width
            ax.plot(x, value, "k_", markersize=12)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("test MSE (standardised)")
    ax.set_title("Table 1 reproduced (black marks: paper)")
    ax.legend(ncols=n_k, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# Figures 2 and 3: exact risks from skdistill.theory.


def _best_over_alpha(risk_of_alpha, alphas):
    """Minimum of a risk over a log grid, refined by a bounded search."""
    from scipy.optimize import minimize_scalar

    values = np.array([risk_of_alpha(a) for a in alphas])
    i = int(np.argmin(values))
    lo = np.log(alphas[max(i - 1, 0)])
    hi = np.log(alphas[min(i + 1, len(alphas) - 1)])
    res = minimize_scalar(
        lambda t: risk_of_alpha(np.exp(t)), bounds=(lo, hi), method="bounded"
    )
    return min(values[i], res.fun)


def separation(ranks=(2, 3, 5, 10, 20, 50, 100), verbose=True):
    """The paper's Figure 2 and 3 experiments through :mod:`skdistill.theory`.

    Figure 2: ``d = r = 4``, singular values ``1/j``, ``coef = v_1``, noise
    0.125; the oracle-optimal risk of ``k = 0..4`` steps as a function of
    ``alpha``, against the Theorem 4 lower bound.

    Figure 3: ``d = n = 100``, noise 0.1, rank ``r`` with power-law singular
    values ``s_j = j^(-beta)`` from 1 down to ``s_min`` in {0.8, 0.5}
    (``beta = log(1 / s_min) / log(r)``), ``coef = v_1``; the ratio of the
    best ridge risk (over alpha) to the lower bound, which ``r`` steps reach
    at every alpha, and of the best 1-step risk to the bound.

    Parameters
    ----------
    ranks : sequence of int, default=(2, 3, 5, 10, 20, 50, 100)
        The ranks ``r`` of Figure 3, each between 2 and 100.
    verbose : bool, default=True
        Report progress on stderr.

    Returns
    -------
    results : dict
        ``"figure2"`` and ``"figure3"`` with the computed curves.
    """
    progress = _Progress(verbose)
    d, noise = 4, 0.125
    X, _, coef = make_self_distillation_regression(
        n_samples=d,
        n_features=d,
        singular_values=1.0 / np.arange(1, d + 1),
        noise=noise,
        random_state=0,
    )
    lam, w, n = _spectrum(X, coef)
    bound = float(np.sum(noise**2 * w / (w + noise**2)) / n)
    alphas = np.logspace(-2, 2, 41)
    curves = {}
    for k in range(d + 1):
        risks = []
        for alpha in alphas:
            dd = np.sqrt(w + noise**2)
            xi_bar = _constrained_least_squares(
                dd[:, None] * _powers(lam, alpha, k), w / dd
            )
            risks.append(_risk(lam, w, n, noise, alpha, xi_bar))
        curves[k] = risks
        gap = max(r / bound - 1 for r in risks)
        progress(f"Figure 2: k = {k}, largest relative gap to the bound {gap:.2e}")
    figure2 = {
        "alphas": alphas.tolist(),
        "risk": {str(k): v for k, v in curves.items()},
        "lower_bound": bound,
    }

    n3, noise3 = 100, 0.1
    ranks = [int(r) for r in ranks]
    grid = np.logspace(-6, 4, 81)
    figure3 = {"ranks": ranks}
    for s_min in (0.8, 0.5):
        ridge_ratio, one_step_ratio = [], []
        for r in ranks:
            beta = np.log(1 / s_min) / np.log(r)
            X, _, coef = make_self_distillation_regression(
                n_samples=n3, n_features=n3, rank=r, decay=beta, noise=noise3,
                random_state=0,
            )  # fmt: skip
            lam, w, n = _spectrum(X, coef)
            bound = float(np.sum(noise3**2 * w / (w + noise3**2)) / n)
            ridge = _best_over_alpha(
                lambda a, lam=lam, w=w, n=n: _risk(lam, w, n, noise3, a, np.ones(1)),
                grid,
            )

            def one_step(a, lam=lam, w=w, n=n):
                dd = np.sqrt(w + noise3**2)
                xb = _constrained_least_squares(
                    dd[:, None] * _powers(lam, a, 1), w / dd
                )
                return _risk(lam, w, n, noise3, a, xb)

            ridge_ratio.append(ridge / bound)
            one_step_ratio.append(_best_over_alpha(one_step, grid) / bound)
            progress(
                f"Figure 3: s_min = {s_min}, r = {r}: best ridge / bound = "
                f"{ridge_ratio[-1]:.2f}, best 1-step / bound = {one_step_ratio[-1]:.2f}"
            )
        figure3[str(s_min)] = {"ridge": ridge_ratio, "one_step": one_step_ratio}
    return {"figure2": figure2, "figure3": figure3}


def _format_separation(results):
    f2 = results["figure2"]
    bound = f2["lower_bound"]
    lines = [
        "Figure 2 (d = r = 4, s_j = 1/j, coef = v_1, noise 0.125): "
        f"lower bound {bound:.6f}",
        f"{'alpha':>8}" + "".join(f"{f'k={k}':>10}" for k in range(len(f2["risk"]))),
    ]
    for i, alpha in enumerate(f2["alphas"]):
        if i % 10:
            continue
        lines.append(
            f"{alpha:8.2g}"
            + "".join(f"{f2['risk'][k][i] / bound:10.4f}" for k in f2["risk"])
        )
    lines.append("(risk / lower bound; k = 4 = r reaches the bound at every alpha)")
    f3 = results["figure3"]
    lines.append(
        "Figure 3 (d = n = 100, noise 0.1): best ridge risk / best r-step risk"
    )
    lines.append(f"{'r':>8}" + "".join(f"{r:>8}" for r in f3["ranks"]))
    for s_min in ("0.8", "0.5"):
        lines.append(
            f"{'s_min=' + s_min:>8}" + "".join(f"{v:8.2f}" for v in f3[s_min]["ridge"])
        )
    return "\n".join(lines)


def _plot_separation(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    f2 = results["figure2"]
    for k, risks in f2["risk"].items():
        ax1.loglog(f2["alphas"], risks, label=f"k={k}")
    ax1.axhline(f2["lower_bound"], color="k", ls="--", label="lower bound")
    ax1.set_xlabel("alpha")
    ax1.set_ylabel("excess risk (optimal xi)")
    ax1.set_title("d = r = 4, s_j = 1/j")
    ax1.legend(fontsize="small")
    f3 = results["figure3"]
    for s_min in ("0.8", "0.5"):
        ax2.plot(f3["ranks"], f3[s_min]["ridge"], "o-", label=f"ridge, s_min={s_min}")
        ax2.plot(
            f3["ranks"], f3[s_min]["one_step"], "s:", label=f"1-step, s_min={s_min}"
        )
    ax2.set_xscale("log")
    ax2.set_xlabel("rank r")
    ax2.set_ylabel("best risk / best r-step risk")
    ax2.set_title("d = 100, noise 0.1")
    ax2.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: What each entry of ``table1``'s results means (written into its JSON file).
TABLE1_KEYS = {
    "steps": "one entry per number of distillation steps k = 0..max_steps "
    "(k = 0 is ridge): the paper's protocol, train on the first 30% of the "
    "rows, choose alpha and xi by the best MSE on the next 30% (one split, "
    "SelfDistillCV(cv=PredefinedSplit, selection='raw')), test on the last 40%",
    "n_steps": "k, the number of distillation steps (0: ridge)",
    "test_mse": "test MSE (standardised target) of that choice, fitted on the "
    "training split",
    "val_mse": "its validation MSE",
    "alpha, xi, xi_bar": "the chosen penalty, per-step weights and filter coefficients",
    "*_check": "the same choice made by a direct optimiser of the validation "
    "error (a constrained least-squares solve per alpha), independent of "
    "SelfDistillCV: an internal check that the two agree",
    "test_mse_filter": "the check's filter evaluated from the training SVD, "
    "without converting xi_bar to per-step xi",
    "cv5": "SelfDistillCV with its default selection rule and KFold(5) "
    "(unshuffled) on training + validation, n_steps 0..max_steps, refitted on "
    "both and scored on the test split. The rule keeps ridge (n_steps 0) "
    "unless a student's cross-fitted fold errors beat ridge's by more than "
    "two standard errors",
    "cv5_ridge": "the same search with ridge alone (n_steps 0)",
}

#: What each entry of ``separation``'s results means.
SEPARATION_KEYS = {
    "figure2": "d = r = 4, s_j = 1/j, coef = v_1, noise 0.125: the excess risk "
    "of the best k-step student at each alpha (risk[k]) and the lower bound",
    "figure3": "d = n = 100, noise 0.1: best ridge risk and best 1-step risk, "
    "each divided by the lower bound (which r steps reach), for each rank r "
    "and smallest singular value s_min",
}


def _versions():
    """Versions of Python and of the packages the numbers depend on."""
    import platform

    import scipy
    import sklearn

    from . import __version__

    return {
        "skdistill": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }


def _json_document(experiment, results):
    """The JSON file: the results, what their keys mean, and the versions."""
    keys = TABLE1_KEYS if experiment == "table1" else SEPARATION_KEYS
    return {
        "experiment": experiment,
        "versions": _versions(),
        "keys": keys,
        "results": results,
    }


_PROG = "python -m skdistill.reproduce"

_EPILOG = """\
experiments:
  table1      Ridge and 1- to MAX_STEPS-step self-distillation on the three UCI
              data sets of the paper (Air Quality, Airfoil, AEP) with its
              protocol, printed next to the paper's Table 1, plus SelfDistillCV
              with 5-fold CV. Needs the UCI files: they are read from
              --data-home, else from the directory in SKDISTILL_DATA, else
              from scikit-learn's data home, and downloaded (sha256-checked)
              when missing. About 5 seconds on two cores once
              the files are there.
  separation  The exact excess risks of the paper's Figures 2 and 3
              (skdistill.theory, no data, no download). Seconds.

outputs:
  Each writes EXPERIMENT.json (the numbers, with "keys" explaining them and
  the versions of Python and the packages) and EXPERIMENT.png (a figure,
  needs matplotlib: pip install matplotlib; or pass --no-plot)
  into --out, and prints a table on stdout; progress goes to stderr.

examples:
  python -m skdistill.reproduce separation --out results
  SKDISTILL_DATA=/path/to/uci python -m skdistill.reproduce table1 --out results
"""


class _HelpFormatter(
    argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter
):
    """Shows defaults and keeps the epilog's line breaks."""


class _CommandLineError(Exception):
    """A failure reported as one line on stderr, without a traceback."""


def _check_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise _CommandLineError(
            "the figure needs matplotlib, which is not installed: install it "
            "with pip install matplotlib (or, in a clone of skdistill, pip "
            "install '.[plotting]'), or pass --no-plot to write only the numbers."
        ) from exc


def _check_table1_data(data_home):
    """Make sure the three UCI files are available, before any work is done."""
    from .datasets._uci import _AIR_QUALITY, _AIRFOIL, _APPLIANCES, _fetch_file

    for remote in (_AIR_QUALITY, _AIRFOIL, _APPLIANCES):
        try:
            _fetch_file(remote, data_home, download_if_missing=True)
        except (OSError, HTTPException) as exc:
            where = (
                f"--data-home {data_home}"
                if data_home is not None
                else (
                    f"SKDISTILL_DATA={os.environ['SKDISTILL_DATA']}"
                    if os.environ.get("SKDISTILL_DATA")
                    else "scikit-learn's data home (SKDISTILL_DATA is not set)"
                )
            )
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise _CommandLineError(
                f"table1 needs the UCI file {remote.filename} from {where}, "
                f"which failed: {reason}. Put "
                "AirQualityUCI.csv, airfoil_self_noise.dat and "
                "energydata_complete.csv (from archive.ics.uci.edu) in a "
                "directory and set SKDISTILL_DATA to it (or pass --data-home), "
                "or run once with internet access to download them."
            ) from exc


def _prepare_out(out):
    """Create ``out`` and check that files can be written there."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise _CommandLineError(
            f"cannot write the results into --out {out}: "
            f"{exc.strerror or exc}. Choose a writable directory."
        ) from exc


def main(argv=None):
    """Command-line entry point: ``python -m skdistill.reproduce``.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments; ``sys.argv[1:]`` when None. ``--help`` lists them.

    Returns
    -------
    results : dict
        The numbers written to the JSON file (its ``"results"``).
    """
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=__doc__.splitlines()[0],
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "experiment",
        choices=["table1", "separation"],
        help="which experiment to run (see below)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("."), help="directory for the outputs"
    )
    parser.add_argument(
        "--data-home",
        default=None,
        help="directory of the UCI files (table1); when not given, the "
        "directory in SKDISTILL_DATA, else scikit-learn's data home",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=4,
        help="largest number of distillation steps k (table1)",
    )
    parser.add_argument(
        "--ranks",
        type=int,
        nargs="+",
        default=[2, 3, 5, 10, 20, 50, 100],
        help="ranks r of Figure 3 (separation)",
    )
    parser.add_argument(
        "--no-plot", action="store_true", help="write no figure (no matplotlib)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    args = parser.parse_args(argv)
    try:
        # Everything that can fail for a reason outside the computation is
        # checked before it starts, so that no minutes are lost to a missing
        # package, missing data or an unwritable folder.
        if not args.no_plot:
            _check_matplotlib()
        if args.experiment == "table1":
            _check_table1_data(args.data_home)
        _prepare_out(args.out)
        if args.experiment == "table1":
            results = table1(args.data_home, args.max_steps, verbose=not args.quiet)
            text = _format_table1(results)
            plot = _plot_table1
        else:
            results = separation(args.ranks, verbose=not args.quiet)
            text = _format_separation(results)
            plot = _plot_separation
        print(text)
        base = args.out / args.experiment
        try:
            Path(f"{base}.json").write_text(
                json.dumps(_json_document(args.experiment, results), indent=1)
            )
            if not args.no_plot:
                plot(results, Path(f"{base}.png"))
        except OSError as exc:
            raise _CommandLineError(
                f"cannot write the results into --out {args.out}: "
                f"{exc.strerror or exc}."
            ) from exc
    except _CommandLineError as exc:
        print(f"{_PROG} {args.experiment}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    written = ".json" if args.no_plot else ".json and .png"
    print(f"Wrote {base}{written}")
    return results


if __name__ == "__main__":
    main()
