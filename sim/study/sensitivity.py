"""Global sensitivity analysis (SALib): Sobol indices and Morris screening.  Hydra-free.

Factors are every uncertain model parameter and every lever.  A parameter varies uniformly over a
range: the posterior's 1st-99th percentile for the calibrated parameters (sim/data/posterior_calibrated.csv)
and +/- `relative_range` around the calibrated value for the others (multiplicatively, i.e. uniform in
log space, for parameters declared with a log scale), clipped to the parameter's bounds; `ranges`
overrides any of them.  A lever varies its intervention level (from `start`, ramped over `ramp` yr)
over the range given in the config.  The outcome is a result variable summed over a window of
calendar years (default: deaths_overdose 2020-2030, deaths).

The whole SALib sample is integrated as batches of draws (`chunk` draws per call of
`sim.results.run.result_dataset`): parameter fields and lever levels are arrays over draws.

Sobol groups (`sobol_groups`): with `role` (the default) each lever is its own Sobol factor and the
parameters are grouped by their declared role (fitted, substitution constants, other uncertainties,
fixed), so the which-lever question is answered with ~15 Sobol factors instead of ~90 and the
indices converge at a base sample that runs in under a minute; Morris screens every parameter
alone (`factor` dimension).  `none`: every factor is its own Sobol factor.  With a posterior, the
members of a group whose ranges come from it are drawn together as whole posterior draws
(`joint_groups`): the group's factor picks a draw, so the Sobol sample never combines values that
the data rule out together (the posterior's correlations within a group are kept; between groups
draws are picked independently).  Morris, one factor at a time, moves each over its range.

Convergence: the Sobol sample of base size 2N begins with the sample of base size N (Saltelli rows
come in blocks per base point), so one evaluation gives the indices at N and at 2N; the largest
change of a total index is reported.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from sim.errors import InputError, reject_unknown_keys
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.model.parameters import ModelParameters
from sim.engine.solver import SolverSettings, integrate, integrate_from
from sim.model.state import LAYOUT
from sim.results.dataset import annual_totals
from sim.results.run import result_dataset

SENSITIVITY_KEYS = ("sobol_n", "sobol_groups", "morris_trajectories", "morris_levels", "bootstrap",
                    "relative_range", "ranges", "exclude", "levers", "chunk")
SOBOL_GROUPINGS = ("role", "none")
ROLE_GROUPS = {"fit": "fitted parameters", "subst": "substitution constants",
               "unc": "other uncertain parameters", "fixed": "fixed parameters"}
LEVER_KEYS = ("range", "mode")


@dataclass(frozen=True)
class Factor:
    """One uncertain input: a parameter or a lever's intervention level, uniform on [lo, hi]."""

    name: str
    kind: str          # 'parameter' or 'lever'
    lo: float
    hi: float
    units: str
    log: bool = False  # sampled uniformly in log10 space
    mode: str = "set"  # levers only
    group: str = ""    # Sobol group ("" = the factor alone)
    posterior: bool = False  # range from the posterior (grouped Sobol draws it whole: joint_groups)

    @property
    def sobol_group(self) -> str:
        return self.group or self.name

    @property
    def bounds(self) -> list[float]:
        """Bounds in sampling space (log10 for log factors)."""
        return [np.log10(self.lo), np.log10(self.hi)] if self.log else [self.lo, self.hi]

    def values(self, x: np.ndarray) -> np.ndarray:
        """Sampling-space column -> factor values."""
        return 10.0 ** x if self.log else x


