"""Reading and writing result files, atomically.  Every file fentsim writes (NetCDF, CSV, PNG)
goes through `atomic_path`: a temporary file in the same folder, renamed over the target only once
it is complete, so a killed or failed write never leaves a half-written file under the real name.

Results are NetCDF via h5netcdf (never pickle).  A failed write (unwritable folder, full disk) is
an InputError naming the file, in one line; the temporary file is removed, and an HDF5 file left
open by the failure is released without being flushed again (flushing a file whose close failed on
a full disk crashes the HDF5 library).  A missing, truncated or corrupt input file is an
InputError too.  Files get the permissions of the umask, like any other file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import xarray as xr

from sim.results.timeaxis import with_decimal_year
from sim.errors import InputError

ENGINE = "h5netcdf"
TMP_SUFFIX = ".tmp"


def _umask() -> int:
    """The process's umask (read from /proc where possible: setting it is not thread-safe)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_error(path: Path, exc: BaseException) -> InputError:
    """One line for a failed write: the target and the OS's reason (errno from HDF5's message)."""
    found = re.search(r"errno = (\d+)", str(exc))
    if found:
        reason = os.strerror(int(found.group(1)))
    else:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    reason = str(reason).strip().splitlines()[0] if str(reason).strip() else type(exc).__name__
    return InputError(f"output file {str(path)!r}: cannot write ({reason})")


def _target_of(path: Path) -> Path:
    """The file a temporary `.NAME.XXXX.tmp` (from `atomic_path`) stands for, else `path`."""
    found = re.fullmatch(r"\.(.+)\.[^.]+" + re.escape(TMP_SUFFIX), path.name)
    return path.with_name(found.group(1)) if found else path


SPACE_MARGIN_BYTES = 1_000_000   # HDF5 metadata and headroom beyond the data written


def ensure_space(path: str | os.PathLike, n_bytes: int) -> None:
    """InputError if the folder of `path` has less free space than `n_bytes` plus a margin.

    Checked before HDF5 writes anything: HDF5 does not recover from a full disk in the middle of
    a write (its handles fail to close and can crash the process), so a write that cannot fit is
    refused before it starts.  (A disk filled by another process between the check and the write
    is still reported in one line by `atomic_path`.)
    """
    path = _target_of(Path(path))
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return
    needed = int(n_bytes * 1.05) + SPACE_MARGIN_BYTES
    if needed > free:
        raise InputError(f"output file {str(path)!r}: cannot write ({os.strerror(errno.ENOSPC)}: "
                         f"about {needed:,} bytes needed, {free:,} free)")


def release_hdf5(tmp: Path) -> None:
    """Free the disk space of a failed temporary file and release HDF5 handles on it.

    The file is truncated first (space comes back even while a handle is open), then every
    h5netcdf file object still open on it is marked closed without flushing: its close already
    failed, and flushing it again (as its finaliser would) crashes the HDF5 library.
    """
    with contextlib.suppress(OSError):
        os.truncate(tmp, 0)
    try:
        import h5netcdf
    except ImportError:  # pragma: no cover - h5netcdf is a dependency
        return
    target = os.path.abspath(tmp)
    for obj in gc.get_objects():
        try:
            if not isinstance(obj, h5netcdf.File) or getattr(obj, "_closed", True):
                continue
        except ReferenceError:   # a weak proxy whose referent is gone (no file of ours)
            continue
        name = getattr(obj, "_filename", None)
        if isinstance(name, (str, os.PathLike)) and os.path.abspath(name) == target:
            obj._closed = True


