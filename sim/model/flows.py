"""The model's equations, stated once: small named flow functions and `evaluate`, for one draw.

Every engine calls these compiled functions (`sim.model.compiled.jit`): the compiled per-draw
integrator (`sim.engine.kernel`), the solve_ivp path over a batch (`sim.engine.batch` loops
`evaluate` over draws) and the reported auxiliaries of the result dataset.  A change to a flow is
a change here and nowhere else.

Conventions (one draw):
- `t` time in decimal years; `y` the state vector laid out by `sim.model.state.LAYOUT` (stocks are
  reached by the named offsets below; channel-dimensioned stocks in the order of CHANNELS);
- `p` one record of `parameter_records` (fields named as `ModelParameters`);
- `lv` lever values at `t` in the order of `sim.model.levers.LEVER_SPECS` (named indices below);
- `dy` receives dy/dt (stock units per yr); `aux` receives the reported auxiliaries (`AUX_LAYOUT`).

The market (second version; evidence and priors of every constant in `sim/model/parameters.py`):
- Supply runs through six channels (source, form, route; `sim.model.state.CHANNELS`).  Each has a
  delivered cost per heroin-equivalent (HE) kg: c = base (1 + rho s) / (1 - s) (1 - e)^-gamma, with
  s the seizure probability of its route and e source-country enforcement (Reuter and Kleiman's
  risks and prices: losses and risk compensation act as a tax on the trade).
- Demand D = users x consumption per user x P_c^eps (HE kg/yr), P_c the cost-based price index.
- Target shares of demand by a nested logit of delivered cost: heroin against a fentanyl nest whose
  channels are opened by know-how (logistic diffusion of the mail trade in finished fentanyl and of
  synthesis in Mexico: the S-shaped takeover of 2013-2018), so fentanyl displaces heroin because it
  is far cheaper per dose, and a cut channel's share moves to the others.
- Each channel's capacity adjusts over an adjustment time (first order: no overshoot) toward the
  shipments that deliver its share of demand after its losses: seized and withheld drugs are
  replaced, and the replacement is a cost in the delivered cost, hence in the price (Reuter and
  Kleiman).  So a cut or more interdiction acts through the price on consumption, never by
  freeing supply: total arrivals follow demand, and a channel's cut cannot raise them.  While
  capacity lags behind its target (after a shock) arrivals fall short and the price rises further,
  P = P_c (arrivals / D)^(1/eps).  Consumption equals arrivals, so supply is bounded by demand.
- Overdose by product (heroin only, heroin adulterated with fentanyl, fentanyl only) in proportions
  from the HE fentanyl share; one formula gives the total and the split, so
  fentanyl-involved + heroin-involved - both = all opioid overdose deaths.  Risk scales with
  consumption per user, the COVID-19 shock from March 2020 and naloxone (SOURCE rescue factor).
"""

from __future__ import annotations

import math

import numpy as np

from sim.model.compiled import jit
from sim.model.levers import LEVER_SPECS
from sim.model.parameters import ModelParameters
from sim.model.state import CHANNELS, LAYOUT, PRODUCTS, ROUTES, StateLayout, Stock

# --- exogenous paths: dates (yr) -------------------------------------------------------------
# US resident population (July estimates, US Census Bureau), persons; +0.5 %/yr outside 2010-2021
# (Census projections' order of magnitude; no later data used).
POPULATION_YEARS = np.arange(2010, 2022, dtype=np.float64) + 0.5
POPULATION = np.array([309.3e6, 311.6e6, 313.9e6, 316.1e6, 318.4e6, 320.7e6, 323.1e6, 325.1e6,
                       327.2e6, 328.2e6, 331.5e6, 331.9e6])
LOG_POPULATION = np.log(POPULATION)
POPULATION_GROWTH = 0.005                            # 1/yr
SEIZURE_KNOTS = (2013.25, 2018.25, 2021.25)          # mid FY2013, FY2018, FY2021
SEIZURE_PROBABILITY_MAX = 0.2                        # top of the documented plausible range
PILL_SHIFT = (2019.0, 2021.5)                        # pill share of land fentanyl rises between
INITIATION_KNOTS = (2010.0, 2014.0, 2018.0, 2021.0)  # piecewise log-linear, flat after 2021
COVID_START, COVID_RAMP = 2020.17, 0.25              # March 2020; full shock by June 2020
PHARMA_START = 2010.0                                # diverted pharmaceutical fentanyl falls from
HEROIN_COST_TREND = (2010.0, 2017.0)                 # heroin base cost changes log-linearly
# Every date where an exogenous path has a kink: the solvers stop and restart there.
KINKS = tuple(sorted({*SEIZURE_KNOTS, *PILL_SHIFT, *INITIATION_KNOTS, 2012.0, COVID_START,
                      COVID_START + COVID_RAMP, *HEROIN_COST_TREND}))