@dataclass(frozen=True)
class Outcome:
    """A result variable summed over calendar years [start, end] (and any extra dims)."""

    variable: str = "deaths_overdose"
    window: tuple[int, int] = (2020, 2030)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> Outcome:
        cfg = dict(cfg or {})
        reject_unknown_keys("study.outcome", cfg, ("variable", "window"))
        var = cfg.get("variable", "deaths_overdose")
        from sim.results.dataset import OUTPUT_VARIABLES
        yearly = [k for k in OUTPUT_VARIABLES if k in ("deaths_synthetic", "deaths_fentanyl",
                                                      "deaths_heroin", "deaths_overdose",
                                                      "treatment_entries", "initiation", "arrivals",
                                                      "seizures_fy")]
        if var not in yearly:
            raise InputError(f"study.outcome.variable: value {var!r} not allowed; allowed: "
                             f"{', '.join(yearly)}")
        window = cfg.get("window", [2020, 2030])
        if (not isinstance(window, Sequence) or len(window) != 2
                or not all(isinstance(w, int) and not isinstance(w, bool) for w in window)
                or not 2011 <= window[0] <= window[1] <= 2100):
            raise InputError(f"study.outcome.window: value {window!r} not allowed; allowed: two "
                             f"years [START, END], 2011 <= START <= END <= 2100")
        return cls(var, (int(window[0]), int(window[1])))

    @property
    def units(self) -> str:
        from sim.results.dataset import OUTPUT_VARIABLES
        per_year = OUTPUT_VARIABLES[self.variable][0]
        return per_year.replace("/yr", "")

    @property
    def label(self) -> str:
        return f"cumulative {self.variable} {self.window[0]}-{self.window[1]} ({self.units})"

    def of(self, ds: xr.Dataset) -> np.ndarray:
        """Outcome per draw, shape (n_draws,)."""
        if ds["year"].values.max() < self.window[1]:
            raise InputError(f"study.outcome.window: end {self.window[1]} is after solver.end_year "
                             f"{int(ds['year'].values.max())}; allowed: a window inside the run")
        da = ds[self.variable].sel(year=slice(*self.window)).sum("year")
        extra = [d for d in da.dims if d != "draw"]
        return da.sum(extra).transpose("draw").values

    @property
    def from_year_totals(self) -> bool:
        """The variable is a calendar-year total of a cumulative stock (`annual_totals` has it)."""
        from sim.model.outputs import by_reduction
        return self.variable in by_reduction("year_total")

    def of_totals(self, totals: Mapping[str, np.ndarray]) -> np.ndarray:
        """Outcome per draw from `annual_totals` over the window's years ((..., draw, year))."""
        values = np.asarray(totals[self.variable]).sum(axis=-1)
        return values.reshape(-1, values.shape[-1]).sum(axis=0)


