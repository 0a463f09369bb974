"""Sweep glue that needs Hydra: the expected jobs of a multirun, the end-of-sweep callback, and
`fentsim-aggregate SWEEP_DIR`.  The combining itself is Hydra-free (sim/sweeps/aggregate.py, sim/sweeps/report.py).

`fentsim-aggregate` exit status: 0 all jobs combined; 1 some jobs missing or failed (the rest are
combined and written); 2 bad input (one-line message).

Before any job of a sweep starts, the callback refuses (one line, exit status 2): two jobs with the
same values (`x=0.5,0.50,5e-1`), a `hydra.sweep.subdir` that gives jobs no folder of their own
(e.g. `.`), a sweep folder that holds another sweep (its `multirun.yaml` launched other jobs: only
the same sweep may run there again, to resume it), and a sweep folder in which a sweep is running
(an OS lock on `.fentsim-sweep.lock` through `filelock`, held while a sweep runs and released
by the system when its process ends, however it ends), and a sweep folder holding a symbolic link
where fentsim writes.  `fentsim-aggregate` refuses a folder that `fentsim -m` did not write, and an
`--output` that is a job's result (or, without `--force`, an existing file that is no sweep).
When the sweep holds the baseline cell, the comparison table and figures are written by default
(`report: auto`; `report=false` / `--no-report` opts out); `history` names the `fentsim -m ...`
command that made the sweep.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sim.sweeps.aggregate import (CHUNK_KEY, JOB_ERROR_FILENAME, SWEEP_FILENAME, check_duplicates,
                                  combine_cells,
                                  concatenate_chunks, survey_sweep)
from sim.cli.app import EXIT_USER_ERROR, user_errors
from sim.cli.args import ArgumentParser
from sim.hydra_compose import parse_override
from sim.sweeps.compare import DEFAULT_VARIABLE, DEFAULT_WINDOW, parse_selection
from sim.errors import InputError
from sim.model.compiled import Heartbeat
from sim.results.io import remove_stale_temporaries, write_dataset
from sim.sweeps.report import sweep_report

DEFAULT_BASELINE = {"scenario": "baseline"}
LOCK_FILENAME = ".fentsim-sweep.lock"


def expected_jobs(multirun: Mapping[str, Any] | DictConfig) -> list[list[str]] | None:
    """Overrides of every job a basic-sweeper multirun launches (None if they cannot be known)."""
    cfg = multirun if isinstance(multirun, DictConfig) else OmegaConf.create(dict(multirun))
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    task = OmegaConf.select(cfg, "hydra.overrides.task") or []
    lines = [f"{k}={v}" for k, v in params.items()] + [str(t) for t in task]
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
        return BasicSweeper.split_arguments(overrides, None)[0]
    except Exception:  # other sweepers (optuna, ...) or unparsable: fall back to the jobs on disk
        return None


def load_expected(sweep_dir: Path) -> list[list[str]] | None:
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None
    try:
        return expected_jobs(OmegaConf.load(path))
    except Exception as exc:  # malformed YAML or not a Hydra config: one line
        raise InputError(f"sweep directory {str(sweep_dir)!r}: multirun.yaml cannot be read "
                         f"({type(exc).__name__}); allowed: the file fentsim -m writes") from None


def _cells(jobs: list[list[str]]) -> list[list[tuple[str, str]]]:
    """Jobs as sorted (key, typed value) pairs: equal numbers alike, order of keys ignored."""
    def canon(text: str) -> tuple[str, str]:
        key, value = parse_override(text)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        return key, repr(value)
    return [sorted(canon(t) for t in job) for job in jobs]


def check_sweep_folder(config: DictConfig, expected: list[list[str]] | None) -> None:
    """InputError if jobs would share folders, or the folder holds another sweep (module doc)."""
    sweep = OmegaConf.to_container(config.hydra.sweep, resolve=False)
    subdir, sweep_dir = str(sweep.get("subdir")), Path(str(config.hydra.sweep.dir))
    n_jobs = len(expected) if expected is not None else 2
    if "${" not in subdir:
        norm = os.path.normpath(subdir)
        if norm in (".", "") or norm.startswith("..") or os.path.isabs(norm) or n_jobs > 1:
            raise InputError(f"hydra.sweep.subdir: value {subdir!r} not allowed: every job needs a "
                             f"folder of its own under hydra.sweep.dir; allowed: "
                             f"${{hydra.job.num}} (the default) or another per-job name")
    old = sweep_dir / "multirun.yaml"
    if expected is None or not old.is_file():
        return
    try:
        before = expected_jobs(OmegaConf.load(old))
    except Exception:  # unreadable: Hydra overwrites it; the jobs' own hashes still decide
        return
    if before is not None and _cells(before) != _cells(expected):
        detail = f"{len(before)} job(s) like {' '.join(before[0]) if before else '(none)'}"
        raise InputError(f"hydra.sweep.dir: value {str(sweep_dir)!r} already holds another sweep "
                         f"({detail}); allowed: the same command again (to resume it), or another "
                         f"hydra.sweep.dir")


def check_sweep_symlinks(sweep_dir: Path) -> None:
    """InputError if the sweep folder holds a symbolic link where fentsim writes (a job folder,
    a log, a result, sweep.nc, multirun.yaml, the lock): writes would follow it elsewhere."""
    if not sweep_dir.is_dir():
        return
    for entry in sweep_dir.iterdir():
        inner = list(entry.iterdir()) if entry.is_dir() and not entry.is_symlink() else []
        for path in [entry, *inner]:
            if path.is_symlink():
                raise InputError(f"hydra.sweep.dir: {str(path)!r} is a symbolic link (fentsim "
                                 f"never writes through links); allowed: remove the link, or "
                                 f"another hydra.sweep.dir")


def acquire_lock(sweep_dir: Path) -> Any:
    """Hold `<sweep dir>/.fentsim-sweep.lock` (filelock: an OS lock, released by the system when
    the process ends, however it ends, so a stale lock is never taken over by hand); InputError if
    another live sweep holds it."""
    from filelock import FileLock, Timeout

    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(sweep_dir / LOCK_FILENAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(f"hydra.sweep.dir: value {str(sweep_dir)!r} is in use by another running "
                         f"sweep; allowed: wait for it, or another hydra.sweep.dir") from None
    return lock


def release_lock(lock: Any) -> None:
    """Release the sweep's lock (a no-op if this process does not hold it)."""
    with contextlib.suppress(OSError):
        lock.release(force=True)


