"""Calibration: penalised least squares to the targets (MAP), then the posterior (`sim.calibrate.sampler`).
Hydra-free.

What is fitted, with which bounds and prior, is declared once with each parameter
(`sim.model.parameters`): every parameter of role 'fit' is free (`calibration.fit_only` may name a
subset, the others held at the selected params), its bounds are where its declared prior
(`prior_distribution`, truncated to the parameter's bounds) has support, and its log prior is that
distribution's log density.  A parameter of scale 'log' moves as z = log(value), so its prior in z
carries the log Jacobian |d value / dz| (`log_prior_z`).

The log likelihood of a target row is Gaussian in log(model / observed) with variance sigma^2 +
tau^2: sigma is the row's documented measurement error, tau the model error of its public series
(a parameter with `error_of`, fitted and sampled like any other; 0 for the article's figures and
the claims).  Least squares sees it as residuals r = e / sqrt(sigma^2 + tau^2) and
sqrt(log(1 + tau^2 / sigma^2)) (the normaliser), and each prior as
sign(z - mode) sqrt(2 (max log prior - log prior)): 0.5 |r|^2 = -(log likelihood + log prior) + const.
Every model evaluation is one batched integration over draws: the forward-difference Jacobian of
n_free parameters is a single batch of n_free + 1 draws, and a whole sampler population is one batch.
"""

from __future__ import annotations

import csv
import io
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from pydantic import Field, create_model, model_validator

from sim.errors import InputError, SolverError, reject_unknown_keys
from sim.model.levers import LeverSet
from sim.model.parameters import (PRIOR_ROLES, SAMPLED_ROLES, ModelParameters, from_z,
                                  log_prior_z, model_errors, names_with_role, prior_distribution,
                                  sample_prior_values, to_z)
from sim.engine.solver import SolverSettings, integrate
from sim.calibrate.targets import TargetSet, model_outputs, residuals
from sim.schema import Integer, Number, Section, validate
FAILED_RESIDUAL = 1e3  # residual given to every target of a draw the solver could not integrate
ERROR_KINDS = ("count", "rate", "fy_total", "midyear")   # target kinds a model error applies to


@dataclass(frozen=True)
class FreeParameter:
    """A parameter moved by the fit or the sampler: its declared prior in z = to_z(value), the
    bounds where that prior has support (parameter units), and the prior's mode and largest log
    density in z (for the least-squares form of the prior)."""

    name: str
    lo: float
    hi: float
    log: bool
    z_mode: float
    log_prior_max: float

    def to_z(self, value: np.ndarray | float) -> np.ndarray:
        return to_z(self.name, value)

    def from_z(self, z: np.ndarray | float) -> np.ndarray:
        return from_z(self.name, z)

    @property
    def z_bounds(self) -> tuple[float, float]:
        with np.errstate(divide="ignore"):
            return float(self.to_z(self.lo)), float(self.to_z(self.hi))

    def log_prior(self, z: np.ndarray) -> np.ndarray:
        """Log density of the declared prior at z (fitting space), -inf outside the bounds."""
        return log_prior_z(self.name, z)

    def prior_residual(self, z: np.ndarray) -> np.ndarray:
        """r with 0.5 r^2 = log_prior_max - log_prior(z): signed on either side of the mode."""
        gap = np.maximum(self.log_prior_max - self.log_prior(z), 0.0)
        return np.sign(np.asarray(z) - self.z_mode) * np.sqrt(2.0 * gap)


def free_parameter(name: str) -> FreeParameter:
    """The FreeParameter of a parameter with a declared prior (role fit, subst or unc)."""
    from scipy.optimize import minimize_scalar

    meta = ModelParameters.metadata(name)
    dist = prior_distribution(name)
    if dist is None:
        raise InputError(f"calibration.fit_only: value {name!r} not allowed (a fixed parameter); "
                         f"allowed: {', '.join(names_with_role('fit'))}")
    lo, hi = (float(v) for v in dist.support())
    lo, hi = max(lo, meta["bounds"][0]), min(hi, meta["bounds"][1])
    # the mode in z: a grid over the prior's bulk, refined, and both ends of the support
    with np.errstate(divide="ignore"):
        q_lo, q_hi = (float(to_z(name, v)) for v in dist.icdf([1e-9, 1 - 1e-9]))
    grid = np.linspace(q_lo, q_hi, 2001)
    lp = log_prior_z(name, grid)
    best = float(grid[int(np.argmax(lp))])
    step = grid[1] - grid[0]
    refined = minimize_scalar(lambda z: -float(log_prior_z(name, z)), method="bounded",
                              bounds=(max(q_lo, best - step), min(q_hi, best + step)),
                              options={"xatol": 1e-10})
    candidates = [best, float(refined.x), q_lo, q_hi]
    values = [float(log_prior_z(name, z)) for z in candidates]
    k = int(np.argmax(values))
    return FreeParameter(name, lo, hi, meta["scale"] == "log", candidates[k], values[k] + 1e-12)


