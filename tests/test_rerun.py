"""A result file carries enough provenance to regenerate itself bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.results.io import open_result, write_dataset
from tests.test_cli import fentsim


@pytest.fixture(scope="module")
def result_file(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rerun")
    proc = fentsim(f"hydra.run.dir={tmp}", "solver.end_year=2028", "ensemble=posterior",
                   "ensemble.size=3", "scenario=naloxone_up", "scenario.intensity=2", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return tmp / "result.nc"


def test_rerun_is_bit_identical(result_file, tmp_path):
    proc = fentsim(str(result_file), "--output", str(tmp_path / "again.nc"), cwd=tmp_path,
                   command="fentsim-rerun")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DIFFERENT" not in proc.stdout
    again = open_result(tmp_path / "again.nc")
    original = open_result(result_file)
    assert again.sizes["draw"] == 3
    for var in original.data_vars:
        assert (again[var].fillna(-1) == original[var].fillna(-1)).all(), var


def test_rerun_reports_a_changed_file(result_file, tmp_path):
    ds = open_result(result_file)
    ds["deaths_synthetic"] = ds.deaths_synthetic * 1.01
    changed = write_dataset(ds, tmp_path / "changed.nc")
    proc = fentsim(str(changed), cwd=tmp_path, command="fentsim-rerun")
    assert proc.returncode == 1
    assert "DIFFERENT deaths_synthetic: largest relative difference 0.0099" in proc.stdout


@pytest.mark.parametrize("content, message", [
    (b"not a netcdf file", "not a readable NetCDF file"),
    (None, "not found"),
])
def test_rerun_bad_file(tmp_path, content, message):
    path = tmp_path / "bad.nc"
    if content is not None:
        path.write_bytes(content)
    proc = fentsim(str(path), cwd=tmp_path, command="fentsim-rerun")
    assert proc.returncode == 2
    assert proc.stderr.startswith("fentsim-rerun: error: result file") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