def is_sweep_folder(sweep_dir: Path) -> bool:
    """Whether `sweep_dir` was written by `fentsim -m`: its multirun.yaml, or job folders whose
    .hydra/hydra.yaml says mode MULTIRUN (a run folder, or a folder of runs, is no sweep)."""
    if (sweep_dir / "multirun.yaml").is_file():
        return True
    if (sweep_dir / ".hydra").is_dir():
        return False
    jobs = [p.parent for p in sweep_dir.glob("*/.hydra")]
    def multirun(job: Path) -> bool:
        try:
            return "mode: MULTIRUN" in (job / ".hydra" / "hydra.yaml").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
    return bool(jobs) and all(multirun(j) for j in jobs)


def sweep_command(sweep_dir: Path) -> str:
    """The `fentsim -m ...` command that made a sweep (from its multirun.yaml), or ''."""
    import shlex

    try:
        cfg = OmegaConf.load(sweep_dir / "multirun.yaml")
        task = [str(t) for t in (OmegaConf.select(cfg, "hydra.overrides.task") or [])]
        name = str(OmegaConf.select(cfg, "hydra.job.name", default="fentsim") or "fentsim")
    except Exception:  # no or unreadable multirun.yaml
        return ""
    prog = "fentsim" if name == "fentsim" else name
    return f"{prog} -m {shlex.join(task)}".rstrip() + f" hydra.sweep.dir={shlex.quote(str(sweep_dir))}"


_LOCKS: dict[int, Any] = {}   # callback -> its sweep's lock (kept out of the pickled callback)
REPORT_AUTO = "auto"   # report when the sweep holds the baseline cell (the default)


def _wants_report(report: bool | str, ds: Any, baseline: Mapping[str, Any]) -> bool:
    """Whether to write the comparison: always (True), never (False), or 'auto': when the sweep
    holds the baseline cell (said in one line when it does not)."""
    if report is True or report is False:
        return report
    if str(report) != REPORT_AUTO:
        raise InputError(f"report: value {report!r} not allowed; allowed: auto (when the sweep "
                         f"holds the baseline), true, false")
    from sim.sweeps.compare import select
    try:
        select(ds, baseline, label="baseline")
    except InputError:
        where = " ".join(f"{k}={v}" for k, v in baseline.items())
        print(f"no comparison written: the sweep holds no baseline cell ({where}); add it to the "
              f"sweep, or fentsim-compare with another reference")
        return False
    return True


