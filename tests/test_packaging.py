"""The source distribution and the package metadata.

The sdist must hold everything its own tests read (``tests/conftest.py``,
``examples/``, the ``Makefile``), and the metadata must install: one version
source, an optuna floor compatible with the scipy floor.
"""

import re
import sys
from pathlib import Path

import pytest

import skdistill

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

filelist = pytest.importorskip("setuptools._distutils.filelist")


def _manifest_files(root):
    """Files that ``MANIFEST.in`` adds to the sdist, as setuptools reads it."""
    files = filelist.FileList()
    files.findall(str(root))
    files.files = [str(Path(f).relative_to(root)) for f in files.allfiles]
    files.allfiles = list(files.files)
    kept = filelist.FileList()
    kept.allfiles = files.allfiles
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            kept.process_template_line(line)
    return {Path(f).as_posix() for f in kept.files}


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_sdist_ships_what_the_tests_read():
    # setuptools alone ships tests/test*.py but not conftest.py, the examples
    # that test_examples.py runs, or the Makefile.
    assert (ROOT / "MANIFEST.in").is_file()
    shipped = _manifest_files(ROOT)
    needed = [
        p.relative_to(ROOT).as_posix()
        for folder in ("tests", "examples", "benchmarks")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    needed += ["Makefile", "docs/conf.py", "docs/index.rst", "CHANGELOG.md"]
    missing = sorted(set(needed) - shipped)
    assert "tests/conftest.py" in shipped
    assert not missing, f"not in the sdist: {missing}"


def test_sdist_leaves_out_build_output(tmp_path):
    # Files that `make docs` and Python write are not sources.
    for name in [
        "docs/conf.py",
        "docs/_build/html/index.html",
        "docs/auto_examples/plot_quickstart.py",
        "docs/generated/skdistill.SelfDistillCV.rst",
        "docs/api.rst",
        "tests/test_a.py",
        "tests/__pycache__/test_a.cpython-311.pyc",
    ]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    shipped = _manifest_files(tmp_path)
    assert shipped == {"docs/conf.py", "tests/test_a.py"}


def test_version_has_one_source(pyproject):
    project = pyproject["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    source = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert source == {"attr": "skdistill.__version__"}
    assert re.fullmatch(
        r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", skdistill.__version__
    )


def _floor(requirements, name):
    """The ``>=`` floor of ``name`` in a list of requirement strings."""
    for req in requirements:
        match = re.fullmatch(rf"{name}(\[[^]]*\])?>=([\d.]+)", req.replace(" ", ""))
        if match:
            return tuple(int(part) for part in match.group(2).split("."))
    return None


def test_optuna_is_an_extra_with_a_floor_that_installs_with_scipy(pyproject):
    project = pyproject["project"]
    assert _floor(project["dependencies"], "optuna") is None
    extras = project["optional-dependencies"]
    # optuna 3.0.x requires scipy < 1.9; 3.1 dropped its scipy requirement.
    assert _floor(project["dependencies"], "scipy") >= (1, 9)
    for extra in ("optuna", "test", "docs"):
        assert _floor(extras[extra], "optuna") >= (3, 1), extra


def test_classifiers_state_status_and_python_versions(pyproject):
    project = pyproject["project"]
    classifiers = project["classifiers"]
    assert any(c.startswith("Development Status ::") for c in classifiers)
    lowest = re.fullmatch(r">=3\.(\d+)", project["requires-python"]).group(1)
    assert f"Programming Language :: Python :: 3.{lowest}" in classifiers
    # No licence classifier next to a PEP 639 licence expression.
    assert not any(c.startswith("License ::") for c in classifiers)
