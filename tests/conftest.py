"""Shared pytest configuration for the skdistill test suite."""

import os

from hypothesis import HealthCheck, settings

# Property tests must stay fast on a shared 2-core machine: a modest number of
# examples, no per-example deadline (BLAS timings vary with load), and a
# reproducible run unless HYPOTHESIS_PROFILE asks for something else.
settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
