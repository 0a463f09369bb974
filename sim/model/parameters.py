"""Model parameters: a frozen, validated dataclass whose fields carry units, bounds and sources.

Every field may be a scalar or a 1-D array over parameter draws (the `draw` dimension); arrays of
different fields must have the same length or length 1.  Bounds are checked element-wise when the
object is built, and unknown keys are rejected by `ModelParameters.from_mapping`.

Values are literature defaults (FDA SOURCE model, Lim et al. 2022, and the design brief) or stated
assumptions; the calibrated baseline overrides some of them from `configs/params/calibrated.yaml`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from sim.errors import InputError, reject_unknown_keys


def param(default: float, units: str, bounds: tuple[float, float], source: str, doc: str,
          scale: str = "linear") -> Any:
    """Declare a parameter field with its units, bounds [lo, hi], source and meaning.

    `scale` is 'log' for rates and scales (calibration and sampling work in log space).
    """
    return field(default=default, metadata={
        "units": units, "bounds": bounds, "source": source, "doc": doc, "scale": scale})


SOURCE_LIM = "FDA SOURCE model (Lim et al. 2022), via design brief"
ASSUMPTION = "assumption (order of magnitude); calibrated or varied in the ensemble"


@dataclass(frozen=True, eq=False)
class ModelParameters:
    """All constants and uncertainties of the stock-and-flow model, with units."""

    # --- supply: sources -------------------------------------------------------------------
    potency_ratio: float = param(
        50.0, "1", (10.0, 100.0), "TIME 2019 article: '50 times stronger than heroin'",
        "heroin-equivalent mass per kg of pure fentanyl")
    heroin_supply: float = param(
        45000.0, "kg/yr", (5000.0, 500000.0),
        "assumption near RAND estimates of US heroin consumption (~45 t/yr pure)",
        "heroin reaching US retail markets (pure mass), constant over time", "log")
    capacity_2010_china: float = param(
        1.0, "kg/yr", (0.0, 1e4), ASSUMPTION,
        "fentanyl production capacity in China directed at the US market, 1 Jan 2010", "log")
    capacity_2010_india: float = param(
        0.05, "kg/yr", (0.0, 1e4), ASSUMPTION,
        "fentanyl production capacity in India directed at the US market, 1 Jan 2010", "log")
    capacity_2010_other: float = param(
        0.2, "kg/yr", (0.0, 1e4), ASSUMPTION,
        "capacity of other producers (e.g. Mexican synthesis) directed at the US market, 1 Jan 2010",
        "log")
    capacity_growth_rate: float = param(
        1.2, "1/yr", (0.05, 5.0), ASSUMPTION,
        "per-capita growth of capacity while the opioid market is not yet fentanyl (times 1 - share)",
        "log")
    capacity_entry_rate: float = param(
        0.5, "kg/yr^2", (0.0, 100.0), ASSUMPTION,
        "growth of a dormant source's capacity when the market is unsaturated (times 1 - share)")
    enforcement_erosion_rate: float = param(
        0.5, "1/yr", (0.0, 5.0), ASSUMPTION,
        "rate at which source-country enforcement dismantles capacity (times enforcement level)")
    # --- supply: routes, transit, interdiction ---------------------------------------------
    mail_fraction_china_early: float = param(
        0.9, "1", (0.0, 1.0), "article: 'much of the drug has come through the mail'; assumption",
        "share of China's exports sent by mail/express before the route shift")
    mail_fraction_china_late: float = param(
        0.2, "1", (0.0, 1.0), "assumption: later mostly precursors to Mexico, then over land",
        "share of China's exports sent by mail/express after the route shift")
    route_shift_midyear: float = param(
        2017.0, "yr", (2012.0, 2025.0), ASSUMPTION,
        "midpoint of China's shift from mail to land routes (linear over route_shift_duration)")
    route_shift_duration: float = param(
        4.0, "yr", (0.5, 10.0), ASSUMPTION, "duration of China's mail-to-land route shift")
    mail_fraction_india: float = param(
        0.9, "1", (0.0, 1.0), "assumption: pharmaceutical exports by mail/express",
        "share of India's exports sent by mail/express")
    mail_fraction_other: float = param(
        0.0, "1", (0.0, 1.0), "assumption: other producers ship over land",
        "share of other producers' exports sent by mail/express")
    transit_time_mail: float = param(
        0.05, "yr", (0.005, 1.0), ASSUMPTION, "mean time a shipment spends in the mail route", "log")
    transit_time_land: float = param(
        0.25, "yr", (0.01, 2.0), ASSUMPTION,
        "mean time from export to US border over land (incl. synthesis from precursors)", "log")
    seizure_hazard_mail_2013: float = param(
        0.003, "1", (1e-6, 5.0), ASSUMPTION,
        "interdiction hazard of the mail route in FY2013 (seizure prob. = 1 - exp(-hazard))", "log")
    seizure_hazard_land_2013: float = param(
        0.003, "1", (1e-6, 5.0), ASSUMPTION,
        "interdiction hazard of the land route in FY2013 (seizure prob. = 1 - exp(-hazard))", "log")
    interdiction_growth_2013_2018: float = param(
        30.0, "1", (1.0, 1e4), "calibrated to CBP seizures FY2013 (~1 kg) and FY2018 (~1000 kg)",
        "growth factor of interdiction hazard from mid-2013 to mid-2018 (log-linear, flat after)",
        "log")
    retail_turnover_time: float = param(
        0.1, "yr", (0.01, 1.0), ASSUMPTION, "mean residence of fentanyl in the retail supply", "log")
    # --- demand: people --------------------------------------------------------------------
    untreated_2010: float = param(
        6.0e5, "persons", (0.0, 1e7), "assumption fitted to 2010 heroin deaths (~3,000)",
        "people with opioid use disorder using illicit opioids, untreated, 1 Jan 2010", "log")
    in_treatment_2010: float = param(
        3.0e5, "persons", (0.0, 5e6), ASSUMPTION, "people of that population in MOUD, 1 Jan 2010")
    remission_2010: float = param(
        3.0e5, "persons", (0.0, 1e7), ASSUMPTION, "people in remission, 1 Jan 2010")
    initiation_rate: float = param(
        2.0e5, "persons/yr", (0.0, 2e6), "SOURCE model: about 1e5/yr around 2015; assumption",
        "new people with illicit opioid use disorder per year (before prevention)")
    treatment_seeking_rate: float = param(
        0.6, "1/yr", (0.0, 10.0), ASSUMPTION,
        "rate at which untreated people seek MOUD when slots are free", "log")
    moud_share_illicit: float = param(
        0.5, "1", (0.01, 1.0), ASSUMPTION,
        "share of national MOUD capacity open to this (illicit-opioid) population")
    treatment_duration: float = param(
        0.8, "yr", (0.1, 5.0), SOURCE_LIM + ": episodes last about 0.6-1 yr",
        "mean duration of a MOUD episode", "log")
    treatment_success_fraction: float = param(
        0.5, "1", (0.0, 1.0), ASSUMPTION, "share of MOUD exits that go to remission (rest relapse)")
    remission_rate: float = param(
        0.068, "1/yr", (0.0, 1.0), SOURCE_LIM, "remission without treatment")
    relapse_rate: float = param(
        0.58, "1/yr", (0.0, 5.0), SOURCE_LIM, "relapse from remission to untreated use")
    background_death_rate: float = param(
        0.0143, "1/yr", (0.0, 0.1), SOURCE_LIM, "non-overdose mortality of people with OUD")
    # --- demand: overdose ------------------------------------------------------------------
    overdose_incidence: float = param(
        0.167, "1/yr", (0.01, 1.0), SOURCE_LIM,
        "overdoses per untreated person-year with no fentanyl in the supply", "log")
    fentanyl_incidence_multiplier: float = param(
        3.0, "1", (2.0, 7.0), SOURCE_LIM + " (kappa in 2-7)",
        "overdose incidence of fentanyl exposure relative to heroin (kappa)")
    case_fatality_heroin: float = param(
        0.046, "1", (0.0, 1.0), SOURCE_LIM, "probability an unaided heroin overdose is fatal")
    case_fatality_fentanyl: float = param(
        0.298, "1", (0.0, 1.0), SOURCE_LIM, "probability an unaided fentanyl overdose is fatal")
    witnessed_fraction: float = param(
        0.764, "1", (0.0, 1.0), SOURCE_LIM, "share of overdoses where someone can help (0.764)")
    rescue_without_naloxone: float = param(
        0.424, "1", (0.0, 1.0), SOURCE_LIM, "survival through other help (EMS etc.) when witnessed")
    naloxone_coefficient: float = param(
        0.000343, "1/(kits per 100k per yr)", (0.0, 0.01), SOURCE_LIM,
        "p_naloxone = 1 - exp(-coefficient x kits per 100,000 residents per year)")
    test_strip_max_effect: float = param(
        0.25, "1", (0.0, 1.0), "assumption (behaviour change after a positive strip, Peiper 2019)",
        "largest relative cut in fentanyl overdose incidence from universal test-strip use")
    test_strip_coefficient: float = param(
        0.0005, "1/(strips per 100k per yr)", (0.0, 0.1), ASSUMPTION,
        "coverage = 1 - exp(-coefficient x strips per 100,000 residents per year)")
    treatment_overdose_ratio: float = param(
        0.3, "1", (0.0, 1.0), SOURCE_LIM, "overdose death rate in MOUD relative to untreated")
    heroin_coinvolvement: float = param(
        0.4, "1", (0.0, 1.0), ASSUMPTION, "share of fentanyl-involved deaths that also involve heroin")
    background_synthetic_deaths: float = param(
        1186.0, "deaths/yr", (0.0, 5000.0),
        "NCHS: 3,105 synthetic-opioid minus 1,919 fentanyl-mention deaths in 2013",
        "deaths involving synthetic opioids other than fentanyl (tramadol etc.)")

    def __post_init__(self) -> None:
        sizes = set()
        for f in fields(self):
            raw = getattr(self, f.name)
            try:
                value = np.asarray(raw, dtype=float)
            except (TypeError, ValueError):
                raise InputError(f"params.{f.name}: value {raw!r} is not a number "
                                 f"(units {f.metadata['units']})") from None
            if value.ndim > 1:
                raise InputError(f"params.{f.name}: expected a number or a 1-D array over draws, "
                                 f"got shape {value.shape}")
            lo, hi = f.metadata["bounds"]
            bad = ~np.isfinite(value) | (value < lo) | (value > hi)
            if np.any(bad):
                first = value.reshape(-1)[np.argmax(bad.reshape(-1))]
                where = "" if value.ndim == 0 else f" (draw {int(np.argmax(bad))})"
                raise InputError(f"params.{f.name}: value {first:g}{where} outside allowed range "
                                 f"[{lo:g}, {hi:g}] {f.metadata['units']}")
            if value.ndim == 1 and value.size != 1:
                sizes.add(value.size)
            object.__setattr__(self, f.name, value if value.ndim else float(value))
        if len(sizes) > 1:
            raise InputError(f"params: draw arrays have different lengths {sorted(sizes)}")

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def names(cls) -> list[str]:
        """Names of all parameters, in declaration order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def metadata(cls, name: str) -> Mapping[str, Any]:
        """Units, bounds, source, doc and scale of parameter `name`."""
        return {f.name: f.metadata for f in fields(cls)}[name]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ModelParameters:
        """Build from a mapping of overrides of the defaults; unknown keys are rejected."""
        values = dict(values or {})
        reject_unknown_keys("params", values, cls.names())
        return cls(**values)

    def replace(self, **changes: Any) -> ModelParameters:
        """A copy with some fields changed (validated again)."""
        reject_unknown_keys("params", changes, self.names())
        return dataclasses.replace(self, **changes)

    @property
    def n_draws(self) -> int:
        """Number of parameter draws (1 when every field is a scalar)."""
        sizes = [np.size(getattr(self, n)) for n in self.names()]
        return max(sizes)

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Every field as a float array of shape (n_draws,)."""
        n = self.n_draws
        return {name: np.broadcast_to(np.asarray(getattr(self, name), dtype=float), (n,)).copy()
                for name in self.names()}

    def draw(self, i: int) -> ModelParameters:
        """The single-draw parameters of draw `i`."""
        return ModelParameters(**{k: float(v[i]) for k, v in self.as_arrays().items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain values (floats or lists) keyed by name, e.g. for YAML provenance."""
        return {name: (v.tolist() if isinstance(v, np.ndarray) else v)
                for name, v in ((n, getattr(self, n)) for n in self.names())}

    @classmethod
    def stack(cls, draws: list[ModelParameters]) -> ModelParameters:
        """Stack single-draw parameter sets into one batch over draws."""
        return cls(**{name: np.array([float(getattr(d, name)) for d in draws])
                      for name in cls.names()})
