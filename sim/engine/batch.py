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
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.model.parameters import ModelParameters
from sim.model.state import LAYOUT


@jit(parallel=True)
def evaluate_draws(t, states, records, levers, derivatives, scratch, work):
    """`flows.evaluate` for every draw at time t (yr): states (draw, state), records (draw),
    levers (draw, lever) -> derivatives (draw, state); `scratch` (draw, flows.N_AUX) and `work`
    (draw, flows.N_WORK, each draw's constants: `work_arrays`) are scratch.  The reported
    auxiliaries are skipped (`auxiliaries_at_times` computes them)."""
    for d in prange(states.shape[0]):
        flows.evaluate(t, states[d], records[d], levers[d], derivatives[d], scratch[d], work[d],
                       False)


@jit(no_refcount=True)
def _draw_auxiliaries(d, times, physical, record, levers, work, columns, state, derivatives,
                      aux, out):
    """Draw d's reported auxiliaries `columns` (offsets in `flows.AUX_LAYOUT`) at each of `times`
    (yr) into out[time, column, d], by `flows.evaluate` from the physical stocks physical[:, d, :]
    (rows, draw, time); `state` (its other rows 0), `derivatives` and `aux` are scratch.  Borrows
    every array from its caller (no reference counts)."""
    row = d if levers.shape[1] > 1 else d - d    # 0 when every draw reads the same levers
    for i in range(times.size):
        for r in range(physical.shape[0]):
            state[r] = physical[r, d, i]
        flows.evaluate(times[i], state, record, levers[i, row], derivatives, aux,
                       work, True)
        for j in range(columns.size):
            out[i, j, d] = aux[columns[j]]


@jit(parallel=True)
def auxiliaries_at_times(times, physical, records, levers, work, columns, out):
    """The reported auxiliaries `columns` of every draw at each of `times` (yr) into out (time,
    column, draw), the layout of the result dataset's time series: from the physical stocks
    `physical` (rows, draw, time) and levers (time, draw or 1, lever); `work` (draw,
    flows.N_WORK) as in `evaluate_draws`.  One parallel pass over the draws."""
    for d in prange(records.shape[0]):
        state, derivatives = np.zeros(flows.N_STATE), np.empty(flows.N_STATE)
        _draw_auxiliaries(d, times, physical, records[d], levers, work[d], columns, state,
                          derivatives, np.empty(flows.N_AUX), out)


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


def auxiliary_columns(names: tuple[str, ...]) -> np.ndarray:
    """Offsets in `flows.AUX_LAYOUT` of the auxiliaries `names`, one after another (int64)."""
    slices = [flows.AUX_LAYOUT.slices[name] for name in names]
    return np.array([i for sl in slices for i in range(sl.start, sl.stop)], dtype=np.int64)


def split_auxiliaries(values: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """{name: (time, *dims, draw) view} from `values` (time, column, draw) holding the columns of
    `names` in the order of `auxiliary_columns(names)`."""
    found, start = {}, 0
    for name in names:
        sl = flows.AUX_LAYOUT.slices[name]
        width = sl.stop - sl.start
        found[name] = values[:, start:start + width].reshape(
            (values.shape[0], *flows.AUX_LAYOUT.shapes[name], values.shape[2]))
        start += width
    return found


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

    def evaluate(self, t: float, states: np.ndarray) -> np.ndarray:
        """Derivatives (draw, state) at t for states (draw, state)."""
        derivatives = np.empty((self.n_draws, flows.N_STATE))
        evaluate_draws(float(t), np.ascontiguousarray(states), self.records,
                       self.lever_values(t), derivatives, np.empty((self.n_draws, flows.N_AUX)),
                       self.work)
        return derivatives

    def derivatives(self, t: float, y: np.ndarray) -> np.ndarray:
        """dy/dt of the flat batch state (state-major, as `solve_ivp` holds it)."""
        derivatives = self.evaluate(t, y.reshape(flows.N_STATE, self.n_draws).T)
        return derivatives.T.ravel()

    def lever_values_over(self, times: np.ndarray) -> np.ndarray:
        """Lever values at each of `times` (yr), (time, draw, lever) in the order of LEVER_SPECS;
        (time, 1, lever) when no lever differs between draws (one row read by every draw)."""
        rows = self.n_draws if self.levers.varies_by_draw else 1
        out = np.empty((len(times), rows, len(LEVER_SPECS)))
        for i, t in enumerate(times):
            out[i] = self.levers.value_matrix(float(t), rows)
        return out

    def auxiliaries_over(self, times: np.ndarray, physical: np.ndarray,
                         names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """The reported auxiliaries `names` (default: all of `flows.AUX_LAYOUT`) at each of
        `times` (yr) from the physical stocks (rows, draw, time), each shaped (time, *dims, draw):
        views of one array holding only those auxiliaries."""
        times = np.asarray(times, dtype=float)
        names = tuple(flows.AUX_LAYOUT.slices) if names is None else tuple(names)
        columns = auxiliary_columns(names)
        out = np.empty((times.size, columns.size, self.n_draws))
        # one memory layout, so one machine code (a copy only when the trajectory's rows at these
        # times are not already one C-ordered block: e.g. a subset of its stored times)
        auxiliaries_at_times(times, np.ascontiguousarray(physical, dtype=float), self.records,
                             self.lever_values_over(times),
                             self.work, columns, out)
        return split_auxiliaries(out, names)

    def auxiliaries(self, t: float, physical: np.ndarray,
                    names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """The reported auxiliaries `names` (default: all) at t (yr) from the physical stocks
        (rows, draw), each shaped (*dims, draw) as laid out in `flows.AUX_LAYOUT`."""
        return {name: values[0] for name, values in self.auxiliaries_over(
            np.array([t], dtype=float), np.asarray(physical)[:, :, None], names).items()}

    def initial_state(self, t0: float) -> np.ndarray:
        """State at t0 (yr) as a (state, draw) array."""
        out = np.empty((self.n_draws, flows.N_STATE))
        initial_states(float(t0), self.records, self.lever_values(t0), out)
        return np.ascontiguousarray(out.T)

    def fastest_drain_rate(self) -> np.ndarray:
        """Largest first-order outflow rate of any stock (1/yr), per draw."""
        return drain_rates(self.records)


assert LAYOUT.size == flows.N_STATE
