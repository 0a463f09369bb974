"""Compare two result sets: deaths averted, relative change, change in seizures and supply.  Hydra-free.

`compare(a, b)` measures A against the reference B over a window of calendar years (inclusive):

    deaths_averted  = sum over window of B's deaths - A's deaths     (positive: A saves lives)
    relative_change = (A's deaths - B's deaths) / B's deaths
    seizures_change = A's fiscal-year seizures - B's, summed over routes and the window (kg)
    supply_change   = A's fentanyl arrivals - B's, over the fentanyl channels and the window (HE kg)

Money (only when A and B both carry `funding_spending`, US$/yr, the extra spending above history
that a `funding` scenario buys; the same for every draw):

    spending                   = A's funding_spending - B's, summed over the window (US$)
    deaths_averted_per_million = deaths_averted / (spending / 1e6)   (deaths per million US$)
    cost_per_death_averted     = spending / deaths_averted           (US$ per death averted)

The ratios are defined where A spends more than B (spending > 0) and are NaN elsewhere (the
baseline cell, an unfunded scenario, a missing cell).  cost_per_death_averted is +inf in a draw
that averts no death or adds deaths.  Its quantiles are not taken over its own draws (a ratio whose
denominator crosses zero has meaningless raw quantiles) but are the inverted quantiles of the
per-million ratio in reverse order (q05 of the cost = 1e6 / q95 of the per-million ratio); a
per-million quantile <= 0 gives +inf ("none averted").  A dataset without `funding_spending` on
either side gives no money variables.

Draws are paired by identity: every fentsim result carries a `draw_id` per draw (the posterior
file's content hash and row, or `params:<i>`), and A and B are compared only if they hold the
same draws in the same order (the same ensemble: name, size, seed and draws file).  Draws that
differ, a dataset without draw identities against one with them, or one with a `draw` dimension
against one without (e.g. `--select draw=3` on one side only) are refused with one line, never
spread or paired by position.  Datasets that both lack `draw_id` (made in Python without an
ensemble) are paired by position, and the comparison says so (attribute `pairing`).  A may be a
sweep dataset (extra dimensions such as `scenario`); B is broadcast over them, so B can be a
selection of the same sweep (`select(sweep, {"scenario": "baseline"})`).  Summaries over draws are
median and the 90% interval (5th-95th percentile), in variables `<name>_quantiles`.  Years must
increase, and data that are NaN over the whole window (B anywhere, A everywhere or in part of a
cell's draws) are refused.

The result's attrs are new: the provenance of each input is recorded under `a_*` / `b_*` keys and
never passed off as the comparison's own.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from sim.errors import InputError
from sim.sweeps.aggregate import dimension_name
from sim.results.tables import table
from sim.results.io import write_text_atomic  # noqa: F401  (re-exported: the shared atomic writer)

DEFAULT_WINDOW = (2020, 2030)
DEFAULT_VARIABLE = "deaths_overdose"
QUANTILES = (0.05, 0.5, 0.95)
METRICS = ("deaths_a", "deaths_b", "deaths_averted", "relative_change", "seizures_change",
           "supply_change")
MONEY_METRICS = ("spending", "deaths_averted_per_million", "cost_per_death_averted")
FUNDING = "funding_spending"
FUNDING_UNITS = "US$/yr"
FUNDING_DIM = dimension_name("funding.total_usd_per_year")  # the swept dollars (US$/yr)
RESULT_DIMS = ("year", "time", "draw", "channel", "route", "product", "parameter", "lever")


def sweep_dims(ds: xr.Dataset) -> list[str]:
    """Dimensions of a (sweep) dataset that are not the model's own (e.g. scenario, intensity)."""
    return [d for d in ds.dims if d not in RESULT_DIMS and d != "quantile"]


