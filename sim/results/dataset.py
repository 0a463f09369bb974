"""Turn an integrated trajectory into the public, self-describing `xarray.Dataset`.

Calendar-year and fiscal-year totals are exact differences of cumulative stocks at the year
boundaries.  Every variable carries `units` and `long_name`; see `OUTPUT_VARIABLES`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from sim.model.levers import LeverSet
from sim.engine.batch import BatchModel
from sim.model.flows import heroin_involved, us_population_at
from sim.model.parameters import ModelParameters
from sim.engine.solver import FISCAL_YEAR_START, PHYSICAL_ROWS, SolverSettings, Trajectory
from sim.model.state import ROUTES, SOURCES

# name: (units, long_name) of every output variable
OUTPUT_VARIABLES: dict[str, tuple[str, str]] = {
    "deaths_synthetic": ("deaths/yr", "deaths involving synthetic opioids other than methadone "
                         "(fentanyl-involved plus background), calendar year"),
    "deaths_fentanyl": ("deaths/yr", "fentanyl-involved overdose deaths, calendar year"),
    "deaths_heroin": ("deaths/yr", "heroin-involved overdose deaths (incl. co-involvement with "
                      "fentanyl), calendar year"),
    "deaths_overdose": ("deaths/yr", "all opioid overdose deaths of the modelled population plus "
                        "background synthetic-opioid deaths, calendar year"),
    "death_rate_synthetic": ("deaths per 100000 persons per yr", "synthetic-opioid (other than "
                             "methadone) overdose death rate per 100,000 residents (crude)"),
    "death_rate_heroin": ("deaths per 100000 persons per yr",
                          "heroin overdose death rate per 100,000 residents (crude)"),
    "population": ("persons", "US resident population at mid-year"),
    "seizures_fy": ("kg/yr", "fentanyl seized in federal fiscal year `year` "
                    "(1 Oct of year-1 to 30 Sep of year)"),
    "arrivals": ("kg/yr", "fentanyl arriving in the US (not seized) by source, calendar year"),
    "supply_share": ("1", "share of each source in fentanyl arriving in the US, calendar year"),
    "treatment_entries": ("persons/yr", "MOUD entries, calendar year"),
    "initiation": ("persons/yr", "initiation into illicit opioid use disorder, calendar year"),
    "exports": ("kg/yr", "fentanyl exports toward the US market by source"),
    "capacity": ("kg/yr", "fentanyl production capacity directed at the US market by source"),
    "seizure_probability": ("1", "probability that a shipment is seized, by route"),
    "fentanyl_share": ("1", "fentanyl share of the opioid supply (heroin-equivalent mass)"),
    "naloxone_probability": ("1", "probability naloxone is at hand at an overdose"),
    "users_untreated": ("persons", "people with opioid use disorder using illicit opioids, untreated"),
    "users_in_treatment": ("persons", "people of that population in MOUD"),
    "users_remission": ("persons", "people in remission"),
    "parameter_value": ("1", "value of each model parameter in each draw (units in "
                        "`parameter_units`)"),
}


# units of OUTPUT_VARIABLES that UDUNITS cannot parse (counts of people and deaths) -> the CF
# (UDUNITS-2) units written in the `units` attribute: `count` (UDUNITS' dimensionless count), so
# xarray's plots label deaths "[count/yr]"; the readable form stays in `units_label`.
CF_UNITS: dict[str, str] = {
    "deaths/yr": "count/yr",
    "persons/yr": "count/yr",
    "persons": "count",
    "deaths per 100000 persons per yr": "1e-5/yr",
}
# The time coordinate holds decimal years (2017.5 = mid-2017) with units "year" (no "since"), so
# no reader decodes it to dates: `xr.open_dataset(path).sel(time=2017.5)` works as is.  (The one
# knowing departure from CF, which wants "<unit> since <epoch>" on a time axis.)
TIME_UNITS = "year"


def cf_units(units: str) -> str:
    """The UDUNITS-2 form of an output unit (identity for units UDUNITS already parses)."""
    return CF_UNITS.get(units, units)


def set_variable_attrs(ds: xr.Dataset, name: str, units: str, long_name: str) -> None:
    """CF attributes of a variable: `units` parseable by UDUNITS, `units_label` as people read it."""
    ds[name].attrs.update(units=cf_units(units), long_name=long_name)
    if cf_units(units) != units:
        ds[name].attrs["units_label"] = units


def set_coordinate_attrs(ds: xr.Dataset) -> None:
    """CF attributes of the model's coordinates (year, time, draw, source, route, parameter)."""
    if "year" in ds.coords:
        ds["year"].attrs.update(units="1", long_name="calendar year (or federal fiscal year for *_fy)")
    if "time" in ds.coords:
        ds["time"].attrs.update(units=TIME_UNITS, standard_name="time", axis="T",
                                long_name="time in decimal years (2010.0 = 1 Jan 2010; 365-day years)")
    if "draw" in ds.coords:
        ds["draw"].attrs.update(units="1", long_name="parameter draw index")
    for name, long_name in (("source", "fentanyl source country or group"),
                            ("route", "smuggling route (mail/express or land border)"),
                            ("parameter", "model parameter name"),
                            ("parameter_units", "units of each model parameter")):
        if name in ds.coords:
            ds[name].attrs.update(long_name=long_name)


