"""Command-line layer: the `fentsim` Hydra app.  The only place (with sim/cli_*.py) that imports Hydra.

User mistakes (InputError, and Hydra's own composition errors such as an unknown override key or
config option) print one line to stderr and exit with status 2; set HYDRA_FULL_ERROR=1 to see the
traceback instead.

In a sweep (`-m`), a job whose result file already holds the same resolved config and input files
(by hash) is not run again, so re-running an interrupted sweep with the same `hydra.sweep.dir`
resumes it.  A job that fails for any reason records why in `<job dir>/error.txt` and the other
jobs still run.  Ctrl-C prints one line and exits with status 130 (SIGTERM: 143; parallel
launchers stop their workers); an unusable run folder (a file, read-only) is one line too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
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
from sim.api import label, prepare_run
from sim.sweeps.aggregate import JOB_ERROR_FILENAME
from sim.config import RunConfig, check_output, check_resources, unknown_key_error
from sim.calibrate.ensemble import Ensemble, with_posterior_of
from sim.errors import InputError, SolverError
from sim.results.io import ENGINE, remove_stale_temporaries, write_dataset, write_text_atomic
from sim.model.compiled import Heartbeat
from sim.model.parameters import ModelParameters
from sim.sweeps.resume import CONFIG_HASH_ATTR, finished_result, identity_attrs
from sim.results.summary import headline, summary_table

CONFIG_DIR = str(paths.CONFIG_DIR)
EXIT_USER_ERROR = 2
log = logging.getLogger(__name__)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


DEBUG_ENV = "FENTSIM_DEBUG"  # carries the user's HYDRA_FULL_ERROR choice into jobs and workers


def debug_requested() -> bool:
    """True if the user asked for tracebacks (HYDRA_FULL_ERROR=1 when fentsim started)."""
    return os.environ.get(DEBUG_ENV, os.environ.get("HYDRA_FULL_ERROR", "0")) == "1"


EXIT_TERMINATED = 143   # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`), raised like Ctrl-C so that launchers stop their workers the same way."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def interrupted(prog: str, exc: BaseException | None = None) -> None:
    """Ctrl-C: one line and exit status 130 (143 for SIGTERM), no traceback."""
    if isinstance(exc, Terminated):
        print(f"{prog}: terminated", file=sys.stderr)
        sys.exit(EXIT_TERMINATED)
    print(f"{prog}: interrupted", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def user_errors(prog: str = "fentsim", debug: bool = False) -> Iterator[None]:
    """Turn InputError/SolverError into a one-line message and exit status 2, and Ctrl-C into one
    line and exit status 130 (unless debugging)."""
    try:
        yield
    except (InputError, SolverError) as exc:
        if debug or debug_requested():
            raise
        discard_rejected_run()
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{prog}: error: {line}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt as exc:
        if debug or debug_requested():
            raise
        interrupted(prog, exc)


def discard_rejected_run() -> None:
    """A rejected input leaves nothing behind: remove what Hydra wrote on entering this (single)
    run, its `.hydra/` folder and its log, and the run folder if that leaves it empty (a folder
    holding anything else is left alone)."""
    if not HydraConfig.initialized() or HydraConfig.get().mode == RunMode.MULTIRUN:
        return
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    if not out.is_dir():
        return
    ours = {hc.output_subdir or ".hydra", f"{hc.job.name}.log"}
    if any(p.name not in ours for p in out.iterdir()):
        return
    import shutil

    logging.shutdown()  # close the log file before removing it
    with contextlib.suppress(OSError):
        shutil.rmtree(out)


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


def job_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved job config, its posterior ensemble reading the posterior of the selected
    `params` (sim.calibrate.ensemble.with_posterior_of)."""
    return with_posterior_of(plain_config(cfg), HydraConfig.get().runtime.choices.get("params"))


def output_path(cfg: dict[str, Any]) -> Path:
    """Where this job writes its result: Hydra's output dir / output.filename (checked by build_run)."""
    output = {"filename": (cfg.get("output") or {}).get("filename", "result.nc")}
    check_output(output)
    return Path(HydraConfig.get().runtime.output_dir) / str(output["filename"])


def validate_job(cfg: dict[str, Any], out_dir: Path | None = None
                 ) -> tuple[dict[str, Any], RunConfig, Ensemble]:
    """Validate a composed job config: scenario intensity applied, run objects and draws built.

    Every user input is checked here, before anything is computed or written (the Python API,
    `sim.api.run`, runs the same function), including the estimated memory of the run and (with
    `out_dir`) the size of its result file against the free disk space
    (sim.config.check_resources).
    """
    return prepare_run(cfg, out_dir)


