"""Column scalings shared by the speed benchmarks (isotropic data hide what
depends on the spectrum)."""

import numpy as np

#: ``isotropic``: standard normal ``X``; ``decaying``: column scales
#: decreasing linearly from 1 to 0.05; ``powerlaw``: column ``j`` scaled by
#: ``(1 + j) ** -1``.
FAMILIES = ["isotropic", "decaying", "powerlaw"]


def scaled_design(n, d, family, rng):
    """A standard normal ``(n, d)`` design with the family's column scales."""
    X = rng.normal(size=(n, d))
    if family == "decaying":
        X *= np.linspace(1.0, 0.05, d)
    elif family == "powerlaw":
        X *= (1.0 + np.arange(d)) ** -1.0
    elif family != "isotropic":
        raise ValueError(f"Unknown family {family!r}.")
    return X