def aggregate(sweep_dir: Path, output: Path | None = None, report: bool | str = REPORT_AUTO,
              baseline: Mapping[str, Any] | None = None, window: Sequence[int] = DEFAULT_WINDOW,
              variable: str = DEFAULT_VARIABLE, expected: list[list[str]] | None = None,
              force: bool = False, command: str | None = None) -> bool:
    """Combine a sweep, write it (and the comparison report: `report` True, False or 'auto' =
    when the sweep holds the baseline cell), print where; True if complete.

    A sweep over `ensemble.chunk` alone is a split ensemble: its slices are joined along `draw`
    into the dataset one run of the whole ensemble gives (sim.sweeps.aggregate.concatenate_chunks).
    A folder not written by `fentsim -m` is refused; so is an `output` that is one of the jobs'
    results, a link, or a file that is no sweep dataset (without `force`).  The dataset's
    `history` names the `fentsim -m ...` command that made the sweep (`command`, else read from
    its multirun.yaml), then the combining.
    """
    from sim.results.io import check_output_target, netcdf_title

    sweep_dir = sweep_dir.resolve()
    if sweep_dir.is_dir() and not is_sweep_folder(sweep_dir):
        raise InputError(f"sweep directory {str(sweep_dir)!r}: not a sweep (no multirun.yaml, and "
                         f"no job folders of a `fentsim -m` run); allowed: a folder written by "
                         f"fentsim -m, e.g. results/sweeps/<timestamp>")
    expected = expected if expected is not None else load_expected(sweep_dir)
    survey = survey_sweep(sweep_dir, expected, parse=parse_override)
    output = Path(output).absolute() if output else sweep_dir / SWEEP_FILENAME
    check_output_target(output, "--output", inputs=list(survey.results.values()), force=force,
                        own=lambda p: (netcdf_title(p) or "").startswith("fentsim sweep"),
                        command="fentsim-aggregate")
    if CHUNK_KEY in survey.keys:
        if report is True:
            raise InputError(f"--report: a split ensemble ({CHUNK_KEY} swept) has no cells to "
                             f"compare; allowed: without --report, then fentsim-compare")
        rep = concatenate_chunks(survey, output)
        print(rep.text())
        return not rep.problems
    ds, rep = combine_cells(survey)
    from sim.api import history_line  # local: sim.api is only needed once a sweep is combined

    made_by = command or sweep_command(sweep_dir)
    ds.attrs["history"] = "\n".join(
        ([history_line(made_by)] if made_by else [])
        + [history_line(f"fentsim-aggregate {sweep_dir} (jobs combined over "
                        f"{', '.join(survey.keys) or 'no swept key'})")])
    if made_by:
        ds.attrs["sweep_command"] = made_by
    rep.output = write_dataset(ds, output)
    remove_stale_temporaries(output)
    print(rep.text())
    baseline = dict(baseline or DEFAULT_BASELINE)
    if _wants_report(report, ds, baseline):
        try:
            table, paths = sweep_report(ds, rep.output.parent, baseline, window, variable,
                                        sweep_label=sweep_dir.name)
        except InputError as exc:
            if report is True:
                raise
            print(f"no comparison written: {exc}")   # 'auto': the sweep itself is fine
            return not rep.problems
        print(table)
        for path in paths.values():
            print(f"wrote {path}")
    return not rep.problems


_BEATS: dict[int, Heartbeat] = {}   # the running sweep's heartbeat (not on the callback: it is
#                                     pickled for the launcher's workers, a thread is not)


def sweep_heartbeat(sweep_dir: Path, total: int | None) -> Heartbeat:
    """A console line whenever no job of the sweep has finished for 5 s ('k of N job(s) finished':
    job folders with a result file or error.txt), started; stopped at the end of the sweep."""
    def finished() -> str:
        done = sum(1 for d in sweep_dir.glob("*/") if any(d.glob("*.nc")) or
                   (d / JOB_ERROR_FILENAME).exists())
        return f"{done} of {total if total is not None else '?'} job(s) finished"
    return Heartbeat(lambda m: print(m, flush=True), "fentsim: sweep still running",
                     poll=finished).__enter__()


