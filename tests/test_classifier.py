"""Tests of SelfDistillationClassifier."""

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import expit, log_softmax, softmax
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from skdistill import SelfDistillationClassifier
from skdistill.datasets import make_noisy_gaussian_mixture

# --------------------------------------------------------------------------
# An independent solver of the soft-target objective of LogisticRegression:
#     C * sum_i s_i * CE(T_i, softmax(W x_i + b)) + ||W||^2 / 2
# (sigmoid parametrisation for two classes), minimised by scipy directly on
# the targets T, without any duplicated rows.


def _soft_logreg(X, T, s, C, *, intercept=None):
    """Minimiser (W, b) of the soft-target objective; b held if given."""
    n, d = X.shape
    K = T.shape[1]
    binary = K == 2
    m = 1 if binary else K
    fit_b = intercept is None

    def unpack(p):
        W = p[: m * d].reshape(m, d)
        b = p[m * d :] if fit_b else np.asarray(intercept, dtype=float)
        return W, b

    def fun(p):
        W, b = unpack(p)
        Z = X @ W.T + b
        if binary:
            z = Z[:, 0]
            # -t log sigma(z) - (1 - t) log sigma(-z)
            loss = T[:, 1] * np.logaddexp(0, -z) + T[:, 0] * np.logaddexp(0, z)
            R = (expit(z) - T[:, 1])[:, None]
        else:
            loss = -np.sum(T * log_softmax(Z, axis=1), axis=1)
            R = softmax(Z, axis=1) - T
        R = s[:, None] * R
        grad_W = C * R.T @ X + W
        grad = [grad_W.ravel()] + ([C * R.sum(axis=0)] if fit_b else [])
        return C * s @ loss + 0.5 * np.sum(W * W), np.concatenate(grad)

    p0 = np.zeros(m * d + (m if fit_b else 0))
    res = minimize(
        fun,
        p0,
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 0.0, "maxiter": 20000, "maxcor": 30},
    )
    return unpack(res.x)


def _lbfgs_tol(C, sample_weight, n_classes):
    """How far from the minimiser an L-BFGS stop may leave the coefficients.

    scikit-learn's lbfgs (and the fixed-intercept solver) minimise the
    objective divided by ``sum(s)`` and stop once its relative decrease falls
    below ``ftol = 64 eps``. That objective is at most ``log(n_classes)`` (its
    value at zero) and its Hessian is at least ``1 / (C sum(s))`` in ``W``, so
    the stop can leave ``|W - W*|`` up to ``sqrt(2 ftol log(K) C sum(s))``;
    a factor 10 covers the intercept's (data-driven) curvature.
    """
    ftol = 64 * np.finfo(float).eps
    return 10 * np.sqrt(2 * ftol * np.log(n_classes) * C * np.sum(sample_weight))


def _centred(b):
    b = np.asarray(b, dtype=float)
    return b - b.mean() if b.size > 1 else b


def _tight_lr(**kw):
    return LogisticRegression(tol=1e-12, max_iter=20000, **kw)


def _data(n_classes, n_samples=60, n_features=4, seed=0):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        flip_y=0.2,
        random_state=seed,
    )
    return X, y


def _soft_targets(teacher, X, y, xi, temperature):
    """Mixed targets computed from the teacher's decision function."""
    scores = teacher.decision_function(X) / temperature
    if scores.ndim == 1:
        P = np.column_stack([expit(-scores), expit(scores)])
    else:
        P = softmax(scores, axis=1)
    Y = np.eye(P.shape[1])[y]
    return xi * P + (1 - xi) * Y


