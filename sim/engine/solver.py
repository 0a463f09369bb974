"""Integrate the model over a batch of draws: the compiled engine or `scipy.integrate.solve_ivp`.

Two engines integrate the one statement of the model (`sim.model.flows`): the compiled per-draw
RK45 (`sim.engine.kernel`, the default) and solve_ivp over the whole batch (`integrate_numpy`,
the reference, any scipy method; implicit methods get the batch's block-diagonal Jacobian
pattern).  `integrate_robust` falls back to an implicit method when the configured one fails or
leaves a non-finite or negative stock (the stiff corners of the parameter space).

The horizon is cut into segments at every date where a lever or a historical input has a kink, so
the adaptive step control restarts there instead of stepping over a change blindly.  Stocks are
stored only where they are read (`Trajectory`): every stock at year boundaries, the physical stocks
along a finer output grid, cumulative seizures at fiscal-year starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
import scipy.integrate
from scipy.integrate import solve_ivp
from scipy.optimize import brentq
from threadpoolctl import threadpool_limits

from sim.engine import kernel
from sim.engine.batch import BatchModel, auxiliary_columns, split_auxiliaries
from sim.engine.memory import ordinary_pages
from sim.errors import InputError, SolverError, reject_unknown_keys
from sim.model.compiled import announces_compile
from sim.model.flows import AUX_LAYOUT, KINKS
from sim.model.levers import LeverSet
from sim.model.outputs import by_reduction
from sim.model.parameters import ModelParameters
from sim.model.state import LAYOUT

METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
# compiled: sim.engine.kernel (numba), RK45 per draw in parallel on all cores; numpy: solve_ivp over
# the whole batch; auto: compiled when numba is installed and the method is RK45, else numpy
# (compiled or numpy force one).
ENGINES = ("auto", "compiled", "numpy")
# Stocks that are physical quantities (not running totals): never negative beyond the tolerances.
PHYSICAL_STOCKS = tuple(name for name, s in LAYOUT.stocks.items() if s.kind == "physical")
PHYSICAL_ROWS = slice(0, max(LAYOUT.slices[s].stop for s in PHYSICAL_STOCKS))
assert PHYSICAL_ROWS.stop == sum(LAYOUT.slices[s].stop - LAYOUT.slices[s].start
                                 for s in PHYSICAL_STOCKS)   # they are the first rows of the state
FISCAL_YEAR_START = 273.0 / 365.0  # Oct 1 as a fraction of the (non-leap) year: FY N starts N-1+this
# The stocks read at fiscal-year starts (FY seizures, CBP's basis), adjacent in the layout.
FISCAL_STOCKS = ("cum_seized", "cum_seized_product")
FISCAL_ROWS = slice(LAYOUT.slices[FISCAL_STOCKS[0]].start, LAYOUT.slices[FISCAL_STOCKS[-1]].stop)
assert FISCAL_ROWS.stop - FISCAL_ROWS.start == sum(LAYOUT.stocks[s].size for s in FISCAL_STOCKS)
# the point outputs read from the model's reported auxiliaries (the other point outputs are stocks)
REPORTED_SERIES = tuple(name for name in by_reduction("point") if name in AUX_LAYOUT.slices)
ATOL_FRACTION = 1e-10  # absolute tolerance of dimensionless stocks (know-how, 0-1)


@dataclass(frozen=True)
class SolverSettings:
    """Time window (decimal years), output grid and solver tolerances.

    The field defaults are the config's `solver: default` (made from them by sim.hydra_compose;
    no YAML restates them), which `solver=accurate` (configs/solver/accurate.yaml) extends."""

    start_year: int = 2010          # yr, fixed: the initial state is for 1 Jan 2010
    end_year: int = 2035            # yr: last full calendar year simulated (ends 31 Dec)
    output_step: float = 1.0 / 12   # yr: spacing of time-series outputs (monthly)
    method: str = "RK45"            # any scipy solve_ivp method (METHODS)
    engine: str = "auto"            # auto | compiled | numpy (see ENGINES)
    # 1: relative tolerance; annual deaths within 6.3e-5 of a tight Radau reference
    # (benchmarks/bench.py, README); fits use calibration.rtol; steps are also capped where RK45
    # would turn unstable.
    rtol: float = 5e-6
    atol_mass: float = 1e-6         # kg (and kg/yr): absolute tolerance of supply stocks
    atol_people: float = 1e-3       # persons (and deaths): absolute tolerance of people stocks

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"solver.method: value {self.method!r} not allowed; "
                             f"allowed: {', '.join(METHODS)}")
        if self.engine not in ENGINES:
            raise InputError(f"solver.engine: value {self.engine!r} not allowed; "
                             f"allowed: {', '.join(ENGINES)}")
        if self.engine == "compiled" and self.method != "RK45":
            raise InputError(f"solver.engine: value 'compiled' runs RK45 only, got solver.method "
                             f"{self.method!r}; allowed: engine auto or numpy for other methods")
        for name in ("start_year", "end_year"):  # whole calendar years: 1 Jan start to 31 Dec end
            year = getattr(self, name)
            if isinstance(year, bool) or not isinstance(year, (int, float, np.integer, np.floating)) \
                    or not float(year).is_integer():
                raise InputError(f"solver.{name}: value {year!r} is not a whole year")
        if int(self.start_year) != 2010:
            raise InputError(f"solver.start_year: value {self.start_year} not allowed; the model's "
                             f"initial state is for 2010 (allowed: 2010)")
        if not 2011 <= int(self.end_year) <= 2100:
            raise InputError(f"solver.end_year: value {self.end_year} outside allowed range "
                             f"[2011, 2100] (must be after start_year)")
        if not 0 < self.output_step <= 1:
            raise InputError(f"solver.output_step: value {self.output_step} outside allowed "
                             f"range (0, 1] yr")
        for name in ("rtol", "atol_mass", "atol_people"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < 1):
                raise InputError(f"solver.{name}: value {value!r} outside allowed range (0, 1)")

    @property
    def uses_kernel(self) -> bool:
        """Whether integration runs in the compiled engine (sim.engine.kernel)."""
        return self.engine == "compiled" or (self.engine == "auto" and self.method == "RK45")

    @property
    def t_start(self) -> float:
        return float(self.start_year)

    @property
    def t_end(self) -> float:
        return float(self.end_year + 1)

    @property
    def years(self) -> np.ndarray:
        """Calendar years fully inside the window."""
        return np.arange(self.start_year, self.end_year + 1)

    @property
    def output_times(self) -> np.ndarray:
        """Time-series output grid (yr), start to end inclusive."""
        n = int(round((self.t_end - self.t_start) / self.output_step))
        return np.round(self.t_start + self.output_step * np.arange(n + 1), 10)

    def atol_vector(self, n_draws: int) -> np.ndarray:
        """Absolute tolerance for every entry of the flat state."""
        rows = np.empty(LAYOUT.size)
        for name, sl in LAYOUT.slices.items():
            rows[sl] = {"mass": self.atol_mass, "fraction": ATOL_FRACTION,
                        "people": self.atol_people}[LAYOUT.stocks[name].tolerance_class]
        return np.repeat(rows, n_draws)

    @classmethod
    def from_mapping(cls, values: dict | None) -> SolverSettings:
        """Build from a config mapping; unknown keys are rejected."""
        values = dict(values or {})
        reject_unknown_keys("solver", values, [f for f in cls.__dataclass_fields__])
        return cls(**values)


@dataclass
class Trajectory:
    """Stocks of a batch at stored times, in three blocks shaped (rows, n_draws, n_times).

    `states`: every stock at `times` (calendar-year boundaries); `series`: the physical stocks
    (rows PHYSICAL_ROWS) at `series_times` (a finer output grid); `fiscal`: FISCAL_STOCKS
    alone at `fiscal_times` (federal fiscal-year starts).  Running totals are only ever read as
    differences over whole (fiscal) years, so they are not stored at every output time: for
    monthly outputs this cuts the memory of an ensemble by 2.3x, for annual ones by 1.7x.
    """

    times: np.ndarray
    states: np.ndarray
    stats: dict = field(default_factory=dict)
    series_times: np.ndarray = field(default_factory=lambda: np.empty(0))
    series: np.ndarray | None = None
    fiscal_times: np.ndarray = field(default_factory=lambda: np.empty(0))
    fiscal: np.ndarray | None = None
    # REPORTED_SERIES at `times`, each (time, *dims, draw), when the compiled engine reported
    # them on its way (annual outputs: `_run_kernel`); else empty
    auxiliaries: dict = field(default_factory=dict)

    def _blocks(self) -> list[tuple[slice, np.ndarray, np.ndarray]]:
        """(LAYOUT rows, times, values) of every block."""
        blocks = [(slice(0, LAYOUT.size), self.times, self.states)]
        if self.series is not None:
            blocks.append((PHYSICAL_ROWS, self.series_times, self.series))
        if self.fiscal is not None:
            blocks.append((FISCAL_ROWS, self.fiscal_times, self.fiscal))
        return blocks

    def rows_at(self, rows: slice, t: float | np.ndarray) -> np.ndarray:
        """LAYOUT rows `rows` at stored time(s) t, (rows, n_draws[, n_times]): a view when one
        block holds them at evenly spaced columns, else gathered from the blocks."""
        wanted = np.round(np.asarray(t, dtype=float), 10)
        holders = [(slice(rows.start - b.start, rows.stop - b.start), times, values)
                   for b, times, values in self._blocks()
                   if b.start <= rows.start and rows.stop <= b.stop]
        for local, times, values in holders:
            if _stored(times, wanted).all():
                return _select(values, times, local, wanted)
        flat = np.atleast_1d(wanted)
        out = np.empty((rows.stop - rows.start, self.states.shape[1], flat.size))
        found = np.zeros(flat.size, dtype=bool)
        for local, times, values in holders:
            hit = _stored(times, flat) & ~found
            out[:, :, hit] = values[local][:, :, np.searchsorted(times, flat[hit])]
            found |= hit
        if not found.all():
            raise KeyError(f"time(s) {flat[~found][:5].tolist()} yr not stored for LAYOUT rows "
                           f"{rows.start}-{rows.stop - 1} in this trajectory")
        return out[:, :, 0] if wanted.ndim == 0 else out

    def rows_between(self, rows: slice, t: float) -> np.ndarray:
        """LAYOUT rows `rows` at time t (yr), (rows, n_draws): linear between the two stored times
        around t on the finest grid that holds those rows (the stored value at a stored time)."""
        times = max((times for b, times, _ in self._blocks()
                     if b.start <= rows.start and rows.stop <= b.stop), key=len)
        k = int(np.clip(np.searchsorted(times, t, side="right") - 1, 0, times.size - 2))
        w = (t - times[k]) / (times[k + 1] - times[k])
        if abs(w) < 1e-9:
            return self.rows_at(rows, times[k])
        return (1.0 - w) * self.rows_at(rows, times[k]) + w * self.rows_at(rows, times[k + 1])

    def at(self, t: float | np.ndarray) -> dict[str, np.ndarray]:
        """Stocks at stored time(s) t, shaped (*dims, n_draws[, n_times]): every stock at year
        boundaries, the physical stocks (PHYSICAL_STOCKS) at the other output times."""
        wanted = np.round(np.asarray(t, dtype=float), 10)
        if _stored(self.times, wanted).all():
            return LAYOUT.unpack(_select(self.states, self.times, slice(None), wanted))
        rows = self.rows_at(PHYSICAL_ROWS, t)
        return {name: rows[LAYOUT.slices[name]].reshape(LAYOUT.shapes[name] + rows.shape[1:])
                for name in PHYSICAL_STOCKS}

    def stock_at(self, name: str, t: float | np.ndarray) -> np.ndarray:
        """One stock at stored time(s) t, shaped (*dims, n_draws[, n_times]) (copies only its rows)."""
        rows = self.rows_at(LAYOUT.slices[name], t)
        return rows.reshape(LAYOUT.shapes[name] + rows.shape[1:])

    def physical_blocks(self) -> list[np.ndarray]:
        """The blocks holding the physical stocks (rows as in LAYOUT), for checks over all times."""
        return [self.states] + ([self.series] if self.series is not None else [])


def _stored(times: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Which of the (rounded) times `wanted` are among the sorted stored `times`."""
    if times.size == 0:
        return np.zeros(np.shape(wanted), dtype=bool)
    return times[np.minimum(np.searchsorted(times, wanted), times.size - 1)] == wanted