# --- named positions -------------------------------------------------------------------------
N_STATE = LAYOUT.size
N_CHANNELS = len(CHANNELS)
_CHANNEL = {c.name: i for i, c in enumerate(CHANNELS)}
CHINA_FINISHED, CHINA_PRECURSOR = _CHANNEL["china_finished_mail"], _CHANNEL["china_precursor_land"]
INDIA_FINISHED, INDIA_PRECURSOR = _CHANNEL["india_finished_mail"], _CHANNEL["india_precursor_land"]
OTHER, HEROIN = _CHANNEL["other_land"], _CHANNEL["heroin_land"]
N_FENTANYL_CHANNELS = HEROIN          # the fentanyl channels come first
MAIL, LAND = ROUTES.index("mail"), ROUTES.index("land")
CHANNEL_ROUTE = np.array([ROUTES.index(c.route) for c in CHANNELS], dtype=np.int64)
KNOW_HOW_FINISHED, KNOW_HOW_SYNTHESIS = 1, 2
CHANNEL_KNOW_HOW = np.array([{"none": 0, "finished": 1, "synthesis": 2}[c.know_how]
                             for c in CHANNELS], dtype=np.int64)
HEROIN_ONLY, BOTH, FENTANYL_ONLY = (PRODUCTS.index("heroin_only"),
                                    PRODUCTS.index("heroin_with_fentanyl"),
                                    PRODUCTS.index("fentanyl_only"))

_AT = {name: sl.start for name, sl in LAYOUT.slices.items()}
CAPACITY, KH_FINISHED, KH_SYNTHESIS = (_AT["capacity"], _AT["know_how_finished"],
                                       _AT["know_how_synthesis"])
UNTREATED, IN_TREATMENT, REMISSION = _AT["untreated"], _AT["in_treatment"], _AT["remission"]
CUM_OUTPUT, CUM_WITHHELD, CUM_SEIZED, CUM_ARRIVALS = (
    _AT["cum_output"], _AT["cum_withheld"], _AT["cum_seized"], _AT["cum_arrivals"])
CUM_SEIZED_PRODUCT, CUM_DEMAND = _AT["cum_seized_product"], _AT["cum_demand"]
CUM_DEATHS_HEROIN_ONLY, CUM_DEATHS_BOTH, CUM_DEATHS_FENTANYL_ONLY = (
    _AT["cum_deaths_heroin_only"], _AT["cum_deaths_both"], _AT["cum_deaths_fentanyl_only"])
CUM_OD_DEATHS_IN_TREATMENT = _AT["cum_od_deaths_in_treatment"]
CUM_DEATHS_PHARMA, CUM_DEATHS_OTHER_SYNTHETIC, CUM_DEATHS_BACKGROUND = (
    _AT["cum_deaths_pharma_fentanyl"], _AT["cum_deaths_other_synthetic"],
    _AT["cum_deaths_background"])
CUM_INITIATION, CUM_TREATMENT_ENTRIES = _AT["cum_initiation"], _AT["cum_treatment_entries"]
# The flows read only the physical stocks, which come first in the layout; the running totals
# after them are integrals of flows (the kernel forms stage states for these rows only).
N_DRIVING = sum(s.size for s in LAYOUT.stocks.values() if s.kind == "physical")
assert all((sl.start >= N_DRIVING) == (LAYOUT.stocks[name].kind == "total")
           for name, sl in LAYOUT.slices.items()), "physical stocks must come first in STOCKS"

_LEVER = {name: i for i, name in enumerate(LEVER_SPECS)}
N_LEVERS = len(LEVER_SPECS)
CHANNEL_ENFORCEMENT = np.array([_LEVER[f"enforcement_{c.source}_{c.form}"] if c.source in
                                ("china", "india") else _LEVER[f"enforcement_{c.source}"]
                                if c.form != "heroin" else _LEVER["enforcement_heroin"]
                                for c in CHANNELS], dtype=np.int64)
INTERDICTION_MAIL, INTERDICTION_LAND = _LEVER["interdiction_mail"], _LEVER["interdiction_land"]
NALOXONE_KITS, TEST_STRIPS = _LEVER["naloxone_kits"], _LEVER["test_strips"]
MOUD_CAPACITY, TREATMENT_SEEKING = _LEVER["moud_capacity"], _LEVER["treatment_seeking"]
PREVENTION = _LEVER["prevention"]

