"""Funding in dollars for a run: the `funding` section turned into lever levels per draw.  Hydra-free.

A run may spend an extra `total_usd_per_year` (US$/yr, dollars of `costs.dollar_year`) above
history, split over levers by `split` (lever -> share, shares summing to 1), from `start` (yr),
ramped linearly over `ramp` (yr) and, with `end` (yr), back to history over the same ramp:

    spending on lever l         = total_usd_per_year x split[l]                     (US$/yr)
    level of l (mode set)       = history_l(start) + spending_l / cost_per_unit_l   (per draw)

`cost_per_unit_l` is the unit cost of sim/funding/costs.py, sampled per draw over its range when
`costs.sample` is true and the run has an ensemble, and scaled by the draw's own baseline
quantity where the cost says so (`baseline_quantities`: treatment entries, initiation).  Money
beyond a lever's maximum buys nothing: the level stops at the maximum and the draw is counted as
saturated (`funding_saturated`); the dollars still count as spent.

A total of 0, or a split with no lever (the `baseline` scenario), changes nothing: the run is the
unfunded run bit for bit (no intervention is added), so a sweep over amounts has a baseline cell at
every amount.  A lever both funded and set directly (`levers.<name>.level`) is refused.

Every result of `fentsim` carries (`funding_variables`):
    funding_spending (year; US$/yr)           extra spending in each calendar year (ramp included)
    funding_usd_per_year (lever; US$/yr)      the full annual amount on each lever (0: not funded)
    funding_level (lever, draw; lever units)  level bought (NaN: not funded)
    funding_cost_per_unit (lever, draw; US$/yr per lever unit)
    funding_saturated (lever, draw; 1)        1 if the money took the lever past its maximum
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import xarray as xr

from pydantic import Field, field_validator, model_validator

from sim.errors import InputError
from sim.funding.costs import Baseline, CostModel, dollars_to_level
from sim.model.levers import LEVER_SPECS, MIN_RAMP_YR, Lever, LeverSet, intervention_weight
from sim.model.parameters import ModelParameters
from sim.engine.solver import SolverSettings
from sim.schema import Number, Section, known_keys, validate

SHARE_TOLERANCE = 1e-6
Share = Annotated[Number, Field(ge=0, le=1)]


class FundingSection(Section):
    """The `funding` section of a run (see the module doc)."""

    total_usd_per_year: Number = Field(0.0, ge=0, description="a finite number >= 0 (US$/yr; 0 = "
                                                              "no extra spending)")
    split: dict[str, Share] | None = Field(None, description="a mapping lever -> share in [0, 1] "
                                           "of funding.total_usd_per_year (shares sum to 1)")
    start: Number = Field(2020.0, ge=2011, le=2100, description="a year in [2011, 2100]")
    ramp: Number = Field(1.0, ge=MIN_RAMP_YR, description=f"a number of years >= "
                                                          f"{MIN_RAMP_YR:.4g} (one day)")
    end: Number | None = Field(None, description="a year after funding.start, or null")

    @field_validator("split")
    @classmethod
    def _levers(cls, split: dict[str, float] | None) -> dict[str, float]:
        return dict(known_keys("funding.split", split or {}, LEVER_SPECS))

    @model_validator(mode="after")
    def _shares_and_end(self) -> FundingSection:
        shares = {k: v for k, v in (self.split or {}).items() if v > 0}
        if shares and abs(sum(shares.values()) - 1.0) > SHARE_TOLERANCE:
            raise InputError(f"funding.split: shares {shares} sum to {sum(shares.values()):g}; "
                             f"allowed: shares that sum to 1")
        if self.end is not None and not self.end > self.start:
            raise InputError(f"funding.end: value {self.end:g} not allowed; allowed: a year after "
                             f"funding.start ({self.start:g}) or null")
        return self


FUNDING_KEYS = tuple(FundingSection.model_fields)


def baseline_year(start: float, first_year: int = 2010) -> int:
    """The calendar year whose baseline quantities scale the unit costs: the year before `start`."""
    return max(int(math.floor(start)) - 1, first_year)


def baseline_quantities(params: ModelParameters, variables: list[str], start: float,
                        settings: SolverSettings) -> dict[str, np.ndarray]:
    """Each draw's baseline (no intervention) value of `variables` (result variables, per
    calendar year) in the year before `start`: {variable: array over draws}."""
    if not variables:
        return {}
    from sim.results.run import result_dataset  # local: the run layer imports this module's users

    year = baseline_year(start, settings.start_year)
    short = dataclasses.replace(settings, end_year=max(year, settings.start_year + 1),
                                output_step=1.0)
    ds, _ = result_dataset(params, LeverSet.from_mapping({}), short)
    return {v: np.asarray(ds[v].sel(year=year).values, dtype=float).reshape(-1)
            for v in variables}


def spending_by_year(annual: float, years: np.ndarray, start: float, ramp: float,
                     end: float | None) -> np.ndarray:
    """Extra spending in each calendar year (US$/yr) of `annual` US$/yr ramped as the levers are:
    the exact integral of the piecewise-linear ramp over each year."""
    out = np.zeros(len(years))
    if annual == 0:
        return out
    kinks = [start, start + ramp] + ([end, end + ramp] if end is not None else [])
    for i, y in enumerate(np.asarray(years, dtype=float)):
        knots = np.unique(np.clip(np.array([y, y + 1.0, *kinks]), y, y + 1.0))
        w = intervention_weight(knots, start, ramp, end)
        out[i] = annual * float(np.sum(np.diff(knots) * (w[1:] + w[:-1]) / 2.0))
    return out


def portfolio_levels(costs: CostModel, portfolio: Mapping[str, float], spending: np.ndarray,
                     cost_per_unit: Mapping[str, np.ndarray], start: float
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Lever levels (mode set, per row) bought by `spending` (US$/yr per row) split by the
    `portfolio` shares, at the rows' unit costs; money past a lever's maximum buys nothing.

    Returns ({lever: level}, {lever: saturated}) for the levers of the portfolio.
    """
    levels, saturated = {}, {}
    for name, share in portfolio.items():
        amount = np.asarray(spending, dtype=float) * share
        top = costs.max_spending(name, start, cost_per_unit[name])
        saturated[name] = amount > np.asarray(top) * (1 + 1e-12)
        levels[name] = np.asarray(dollars_to_level(name, amount, start, cost_per_unit[name],
                                                   clip=True), dtype=float)
    return levels, saturated


