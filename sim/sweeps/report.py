"""sim.sweeps.report: the standard outputs of a sweep: comparison with a baseline cell (NetCDF + CSV) and figures.  Hydra-free."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from sim.sweeps.compare import (DEFAULT_VARIABLE, DEFAULT_WINDOW, compare, comparison_csv_text,
                         comparison_table, has_money, select, write_text_atomic)
from sim.results.io import write_dataset

COMPARISON_NC = "comparison.nc"
COMPARISON_CSV = "comparison.csv"
TRAJECTORIES_PNG = "deaths_by_scenario.png"
AVERTED_PNG = "deaths_averted.png"
FRONTIER_PNG = "deaths_averted_vs_spending.png"


def sweep_report(sweep: xr.Dataset, out_dir: str | Path, baseline: Mapping[str, Any],
                 window: Sequence[int] = DEFAULT_WINDOW, variable: str = DEFAULT_VARIABLE,
                 sweep_label: str = "sweep") -> tuple[str, dict[str, Path]]:
    """Compare every cell of `sweep` with its `baseline` selection; write table, CSV and figures.

    Returns the printed comparison table and the paths written (`frontier_png`, deaths averted
    against spending, too when the cells carry funding_spending and some spend more than the
    baseline).
    """
    # local: matplotlib costs ~1 s to import, and this module is imported (through the Hydra
    # callback sim.cli.sweep.AggregateSweep) by every fentsim process and sweep worker
    from sim.sweeps.plots import plot_averted, plot_frontier, plot_trajectories

    out_dir = Path(out_dir)
    label = ", ".join(f"{k}={v}" for k, v in baseline.items())
    reference = select(sweep, baseline, label="baseline")
    cmp = compare(sweep, reference, window, variable, a_label=f"every cell of {sweep_label}",
                  b_label=label)
    paths = {
        "comparison_nc": write_dataset(cmp, out_dir / COMPARISON_NC),
        "comparison_csv": write_text_atomic(comparison_csv_text(cmp), out_dir / COMPARISON_CSV),
        "trajectories_png": plot_trajectories(sweep, out_dir / TRAJECTORIES_PNG, variable),
        "averted_png": plot_averted(cmp, out_dir / AVERTED_PNG),
    }
    if has_money(cmp):
        paths["frontier_png"] = plot_frontier(cmp, out_dir / FRONTIER_PNG)
    return comparison_table(cmp), paths
