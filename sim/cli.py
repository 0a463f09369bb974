"""Command-line layer: the `fentsim` Hydra app.  The only place (with sim/cli_*.py) that imports Hydra.

User mistakes (InputError) print one line to stderr and exit with status 2; set HYDRA_FULL_ERROR=1
to see the traceback instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sim.aggregate import JOB_ERROR_FILENAME
from sim.compare import write_text_atomic
from sim.config import build_run
from sim.ensemble import build_ensemble
from sim.errors import InputError, SolverError
from sim.io import write_dataset
from sim.run import simulate
from sim.scenarios import apply_intensity
from sim.summary import summary_table

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")
EXIT_USER_ERROR = 2


@contextlib.contextmanager
def user_errors(prog: str = "fentsim") -> Iterator[None]:
    """Turn InputError/SolverError into a one-line message and a non-zero exit."""
    try:
        yield
    except (InputError, SolverError) as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def plain_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved job config as plain Python containers (Hydra's own node excluded)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def output_path(cfg: dict[str, Any]) -> Path:
    """Where this job writes its result: Hydra's output dir / output.filename (must end in .nc)."""
    name = str((cfg.get("output") or {}).get("filename", "result.nc"))
    if not name.endswith(".nc") or "/" in name:
        raise InputError(f"output.filename: value {name!r} must be a plain file name ending in .nc")
    return Path(HydraConfig.get().runtime.output_dir) / name


def run_job(cfg: dict[str, Any]) -> Path:
    """Run one configured job: build, simulate, write atomically, print the summary.

    `scenario.intensity` scales the lever interventions first (sim/scenarios.py); the config
    recorded in the result is the one actually run.
    """
    cfg = apply_intensity(cfg)
    run = build_run(cfg)
    out = output_path(cfg)
    params, seed = build_ensemble(run.params, run.ensemble)
    ds = simulate(params, run.levers, run.solver, config=cfg, seed=seed)
    write_dataset(ds, out)
    print(summary_table(ds, run.output.get("summary_years", [2013, 2015, 2017, 2020, 2030])))
    print(f"wrote {out}")
    return out


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """fentsim: run the model for the composed config and write results/…/result.nc.

    In a multirun (-m) a job with bad input prints its one-line error, records it in
    `<job dir>/error.txt` and returns, so the other jobs still run; the end-of-sweep callback then
    reports it and exits non-zero.
    """
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        try:
            run_job(plain_config(cfg))
        except (InputError, SolverError) as exc:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            overrides = " ".join(HydraConfig.get().overrides.task)
            print(f"fentsim: error: job {HydraConfig.get().job.num} ({overrides}): {exc}",
                  file=sys.stderr)
            job_dir = Path(HydraConfig.get().runtime.output_dir)
            write_text_atomic(f"{type(exc).__name__}: {exc}\n", job_dir / JOB_ERROR_FILENAME)
            with contextlib.suppress(InputError):  # a result left by an earlier run is stale now
                output_path(plain_config(cfg)).unlink(missing_ok=True)
        else:
            (Path(HydraConfig.get().runtime.output_dir) / JOB_ERROR_FILENAME).unlink(missing_ok=True)
        return
    with user_errors():
        run_job(plain_config(cfg))


if __name__ == "__main__":
    main()
