"""A single run's console summary names its scenario and each variable as stored, with the units
as stored; a sweep job's line reports the sweep's own window and variable."""

from __future__ import annotations

import numpy as np
import xarray as xr

from sim.results.summary import headline, run_label, summary_table


def result(scenario: str | None = "naloxone_up", intensity: float = 2.0) -> xr.Dataset:
    years = np.arange(2018, 2026)
    ds = xr.Dataset({
        "deaths_overdose": (("year", "draw"), np.full((years.size, 3), 100.0),
                            {"units": "count/yr", "units_label": "deaths/yr"}),
        "deaths_synthetic": (("year", "draw"), np.full((years.size, 3), 50.0), {"units": "count/yr"}),
        "supply": (("year", "draw"), np.full((years.size, 3), 2.0),
                   {"units": "kg/yr", "units_label": "HE kg/yr"}),   # CF units, readable label
    }, coords={"year": years, "draw": np.arange(3)})
    if scenario is not None:
        ds = ds.assign_coords(scenario=scenario, scenario_intensity=intensity)
    return ds


def test_summary_names_scenario_variables_and_stored_units():
    text = summary_table(result(), [2020, 2025])
    first, names, units = text.splitlines()[:3]
    assert first == "scenario naloxone_up (intensity 2): 3 draw(s); median [5%-95%]"
    assert "deaths_synthetic" in names and "(count/yr)" in units
    assert run_label(result(intensity=1.0)) == "scenario naloxone_up"
    assert run_label(result(None)) == "this run"


def test_headline_names_variable_window_and_units():
    ds = result()
    assert headline(ds, (2020, 2023)) == "deaths_overdose summed over 2020-2023 (deaths): 400 [400-400]"
    assert headline(ds, (2021, 2021), "supply") == "supply in 2021 (HE kg): 2 [2-2]"
    assert headline(ds, (2000, 2100)).startswith("deaths_overdose summed over 2018-2025 (deaths)")
