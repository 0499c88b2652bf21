"""skdistill: repeated self-distillation for scikit-learn."""

from ._classifier import SelfDistillationClassifier
from ._cv import SelfDistillCV
from ._filter import filter_path, xi_bar_to_xi, xi_to_xi_bar
from ._kernel import KernelSelfDistillationRegressor
from ._linear import RepeatedSelfDistillationRegressor
from ._meta import SelfDistillationRegressor
from ._streaming import hash_folds

__version__ = "0.1.0.dev0"

__all__ = [
    "KernelSelfDistillationRegressor",
    "RepeatedSelfDistillationRegressor",
    "SelfDistillCV",
    "SelfDistillationClassifier",
    "SelfDistillationRegressor",
    "filter_path",
    "hash_folds",
    "xi_bar_to_xi",
    "xi_to_xi_bar",
    "__version__",
]