# The auxiliaries `evaluate` reports besides the derivatives (units, meaning).
AUXILIARIES: tuple[Stock, ...] = (
    Stock("population", (), "persons", "US resident population"),
    Stock("seizure_probability", ("route",), "1",
          "probability that a fentanyl shipment is seized, by route"),
    Stock("seizure_probability_heroin", (), "1", "probability that a heroin shipment is seized"),
    Stock("delivered_cost", ("channel",), "1",
          "delivered cost per heroin-equivalent kg by channel (heroin in 2010 without interdiction = 1)"),
    Stock("target_share", ("channel",), "1", "each channel's share of demand (nested logit of cost)"),
    Stock("arrivals", ("channel",), "HE kg/yr", "arrivals on the US retail market by channel"),
    Stock("cost_price_index", (), "1", "cost-based price index per heroin-equivalent dose"),
    Stock("price_index", (), "1",
          "market price index per heroin-equivalent dose, scarcity included (heroin era = 1)"),
    Stock("demand", (), "HE kg/yr", "opioid demand at the cost-based price"),
    Stock("heroin_arrivals", (), "kg/yr", "heroin arriving on the US retail market (pure)"),
    Stock("fentanyl_arrivals", (), "kg/yr", "fentanyl arriving on the US retail market (pure)"),
    Stock("fentanyl_share", (), "1", "fentanyl share of the retail opioid supply (HE terms)"),
    Stock("nflis_share", (), "1",
          "expected fentanyl share of heroin and fentanyl forensic laboratory reports (NFLIS)"),
    Stock("product_share", ("product",), "1", "share of use episodes by product"),
    Stock("consumption_per_user", (), "HE kg/yr", "opioid consumption per using person-year"),
    Stock("naloxone_probability", (), "1", "probability naloxone is at hand at an overdose"),
    Stock("risk_environment", (), "1", "exogenous overdose-risk multiplier (COVID-19 shock)"),
    Stock("overdose_death_rate", (), "1/yr", "opioid overdose deaths per untreated person-year"),
    Stock("pill_share", (), "1", "share of land-route fentanyl (pure mass) pressed into pills"),
)
AUX_LAYOUT = StateLayout(AUXILIARIES)
_AUX = {name: sl.start for name, sl in AUX_LAYOUT.slices.items()}
N_AUX = AUX_LAYOUT.size
AUX_DELIVERED_COST = _AUX["delivered_cost"]
AUX_TARGET_SHARE = _AUX["target_share"]
AUX_ARRIVALS = _AUX["arrivals"]
AUX_POPULATION = _AUX["population"]
AUX_SEIZURE_PROBABILITY = _AUX["seizure_probability"]
AUX_SEIZURE_PROBABILITY_HEROIN = _AUX["seizure_probability_heroin"]
AUX_COST_PRICE_INDEX = _AUX["cost_price_index"]
AUX_PRICE_INDEX = _AUX["price_index"]
AUX_DEMAND = _AUX["demand"]
AUX_HEROIN_ARRIVALS = _AUX["heroin_arrivals"]
AUX_FENTANYL_ARRIVALS = _AUX["fentanyl_arrivals"]
AUX_FENTANYL_SHARE = _AUX["fentanyl_share"]
AUX_NFLIS_SHARE = _AUX["nflis_share"]
AUX_PRODUCT_SHARE = _AUX["product_share"]
AUX_CONSUMPTION_PER_USER = _AUX["consumption_per_user"]
AUX_NALOXONE_PROBABILITY = _AUX["naloxone_probability"]
AUX_RISK_ENVIRONMENT = _AUX["risk_environment"]
AUX_OVERDOSE_DEATH_RATE = _AUX["overdose_death_rate"]
AUX_PILL_SHARE = _AUX["pill_share"]


def parameter_records(params: ModelParameters) -> np.ndarray:
    """Parameters as a structured array over draws: one float field per parameter."""
    arrays = params.as_arrays()
    records = np.empty(params.n_draws, dtype=[(name, "f8") for name in arrays])
    for name, values in arrays.items():
        records[name] = values
    return records


# --- exogenous paths -------------------------------------------------------------------------

@jit
def us_population(t):
    """US resident population (persons) at t (yr): log-linear between the census mid-years,
    +0.5 %/yr outside them."""
    if t <= POPULATION_YEARS[0]:
        return POPULATION[0] * math.exp(POPULATION_GROWTH * (t - POPULATION_YEARS[0]))
    if t >= POPULATION_YEARS[-1]:
        return POPULATION[-1] * math.exp(POPULATION_GROWTH * (t - POPULATION_YEARS[-1]))
    k = min(int(t - POPULATION_YEARS[0]), POPULATION_YEARS.size - 2)
    w = t - POPULATION_YEARS[k]
    return math.exp(LOG_POPULATION[k] + w * (LOG_POPULATION[k + 1] - LOG_POPULATION[k]))


