"""The 'which lever matters' study: sensitivity, funding sweep and scenario discovery.  Hydra-free.

`run_study(cfg, out_dir, steps)` runs the chosen steps for a plain config (as `fentsim-study`
composes it: sections params, solver, ensemble, costs, study, sensitivity, funding, discovery) and
writes into `out_dir`:

- sensitivity: sensitivity.nc (Sobol S1/ST with 95% bootstrap CIs at base sample N and 2N, Morris
  mu*, sigma), sensitivity.png;
- funding: funding.nc, funding.csv, frontier.png (deaths averted against annual spending per lever);
- discovery: discovery.nc (cases), discovery_rules.md;
- report: report.md (sim/study/report.py), also `fentsim-study-report <dir>`.

Every file is written atomically; figures via sim.sweeps.plots.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.sweeps.compare import write_text_atomic
from sim.funding.costs import CostModel
from sim.study.discovery import (case_table, discovery_options, find_rules, rules_markdown,
                           supply_vs_demand, widen_ensemble)
from sim.calibrate.ensemble import build_ensemble, posterior_path
from sim.errors import InputError, checked_number, reject_unknown_keys
from sim.model.compiled import Heartbeat
from sim.study.funding import funding_sweep
from sim.results.io import write_dataset
from sim.model.parameters import ModelParameters
from sim.study.sensitivity import (Outcome, build_factors, indices_dataset, model_evaluator, morris,
                             salib_problem, sensitivity_options, sobol, sobol_groups)
from sim.engine.solver import SolverSettings

SECTIONS = ("params", "solver", "ensemble", "costs", "study", "sensitivity", "funding",
            "discovery", "experiment")
STUDY_KEYS = ("name", "description", "outcome", "start", "ramp", "seed", "steps")
STEPS = ("sensitivity", "funding", "discovery", "report")
FUNDING_KEYS = ("spending", "levers")


def study_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Validated `study` section."""
    study = dict(cfg.get("study") or {})
    reject_unknown_keys("study", study, STUDY_KEYS)
    out = {"name": "study", "description": "", "start": 2020.0, "ramp": 1.0, "seed": 0,
           "steps": list(STEPS)}
    out.update({k: v for k, v in study.items() if v is not None})
    out["outcome"] = Outcome.from_mapping(study.get("outcome"))
    for key, lo, hi in (("start", 2011.0, 2100.0), ("ramp", 1e-3, 50.0)):
        out[key] = checked_number(f"study.{key}", out[key], f"a number in [{lo:g}, {hi:g}] yr",
                                  lambda v, lo=lo, hi=hi: lo <= v <= hi)
    seed = out["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"study.seed: value {seed!r} not allowed; allowed: an integer >= 0")
    steps = out["steps"]
    if isinstance(steps, str) or not isinstance(steps, Sequence):
        raise InputError(f"study.steps: value {steps!r} not allowed; allowed: a list of "
                         f"{', '.join(STEPS)}")
    reject_unknown_keys("study.steps", steps, STEPS)
    return out


def spending_list(field: str, value: Any) -> list[float]:
    """`value` as a list of annual amounts > 0 (million US$/yr; one number is a list of one),
    else a one-line InputError naming `field`."""
    values = [value] if isinstance(value, (int, float, str)) else value
    if isinstance(values, Sequence) and len(values) > 0:
        try:
            return [checked_number(field, v, "", lambda x: x > 0) for v in values]
        except InputError:
            pass
    raise InputError(f"{field}: value {value!r} not allowed; allowed: a list of annual amounts > 0 "
                     f"in million US$/yr, e.g. {field}=[10,100,1000]")


def posterior_draws(ensemble: Mapping[str, Any]) -> tuple[list[str], np.ndarray] | None:
    """The posterior file's (names, values), or None when the ensemble is 'none'."""
    from sim.calibrate.fit import read_draws

    if (ensemble or {}).get("name", "none") != "posterior":
        return None
    return read_draws(posterior_path(ensemble.get("file")))


def run_study(cfg: Mapping[str, Any], out_dir: Path, steps: Sequence[str] | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Validate everything first, then run `steps` (default: study.steps) and write the outputs.

    Progress goes to `log` (default: this module's logger, which the commands write to the
    console and to the run's log file)."""
    log = log or logging.getLogger(__name__).info
    reject_unknown_keys("config", [k for k in cfg if k != "hydra"], SECTIONS)
    opts = study_options(cfg)
    steps = list(steps or opts["steps"])
    base = ModelParameters.from_mapping(cfg.get("params") or {})
    try:
        settings = SolverSettings.from_mapping(cfg.get("solver") or {})
    except TypeError as exc:
        raise InputError(f"solver: {exc}") from None
    # every step reads annual totals only (`Outcome`: calendar-year sums of cumulative stocks,
    # the same numbers at any output step), so the time series are made yearly, not monthly: a
    # 2,000-draw batch's result dataset then takes 0.10 s instead of 0.93 s (integration 0.70 s)
    settings = dataclasses.replace(settings, output_step=1.0)
    outcome, start, ramp, seed = opts["outcome"], opts["start"], opts["ramp"], opts["seed"]
    if settings.end_year < outcome.window[1]:
        raise InputError(f"solver.end_year: value {settings.end_year} ends before the outcome "
                         f"window {outcome.window[0]}-{outcome.window[1]}; allowed: >= "
                         f"{outcome.window[1]}")
    costs = CostModel.from_mapping(cfg.get("costs"))
    sens = sensitivity_options(cfg.get("sensitivity"))
    disc = discovery_options(cfg.get("discovery"))
    fund = dict(cfg.get("funding") or {})
    reject_unknown_keys("funding", fund, FUNDING_KEYS)
    fund_levers = list(fund.get("levers") or costs.costs)
    fund_spending = spending_list("funding.spending", fund.get("spending") or [100, 300, 1000])
    spending_list("discovery.spending", disc["spending"])
    for name in fund_levers:
        costs[name]  # noqa: B018  (InputError when a lever has no unit cost)
    ensemble = dict(cfg.get("ensemble") or {})
    posterior = posterior_draws(ensemble)
    factors = build_factors(base, sens, posterior)
    draws, _ = build_ensemble(base, ensemble)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(yaml.safe_dump(_plain(cfg), sort_keys=False), out_dir / "study_config.yaml")
    with Heartbeat(log, "  still running") as log:   # a line whenever a batch runs long
        written: dict[str, Path] = {}
        if "sensitivity" in steps:
            from sim.study.report import plot_sensitivity

            groups = sobol_groups(factors)
            log(f"sensitivity: {len(factors)} factors "
                f"({sum(f.kind == 'lever' for f in factors)} levers) in {len(groups)} Sobol "
                f"factors (sobol_groups={sens['sobol_groups']}), Sobol base sample "
                f"{sens['sobol_n']} and {2 * sens['sobol_n']}: "
                f"{2 * sens['sobol_n'] * (len(groups) + 2)} runs")
            evaluate = model_evaluator(base, factors, settings, outcome, start, ramp, sens["chunk"],
                                       lambda m: log(f"  sobol {m}"), posterior)
            sob = sobol(salib_problem(factors, grouped=True), evaluate, sens["sobol_n"],
                        sens["bootstrap"], seed)
            evaluate = model_evaluator(base, factors, settings, outcome, start, ramp, sens["chunk"],
                                       lambda m: log(f"  morris {m}"))
            mor = morris(salib_problem(factors), evaluate, sens["morris_trajectories"], sens["morris_levels"],
                         sens["bootstrap"], seed)
            ds = indices_dataset(factors, sob, mor, outcome, sens["sobol_n"])
            ds.attrs.update({"start": start, "ramp": ramp, "seed": seed,
                             "lever_modes": yaml.safe_dump({f.name: f.mode for f in factors
                                                            if f.kind == "lever"})})
            written["sensitivity"] = write_dataset(ds, out_dir / "sensitivity.nc")
            written["sensitivity_png"] = plot_sensitivity(ds, out_dir / "sensitivity.png")
            log(f"sensitivity: {sob['runs']} Sobol runs in {sob['seconds']:.0f} s, {mor['runs']} "
                f"Morris runs in {mor['seconds']:.0f} s; {ds.attrs['convergence_note']}")
        if "funding" in steps:
            from sim.study.report import plot_frontier

            started = time.perf_counter()
            log(f"funding: {len(fund_levers)} levers x {len(fund_spending)} spending levels x "
                f"{draws.n_draws} draws")
            ds = funding_sweep(draws, costs, fund_levers, fund_spending,
                               start, ramp, settings, outcome, seed, sens["chunk"],
                               lambda m: log(f"  funding {m}"))
            ds.attrs["unit_costs"] = yaml.safe_dump(
                {k: vars(v) for k, v in costs.costs.items()}, sort_keys=False)
            ds.attrs["ensemble"] = yaml.safe_dump(ensemble)
            written["funding"] = write_dataset(ds, out_dir / "funding.nc")
            write_text_atomic(funding_csv(ds), out_dir / "funding.csv")
            written["frontier_png"] = plot_frontier(ds, out_dir / "frontier.png")
            log(f"funding: {ds.sizes['lever']} levers x {ds.sizes['spending']} spending levels x "
                f"{ds.sizes['draw']} draws in {time.perf_counter() - started:.0f} s")
        if "discovery" in steps:
            started = time.perf_counter()
            log(f"discovery: supply {', '.join(disc['supply'])} against demand "
                f"{', '.join(disc['demand'])} at {len(disc['spending'])} spending levels")
            fixed = posterior[0] if posterior is not None else []
            wide, varying = widen_ensemble(draws, factors, fixed, disc["seed"])
            ds = supply_vs_demand(wide, costs, disc, start, ramp, settings, outcome, seed,
                                  sens["chunk"], lambda m: log(f"  discovery {m}"))
            x, names, y = case_table(ds, wide, varying)
            rules, accuracy = find_rules(x, names, y, disc["max_depth"], disc["min_leaf_fraction"],
                                         disc["seed"])
            for j, name in enumerate(varying):
                ds[f"param_{name}"] = ("draw", wide.as_arrays()[name])
                ds[f"param_{name}"].attrs.update(units=ModelParameters.metadata(name)["units"],
                                                 long_name=f"value of parameter {name} in the draw")
            ds.attrs.update({"rules": yaml.safe_dump([vars(r) for r in rules], sort_keys=False),
                             "tree_accuracy": accuracy})
            written["discovery"] = write_dataset(ds, out_dir / "discovery.nc")
            written["rules"] = write_text_atomic(rules_markdown(rules, y, accuracy, ds),
                                                 out_dir / "discovery_rules.md")
            log(f"discovery: {len(y)} cases, supply wins {int(y.sum())}, {len(rules)} rule(s) in "
                f"{time.perf_counter() - started:.0f} s")
        if "report" in steps:
            from sim.study.report import build_report

            written["report"] = build_report(out_dir)
        for key, path in written.items():
            log(f"wrote {path}")
        return written


def funding_csv(ds) -> str:
    """Long table: lever, side, spending, metric, units, median, q05, q95."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["lever", "side", "spending_musd_per_yr", "metric", "units", "median", "q05", "q95"])
    for metric in ("deaths_averted", "deaths_averted_per_million", "cost_per_death_averted"):
        da = ds[f"{metric}_quantiles"]
        for lever in ds["lever"].values:
            for s in ds["spending"].values:
                q = da.sel(lever=lever, spending=s)
                w.writerow([lever, str(ds["lever_side"].sel(lever=lever).values), f"{s:g}", metric,
                            da.attrs["units"], *(f"{float(q.sel(quantile=p)):.6g}"
                                                 for p in (0.5, 0.05, 0.95))])
    return buf.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if k != "hydra"}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
