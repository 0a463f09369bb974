"""Command-line layer: the `fentsim` Hydra app.  The only place (with sim/cli_*.py) that imports Hydra.

User mistakes (InputError, and Hydra's own composition errors such as an unknown override key or
config option) print one line to stderr and exit with status 2; set HYDRA_FULL_ERROR=1 to see the
traceback instead.

In a sweep (`-m`), a job whose result file already holds the same resolved config (by hash) is not
run again, so re-running an interrupted sweep with the same `hydra.sweep.dir` resumes it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
import xarray as xr
from hydra.core.hydra_config import HydraConfig
from hydra.errors import (ConfigCompositionException, MissingConfigException,
                          OverrideParseException)
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from sim import paths
from sim.sweeps.aggregate import JOB_ERROR_FILENAME
from sim.config import RunConfig, build_run, check_output, unknown_key_error
from sim.calibrate.ensemble import DEFAULT_PARAMS, Ensemble, ensemble_of, posterior_file_for
from sim.errors import InputError, SolverError
from sim.results.io import ENGINE, write_dataset, write_text_atomic
from sim.model.parameters import ModelParameters
from sim.sweeps.resume import CONFIG_HASH_ATTR, config_hash, finished_result
from sim.results.run import simulate
from sim.model.scenarios import apply_intensity
from sim.results.summary import summary_table

CONFIG_DIR = str(paths.CONFIG_DIR)
EXIT_USER_ERROR = 2


DEBUG_ENV = "FENTSIM_DEBUG"  # carries the user's HYDRA_FULL_ERROR choice into jobs and workers


def debug_requested() -> bool:
    """True if the user asked for tracebacks (HYDRA_FULL_ERROR=1 when fentsim started)."""
    return os.environ.get(DEBUG_ENV, os.environ.get("HYDRA_FULL_ERROR", "0")) == "1"


@contextlib.contextmanager
def user_errors(prog: str = "fentsim", debug: bool = False) -> Iterator[None]:
    """Turn InputError/SolverError into a one-line message and exit status 2 (unless debugging)."""
    try:
        yield
    except (InputError, SolverError) as exc:
        if debug or debug_requested():
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def hydra_error_line(exc: Exception) -> str:
    """One line for Hydra's (multi-line) composition and override errors."""
    if isinstance(exc, MissingConfigException) and exc.options is not None and exc.missing_cfg_file:
        group, _, name = str(exc.missing_cfg_file).rpartition("/")
        from sim.errors import did_you_mean
        return (f"{group}: value {name!r} not allowed{did_you_mean(name, exc.options)}; allowed: "
                f"{', '.join(exc.options)}")
    cause = exc.__cause__ if isinstance(exc, ConfigCompositionException) else exc
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None):
        return str(unknown_key_error(str(cause.full_key)))
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    key = getattr(cause, "full_key", None)
    if isinstance(exc, OverrideParseException):
        return f"override syntax: {first} (see https://hydra.cc/docs/advanced/override_grammar/basic/)"
    return f"{key}: {first}" if key else first


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved job config as plain Python containers (Hydra's own node excluded)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def output_path(cfg: dict[str, Any]) -> Path:
    """Where this job writes its result: Hydra's output dir / output.filename (checked by build_run)."""
    output = {"filename": (cfg.get("output") or {}).get("filename", "result.nc")}
    check_output(output)
    return Path(HydraConfig.get().runtime.output_dir) / str(output["filename"])


def with_posterior_of_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """A posterior ensemble without `ensemble.file` uses the posterior of the selected `params`
    (sim/data/posterior_<params>.csv); the file is written into the config, so the result records
    it.  Outside a Hydra run (compose API) the default calibration's posterior is used."""
    ensemble = dict(cfg.get("ensemble") or {})
    if not str(ensemble.get("name", "none")).startswith("posterior") or ensemble.get("file"):
        return cfg
    try:
        params_name = HydraConfig.get().runtime.choices.get("params") or DEFAULT_PARAMS
    except ValueError:   # HydraConfig not set
        params_name = DEFAULT_PARAMS
    ensemble["file"] = posterior_file_for(str(params_name))
    return {**cfg, "ensemble": ensemble}


def validate_job(cfg: dict[str, Any]) -> tuple[dict[str, Any], RunConfig, Ensemble]:
    """Validate a composed job config: scenario intensity applied, run objects and draws built.

    Every user input is checked here, before anything is computed or written.
    """
    cfg = apply_intensity(cfg)
    cfg = with_posterior_of_params(cfg)
    run = build_run(cfg)
    return cfg, run, ensemble_of(run.params, run.ensemble)


def prepare_job(cfg: dict[str, Any]) -> tuple[dict[str, Any], RunConfig, ModelParameters, int | None]:
    """`validate_job` with this job's parameter draws built all at once, and the seed."""
    cfg, run, ensemble = validate_job(cfg)
    return cfg, run, ensemble.params(), ensemble.seed


def run_job(cfg: dict[str, Any], resume: bool = False) -> Path:
    """Run one configured job: build, simulate, write atomically, print the summary.

    `scenario.intensity` scales the lever interventions first (sim/model/scenarios.py); the config
    recorded in the result is the one actually run.  With `resume`, a result already written for
    the same resolved config (same hash) is kept and the job is skipped.  With
    `ensemble.chunk_size`, the job's draws run in canonical chunks written incrementally
    (sim/sweeps/chunked.py), and the summary is read back from the file.
    """
    cfg, run, ensemble = validate_job(cfg)
    out = output_path(cfg)
    digest = config_hash(cfg)
    if resume and finished_result(out, digest):
        print(f"skipped: {out} already holds this job's result (config hash {digest[:12]})")
        return out
    years = run.output.get("summary_years", [2013, 2015, 2017, 2020, 2030])
    if ensemble.chunk_size is None:
        ds = simulate(ensemble.params(), run.levers, run.solver, config=cfg, seed=ensemble.seed)
        ds.attrs[CONFIG_HASH_ATTR] = digest
        write_dataset(ds, out)
        print(summary_table(ds, years))
    else:
        from sim.sweeps.chunked import run_chunked  # local: h5py/h5netcdf only for chunked runs

        run_chunked(ensemble.params_for, ensemble.draws, ensemble.chunk_size, run.levers,
                    run.solver, out, config=cfg, seed=ensemble.seed,
                    attrs={CONFIG_HASH_ATTR: digest})
        with xr.open_dataset(out, engine=ENGINE, decode_times=False) as ds:  # lazy: row by row
            print(summary_table(ds, years))
    print(f"wrote {out}")
    return out


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> None:
    """fentsim: run the model for the composed config and write results/…/result.nc.

    In a multirun (-m) a job with bad input prints its one-line error, records it in
    `<job dir>/error.txt` and returns, so the other jobs still run; the end-of-sweep callback then
    reports it and exits non-zero.  A job already finished with the same config is skipped.
    """
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        job_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            run_job(plain_config(cfg), resume=True)
        except (InputError, SolverError) as exc:
            if debug_requested():
                raise
            overrides = " ".join(HydraConfig.get().overrides.task)
            print(f"fentsim: error: job {HydraConfig.get().job.num} ({overrides}): {exc}",
                  file=sys.stderr)
            write_text_atomic(f"{type(exc).__name__}: {exc}\n", job_dir / JOB_ERROR_FILENAME)
            with contextlib.suppress(InputError):  # a result left by an earlier run is stale now
                output_path(plain_config(cfg)).unlink(missing_ok=True)
        else:
            (job_dir / JOB_ERROR_FILENAME).unlink(missing_ok=True)
        return
    with user_errors():
        run_job(plain_config(cfg))


def main() -> None:
    """Entry point of `fentsim`: the Hydra app, with Hydra's own errors made one line.

    Hydra prints composition errors (unknown override key, unknown config option, bad override
    syntax) over several lines unless HYDRA_FULL_ERROR=1; so the app runs with HYDRA_FULL_ERROR=1
    and the errors are caught here.  The user's own choice is kept in FENTSIM_DEBUG.
    """
    debug = debug_requested()
    os.environ[DEBUG_ENV] = "1" if debug else "0"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        app()
    except (ConfigCompositionException, MissingConfigException, OverrideParseException,
            OmegaConfBaseException) as exc:
        if debug:
            raise
        print(f"fentsim: error: {hydra_error_line(exc)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
