"""Tests of make_noisy_gaussian_mixture."""

import numpy as np
import pytest
from scipy.stats import norm

from skdistill.datasets import make_noisy_gaussian_mixture


def test_shapes_labels_and_reproducibility():
    X, y_noisy, y_clean = make_noisy_gaussian_mixture(50, 7, random_state=3)
    assert X.shape == (50, 7)
    assert y_noisy.shape == y_clean.shape == (50,)
    assert set(np.unique(y_clean)) <= {0, 1}
    assert set(np.unique(y_noisy)) <= {0, 1}
    X2, y2, yc2 = make_noisy_gaussian_mixture(50, 7, random_state=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y_noisy, y2)
    np.testing.assert_array_equal(y_clean, yc2)


@pytest.mark.parametrize("class_ratio, flip_rate", [(0.5, 0.3), (0.2, 0.1)])
def test_class_ratio_and_flip_rate(class_ratio, flip_rate):
    n = 40000
    _, y_noisy, y_clean = make_noisy_gaussian_mixture(
        n, 2, class_ratio=class_ratio, flip_rate=flip_rate, random_state=0
    )
    # Binomial proportions, within 5 standard errors.
    for p_hat, p in [
        (y_clean.mean(), class_ratio),
        ((y_noisy != y_clean).mean(), flip_rate),
    ]:
        assert abs(p_hat - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_class_means_and_noise_variance():
    n, d, var = 20000, 16, 0.7
    X, _, y = make_noisy_gaussian_mixture(n, d, noise_variance=var, random_state=1)
    mu = np.full(d, 1 / np.sqrt(d))
    for label, sign in [(1, 1.0), (0, -1.0)]:
        Xc = X[y == label]
        se = np.sqrt(var / Xc.shape[0])
        np.testing.assert_allclose(Xc.mean(axis=0), sign * mu, atol=5 * se)
        resid = Xc - sign * mu
        # Variance of a sample variance of normals: 2 var^2 / m.
        np.testing.assert_allclose(
            resid.var(axis=0), var, atol=5 * var * np.sqrt(2 / Xc.shape[0])
        )


def test_bayes_classifier_error():
    """The Bayes rule sign(mu . x) errs with probability Phi(-1 / sigma)."""
    n, var = 100000, 0.5
    X, y_noisy, y_clean = make_noisy_gaussian_mixture(
        n, 40, noise_variance=var, random_state=2
    )
    pred = (X.sum(axis=1) > 0).astype(int)
    p = norm.cdf(-1 / np.sqrt(var))
    assert abs((pred != y_clean).mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
    # Against the noisy labels, the error is p (1 - r) + (1 - p) r.
    q = p * 0.7 + (1 - p) * 0.3
    assert abs((pred != y_noisy).mean() - q) < 5 * np.sqrt(q * (1 - q) / n)


def test_extreme_flip_rates():
    _, y0, yc0 = make_noisy_gaussian_mixture(100, 3, flip_rate=0.0, random_state=0)
    np.testing.assert_array_equal(y0, yc0)
    _, y1, yc1 = make_noisy_gaussian_mixture(100, 3, flip_rate=1.0, random_state=0)
    np.testing.assert_array_equal(y1, 1 - yc1)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"noise_variance": 0.0}, "noise_variance"),
        ({"class_ratio": 1.5}, "class_ratio"),
        ({"flip_rate": -0.1}, "flip_rate"),
        ({"n_samples": 0}, "n_samples"),
    ],
)
def test_bad_parameters(kwargs, name):
    params = {"n_samples": 10, "n_features": 3, **kwargs}
    with pytest.raises(ValueError, match=name):
        make_noisy_gaussian_mixture(**params)