@settings(deadline=None)
@given(
    n_classes=st.sampled_from([2, 3]),
    xi=st.floats(0.0, 1.0),
    temperature=st.floats(0.3, 5.0),
    C=st.floats(0.05, 5.0),
    seed=st.integers(0, 1000),
)
def test_row_duplication_equals_soft_cross_entropy(n_classes, xi, temperature, C, seed):
    """The student on duplicated rows minimises the soft-target objective."""
    X, y = _data(n_classes, seed=seed)
    sw = np.random.default_rng(seed).uniform(0.5, 2.0, size=y.shape[0])
    clf = SelfDistillationClassifier(
        _tight_lr(C=C), n_steps=1, xi=xi, temperature=temperature
    ).fit(X, y, sample_weight=sw)
    teacher, student = clf.estimators_
    T = _soft_targets(teacher, X, y, xi, temperature)
    W, b = _soft_logreg(X, T, sw, C)
    tol = _lbfgs_tol(C, sw, n_classes)
    np.testing.assert_allclose(student.coef_, W, atol=tol, rtol=tol)
    np.testing.assert_allclose(
        _centred(student.intercept_), _centred(b), atol=tol, rtol=tol
    )


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("pseudo_labels", ["soft", "hard"])
def test_fix_intercept_solves_objective_with_teacher_intercept(
    n_classes, pseudo_labels
):
    X, y = _data(n_classes, seed=3)
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=y.shape[0])
    C, xi, temperature = 0.7, 0.6, 0.8
    clf = SelfDistillationClassifier(
        _tight_lr(C=C),
        n_steps=1,
        xi=xi,
        temperature=temperature,
        pseudo_labels=pseudo_labels,
        fix_intercept=True,
    ).fit(X, y, sample_weight=sw)
    teacher, student = clf.estimators_
    np.testing.assert_array_equal(student.intercept_, teacher.intercept_)
    if pseudo_labels == "soft":
        T = _soft_targets(teacher, X, y, xi, temperature)
    else:
        T = xi * np.eye(n_classes)[teacher.predict(X)] + (1 - xi) * np.eye(n_classes)[y]
    W, _ = _soft_logreg(X, T, sw, C, intercept=teacher.intercept_)
    tol = _lbfgs_tol(C, sw, n_classes)
    np.testing.assert_allclose(student.coef_, W, atol=tol, rtol=tol)
    # The students keep the intercept at every stage.
    clf.set_params(n_steps=3).fit(X, y, sample_weight=sw)
    for est in clf.estimators_:
        np.testing.assert_array_equal(est.intercept_, teacher.intercept_)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fix_intercept_without_intercept_matches_scikit_learn(n_classes):
    """With no intercept to fix, the own solver agrees with LogisticRegression."""
    X, y = _data(n_classes, seed=5)
    params = dict(n_steps=2, xi=0.7, temperature=1.5)
    base = _tight_lr(C=0.5, fit_intercept=False)
    fixed = SelfDistillationClassifier(base, fix_intercept=True, **params).fit(X, y)
    free = SelfDistillationClassifier(base, **params).fit(X, y)
    # Both sides stop by the same rule: twice the one-sided bound.
    tol = 2 * _lbfgs_tol(0.5, np.ones(len(y)), n_classes)
    for a, b in zip(fixed.estimators_, free.estimators_, strict=True):
        np.testing.assert_allclose(a.coef_, b.coef_, atol=tol, rtol=tol)
    # Probabilities move by at most max|x| * |dW| (the softmax is 1-Lipschitz).
    np.testing.assert_allclose(
        fixed.predict_proba(X),
        free.predict_proba(X),
        atol=tol * np.abs(X).sum(axis=1).max(),
    )


