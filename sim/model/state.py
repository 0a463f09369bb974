"""Named layout of the state vector: every stock is reached by name, never by a bare index.

The state of a batch is a 2-D array (n_state, n_draws); `StateLayout.unpack` returns views shaped
(*dims, n_draws) for each stock, and `pack` does the reverse.  The flat vector handed to
`scipy.integrate.solve_ivp` is that array raveled in C order.

Supply runs through CHANNELS, each a (source, form, route): China's finished fentanyl by mail,
China's precursors to synthesis in Mexico and then over land, India likewise, other producers over
land, and heroin (Mexico, Colombia) over land.  Capacities and flows of channels are in
heroin-equivalent (HE) kg: fentanyl kg x potency (the article's 50), heroin kg as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Channel:
    """One supply channel: where it starts, what it carries and how it reaches the US."""

    name: str
    source: str      # china, india, other, mexico_colombia
    form: str        # finished (fentanyl), precursor (synthesised in Mexico), heroin
    route: str       # mail (international mail and express) or land (southwest ports of entry)
    know_how: str    # which diffusion stock opens it: finished, synthesis or none
    doc: str
    enforcement_lever: str   # the lever (sim/model/levers.py) withholding this channel at source
    constant: str | None     # the parameter (sim/model/parameters.py) that is its alternative-
    #   specific constant in the fentanyl nest of the choice model (1, log attractiveness);
    #   None: the nest's reference channel (constant 0) or heroin (outside the nest)


CHANNELS: tuple[Channel, ...] = (
    Channel("china_finished_mail", "china", "finished", "mail", "finished",
            "finished fentanyl made in China, sent by international mail or express consignment",
            "enforcement_china_finished", None),
    Channel("china_precursor_land", "china", "precursor", "land", "synthesis",
            "Chinese precursors (NPP, ANPP, 4-AP, ...) -> synthesis in Mexico -> land ports",
            "enforcement_china_precursor", "asc_china_precursor"),
    Channel("india_finished_mail", "india", "finished", "mail", "finished",
            "finished fentanyl from India's chemical industry, mail or express",
            "enforcement_india_finished", "asc_india_finished"),
    Channel("india_precursor_land", "india", "precursor", "land", "synthesis",
            "Indian precursors -> synthesis in Mexico -> land ports",
            "enforcement_india_precursor", "asc_india_precursor"),
    Channel("other_land", "other", "finished", "land", "synthesis",
            "other producers (synthesis from other precursor sources), over land",
            "enforcement_other", "asc_other"),
    Channel("heroin_land", "mexico_colombia", "heroin", "land", "none",
            "heroin from Mexico (and Colombia), over land",
            "enforcement_heroin", None),
)
CHANNEL_NAMES = tuple(c.name for c in CHANNELS)
FENTANYL_CHANNELS = tuple(c.name for c in CHANNELS if c.form != "heroin")
SOURCES = ("china", "india", "other")          # sources of fentanyl
ROUTES = ("mail", "land")
PRODUCTS = ("heroin_only", "heroin_with_fentanyl", "fentanyl_only")
DIM_SIZES = {"channel": len(CHANNELS), "route": len(ROUTES), "product": len(PRODUCTS)}
assert CHANNELS[-1].form == "heroin" and all(c.form != "heroin" for c in CHANNELS[:-1])
assert CHANNELS[-1].constant is None, "heroin is outside the fentanyl nest: no constant"


STOCK_KINDS = ("physical", "total")
# what the solver's absolute tolerance treats each unit as (solver.SolverSettings.atol_vector);
# a stock in units missing here is an error at import, not a silent guess
TOLERANCE_CLASS = {"HE kg/yr": "mass", "HE kg": "mass", "kg": "mass", "kg/yr": "mass",
                   "1": "fraction", "persons": "people", "deaths": "people", "1/yr": "fraction"}


@dataclass(frozen=True)
class Stock:
    """One stock (or reported variable): name, dimensions (besides draw), units, meaning and kind:
    'physical' (a level the flows read: supply capacity, know-how, people) or 'total' (a running
    total of a flow, read by nobody inside the model; calendar-year outputs are its differences)."""

    name: str
    dims: tuple[str, ...]
    units: str
    doc: str
    kind: str = "physical"

    def __post_init__(self) -> None:
        assert self.kind in STOCK_KINDS and self.units in TOLERANCE_CLASS, self

    @property
    def tolerance_class(self) -> str:
        """'mass', 'people' or 'fraction': which absolute tolerance the solver applies."""
        return TOLERANCE_CLASS[self.units]

    @property
    def size(self) -> int:
        return int(np.prod([DIM_SIZES[d] for d in self.dims], dtype=int))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(DIM_SIZES[d] for d in self.dims)


# Physical stocks first (the flows read only them), running totals after.
STOCKS: tuple[Stock, ...] = (
    Stock("capacity", ("channel",), "HE kg/yr",
          "shipments of each channel toward the US market (heroin-equivalent kg per year)"),
    Stock("know_how_finished", (), "1", "diffusion of the finished-fentanyl mail trade (0-1)"),
    Stock("know_how_synthesis", (), "1",
          "diffusion of fentanyl synthesis in Mexico from imported precursors, pill pressing (0-1)"),
    Stock("untreated", (), "persons", "people with opioid use disorder using illicit opioids, untreated"),
    Stock("high_risk", (), "persons",
          "the part of `untreated` at high overdose risk (depleted by deaths, replenished by entries)"),
    Stock("in_treatment", (), "persons", "people of that population in MOUD"),
    Stock("remission", (), "persons", "people in remission"),
    Stock("cum_output", ("channel",), "HE kg", "cumulative shipments by channel", kind="total"),
    Stock("cum_withheld", ("channel",), "HE kg",
          "cumulative shipments withheld by source-country enforcement", kind="total"),
    Stock("cum_seized", ("channel",), "HE kg", "cumulative US seizures (pure) by channel", kind="total"),
    Stock("cum_seized_product", ("route",), "kg",
          "cumulative gross weight of fentanyl product seized (powder and pills, as CBP reports)", kind="total"),
    Stock("cum_arrivals", ("channel",), "HE kg", "cumulative arrivals on the US retail market", kind="total"),
    Stock("cum_demand", (), "HE kg", "cumulative demand at the cost-based price", kind="total"),
    Stock("cum_deaths_heroin_only", (), "deaths", "overdose deaths from heroin-only product", kind="total"),
    Stock("cum_deaths_both", (), "deaths",
          "overdose deaths from heroin adulterated with fentanyl (both involved)", kind="total"),
    Stock("cum_deaths_fentanyl_only", (), "deaths", "overdose deaths from fentanyl-only product", kind="total"),
    Stock("cum_od_deaths_in_treatment", (), "deaths",
          "part of the overdose deaths above among people in MOUD", kind="total"),
    Stock("cum_deaths_pharma_fentanyl", (), "deaths",
          "deaths from diverted pharmaceutical fentanyl (exogenous path)", kind="total"),
    Stock("cum_deaths_other_synthetic", (), "deaths",
          "deaths from synthetic opioids other than fentanyl (exogenous constant)", kind="total"),
    Stock("cum_deaths_background", (), "deaths", "non-overdose deaths of the modelled population", kind="total"),
    Stock("cum_initiation", (), "persons", "cumulative initiation", kind="total"),
    Stock("cum_treatment_entries", (), "persons", "cumulative MOUD entries", kind="total"),
)


class StateLayout:
    """Maps stock names to row slices of the (n_state, n_draws) state array."""

    def __init__(self, stocks: tuple[Stock, ...] = STOCKS) -> None:
        self.stocks = {s.name: s for s in stocks}
        self.shapes = {s.name: s.shape for s in stocks}
        self.slices: dict[str, slice] = {}
        offset = 0
        for s in stocks:
            self.slices[s.name] = slice(offset, offset + s.size)
            offset += s.size
        self.size = offset

    def unpack(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Views of each stock shaped (*dims, n_draws) (or (*dims, n_draws, n_times) for 3-D y)."""
        rest = y.shape[1:]
        return {name: y[sl].reshape(self.shapes[name] + rest) for name, sl in self.slices.items()}

    def pack(self, parts: dict[str, np.ndarray], n_draws: int) -> np.ndarray:
        """Assemble a (n_state, n_draws) array from per-stock arrays (broadcast as needed)."""
        out = np.empty((self.size, n_draws))
        missing = set(self.slices) - set(parts)
        if missing:
            raise KeyError(f"no value for stocks {sorted(missing)}")
        for name, sl in self.slices.items():
            out[sl].reshape(self.shapes[name] + (n_draws,))[...] = parts[name]
        return out


LAYOUT = StateLayout()