def _boundary_differences(traj: Trajectory, name: str, starts: np.ndarray) -> np.ndarray:
    """Increase of cumulative stock `name` over [start, start + 1) for each start; (..., draw, k)."""
    return traj.stock_at(name, starts + 1.0) - traj.stock_at(name, starts)


def annual_totals(traj: Trajectory, settings: SolverSettings) -> dict[str, np.ndarray]:
    """Calendar-year totals (draw, year) of deaths and flows, from cumulative stocks."""
    starts = settings.years.astype(float)
    fent = _boundary_differences(traj, "cum_deaths_fentanyl", starts)
    heroin_only = _boundary_differences(traj, "cum_deaths_heroin_only", starts)
    other = _boundary_differences(traj, "cum_deaths_other_synthetic", starts)
    arrivals = _boundary_differences(traj, "cum_arrivals", starts).sum(axis=1)  # source, draw, year
    return {"fentanyl": fent, "heroin_only": heroin_only, "other_synthetic": other,
            "arrivals": arrivals,
            "treatment_entries": _boundary_differences(traj, "cum_treatment_entries", starts),
            "initiation": _boundary_differences(traj, "cum_initiation", starts)}


def fiscal_year_seizures(traj: Trajectory, settings: SolverSettings) -> np.ndarray:
    """Seizures (route, draw, year) in each FY; NaN where the FY starts before the simulation."""
    years = settings.years.astype(float)
    starts = years - 1 + FISCAL_YEAR_START
    ok = (starts >= settings.t_start) & (starts + 1 <= settings.t_end)
    out = np.full((len(ROUTES), traj.states.shape[1], years.size), np.nan)
    seized = _boundary_differences(traj, "cum_seized", starts[ok]).sum(axis=0)  # route, draw, year
    out[:, :, ok] = seized
    return out


def time_series(traj: Trajectory, model: BatchModel, times: np.ndarray) -> dict[str, np.ndarray]:
    """Reported auxiliaries (`sim.model.flows.AUXILIARIES`) at output times, time first."""
    keys = ("exports", "fentanyl_share", "naloxone_probability", "seizure_probability")
    cols: dict[str, list] = {k: [] for k in keys}
    for t in times:
        aux = model.auxiliaries(float(t), traj.rows_at(PHYSICAL_ROWS, t))
        for k in keys[:-1]:
            cols[k].append(aux[k])
        shipped = aux["transit_outflow"].sum(axis=0)   # route, draw
        cols["seizure_probability"].append(
            np.where(shipped > 0, aux["seizure_probability"], np.nan))  # NaN: nothing shipped
    return {k: np.stack(v) for k, v in cols.items()}


