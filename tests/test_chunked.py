"""Chunked ensembles: incremental writing, and job slices that reassemble exactly."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml

from sim.sweeps.chunked import run_chunked
from sim.calibrate.ensemble import chunk_range, posterior_bootstrap, posterior_path
from sim.errors import InputError
from sim.results.io import open_result
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.results.run import simulate
from sim.engine.solver import SolverSettings
from tests.conftest import REPO

SETTINGS = SolverSettings(end_year=2020, output_step=1.0)
N, CHUNK = 10, 4


@pytest.fixture(scope="module")
def params_for():
    base = ModelParameters.from_mapping(
        yaml.safe_load((REPO / "configs/params/calibrated.yaml").read_text()))
    return posterior_bootstrap(base, N, seed=5, draws_file=posterior_path(None))


@pytest.fixture(scope="module")
def whole(params_for, tmp_path_factory):
    path = tmp_path_factory.mktemp("chunked") / "ensemble.nc"
    run_chunked(params_for, (0, N), CHUNK, LeverSet.from_mapping({}), SETTINGS, path,
                progress=None)
    return open_result(path)


def test_chunks_are_written_into_one_file(whole, params_for):
    assert whole.sizes["draw"] == N
    assert list(whole.draw.values) == list(range(N))
    # the second chunk (draws 4..7) equals a direct batch run of those draws, bit for bit
    direct = simulate(params_for(4, 8), LeverSet.from_mapping({}), SETTINGS)
    for var in ("deaths_synthetic", "seizures_fy", "capacity", "parameter_value"):
        np.testing.assert_array_equal(whole[var].isel(draw=slice(4, 8)).values,
                                      direct[var].values, err_msg=var)
    for var in whole.data_vars:
        assert whole[var].attrs.get("units") and whole[var].attrs.get("long_name"), var
    assert whole.attrs["chunk_size"] == CHUNK


def test_job_slices_reassemble_exactly(whole, params_for, tmp_path):
    parts = []
    for k in range(2):
        a, b = chunk_range(f"{k}/2", N, CHUNK)
        assert a % CHUNK == 0
        path = tmp_path / f"part{k}.nc"
        run_chunked(params_for, (a, b), CHUNK, LeverSet.from_mapping({}), SETTINGS, path,
                    progress=None)
        parts.append(open_result(path))
    joined = xr.concat(parts, dim="draw", data_vars="minimal", coords="minimal",
                       compat="override")
    assert list(joined.draw.values) == list(range(N))
    for var in whole.data_vars:
        np.testing.assert_array_equal(joined[var].values, whole[var].values, err_msg=var)


def test_chunk_range_covers_every_draw_once():
    ranges = [chunk_range(f"{k}/16", 1_000_000, 10_000) for k in range(16)]
    assert ranges[0][0] == 0 and ranges[-1][1] == 1_000_000
    assert all(r[1] == s[0] for r, s in zip(ranges, ranges[1:]))


@pytest.mark.parametrize("spec", ["3", "16/16", "a/b", "-1/4"])
def test_bad_chunk_spec(spec):
    with pytest.raises(InputError, match="ensemble.chunk: value"):
        chunk_range(spec, 100, 10)


def test_failed_run_leaves_no_file(params_for, tmp_path, monkeypatch):
    import sim.sweeps.chunked

    calls = {"n": 0}
    real = sim.sweeps.chunked.simulate

    def fail_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("interrupted")
        return real(*args, **kwargs)

    monkeypatch.setattr(sim.sweeps.chunked, "simulate", fail_second)
    with pytest.raises(RuntimeError):
        run_chunked(params_for, (0, N), CHUNK, LeverSet.from_mapping({}), SETTINGS,
                    tmp_path / "e.nc", progress=None)
    assert list(tmp_path.iterdir()) == []
