"""The model over a batch of draws: the compiled `sim.model.flows` functions looped over draws.

`BatchModel` is what the solve_ivp path integrates (`derivatives`, the flat state of a batch in
the layout `solve_ivp` expects) and what the result dataset reads its auxiliaries from
(`auxiliaries`).  Nothing here restates a flow: every number comes from `flows.evaluate`,
`flows.initial_state` and `flows.fastest_drain_rate`.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from sim.model import flows
from sim.model.compiled import jit
from sim.model.levers import LeverSet
from sim.model.parameters import ModelParameters
from sim.model.state import LAYOUT


@jit(parallel=True)
def evaluate_draws(t, states, records, levers, derivatives, auxiliaries, work):
    """`flows.evaluate` for every draw at time t (yr): states (draw, state), records (draw),
    levers (draw, lever) -> derivatives (draw, state), auxiliaries (draw, aux); `work` (draw,
    flows.N_WORK) is each draw's scratch with its constants (`work_arrays`)."""
    for d in prange(states.shape[0]):
        flows.evaluate(t, states[d], records[d], levers[d], derivatives[d], auxiliaries[d],
                       work[d], True)


@jit(parallel=True)
def auxiliaries_at_times(times, physical, records, levers, work, out):
    """The reported auxiliaries of every draw at each of `times` (yr) into out (draw, time, aux)
    by `flows.evaluate`, from the physical stocks `physical` (draw, time, rows; the other state
    rows are 0) and levers (time, draw, lever); `work` (draw, flows.N_WORK) as in
    `evaluate_draws`.  One parallel pass over the draws, each draw's times in turn (draw-major
    arrays: each draw reads and writes one contiguous block)."""
    for d in prange(records.shape[0]):
        state, derivatives = np.zeros(flows.N_STATE), np.empty(flows.N_STATE)
        for i in range(times.size):
            for r in range(physical.shape[2]):
                state[r] = physical[d, i, r]
            flows.evaluate(times[i], state, records[d], levers[i, d], derivatives, out[d, i],
                           work[d], True)


@jit
def work_arrays(records):
    """`flows.work_array` of every draw, (draw, flows.N_WORK): made once per batch, as the kernel
    makes it once per draw."""
    out = np.empty((records.shape[0], flows.N_WORK))
    for d in range(records.shape[0]):
        out[d] = flows.work_array(records[d])
    return out


@jit
def initial_states(t0, records, levers, out):
    """`flows.initial_state` of every draw into out (draw, state)."""
    for d in range(records.shape[0]):
        flows.initial_state(t0, records[d], levers[d], out[d])


@jit
def drain_rates(records):
    """`flows.fastest_drain_rate` of every draw (1/yr)."""
    out = np.empty(records.shape[0])
    for d in range(records.shape[0]):
        out[d] = flows.fastest_drain_rate(records[d])
    return out


class BatchModel:
    """Parameters and levers of a batch of draws, with the model's functions over the batch."""

    def __init__(self, params: ModelParameters, levers: LeverSet, n_draws: int | None = None) -> None:
        self.n_draws = n = n_draws or params.n_draws
        if params.n_draws not in (1, n):
            raise ValueError(f"{params.n_draws} parameter draws for a batch of {n}")
        records = flows.parameter_records(params)
        self.records = np.ascontiguousarray(np.broadcast_to(records, (n,)))
        self.levers = levers
        self.work = work_arrays(self.records)

    def lever_values(self, t: float) -> np.ndarray:
        """Lever values at t (yr), (draw, lever) in the order of LEVER_SPECS."""
        return self.levers.value_matrix(t, self.n_draws)

    def evaluate(self, t: float, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Derivatives (draw, state) and auxiliaries (draw, aux) at t for states (draw, state)."""
        n = self.n_draws
        derivatives, auxiliaries = np.empty((n, flows.N_STATE)), np.empty((n, flows.N_AUX))
        evaluate_draws(float(t), np.ascontiguousarray(states), self.records,
                       self.lever_values(t), derivatives, auxiliaries, self.work)
        return derivatives, auxiliaries

    def derivatives(self, t: float, y: np.ndarray) -> np.ndarray:
        """dy/dt of the flat batch state (state-major, as `solve_ivp` holds it)."""
        derivatives, _ = self.evaluate(t, y.reshape(flows.N_STATE, self.n_draws).T)
        return derivatives.T.ravel()

    def auxiliaries(self, t: float, physical: np.ndarray) -> dict[str, np.ndarray]:
        """The reported auxiliaries at t from the physical stocks (rows, draw), each shaped
        (*dims, draw) as laid out in `flows.AUX_LAYOUT`."""
        states = np.zeros((self.n_draws, flows.N_STATE))
        states[:, :physical.shape[0]] = physical.T
        _, auxiliaries = self.evaluate(t, states)
        return flows.AUX_LAYOUT.unpack(auxiliaries.T)

    def auxiliaries_over(self, times: np.ndarray, physical: np.ndarray) -> dict[str, np.ndarray]:
        """The reported auxiliaries at each of `times` (yr) from the physical stocks (rows, draw,
        time), each shaped (*dims, draw, time) as laid out in `flows.AUX_LAYOUT`."""
        times = np.asarray(times, dtype=float)
        out = np.empty((self.n_draws, times.size, flows.N_AUX))
        levers = np.stack([self.lever_values(t) for t in times]) if times.size else \
            np.empty((0, self.n_draws, len(self.levers.levers)))
        auxiliaries_at_times(times, np.ascontiguousarray(physical.transpose(1, 2, 0)),
                             self.records, np.ascontiguousarray(levers), self.work, out)
        return flows.AUX_LAYOUT.unpack(out.transpose(2, 0, 1))

    def initial_state(self, t0: float) -> np.ndarray:
        """State at t0 (yr) as a (state, draw) array."""
        out = np.empty((self.n_draws, flows.N_STATE))
        initial_states(float(t0), self.records, self.lever_values(t0), out)
        return np.ascontiguousarray(out.T)

    def fastest_drain_rate(self) -> np.ndarray:
        """Largest first-order outflow rate of any stock (1/yr), per draw."""
        return drain_rates(self.records)


assert LAYOUT.size == flows.N_STATE
