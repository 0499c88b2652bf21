"""Tests of the UCI fetchers and of the synthetic generator."""

import functools
import hashlib
import http.server
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.utils._param_validation import InvalidParameterError

from skdistill.datasets import (
    _uci,
    fetch_air_quality,
    fetch_airfoil_self_noise,
    fetch_appliances_energy,
    make_self_distillation_regression,
)

SHARED = os.environ.get("SKDISTILL_DATA")
needs_data = pytest.mark.skipif(
    not SHARED or not Path(SHARED, "airfoil_self_noise.dat").exists(),
    reason="SKDISTILL_DATA does not point at the shared UCI files",
)

FETCHERS = {
    "air_quality": (fetch_air_quality, _uci._AIR_QUALITY, (6941, 8)),
    "airfoil": (fetch_airfoil_self_noise, _uci._AIRFOIL, (1503, 5)),
    "appliances": (fetch_appliances_energy, _uci._APPLIANCES, (19735, 24)),
}


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def uci_server(tmp_path, monkeypatch):
    """A local copy of the UCI archive layout, served on 127.0.0.1."""
    root = tmp_path / "server"
    for remote in (_uci._AIRFOIL, _uci._APPLIANCES):
        target = root / remote.url_path
        target.parent.mkdir(parents=True)
        target.symlink_to(Path(SHARED, remote.filename))
    archive = root / _uci._AIR_QUALITY.url_path
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(Path(SHARED, "AirQualityUCI.csv"), "AirQualityUCI.csv")
    handler = functools.partial(_CountingHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.hits = []
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    monkeypatch.setattr(_uci, "_BASE_URL", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.delenv("SKDISTILL_DATA", raising=False)
    yield root, server.hits
    server.shutdown()
    server.server_close()


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@needs_data
@pytest.mark.parametrize("name", FETCHERS)
def test_cold_then_warm_cache(uci_server, tmp_path, name):
    fetch, remote, shape = FETCHERS[name]
    _, hits = uci_server
    cache = tmp_path / "cache"
    bunch = fetch(data_home=cache)
    assert hits == ["/" + remote.url_path]
    assert sorted(p.name for p in cache.iterdir()) == [remote.filename]
    assert _sha256(cache / remote.filename) == remote.sha256
    assert bunch.data.shape == shape
    # A warm cache reads the file without asking the server again.
    again = fetch(data_home=cache)
    assert len(hits) == 1
    np.testing.assert_array_equal(again.data, bunch.data)
    np.testing.assert_array_equal(again.target, bunch.target)


@needs_data
def test_corrupted_download_leaves_nothing(uci_server, tmp_path):
    root, hits = uci_server
    served = root / _uci._AIRFOIL.url_path
    data = bytearray(Path(SHARED, "airfoil_self_noise.dat").read_bytes())
    data[100] ^= 1  # one flipped bit
    served.unlink()
    served.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="sha256"):
        fetch_airfoil_self_noise(data_home=cache)
    assert len(hits) == 1
    assert list(cache.iterdir()) == []


@needs_data
def test_corrupted_zip_member_leaves_nothing(uci_server, tmp_path):
    root, _ = uci_server
    archive = root / _uci._AIR_QUALITY.url_path
    text = Path(SHARED, "AirQualityUCI.csv").read_bytes().replace(b"2,6", b"2,7", 1)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("AirQualityUCI.csv", text)
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="sha256"):
        fetch_air_quality(data_home=cache)
    assert list(cache.iterdir()) == []


@needs_data
def test_not_a_zip_fails_clearly(uci_server, tmp_path):
    root, _ = uci_server
    (root / _uci._AIR_QUALITY.url_path).write_bytes(b"<html>not found</html>")
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="not a zip file"):
        fetch_air_quality(data_home=cache)
    assert list(cache.iterdir()) == []


@needs_data
def test_missing_remote_fails_clearly(uci_server, tmp_path):
    root, _ = uci_server
    (root / _uci._APPLIANCES.url_path).unlink()
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="Could not download"):
        fetch_appliances_energy(data_home=cache)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("name", FETCHERS)
