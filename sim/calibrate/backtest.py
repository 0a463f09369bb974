"""Backtest: fit on data up to a cut-off year, forecast the later years, score the forecast.

The calibration (MAP fit and emcee posterior, `sim.calibrate.fit`) uses only the targets whose
years end at or before `cutoff` (ranges of claims are cut at it); the posterior ensemble, with the
substitution constants drawn from their priors as in every ensemble, is then run to the last
scored year.  For each series and year after the cut-off (public US series to 2024: the
information set's end) the forecast median and 90 % interval are compared with the observed value:
error (median / observed - 1) and whether the interval covers it, plus the coverage of all points.
Hydra-free; `fentsim-backtest` is the command.
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from sim import paths
from sim.calibrate.fit import (build_problem, calibration_options, fit, sample_posterior,
                              with_prior_parameters)
from sim.calibrate.targets import load_targets, model_outputs
from sim.engine.solver import SolverSettings, integrate
from sim.errors import InputError
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters

LAST_DATA_YEAR = 2024          # the information set ends here: nothing later is scored or fitted
# series of the public data file scored by the backtest: (series in the CSV, model output, kind)
SCORED = (("synthetic_deaths", "deaths_synthetic", "count"),
          ("heroin_deaths", "deaths_heroin", "count"),
          ("fentanyl_share", "nflis_share", "midyear"),
          ("cbp_fentanyl_seized_fy", "seizures_product", "fy_total"))
INTERVAL = (0.05, 0.95)


def targets_up_to(cfg: Mapping[str, Any], cutoff: int) -> dict[str, Any]:
    """The target-set config restricted to what was known at `cutoff`: entries ending after it
    dropped (claims over a range cut at it), csv series read to it (fit_end_year)."""
    cfg = copy.deepcopy(dict(cfg))
    for key in ("entries", "plausibility"):
        kept = []
        for entry in cfg.get(key) or []:
            entry = dict(entry)
            if entry.get("kind") in ("largest_source", "positive_share"):
                first, last = entry["years"]
                if first > cutoff:
                    continue
                entry["years"] = [first, min(last, cutoff)]
            elif entry.get("kind") == "ratio" and len(entry["years"]) > 2:
                entry["years"] = [y for y in entry["years"] if y <= cutoff]   # consecutive ratios
                if len(entry["years"]) < 2:
                    continue
            elif max(entry.get("years") or [entry.get("year")]) > cutoff:
                continue
            kept.append(entry)
        if key in cfg:
            cfg[key] = kept
    cfg["fit_end_year"] = cutoff
    cfg["name"] = f"{cfg.get('name', 'targets')} to {cutoff}"
    return cfg


def observed_after(cutoff: int) -> list[tuple[str, str, str, int, float]]:
    """(series, output, kind, year, value) of every scored data point after `cutoff`."""
    path = paths.DATA_DIR / "us_series_2010_2024.csv"
    with path.open() as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    out = []
    for series, output, kind in SCORED:
        for r in rows:
            year = int(r["year"])
            if r["series"] == series and cutoff < year <= LAST_DATA_YEAR:
                out.append((series, output, kind, year, float(r["value"])))
    return out


@dataclass
class Backtest:
    """Forecast draws and scores of a backtest."""

    cutoff: int
    points: list[dict[str, Any]]
    coverage: float
    fit_cost: float
    n_draws: int

    def to_dataset(self) -> xr.Dataset:
        """The scores as a dataset (point dimension), with units and long names."""
        p = self.points
        ds = xr.Dataset(
            {"observed": ("point", [x["observed"] for x in p]),
             "forecast_median": ("point", [x["median"] for x in p]),
             "forecast_low": ("point", [x["low"] for x in p]),
             "forecast_high": ("point", [x["high"] for x in p]),
             "relative_error": ("point", [x["error"] for x in p]),
             "covered": ("point", np.array([x["covered"] for x in p], dtype=np.int8))},
            coords={"point": np.arange(len(p)),
                    "series": ("point", np.array([x["series"] for x in p], dtype=object)),
                    "year": ("point", np.array([x["year"] for x in p], dtype=np.int64)),
                    "units": ("point", np.array([x["units"] for x in p], dtype=object))})
        for name, long_name in (("observed", "observed value (units per point)"),
                                ("forecast_median", "median of the posterior forecast"),
                                ("forecast_low", f"{INTERVAL[0]:.0%} quantile of the forecast"),
                                ("forecast_high", f"{INTERVAL[1]:.0%} quantile of the forecast"),
                                ("relative_error", "forecast median / observed - 1"),
                                ("covered", "1 if the 90% interval covers the observed value")):
            ds[name].attrs.update(long_name=long_name, units="1" if name in (
                "relative_error", "covered") else "see units coordinate")
        ds.attrs.update(title=f"fentsim backtest: fitted to {self.cutoff}, forecast to "
                              f"{LAST_DATA_YEAR}", cutoff=self.cutoff, coverage=self.coverage,
                        fit_cost=self.fit_cost, draws=self.n_draws)
        return ds

    def markdown(self) -> str:
        """The score table and the overall coverage, as Markdown."""
        rows = [[x["series"], x["year"], f"{x['observed']:,.4g}", f"{x['median']:,.4g}",
                 f"[{x['low']:,.4g}, {x['high']:,.4g}]", f"{100 * x['error']:+.1f}%",
                 "yes" if x["covered"] else "no"] for x in self.points]
        head = ["series", "year", "observed", "forecast median", "90% interval", "error", "covered"]
        return (f"# Backtest: fitted to {self.cutoff}, forecast {self.cutoff + 1}-{LAST_DATA_YEAR}\n\n"
                f"{self.n_draws} posterior draws (the substitution constants sampled with their priors in the posterior); "
                f"MAP cost {self.fit_cost:.4g}.\n\n"
                + "\n".join("| " + " | ".join(map(str, r)) + " |"
                             for r in [head, ["---"] * len(head)] + rows)
                + f"\n\nCoverage of the 90% intervals: {self.coverage:.0%} "
                  f"({sum(x['covered'] for x in self.points)} of {len(self.points)} points).\n")


def run_backtest(base: ModelParameters, targets_cfg: Mapping[str, Any], calibration_cfg: Mapping[str, Any],
                 cutoff: int, draws: int = 200, seed: int = 0,
                 progress: Callable[[str], None] = print) -> Backtest:
    """Fit up to `cutoff`, sample the posterior, forecast to LAST_DATA_YEAR and score."""
    if not 2013 <= cutoff < LAST_DATA_YEAR:
        raise InputError(f"cutoff: value {cutoff!r} not allowed; allowed: 2013..{LAST_DATA_YEAR - 1}")
    calib = dict(calibration_cfg)
    free_cfg = calib.pop("free", None)
    for key in ("params_file", "posterior_file"):
        calib.pop(key, None)
    opts = calibration_options(calib)
    targets = load_targets(targets_up_to(targets_cfg, cutoff), cutoff)
    settings = SolverSettings(end_year=cutoff)
    levers = LeverSet.from_mapping({})
    problem = build_problem(base, levers, settings, targets, free_cfg, opts["rtol"])
    progress(f"fitting {len(problem.free)} parameters to {targets.n_rows} comparisons up to {cutoff}")
    result = fit(problem, opts, progress=progress)
    wider, z_start = with_prior_parameters(problem, result.z)
    post = sample_posterior(wider, z_start, opts, progress=progress)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(post.draws), size=min(draws, len(post.draws)), replace=False)
    values = {name: post.draws[pick, i] for i, name in enumerate(post.names)}
    params = base.replace(**values)
    forecast = SolverSettings(end_year=LAST_DATA_YEAR, output_step=0.5)
    progress(f"forecasting {len(pick)} posterior draws to {LAST_DATA_YEAR}")
    outputs = model_outputs(integrate(params, levers, forecast), params, forecast)
    years = list(forecast.years)
    points = []
    for series, output, kind, year, observed in observed_after(cutoff):
        sample = outputs[output][:, years.index(year)]
        low, median, high = np.nanquantile(sample, [INTERVAL[0], 0.5, INTERVAL[1]])
        points.append({"series": series, "year": year, "observed": observed, "median": median,
                       "low": low, "high": high, "error": median / observed - 1.0,
                       "covered": bool(low <= observed <= high),
                       "units": {"count": "deaths/yr", "midyear": "1", "fy_total": "kg"}[kind]})
    coverage = float(np.mean([x["covered"] for x in points])) if points else float("nan")
    return Backtest(cutoff, points, coverage, float(result.cost), len(pick))
