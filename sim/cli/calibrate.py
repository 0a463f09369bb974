"""`fentsim-calibrate`: fit the baseline to the targets (and sample a posterior ensemble).

A Hydra app sharing the config groups of `fentsim` (params, solver, targets) plus `calibration`.
Writes into its run folder (Hydra's output dir) the calibrated baseline (calibrated.yaml, all
parameters), the fit table (fit_table.md, fit_table.csv), a PNG of model against targets and
fit.yaml; with `calibration.ensemble=true` also posterior_draws.csv (sequential Monte Carlo from the priors) and convergence.csv.  Tracked files
are replaced only when asked: `calibration.promote=true` replaces the packaged parameter set of
the targets fitted (targets=both: configs/params/calibrated.yaml, and
sim/data/posterior_calibrated.csv with the ensemble; targets=article: params/article.yaml and
posterior_article.csv) and says what it replaced; `calibration.params_file=PATH` / `calibration.posterior_file=PATH` copy there.
"""

from __future__ import annotations

import csv
import logging
import platform
import re
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sim import paths
from sim.calibrate.fit import (FIXED_DIGEST_KEY, build_problem, calibration_options, fit,
                             fixed_parameters_digest, map_fit_setup, params_yaml, posterior_csv,
                             posterior_problem, read_draws)
from sim.calibrate.sampler import ESS_BULK_MIN, RHAT_MAX, reference_points, sample_posterior
from sim.cli.app import CONFIG_DIR, plain_config, user_errors
from sim.errors import InputError, reject_unknown_keys
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.results.io import write_text_atomic
from sim.results.provenance import git_commit
from sim.calibrate.report import coverage_summary, plot_fit, predictive_coverage
from sim.engine.solver import SolverSettings
from sim.calibrate.targets import fit_rows, format_table, load_targets

SECTIONS = ("params", "solver", "targets", "calibration", "report")
PARAMS_OF_TARGETS = {"both": "calibrated"}   # targets -> the params config its fit promotes to


def params_name_of(targets: str) -> str:
    """The params config (and posterior) a fit to `targets` is promoted to: targets=both ->
    params=calibrated (the default of every run), targets=article -> params=article."""
    return PARAMS_OF_TARGETS.get(targets, targets)


def promoted(targets: str) -> dict[str, Path]:
    """The tracked files `calibration.promote=true` replaces for a fit to `targets`."""
    name = params_name_of(targets)
    return {"params_file": paths.CONFIG_DIR / "params" / f"{name}.yaml",
            "posterior_file": paths.DATA_DIR / f"posterior_{name}.csv"}
logger = logging.getLogger(__name__)
log = logger.info


def output_path(value: Any, key: str) -> Path:
    """An output path from the config (relative to the working directory)."""
    if not isinstance(value, str) or not value:
        raise InputError(f"calibration.{key}: value {value!r} not allowed; allowed: a file path "
                         f"or null")
    return Path(value).expanduser().resolve()


def targets_of(opts: dict[str, Any], key: str, targets: str) -> list[Path]:
    """Where a copy of an output goes besides the run folder: the packaged file of the fit to
    `targets` (promote) and/or an explicit path; [] by default."""
    out = [promoted(targets)[key]] if opts["promote"] else []
    if opts[key] is not None:
        path = output_path(opts[key], key)
        check_own_copy(path, key)
        out += [path] if path not in out else []
    return out


OWN_MARKS = {"params_file": "Written by `fentsim-calibrate", "posterior_file": "# fentsim posterior draws"}


def check_own_copy(path: Path, key: str) -> None:
    """InputError (before the fit) if `path` is a link, a folder, or an existing file that
    fentsim-calibrate did not write: it is replaced only if it is a copy of an earlier fit."""
    if path.is_symlink() or path.is_dir():
        raise InputError(f"calibration.{key}: value {str(path)!r} is a "
                         f"{'symbolic link' if path.is_symlink() else 'folder'}; allowed: a file path")
    if not path.exists():
        return
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        head = ""
    if OWN_MARKS[key] not in head:
        raise InputError(f"calibration.{key}: value {str(path)!r} already exists and was not "
                         f"written by fentsim-calibrate; allowed: a new path, or remove that file "
                         f"first (only an earlier fit's copy is replaced)")


def replace_file(path: Path, text: str, what: str) -> None:
    """Write `text` to `path` and log what it replaced (the old file's recorded cost, if any)."""
    old = path.read_text() if path.is_file() else None
    write_text_atomic(text, path)
    if old is None:
        log(f"wrote {what} to {path}")
        return
    cost = re.search(r"cost ([0-9.eE+-]+)", old)
    log(f"replaced {what} {path}" + (f" (its cost was {cost.group(1)})" if cost else "")
        + ("; identical" if old == text else ""))