def parse_selection(items: Sequence[str]) -> dict[str, Any]:
    """['scenario=baseline', 'scenario.intensity=1'] -> {'scenario': 'baseline', ...} (a key may
    be the override key or its dimension name, `scenario_intensity`)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"selection {item!r}: expected KEY=VALUE, e.g. scenario=baseline")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
    return out


def select(ds: xr.Dataset, selection: Mapping[str, Any], label: str = "selection") -> xr.Dataset:
    """`ds` at the given values of its sweep dimensions, with those dimensions dropped."""
    if not selection:
        return ds
    picks = {}
    for key, value in selection.items():
        key = key if key in ds.dims else dimension_name(key)  # scenario.intensity -> scenario_intensity
        if key not in ds.dims:
            allowed = ", ".join(sweep_dims(ds)) or "none (not a sweep dataset)"
            raise InputError(f"{label}.{key}: not a dimension of the dataset; allowed: {allowed}")
        coord = ds[key].values
        matches = [i for i, c in enumerate(coord) if _same_value(c, value)]
        if not matches:
            allowed = ", ".join(str(c) for c in coord)
            raise InputError(f"{label}.{key}: value {value!r} not in the dataset; allowed: {allowed}")
        picks[key] = matches[0]
    return ds.isel(picks).drop_vars(list(picks), errors="ignore")


def _same_value(coord: Any, value: Any) -> bool:
    if isinstance(coord, (np.floating, float, np.integer, int)) and isinstance(value, (int, float)):
        return float(coord) == float(value)
    return str(coord) == str(value)


def _check_window(window: Sequence[int], *datasets: xr.Dataset) -> tuple[int, int]:
    if len(window) != 2:
        raise InputError(f"window: value {list(window)!r} must be two years START END")
    try:
        start, end = int(window[0]), int(window[1])
    except (TypeError, ValueError):
        raise InputError(f"window: value {list(window)!r} must be two integer years") from None
    if start > end:
        raise InputError(f"window: start {start} is after end {end}")
    for name, ds in zip("ab", datasets):
        years = ds["year"].values
        if start < years.min() or end > years.max():
            raise InputError(f"window: {start}-{end} outside the years of {name.upper()} "
                             f"({years.min()}-{years.max()}); allowed: a window inside both")
    return start, end


DRAW_ID = "draw_id"
SAME_ENSEMBLE = "results of the same ensemble (same ensemble.name, size, seed and draws file)"


def _ids(ds: xr.Dataset) -> np.ndarray | None:
    """The draw identities of a dataset as strings ('' for a missing sweep cell), or None."""
    if DRAW_ID not in ds.coords:
        return None
    return np.asarray(ds[DRAW_ID].values).astype(str)


def pair_draws(a: xr.Dataset, b: xr.Dataset) -> tuple[xr.Dataset, str]:
    """B with its draws matched to A's by identity, and how they were paired; InputError if the
    draws of A and B are not the same parameter sets (see the module doc)."""
    if ("draw" in a.dims) != ("draw" in b.dims):
        has, lacks = ("A", "B") if "draw" in a.dims else ("B", "A")
        n = (a if has == "A" else b).sizes["draw"]
        raise InputError(f"draw: {has} has {n} draw(s), {lacks} has no draw dimension (a single "
                         f"draw selected, e.g. --select draw=...); allowed: the same draw(s) on "
                         f"both sides (--select draw=K --baseline draw=K) or neither")
    ia, ib = _ids(a), _ids(b)
    if (ia is None) != (ib is None):
        lacks = "A" if ia is None else "B"
        raise InputError(f"draw_id: {lacks} has no draw identities (written by an older fentsim "
                         f"or not by fentsim), so its draws cannot be matched to the other's; "
                         f"allowed: {SAME_ENSEMBLE}, e.g. regenerated with fentsim-rerun --output")
    if "draw" in a.dims:
        da, db = a["draw"].values, b["draw"].values
        if ia is None and (da.shape != db.shape or not np.array_equal(da, db)):
            raise InputError(f"draw: A has {da.size} draw(s), B has {db.size}; the comparison "
                             f"pairs draws, so run both with the same ensemble")
        if ia is not None and a.sizes["draw"] != b.sizes["draw"]:
            raise InputError(f"draw: A has {a.sizes['draw']} draw(s), B has {b.sizes['draw']}; "
                             f"allowed: {SAME_ENSEMBLE}")
    if ia is None:
        return b, "by position (neither input carries draw identities)"
    id_a, id_b = xr.broadcast(a[DRAW_ID], b[DRAW_ID])
    va, vb = np.asarray(id_a.values).astype(str), np.asarray(id_b.values).astype(str)
    differ = (va != vb) & (va != "") & (vb != "")   # '' = a missing sweep cell (NaN data)
    if differ.any():
        first = np.argwhere(differ)[0]
        where = ", ".join(f"{d}={id_a[d].values[i]}" for d, i in zip(id_a.dims, first)
                          if d in id_a.coords)
        raise InputError(f"draw_id: A and B hold different parameter draws ({where}: A "
                         f"{va[tuple(first)]!r}, B {vb[tuple(first)]!r}; {int(differ.sum())} of "
                         f"{differ.size} differ); allowed: {SAME_ENSEMBLE}")
    if "draw" in b.dims:
        b = b.assign_coords(draw=a["draw"].values)
    return b, "by draw identity (draw_id)"


def _check_years(name: str, ds: xr.Dataset) -> None:
    years = np.asarray(ds["year"].values)
    if years.ndim != 1 or years.size == 0 or (years.size > 1 and not np.all(np.diff(years) > 0)):
        raise InputError(f"{name}: coordinate 'year' is not strictly increasing "
                         f"({years[:3].tolist()}...); allowed: a fentsim result or sweep dataset")


def _check_inputs(a: xr.Dataset, b: xr.Dataset, variable: str) -> None:
    for name, ds in (("A", a), ("B", b)):
        for var in (variable, "seizures_fy", "arrivals"):
            if var not in ds:
                raise InputError(f"{name}: variable {var!r} missing; expected a fentsim result or "
                                 f"sweep dataset (variables deaths_*, seizures_fy, arrivals)")
        _check_years(name, ds)
    extra = [d for d in sweep_dims(b) if d not in a.dims]
    if extra:
        raise InputError(f"B: has sweep dimension(s) {', '.join(extra)} that A lacks; select one "
                         f"value of each for the baseline (e.g. --baseline {extra[0]}=...)")


def _check_finite(deaths_a: xr.DataArray, deaths_b: xr.DataArray, variable: str, start: int,
                  end: int) -> None:
    """B must be a number for every draw; A for some cell, and for all or none of a cell's draws
    (a cell that is NaN throughout is a missing or failed sweep job and is shown as n/a)."""
    span = f"{variable} over {start}-{end}"
    if np.isnan(deaths_b.values).any():
        raise InputError(f"B: {span} is NaN for {int(np.isnan(deaths_b.values).sum())} of "
                         f"{deaths_b.size} value(s) (missing or failed job, or damaged data); "
                         f"allowed: a complete reference")
    nan_a = np.isnan(deaths_a)
    if bool(nan_a.all()):
        raise InputError(f"A: {span} is NaN everywhere (no finished job or damaged data); "
                         f"allowed: a result with data in the window")
    if "draw" in nan_a.dims and bool((nan_a.any("draw") & ~nan_a.all("draw")).any()):
        raise InputError(f"A: {span} is NaN for some draws of a cell (damaged data); allowed: "
                         f"all draws of a cell finite")


def _window_sum(da: xr.DataArray, start: int, end: int, over: Sequence[str] = (),
                skipna: bool = True) -> xr.DataArray:
    da = da.sel(year=slice(start, end))
    dims = ["year", *[d for d in over if d in da.dims]]
    return da.sum(dims, skipna=False) if not skipna else da.sum(dims, min_count=1)


def _provenance(ds: xr.Dataset, prefix: str, label: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {f"{prefix}_label": label or ""}
    for key in ("title", "git_commit", "config", "seed", "sweep_dir", "sweep_keys"):
        if key in ds.attrs:
            value = ds.attrs[key]
            out[f"{prefix}_{key}"] = value if isinstance(value, (int, float)) else str(value)
    return out



def _spending(a: xr.Dataset, b: xr.Dataset, start: int, end: int) -> xr.DataArray | None:
    """A's extra spending minus B's over the window (US$), or None if either lacks funding_spending."""
    if FUNDING not in a or FUNDING not in b:
        return None
    for name, ds in (("A", a), ("B", b)):
        units = ds[FUNDING].attrs.get("units", FUNDING_UNITS)
        if "year" not in ds[FUNDING].dims or units != FUNDING_UNITS:
            raise InputError(f"{name}: variable {FUNDING!r} (dims {ds[FUNDING].dims}, units "
                             f"{units!r}) not allowed; allowed: dimension year, units {FUNDING_UNITS}")
    spent_a = _window_sum(a[FUNDING], start, end, skipna=False)
    spent_b = _window_sum(b[FUNDING], start, end, skipna=False)
    if np.isnan(spent_b.values).any():
        raise InputError(f"B: {FUNDING} over {start}-{end} is NaN (damaged data); allowed: a "
                         f"complete reference")
    return spent_a - spent_b


def _money(averted: xr.DataArray, spending: xr.DataArray) -> dict[str, xr.DataArray]:
    """Per-draw money ratios: deaths per million US$ and US$ per death averted (NaN where
    spending <= 0 or missing; cost +inf where no death is averted)."""
    spending = spending.broadcast_like(averted)
    paid = spending.where(spending > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_million = averted / (paid / 1e6)
        cost = xr.where(per_million > 0, 1e6 / per_million, np.inf).where(per_million.notnull())
    return {"per_million": per_million, "cost": cost}


def cost_quantiles(per_million_q: xr.DataArray) -> xr.DataArray:
    """Quantiles of the cost per death averted (US$) from those of the per-million ratio: 1e6 / q
    in reverse order (q05 <- q95), +inf where q <= 0 (none averted), NaN kept."""
    rev = per_million_q.isel(quantile=slice(None, None, -1)).values
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(rev > 0, 1e6 / rev, np.inf)
    inv = np.where(np.isnan(rev), np.nan, inv)
    return per_million_q.copy(data=inv)


def has_money(cmp: xr.Dataset) -> bool:
    """Whether a comparison carries money metrics with some spending (not all zero or missing)."""
    if "spending" not in cmp:
        return False
    spent = np.asarray(cmp["spending"].values, dtype=float)
    return bool((np.isfinite(spent) & (spent != 0)).any())


def metrics(cmp: xr.Dataset) -> tuple[str, ...]:
    """The metrics of a comparison to tabulate: METRICS, and MONEY_METRICS when it has money."""
    return METRICS + (MONEY_METRICS if has_money(cmp) else ())


def fentanyl_arrivals(ds: xr.Dataset) -> xr.DataArray:
    """Arrivals of the fentanyl channels (year, channel, draw; HE kg/yr), heroin's left out."""
    return ds["arrivals"].where(ds["channel_form"] != "heroin", 0.0)


