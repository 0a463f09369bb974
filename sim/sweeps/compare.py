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
from typing import Any

import numpy as np
import xarray as xr
import yaml

from sim.errors import InputError
from sim.results.dataset import cf_units
from sim.sweeps.aggregate import dimension_name
from sim.results.tables import table
from sim.results.io import write_text_atomic  # noqa: F401  (re-exported: the shared atomic writer)

DEFAULT_WINDOW = (2026, 2035)
DEFAULT_VARIABLE = "deaths_overdose"
QUANTILES = (0.05, 0.5, 0.95)
METRICS = ("deaths_averted", "relative_change", "seizures_change",
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
    if isinstance(window, (str, bytes)) or not isinstance(window, Sequence) or len(window) != 2:
        raise InputError(f"window: value {list(window)!r} must be two years START END")
    try:
        start, end = (int(y) for y in window)
        whole = all(isinstance(y, (int, float, np.integer, np.floating))
                    and not isinstance(y, (bool, np.bool_)) and float(y) == int(y) for y in window)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise InputError(f"window: value {list(window)!r} not allowed; allowed: two whole years "
                         f"START END (calendar years, inclusive)")
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


def _id_vector(ds: xr.Dataset) -> np.ndarray | None:
    """A dataset's draw identities as one vector along `draw` ('' rows of missing sweep cells
    left out), or None if its cells hold different draws (or none)."""
    ids = ds[DRAW_ID].transpose(..., "draw") if "draw" in ds[DRAW_ID].dims else ds[DRAW_ID]
    rows = np.asarray(ids.values).astype(str).reshape(-1, ids.shape[-1] if ids.ndim else 1)
    rows = np.unique(rows[(rows != "").any(axis=1)], axis=0)
    return rows[0] if len(rows) == 1 else None


def _matching(ia: np.ndarray, ib: np.ndarray) -> np.ndarray | None:
    """Positions in `ib` of A's draws in A's order (k-th repeat of an id to the k-th), or None
    if the two are not the same draws."""
    if ia.shape != ib.shape:
        return None
    where: dict[str, list[int]] = {}
    for j, ident in enumerate(ib):
        where.setdefault(str(ident), []).append(j)
    order = []
    for ident in ia:
        slots = where.get(str(ident))
        if not slots:
            return None
        order.append(slots.pop(0))
    return np.asarray(order)


def pair_draws(a: xr.Dataset, b: xr.Dataset) -> tuple[xr.Dataset, str]:
    """B with its draws matched to A's by identity (`draw_id`), whatever their order, and how
    they were paired; InputError if A and B do not hold the same parameter draws (module doc)."""
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
                         f"allowed: {SAME_ENSEMBLE}, e.g. regenerated with fentsim-rerun --output, "
                         f"or --unpaired (independent quantiles)")
    if "draw" in a.dims:
        da, db = a["draw"].values, b["draw"].values
        if ia is None and (da.shape != db.shape or not np.array_equal(da, db)):
            raise InputError(f"draw: A has {da.size} draw(s), B has {db.size}; the comparison "
                             f"pairs draws, so run both with the same ensemble (or --unpaired)")
        if ia is not None and a.sizes["draw"] != b.sizes["draw"]:
            raise InputError(f"draw: A has {a.sizes['draw']} draw(s), B has {b.sizes['draw']}; "
                             f"allowed: {SAME_ENSEMBLE}, or --unpaired (independent quantiles)")
    if ia is None:
        return b, "by position (neither input carries draw identities)"
    if "draw" not in a.dims:
        if ia.size and ib.size and ia.reshape(-1)[0] != ib.reshape(-1)[0]:
            raise InputError(f"draw_id: A and B hold different parameter draws (A {ia.reshape(-1)[0]!r}, "
                             f"B {ib.reshape(-1)[0]!r}); allowed: {SAME_ENSEMBLE}")
        return b, "by draw identity (draw_id)"
    va, vb = _id_vector(a), _id_vector(b)
    if va is None or vb is None:
        name = "A" if va is None else "B"
        raise InputError(f"draw_id: the cells of {name} hold different draws (or none), so they "
                         f"cannot be paired with one reference; allowed: {SAME_ENSEMBLE}, or "
                         f"--unpaired (independent quantiles)")
    order = _matching(va, vb)
    if order is None:
        n_differ = int(np.sum(~np.isin(va, vb)))
        first = next((i for i, x in enumerate(va) if x not in set(vb)), 0)
        raise InputError(f"draw_id: A and B hold different parameter draws (draw {first}: A "
                         f"{va[first]!r}; {max(n_differ, 1)} of {va.size} of A's draws not in B); "
                         f"allowed: {SAME_ENSEMBLE}, or --unpaired (independent quantiles)")
    if not np.array_equal(order, np.arange(order.size)):
        b = b.isel(draw=order)
    b = b.assign_coords(draw=a["draw"].values)
    if DRAW_ID in b.coords and "draw" in b[DRAW_ID].dims:
        b = b.drop_vars(DRAW_ID)
    return b, "by draw identity (draw_id)"


