"""Turn an integrated trajectory into the public, self-describing `xarray.Dataset`.

Calendar-year and fiscal-year totals are exact differences of cumulative stocks at the year
boundaries.  Every variable carries `units` and `long_name`; see `OUTPUT_VARIABLES`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from sim.model.levers import LeverSet
from sim.engine.batch import BatchModel
from sim.engine.memory import ordinary_pages
from sim.model.flows import us_population_at
from sim.model.parameters import ModelParameters, model_errors
from sim.results.timeaxis import (DECIMAL_YEAR, DECIMAL_YEAR_ATTRS, TIME_ATTRS, time_coords,
                                  with_decimal_year)
from sim.engine.solver import (FISCAL_YEAR_START, PHYSICAL_ROWS, REPORTED_SERIES, SolverSettings,
                              Trajectory)
from sim.model.outputs import OUTPUT, OUTPUTS, PREDICTIVE_OF, by_reduction
from sim.model.state import CHANNEL_NAMES, CHANNELS, ROUTES

# name: (units, long_name) of every output variable, from their declarations (sim/model/outputs.py)
OUTPUT_VARIABLES: dict[str, tuple[str, str]] = {o.name: (o.units, o.long_name) for o in OUTPUTS}
PRICE_REFERENCE_TIME = 2015.0  # yr: price_index is divided by its value at this time

# units of OUTPUT_VARIABLES that UDUNITS cannot parse (counts of people and deaths) -> the CF
# (UDUNITS-2) units written in the `units` attribute: `count` (UDUNITS' dimensionless count), so
# xarray's plots label deaths "[count/yr]"; the readable form stays in `units_label`.
CF_UNITS: dict[str, str] = {
    "deaths/yr": "count/yr",
    "persons/yr": "count/yr",
    "persons": "count",
    "deaths per 100000 persons per yr": "1e-5/yr",
    "HE kg/yr": "kg/yr",   # heroin-equivalent kg: fentanyl kg x potency
    "HE kg": "kg",
    "deaths": "count",
}
# The time coordinate is CF time (days since 1 Jan 2010, 365-day calendar), with the decimal
# years beside it in `decimal_year` (sim/results/timeaxis.py).


def cf_units(units: str) -> str:
    """The UDUNITS-2 form of an output unit (identity for units UDUNITS already parses)."""
    return CF_UNITS.get(units, units)


def set_variable_attrs(ds: xr.Dataset, name: str, units: str, long_name: str) -> None:
    """CF attributes of a variable: `units` parseable by UDUNITS, `units_label` as people read it,
    and, for a declared output, `cell_methods` (how it is reduced)."""
    ds[name].attrs.update(units=cf_units(units), long_name=long_name)
    if cf_units(units) != units:
        ds[name].attrs["units_label"] = units
    if name in OUTPUT and OUTPUT[name].cell_methods:
        ds[name].attrs["cell_methods"] = OUTPUT[name].cell_methods


def set_coordinate_attrs(ds: xr.Dataset) -> None:
    """CF attributes of the model's coordinates (year, time, draw, source, route, parameter)."""
    if "year" in ds.coords:
        ds["year"].attrs.update(units="1", long_name="calendar year (or federal fiscal year for *_fy)")
    if "time" in ds.coords:
        ds["time"].attrs.update(TIME_ATTRS)
    if DECIMAL_YEAR in ds.coords:
        ds[DECIMAL_YEAR].attrs.update(DECIMAL_YEAR_ATTRS)
    if "draw" in ds.coords:
        ds["draw"].attrs.update(units="1", long_name="parameter draw index")
    for name, long_name in (("channel", "supply channel (source, form, route)"),
                            ("channel_source", "source country or group of each channel"),
                            ("channel_form", "what each channel carries: finished fentanyl, "
                                             "precursors synthesised in Mexico, or heroin"),
                            ("channel_route", "route of each channel"),
                            ("route", "smuggling route (mail/express or land border)"),
                            ("product", "product used: heroin only, heroin with fentanyl, "
                                        "fentanyl only"),
                            ("parameter", "model parameter name"),
                            ("parameter_units", "units of each model parameter")):
        if name in ds.coords:
            ds[name].attrs.update(long_name=long_name)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 arrays (a counter-based hash: vectorised noise)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def draw_keys(p: dict[str, np.ndarray], n_draws: int) -> np.ndarray:
    """A 64-bit key per draw hashed from all its parameter values (uint64, (draw,)): what keys its
    predictive noise, so the same draw gets the same noise in any batch, chunk or scenario."""
    key = np.zeros(n_draws, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in ModelParameters.names():
            bits = np.ascontiguousarray(np.broadcast_to(p[name], (n_draws,)),
                                        dtype=np.float64).view(np.uint64)
            key = _mix(key ^ bits)
    return key


def draw_noise(keys: np.ndarray, stream: int, size: int) -> np.ndarray:
    """Standard normal noise (draw, size) from each draw's key (`draw_keys`) and `stream`."""
    from scipy.special import ndtri
    with np.errstate(over="ignore"):
        key = _mix(keys ^ np.uint64(stream))
        counter = key[:, None] ^ _mix(np.arange(size, dtype=np.uint64))[None, :]
        uniform = ((_mix(counter) >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0 ** 53
    return ndtri(uniform)


def predictive_values(data: dict[str, np.ndarray], p: dict[str, np.ndarray],
                      n_draws: int) -> dict[str, np.ndarray]:
    """`<variable>_predictive` of each fitted series (outputs.PREDICTIVE_OF) from the variables'
    values `data` (laid out in their declared dims), same dims: value x exp(tau e)."""
    errors = model_errors()
    keys = draw_keys(p, n_draws)
    out = {}
    for stream, (output, variable) in enumerate(PREDICTIVE_OF.items()):
        dims = OUTPUT[variable].dims
        value = xr.DataArray(np.asarray(data[variable], dtype=float), dims=dims)
        # one noise per draw and point of time or year (the same on every route of a year)
        along = [d for d in dims if d not in ("draw", "route")]
        shape = [value.sizes[d] for d in along]
        noise = xr.DataArray(draw_noise(keys, stream, int(np.prod(shape))).reshape(
            [n_draws, *shape]), dims=["draw", *along])
        tau = xr.DataArray(np.broadcast_to(p[errors[output]], (n_draws,)), dims="draw")
        result = (value * np.exp(tau * noise)).transpose(*dims).values
        if OUTPUT[variable].units == "1":
            result = np.minimum(result, 1.0)
        out[f"{variable}_predictive"] = result
    return out


def _boundary_differences(traj: Trajectory, name: str, starts: np.ndarray) -> np.ndarray:
    """Increase of cumulative stock `name` over [start, start + 1) for each start; (..., draw, k)."""
    return traj.stock_at(name, starts + 1.0) - traj.stock_at(name, starts)


def annual_totals(traj: Trajectory, settings: SolverSettings,
                  years: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Calendar-year totals from the cumulative stocks: deaths (draw, year) by kind, arrivals
    (channel, draw, year, HE kg), treatment entries and initiation (draw, year); for `years`
    (default: every year of the window)."""
    starts = (settings.years if years is None else np.asarray(years)).astype(float)
    change = lambda name: _boundary_differences(traj, name, starts)  # noqa: E731
    heroin_only, both = change("cum_deaths_heroin_only"), change("cum_deaths_both")
    fentanyl_only, pharma = change("cum_deaths_fentanyl_only"), change("cum_deaths_pharma_fentanyl")
    other = change("cum_deaths_other_synthetic")
    return {"deaths_fentanyl": fentanyl_only + both, "deaths_heroin": heroin_only + both,
            "deaths_fentanyl_and_heroin": both, "deaths_overdose": heroin_only + both + fentanyl_only,
            "deaths_pharma_fentanyl": pharma,
            "deaths_synthetic": fentanyl_only + both + pharma + other,
            "arrivals": change("cum_arrivals"),
            "treatment_entries": change("cum_treatment_entries"),
            "initiation": change("cum_initiation")}


def fiscal_year_seizures(traj: Trajectory, settings: SolverSettings,
                         potency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fentanyl seized in each FY, (route, draw, year) in kg: pure (seizures of the fentanyl
    channels in HE kg / potency) and gross product weight; NaN where the FY is not simulated."""
    years = settings.years.astype(float)
    starts = years - 1 + FISCAL_YEAR_START
    ok = (starts >= settings.t_start) & (starts + 1 <= settings.t_end)
    n = traj.states.shape[1]
    pure = np.full((len(ROUTES), n, years.size), np.nan)
    product = np.full((len(ROUTES), n, years.size), np.nan)
    seized = traj.stock_at("cum_seized", starts[ok])   # (channel, draw, FY): views, no copies
    ends = traj.stock_at("cum_seized", starts[ok] + 1.0)
    for r, route in enumerate(ROUTES):   # the route's channels summed, then differenced
        rows = [k for k, c in enumerate(CHANNELS) if c.route == route and c.form != "heroin"]
        seized_on_route = sum(ends[k] for k in rows) - sum(seized[k] for k in rows)
        pure[r][:, ok] = seized_on_route / potency[:, None]
    product[:, :, ok] = _boundary_differences(traj, "cum_seized_product", starts[ok])
    return pure, product


SERIES = REPORTED_SERIES   # the outputs read at each output time from the model's auxiliaries


def time_series(traj: Trajectory, params: ModelParameters, levers: LeverSet,
                times: np.ndarray) -> dict[str, np.ndarray]:
    """Reported auxiliaries (`sim.model.flows.AUXILIARIES`) named in SERIES at output times, time
    first; price_index divided by its value at PRICE_REFERENCE_TIME (NaN if not simulated).  Read
    from the trajectory where the engine reported them (annual outputs), else evaluated from the
    stored stocks (`BatchModel.auxiliaries_over`)."""
    times = np.asarray(times, dtype=float)
    reported = bool(traj.auxiliaries) and np.array_equal(times, traj.times)
    # the price reference among the output times (as a whole year is): read, not recomputed
    at = np.flatnonzero(np.round(times, 10) == PRICE_REFERENCE_TIME)
    model = None if reported and at.size else BatchModel(params, levers, traj.states.shape[1])
    out = (dict(traj.auxiliaries) if reported   # reported by the engine
           else model.auxiliaries_over(times, traj.rows_at(PHYSICAL_ROWS, times), SERIES))
    try:
        reference = (out["price_index"][at[0]] if at.size else
                     model.auxiliaries(PRICE_REFERENCE_TIME,
                                       traj.rows_at(PHYSICAL_ROWS, PRICE_REFERENCE_TIME),
                                       ("price_index",))["price_index"])
        out["price_index"] = out["price_index"] / reference
    except KeyError:   # the window does not reach the reference time
        out["price_index"] = np.full_like(out["price_index"], np.nan)
    return out


@ordinary_pages()   # its arrays get ordinary pages, not huge ones (sim/engine/memory.py)
def to_dataset(traj: Trajectory, params: ModelParameters, levers: LeverSet,
               settings: SolverSettings) -> xr.Dataset:
    """The public result dataset of a run (see `OUTPUT_VARIABLES`); provenance is added by the caller."""
    n = traj.states.shape[1]
    p = params.as_arrays()
    years = settings.years
    times = settings.output_times
    annual = annual_totals(traj, settings)
    pop_year = us_population_at(years + 0.5)
    stocks = {name: traj.stock_at(name, times)
              for name in ("capacity", "untreated", "high_risk", "in_treatment", "remission")}
    series = time_series(traj, params, levers, times)
    total_arrivals = annual["arrivals"].sum(axis=0)
    supply_share = annual["arrivals"] / np.where(total_arrivals > 0, total_arrivals, np.nan)
    seized_pure, seized_product = fiscal_year_seizures(
        traj, settings, np.broadcast_to(p["potency_ratio"], (n,)))

    # values laid out in each output's declared dims (sim/model/outputs.py)
    data = {name: annual[name].T for name in by_reduction("year_total") if name in annual
            and name != "arrivals"}
    data.update({
        "death_rate_synthetic": annual["deaths_synthetic"].T / pop_year[:, None] * 1e5,
        "death_rate_heroin": annual["deaths_heroin"].T / pop_year[:, None] * 1e5,
        "population": pop_year,
        "seizures_fy": seized_pure.transpose(2, 0, 1),
        "seizures_fy_product": seized_product.transpose(2, 0, 1),
        "arrivals": annual["arrivals"].transpose(2, 0, 1),
        "supply_share": supply_share.transpose(2, 0, 1),
        "capacity": stocks["capacity"].transpose(2, 0, 1),
        "users_untreated": stocks["untreated"].T,
        "users_high_risk": stocks["high_risk"].T,
        "users_in_treatment": stocks["in_treatment"].T,
        "users_remission": stocks["remission"].T,
        "parameter_value": np.stack([np.broadcast_to(p[name], (n,))
                                     for name in ModelParameters.names()], axis=1),
    })
    data.update({name: series[name] for name in SERIES})
    data.update(predictive_values(data, p, n))
    missing = set(OUTPUT) ^ set(data)
    assert not missing, f"outputs declared but not computed, or computed but not declared: {missing}"
    ds = xr.Dataset(
        {name: xr.Variable(OUTPUT[name].dims, np.asarray(values, dtype=float))
         for name, values in data.items()},
        coords={
            "year": ("year", years.astype(np.int64)),
            **time_coords(times),
            "draw": ("draw", np.arange(n, dtype=np.int64)),
            "channel": ("channel", np.array(CHANNEL_NAMES, dtype=object)),
            "channel_source": ("channel", np.array([c.source for c in CHANNELS], dtype=object)),
            "channel_form": ("channel", np.array([c.form for c in CHANNELS], dtype=object)),
            "channel_route": ("channel", np.array([c.route for c in CHANNELS], dtype=object)),
            "route": ("route", np.array(ROUTES, dtype=object)),
            "parameter": ("parameter", np.array(ModelParameters.names(), dtype=object)),
            "parameter_units": ("parameter", np.array(
                [ModelParameters.metadata(k)["units"] for k in ModelParameters.names()], dtype=object)),
        },
    )
    for name, (units, long_name) in OUTPUT_VARIABLES.items():
        set_variable_attrs(ds, name, units, long_name)
    ds["price_index"].attrs["reference_time"] = PRICE_REFERENCE_TIME
    set_coordinate_attrs(ds)
    return with_decimal_year(ds)