@pytest.mark.parametrize(
    "estimator",
    [_tight_lr(C=0.3), DecisionTreeClassifier(max_depth=3, random_state=0)],
)
@pytest.mark.parametrize("pseudo_labels", ["soft", "hard"])
def test_xi_zero_equals_base_estimator(estimator, pseudo_labels):
    X, y = _data(3, seed=2)
    clf = SelfDistillationClassifier(
        estimator, n_steps=3, xi=0.0, pseudo_labels=pseudo_labels
    ).fit(X, y)
    expected = estimator.fit(X, y).predict_proba(X)
    for proba in clf.staged_predict_proba(X):
        np.testing.assert_allclose(proba, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_hard_labels_are_zero_temperature_limit(n_classes):
    X, y = _data(n_classes, seed=4)
    hard = SelfDistillationClassifier(_tight_lr(), n_steps=3, pseudo_labels="hard").fit(
        X, y
    )
    soft = SelfDistillationClassifier(_tight_lr(), n_steps=3, temperature=1e-9).fit(
        X, y
    )
    for p, q in zip(
        hard.staged_predict_proba(X), soft.staged_predict_proba(X), strict=True
    ):
        np.testing.assert_allclose(p, q, rtol=1e-7, atol=1e-9)
    # At temperature 1 the soft labels are the probabilities: not the same.
    warm = SelfDistillationClassifier(_tight_lr(), n_steps=3).fit(X, y)
    assert not np.allclose(warm.predict_proba(X), hard.predict_proba(X), atol=1e-3)


def test_hard_student_is_fit_on_teacher_predictions():
    X, y = _data(2, seed=6)
    clf = SelfDistillationClassifier(n_steps=1, pseudo_labels="hard").fit(X, y)
    teacher = LogisticRegression().fit(X, y)
    student = LogisticRegression().fit(X, teacher.predict(X))
    np.testing.assert_allclose(clf.predict_proba(X), student.predict_proba(X))


def test_predict_proba_temperature_path_without_decision_function():
    """Without decision_function, targets are normalised predict_proba ** (1/T)."""
    X, y = _data(3, seed=7)
    T, xi = 0.5, 0.8
    clf = SelfDistillationClassifier(GaussianNB(), n_steps=1, xi=xi, temperature=T).fit(
        X, y
    )
    P = GaussianNB().fit(X, y).predict_proba(X) ** (1 / T)
    P /= P.sum(axis=1, keepdims=True)
    targets = xi * P + (1 - xi) * np.eye(3)[y]
    rows = np.repeat(np.arange(len(y)), 3)
    labels = np.tile(np.arange(3), len(y))
    w = targets.ravel()
    keep = w > 0
    expected = GaussianNB().fit(X[rows[keep]], labels[keep], sample_weight=w[keep])
    np.testing.assert_allclose(
        clf.predict_proba(X), expected.predict_proba(X), rtol=1e-10
    )
    assert not hasattr(clf, "decision_function")


def test_string_labels_and_staged_outputs():
    X, y = _data(3, seed=8)
    names = np.array(["cat", "dog", "emu"])
    clf = SelfDistillationClassifier(n_steps=2, xi=[0.5, 1.0]).fit(X, names[y])
    ref = SelfDistillationClassifier(n_steps=2, xi=[0.5, 1.0]).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, names)
    np.testing.assert_array_equal(clf.predict(X), names[ref.predict(X)])
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X))
    staged = list(clf.staged_predict_proba(X))
    assert len(staged) == 3 == len(clf.estimators_)
    np.testing.assert_array_equal(staged[-1], clf.predict_proba(X))
    labels = list(clf.staged_predict(X))
    np.testing.assert_array_equal(labels[-1], clf.predict(X))
    np.testing.assert_allclose(
        clf.decision_function(X), clf.estimators_[-1].decision_function(X)
    )
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)))
    assert clf.n_steps_ == 2


def test_linear_svc_soft_labels_from_decision_function():
    """Estimators without predict_proba distil through sigmoid(margin / T)."""
    X, y = _data(2, seed=9)
    svc = LinearSVC(C=0.5, tol=1e-10, max_iter=100000)
    clf = SelfDistillationClassifier(svc, n_steps=1, temperature=0.5).fit(X, y)
    assert not hasattr(clf, "predict_proba")
    margin = svc.fit(X, y).decision_function(X) / 0.5
    w = np.column_stack([expit(-margin), expit(margin)]).ravel()
    rows = np.repeat(np.arange(len(y)), 2)
    labels = np.tile([0, 1], len(y))
    expected = LinearSVC(C=0.5, tol=1e-10, max_iter=100000).fit(
        X[rows], labels, sample_weight=w
    )
    np.testing.assert_allclose(
        clf.decision_function(X), expected.decision_function(X), rtol=1e-6
    )


