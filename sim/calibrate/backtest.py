"""Backtest: fit on data up to a cut-off year, forecast the later years, score the forecast.

The calibration (MAP fit, `sim.calibrate.fit`, and the posterior from the priors,
`sim.calibrate.sampler`) uses only the targets whose years end at or before `cutoff` (ranges of
claims are cut at it).  The posterior draws are then run to the last year of the data (the
targets' `fit_end_year`, the information set's end) and every public-series figure after the
cut-off is scored: the forecast median's error, and whether the 90% interval covers the observed
value, for the model alone (parameter uncertainty), with its model error (what
`<variable>_predictive` carries) and for an observation (model error and measurement error, the
likelihood's predictive); per series and overall.  For synthetic-opioid deaths the direction of
each year's change is scored too (share of draws that fall).  A sampled parameter the data up to
the cut-off cannot inform (a dated input after it: the COVID-19 shock at cut-off 2019, the 2023
supply events, the 2024 potency) has its prior as posterior; the forecast draws it from that prior
(`uninformed`), since the sampler, which only refreshes 'subst' and 'unc' parameters from their
priors, leaves such a 'fit' parameter far narrower than its prior.  Hydra-free; `fentsim-backtest`
is the command.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from sim.calibrate.fit import (Problem, build_problem, calibration_options, fit,
                               map_fit_setup, posterior_problem)
from sim.calibrate.report import coverage_summary, predictive_coverage, row_samples
from sim.calibrate.sampler import ESS_BULK_MIN, RHAT_MAX, Posterior, sample_posterior
from sim.calibrate.targets import load_targets
from sim.engine.solver import SolverSettings
from sim.errors import InputError
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters, prior_distribution, sample_prior_values

BANDS = ("model", "model_error", "observation")
DIRECTION_SERIES = "synthetic_deaths"   # the series whose yearly changes are scored by direction
FIRST_CUTOFF = 2013                     # the earliest cut-off a backtest accepts (year)
FLAT = 1e-8   # largest change of the log likelihood (1) for which a parameter counts as uninformed


def check_cutoff(cutoff: Any, targets_cfg: Mapping[str, Any]) -> int:
    """The data's last year (the targets' fit_end_year) once `cutoff` is a whole year from
    FIRST_CUTOFF to the year before it; otherwise an InputError naming the allowed years."""
    last = int(targets_cfg.get("fit_end_year") or 0)
    if isinstance(cutoff, bool) or not isinstance(cutoff, int) or not FIRST_CUTOFF <= cutoff < last:
        raise InputError(f"cutoff: value {cutoff!r} not allowed; allowed: a whole year "
                         f"{FIRST_CUTOFF}..{last - 1} (the data end in {last})")
    return last


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


@dataclass
class Backtest:
    """Scores of a backtest: one row per scored figure, coverage per series and overall, and the
    direction of each year's change of synthetic-opioid deaths."""

    cutoff: int
    last_year: int
    points: list[dict[str, Any]]
    directions: list[dict[str, Any]]
    fit_cost: float
    n_draws: int
    convergence: dict[str, Any]  # the sampler's settings and convergence (`sampler_summary`)
    from_priors: list[str]      # sampled parameters the data to the cut-off do not inform

    @property
    def coverage(self) -> dict[str, float]:
        return coverage_summary(self.points)

    def by_series(self) -> dict[str, dict[str, float]]:
        """Per series: number of points, mean absolute error of the median, coverage per band."""
        out = {}
        for series in dict.fromkeys(p["series"] for p in self.points):
            rows = [p for p in self.points if p["series"] == series]
            out[series] = {"points": len(rows),
                           "mean_abs_error": float(np.mean([abs(r["error"]) for r in rows])),
                           **{band: float(np.mean([r[f"{band}_covered"] for r in rows]))
                              for band in BANDS}}
        return out

    def to_dataset(self) -> xr.Dataset:
        """The scores as a dataset (point dimension), with units and long names."""
        p = self.points
        data = {"observed": [x["observed"] for x in p],
                "forecast_median": [x["model_median"] for x in p],
                "relative_error": [x["error"] for x in p]}
        for band in BANDS:
            data[f"{band}_low"] = [x[f"{band}_low"] for x in p]
            data[f"{band}_high"] = [x[f"{band}_high"] for x in p]
            data[f"{band}_covered"] = np.array([x[f"{band}_covered"] for x in p], dtype=np.int8)
        ds = xr.Dataset({k: ("point", np.asarray(v)) for k, v in data.items()},
                        coords={"point": np.arange(len(p)),
                                "series": ("point", np.array([x["series"] for x in p], dtype=object)),
                                "year": ("point", np.array([x["year"] for x in p], dtype=np.int64)),
                                "units": ("point", np.array([x["units"] for x in p], dtype=object))})
        meaning = {"model": "the model over the posterior draws (parameter uncertainty)",
                   "model_error": "the model with its model error (<variable>_predictive)",
                   "observation": "an observation (model error and measurement error)"}
        for name in ds.data_vars:
            band = next((b for b in BANDS if name.startswith(b + "_")), None)
            long_name = {"observed": "observed value (units per point)",
                         "forecast_median": "median of the posterior forecast (model)",
                         "relative_error": "forecast median / observed - 1"}.get(name) or (
                f"1 if the 90% interval of {meaning[band]} covers the observed value"
                if name.endswith("covered") else
                f"{'5%' if name.endswith('low') else '95%'} quantile of {meaning[band]}")
            ds[name].attrs.update(long_name=long_name, units="1" if name.endswith(
                ("covered", "error")) else "see units coordinate")
        cov = self.coverage
        ds.attrs.update(title=f"fentsim backtest: fitted to {self.cutoff}, forecast to "
                              f"{self.last_year}", cutoff=self.cutoff, fit_cost=self.fit_cost,
                        draws=self.n_draws, drawn_from_priors=" ".join(self.from_priors),
                        **{"sampler_" + k.replace(" ", "_").replace("-", "_"): v
                           for k, v in self.convergence.items()},
                        **{f"coverage_{k}": v for k, v in cov.items()})
        return ds

    def markdown(self) -> str:
        """The score tables, the coverage per series and the directions, as Markdown."""
        def md(head: list[str], rows: list[list[Any]]) -> str:
            return "\n".join("| " + " | ".join(map(str, r)) + " |"
                             for r in [head, ["---"] * len(head)] + rows)
        points = md(["series", "year", "observed", "forecast median", "90% model",
                     "90% with model error", "90% observation", "error", "covered (m/e/o)"],
                    [[x["series"], x["year"], f"{x['observed']:,.4g}", f"{x['model_median']:,.4g}",
                      f"[{x['model_low']:,.4g}, {x['model_high']:,.4g}]",
                      f"[{x['model_error_low']:,.4g}, {x['model_error_high']:,.4g}]",
                      f"[{x['observation_low']:,.4g}, {x['observation_high']:,.4g}]",
                      f"{100 * x['error']:+.1f}%",
                      "/".join("yes" if x[f"{b}_covered"] else "no" for b in BANDS)]
                     for x in self.points])
        series = md(["series", "points", "mean abs. error", "coverage model",
                     "with model error", "observation"],
                    [[k, v["points"], f"{100 * v['mean_abs_error']:.1f}%",
                      *(f"{v[b]:.0%}" for b in BANDS)] for k, v in self.by_series().items()])
        directions = md(["change", "observed", "modelled median", "share of draws falling"],
                        [[d["change"], f"{100 * d['observed']:+.1f}%", f"{100 * d['median']:+.1f}%",
                          f"{d['share_falling']:.0%}"] for d in self.directions])
        cov = self.coverage
        n = len(self.points)
        sampler = "; ".join(f"{k} {v}" for k, v in self.convergence.items())
        return (f"# Backtest: fitted to {self.cutoff}, forecast {self.cutoff + 1}-{self.last_year}\n\n"
                f"{self.n_draws} posterior draws (every sampled parameter, from the priors); MAP "
                f"cost {self.fit_cost:.4g}; sampler: {sampler}.  Drawn from their priors "
                f"(not informed by the data to {self.cutoff}): "
                f"{', '.join(self.from_priors) or 'none'}.\n\n{points}\n\n"
                f"## Per series\n\n{series}\n\n## Direction of synthetic-opioid deaths\n\n"
                f"{directions}\n\nCoverage of the 90% intervals ({n} points): model "
                f"{cov['model']:.0%}, with model error {cov['model_error']:.0%}, observation "
                f"{cov['observation']:.0%}.\n")