def is_write_failure(exc: BaseException) -> bool:
    """Whether `exc` is a failed write (OS error, or HDF5's RuntimeError naming a failed write)."""
    if isinstance(exc, OSError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("write failed" in text or "errno =" in text)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (`.NAME.XXXX.tmp`); on success rename it to `path`.

    On any error the temporary file is removed and the target is left as it was; a failed write
    (permission denied, disk full, read-only folder, ...) becomes a one-line InputError naming
    `path`.  The file gets the permissions of the umask (0666 & ~umask), not mkstemp's 0600.
    """
    path = Path(path)
    if path.is_symlink():
        raise InputError(f"output file {str(path)!r}: is a symbolic link (fentsim never writes "
                         f"through links); allowed: remove the link, or another file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        release_hdf5(Path(tmp))
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, Exception) and is_write_failure(exc):
            raise _write_error(path, exc) from None
        raise


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files left beside `path` by killed writes (`.NAME.*.tmp`); return them.

    Call only when no other process writes `path` (a job's own result file, after it finished).
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def coordinate_encoding(ds: xr.Dataset) -> dict:
    """NetCDF encoding that gives floating-point coordinates no _FillValue (CF 2.5.1)."""
    return {name: {"_FillValue": None} for name in ds.coords if ds[name].dtype.kind in "fc"}


IN_MEMORY_WRITE_BYTES = 1_000_000_000   # datasets up to this size are encoded in memory first


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write `ds` to NetCDF at `path` atomically.  Coordinates get no _FillValue (CF 2.5.1).

    A dataset of up to IN_MEMORY_WRITE_BYTES is encoded in memory and written with plain file
    I/O, so that a disk filled by another process after `ensure_space` is an ordinary OSError
    (HDF5 meeting a full disk in the middle of a write can crash the process at exit, notably
    with string coordinates such as `channel`); larger ones are written by HDF5 directly.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        ensure_space(tmp, ds.nbytes)
        encoding = coordinate_encoding(ds)
        if ds.nbytes <= IN_MEMORY_WRITE_BYTES:
            data = ds.to_netcdf(engine=ENGINE, encoding=encoding)
            with open(tmp, "wb") as f:
                f.write(data)
        else:
            ds.to_netcdf(tmp, engine=ENGINE, encoding=encoding)
    return path


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write text (UTF-8) to `path` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


@functools.cache
def _read_only_h5file() -> type:
    """h5py.File opened read-only whose path lookups (`file[name]`) are memoised (h5py imported late).

    h5netcdf looks every variable up again by path on each property access (shape, dims, attrs,
    dtype, ...), a few thousand lookups for one result file; in a file that cannot change they
    can be reused.  Only for reading: writing may delete and recreate objects under one name.
    """
    import h5py

    class ReadOnlyH5File(h5py.File):
        def __init__(self, path: str | os.PathLike) -> None:
            super().__init__(path, "r")
            self._lookups: dict[str, Any] = {}

        def __getitem__(self, name: Any) -> Any:
            if not isinstance(name, str):  # object references: not memoised
                return super().__getitem__(name)
            found = self._lookups.get(name)
            if found is None:
                found = self._lookups[name] = super().__getitem__(name)
            return found

        def close(self) -> None:
            self._lookups = {}
            super().close()

    return ReadOnlyH5File


def _load_with_cached_lookups(path: Path) -> xr.Dataset:
    """The dataset `xr.open_dataset(path, engine='h5netcdf', decode_times=False).load()` gives
    (same variables, attrs and encodings), about twice as fast (see `_read_only_h5file`)."""
    import h5netcdf

    with _read_only_h5file()(path) as h5:
        # the options xarray's h5netcdf backend opens files with by default
        nc = h5netcdf.File(h5, "r", decode_vlen_strings=True, invalid_netcdf=None,
                           phony_dims="access")
        try:
            store = xr.backends.H5NetCDFStore(nc, mode="r")
            with xr.open_dataset(store, decode_times=False) as ds:
                ds = ds.load()
        finally:
            nc.close()
    ds.encoding["source"] = os.path.abspath(path)
    return ds


def open_result(path: str | os.PathLike) -> xr.Dataset:
    """Load a result file fully into memory; a missing or unreadable file is an InputError.

    `time` is read as stored (CF days since 1 Jan 2010, 365-day calendar; decode_times=False),
    with the decimal years in the indexed coordinate `decimal_year` (sim/results/timeaxis.py;
    added from `time` for files written before CF time, which stored decimal years there).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"result file {str(path)!r}: not found (expected a NetCDF file written by fentsim)")
    try:
        return with_decimal_year(_load_with_cached_lookups(path))
    except Exception:  # anything unusual: the plain route below reads it or names the problem
        pass
    try:
        with xr.open_dataset(path, engine=ENGINE, decode_times=False) as ds:
            return with_decimal_year(ds.load())
    except Exception as exc:  # h5py/h5netcdf raise many types for corrupt files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(f"result file {str(path)!r}: not a readable NetCDF file "
                         f"({type(exc).__name__}: {first})") from None


def netcdf_title(path: str | os.PathLike) -> str | None:
    """The `title` attribute of a NetCDF file (None if not NetCDF, unreadable or untitled);
    reads the attributes only and never quotes the file."""
    try:
        import h5netcdf

        with h5netcdf.File(path, "r") as f:
            value = f.attrs.get("title")
    except Exception:  # not HDF5/NetCDF
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value) if value is not None else None


def check_output_target(path: str | os.PathLike, field: str, *, inputs=(), own=None,
                        force: bool = False, command: str = "fentsim") -> Path:
    """Refuse (InputError, before anything is computed) to write `path` when it is one of the
    command's `inputs` (never, even with force), a symbolic link or a folder, or an existing file
    that `own(path)` does not recognise as this command's output (unless `force`)."""
    path = Path(path)
    target = path.resolve()
    for given in inputs:
        given = Path(given)
        same = target == given.resolve()
        if not same and path.exists() and given.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(path, given)
        if same:
            raise InputError(f"{field}: value {str(path)!r} is also an input of {command} "
                             f"({str(given)!r}); allowed: another file (an input is never "
                             f"replaced)")
    if path.is_symlink():
        raise InputError(f"{field}: value {str(path)!r} is a symbolic link (fentsim never writes "
                         f"through links); allowed: another file name")
    if path.is_dir():
        raise InputError(f"{field}: value {str(path)!r} is a folder; allowed: a file name")
    if path.exists() and not force and not (own is not None and own(path)):
        raise InputError(f"{field}: value {str(path)!r} already exists and was not written by "
                         f"{command}; allowed: another file name, or --force to replace it")
    return path