def _check_years(name: str, ds: xr.Dataset) -> None:
    years = np.asarray(ds["year"].values)
    if years.ndim != 1 or years.size == 0 or (years.size > 1 and not np.all(np.diff(years) > 0)):
        raise InputError(f"{name}: coordinate 'year' is not strictly increasing "
                         f"({years[:3].tolist()}...); allowed: a fentsim result or sweep dataset")


def _check_types(a: Any, b: Any, variable: Any) -> None:
    """InputError unless A and B are datasets and `variable` an annual deaths variable of both."""
    for name, ds in (("A", a), ("B", b)):
        if not isinstance(ds, xr.Dataset):
            raise InputError(f"{name}: value of type {type(ds).__name__} not allowed; allowed: an "
                             f"xarray Dataset (a fentsim result or sweep dataset)")
    if not isinstance(variable, str) or not variable.startswith("deaths_"):
        raise InputError(f"variable: value {variable!r} not allowed; allowed: an annual deaths_* "
                         f"variable such as deaths_overdose, deaths_synthetic")
    for name, ds in (("A", a), ("B", b)):
        if variable in ds and "year" not in ds[variable].dims:
            annual = sorted(str(v) for v in ds.data_vars
                            if str(v).startswith("deaths_") and "year" in ds[v].dims)
            raise InputError(f"variable: value {variable!r} is not annual in {name} (dims "
                             f"{', '.join(map(str, ds[variable].dims))}); allowed: "
                             f"{', '.join(annual) or 'an annual deaths_* variable'}")


def _check_inputs(a: xr.Dataset, b: xr.Dataset, variable: str) -> None:
    for name, ds in (("A", a), ("B", b)):
        for var in (variable, "seizures_fy", "arrivals"):
            if var not in ds:
                raise InputError(f"{name}: variable {var!r} missing; expected a fentsim result or "
                                 f"sweep dataset (variables deaths_*, seizures_fy, arrivals)")
            if "year" not in ds[var].dims:
                raise InputError(f"{name}: variable {var!r} has no year dimension (dims "
                                 f"{ds[var].dims}); expected a fentsim result or sweep dataset")
        _check_years(name, ds)
    extra = [d for d in sweep_dims(b) if d not in a.dims]
    if extra:
        raise InputError(f"B: has sweep dimension(s) {', '.join(extra)} that A lacks; select one "
                         f"value of each for the baseline (e.g. --baseline {extra[0]}=...)")


JOB_STATUS = "job_status"   # per sweep cell: ok | failed | missing (sim.sweeps.aggregate)


def _missing_cells(ds: xr.Dataset) -> xr.DataArray | bool:
    """True in the sweep cells whose job is missing or failed (NaN there is expected)."""
    if JOB_STATUS in ds and ds[JOB_STATUS].ndim:
        return ds[JOB_STATUS].astype(str) != "ok"
    return False


def _check_finite(name: str, ds: xr.Dataset, sums: Mapping[str, xr.DataArray], start: int,
                  end: int) -> None:
    """InputError if a compared value of `ds` is NaN outside its missing or failed sweep cells,
    naming the variable and the count (a NaN year is not a zero)."""
    missing = _missing_cells(ds)
    for var, da in sums.items():
        if var == "seizures_fy":
            continue   # NaN in the first fiscal year (before the simulation starts) by design
        nan = np.isnan(da)
        if not isinstance(missing, bool):
            nan = nan & ~missing.broadcast_like(nan)
        count = int(nan.sum())
        if count:
            raise InputError(f"{name}: {var} over {start}-{end} is NaN in {count} of {da.size} "
                             f"compared value(s) (damaged data, or a job that did not finish); "
                             f"allowed: finite values in every compared cell (a missing or "
                             f"failed sweep job is shown as n/a)")
    if not isinstance(missing, bool) and bool(missing.all()):
        raise InputError(f"{name}: no finished job in the sweep (job_status); allowed: a result "
                         f"with data in the window")


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
    """The metrics of a comparison to tabulate: the compared variable of A and B (named
    `<variable>_a`, `<variable>_b`), METRICS, and MONEY_METRICS when it has money."""
    variable = cmp.attrs.get("variable", DEFAULT_VARIABLE)
    money = tuple(m for m in MONEY_METRICS if m in cmp) if has_money(cmp) else ()
    return (f"{variable}_a", f"{variable}_b") + METRICS + money


