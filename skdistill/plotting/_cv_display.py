"""Cross-validated error of a self-distillation search against alpha."""

import numpy as np
from sklearn.exceptions import NotFittedError

from ._matplotlib import _import_pyplot

__all__ = ["SelfDistillCVDisplay"]


def _param_column(cv_results, name):
    """Values of ``param_<name>`` as floats, with NaN where the param is absent."""
    column = cv_results[f"param_{name}"]
    mask = np.ma.getmaskarray(column)
    data = np.ma.getdata(column)
    values = np.full(len(data), np.nan)
    values[~mask] = np.asarray(data[~mask], dtype=np.float64)
    return values


def _error_sign_and_label(scoring):
    """How to turn ``mean_test_score`` into an error, and what to call it."""
    if scoring is None:
        return -1.0, "CV mean squared error"
    if isinstance(scoring, str) and scoring.startswith("neg_"):
        return -1.0, "CV " + scoring[len("neg_") :].replace("_", " ")
    if isinstance(scoring, str):
        return 1.0, "CV " + scoring.replace("_", " ")
    return 1.0, "CV score"


class SelfDistillCVDisplay:
    """Cross-validated error against ``alpha``, one curve per step count.

    Draws the result of a search over ``alpha`` and ``n_steps`` (with ``xi``
    tuned for each pair), such as :class:`~skdistill.SelfDistillCV` or a
    :class:`~sklearn.model_selection.GridSearchCV` over
    :class:`~skdistill.RepeatedSelfDistillationRegressor`, and marks the
    candidate the search chose. When several candidates share an ``alpha``
    and a step count (an optuna search, or a grid over ``xi``), the best of
    them is drawn: the curve is the lowest error reached at that ``alpha``.

    It is usually created with :meth:`from_estimator` or
    :meth:`from_cv_results`; all parameters are stored as attributes.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,)
        Increasing penalties.
    n_steps : array-like of shape (n_step_counts,)
        Step counts, one curve each.
    cv_errors : array-like of shape (n_step_counts, n_alphas)
        Cross-validated error of each pair; NaN where no candidate was tried.
    best_alpha : float
        ``alpha`` of the chosen candidate, as validated (a refit may rescale it).
    best_n_steps : int
        Step count of the chosen candidate.
    best_error : float
        Cross-validated error of the chosen candidate.
    error_name : str, default="CV mean squared error"
        Label of the y axis.

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
        One line per step count.
    best_marker_ : matplotlib Line2D
        The marker on the chosen candidate.
    ax_ : matplotlib Axes
        Axes with the plot.
    figure_ : matplotlib Figure
        Figure containing the plot.

    See Also
    --------
    SpectralFilterDisplay : Filter factors of a fitted estimator.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skdistill import RepeatedSelfDistillationRegressor
    >>> from skdistill.plotting import SelfDistillCVDisplay
    >>> X, y = load_diabetes(return_X_y=True)
    >>> search = GridSearchCV(
    ...     RepeatedSelfDistillationRegressor(),
    ...     {"alpha": [0.01, 0.1, 1.0], "n_steps": [0, 1], "xi": [0.5]},
    ...     scoring="neg_mean_squared_error",
    ... ).fit(X, y)
    >>> display = SelfDistillCVDisplay.from_estimator(search)
    >>> display.cv_errors.shape
    (2, 3)
    >>> float(display.best_alpha), int(display.best_n_steps)
    (0.01, 0)
    """

    def __init__(
        self,
        *,
        alphas,
        n_steps,
        cv_errors,
        best_alpha,
        best_n_steps,
        best_error,
        error_name="CV mean squared error",
    ):
        self.alphas = alphas
        self.n_steps = n_steps
        self.cv_errors = cv_errors
        self.best_alpha = best_alpha
        self.best_n_steps = best_n_steps
        self.best_error = best_error
        self.error_name = error_name

    def plot(self, ax=None, *, line_kwargs=None, best_kwargs=None):
        """Draw the error curves and mark the chosen candidate.

        The ``alpha`` axis is logarithmic (symmetric-logarithmic, linear
        below the smallest positive alpha, when the grid holds 0). The error
        axis is logarithmic when the errors span more than a factor of 10,
        linear otherwise; change either with ``display.ax_.set_xscale`` or
        ``set_yscale``.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        line_kwargs : dict, default=None
            Keyword arguments for every curve's ``ax.plot``.
        best_kwargs : dict, default=None
            Keyword arguments for the marker's ``ax.plot``.

        Returns
        -------
        display : SelfDistillCVDisplay
            The display, with ``ax_``, ``figure_``, ``lines_`` and
            ``best_marker_`` set.
        """
        plt = _import_pyplot(f"{type(self).__name__}.plot")

        alphas = np.asarray(self.alphas, dtype=np.float64)
        errors = np.atleast_2d(np.asarray(self.cv_errors, dtype=np.float64))
        if ax is None:
            _, ax = plt.subplots()
        self.lines_ = []
        for k, row in zip(np.atleast_1d(self.n_steps), errors, strict=True):
            tried = ~np.isnan(row)
            kwargs = {
                "marker": ".",
                "label": f"{int(k)} step{'' if int(k) == 1 else 's'}",
                **(line_kwargs or {}),
            }
            (line,) = ax.plot(alphas[tried], row[tried], **kwargs)
            self.lines_.append(line)
        best_kwargs = {
            "marker": "*",
            "markersize": 14,
            "color": "black",
            "linestyle": "none",
            "label": (
                f"chosen: alpha={self.best_alpha:.3g}, {int(self.best_n_steps)} "
                f"step{'' if int(self.best_n_steps) == 1 else 's'}"
            ),
            **(best_kwargs or {}),
        }
        (self.best_marker_,) = ax.plot(
            [self.best_alpha], [self.best_error], **best_kwargs
        )
        # Penalties are searched on a log grid: a linear axis would crowd
        # every small alpha, often where the optimum is, into one corner. A
        # grid with alpha = 0 gets a symmetric-log axis, linear only below
        # the smallest positive alpha.
        positive = alphas[alphas > 0]
        if positive.size and np.all(alphas >= 0):
            if positive.size == alphas.size:
                ax.set_xscale("log")
            else:
                ax.set_xscale("symlog", linthresh=positive.min())
        # Errors spanning more than a decade get a log axis too, so that the
        # region of the minimum is not flattened by the largest errors.
        drawn = errors[np.isfinite(errors)]
        if drawn.size and drawn.min() > 0 and drawn.max() > 10 * drawn.min():
            ax.set_yscale("log")
        ax.set(xlabel="alpha", ylabel=self.error_name)
        ax.legend(loc="best")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_cv_results(
        cls,
        cv_results,
        *,
        best_index=None,
        scoring=None,
        n_steps=None,
        ax=None,
        line_kwargs=None,
        best_kwargs=None,
    ):
        """Draw a ``cv_results_`` dictionary in :class:`GridSearchCV`'s format.

        Parameters
        ----------
        cv_results : dict
            Needs ``param_alpha`` and ``mean_test_score``; ``param_n_steps``
            gives one curve per step count.
        best_index : int, default=None
            Index of the chosen candidate; the best ``mean_test_score`` when
            None.
        scoring : str or None, default=None
            The search's scoring. ``None`` (mean squared error) and names
            starting with ``"neg_"`` are negated to draw an error.
        n_steps : int, default=None
            Step count of every candidate when ``cv_results`` has no
            ``param_n_steps``.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        line_kwargs : dict, default=None
            Keyword arguments for every curve's ``ax.plot``.
        best_kwargs : dict, default=None
            Keyword arguments for the marker's ``ax.plot``.

        Returns
        -------
        display : SelfDistillCVDisplay
        """
        _import_pyplot(f"{cls.__name__}.from_cv_results")
        for key in ("param_alpha", "mean_test_score"):
            if key not in cv_results:
                raise ValueError(f"cv_results has no {key!r} entry.")
        sign, error_name = _error_sign_and_label(scoring)
        scores = np.asarray(cv_results["mean_test_score"], dtype=np.float64)
        alpha_col = _param_column(cv_results, "alpha")
        if "param_n_steps" in cv_results:
            steps_col = _param_column(cv_results, "n_steps")
        else:
            steps_col = np.full(len(scores), np.nan if n_steps is None else n_steps)
        if best_index is None:
            best_index = int(np.nanargmax(scores))

        usable = ~(np.isnan(alpha_col) | np.isnan(scores) | np.isnan(steps_col))
        alphas = np.unique(alpha_col[usable])
        step_counts = np.unique(steps_col[usable]).astype(int)
        errors = np.full((len(step_counts), len(alphas)), np.nan)
        rows = np.searchsorted(step_counts, steps_col[usable].astype(int))
        cols = np.searchsorted(alphas, alpha_col[usable])
        # The best (lowest-error) candidate at each (n_steps, alpha) pair.
        np.fmin.at(errors, (rows, cols), sign * scores[usable])

        display = cls(
            alphas=alphas,
            n_steps=step_counts,
            cv_errors=errors,
            best_alpha=float(alpha_col[best_index]),
            best_n_steps=int(steps_col[best_index]),
            best_error=float(sign * scores[best_index]),
            error_name=error_name,
        )
        return display.plot(ax=ax, line_kwargs=line_kwargs, best_kwargs=best_kwargs)

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, line_kwargs=None, best_kwargs=None):
        """Draw a fitted search over ``alpha`` and ``n_steps``.

        Parameters
        ----------
        estimator : estimator instance
            A fitted :class:`~skdistill.SelfDistillCV`, or any search with
            ``cv_results_`` in :class:`~sklearn.model_selection.GridSearchCV`'s
            format (``param_alpha``, ``param_n_steps``, ``mean_test_score``)
            and ``best_index_``. The marked point is the candidate at
            ``best_index_``, with the ``alpha`` that was validated.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        line_kwargs : dict, default=None
            Keyword arguments for every curve's ``ax.plot``.
        best_kwargs : dict, default=None
            Keyword arguments for the marker's ``ax.plot``.

        Returns
        -------
        display : SelfDistillCVDisplay
        """
        _import_pyplot(f"{cls.__name__}.from_estimator")
        if not hasattr(estimator, "cv_results_"):
            raise NotFittedError(
                f"This {type(estimator).__name__} instance has no cv_results_; "
                "fit it before drawing its cross-validation results."
            )
        n_steps = getattr(estimator, "n_steps_", None)
        if n_steps is None:
            n_steps = getattr(
                getattr(estimator, "best_estimator_", None), "n_steps", None
            )
        return cls.from_cv_results(
            estimator.cv_results_,
            best_index=getattr(estimator, "best_index_", None),
            scoring=getattr(estimator, "scoring", None),
            n_steps=n_steps,
            ax=ax,
            line_kwargs=line_kwargs,
            best_kwargs=best_kwargs,
        )
