"""Figures (PNG, matplotlib Agg backend) from sweep datasets and comparisons.  Hydra-free.

- `plot_trajectories`: annual deaths per scenario, median line and 5-95% band over draws;
  one panel per value of the other sweep dimensions (e.g. per intensity).
- `plot_averted`: deaths averted per scenario (lever) and intensity, median with 90% interval.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from sim.sweeps.compare import sweep_dims  # noqa: E402
from sim.errors import InputError  # noqa: E402
from sim.results.io import atomic_path  # noqa: E402

MAX_PANELS = 6


def _save(fig: plt.Figure, path: str | os.PathLike) -> Path:
    """Save as PNG atomically (sim.results.io.atomic_path) and close the figure."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _group_dim(dims: Sequence[str], prefer: str) -> str | None:
    if prefer in dims:
        return prefer
    return dims[0] if dims else None


def _panels(ds: xr.Dataset, dims: Sequence[str]) -> list[dict]:
    if not dims:
        return [{}]
    grids = np.meshgrid(*[ds[d].values for d in dims], indexing="ij")
    cells = [{d: g.ravel()[i] for d, g in zip(dims, grids)} for i in range(grids[0].size)]
    return cells[:MAX_PANELS]


def plot_trajectories(ds: xr.Dataset, path: str | os.PathLike, variable: str = "deaths_overdose",
                      group: str = "scenario", years: Sequence[int] | None = None) -> Path:
    """Annual `variable` per value of `group` (median, 5-95% band over draws); PNG at `path`."""
    if variable not in ds:
        raise InputError(f"variable: {variable!r} not in the dataset")
    dims = sweep_dims(ds)
    gdim = _group_dim(dims, group)
    others = [d for d in dims if d != gdim]
    panels = _panels(ds, others)
    ncol = min(3, len(panels))
    nrow = int(np.ceil(len(panels) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(8.0, 5.0 * ncol), 3.8 * nrow), squeeze=False,
                             sharey=True)
    da = ds[variable]
    if years is not None:
        da = da.sel(year=slice(int(years[0]), int(years[1])))
    x = da["year"].values
    labels = ds[gdim].values if gdim else [None]
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    for ax, cell in zip(axes.ravel(), panels):
        sub = da.sel(cell) if cell else da
        for i, label in enumerate(labels):
            line = sub.sel({gdim: label}) if gdim else sub
            if "draw" in line.dims:
                if np.all(np.isnan(line.values)):
                    continue
                med = line.median("draw").values
                lo = line.quantile(0.05, dim="draw").values
                hi = line.quantile(0.95, dim="draw").values
            else:
                med = lo = hi = line.values
            color = colors[i % 10]
            ax.plot(x, med, color=color, lw=1.6, label=str(label) if label is not None else variable)
            if line.sizes.get("draw", 1) > 1:
                ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
        ax.set_title(", ".join(f"{k}={v}" for k, v in cell.items()) or variable, fontsize=9)
        ax.set_xlabel("year")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=6))
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel(f"{variable} ({ds[variable].attrs.get('units_label', ds[variable].attrs.get('units', ''))})")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    n = ds.sizes.get("draw", 1)
    axes[0, 0].yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    fig.suptitle(f"{ds[variable].attrs.get('long_name', variable)}: median"
                 + (f" and 5-95% band over {n} draws" if n > 1 else " (single draw)"), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_averted(cmp: xr.Dataset, path: str | os.PathLike, group: str = "scenario") -> Path:
    """Deaths averted (median, 90% interval) per `group` value and the first numeric sweep
    dimension (e.g. intensity); bars per group if there is no numeric dimension."""
    q = cmp["deaths_averted_quantiles"]
    dims = sweep_dims(cmp)
    gdim = _group_dim(dims, group)
    numeric = [d for d in dims if d != gdim and np.issubdtype(cmp[d].dtype, np.number)]
    xdim = numeric[0] if numeric else None
    rest = [d for d in dims if d not in (gdim, xdim)]
    if rest:  # further dimensions: first value of each
        q = q.isel({d: 0 for d in rest})
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    groups = cmp[gdim].values if gdim else [None]
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    window = f"{cmp.attrs.get('window_start')}-{cmp.attrs.get('window_end')}"
    if xdim:
        x = cmp[xdim].values.astype(float)
        width = 0.012 * (x.max() - x.min() if x.size > 1 else 1.0)
        for i, g in enumerate(groups):
            s = q.sel({gdim: g}) if gdim else q
            med = s.sel(quantile=0.5).values
            lo, hi = s.sel(quantile=0.05).values, s.sel(quantile=0.95).values
            if np.all(np.isnan(med)) or np.all(s.values == 0):
                continue  # no data, or the reference itself
            offset = (i - (len(groups) - 1) / 2) * width
            ax.errorbar(x + offset, med, yerr=[med - lo, hi - med], marker="o", ms=4, capsize=3,
                        color=colors[i % 10], label=str(g) if g is not None else None)
        ax.set_xlabel(xdim)
    else:
        med = np.atleast_1d(q.sel(quantile=0.5).values)
        lo = np.atleast_1d(q.sel(quantile=0.05).values)
        hi = np.atleast_1d(q.sel(quantile=0.95).values)
        pos = np.arange(len(groups))
        ax.bar(pos, med, yerr=[med - lo, hi - med], color=colors[: len(groups)], capsize=3)
        ax.set_xticks(pos, [str(g) for g in groups], rotation=30, ha="right")
    ax.axhline(0, color="k", lw=0.8)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel(f"deaths averted {window} ({cmp.attrs.get('variable', '')})")
    title = f"Deaths averted {window} relative to {cmp.attrs.get('b_label') or 'reference'}"
    if rest:
        title += "\n(" + ", ".join(f"{d}={cmp[d].values[0]}" for d in rest) + ")"
    n = cmp.sizes.get("draw", 1)
    ax.set_title(title + (f"; median and 90% interval, {n} draws" if n > 1 else "; single draw"),
                 fontsize=9)
    if xdim and gdim:
        ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)
