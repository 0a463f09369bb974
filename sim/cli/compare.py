"""`fentsim-compare A [B]`: deaths averted by A relative to reference B, with intervals.

A and B are result files (`fentsim` runs) or sweep datasets (`sweep.nc`).  Without B the reference
is a selection of A (`--baseline scenario=baseline`, the default).  `--select` picks cells of A,
`--baseline` picks the reference cell of B (or of A).  When both carry `funding_spending` (runs
with a `funding` scenario), the table also shows the extra spending, the cost per death averted
and the deaths averted per $1M.  `--output X.nc` writes the comparison as NetCDF and X.csv beside
it; `--figures DIR` draws the figures.  Draws are paired by `draw_id` (`--unpaired`: independent
quantiles of ensembles with other draws, said in the output).  An input is never written over;
an existing output file that fentsim-compare did not write is replaced only with `--force`.
Bad input: one line, exit 2.
"""

from __future__ import annotations

from sim.cli.args import ArgumentParser
from collections.abc import Sequence
from pathlib import Path

from sim.cli.app import user_errors
from sim.sweeps.compare import (DEFAULT_VARIABLE, DEFAULT_WINDOW, compare, comparison_csv_text,
                         comparison_table, has_money, parse_selection, select)
from sim.errors import InputError
from sim.results.io import (check_output_target, netcdf_title, open_result, write_dataset,
                            write_text_atomic)

TITLE = "fentsim comparison"
FIGURES = ("deaths_averted.png", "deaths_averted_vs_spending.png", "deaths_by_scenario.png")


def _own_csv(path: Path) -> bool:
    """Whether `path` is a comparison CSV (its header names the metric and units columns)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return ",metric,units," in "," + fh.readline()
    except OSError:
        return False


def _own_png(path: Path) -> bool:
    """Whether `path` is a PNG image (fentsim-compare's figures are replaced, nothing else)."""
    try:
        with path.open("rb") as fh:
            return fh.read(8) == b"\x89PNG\r\n\x1a\n"
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(
        prog="fentsim-compare",
        description="Deaths averted by A relative to B over a window (median and 90% interval over "
                    "paired draws), relative change, change in seizures and supply.",
        epilog="examples: fentsim-compare sweep.nc --baseline scenario=baseline;  "
               "fentsim-compare A.nc B.nc --window 2020 2035 --output cmp.nc --figures figs/")
    parser.add_argument("a", type=Path, help="result or sweep dataset (NetCDF) to evaluate")
    parser.add_argument("b", type=Path, nargs="?", default=None,
                        help="reference result or sweep dataset (default: A at --baseline)")
    parser.add_argument("--baseline", nargs="+", default=None, metavar="KEY=VALUE",
                        help="reference cell of B (or of A when B is omitted; default "
                             "scenario=baseline then)")
    parser.add_argument("--select", nargs="+", default=None, metavar="KEY=VALUE",
                        help="cells of A to compare (default: all)")
    parser.add_argument("--window", nargs=2, type=int, default=list(DEFAULT_WINDOW),
                        metavar=("START", "END"), help="years summed, inclusive (default 2020 2030)")
    parser.add_argument("--variable", default=DEFAULT_VARIABLE,
                        help=f"deaths variable (default {DEFAULT_VARIABLE}; e.g. deaths_synthetic)")
    parser.add_argument("--output", type=Path, default=None,
                        help="write the comparison to this .nc file and a .csv beside it")
    parser.add_argument("--figures", type=Path, default=None, metavar="DIR",
                        help="write deaths_averted.png (and deaths_by_scenario.png for a sweep, "
                             "deaths_averted_vs_spending.png with money metrics) here")
    parser.add_argument("--unpaired", action="store_true",
                        help="compare ensembles that do not hold the same draws: independent "
                             "quantiles over every pair of draws (the output says so)")
    parser.add_argument("--force", action="store_true",
                        help="replace existing --output/--figures files not written by "
                             "fentsim-compare (an input file is never replaced)")
    parser.add_argument("--debug", action="store_true",
                        help="show a traceback on bad input instead of the one-line error")
    args = parser.parse_args(argv)
    with user_errors("fentsim-compare", debug=args.debug):
        if args.output is not None and args.output.suffix != ".nc":
            raise InputError(f"--output: value {str(args.output)!r} must end in .nc "
                             f"(the CSV is written beside it)")
        if not args.variable.startswith("deaths_"):
            raise InputError(f"--variable: value {args.variable!r} not allowed; allowed: a deaths_* "
                             f"variable such as deaths_overdose, deaths_synthetic, deaths_fentanyl")
        inputs = [args.a] + ([args.b] if args.b is not None else [])
        if args.output is not None:
            check_output_target(args.output, "--output", inputs=inputs, force=args.force,
                                own=lambda p: (netcdf_title(p) or "").startswith(TITLE),
                                command="fentsim-compare")
            check_output_target(args.output.with_suffix(".csv"), "--output (its .csv)",
                                inputs=inputs, force=args.force, own=_own_csv,
                                command="fentsim-compare")
        if args.figures is not None:
            for name in FIGURES:
                check_output_target(args.figures / name, "--figures", inputs=inputs,
                                    force=args.force, own=_own_png, command="fentsim-compare")
        a = open_result(args.a)
        if args.b is None:
            b = a
            baseline = parse_selection(args.baseline or ["scenario=baseline"])
            b_label = f"{args.a} at " + " ".join(args.baseline or ["scenario=baseline"])
        else:
            b = open_result(args.b)
            baseline = parse_selection(args.baseline or [])
            b_label = str(args.b) + (" at " + " ".join(args.baseline) if args.baseline else "")
        picked = parse_selection(args.select or [])
        a_sel = select(a, picked, label="--select")
        if args.b is None:  # reference from A: same cell as --select except the baseline keys
            baseline = {**{k: v for k, v in picked.items() if k not in baseline}, **baseline}
            b_label = f"{args.a} at " + " ".join(f"{k}={v}" for k, v in baseline.items())
        b_sel = select(b, baseline, label="--baseline")
        a_label = str(args.a) + (" at " + " ".join(args.select) if args.select else "")
        cmp = compare(a_sel, b_sel, args.window, args.variable, a_label=a_label, b_label=b_label,
                      paired=not args.unpaired)
        print(comparison_table(cmp))
        if args.output is not None:
            csv_path = args.output.with_suffix(".csv")
            write_dataset(cmp, args.output)
            write_text_atomic(comparison_csv_text(cmp), csv_path)
            print(f"wrote {args.output}\nwrote {csv_path}")
        if args.figures is not None:
            from sim.sweeps.plots import plot_averted, plot_frontier, plot_trajectories
            from sim.sweeps.report import AVERTED_PNG, FRONTIER_PNG
            print(f"wrote {plot_averted(cmp, args.figures / AVERTED_PNG)}")
            if has_money(cmp):
                print(f"wrote {plot_frontier(cmp, args.figures / FRONTIER_PNG)}")
            if "scenario" in a_sel.dims:
                print(f"wrote {plot_trajectories(a_sel, args.figures / 'deaths_by_scenario.png', args.variable)}")


if __name__ == "__main__":
    main()
