"""Every gallery example runs as a test.

Each ``examples/plot_*.py`` is executed as a script (``runpy``) with the Agg
backend, from a temporary working directory so that files it writes go
nowhere. An example that reads the UCI files (its source mentions
``SKDISTILL_DATA`` or calls a ``skdistill.datasets.fetch_*`` loader) is skipped,
with that reason, when the ``SKDISTILL_DATA`` environment variable is unset: the
tests never download.
"""

import ast
import contextlib
import os
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

from skdistill.exceptions import AlphaGridWarning

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


def _check_quickstart(namespace, out):
    # Ridge is one of SelfDistillCV's candidates on the same folds and alphas,
    # as the page says: its CV error cannot be above RidgeCV's (up to the
    # rounding of two different solvers, relative 1e-9).
    assert namespace["cv_sd"] <= namespace["cv_ridge"] * (1 + 1e-9)
    # The ratios printed are those of the two models' errors, all positive and
    # finite, one per seed.
    for _, ratios, steps in namespace["rows"]:
        assert len(ratios) == len(steps) == 5
        assert np.all(np.isfinite(ratios)) and np.all(ratios > 0)
    # The page's reading of the diabetes row: ridge on most splits, and the
    # test error within a percent of RidgeCV's on every split.
    name, ratios, steps = namespace["rows"][0]
    assert name.startswith("diabetes")
    assert sum(k == 0 for k in steps) > len(steps) / 2
    assert np.all(np.abs(ratios - 1) < 0.01)
    # Every printed number is labelled (a newcomer must not need the source).
    for label in [
        "n_steps_ (0 = ridge)",
        "ridge penalty, alpha_",
        "mixing weight of each step, xi_",
        "fold ridge filters, xi_bar_ (sum 1)",
        "5-fold CV on the training split",
        "held-out test split",
        "SelfDistillCV's error divided by RidgeCV's",
        "below 1: self-distillation did better",
    ]:
        assert label in out, label


def _check_table1(namespace, out):
    from skdistill.reproduce import PAPER_TABLE1

    # The page uses the command's default, so its text and the README's
    # command describe the same numbers.
    assert namespace["max_steps"] == 4
    for name, paper in PAPER_TABLE1.items():
        rows = namespace["results"][name]["steps"]
        np.testing.assert_allclose(
            [row["test_mse"] for row in rows[:3]], paper, atol=0.01, err_msg=name
        )
    assert out.count(" beats ridge") + out.count(" does not beat ridge") == 3


def _check_many_targets(namespace, out):
    from sklearn.linear_model import Ridge

    from skdistill import RepeatedSelfDistillationRegressor

    search, ridge = namespace["search"], namespace["ridge"]
    X, Y, X_test = namespace["X"], namespace["Y"], namespace["X_test"]
    n_targets = Y.shape[1]
    # One estimator with one documented type per attribute, as the page says.
    assert isinstance(search.best_estimator_, RepeatedSelfDistillationRegressor)
    assert search.alpha_.shape == search.n_steps_.shape == (n_targets,)
    width = search.n_steps_.max() + 1
    assert search.xi_bar_.shape == (n_targets, width)
    np.testing.assert_allclose(search.xi_bar_.sum(axis=1), 1.0, rtol=1e-10)
    padding = np.arange(width) > search.n_steps_[:, None]
    assert np.all(search.xi_bar_[padding] == 0)
    # Predictions against an independent computation, scikit-learn's Ridge
    # (per-target alpha) and the students' definition as a chain of Ridge
    # fits; tolerance from the conditioning of X^T X + alpha (the chain
    # amplifies rounding by up to 1 + |xi| per step).
    sv = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    rtol = (
        1e3 * np.finfo(float).eps * sv[0] ** 2 / (sv[-1] ** 2 + namespace["alphas"][0])
    )

    def close(actual, expected, factor=1.0):
        atol = rtol * factor * np.abs(expected).max()
        np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)

    close(ridge.predict(X_test), Ridge(alpha=ridge.alpha_).fit(X, Y).predict(X_test))
    kept = search.n_steps_ == 0
    expected = Ridge(alpha=search.alpha_[kept]).fit(X, Y[:, kept]).predict(X_test)
    close(search.predict(X_test)[:, kept], expected)
    xi_size = np.nanmax(np.abs(search.xi_), axis=1, initial=0.0)
    checked = np.flatnonzero((search.n_steps_ > 0) & (xi_size <= 10))[:5]
    assert len(checked) == 5
    for j in checked:
        alpha, y = search.alpha_[j], Y[:, j]
        model = Ridge(alpha=alpha).fit(X, y)
        for xi in search.xi_[j, : search.n_steps_[j]]:
            model = Ridge(alpha=alpha).fit(X, xi * model.predict(X) + (1 - xi) * y)
        expected = model.predict(X_test)
        factor = (1 + xi_size[j]) ** search.n_steps_[j]
        close(search.predict(X_test)[:, j], expected, factor)
    # The page's story: students are chosen, and gain, where the signal is
    # aligned with the top principal direction, and hardly elsewhere.
    aligned, ratio = namespace["aligned"], namespace["ratio"]
    student = search.n_steps_ > 0
    assert (student & aligned).sum() > 10 * (student & ~aligned).sum()
    assert np.median(ratio[student & aligned]) < 0.8
    for label in [
        "chose a student)",
        "median fitted alpha_",
        "median, targets with a student",
        "more than 5% worse",
        "ridge-only search",
    ]:
        assert label in out, label


