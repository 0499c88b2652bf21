"""Loaders for the UCI regression data sets of Pareek, Oh and Du (2024).

Each fetcher follows the convention of
:func:`sklearn.datasets.fetch_california_housing`: the original file is
downloaded once from the UCI Machine Learning Repository into a cache, its
sha256 is checked every time it is read, and the parsed data come back as a
:class:`~sklearn.utils.Bunch`.

The cache directory is ``data_home`` when given; otherwise the directory named
by the environment variable ``SKDISTILL_DATA`` when it is set (a directory that
already holds the original files is used as it is); otherwise the
``skdistill`` folder of :func:`sklearn.datasets.get_data_home`.

Parsing uses only the standard library and numpy; pandas is needed only for
``as_frame=True``.
"""

import csv
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

__all__ = [
    "fetch_air_quality",
    "fetch_airfoil_self_noise",
    "fetch_appliances_energy",
]

# Base address of the original UCI archive. Module-level so that tests can point
# the fetchers at a local server.
_BASE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/"
_TIMEOUT = 60  # seconds, per network operation
_CHUNK = 1 << 16


@dataclass(frozen=True)
class _RemoteFile:
    """A data file of the UCI repository.

    ``filename`` is the file that is cached and parsed and ``sha256`` its
    checksum; ``url_path`` is relative to ``_BASE_URL``. When the download is a
    zip archive, ``member`` names the file inside it (the checksum is that of
    the member, so any archive holding the original file is accepted).
    """

    filename: str
    url_path: str
    sha256: str
    member: str | None = None


_AIR_QUALITY = _RemoteFile(
    filename="AirQualityUCI.csv",
    url_path="00360/AirQualityUCI.zip",
    sha256="13277ae5d8581e80b7be09d47c7d3d06fe9b8e957078f2cf6e859f955e62f996",
    member="AirQualityUCI.csv",
)
_AIRFOIL = _RemoteFile(
    filename="airfoil_self_noise.dat",
    url_path="00291/airfoil_self_noise.dat",
    sha256="74c75fd71783f1e6b71f8a622b993dc592897a97cd689c5090a07147a1b097b3",
)
_APPLIANCES = _RemoteFile(
    filename="energydata_complete.csv",
    url_path="00374/energydata_complete.csv",
    sha256="2820bf712ad0275cb18b85a05250926100d8e65ebb9f4d2d016ca91ea152a25d",
)

_PARAMS = {
    "data_home": [str, PathLike, None],
    "download_if_missing": ["boolean"],
    "return_X_y": ["boolean"],
    "as_frame": ["boolean"],
}


