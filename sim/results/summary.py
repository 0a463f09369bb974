"""Short text summaries of a result dataset (median and 90% interval over draws)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from sim.results.tables import table
from sim.results.timeaxis import DECIMAL_YEAR


def interval_text(values: np.ndarray, fmt: str = "{:,.0f}") -> str:
    """'median' for one draw, 'median [5%-95%]' for several."""
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "n/a"
    median = fmt.format(np.median(values))
    if values.size == 1:
        return median
    lo, hi = np.quantile(values, [0.05, 0.95])
    return f"{median} [{fmt.format(lo)}-{fmt.format(hi)}]"


def value_at_time(da: xr.DataArray, t: float) -> np.ndarray:
    """`da` linearly interpolated in `time` at decimal year `t` (NaN outside the time range).

    Same values as `da.interp(time=t)`, without its per-call cost (scipy, index rebuilding); only
    the two neighbouring time rows are read, so a lazily opened dataset stays lazy.
    """
    times = np.asarray(da[DECIMAL_YEAR if DECIMAL_YEAR in da.coords else "time"].values, dtype=float)
    hi = int(np.searchsorted(times, t, side="left"))
    if times.size == 0 or not times[0] <= t <= times[-1]:
        return np.full(da.isel(time=0).shape if times.size else (1,), np.nan)
    y_hi = np.asarray(da.isel(time=hi).values, dtype=float)
    if times[hi] == t:
        return y_hi
    lo = hi - 1
    y_lo = np.asarray(da.isel(time=lo).values, dtype=float)
    return y_lo + (y_hi - y_lo) / (times[hi] - times[lo]) * (t - times[lo])


# (variable, how it is read in the year's row, format): the columns of a single run's summary
# ('' = the calendar year's value as stored)
SUMMARY_COLUMNS = (("deaths_synthetic", "", "{:,.0f}"),
                   ("deaths_fentanyl", "", "{:,.0f}"),
                   ("deaths_heroin", "", "{:,.0f}"),
                   ("death_rate_synthetic", "", "{:.2f}"),
                   ("fentanyl_share", "mid-year", "{:.3f}"),
                   ("seizures_fy", "all routes", "{:,.1f}"))


def units_text(da: xr.DataArray) -> str:
    """A variable's units as stored, in the readable form: `units_label` ('deaths/yr', 'HE kg/yr')
    where the file has one beside the CF `units` ('count/yr', 'kg/yr'), else `units`."""
    return str(da.attrs.get("units_label", da.attrs.get("units", "")))


def run_label(ds: xr.Dataset) -> str:
    """Which run this is: 'scenario naloxone_up (intensity 2)', from the result's scalar
    coordinates (and any other swept value), or 'this run' without them."""
    scalars = {str(k): v.values.item() for k, v in ds.coords.items() if v.ndim == 0}
    if "scenario" not in scalars:
        return "this run"
    text = f"scenario {scalars.pop('scenario')}"
    intensity = scalars.pop("scenario_intensity", 1.0)
    extra = [f"intensity {intensity:g}"] if intensity != 1.0 else []
    extra += [f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in scalars.items()]
    return text + (f" ({', '.join(extra)})" if extra else "")


def summary_table(ds: xr.Dataset, years: Sequence[int]) -> str:
    """The run's outputs by year, one column per output variable named as stored with its units
    as stored (deaths by drug, synthetic death rate, fentanyl share at mid-year, seizures in the
    federal fiscal year over all routes), under a line naming the scenario and the draws."""
    years = [int(y) for y in years if int(y) in ds.year.values]
    n = ds.sizes["draw"]
    columns = [c for c in SUMMARY_COLUMNS if c[0] in ds]
    header = ["year", *(f"{name}\n({', '.join(filter(None, (units_text(ds[name]), how)))})"
                        for name, how, _ in columns)]
    rows = []
    for year in years:
        row = [str(year)]
        for name, how, fmt in columns:
            da = ds[name]
            if how == "mid-year":
                values = value_at_time(da, year + 0.5)
            else:
                da = da.sel(year=year)
                values = (da.sum("route", min_count=1) if "route" in da.dims else da).values
            row.append(interval_text(values, fmt))
        rows.append(row)
    note = f"{run_label(ds)}: {n} draw(s)" + ("; median [5%-95%]" if n > 1 else "")
    return note + "\n" + table(header, rows)


def headline(ds: xr.Dataset, window: Sequence[int] = (2020, 2030),
             variable: str = "deaths_overdose") -> str:
    """One number for a run: `variable` summed over `window` (clipped to the simulated years),
    median [5%-95%] over draws, named as stored with its units; e.g.
    'deaths_overdose summed over 2020-2030 (deaths): 612,345 [...]'."""
    years = ds["year"].values
    start, end = max(int(window[0]), int(years.min())), min(int(window[1]), int(years.max()))
    if start > end:
        start = end = int(years.max())
    total = ds[variable].sel(year=slice(start, end)).sum("year")
    span = f"summed over {start}-{end}" if end > start else f"in {start}"
    units = units_text(ds[variable]).removesuffix("/yr")
    return f"{variable} {span}{f' ({units})' if units else ''}: {interval_text(total.values)}"
