"""End-to-end tests of ``python -m skdistill.reproduce``."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from skdistill import RepeatedSelfDistillationRegressor
from skdistill.reproduce import PAPER_TABLE1, main
from skdistill.theory import optimal_xi_bar, risk_lower_bound

SHARED = os.environ.get("SKDISTILL_DATA")


@pytest.mark.skipif(
    not SHARED or not Path(SHARED, "AirQualityUCI.csv").exists(),
    reason="SKDISTILL_DATA does not point at the shared UCI files, and the test "
    "does not download them",
)
def test_table1_matches_the_paper(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    results = main(["table1", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert "paper" in out and "Air Quality" in out
    assert (tmp_path / "table1.png").stat().st_size > 0
    saved = json.loads((tmp_path / "table1.json").read_text())
    assert saved["results"].keys() == PAPER_TABLE1.keys()
    # Every key of the results is explained, and the versions are recorded.
    assert {"skdistill", "numpy", "scipy", "scikit-learn"} <= saved["versions"].keys()
    documented = " ".join(saved["keys"])
    for row_key in saved["results"]["AEP"]["steps"][1]:
        stem = row_key.replace("_check", "")
        assert row_key in documented or stem in documented, row_key
    assert "not validated" not in out
    for name, paper in PAPER_TABLE1.items():
        rows = results[name]["steps"]
        assert [row["n_steps"] for row in rows] == [0, 1, 2, 3, 4]
        ours = [row["test_mse"] for row in rows[:3]]
        np.testing.assert_allclose(ours, paper, atol=0.01, err_msg=name)
        for row in rows[:3]:
            # SelfDistillCV with the predefined split and the direct
            # optimiser make the same choice where the paper reports.
            assert row["alpha"] == row["alpha_check"]
            assert row["test_mse"] == pytest.approx(row["test_mse_check"], rel=1e-6)
        for row in rows:
            # The direct optimiser is exact: nothing validates better.
            assert row["val_mse_check"] <= row["val_mse"] * (1 + 1e-9)
            # The estimator refit through (possibly huge) xi realises the
            # filter chosen in xi_bar.
            assert row["test_mse_check"] == pytest.approx(
                row["test_mse_filter"], rel=1e-4
            )
            # Ridge is feasible for every k: validation error never increases.
            assert row["val_mse_check"] <= rows[0]["val_mse_check"] + 1e-12
        assert rows[0]["xi"] == [] and rows[0]["xi_bar"] == [1.0]
        for key in ("cv5", "cv5_ridge"):
            assert np.isfinite(results[name][key]["test_mse"])
        assert results[name]["cv5_ridge"]["n_steps"] == 0


def test_table1_ridge_row_is_sklearn_ridge():
    # The k = 0 selection is plain ridge: compare the estimator on random data
    # with scikit-learn's Ridge at the chosen alpha.
    from sklearn.linear_model import Ridge

    from skdistill.reproduce import TABLE1_ALPHAS, _select_on_validation

    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 4))
    y = X @ [1.0, 0.0, -1.0, 0.5] + rng.standard_normal(90)
    train, val = (X[:40], y[:40]), (X[40:], y[40:])
    U, s, Vt = np.linalg.svd(train[0], full_matrices=False)
    mse, alpha, xi_bar = _select_on_validation(
        (s, Vt, U.T @ train[1]), val, TABLE1_ALPHAS, 0
    )
    errors = [
        np.mean(
            (val[1] - Ridge(alpha=a, fit_intercept=False).fit(*train).predict(val[0]))
            ** 2
        )
        for a in TABLE1_ALPHAS
    ]
    assert alpha == TABLE1_ALPHAS[int(np.argmin(errors))]
    assert mse == pytest.approx(min(errors))
    # and the 2-step choice beats every point of a brute-force xi grid
    mse2, alpha2, xi_bar2 = _select_on_validation(
        (s, Vt, U.T @ train[1]), val, TABLE1_ALPHAS, 2
    )
    for a in TABLE1_ALPHAS[::2]:
        for x1 in np.linspace(-3, 3, 7):
            for x2 in np.linspace(-3, 3, 7):
                reg = RepeatedSelfDistillationRegressor(
                    alpha=a, n_steps=2, xi=[x1, x2], fit_intercept=False
                ).fit(*train)
                assert mse2 <= np.mean((val[1] - reg.predict(val[0])) ** 2) + 1e-12


def test_separation(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    results = main(["separation", "--out", str(tmp_path), "--ranks", "2", "5", "10"])
    captured = capsys.readouterr()
    assert "Figure 3" in captured.err  # progress display
    assert "lower bound" in captured.out
    assert (tmp_path / "separation.png").stat().st_size > 0
    f2 = results["figure2"]
    bound = f2["lower_bound"]
    risks = {int(k): np.asarray(v) for k, v in f2["risk"].items()}
    # r = 4 steps reach the Theorem 4 bound at every alpha; fewer do not
    # everywhere, and more steps never hurt.
    np.testing.assert_allclose(risks[4], bound, rtol=1e-8)
    assert risks[3].max() > 1.1 * bound
    # The user guide (when_it_helps.rst) quotes the printed ratios of three
    # steps: 1.40 at alpha = 0.01, 1.09 at 0.1, 1.0001 at 1, 1.0000 at 10.
    alphas = np.asarray(f2["alphas"])

    def ratio3(alpha):
        return risks[3][np.argmin(np.abs(np.log(alphas / alpha)))] / bound

    assert round(ratio3(0.01), 2) == 1.40 and round(ratio3(0.1), 2) == 1.09
    assert round(ratio3(1.0), 4) == 1.0001 and round(ratio3(10.0), 4) == 1.0
    for k in range(4):
        assert np.all(risks[k + 1] <= risks[k] * (1 + 1e-10))
    # The ratio best ridge / best multi-step grows with the rank.
    f3 = results["figure3"]
    for s_min in ("0.8", "0.5"):
        ratios = f3[s_min]["ridge"]
        assert ratios[0] > 1 and np.all(np.diff(ratios) > 0)
        assert np.all(np.asarray(f3[s_min]["one_step"]) <= np.asarray(ratios) + 1e-9)


def test_separation_bound_is_reached_by_r_steps_in_figure3_setting():
    # Independent of reproduce: for r = 3 the r-step oracle risk equals the
    # bound used as the denominator of Figure 3.
    from skdistill.datasets import make_self_distillation_regression

    X, _, coef = make_self_distillation_regression(
        n_samples=100, n_features=100, rank=3, decay=np.log(1 / 0.8) / np.log(3),
        random_state=0,
    )  # fmt: skip
    bound = risk_lower_bound(X, coef, noise=0.1)
    for alpha in (0.1, 1.0, 10.0):
        risk = optimal_xi_bar(X, coef, noise=0.1, alpha=alpha, n_steps=3)[1]
        assert risk == pytest.approx(bound, rel=1e-8)


# Failures outside the computation: one clear line on stderr, before any work.


@pytest.fixture
def no_work(monkeypatch):
    """Make the experiments fail the test if they start."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the experiment started although it cannot finish")

    monkeypatch.setattr("skdistill.reproduce.table1", forbidden)
    monkeypatch.setattr("skdistill.reproduce.separation", forbidden)


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # no traceback
    assert err.startswith("python -m skdistill.reproduce ")
    return err


