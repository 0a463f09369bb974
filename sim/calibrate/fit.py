"""Calibration: penalised least squares to the targets, then an MCMC ensemble (emcee).  Hydra-free.

Free parameters, their bounds and priors come from the `calibration` config section:

    free:
      <parameter>: {lo: <units>, hi: <units>, prior_sd: <sd>}   # prior centred on the params value

A parameter with metadata scale 'log' (a rate or a scale) is fitted as log(value) and its prior_sd is
in natural-log units; other parameters are fitted as they are and prior_sd is in their own units.
The objective is 0.5 |r|^2 with r = [target residuals (sim.calibrate.targets.residuals); (z - z0)/prior_sd].
Every model evaluation is one batched integration over draws: the forward-difference Jacobian of
n_free parameters is a single batch of n_free + 1 draws, and a whole emcee half-ensemble is one batch.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from sim.errors import InputError, SolverError, checked_number, reject_unknown_keys
from sim.model.levers import LeverSet
from sim.model.parameters import PRIOR_ROLES, ModelParameters
from sim.engine.solver import SolverSettings, integrate
from sim.calibrate.targets import TargetSet, model_outputs, residuals

CALIBRATION_KEYS = ("free", "seed", "global_samples", "starts", "max_nfev", "diff_step", "ftol",
                    "rtol", "params_file", "ensemble", "walkers", "steps", "burn", "thin", "posterior_file",
                    "init_scatter", "promote", "warm_start")
DEFAULTS: dict[str, Any] = {"seed": 0, "global_samples": 512, "starts": 4, "max_nfev": 60,
                            "diff_step": 1e-3, "ftol": 1e-8, "rtol": 1e-6, "params_file": None,
                            "ensemble": False,
                            "walkers": 64, "steps": 300, "burn": 100, "thin": 25,
                            "posterior_file": None, "init_scatter": 0.01, "promote": False, "warm_start": None}
FAILED_RESIDUAL = 1e3  # residual given to every target of a batch the solver could not integrate


@dataclass(frozen=True)
class FreeParameter:
    """A fitted parameter: bounds (parameter units), log or linear scale, prior centre and sd."""

    name: str
    lo: float
    hi: float
    log: bool
    center: float      # prior centre, parameter units
    prior_sd: float    # in natural-log units if `log`, else parameter units

    def to_z(self, value: np.ndarray | float) -> np.ndarray:
        return np.log(value) if self.log else np.asarray(value, dtype=float)

    def from_z(self, z: np.ndarray | float) -> np.ndarray:
        return np.exp(z) if self.log else np.asarray(z, dtype=float)

    @property
    def z_bounds(self) -> tuple[float, float]:
        return float(self.to_z(self.lo)), float(self.to_z(self.hi))

    @property
    def z_center(self) -> float:
        return float(self.to_z(self.center))


def parse_free(cfg: Mapping[str, Any], base: ModelParameters) -> list[FreeParameter]:
    """Validate `calibration.free` against parameter names, bounds and scales."""
    free = dict(cfg or {})
    if not free:
        raise InputError("calibration.free: no free parameters; allowed: a mapping "
                         "{parameter: {lo, hi, prior_sd}}")
    reject_unknown_keys("calibration.free", free, ModelParameters.names())
    out = []
    for name, spec in free.items():
        where = f"calibration.free.{name}"
        spec = dict(spec or {})
        reject_unknown_keys(where, spec, ("lo", "hi", "prior_sd"))
        meta = ModelParameters.metadata(name)
        blo, bhi = meta["bounds"]
        log = meta["scale"] == "log"
        lo, hi = float(spec.get("lo", blo)), float(spec.get("hi", bhi))
        if not blo <= lo < hi <= bhi:
            raise InputError(f"{where}: bounds [{lo:g}, {hi:g}] not allowed; allowed: lo < hi inside "
                             f"[{blo:g}, {bhi:g}] {meta['units']}")
        if log and lo <= 0:
            raise InputError(f"{where}.lo: value {lo:g} not allowed for a log-scale parameter; "
                             f"allowed: > 0 {meta['units']}")
        center = float(np.asarray(getattr(base, name)).reshape(-1)[0])
        if not lo <= center <= hi:
            raise InputError(f"{where}: prior centre (params.{name} = {center:g}) outside the "
                             f"bounds [{lo:g}, {hi:g}] {meta['units']}")
        sd = spec.get("prior_sd")
        if sd is None or not float(sd) > 0:
            raise InputError(f"{where}.prior_sd: value {sd!r} not allowed; allowed: > 0 "
                             f"({'natural-log units' if log else meta['units']})")
        out.append(FreeParameter(name, lo, hi, log, center, float(sd)))
    return out


def calibration_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The calibration section with defaults filled in (unknown keys rejected)."""
    cfg = dict(cfg or {})
    reject_unknown_keys("calibration", cfg, CALIBRATION_KEYS)
    opts = {**DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    for key in ("global_samples", "starts", "max_nfev", "walkers", "steps", "burn", "thin"):
        if not isinstance(opts[key], int) or isinstance(opts[key], bool) or opts[key] < 0:
            raise InputError(f"calibration.{key}: value {opts[key]!r} not allowed; allowed: an "
                             f"integer >= 0")
    if opts["starts"] < 1:
        raise InputError(f"calibration.starts: value {opts['starts']} not allowed; allowed: >= 1")
    if opts["walkers"] % 2 or opts["walkers"] < 2:
        raise InputError(f"calibration.walkers: value {opts['walkers']} not allowed; allowed: an "
                         f"even number >= 2 (emcee)")
    if opts["burn"] >= opts["steps"] and opts["ensemble"]:
        raise InputError(f"calibration.burn: value {opts['burn']} not allowed; allowed: < steps "
                         f"({opts['steps']})")
    if not isinstance(opts["promote"], bool):
        raise InputError(f"calibration.promote: value {opts['promote']!r} not allowed; allowed: "
                         f"true (replace the packaged baseline) or false")
    if opts["thin"] < 1:
        raise InputError(f"calibration.thin: value {opts['thin']} not allowed; allowed: >= 1")
    if opts["max_nfev"] < 1:
        raise InputError(f"calibration.max_nfev: value {opts['max_nfev']} not allowed; allowed: "
                         f"an integer >= 1 (iterations per local fit)")
    if not isinstance(opts["seed"], int) or isinstance(opts["seed"], bool) or \
            not 0 <= opts["seed"] < 2**32:
        raise InputError(f"calibration.seed: value {opts['seed']!r} not allowed; allowed: an "
                         f"integer in [0, 2**32)")
    opts["diff_step"] = checked_number("calibration.diff_step", opts["diff_step"],
                                       "a number in (0, 0.5)", lambda v: 0 < v < 0.5)
    opts["rtol"] = checked_number("calibration.rtol", opts["rtol"], "a number in (0, 0.1)",
                                  lambda v: 0 < v < 0.1)
    return opts


@dataclass
class Problem:
    """Targets + free parameters + fixed model inputs; evaluates residuals for batches of z."""

    base: ModelParameters
    levers: LeverSet
    settings: SolverSettings
    targets: TargetSet
    free: list[FreeParameter]
    n_model_runs: int = 0
    n_draws_run: int = 0
    seconds: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.free]

    @property
    def z_lo(self) -> np.ndarray:
        return np.array([f.z_bounds[0] for f in self.free])

    @property
    def z_hi(self) -> np.ndarray:
        return np.array([f.z_bounds[1] for f in self.free])

    @property
    def z0(self) -> np.ndarray:
        return np.array([f.z_center for f in self.free])

    @property
    def prior_sd(self) -> np.ndarray:
        return np.array([f.prior_sd for f in self.free])

    def values(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """Parameter values (parameter units) of z (n, k): name -> (n,)."""
        z = np.atleast_2d(z)
        return {f.name: np.clip(f.from_z(z[:, i]), f.lo, f.hi) for i, f in enumerate(self.free)}

    def params(self, z: np.ndarray) -> ModelParameters:
        """Batch of parameter sets: the base with the free parameters replaced, one draw per row."""
        z = np.atleast_2d(z)
        n = z.shape[0]
        arrays = {k: np.broadcast_to(np.asarray(v, dtype=float).reshape(-1)[:1], (n,)).copy()
                  if np.size(v) == 1 else np.asarray(v)
                  for k, v in ((k, getattr(self.base, k)) for k in ModelParameters.names())}
        arrays.update(self.values(z))
        return ModelParameters(**arrays)

    def outputs(self, z: np.ndarray) -> dict[str, np.ndarray] | None:
        """Target outputs of a batch (None if the solver failed)."""
        params = self.params(z)
        started = time.perf_counter()
        try:
            traj = integrate(params, self.levers, self.settings)
        except SolverError:
            return None
        finally:
            self.seconds += time.perf_counter() - started
            self.n_model_runs += 1
            self.n_draws_run += params.n_draws
        return model_outputs(traj, params, self.settings, self.levers)

    def target_residuals(self, z: np.ndarray) -> np.ndarray:
        """Target residuals (n, m) of a batch."""
        z = np.atleast_2d(z)
        out = self.outputs(z)
        if out is None:
            return np.full((z.shape[0], self.targets.n_rows), FAILED_RESIDUAL)
        r = residuals(self.targets, out, self.settings.years).T
        return np.where(np.isfinite(r), r, FAILED_RESIDUAL)

    def residuals(self, z: np.ndarray) -> np.ndarray:
        """Full residual vectors (n, m + k): targets then priors."""
        z = np.atleast_2d(z)
        prior = (z - self.z0) / self.prior_sd
        return np.concatenate([self.target_residuals(z), prior], axis=1)

    def cost(self, z: np.ndarray) -> np.ndarray:
        """0.5 |r|^2 for each row of z (n,)."""
        return 0.5 * np.sum(self.residuals(z) ** 2, axis=1)


def build_problem(base: ModelParameters, levers: LeverSet, settings: SolverSettings,
                  targets: TargetSet, free_cfg: Mapping[str, Any],
                  rtol: float = DEFAULTS["rtol"]) -> Problem:
    """A calibration problem; the simulation window is cut to what the targets need, and the
    solver runs at `rtol` (1): forward differences of step `diff_step` need the model's numerical
    noise far below that step, tighter than an ensemble needs (`solver.rtol`)."""
    needed = max(targets.last_year, targets.fit_end_year)
    if needed > settings.end_year:
        raise InputError(f"solver.end_year: value {settings.end_year} is before the last target "
                         f"year {needed}; allowed: >= {needed}")
    # mid-year outputs (NFLIS shares) need an output grid of half years at least
    step = min(settings.output_step, 0.5) if (0.5 / settings.output_step) % 1 == 0 else 0.5
    fit_settings = SolverSettings(**{**settings.__dict__, "end_year": needed, "rtol": rtol,
                                     "output_step": step})
    return Problem(base, levers, fit_settings, targets, parse_free(free_cfg, base))


@dataclass
class FitResult:
    """Best fit in z space, its parameter values, cost and bookkeeping."""

    z: np.ndarray
    values: dict[str, float]
    cost: float
    starts: list[dict[str, Any]]
    seconds: float
    model_runs: int


def warm_start_point(problem: Problem, path: str | Path) -> np.ndarray:
    """z of the free parameters' values in a params YAML (absolute, or relative to configs; an
    extra local start: a previous fit's
    optimum; the priors stay centred on the literature values, so the objective is unchanged)."""
    import yaml

    from sim import paths
    path = Path(path)
    path = path if path.is_absolute() else paths.CONFIG_DIR / path
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        values = None
    known = set(ModelParameters.names())
    if not isinstance(values, dict) or not values or not set(map(str, values)) <= known:
        raise InputError(f"calibration.warm_start: value {str(path)!r} is not a readable params "
                         f"YAML file; allowed: a params file (name: value per model parameter, "
                         f"e.g. params/calibrated.yaml) or null") from None
    z = problem.z0.copy()
    for i, free in enumerate(problem.free):
        if free.name in values:
            z[i] = float(free.to_z(float(values[free.name])))
    return np.clip(z, problem.z_lo + 1e-9, problem.z_hi - 1e-9)


def sample_prior(problem: Problem, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points from the prior (normal in z around the centre), truncated to the bounds."""
    z = problem.z0 + problem.prior_sd * rng.standard_normal((n, len(problem.free)))
    return np.clip(z, problem.z_lo, problem.z_hi)


def fit(problem: Problem, opts: Mapping[str, Any],
        progress: Callable[[str], None] = print) -> FitResult:
    """Global stage (prior samples in one batch) then least_squares from the best `starts` points."""
    started = time.perf_counter()
    rng = np.random.default_rng(int(opts["seed"]))
    lo, hi = problem.z_lo, problem.z_hi
    candidates = np.vstack([problem.z0[None], sample_prior(problem, int(opts["global_samples"]), rng)])
    costs = problem.cost(candidates)
    order = np.argsort(costs)
    starts = candidates[order[:int(opts["starts"])]]
    progress(f"global stage: {len(candidates)} prior samples in one batch, best cost "
             f"{costs[order[0]]:.4g} (median {np.median(costs):.4g})")
    if opts.get("warm_start"):
        warm = warm_start_point(problem, opts["warm_start"])
        starts = np.vstack([warm[None], starts])
        costs = np.concatenate([problem.cost(warm[None]), costs])
        order = np.concatenate([[0], order + 1])
        progress(f"warm start from {opts['warm_start']}: cost {costs[0]:.4g}")
    h = float(opts["diff_step"])
    cache: dict[bytes, np.ndarray] = {}

    def fun(z: np.ndarray) -> np.ndarray:
        key = z.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = problem.residuals(z)[0]
        return cache[key]

    def jac(z: np.ndarray) -> np.ndarray:
        # forward differences, stepping away from the nearer bound; one batch of k + 1 draws
        step = np.where(z + h <= hi, h, -h)
        batch = np.vstack([z[None], z[None] + np.diag(step)])
        r = problem.residuals(batch)
        cache.clear()
        cache[z.tobytes()] = r[0]
        return ((r[1:] - r[0]) / step[:, None]).T

    results = []
    for i, z_start in enumerate(starts):
        t0 = time.perf_counter()
        runs0 = problem.n_model_runs
        sol = least_squares(fun, np.clip(z_start, lo + 1e-9, hi - 1e-9), jac=jac, bounds=(lo, hi),
                            method="trf", x_scale="jac", ftol=float(opts["ftol"]),
                            xtol=1e-8, gtol=1e-8, max_nfev=int(opts["max_nfev"]))
        results.append({"start": i, "cost": float(sol.cost), "nfev": int(sol.nfev),
                        "status": int(sol.status), "message": str(sol.message),
                        "seconds": round(time.perf_counter() - t0, 2), "z": sol.x,
                        "model_runs": problem.n_model_runs - runs0})
        progress(f"start {i + 1}/{len(starts)}: cost {costs[order[i]]:.4g} -> {sol.cost:.4g} "
                 f"({sol.nfev} iterations, {problem.n_model_runs - runs0} batched runs, "
                 f"{time.perf_counter() - t0:.1f} s; {sol.message})")
    best = min(results, key=lambda r: r["cost"])
    z = best["z"]
    values = {name: float(v[0]) for name, v in problem.values(z).items()}
    return FitResult(z, values, best["cost"], [{k: v for k, v in r.items() if k != "z"}
                                               for r in results],
                     time.perf_counter() - started, problem.n_model_runs)


# --- posterior ensemble ------------------------------------------------------------------------

FLAT_PRIOR_SD = 1e6   # prior sd standing for a flat (uniform) prior within the bounds


def prior_parameter(name: str) -> FreeParameter:
    """A parameter of role subst or unc as a free parameter of the posterior, with its documented
    prior: lognormal (normal in log units), normal, or uniform (flat within its range)."""
    meta = ModelParameters.metadata(name)
    kind, *args = meta["prior"]
    blo, bhi = meta["bounds"]
    if kind == "lognormal":
        median, sd = args
        lo, hi = max(blo, median * np.exp(-4 * sd)), min(bhi, median * np.exp(4 * sd))
        return FreeParameter(name, lo, hi, True, median, sd)
    if kind == "normal":
        mean, sd = args
        return FreeParameter(name, max(blo, mean - 4 * sd), min(bhi, mean + 4 * sd), False, mean, sd)
    if kind == "uniform":
        lo, hi = args
        return FreeParameter(name, lo, hi, False, 0.5 * (lo + hi), FLAT_PRIOR_SD)
    raise ValueError(f"parameter {name}: no prior to sample ({meta['prior']})")


def with_prior_parameters(problem: Problem, z_map: np.ndarray) -> tuple[Problem, np.ndarray]:
    """The problem with every PRIOR_ROLES parameter added as free (sampled with its prior by the
    posterior, so the joint draws stay consistent with the data: a constant the data do not
    inform keeps its prior spread, one that moves the history is constrained by it), and the MAP
    extended with those parameters' values in `problem.base`."""
    names = set(problem.names)
    extra = [prior_parameter(n) for n in ModelParameters.names()
             if ModelParameters.metadata(n).get("role") in PRIOR_ROLES and n not in names]
    z_extra = np.array([np.clip(f.to_z(float(np.asarray(getattr(problem.base, f.name)).reshape(-1)[0])),
                                *f.z_bounds) for f in extra])
    wider = Problem(problem.base, problem.levers, problem.settings, problem.targets,
                    list(problem.free) + extra)
    return wider, np.concatenate([z_map, z_extra])


def log_posterior(problem: Problem, z: np.ndarray) -> np.ndarray:
    """Log posterior (up to a constant) of each row of z; -inf outside the bounds."""
    z = np.atleast_2d(z)
    inside = np.all((z >= problem.z_lo) & (z <= problem.z_hi), axis=1)
    out = np.full(z.shape[0], -np.inf)
    if inside.any():
        out[inside] = -problem.cost(z[inside])
    return out


@dataclass
class Posterior:
    """Thinned MCMC draws (parameter units) and diagnostics."""

    names: list[str]
    draws: np.ndarray          # (n, k) parameter units
    log_prob: np.ndarray       # (n,)
    acceptance: float
    seconds: float
    seed: int
    info: dict[str, Any]


def sample_posterior(problem: Problem, z_map: np.ndarray, opts: Mapping[str, Any],
                     progress: Callable[[str], None] = print) -> Posterior:
    """emcee (affine-invariant ensemble) started in a small ball around the MAP; deterministic by seed."""
    import emcee

    seed = int(opts["seed"])
    walkers, steps, burn, thin = (int(opts[k]) for k in ("walkers", "steps", "burn", "thin"))
    k = len(problem.free)
    if walkers < 2 * k:   # emcee's stretch move needs at least twice as many walkers as dimensions
        progress(f"walkers raised from {walkers} to {2 * k + 2} (twice the {k} free parameters)")
        walkers = 2 * k + 2
    rng = np.random.default_rng(seed + 1)
    scale = float(opts["init_scatter"]) * np.minimum(np.maximum(problem.prior_sd, 1e-3),
                                                     problem.z_hi - problem.z_lo)
    init = np.clip(z_map + scale * rng.standard_normal((walkers, k)), problem.z_lo + 1e-9,
                   problem.z_hi - 1e-9)
    sampler = emcee.EnsembleSampler(walkers, k, lambda z: log_posterior(problem, z),
                                    vectorize=True)
    sampler._random = np.random.RandomState(seed)  # emcee 3 has no seed argument
    started = time.perf_counter()
    report_every = max(steps // 10, 1)
    for i, _ in enumerate(sampler.sample(init, iterations=steps), start=1):
        if i % report_every == 0 or i == steps:
            lp = sampler.get_log_prob()[-1]
            progress(f"mcmc step {i}/{steps}: acceptance {np.mean(sampler.acceptance_fraction):.2f}, "
                     f"log posterior median {np.median(lp):.2f} (max {np.max(lp):.2f}), "
                     f"{time.perf_counter() - started:.0f} s")
    chain = sampler.get_chain(discard=burn, thin=thin, flat=True)
    log_prob = sampler.get_log_prob(discard=burn, thin=thin, flat=True)
    try:
        tau = sampler.get_autocorr_time(discard=burn, quiet=True)
        tau_max = float(np.nanmax(tau))
    except Exception:  # emcee raises when chains are short; the estimate is then only indicative
        tau_max = float("nan")
    draws = np.column_stack([f.from_z(chain[:, i]) for i, f in enumerate(problem.free)])
    return Posterior(problem.names, draws, log_prob, float(np.mean(sampler.acceptance_fraction)),
                     time.perf_counter() - started, seed,
                     {"walkers": walkers, "steps": steps, "burn": burn, "thin": thin,
                      "autocorr_time_max_steps": round(tau_max, 1)})


def posterior_csv(post: Posterior, header: Mapping[str, Any]) -> str:
    """CSV text of the posterior draws with a commented header (units per column)."""
    buf = io.StringIO()
    for key, value in header.items():
        buf.write(f"# {key}: {value}\n")
    units = [ModelParameters.metadata(n)["units"] for n in post.names]
    buf.write("# units: " + ", ".join(f"{n} [{u}]" for n, u in zip(post.names, units)) + "\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["draw", *post.names, "log_posterior"])
    for i, (row, lp) in enumerate(zip(post.draws, post.log_prob)):
        w.writerow([i, *(f"{v:.8g}" for v in row), f"{lp:.6f}"])
    return buf.getvalue()


FIXED_DIGEST_KEY = "fixed parameters sha256"


def fixed_parameters_digest(base: ModelParameters, sampled: list[str]) -> str:
    """SHA-256 of the values of every parameter a posterior does not sample (its calibration's
    fixed parameters): draws are only valid on top of the parameter set they were sampled with."""
    import hashlib
    import json
    fixed = {n: round(float(np.asarray(getattr(base, n)).reshape(-1)[0]), 9)
             for n in ModelParameters.names() if n not in sampled}
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()


def check_posterior_belongs(base: ModelParameters, path: str | Path, names: list[str]) -> bool:
    """Whether the draws file's recorded fixed parameters are those of `base`; if not, a warning
    through logging: the draws then run as a what-if on other fixed values (e.g.
    params.relapse_rate=0.55 over the calibrated posterior), no longer as a fit to the data."""
    import logging
    recorded = read_header(path).get(FIXED_DIGEST_KEY)
    if recorded is None or recorded == fixed_parameters_digest(base, names):
        return True
    logging.getLogger(__name__).warning(
        f"ensemble.file: {Path(path).name} was sampled with other values of the fixed parameters "
        f"than the selected params: its draws run as a what-if on the selected values, not as a "
        f"fit to the data (fentsim-calibrate calibration.ensemble=true with these params samples "
        f"their own posterior)")
    return False


def read_header(path: str | Path) -> dict[str, str]:
    """The `# key: value` lines at the top of a posterior draws CSV (targets, sampler, digest)."""
    out = {}
    with Path(path).open() as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            key, sep, value = line[1:].partition(":")
            if sep:
                out[key.strip()] = value.strip()
    return out


def read_draws(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Parameter names and values (n, k) of a posterior draws CSV; errors are InputErrors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"ensemble.file: value {str(path)!r} not found (generate it with "
                         f"`fentsim-calibrate calibration.ensemble=true`)")
    with path.open() as fh:
        rows = list(csv.reader(line for line in fh if not line.startswith("#")))
    if len(rows) < 2:
        raise InputError(f"ensemble.file: {str(path)!r} has no draws")
    header = rows[0]
    names = [h for h in header if h not in ("draw", "log_posterior")]
    reject_unknown_keys(f"ensemble.file {path.name} columns", names, ModelParameters.names())
    cols = [header.index(n) for n in names]
    try:
        values = np.array([[float(r[c]) for c in cols] for r in rows[1:]])
    except (ValueError, IndexError):
        raise InputError(f"ensemble.file: {str(path)!r} has a malformed row") from None
    return names, values


def params_yaml(params: ModelParameters, header: str) -> str:
    """Every parameter as `name: value  # units`, preceded by comment lines (literature.yaml format)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name in ModelParameters.names():
        value = float(np.asarray(getattr(params, name)).reshape(-1)[0])
        lines.append(f"{name}: {yaml_float(value)}  # {ModelParameters.metadata(name)['units']}")
    return "\n".join(lines) + "\n"


def yaml_float(value: float) -> str:
    """`value` to 8 significant digits as a float every YAML reader takes for one: YAML 1.1
    (PyYAML) reads 1e-09 as text, 1.0e-09 as a number."""
    text = repr(float(f"{value:.8g}"))
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
