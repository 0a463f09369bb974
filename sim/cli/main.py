"""Command-line layer: the `fentsim` Hydra app (Hydra: sim/cli and sim/hydra_compose.py only).

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
import sys
from pathlib import Path
from typing import Any

import hydra
import xarray as xr
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sim.api import label, prepare_run
from sim.cli.app import (CONFIG_DIR, DEBUG_ENV, EXIT_INTERRUPTED, EXIT_TERMINATED,  # noqa: F401
                         EXIT_USER_ERROR, config_group_null, debug_requested, folder_error,
                         interrupted, job_config, plain_config, run_app, user_errors)
from sim.cli.sweep import load_expected
from sim.hydra_compose import hydra_error_line, parse_override  # noqa: F401  (re-exported)
from sim.sweeps.aggregate import JOB_ERROR_FILENAME
from sim.config import RunConfig, check_output, check_resources
from sim.calibrate.ensemble import Ensemble
from sim.errors import InputError, SolverError
from sim.results.io import ENGINE, remove_stale_temporaries, write_dataset, write_text_atomic
from sim.model.compiled import Heartbeat
from sim.model.parameters import ModelParameters
from sim.sweeps.resume import (CONFIG_HASH_ATTR, checksum_path, finished_result, identity_attrs,
                               write_checksum)
from sim.results.summary import headline, summary_table

log = logging.getLogger(__name__)


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
    check_own_result(out, resume)
    if resume and finished_result(out, digest):
        remove_stale_temporaries(out)
        log.info(f"{job.prefix}skipped: {out} already holds this job's result (config hash "
                 f"{digest[:12]})")
        return out
    scenario = cfg.get("scenario") or {}
    if scenario.get("intensity") == 0 and scenario.get("name") not in (None, "baseline"):
        log.warning(f"{job.prefix}scenario.intensity=0: scenario {scenario.get('name')} runs as "
                    f"the baseline (no departure from history)")
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
    write_checksum(out)   # resuming skips this job only while its data match (sim/sweeps/resume.py)
    with contextlib.closing(ds):
        log.log(detail, summary_table(ds, years))
        log.log(detail, f"wrote {out}")
        if job.in_sweep:
            log.info(f"{job.prefix}{' '.join(job.overrides) or '(no overrides)'}: "
                     f"{headline(ds, *sweep_measure())}")
    remove_stale_temporaries(out)
    return out


def check_own_result(out: Path, resume: bool = False) -> None:
    """InputError if the result file to write is a symbolic link, or an existing file fentsim did
    not write (no checksum of a finished job beside it, no fentsim title; in a resumed sweep an
    HDF5 file cut short by a kill counts as the job's own): it is not replaced."""
    from sim.results.io import netcdf_title

    if out.is_symlink() or out.parent.is_symlink():
        raise InputError(f"output file {str(out)!r}: is (in) a symbolic link (fentsim never writes "
                         f"through links); allowed: remove the link, or another run folder")
    if not out.exists() or checksum_path(out).is_file():
        return
    title = netcdf_title(out)
    if title is None and resume:
        with contextlib.suppress(OSError), open(out, "rb") as fh:
            title = "fentsim (cut short)" if fh.read(4) == b"\x89HDF" else None
    if not (title or "").startswith("fentsim"):
        raise InputError(f"output file {str(out)!r}: already exists and was not written by "
                         f"fentsim; allowed: another run folder (hydra.run.dir / hydra.sweep.dir), "
                         f"or remove that file first")


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
    from sim.sweeps.aggregate import CHUNK_KEY, swept_keys

    if not HydraConfig.initialized():
        return SweepJob(False)
    hc = HydraConfig.get()
    overrides = [str(o) for o in hc.overrides.task]
    if hc.mode != RunMode.MULTIRUN:
        return SweepJob(False, overrides=overrides)
    expected = load_expected(Path(hc.sweep.dir)) or [overrides]
    given = dict(parse_override(o) for o in overrides)
    # (a slice of a split ensemble is no cell: its result joins the others along draw)
    keys = [k for k in swept_keys(expected, parse_override) if k != CHUNK_KEY] if len(expected) > 1 else []
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
    with contextlib.suppress(InputError, OSError):   # never through a link out of the sweep
        out = output_path(plain_config(cfg))
        sweep_dir = Path(HydraConfig.get().sweep.dir).resolve()
        if not job_dir.is_symlink() and not out.is_symlink() and \
                sweep_dir in out.resolve().parents:
            out.unlink(missing_ok=True)
            checksum_path(out).unlink(missing_ok=True)


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


def main() -> None:
    """Entry point of `fentsim`: the Hydra app with a short --help and one-line errors
    (sim/cli/app.py: Hydra runs with HYDRA_FULL_ERROR=1 and its errors are caught there; the
    user's own choice is kept in FENTSIM_DEBUG).  Ctrl-C ends with one line and exit status 130
    (SIGTERM: 143); an output folder Hydra cannot create or write is one line."""
    run_app(app, "fentsim")


if __name__ == "__main__":
    main()
