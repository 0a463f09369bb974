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
from sim.results.summary import units_text  # noqa: E402

MAX_PANELS = 6

# Categorical colours a colour-blind reader tells apart: Okabe & Ito's "Color Universal Design"
# palette without its yellow (too faint on white), then wine and olive from Paul Tol's colour-blind
# safe "muted" scheme.  Every series also gets its own marker (and, past nine series, another
# colour-marker pairing), so no two series depend on colour alone.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000", "#882255",
           "#999933")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")


def series_style(i: int) -> dict[str, Any]:
    """Colour and marker of the i-th series (distinct for the first 64)."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[(i + i // len(PALETTE)) % len(MARKERS)]}


def usd(value: float) -> str:
    """An amount of US$ in words for a label or tick: 25e6 -> '$25M', 1.6e9 -> '$1.6B'."""
    value = float(value)
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"${value / size:,.3g}{suffix}"
    return f"${value:,.3g}"


def money_axis(axis: Any, ticks: Sequence[float] | None = None) -> None:
    """A logarithmic axis of US$ with readable ticks ($25M, $1.6B), at `ticks` if given."""
    axis.axes.set_xscale("log") if axis is axis.axes.xaxis else axis.axes.set_yscale("log")
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if ticks is not None and len(ticks):
        axis.set_ticks(np.unique(np.asarray(ticks, dtype=float)))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: usd(v)))


def is_money(dim: str | None) -> bool:
    """True for a dimension holding US$ (the swept `funding.total_usd_per_year`)."""
    return dim is not None and (dim == FUNDING_DIM or "usd" in dim)


def value_words(dim: str, value: Any) -> str:
    """A sweep value in words for a legend: 'extra $25M/yr', 'scenario intensity 2'."""
    if is_money(dim):
        return f"extra {usd(value)}/yr"
    return f"{label_of(dim)} {value:g}" if isinstance(value, (int, float, np.number)) \
        else f"{label_of(dim)} {value}"


def scenario_of(cmp: xr.Dataset, side: str) -> str | None:
    """The scenario (and intensity, if not 1) of comparison side 'a' or 'b', from its recorded
    config, or None when the side is not one run."""
    import yaml

    try:
        config = yaml.safe_load(str(cmp.attrs.get(f"{side}_config", ""))) or {}
    except yaml.YAMLError:
        return None
    scenario = config.get("scenario") if isinstance(config, dict) else None
    if not isinstance(scenario, dict) or not scenario.get("name"):
        return None
    k = scenario.get("intensity", 1.0)
    return str(scenario["name"]) + (f" (intensity {k:g})" if k not in (None, 1, 1.0) else "")


def reference_words(cmp: xr.Dataset) -> str:
    """What B is, in words: 'scenario=baseline' (a selection), else its scenario, else its label."""
    label = str(cmp.attrs.get("b_label") or "")
    if "=" in label and " at " not in label:
        return label
    name = scenario_of(cmp, "b")
    return name if name else (label or "the reference")


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
    return units_text(ds[variable])


def label_of(dim: str) -> str:
    """A dimension as words: 'scenario_intensity' -> 'scenario intensity', the swept dollars ->
    'extra funding (US$/yr)'."""
    if is_money(dim):
        return "extra funding (US$/yr)"
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
            name = value_words(shade, v) if shade else (g or variable)
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
    band = (f"; median and 5-95% band over {n} draws" + (f" ({value_words(shade, middle)})"
                                                           if shade else "")) if n > 1 else ""
    extra = f" ({', '.join(value_words(d, ds[d].values[0]) for d in rest)})" if rest else ""
    fig.suptitle(f"{title_of(ds, variable)} per year by {label_of(gdim or 'run')}{extra}{band}",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, path)


def plot_averted(cmp: xr.Dataset, path: str | os.PathLike, group: str = "scenario") -> Path:
    """Deaths averted (median, 90% interval) per `group` value and the first numeric sweep
    dimension (e.g. intensity; dollars on a log axis); bars per group if there is no numeric
    dimension (one comparison of two files: one bar named by A's scenario)."""
    q = cmp["deaths_averted_quantiles"]
    dims = sweep_dims(cmp)
    gdim = _group_dim(dims, group)
    numeric = [d for d in dims if d != gdim and np.issubdtype(cmp[d].dtype, np.number)]
    xdim = numeric[0] if numeric else None
    rest = [d for d in dims if d not in (gdim, xdim)]
    if rest:  # further dimensions: first value of each
        q = q.isel({d: 0 for d in rest})
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    groups = list(cmp[gdim].values) if gdim else [scenario_of(cmp, "a") or cmp.attrs.get("a_label")
                                                   or "A"]
    window = f"{cmp.attrs.get('window_start')}-{cmp.attrs.get('window_end')}"
    if xdim:
        x = cmp[xdim].values.astype(float)
        log_x = bool(x.size > 1 and x.min() > 0 and (is_money(xdim) or x.max() / x.min() > 10))
        step = 0.012 * (x.max() - x.min() if x.size > 1 else 1.0)
        drawn = 0
        for i, g in enumerate(groups):
            s = q.sel({gdim: g}) if gdim else q
            med = s.sel(quantile=0.5).values
            lo, hi = s.sel(quantile=0.05).values, s.sel(quantile=0.95).values
            if np.all(np.isnan(med)) or np.all(s.values == 0):
                continue  # no data, or the reference itself
            shift = i - (len(groups) - 1) / 2   # side by side: multiplicative on a log axis
            xs = x * 10 ** (0.012 * shift) if log_x else x + shift * step
            style = series_style(drawn)
            drawn += 1
            ax.errorbar(xs, med, yerr=[med - lo, hi - med], ms=4, capsize=3, lw=1.4,
                        label=str(g), **style)
        if log_x and is_money(xdim):
            money_axis(ax.xaxis, x)
        elif log_x:
            ax.set_xscale("log")
        ax.set_xlabel(label_of(xdim) + (" (log scale)" if log_x else ""))
    else:
        med = np.atleast_1d(q.sel(quantile=0.5).values)
        lo = np.atleast_1d(q.sel(quantile=0.05).values)
        hi = np.atleast_1d(q.sel(quantile=0.95).values)
        vals = np.atleast_1d(q.values.reshape(len(QUANTILES), -1).T)
        keep = [i for i in range(len(groups)) if not np.all(np.nan_to_num(vals[i]) == 0)]
        pos = np.arange(len(keep))  # the reference (zero in every draw) gets no bar
        ax.bar(pos, med[keep], yerr=[med[keep] - lo[keep], hi[keep] - med[keep]],
               color=[series_style(i)["color"] for i in range(len(keep))], capsize=3)
        ax.set_xticks(pos, [str(groups[i]) for i in keep], rotation=30 if len(keep) > 3 else 0,
                      ha="right" if len(keep) > 3 else "center")
        ax.set_xlim(-0.5 - max(0, 3 - len(keep)) / 2, len(keep) - 0.5 + max(0, 3 - len(keep)) / 2)
        if gdim:
            ax.set_xlabel(label_of(gdim))
    ax.axhline(0, color="k", lw=0.8)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel(f"deaths averted {window}")
    _comparison_title(ax, cmp, f"averted {window} relative to", rest, "interval")
    if xdim and gdim:
        ax.legend(fontsize=7, ncol=2, title=label_of(gdim), title_fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _comparison_title(ax: plt.Axes, cmp: xr.Dataset, middle: str, rest: Sequence[str],
                      spread: str) -> None:
    """Title of a comparison figure: '<variable> <middle> <reference>', the values of the other
    sweep dimensions `rest` shown, and the draws summarised ('median and 90% <spread>')."""
    variable = str(cmp.attrs.get("variable", ""))
    title = f"{TITLES.get(variable, variable)} {middle} {reference_words(cmp)}"
    if rest:
        title += "\n(" + ", ".join(value_words(d, cmp[d].values[0]) for d in rest) + ")"
    n = cmp.sizes.get("draw", 1)
    ax.set_title(title + (f"; median and 90% {spread}, {n} draws" if n > 1 else "; single draw"),
                 fontsize=9)


def plot_frontier(cmp: xr.Dataset, path: str | os.PathLike, group: str = "scenario") -> Path:
    """Deaths averted (deaths; median line, 90% band) against extra spending, one line per `group`
    value.  x: the swept `funding.total_usd_per_year` (US$/yr, log scale if it spans more than
    10x, ticks at the swept amounts: $25M ...), else the window's total spending of A over B (US$);
    y: log scale when the medians span more than 100x (supply- and demand-side lines decades
    apart), symmetric log if some are zero or negative.  Cells without extra spending (the
    baseline, unfunded scenarios) are left out."""
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
    drawn: list[np.ndarray] = []
    medians: list[np.ndarray] = []
    names = list(cmp[gdim].values) if gdim else [scenario_of(cmp, "a") or cmp.attrs.get("a_label")
                                                  or "A"]
    for g in names:
        q = averted.sel({gdim: g}) if gdim else averted
        s = np.atleast_1d((spent.sel({gdim: g}) if gdim else spent).values)
        x = np.atleast_1d(cmp[xdim].values).astype(float) if xdim == FUNDING_DIM else s
        med, lo, hi = (np.atleast_1d(q.sel(quantile=v).values) for v in (0.5, 0.05, 0.95))
        keep = np.isfinite(s) & (s > 0) & np.isfinite(med) & np.isfinite(x)
        if not keep.any():
            continue   # the reference, or no extra spending
        order = np.argsort(x[keep])
        xs, med, lo, hi = (v[keep][order] for v in (x, med, lo, hi))
        style = series_style(len(drawn))
        ax.fill_between(xs, lo, hi, color=style["color"], alpha=0.15, lw=0)
        ax.plot(xs, med, ms=4, lw=1.8, label=str(g), **style)
        drawn.append(xs)
        medians.append(med)
    scale = "linear"
    if medians:   # lines decades apart (supply vs demand): a log axis shows them all
        every = np.concatenate(medians)
        positive = every[every > 0]
        if positive.size and positive.max() / positive.min() > 100:
            if np.all(every > 0):
                ax.set_yscale("log", nonpositive="mask")
                scale = "log"
            else:  # zero or fewer deaths averted somewhere: symmetric log, linear near zero
                ax.set_yscale("symlog", linthresh=10.0 ** np.floor(np.log10(positive.min())))
                scale = "symmetric log"
    if drawn:
        xs = np.concatenate(drawn)
        if xs.min() > 0 and xs.max() / xs.min() > 10:
            money_axis(ax.xaxis, np.unique(xs) if xdim == FUNDING_DIM else None)
        else:
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: usd(v)))
    else:
        ax.text(0.5, 0.5, "no cell with extra spending", transform=ax.transAxes, ha="center")
    if scale != "log":
        ax.axhline(0, color="k", lw=0.8)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("extra spending, US$ per year (funding.total_usd_per_year)" if xdim == FUNDING_DIM
                  else f"extra spending {window}, A over B (US$)")
    ax.set_ylabel(f"deaths averted {window}" + (f" ({scale} scale)" if scale != "linear" else ""))
    _comparison_title(ax, cmp, f"averted {window} against extra spending\nrelative to", rest,
                      "band")
    if drawn:
        ax.legend(fontsize=7, ncol=2, title=label_of(gdim) if gdim else None, title_fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)
