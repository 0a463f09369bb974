"""Scenario discovery: where does a supply-side policy beat a demand-side one at equal spending?
Hydra-free.

Cases are (draw, spending level).  Draws combine the posterior ensemble (calibrated parameters,
jointly) with the other uncertain parameters sampled uniformly (Latin hypercube) over their
sensitivity ranges (sim/study/sensitivity.py), and unit costs sampled over their ranges (sim/funding/costs.py).
In each case the same annual spending goes to a supply portfolio (split equally over its levers) and
to a demand portfolio; the case is a "supply win" when the supply portfolio averts more deaths over
the outcome window.

A decision tree (scikit-learn, a CART classifier of supply wins on the uncertainties, unit costs and
spending) partitions the cases; each leaf whose majority is supply wins is a rule (a box of
conditions), reported with
    coverage = supply wins inside the box / all supply wins
    density  = supply wins inside the box / all cases inside the box
as in PRIM (Bryant & Lempert 2010).  The tree is used rather than PRIM because ema_workbench pulls
in a large dependency set; scikit-learn's tree is well kept and its boxes read the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from sim.funding.costs import CostModel
from sim.errors import InputError, checked_number, reject_unknown_keys
from sim.study.funding import run_policies, spending_levels, tile_params, unit_costs
from sim.model.levers import LEVER_SPECS
from sim.model.parameters import ModelParameters
from sim.study.sensitivity import Factor, Outcome
from sim.engine.solver import SolverSettings
from sim.results.tables import table

DISCOVERY_KEYS = ("spending", "supply", "demand", "max_depth", "min_leaf_fraction", "seed")


def discovery_options(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated `discovery` section with defaults."""
    cfg = dict(cfg or {})
    reject_unknown_keys("discovery", cfg, DISCOVERY_KEYS)
    out = {"spending": [100, 300, 1000], "supply": ["enforcement_china_finished", "interdiction_mail",
                                                     "interdiction_land"],
           "demand": ["naloxone_kits", "test_strips", "moud_capacity", "treatment_seeking"],
           "max_depth": 3, "min_leaf_fraction": 0.05, "seed": 0}
    out.update({k: v for k, v in cfg.items() if v is not None})
    for key in ("supply", "demand"):
        if not isinstance(out[key], Sequence) or isinstance(out[key], str) or not out[key]:
            raise InputError(f"discovery.{key}: value {out[key]!r} not allowed; allowed: a "
                             f"non-empty list of levers")
        reject_unknown_keys(f"discovery.{key}", out[key], LEVER_SPECS)
    depth = out["max_depth"]
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 8:
        raise InputError(f"discovery.max_depth: value {depth!r} not allowed; allowed: 1..8")
    out["min_leaf_fraction"] = checked_number("discovery.min_leaf_fraction",
                                              out["min_leaf_fraction"], "a number in (0, 0.5)",
                                              lambda v: 0 < v < 0.5)
    return out


def widen_ensemble(params: ModelParameters, factors: Sequence[Factor], fixed: Sequence[str],
                   seed: int) -> tuple[ModelParameters, list[str]]:
    """Posterior draws plus the other parameter factors sampled by Latin hypercube.

    `fixed` are the parameters already varied jointly by the posterior.  Returns the draws and the
    names of every parameter that varies across them.
    """
    from scipy.stats import qmc

    free = [f for f in factors if f.kind == "parameter" and f.name not in fixed]
    n = params.n_draws
    changes = {}
    if free and n > 1:
        u = qmc.LatinHypercube(d=len(free), seed=seed).random(n)
        for j, f in enumerate(free):
            lo, hi = f.bounds
            changes[f.name] = f.values(lo + u[:, j] * (hi - lo))
    out = params.replace(**changes) if changes else params
    arrays = out.as_arrays()
    varying = [k for k, v in arrays.items() if np.ptp(v) > 0]
    return out, varying


def supply_vs_demand(params: ModelParameters, costs: CostModel, opts: Mapping[str, Any],
                     start: float, ramp: float, settings: SolverSettings, outcome: Outcome,
                     seed: int, chunk: int = 2000,
                     progress: Callable[[str], None] | None = None) -> xr.Dataset:
    """Deaths averted by the supply and the demand portfolio at each spending level, per draw."""
    spending = np.asarray(opts["spending"], dtype=float)
    if spending.ndim != 1 or spending.size == 0 or np.any(spending <= 0):
        raise InputError(f"discovery.spending: value {opts['spending']!r} not allowed; allowed: a "
                         f"list of annual amounts > 0 (million US$/yr)")
    n, k = params.n_draws, spending.size
    cpu = unit_costs(params, costs, start, settings, seed)
    sides = {"supply": list(opts["supply"]), "demand": list(opts["demand"])}
    for side, levers in sides.items():
        for name in levers:
            costs[name]  # noqa: B018  (InputError if the lever has no unit cost)
            if LEVER_SPECS[name].side != side:
                raise InputError(f"discovery.{side}: lever {name!r} is a {LEVER_SPECS[name].side}-"
                                 f"side lever; allowed: {side}-side levers "
                                 f"({', '.join(n for n, s in LEVER_SPECS.items() if s.side == side)})")
    rows = np.concatenate([np.zeros(n)] + [np.repeat(spending * 1e6, n)] * 2)
    tiled = {name: np.tile(v, k) for name, v in cpu.items()}
    blocks = [spending_levels(costs, {}, np.zeros(n), {}, start)[0]]
    for levers in sides.values():
        share = {name: 1.0 / len(levers) for name in levers}
        blocks.append(spending_levels(costs, share, rows[n:n + k * n], tiled, start)[0])
    levels = {name: np.concatenate([b[name] for b in blocks]) for name in LEVER_SPECS}
    y = run_policies(tile_params(params, 1 + 2 * k), levels, start, ramp, settings, outcome,
                     chunk, progress)
    base = y[:n]
    averted = base[None, None, :] - y[n:].reshape(2, k, n)
    ds = xr.Dataset(
        {"deaths_averted": (("policy", "spending", "draw"), averted),
         "supply_wins": (("spending", "draw"), (averted[0] > averted[1]).astype(float)),
         "cost_per_unit": (("lever", "draw"), np.stack([cpu[name] for name in costs.costs]))},
        coords={"policy": ["supply", "demand"], "spending": spending, "draw": np.arange(n),
                "lever": list(costs.costs)})
    ds["deaths_averted"].attrs.update(units="deaths", long_name=f"deaths averted, {outcome.label}")
    ds["supply_wins"].attrs.update(units="1", long_name="1 if the supply portfolio averts more "
                                   "deaths than the demand portfolio at equal spending")
    ds["cost_per_unit"].attrs.update(units="US$/yr per lever unit", long_name="sampled unit cost")
    ds["spending"].attrs.update(units="million US$/yr", long_name="extra annual spending per portfolio")
    ds["draw"].attrs.update(units="1", long_name="parameter draw index")
    ds.attrs.update({"supply_levers": ", ".join(sides["supply"]),
                     "demand_levers": ", ".join(sides["demand"]), "outcome": outcome.label})
    return ds


