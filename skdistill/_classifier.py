"""Multi-stage self-distillation of any classifier with pseudo-labels."""

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logsumexp, softmax
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    has_fit_parameter,
    validate_data,
)

from ._array_api import check_numpy_only
from ._meta import _DefaultEstimatorMixin
from ._validation import check_predict_X, check_step_array

__all__ = ["SelfDistillationClassifier"]


def _tempered_proba(logits, temperature):
    """Sigmoid (1-d logits) or softmax (2-d) of ``logits / temperature``.

    Returns an array of shape (n_samples, 2) or (n_samples, n_classes).
    """
    z = np.asarray(logits, dtype=np.float64) / temperature
    if z.ndim == 1:
        # expit(-z) rather than 1 - expit(z): no cancellation for large z.
        return np.column_stack([expit(-z), expit(z)])
    return softmax(z, axis=1)


def _l2_strength(estimator):
    """``1 / C`` of a LogisticRegression with an L2 penalty (0 if unpenalised)."""
    penalty = getattr(estimator, "penalty", "deprecated")
    l1_ratio = getattr(estimator, "l1_ratio", 0.0)
    if penalty is None or estimator.C == np.inf:
        return 0.0
    if penalty == "l2" or (penalty == "deprecated" and l1_ratio in (0, None)):
        return 1.0 / estimator.C
    raise ValueError(
        "fix_intercept=True supports LogisticRegression with an L2 penalty or "
        f"none, got penalty={penalty!r} and l1_ratio={l1_ratio!r}."
    )


def _fit_fixed_intercept(teacher, X, targets, sample_weight):
    """Logistic regression on soft targets with the teacher's intercept held.

    Minimises ``C * sum_i s_i * CE(targets_i, softmax(W x_i + b)) + ||W||^2 / 2``
    over ``W`` with ``b`` fixed to ``teacher.intercept_``: the objective of
    :class:`~sklearn.linear_model.LogisticRegression` (sigmoid for two classes,
    multinomial otherwise), solved by L-BFGS from the teacher's coefficients
    with the teacher's ``tol`` and ``max_iter``. Returns a LogisticRegression
    whose ``coef_`` is the minimiser and whose ``intercept_`` is the teacher's.
    """
    n_samples, n_features = X.shape
    n_classes = targets.shape[1]
    intercept = np.asarray(teacher.intercept_, dtype=np.float64)
    # The objective divided by sum(s), as scikit-learn does: same minimiser.
    reg = _l2_strength(teacher) / sample_weight.sum()
    s = sample_weight / sample_weight.sum()
    if n_classes == 2:
        t = targets[:, 1]

        def fun(w):
            z = X @ w + intercept[0]
            loss = np.dot(s, np.logaddexp(0.0, z) - t * z)
            grad = X.T @ (s * (expit(z) - t))
            return loss + 0.5 * reg * w @ w, grad + reg * w

        w0 = teacher.coef_.ravel()
    else:

        def fun(w):
            W = w.reshape(n_classes, n_features)
            Z = X @ W.T + intercept
            loss = np.dot(s, logsumexp(Z, axis=1) - np.sum(targets * Z, axis=1))
            R = s[:, None] * (softmax(Z, axis=1) - targets)
            grad = np.asarray(X.T @ R).T + reg * W
            return loss + 0.5 * reg * np.sum(W * W), grad.ravel()

        w0 = teacher.coef_.ravel()
    res = minimize(
        fun,
        np.array(w0, dtype=np.float64),
        jac=True,
        method="L-BFGS-B",
        options={
            "maxiter": teacher.max_iter,
            "gtol": teacher.tol,
            "ftol": 64 * np.finfo(float).eps,
        },
    )
    if not res.success:
        warnings.warn(
            "The fixed-intercept student did not converge "
            f"({res.message}); increase the estimator's max_iter.",
            ConvergenceWarning,
            stacklevel=2,
        )
    student = clone(teacher)
    student.coef_ = res.x.reshape(teacher.coef_.shape)
    student.intercept_ = intercept.copy()
    student.classes_ = teacher.classes_.copy()
    student.n_features_in_ = n_features
    student.n_iter_ = np.array([res.nit], dtype=np.int32)
    return student


