"""Large ensembles in chunks: memory bounded by the chunk, results written incrementally.

The draws 0..n-1 are cut into canonical chunks of `chunk_size` draws; each chunk is one batch of
the solver and is written into its slice of one NetCDF file as soon as it is done, so memory stays
that of one chunk whatever n is.  Because the chunks are canonical, a slice of them run elsewhere
(`sim.ensemble.chunk_range`, e.g. job 3 of 16 on a cluster) gives bit-identical data for its
draws, and `concatenate` joins the slices exactly into the whole, a block of draws at a time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np
import xarray as xr

from sim.ensemble import ParamsForDraws
from sim.errors import InputError
from sim.io import ENGINE, atomic_path, coordinate_encoding
from sim.levers import LeverSet
from sim.run import simulate
from sim.solver import SolverSettings


def _draw_axis(var: xr.Variable) -> int:
    return var.dims.index("draw")


def _create(path: Path, first: xr.Dataset, draws: np.ndarray) -> None:
    """Write the draw-independent part with xarray, then add the draw dimension and variables."""
    fixed = first.drop_vars([v for v in first.variables if "draw" in first[v].dims])
    fixed.attrs = {}
    fixed.to_netcdf(path, engine=ENGINE, encoding=coordinate_encoding(fixed))
    with h5netcdf.File(path, "a") as f:
        f.dimensions["draw"] = draws.size
        coord = f.create_variable("draw", ("draw",), dtype="i8")
        coord[:] = draws
        coord.attrs.update({k: v for k, v in first["draw"].attrs.items()})
        for name in first.variables:
            var = first[name].variable
            if "draw" not in var.dims or name == "draw":
                continue
            out = f.create_variable(name, var.dims, dtype=var.dtype)
            out.attrs.update(dict(var.attrs))


def _write_slice(path: Path, ds: xr.Dataset, offset: int) -> None:
    """Write the draw-dependent variables of chunk `ds` at draw positions offset.. of the file."""
    n = ds.sizes["draw"]
    with h5netcdf.File(path, "a") as f:
        for name in ds.variables:
            var = ds[name].variable
            if "draw" not in var.dims or name == "draw":
                continue
            index = [slice(None)] * var.ndim
            index[_draw_axis(var)] = slice(offset, offset + n)
            f.variables[name][tuple(index)] = var.values


def _set_attrs(path: Path, attrs: dict[str, Any]) -> None:
    with h5netcdf.File(path, "a") as f:
        f.attrs.update(attrs)


def run_chunked(params_for: ParamsForDraws, draws: tuple[int, int], chunk_size: int,
                levers: LeverSet, settings: SolverSettings, path: str | os.PathLike, *,
                config: dict[str, Any] | None = None, seed: int | None = None,
                attrs: dict[str, Any] | None = None,
                progress: Callable[[str], None] | None = print) -> Path:
    """Integrate draws [a, b) in canonical chunks of `chunk_size`, writing each into `path`.

    `a` must sit on a chunk boundary (use `chunk_range`); `attrs` are added to the file's.  The
    file appears only when complete (written under a temporary name, then renamed).
    """
    a, b = draws
    if chunk_size < 1:
        raise InputError(f"ensemble.chunk_size: value {chunk_size} must be a positive integer")
    if a % chunk_size or not 0 <= a < b:
        raise InputError(f"draws [{a}, {b}) are not whole chunks of {chunk_size} starting on a "
                         f"chunk boundary")
    path = Path(path)
    started = time.perf_counter()
    with atomic_path(path) as tmp:
        first: dict[str, Any] = {}
        chunk_nfev = []
        for start in range(a, b, chunk_size):
            stop = min(start + chunk_size, b)
            ds = simulate(params_for(start, stop), levers, settings, config=config, seed=seed)
            ds = ds.assign_coords(draw=np.arange(start, stop, dtype=np.int64))
            if start == a:
                tmp.unlink()
                _create(tmp, ds, np.arange(a, b, dtype=np.int64))
                first = dict(ds.attrs)
            chunk_nfev.append(json.loads(ds.attrs["solver_stats"])["nfev"])
            _write_slice(tmp, ds, start - a)
            del ds
            if progress:
                progress(f"ensemble: draws {stop - a:,}/{b - a:,} "
                         f"({time.perf_counter() - started:.1f} s)")
        first.update(draws_first=a, draws_end=b, chunk_size=chunk_size,
                     solver_stats=json.dumps({"chunk_nfev": chunk_nfev,
                                              "wall_seconds": round(time.perf_counter() - started, 3)}))
        _set_attrs(tmp, {**first, **(attrs or {})})
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