def _select(block: np.ndarray, times: np.ndarray, rows: slice,
            wanted: np.ndarray) -> np.ndarray:
    """block[rows] at the (rounded) times `wanted`, all among `times` (callers check with
    `_stored`), shaped (rows, n_draws[, n_times]): a view, not a copy, when they are evenly spaced
    stored columns (e.g. every year boundary)."""
    columns = np.searchsorted(times, wanted)
    if columns.ndim == 1 and columns.size > 1:
        step = columns[1] - columns[0]
        if step > 0 and np.all(np.diff(columns) == step):
            return block[rows, :, columns[0]:columns[-1] + 1:step]
    return block[rows][:, :, columns]


def storage_times(settings: SolverSettings) -> np.ndarray:
    """Calendar-year boundaries (yr) of the window, start to end: every stock is stored there."""
    return np.arange(settings.start_year, settings.end_year + 2, dtype=float)


def series_times(settings: SolverSettings) -> np.ndarray:
    """The output grid (yr) when it has times between year boundaries, where the physical stocks
    alone are stored (the whole grid, so a time series is one block); else none."""
    grid = settings.output_times
    return grid if np.setdiff1d(grid, storage_times(settings)).size else np.empty(0)


def fiscal_times(settings: SolverSettings) -> np.ndarray:
    """Federal fiscal-year starts (yr) inside the window, where only FISCAL_STOCKS are stored."""
    starts = np.arange(settings.start_year, settings.end_year + 2, dtype=float) - 1 + FISCAL_YEAR_START
    starts = np.round(starts[(starts >= settings.t_start) & (starts <= settings.t_end)], 10)
    return np.setdiff1d(starts, np.union1d(storage_times(settings), series_times(settings)))