def test_no_download_if_missing(tmp_path, monkeypatch, name):
    fetch, remote, _ = FETCHERS[name]
    monkeypatch.setattr(_uci, "_BASE_URL", "http://127.0.0.1:9/never-used/")
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch(data_home=tmp_path, download_if_missing=False)
    assert list(tmp_path.iterdir()) == []


def test_tampered_cache_is_rejected(tmp_path):
    (tmp_path / "airfoil_self_noise.dat").write_text("800\t0\t0.3\t71.3\t0.002\t126\n")
    with pytest.raises(OSError, match="not the original UCI file"):
        fetch_airfoil_self_noise(data_home=tmp_path, download_if_missing=False)


@needs_data
def test_local_copy_through_environment(uci_server, monkeypatch):
    _, hits = uci_server
    monkeypatch.setenv("SKDISTILL_DATA", SHARED)
    X, y = fetch_airfoil_self_noise(return_X_y=True)
    assert X.shape == (1503, 5)
    assert hits == []


def test_default_cache_under_sklearn_data_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SKDISTILL_DATA", raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))
    assert _uci._data_dir(None) == tmp_path / "skdistill"
    monkeypatch.setenv("SKDISTILL_DATA", str(tmp_path / "env"))
    assert _uci._data_dir(None) == tmp_path / "env"
    assert _uci._data_dir(tmp_path / "given") == tmp_path / "given"


def test_invalid_parameters():
    with pytest.raises(InvalidParameterError, match="data_home"):
        fetch_airfoil_self_noise(data_home=3)
    with pytest.raises(InvalidParameterError, match="as_frame"):
        fetch_airfoil_self_noise(as_frame="yes")


# Parsing, checked against pandas (the README's recipes) and published numbers.


@needs_data
def test_air_quality_matches_pandas_and_readme():
    header, dates, times, values = _uci._parse_air_quality(
        Path(SHARED, "AirQualityUCI.csv")
    )
    assert values.shape == (9357, 13) and dates.shape == times.shape == (9357,)
    assert dates[0] == "10/03/2004" and times[-1] == "14.00.00"
    missing = dict(zip(header[2:], np.isnan(values).sum(axis=0), strict=True))
    assert missing["NMHC(GT)"] == 8443
    assert missing["CO(GT)"] == 1683
    assert missing["NOx(GT)"] == 1639
    assert missing["NO2(GT)"] == 1642
    assert missing["PT08.S1(CO)"] == missing["AH"] == 366
    c6h6 = values[:, header[2:].index("C6H6(GT)")]
    assert np.isfinite(c6h6).sum() == 8991
    assert round(np.nanmean(c6h6), 3) == 10.083

    df = pd.read_csv(Path(SHARED, "AirQualityUCI.csv"), sep=";", decimal=",")
    df = df.dropna(how="all").iloc[:, :15].replace(-200, np.nan)
    df = df.drop(columns="NMHC(GT)").dropna()
    bunch = fetch_air_quality(data_home=SHARED, as_frame=True)
    assert bunch.frame.shape == (6941, 9)
    np.testing.assert_array_equal(
        bunch.data.to_numpy(), df[bunch.feature_names].to_numpy(float)
    )
    np.testing.assert_array_equal(bunch.target.to_numpy(), df["NO2(GT)"].to_numpy())
    assert bunch.target_names == ["NO2(GT)"]
    assert "De Vito" in bunch.DESCR and "CC BY 4.0" in bunch.DESCR


@needs_data
def test_airfoil_matches_readme():
    bunch = fetch_airfoil_self_noise(data_home=SHARED)
    assert bunch.data.shape == (1503, 5) and bunch.frame is None
    assert round(bunch.target.mean(), 3) == 124.836
    assert round(bunch.target.std(ddof=1), 3) == 6.899
    assert (bunch.target.min(), bunch.target.max()) == (103.38, 140.987)
    df = pd.read_csv(Path(SHARED, "airfoil_self_noise.dat"), sep="\t", header=None)
    np.testing.assert_array_equal(bunch.data, df.iloc[:, :5].to_numpy())
    assert "Brooks" in bunch.DESCR and "CC BY 4.0" in bunch.DESCR


