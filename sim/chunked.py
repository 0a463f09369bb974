"""Large ensembles in chunks: memory bounded by the chunk, results written incrementally.

The draws 0..n-1 are cut into canonical chunks of `chunk_size` draws; each chunk is one batch of
the solver and is written into its slice of one NetCDF file as soon as it is done, so memory stays
that of one chunk whatever n is.  Because the chunks are canonical, a slice of them run elsewhere
(`chunk_range`, e.g. job 3 of 16 on a cluster) gives bit-identical data for its draws, and the
slices reassemble exactly into the whole.
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

from sim.errors import InputError
from sim.io import ENGINE, atomic_path, coordinate_encoding
from sim.levers import LeverSet
from sim.parameters import ModelParameters
from sim.run import simulate
from sim.solver import SolverSettings

ParamsForDraws = Callable[[int, int], ModelParameters]  # (first draw, end) -> parameters


def posterior_bootstrap(base: ModelParameters, n_draws: int, seed: int,
                        draws_file: Path) -> ParamsForDraws:
    """Draws resampled with replacement from a posterior file; parameters of draws [a, b)."""
    from sim.calibration import read_draws
    names, values = read_draws(draws_file)
    pick = np.random.default_rng(seed).integers(0, len(values), n_draws)

    def params(a: int, b: int) -> ModelParameters:
        return base.replace(**{k: values[pick[a:b], i] for i, k in enumerate(names)})
    return params


def chunk_range(spec: str, n_draws: int, chunk_size: int) -> tuple[int, int]:
    """Draws [a, b) of job 'k/K' (k = 0..K-1): a contiguous run of whole canonical chunks."""
    try:
        k, total = (int(x) for x in str(spec).split("/"))
    except ValueError:
        raise InputError(f"ensemble.chunk: value {spec!r} not allowed; allowed: 'k/K' with "
                         f"0 <= k < K, e.g. '3/16'") from None
    if not 0 <= k < total:
        raise InputError(f"ensemble.chunk: value {spec!r} not allowed; need 0 <= k < K")
    n_chunks = -(-n_draws // chunk_size)
    first, last = (k * n_chunks) // total, ((k + 1) * n_chunks) // total
    return min(first * chunk_size, n_draws), min(last * chunk_size, n_draws)


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


def run_chunked(params_for: ParamsForDraws, draws: tuple[int, int], chunk_size: int,
                levers: LeverSet, settings: SolverSettings, path: str | os.PathLike, *,
                config: dict[str, Any] | None = None, seed: int | None = None,
                progress: Callable[[str], None] | None = print) -> Path:
    """Integrate draws [a, b) in canonical chunks of `chunk_size`, writing each into `path`.

    `a` must sit on a chunk boundary (use `chunk_range`).  The file appears only when complete
    (written under a temporary name, then renamed).
    """
    a, b = draws
    if chunk_size < 1:
        raise InputError(f"ensemble.chunk_size: value {chunk_size} must be a positive integer")
    if a % chunk_size:
        raise InputError(f"draws start {a} is not on a chunk boundary of {chunk_size}")
    path = Path(path)
    started = time.perf_counter()
    with atomic_path(path) as tmp:
        attrs: dict[str, Any] = {}
        chunk_nfev = []
        for start in range(a, b, chunk_size):
            stop = min(start + chunk_size, b)
            ds = simulate(params_for(start, stop), levers, settings, config=config, seed=seed)
            ds = ds.assign_coords(draw=np.arange(start, stop, dtype=np.int64))
            if start == a:
                tmp.unlink()
                _create(tmp, ds, np.arange(a, b, dtype=np.int64))
                attrs = dict(ds.attrs)
            chunk_nfev.append(json.loads(ds.attrs["solver_stats"])["nfev"])
            _write_slice(tmp, ds, start - a)
            if progress:
                progress(f"ensemble: draws {stop - a:,}/{b - a:,} "
                         f"({time.perf_counter() - started:.1f} s)")
        attrs.update(draws_first=a, draws_end=b, chunk_size=chunk_size,
                     solver_stats=json.dumps({"chunk_nfev": chunk_nfev,
                                              "wall_seconds": round(time.perf_counter() - started, 3)}))
        with h5netcdf.File(tmp, "a") as f:
            f.attrs.update(attrs)
    return path
