"""Reading and writing result files, atomically.  Every file fentsim writes (NetCDF, CSV, PNG)
goes through `atomic_path`: a temporary file in the same folder, renamed over the target only once
it is complete, so a killed or failed write never leaves a half-written file under the real name.

Results are NetCDF via h5netcdf (never pickle).  A failed write (unwritable folder, full disk) is
an InputError naming the file; a missing, truncated or corrupt input file likewise.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import xarray as xr

from sim.errors import InputError

ENGINE = "h5netcdf"
TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (`.NAME.XXXX.tmp`); on success rename it to `path`.

    On any error the temporary file is removed and the target is left as it was; an OSError
    (permission denied, disk full, ...) becomes an InputError naming `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise InputError(f"output file {str(path)!r}: cannot write ({exc.strerror or exc})") from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"output file {str(path)!r}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def coordinate_encoding(ds: xr.Dataset) -> dict:
    """NetCDF encoding that gives floating-point coordinates no _FillValue (CF 2.5.1)."""
    return {name: {"_FillValue": None} for name in ds.coords if ds[name].dtype.kind in "fc"}


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write `ds` to NetCDF at `path` atomically.  Coordinates get no _FillValue (CF 2.5.1)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE, encoding=coordinate_encoding(ds))
    return path


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write text (UTF-8) to `path` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def open_result(path: str | os.PathLike) -> xr.Dataset:
    """Load a result file fully into memory; a missing or unreadable file is an InputError.

    `time` stays in decimal years (decode_times=False): the file stores them as CF time in
    'common_years since 0000-01-01' (365-day calendar), which are the same numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"result file {str(path)!r}: not found (expected a NetCDF file written by fentsim)")
    try:
        with xr.open_dataset(path, engine=ENGINE, decode_times=False) as ds:
            return ds.load()
    except Exception as exc:  # h5py/h5netcdf raise many types for corrupt files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(f"result file {str(path)!r}: not a readable NetCDF file "
                         f"({type(exc).__name__}: {first})") from None
