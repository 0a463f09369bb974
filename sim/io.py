"""Reading and writing result datasets (NetCDF via h5netcdf), atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import xarray as xr

from sim.errors import InputError

ENGINE = "h5netcdf"


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write `ds` to NetCDF at `path` atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine=ENGINE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def open_result(path: str | os.PathLike) -> xr.Dataset:
    """Load a result file fully into memory; a missing or unreadable file is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"result file {str(path)!r}: not found (expected a NetCDF file written by fentsim)")
    try:
        with xr.open_dataset(path, engine=ENGINE) as ds:
            return ds.load()
    except Exception as exc:  # h5py/h5netcdf raise many types for corrupt files
        raise InputError(f"result file {str(path)!r}: not a readable NetCDF file "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