@dataclass(frozen=True)
class FundingPlan:
    """The validated `funding` section of a run, with the unit costs it spends at."""

    total_usd_per_year: float
    split: dict[str, float]
    start: float
    ramp: float
    end: float | None
    costs: CostModel

    @classmethod
    def from_config(cls, funding: Mapping[str, Any] | None, costs: Mapping[str, Any] | None,
                    levers: Mapping[str, Any] | None = None) -> FundingPlan:
        """Validate `funding` (and `costs`); a funded lever also set in `levers` is refused."""
        opts = validate(FundingSection, "funding", funding)
        total, start, ramp, end = opts.total_usd_per_year, opts.start, opts.ramp, opts.end
        split = {k: v for k, v in (opts.split or {}).items() if v > 0}
        cost_model = (CostModel.from_mapping(costs) if (costs or split)
                      else CostModel({}, sample=False))
        for name in split:
            cost_model[name]  # noqa: B018  (InputError: a funded lever needs a unit cost)
            entry = (levers or {}).get(name) or {}
            if isinstance(entry, Mapping) and entry.get("level") is not None:
                raise InputError(f"levers.{name}.level: value {entry['level']!r} set directly and "
                                 f"funded by funding.split.{name}; allowed: one of the two "
                                 f"(levers.{name}.level=null, or no share for {name})")
        return cls(total, split, start, ramp, end, cost_model)

    def note_unspent(self, scenario: str) -> None:
        """Say (log, INFO) that money was given to a scenario that funds no lever, unless it is
        the baseline (a sweep's reference at every amount)."""
        if self.total_usd_per_year > 0 and not self.split and scenario != "baseline":
            logging.getLogger(__name__).info(
                f"funding.total_usd_per_year {self.total_usd_per_year:,.0f} US$/yr buys nothing: "
                f"scenario {scenario!r} funds no lever (funding.split is empty; scenarios in "
                f"dollars: *_funding*)")

    @property
    def active(self) -> bool:
        """True if the plan spends anything (else the run is the unfunded run, bit for bit)."""
        return self.total_usd_per_year > 0 and bool(self.split)

    def check_window(self, settings: SolverSettings) -> None:
        """The funding starts inside the simulated window."""
        if self.active and not settings.t_start <= self.start <= settings.t_end:
            raise InputError(f"funding.start: value {self.start:g} outside the simulated window "
                             f"[{settings.t_start:g}, {settings.t_end:g}] yr")

    def buy(self, params: ModelParameters, levers: LeverSet, settings: SolverSettings,
            seed: int = 0, sample: bool = True, first: int = 0) -> tuple[LeverSet, FundingRecord]:
        """The run's levers with the funded levers' interventions for each draw of `params`
        (draws first.. of the ensemble), and the record of what was bought.  `sample`: unit costs
        drawn per draw (with `costs.sample`), else their central values."""
        n = params.n_draws
        record = FundingRecord.empty(self, n)
        if not self.active:
            return levers, record
        baseline: Baseline = baseline_quantities(
            params, self.costs.baseline_variables(self.split), self.start, settings)
        cpu = {name: self.costs.cost_per_unit(name, n, seed, baseline,
                                              sample=self.costs.sample and sample, first=first)
               for name in self.split}
        levels, saturated = portfolio_levels(self.costs, self.split,
                                             np.full(n, self.total_usd_per_year), cpu, self.start)
        new = dict(levers.levers)
        for name in self.split:
            new[name] = Lever(LEVER_SPECS[name], start=self.start, ramp=self.ramp,
                              level=levels[name], mode="set", end=self.end)
            i = record.lever_index(name)
            record.level[i], record.cost_per_unit[i] = levels[name], cpu[name]
            record.saturated[i] = saturated[name]
        return LeverSet(new), record


