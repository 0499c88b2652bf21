"""Progress messages of the searches: live, flushed, one line per stage."""

import sys
import time

import numpy as np

__all__ = ["Progress", "count_summary"]


class Progress:
    """Prints ``[SelfDistillCV] <message> (<elapsed>s)`` lines as work goes on.

    Parameters
    ----------
    verbose : int
        Lines of ``level <= verbose`` are printed: 1 for each stage (folds,
        selection, nested estimate, refit), 2 also for each fold or trial.
    """

    def __init__(self, verbose):
        self.verbose = int(verbose)
        self.start = time.perf_counter()

    def __call__(self, message, level=1):
        if self.verbose >= level:
            elapsed = time.perf_counter() - self.start
            print(f"[SelfDistillCV] {message} ({elapsed:.2f}s)", file=sys.stdout)
            sys.stdout.flush()


def count_summary(values, noun):
    """``"0 for 3 targets, 1 for 2 targets"``: how often each value occurs."""
    uniq, counts = np.unique(np.asarray(values), return_counts=True)
    return ", ".join(
        f"{u} for {c} {noun}{'s' if c != 1 else ''}"
        for u, c in zip(uniq.tolist(), counts.tolist(), strict=True)
    )
