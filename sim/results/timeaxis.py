"""The result datasets' time axis: CF time, with the model's decimal years beside it.

`time` holds days since 1 Jan 2010 in the model's calendar, whose years have 365 days (CF
calendar "365_day"): xarray decodes it to dates (cftime objects; the project's readers keep the
numbers, decode_times=False) and CF checkers accept it.  The model's own clock, decimal years
(2017.5 = mid-2017 = day 2737.5), is the coordinate `decimal_year` on the same dimension, indexed
so that `ds.sel(decimal_year=2017.5)` and `ds.sel(decimal_year=slice(2015, 2020))` work.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

TIME_EPOCH_YEAR = 2010
DAYS_PER_YEAR = 365
TIME_UNITS = f"days since {TIME_EPOCH_YEAR}-01-01 00:00:00"
TIME_CALENDAR = "365_day"
DECIMAL_YEAR = "decimal_year"
TIME_ATTRS = {"units": TIME_UNITS, "calendar": TIME_CALENDAR, "standard_name": "time", "axis": "T",
              "long_name": "time (days since 1 Jan 2010, 365-day years)"}
DECIMAL_YEAR_ATTRS = {"units": "year",
                      "long_name": "time in decimal years (2010.0 = 1 Jan 2010; 365-day years)"}


def days_since_epoch(decimal_years: np.ndarray) -> np.ndarray:
    """Decimal years (yr) -> CF time values (days since 1 Jan 2010, 365-day years)."""
    return (np.asarray(decimal_years, dtype=float) - TIME_EPOCH_YEAR) * DAYS_PER_YEAR


def time_coords(decimal_years: np.ndarray) -> dict[str, xr.Variable]:
    """The `time` and `decimal_year` coordinates for output times in decimal years."""
    years = np.asarray(decimal_years, dtype=float)
    return {"time": xr.Variable("time", days_since_epoch(years), TIME_ATTRS),
            DECIMAL_YEAR: xr.Variable("time", years, DECIMAL_YEAR_ATTRS)}


def with_decimal_year(ds: xr.Dataset) -> xr.Dataset:
    """`ds` with `decimal_year` indexed; a file written before CF time (decimal years in `time`,
    units 'year') gets CF `time` and `decimal_year` from those values."""
    if "time" not in ds.dims:
        return ds
    if DECIMAL_YEAR not in ds.coords:
        if ds["time"].attrs.get("units") != "year":
            return ds
        ds = ds.assign_coords(time_coords(ds["time"].values))
    if DECIMAL_YEAR not in ds.xindexes:
        ds = ds.set_xindex(DECIMAL_YEAR)
    return ds
