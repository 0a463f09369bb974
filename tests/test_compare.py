"""compare(): exact differences on small known datasets, attrs reset, CLI, CSV/NetCDF output."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sim
from sim.sweeps.compare import compare, comparison_csv_text, comparison_table, select
from sim.errors import InputError
from sim.results.io import ENGINE, write_dataset

BIN = Path(sys.executable).parent
YEARS = np.arange(2018, 2033)


def known(deaths_per_year, seized_per_route=(1.0, 2.0), arrivals_per_channel=(10.0, 0.0, 5.0),
          draws=2, tag="x") -> xr.Dataset:
    """A tiny result-like dataset: constant yearly values, draw d multiplies deaths by (1 + d)."""
    factor = 1.0 + np.arange(draws)
    deaths = np.outer(np.full(YEARS.size, float(deaths_per_year)), factor)
    seized = np.broadcast_to(np.array(seized_per_route)[None, :, None], (YEARS.size, 2, draws))
    arrivals = np.broadcast_to(np.array(list(arrivals_per_channel) + [100.0])[None, :, None],
                               (YEARS.size, 4, draws))   # the last channel is heroin
    ds = xr.Dataset(
        {"deaths_overdose": (("year", "draw"), deaths, {"units": "deaths/yr", "long_name": "d"}),
         "deaths_synthetic": (("year", "draw"), deaths / 2, {"units": "deaths/yr", "long_name": "s"}),
         "seizures_fy": (("year", "route", "draw"), seized.copy(), {"units": "kg/yr", "long_name": "z"}),
         "arrivals": (("year", "channel", "draw"), arrivals.copy(), {"units": "HE kg/yr", "long_name": "a"})},
        coords={"year": YEARS, "draw": np.arange(draws), "route": ["mail", "land"],
                "channel": ["china_finished_mail", "india_finished_mail", "other_land", "heroin_land"],
                "channel_form": ("channel", ["finished", "finished", "finished", "heroin"])},
        attrs={"config": f"config of {tag}", "git_commit": f"commit-{tag}", "title": f"run {tag}"})
    return ds


def test_exact_differences_over_default_window():
    a, b = known(900, (2.0, 2.0), (5.0, 1.0, 0.0), tag="a"), known(1000, tag="b")
    cmp = compare(a, b)
    years = 11  # 2020..2030 inclusive
    np.testing.assert_array_equal(cmp.deaths_averted.values, [100.0 * years, 200.0 * years])
    np.testing.assert_array_equal(cmp.deaths_overdose_a.values, [900.0 * years, 1800.0 * years])
    np.testing.assert_array_equal(cmp.deaths_overdose_b.values, [1000.0 * years, 2000.0 * years])
    np.testing.assert_allclose(cmp.relative_change.values, [-0.1, -0.1], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(cmp.seizures_change.values, [1.0 * years] * 2)   # (4 - 3) kg/yr
    np.testing.assert_array_equal(cmp.supply_change.values, [-9.0 * years] * 2)   # (6 - 15) kg/yr
    q = cmp.deaths_averted_quantiles
    assert q.sel(quantile=0.5).item() == pytest.approx(1650.0)
    assert q.sel(quantile=0.05).item() == pytest.approx(1100.0 + 0.05 * 1100.0)
    assert q.sel(quantile=0.95).item() == pytest.approx(1100.0 + 0.95 * 1100.0)
    for name in cmp.data_vars:
        assert cmp[name].attrs["units"] and cmp[name].attrs["long_name"], name


def test_window_is_configurable_and_inclusive():
    cmp = compare(known(900), known(1000), window=(2025, 2026))
    np.testing.assert_array_equal(cmp.deaths_averted.values, [200.0, 400.0])
    with pytest.raises(InputError, match=r"^window: 2010-2030 outside"):
        compare(known(900), known(1000), window=(2010, 2030))
    with pytest.raises(InputError, match=r"^window: start 2030 is after end 2020"):
        compare(known(900), known(1000), window=(2030, 2020))


def test_attrs_are_reset_not_inherited():
    cmp = compare(known(900, tag="a"), known(1000, tag="b"), a_label="A", b_label="B")
    assert "config" not in cmp.attrs and "git_commit" not in cmp.attrs
    assert cmp.attrs["a_git_commit"] == "commit-a" and cmp.attrs["b_git_commit"] == "commit-b"
    assert cmp.attrs["a_config"] == "config of a" and cmp.attrs["b_config"] == "config of b"
    assert cmp.attrs["title"].startswith("fentsim comparison")


def test_unpaired_draws_rejected():
    with pytest.raises(InputError, match=r"^draw: A has 3 draw\(s\), B has 2"):
        compare(known(900, draws=3), known(1000, draws=2))


def test_sweep_against_baseline_selection_broadcasts():
    cells = [known(1000), known(900), known(700)]
    sweep = xr.concat(cells, dim="scenario").assign_coords(
        scenario=np.array(["baseline", "x", "y"], dtype=object))
    cmp = sim.compare(sweep, select(sweep, {"scenario": "baseline"}), window=(2020, 2020))
    assert cmp.deaths_averted.dims == ("scenario", "draw")
    np.testing.assert_array_equal(cmp.deaths_averted.sel(draw=0).values, [0.0, 100.0, 300.0])
    table = comparison_table(cmp)
    assert "baseline" in table and "450 [315 to 585]" in table
    rows = list(csv.DictReader(comparison_csv_text(cmp).splitlines()))
    row = next(r for r in rows if r["scenario"] == "y" and r["metric"] == "deaths_averted")
    assert float(row["median"]) == pytest.approx(450.0)  # draws 300 and 600
    with pytest.raises(InputError, match=r"^baseline\.scenario: value 'z' not in the dataset"):
        select(sweep, {"scenario": "z"}, label="baseline")


def run(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([str(BIN / "fentsim-compare"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


def test_cli_writes_netcdf_and_csv(tmp_path):
    write_dataset(known(900, tag="a"), tmp_path / "a.nc")
    write_dataset(known(1000, tag="b"), tmp_path / "b.nc")
    proc = run("a.nc", "b.nc", "--window", 2020, 2021, "--output", "out/cmp.nc", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "deaths averted" in proc.stdout and "300 [210 to 390]" in proc.stdout
    with xr.open_dataset(tmp_path / "out" / "cmp.nc", engine=ENGINE) as ds:
        np.testing.assert_array_equal(ds.deaths_averted.values, [200.0, 400.0])
    assert (tmp_path / "out" / "cmp.csv").read_text().startswith("a,b,variable,metric,units")


@pytest.mark.parametrize("args, message", [
    (["a.nc", "missing.nc"], "result file 'missing.nc': not found"),
    (["a.nc", "b.nc", "--window", "1990", "2000"], "window: 1990-2000 outside"),
    (["a.nc", "b.nc", "--output", "x.csv"], "--output: value 'x.csv' must end in .nc"),
    (["a.nc", "--baseline", "scenario=baseline"], "--baseline.scenario: not a dimension"),
])
def test_cli_bad_input_one_line_no_file(tmp_path, args, message):
    write_dataset(known(900), tmp_path / "a.nc")
    write_dataset(known(1000), tmp_path / "b.nc")
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc", "b.nc"]
