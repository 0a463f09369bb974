"""The stock-and-flow model: small named flow functions and one vectorised right-hand side.

Arrays carry draws on their last axis; `source` (china, india, other) and `route` (mail, land)
dimensions come first, in the order of `sim.model.state.SOURCES` and `sim.model.state.ROUTES`.
Time `t` is in decimal years.  Units are given in each docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.model.state import LAYOUT, SOURCES

# US resident population (July estimates, US Census Bureau), persons; growth of 0.6 %/yr assumed
# after 2017 and before 2010 (Census projections give about 0.5-0.7 %/yr).
POPULATION_YEARS = np.arange(2010, 2018) + 0.5
POPULATION = np.array([309.3e6, 311.6e6, 313.9e6, 316.1e6, 318.4e6, 320.7e6, 323.1e6, 325.1e6])
POPULATION_GROWTH_AFTER_2017 = 0.006  # 1/yr, assumption

INTERDICTION_RAMP_START = 2013.25  # yr: middle of FY2013 (Oct 2012 - Sep 2013)
INTERDICTION_RAMP_END = 2018.25    # yr: middle of FY2018


def us_population(t: float | np.ndarray) -> float | np.ndarray:
    """US resident population (persons) at time t (yr), log-linear extrapolation outside 2010-2017."""
    t = np.asarray(t, dtype=float)
    log_pop = np.interp(t, POPULATION_YEARS, np.log(POPULATION))
    after = t > POPULATION_YEARS[-1]
    before = t < POPULATION_YEARS[0]
    log_pop = np.where(after, np.log(POPULATION[-1])
                       + POPULATION_GROWTH_AFTER_2017 * (t - POPULATION_YEARS[-1]), log_pop)
    log_pop = np.where(before, np.log(POPULATION[0])
                       + POPULATION_GROWTH_AFTER_2017 * (t - POPULATION_YEARS[0]), log_pop)
    pop = np.exp(log_pop)
    return float(pop) if pop.ndim == 0 else pop


@dataclass(frozen=True, eq=False)
class ModelContext:
    """Everything the right-hand side needs besides time and state: parameter arrays and levers."""

    p: dict[str, np.ndarray]  # parameter name -> array (n_draws,)
    levers: LeverSet
    n_draws: int

    @classmethod
    def build(cls, params: ModelParameters, levers: LeverSet, n_draws: int | None = None) -> ModelContext:
        n = n_draws or params.n_draws
        arrays = params.as_arrays()
        if params.n_draws != n:
            arrays = {k: np.broadcast_to(v, (n,)).copy() for k, v in arrays.items()}
        return cls(arrays, levers, n)


# --- supply flows -----------------------------------------------------------------------------

def fentanyl_share(retail: np.ndarray, p: dict) -> np.ndarray:
    """Fentanyl share of the opioid supply in heroin-equivalent mass (1): 50F / (50F + H)."""
    fentanyl_equivalent = p["potency_ratio"] * retail / p["retail_turnover_time"]
    return fentanyl_equivalent / (fentanyl_equivalent + p["heroin_supply"])


def source_enforcement(lever_values: dict, n: int) -> np.ndarray:
    """Enforcement level by source (1), shape (source, n)."""
    return np.stack([np.broadcast_to(lever_values[f"enforcement_{s}"], (n,)) for s in SOURCES])


def exports(capacity: np.ndarray, enforcement: np.ndarray) -> np.ndarray:
    """Exports toward the US by source (kg/yr): capacity not withheld by enforcement."""
    return capacity * (1.0 - enforcement)


def capacity_change(capacity: np.ndarray, share: np.ndarray, enforcement: np.ndarray,
                    p: dict) -> np.ndarray:
    """Net change of capacity by source (kg/yr^2).

    Growth (per-capita plus dormant-source entry) scales with the room left in the market
    (1 - fentanyl share) and the part not suppressed by enforcement; enforcement also dismantles
    capacity.  This gives an S-shaped takeover and substitution when one source is cut.
    """
    growth = (p["capacity_growth_rate"] * capacity + p["capacity_entry_rate"]) * (1.0 - share)
    return growth * (1.0 - enforcement) - p["enforcement_erosion_rate"] * enforcement * capacity


def mail_fraction(t: float, p: dict) -> np.ndarray:
    """Share of each source's exports sent by mail/express (1), shape (source, n)."""
    start = p["route_shift_midyear"] - 0.5 * p["route_shift_duration"]
    progress = np.clip((t - start) / p["route_shift_duration"], 0.0, 1.0)
    china = p["mail_fraction_china_early"] + progress * (
        p["mail_fraction_china_late"] - p["mail_fraction_china_early"])
    return np.stack([china, p["mail_fraction_india"], p["mail_fraction_other"]])