def to_dataset(traj: Trajectory, params: ModelParameters, levers: LeverSet,
               settings: SolverSettings) -> xr.Dataset:
    """The public result dataset of a run (see `OUTPUT_VARIABLES`); provenance is added by the caller."""
    model = BatchModel(params, levers)
    n = model.n_draws
    p = params.as_arrays()
    years = settings.years
    times = settings.output_times
    annual = annual_totals(traj, settings)
    coinv = np.broadcast_to(p["heroin_coinvolvement"], (n,))[:, None]
    pop_year = us_population_at(years + 0.5)
    synthetic = annual["fentanyl"] + annual["other_synthetic"]
    heroin = heroin_involved(annual["heroin_only"], annual["fentanyl"], coinv)
    stocks = {name: traj.stock_at(name, times)
              for name in ("capacity", "untreated", "in_treatment", "remission")}
    series = time_series(traj, model, times)
    total_arrivals = annual["arrivals"].sum(axis=0)
    supply_share = annual["arrivals"] / np.where(total_arrivals > 0, total_arrivals, np.nan)

    yd = ("year", "draw")
    td = ("time", "draw")
    data = {
        "deaths_synthetic": (yd, synthetic.T),
        "deaths_fentanyl": (yd, annual["fentanyl"].T),
        "deaths_heroin": (yd, heroin.T),
        "deaths_overdose": (yd, (annual["fentanyl"] + annual["heroin_only"]
                                 + annual["other_synthetic"]).T),
        "death_rate_synthetic": (yd, synthetic.T / pop_year[:, None] * 1e5),
        "death_rate_heroin": (yd, heroin.T / pop_year[:, None] * 1e5),
        "population": (("year",), pop_year),
        "seizures_fy": (("year", "route", "draw"), fiscal_year_seizures(traj, settings).transpose(2, 0, 1)),
        "arrivals": (("year", "source", "draw"), annual["arrivals"].transpose(2, 0, 1)),
        "supply_share": (("year", "source", "draw"), supply_share.transpose(2, 0, 1)),
        "treatment_entries": (yd, annual["treatment_entries"].T),
        "initiation": (yd, annual["initiation"].T),
        "exports": (("time", "source", "draw"), series["exports"]),
        "capacity": (("time", "source", "draw"), stocks["capacity"].transpose(2, 0, 1)),
        "seizure_probability": (("time", "route", "draw"), series["seizure_probability"]),
        "fentanyl_share": (td, series["fentanyl_share"]),
        "naloxone_probability": (td, series["naloxone_probability"]),
        "users_untreated": (td, stocks["untreated"].T),
        "users_in_treatment": (td, stocks["in_treatment"].T),
        "users_remission": (td, stocks["remission"].T),
        "parameter_value": (("draw", "parameter"),
                            np.stack([np.broadcast_to(p[name], (n,)) for name in ModelParameters.names()], axis=1)),
    }
    ds = xr.Dataset(
        {name: xr.Variable(dims, np.asarray(values, dtype=float)) for name, (dims, values) in data.items()},
        coords={
            "year": ("year", years.astype(np.int64)),
            "time": ("time", times),
            "draw": ("draw", np.arange(n, dtype=np.int64)),
            "source": ("source", np.array(SOURCES, dtype=object)),
            "route": ("route", np.array(ROUTES, dtype=object)),
            "parameter": ("parameter", np.array(ModelParameters.names(), dtype=object)),
            "parameter_units": ("parameter", np.array(
                [ModelParameters.metadata(k)["units"] for k in ModelParameters.names()], dtype=object)),
        },
    )
    for name, (units, long_name) in OUTPUT_VARIABLES.items():
        set_variable_attrs(ds, name, units, long_name)
    set_coordinate_attrs(ds)
    return ds

