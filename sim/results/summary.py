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


def summary_table(ds: xr.Dataset, years: Sequence[int]) -> str:
    """Deaths by drug, synthetic death rate, fentanyl share (mid-year) and CBP seizures by year."""
    years = [int(y) for y in years if int(y) in ds.year.values]
    n = ds.sizes["draw"]
    header = ("year", "synthetic deaths", "fentanyl deaths", "heroin deaths",
              "synth rate/100k", "fentanyl share", "seized FY (kg)")
    rows = []
    for year in years:
        share = value_at_time(ds.fentanyl_share, year + 0.5)
        rows.append((
            str(year),
            interval_text(ds.deaths_synthetic.sel(year=year).values),
            interval_text(ds.deaths_fentanyl.sel(year=year).values),
            interval_text(ds.deaths_heroin.sel(year=year).values),
            interval_text(ds.death_rate_synthetic.sel(year=year).values, "{:.2f}"),
            interval_text(share, "{:.3f}"),
            interval_text(ds.seizures_fy.sel(year=year).sum("route", min_count=1).values, "{:,.1f}"),
        ))
    note = f"{n} draw(s)" + ("; median [5%-95%]" if n > 1 else "")
    return note + "\n" + table(header, rows)


def headline(ds: xr.Dataset, window: Sequence[int] = (2020, 2030)) -> str:
    """One number for a run: overdose deaths summed over `window` (clipped to the simulated
    years), median [5%-95%] over draws; e.g. 'overdose deaths 2020-2030: 612,345 [...]'."""
    years = ds["year"].values
    start, end = max(int(window[0]), int(years.min())), min(int(window[1]), int(years.max()))
    if start > end:
        start = end = int(years.max())
    total = ds["deaths_overdose"].sel(year=slice(start, end)).sum("year")
    span = f"{start}-{end}" if end > start else f"{start}"
    return f"overdose deaths {span}: {interval_text(total.values)}"