_RESULT_CHECKS = {
    "plot_quickstart.py": _check_quickstart,
    "plot_many_targets.py": _check_many_targets,
    "plot_table1.py": _check_table1,
}


# Warnings an example shows on purpose (its text discusses them): asserted,
# so that they neither clutter the test summary nor vanish unnoticed.
_EXPECTED_WARNINGS = {
    "plot_quickstart.py": (AlphaGridWarning, "largest value of the grid"),
}


def _expected_warning(name):
    if name not in _EXPECTED_WARNINGS:
        return contextlib.nullcontext()
    category, match = _EXPECTED_WARNINGS[name]
    return pytest.warns(category, match=match)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(path, tmp_path, monkeypatch, capsys):
    if _NEEDS_DATA.search(path.read_text()) and not os.environ.get("SKDISTILL_DATA"):
        pytest.skip(f"{path.name} reads the UCI files; set SKDISTILL_DATA to run it")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [str(path)])
    plt.close("all")
    try:
        with _expected_warning(path.name):
            namespace = runpy.run_path(str(path), run_name="__main__")
        # Every gallery page shows a figure (and gets a thumbnail from it).
        assert plt.get_fignums(), f"{path.name} draws no figure"
        for num in plt.get_fignums():
            assert plt.figure(num).axes, f"{path.name}: figure {num} is empty"
    finally:
        plt.close("all")
    out = capsys.readouterr().out
    assert out.strip(), f"{path.name} prints nothing"
    if path.name in _RESULT_CHECKS:
        _RESULT_CHECKS[path.name](namespace, out)


def test_result_checks_name_existing_examples():
    names = {path.name for path in EXAMPLES}
    assert set(_RESULT_CHECKS) <= names
    assert set(_EXPECTED_WARNINGS) <= names


# Sphinx roles such as :class:`~pkg.Name` are left as raw text in the Jupyter
# notebooks that sphinx-gallery writes (it converts only :math: and :ref:).
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|obj|exc|data|term|doc):`")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_text_has_no_sphinx_roles(path):
    text = path.read_text()
    assert not _ROLE.findall(text), f"{path.name} uses Sphinx roles in its text"


@pytest.mark.parametrize(
    "path",
    [p for p in EXAMPLES if _NEEDS_DATA.search(p.read_text())],
    ids=lambda path: path.name,
)
def test_data_example_says_why_it_may_show_no_output(path):
    # The docs build runs it only with SKDISTILL_DATA: the page must say so.
    docstring = " ".join(ast.get_docstring(ast.parse(path.read_text())).split())
    assert "show no output" in docstring
    assert "SKDISTILL_DATA" in docstring


def test_gallery_shows_the_quickstart_pipelines_and_many_targets_first():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gallery_order", EXAMPLES_DIR.parent / "docs" / "sphinxext" / "gallery_order.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    key = module.ExampleOrder(str(EXAMPLES_DIR))
    order = sorted((path.name for path in EXAMPLES), key=key)
    first = ["plot_quickstart.py", "plot_pipelines.py", "plot_many_targets.py"]
    assert order[:3] == first
    assert order[3:] == sorted(order[3:])
    conf = (EXAMPLES_DIR.parent / "docs" / "conf.py").read_text()
    assert '"within_subsection_order": "gallery_order.ExampleOrder"' in conf
