"""`fentsim-rerun RESULT.nc | SWEEP_DIR | SWEEP_DIR/sweep.nc`: regenerate a result (or every job of
a sweep, combined again) from its provenance and report whether it matches.

`--output` never replaces the checked file (or any input of a sweep), a link, or an existing file
that fentsim-rerun did not write (without `--force`)."""

from __future__ import annotations

from sim.cli.args import ArgumentParser
import os
import sys
from pathlib import Path

from sim.errors import InputError, SolverError
from sim.results.io import check_output_target, write_dataset
from sim.sweeps.rerun import rerun_file, rerun_sweep, sweep_location

REGENERATED_ATTR = "regenerated_from"   # marks a file fentsim-rerun --output wrote


def _own(path: Path) -> bool:
    """Whether `path` is a file fentsim-rerun wrote (it carries `regenerated_from`)."""
    try:
        import h5netcdf

        with h5netcdf.File(path, "r") as f:
            return REGENERATED_ATTR in f.attrs
    except Exception:  # not NetCDF
        return False


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="fentsim-rerun",
        description="Re-run a fentsim result file from the config recorded in it and compare it: "
                    "every variable, coordinate, dimension and defining attribute (exit 0 if all "
                    "are identical, 1 if not).  A sweep folder (or its sweep.nc) is redone job by "
                    "job, combined again and compared the same way.")
    parser.add_argument("result", help="a result.nc written by fentsim, or a sweep folder or its "
                                       "sweep.nc")
    parser.add_argument("--output", help="also write the regenerated dataset here (NetCDF)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --output file that fentsim-rerun did not write "
                             "(the checked file is never replaced)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        sweep = sweep_location(args.result)
        if args.output:
            if not args.output.endswith(".nc"):
                raise InputError(f"--output: value {args.output!r} must end in .nc")
            inputs = [Path(args.result)] + ([sweep[1]] if sweep else [])
            if sweep:
                inputs += list(sweep[0].rglob("*.nc"))
            check_output_target(args.output, "--output", inputs=inputs, own=_own,
                                force=args.force, command="fentsim-rerun")
        if sweep:
            from sim.hydra_compose import parse_override   # Hydra's override grammar
            outcome = rerun_sweep(args.result, parse_override)
        else:
            outcome = rerun_file(args.result)
        if args.output:
            outcome.dataset.attrs[REGENERATED_ATTR] = str(Path(args.result).resolve())
            write_dataset(outcome.dataset, Path(args.output))
    except (InputError, SolverError) as exc:
        if args.debug or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"fentsim-rerun: error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("fentsim-rerun: interrupted", file=sys.stderr)
        return 130
    print(f"original commit {outcome.original_commit}; now {outcome.current_commit}")
    for job, result in getattr(outcome, "jobs", {}).items():
        state = "identical" if result.matches else "DIFFERENT"
        print(f"job {job}: {state} ({len(result.identical)} data variables bit-identical)")
        for var, rel in sorted(result.different.items()):
            print(f"  DIFFERENT {var}: largest relative difference {rel:.3g}")
        for line in result.mismatches:
            print(f"  DIFFERENT {line}")
    print(f"{len(outcome.identical)} data variables bit-identical"
          + (" in the combined sweep" if sweep else ""))
    for var, rel in sorted(outcome.different.items()):
        print(f"DIFFERENT {var}: largest relative difference {rel:.3g}")
    for line in outcome.mismatches:
        print(f"DIFFERENT {line}")
    if args.output:
        print(f"wrote {args.output}")
    return 0 if outcome.matches else 1


if __name__ == "__main__":
    sys.exit(main())