def fentanyl_arrivals(ds: xr.Dataset) -> xr.DataArray:
    """Arrivals of the fentanyl channels (year, channel, draw; HE kg/yr), heroin's left out."""
    return ds["arrivals"].where(ds["channel_form"] != "heroin", 0.0)


MAX_UNPAIRED_PAIRS = 100_000   # pairs of draws per cell when A and B are compared unpaired


def _unpaired(per_a: Mapping[str, xr.DataArray], per_b: Mapping[str, xr.DataArray]
              ) -> tuple[dict[str, xr.DataArray], dict[str, xr.DataArray], str]:
    """Window sums of A and B laid on pairs of draws (A's i with B's j), as if independent: every
    pair, or above MAX_UNPAIRED_PAIRS each draw of A with evenly spread shifts of B's draws."""
    na = next(iter(per_a.values())).sizes.get("draw", 1)
    nb = next(iter(per_b.values())).sizes.get("draw", 1)
    n_shift = nb if na * nb <= MAX_UNPAIRED_PAIRS else max(1, MAX_UNPAIRED_PAIRS // na)
    shifts = np.unique(np.linspace(0, nb, n_shift, endpoint=False).astype(int))
    ia = np.tile(np.arange(na), shifts.size)
    ib = (np.arange(na)[None, :] + shifts[:, None]).reshape(-1) % nb

    def lay(da: xr.DataArray, index: np.ndarray) -> xr.DataArray:
        if "draw" not in da.dims:
            return da.expand_dims(draw=index.size).copy()
        da = da.drop_vars([c for c in (DRAW_ID, "draw") if c in da.coords])
        return da.isel(draw=xr.DataArray(index, dims="draw"))

    how = (f"unpaired: independent quantiles over {ia.size:,} pairs of A's {na} and B's {nb} "
           f"draw(s) ({'every pair' if shifts.size == nb else f'{shifts.size} shifts of B'}); "
           f"per-draw values are per pair")
    return ({k: lay(v, ia) for k, v in per_a.items()}, {k: lay(v, ib) for k, v in per_b.items()},
            how)


def _label_of(ds: xr.Dataset, label: str | None) -> str:
    """A short name of a compared input: its label, else its scenario (scalar coordinate)."""
    if label:
        return label
    if "scenario" in ds.coords and ds["scenario"].ndim == 0:
        return str(ds["scenario"].values[()])
    return ""


def compare(a: xr.Dataset, b: xr.Dataset, window: Sequence[int] = DEFAULT_WINDOW,
            variable: str = DEFAULT_VARIABLE, *, a_label: str | None = None,
            b_label: str | None = None, paired: bool = True) -> xr.Dataset:
    """Effect of A relative to reference B over `window` (inclusive calendar years), per draw and
    summarised (median, 90% interval).  See the module doc for the definitions.

    `paired=False` compares ensembles that do not hold the same draws: the quantiles are those of
    independent samples (every pair of A's and B's draws), and attribute `pairing` says so."""
    _check_types(a, b, variable)
    if not isinstance(paired, (bool, np.bool_)):
        raise InputError(f"paired: value {paired!r} not allowed; allowed: True or False")
    _check_inputs(a, b, variable)
    if paired:
        b, pairing = pair_draws(a, b)
    start, end = _check_window(window, a, b)
    sums_a = {variable: _window_sum(a[variable], start, end, skipna=False),  # a NaN year is not 0
              "seizures_fy": _window_sum(a["seizures_fy"], start, end, ["route"]),  # FY 2010 NaN
              "arrivals": _window_sum(fentanyl_arrivals(a), start, end, ["channel"], skipna=False)}
    sums_b = {variable: _window_sum(b[variable], start, end, skipna=False),
              "seizures_fy": _window_sum(b["seizures_fy"], start, end, ["route"]),
              "arrivals": _window_sum(fentanyl_arrivals(b), start, end, ["channel"], skipna=False)}
    _check_finite("A", a, sums_a, start, end)
    _check_finite("B", b, sums_b, start, end)
    if not paired:
        sums_a, sums_b, pairing = _unpaired(sums_a, sums_b)
    deaths_a, seized_a, supply_a = sums_a[variable], sums_a["seizures_fy"], sums_a["arrivals"]
    deaths_b, seized_b, supply_b = sums_b[variable], sums_b["seizures_fy"], sums_b["arrivals"]
    a_name, b_name = _label_of(a, a_label), _label_of(b, b_label)
    deaths_b_full = deaths_b.broadcast_like(deaths_a)
    per_draw = {
        f"{variable}_a": (deaths_a, "deaths", f"{variable} of A ({a_name or 'evaluated'}) summed "
                                              f"over {start}-{end}"),
        f"{variable}_b": (deaths_b_full, "deaths", f"{variable} of B ({b_name or 'reference'}) "
                                                   f"summed over {start}-{end}"),
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
    money_note = ""
    if spending is not None and not paired and "draw" in spending.dims:
        spending = spending.isel(draw=0, drop=True)   # the same in every draw
    if spending is not None and not bool((spending > 0).any()):
        funded = any(bool((ds[FUNDING].fillna(0) != 0).any()) for ds in (a, b))
        money_note = (f"not applicable: A spends no more than B over {start}-{end} (no extra "
                      f"spending), so deaths averted per million US$ and cost per death averted "
                      f"are not defined") if funded else ""
        per_draw["spending"] = (spending, "US$", f"extra spending of A minus B summed over "
                                                 f"{start}-{end} (funding_spending)")
    elif spending is not None:
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
        data[name].attrs = {"units": cf_units(units), "long_name": long_name}
        if cf_units(units) != units:   # UDUNITS units for CF; the readable one as the label
            data[name].attrs["units_label"] = units
    out = xr.Dataset(data, coords={d: deaths_a[d].variable for d in deaths_a.dims})
    if paired and DRAW_ID in a.coords and "draw" in a.dims:
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
            **{k: v for k, v in out[name].attrs.items() if k in ("units", "units_label")},
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
        out["draw"].attrs = {"units": "1", "long_name": "parameter draw index (paired in A and B)"
                             if paired else "index of a pair of A's and B's draws (unpaired)"}
    for d in sweep_dims(out):
        out[d].attrs = {"units": "1", "long_name": f"swept override {d}"}
    out.attrs = {
        "title": "fentsim comparison: effect of A relative to reference B",
        "Conventions": "CF-1.11",
        "window_start": start,
        "window_end": end,
        "variable": variable,
        "definition": "deaths_averted = B - A summed over the window; relative_change = (A - B)/B; "
                      "seizures_change, supply_change = A - B; "
                      + ("draws paired" if paired else "unpaired (independent samples)")
                      + ("; spending = A - B funding_spending summed over the window; "
                         "deaths_averted_per_million = deaths_averted / (spending / 1e6); "
                         "cost_per_death_averted = spending / deaths_averted, quantiles inverted "
                         "from the per-million ones" if spending is not None and not money_note
                         else ""),
        "pairing": pairing if not paired else f"draws paired {pairing}",
        "paired": int(bool(paired)),
        **({"money": money_note} if money_note else {}),
        **_provenance(a, "a", a_name),
        **_provenance(b, "b", b_name),
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
            f"{cmp.attrs.get('b_label') or 'B'}); "
            + (f"{n} paired draw(s)" if cmp.attrs.get("paired", 1) else cmp.attrs["pairing"])
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
    if cmp.attrs.get("money"):
        return text + f"\nmoney: {cmp.attrs['money']}"
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
    writer.writerow([*dims, "a", "b", "variable", "metric", "units", "window_start",
                     "window_end", "n_draws", "pairing", "median", "q05", "q95"])
    n = cmp.sizes.get("draw", 1)
    pairing = "paired" if cmp.attrs.get("paired", 1) else "unpaired"
    for cell in _cells(cmp):
        a_name = str(cell["scenario"]) if "scenario" in cell else cmp.attrs.get("a_label") or "A"
        for name in metrics(cmp):
            q = cmp[f"{name}_quantiles"].sel(cell).values
            writer.writerow([*(cell[d] for d in dims), a_name, cmp.attrs.get("b_label") or "B",
                             cmp.attrs["variable"], name,
                             cmp[name].attrs.get("units_label", cmp[name].attrs["units"]),
                             cmp.attrs["window_start"], cmp.attrs["window_end"], n, pairing,
                             *(repr(float(v)) for v in (q[1], q[0], q[2]))])
    return buf.getvalue()
