"""Synthetic data sets of the self-distillation literature."""

from ._gaussian_mixture import make_noisy_gaussian_mixture

__all__ = ["make_noisy_gaussian_mixture"]
