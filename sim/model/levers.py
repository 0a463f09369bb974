"""Policy levers: each a function of time built from a historical path plus an optional intervention.

A lever's value is its historical path (piecewise-linear between dated points, flat outside) until
the intervention starts; over `ramp` years it moves linearly to the intervention target, where it
stays.  The target is `level` itself (mode 'set') or `level` times the historical path (mode
'scale').  The dates where the path has a kink are exposed as `breakpoints` so the solver can stop
and restart there instead of stepping over them blindly.  `level`, `start` and `ramp` may be arrays
over draws (for sweeps and sensitivity analysis inside one batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import InputError, reject_unknown_keys

MODES = ("scale", "set")


DAY_YR = 1.0 / 365.0   # one day (yr; the model's years have 365 days)
START_RANGE_YR = (1900.0, 2100.0)   # an intervention's start and end: runs end by 2100
MAX_RAMP_YR = 100.0    # longest ramp (yr): a longer one never leaves history within any run
MIN_RAMP_YR = DAY_YR   # shortest ramp: shorter ones are steps the solver cannot resolve (0 likewise)

def intervention_weight(t: Any, start: Any, ramp: Any, end: Any = None) -> np.ndarray:
    """Share (1) of an intervention in effect at time t (yr): 0 before `start`, rising linearly
    to 1 over `ramp` (yr) and, with `end`, back to 0 over the same ramp from `end`."""
    weight = np.clip((t - np.asarray(start)) / np.asarray(ramp), 0.0, 1.0)
    if end is not None:
        weight = np.minimum(weight, np.clip((np.asarray(end) + np.asarray(ramp) - t)
                                            / np.asarray(ramp), 0.0, 1.0))
    return weight


SIDES = ("supply", "demand")


@dataclass(frozen=True)
class LeverSpec:
    """Everything about one lever, declared once: units, meaning, allowed range, historical path
    (year, value), source; its side (supply or demand), the mode an intervention takes unless it
    says otherwise, and the range the which-lever study explores (in that mode's units: the value
    for 'set', a multiple of history for 'scale'; None: not studied).  The config's lever block,
    the funding's supply/demand split and the study's lever ranges are derived from these; the
    unit cost of each lever lives in configs/costs (data with sources, keyed by lever name)."""

    name: str
    units: str
    doc: str
    bounds: tuple[float, float]
    history: tuple[tuple[float, float], ...]
    source: str
    side: str
    default_mode: str
    study_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        assert self.side in SIDES and self.default_mode in MODES, self


LEVER_SPECS: dict[str, LeverSpec] = {spec.name: spec for spec in [
    LeverSpec('enforcement_china_finished', '1',
              "share of China's finished-fentanyl exports to the US withheld by Chinese enforcement",
              (0.0, 0.999),
              ((2010.0, 0.0), (2019.33, 0.0), (2019.75, 0.3)),
              'event: China scheduled all fentanyl-related substances as a class on 1 May 2019 (article; events file). Effect 0.3 reached over 5 months is a stated assumption (range 0.1-0.5)',
              side='supply', default_mode='set', study_range=(0.3, 0.9)),
    LeverSpec('enforcement_china_precursor', '1',
              "share of China's precursor exports (to Mexican synthesis) withheld by Chinese enforcement",
              (0.0, 0.999),
              ((2010.0, 0.0), (2018.08, 0.0), (2018.33, 0.15)),
              'event: NPP and ANPP placed under national control Feb 2018 (events file). Effect 0.15 is a stated assumption: traffickers moved to uncontrolled pre-precursors (4-AP, 1-boc-4-AP)',
              side='supply', default_mode='set', study_range=(0.15, 0.9)),
    LeverSpec('enforcement_india_finished', '1',
              "share of India's finished-fentanyl exports withheld by Indian enforcement",
              (0.0, 0.999),
              ((2010.0, 0.0),),
              'no enforcement in the baseline',
              side='supply', default_mode='set', study_range=(0.0, 0.9)),
    LeverSpec('enforcement_india_precursor', '1',
              "share of India's precursor exports withheld",
              (0.0, 0.999),
              ((2010.0, 0.0),),
              'no enforcement in the baseline',
              side='supply', default_mode='set'),
    LeverSpec('enforcement_other', '1',
              "share of other producers' output withheld",
              (0.0, 0.999),
              ((2010.0, 0.0),),
              'no enforcement in the baseline',
              side='supply', default_mode='set', study_range=(0.0, 0.5)),
    LeverSpec('enforcement_heroin', '1',
              'share of heroin production for the US withheld (eradication etc.)',
              (0.0, 0.999),
              ((2010.0, 0.0),),
              '0 = heroin enforcement as it happened (in the cost base)',
              side='supply', default_mode='set'),
    LeverSpec('interdiction_mail', '1',
              'mail/express screening effort relative to the historical path (multiplies the seizure hazard)',
              (0.0, 1000.0),
              ((2010.0, 1.0),),
              '1 = as it happened',
              side='supply', default_mode='scale', study_range=(1.0, 5.0)),
    LeverSpec('interdiction_land', '1',
              'land-port interdiction effort relative to the historical path',
              (0.0, 1000.0),
              ((2010.0, 1.0),),
              '1 = as it happened',
              side='supply', default_mode='scale', study_range=(1.0, 5.0)),
    LeverSpec('naloxone_kits', 'kits/yr',
              'naloxone kits distributed in the US per year',
              (0.0, 1000000000.0),
              ((2010.0, 50000.0), (2013.0, 141502.0), (2016.0, 573797.0), (2018.0, 1500486.0), (2019.0, 1931149.0), (2020.0, 2303624.0),
               (2021.0, 2600000.0), (2022.0, 3000000.0), (2023.0, 3500000.0), (2023.67, 3800000.0), (2024.5, 5000000.0)),
              'FDA SOURCE data (harm-reduction programs + IQVIA) to 2020; 2010 value an assumption. 2021-2024 is a BOUNDED ASSUMPTION, not data: '
              'community distribution funded by opioid-settlement money grows 2022-2024 and FDA approved 4 mg nasal naloxone without prescription '
              '(29 Mar 2023; on retail shelves Sept 2023, events file), so kits grow ~15 %/yr to 2023 and faster once sold over the counter; '
              'central path 2.6 M (2021), 3.0 M (2022), 3.5 M (2023), 3.8 M (Sept 2023), 5.0 M (mid 2024), held after; bounds of the 2024 level '
              '3.5-7 M kits/yr; the uncertainty of its effect is carried by the naloxone_coefficient prior',
              side='demand', default_mode='scale', study_range=(1.0, 4.0)),
    LeverSpec('test_strips', 'strips/yr',
              'fentanyl test strips distributed per year',
              (0.0, 10000000000.0),
              ((2010.0, 0.0),),
              'assumption: negligible distribution in the historical window',
              side='demand', default_mode='set', study_range=(0.0, 2.0e7)),
    LeverSpec('moud_capacity', 'persons',
              'national MOUD capacity (buprenorphine + methadone patients)',
              (0.0, 100000000.0),
              ((2010.0, 950000.0), (2013.0, 1104584.0), (2017.0, 1443820.0)),
              'IQVIA and N-SSATS via SOURCE data (774,276 bup + 330,308 methadone 2013; 1,113,512 bup 2017, methadone held at 2013); 2010 an assumption; flat after 2017 (the April 2021 buprenorphine practice-guideline exemption is not quantified in the data)',
              side='demand', default_mode='scale', study_range=(1.0, 2.0)),
    LeverSpec('treatment_seeking', '1',
              'treatment seeking (outreach) relative to the historical rate',
              (0.0, 100.0),
              ((2010.0, 1.0),),
              '1 = as it happened',
              side='demand', default_mode='scale', study_range=(1.0, 3.0)),
    LeverSpec('prevention', '1',
              'share of initiation averted by prevention',
              (0.0, 1.0),
              ((2010.0, 0.0),),
              '0 = no prevention beyond history',
              side='demand', default_mode='set', study_range=(0.0, 0.4)),
]}


@dataclass(frozen=True, eq=False)
class Lever:
    """A lever's historical path plus an optional intervention (start, ramp, level, mode)."""

    spec: LeverSpec
    start: Any = None          # yr (scalar or array over draws); None = no intervention
    ramp: Any = 1.0            # yr from start to full level
    level: Any = None          # target value (mode 'set') or multiplier of history (mode 'scale')
    mode: str | None = None    # None: the lever's declared default mode (LeverSpec.default_mode)
    end: Any = None            # yr: from here back to history over `ramp` (None = permanent)
    _knots: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        name = f"levers.{self.spec.name}"
        if self.mode is None:
            object.__setattr__(self, "mode", self.spec.default_mode)
        if self.mode not in MODES:
            raise InputError(f"{name}.mode: value {self.mode!r} not allowed; allowed: {', '.join(MODES)}")
        years = np.array([y for y, _ in self.spec.history], dtype=float)
        values = np.array([v for _, v in self.spec.history], dtype=float)
        object.__setattr__(self, "_knots", (years, values))
        if (self.start is None) != (self.level is None):
            missing = "level" if self.level is None else "start"
            raise InputError(f"{name}.{missing}: required when an intervention is given "
                             f"(set both start and level, or neither)")
        if self.start is None:
            if self.end is not None:
                raise InputError(f"{name}.end: value {self.end!r} not allowed without start; "
                                 f"allowed: null, or set start and level")
            return
        for key in ("start", "ramp", "level") + (("end",) if self.end is not None else ()):
            value = np.asarray(getattr(self, key), dtype=float)
            if not np.all(np.isfinite(value)):
                raise InputError(f"{name}.{key}: value {getattr(self, key)!r} is not a finite number")
            object.__setattr__(self, key, value if value.ndim else float(value))
        if self.end is not None and np.any(np.asarray(self.end) < np.asarray(self.start)):
            raise InputError(f"{name}.end: value {np.min(self.end):g} before start "
                             f"{np.max(self.start):g}; allowed: end >= start (yr)")
        if np.any(np.asarray(self.ramp) <= 0):
            raise InputError(f"{name}.ramp: value {np.min(self.ramp):g} must be > 0 yr "
                             f"(a step the solver cannot see is not allowed)")
        for key in ("start", "end"):
            value = getattr(self, key)
            if value is not None and np.any((np.asarray(value) < START_RANGE_YR[0])
                                            | (np.asarray(value) > START_RANGE_YR[1])):
                raise InputError(f"{name}.{key}: value {np.max(value):g} not allowed (outside any "
                                 f"run: the lever would never leave history); allowed: "
                                 f"{START_RANGE_YR[0]:g} to {START_RANGE_YR[1]:g} (yr)")
        if np.any(np.asarray(self.ramp) > MAX_RAMP_YR):
            raise InputError(f"{name}.ramp: value {np.max(self.ramp):g} not allowed (the lever "
                             f"would never leave history); allowed: > 0 to {MAX_RAMP_YR:g} yr")
        if self.mode == "scale" and not np.any(values):
            raise InputError(f"{name}.mode: value 'scale' not allowed for a lever whose history is "
                             f"zero (any multiple of it is zero: the baseline); allowed: mode set "
                             f"with level in [{self.spec.bounds[0]:g}, {self.spec.bounds[1]:g}] "
                             f"{self.spec.units}")
        lo, hi = self.spec.bounds
        targets = np.asarray(self.level) * (values.max() if self.mode == "scale" else 1.0)
        if self.mode == "scale" and np.any(np.asarray(self.level) < 0):
            raise InputError(f"{name}.level: multiplier {np.min(self.level):g} must be >= 0")
        if self.mode == "set" and np.any((targets < lo) | (targets > hi)):
            bad = targets[(targets < lo) | (targets > hi)].reshape(-1)[0]
            raise InputError(f"{name}.level: value {bad:g} outside allowed range "
                             f"[{lo:g}, {hi:g}] {self.spec.units}")
        if self.mode == "scale" and self.spec.bounds[1] < np.max(targets):
            raise InputError(f"{name}.level: multiplier {np.max(self.level):g} takes the lever above "
                             f"its allowed maximum {hi:g} {self.spec.units}")

    def history_at(self, t: float) -> float:
        """Historical path at time t (yr), piecewise linear, flat outside the dated points."""
        years, values = self._knots
        return float(np.interp(t, years, values))

    def __call__(self, t: float) -> np.ndarray | float:
        """Lever value at time t (yr); an array over draws if the intervention varies by draw."""
        base = self.history_at(t)
        if self.start is None:
            return base
        weight = intervention_weight(t, self.start, self.ramp, self.end)
        target = self.level if self.mode == "set" else np.asarray(self.level) * base
        value = base + weight * (target - base)
        return value if np.ndim(value) else float(value)

    def breakpoints(self) -> list[float]:
        """Dates (yr) where the path has a kink: history points and intervention start/end."""
        points = [y for y, _ in self.spec.history]
        if self.start is not None:
            dates = [np.unique(np.asarray(d, dtype=float)) for d in self.kink_dates()]
            if sum(d.size for d in dates) <= 64:  # many per-draw dates: leave them to error control
                points += [x for d in dates for x in d.tolist()]
        return points

    def kink_dates(self) -> list[Any]:
        """The intervention's kinks (yr, scalars or arrays over draws): start, start + ramp and,
        for a temporary one, end and end + ramp."""
        if self.start is None:
            return []
        out = [self.start, np.asarray(self.start) + np.asarray(self.ramp)]
        if self.end is not None:
            out += [self.end, np.asarray(self.end) + np.asarray(self.ramp)]
        return out

    def describe(self) -> dict[str, Any]:
        """Plain-value description of the intervention, for provenance."""
        if self.start is None:
            return {}
        plain = lambda v: v.tolist() if isinstance(v, np.ndarray) else v  # noqa: E731
        out = {"start": plain(self.start), "ramp": plain(self.ramp), "level": plain(self.level),
               "mode": self.mode}
        if self.end is not None:
            out["end"] = plain(self.end)
        return out


