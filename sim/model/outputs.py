"""Every output variable of a run, declared once: dims, units, long name and how it is reduced.

The result dataset (`sim.results.dataset`), its CF attributes (`units`, `long_name`,
`cell_methods`), `fentsim-doc`'s variable table and the size estimates of a run
(`sim.config.file_bytes_per_draw`) are all derived from `OUTPUTS`; a test checks that every
variable of a real result has exactly the declared dims and units.

Reductions (how the model's continuous trajectory becomes the stored number):
- `year_total`: total over the calendar year `year` (difference of a cumulative stock at 1 Jan);
- `fiscal_year_total`: total over the federal fiscal year `year` (1 Oct of year-1 to 30 Sep);
- `year_rate`: a `year_total` per 100,000 residents (mid-year population);
- `year_share`: a `year_total` divided by its total over the channel dimension;
- `mid_year`: value at 1 July of `year`;
- `point`: value at each output time (`time`);
- `per_draw`: one value per draw (no time dimension).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

REDUCTIONS: dict[str, str] = {   # reduction -> CF cell_methods
    "year_total": "year: sum",
    "fiscal_year_total": "year: sum (federal fiscal year)",
    "year_rate": "year: sum",
    "year_share": "year: sum",
    "mid_year": "year: point",
    "point": "time: point",
    "per_draw": "",
}


@dataclass(frozen=True)
class Output:
    """One output variable: dims (as stored, `draw` included where it varies by draw), units as
    people read them (the CF form is derived), long name and reduction (see REDUCTIONS)."""

    name: str
    dims: tuple[str, ...]
    units: str
    long_name: str
    reduction: str

    def __post_init__(self) -> None:
        assert self.reduction in REDUCTIONS, self

    @property
    def cell_methods(self) -> str:
        return REDUCTIONS[self.reduction]


YD = ("year", "draw")
TD = ("time", "draw")

OUTPUTS: tuple[Output, ...] = (
    Output("deaths_synthetic", YD, "deaths/yr",
           "deaths involving synthetic opioids other than methadone (T40.4: illicit fentanyl, "
           "diverted pharmaceutical fentanyl and other synthetics), calendar year", "year_total"),
    Output("deaths_fentanyl", YD, "deaths/yr",
           "overdose deaths involving illicit fentanyl (fentanyl-only and adulterated heroin "
           "products), calendar year", "year_total"),
    Output("deaths_heroin", YD, "deaths/yr",
           "overdose deaths involving heroin (heroin-only and adulterated products), calendar year",
           "year_total"),
    Output("deaths_fentanyl_and_heroin", YD, "deaths/yr",
           "overdose deaths involving both fentanyl and heroin (adulterated heroin), calendar year",
           "year_total"),
    Output("deaths_overdose", YD, "deaths/yr",
           "all opioid overdose deaths of the modelled population (fentanyl + heroin - both), "
           "calendar year", "year_total"),
    Output("deaths_pharma_fentanyl", YD, "deaths/yr",
           "deaths from diverted pharmaceutical fentanyl (exogenous path), calendar year",
           "year_total"),
    Output("death_rate_synthetic", YD, "deaths per 100000 persons per yr",
           "synthetic-opioid (other than methadone) overdose death rate per 100,000 residents "
           "(crude)", "year_rate"),
    Output("death_rate_heroin", YD, "deaths per 100000 persons per yr",
           "heroin overdose death rate per 100,000 residents (crude)", "year_rate"),
    Output("population", ("year",), "persons", "US resident population at mid-year", "mid_year"),
    Output("seizures_fy", ("year", "route", "draw"), "kg/yr",
           "pure fentanyl seized by US authorities in federal fiscal year `year` (1 Oct of "
           "year-1 to 30 Sep of year)", "fiscal_year_total"),
    Output("seizures_fy_product", ("year", "route", "draw"), "kg/yr",
           "gross weight of fentanyl product (powder and pills) seized in federal fiscal year "
           "`year`: what CBP reports", "fiscal_year_total"),
    Output("arrivals", ("year", "channel", "draw"), "HE kg/yr",
           "opioids arriving on the US retail market by channel (heroin-equivalent kg), calendar "
           "year", "year_total"),
    Output("supply_share", ("year", "channel", "draw"), "1",
           "share of each channel in heroin-equivalent arrivals, calendar year", "year_share"),
    Output("treatment_entries", YD, "persons/yr", "MOUD entries, calendar year", "year_total"),
    Output("initiation", YD, "persons/yr",
           "initiation into illicit opioid use disorder, calendar year", "year_total"),
    Output("capacity", ("time", "channel", "draw"), "HE kg/yr",
           "shipments of each channel toward the US market", "point"),
    Output("seizure_probability", ("time", "route", "draw"), "1",
           "probability that a fentanyl shipment is seized, by route", "point"),
    Output("fentanyl_share", TD, "1",
           "fentanyl share of the retail opioid supply (heroin-equivalent terms)", "point"),
    Output("nflis_share", TD, "1",
           "expected fentanyl share of heroin and fentanyl forensic reports (NFLIS) of the market "
           "at this time; NFLIS dates the reports nflis_report_lag later", "point"),
    Output("heroin_arrivals", TD, "kg/yr", "heroin arriving on the US retail market (pure)",
           "point"),
    Output("fentanyl_arrivals", TD, "kg/yr", "fentanyl arriving on the US retail market (pure)",
           "point"),
    Output("price_index", TD, "1",
           "retail money price per heroin-equivalent dose: heroin's retail cost and the fentanyl "
           "nest's price (CES mean of its channels' retail costs) weighted by their shares, supply "
           "shortage included (1 Jan 2015 = 1)", "point"),
    Output("demand", TD, "HE kg/yr", "opioid demand at the cost-based price", "point"),
    Output("naloxone_probability", TD, "1", "probability naloxone is at hand at an overdose",
           "point"),
    Output("risk_environment", TD, "1",
           "exogenous overdose-risk multiplier: COVID-19 pulse from March 2020 x persistent "
           "post-2020 risk shift (pills, xylazine, using alone)", "point"),
    Output("retail_potency", TD, "1",
           "fatality of fentanyl-containing use relative to 2023 (DEA pill-testing path)", "point"),
    Output("users_untreated", TD, "persons",
           "people with opioid use disorder using illicit opioids, untreated", "point"),
    Output("users_high_risk", TD, "persons",
           "the part of users_untreated at high overdose risk (depleted by deaths, replenished "
           "by entries)", "point"),
    Output("users_in_treatment", TD, "persons", "people of that population in MOUD", "point"),
    Output("users_remission", TD, "persons", "people in remission", "point"),
    Output("parameter_value", ("draw", "parameter"), "1",
           "value of each model parameter in each draw (units in `parameter_units`)", "per_draw"),
)
# Posterior predictive draws beside each fitted public series: the calibration output a model-error
# parameter is declared for (`sim.model.parameters.model_errors`) -> the variable it is read from.
# `<variable>_predictive` = variable x exp(tau e), tau that draw's model-error sd, e standard
# normal per draw and point (shares capped at 1): an observation's spread, for bands and coverage
# (sim.results.dataset.predictive_values).  Scenario comparisons stay on the variables themselves.
PREDICTIVE_OF: dict[str, str] = {"deaths_synthetic": "deaths_synthetic",
                                 "deaths_heroin": "deaths_heroin",
                                 "nflis_share": "nflis_share",
                                 "seizures_product": "seizures_fy_product"}
_BASE = {o.name: o for o in OUTPUTS}
OUTPUTS = OUTPUTS + tuple(
    Output(f"{v}_predictive", _BASE[v].dims, _BASE[v].units,
           f"posterior predictive draw of {v}: the model value times exp(model error x standard "
           f"normal), an observation's spread", _BASE[v].reduction)
    for v in PREDICTIVE_OF.values())
OUTPUT = {o.name: o for o in OUTPUTS}
assert len(OUTPUT) == len(OUTPUTS), "an output declared twice"


def by_reduction(*reductions: str) -> tuple[str, ...]:
    """Names of the outputs with one of these reductions, in declaration order."""
    return tuple(o.name for o in OUTPUTS if o.reduction in reductions)


def values_per_draw(along: str, sizes: dict[str, int]) -> int:
    """Stored values per draw and per step of dimension `along` ('time' or 'year'), summed over
    the outputs that vary by draw and along it; `sizes` gives the other dims' lengths."""
    return sum(int(math.prod(sizes[d] for d in o.dims if d not in ("draw", along)))
               for o in OUTPUTS if "draw" in o.dims and along in o.dims)
