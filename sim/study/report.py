"""Figures and the Markdown report of a finished study folder.  Hydra-free.

`build_report(dir)` reads what the study wrote (sensitivity.nc, funding.nc, discovery.nc,
discovery_rules.md, study_config.yaml; any subset) and writes `dir/report.md` with the figures, the
tables (Sobol/Morris indices, cost-effectiveness per lever with 90% intervals, discovery rules) and
the assumptions (factor ranges, unit costs with sources).  Missing pieces are named in the report;
a folder with none of them is an InputError.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from sim.sweeps.compare import write_text_atomic
from sim.errors import InputError
from sim.results.io import open_result
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from sim.sweeps.plots import _save, plt, series_style, usd
from sim.results.summary import interval_text
from sim.results.tables import table

PIECES = ("sensitivity.nc", "funding.nc", "discovery.nc")


def _outcome_words(ds: xr.Dataset) -> str:
    """'cumulative deaths_overdose 2020-2030 (deaths)' -> 'overdose deaths 2020-2030'."""
    text = str(ds.attrs.get("outcome", "deaths")).replace("cumulative ", "").split(" (")[0]
    for name, words in (("deaths_overdose", "overdose deaths"), ("deaths_synthetic",
                        "synthetic-opioid deaths"), ("deaths_fentanyl", "fentanyl-involved deaths"),
                        ("deaths_heroin", "heroin-involved deaths")):
        text = text.replace(name, words)
    return text


def sobol_label(ds: xr.Dataset, i: int) -> str:
    """A Sobol factor's name for people: a lever, or a group of n parameters."""
    name, size = str(ds["group"].values[i]), int(ds["group_size"].values[i])
    if ds["group_kind"].values[i] == "lever":
        return f"{name} (lever)"
    return name if size == 1 and name in ds["factor"].values else f"{name} ({size})"


