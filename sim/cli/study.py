"""`fentsim-study` (and `fentsim-sensitivity`, `fentsim-funding`, `fentsim-discovery`): Hydra apps
over configs/study.yaml, and `fentsim-study-report DIR` (plain argparse).

    fentsim-study experiment=which_lever        # all steps + report.md in Hydra's output folder
    fentsim-sensitivity experiment=which_lever  # only the Sobol/Morris step (+ report)
    fentsim-funding ensemble.size=200           # only the funding sweep (+ report)
    fentsim-discovery discovery.max_depth=2     # only scenario discovery (+ report)
    fentsim-study-report results/experiments/which_lever/<timestamp>

Bad input prints one line naming the field, value and what is allowed, and exits with status 2
(HYDRA_FULL_ERROR=1 for a traceback).  The model code (sim/study/workflow.py and below) is Hydra-free.
"""

from __future__ import annotations

from sim.cli.args import ArgumentParser
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sim.cli.app import CONFIG_DIR, EXIT_USER_ERROR, job_config, user_errors
from sim.errors import InputError
from sim.study.workflow import run_study
from sim.study.report import build_report


def _app(prog: str, steps: tuple[str, ...] | None) -> Callable[[], None]:
    @hydra.main(config_path=CONFIG_DIR, config_name="study", version_base="1.3")
    def main(cfg: DictConfig) -> None:
        with user_errors(prog):
            np.seterr(all="ignore")
            out = Path(HydraConfig.get().runtime.output_dir)
            run_study(job_config(cfg), out, steps and (*steps, "report"))

    main.__doc__ = f"{prog}: {'all steps' if steps is None else steps[0]} of the study"

    def entry() -> None:
        from sim.cli.app import run_app  # short --help, one-line errors

        run_app(main, prog)

    entry.__doc__ = main.__doc__
    return entry


main = _app("fentsim-study", None)
sensitivity_main = _app("fentsim-sensitivity", ("sensitivity",))
funding_main = _app("fentsim-funding", ("funding",))
discovery_main = _app("fentsim-discovery", ("discovery",))


def report_main(argv: list[str] | None = None) -> None:
    """fentsim-study-report DIR: (re)build DIR/report.md from a finished study folder."""
    parser = ArgumentParser(prog="fentsim-study-report", description=report_main.__doc__)
    parser.add_argument("folder", help="study output folder (with sensitivity.nc, funding.nc, ...)")
    args = parser.parse_args(argv)
    try:
        path = build_report(args.folder)
    except InputError as exc:
        print(f"fentsim-study-report: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