def compare(a: xr.Dataset, b: xr.Dataset, window: Sequence[int] = DEFAULT_WINDOW,
            variable: str = DEFAULT_VARIABLE, *, a_label: str | None = None,
            b_label: str | None = None) -> xr.Dataset:
    """Effect of A relative to reference B over `window` (inclusive calendar years), per draw and
    summarised (median, 90% interval).  See the module doc for the definitions."""
    _check_inputs(a, b, variable)
    b, pairing = pair_draws(a, b)
    start, end = _check_window(window, a, b)
    deaths_a = _window_sum(a[variable], start, end, skipna=False)  # a NaN year is not a zero
    deaths_b = _window_sum(b[variable], start, end, skipna=False)
    _check_finite(deaths_a, deaths_b, variable, start, end)
    seized_a = _window_sum(a["seizures_fy"], start, end, ["route"])
    seized_b = _window_sum(b["seizures_fy"], start, end, ["route"])
    supply_a = _window_sum(fentanyl_arrivals(a), start, end, ["channel"])
    supply_b = _window_sum(fentanyl_arrivals(b), start, end, ["channel"])
    deaths_b_full = deaths_b.broadcast_like(deaths_a)
    per_draw = {
        "deaths_a": (deaths_a, "deaths", f"{variable} of A summed over {start}-{end}"),
        "deaths_b": (deaths_b_full, "deaths", f"{variable} of B (reference) summed over {start}-{end}"),
        "deaths_averted": (deaths_b - deaths_a, "deaths",
                           f"deaths averted by A relative to B over {start}-{end} ({variable}; "
                           f"positive = fewer deaths in A)"),
        "relative_change": ((deaths_a - deaths_b) / deaths_b.where(deaths_b != 0), "1",
                            f"relative change of {variable} over {start}-{end}, (A - B) / B"),
        "seizures_change": (seized_a - seized_b, "kg",
                            f"change in fentanyl seized (federal fiscal years {start}-{end}, all "
                            f"routes), A - B"),
        "supply_change": (supply_a - supply_b, "HE kg",
                          f"change in fentanyl arriving in the US (not seized, heroin-equivalent "
                          f"kg), calendar years {start}-{end}, all fentanyl channels, A - B"),
    }
    spending = _spending(a, b, start, end)
    if spending is not None:
        money = _money(deaths_b - deaths_a, spending)
        per_draw.update({
            "spending": (spending, "US$",
                         f"extra spending of A minus B summed over {start}-{end} (funding_spending)"),
            "deaths_averted_per_million": (money["per_million"], "deaths per million US$",
                                           f"deaths averted {start}-{end} per million US$ of extra "
                                           f"spending (NaN where A spends no more than B)"),
            "cost_per_death_averted": (money["cost"], "US$ per death averted",
                                       f"extra spending {start}-{end} per death averted (inf: none "
                                       f"averted; NaN where A spends no more than B)"),
        })
    data = {}
    for name, (da, units, long_name) in per_draw.items():
        da = da.broadcast_like(deaths_a).astype(float)
        data[name] = da.variable.copy(deep=True)
        data[name].attrs = {"units": units, "long_name": long_name}
    out = xr.Dataset(data, coords={d: deaths_a[d].variable for d in deaths_a.dims})
    if DRAW_ID in a.coords and "draw" in a.dims:
        out = out.assign_coords({DRAW_ID: a[DRAW_ID].variable})
    for name in per_draw:
        if name == "cost_per_death_averted":
            continue   # from the per-million quantiles, below
        if "draw" in out[name].dims:
            with warnings.catch_warnings():   # all-NaN cells (missing, or no extra spending)
                warnings.simplefilter("ignore", RuntimeWarning)
                q = out[name].quantile(list(QUANTILES), dim="draw", skipna=True)
        else:
            q = out[name].expand_dims(quantile=list(QUANTILES))
        out[f"{name}_quantiles"] = q.transpose("quantile", ...)
        out[f"{name}_quantiles"].attrs = {
            "units": out[name].attrs["units"],
            "long_name": f"{out[name].attrs['long_name']}: 5%, 50% (median), 95% over draws"}
    if "cost_per_death_averted" in out:
        out["cost_per_death_averted_quantiles"] = cost_quantiles(
            out["deaths_averted_per_million_quantiles"])
        out["cost_per_death_averted_quantiles"].attrs = {
            "units": "US$ per death averted",
            "long_name": f"{out['cost_per_death_averted'].attrs['long_name']}: 5%, 50% (median), "
                         f"95% over draws, = 1e6 / the 95%, 50%, 5% quantiles of "
                         f"deaths_averted_per_million (inf: none averted)"}
    out["quantile"].attrs = {"units": "1", "long_name": "quantile over parameter draws"}
    if "draw" in out.coords:
        out["draw"].attrs = {"units": "1", "long_name": "parameter draw index (paired in A and B)"}
    for d in sweep_dims(out):
        out[d].attrs = {"units": "1", "long_name": f"swept override {d}"}
    out.attrs = {
        "title": "fentsim comparison: effect of A relative to reference B",
        "Conventions": "CF-1.11",
        "window_start": start,
        "window_end": end,
        "variable": variable,
        "definition": "deaths_averted = B - A summed over the window; relative_change = (A - B)/B; "
                      "seizures_change, supply_change = A - B; draws paired"
                      + ("; spending = A - B funding_spending summed over the window; "
                         "deaths_averted_per_million = deaths_averted / (spending / 1e6); "
                         "cost_per_death_averted = spending / deaths_averted, quantiles inverted "
                         "from the per-million ones" if spending is not None else ""),
        "pairing": f"draws paired {pairing}",
        **_provenance(a, "a", a_label),
        **_provenance(b, "b", b_label),
    }
    return out