def free_parameters(roles: Sequence[str] = ("fit",), only: Sequence[str] | None = None
                    ) -> list[FreeParameter]:
    """The parameters of `roles` (declaration order), or the subset `only` of them."""
    names = names_with_role(*roles)
    if only is not None:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise InputError(f"calibration.fit_only: value {unknown[0]!r} not allowed; allowed: "
                             f"{', '.join(names)}")
        names = [n for n in names if n in only]
    return [free_parameter(n) for n in names]


def _model_error_field(name: str) -> Any:
    lo, hi = ModelParameters.metadata(name)["bounds"]
    return (Number | None, Field(None, ge=lo, le=hi, description=f"a number in [{lo:g}, {hi:g}] "
                                                                  f"(model-error sd, 1)"))


# calibration.map_model_error: calibration output -> the model-error sd the MAP fit holds, in the
# bounds of the output's model-error parameter (`error_of` in sim/model/parameters.py)
MapModelError = create_model("MapModelError", __base__=Section,
                             **{output: _model_error_field(name)
                                for output, name in model_errors().items()})
_SOLVER_RTOL = "a number in (0, 0.1)"


class CalibrationOptions(Section):
    """The `calibration` section: options of `fentsim-calibrate` and `fentsim-backtest`.  Types
    and ranges only: the default values and what each option does are declared once, in
    configs/calibration/default.yaml (`calibration_defaults`), which the command line composes
    and `calibration_options` fills in from."""

    fit_only: list[str] | None = Field(min_length=1, description="null (every parameter of "
                                       "role fit) or a non-empty list of them")
    warm_start: str | None = Field(description="a params YAML (in configs) or null")
    seed: Integer = Field(ge=0, le=2**32 - 1, description="an integer in [0, 2**32)")
    global_samples: Integer = Field(ge=0, description="an integer >= 0")
    starts: Integer = Field(ge=1, description="an integer >= 1 (local fits)")
    max_nfev: Integer = Field(ge=1, description="an integer >= 1 (iterations per local fit)")
    diff_step: Number = Field(gt=0, lt=0.5, description="a number in (0, 0.5)")
    ftol: Number = Field(gt=0, lt=1, description="a number in (0, 1)")
    rtol: Number = Field(gt=0, lt=0.1, description=_SOLVER_RTOL)
    map_model_error: MapModelError | None = Field(  # type: ignore[valid-type]
        description=f"null or a mapping of {', '.join(model_errors())} to a number")
    promote: bool = Field(description="true (replace the packaged baseline) or false")
    params_file: str | None = Field(description="a path or null")
    ensemble: bool = Field(description="true (sample the posterior) or false")
    chains: Integer = Field(ge=1, description="an integer >= 1")
    particles: Integer = Field(ge=8, description="an integer >= 8 (particles per chain)")
    min_moves: Integer = Field(ge=1, description="an integer >= 1")
    max_moves: Integer = Field(ge=1, description="an integer >= min_moves")
    final_moves: Integer = Field(ge=0, description="an integer >= 0")
    ess_fraction: Number = Field(gt=0, lt=1, description="a number in (0, 1)")
    groups: Integer = Field(ge=1, description="an integer >= 1 that divides chains")
    sample_rtol: Number = Field(gt=0, lt=0.1, description=_SOLVER_RTOL)
    reference_posterior: str | None = Field(description="packaged, a posterior draws file or "
                                            "null")
    posterior_file: str | None = Field(description="a path or null")

    @model_validator(mode="after")
    def _moves(self) -> CalibrationOptions:
        if self.chains % self.groups:
            raise InputError(f"calibration.groups: value {self.groups} not allowed; allowed: a "
                             f"divisor of chains ({self.chains})")
        if self.max_moves < self.min_moves:
            raise InputError(f"calibration.max_moves: value {self.max_moves} not allowed; "
                             f"allowed: >= min_moves ({self.min_moves})")
        return self


CALIBRATION_KEYS = tuple(CalibrationOptions.model_fields)


def calibration_defaults() -> dict[str, Any]:
    """The default calibration options: configs/calibration/default.yaml, their one declaration."""
    import yaml

    from sim.paths import CONFIG_DIR
    return yaml.safe_load((CONFIG_DIR / "calibration" / "default.yaml").read_text())


