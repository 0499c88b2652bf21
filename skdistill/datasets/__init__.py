"""Data sets: loaders for real UCI data and generators of synthetic problems."""

from ._gaussian_mixture import make_noisy_gaussian_mixture
from ._generators import make_self_distillation_regression
from ._uci import fetch_air_quality, fetch_airfoil_self_noise, fetch_appliances_energy

__all__ = [
    "fetch_air_quality",
    "fetch_airfoil_self_noise",
    "fetch_appliances_energy",
    "make_noisy_gaussian_mixture",
    "make_self_distillation_regression",
]