def shipments(export_flow: np.ndarray, mail_share: np.ndarray) -> np.ndarray:
    """Exports split over routes (kg/yr), shape (source, route, n)."""
    return np.stack([export_flow * mail_share, export_flow * (1.0 - mail_share)], axis=1)


def interdiction_index(t: float, p: dict) -> np.ndarray:
    """Historical growth of interdiction hazard (1): 1 before FY2013, log-linear to FY2018, flat after."""
    progress = np.clip((t - INTERDICTION_RAMP_START)
                       / (INTERDICTION_RAMP_END - INTERDICTION_RAMP_START), 0.0, 1.0)
    return p["interdiction_growth_2013_2018"] ** progress


def seizure_probability(t: float, p: dict, lever_values: dict) -> np.ndarray:
    """Probability that a shipment is seized, by route (1), shape (route, n): 1 - exp(-k effort)."""
    index = interdiction_index(t, p)
    hazard = np.stack([p["seizure_hazard_mail_2013"] * index * lever_values["interdiction_mail"],
                       p["seizure_hazard_land_2013"] * index * lever_values["interdiction_land"]])
    return -np.expm1(-hazard)


def transit_times(p: dict) -> np.ndarray:
    """Mean transit time by route (yr), shape (route, n)."""
    return np.stack([p["transit_time_mail"], p["transit_time_land"]])


def transit_outflow(in_transit: np.ndarray, p: dict) -> np.ndarray:
    """Shipments reaching the US border or mail facility (kg/yr), shape (source, route, n)."""
    return in_transit / transit_times(p)[np.newaxis]


def retail_consumption(retail: np.ndarray, p: dict) -> np.ndarray:
    """Fentanyl consumed from the retail supply (kg/yr)."""
    return retail / p["retail_turnover_time"]


def fastest_drain_rate(p: dict) -> np.ndarray:
    """Largest first-order outflow rate of any stock (1/yr), per draw: mail and land transit,
    retail turnover, treatment exits, remission and relapse.  Explicit solvers stay stable only
    while the step times this rate is inside their stability interval."""
    return np.max(np.stack([1.0 / p["transit_time_mail"], 1.0 / p["transit_time_land"],
                            1.0 / p["retail_turnover_time"], 1.0 / p["treatment_duration"],
                            p["remission_rate"], p["relapse_rate"]]), axis=0)


# --- demand flows -----------------------------------------------------------------------------

def initiation(p: dict, lever_values: dict) -> np.ndarray:
    """New people with illicit opioid use disorder (persons/yr), cut by prevention."""
    return p["initiation_rate"] * (1.0 - lever_values["prevention"])


def treatment_entries(untreated: np.ndarray, in_treatment: np.ndarray, p: dict,
                      lever_values: dict) -> np.ndarray:
    """MOUD entries (persons/yr): seeking rate times untreated, limited by free capacity."""
    slots = p["moud_share_illicit"] * lever_values["moud_capacity"]
    free = np.maximum(1.0 - in_treatment / np.maximum(slots, 1.0), 0.0)
    return p["treatment_seeking_rate"] * lever_values["treatment_seeking"] * untreated * free


def naloxone_probability(kits_per_year: float, population: float, p: dict) -> np.ndarray:
    """Probability naloxone is at hand at an overdose (1): 1 - exp(-c x kits per 100k)."""
    return -np.expm1(-p["naloxone_coefficient"] * kits_per_year / population * 1e5)


def rescue_factor(naloxone: np.ndarray, p: dict) -> np.ndarray:
    """Share of overdoses that stay fatal after help (1): 1 - w [1 - (1 - p_nal)(1 - r)]."""
    helped = 1.0 - (1.0 - naloxone) * (1.0 - p["rescue_without_naloxone"])
    return 1.0 - p["witnessed_fraction"] * helped