@needs_data
def test_appliances_matches_pandas_and_readme():
    X, y = fetch_appliances_energy(data_home=SHARED, return_X_y=True, as_frame=True)
    assert X.shape == (19735, 24)
    assert round(y.mean(), 3) == 97.695
    assert round(y.std(ddof=1), 3) == 102.525
    assert (y.min(), y.max()) == (10, 1080)
    assert not {"date", "lights", "Windspeed", "Visibility", "Appliances"} & set(X)
    np.testing.assert_array_equal(X["rv1"], X["rv2"])
    df = pd.read_csv(Path(SHARED, "energydata_complete.csv"))
    np.testing.assert_array_equal(X.to_numpy(), df[list(X.columns)].to_numpy(float))


# make_self_distillation_regression


def test_generator_spectrum_and_coef():
    s = [2.0, 1.0, 0.5]
    X, y, coef = make_self_distillation_regression(
        n_samples=30, n_features=5, singular_values=s, coef_directions=[0, 2],
        noise=0.0, random_state=0,
    )  # fmt: skip
    assert X.shape == (30, 5) and y.shape == (30,) and coef.shape == (5,)
    U, sv, Vt = np.linalg.svd(X)
    np.testing.assert_allclose(sv[:3], s, rtol=1e-12)
    np.testing.assert_allclose(sv[3:], 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(coef), 1.0)
    # coef lies in the span of the first and third right singular vectors,
    # with equal weight on both.
    proj = Vt[:3] @ coef
    np.testing.assert_allclose(
        np.abs(proj), [1 / np.sqrt(2), 0, 1 / np.sqrt(2)], atol=1e-12
    )
    np.testing.assert_allclose(y, X @ coef)


def test_generator_power_law_noise_and_seed():
    X, y, coef = make_self_distillation_regression(
        n_samples=2000, n_features=6, rank=4, decay=0.5, noise=0.3, random_state=1
    )
    sv = np.linalg.svd(X, compute_uv=False)
    np.testing.assert_allclose(sv[:4], np.arange(1, 5) ** -0.5, rtol=1e-12)
    residual = y - X @ coef
    assert abs(residual.std() - 0.3) < 0.02
    X2, y2, coef2 = make_self_distillation_regression(
        n_samples=2000, n_features=6, rank=4, decay=0.5, noise=0.3, random_state=1
    )
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"singular_values": [1.0, -1.0]}, "singular_values"),
        ({"singular_values": np.ones(5)}, "singular_values"),
        ({"rank": 9}, "rank"),
        ({"coef_directions": [4]}, "coef_directions"),
        ({"coef_directions": [0, 0]}, "coef_directions"),
        ({"noise": -1.0}, "noise"),
    ],
)
def test_generator_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_self_distillation_regression(n_samples=10, n_features=4, **kwargs)


@given(
    s=st.lists(st.floats(0.01, 100), min_size=1, max_size=5),
    extra_rows=st.integers(0, 5),
    seed=st.integers(0, 2**31 - 1),
)
def test_generator_singular_values_property(s, extra_rows, seed):
    n_features = len(s) + 1
    X, y, coef = make_self_distillation_regression(
        n_samples=len(s) + extra_rows, n_features=n_features, singular_values=s,
        coef_directions=[len(s) - 1], noise=0.0, random_state=seed,
    )  # fmt: skip
    sv = np.linalg.svd(X, compute_uv=False)
    np.testing.assert_allclose(sv[: len(s)], np.sort(s)[::-1], rtol=1e-9)
    # coef is the right singular vector of the last given singular value:
    # X coef has norm exactly that value.
    assert np.linalg.norm(X @ coef) == pytest.approx(s[-1], rel=1e-9)
