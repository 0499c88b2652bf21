"""Order of the examples in the gallery: the Quickstart, pipelines and many
targets first, then by name.

Used by ``docs/conf.py`` as sphinx-gallery's ``within_subsection_order``
(named by its import path, so that Sphinx can cache the configuration).
"""

from pathlib import Path

#: Examples shown first, in this order; the others follow by file name.
FIRST = ("plot_quickstart.py", "plot_pipelines.py", "plot_many_targets.py")


class ExampleOrder:
    """Sort key of the examples of one gallery folder.

    Parameters
    ----------
    src_dir : str or path-like
        The gallery folder (sphinx-gallery passes it; unused).
    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        if name in FIRST:
            return (0, FIRST.index(name), "")
        return (1, 0, name)

    def __repr__(self):
        return f"{type(self).__name__}()"