class AggregateSweep(Callback):
    """Hydra callback: at the end of a multirun, combine the jobs into <sweep dir>/<filename>.

    `report`: 'auto' (default) compares every cell with `baseline` over `window` and draws the
    figures when the sweep holds the baseline cell; true always (an error without it); false
    never.  A failed job is listed and the rest combined (exit status 1); if the sweep is killed
    or interrupted Hydra skips this: then run `fentsim-aggregate <sweep dir>`.
    """

    def __init__(self, filename: str = SWEEP_FILENAME, report: bool | str = REPORT_AUTO,
                 baseline: Mapping[str, Any] | None = None,
                 window: Sequence[int] = DEFAULT_WINDOW, variable: str = DEFAULT_VARIABLE,
                 enabled: bool = True) -> None:
        self.filename = filename
        self.report = report
        self.baseline = dict(baseline) if baseline else dict(DEFAULT_BASELINE)
        self.window = list(window)
        self.variable = variable
        self.enabled = enabled

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Before any job runs: duplicate values, job folders, another sweep in the folder, links,
        lock; then one line: how many jobs, and where they write."""
        try:
            expected = expected_jobs(config)
            check_duplicates(expected, parse_override)
            check_sweep_folder(config, expected)
            check_sweep_symlinks(Path(str(config.hydra.sweep.dir)))
            _LOCKS[id(self)] = acquire_lock(Path(str(config.hydra.sweep.dir)))  # not pickled
        except InputError as exc:
            print(f"fentsim: error: {exc}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        except OSError as exc:
            print(f"fentsim: error: hydra.sweep.dir: cannot write "
                  f"{str(exc.filename or config.hydra.sweep.dir)!r} ({exc.strerror or exc}); "
                  f"allowed: a writable folder (not a file)", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        count = f"{len(expected)} job(s)" if expected is not None else "jobs"
        print(f"fentsim: sweep of {count} into {Path(config.hydra.sweep.dir).resolve()}", flush=True)
        _BEATS[id(self)] = sweep_heartbeat(Path(str(config.hydra.sweep.dir)),
                                           len(expected) if expected is not None else None)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if id(self) in _BEATS:
            _BEATS.pop(id(self)).__exit__(None, None, None)
        lock = _LOCKS.pop(id(self), None)
        if lock is not None:
            release_lock(lock)
        if not self.enabled:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            with Heartbeat(lambda m: print(m, flush=True), "fentsim: still combining the sweep"):
                complete = aggregate(sweep_dir, sweep_dir / self.filename, self.report,
                                     self.baseline, self.window, self.variable,
                                     expected=expected_jobs(config),
                                     command=typed_command(sweep_dir))
        except InputError as exc:
            print(f"fentsim: aggregate: error: {exc}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        if not complete:
            print(f"fentsim: some jobs failed (listed above); after fixing them rerun those jobs "
                  f"or `fentsim-aggregate {sweep_dir.resolve()}`", file=sys.stderr)
            sys.exit(1)


def typed_command(sweep_dir: Path) -> str:
    """The command as typed (`fentsim -m ...`, sim.cli.guard keeps it) and its sweep folder."""
    import shlex

    from sim.cli import guard

    if guard.TYPED is None:
        return sweep_command(sweep_dir.resolve())
    prog, args = guard.TYPED
    typed = [a for a in args if not a.startswith("hydra.sweep.dir=")]
    return (f"{prog} {shlex.join(typed)} hydra.sweep.dir="
            f"{shlex.quote(str(sweep_dir.resolve()))}")


def aggregate_main(argv: Sequence[str] | None = None) -> None:
    """fentsim-aggregate SWEEP_DIR: combine the jobs of a sweep into one dataset."""
    parser = ArgumentParser(
        prog="fentsim-aggregate",
        description="Combine the jobs of a fentsim sweep (fentsim -m ...) into one NetCDF dataset "
                    "with the swept overrides as dimensions; report missing or failed jobs.  A "
                    "sweep over ensemble.chunk alone (a split ensemble) is joined along draw.")
    parser.add_argument("sweep_dir", type=Path, help="the sweep directory (holds multirun.yaml)")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"output file (default SWEEP_DIR/{SWEEP_FILENAME})")
    parser.add_argument("--report", dest="report", action="store_const", const=True,
                        default=REPORT_AUTO,
                        help="compare every cell with the baseline and draw the figures (the "
                             "default whenever the sweep holds the baseline cell); an error "
                             "without it")
    parser.add_argument("--no-report", dest="report", action="store_const", const=False,
                        help="write sweep.nc only, no comparison or figures")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --output file that is not a sweep dataset "
                             "(a job's result is never replaced)")
    parser.add_argument("--baseline", nargs="+", default=["scenario=baseline"], metavar="KEY=VALUE",
                        help="reference cell for --report (default scenario=baseline)")
    parser.add_argument("--window", nargs=2, type=int, default=list(DEFAULT_WINDOW),
                        metavar=("START", "END"), help="years summed, inclusive (default 2020 2030)")
    parser.add_argument("--variable", default=DEFAULT_VARIABLE,
                        help=f"deaths variable compared (default {DEFAULT_VARIABLE})")
    parser.add_argument("--debug", action="store_true",
                        help="show a traceback on bad input instead of the one-line error")
    args = parser.parse_args(argv)
    with user_errors("fentsim-aggregate", debug=args.debug):
        if args.output is not None and args.output.suffix != ".nc":
            raise InputError(f"--output: value {str(args.output)!r} must end in .nc")
        complete = aggregate(args.sweep_dir, args.output, args.report,
                             parse_selection(args.baseline), args.window, args.variable,
                             force=args.force)
    sys.exit(0 if complete else 1)


if __name__ == "__main__":
    aggregate_main()