def test_strip_factor(strips_per_year: float, population: float, p: dict) -> np.ndarray:
    """Multiplier on fentanyl overdose incidence from test-strip use (1)."""
    coverage = -np.expm1(-p["test_strip_coefficient"] * strips_per_year / population * 1e5)
    return 1.0 - p["test_strip_max_effect"] * coverage


def overdose_rates(share: np.ndarray, naloxone: np.ndarray, strips: np.ndarray,
                   p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Overdose death rate per untreated person-year (1/yr) and the fentanyl-involved share (1).

    rate = incidence x case fatality x rescue factor, with
    incidence = i0 ((1 - f) + kappa f s), case fatality = cf_h + (cf_f - cf_h) f (SOURCE model);
    s is the test-strip factor.  Deaths are attributed to fentanyl by the incidence- and
    lethality-weighted share of fentanyl exposures.
    """
    heroin_exposure = 1.0 - share
    fentanyl_exposure = p["fentanyl_incidence_multiplier"] * share * strips
    incidence = p["overdose_incidence"] * (heroin_exposure + fentanyl_exposure)
    fatality = p["case_fatality_heroin"] + (p["case_fatality_fentanyl"]
                                           - p["case_fatality_heroin"]) * share
    rate = incidence * fatality * rescue_factor(naloxone, p)
    fentanyl_weight = fentanyl_exposure * p["case_fatality_fentanyl"]
    heroin_weight = heroin_exposure * p["case_fatality_heroin"]
    involved = fentanyl_weight / np.maximum(fentanyl_weight + heroin_weight, 1e-300)
    return rate, involved


# --- the right-hand side ----------------------------------------------------------------------

def auxiliaries(t: float, stocks: dict[str, np.ndarray], ctx: ModelContext) -> dict[str, np.ndarray]:
    """The auxiliaries reported as time series, at time t, and what they are built from.

    fentanyl_share (1), exports by source (kg/yr), transit_outflow by source and route (kg/yr),
    seizure_probability by route (1), naloxone_probability (1); plus the lever values, the US
    population (persons) and enforcement by source (1).
    """
    p, n = ctx.p, ctx.n_draws
    lv = ctx.levers.values(t)
    population = us_population(t)
    enforcement = source_enforcement(lv, n)
    return {
        "levers": lv,
        "population": population,
        "enforcement": enforcement,
        "fentanyl_share": fentanyl_share(np.maximum(stocks["retail"], 0.0), p),
        "exports": exports(np.maximum(stocks["capacity"], 0.0), enforcement),
        "transit_outflow": transit_outflow(np.maximum(stocks["in_transit"], 0.0), p),
        "seizure_probability": seizure_probability(t, p, lv),
        "naloxone_probability": naloxone_probability(lv["naloxone_kits"], population, p),
    }


def flows(t: float, stocks: dict[str, np.ndarray], ctx: ModelContext) -> dict[str, np.ndarray]:
    """All named flows and auxiliaries at time t for the current stocks (units in each function)."""
    p, n = ctx.p, ctx.n_draws
    aux = auxiliaries(t, stocks, ctx)
    lv, population = aux["levers"], aux["population"]
    capacity = np.maximum(stocks["capacity"], 0.0)
    retail = np.maximum(stocks["retail"], 0.0)
    untreated = np.maximum(stocks["untreated"], 0.0)
    in_treatment = np.maximum(stocks["in_treatment"], 0.0)
    remission = np.maximum(stocks["remission"], 0.0)

    share, enforcement = aux["fentanyl_share"], aux["enforcement"]
    export_flow, out_of_transit = aux["exports"], aux["transit_outflow"]
    seize = aux["seizure_probability"][np.newaxis]
    naloxone = aux["naloxone_probability"]
    strips = test_strip_factor(lv["test_strips"], population, p)
    od_rate, fentanyl_involved = overdose_rates(share, naloxone, strips, p)
    od_deaths = od_rate * (untreated + p["treatment_overdose_ratio"] * in_treatment)
    od_untreated = od_rate * untreated
    exits = in_treatment / p["treatment_duration"]
    return {
        "fentanyl_share": share,
        "exports": export_flow,
        "capacity_change": capacity_change(capacity, share, enforcement, p),
        "shipments": shipments(export_flow, mail_fraction(t, p)),
        "transit_outflow": out_of_transit,
        "seizures": out_of_transit * seize,
        "arrivals": out_of_transit * (1.0 - seize),
        "consumption": retail_consumption(retail, p),
        "initiation": np.broadcast_to(initiation(p, lv), (n,)),
        "treatment_entries": treatment_entries(untreated, in_treatment, p, lv),
        "treatment_exits": exits,
        "treatment_exits_to_remission": exits * p["treatment_success_fraction"],
        "remission": p["remission_rate"] * untreated,
        "relapse": p["relapse_rate"] * remission,
        "od_deaths_untreated": od_untreated,
        "od_deaths_in_treatment": od_deaths - od_untreated,
        "deaths_fentanyl": fentanyl_involved * od_deaths,
        "deaths_heroin_only": (1.0 - fentanyl_involved) * od_deaths,
        "deaths_other_synthetic": np.broadcast_to(p["background_synthetic_deaths"], (n,)),
        "background_untreated": p["background_death_rate"] * untreated,
        "background_in_treatment": p["background_death_rate"] * in_treatment,
        "background_remission": p["background_death_rate"] * remission,
        "overdose_death_rate": od_rate,
        "naloxone_probability": np.broadcast_to(naloxone, (n,)),
    }


def derivatives(f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rate of change of every stock (stock units per yr) from the named flows."""
    return {
        "capacity": f["capacity_change"],
        "in_transit": f["shipments"] - f["transit_outflow"],
        "retail": f["arrivals"].sum(axis=(0, 1)) - f["consumption"],
        "untreated": (f["initiation"] + f["relapse"]
                      + f["treatment_exits"] - f["treatment_exits_to_remission"]
                      - f["treatment_entries"] - f["remission"]
                      - f["od_deaths_untreated"] - f["background_untreated"]),
        "in_treatment": (f["treatment_entries"] - f["treatment_exits"]
                         - f["od_deaths_in_treatment"] - f["background_in_treatment"]),
        "remission": (f["remission"] + f["treatment_exits_to_remission"]
                      - f["relapse"] - f["background_remission"]),
        "cum_exports": f["exports"],
        "cum_seized": f["seizures"],
        "cum_arrivals": f["arrivals"],
        "cum_consumed": f["consumption"],
        "cum_initiation": f["initiation"],
        "cum_treatment_entries": f["treatment_entries"],
        "cum_deaths_fentanyl": f["deaths_fentanyl"],
        "cum_deaths_heroin_only": f["deaths_heroin_only"],
        "cum_deaths_other_synthetic": f["deaths_other_synthetic"],
        "cum_deaths_background": (f["background_untreated"] + f["background_in_treatment"]
                                  + f["background_remission"]),
    }


def rhs(t: float, y: np.ndarray, ctx: ModelContext) -> np.ndarray:
    """dy/dt for the flat state of a batch of draws (the form `solve_ivp` expects)."""
    stocks = LAYOUT.unpack(y.reshape(LAYOUT.size, ctx.n_draws))
    return LAYOUT.pack(derivatives(flows(t, stocks, ctx)), ctx.n_draws).ravel()


def initial_state(ctx: ModelContext) -> np.ndarray:
    """State at the start (1 Jan 2010) as a (n_state, n_draws) array.

    Shipments in transit and retail stocks start at the equilibrium of the initial exports;
    cumulative stocks start at zero.
    """
    p, n = ctx.p, ctx.n_draws
    t0 = 2010.0
    lv = ctx.levers.values(t0)
    capacity = np.stack([p[f"capacity_2010_{s}"] for s in SOURCES])
    export_flow = exports(capacity, source_enforcement(lv, n))
    ship = shipments(export_flow, mail_fraction(t0, p))
    in_transit = ship * transit_times(p)[np.newaxis]
    seize = seizure_probability(t0, p, lv)[np.newaxis]
    retail = (ship * (1.0 - seize)).sum(axis=(0, 1)) * p["retail_turnover_time"]
    zero = np.zeros(n)
    parts = {name: zero for name in LAYOUT.slices}
    parts.update(capacity=capacity, in_transit=in_transit, retail=retail,
                 untreated=p["untreated_2010"], in_treatment=p["in_treatment_2010"],
                 remission=p["remission_2010"])
    return LAYOUT.pack(parts, n)
