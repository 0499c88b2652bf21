"""Lazy import of matplotlib, which is not a dependency of skdistill."""


def _import_pyplot(caller):
    """``matplotlib.pyplot``, or an ImportError saying who needs it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a test dep
        raise ImportError(
            f"{caller} requires matplotlib; install it with "
            "`pip install matplotlib` (or, in a clone of skdistill, "
            "`pip install '.[plotting]'`)."
        ) from exc
    return plt