@dataclass
class FundingRecord:
    """What a run's funding bought, per lever (LEVER_SPECS order) and draw."""

    plan: FundingPlan
    level: np.ndarray           # (lever, draw) lever units; NaN where not funded
    cost_per_unit: np.ndarray   # (lever, draw) US$/yr per lever unit; NaN where not funded
    saturated: np.ndarray       # (lever, draw) bool

    @classmethod
    def empty(cls, plan: FundingPlan, n_draws: int) -> FundingRecord:
        shape = (len(LEVER_SPECS), n_draws)
        return cls(plan, np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, bool))

    @staticmethod
    def lever_index(name: str) -> int:
        return list(LEVER_SPECS).index(name)

    def usd_per_year(self) -> np.ndarray:
        """Full annual amount on each lever (US$/yr), LEVER_SPECS order."""
        p = self.plan
        return np.array([p.total_usd_per_year * p.split.get(name, 0.0) if p.active else 0.0
                         for name in LEVER_SPECS])


def funding_variables(record: FundingRecord, years: np.ndarray) -> xr.Dataset:
    """The funding variables every result carries (see the module doc), as a dataset to merge."""
    plan = record.plan
    total = plan.total_usd_per_year if plan.active else 0.0
    spending = spending_by_year(total, years, plan.start, plan.ramp, plan.end)
    ds = xr.Dataset(
        {"funding_spending": (("year",), spending),
         "funding_usd_per_year": (("lever",), record.usd_per_year()),
         "funding_level": (("lever", "draw"), record.level),
         "funding_cost_per_unit": (("lever", "draw"), record.cost_per_unit),
         "funding_saturated": (("lever", "draw"), record.saturated.astype(float))},
        coords={"year": np.asarray(years), "lever": list(LEVER_SPECS),
                "lever_units": ("lever", [LEVER_SPECS[n].units for n in LEVER_SPECS])})
    window = (f"from {plan.start:g} over a {plan.ramp:g}-yr ramp"
              + (f", back to history from {plan.end:g}" if plan.end is not None else ""))
    attrs = {
        "funding_spending": ("US$/yr", f"extra spending above history in the calendar year "
                                       f"(funding, {window}; US$ of {plan.costs.dollar_year})"),
        "funding_usd_per_year": ("US$/yr", "full extra annual spending on each lever (funding."
                                           "total_usd_per_year x funding.split; 0: not funded)"),
        "funding_level": ("see lever_units", "lever level bought by the funding (mode set; NaN: "
                                             "lever not funded)"),
        "funding_cost_per_unit": ("US$/yr per lever unit", "unit cost of one unit of the lever "
                                                           "in this draw (NaN: not funded)"),
        "funding_saturated": ("1", "1 if the funding took the lever past its maximum (the rest "
                                   "bought nothing)"),
    }
    for name, (units, long_name) in attrs.items():
        # a level's units differ by lever: no CF `units` (one UDUNITS string), the label says where
        ds[name].attrs.update({"units" if units != "see lever_units" else "units_label": units,
                               "long_name": long_name})
    ds["lever"].attrs.update(units="1", long_name="policy lever (sim/model/levers.py)")
    ds["lever_units"].attrs.update(units="1", long_name="units of each lever's level")
    return ds