def _data_dir(data_home):
    """The cache directory (not created here)."""
    if data_home is not None:
        return Path(data_home)
    env = os.environ.get("SKDISTILL_DATA")
    if env:
        return Path(env)
    return Path(get_data_home()) / "skdistill"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(remote, directory):
    """Download ``remote`` into ``directory``, verified, or leave nothing behind.

    The bytes go to a temporary file in the cache directory, which is renamed
    to its final name only after the checksum matched.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / remote.filename
    url = _BASE_URL + remote.url_path
    temporaries = []
    try:
        fd, download = tempfile.mkstemp(
            dir=directory, prefix=f".{remote.filename}.", suffix=".part"
        )
        temporaries.append(download)
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
                    shutil.copyfileobj(response, out, _CHUNK)
            except urllib.error.URLError as exc:
                raise OSError(f"Could not download {url}: {exc.reason}") from exc
        if remote.member is not None:
            fd, member = tempfile.mkstemp(
                dir=directory, prefix=f".{remote.filename}.", suffix=".part"
            )
            temporaries.append(member)
            try:
                with zipfile.ZipFile(download) as archive:
                    with (
                        archive.open(remote.member) as src,
                        os.fdopen(fd, "wb") as out,
                    ):
                        shutil.copyfileobj(src, out, _CHUNK)
            except (zipfile.BadZipFile, KeyError) as exc:
                raise OSError(
                    f"The archive downloaded from {url} is not a zip file holding "
                    f"{remote.member!r}: {exc}"
                ) from exc
            download = member
        checksum = _sha256(download)
        if checksum != remote.sha256:
            raise OSError(
                f"The file downloaded from {url} has sha256 {checksum}, expected "
                f"{remote.sha256}. The download is corrupted or the remote file "
                "changed; nothing was written to the cache."
            )
        os.replace(download, target)
    finally:
        for path in temporaries:
            if os.path.exists(path):
                os.remove(path)
    return target


def _fetch_file(remote, data_home, download_if_missing):
    """Path of a verified local copy of ``remote``, downloading it if needed."""
    directory = _data_dir(data_home)
    path = directory / remote.filename
    if path.exists():
        checksum = _sha256(path)
        if checksum != remote.sha256:
            raise OSError(
                f"{path} has sha256 {checksum}, expected {remote.sha256}: it is "
                "not the original UCI file. Delete it to download it again."
            )
        return path
    if not download_if_missing:
        raise OSError(
            f"{remote.filename} was not found in {directory} and "
            "download_if_missing=False."
        )
    return _download(remote, directory)


def _to_float(field):
    """A float from a UCI text field, accepting decimal commas."""
    return float(field.strip().replace(",", "."))


def _parse_air_quality(path):
    """Column names, ``Date``/``Time`` strings and the (9357, 13) numeric block."""
    with open(path, encoding="ascii", newline="") as f:
        lines = f.read().splitlines()
    header = lines[0].split(";")[:15]
    dates, times, values = [], [], []
    for line in lines[1:]:
        fields = line.split(";")[:15]
        if not any(field.strip() for field in fields):
            continue  # the trailing ';;;;' lines
        dates.append(fields[0])
        times.append(fields[1])
        values.append([_to_float(field) for field in fields[2:]])
    values = np.asarray(values, dtype=np.float64)
    values[values == -200] = np.nan
    return header, np.asarray(dates), np.asarray(times), values


def _parse_airfoil(path):
    return np.loadtxt(path, delimiter="\t", dtype=np.float64)


def _parse_appliances(path):
    """Column names, the ``date`` strings and the (19735, 28) numeric block."""
    with open(path, encoding="ascii", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        dates, values = [], []
        for row in reader:
            if not row:
                continue
            dates.append(row[0])
            values.append([float(field) for field in row[1:]])
    return header, np.asarray(dates), np.asarray(values, dtype=np.float64)


def _bunch(data, target, feature_names, target_name, descr, return_X_y, as_frame):
    frame = None
    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "as_frame=True requires pandas; install it with `pip install pandas`."
            ) from exc
        frame = pd.DataFrame(data, columns=feature_names)
        frame[target_name] = target
        data = frame[feature_names]
        target = frame[target_name]
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        frame=frame,
        feature_names=list(feature_names),
        target_names=[target_name],
        DESCR=descr,
    )


_LICENCE = (
    "Licence: Creative Commons Attribution 4.0 International (CC BY 4.0), as\n"
    "listed by the UCI Machine Learning Repository; cite the paper below."
)

_AIR_QUALITY_DESCR = f"""\
.. _air_quality_dataset:

Air Quality data set
--------------------

Hourly responses of a gas multisensor device deployed in an Italian city,
with reference analyser concentrations, March 2004 to April 2005
(UCI Machine Learning Repository, id 360).

**Data Set Characteristics:**

:Number of Instances: 6941 (of 9357 hourly records)
:Number of Attributes: 8 numeric features and the target
:Target: ``NO2(GT)``, the reference NO2 concentration in microg/m^3
:Features: the five metal-oxide sensor responses ``PT08.S1(CO)``,
    ``PT08.S2(NMHC)``, ``PT08.S3(NOx)``, ``PT08.S4(NO2)``, ``PT08.S5(O3)``,
    temperature ``T``, relative humidity ``RH`` and absolute humidity ``AH``.

