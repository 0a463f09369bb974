"""Funding sweeps: deaths averted against annual spending per lever, over an ensemble.  Hydra-free.

Each policy spends an extra amount per year (US$/yr, from `start`, ramped over `ramp` yr) on one
lever (or splits it equally over several, a portfolio); unit costs (sim/funding/costs.py) turn the money into
lever levels, per draw when the unit-cost ranges are sampled, costs per baseline quantity (outreach per
treatment entry, prevention per initiation averted) scaled by each draw's own baseline.  A lever cannot go beyond its allowed
maximum: money beyond that buys nothing (the level is clipped and the draw counted as saturated).
Every policy run and the baseline integrate the same parameter draws, so deaths averted are paired.

    deaths_averted            = baseline deaths - policy deaths, summed over the outcome window
    total_spending            = annual spending x (window end + 1 - start - ramp/2)   (US$)
    deaths_averted_per_million = deaths_averted / (total_spending / 1e6)
    cost_per_death_averted    = total_spending / deaths_averted (quantiles from the per-million ones)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from sim.funding.costs import CostModel, history_at, side, total_spending
from sim.funding.plan import baseline_quantities, portfolio_levels
from sim.errors import InputError
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.model.parameters import ModelParameters
from sim.results.run import result_dataset
from sim.sweeps.compare import cost_quantiles
from sim.study.sensitivity import Outcome
from sim.engine.solver import SolverSettings

QUANTILES = (0.05, 0.5, 0.95)


def tile_params(params: ModelParameters, times: int) -> ModelParameters:
    """The draws repeated `times` times (row r is draw r % n_draws)."""
    return ModelParameters(**{k: np.tile(v, times) for k, v in params.as_arrays().items()})


def run_policies(params: ModelParameters, levels: Mapping[str, np.ndarray], start: float,
                 ramp: float, settings: SolverSettings, outcome: Outcome, chunk: int,
                 progress: Callable[[str], None] | None = None) -> np.ndarray:
    """Outcome of every row: row r uses draw r of `params` and lever levels (mode set) levels[l][r]."""
    n = params.n_draws
    arrays = params.as_arrays()
    out = np.empty(n)
    for a in range(0, n, chunk):
        sl = slice(a, min(a + chunk, n))
        p = ModelParameters(**{k: v[sl] for k, v in arrays.items()})
        lev = {name: {"start": start, "ramp": ramp, "level": np.asarray(v)[sl], "mode": "set"}
               for name, v in levels.items()}
        out[sl] = outcome.of(result_dataset(p, LeverSet.from_mapping(lev), settings)[0])
        if progress:
            progress(f"{sl.stop}/{n} model runs")
    return out


def spending_levels(costs: CostModel, portfolio: Mapping[str, float], spending: np.ndarray,
                    cpu: Mapping[str, np.ndarray], start: float) -> tuple[dict, np.ndarray]:
    """Lever levels (per row) for spending (per row, US$/yr) split by `portfolio` shares
    (sim.funding.plan.portfolio_levels, the conversion `fentsim` uses too).

    Returns ({lever: level}, saturated) with every lever not in the portfolio at its history.
    """
    bought, sat = portfolio_levels(costs, portfolio, spending, cpu, start)
    levels = {name: bought.get(name, np.full(spending.shape, history_at(name, start)))
              for name in LEVER_SPECS}
    saturated = np.zeros(spending.shape, dtype=bool)
    for flags in sat.values():
        saturated |= flags
    return levels, saturated


def unit_costs(params: ModelParameters, costs: CostModel, start: float,
               settings: SolverSettings, seed: int) -> dict[str, np.ndarray]:
    """US$/yr per lever unit for every costed lever and draw of `params`, costs per baseline
    quantity scaled by each draw's own baseline (sim.funding.plan.baseline_quantities)."""
    n = params.n_draws
    baseline = baseline_quantities(params, costs.baseline_variables(), start, settings)
    return {name: costs.cost_per_unit(name, n, seed, baseline) for name in costs.costs}