def solve_times(settings: SolverSettings) -> np.ndarray:
    """Every time (yr) at which some stock is stored."""
    return np.union1d(np.union1d(storage_times(settings), series_times(settings)),
                      fiscal_times(settings))


def trajectory_from_columns(settings: SolverSettings, states: np.ndarray, stats: dict) -> Trajectory:
    """A Trajectory from full states (n_state, n_draws, n_times) at all of `solve_times(settings)`
    (the numpy paths, which integrate every stock to every stored time)."""
    every = solve_times(settings)
    years, series, fiscal = storage_times(settings), series_times(settings), fiscal_times(settings)
    stats["min_stock"] = min_stock(states)
    return Trajectory(years, states[:, :, np.searchsorted(every, years)], stats,
                      series, states[PHYSICAL_ROWS][:, :, np.searchsorted(every, series)],
                      fiscal, states[FISCAL_ROWS][:, :, np.searchsorted(every, fiscal)])


def segment_edges(levers: LeverSet, settings: SolverSettings) -> np.ndarray:
    """Start, end and every kink date of the inputs strictly inside the window (yr)."""
    kinks = levers.breakpoints() + list(KINKS)
    inside = [k for k in kinks if settings.t_start < k < settings.t_end]
    return np.unique(np.round([settings.t_start, *inside, settings.t_end], 10))