def _cells(cmp: xr.Dataset) -> list[dict[str, Any]]:
    dims = sweep_dims(cmp)
    if not dims:
        return [{}]
    grids = np.meshgrid(*[cmp[d].values for d in dims], indexing="ij")
    return [{d: g.ravel()[i] for d, g in zip(dims, grids)} for i in range(grids[0].size)]


def _fmt(value: float, spec: str) -> str:
    if not np.isfinite(value):
        return "n/a"
    text = format(value, spec)
    if not text.strip("+-0.,%"):  # rounds to zero: no sign
        text = format(0.0, spec.replace("+", ""))
    return text


def _usd(value: float) -> str:
    """US$ in a few characters: 850k, 1.23M; +inf (no death averted) as 'none averted'."""
    if np.isposinf(value):
        return "none averted"
    if not np.isfinite(value):
        return "n/a"
    return f"{value / 1e6:,.2f}M" if abs(value) >= 1e6 else f"{value / 1e3:,.0f}k"


def _sig(value: float) -> str:
    """A ratio to three significant digits (at most 2 decimals above 1): 0.0123, 1.23, 1,234."""
    if not np.isfinite(value):
        return "n/a"
    digits = 2 - int(np.floor(np.log10(abs(value)))) if value != 0 else 2
    return _fmt(value, f",.{max(0, min(digits, 6))}f")


