"""`fentsim-rerun RESULT.nc`: regenerate a result from its provenance and report whether it matches."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sim.errors import InputError, SolverError
from sim.results.io import open_result, write_dataset
from sim.sweeps.rerun import rerun


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fentsim-rerun",
        description="Re-run a fentsim result file from the config recorded in it and compare the data "
                    "(exit 0 if every data variable is bit-identical, 1 if not).")
    parser.add_argument("result", help="a result.nc written by fentsim")
    parser.add_argument("--output", help="also write the regenerated dataset here (NetCDF)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        original = open_result(args.result)
        if args.output and not args.output.endswith(".nc"):
            raise InputError(f"--output: value {args.output!r} must end in .nc")
        outcome = rerun(original, name=args.result)
        if args.output:
            write_dataset(outcome.dataset, Path(args.output))
    except (InputError, SolverError) as exc:
        if args.debug or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"fentsim-rerun: error: {exc}", file=sys.stderr)
        return 2
    print(f"original commit {outcome.original_commit}; now {outcome.current_commit}")
    print(f"{len(outcome.identical)} data variables bit-identical")
    for var, rel in sorted(outcome.different.items()):
        print(f"DIFFERENT {var}: largest relative difference {rel:.3g}")
    if args.output:
        print(f"wrote {args.output}")
    return 0 if not outcome.different else 1


if __name__ == "__main__":
    sys.exit(main())