EXPLICIT = ("RK45", "RK23", "DOP853")


@lru_cache
def stability_boundary(method: str) -> float:
    """Length of the stability interval of scipy's explicit Runge-Kutta `method` on the negative
    real axis (RK45: 3.307, RK23: 2.513, DOP853: 6.394): the largest h x rate (1) at which a
    decaying mode is not amplified, from the tableau's stability function
    R(z) = 1 + z b^T (I - z A)^-1 1."""
    tableau = getattr(scipy.integrate, method)
    b = tableau.B
    a = np.zeros((b.size, b.size))
    a[:, :tableau.A.shape[1]] = tableau.A[:b.size]

    def amplification(z: float) -> float:
        return abs(1.0 + z * b @ np.linalg.solve(np.eye(b.size) - z * a, np.ones(b.size))) - 1.0
    grid = np.arange(0.01, 20.0, 0.01)
    first = int(np.argmax([amplification(-x) > 0.0 for x in grid]))
    return brentq(lambda x: amplification(-x), grid[first - 1], grid[first])


def max_stable_step(model: BatchModel, method: str) -> np.ndarray:
    """Largest step (yr) per draw at which an explicit `method` keeps the model's fastest drain
    (`sim.model.flows.fastest_drain_rate`) stable; +inf for implicit methods.

    Capping the step there (scipy's max_step) stops the step control from growing the step into
    the unstable range and rejecting it: RK45 at rtol 1e-5 makes about 7 rejected attempts a draw
    instead of 21 (6 % fewer evaluations, same accuracy; measured on the posterior).
    """
    if method not in EXPLICIT:
        return np.full(model.n_draws, np.inf)
    return stability_boundary(method) / model.fastest_drain_rate()


