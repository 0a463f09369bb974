"""Figures (PNG, matplotlib Agg backend) from sweep datasets and comparisons.  Hydra-free.

- `plot_trajectories`: small multiples of annual deaths, one panel per scenario against the
  baseline, one line per intensity, the 5-95% band over draws for one of them;
- `plot_averted`: deaths averted per scenario (lever) and intensity, median with 90% interval;
  the reference itself (zero by definition) is not drawn;
- `plot_frontier`: deaths averted (median, 90% band) against extra spending, one line per scenario
  (the supply-versus-demand frontier), for comparisons with money metrics.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from sim.sweeps.compare import FUNDING_DIM, QUANTILES, sweep_dims  # noqa: E402
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


# short names in words for titles (the variables' long_names are definitions, too long for a title)
TITLES = {"deaths_overdose": "Opioid overdose deaths", "deaths_synthetic": "Synthetic-opioid deaths",
          "deaths_fentanyl": "Fentanyl-involved deaths", "deaths_heroin": "Heroin-involved deaths"}
REFERENCE = "baseline"


def title_of(ds: xr.Dataset, variable: str) -> str:
    """A title in words for a variable, e.g. 'Opioid overdose deaths'."""
    return TITLES.get(variable, str(ds[variable].attrs.get("long_name", variable)).split(",")[0])


def units_of(ds: xr.Dataset, variable: str) -> str:
    """The readable units of a variable (`units_label`, else `units`), e.g. 'deaths/yr'."""
    attrs = ds[variable].attrs
    return str(attrs.get("units_label", attrs.get("units", "")))


def label_of(dim: str) -> str:
    """A dimension as words: 'scenario_intensity' -> 'scenario intensity'."""
    return dim.replace("_", " ")


def _band(ax: plt.Axes, x: np.ndarray, line: xr.DataArray, color: Any, label: str,
          band: bool, **style: Any) -> None:
    """Median over draws as a line, and (if `band` and several draws) the 5-95% band."""
    if "draw" in line.dims and line.sizes["draw"] > 1:
        med = line.median("draw").values
        if band:
            lo, hi = line.quantile([0.05, 0.95], dim="draw").values
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
    else:
        med = np.asarray(line.values).reshape(len(x), -1)[:, 0]
    ax.plot(x, med, color=color, label=label, **style)


def plot_trajectories(ds: xr.Dataset, path: str | os.PathLike, variable: str = "deaths_overdose",
                      group: str = "scenario", years: Sequence[int] | None = None) -> Path:
    """Small multiples of annual `variable`: one panel per value of `group` (e.g. scenario), each
    against the reference `baseline` (grey); within a panel one line per value of the first
    numeric sweep dimension (e.g. intensity), the 5-95% band over draws for the middle one."""
    if variable not in ds:
        raise InputError(f"variable: {variable!r} not in the dataset")
    da = ds[variable]
    if years is not None:
        da = da.sel(year=slice(int(years[0]), int(years[1])))
    dims = sweep_dims(ds)
    gdim = _group_dim(dims, group)
    numeric = [d for d in dims if d != gdim and np.issubdtype(ds[d].dtype, np.number)]
    shade = numeric[0] if numeric else None
    rest = [d for d in dims if d not in (gdim, shade)]
    if rest:  # further dimensions: their first value
        da = da.isel({d: 0 for d in rest})
    x = da["year"].values
    groups = [str(v) for v in ds[gdim].values] if gdim else [None]
    reference = REFERENCE if REFERENCE in groups and len(groups) > 1 else None
    panels = [g for g in groups if g != reference][:MAX_PANELS * 2]
    shades = list(ds[shade].values) if shade else [None]
    middle = shades[len(shades) // 2] if 1.0 not in shades else 1.0
    cmap = plt.get_cmap("viridis")
    colors = {v: cmap(0.15 + 0.7 * i / max(len(shades) - 1, 1)) for i, v in enumerate(shades)}
    ncol = min(3, len(panels))
    nrow = int(np.ceil(len(panels) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.1 * nrow + 0.8), squeeze=False,
                             sharex=True, sharey=True)
    for ax, g in zip(axes.ravel(), panels):
        sub = da.sel({gdim: g}) if gdim else da
        if reference is not None:
            ref = da.sel({gdim: reference})
            ref = ref.sel({shade: middle}) if shade else ref
            _band(ax, x, ref, "0.55", f"{reference}", True, lw=1.4, ls="--")
        for v in shades:
            line = sub.sel({shade: v}) if shade else sub
            if np.all(np.isnan(line.values)):
                continue
            name = f"{label_of(shade)} {v:g}" if shade else (g or variable)
            _band(ax, x, line, colors[v] if shade else "C0", name, v == middle, lw=1.8)
        ax.set_title(g or title_of(ds, variable), fontsize=10)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=5))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(units_of(ds, variable).replace("/yr", " per year"))
    for ax in axes[-1, :]:
        ax.set_xlabel("year")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    n = ds.sizes.get("draw", 1)
    band = (f"; median and 5-95% band over {n} draws" + (f" ({label_of(shade)} {middle:g})"
                                                           if shade else "")) if n > 1 else ""
    extra = f" ({', '.join(f'{label_of(d)} {ds[d].values[0]}' for d in rest)})" if rest else ""
    fig.suptitle(f"{title_of(ds, variable)} per year by {label_of(gdim or 'run')}{extra}{band}",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
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
        ax.set_xlabel(label_of(xdim))
    else:
        med = np.atleast_1d(q.sel(quantile=0.5).values)
        lo = np.atleast_1d(q.sel(quantile=0.05).values)
        hi = np.atleast_1d(q.sel(quantile=0.95).values)
        vals = np.atleast_1d(q.values.reshape(len(QUANTILES), -1).T)
        keep = [i for i in range(len(groups)) if not np.all(np.nan_to_num(vals[i]) == 0)]
        pos = np.arange(len(keep))  # the reference (zero in every draw) gets no bar
        ax.bar(pos, med[keep], yerr=[med[keep] - lo[keep], hi[keep] - med[keep]],
               color=[colors[i % 10] for i in keep], capsize=3)
        ax.set_xticks(pos, [str(groups[i]) for i in keep], rotation=30, ha="right")
    ax.axhline(0, color="k", lw=0.8)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel(f"deaths averted {window}")
    _comparison_title(ax, cmp, f"averted {window} relative to", rest, "interval")
    if xdim and gdim:
        ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _comparison_title(ax: plt.Axes, cmp: xr.Dataset, middle: str, rest: Sequence[str],
                      spread: str) -> None:
    """Title of a comparison figure: '<variable> <middle> <reference>', the values of the other
    sweep dimensions `rest` shown, and the draws summarised ('median and 90% <spread>')."""
    variable = str(cmp.attrs.get("variable", ""))
    title = f"{TITLES.get(variable, variable)} {middle} {cmp.attrs.get('b_label') or 'reference'}"
    if rest:
        title += "\n(" + ", ".join(f"{label_of(d)} {cmp[d].values[0]}" for d in rest) + ")"
    n = cmp.sizes.get("draw", 1)
    ax.set_title(title + (f"; median and 90% {spread}, {n} draws" if n > 1 else "; single draw"),
                 fontsize=9)


def plot_frontier(cmp: xr.Dataset, path: str | os.PathLike, group: str = "scenario") -> Path:
    """Deaths averted (deaths; median line, 90% band) against extra spending, one line per `group`
    value.  x: the swept `funding.total_usd_per_year` in million US$/yr if it is a dimension (log
    scale if it spans more than 10x), else the window's total spending of A over B in million US$;
    y: symmetric log scale when the medians span more than 100x (supply- and demand-side lines
    decades apart).  Cells without extra spending (the baseline, unfunded scenarios) are left out."""
    if "spending_quantiles" not in cmp:
        raise InputError("comparison: no money metrics (variable 'spending'); allowed: a "
                         "comparison of results that both carry funding_spending")
    dims = sweep_dims(cmp)
    gdim = _group_dim([d for d in dims if d != FUNDING_DIM], group)
    numeric = [d for d in dims if d != gdim and np.issubdtype(cmp[d].dtype, np.number)]
    xdim = FUNDING_DIM if FUNDING_DIM in dims else (numeric[0] if numeric else None)
    rest = [d for d in dims if d not in (gdim, xdim)]
    averted = cmp["deaths_averted_quantiles"]
    spent = cmp["spending_quantiles"].sel(quantile=0.5)
    if rest:  # further dimensions: first value of each
        averted, spent = averted.isel({d: 0 for d in rest}), spent.isel({d: 0 for d in rest})
    window = f"{cmp.attrs.get('window_start')}-{cmp.attrs.get('window_end')}"
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    drawn: list[np.ndarray] = []
    medians: list[np.ndarray] = []
    for i, g in enumerate(cmp[gdim].values if gdim else [None]):
        q = averted.sel({gdim: g}) if gdim else averted
        s = np.atleast_1d((spent.sel({gdim: g}) if gdim else spent).values)
        x = (np.atleast_1d(cmp[xdim].values).astype(float) if xdim == FUNDING_DIM else s) / 1e6
        med, lo, hi = (np.atleast_1d(q.sel(quantile=v).values) for v in (0.5, 0.05, 0.95))
        keep = np.isfinite(s) & (s > 0) & np.isfinite(med) & np.isfinite(x)
        if not keep.any():
            continue   # the reference, or no extra spending
        order = np.argsort(x[keep])
        xs, med, lo, hi = (v[keep][order] for v in (x, med, lo, hi))
        color = colors[i % 10]
        ax.fill_between(xs, lo, hi, color=color, alpha=0.2, lw=0)
        ax.plot(xs, med, color=color, marker="o", ms=4, lw=1.8,
                label=str(g) if g is not None else None)
        drawn.append(xs)
        medians.append(med)
    if medians:   # lines decades apart (supply vs demand): a symmetric log axis shows them all
        positive = np.concatenate(medians)
        positive = positive[positive > 0]
        if positive.size and positive.max() / positive.min() > 100:
            ax.set_yscale("symlog", linthresh=10.0 ** np.floor(np.log10(positive.min())))
    if drawn:
        xs = np.concatenate(drawn)
        if xs.min() > 0 and xs.max() / xs.min() > 10:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            if xdim == FUNDING_DIM:  # ticks at the swept amounts
                ax.set_xticks(np.unique(xs))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,g}"))
    else:
        ax.text(0.5, 0.5, "no cell with extra spending", transform=ax.transAxes, ha="center")
    ax.axhline(0, color="k", lw=0.8)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("extra spending per year, funding.total_usd_per_year (million US$/yr)"
                  if xdim == FUNDING_DIM else f"extra spending {window}, A over B (million US$)")
    ax.set_ylabel(f"deaths averted {window}")
    _comparison_title(ax, cmp, f"averted {window} against extra spending\nrelative to", rest,
                      "band")
    if gdim and drawn:
        ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)
