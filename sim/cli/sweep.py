"""Sweep glue that needs Hydra: the expected jobs of a multirun, the end-of-sweep callback, and
`fentsim-aggregate SWEEP_DIR`.  The combining itself is Hydra-free (sim/sweeps/aggregate.py, sim/sweeps/report.py).

`fentsim-aggregate` exit status: 0 all jobs combined; 1 some jobs missing or failed (the rest are
combined and written); 2 bad input (one-line message).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sim.sweeps.aggregate import (CHUNK_KEY, SWEEP_FILENAME, combine_cells, concatenate_chunks,
                           survey_sweep)
from sim.cli.main import EXIT_USER_ERROR, user_errors
from sim.sweeps.compare import DEFAULT_VARIABLE, DEFAULT_WINDOW, parse_selection
from sim.errors import InputError
from sim.results.io import write_dataset
from sim.sweeps.report import sweep_report

DEFAULT_BASELINE = {"scenario": "baseline"}


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
    return expected_jobs(OmegaConf.load(path))


def aggregate(sweep_dir: Path, output: Path | None = None, report: bool = False,
              baseline: Mapping[str, Any] | None = None, window: Sequence[int] = DEFAULT_WINDOW,
              variable: str = DEFAULT_VARIABLE, expected: list[list[str]] | None = None) -> bool:
    """Combine a sweep, write it (and optionally the report), print where; True if complete.

    A sweep over `ensemble.chunk` alone is a split ensemble: its slices are joined along `draw`
    into the dataset one run of the whole ensemble gives (sim.sweeps.aggregate.concatenate_chunks).
    """
    sweep_dir = sweep_dir.resolve()
    expected = expected if expected is not None else load_expected(sweep_dir)
    survey = survey_sweep(sweep_dir, expected)
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
    print(rep.text())
    if report:
        baseline = dict(baseline or DEFAULT_BASELINE)
        table, paths = sweep_report(ds, rep.output.parent, baseline, window, variable,
                                    sweep_label=sweep_dir.name)
        print(table)
        for path in paths.values():
            print(f"wrote {path}")
    return not rep.problems


class AggregateSweep(Callback):
    """Hydra callback: at the end of a multirun, combine the jobs into <sweep dir>/<filename>.

    With `report: true` also compare every cell with `baseline` over `window` and draw figures.
    Hydra skips this when a job fails; then run `fentsim-aggregate <sweep dir>`.
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
        """One line before the jobs start: how many, and where they write."""
        jobs = expected_jobs(config)
        count = f"{len(jobs)} job(s)" if jobs is not None else "jobs"
        print(f"fentsim: sweep of {count} into {Path(config.hydra.sweep.dir).resolve()}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            complete = aggregate(sweep_dir, sweep_dir / self.filename, self.report, self.baseline,
                                 self.window, self.variable, expected=expected_jobs(config))
        except InputError as exc:
            print(f"fentsim: aggregate: error: {exc}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)
        if not complete:
            print(f"fentsim: some jobs failed (listed above); after fixing them rerun those jobs "
                  f"or `fentsim-aggregate {sweep_dir.resolve()}`", file=sys.stderr)
            sys.exit(1)


def aggregate_main(argv: Sequence[str] | None = None) -> None:
    """fentsim-aggregate SWEEP_DIR: combine the jobs of a sweep into one dataset."""
    parser = argparse.ArgumentParser(
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