As in Pareek, Oh and Du (2024), the ``NMHC(GT)`` column (missing in 8443
rows) is dropped and then every row with a missing value (coded -200 in the
file) in any of the remaining 12 numeric columns, which leaves 6941 rows in
file order. The other reference columns (``CO(GT)``, ``C6H6(GT)``,
``NOx(GT)``) take part in that selection but are not returned.

Source: https://archive.ics.uci.edu/dataset/360/air+quality

{_LICENCE}

.. topic:: References

    S. De Vito, E. Massera, M. Piga, L. Martinotto, G. Di Francia (2008).
    "On field calibration of an electronic nose for benzene estimation in an
    urban pollution monitoring scenario." Sensors and Actuators B: Chemical
    129(2), 750-757.
"""

_AIRFOIL_DESCR = f"""\
.. _airfoil_self_noise_dataset:

Airfoil Self-Noise data set
---------------------------

NACA 0012 airfoils of different sizes tested in an anechoic wind tunnel at
various speeds and angles of attack (UCI Machine Learning Repository, id 291).

**Data Set Characteristics:**

:Number of Instances: 1503
:Number of Attributes: 5 numeric features and the target
:Target: ``scaled_sound_pressure``, the scaled sound pressure level in dB
:Features: ``frequency`` (Hz), ``angle_of_attack`` (degrees),
    ``chord_length`` (m), ``free_stream_velocity`` (m/s),
    ``suction_side_displacement_thickness`` (m).
:Missing Attribute Values: None

Source: https://archive.ics.uci.edu/dataset/291/airfoil+self+noise

{_LICENCE}

.. topic:: References

    T. F. Brooks, D. S. Pope, M. A. Marcolini (1989). "Airfoil self-noise and
    prediction." NASA Reference Publication 1218.
"""

_APPLIANCES_DESCR = f"""\
.. _appliances_energy_dataset:

Appliances Energy Prediction data set
-------------------------------------

Energy use of the appliances of a low-energy house in Belgium every 10
minutes for about 4.5 months, with indoor conditions from a wireless sensor
network and weather from a nearby station (UCI Machine Learning Repository,
id 374).

**Data Set Characteristics:**

:Number of Instances: 19735 (10-minute resolution, 2016-01-11 17:00 to
    2016-05-27 18:00, in time order)
:Number of Attributes: 24 numeric features and the target
:Target: ``Appliances``, the energy use in Wh
:Features: every column of the file except ``date``, the target, ``lights``,
    ``Windspeed`` and ``Visibility`` (the selection of Pareek, Oh and Du,
    2024): ``T1``..``T9``, ``RH_1``..``RH_9``, ``T_out``, ``Press_mm_hg``,
    ``RH_out``, ``Tdewpoint`` and the two random variables ``rv1`` and ``rv2``
    (identical columns, added by the authors to test feature selection).
:Missing Attribute Values: None

Pareek, Oh and Du (2024) use the hourly series: every 6th row, starting with
the first (``data[::6]``, 3290 rows).

Source: https://archive.ics.uci.edu/dataset/374/appliances+energy+prediction

{_LICENCE}

.. topic:: References

    L. M. Candanedo, V. Feldheim, D. Deramaix (2017). "Data driven prediction
    models of energy use of appliances in a low-energy house." Energy and
    Buildings 140, 81-97.
