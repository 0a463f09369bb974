"""Short text summaries of a result dataset (median and 90% interval over draws)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr


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


def summary_table(ds: xr.Dataset, years: Sequence[int]) -> str:
    """Deaths by drug, synthetic death rate, fentanyl share (mid-year) and CBP seizures by year."""
    years = [int(y) for y in years if int(y) in ds.year.values]
    n = ds.sizes["draw"]
    header = ("year", "synthetic deaths", "fentanyl deaths", "heroin deaths",
              "synth rate/100k", "fentanyl share", "seized FY (kg)")
    rows = []
    for year in years:
        share = ds.fentanyl_share.interp(time=year + 0.5).values
        rows.append((
            str(year),
            interval_text(ds.deaths_synthetic.sel(year=year).values),
            interval_text(ds.deaths_fentanyl.sel(year=year).values),
            interval_text(ds.deaths_heroin.sel(year=year).values),
            interval_text(ds.death_rate_synthetic.sel(year=year).values, "{:.2f}"),
            interval_text(share, "{:.3f}"),
            interval_text(ds.seizures_fy.sel(year=year).sum("route", min_count=1).values, "{:,.1f}"),
        ))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths))  # noqa: E731
    note = f"{n} draw(s)" + ("; median [5%-95%]" if n > 1 else "")
    return "\n".join([note, line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
