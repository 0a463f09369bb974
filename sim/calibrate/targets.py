"""Calibration targets: figures with exact definitions, validated, and their model values.

A target set is a plain mapping (as Hydra composes `configs/targets/*.yaml`) with `entries` (figures
written out), `plausibility` (figures written out that hold unmeasured stocks to evidence, with wide
errors) and/or `csv_series` (series read from a CSV in `sim/data`).  Each entry has a `kind`:

  count           calendar-year total (1 Jan - 31 Dec) of `output` in `year`
  rate            `output` per 100,000 US residents in `year` (crude: deaths / mid-year population)
  ratio           `output` in years[i+1] / years[i], one comparison per consecutive pair of `years`
  fy_total        total of `output` over federal fiscal year `year` (1 Oct of year-1 .. 30 Sep)
  midyear         value of `output` (a share) on 1 July of `year`
  largest_source  `source` has the largest share of fentanyl arriving in the US (its channels
                  together) in every year of the range `years`, by at least `value` (1)
  positive_share  `source` has a share of fentanyl arrivals above `value` (1) in every year of `years`

Model values come from the same functions that build the result dataset (`annual_totals`,
`fiscal_year_seizures`, the reported auxiliaries), for all draws of a batch at once.  Numeric comparisons (count, rate, ratio, fy_total) enter the fit as
log(model / observed) / sigma; the two claims enter as hinge penalties (shortfall / sigma).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim import paths
from pydantic import Field, create_model

from sim.errors import InputError
from sim.schema import Integer, Number, Section, known_keys, validate
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.engine.batch import BatchModel
from sim.engine.solver import PHYSICAL_ROWS, SolverSettings, Trajectory
from sim.model.flows import us_population_at
from sim.model.state import CHANNELS, SOURCES

HEROIN_CHANNEL = next(k for k, c in enumerate(CHANNELS) if c.form == "heroin")
from sim.results.dataset import annual_totals, fiscal_year_seizures
from sim.results.tables import table

DATA_DIR = paths.DATA_DIR
KINDS = ("count", "rate", "ratio", "fy_total", "midyear", "largest_source", "positive_share")
# output name -> (units, kinds it may be used with)
OUTPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "deaths_synthetic": ("deaths/yr", ("count", "rate", "ratio")),
    "deaths_fentanyl": ("deaths/yr", ("count", "rate", "ratio")),
    "deaths_fentanyl_all": ("deaths/yr", ("count", "rate", "ratio")),
    "deaths_heroin": ("deaths/yr", ("count", "rate", "ratio")),
    "death_rate_synthetic": ("deaths per 100000 persons per yr", ("ratio",)),
    "death_rate_heroin": ("deaths per 100000 persons per yr", ("ratio",)),
    "seizures": ("kg/yr", ("fy_total", "ratio")),
    "seizures_product": ("kg/yr", ("fy_total", "ratio")),
    "nflis_share": ("1", ("midyear",)),
    # plausibility of the demand stocks and volumes (wide errors; sources in configs/targets)
    "people_oud": ("persons", ("midyear",)),
    "heroin_arrivals": ("kg/yr", ("count",)),
    "initiation": ("persons/yr", ("count", "ratio")),
    "supply_share": ("1", ("largest_source", "positive_share")),
}
ENTRY_KEYS = ("id", "kind", "output", "year", "years", "value", "units", "sigma", "tolerance",
              "definition", "source", "note")
FIRST_YEAR = 2010


# --- the sections of a targets config, declared (sim/schema.py checks them) ----------------------

class TargetSetSection(Section):
    """A targets config (configs/targets/*.yaml): figures and/or series of a CSV in sim/data."""

    name: str = "custom"
    fit_end_year: Integer = Field(2018, gt=FIRST_YEAR, le=2100,
                                  description=f"a year after {FIRST_YEAR}")
    entries: list[Any] | None = Field(None, description="a list of figures (id, kind, output, "
                                                        "year(s), value, sigma)")
    csv_series: dict[str, Any] | None = Field(None, description="{file, series}")
    # figures that hold unmeasured stocks to evidence (wide errors), kept apart from `entries` so
    # that composing target sets (configs/targets/both.yaml) keeps both lists
    plausibility: list[Any] | None = Field(None, description="a list of figures (same keys as "
                                                             "entries)")


class SeriesSelection(Section):
    """Which rows of one series of the CSV become targets, and how they are fitted: output, kind,
    sigma (1), sigma_by_year {year: sigma}, tolerance (relative half-width of the acceptance
    range), years (a subset to use)."""

    model_config = Section.model_config | {"strict": False}
    output: Any = None
    kind: Any = "count"
    sigma: Any = None
    sigma_by_year: dict[int, Any] | None = None
    tolerance: Number | None = Field(None, gt=0, lt=1, strict=True,
                                     description="a relative half-width in "
                                                                  "(0, 1), e.g. 0.1 for +-10 %")
    years: list[Any] | None = None


class CsvSeriesSpec(Section):
    """`csv_series`: a CSV file of series in sim/data and the series taken from it."""

    file: str = ""
    series: dict[str, Any] | None = None


SET_KEYS = tuple(TargetSetSection.model_fields)
SERIES_KEYS = tuple(SeriesSelection.model_fields)


# One figure's keys (each key's value is checked by `parse_target`, by kind).
TargetEntryKeys = create_model("TargetEntryKeys", __base__=Section,
                               **{key: (Any, None) for key in ENTRY_KEYS})


@dataclass(frozen=True)
class Target:
    """One figure: what is compared (kind, output, years, source) with what (value, sigma)."""

    id: str
    kind: str
    output: str
    years: tuple[int, ...]
    value: float
    sigma: float
    units: str = ""
    tolerance: tuple[float, float] | None = None
    definition: str = ""
    source: str | None = None
    series: str | None = None   # the public series (csv_series key) the figure comes from

    @property
    def n_rows(self) -> int:
        """Number of comparisons (residuals) this target contributes."""
        return len(self.years) - 1 if self.kind == "ratio" else 1

    def row_labels(self) -> list[str]:
        if self.kind == "ratio" and len(self.years) > 2:
            return [f"{self.id} {b}/{a}" for a, b in zip(self.years[:-1], self.years[1:])]
        return [self.id]


@dataclass(frozen=True)
class TargetSet:
    """Validated targets of a calibration; `fit_end_year` is the last year any figure may use."""

    name: str
    targets: tuple[Target, ...]
    fit_end_year: int

    @property
    def n_rows(self) -> int:
        return sum(t.n_rows for t in self.targets)

    @property
    def last_year(self) -> int:
        return max(max(t.years) for t in self.targets)


def _field(where: str, entry: Mapping[str, Any], key: str) -> Any:
    if entry.get(key) is None:
        raise InputError(f"{where}.{key}: required (allowed keys: {', '.join(ENTRY_KEYS)})")
    return entry[key]


def _number(where: str, key: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}.{key}: value {value!r} is not a number") from None
    if not np.isfinite(out):
        raise InputError(f"{where}.{key}: value {value!r} is not a finite number")
    return out


def parse_target(entry: Mapping[str, Any], where: str, end_year: int, fit_end_year: int) -> Target:
    """Validate one entry; raise a one-line InputError naming field, value and what is allowed."""
    if not isinstance(entry, Mapping):
        raise InputError(f"{where}: expected a mapping (id, kind, output, year(s), value, sigma), "
                         f"got {entry!r}")
    validate(TargetEntryKeys, where, entry)
    tid = str(_field(where, entry, "id"))
    where = f"{where}[{tid}]"
    kind = _field(where, entry, "kind")
    if kind not in KINDS:
        raise InputError(f"{where}.kind: value {kind!r} not allowed; allowed: {', '.join(KINDS)}")
    output = _field(where, entry, "output")
    if output not in OUTPUTS:
        raise InputError(f"{where}.output: value {output!r} not allowed; allowed: "
                         f"{', '.join(OUTPUTS)}")
    if kind not in OUTPUTS[output][1]:
        raise InputError(f"{where}.output: value {output!r} not allowed with kind {kind!r}; allowed: "
                         f"{', '.join(o for o, (_, k) in OUTPUTS.items() if kind in k)}")
    if kind in ("ratio", "largest_source", "positive_share"):
        raw_years = _field(where, entry, "years")
        if not isinstance(raw_years, Sequence) or isinstance(raw_years, str) or len(raw_years) < 2:
            raise InputError(f"{where}.years: value {raw_years!r} must be a list of at least two "
                             f"years")
        key = "years"
    else:
        raw_years = [_field(where, entry, "year")]
        key = "year"
    years = []
    for y in raw_years:
        if isinstance(y, bool) or not isinstance(y, (int, float)) or int(y) != y:
            raise InputError(f"{where}.{key}: value {y!r} is not a whole year")
        # a fiscal year N starts 1 Oct of N-1, so FY2010 starts before the simulation
        lo = FIRST_YEAR + 1 if kind == "fy_total" else FIRST_YEAR
        if not lo <= int(y) <= end_year:
            raise InputError(f"{where}.{key}: value {int(y)} outside the simulated window; allowed: "
                             f"{lo}..{min(end_year, fit_end_year)} (simulation {FIRST_YEAR}.."
                             f"{end_year}, fit_end_year {fit_end_year})")
        if int(y) > fit_end_year:
            raise InputError(f"{where}.{key}: value {int(y)} is after fit_end_year {fit_end_year}; "
                             f"allowed: {lo}..{fit_end_year} (later data validates, never fits)")
        years.append(int(y))
    if kind in ("largest_source", "positive_share"):
        if len(years) != 2 or years[0] > years[1]:
            raise InputError(f"{where}.years: value {raw_years!r} must be a range [first, last]")
        years = list(range(years[0], years[1] + 1))
        source = _field(where, entry, "source")
        if source not in SOURCES:
            raise InputError(f"{where}.source: value {source!r} not allowed; allowed: "
                             f"{', '.join(SOURCES)}")
    else:
        source = None
        if kind == "ratio" and any(b <= a for a, b in zip(years[:-1], years[1:])):
            raise InputError(f"{where}.years: value {raw_years!r} must be increasing")
    value = _number(where, "value", _field(where, entry, "value"))
    if value < 0:
        what = {"count": "count", "fy_total": "total", "rate": "rate"}.get(kind, "value")
        raise InputError(f"{where}.value: negative {what} {value:g} not allowed; allowed: >= 0")
    if value == 0 and kind in ("count", "rate", "ratio", "fy_total"):
        raise InputError(f"{where}.value: value 0 not allowed for kind {kind!r} (relative error "
                         f"undefined); allowed: > 0")
    sigma = _number(where, "sigma", _field(where, entry, "sigma"))
    if sigma <= 0:
        raise InputError(f"{where}.sigma: value {sigma:g} not allowed; allowed: > 0 (relative "
                         f"standard error)")
    tolerance = entry.get("tolerance")
    if tolerance is not None:
        if (not isinstance(tolerance, Sequence) or isinstance(tolerance, str) or len(tolerance) != 2
                or _number(where, "tolerance", tolerance[0]) > _number(where, "tolerance",
                                                                        tolerance[1])):
            raise InputError(f"{where}.tolerance: value {tolerance!r} must be [lo, hi] with lo <= hi")
        tolerance = (float(tolerance[0]), float(tolerance[1]))
    return Target(tid, kind, output, tuple(years), value, sigma,
                  str(entry.get("units") or OUTPUTS[output][0]), tolerance,
                  str(entry.get("definition") or ""), source)


def csv_targets(spec: Mapping[str, Any], end_year: int, fit_end_year: int) -> list[Target]:
    """Targets from a CSV of series (series, year, value, units, source) in sim/data."""
    checked = validate(CsvSeriesSpec, "targets.csv_series", spec)
    name = str(checked.file)
    path = DATA_DIR / name
    if "/" in name or not path.is_file():
        raise InputError(f"targets.csv_series.file: value {name!r} not found; allowed: a CSV file in "
                         f"sim/data ({', '.join(p.name for p in DATA_DIR.glob('*.csv'))})")
    with path.open() as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    series = dict(checked.series or {})
    known_keys("targets.csv_series.series", series, sorted({r["series"] for r in rows}))
    out = []
    for key, raw in series.items():
        sel = validate(SeriesSelection, f"targets.csv_series.series.{key}", raw).model_dump()
        years = sel.get("years")
        tolerance = sel.get("tolerance")
        by_year = dict(sel.get("sigma_by_year") or {})
        for r in rows:
            year = int(r["year"])
            if r["series"] != key or year > fit_end_year or (years and year not in years):
                continue
            value = float(r["value"])
            entry = {"id": f"us_{key}_{r['year']}", "kind": sel.get("kind", "count"),
                     "output": sel.get("output"), "year": year, "value": value,
                     "sigma": by_year.get(year, sel.get("sigma")), "units": r["units"],
                     "definition": f"{key} {r['year']} ({r['source']})"}
            if tolerance is not None:
                entry["tolerance"] = [value * (1 - tolerance), value * (1 + tolerance)]
            out.append(dataclasses.replace(
                parse_target(entry, "targets.csv_series", end_year, fit_end_year), series=key))
    return out


def load_targets(cfg: Mapping[str, Any], end_year: int) -> TargetSet:
    """Validate a target-set config (`targets` section) for a simulation ending in `end_year`."""
    checked = validate(TargetSetSection, "targets", cfg)
    cfg, fit_end, entries = dict(cfg or {}), checked.fit_end_year, checked.entries or []
    targets = [parse_target(e, f"targets.entries[{i}]", end_year, fit_end)
               for i, e in enumerate(entries)]
    plausibility = cfg.get("plausibility") or []
    if not isinstance(plausibility, Sequence) or isinstance(plausibility, str):
        raise InputError(f"targets.plausibility: expected a list of figures, got {plausibility!r}")
    targets += [parse_target(e, f"targets.plausibility[{i}]", end_year, fit_end)
                for i, e in enumerate(plausibility)]
    if cfg.get("csv_series"):
        targets += csv_targets(cfg["csv_series"], end_year, fit_end)
    if not targets:
        raise InputError("targets: no entries; allowed: a list `entries` and/or `csv_series`")
    ids = [t.id for t in targets]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InputError(f"targets: duplicate id {dup[0]!r}; allowed: unique ids")
    return TargetSet(str(cfg.get("name", "custom")), tuple(targets), fit_end)


def load_targets_file(path: str | Path, end_year: int) -> TargetSet:
    """Load and validate a targets YAML file (same layout as configs/targets/*.yaml)."""
    import yaml
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"targets file {str(path)!r}: not readable YAML "
                         f"({type(exc).__name__})") from None
    if not isinstance(cfg, Mapping):
        raise InputError(f"targets file {str(path)!r}: expected a mapping with `entries`")
    cfg = dict(cfg)
    cfg.pop("defaults", None)
    return load_targets(cfg, end_year)


# --- model values -----------------------------------------------------------------------------

def model_outputs(traj: Trajectory, params: ModelParameters, settings: SolverSettings,
                  levers: LeverSet | None = None) -> dict[str, np.ndarray]:
    """Every target output for all draws: arrays (draw, year) over `settings.years`.

    deaths_fentanyl_all counts illicit and diverted pharmaceutical fentanyl (what death
    certificates mention); seizures (pure) and seizures_product (gross weight, CBP's basis) are
    fiscal-year totals over routes; nflis_share is read `nflis_report_lag` before 1 July (NFLIS
    dates a report by its laboratory submission, after the seizure; the state linear between
    stored times: `Trajectory.rows_between`); supply_share is (source, draw, year), each
    fentanyl source's channels together over all fentanyl arrivals; people_oud (untreated + in
    MOUD, persons) is read on 1 July, heroin_arrivals (pure kg) and initiation are calendar-year
    totals.
    """
    annual = annual_totals(traj, settings)
    n = traj.states.shape[1]
    pop = us_population_at(settings.years + 0.5)
    potency = np.broadcast_to(params.as_arrays()["potency_ratio"], (n,))
    pure, product = fiscal_year_seizures(traj, settings, potency)
    arrivals = annual["arrivals"]                       # channel, draw, year
    by_source = np.stack([arrivals[[k for k, c in enumerate(CHANNELS) if c.source == s]].sum(axis=0)
                          for s in SOURCES])
    total = by_source.sum(axis=0)
    model = BatchModel(params, levers or LeverSet.from_mapping({}), n)
    mid = settings.years + 0.5
    nflis = np.full((n, mid.size), np.nan)
    inside = mid < settings.t_end
    lags = np.broadcast_to(params.as_arrays()["nflis_report_lag"], (n,))
    if np.ptp(lags) > 0:
        raise InputError("params.nflis_report_lag: one value for every draw is allowed (a fixed "
                         "observation constant)")
    reads = mid[inside] - lags[0]          # when the market NFLIS reports in each year was
    if reads.size:
        physical = np.stack([traj.rows_between(PHYSICAL_ROWS, float(t)) for t in reads], axis=-1)
        nflis[:, inside] = model.auxiliaries_over(reads, physical, ("nflis_share",))[
            "nflis_share"].T
    people = np.full((n, mid.size), np.nan)
    people[:, inside] = (traj.stock_at("untreated", mid[inside])
                         + traj.stock_at("in_treatment", mid[inside]))
    return {
        "deaths_synthetic": annual["deaths_synthetic"],
        "deaths_fentanyl": annual["deaths_fentanyl"],
        "deaths_fentanyl_all": annual["deaths_fentanyl"] + annual["deaths_pharma_fentanyl"],
        "deaths_heroin": annual["deaths_heroin"],
        "death_rate_synthetic": annual["deaths_synthetic"] / pop * 1e5,
        "death_rate_heroin": annual["deaths_heroin"] / pop * 1e5,
        "seizures": np.nansum(pure, axis=0),
        "seizures_product": np.nansum(product, axis=0),
        "nflis_share": nflis,
        "people_oud": people,
        "heroin_arrivals": arrivals[HEROIN_CHANNEL],
        "initiation": annual["initiation"],
        "supply_share": by_source / np.where(total > 0, total, np.nan),
        "population": np.broadcast_to(pop, (n, pop.size)),
    }


def target_values(target: Target, outputs: Mapping[str, np.ndarray],
                  years: np.ndarray) -> np.ndarray:
    """Model values of each comparison of `target`, shape (n_rows, draw).

    For claims the value is the smallest margin over the years (largest_source: share of `source`
    minus the largest other share; positive_share: the share of `source`).
    """
    col = {int(y): i for i, y in enumerate(years)}
    idx = [col[y] for y in target.years]
    if target.kind in ("largest_source", "positive_share"):
        share = outputs["supply_share"][:, :, idx]  # source, draw, year
        k = SOURCES.index(target.source)
        mine = share[k]
        if target.kind == "positive_share":
            return np.nan_to_num(mine, nan=0.0).min(axis=-1)[None]
        others = np.delete(share, k, axis=0).max(axis=0)
        return np.nan_to_num(mine - others, nan=-1.0).min(axis=-1)[None]
    series = outputs[target.output][:, idx]  # draw, year
    if target.kind == "rate":
        return (series / outputs["population"][:, idx] * 1e5).T
    if target.kind == "ratio":
        return (series[:, 1:] / np.maximum(series[:, :-1], 1e-300)).T
    return series.T


def residuals(targets: TargetSet, outputs: Mapping[str, np.ndarray], years: np.ndarray) -> np.ndarray:
    """Weighted residuals (n_rows, draw): log(model/observed)/sigma, or hinge shortfall/sigma."""
    rows = []
    for t in targets.targets:
        values = target_values(t, outputs, years)
        if t.kind in ("largest_source", "positive_share"):
            rows.append(np.maximum(t.value - values, 0.0) / t.sigma)
        else:
            rows.append(np.log(np.maximum(values, 1e-12) / t.value) / t.sigma)
    return np.concatenate(rows, axis=0)


@dataclass(frozen=True)
class FitRow:
    """One line of the fit table."""

    label: str
    kind: str
    definition: str
    observed: float
    model: float
    relative_error: float
    tolerance: tuple[float, float] | None
    units: str

    @property
    def ok(self) -> bool | None:
        if self.kind in ("largest_source", "positive_share"):
            return self.model > 0.0  # the claim itself; `observed` is the margin aimed at
        if self.tolerance is None:
            return None
        return self.tolerance[0] <= self.model <= self.tolerance[1]


def fit_rows(targets: TargetSet, outputs: Mapping[str, np.ndarray], years: np.ndarray,
             draw: int = 0) -> list[FitRow]:
    """The fit table of one draw."""
    rows = []
    for t in targets.targets:
        values = target_values(t, outputs, years)[:, draw]
        for label, v in zip(t.row_labels(), values):
            rel = (v - t.value) / t.value if t.value else float("nan")
            rows.append(FitRow(label, t.kind, t.definition, t.value, float(v), float(rel),
                               t.tolerance, t.units))
    return rows


def format_table(rows: Sequence[FitRow], markdown: bool = False) -> str:
    """Fixed-width (or Markdown) fit table: target, kind, observed, model, relative error, in range."""
    header = ["target", "kind", "observed", "model", "rel. error", "acceptance", "ok", "definition"]
    body = []
    for r in rows:
        claim = r.kind in ("largest_source", "positive_share")
        accept = ("> 0 (margin)" if r.kind == "largest_source" else "> 0 (share)") if claim else (
            f"[{r.tolerance[0]:.4g}, {r.tolerance[1]:.4g}]" if r.tolerance else "-")
        ok = {True: "yes", False: "NO", None: "-"}[r.ok]
        body.append([r.label, r.kind, f"{r.observed:.4g}", f"{r.model:.4g}",
                     "-" if claim else f"{100 * r.relative_error:+.1f}%", accept, ok, r.definition])
    if not markdown:  # the console table leaves the (long) definitions to the Markdown file
        header, body = header[:-1], [b[:-1] for b in body]
    return table(header, body, markdown=markdown,
                 align=["left", "left", *["right"] * (len(header) - 3), "left"])