"""

_AIR_QUALITY_FEATURES = [
    "PT08.S1(CO)",
    "PT08.S2(NMHC)",
    "PT08.S3(NOx)",
    "PT08.S4(NO2)",
    "PT08.S5(O3)",
    "T",
    "RH",
    "AH",
]


@validate_params(_PARAMS, prefer_skip_nested_validation=True)
def fetch_air_quality(
    *, data_home=None, download_if_missing=True, return_X_y=False, as_frame=False
):
    """Load the Air Quality data set (regression of ``NO2(GT)``).

    Download it from the UCI Machine Learning Repository if necessary. The
    rows and columns are those of Pareek, Oh and Du (2024, Table 1): the five
    ``PT08.*`` sensor responses, ``T``, ``RH`` and ``AH`` as features and the
    reference NO2 concentration as target, after dropping the ``NMHC(GT)``
    column and every row with a missing value. The rows keep their time
    order.

    =================   ==============
    Samples total       6941
    Dimensionality      8
    Features            real
    Target              real, NO2 in microg/m^3
    =================   ==============

    Parameters
    ----------
    data_home : str or path-like, default=None
        Directory of the cache. By default the directory named by the
        environment variable ``SKDISTILL_DATA`` if it is set, otherwise the
        ``skdistill`` folder of :func:`sklearn.datasets.get_data_home`.
    download_if_missing : bool, default=True
        If False, raise an ``OSError`` when the file is not in the cache
        instead of downloading it.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a pandas DataFrame, ``target`` a Series and
        ``frame`` a DataFrame with both (requires pandas).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (6941, 8) or DataFrame
            The features.
        target : ndarray of shape (6941,) or Series
            The NO2 concentration.
        feature_names : list of str
            The names of the columns of ``data``.
        target_names : list of str
            ``["NO2(GT)"]``.
        frame : DataFrame of shape (6941, 9) or None
            ``data`` and ``target`` together, only when ``as_frame=True``.
        DESCR : str
            Description, citation and licence of the data set.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    OSError
        If the file is missing and ``download_if_missing=False``, or if the
        cached or downloaded file does not have the expected sha256.

    Examples
    --------
    >>> from skdistill.datasets import fetch_air_quality
    >>> X, y = fetch_air_quality(return_X_y=True)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (6941, 8)
    """
    path = _fetch_file(_AIR_QUALITY, data_home, download_if_missing)
    header, _, _, values = _parse_air_quality(path)
    names = header[2:]
    keep = [j for j, name in enumerate(names) if name != "NMHC(GT)"]
    values = values[:, keep]
    names = [names[j] for j in keep]
    values = values[~np.isnan(values).any(axis=1)]
    column = {name: j for j, name in enumerate(names)}
    data = values[:, [column[name] for name in _AIR_QUALITY_FEATURES]]
    target = values[:, column["NO2(GT)"]]
    return _bunch(
        data,
        target,
        _AIR_QUALITY_FEATURES,
        "NO2(GT)",
        _AIR_QUALITY_DESCR,
        return_X_y,
        as_frame,
    )


_AIRFOIL_FEATURES = [
    "frequency",
    "angle_of_attack",
    "chord_length",
    "free_stream_velocity",
    "suction_side_displacement_thickness",
]


@validate_params(_PARAMS, prefer_skip_nested_validation=True)
def fetch_airfoil_self_noise(
    *, data_home=None, download_if_missing=True, return_X_y=False, as_frame=False
):
    """Load the Airfoil Self-Noise data set (regression).

    Download it from the UCI Machine Learning Repository if necessary. The
    target is the scaled sound pressure level, the last column of the file;
    the other five columns are the features. Rows keep the file order.

    =================   ==============
    Samples total       1503
    Dimensionality      5
    Features            real
    Target              real, dB
    =================   ==============

    Parameters
    ----------
    data_home : str or path-like, default=None
        Directory of the cache. By default the directory named by the
        environment variable ``SKDISTILL_DATA`` if it is set, otherwise the
        ``skdistill`` folder of :func:`sklearn.datasets.get_data_home`.
    download_if_missing : bool, default=True
        If False, raise an ``OSError`` when the file is not in the cache
        instead of downloading it.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a pandas DataFrame, ``target`` a Series and
        ``frame`` a DataFrame with both (requires pandas).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (1503, 5) or DataFrame
            The features.
        target : ndarray of shape (1503,) or Series
            The scaled sound pressure level.
        feature_names : list of str
            The names of the columns of ``data``.
        target_names : list of str
            ``["scaled_sound_pressure"]``.
        frame : DataFrame of shape (1503, 6) or None
            ``data`` and ``target`` together, only when ``as_frame=True``.
        DESCR : str
            Description, citation and licence of the data set.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    OSError
        If the file is missing and ``download_if_missing=False``, or if the
        cached or downloaded file does not have the expected sha256.

    Examples
    --------
    >>> from skdistill.datasets import fetch_airfoil_self_noise
    >>> X, y = fetch_airfoil_self_noise(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, round(y.mean(), 3)  # doctest: +SKIP
    ((1503, 5), 124.836)
    """
    path = _fetch_file(_AIRFOIL, data_home, download_if_missing)
    values = _parse_airfoil(path)
    return _bunch(
        values[:, :5],
        values[:, 5],
        _AIRFOIL_FEATURES,
        "scaled_sound_pressure",
        _AIRFOIL_DESCR,
        return_X_y,
        as_frame,
    )


_APPLIANCES_DROPPED = ("date", "Appliances", "lights", "Windspeed", "Visibility")


@validate_params(_PARAMS, prefer_skip_nested_validation=True)
def fetch_appliances_energy(
    *, data_home=None, download_if_missing=True, return_X_y=False, as_frame=False
):
    """Load the Appliances Energy Prediction data set (regression).

    Download it from the UCI Machine Learning Repository if necessary. The
    target is the appliances' energy use; the features are all other columns
    except ``date``, ``lights``, ``Windspeed`` and ``Visibility``, as in
    Pareek, Oh and Du (2024). All 19735 rows at 10-minute resolution are
    returned in time order; the paper uses the hourly series ``[::6]``.

    =================   ==============
    Samples total       19735
    Dimensionality      24
    Features            real
    Target              real, Wh
    =================   ==============

    Parameters
    ----------
    data_home : str or path-like, default=None
        Directory of the cache. By default the directory named by the
        environment variable ``SKDISTILL_DATA`` if it is set, otherwise the
        ``skdistill`` folder of :func:`sklearn.datasets.get_data_home`.
    download_if_missing : bool, default=True
        If False, raise an ``OSError`` when the file is not in the cache
        instead of downloading it.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        If True, ``data`` is a pandas DataFrame, ``target`` a Series and
        ``frame`` a DataFrame with both (requires pandas).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (19735, 24) or DataFrame
            The features.
        target : ndarray of shape (19735,) or Series
            The energy use of the appliances in Wh.
        feature_names : list of str
            The names of the columns of ``data``.
        target_names : list of str
            ``["Appliances"]``.
        frame : DataFrame of shape (19735, 25) or None
            ``data`` and ``target`` together, only when ``as_frame=True``.
        DESCR : str
            Description, citation and licence of the data set.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    OSError
        If the file is missing and ``download_if_missing=False``, or if the
        cached or downloaded file does not have the expected sha256.

    Examples
    --------
    >>> from skdistill.datasets import fetch_appliances_energy
    >>> X, y = fetch_appliances_energy(return_X_y=True)  # doctest: +SKIP
    >>> X[::6].shape  # doctest: +SKIP
    (3290, 24)
    """
    path = _fetch_file(_APPLIANCES, data_home, download_if_missing)
    header, _, values = _parse_appliances(path)
    names = header[1:]
    features = [name for name in names if name not in _APPLIANCES_DROPPED]
    column = {name: j for j, name in enumerate(names)}
    data = values[:, [column[name] for name in features]]
    target = values[:, column["Appliances"]]
    return _bunch(
        data, target, features, "Appliances", _APPLIANCES_DESCR, return_X_y, as_frame
    )