@dataclass(frozen=True, eq=False)
class LeverSet:
    """All levers of the model, each with history and optional intervention."""

    levers: dict[str, Lever]

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> LeverSet:
        """Build from {lever: {start, ramp, level, mode}}; unknown levers or keys are rejected."""
        config = dict(config or {})
        reject_unknown_keys("levers", config, LEVER_SPECS)
        levers = {}
        for name, spec in LEVER_SPECS.items():
            entry = dict(config.get(name) or {})
            reject_unknown_keys(f"levers.{name}", entry, ("start", "ramp", "level", "mode", "end"))
            levers[name] = Lever(spec, **entry)
        return cls(levers)

    @staticmethod
    def config_defaults() -> dict[str, dict[str, Any]]:
        """The `levers` config block with no intervention, derived from LEVER_SPECS (the config
        composes it; each lever's mode defaults to its declared default mode)."""
        return {name: {"start": None, "ramp": 1.0, "level": None, "mode": spec.default_mode,
                       "end": None} for name, spec in LEVER_SPECS.items()}

    def __getitem__(self, name: str) -> Lever:
        return self.levers[name]

    def values(self, t: float) -> dict[str, np.ndarray | float]:
        """Every lever's value at time t."""
        return {name: lever(t) for name, lever in self.levers.items()}

    @property
    def varies_by_draw(self) -> bool:
        """Whether any intervention has per-draw values (start, ramp, level or end an array), so
        that the levers' values differ between draws."""
        return any(np.ndim(getattr(lever, key)) for lever in self.levers.values()
                   for key in ("start", "ramp", "level", "end"))

    def value_matrix(self, t: float, n_draws: int) -> np.ndarray:
        """Every lever's value at time t as a (draw, lever) array, levers in LEVER_SPECS order."""
        out = np.empty((n_draws, len(LEVER_SPECS)))
        for i, name in enumerate(LEVER_SPECS):
            out[:, i] = self.levers[name](t)
        return out

    def breakpoints(self) -> list[float]:
        """Sorted unique kink dates of all levers."""
        return sorted({b for lever in self.levers.values() for b in lever.breakpoints()})

    def describe(self) -> dict[str, Any]:
        """Interventions by lever (levers without one are omitted)."""
        return {n: lv.describe() for n, lv in self.levers.items() if lv.start is not None}
