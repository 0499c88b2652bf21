"""The noisy two-class Gaussian mixture of Takanami, Takahashi and Sakata."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["make_noisy_gaussian_mixture"]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "noise_variance": [Interval(Real, 0, None, closed="neither")],
        "class_ratio": [Interval(Real, 0, 1, closed="both")],
        "flip_rate": [Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_noisy_gaussian_mixture(
    n_samples,
    n_features,
    noise_variance=0.5,
    class_ratio=0.5,
    flip_rate=0.3,
    random_state=None,
):
    """Two Gaussian classes with randomly flipped labels.

    The data model of Takanami, Takahashi and Sakata (2025). Each sample
    draws its clean class ``c`` in ``{-1, +1}`` with ``P(c = +1) =
    class_ratio``, then ``x = c * mu + sqrt(noise_variance) * z`` with
    ``mu = (1, ..., 1) / sqrt(n_features)`` (so ``||mu|| = 1``) and ``z``
    standard normal. The observed label is the clean one flipped
    independently with probability ``flip_rate``. Labels are returned as
    ``1`` for ``c = +1`` and ``0`` for ``c = -1``. The Bayes error against the
    clean labels of the balanced mixture is ``Phi(-1 / sqrt(noise_variance))``
    (about 0.079 for the default variance of 0.5).

    Parameters
    ----------
    n_samples : int
        Number of samples.
    n_features : int
        Number of features ``d``.
    noise_variance : float, default=0.5
        Variance of each coordinate's Gaussian noise.
    class_ratio : float, default=0.5
        Probability of the class with mean ``+mu`` (label 1).
    flip_rate : float, default=0.3
        Probability that an observed label is flipped.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Samples.
    y_noisy : ndarray of shape (n_samples,)
        Observed labels in ``{0, 1}``, the clean ones flipped with
        probability ``flip_rate``: the training labels.
    y_clean : ndarray of shape (n_samples,)
        Clean labels in ``{0, 1}``: the labels to test against.

    References
    ----------
    .. [1] K. Takanami, T. Takahashi and A. Sakata. "The Effect of Optimal
       Self-Distillation in Noisy Gaussian Mixture Model". NeurIPS 2025.
       arXiv:2501.16226.

    Examples
    --------
    >>> from skdistill.datasets import make_noisy_gaussian_mixture
    >>> X, y_noisy, y_clean = make_noisy_gaussian_mixture(
    ...     1000, 20, flip_rate=0.3, random_state=0)
    >>> X.shape
    (1000, 20)
    >>> float((y_noisy != y_clean).mean())
    0.31
    """
    rng = check_random_state(random_state)
    y_clean = (rng.uniform(size=n_samples) < class_ratio).astype(np.int64)
    sign = 2.0 * y_clean - 1.0
    mu = np.full(n_features, 1.0 / np.sqrt(n_features))
    noise = rng.standard_normal((n_samples, n_features))
    X = sign[:, None] * mu + np.sqrt(noise_variance) * noise
    flip = rng.uniform(size=n_samples) < flip_rate
    y_noisy = np.where(flip, 1 - y_clean, y_clean)
    return X, y_noisy, y_clean
