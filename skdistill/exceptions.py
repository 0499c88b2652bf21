"""Warnings raised by skdistill."""

import os
import sys
import warnings

import joblib
import sklearn
from sklearn.exceptions import ConvergenceWarning

__all__ = ["AlphaGridWarning"]


class AlphaGridWarning(ConvergenceWarning):
    """The chosen ``alpha`` lies at an end of the searched grid.

    The optimum may then lie outside the grid: extend ``alphas``. A subclass
    of :class:`~sklearn.exceptions.ConvergenceWarning`, so that existing
    filters keep working, and specific enough to silence on its own::

        import warnings
        from skdistill.exceptions import AlphaGridWarning
        warnings.simplefilter("ignore", AlphaGridWarning)

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skdistill import SelfDistillCV
    >>> from skdistill.exceptions import AlphaGridWarning
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 3))
    >>> y = X @ [1.0, 2.0, 3.0]
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = SelfDistillCV(alphas=[10.0, 100.0], n_steps=0).fit(X, y)
    >>> [w.category.__name__ for w in caught]
    ['AlphaGridWarning']
    """


# Frames of these packages are skipped: skdistill itself, and the packages
# through which a user's call reaches it (scikit-learn's cross_val_score and
# pipelines, joblib's Parallel).
_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(m.__file__)) + os.sep
    for m in (sys.modules[__package__], sklearn, joblib)
)


def warn_user(message, category=UserWarning):
    """Warn with the stack level of the first frame outside skdistill,
    scikit-learn and joblib: the user's line.

    The same internal function is reached through ``fit``, scikit-learn's
    ``_fit_context`` wrapper, ``cross_val_score`` (through joblib) and
    helpers of varying depth; a fixed ``stacklevel`` would point at one of
    those instead of the user's line.
    """
    frame, level = sys._getframe(0), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _INTERNAL
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
