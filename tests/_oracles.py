"""Reference computations shared by the tests, independent of skdistill."""

import numpy as np
from sklearn.linear_model import Ridge


def pure_distillates(X_tr, y_tr, X_val, alpha, k, w_tr=None, fit_intercept=True):
    """Validation predictions of the pure m-fold distillates, m = 0..k.

    scikit-learn's Ridge refitted k times, each student on the previous
    step's training predictions (``xi = 1``). Returns an array of shape
    ``(n_val, [n_targets,] k + 1)``.
    """
    preds, labels = [], y_tr
    for _ in range(k + 1):
        ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="svd")
        ridge.fit(X_tr, labels, sample_weight=w_tr)
        preds.append(ridge.predict(X_val))
        labels = ridge.predict(X_tr)
    return np.stack(preds, axis=-1)