def sensitivity_options(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated `sensitivity` section with defaults."""
    cfg = dict(cfg or {})
    reject_unknown_keys("sensitivity", cfg, SENSITIVITY_KEYS)
    out = {"sobol_n": 32, "sobol_groups": "role", "morris_trajectories": 10, "morris_levels": 4,
           "bootstrap": 200, "relative_range": 0.3, "ranges": {}, "exclude": [], "levers": {}, "chunk": 2000}
    out.update({k: v for k, v in cfg.items() if v is not None})
    for key in ("sobol_n", "morris_trajectories", "morris_levels", "bootstrap", "chunk"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise InputError(f"sensitivity.{key}: value {v!r} not allowed; allowed: an integer >= 2")
    n = out["sobol_n"]
    if n & (n - 1):
        raise InputError(f"sensitivity.sobol_n: value {n} not allowed; allowed: a power of 2 "
                         f"(Sobol sequence), e.g. 32, 64, 128")
    if out["sobol_groups"] not in SOBOL_GROUPINGS:
        raise InputError(f"sensitivity.sobol_groups: value {out['sobol_groups']!r} not allowed; "
                         f"allowed: role (levers alone, parameters grouped by role) or none")
    r = out["relative_range"]
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r < 1:
        raise InputError(f"sensitivity.relative_range: value {r!r} not allowed; allowed: a number "
                         f"in (0, 1)")
    return out


def build_factors(base: ModelParameters, opts: Mapping[str, Any],
                  posterior: tuple[list[str], np.ndarray] | None = None) -> list[Factor]:
    """Parameter factors (all parameters with a non-zero value, minus `exclude`) and lever factors;
    `opts` as `sensitivity_options` returns them (its defaults filled in)."""
    ranges = dict(opts.get("ranges") or {})
    reject_unknown_keys("sensitivity.ranges", ranges, ModelParameters.names())
    exclude = list(opts.get("exclude") or [])
    reject_unknown_keys("sensitivity.exclude", exclude, [*ModelParameters.names(), *LEVER_SPECS])
    if base.n_draws != 1:
        raise InputError(f"params: sensitivity needs single-valued params, got {base.n_draws} draws")
    post = {}
    if posterior is not None:
        names, values = posterior
        post = {n: np.quantile(values[:, i], [0.01, 0.99]) for i, n in enumerate(names)}
    r = float(opts["relative_range"])
    factors = []
    for name in ModelParameters.names():
        if name in exclude:
            continue
        meta = ModelParameters.metadata(name)
        value = float(getattr(base, name))
        log = meta["scale"] == "log"
        if name in ranges:
            rng = ranges[name]
            if not isinstance(rng, Sequence) or len(rng) != 2 or not rng[0] < rng[1]:
                raise InputError(f"sensitivity.ranges.{name}: value {rng!r} not allowed; allowed: "
                                 f"[LO, HI] with LO < HI ({meta['units']})")
            lo, hi = float(rng[0]), float(rng[1])
        elif name in post:
            lo, hi = (float(x) for x in post[name])
        elif value == 0:
            continue  # a structural zero (e.g. no mail from other producers): not an uncertainty
        elif log:
            lo, hi = value / (1 + r), value * (1 + r)
        else:   # +-r of the value's size (negative values too: log-attractiveness, elasticities)
            lo, hi = value - r * abs(value), value + r * abs(value)
        blo, bhi = meta["bounds"]
        lo, hi = max(lo, blo), min(hi, bhi)
        if not lo < hi:
            raise InputError(f"sensitivity.ranges.{name}: range [{lo:g}, {hi:g}] is empty inside "
                             f"the bounds [{blo:g}, {bhi:g}] {meta['units']}")
        group = ROLE_GROUPS[meta["role"]] if opts["sobol_groups"] == "role" else ""
        factors.append(Factor(name, "parameter", lo, hi, meta["units"], log and lo > 0,
                              group=group, posterior=name in post and name not in ranges))
    overrides = dict(opts.get("levers") or {})
    reject_unknown_keys("sensitivity.levers", overrides, LEVER_SPECS)
    # every lever with a declared study range (LeverSpec.study_range, in its default mode's
    # units), each replaceable by an entry of `sensitivity.levers`
    levers = {name: {"range": list(spec.study_range), "mode": spec.default_mode}
              for name, spec in LEVER_SPECS.items() if spec.study_range is not None}
    levers.update(overrides)
    levers = {name: entry for name, entry in levers.items() if name not in exclude}
    for name, entry in levers.items():
        entry = dict(entry or {})
        reject_unknown_keys(f"sensitivity.levers.{name}", entry, LEVER_KEYS)
        rng, mode = entry.get("range"), entry.get("mode", LEVER_SPECS[name].default_mode)
        if not isinstance(rng, Sequence) or len(rng) != 2 or not float(rng[0]) < float(rng[1]):
            raise InputError(f"sensitivity.levers.{name}.range: value {rng!r} not allowed; "
                             f"allowed: [LO, HI] with LO < HI")
        units = LEVER_SPECS[name].units if mode == "set" else "1 (multiple of history)"
        factors.append(Factor(name, "lever", float(rng[0]), float(rng[1]), units, False, mode))
    return factors


def salib_problem(factors: Sequence[Factor], grouped: bool = False) -> dict[str, Any]:
    """The SALib problem dict (with the factors' Sobol groups if `grouped`)."""
    problem = {"num_vars": len(factors), "names": [f.name for f in factors],
               "bounds": [f.bounds for f in factors]}
    if grouped:
        problem["groups"] = [f.sobol_group for f in factors]
    return problem


def sobol_groups(factors: Sequence[Factor]) -> list[str]:
    """The Sobol factors (groups) in SALib's order: first appearance."""
    return list(dict.fromkeys(f.sobol_group for f in factors))


def joint_groups(factors: Sequence[Factor], posterior: tuple[list[str], np.ndarray] | None
                 ) -> dict[str, list[int]]:
    """The members of each Sobol group whose range is the posterior's: group -> factor indices.
    They are drawn as whole posterior draws (`draw_rows`), so the Sobol sample keeps the
    posterior's correlations within a group (independent uniforms over each member's range would
    combine values the data rule out); a member with a range of its own stays uniform on it."""
    if posterior is None:
        return {}
    members: dict[str, list[int]] = {}
    for j, f in enumerate(factors):
        if f.kind == "parameter" and f.group and f.posterior and f.name in posterior[0]:
            members.setdefault(f.group, []).append(j)
    return members


def draw_rows(factor: Factor, column: np.ndarray, n_rows: int) -> np.ndarray:
    """Posterior row indices (0..n_rows-1) from a factor's sampling-space column: its position
    in [lo, hi] read as a uniform variate."""
    lo, hi = factor.bounds
    u = np.clip((column - lo) / (hi - lo), 0.0, 1.0)
    return np.minimum((u * n_rows).astype(np.int64), n_rows - 1)


def shares_history(settings: SolverSettings, outcome: Outcome, start: float) -> bool:
    """Whether runs whose parameters agree can share their integration up to `start` (yr): the
    levers start there (a calendar-year boundary inside the window), the outcome is a year total
    over years from `start` on, and the compiled engine can continue a run."""
    return (settings.uses_kernel and float(start).is_integer()
            and settings.t_start + 1 < start < settings.t_end and outcome.from_year_totals
            and outcome.window[0] >= start)   # (the history's window needs whole years, >= 2)


def outcome_with_shared_history(params: ModelParameters, levers: LeverSet,
                                settings: SolverSettings, outcome: Outcome,
                                start: float) -> np.ndarray:
    """Outcome per draw of `params` with `levers` (acting from `start` on): the history up to
    `start` integrated once per distinct parameter draw, each draw continued from there
    (`integrate_from`); equal to whole runs to the solver's tolerance (tests/test_sensitivity.py)."""
    values = params.as_arrays()   # every field over the draws
    _, first, inverse = np.unique(np.column_stack(list(values.values())), axis=0,
                                  return_index=True, return_inverse=True)
    history = params.replace(**{k: v[first] for k, v in values.items()})
    before = dataclasses.replace(settings, end_year=int(start) - 1, output_step=1.0)
    states = integrate(history, LeverSet.from_mapping({}), before).rows_at(
        slice(0, LAYOUT.size), float(start))
    traj = integrate_from(states[:, np.ravel(inverse)], float(start), params, levers, settings)
    years = np.arange(outcome.window[0], outcome.window[1] + 1)
    return outcome.of_totals(annual_totals(traj, settings, years))


def model_evaluator(base: ModelParameters, factors: Sequence[Factor], settings: SolverSettings,
                    outcome: Outcome, start: float, ramp: float, chunk: int,
                    progress: Callable[[str], None] | None = None,
                    posterior: tuple[list[str], np.ndarray] | None = None,
                    share_history: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """X (n, n_factors, sampling space) -> outcome (n,), integrating `chunk` draws per batch.
    With `posterior` (names, values (draw, name)), each group of `joint_groups` takes whole
    posterior draws, chosen by the group's first factor's column (SALib moves a group's columns
    together, so any member's column identifies the draw); use it for grouped Sobol only.
    With `share_history` (where `shares_history` allows), rows with the same parameters (a Sobol
    sample's rows that differ in levers only) integrate their history up to `start` once:
    about 40 % less integration for 11 levers among 15 Sobol factors."""
    shared = share_history and shares_history(settings, outcome, start)
    joint = joint_groups(factors, posterior)
    in_joint = {j for idx in joint.values() for j in idx}
    column = {j: posterior[0].index(factors[j].name) for j in in_joint}   # of posterior values

    def evaluate(x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x))
        for a in range(0, len(x), chunk):
            block = x[a:a + chunk]
            changes, levers = {}, {}
            for idx in joint.values():
                values = posterior[1]
                rows = draw_rows(factors[idx[0]], block[:, idx[0]], len(values))
                for j in idx:
                    changes[factors[j].name] = values[rows, column[j]]
            for j, f in enumerate(factors):
                if j in in_joint:
                    continue
                values = f.values(block[:, j])
                if f.kind == "parameter":
                    changes[f.name] = values
                else:
                    levers[f.name] = {"start": start, "ramp": ramp, "level": values, "mode": f.mode}
            params = base.replace(**changes) if changes else base
            if shared:
                out[a:a + chunk] = outcome_with_shared_history(
                    params, LeverSet.from_mapping(levers), settings, outcome, start)
            else:
                ds, _ = result_dataset(params, LeverSet.from_mapping(levers), settings)
                out[a:a + chunk] = outcome.of(ds)
            if progress:
                progress(f"{min(a + chunk, len(x))}/{len(x)} model runs")
        return out

    return evaluate


def sobol(problem: Mapping[str, Any], evaluate: Callable[[np.ndarray], np.ndarray], n: int,
          bootstrap: int, seed: int) -> dict[str, Any]:
    """First-order and total Sobol indices with 95% bootstrap CIs at base sizes n and 2n.

    Evaluates the Saltelli/Sobol sample of base size 2n once; the first n base points are the
    sample of size n.  Returns arrays S1, S1_conf, ST, ST_conf (at 2n) and S1_half, ST_half (at n).
    """
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    d = len(set(problem["groups"])) if "groups" in problem else problem["num_vars"]
    x = sobol_sample.sample(dict(problem), 2 * n, calc_second_order=False, seed=seed)
    started = time.perf_counter()
    y = evaluate(x)
    seconds = time.perf_counter() - started
    if not np.all(np.isfinite(y)):
        raise InputError(f"sensitivity: {int(np.sum(~np.isfinite(y)))} model runs gave non-finite "
                         f"outcomes; narrow the ranges")
    rows_half = n * (d + 2)
    full = sobol_analyze.analyze(dict(problem), y, calc_second_order=False,
                                 num_resamples=bootstrap, conf_level=0.95, seed=seed)
    half = sobol_analyze.analyze(dict(problem), y[:rows_half], calc_second_order=False,
                                 num_resamples=bootstrap, conf_level=0.95, seed=seed)
    return {"S1": full["S1"], "S1_conf": full["S1_conf"], "ST": full["ST"],
            "ST_conf": full["ST_conf"], "S1_half": half["S1"], "ST_half": half["ST"],
            "runs": len(x), "seconds": seconds, "y": y}


def morris(problem: Mapping[str, Any], evaluate: Callable[[np.ndarray], np.ndarray],
           trajectories: int, levels: int, bootstrap: int, seed: int) -> dict[str, Any]:
    """Morris elementary effects: mu_star (with 95% CI) and sigma, normalised sampling space."""
    from SALib.analyze import morris as morris_analyze
    from SALib.sample import morris as morris_sample

    x = morris_sample.sample(dict(problem), trajectories, num_levels=levels, seed=seed)
    started = time.perf_counter()
    y = evaluate(x)
    seconds = time.perf_counter() - started
    res = morris_analyze.analyze(dict(problem), x, y, num_resamples=bootstrap, conf_level=0.95,
                                 num_levels=levels, seed=seed)
    return {"mu_star": np.asarray(res["mu_star"]), "mu_star_conf": np.asarray(res["mu_star_conf"]),
            "sigma": np.asarray(res["sigma"]), "runs": len(x), "seconds": seconds}


def indices_dataset(factors: Sequence[Factor], sob: Mapping[str, Any],
                    mor: Mapping[str, Any] | None, outcome: Outcome, n: int) -> xr.Dataset:
    """Sobol indices over `group` (a lever, or parameters grouped by role) and Morris indices
    and ranges over `factor`, with units and long names."""
    groups = sobol_groups(factors)
    kinds = {f.sobol_group: f.kind for f in factors}
    members = {g: sum(f.sobol_group == g for f in factors) for g in groups}
    g = "group"
    sobol_data = {
        "S1": (sob["S1"], f"first-order Sobol index of {outcome.label} (base sample {2 * n})"),
        "S1_conf": (sob["S1_conf"], "half-width of the 95% bootstrap confidence interval of S1"),
        "ST": (sob["ST"], f"total Sobol index of {outcome.label} (base sample {2 * n})"),
        "ST_conf": (sob["ST_conf"], "half-width of the 95% bootstrap confidence interval of ST"),
        "S1_half": (sob["S1_half"], f"first-order Sobol index at half the sample (base {n})"),
        "ST_half": (sob["ST_half"], f"total Sobol index at half the sample (base {n})"),
    }
    f = "factor"
    factor_data = {
        "range_lo": ([x.lo for x in factors], "see factor_units", "lower end of the factor's range"),
        "range_hi": ([x.hi for x in factors], "see factor_units", "upper end of the factor's range"),
    }
    if mor is not None:
        factor_data.update({
            "mu_star": (mor["mu_star"], outcome.units,
                        "Morris mean absolute elementary effect over the factor's full range"),
            "mu_star_conf": (mor["mu_star_conf"], outcome.units,
                             "half-width of the 95% bootstrap confidence interval of mu_star"),
            "sigma": (mor["sigma"], outcome.units, "Morris standard deviation of elementary effects"),
        })
    ds = xr.Dataset({**{k: (g, np.asarray(v, dtype=float)) for k, (v, _) in sobol_data.items()},
                     **{k: (f, np.asarray(v, dtype=float)) for k, (v, _, _) in factor_data.items()}},
                    coords={f: [x.name for x in factors],
                            "factor_kind": (f, [x.kind for x in factors]),
                            "factor_units": (f, [x.units for x in factors]),
                            "factor_log_scale": (f, [int(x.log) for x in factors]),
                            "factor_group": (f, [x.sobol_group for x in factors]),
                            g: groups,
                            "group_kind": (g, [kinds[name] for name in groups]),
                            "group_size": (g, [members[name] for name in groups])})
    for k, (_, long_name) in sobol_data.items():
        ds[k].attrs.update(units="1", long_name=long_name)
    for k, (_, units, long_name) in factor_data.items():
        ds[k].attrs.update(units=units, long_name=long_name)
    ds["factor"].attrs.update(long_name="uncertain parameter or lever")
    ds["factor_kind"].attrs.update(long_name="parameter or lever")
    ds["factor_units"].attrs.update(long_name="units of the factor's range")
    ds["factor_log_scale"].attrs.update(units="1", long_name="1 if sampled uniformly in log10")
    ds["factor_group"].attrs.update(long_name="the Sobol group the factor belongs to")
    ds[g].attrs.update(long_name="Sobol factor: a lever, or a group of parameters varied together")
    ds["group_kind"].attrs.update(long_name="parameter or lever")
    ds["group_size"].attrs.update(units="1", long_name="number of factors in the group")
    y = sob["y"]
    change = np.abs(np.asarray(sob["ST"]) - np.asarray(sob["ST_half"]))
    ds.attrs.update({
        "outcome": outcome.label, "outcome_variable": outcome.variable,
        "outcome_window": list(outcome.window), "outcome_units": outcome.units,
        "outcome_mean": float(np.mean(y)), "outcome_std": float(np.std(y)),
        "sobol_base_n": 2 * n, "sobol_runs": int(sob["runs"]),
        "sobol_seconds": round(float(sob["seconds"]), 1),
        "convergence_max_abs_change_ST": float(np.max(change)),
        "convergence_factor_max_change": str(np.array(groups)[np.argmax(change)]),
        "convergence_note": f"ST at base sample {n} vs {2 * n}: largest absolute change "
                            f"{float(np.max(change)):.3f}",
    })
    if mor is not None:
        ds.attrs.update({"morris_runs": int(mor["runs"]),
                         "morris_seconds": round(float(mor["seconds"]), 1)})
    return ds