def _estimator_has(attr):
    """Whether the fitted last stage, or else the base estimator, has ``attr``."""

    def check(self):
        if hasattr(self, "estimators_"):
            return hasattr(self.estimators_[-1], attr)
        return hasattr(self._base_estimator(), attr)

    return check


class SelfDistillationClassifier(
    _DefaultEstimatorMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator
):
    """Multi-stage self-distillation of a classifier with pseudo-labels.

    Stage 0, the teacher, is ``estimator`` fitted to the given labels. Each
    stage ``t = 1, ..., n_steps`` fits a fresh clone of ``estimator`` to
    targets mixing the previous stage's pseudo-labels on the training data
    (weight ``xi_t``) with the given labels (weight ``1 - xi_t``). With
    ``xi = 1`` (the default) the students learn from pseudo-labels alone,
    which is the procedure analysed by Takanami, Takahashi and Sakata (2025):
    with noisy training labels, a few stages of hard pseudo-labels denoise the
    teacher and lower its test error.

    Soft and mixed targets are fed to the estimator exactly: each training
    row is repeated once per class, labelled with that class and weighted by
    the target probability (times ``sample_weight``); rows of weight zero are
    dropped. For any estimator minimising a weighted log-loss, such as
    :class:`~sklearn.linear_model.LogisticRegression`, the weighted loss on the
    repeated rows equals the soft-target cross-entropy.

    An estimator whose probabilities are calibrated by a procedure that
    ignores ``sample_weight`` cannot learn soft targets this way: the
    calibration sees every repeated row with each of its labels at full
    weight. ``SVC(probability=True)`` is one (its Platt scaling is fitted
    without the weights): its students' ``predict_proba`` then contradicts
    their ``predict`` on almost every row. A warning is raised when a
    student's ``predict_proba`` favours another class than its ``predict``
    on more than half of the (weighted) training rows. Use
    ``CalibratedClassifierCV(SVC(), ensemble=False)``, which passes the
    weights to its calibration, or hard pseudo-labels with ``xi=1``, which
    repeat no row.

    Parameters
    ----------
    estimator : estimator object, default=None
        Classifier with ``fit(X, y, sample_weight)`` and ``predict``, and
        ``decision_function`` or ``predict_proba`` for soft pseudo-labels.
        ``None`` means :class:`~sklearn.linear_model.LogisticRegression`.
        Each stage fits a clone; nested parameters such as ``estimator__C``
        can be set and tuned (for example by
        :class:`~sklearn.model_selection.GridSearchCV`); setting one while
        ``estimator`` is None replaces None by ``LogisticRegression()`` with
        that parameter.
    n_steps : int, default=1
        Number of student stages; ``n_steps=0`` is the plain estimator. With
        ``early_stopping=True`` this is the largest number of stages.
    xi : float or array-like of shape (n_steps,), default=1.0
        Weight in ``[0, 1]`` of the pseudo-labels in each student's targets;
        ``1 - xi`` goes to the given labels. ``xi = 0`` refits the teacher.
    pseudo_labels : {"soft", "hard"}, default="soft"
        ``"soft"``: the previous stage's class probabilities at
        ``temperature``, that is the sigmoid (two classes) or softmax of
        ``decision_function(X) / temperature``, or, for estimators without
        ``decision_function``, of ``log(predict_proba(X)) / temperature``
        (for logistic regression both equal its probabilities at
        ``temperature=1``). ``"hard"``: the previous stage's predicted class,
        the limit of zero temperature.
    temperature : float, default=1.0
        Positive temperature of soft pseudo-labels: below one sharpens them,
        above one softens them. Ignored when ``pseudo_labels="hard"``.
    fix_intercept : bool, default=False
        Whether the students keep the teacher's intercept instead of fitting
        their own (the remedy of Takanami et al. for class imbalance). Only
        for :class:`~sklearn.linear_model.LogisticRegression` with an L2
        penalty or none: each student then minimises the same objective as
        logistic regression on its soft targets over the coefficients alone,
        with the intercept held at the teacher's value, by L-BFGS with the
        estimator's ``tol`` and ``max_iter``.
    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data
        (stratified when every class has two members and both parts can
        hold every class) and stop adding stages as soon as a stage does not raise
        the held-out (weighted) accuracy of the one before it. All stages are
        then fitted on the remaining data and ``n_steps_`` records the number
        of students kept.
    validation_fraction : float, default=0.1
        Proportion of the training data held out when ``early_stopping``.
    random_state : int, RandomState instance or None, default=None
        Seed of the held-out split when ``early_stopping``. The estimator's
        own ``random_state`` (if any) is left as given.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted teacher (index 0) and students, trained on integer class
        codes ``0, ..., n_classes - 1``.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_steps_ : int
        Number of students kept (``n_steps`` unless stopped early).
    validation_scores_ : ndarray of shape (n_stages,)
        Held-out accuracy of each stage fitted, including the rejected one
        when stopped early (``n_stages`` is ``n_steps_ + 1``, or
        ``n_steps_ + 2`` when stopped early). Only with
        ``early_stopping=True``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    SelfDistillationRegressor : Born-again distillation of any regressor.
    RepeatedSelfDistillationRegressor : Ridge distilled into itself in closed
        form.

    References
    ----------
    .. [1] K. Takanami, T. Takahashi and A. Sakata. "The Effect of Optimal
       Self-Distillation in Noisy Gaussian Mixture Model". NeurIPS 2025.
       arXiv:2501.16226.
    .. [2] T. Furlanello, Z. C. Lipton, M. Tschannen, L. Itti and
       A. Anandkumar. "Born-Again Neural Networks". ICML 2018.

    Examples
    --------
    Noisy labels (30% flipped) on the mixture of Takanami et al.: each stage
    of hard pseudo-labels lowers the error against the clean test labels.

    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skdistill import SelfDistillationClassifier
    >>> from skdistill.datasets import make_noisy_gaussian_mixture
    >>> X, y, _ = make_noisy_gaussian_mixture(200, 200, random_state=0)
    >>> X_test, _, y_test = make_noisy_gaussian_mixture(2000, 200, random_state=1)
    >>> lr = LogisticRegression(C=1e-4, fit_intercept=False)
    >>> clf = SelfDistillationClassifier(lr, n_steps=3, pseudo_labels="hard")
    >>> clf.fit(X, y).n_steps_
    3
    >>> [round(float(np.mean(p != y_test)), 3) for p in clf.staged_predict(X_test)]
    [0.243, 0.182, 0.164, 0.159]
    >>> clf.predict_proba(X_test[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "n_steps": [Interval(Integral, 0, None, closed="left")],
        "xi": [Interval(Real, 0, 1, closed="both"), "array-like"],
        "pseudo_labels": [StrOptions({"soft", "hard"})],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "fix_intercept": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        n_steps=1,
        xi=1.0,
        pseudo_labels="soft",
        temperature=1.0,
        fix_intercept=False,
        early_stopping=False,
        validation_fraction=0.1,
        random_state=None,
    ):
        self.estimator = estimator
        self.n_steps = n_steps
        self.xi = xi
        self.pseudo_labels = pseudo_labels
        self.temperature = temperature
        self.fix_intercept = fix_intercept
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _base_estimator(self):
        return LogisticRegression() if self.estimator is None else self.estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._base_estimator())
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags

    # ------------------------------------------------------------------ fit

    def _check_base(self, base, n_steps, sample_weight):
        if (n_steps > 0 or sample_weight is not None) and not has_fit_parameter(
            base, "sample_weight"
        ):
            raise ValueError(
                f"estimator {base.__class__.__name__} does not accept "
                "sample_weight in fit, which the students need for their "
                "weighted pseudo-label targets."
            )
        if self.fix_intercept:
            if not isinstance(base, LogisticRegression):
                raise ValueError(
                    "fix_intercept=True needs estimator to be a LogisticRegression "
                    "(an estimator with intercept_ and a known objective), got "
                    f"{base.__class__.__name__}."
                )
            _l2_strength(base)
            if base.class_weight is not None:
                raise ValueError(
                    "fix_intercept=True does not support the estimator's "
                    "class_weight; pass sample_weight to fit instead."
                )
        if (
            n_steps > 0
            and self.pseudo_labels == "soft"
            and not (
                hasattr(base, "decision_function") or hasattr(base, "predict_proba")
            )
        ):
            raise ValueError(
                'pseudo_labels="soft" needs an estimator with decision_function '
                'or predict_proba; use pseudo_labels="hard".'
            )

    def _soft_targets(self, est, X):
        """Tempered class probabilities of ``est``, shape (n_samples, n_classes)."""
        if hasattr(est, "decision_function"):
            proba = _tempered_proba(est.decision_function(X), self.temperature)
        else:
            with np.errstate(divide="ignore"):
                log_proba = np.log(est.predict_proba(X))
            proba = softmax(log_proba / self.temperature, axis=1)
        return self._expand(est, proba)

    def _expand(self, est, values, fill=0.0):
        """Columns of ``values`` (one per class of ``est``) mapped to classes_."""
        n_classes = self.classes_.shape[0]
        if values.shape[1] == n_classes:
            return values
        out = np.full((values.shape[0], n_classes), fill, dtype=np.float64)
        out[:, est.classes_] = values
        return out

    def _targets(self, est, X, y_onehot, xi):
        if self.pseudo_labels == "hard":
            pseudo = np.zeros_like(y_onehot)
            pseudo[np.arange(X.shape[0]), est.predict(X).astype(np.intp)] = 1.0
        else:
            pseudo = self._soft_targets(est, X)
        return xi * pseudo + (1.0 - xi) * y_onehot

    def _fit_student(self, base, teacher, X, targets, sample_weight, stage):
        if self.fix_intercept:
            return _fit_fixed_intercept(teacher, X, targets, sample_weight)
        n_samples, n_classes = targets.shape
        weights = (targets * sample_weight[:, None]).ravel()
        keep = np.flatnonzero(weights > 0)
        labels = np.tile(np.arange(n_classes), n_samples)[keep]
        rows = keep // n_classes
        student = clone(base)
        if np.unique(labels).shape[0] < 2:
            warnings.warn(
                f"The targets of stage {stage} contain a single class; that "
                "stage is a constant DummyClassifier predicting it.",
                UserWarning,
                stacklevel=3,
            )
            student = DummyClassifier(strategy="prior")
        student.fit(_safe_indexing(X, rows), labels, sample_weight=weights[keep])
        if keep.size > n_samples and hasattr(student, "predict_proba"):
            self._check_proba_agrees(student, X, sample_weight, stage)
        return student

    def _check_proba_agrees(self, student, X, sample_weight, stage):
        """Warn when ``predict_proba`` contradicts ``predict`` on most rows.

        A student fitted on repeated, weighted rows whose probability
        calibration ignores the weights (``SVC(probability=True)``) gets
        probabilities unrelated to its decisions. More than half of the
        weighted training rows is the point past which its probabilities
        favour another class than its predictions more often than not.
        """
        proba_class = student.classes_[np.argmax(student.predict_proba(X), axis=1)]
        disagree = proba_class != student.predict(X)
        frac = float(np.average(disagree, weights=sample_weight))
        if frac > 0.5:
            warnings.warn(
                f"The predict_proba of stage {stage} contradicts its predict on "
                f"{frac:.0%} of the training rows: "
                f"{student.__class__.__name__}'s probabilities ignore the "
                "weights of the repeated rows that encode soft targets "
                "(SVC(probability=True) fits its Platt scaling without "
                "sample_weight). Use CalibratedClassifierCV(SVC(), "
                "ensemble=False), or pseudo_labels='hard' with xi=1.",
                UserWarning,
                stacklevel=5,
            )

    def _stratify(self, y_enc):
        """Labels to stratify the held-out split by, or None if impossible."""
        n_samples = y_enc.shape[0]
        n_classes = self.classes_.shape[0]
        n_val = int(np.ceil(self.validation_fraction * n_samples))
        if (
            np.bincount(y_enc).min() < 2
            or n_val < n_classes
            or n_samples - n_val < n_classes
        ):
            return None
        return y_enc

    def _score(self, est, X, y, sample_weight):
        return accuracy_score(y, est.predict(X), sample_weight=sample_weight)

    @_fit_context(
        # estimator is not validated yet
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, sample_weight=None):
        """Fit the teacher and the students.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (possibly noisy).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights, passed to the teacher and multiplied into
            the students' target weights.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        check_numpy_only(self, X, y, sample_weight)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            ensure_all_finite=not get_tags(self).input_tags.allow_nan,
        )
        check_classification_targets(y)
        xis = check_step_array(self.xi, "xi", self.n_steps, low=0.0, high=1.0)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        user_weight = sample_weight is not None
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        if np.unique(y_enc[sample_weight > 0]).shape[0] < 2:
            raise ValueError(
                "SelfDistillationClassifier needs samples of at least 2 classes "
                "with positive sample_weight; got 1 class."
            )
        base = self._base_estimator()
        self._check_base(base, self.n_steps, sample_weight if user_weight else None)

        if self.early_stopping:
            X, X_val, y_enc, y_val, sample_weight, sw_val = train_test_split(
                X,
                y_enc,
                sample_weight,
                test_size=self.validation_fraction,
                stratify=self._stratify(y_enc),
                random_state=self.random_state,
            )
        y_onehot = np.eye(self.classes_.shape[0])[y_enc]

        teacher = clone(base)
        if user_weight:
            teacher.fit(X, y_enc, sample_weight=sample_weight)
        else:
            teacher.fit(X, y_enc)
        estimators = [teacher]
        scores = []
        if self.early_stopping:
            scores.append(self._score(teacher, X_val, y_val, sw_val))
        for t in range(1, self.n_steps + 1):
            targets = self._targets(estimators[-1], X, y_onehot, xis[t - 1])
            student = self._fit_student(base, teacher, X, targets, sample_weight, t)
            if self.early_stopping:
                scores.append(self._score(student, X_val, y_val, sw_val))
                if scores[-1] <= scores[-2]:
                    break
            estimators.append(student)
        self.estimators_ = estimators
        self.n_steps_ = len(estimators) - 1
        if self.early_stopping:
            self.validation_scores_ = np.asarray(scores)
        return self

    # -------------------------------------------------------------- predict

    def predict(self, X):
        """Predict class labels with the last stage.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        X = check_predict_X(self, X)
        return self.classes_[self.estimators_[-1].predict(X).astype(np.intp)]

    def staged_predict(self, X):
        """Predicted labels of the teacher, then of each student.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Yields
        ------
        y_pred : ndarray of shape (n_samples,)
        """
        X = check_predict_X(self, X)
        for est in self.estimators_:
            yield self.classes_[est.predict(X).astype(np.intp)]

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the last stage.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``; a class that a student never saw in
            its targets gets probability zero.
        """
        X = check_predict_X(self, X)
        est = self.estimators_[-1]
        return self._expand(est, est.predict_proba(X))

    @available_if(_estimator_has("predict_proba"))
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    @available_if(_estimator_has("predict_proba"))
    def staged_predict_proba(self, X):
        """Class probabilities of the teacher, then of each student.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Yields
        ------
        proba : ndarray of shape (n_samples, n_classes)
            Stage ``t`` yields the probabilities of stage ``t`` (``t = 0``
            is the teacher); the last equals :meth:`predict_proba`.
        """
        X = check_predict_X(self, X)
        for est in self.estimators_:
            yield self._expand(est, est.predict_proba(X))

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the last stage.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            As returned by the estimator: one column for two classes. With
            more classes, a class missing from a student's targets gets
            ``-inf``; a student that saw only two of them scores the second
            against the first, as the columns ``(0, score)``.
        """
        X = check_predict_X(self, X)
        est = self.estimators_[-1]
        scores = est.decision_function(X)
        if (
            self.classes_.shape[0] == 2
            or scores.ndim == 2
            and (scores.shape[1] == self.classes_.shape[0])
        ):
            return scores
        if scores.ndim == 1:
            scores = np.column_stack([np.zeros_like(scores), scores])
        return self._expand(est, scores, fill=-np.inf)
