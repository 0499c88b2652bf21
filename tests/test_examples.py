"""Every gallery example runs as a test.

Each ``examples/plot_*.py`` is executed as a script (``runpy``) with the Agg
backend, from a temporary working directory so that files it writes go
nowhere. An example that reads the UCI files (its source mentions
``SKDISTILL_DATA`` or calls a ``skdistill.datasets.fetch_*`` loader) is skipped,
with that reason, when the ``SKDISTILL_DATA`` environment variable is unset: the
tests never download.
"""

import ast
import os
import re
import runpy
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))
_NEEDS_DATA = re.compile(r"SKDISTILL_DATA|\bfetch_(air_quality|airfoil|appliances)")


def test_examples_found():
    # Guards against a moved directory silently turning the tests below off.
    assert any(path.name == "plot_filter_factors.py" for path in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_has_gallery_header(path):
    # sphinx-gallery needs a module docstring that opens with a title
    # underlined by "="; without one the docs build fails.
    docstring = ast.get_docstring(ast.parse(path.read_text()), clean=True)
    assert docstring, f"{path.name} has no module docstring"
    lines = [line for line in docstring.splitlines() if line.strip()]
    title = lines[1] if set(lines[0]) == {"="} else lines[0]
    underline = lines[2] if set(lines[0]) == {"="} else lines[1]
    assert set(underline) == {"="}, f"{path.name}: title not underlined with '='"
    assert len(underline) >= len(title), f"{path.name}: title underline too short"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(path, tmp_path, monkeypatch):
    if _NEEDS_DATA.search(path.read_text()) and not os.environ.get("SKDISTILL_DATA"):
        pytest.skip(f"{path.name} reads the UCI files; set SKDISTILL_DATA to run it")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [str(path)])
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        plt.close("all")
