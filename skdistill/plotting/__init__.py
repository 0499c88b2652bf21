"""Plots of fitted self-distillation models, in scikit-learn's Display style.

matplotlib is not a dependency of skdistill: it is imported only when a
display draws, as in :mod:`sklearn.inspection` and :mod:`sklearn.metrics`.
"""

from ._cv_display import SelfDistillCVDisplay
from ._filter_display import SpectralFilterDisplay

__all__ = ["SelfDistillCVDisplay", "SpectralFilterDisplay"]
