"""Stiff corners of the parameter and lever space, handled by the solver choice (never by clipping).

Very short transit and retail times, fast treatment turnover or interdiction effort far above
history make the model stiff: an explicit method (RK45, the default) then needs tiny steps for the
whole batch, or fails.  `integrate_stiff` integrates a batch with an implicit method (BDF or Radau)
and tells scipy that draws are independent (the Jacobian is block-diagonal over draws), so the
finite-difference Jacobian costs one right-hand-side call per state row, not per draw, and its LU is
sparse.  `integrate_robust` tries the configured method first and falls back to `integrate_stiff`
when it fails or leaves a non-finite or negative stock.  Hydra-free.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse
from scipy.integrate import solve_ivp

from sim.errors import SolverError
from sim.model.levers import LeverSet
from sim.model.flows import ModelContext, initial_state
from sim.model.parameters import ModelParameters
from sim.engine.solver import (PHYSICAL_STOCKS, SolverSettings, Trajectory, _NonFiniteDerivative,
                        failure_message, guarded_rhs, integrate, segment_edges, solve_times,
                        trajectory_from_columns)
from sim.model.state import LAYOUT

STIFF_METHODS = ("BDF", "Radau")
NEGATIVE_TOLERANCE = 1e-6  # a stock below -this (kg or persons) counts as negative


def batch_sparsity(n_draws: int) -> scipy.sparse.csc_matrix:
    """Jacobian pattern of the flat state (row s * n_draws + d): each draw depends only on itself."""
    return scipy.sparse.kron(np.ones((LAYOUT.size, LAYOUT.size)),
                             scipy.sparse.identity(n_draws), format="csc")


def integrate_stiff(params: ModelParameters, levers: LeverSet, settings: SolverSettings,
                    method: str = "BDF") -> Trajectory:
    """Integrate all draws with an implicit method and a block-diagonal Jacobian pattern."""
    if method not in STIFF_METHODS:
        raise ValueError(f"method {method!r}: expected one of {STIFF_METHODS}")
    ctx = ModelContext.build(params, levers)
    n = ctx.n_draws
    times = solve_times(settings)
    edges = segment_edges(levers, settings)
    y = initial_state(ctx).ravel()
    stored = np.empty((y.size, times.size))
    stored[:, 0] = y
    options = dict(method=method, args=(ctx,), rtol=settings.rtol, atol=settings.atol_vector(n),
                   jac_sparsity=batch_sparsity(n))
    stats = {"nfev": 0, "njev": 0, "nlu": 0, "segments": len(edges) - 1, "method": method}
    for a, b in zip(edges[:-1], edges[1:]):
        inside = (times > a) & (times <= b)
        t_eval = np.unique(np.concatenate([times[inside], [b]]))
        try:
            sol = solve_ivp(guarded_rhs, (a, b), y, t_eval=t_eval, **options)
        except _NonFiniteDerivative as stop:
            raise SolverError(failure_message("non-finite derivative", stop.t, stop.y, params,
                                              ctx)) from None
        if not sol.success or not np.all(np.isfinite(sol.y)):
            raise SolverError(failure_message(f"{method}: {sol.message}", sol.t[-1] if sol.t.size
                                              else a, sol.y[:, -1] if sol.y.size else y, params, ctx))
        for key in ("nfev", "njev", "nlu"):
            stats[key] += int(getattr(sol, key))
        stored[:, inside] = sol.y[:, np.searchsorted(t_eval, times[inside])]
        y = sol.y[:, -1]
    return trajectory_from_columns(settings, stored.reshape(LAYOUT.size, n, times.size), stats)


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
    """`sim.engine.solver.integrate` with the configured method; if that fails or leaves a non-finite or
    negative stock, the whole batch again with the implicit `fallback` (stats record it)."""
    try:
        traj = integrate(params, levers, settings)
        problem = trajectory_problem(traj)
    except SolverError as exc:
        problem = str(exc)
    if not problem:
        return traj
    stiff = integrate_stiff(params, levers, dataclasses.replace(settings), fallback)
    left = trajectory_problem(stiff)
    if left:
        raise SolverError(f"solver failed with {settings.method} ({problem[:200]}) and with "
                          f"{fallback} ({left})")
    stiff.stats["fallback_from"] = settings.method
    return stiff
