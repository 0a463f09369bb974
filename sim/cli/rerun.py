"""`fentsim-rerun RESULT.nc`: regenerate a result from its provenance and report whether it matches."""

from __future__ import annotations

from sim.cli.args import ArgumentParser
import os
import sys
from pathlib import Path

from sim.errors import InputError, SolverError
from sim.results.io import write_dataset
from sim.sweeps.rerun import rerun_file


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="fentsim-rerun",
        description="Re-run a fentsim result file from the config recorded in it and compare it: "
                    "every variable, coordinate, dimension and defining attribute (exit 0 if all "
                    "are identical, 1 if not).")
    parser.add_argument("result", help="a result.nc written by fentsim")
    parser.add_argument("--output", help="also write the regenerated dataset here (NetCDF)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        if args.output and not args.output.endswith(".nc"):
            raise InputError(f"--output: value {args.output!r} must end in .nc")
        outcome = rerun_file(args.result)
        if args.output:
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
    print(f"{len(outcome.identical)} data variables bit-identical")
    for var, rel in sorted(outcome.different.items()):
        print(f"DIFFERENT {var}: largest relative difference {rel:.3g}")
    for line in outcome.mismatches:
        print(f"DIFFERENT {line}")
    if args.output:
        print(f"wrote {args.output}")
    return 0 if outcome.matches else 1


if __name__ == "__main__":
    sys.exit(main())