def run_backtest(base: ModelParameters, targets_cfg: Mapping[str, Any],
                 calibration_cfg: Mapping[str, Any], cutoff: int, draws: int = 200,
                 seed: int = 0, progress: Callable[[str], None] = print) -> Backtest:
    """Fit up to `cutoff`, sample the posterior, forecast to the data's last year and score."""
    calib = dict(calibration_cfg)
    for key in ("params_file", "posterior_file"):
        calib.pop(key, None)
    opts = calibration_options(calib)
    last = check_cutoff(cutoff, targets_cfg)
    levers = LeverSet.from_mapping({})
    targets = load_targets(targets_up_to(targets_cfg, cutoff), cutoff)
    base, fit_only = map_fit_setup(base, opts)
    problem = build_problem(base, levers, SolverSettings(end_year=cutoff), targets, fit_only,
                            opts["rtol"])
    progress(f"fitting {len(problem.free)} parameters to {targets.n_rows} comparisons up to {cutoff}")
    result = fit(problem, opts, progress=progress)
    fitted = base.replace(**result.values)
    wider = posterior_problem(problem, fitted, opts)
    post = sample_posterior(wider, opts, progress=progress)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(post.draws), size=min(draws, len(post.draws)), replace=False)
    sample = post.draws[pick]
    from_priors = uninformed(wider, post.draws)
    for name in from_priors:
        sample[:, post.names.index(name)] = sample_prior_values(name, len(sample), rng)
    if from_priors:
        progress(f"drawn from their priors (the data to {cutoff} do not inform them): "
                 f"{', '.join(from_priors)}")
    # the same posterior scored against every figure of the data, later years included
    full = load_targets(targets_cfg, last)
    scoring = build_problem(fitted, levers, SolverSettings(end_year=last), full,
                            rtol=opts["sample_rtol"], roles=("fit", "subst", "unc"))
    scoring.free = [next(f for f in scoring.free if f.name == name) for name in post.names]
    progress(f"forecasting {len(pick)} posterior draws to {last}")
    rows = [r for r in predictive_coverage(scoring, sample, seed) if r["year"] > cutoff]
    for r in rows:
        r["error"] = r["model_median"] / r["observed"] - 1.0
    directions = yearly_directions(scoring, sample, cutoff)
    return Backtest(cutoff, last, rows, directions, float(result.cost), len(pick),
                    sampler_summary(post), from_priors)