class _NonFiniteDerivative(Exception):
    """Raised inside the right-hand side when a derivative is NaN or infinite."""

    def __init__(self, t: float, y: np.ndarray) -> None:
        super().__init__(t)
        self.t, self.y = t, y


def guarded_rhs(t: float, y: np.ndarray, model: BatchModel) -> np.ndarray:
    """The batch's derivatives; stops the integration at the first non-finite one."""
    dy = model.derivatives(t, y)
    if not np.isfinite(dy.sum()):
        raise _NonFiniteDerivative(t, y.copy())
    return dy


IMPLICIT = ("Radau", "BDF")


def draw_sparsity(n_draws: int):
    """Jacobian sparsity of a batch: a stock depends only on stocks of the same draw.

    The flat state is (n_state, n_draws) raveled, so entry (i, d) sits at i * n_draws + d.
    """
    from scipy.sparse import coo_matrix
    i, j, d = np.meshgrid(np.arange(LAYOUT.size), np.arange(LAYOUT.size), np.arange(n_draws),
                          indexing="ij")
    size = LAYOUT.size * n_draws
    rows, cols = (i * n_draws + d).ravel(), (j * n_draws + d).ravel()
    return coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(size, size)).tocsc()


@announces_compile  # a first compile says so, with its time (sim/model/compiled.py)
def integrate(params: ModelParameters, levers: LeverSet, settings: SolverSettings) -> Trajectory:
    """Integrate all draws from start to end; raise SolverError naming failing draws.

    With the compiled engine (`settings.uses_kernel`) every draw runs RK45 on its own, in parallel
    over the cores; otherwise `solve_ivp` integrates the whole batch as one system.

    BLAS is held to one thread: the solver's only BLAS calls are small matrix-vector products
    (stage combinations), which multi-threaded OpenBLAS makes several times slower, worst of all
    on a busy machine (1,000 draws: 7.4 s with default threads, 1.6 s with one, measured).
    Its arrays get ordinary pages, not huge ones (`sim.engine.memory`).
    """
    with threadpool_limits(limits=1, user_api="blas"), ordinary_pages():
        return _integrate(params, levers, settings)


def _integrate(params: ModelParameters, levers: LeverSet, settings: SolverSettings) -> Trajectory:
    """`integrate` without the thread limit."""
    if settings.uses_kernel:
        return _integrate_compiled(params, levers, settings)
    return integrate_numpy(params, levers, settings)


def integrate_numpy(params: ModelParameters, levers: LeverSet, settings: SolverSettings,
                    method: str | None = None) -> Trajectory:
    """All draws as one system with `solve_ivp` and `method` (default: the settings' method),
    segment by segment between the inputs' kinks; implicit methods get the block-diagonal
    Jacobian pattern of the batch (`draw_sparsity`)."""
    method = method or settings.method
    model = BatchModel(params, levers)
    n = model.n_draws
    times = solve_times(settings)
    edges = segment_edges(levers, settings)
    y = model.initial_state(settings.t_start).ravel()
    atol = settings.atol_vector(n)
    stored = np.empty((LAYOUT.size * n, times.size))
    stored[:, 0] = y
    stats = {"engine": "numpy", "method": method, "nfev": 0, "njev": 0, "nlu": 0,
             "segments": len(edges) - 1}
    options = {"jac_sparsity": draw_sparsity(n)} if method in IMPLICIT and n > 1 else {}
    options["max_step"] = float(max_stable_step(model, method).min())
    for a, b in zip(edges[:-1], edges[1:]):
        inside = (times > a) & (times <= b)
        t_eval = np.unique(np.concatenate([times[inside], [b]]))
        try:
            sol = solve_ivp(guarded_rhs, (a, b), y, method=method, t_eval=t_eval,
                            args=(model,), rtol=settings.rtol, atol=atol, **options)
        except _NonFiniteDerivative as stop:
            raise SolverError(failure_message(f"{method}: non-finite derivative", stop.t, stop.y,
                                              params, model)) from None
        if not sol.success or not np.all(np.isfinite(sol.y)):
            t_fail = sol.t[-1] if sol.t.size else a
            y_fail = sol.y[:, -1] if sol.y.size else y
            raise SolverError(failure_message(f"{method}: {sol.message}", t_fail, y_fail, params,
                                              model))
        for key in ("nfev", "njev", "nlu"):
            stats[key] += int(getattr(sol, key))
        columns = np.searchsorted(t_eval, times[inside])
        stored[:, inside] = sol.y[:, columns]
        y = sol.y[:, -1]
    return trajectory_from_columns(settings, stored.reshape(LAYOUT.size, n, times.size), stats)