def plot_sensitivity(ds: xr.Dataset, path: str | os.PathLike, top: int = 20) -> Path:
    """Total (ST) and first-order (S1) Sobol indices with 95% intervals, side by side (one panel
    each, so no whisker crosses another bar), top factors by ST."""
    order = np.argsort(-np.nan_to_num(ds["ST"].values))[:top][::-1]
    names = [sobol_label(ds, i) for i in order]
    y = np.arange(len(order))
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.3 * len(order) + 1.8), sharey=True, sharex=True)
    for ax, (key, label, colour, dark) in zip(axes, (
            ("ST", "total effect (ST)", "#92c5de", "#2166ac"),
            ("S1", "first order (S1)", "#f4a582", "#b2182b"))):
        ax.barh(y, ds[key].values[order], 0.6, color=colour)
        ax.errorbar(ds[key].values[order], y, xerr=ds[f"{key}_conf"].values[order], fmt="none",
                    ecolor=dark, elinewidth=1.0, capsize=2.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("Sobol index (share of variance)")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names, fontsize=8)
    fig.suptitle(f"Sensitivity of {_outcome_words(ds)} to each factor: Sobol indices, whiskers "
                 f"95% bootstrap intervals", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_frontier(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Deaths averted against annual spending, one line per lever (median, 5-95% band); supply
    and demand levers in two panels; both axes logarithmic (values span decades)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    x = ds["spending"].values   # million US$/yr
    comma = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    dollars = FuncFormatter(lambda v, _: usd(v * 1e6))
    positive = ds["deaths_averted_quantiles"].values
    positive = positive[np.isfinite(positive) & (positive > 0)]
    for ax, side in zip(axes, ("supply", "demand")):
        levers = [lv for lv in ds["lever"].values if str(ds["lever_side"].sel(lever=lv).values) == side]
        for i, lever in enumerate(levers):   # colour-blind-safe colours, a marker each
            style = series_style(i)
            q = ds["deaths_averted_quantiles"].sel(lever=lever)
            med = q.sel(quantile=0.5).values
            name = str(lever).replace("_", " ")
            if not np.any(med >= 1):  # nothing to draw on a log axis: the legend says why
                name += " (more deaths: not shown)" if np.all(med < 0) else " (< 1: not shown)"
            ax.plot(x, med, ms=4, lw=1.5, label=name, **style)
            ax.fill_between(x, q.sel(quantile=0.05), q.sel(quantile=0.95), color=style["color"],
                            alpha=0.08)
        ax.set_xscale("log")
        ax.set_yscale("log", nonpositive="mask")
        ax.set_xticks(x)
        ax.xaxis.set_major_formatter(dollars)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(comma)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("extra spending on the lever, US$ per year (log scale)")
        ax.set_title(f"{side}-side levers", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", title="lever", title_fontsize=7)
        ax.grid(alpha=0.3)
    if positive.size:
        axes[0].set_ylim(max(1.0, positive.min() / 2), positive.max() * 2)
    axes[0].set_ylabel(f"deaths averted ({_outcome_words(ds)})")
    n = ds.sizes.get("draw", 1)
    fig.suptitle(f"Deaths averted by each lever funded alone: median and 90% interval over {n} "
                 f"draws (log scales; none or fewer than 1 not shown)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return table(header, rows, markdown=True, align="left").splitlines()


def sensitivity_section(ds: xr.Dataset, morris_top: int = 25) -> list[str]:
    rows = []
    for i in np.argsort(-np.nan_to_num(ds["ST"].values)):
        g = lambda v: f"{float(ds[v].values[i]):.3f}"  # noqa: E731
        rows.append([sobol_label(ds, i), str(ds["group_kind"].values[i]),
                     f"{g('S1')} ± {float(ds['S1_conf'].values[i]):.3f}",
                     f"{g('ST')} ± {float(ds['ST_conf'].values[i]):.3f}", g("ST_half")])
    screened = []
    order = np.argsort(-np.nan_to_num(ds["mu_star"].values)) if "mu_star" in ds else []
    for i in order[:morris_top]:
        screened.append([str(ds["factor"].values[i]), str(ds["factor_group"].values[i]),
                         f"{float(ds['mu_star'].values[i]):,.0f} ± "
                         f"{float(ds['mu_star_conf'].values[i]):,.0f}",
                         f"{ds['range_lo'].values[i]:.4g} - {ds['range_hi'].values[i]:.4g} "
                         f"{ds['factor_units'].values[i]}"])
    a = ds.attrs
    out = ["## 1. Global sensitivity", "",
           f"Outcome: {a['outcome']} (mean {a['outcome_mean']:,.0f}, sd {a['outcome_std']:,.0f} "
           f"over the sample).  Sobol (Saltelli/Sobol sequence, base sample {a['sobol_base_n']}, "
           f"{a['sobol_runs']} runs in {a['sobol_seconds']} s) with 95% bootstrap intervals; Morris "
           f"screening ({a.get('morris_runs', 'n/a')} runs).  Levers start {a['start']:g} with a "
           f"{a['ramp']:g}-yr ramp.", "",
           f"**Convergence**: {a['convergence_note']} (factor {a['convergence_factor_max_change']}).",
           "", "![Sobol indices](sensitivity.png)", "",
           *_table(["Sobol factor (parameters in it)", "kind", "S1 ± 95% CI", "ST ± 95% CI",
                    "ST at half sample"], rows), ""]
    if screened:
        out += [f"Morris screening of every factor alone (top {len(screened)} of "
                f"{ds.sizes['factor']} by mu*, the mean absolute elementary effect over the "
                f"factor's range, with its 95% bootstrap interval):", "",
                *_table(["factor", "Sobol group", f"Morris mu* ({ds.attrs['outcome_units']})",
                         "range"], screened), ""]
    return out


def funding_section(ds: xr.Dataset) -> list[str]:
    rows = []
    for lever in ds["lever"].values:
        for s in ds["spending"].values:
            sel = dict(lever=lever, spending=s)
            cq = ds["cost_per_death_averted_quantiles"].sel(**sel).values
            cost = (f"{cq[1]:,.0f} [{cq[0]:,.0f}-{cq[2]:,.0f}]" if np.isfinite(cq).all()
                    else f"{cq[1]:,.0f} [{cq[0]:,.0f}-not cost-saving in some draws]")
            sat = float(ds["saturated"].sel(**sel).mean())
            rows.append([str(lever), str(ds["lever_side"].sel(lever=lever).values), f"{s:g}",
                         interval_text(ds["deaths_averted"].sel(**sel).values),
                         interval_text(ds["deaths_averted_per_million"].sel(**sel).values,
                                       "{:.2f}"), cost, f"{sat:.0%}"])
    med = ds["deaths_averted_per_million_quantiles"].sel(quantile=0.5)
    lines = []
    for s in ds["spending"].values:
        m = med.sel(spending=s)
        best = str(m["lever"].values[int(np.nanargmax(m.values))])
        sup = m.where(ds["lever_side"] == "supply")
        best_sup = str(m["lever"].values[int(np.nanargmax(sup.values))])
        prob = float((ds["deaths_averted_per_million"].sel(spending=s, lever=best)
                      >= ds["deaths_averted_per_million"].sel(spending=s).max("lever")).mean())
        lines.append(f"- at {s:g} M US$/yr: most deaths averted per dollar by **{best}** "
                     f"({interval_text(ds['deaths_averted_per_million'].sel(spending=s, lever=best).values, '{:.2f}')} "
                     f"per M US$; best lever in {prob:.0%} of draws); best supply-side lever "
                     f"{best_sup} ({interval_text(ds['deaths_averted_per_million'].sel(spending=s, lever=best_sup).values, '{:.2f}')})")
    return ["## 2. Funding in dollars", "",
            f"Each lever alone, funded from {ds.attrs['start']:g} (ramp {ds.attrs['ramp']:g} yr) "
            f"over {ds.sizes['draw']} draws (unit costs sampled per draw: "
            f"{bool(ds.attrs['unit_costs_sampled'])}); US$ of {ds.attrs['dollar_year']}.  Cost per "
            f"death averted = total extra spending to the end of the window / deaths averted.  "
            f"Median [5%-95%].", "", *lines, "", "![frontier](frontier.png)", "",
            *_table(["lever", "side", "M US$/yr", "deaths averted", "deaths averted per M US$",
                     "US$ per death averted", "saturated"], rows), ""]


def assumptions_section(funding: xr.Dataset | None) -> list[str]:
    out = ["## Assumptions", "",
           "- Sobol indices assume independent uniform factors over the ranges in the table of "
           "section 1 (posterior 1-99% range for calibrated parameters, ±30% otherwise unless set).",
           "- Lever interventions are linear ramps from the start year; spending is extra spending "
           "above the historical path, linear in the lever (no economies or diseconomies of "
           "scale); money beyond a lever's maximum buys nothing (column 'saturated').",
           "- Discovery portfolios split the money equally over their levers.", ""]
    if funding is not None and "unit_costs" in funding.attrs:
        costs = yaml.safe_load(funding.attrs["unit_costs"])
        rows = [[k, f"{v['cost']:,.4g} [{v['low']:,.4g}-{v['high']:,.4g}]", v["units"],
                 (f"the draw's baseline {v['per_baseline']} (year before the start)"
                  if v.get("per_baseline") else f"{v['per_unit']:g}"), v["source"]]
                for k, v in costs.items()]
        out += ["Unit costs (configs/costs):", "",
                *_table(["lever", "cost [range]", "units", "per lever unit", "source"], rows), ""]
    return out


def build_report(folder: str | os.PathLike) -> Path:
    """Write `folder/report.md` from the study outputs present in the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"study folder {str(folder)!r}: not a directory")
    present = [p for p in PIECES if (folder / p).is_file()]
    if not present:
        raise InputError(f"study folder {str(folder)!r}: none of {', '.join(PIECES)} found; "
                         f"run fentsim-study first")
    cfg = {}
    if (folder / "study_config.yaml").is_file():
        cfg = yaml.safe_load((folder / "study_config.yaml").read_text()) or {}
    study = cfg.get("study") or {}
    lines = [f"# Study report: {study.get('name', folder.name)}", "",
             str(study.get("description", "")).strip(), "",
             f"Folder `{folder}`; regenerate with `fentsim-study-report {folder}`.", ""]
    funding = None
    if "sensitivity.nc" in present:
        ds = open_result(folder / "sensitivity.nc")
        if not (folder / "sensitivity.png").is_file():
            plot_sensitivity(ds, folder / "sensitivity.png")
        lines += sensitivity_section(ds)
    else:
        lines += ["## 1. Global sensitivity", "", "Not run (no sensitivity.nc).", ""]
    if "funding.nc" in present:
        funding = open_result(folder / "funding.nc")
        if not (folder / "frontier.png").is_file():
            plot_frontier(funding, folder / "frontier.png")
        lines += funding_section(funding)
    else:
        lines += ["## 2. Funding in dollars", "", "Not run (no funding.nc).", ""]
    lines += ["## 3. Scenario discovery", ""]
    if "discovery.nc" in present and (folder / "discovery_rules.md").is_file():
        disc = open_result(folder / "discovery.nc")
        med = disc["deaths_averted"].median("draw")
        lines += [f"- at {s:g} M US$/yr: supply portfolio averts "
                  f"{interval_text(disc['deaths_averted'].sel(policy='supply', spending=s).values)}, "
                  f"demand portfolio "
                  f"{interval_text(disc['deaths_averted'].sel(policy='demand', spending=s).values)}; "
                  f"supply wins in {float(disc['supply_wins'].sel(spending=s).mean()):.0%} of "
                  f"{disc.sizes['draw']} draws (medians {float(med.sel(policy='supply', spending=s)):,.0f} "
                  f"vs {float(med.sel(policy='demand', spending=s)):,.0f})"
                  for s in disc["spending"].values]
        lines += ["", (folder / "discovery_rules.md").read_text(), ""]
    else:
        lines += ["Not run (no discovery.nc).", ""]
    lines += assumptions_section(funding)
    return write_text_atomic("\n".join(lines) + "\n", folder / "report.md")