@jit
def us_population_at(times):
    """`us_population` at each of `times` (yr), persons."""
    out = np.empty(times.size)
    for i in range(times.size):
        out[i] = us_population(times[i])
    return out


@jit
def loglinear3(t, t0, t1, t2, v0, v1, v2):
    """Piecewise log-linear path through (t0, v0), (t1, v1), (t2, v2), flat outside."""
    if t <= t0:
        return v0
    if t >= t2:
        return v2
    if t <= t1:
        w = (t - t0) / (t1 - t0)
        return math.exp((1.0 - w) * math.log(max(v0, 1e-300)) + w * math.log(max(v1, 1e-300)))
    w = (t - t1) / (t2 - t1)
    return math.exp((1.0 - w) * math.log(max(v1, 1e-300)) + w * math.log(max(v2, 1e-300)))


@jit
def seizure_probability(t, probability_2013, rise_2018, rise_2021, effort):
    """Probability that a shipment on a route is seized (1) at t (yr).

    History: p13 at mid FY2013, p18 = p13 + rise_2018 (PMAX - p13) at mid FY2018, p21 = p18 +
    rise_2021 (PMAX - p18) at mid FY2021 (PMAX = SEIZURE_PROBABILITY_MAX), so interdiction keeps
    changing after FY2018 (STOP Act mail screening, land-port scanning), never falls and stays in
    the documented range; the hazard -log(1 - p) is log-linear between the knots, flat outside.
    The lever `effort` (1 = history) multiplies the hazard.
    """
    p13 = probability_2013
    p18 = p13 + rise_2018 * (SEIZURE_PROBABILITY_MAX - p13)
    p21 = p18 + rise_2021 * (SEIZURE_PROBABILITY_MAX - p18)
    hazard = loglinear3(t, SEIZURE_KNOTS[0], SEIZURE_KNOTS[1], SEIZURE_KNOTS[2],
                        -math.log(1.0 - p13), -math.log(1.0 - p18), -math.log(1.0 - p21))
    return min(-math.expm1(-hazard * max(effort, 0.0)), 1.0 - 1e-12)


@jit
def covid_risk(t, size, decay):
    """Exogenous overdose-risk multiplier (1): 1 + size x ramp(March-June 2020) x
    exp(-decay (t - June 2020)); 1 before March 2020."""
    if t <= COVID_START:
        return 1.0
    ramp = min((t - COVID_START) / COVID_RAMP, 1.0)
    return 1.0 + size * ramp * math.exp(-decay * max(t - COVID_START - COVID_RAMP, 0.0))


@jit
def pharma_fentanyl_deaths(t, deaths_2010, floor, rate):
    """Deaths from diverted pharmaceutical fentanyl (deaths/yr): falling from 2010 to a floor."""
    return floor + (deaths_2010 - floor) * math.exp(-rate * max(t - PHARMA_START, 0.0))


@jit
def initiation_path(t, p):
    """Initiation into illicit-opioid use disorder (persons/yr) before prevention: piecewise
    log-linear through 2010, 2014, 2018 and 2021 (the prescription pathway falls after 2011),
    flat after 2021."""
    if t <= INITIATION_KNOTS[1]:
        return loglinear3(t, INITIATION_KNOTS[0], 2012.0, INITIATION_KNOTS[1],
                          p["initiation_2010"], math.sqrt(p["initiation_2010"] * p["initiation_2014"]),
                          p["initiation_2014"])
    return loglinear3(t, INITIATION_KNOTS[1], INITIATION_KNOTS[2], INITIATION_KNOTS[3],
                      p["initiation_2014"], p["initiation_2018"], p["initiation_2021"])


@jit
def pill_share(t, p):
    """Share of land-route fentanyl (pure mass) pressed into pills (1): linear 2019 -> mid 2021."""
    w = min(max((t - PILL_SHIFT[0]) / (PILL_SHIFT[1] - PILL_SHIFT[0]), 0.0), 1.0)
    return p["pill_share_2019"] + w * (p["pill_share_2021"] - p["pill_share_2019"])


@jit
def heroin_base_cost(t, log_change):
    """Heroin's base cost per kg (1 in 2010): log-linear change to 2017, flat after."""
    w = min(max((t - HEROIN_COST_TREND[0]) / (HEROIN_COST_TREND[1] - HEROIN_COST_TREND[0]),
                0.0), 1.0)
    return math.exp(w * log_change)