def _integrate_compiled(params: ModelParameters, levers: LeverSet,
                        settings: SolverSettings) -> Trajectory:
    """All draws with `sim.engine.kernel`: RK45 per draw, stopping at its own input kinks, dense output.

    Each draw's segments are the historical kinks plus its own intervention dates, never another
    draw's, so a draw's numbers do not depend on which batch or chunk it is integrated in.
    """
    model = BatchModel(params, levers)
    series = series_times(settings)
    return _run_kernel(model, model.initial_state(settings.t_start), settings.t_start, params,
                       levers, settings, series, fiscal_times(settings), report=not series.size)


def kernel_edges(settings: SolverSettings, t0: float) -> tuple[np.ndarray, np.ndarray]:
    """Shared segment edges (yr) from t0 to the window's end: the historical kinks and every
    calendar year, where the kernel restarts the running totals (annual sums to the tolerance);
    and the kinks among them (with t0 and the end).  The kernel adds each draw's own intervention
    dates to both."""
    kinks = segment_edges(LeverSet.from_mapping({}), settings)
    kinks = np.union1d([t0], kinks[kinks > t0])
    edges = np.union1d(kinks, np.arange(np.ceil(settings.t_start), settings.t_end))
    return edges[edges >= t0], kinks


def _run_kernel(model: BatchModel, y0: np.ndarray, t0: float, params: ModelParameters,
                levers: LeverSet, settings: SolverSettings, series: np.ndarray,
                fiscal: np.ndarray, report: bool = False) -> Trajectory:
    """Every draw from y0 (LAYOUT rows, draw) at t0 (yr) to the window's end with the kernel;
    every stock stored at the year boundaries from t0, the physical stocks at `series`, the
    fiscal stocks at `fiscal` (yr); with `report`, REPORTED_SERIES at the year boundaries too
    (from the evaluation that ends each step there: no extra evaluation)."""
    n = model.n_draws
    times = storage_times(settings)
    times = times[times >= t0]
    edges, kinks = kernel_edges(settings, t0)
    reported = REPORTED_SERIES if report else ()
    states, series_states, fiscal_states, aux, stats, status = kernel.integrate_batch(
        y0, model.records, levers, edges, kinks, times, series, PHYSICAL_ROWS, fiscal,
        FISCAL_ROWS, times if report else np.empty(0), auxiliary_columns(reported), settings.rtol,
        settings.atol_vector(n).reshape(LAYOUT.size, n), max_stable_step(model, settings.method))
    failed = np.flatnonzero(status != kernel.OK).tolist()
    if failed:
        reason = kernel.FAILURE_REASONS[int(status[failed[0]])]
        raise SolverError(f"solver failed ({reason}); {failing_draws(failed, params)}")
    stats.update(engine="compiled", segments=len(edges) - 1,
                 min_stock=min(min_stock(states), min_stock(series_states)))
    return Trajectory(times, states, stats, series, series_states, fiscal, fiscal_states,
                      split_auxiliaries(aux, reported))


def integrate_from(states: np.ndarray, t0: float, params: ModelParameters, levers: LeverSet,
                   settings: SolverSettings) -> Trajectory:
    """Continue every draw from `states` (every LAYOUT row, draw), the state at the calendar-year
    boundary t0 (yr) of a run of the same parameters, to the window's end with the compiled
    engine; every stock is stored at the year boundaries from t0 (running totals go on from
    their values in `states`), no finer series.  For runs that differ only in levers starting
    at or after t0 (the study's Sobol rows): their shared history is integrated once.  Agrees
    with one run from 2010 to the solver's tolerance, not bit for bit (the step size restarts)."""
    if not settings.uses_kernel:
        raise InputError(f"solver.engine: value {settings.engine!r} with method "
                         f"{settings.method!r} cannot continue a run; allowed: the compiled RK45")
    if not (float(t0).is_integer() and settings.t_start < t0 < settings.t_end):
        raise InputError(f"integrate_from: t0 {t0} is not a calendar-year boundary inside the "
                         f"window {settings.t_start}-{settings.t_end}")
    model = BatchModel(params, levers)
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_kernel(model, np.ascontiguousarray(states, dtype=float), float(t0), params,
                           levers, settings, np.empty(0), np.empty(0))