def test_help_describes_experiments_and_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in [
        "table1 Ridge and 1- to MAX_STEPS-step",
        "separation The exact excess risks",
        "SKDISTILL_DATA",
        "largest number of distillation steps k (table1) (default: 4)",
        "(default: [2, 3, 5, 10, 20, 50, 100])",
        "--no-plot",
    ]:
        assert text in out


def test_missing_matplotlib_is_reported_before_the_work(
    tmp_path, capsys, monkeypatch, no_work
):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exc:
        main(["separation", "--out", str(out)])
    assert exc.value.code == 2
    err = _error_line(capsys)
    assert "pip install matplotlib" in err and "--no-plot" in err
    assert not out.exists()


def test_no_plot_needs_no_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    results = main(
        ["separation", "--out", str(tmp_path), "--ranks", "2", "--quiet", "--no-plot"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["separation.json"]
    saved = json.loads((tmp_path / "separation.json").read_text())["results"]
    assert saved["figure2"]["lower_bound"] == results["figure2"]["lower_bound"]
    assert "Wrote" in capsys.readouterr().out


def test_table1_without_data_offline(tmp_path, capsys, monkeypatch, no_work):
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SKDISTILL_DATA", str(data))
    monkeypatch.setattr("skdistill.datasets._uci.urllib.request.urlopen", offline)
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exc:
        main(["table1", "--out", str(out), "--no-plot"])
    assert exc.value.code == 2
    err = _error_line(capsys)
    assert f"SKDISTILL_DATA={data}" in err
    assert "AirQualityUCI.csv" in err and "name resolution" in err
    assert not out.exists()  # no empty results folder
    assert list(data.iterdir()) == []  # no partial download left behind


@pytest.mark.parametrize("kind", ["file", "under a file"])
def test_unwritable_out_is_reported_before_the_work(tmp_path, capsys, kind, no_work):
    # A path under a regular file cannot be created, even by root (a
    # read-only mode would not stop root).
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = blocker if kind == "file" else blocker / "results"
    with pytest.raises(SystemExit) as exc:
        main(["separation", "--out", str(out), "--no-plot"])
    assert exc.value.code == 2
    err = _error_line(capsys)
    assert f"cannot write the results into --out {out}" in err