def _interval(cmp: xr.Dataset, name: str, cell: Mapping[str, Any], spec: str | Any) -> str:
    """Median [5% to 95%] of a metric in a cell; `spec` a format spec or a function."""
    fmt = spec if callable(spec) else (lambda v: _fmt(v, spec))
    q = cmp[f"{name}_quantiles"].sel(cell).values
    if "draw" not in cmp.dims or cmp.sizes["draw"] == 1:
        return fmt(q[1])
    texts = [fmt(v) for v in q]
    if name in MONEY_METRICS and texts[0] == texts[1] == texts[2] and not np.isfinite(q[1]):
        return texts[1]   # n/a or none averted, once
    return f"{texts[1]} [{texts[0]} to {texts[2]}]"


def comparison_table(cmp: xr.Dataset) -> str:
    """Text table: one row per cell of the sweep dimensions, medians with 90% intervals."""
    dims = sweep_dims(cmp)
    n = cmp.sizes.get("draw", 1)
    head = (f"{cmp.attrs['variable']} over {cmp.attrs['window_start']}-{cmp.attrs['window_end']}, "
            f"A relative to B (A: {cmp.attrs.get('a_label') or 'A'}; B: "
            f"{cmp.attrs.get('b_label') or 'B'}); {n} paired draw(s)"
            + ("; median [5% to 95%]" if n > 1 else ""))
    header = [*dims, "deaths averted", "relative change",   # units as stored (supply: HE kg)
              *(f"{v.replace('_', ' ')} ({cmp[v].attrs.get('units', '?')})"
                for v in ("seizures_change", "supply_change"))]
    rows = []
    for cell in _cells(cmp):
        rows.append([_coord(cell[d]) for d in dims] + [
            _interval(cmp, "deaths_averted", cell, ",.0f"),
            _interval(cmp, "relative_change", cell, "+.1%"),
            _interval(cmp, "seizures_change", cell, ",.0f"),
            _interval(cmp, "supply_change", cell, ",.0f"),
        ])
    text = head + "\n" + table(header, rows)
    if not has_money(cmp):
        return text
    # the money columns as a second block on the same cells (one wide table would not fit a console)
    header = [*dims, "spending (M$)", "cost per death averted", "deaths averted per $1M"]
    rows = [[_coord(cell[d]) for d in dims] + [
        _spent(cmp, cell),
        _interval(cmp, "cost_per_death_averted", cell, _usd),
        _interval(cmp, "deaths_averted_per_million", cell, _sig),
    ] for cell in _cells(cmp)]
    window = f"{cmp.attrs['window_start']}-{cmp.attrs['window_end']}"
    return (text + f"\n\nmoney over {window}: spending = A's extra spending over B (million US$); "
            f"cost per death averted in US$\n(k = thousand, M = million), interval inverted from "
            f"that of deaths averted per $1M; n/a = no extra spending\n" + table(header, rows))