def run_calibration(cfg: dict[str, Any], out_dir: Path,
                    overrides: list[str] | None = None) -> dict[str, Any]:
    """Fit, report, write the calibrated params (and the posterior); returns a summary."""
    reject_unknown_keys("config", [k for k in cfg if k != "hydra"], SECTIONS)
    base = ModelParameters.from_mapping(cfg.get("params") or {})
    try:
        settings = SolverSettings.from_mapping(cfg.get("solver") or {})
    except TypeError as exc:
        raise InputError(f"solver: {exc}") from None
    targets = load_targets(cfg.get("targets") or {}, settings.end_year)
    started = time.perf_counter()
    opts = calibration_options(cfg.get("calibration") or {})
    report = dict(cfg.get("report") or {})
    reject_unknown_keys("report", report, ("plot_years",))
    copies = {key: targets_of(opts, key, targets.name) for key in ("params_file", "posterior_file")}
    params_name = params_name_of(targets.name)
    levers = LeverSet.from_mapping({})
    base, fit_only = map_fit_setup(base, opts)
    problem = build_problem(base, levers, settings, targets, fit_only, opts["rtol"])
    log(f"{len(problem.free)} free parameters, {targets.n_rows} target comparisons "
        f"({targets.name}), simulating {settings.start_year}-{problem.settings.end_year}")
    result = fit(problem, opts, progress=log)
    calibrated = base.replace(**result.values)
    outputs = problem.outputs(result.z[None])
    rows = fit_rows(targets, outputs, problem.settings.years)
    log("\n" + format_table(rows))
    log(f"best cost {result.cost:.4g}; {result.model_runs} batched model runs "
        f"({problem.n_draws_run} draws) in {result.seconds:.1f} s")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fit_table.md").write_text(format_table(rows, markdown=True) + "\n")
    with (out_dir / "fit_table.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["target", "kind", "definition", "observed", "model", "relative_error",
                    "tolerance_lo", "tolerance_hi", "units", "ok"])
        for r in rows:
            lo, hi = r.tolerance or (None, None)
            w.writerow([r.label, r.kind, r.definition, r.observed, r.model, r.relative_error,
                        lo, hi, r.units, r.ok])
    years = report.get("plot_years", [2010, 2020])
    png = plot_fit(calibrated, levers, settings, targets, out_dir / "fit.png",
                   (int(years[0]), int(years[1])))
    summary = {"targets": targets.name, "cost": result.cost, "free": result.values,
               "starts": result.starts, "seconds": round(result.seconds, 1),
               "model_runs": result.model_runs, "draws_run": problem.n_draws_run,
               "all_within_tolerance": all(r.ok is not False for r in rows)}
    header = (f"Calibrated baseline (params={params_name}): every parameter (literature defaults "
              f"+ values fitted to targets={targets.name}).\n"
              f"Written by `fentsim-calibrate targets={targets.name}` (seed={opts['seed']}, "
              f"cost {result.cost:.4g}); do not edit by hand.\n"
              f"Fitted: {', '.join(problem.names)}.\n"
              f"Units, bounds and sources: `fentsim-doc` or sim/model/parameters.py.")
    text = params_yaml(calibrated, header)
    (out_dir / "calibrated.yaml").write_text(text)
    for path in copies["params_file"]:
        replace_file(path, text, "the calibrated baseline")
    if opts["ensemble"]:
        wider = posterior_problem(problem, calibrated, opts)
        log(f"posterior over {len(wider.free)} parameters: the {len(problem.free)} fitted and "
            f"{len(wider.free) - len(problem.free)} substitution constants and other "
            f"uncertainties, all from their declared priors")
        reference, reference_name = reference_of(opts, targets.name, wider)
        post = sample_posterior(wider, opts, progress=log, reference=reference)
        coverage = predictive_coverage(wider, post.draws, int(opts["seed"]))
        share = coverage_summary(coverage)
        covered = (f"model {share['model']:.0%}, with model error {share['model_error']:.0%}, "
                   f"observation {share['observation']:.0%} of {len(coverage)} public-series "
                   f"figures")
        log(f"90% bands in sample: {covered}")
        head = {"fentsim posterior draws": post.info["sampler"],
                "targets": targets.name, "seed": opts["seed"], "sampler": post.info,
                "reference proposal": reference_name,
                **convergence_header(post),
                **({"coverage of the 90% bands in sample": covered} if coverage else {}),
                "regenerate": "fentsim-calibrate " + " ".join(
                    [f"targets={targets.name}", "calibration.ensemble=true",
                     "calibration.promote=true"]
                    + [o for o in overrides or [] if not o.startswith(("hydra.", "targets=",
                       "calibration.ensemble=", "calibration.promote="))]),
                FIXED_DIGEST_KEY: fixed_parameters_digest(calibrated, post.names),
                "other parameters": (f"from the params config of the run (params={params_name}, "
                                     f"whose posterior this is)")}
        text = posterior_csv(post, head)
        (out_dir / "posterior_draws.csv").write_text(text)
        write_rows(out_dir / "coverage.csv", coverage)
        (out_dir / "convergence.csv").write_text("parameter,r_hat,ess_bulk,ess_tail\n" + "".join(
            f"{n},{d['r_hat']:.4f},{d['ess_bulk']:.0f},{d['ess_tail']:.0f}\n"
            for n, d in post.diagnostics.items()))
        for path in copies["posterior_file"]:
            replace_file(path, text, "the posterior draws")
        summary["posterior"] = {"draws": len(post.draws), "seconds": round(post.seconds, 1),
                                "coverage_in_sample": share,
                                "r_hat_max": round(post.r_hat_max, 4),
                                "ess_bulk_min": round(post.ess_bulk_min, 1),
                                "converged": post.converged, **post.info}
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    log(f"calibration wall time {summary['wall_seconds']:.0f} s")
    (out_dir / "fit.yaml").write_text(yaml.safe_dump(
        {**summary, "git_commit": git_commit(), "python": platform.python_version(),
         "written": time.strftime("%Y-%m-%d %H:%M:%S")}, sort_keys=False))
    log(f"wrote the calibrated params and fit report to {out_dir} (calibrated.yaml, {png.name}, "
        f"fit_table.md, fit_table.csv, fit.yaml"
        + (", posterior_draws.csv)" if opts["ensemble"] else ")")
        + ("" if any(copies.values()) else "; nothing else replaced (calibration.promote=true "
                                               "replaces the packaged baseline)"))
    return summary