def sampler_summary(post: Posterior) -> dict[str, Any]:
    """What a backtest states of its posterior's sampling: chains, independent groups (with more
    than one, R-hat compares independent runs), particles per chain, tempering stages, R-hat max,
    bulk ESS min and whether both meet the posterior's thresholds."""
    return {"chains": post.chains, "independent groups": post.info["independent groups of chains"],
            "particles per chain": post.info["particles per chain"], "stages": post.info["stages"],
            "R-hat max": round(post.r_hat_max, 3), "bulk ESS min": round(post.ess_bulk_min),
            "converged": (f"{'yes' if post.converged else 'NO'} (R-hat < {RHAT_MAX}, bulk ESS "
                          f">= {ESS_BULK_MIN}, every sampled parameter)")}


def uninformed(problem: Problem, draws: np.ndarray, n_check: int = 8) -> list[str]:
    """The sampled parameters of `problem` its likelihood does not depend on: moving one to its
    prior's 5% or 95% quantile changes the log likelihood of none of the first `n_check` of
    `draws` (n, k; parameter units of problem.names) by more than FLAT.  One batch of model runs."""
    base = draws[:n_check]
    trials = [base]
    for i, f in enumerate(problem.free):
        for q in (0.05, 0.95):
            moved = base.copy()
            moved[:, i] = float(prior_distribution(f.name).icdf(q))
            trials.append(moved)
    batch = np.vstack(trials)
    z = np.column_stack([f.to_z(batch[:, i]) for i, f in enumerate(problem.free)])
    ll = problem.log_likelihood(z).reshape(len(trials), len(base))
    change = np.abs(ll[1:] - ll[0]).reshape(len(problem.free), -1)
    return [f.name for f, c in zip(problem.free, change) if np.all(c <= FLAT)]


def yearly_directions(problem: Problem, draws: np.ndarray, cutoff: int) -> list[dict[str, Any]]:
    """For synthetic-opioid deaths, each change year-1 -> year with year > cutoff: observed,
    median modelled change and the share of draws in which deaths fall."""
    labels, targets, log_model, _, _ = row_samples(problem, draws)
    by_year = {t.years[-1]: (t.value, t.value * np.exp(log_model[:, j]))
               for j, t in enumerate(targets) if t.series == DIRECTION_SERIES}
    out = []
    for year in sorted(by_year):
        if year - 1 in by_year and year > cutoff:
            (obs0, mod0), (obs1, mod1) = by_year[year - 1], by_year[year]
            change = mod1 / mod0 - 1.0
            out.append({"change": f"{year - 1}->{year}", "observed": obs1 / obs0 - 1.0,
                        "median": float(np.median(change)),
                        "share_falling": float(np.mean(change < 0))})
    return out
