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
from sim.sweeps.plots import _save, plt
from sim.results.summary import interval_text
from sim.results.tables import table

PIECES = ("sensitivity.nc", "funding.nc", "discovery.nc")
SIDE_COLOURS = {"supply": ("#b2182b", "#d6604d", "#f4a582", "#e08214", "#8c510a"),
                "demand": ("#2166ac", "#4393c3", "#92c5de", "#1b7837", "#5aae61")}


def plot_sensitivity(ds: xr.Dataset, path: str | os.PathLike, top: int = 20) -> Path:
    """Horizontal bars of total and first-order Sobol indices (95% CIs), top factors by ST."""
    order = np.argsort(-np.nan_to_num(ds["ST"].values))[:top][::-1]
    names = [f"{ds['factor'].values[i]}{' (lever)' if ds['factor_kind'].values[i] == 'lever' else ''}"
             for i in order]
    y = np.arange(len(order))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(order) + 1.5))
    ax.barh(y + 0.2, ds["ST"].values[order], 0.4, xerr=ds["ST_conf"].values[order],
            label="total (ST)", color="#4393c3")
    ax.barh(y - 0.2, ds["S1"].values[order], 0.4, xerr=ds["S1_conf"].values[order],
            label="first order (S1)", color="#f4a582")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("Sobol index (1), bars: 95% bootstrap CI")
    ax.set_title(f"Sensitivity of {ds.attrs.get('outcome', '')}", fontsize=9)
    ax.axvline(0, color="k", lw=0.5)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def plot_frontier(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Deaths averted against annual spending, one line per lever (median, 5-95% band)."""
    fig, ax = plt.subplots(figsize=(8, 5))
    used = {"supply": 0, "demand": 0}
    x = ds["spending"].values
    for lever in ds["lever"].values:
        side = str(ds["lever_side"].sel(lever=lever).values)
        colour = SIDE_COLOURS[side][used[side] % 5]
        used[side] += 1
        q = ds["deaths_averted_quantiles"].sel(lever=lever)
        style = "-" if side == "supply" else "--"
        ax.plot(x, q.sel(quantile=0.5), style, marker="o", ms=3, color=colour,
                label=f"{lever} ({side})")
        ax.fill_between(x, q.sel(quantile=0.05), q.sel(quantile=0.95), color=colour, alpha=0.12)
    ax.set_xscale("log")
    ax.set_xlabel("extra spending (million US$/yr)")
    ax.set_ylabel(f"deaths averted {ds.attrs.get('outcome', '').replace('cumulative ', '')}")
    ax.set_title("Supply vs demand frontier: median and 90% interval over draws", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return table(header, rows, markdown=True, align="left").splitlines()


def sensitivity_section(ds: xr.Dataset) -> list[str]:
    order = np.argsort(-np.nan_to_num(ds["ST"].values))
    rows = []
    for i in order:
        g = lambda v: f"{float(ds[v].values[i]):.3f}"  # noqa: E731
        rows.append([str(ds["factor"].values[i]), str(ds["factor_kind"].values[i]),
                     f"{g('S1')} ± {float(ds['S1_conf'].values[i]):.3f}",
                     f"{g('ST')} ± {float(ds['ST_conf'].values[i]):.3f}", g("ST_half"),
                     f"{float(ds['mu_star'].values[i]):,.0f}" if "mu_star" in ds else "",
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
           *_table(["factor", "kind", "S1 ± 95% CI", "ST ± 95% CI", f"ST at half sample",
                    "Morris mu* (deaths)", "range"], rows), ""]
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
                 f"{v['per_unit']:g}", v["source"]] for k, v in costs.items()]
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
