"""`fentsim-backtest`: fit on data up to a cut-off year and score the forecast of the later years.

    fentsim-backtest cutoff=2017                 # fit to 2017, forecast 2018-2021, score
    fentsim-backtest cutoff=2017 draws=500

Writes backtest.nc and backtest.md into the run folder (results/backtest/<timestamp>/) and prints
the table: per series and year after the cut-off, the observed value, the forecast median and 90%
interval, the error and whether the interval covers it, and the overall coverage.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sim.calibrate.backtest import check_cutoff, run_backtest
from sim.cli.app import CONFIG_DIR, plain_config, user_errors
from sim.errors import InputError, reject_unknown_keys
from sim.model.compiled import Heartbeat
from sim.model.parameters import ModelParameters
from sim.results.io import write_dataset, write_text_atomic

SECTIONS = ("params", "solver", "targets", "calibration", "cutoff", "draws", "seed")
log = logging.getLogger("fentsim.backtest")


@hydra.main(config_path=CONFIG_DIR, config_name="backtest", version_base="1.3")
def app(cfg: DictConfig) -> None:
    """fentsim-backtest: fit to `cutoff`, forecast, score; backtest.nc and backtest.md."""
    with user_errors("fentsim-backtest"):
        np.seterr(all="ignore")
        plain = plain_config(cfg)
        reject_unknown_keys("config", [k for k in plain if k != "hydra"], SECTIONS)
        check_cutoff(plain.get("cutoff"), plain.get("targets") or {})   # before the fit
        for key in ("draws", "seed"):
            value = plain.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{key}: value {value!r} not allowed; allowed: a whole number")
        if plain["draws"] < 1:   # refused before the fit (about 95 s), not after it
            raise InputError(f"draws: value {plain['draws']!r} not allowed; allowed: a whole "
                             f"number >= 1 (posterior draws run forward)")
        out_dir = Path(HydraConfig.get().runtime.output_dir)
        with Heartbeat(log.info, "  still running") as say:   # console and backtest.log
            result = run_backtest(ModelParameters.from_mapping(plain.get("params") or {}),
                                  plain.get("targets") or {}, plain.get("calibration") or {},
                                  plain["cutoff"], plain["draws"], plain["seed"], progress=say)
        text = result.markdown()
        write_dataset(result.to_dataset(), out_dir / "backtest.nc")
        write_text_atomic(text, out_dir / "backtest.md")
        print(text)
        print(f"wrote {out_dir / 'backtest.nc'} and backtest.md")


def main() -> None:
    """Entry point of `fentsim-backtest`: the Hydra app with a short --help and one-line errors."""
    from sim.cli.app import run_app

    run_app(app, "fentsim-backtest")


if __name__ == "__main__":
    main()