# --- supply: the market ----------------------------------------------------------------------

@jit
def delivered_cost(base, seizure, enforcement, risk_premium, enforcement_exponent):
    """Delivered cost per HE kg (1): base x (1 + rho s) / (1 - s) x (1 - e)^-gamma — losses to
    seizure, risk compensation and the tax of source enforcement on what still gets out."""
    s = min(seizure, 0.999)
    e = min(max(enforcement, 0.0), 0.999)
    return base * (1.0 + risk_premium * s) / (1.0 - s) * (1.0 - e) ** (-enforcement_exponent)


@jit
def retail_cost(delivered, markup):
    """Retail cost per HE dose (1 = heroin in 2010 without interdiction): (delivered cost +
    distribution markup) / (1 + markup).  Enforcement and seizures raise the delivered cost; the
    retail price moves by the same absolute amount (Reuter and Kleiman), a fraction of it."""
    return (delivered + markup) / (1.0 + markup)


@jit
def logistic_growth(level, rate):
    """Logistic diffusion of know-how (1/yr): r K (1 - K)."""
    return rate * level * (1.0 - level)


@jit
def nested_logit_shares(log_v, beta, nest, preference, cost_heroin, shares):
    """Target shares of demand by channel into `shares`; returns the cost-based price index.

    log_v[k] = asc_k + log know-how_k - (beta / nest) log c_k for the fentanyl channels.  Within
    the nest w_k = v_k / V; the nest's share S_F = e^a V^nest / (e^a V^nest + c_H^-beta), the
    heroin channel the rest; price index P_c = (e^a V^nest + c_H^-beta)^(-1/beta) (= c_H while no
    fentanyl is available).
    """
    top = log_v[0]
    for k in range(1, N_FENTANYL_CHANNELS):
        top = max(top, log_v[k])
    total = 0.0
    for k in range(N_FENTANYL_CHANNELS):
        total += math.exp(log_v[k] - top)
    log_nest = preference + nest * (top + math.log(total))
    log_heroin = -beta * math.log(cost_heroin)
    high = max(log_nest, log_heroin)
    denominator = math.exp(log_nest - high) + math.exp(log_heroin - high)
    fentanyl = math.exp(log_nest - high) / denominator
    for k in range(N_FENTANYL_CHANNELS):
        shares[k] = fentanyl * math.exp(log_v[k] - top) / total
    shares[HEROIN] = 1.0 - fentanyl
    return math.exp(-(high + math.log(denominator)) / beta)


@jit
def channel_seizure(k, mail, land, heroin):
    """Seizure probability of channel k (its route's; heroin has its own)."""
    if k == HEROIN:
        return heroin
    return mail if CHANNEL_ROUTE[k] == MAIL else land


@jit
def market(t, y, p, lv, cost, enforcement, shares):
    """Delivered costs, enforcement and target shares by channel (into the arrays); returns the
    cost-based retail price index and the seizure probabilities (mail, land, heroin).  Shares and
    the price follow the retail cost per HE dose, `retail_cost`: delivered cost plus the domestic
    distribution markup that supply-side measures do not touch."""
    mail = seizure_probability(t, p["seizure_prob_mail_2013"], p["seizure_rise_mail_2018"],
                               p["seizure_rise_mail_2021"], lv[INTERDICTION_MAIL])
    land = seizure_probability(t, p["seizure_prob_land_2013"], p["seizure_rise_land_2018"],
                               p["seizure_rise_land_2021"], lv[INTERDICTION_LAND])
    heroin = -math.expm1(math.log1p(-p["seizure_prob_heroin"]) * max(lv[INTERDICTION_LAND], 0.0))
    beta, nest = p["cost_sensitivity"], p["nest_dissimilarity"]
    know_finished = min(max(y[KH_FINISHED], 1e-12), 1.0)
    know_synthesis = min(max(y[KH_SYNTHESIS], 1e-12), 1.0)
    log_v = np.empty(N_FENTANYL_CHANNELS)
    for k in range(N_CHANNELS):
        enforcement[k] = min(max(lv[CHANNEL_ENFORCEMENT[k]], 0.0), 0.999)
        base = heroin_base_cost(t, p["heroin_cost_change"]) if k == HEROIN else \
            p["fentanyl_cost_ratio"]
        cost[k] = delivered_cost(base, channel_seizure(k, mail, land, heroin), enforcement[k],
                                 p["risk_premium"], p["enforcement_cost_exponent"])
        if k < N_FENTANYL_CHANNELS:
            if k == CHINA_FINISHED:
                asc = 0.0
            elif k == CHINA_PRECURSOR:
                asc = p["asc_china_precursor"]
            elif k == INDIA_FINISHED:
                asc = p["asc_india_finished"]
            elif k == INDIA_PRECURSOR:
                asc = p["asc_india_precursor"]
            else:
                asc = p["asc_other"]
            know = know_finished if CHANNEL_KNOW_HOW[k] == KNOW_HOW_FINISHED else know_synthesis
            log_v[k] = (asc + math.log(know)
                        - beta / nest * math.log(retail_cost(cost[k], p["retail_markup"])))
    price = nested_logit_shares(log_v, beta, nest, p["fentanyl_nest_preference"],
                                retail_cost(cost[HEROIN], p["retail_markup"]), shares)
    return price, mail, land, heroin