def prepare_job(cfg: dict[str, Any]) -> tuple[dict[str, Any], RunConfig, ModelParameters, int | None]:
    """`validate_job` with this job's parameter draws built all at once, and the seed."""
    cfg, run, ensemble = validate_job(cfg)
    return cfg, run, ensemble.params(), ensemble.seed


def run_job(cfg: dict[str, Any], resume: bool = False) -> Path:
    """Run one configured job: build, simulate, write atomically, log the summary.

    `scenario.intensity` scales the lever interventions first (sim/model/scenarios.py); the config
    recorded in the result is the one actually run.  With `resume`, a result already written for
    the same resolved config (same hash) is kept and the job is skipped.  With
    `ensemble.chunk_size`, the job's draws run in canonical chunks written incrementally
    (sim/sweeps/chunked.py), and the summary is read back from the file.

    The result carries scalar coordinates: its scenario, intensity and, in a sweep, every swept
    key's value (`sim.api.run_labels`).  In a sweep the console gets one line a job ("job k of
    N", its overrides and headline number) and the job's log file the whole summary.
    """
    job = sweep_job()
    with Heartbeat(log.info, f"{job.prefix}still running"):  # a line after every 5 s of silence
        return _run_job(cfg, job, resume)


def _run_job(cfg: dict[str, Any], job: SweepJob, resume: bool) -> Path:
    """`run_job` for this job of its sweep (or a single run)."""
    out = output_path(cfg)
    cfg, run, ensemble = validate_job(cfg)
    identity = identity_attrs(cfg, ensemble.inputs)
    digest = identity[CONFIG_HASH_ATTR]
    if resume and finished_result(out, digest):
        remove_stale_temporaries(out)
        log.info(f"{job.prefix}skipped: {out} already holds this job's result (config hash "
                 f"{digest[:12]})")
        return out
    check_resources(run, out.parent)  # the result file fits on the disk
    detail = logging.DEBUG if job.in_sweep else logging.INFO
    years = run.output.get("summary_years", [2013, 2015, 2017, 2020, 2030])
    command = "fentsim " + " ".join(job.overrides)
    if ensemble.chunk_size is None:
        ds = label(run.simulate(ensemble, cfg), cfg, job.swept, command, ensemble)
        write_dataset(ds, out)
    else:
        from sim.sweeps.chunked import run_chunked  # local: h5py/h5netcdf only for chunked runs

        labelled = label(xr.Dataset(), cfg, job.swept, command)
        run_chunked(ensemble.params_for, ensemble.draws, ensemble.chunk_size, run.levers,
                    run.solver, out, config=cfg, seed=ensemble.seed,
                    attrs={**labelled.attrs, **identity}, coords=dict(labelled.coords),
                    progress=lambda m: log.log(detail, m), ids_for=ensemble.ids,
                    run_draws=run.draws_simulator(ensemble, cfg))
        ds = xr.open_dataset(out, engine=ENGINE, decode_times=False)  # lazy: row by row
    with contextlib.closing(ds):
        log.log(detail, summary_table(ds, years))
        log.log(detail, f"wrote {out}")
        if job.in_sweep:
            log.info(f"{job.prefix}{' '.join(job.overrides) or '(no overrides)'}: "
                     f"{headline(ds, *sweep_measure())}")
    remove_stale_temporaries(out)
    return out


class SweepJob:
    """Where a job stands: in a sweep or not, 'job k of N', its overrides and swept values."""

    def __init__(self, in_sweep: bool, number: int = 0, total: int | None = None,
                 overrides: list[str] | None = None, swept: dict[str, Any] | None = None) -> None:
        self.in_sweep, self.number, self.total = in_sweep, number, total
        self.overrides, self.swept = overrides or [], swept or {}

    @property
    def prefix(self) -> str:
        if not self.in_sweep:
            return ""
        return f"job {self.number + 1}" + (f" of {self.total}" if self.total else "") + ": "


def sweep_measure() -> tuple[list[int], str]:
    """(window, variable) the sweep compares over (hydra.callbacks.aggregate), so that each job's
    console line reports the number the sweep's comparison uses; (2020-2030, deaths_overdose)."""
    from sim.sweeps.compare import DEFAULT_VARIABLE, DEFAULT_WINDOW

    agg = ((HydraConfig.get().callbacks or {}).get("aggregate") or {}) if HydraConfig.initialized() else {}
    return list(agg.get("window") or DEFAULT_WINDOW), str(agg.get("variable") or DEFAULT_VARIABLE)