def calibration_options(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The calibration section (`CalibrationOptions`) as a dict: `cfg`'s keys over the defaults
    of `calibration_defaults` (a key given replaces the default whole; a null value of an option
    that cannot be null takes the default); `map_model_error` as parameter name -> the sd the MAP
    fit holds ({} for none: a free sd lets the point fit give up a series by widening its
    error; the posterior samples them)."""
    cfg = dict(cfg or {})
    if "free" in cfg:
        raise InputError("calibration.free: no longer a key: the fitted parameters, their bounds "
                         "and priors are declared with each parameter (fentsim-doc lists them); "
                         "calibration.fit_only=[NAME,...] fits a subset")
    defaults = calibration_defaults()
    nullable = {name for name, field in CalibrationOptions.model_fields.items()
                if type(None) in typing.get_args(field.annotation)}
    merged = {**defaults, **{k: v for k, v in cfg.items() if v is not None or k in nullable}}
    opts = validate(CalibrationOptions, "calibration", merged).model_dump()
    errors = model_errors()
    opts["map_model_error"] = {errors[output]: value for output, value
                               in (opts["map_model_error"] or {}).items() if value is not None}
    return opts


def map_fit_setup(base: ModelParameters, opts: Mapping[str, Any]
                  ) -> tuple[ModelParameters, list[str] | None]:
    """The base params and the fit_only list of the MAP fit: `base` with the held model-error
    sds (calibration.map_model_error) set, and the fitted parameters without them."""
    held = opts["map_model_error"]
    if not held:
        return base, opts["fit_only"]
    names = opts["fit_only"] or names_with_role("fit")
    return base.replace(**held), [n for n in names if n not in held]


@dataclass
class Problem:
    """Targets + free parameters + fixed model inputs; evaluates residuals, log likelihood and
    log prior for batches of z (rows: draws, columns: the free parameters)."""

    base: ModelParameters
    levers: LeverSet
    settings: SolverSettings
    targets: TargetSet
    free: list[FreeParameter]
    n_model_runs: int = 0
    n_draws_run: int = 0
    n_failed: int = 0
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
    def z_mode(self) -> np.ndarray:
        return np.array([f.z_mode for f in self.free])

    def row_errors(self) -> tuple[np.ndarray, list[str | None]]:
        """Per target row: the measurement sigma, and the model-error parameter (or None)."""
        errors = model_errors()
        sigma, names = [], []
        for t in self.targets.targets:
            name = errors.get(t.output) if (t.series and t.kind in ERROR_KINDS) else None
            sigma += [t.sigma] * t.n_rows
            names += [name] * t.n_rows
        return np.array(sigma), names

    def taus(self, z: np.ndarray) -> np.ndarray:
        """Model-error sd (natural-log units) of every target row, (n, m); 0 where none."""
        z = np.atleast_2d(z)
        sigma, names = self.row_errors()
        out = np.zeros((z.shape[0], sigma.size))
        values = self.values(z)
        for j, name in enumerate(names):
            if name is not None:
                out[:, j] = values[name] if name in values else float(
                    np.asarray(getattr(self.base, name)).reshape(-1)[0])
        return out

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
        """Measurement-scaled target residuals log(model/observed)/sigma (n, m) of a batch; a
        draw the solver cannot integrate gets FAILED_RESIDUAL everywhere (a failing batch is
        split in halves until the failing draws are found)."""
        z = np.atleast_2d(z)
        out = self.outputs(z)
        if out is None:
            if z.shape[0] == 1:
                self.n_failed += 1
                return np.full((1, self.targets.n_rows), FAILED_RESIDUAL)
            half = z.shape[0] // 2
            return np.vstack([self.target_residuals(z[:half]), self.target_residuals(z[half:])])
        r = residuals(self.targets, out, self.settings.years).T
        return np.where(np.isfinite(r), r, FAILED_RESIDUAL)

    def data_residuals(self, z: np.ndarray) -> np.ndarray:
        """Residuals of the likelihood (n, 2m): e / sqrt(sigma^2 + tau^2), then the normaliser
        sqrt(log(1 + tau^2 / sigma^2)); -0.5 |.|^2 is the log likelihood up to a constant."""
        z = np.atleast_2d(z)
        sigma, _ = self.row_errors()
        r = self.target_residuals(z)
        tau = self.taus(z)
        ratio = 1.0 + (tau / sigma) ** 2
        return np.concatenate([r / np.sqrt(ratio), np.sqrt(np.log(ratio))], axis=1)

    def log_likelihood(self, z: np.ndarray) -> np.ndarray:
        """Log likelihood of each row of z (n,), up to a constant."""
        return -0.5 * np.sum(self.data_residuals(z) ** 2, axis=1)

    def log_prior(self, z: np.ndarray) -> np.ndarray:
        """Sum of the declared priors' log densities in z (n,); -inf outside the bounds."""
        z = np.atleast_2d(z)
        return np.sum([f.log_prior(z[:, i]) for i, f in enumerate(self.free)], axis=0)

    def prior_residuals(self, z: np.ndarray) -> np.ndarray:
        """(n, k): 0.5 r^2 = largest log prior - log prior, per parameter."""
        z = np.atleast_2d(z)
        return np.column_stack([f.prior_residual(z[:, i]) for i, f in enumerate(self.free)])

    def residuals(self, z: np.ndarray) -> np.ndarray:
        """Full residual vectors (n, 2m + k): likelihood then priors."""
        z = np.atleast_2d(z)
        return np.concatenate([self.data_residuals(z), self.prior_residuals(z)], axis=1)

    def cost(self, z: np.ndarray) -> np.ndarray:
        """0.5 |r|^2 for each row of z (n,): minus the log posterior, up to a constant."""
        return 0.5 * np.sum(self.residuals(z) ** 2, axis=1)


def build_problem(base: ModelParameters, levers: LeverSet, settings: SolverSettings,
                  targets: TargetSet, fit_only: Sequence[str] | None = None,
                  rtol: float | None = None, roles: Sequence[str] = ("fit",)) -> Problem:
    """A calibration problem over the parameters of `roles` (or `fit_only` of them); the
    simulation window is cut to what the targets need, and the solver runs at `rtol` (1; None:
    the default calibration.rtol):
    forward differences of step `diff_step` need the model's numerical noise far below that
    step, tighter than an ensemble needs (`solver.rtol`)."""
    rtol = calibration_defaults()["rtol"] if rtol is None else rtol
    needed = max(targets.last_year, targets.fit_end_year)
    if needed > settings.end_year:
        raise InputError(f"solver.end_year: value {settings.end_year} is before the last target "
                         f"year {needed}; allowed: >= {needed}")
    # mid-year outputs (NFLIS shares) need an output grid of half years at least
    step = min(settings.output_step, 0.5) if (0.5 / settings.output_step) % 1 == 0 else 0.5
    fit_settings = SolverSettings(**{**settings.__dict__, "end_year": needed, "rtol": rtol,
                                     "output_step": step})
    return Problem(base, levers, fit_settings, targets, free_parameters(roles, fit_only))


def posterior_problem(problem: Problem, base: ModelParameters, opts: Mapping[str, Any]) -> Problem:
    """The problem the posterior samples: the fitted parameters of `problem` and every parameter
    drawn from its prior (PRIOR_ROLES) or held by the MAP fit (calibration.map_model_error), over
    `base` (the calibrated params), at `sample_rtol`."""
    names = problem.names + names_with_role(*PRIOR_ROLES) + list(opts["map_model_error"])
    return Problem(base, problem.levers, SolverSettings(**{**problem.settings.__dict__,
                                                           "rtol": opts["sample_rtol"]}),
                   problem.targets, free_parameters(SAMPLED_ROLES, names))


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
    extra local start: a previous fit's optimum; the priors stay the declared ones, so the
    objective is unchanged); parameters it lacks start at their prior median."""
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
    z = prior_medians(problem)
    for i, free in enumerate(problem.free):
        if free.name in values:
            z[i] = float(free.to_z(float(values[free.name])))
    return np.clip(z, problem.z_lo + 1e-9, problem.z_hi - 1e-9)


def prior_medians(problem: Problem) -> np.ndarray:
    """z of every free parameter's prior median."""
    return np.array([float(f.to_z(prior_distribution(f.name).median())) for f in problem.free])


def sample_prior(problem: Problem, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points (n, k) in z drawn from the declared priors (independent across parameters)."""
    return np.column_stack([f.to_z(sample_prior_values(f.name, n, rng)) for f in problem.free])


def fit(problem: Problem, opts: Mapping[str, Any],
        progress: Callable[[str], None] = print) -> FitResult:
    """Global stage (prior samples in one batch) then least_squares from the best `starts` points."""
    started = time.perf_counter()
    rng = np.random.default_rng(int(opts["seed"]))
    lo, hi = problem.z_lo, problem.z_hi
    candidates = np.vstack([prior_medians(problem)[None],
                            sample_prior(problem, int(opts["global_samples"]), rng)])
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


def posterior_csv(post: Any, header: Mapping[str, Any]) -> str:
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