@dataclass(frozen=True)
class Rule:
    """A box of conditions with its coverage and density of supply wins."""

    conditions: list[str]
    cases: int
    wins: int
    coverage: float
    density: float

    @property
    def text(self) -> str:
        return " AND ".join(self.conditions) or "(all cases)"


def case_table(ds: xr.Dataset, params: ModelParameters, varying: Sequence[str]
               ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Features (uncertain parameters, unit costs, spending) and labels of every (spending, draw)."""
    arrays = params.as_arrays()
    k = ds.sizes["spending"]
    cols, names = [], []
    for name in varying:
        cols.append(np.tile(arrays[name], k))
        names.append(name)
    for lever in ds["lever"].values:
        cpu = ds["cost_per_unit"].sel(lever=lever).values
        if np.ptp(cpu) > 0:
            cols.append(np.tile(cpu, k))
            names.append(f"cost_{lever}")
    cols.append(np.repeat(ds["spending"].values, ds.sizes["draw"]))
    names.append("spending_musd")
    x = np.stack(cols, axis=1)
    y = ds["supply_wins"].values.reshape(-1).astype(int)  # (spending, draw) row-major, as above
    return x, names, y


def find_rules(x: np.ndarray, names: Sequence[str], y: np.ndarray, max_depth: int,
               min_leaf_fraction: float, seed: int) -> tuple[list[Rule], float]:
    """Decision-tree boxes where supply wins are the majority; returns (rules, tree accuracy)."""
    from sklearn.tree import DecisionTreeClassifier

    total_wins = int(y.sum())
    if total_wins == 0 or total_wins == len(y):
        return [], 1.0
    tree = DecisionTreeClassifier(max_depth=max_depth, random_state=seed,
                                  min_samples_leaf=max(1, int(min_leaf_fraction * len(y))))
    tree.fit(x, y)
    t = tree.tree_
    rules = []

    def walk(node: int, bounds: dict[str, list[float]]) -> None:
        if t.children_left[node] == -1:
            inside = tree.apply(x) == node
            wins = int(y[inside].sum())
            cases = int(inside.sum())
            if wins * 2 > cases:
                conds = []
                for name, (lo, hi) in bounds.items():
                    if np.isfinite(lo) and np.isfinite(hi):
                        conds.append(f"{lo:.4g} < {name} <= {hi:.4g}")
                    elif np.isfinite(lo):
                        conds.append(f"{name} > {lo:.4g}")
                    else:
                        conds.append(f"{name} <= {hi:.4g}")
                rules.append(Rule(conds, cases, wins, wins / total_wins, wins / cases))
            return
        name, thr = names[t.feature[node]], float(t.threshold[node])
        lo, hi = bounds.get(name, [-np.inf, np.inf])
        walk(t.children_left[node], {**bounds, name: [lo, min(hi, thr)]})
        walk(t.children_right[node], {**bounds, name: [max(lo, thr), hi]})

    walk(0, {})
    rules.sort(key=lambda r: (-r.density, -r.coverage))
    return rules, float(tree.score(x, y))


def rules_markdown(rules: Sequence[Rule], y: np.ndarray, accuracy: float, ds: xr.Dataset) -> str:
    """A Markdown table of the rules, with the base rate."""
    n, wins = len(y), int(y.sum())
    lines = [f"Supply portfolio ({ds.attrs['supply_levers']}) against demand portfolio "
             f"({ds.attrs['demand_levers']}) at equal spending; outcome {ds.attrs['outcome']}.",
             "",
             f"Supply wins in {wins} of {n} cases ({wins / n:.1%}); decision-tree accuracy "
             f"{accuracy:.1%}.", ""]
    if not rules:
        side = "supply" if wins == n else "demand"
        lines.append(f"No box to report: {side} wins in every case.")
        return "\n".join(lines) + "\n"
    lines.append(table(["rule (supply beats demand when)", "cases", "coverage", "density"],
                       [[r.text, r.cases, f"{r.coverage:.0%}", f"{r.density:.0%}"] for r in rules],
                       markdown=True, align=["left", "right", "right", "right"]))
    return "\n".join(lines) + "\n"