def sweep_job() -> SweepJob:
    """This job's place in its sweep, from Hydra's config and the sweep's multirun.yaml."""
    from sim.sweeps.aggregate import CHUNK_KEY, parse_override, swept_keys

    if not HydraConfig.initialized():
        return SweepJob(False)
    hc = HydraConfig.get()
    overrides = [str(o) for o in hc.overrides.task]
    if hc.mode != RunMode.MULTIRUN:
        return SweepJob(False, overrides=overrides)
    from sim.cli.sweep import load_expected  # local: sim.cli.sweep imports this module

    expected = load_expected(Path(hc.sweep.dir)) or [overrides]
    given = dict(parse_override(o) for o in overrides)
    # (a slice of a split ensemble is no cell: its result joins the others along draw)
    keys = [k for k in swept_keys(expected) if k != CHUNK_KEY] if len(expected) > 1 else []
    return SweepJob(True, int(hc.job.num), len(expected), overrides,
                    {k: given[k] for k in keys if k in given})

def record_job_failure(exc: BaseException, job_dir: Path, cfg: DictConfig) -> None:
    """A multirun job failed: one line on stderr, the reason in `<job dir>/error.txt`, and any
    result left by an earlier run removed (it is stale now)."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = type(exc).__name__
    line = message if isinstance(exc, (InputError, SolverError)) else f"{kind}: {message}".rstrip(": ")
    overrides = " ".join(HydraConfig.get().overrides.task)
    print(f"fentsim: error: job {HydraConfig.get().job.num} ({overrides}): {line}", file=sys.stderr)
    with contextlib.suppress(InputError, OSError):
        write_text_atomic(f"{kind}: {message}\n", job_dir / JOB_ERROR_FILENAME)
    with contextlib.suppress(InputError, OSError):
        output_path(plain_config(cfg)).unlink(missing_ok=True)


def check_job_dir(job_dir: Path) -> None:
    """A multirun job needs a folder of its own inside the sweep folder (`hydra.sweep.subdir`)."""
    sweep_dir = Path(HydraConfig.get().sweep.dir).resolve()
    job = job_dir.resolve()
    if job == sweep_dir or sweep_dir not in job.parents:
        raise InputError(f"hydra.sweep.subdir: value {HydraConfig.get().sweep.subdir!r} puts job "
                         f"{HydraConfig.get().job.num} in {str(job)!r}, not in a folder of its own "
                         f"under {str(sweep_dir)!r}; allowed: a per-job name such as "
                         f"${{hydra.job.num}} (the default)")


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> None:
    """fentsim: run the model for the composed config and write results/…/result.nc.

    In a multirun (-m) a job that fails (bad input, a solver failure, or anything else: a full
    disk, a bug) prints one line, records it in `<job dir>/error.txt` and returns, so the other
    jobs still run; the end-of-sweep callback then reports it and exits non-zero.  A job already
    finished with the same config and input files is skipped.
    """
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        job_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            check_job_dir(job_dir)
            run_job(job_config(cfg), resume=True)
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the sweep
            if debug_requested():
                raise
            record_job_failure(exc, job_dir, cfg)
        else:
            (job_dir / JOB_ERROR_FILENAME).unlink(missing_ok=True)
        return
    with user_errors():
        run_job(job_config(cfg))


def config_group_null(argv: Sequence[str]) -> str | None:
    """The one-line error for `GROUP=null` on the command line (Hydra raises a bare ValueError)."""
    for arg in argv:
        key, sep, value = arg.partition("=")
        group = key.lstrip("+~")
        if sep and value.strip().lower() in ("null", "~", "none") and (paths.CONFIG_DIR / group).is_dir():
            options = sorted(p.stem for p in (paths.CONFIG_DIR / group).glob("*.yaml"))
            return (f"{group}: value null not allowed (a config group needs one of its configs); "
                    f"allowed: {', '.join(options)}")
    return None


def folder_error(exc: OSError, argv: Sequence[str]) -> str:
    """One line for an unusable output folder (a file, read-only, no permission, disk full)."""
    field = "hydra.sweep.dir" if ("-m" in argv or "--multirun" in argv) else "hydra.run.dir"
    where = exc.filename if exc.filename is not None else "the output folder"
    reason = exc.strerror or type(exc).__name__
    return (f"{field}: cannot write {str(where)!r} ({reason}); allowed: a writable folder "
            f"(not a file)")


def main() -> None:
    """Entry point of `fentsim`: the Hydra app with a short --help and one-line errors
    (sim/cli/app.py: Hydra runs with HYDRA_FULL_ERROR=1 and its errors are caught there; the
    user's own choice is kept in FENTSIM_DEBUG).  Ctrl-C ends with one line and exit status 130
    (SIGTERM: 143); an output folder Hydra cannot create or write is one line."""
    from sim.cli.app import run_app

    run_app(app, "fentsim")


if __name__ == "__main__":
    main()