def reference_of(opts: dict[str, Any], targets: str, problem: Any) -> tuple[Any, str]:
    """The sampler's reference draws (`calibration.reference_posterior`) as points of `problem`,
    and what they are (a path, or 'none'); read before the run may replace the packaged file."""
    value = opts["reference_posterior"]
    if value is None:
        return None, "none"
    path = promoted(targets)["posterior_file"] if value == "packaged" else output_path(
        value, "reference_posterior")
    if not path.is_file():
        if value == "packaged":
            log(f"no packaged posterior {path.name}: the sampler runs without a reference proposal")
            return None, "none (no packaged posterior)"
        raise InputError(f"calibration.reference_posterior: value {value!r} is not a file; "
                         f"allowed: packaged, a posterior draws file or null")
    try:
        names, values = read_draws(path)
    except InputError as exc:
        raise InputError(f"calibration.reference_posterior: value {value!r} not usable "
                         f"({str(exc).split(': ', 1)[-1]}); allowed: packaged, a posterior draws "
                         f"file or null") from None
    log(f"reference proposal: the normal approximation of {path.name} ({len(values)} draws)")
    return reference_points(problem, names, values, np.random.default_rng([opts["seed"], 3])), \
        str(path.relative_to(paths.REPO_ROOT) if path.is_relative_to(paths.REPO_ROOT) else path)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """A list of flat dicts as CSV (columns of the first row)."""
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["label"])
        w.writeheader()
        w.writerows(rows)


def convergence_header(post: Any) -> dict[str, Any]:
    """Header lines of a posterior file stating its convergence (read back by the tests)."""
    return {"chains": post.chains, "draws per chain": len(post.draws) // post.chains,
            "r_hat max": f"{post.r_hat_max:.4f}", "ess_bulk min": f"{post.ess_bulk_min:.0f}",
            "converged": (f"{'yes' if post.converged else 'NO'} (thresholds: R-hat < {RHAT_MAX}, "
                          f"bulk ESS >= {ESS_BULK_MIN}, every parameter; ArviZ rank-normalised)"),
            "r_hat and ess_bulk per parameter": "; ".join(
                f"{n} {d['r_hat']:.3f} {d['ess_bulk']:.0f}" for n, d in post.diagnostics.items())}


@hydra.main(config_path=CONFIG_DIR, config_name="calibrate", version_base="1.3")
def app(cfg: DictConfig) -> None:
    """fentsim-calibrate: fit the baseline to the targets; write params and a fit report."""
    with user_errors("fentsim-calibrate"):
        np.seterr(all="ignore")
        hydra_cfg = HydraConfig.get()
        run_calibration(plain_config(cfg), Path(hydra_cfg.runtime.output_dir),
                        list(hydra_cfg.overrides.task))


def main() -> None:
    """Entry point of `fentsim-calibrate` (short --help, one-line errors: sim/cli/app.py)."""
    from sim.cli.app import run_app

    run_app(app, "fentsim-calibrate")


if __name__ == "__main__":
    main()