def funding_sweep(params: ModelParameters, costs: CostModel, levers: Sequence[str],
                  spending: Sequence[float], start: float, ramp: float, settings: SolverSettings,
                  outcome: Outcome, seed: int, chunk: int = 2000,
                  progress: Callable[[str], None] | None = None) -> xr.Dataset:
    """Deaths averted (over the outcome window) for each lever alone at each annual spending."""
    spending = np.asarray(spending, dtype=float)
    if spending.ndim != 1 or spending.size == 0 or np.any(spending <= 0) \
            or not np.all(np.isfinite(spending)):
        raise InputError(f"funding.spending: value {spending.tolist()!r} not allowed; allowed: a "
                         f"list of annual amounts > 0 (million US$/yr)")
    for name in levers:
        costs[name]  # noqa: B018  (InputError if the lever has no unit cost)
    n, k, m = params.n_draws, spending.size, len(levers)
    cpu = unit_costs(params, costs, start, settings, seed)
    rows_spend = np.concatenate([np.zeros(n)] + [np.repeat(spending * 1e6, n)] * m)
    all_levels = {name: np.empty(rows_spend.size) for name in LEVER_SPECS}
    saturated = np.zeros(rows_spend.size, dtype=bool)
    base_levels, _ = spending_levels(costs, {}, np.zeros(n), {}, start)
    for name in LEVER_SPECS:
        all_levels[name][:n] = base_levels[name]
    for i, lever in enumerate(levers):
        sl = slice(n + i * k * n, n + (i + 1) * k * n)
        tiled = {name: np.tile(v, k) for name, v in cpu.items()}
        lev, sat = spending_levels(costs, {lever: 1.0}, rows_spend[sl], tiled, start)
        for name in LEVER_SPECS:
            all_levels[name][sl] = lev[name]
        saturated[sl] = sat
    y = run_policies(tile_params(params, 1 + k * m), all_levels, start, ramp, settings, outcome,
                     chunk, progress)
    baseline = y[:n]
    deaths = y[n:].reshape(m, k, n)
    averted = baseline[None, None, :] - deaths
    total = total_spending(spending * 1e6, start, ramp, outcome.window[1])  # (k,)
    per_million = averted / (total[None, :, None] / 1e6)
    level = np.stack([all_levels[lv][n:].reshape(m, k, n)[i] for i, lv in enumerate(levers)])
    ds = xr.Dataset(
        {
            "deaths_baseline": (("draw",), baseline),
            "deaths_policy": (("lever", "spending", "draw"), deaths),
            "deaths_averted": (("lever", "spending", "draw"), averted),
            "deaths_averted_per_million": (("lever", "spending", "draw"), per_million),
            "total_spending": (("spending",), total),
            "lever_level": (("lever", "spending", "draw"), level),
            "cost_per_unit": (("lever", "draw"), np.stack([cpu[lv] for lv in levers])),
            "saturated": (("lever", "spending", "draw"),
                          saturated[n:].reshape(m, k, n).astype(float)),
        },
        coords={"lever": list(levers), "spending": spending,
                "draw": np.arange(n), "quantile": list(QUANTILES),
                "lever_side": ("lever", [side(lv) for lv in levers]),
                "lever_units": ("lever", [LEVER_SPECS[lv].units for lv in levers])},
    )
    q = lambda da: da.quantile(list(QUANTILES), dim="draw").transpose(..., "quantile")  # noqa: E731
    ds["deaths_averted_quantiles"] = q(ds["deaths_averted"])
    ds["deaths_averted_per_million_quantiles"] = q(ds["deaths_averted_per_million"])
    ds["cost_per_death_averted_quantiles"] = cost_quantiles(ds["deaths_averted_per_million_quantiles"])
    window = f"{outcome.window[0]}-{outcome.window[1]}"
    attrs = {
        "deaths_baseline": ("deaths", f"baseline {outcome.label}"),
        "deaths_policy": ("deaths", f"{outcome.label} with the lever funded"),
        "deaths_averted": ("deaths", f"baseline minus policy, {outcome.variable} {window}"),
        "deaths_averted_per_million": ("deaths per million US$",
                                       f"deaths averted {window} per million US$ spent {start:g}-"
                                       f"{outcome.window[1]}"),
        "total_spending": ("US$", f"extra spending from {start:g} to the end of {outcome.window[1]}"),
        "lever_level": ("see lever_units", "lever level bought (mode set, clipped at its maximum)"),
        "cost_per_unit": ("US$/yr per lever unit", "unit cost of one unit of the lever (per draw)"),
        "saturated": ("1", "1 if the spending took the lever past its maximum (rest wasted)"),
        "deaths_averted_quantiles": ("deaths", "deaths averted, 5/50/95% over draws"),
        "deaths_averted_per_million_quantiles": ("deaths per million US$",
                                                 "deaths averted per million US$, 5/50/95%"),
        "cost_per_death_averted_quantiles": ("US$ per death averted",
                                             "cost per death averted, 5/50/95% (inf: none averted)"),
    }
    for name, (units, long_name) in attrs.items():
        ds[name].attrs.update(units=units, long_name=long_name)
    ds["spending"].attrs.update(units="million US$/yr", long_name="extra annual spending on the lever")
    ds["draw"].attrs.update(units="1", long_name="parameter draw index")
    ds["quantile"].attrs.update(units="1", long_name="quantile over draws")
    ds.attrs.update({"outcome": outcome.label, "start": start, "ramp": ramp,
                     "unit_costs_sampled": int(costs.sample), "seed": seed,
                     "dollar_year": costs.dollar_year})
    return ds


def best_lever(ds: xr.Dataset, spending: float) -> tuple[str, xr.DataArray]:
    """The lever with the highest median deaths averted per million US$ at `spending`."""
    med = ds["deaths_averted_per_million_quantiles"].sel(spending=spending, quantile=0.5)
    name = str(med["lever"].values[int(np.nanargmax(med.values))])
    return name, ds["deaths_averted_per_million"].sel(lever=name, spending=spending)
