"""Result files conform to CF 1.11 (IOOS compliance-checker: no high-priority failure) on the real
outputs of `fentsim`, a sweep (`fentsim -m`: sweep.nc) and `fentsim-compare`, with CF time that
xarray decodes and decimal years beside it; UDUNITS units everywhere, and never pickle."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sim.results.io import ENGINE, open_result
from tests.conftest import REPO

BIN = Path(sys.executable).parent
# The CF checker's own environment (`make setup`, tests/cf-checker.txt): it needs the netCDF4
# library, which fentsim's environment does not install (one netCDF engine there: h5netcdf).
CF_CHECKER = BIN.parent / "cf-checker" / "bin" / "python"
HIGH = 3  # compliance-checker weight of a high-priority check
# UDUNITS has no currency: the money variables (US$/yr, US$ per lever unit) fail its units check.
CURRENCY = ('are not recognized by UDUNITS',)
# Run by the checker's Python: every high-priority CF 1.11 result that did not pass, as JSON.
CHECK = """
import json, sys
from compliance_checker.runner import CheckSuite
suite = CheckSuite()
suite.load_all_available_checkers()
results, _ = suite.run_all(suite.load_dataset(sys.argv[1]), ["cf:1.11"], skip_checks=[])["cf:1.11"]
failed = []
for r in results:
    passed, total = r.value if isinstance(r.value, tuple) else (int(bool(r.value)), 1)
    if r.weight >= int(sys.argv[2]) and passed < total:
        failed += [f"{r.name}: {m}" for m in r.msgs] or [r.name]
print(json.dumps(failed))
"""


def cf_failures(path: Path) -> list[str]:
    """High-priority CF 1.11 failures of a file, as 'section: message' lines (currency units
    left out: UDUNITS has none), from the IOOS compliance-checker in its own environment."""
    if not CF_CHECKER.is_file():
        pytest.fail(f"the CF checker's environment is missing ({CF_CHECKER}): run `make setup`, "
                    f"or python -m venv {CF_CHECKER.parent.parent} and pip install -r "
                    f"tests/cf-checker.txt into it")
    proc = subprocess.run([str(CF_CHECKER), "-c", CHECK, str(path), str(HIGH)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    return [f for f in failed if not (CURRENCY[0] in f and 'US$' in f)]


def test_fentsims_environment_has_one_netcdf_engine():
    """h5netcdf reads and writes every result; netCDF4 (the CF checker's) stays out of it, so that
    xarray never picks an engine by itself and no file is written by two libraries."""
    engines = xr.backends.list_engines()
    assert ENGINE == "h5netcdf" and ENGINE in engines
    assert "netcdf4" not in engines and importlib.util.find_spec("netCDF4") is None


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    """A two-job `fentsim -m` sweep (each job's result.nc is what `fentsim` writes; the sweep's
    sweep.nc) and `fentsim-compare` on it."""
    where = tmp_path_factory.mktemp("cf")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    sweep = where / "sweep"
    proc = subprocess.run([str(BIN / "fentsim"), "-m", "scenario=baseline,naloxone_up",
                           "ensemble=posterior", "ensemble.size=2", "solver.end_year=2028",
                           f"hydra.sweep.dir={sweep}"], cwd=where, capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([str(BIN / "fentsim-compare"), str(sweep / "sweep.nc"), "--window",
                           "2026", "2028", "--output", str(where / "comparison.nc")], cwd=where,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return {"fentsim": sweep / "0" / "result.nc", "sweep": sweep / "sweep.nc",
            "compare": where / "comparison.nc"}


@pytest.mark.parametrize("output", ["fentsim", "sweep", "compare"])
def test_outputs_pass_the_cf_checker(outputs, output):
    assert cf_failures(outputs[output]) == []


@pytest.fixture(scope="module")
def result_file(outputs) -> Path:
    return outputs["fentsim"]


def test_units_parse_with_udunits_and_keep_a_readable_label(result_file):
    import cf_units

    ds = open_result(result_file)
    for name in list(ds.data_vars) + [c for c in ds.coords if "units" in ds[c].attrs]:
        units = ds[name].attrs.get("units", ds[name].attrs.get("units_label"))
        assert units and ds[name].attrs.get("long_name"), name
        if name == "funding_level":
            assert units == "see lever_units" and "lever_units" in ds.coords  # units by lever
        elif not units.startswith("US$"):   # UDUNITS has no currency
            cf_units.Unit(units)  # raises if UDUNITS cannot parse it
    assert ds.deaths_synthetic.attrs["units"] == "count/yr"   # plots label it [count/yr]
    assert ds.deaths_synthetic.attrs["units_label"] == "deaths/yr"
    assert ds.death_rate_synthetic.attrs["units"] == "1e-5/yr"
    assert ds.users_untreated.attrs["units_label"] == "persons"
    assert ds.capacity.attrs["units"] == "kg/yr" and ds.capacity.attrs["units_label"] == "HE kg/yr"
    assert ds.heroin_arrivals.attrs["units"] == "kg/yr" and "units_label" not in ds.heroin_arrivals.attrs


def test_time_is_cf_time_with_decimal_years_beside_it(result_file):
    ds = open_result(result_file)
    assert ds.time.attrs["units"] == "days since 2010-01-01 00:00:00"
    assert ds.time.attrs["calendar"] == "365_day" and ds.time.attrs["standard_name"] == "time"
    np.testing.assert_allclose(ds.time.values, (ds.decimal_year.values - 2010) * 365)
    assert ds.fentanyl_share.sel(decimal_year=2017.5).shape == (2,)
    assert ds.fentanyl_share.sel(decimal_year=slice(2016, 2017)).sizes["time"] == 13
    assert int(ds.deaths_synthetic.sel(year=2017).count()) == 2
    # a plain xr.open_dataset decodes `time` to dates in the model's 365-day calendar
    with xr.open_dataset(result_file, engine=ENGINE) as plain:
        mid = plain.time.values[int(np.argmin(abs(plain.decimal_year.values - 2017.5)))]
        assert (mid.year, mid.month, mid.day, mid.calendar) == (2017, 7, 2, "noleap")
        assert plain.set_xindex("decimal_year").fentanyl_share.sel(decimal_year=2017.5).shape == (2,)
    import h5netcdf
    with h5netcdf.File(result_file, "r") as raw:  # CF 2.5.1: no _FillValue on a coordinate
        assert "_FillValue" not in raw.variables["time"].attrs


def test_no_pickle_and_no_instantiate_on_user_input():
    """Results are NetCDF only; nothing loads pickles or instantiates config targets."""
    for path in sorted((REPO / "sim").glob("*.py")):
        text = path.read_text()
        for banned in ("import pickle", "pickle.load", "joblib.load", "instantiate(", "allow_pickle=True"):
            assert banned not in text, f"{path.name} uses {banned}"