def test_early_stopping_keeps_improving_stages():
    X, y, _ = make_noisy_gaussian_mixture(300, 100, random_state=0)
    params = dict(n_steps=6, pseudo_labels="hard")
    est = _tight_lr(C=0.05)
    clf = SelfDistillationClassifier(
        est, early_stopping=True, validation_fraction=0.3, random_state=1, **params
    ).fit(X, y)
    scores = clf.validation_scores_
    assert len(clf.estimators_) == clf.n_steps_ + 1
    assert np.all(np.diff(scores[: clf.n_steps_ + 1]) > 0)
    if clf.n_steps_ < params["n_steps"]:
        assert scores.shape[0] == clf.n_steps_ + 2
        assert scores[-1] <= scores[-2]
    # Independent check: the same stages fitted on the same training part.
    X_tr, X_val, y_tr, y_val = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=1
    )
    full = SelfDistillationClassifier(est, **params).fit(X_tr, y_tr)
    expected = [(e.predict(X_val) == y_val).mean() for e in full.estimators_]
    np.testing.assert_allclose(scores, expected[: scores.shape[0]])
    np.testing.assert_allclose(
        clf.predict_proba(X_val),
        full.estimators_[clf.n_steps_].predict_proba(X_val),
    )


def test_single_class_pseudo_labels_become_constant_stage():
    X, y = _data(2, seed=10)
    y = np.where(np.arange(len(y)) < 50, 0, y)  # mostly class 0
    clf = SelfDistillationClassifier(
        LogisticRegression(C=1e-6), n_steps=1, pseudo_labels="hard"
    )
    with pytest.warns(UserWarning, match="single class"):
        clf.fit(X, y)
    assert isinstance(clf.estimators_[-1], DummyClassifier)
    np.testing.assert_array_equal(clf.predict(X), np.zeros(len(y)))
    np.testing.assert_array_equal(clf.predict_proba(X)[:, 1], 0.0)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"xi": 1.5}, "xi"),
        ({"xi": [0.5, 0.5], "n_steps": 3}, re.escape("xi must be a float or an")),
        ({"temperature": 0.0}, "temperature"),
        ({"pseudo_labels": "sharp"}, "pseudo_labels"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        (
            {"estimator": KNeighborsClassifier(), "pseudo_labels": "hard"},
            "sample_weight",
        ),
        ({"estimator": GaussianNB(), "fix_intercept": True}, "fix_intercept"),
        (
            {"estimator": LogisticRegression(l1_ratio=1.0), "fix_intercept": True},
            "L2",
        ),
        (
            {
                "estimator": LogisticRegression(class_weight="balanced"),
                "fix_intercept": True,
            },
            "class_weight",
        ),
    ],
)
def test_bad_parameters_raise_in_fit(params, match):
    X, y = _data(2)
    clf = SelfDistillationClassifier(**params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_nested_parameters_are_tunable():
    clf = SelfDistillationClassifier(LogisticRegression())
    params = clf.get_params()
    assert {"xi", "temperature", "estimator__C"} <= set(params)
    clf.set_params(estimator__C=0.25, temperature=2.0)
    X, y = _data(2)
    clf.fit(X, y)
    assert all(e.C == 0.25 for e in clf.estimators_)
    # Default estimator is a LogisticRegression.
    default = SelfDistillationClassifier().fit(X, y)
    assert isinstance(default.estimators_[0], LogisticRegression)


def test_tuned_by_self_distill_cv():
    """SelfDistillCV's optuna search tunes xi, temperature and estimator__C.

    Classifiers are split stratified and scored with the given scorer: the
    best score equals an independent cross_val_score of the best parameters.
    """
    pytest.importorskip("optuna")
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from skdistill import SelfDistillCV

    X, y, _ = make_noisy_gaussian_mixture(120, 10, random_state=0)
    est = SelfDistillationClassifier(LogisticRegression(fit_intercept=False))
    search = SelfDistillCV(
        est,
        cv=3,
        scoring="neg_log_loss",
        n_trials=6,
        random_state=0,
        param_distributions={
            "n_steps": CategoricalDistribution([0, 1, 2]),
            "xi": FloatDistribution(0.0, 1.0),
            "temperature": FloatDistribution(0.1, 10.0, log=True),
            "estimator__C": FloatDistribution(1e-3, 1e2, log=True),
        },
    ).fit(X, y)
    assert set(search.best_params_) == {"n_steps", "xi", "temperature", "estimator__C"}
    expected = cross_val_score(
        clone(est).set_params(**search.best_params_),
        X,
        y,
        cv=StratifiedKFold(3),
        scoring="neg_log_loss",
    )
    np.testing.assert_allclose(search.best_score_, expected.mean(), rtol=1e-10)
    assert search.best_score_ == np.max(search.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(search.classes_, [0, 1])
    np.testing.assert_array_equal(search.predict(X), search.best_estimator_.predict(X))


def test_student_missing_a_class():
    """A class absent from a student's pseudo-labels gets probability 0."""
    rng = np.random.default_rng(0)
    X = np.vstack(
        [
            rng.normal(-2, 1, (45, 2)),
            rng.normal(2, 1, (45, 2)),
            rng.normal(0, 1, (10, 2)),
        ]
    )
    y = np.repeat(["a", "b", "c"], [45, 45, 10])
    lr = LogisticRegression(C=0.01)
    clf = SelfDistillationClassifier(lr, n_steps=1, pseudo_labels="hard").fit(X, y)
    teacher = LogisticRegression(C=0.01).fit(X, y)
    assert "c" not in teacher.predict(X)  # the premise of the test
    # Independent: a binary logistic regression on the teacher's predictions.
    student = LogisticRegression(C=0.01).fit(X, teacher.predict(X))
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba[:, :2], student.predict_proba(X), rtol=1e-6)
    np.testing.assert_array_equal(proba[:, 2], 0.0)
    scores = clf.decision_function(X)
    assert scores.shape == (100, 3)
    np.testing.assert_array_equal(scores[:, 2], -np.inf)
    np.testing.assert_allclose(
        scores[:, 1] - scores[:, 0], student.decision_function(X), rtol=1e-6
    )
    np.testing.assert_array_equal(clf.predict(X), student.predict(X))


def test_grid_search_over_nested_parameter_of_default_estimator():
    """GridSearchCV(SelfDistillationClassifier(), {"estimator__C": ...}) works.

    Each candidate's score equals an independent cross_val_score of an
    explicit LogisticRegression(C=...).
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

    X, y = make_classification(n_samples=90, n_features=6, random_state=3)
    grid = [1e-3, 10.0]
    search = GridSearchCV(
        SelfDistillationClassifier(),
        {"estimator__C": grid},
        cv=StratifiedKFold(3),
        scoring="neg_log_loss",
    ).fit(X, y)
    expected = [
        cross_val_score(
            SelfDistillationClassifier(LogisticRegression(C=c)),
            X,
            y,
            cv=StratifiedKFold(3),
            scoring="neg_log_loss",
        ).mean()
        for c in grid
    ]
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], expected, rtol=1e-12
    )
    assert abs(expected[0] - expected[1]) > 0.1  # C changes the log-loss
    assert search.best_estimator_.estimator.C == grid[int(np.argmax(expected))]


def _platt_svc():
    from sklearn.svm import SVC

    if "probability" not in SVC().get_params():
        pytest.skip("this scikit-learn has no SVC(probability=True)")
    return SVC(probability=True, random_state=0)


@pytest.mark.filterwarnings("ignore:The `probability` parameter:FutureWarning")
def test_students_whose_calibration_ignores_weights_warn():
    """SVC(probability=True) fits Platt scaling on the repeated rows unweighted.

    Its students' predict_proba then contradicts their predict: a warning
    says so. Estimators that calibrate with the weights, or targets that
    repeat no row, fit without one and stay consistent.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    clf = SelfDistillationClassifier(_platt_svc(), n_steps=1)
    with pytest.warns(UserWarning, match="stage 1 contradicts its predict"):
        clf.fit(X, y)
    # The warning is true: most rows' probabilities favour the other class.
    proba_label = clf.classes_[np.argmax(clf.predict_proba(X), axis=1)]
    assert np.mean(proba_label != clf.predict(X)) > 0.5

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        hard = SelfDistillationClassifier(_platt_svc(), pseudo_labels="hard")
        hard.fit(X, y)
        calibrated = SelfDistillationClassifier(
            CalibratedClassifierCV(SVC(), ensemble=False), n_steps=2
        ).fit(X, y)
        logistic = SelfDistillationClassifier(n_steps=2).fit(X, y)
    for est in (calibrated, logistic):
        proba_label = est.classes_[np.argmax(est.predict_proba(X), axis=1)]
        np.testing.assert_array_equal(proba_label, est.predict(X))
