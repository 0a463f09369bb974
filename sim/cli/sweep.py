"""Sweep glue that needs Hydra: the expected jobs of a multirun, the end-of-sweep callback, and
`fentsim-aggregate SWEEP_DIR`.  The combining itself is Hydra-free (sim/sweeps/aggregate.py, sim/sweeps/report.py).

`fentsim-aggregate` exit status: 0 all jobs combined; 1 some jobs missing or failed (the rest are
combined and written); 2 bad input (one-line message).

Before any job of a sweep starts, the callback refuses (one line, exit status 2): two jobs with the
same values (`x=0.5,0.50,5e-1`), a `hydra.sweep.subdir` that gives jobs no folder of their own
(e.g. `.`), a sweep folder that holds another sweep (its `multirun.yaml` launched other jobs: only
the same sweep may run there again, to resume it), and a sweep folder in which a sweep is running
(a lock file, `.fentsim-sweep.lock`, held while a sweep runs and removed when it ends).
"""

from __future__ import annotations

from sim.cli.args import ArgumentParser
import atexit
import contextlib
import json
import os
import socket
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(sweep_dir: Path) -> Path:
    """Create `<sweep dir>/.fentsim-sweep.lock` (InputError if a live sweep holds it); it is removed
    when this process exits.  A lock left by a process that no longer runs on this host is taken."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = sweep_dir / LOCK_FILENAME
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            try:
                held = json.loads(lock.read_text(encoding="utf-8"))
                pid, host = int(held["pid"]), str(held["host"])
            except (OSError, ValueError, KeyError, TypeError):
                pid, host = -1, me["host"]
            if host == me["host"] and (pid < 0 or not _pid_alive(pid)):
                lock.unlink(missing_ok=True)  # stale: its sweep was killed
                continue
            raise InputError(f"hydra.sweep.dir: value {str(sweep_dir)!r} is in use by another "
                             f"sweep (process {pid} on {host}); allowed: wait for it, or another "
                             f"hydra.sweep.dir (remove {lock.name} there if no sweep runs)") from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        atexit.register(release_lock, lock, me["pid"])
        return lock
    raise InputError(f"hydra.sweep.dir: cannot lock {str(sweep_dir)!r}")


def release_lock(lock: Path, pid: int) -> None:
    """Remove the lock if this process holds it."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if int(json.loads(lock.read_text(encoding="utf-8"))["pid"]) == pid == os.getpid():
            lock.unlink()


def aggregate(sweep_dir: Path, output: Path | None = None, report: bool = False,
              baseline: Mapping[str, Any] | None = None, window: Sequence[int] = DEFAULT_WINDOW,
              variable: str = DEFAULT_VARIABLE, expected: list[list[str]] | None = None) -> bool:
    """Combine a sweep, write it (and optionally the report), print where; True if complete.

    A sweep over `ensemble.chunk` alone is a split ensemble: its slices are joined along `draw`
    into the dataset one run of the whole ensemble gives (sim.sweeps.aggregate.concatenate_chunks).
    """
    sweep_dir = sweep_dir.resolve()
    expected = expected if expected is not None else load_expected(sweep_dir)
    survey = survey_sweep(sweep_dir, expected, parse=parse_override)
    output = Path(output).resolve() if output else sweep_dir / SWEEP_FILENAME
    if CHUNK_KEY in survey.keys:
        if report:
            raise InputError(f"--report: a split ensemble ({CHUNK_KEY} swept) has no cells to "
                             f"compare; allowed: without --report, then fentsim-compare")
        rep = concatenate_chunks(survey, output)
        print(rep.text())
        return not rep.problems
    ds, rep = combine_cells(survey)
    from sim.api import history_line  # local: sim.api is only needed once a sweep is combined

    ds.attrs["history"] = history_line(f"fentsim-aggregate {sweep_dir} (jobs combined over "
                                       f"{', '.join(survey.keys) or 'no swept key'})")
    rep.output = write_dataset(ds, output)
    remove_stale_temporaries(output)
    print(rep.text())
    if report:
        baseline = dict(baseline or DEFAULT_BASELINE)
        table, paths = sweep_report(ds, rep.output.parent, baseline, window, variable,
                                    sweep_label=sweep_dir.name)
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

    With `report: true` also compare every cell with `baseline` over `window` and draw figures.
    A failed job is listed and the rest combined (exit status 1); if the sweep is killed or
    interrupted Hydra skips this: then run `fentsim-aggregate <sweep dir>`.
    """

    def __init__(self, filename: str = SWEEP_FILENAME, report: bool = False,
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
        """Before any job runs: duplicate values, job folders, another sweep in the folder, lock;
        then one line: how many jobs, and where they write."""
        try:
            expected = expected_jobs(config)
            check_duplicates(expected, parse_override)
            check_sweep_folder(config, expected)
            self.lock = acquire_lock(Path(str(config.hydra.sweep.dir)))
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
        lock = getattr(self, "lock", None)
        if lock is not None:
            release_lock(lock, os.getpid())
        if not self.enabled:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            with Heartbeat(lambda m: print(m, flush=True), "fentsim: still combining the sweep"):
                complete = aggregate(sweep_dir, sweep_dir / self.filename, self.report,
                                     self.baseline, self.window, self.variable,
                                     expected=expected_jobs(config))
        except InputError as exc:
            print(f"fentsim: aggregate: error: {exc}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        if not complete:
            print(f"fentsim: some jobs failed (listed above); after fixing them rerun those jobs "
                  f"or `fentsim-aggregate {sweep_dir.resolve()}`", file=sys.stderr)
            sys.exit(1)


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
    parser.add_argument("--report", action="store_true",
                        help="also compare every cell with the baseline and draw the figures")
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
                             parse_selection(args.baseline), args.window, args.variable)
    sys.exit(0 if complete else 1)


if __name__ == "__main__":
    aggregate_main()