@jit
def shipments_needed(share_of_demand, enforcement, seizure):
    """Shipments (HE kg/yr) a channel aims at so that what arrives is its share of demand: losses
    to source enforcement and to seizure are replaced (Reuter and Kleiman: replacement is a cost
    that the delivered cost, hence the price, carries), not left as a shortfall."""
    return share_of_demand / ((1.0 - min(enforcement, 0.999)) * (1.0 - min(seizure, 0.999)))


@jit
def demand(untreated, in_treatment, price, p):
    """Opioid demand (HE kg/yr): consuming persons x consumption per user x price^elasticity."""
    users = untreated + p["treatment_use_ratio"] * in_treatment
    return users * p["consumption_per_user"] * price ** p["price_elasticity"]


@jit
def fastest_drain_rate(p):
    """Largest first-order rate of any stock (1/yr) of one draw: capacity adjustment, know-how
    diffusion, treatment exits, relapse, remission and treatment seeking (plus 0.5/yr for
    overdose).  Explicit solvers stay stable only while the step times this rate is inside their
    stability interval."""
    rate = max(1.0 / p["capacity_adjustment_time"], p["know_how_finished_rate"],
               p["know_how_synthesis_rate"], 1.0 / p["treatment_duration"])
    rate = max(rate, p["relapse_rate"] + p["background_death_rate"])
    return max(rate, p["remission_rate"] + p["treatment_seeking_rate"] + 0.5)


# --- demand side and overdose ----------------------------------------------------------------

@jit
def treatment_entries(untreated, in_treatment, slots, seeking_rate):
    """MOUD entries (persons/yr): seeking rate x untreated x free share of the slots."""
    free = max(1.0 - in_treatment / max(slots, 1.0), 0.0)
    return seeking_rate * untreated * free


@jit
def product_shares(share, mixing):
    """Shares of use episodes (1): heroin only, heroin adulterated with fentanyl, fentanyl only,
    from the HE fentanyl share and the mixing phi (0 = sold apart, 1 = random mixing); the
    fentanyl content is kept: fentanyl only + half the adulterated = share."""
    f = min(max(share, 0.0), 1.0)
    mix = mixing * f * (1.0 - f)
    return (1.0 - f) - mix, 2.0 * mix, f - mix


@jit
def naloxone_probability(kits_per_year, population, p):
    """Probability naloxone is at hand at an overdose (1): 1 - exp(-c x kits per 100k per yr)."""
    return -math.expm1(-p["naloxone_coefficient"] * max(kits_per_year, 0.0) / population * 1e5)


@jit
def rescue_factor(naloxone, p):
    """Share of overdoses that stay fatal after help (1): 1 - w [1 - (1 - p_nal)(1 - r)]."""
    helped = 1.0 - (1.0 - naloxone) * (1.0 - p["rescue_without_naloxone"])
    return 1.0 - p["witnessed_fraction"] * helped


@jit
def test_strip_factor(strips_per_year, population, p):
    """Multiplier on the incidence of fentanyl-containing products from test-strip use (1)."""
    if strips_per_year <= 0.0:
        return 1.0
    coverage = -math.expm1(-p["test_strip_coefficient"] * strips_per_year / population * 1e5)
    return 1.0 - p["test_strip_max_effect"] * coverage


@jit
def overdose_hazards(common, strips, p):
    """Fatal overdose hazard per use-year of each product (1/yr): heroin only, adulterated heroin,
    fentanyl only.  `common` = incidence x rescue factor x risk environment x consumption term.
    Adulterated heroin has incidence (1 - w) + w kappa and fatality (1 - w) cf_H + w cf_F."""
    kappa = p["fentanyl_incidence_multiplier"] * strips
    w = p["adulterated_risk_weight"]
    cf_h, cf_f = p["case_fatality_heroin"], p["case_fatality_fentanyl"]
    return (common * cf_h, common * ((1.0 - w) + w * kappa) * ((1.0 - w) * cf_h + w * cf_f),
            common * kappa * cf_f)


