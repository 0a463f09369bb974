"""Unit costs that turn annual spending (US$/yr) into lever levels, per draw.  Hydra-free.

Every lever has a unit cost (configs/costs/default.yaml: central value, range, units, source or
"assumption").  The conversion is linear and exact in both directions:

    level   = history(start) + spending / cost_per_unit        (lever in mode 'set')
    spending = (level - history(start)) * cost_per_unit          (US$/yr)
    cost_per_unit = cost * per_unit                              (US$/yr per unit of the lever)

`per_unit` converts the costed item into one unit of the lever.  It is a number, or
`{baseline: <variable>}`: the value of that result variable in the draw's own baseline in the year
before the intervention starts (e.g. outreach is costed per treatment entry and bought as a
multiplier of treatment seeking, so one unit of the multiplier costs `cost` x the draw's baseline
MOUD entries a year; prevention is costed per initiation averted and bought as a share of
initiation).  These baseline quantities come from the model (`sim.funding.plan.baseline_quantities`),
never from one calibration's numbers, so the conversion holds under any parameter set.

`history(start)` is the lever's historical value when the intervention starts (every historical
path is flat from 2020 on), so spending is the *extra* annual spending above history.  Costs and
spending may be arrays over draws (unit-cost uncertainty sampled per draw).  A spending that takes a
lever beyond its allowed range is an InputError naming the lever, the spending and the maximum (or,
with `clip`, the maximum: the rest buys nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pydantic import Field, field_validator, model_validator

from sim.errors import InputError
from sim.model.levers import LEVER_SPECS, Lever
from sim.schema import Integer, Number, Section, Text, known_keys, validate

COST_KEYS = ("cost", "low", "high", "units", "per_unit", "source")
# result variables a unit cost may be scaled by (per draw, in the year before the start)
BASELINE_QUANTITIES = {"treatment_entries": "persons/yr", "initiation": "persons/yr"}
Baseline = Mapping[str, np.ndarray]   # variable -> value per draw (units of BASELINE_QUANTITIES)
CONFIG_KEYS = ("sample", "dollar_year", "levers")
# each lever's side is declared once, in its LeverSpec
SUPPLY_LEVERS = tuple(name for name, spec in LEVER_SPECS.items() if spec.side == "supply")
DEMAND_LEVERS = tuple(name for name, spec in LEVER_SPECS.items() if spec.side == "demand")


def side(lever: str) -> str:
    """'supply' or 'demand' (LeverSpec.side)."""
    return LEVER_SPECS[lever].side


PER_UNIT_ALLOWED = (f"a number > 0 or {{baseline: VARIABLE}} with VARIABLE one of "
                    f"{', '.join(BASELINE_QUANTITIES)}")


class PerBaseline(Section):
    """`per_unit: {baseline: VARIABLE}`: one unit of the lever costs `cost` x that baseline quantity."""

    baseline: str


class CostEntry(Section):
    """One lever's unit cost in the `costs` config (US$ of `dollar_year` per `units`)."""

    cost: Number = Field(gt=0, description="a number > 0")
    low: Number | None = Field(None, gt=0, description="a number > 0")
    high: Number | None = Field(None, gt=0, description="a number > 0")
    units: Text = Field(description="text (units of the cost)")
    per_unit: Number | PerBaseline = Field(1.0, description=PER_UNIT_ALLOWED)
    source: Text = Field(description="text (the cost's source or 'assumption')")

    @field_validator("per_unit", mode="before")
    @classmethod
    def _per_unit(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and (set(value) != {"baseline"}
                                           or value.get("baseline") not in BASELINE_QUANTITIES):
            raise ValueError(PER_UNIT_ALLOWED)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not value > 0:
            raise ValueError(PER_UNIT_ALLOWED)
        return value

    @property
    def low_or_cost(self) -> float:
        return self.cost if self.low is None else self.low

    @property
    def high_or_cost(self) -> float:
        return self.cost if self.high is None else self.high

    @model_validator(mode="after")
    def _cost_in_range(self) -> CostEntry:
        if not self.low_or_cost <= self.cost <= self.high_or_cost:
            raise InputError(f"cost: value {self.cost:g} outside its range [low "
                             f"{self.low_or_cost:g}, high {self.high_or_cost:g}]")
        return self


class CostsSection(Section):
    """The `costs` config section (configs/costs/*.yaml)."""

    sample: bool = Field(True, description="true, false")
    dollar_year: Integer = Field(2020, ge=1900, le=2100, description="a year, e.g. 2020")
    levers: dict[str, CostEntry] = Field(description="a mapping lever -> {" + ", ".join(COST_KEYS) + "}")

    @field_validator("levers", mode="before")
    @classmethod
    def _levers(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or not value:
            raise InputError(f"costs.levers: value {value!r} not allowed; allowed: a mapping "
                             f"lever -> {{{', '.join(COST_KEYS)}}}")
        return dict(known_keys("costs.levers", value, LEVER_SPECS))


@dataclass(frozen=True)
class UnitCost:
    """Unit cost of one lever: central value and range (in `units`), conversion factor, source."""

    lever: str
    cost: float
    low: float
    high: float
    units: str
    per_unit: float
    source: str
    per_baseline: str | None = None   # a BASELINE_QUANTITIES variable scaling per_unit per draw

    @property
    def cost_per_unit(self) -> float:
        """US$/yr for one unit of the lever (central cost); needs no baseline quantity."""
        if self.per_baseline is not None:
            raise ValueError(f"{self.lever}: its cost per unit scales with the draw's baseline "
                             f"{self.per_baseline}; use CostModel.cost_per_unit(..., baseline=)")
        return self.cost * self.per_unit

    @property
    def lever_units(self) -> str:
        return LEVER_SPECS[self.lever].units


@dataclass(frozen=True)
class CostModel:
    """Unit costs of every costed lever, and whether their ranges are sampled per draw."""

    costs: dict[str, UnitCost]
    sample: bool = True
    dollar_year: int = 2020

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> CostModel:
        """Build from the `costs` config section (declared by `CostsSection`); unknown keys and
        bad values are one-line InputErrors."""
        section = validate(CostsSection, "costs", cfg)
        costs = {name: UnitCost(name, e.cost, e.low_or_cost, e.high_or_cost, e.units,
                                e.per_unit if isinstance(e.per_unit, float) else 1.0, e.source,
                                e.per_unit.baseline if isinstance(e.per_unit, PerBaseline) else None)
                 for name, e in section.levers.items()}
        return cls(costs, section.sample, section.dollar_year)

    def __getitem__(self, lever: str) -> UnitCost:
        if lever not in self.costs:
            raise InputError(f"lever {lever!r}: no unit cost in the costs config; allowed: "
                             f"{', '.join(self.costs)}")
        return self.costs[lever]

    def baseline_variables(self, levers: Iterable[str] | None = None) -> list[str]:
        """The baseline quantities (BASELINE_QUANTITIES) the unit costs of `levers` (default:
        every costed lever) scale with."""
        names = self.costs if levers is None else levers
        return sorted({self[n].per_baseline for n in names if self[n].per_baseline is not None})

    def cost_per_unit(self, lever: str, n_draws: int = 1, seed: int = 0,
                      baseline: Baseline | None = None, sample: bool | None = None,
                      first: int = 0) -> np.ndarray:
        """US$/yr per unit of `lever` for draws first..first + n_draws - 1 of an ensemble: central
        value, or uniform in [low, high] (`sample`, default the config's `sample`), times
        per_unit and, for a lever costed per baseline quantity, the draw's `baseline` value of it
        (see the module doc).

        Draw i's sample depends only on (seed, lever, i), so every policy sees the same costs and a
        chunk of an ensemble gets the costs of those draws in the whole ensemble.
        """
        uc = self[lever]
        if self.sample if sample is None else sample:
            stream = np.random.default_rng([seed, sorted(LEVER_SPECS).index(lever)])
            out = stream.uniform(uc.low, uc.high, first + n_draws)[first:] * uc.per_unit
        else:
            out = np.full(n_draws, uc.cost * uc.per_unit)
        if uc.per_baseline is not None:
            if baseline is None or uc.per_baseline not in baseline:
                raise ValueError(f"{lever}: needs the draws' baseline {uc.per_baseline}")
            quantity = np.asarray(baseline[uc.per_baseline], dtype=float)
            if np.any(~(quantity > 0)):
                raise InputError(f"costs.levers.{lever}.per_unit: the baseline {uc.per_baseline} "
                                 f"is {float(np.min(quantity)):g} {BASELINE_QUANTITIES[uc.per_baseline]} "
                                 f"in some draw; allowed: a positive quantity to scale by")
            out = out * quantity
        return out

    def levels(self, lever: str, spending: Any, start: float, cost_per_unit: Any = None,
               clip: bool = False) -> Any:
        """Lever level (mode 'set') bought by annual `spending` (US$/yr) from year `start`."""
        cpu = self[lever].cost_per_unit if cost_per_unit is None else cost_per_unit
        return dollars_to_level(lever, spending, start, cpu, clip)

    def spending(self, lever: str, level: Any, start: float, cost_per_unit: Any = None) -> Any:
        """Annual spending (US$/yr) that buys lever `level` (mode 'set') from year `start`."""
        cpu = self[lever].cost_per_unit if cost_per_unit is None else cost_per_unit
        return level_to_dollars(lever, level, start, cpu)

    def max_spending(self, lever: str, start: float, cost_per_unit: Any = None) -> Any:
        """Largest annual spending (US$/yr, per draw if costs are) the lever can absorb."""
        cpu = self[lever].cost_per_unit if cost_per_unit is None else cost_per_unit
        return level_to_dollars(lever, LEVER_SPECS[lever].bounds[1], start, cpu)


def history_at(lever: str, start: float) -> float:
    """The lever's historical value at `start` (yr)."""
    if lever not in LEVER_SPECS:
        raise InputError(f"lever {lever!r}: unknown; allowed: {', '.join(LEVER_SPECS)}")
    return Lever(LEVER_SPECS[lever]).history_at(float(start))


def dollars_to_level(lever: str, spending: Any, start: float, cost_per_unit: Any,
                     clip: bool = False) -> Any:
    """Lever level (mode 'set', lever units) bought by extra annual `spending` (US$/yr).

    Beyond the lever's maximum: an InputError, or with `clip` the maximum (the rest buys nothing).
    """
    spending = np.asarray(spending, dtype=float)
    if np.any(~np.isfinite(spending)) or np.any(spending < 0):
        raise InputError(f"spending on {lever}: value {spending.min():g} not allowed; allowed: a "
                         f"finite number >= 0 US$/yr")
    level = history_at(lever, start) + spending / np.asarray(cost_per_unit, dtype=float)
    hi = LEVER_SPECS[lever].bounds[1]
    if clip:
        level = np.minimum(level, hi)
    elif np.any(level > hi):
        most = float(np.min(level_to_dollars(lever, hi, start, cost_per_unit)))
        raise InputError(f"spending on {lever}: value {float(np.max(spending)):,.0f} US$/yr takes "
                         f"the lever above its maximum {hi:g} {LEVER_SPECS[lever].units}; allowed: "
                         f"at most {most:,.0f} US$/yr")
    return level if level.ndim else float(level)


def level_to_dollars(lever: str, level: Any, start: float, cost_per_unit: Any) -> Any:
    """Extra annual spending (US$/yr) that buys lever `level` (mode 'set', lever units)."""
    level = np.asarray(level, dtype=float)
    base = history_at(lever, start)
    if np.any(level < base):
        raise InputError(f"level of {lever}: value {float(np.min(level)):g} below its history "
                         f"{base:g} {LEVER_SPECS[lever].units} at {start:g}; allowed: >= history "
                         f"(spending cannot be negative)")
    out = (level - base) * np.asarray(cost_per_unit, dtype=float)
    return out if out.ndim else float(out)


def total_spending(annual: Any, start: float, ramp: float, end_year: int) -> Any:
    """Spending (US$) from `start` to the end of `end_year` on a lever ramped linearly over `ramp` yr.

    The lever (and so its extra spending) rises linearly from 0 to `annual` over the ramp, then
    stays: total = annual * (end_year + 1 - start - ramp / 2), for a ramp that ends inside the window.
    """
    years = float(end_year + 1) - float(start) - float(ramp) / 2.0
    if years <= 0:
        raise InputError(f"window end {end_year}: before the intervention ramp ends "
                         f"(start {start:g}, ramp {ramp:g} yr)")
    return np.asarray(annual, dtype=float) * years