def _spent(cmp: xr.Dataset, cell: Mapping[str, Any]) -> str:
    """The window's spending in million US$ (one number: it is the same in every draw)."""
    q = cmp["spending_quantiles"].sel(cell).values
    if q[0] == q[2] or not np.isfinite(q).all():
        return _fmt(q[1] / 1e6, ",.1f")
    return _interval(cmp, "spending", cell, lambda v: _fmt(v / 1e6, ",.1f"))


def _coord(value: Any) -> str:
    """A sweep coordinate as text (swept dollars such as 25000000.0 as 2.5e+07)."""
    if isinstance(value, (float, np.floating)) and abs(value) >= 1e6:
        return f"{value:g}"
    return str(value)


def comparison_csv_text(cmp: xr.Dataset) -> str:
    """Long-format CSV: sweep coordinates, metric, units, median, q05, q95 (one row per cell+metric)."""
    dims = sweep_dims(cmp)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*dims, "metric", "units", "window_start", "window_end", "n_draws",
                     "median", "q05", "q95"])
    n = cmp.sizes.get("draw", 1)
    for cell in _cells(cmp):
        for name in metrics(cmp):
            q = cmp[f"{name}_quantiles"].sel(cell).values
            writer.writerow([*(cell[d] for d in dims), name, cmp[name].attrs["units"],
                             cmp.attrs["window_start"], cmp.attrs["window_end"], n,
                             *(repr(float(v)) for v in (q[1], q[0], q[2]))])
    return buf.getvalue()