def min_stock(states: np.ndarray) -> float:
    """Lowest value of any physical stock over draws and times (kg or persons); +inf if none."""
    if states.size == 0:
        return float("inf")
    return float(min(states[LAYOUT.slices[s]].min() for s in PHYSICAL_STOCKS))


def failing_draws(draws: list[int], params: ModelParameters) -> str:
    """'failing draw(s) [...]; parameters of draw i: {...}' for the first ten failing draws."""
    detail = params.draw(draws[0]).to_dict() if params.n_draws > 1 else params.to_dict()
    return (f"failing draw(s) {draws[:10]}{' ...' if len(draws) > 10 else ''}; "
            f"parameters of draw {draws[0]}: {detail}")


def failure_message(reason: str, t: float, y: np.ndarray, params: ModelParameters,
                    model: BatchModel) -> str:
    """One line naming the failing draw(s) at time t (yr) and the parameters of the first."""
    n = model.n_draws
    state = y.reshape(LAYOUT.size, n)
    with np.errstate(all="ignore"):
        deriv = model.derivatives(t, y).reshape(LAYOUT.size, n)
    bad = ~np.all(np.isfinite(state), axis=0) | ~np.all(np.isfinite(deriv), axis=0)
    draws = np.flatnonzero(bad).tolist()
    if draws:
        return f"solver failed ({reason}) at t={t:.4f} yr; {failing_draws(draws, params)}"
    return (f"solver failed ({reason}) at t={t:.4f} yr for a batch of {n} draws; no single draw "
            f"has non-finite values (try a stiff method: solver.method=Radau)")


def settings_dict(settings: SolverSettings) -> dict:
    """Plain-value settings for provenance."""
    return asdict(settings)


STIFF_METHODS = ("BDF", "Radau")
NEGATIVE_TOLERANCE = 1e-6  # a stock below -this (kg or persons) counts as negative


def trajectory_problem(traj: Trajectory) -> str:
    """'' if every state is finite and no stock is negative, else what is wrong and for which draws."""
    blocks = [b for b in traj.physical_blocks() if b.size]
    finite = np.all([np.all(np.isfinite(b), axis=(0, 2)) for b in blocks], axis=0)
    if not finite.all():
        return f"non-finite state in draw(s) {np.flatnonzero(~finite)[:10].tolist()}"
    lowest = np.min([b[LAYOUT.slices[s]].min(axis=(0, 2)) for s in PHYSICAL_STOCKS for b in blocks],
                    axis=0)
    negative = lowest < -NEGATIVE_TOLERANCE
    if negative.any():
        return (f"negative stock (down to {lowest.min():.3g}) in draw(s) "
                f"{np.flatnonzero(negative)[:10].tolist()}")
    return ""


def integrate_robust(params: ModelParameters, levers: LeverSet, settings: SolverSettings,
                     fallback: str = "BDF") -> Trajectory:
    """`integrate` with the configured method; if that fails or leaves a non-finite or negative
    stock, the whole batch again by `integrate_numpy` with the implicit `fallback` (stats record
    it).  Stiff corners (very short transit or retail times, interdiction far above history) are
    handled by the solver choice, never by clipping."""
    if fallback not in STIFF_METHODS:
        raise ValueError(f"method {fallback!r}: expected one of {STIFF_METHODS}")
    try:
        traj = integrate(params, levers, settings)
        problem = trajectory_problem(traj)
    except SolverError as exc:
        problem = str(exc)
    if not problem:
        return traj
    with threadpool_limits(limits=1, user_api="blas"):
        stiff = integrate_numpy(params, levers, settings, method=fallback)
    left = trajectory_problem(stiff)
    if left:
        raise SolverError(f"solver failed with {settings.method} ({problem[:200]}) and with "
                          f"{fallback} ({left})")
    stiff.stats["fallback_from"] = settings.method
    return stiff
