"""Filter factors of a fitted estimator over its spectrum."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._filter import filter_path, shrinkage
from ._matplotlib import _import_pyplot

__all__ = ["SpectralFilterDisplay"]


def _eigenvalues_of(estimator):
    """Eigenvalues (descending) of the fitted estimator's training data."""
    if hasattr(estimator, "singular_values_"):
        return np.asarray(estimator.singular_values_, dtype=np.float64) ** 2
    if hasattr(estimator, "eigenvalues_"):
        return np.sort(np.asarray(estimator.eigenvalues_, dtype=np.float64))[::-1]
    raise TypeError(
        f"{type(estimator).__name__} exposes neither singular_values_ nor "
        "eigenvalues_, so its spectral filter cannot be drawn."
    )


class SpectralFilterDisplay:
    """Filter factors of a self-distilled estimator, against ridge.

    A ``k``-step student shrinks the least-squares fit along each principal
    direction of the training data by the filter factor
    ``phi(h) = h * sum_m xi_bar[m] * h**m`` with ``h = lam / (lam + alpha)``
    and ``lam`` the direction's squared singular value. Ridge regression (the
    teacher) is ``phi(h) = h``. This display draws the factor of the teacher
    and of each student at the eigenvalues of a fitted model.

    It is usually created with :meth:`from_estimator`; all parameters are
    stored as attributes.

    Parameters
    ----------
    eigenvalues : array-like of shape (n_components,)
        Squared singular values of the centred training data, in decreasing
        order.
    filter_factors : array-like of shape (n_steps + 1, n_components)
        Row ``0`` is the teacher (ridge) and row ``i`` student ``i``.
    alpha : float or array-like of shape (n_steps + 1,)
        Penalty of each step.
    estimator_name : str, default=None
        Name used in the legend of the last step.

    Attributes
    ----------
    ridge_line_ : matplotlib Line2D
        The teacher's (ridge) filter factors.
    lines_ : list of matplotlib Line2D
        One line per student drawn, in the order of ``steps``.
    ax_ : matplotlib Axes
        Axes with the plot.
    figure_ : matplotlib Figure
        Figure containing the plot.

    See Also
    --------
    skdistill.filter_path : The filter factors of every step.
    SelfDistillCVDisplay : Cross-validated error against ``alpha``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_diabetes
    >>> from skdistill import RepeatedSelfDistillationRegressor
    >>> from skdistill.plotting import SpectralFilterDisplay
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = RepeatedSelfDistillationRegressor(alpha=0.1, n_steps=2, xi=[0.5, 2.0])
    >>> display = SpectralFilterDisplay.from_estimator(reg.fit(X, y))
    >>> display.filter_factors.shape
    (3, 10)
    >>> display.filter_factors[:, 0].round(3)
    array([0.976, 0.964, 0.905])
    """

    def __init__(self, *, eigenvalues, filter_factors, alpha, estimator_name=None):
        self.eigenvalues = eigenvalues
        self.filter_factors = filter_factors
        self.alpha = alpha
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, steps=None, ridge_kwargs=None, line_kwargs=None):
        """Draw the filter factors.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        steps : int or list of int, default=None
            Students to draw (``1`` to ``n_steps``); all of them when None.
            The teacher is always drawn as the ridge reference.
        ridge_kwargs : dict, default=None
            Keyword arguments for the ridge line's ``ax.plot``.
        line_kwargs : dict, default=None
            Keyword arguments for every student's ``ax.plot``.

        Returns
        -------
        display : SpectralFilterDisplay
            The display, with ``ax_``, ``figure_``, ``ridge_line_`` and
            ``lines_`` set.
        """
        plt = _import_pyplot(f"{type(self).__name__}.plot")

        lam = np.asarray(self.eigenvalues, dtype=np.float64)
        factors = np.atleast_2d(np.asarray(self.filter_factors, dtype=np.float64))
        n_steps = factors.shape[0] - 1
        if steps is None:
            steps = range(1, n_steps + 1)
        steps = np.atleast_1d(np.asarray(steps, dtype=int)).tolist()
        bad = [s for s in steps if not 1 <= s <= n_steps]
        if bad:
            raise ValueError(
                f"steps must lie between 1 and n_steps={n_steps}, got {bad}."
            )
        alpha = np.broadcast_to(
            np.asarray(self.alpha, dtype=np.float64), (n_steps + 1,)
        )

        if ax is None:
            _, ax = plt.subplots()
        # Directions with a zero eigenvalue carry no fit and have no place on a
        # logarithmic axis.
        keep = lam > 0
        x = lam[keep]

        ax.axhline(1.0, color="0.6", linewidth=0.8, linestyle=":")
        ridge_kwargs = {
            "color": "black",
            "linestyle": "--",
            "marker": ".",
            "label": f"ridge (teacher), alpha={alpha[0]:.3g}",
            **(ridge_kwargs or {}),
        }
        (self.ridge_line_,) = ax.plot(x, factors[0, keep], **ridge_kwargs)
        self.lines_ = []
        for step in steps:
            label = f"step {step}"
            if step == n_steps and self.estimator_name is not None:
                label = f"{self.estimator_name} ({label})"
            kwargs = {"marker": ".", "label": label, **(line_kwargs or {})}
            (line,) = ax.plot(x, factors[step, keep], **kwargs)
            self.lines_.append(line)
        ax.set_xscale("log")
        ax.set(
            xlabel="eigenvalue of the centred $X^T X$ (squared singular value)",
            ylabel="filter factor $\\phi$",
        )
        ax.legend(loc="best")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(
        cls, estimator, *, steps=None, ax=None, ridge_kwargs=None, line_kwargs=None
    ):
        """Filter factors of a fitted estimator.

        Parameters
        ----------
        estimator : estimator instance
            A fitted :class:`~skdistill.RepeatedSelfDistillationRegressor`, or
            an estimator with the same ``alpha``, ``xi`` and ``n_steps``
            parameters and a ``singular_values_`` (or ``eigenvalues_``)
            attribute. A fitted search with a ``best_estimator_`` (such as
            :class:`~skdistill.SelfDistillCV`) draws its best estimator.
        steps : int or list of int, default=None
            Students to draw; all of them when None.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        ridge_kwargs : dict, default=None
            Keyword arguments for the ridge line's ``ax.plot``.
        line_kwargs : dict, default=None
            Keyword arguments for every student's ``ax.plot``.

        Returns
        -------
        display : SpectralFilterDisplay
        """
        _import_pyplot(f"{cls.__name__}.from_estimator")
        estimator = getattr(estimator, "best_estimator_", estimator)
        check_is_fitted(estimator)
        lam = _eigenvalues_of(estimator)
        n_steps = int(estimator.n_steps)
        if isinstance(estimator.alpha, str):
            raise ValueError(
                f"alpha={estimator.alpha!r} has no fixed filter to draw; "
                "SpectralFilterDisplay needs numeric alpha."
            )
        alpha = np.asarray(estimator.alpha, dtype=np.float64)
        if alpha.ndim not in (0, 1):
            raise ValueError(f"alpha must be a float or 1-d, got shape {alpha.shape}.")
        factors = filter_path(lam, alpha, estimator.xi, n_steps)
        xi_bar = getattr(estimator, "xi_bar_", None)
        if xi_bar is not None and np.ptp(np.atleast_1d(alpha)) == 0 and n_steps > 0:
            # With one alpha the last filter is h * p(h); evaluating the
            # polynomial directly stays accurate when the per-step xi are huge.
            h = shrinkage(lam, float(np.atleast_1d(alpha)[0]))
            factors[-1] = h * np.polynomial.polynomial.polyval(h, xi_bar)
        display = cls(
            eigenvalues=lam,
            filter_factors=factors,
            alpha=alpha,
            estimator_name=type(estimator).__name__,
        )
        return display.plot(
            ax=ax, steps=steps, ridge_kwargs=ridge_kwargs, line_kwargs=line_kwargs
        )