# --- the right-hand side ---------------------------------------------------------------------

@jit
def evaluate(t, y, p, lv, dy, aux):
    """dy/dt of one draw (stock units per yr) into `dy`, and the reported auxiliaries into `aux`."""
    cost, enforcement, shares = np.empty(N_CHANNELS), np.empty(N_CHANNELS), np.empty(N_CHANNELS)
    price_cost, seize_mail, seize_land, seize_heroin = market(t, y, p, lv, cost, enforcement, shares)
    population = us_population(t)
    potency = p["potency_ratio"]
    untreated = max(y[UNTREATED], 0.0)
    in_treatment = max(y[IN_TREATMENT], 0.0)
    remission = max(y[REMISSION], 0.0)
    users = untreated + p["treatment_use_ratio"] * in_treatment
    wanted = demand(untreated, in_treatment, price_cost, p)

    # supply: each channel's capacity adjusts to its share of demand; the fate of its shipments
    pills = pill_share(t, p)
    product_per_pure = (1.0 / p["purity_mail"],
                        pills / p["purity_pill"] + (1.0 - pills) / p["purity_powder_land"])
    arrived_total, arrived_fentanyl, seized_mail, seized_land = 0.0, 0.0, 0.0, 0.0
    for k in range(N_CHANNELS):
        seizure = channel_seizure(k, seize_mail, seize_land, seize_heroin)
        capacity = max(y[CAPACITY + k], 0.0)
        target = shipments_needed(shares[k] * wanted, enforcement[k], seizure)
        dy[CAPACITY + k] = (target - capacity) / p["capacity_adjustment_time"]
        withheld = capacity * enforcement[k]
        seized = (capacity - withheld) * seizure
        arrived = capacity - withheld - seized
        dy[CUM_OUTPUT + k] = capacity
        dy[CUM_WITHHELD + k] = withheld
        dy[CUM_SEIZED + k] = seized
        dy[CUM_ARRIVALS + k] = arrived
        arrived_total += arrived
        if k < N_FENTANYL_CHANNELS:
            arrived_fentanyl += arrived
            if CHANNEL_ROUTE[k] == MAIL:
                seized_mail += seized / potency * product_per_pure[MAIL]
            else:
                seized_land += seized / potency * product_per_pure[LAND]
        aux[AUX_DELIVERED_COST + k] = cost[k]
        aux[AUX_TARGET_SHARE + k] = shares[k]
        aux[AUX_ARRIVALS + k] = arrived
    dy[CUM_SEIZED_PRODUCT + MAIL] = seized_mail
    dy[CUM_SEIZED_PRODUCT + LAND] = seized_land
    dy[CUM_DEMAND] = wanted
    dy[KH_FINISHED] = logistic_growth(min(max(y[KH_FINISHED], 0.0), 1.0), p["know_how_finished_rate"])
    dy[KH_SYNTHESIS] = logistic_growth(min(max(y[KH_SYNTHESIS], 0.0), 1.0),
                                       p["know_how_synthesis_rate"])

    # the market clears: consumption = arrivals; a shortfall raises the price
    share = arrived_fentanyl / arrived_total if arrived_total > 0.0 else 0.0
    price = price_cost
    if wanted > 0.0 and arrived_total > 0.0:
        price = price_cost * min(max(arrived_total / wanted, 1e-3), 1e3) ** (1.0 / p["price_elasticity"])
    per_user = arrived_total / users if users > 0.0 else 0.0
    intensity = min(per_user / p["consumption_per_user"], 10.0) ** p["od_consumption_exponent"]

    # overdose by product: one formula for the total and the split
    heroin_only, adulterated, fentanyl_only = product_shares(share, p["adulteration_mixing"])
    naloxone = naloxone_probability(lv[NALOXONE_KITS], population, p)
    environment = covid_risk(t, p["covid_shock_size"], p["covid_shock_decay"])
    common = p["overdose_incidence"] * rescue_factor(naloxone, p) * environment * intensity
    hazard_h, hazard_a, hazard_f = overdose_hazards(
        common, test_strip_factor(lv[TEST_STRIPS], population, p), p)
    rate = heroin_only * hazard_h + adulterated * hazard_a + fentanyl_only * hazard_f
    exposed = untreated + p["treatment_overdose_ratio"] * in_treatment
    od_untreated = untreated * rate
    od_in_treatment = exposed * rate - od_untreated

    # people
    initiation = initiation_path(t, p) * (1.0 - lv[PREVENTION])
    entries = treatment_entries(untreated, in_treatment, p["moud_share_illicit"] * lv[MOUD_CAPACITY],
                                p["treatment_seeking_rate"] * lv[TREATMENT_SEEKING])
    exits = in_treatment / p["treatment_duration"]
    to_remission = exits * p["treatment_success_fraction"]
    remitting = p["remission_rate"] * untreated
    relapse = p["relapse_rate"] * remission
    background = p["background_death_rate"]
    dy[UNTREATED] = (initiation + relapse + exits - to_remission - entries - remitting
                     - od_untreated - background * untreated)
    dy[IN_TREATMENT] = entries - exits - od_in_treatment - background * in_treatment
    dy[REMISSION] = remitting + to_remission - relapse - background * remission
    pharma = pharma_fentanyl_deaths(t, p["pharma_fentanyl_deaths_2010"],
                                    p["pharma_fentanyl_deaths_floor"],
                                    p["pharma_fentanyl_decline_rate"])
    dy[CUM_DEATHS_HEROIN_ONLY] = exposed * heroin_only * hazard_h
    dy[CUM_DEATHS_BOTH] = exposed * adulterated * hazard_a
    dy[CUM_DEATHS_FENTANYL_ONLY] = exposed * fentanyl_only * hazard_f
    dy[CUM_OD_DEATHS_IN_TREATMENT] = od_in_treatment
    dy[CUM_DEATHS_PHARMA] = pharma
    dy[CUM_DEATHS_OTHER_SYNTHETIC] = p["background_synthetic_deaths"]
    dy[CUM_DEATHS_BACKGROUND] = background * (untreated + in_treatment + remission)
    dy[CUM_INITIATION] = initiation
    dy[CUM_TREATMENT_ENTRIES] = entries

    # reported auxiliaries
    aux[AUX_POPULATION] = population
    aux[AUX_SEIZURE_PROBABILITY + MAIL] = seize_mail
    aux[AUX_SEIZURE_PROBABILITY + LAND] = seize_land
    aux[AUX_SEIZURE_PROBABILITY_HEROIN] = seize_heroin
    aux[AUX_COST_PRICE_INDEX] = price_cost
    aux[AUX_PRICE_INDEX] = price
    aux[AUX_DEMAND] = wanted
    aux[AUX_HEROIN_ARRIVALS] = aux[AUX_ARRIVALS + HEROIN]
    aux[AUX_FENTANYL_ARRIVALS] = arrived_fentanyl / potency
    aux[AUX_FENTANYL_SHARE] = share
    pharma_reports = p["nflis_pharma_share_2010"] * pharma / p["pharma_fentanyl_deaths_2010"]
    aux[AUX_NFLIS_SHARE] = (fentanyl_only + adulterated + pharma_reports) / (
        1.0 + adulterated + pharma_reports)
    aux[AUX_PRODUCT_SHARE + HEROIN_ONLY] = heroin_only
    aux[AUX_PRODUCT_SHARE + BOTH] = adulterated
    aux[AUX_PRODUCT_SHARE + FENTANYL_ONLY] = fentanyl_only
    aux[AUX_CONSUMPTION_PER_USER] = per_user
    aux[AUX_NALOXONE_PROBABILITY] = naloxone
    aux[AUX_RISK_ENVIRONMENT] = environment
    aux[AUX_OVERDOSE_DEATH_RATE] = rate
    aux[AUX_PILL_SHARE] = pills


@jit
def initial_state(t0, p, lv, y):
    """State of one draw at t0 (1 Jan 2010) into `y`: people and know-how from the parameters,
    each channel's capacity at its share of demand (the market in equilibrium), running totals 0."""
    for i in range(y.size):
        y[i] = 0.0
    y[KH_FINISHED] = p["know_how_finished_2010"]
    y[KH_SYNTHESIS] = p["know_how_synthesis_2010"]
    y[UNTREATED] = p["untreated_2010"]
    y[IN_TREATMENT] = p["in_treatment_2010"]
    y[REMISSION] = p["remission_2010"]
    cost, enforcement, shares = np.empty(N_CHANNELS), np.empty(N_CHANNELS), np.empty(N_CHANNELS)
    price, mail, land, heroin = market(t0, y, p, lv, cost, enforcement, shares)
    wanted = demand(p["untreated_2010"], p["in_treatment_2010"], price, p)
    for k in range(N_CHANNELS):
        y[CAPACITY + k] = shipments_needed(shares[k] * wanted, enforcement[k],
                                           channel_seizure(k, mail, land, heroin))
