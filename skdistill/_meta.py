"""Born-again self-distillation of any regressor."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    RegressorMixin,
    _fit_context,
    clone,
)
from sklearn.linear_model import Ridge
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import (
    _check_sample_weight,
    has_fit_parameter,
    validate_data,
)

from ._array_api import check_numpy_only
from ._validation import check_predict_X, check_step_array

__all__ = ["SelfDistillationRegressor"]


class _DefaultEstimatorMixin:
    """Nested parameters of ``estimator=None`` set those of its default.

    ``get_params(deep=True)`` cannot list ``estimator__*`` while ``estimator``
    is None, so scikit-learn's ``set_params`` would fail on them with an
    ``AttributeError``. Here a nested parameter first replaces None by the
    default estimator (``_base_estimator()``, a fresh instance), then sets the
    parameter on it: ``set_params(estimator__alpha=2)`` gives
    ``estimator=Ridge(alpha=2)``, which means the same as None with that
    parameter. Parameters are otherwise set as scikit-learn does.
    """

    def set_params(self, **params):
        """Set the parameters of this estimator.

        As :meth:`sklearn.base.BaseEstimator.set_params`; in addition a nested
        ``estimator__<name>`` while ``estimator`` is None sets ``estimator``
        to the default estimator with that parameter.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            Estimator instance.
        """
        nested = {k: v for k, v in params.items() if k.startswith("estimator__")}
        if not nested:
            return super().set_params(**params)
        super().set_params(**{k: v for k, v in params.items() if k not in nested})
        if self.estimator is None:
            self.estimator = clone(self._base_estimator())
        return super().set_params(**nested)


class SelfDistillationRegressor(
    _DefaultEstimatorMixin, MetaEstimatorMixin, RegressorMixin, BaseEstimator
):
    """Born-again self-distillation of any regressor on mixed labels.

    Step 0, the teacher, is ``estimator`` fitted to ``y``. Each step
    ``i = 1, ..., n_steps`` fits a fresh clone of ``estimator`` to the mixed
    labels ``xi_i * (previous step's predictions on X) + (1 - xi_i) * y``.
    For a squared loss this is exactly the distillation objective
    ``xi_i * ||f_{i-1}(X) - f(X)||^2 + (1 - xi_i) * ||y - f(X)||^2`` (up to a
    constant), for any model class: a multi-layer perceptron, gradient
    boosting, kernel ridge, ... (Furlanello et al., 2018; Pham et al., 2022).

    With ridge regression (the default) the result equals
    :class:`RepeatedSelfDistillationRegressor`, which computes every step in
    closed form from one decomposition and should be preferred there.

    Parameters
    ----------
    estimator : estimator object, default=None
        Regressor to distil; each step fits a clone. ``None`` means
        :class:`~sklearn.linear_model.Ridge`. Nested parameters such as
        ``estimator__alpha`` can be set and tuned (for example by
        :class:`~sklearn.model_selection.GridSearchCV`); setting one while
        ``estimator`` is None replaces None by ``Ridge()`` with that
        parameter.
    n_steps : int, default=1
        Number of student steps; ``n_steps=0`` is the plain estimator.
    xi : float or array-like of shape (n_steps,), default=0.5
        Weight of the previous step's predictions in each student's labels.
        Any real number.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted teacher (index 0) and students.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    RepeatedSelfDistillationRegressor : The same for ridge regression, in
        closed form.
    SelfDistillationClassifier : Multi-stage distillation of a classifier
        with pseudo-labels.

    References
    ----------
    .. [1] T. Furlanello, Z. C. Lipton, M. Tschannen, L. Itti and
       A. Anandkumar. "Born-Again Neural Networks". ICML 2018.
    .. [2] M. Pham, M. Cho, A. Joshi and C. Hegde. "Revisiting
       Self-Distillation". arXiv:2206.08491, 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skdistill import (RepeatedSelfDistillationRegressor,
    ...                        SelfDistillationRegressor)
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=50)
    >>> reg = SelfDistillationRegressor(n_steps=2, xi=[0.5, 1.5]).fit(X, y)
    >>> reg.estimators_[-1].coef_.round(3)
    array([ 0.953, -1.827,  0.487])
    >>> closed = RepeatedSelfDistillationRegressor(n_steps=2, xi=[0.5, 1.5])
    >>> bool(np.allclose(reg.predict(X), closed.fit(X, y).predict(X)))
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "n_steps": [Interval(Integral, 0, None, closed="left")],
        "xi": [Interval(Real, None, None, closed="neither"), "array-like"],
    }

    def __init__(self, estimator=None, *, n_steps=1, xi=0.5):
        self.estimator = estimator
        self.n_steps = n_steps
        self.xi = xi

    def _base_estimator(self):
        return Ridge() if self.estimator is None else self.estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._base_estimator())
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.target_tags.multi_output = inner.target_tags.multi_output
        tags.target_tags.single_output = inner.target_tags.single_output
        return tags

    @_fit_context(
        # estimator is not validated yet
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, sample_weight=None):
        """Fit the teacher and every student.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights passed to every step's ``fit``; the estimator must
            accept them.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        check_numpy_only(self, X, y, sample_weight)
        tags = get_tags(self)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            ensure_all_finite=not tags.input_tags.allow_nan,
            multi_output=tags.target_tags.multi_output,
            y_numeric=True,
        )
        y = np.asarray(y, dtype=np.float64)
        xis = check_step_array(self.xi, "xi", self.n_steps)
        base = self._base_estimator()
        fit_params = {}
        if sample_weight is not None:
            if not has_fit_parameter(base, "sample_weight"):
                raise ValueError(
                    f"estimator {base.__class__.__name__} does not accept "
                    "sample_weight in fit."
                )
            fit_params["sample_weight"] = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        estimators = [clone(base).fit(X, y, **fit_params)]
        for xi in xis:
            pred = np.asarray(estimators[-1].predict(X), dtype=np.float64)
            targets = xi * pred.reshape(y.shape) + (1.0 - xi) * y
            estimators.append(clone(base).fit(X, targets, **fit_params))
        self.estimators_ = estimators
        return self

    def predict(self, X):
        """Predict with the last student.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        X = check_predict_X(self, X)
        return self.estimators_[-1].predict(X)

    def staged_predict(self, X):
        """Predictions of the teacher, then of each student in turn.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Yields
        ------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Step ``i`` yields the predictions of step ``i`` (``i = 0`` is the
            teacher); the last equals :meth:`predict`.
        """
        X = check_predict_X(self, X)
        for est in self.estimators_:
            yield est.predict(X)
