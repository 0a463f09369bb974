"""Large ensembles in chunks: memory bounded by the chunk, results written incrementally.

The draws 0..n-1 are cut into canonical chunks of `chunk_size` draws; each chunk is one batch of
the solver and is written into its slice of one NetCDF file as soon as it is done, so memory stays
that of one chunk whatever n is.  Because the chunks are canonical, a slice of them run elsewhere
(`sim.calibrate.ensemble.chunk_range`, e.g. job 3 of 16 on a cluster) gives bit-identical data for its
draws, and `concatenate` joins the slices exactly into the whole, a block of draws at a time.
Each draw's identity (`draw_id`, see sim.calibrate.ensemble) is written with its chunk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np
import xarray as xr

from sim.calibrate.ensemble import DRAW_ID_ATTRS, IdsForDraws, ParamsForDraws
from sim.errors import InputError
from sim.results.io import ENGINE, atomic_path, coordinate_encoding, ensure_space
from sim.model.levers import LeverSet
from sim.results.run import simulate
from sim.engine.solver import SolverSettings

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _append(path: Path) -> Iterator[h5netcdf.File]:
    """Open `path` for appending; on any failure give the file's disk space back before closing it.

    On a full disk the close of a file whose write failed would itself fail and leave the HDF5
    library in a state that crashes the process later; truncating the (temporary, about to be
    removed) file first lets the close write what it must.  Metadata is flushed before the close
    so that a full disk shows here, not in the close.
    """
    f = h5netcdf.File(path, "a")
    try:
        yield f
        f.flush()
        f._h5file.flush()
    except BaseException:
        with contextlib.suppress(OSError):
            os.truncate(path, 0)
        with contextlib.suppress(Exception):
            f.close()
        raise
    f.close()


def _draw_axis(var: xr.Variable) -> int:
    return var.dims.index("draw")


def _create(path: Path, first: xr.Dataset, draws: np.ndarray) -> None:
    """Write the draw-independent part with xarray, then add the draw dimension and variables
    (a string coordinate such as `draw_id` is listed in the global `coordinates` attribute, where
    xarray finds coordinates no variable names)."""
    fixed = first.drop_vars([v for v in first.variables if "draw" in first[v].dims])
    fixed.attrs = {}
    ensure_space(path, fixed.nbytes)
    fixed.to_netcdf(path, engine=ENGINE, encoding=coordinate_encoding(fixed))
    extra_coords = [str(c) for c in first.coords if c != "draw" and "draw" in first[c].dims]
    with _append(path) as f:
        f.dimensions["draw"] = draws.size
        coord = f.create_variable("draw", ("draw",), dtype="i8")
        coord[:] = draws
        coord.attrs.update({k: v for k, v in first["draw"].attrs.items()})
        for name in first.variables:
            var = first[name].variable
            if "draw" not in var.dims or name == "draw":
                continue
            dtype = h5py.string_dtype() if var.dtype.kind in "OUS" else var.dtype
            out = f.create_variable(name, var.dims, dtype=dtype)
            out.attrs.update(dict(var.attrs))
        if extra_coords:
            known = f.attrs.get("coordinates", "")
            known = known.decode() if isinstance(known, bytes) else str(known)
            f.attrs["coordinates"] = " ".join(known.split() + extra_coords)


def _write_slice(path: Path, ds: xr.Dataset, offset: int) -> None:
    """Write the draw-dependent variables of chunk `ds` at draw positions offset.. of the file."""
    n = ds.sizes["draw"]
    ensure_space(path, ds.nbytes)
    with _append(path) as f:
        for name in ds.variables:
            var = ds[name].variable
            if "draw" not in var.dims or name == "draw":
                continue
            index = [slice(None)] * var.ndim
            index[_draw_axis(var)] = slice(offset, offset + n)
            values = var.values
            f.variables[name][tuple(index)] = (values.astype(str).astype(object)
                                               if values.dtype.kind in "OUS" else values)


def _set_attrs(path: Path, attrs: dict[str, Any]) -> None:
    with _append(path) as f:
        f.attrs.update(attrs)


def chunks(params_for: ParamsForDraws, draws: tuple[int, int], chunk_size: int,
           levers: LeverSet, settings: SolverSettings, *, config: dict[str, Any] | None = None,
           seed: int | None = None, coords: Mapping[str, Any] | None = None,
           ids_for: IdsForDraws | None = None,
           run_draws: Callable[[int, int], xr.Dataset] | None = None) -> Iterator[xr.Dataset]:
    """Integrate draws [a, b) in canonical chunks of `chunk_size`; yield each chunk's dataset
    (draw coordinate = draw numbers; `draw_id` from `ids_for` if given; `coords`, e.g. the
    scenario, added as scalar coordinates).  `a` must sit on a chunk boundary (use `chunk_range`).
    `run_draws(start, stop)`, if given, makes a chunk's dataset instead of `simulate` with
    `levers` (a run's funding per draw: sim.config.RunConfig.draws_simulator).

    Drop each chunk before asking for the next, or two are in memory at once.  Bad draws or
    chunk size raise InputError at once, before anything is integrated.
    """
    a, b = draws
    if chunk_size < 1:
        raise InputError(f"ensemble.chunk_size: value {chunk_size} must be a positive integer")
    if a % chunk_size or not 0 <= a < b:
        raise InputError(f"draws [{a}, {b}) are not whole chunks of {chunk_size} starting on a "
                         f"chunk boundary")

    def each() -> Iterator[xr.Dataset]:
        for start in range(a, b, chunk_size):
            stop = min(start + chunk_size, b)
            ds = (run_draws(start, stop) if run_draws is not None else
                  simulate(params_for(start, stop), levers, settings, config=config, seed=seed))
            ds = ds.assign_coords(draw=np.arange(start, stop, dtype=np.int64), **(coords or {}))
            if ids_for is not None:
                ds = ds.assign_coords(draw_id=("draw", ids_for(start, stop), DRAW_ID_ATTRS))
            yield ds
            del ds
    return each()


def _chunk_attrs(first: dict[str, Any], draws: tuple[int, int], chunk_size: int,
                 chunk_nfev: list[int], seconds: float) -> dict[str, Any]:
    """Global attrs of a chunked result: the first chunk's, with the draws and every chunk's nfev."""
    return {**first, "draws_first": draws[0], "draws_end": draws[1], "chunk_size": chunk_size,
            "solver_stats": json.dumps({"chunk_nfev": chunk_nfev,
                                        "wall_seconds": round(seconds, 3)})}


def simulate_chunked(params_for: ParamsForDraws, draws: tuple[int, int], chunk_size: int,
                     levers: LeverSet, settings: SolverSettings, *,
                     config: dict[str, Any] | None = None, seed: int | None = None,
                     ids_for: IdsForDraws | None = None,
                     run_draws: Callable[[int, int], xr.Dataset] | None = None) -> xr.Dataset:
    """The data `run_chunked` writes, in memory (for small ensembles: reruns, checks)."""
    started = time.perf_counter()
    parts = list(chunks(params_for, draws, chunk_size, levers, settings, config=config, seed=seed,
                        ids_for=ids_for, run_draws=run_draws))
    ds = xr.concat(parts, dim="draw", data_vars="minimal", coords="minimal", compat="override",
                   combine_attrs="override")
    nfev = [json.loads(p.attrs["solver_stats"])["nfev"] for p in parts]
    ds.attrs = _chunk_attrs(dict(parts[0].attrs), draws, chunk_size, nfev,
                            time.perf_counter() - started)
    return ds


def run_chunked(params_for: ParamsForDraws, draws: tuple[int, int], chunk_size: int,
                levers: LeverSet, settings: SolverSettings, path: str | os.PathLike, *,
                config: dict[str, Any] | None = None, seed: int | None = None,
                attrs: dict[str, Any] | None = None, coords: Mapping[str, Any] | None = None,
                progress: Callable[[str], None] | None = log.info,
                ids_for: IdsForDraws | None = None,
                run_draws: Callable[[int, int], xr.Dataset] | None = None) -> Path:
    """Integrate draws [a, b) in canonical chunks of `chunk_size` (see `chunks`), writing each
    into `path` as it is done; `attrs` are added to the file's, `coords` are scalar coordinates.
    The file appears only when complete (written under a temporary name, then renamed).
    """
    a, b = draws
    path = Path(path)
    started = time.perf_counter()
    each = chunks(params_for, draws, chunk_size, levers, settings, config=config, seed=seed,
                  coords=coords, ids_for=ids_for, run_draws=run_draws)
    with atomic_path(path) as tmp:
        first: dict[str, Any] = {}
        chunk_nfev = []
        for ds in each:
            start, n = int(ds.draw.values[0]), ds.sizes["draw"]
            if start == a:
                tmp.unlink()
                _create(tmp, ds, np.arange(a, b, dtype=np.int64))
                first = dict(ds.attrs)
            chunk_nfev.append(json.loads(ds.attrs["solver_stats"])["nfev"])
            _write_slice(tmp, ds, start - a)
            del ds
            if progress:
                progress(f"ensemble: draws {start + n - a:,}/{b - a:,} "
                         f"({time.perf_counter() - started:.1f} s)")
        _set_attrs(tmp, {**_chunk_attrs(first, draws, chunk_size, chunk_nfev,
                                        time.perf_counter() - started), **(attrs or {})})
    return path


def concatenate(parts: list[Path], path: str | os.PathLike, attrs: dict[str, Any],
                block: int) -> Path:
    """Write the draws of result files `parts` one after another into `path`, `block` draws at a
    time (memory bounded by the block), with global `attrs`; atomic like `run_chunked`."""
    if block < 1:
        raise InputError(f"block: value {block} must be a positive integer (draws)")
    path = Path(path)
    opened = [xr.open_dataset(p, engine=ENGINE, decode_times=False) for p in parts]  # lazy
    try:
        draws = np.concatenate([ds["draw"].values for ds in opened])
        with atomic_path(path) as tmp:
            tmp.unlink()
            _create(tmp, opened[0], draws)
            offset = 0
            for ds in opened:
                for start in range(0, ds.sizes["draw"], block):
                    _write_slice(tmp, ds.isel(draw=slice(start, start + block)).load(),
                                 offset + start)
                offset += ds.sizes["draw"]
            _set_attrs(tmp, attrs)
    finally:
        for ds in opened:
            ds.close()
    return path
