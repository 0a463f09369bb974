"""Compiled engine: scipy's RK45 run per draw, draws spread over the cores.

The flows are `sim.model.flows.evaluate`, compiled (the model is stated once, there).  This module
runs scipy's own Dormand-Prince 5(4) pair (its tableau, error norm, step-size control, initial step
rule and fourth-order dense output, read from `scipy.integrate`) separately for every draw, in
parallel over draws.  The first step is chosen by scipy's rule on the rows the flows read
(N_DRIVING): the running totals start at zero, where the rule would take a 1e-4 yr first step.
Each draw has its own step size and stops only at its own input kinks, so a draw's numbers do
not depend on the batch it runs in.  Two additions to scipy's stepper, both for annual
sums: a step across a change of the flows' switch code (`flows.evaluate`: a capacity turning short,
spare capacity no longer covering a shortfall, ...) is at most SWITCH_STEP long, as the embedded
error estimate misses the error of a step across a kink; and the running totals (stocks of kind
"total") restart from zero at each year boundary, kept exactly in an offset, so the error control
holds a year's accumulation to the tolerance rather than everything since 2010.  Levers are
fitted exactly once per piece between input kinks (`fit_levers`; a calendar year that is no kink
ends steps but starts no piece), so a lever costs two multiply-adds per evaluation, and the
market's terms that depend on time and levers alone (`flows.market_terms`, about 45 % of an
evaluation's time) are computed once for a piece on which they do not change
(`hold_market_terms`): from April 2024 on, and for the fentanyl channels before FY2013, unless an
intervention ramps; elsewhere a step's last evaluation (at its end, FSAL) reuses those of its
sixth stage when the two fall at the same time (C5 = 1), as they mostly do.  The reported
auxiliaries of annual outputs come from the evaluation that ends a step at a year boundary (every
year is an edge), so they cost no evaluation of their own (`integrate_batch`'s `aux_times`).
`tests/test_kernel.py` checks the trajectories against the solve_ivp path and a Radau reference.
Hydra-free.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange
from scipy.integrate import RK45

from sim.model import flows
from sim.model.compiled import jit
from sim.model.flows import N_AUX, N_DRIVING, N_STATE, WORK
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.model.parameters import ModelParameters

# scipy's RK45 (Dormand-Prince 5(4)), its public class attributes: stage times, stage matrix,
# weights, error weights, dense output (tests/test_kernel.py checks them against the published tableau).
RK_C, RK_A, RK_B, RK_E, RK_P = RK45.C, RK45.A, RK45.B, RK45.E, RK45.P
assert RK_C.size == 6 and RK_E.size == 7 and RK_B[1] == 0.0 and RK_E[1] == 0.0
# As scalars and columns, so the compiled loops see compile-time constants.
C1, C2, C3, C4, C5 = RK_C[1:]
A10 = RK_A[1, 0]
A20, A21 = RK_A[2, :2]
A30, A31, A32 = RK_A[3, :3]
A40, A41, A42, A43 = RK_A[4, :4]
A50, A51, A52, A53, A54 = RK_A[5, :5]
B0, B2, B3, B4, B5 = RK_B[[0, 2, 3, 4, 5]]
E0, E2, E3, E4, E5, E6 = RK_E[[0, 2, 3, 4, 5, 6]]
ERROR_EXPONENT = -1.0 / (RK45.error_estimator_order + 1.0)
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0   # step-size control as scipy's RK45 (solve_ivp)
MAX_STEPS = 1_000_000                              # per draw, before giving up
# Longest step (yr) that may cross a change of the flows' switch code (work[WORK.regime]: a
# capacity short or not, spare capacity covering the shortfall or not, ...).  Across such a kink
# the local error grows with the step squared and the embedded estimate misses it (measured: a
# fentanyl channel's shipments kinking in late 2012 left cumulative output 1% off at rtol 1e-5);
# a step this short leaves it below the tolerance.
SWITCH_STEP = 1.0 / 256
PARALLEL_CHUNK = 64   # draws handed to a thread at a time: a stalled core delays little

# Failure codes returned per draw.
OK, STEP_TOO_SMALL, TOO_MANY_STEPS = 0, 1, 2
FAILURE_REASONS = {STEP_TOO_SMALL: "step size too small (non-finite or very stiff derivative)",
                   TOO_MANY_STEPS: f"more than {MAX_STEPS} steps"}


KNOTS = max(len(spec.history) for spec in LEVER_SPECS.values())
# Columns of a lever's row in the history table: knot count, then knot years, then knot values.
COUNT, YEARS, VALUES = 0, 1, 1 + KNOTS
# Last axis of the intervention table (draw, lever, ...): start (yr), ramp (yr), level, flags.
START, RAMP, LEVEL, ACTIVE, SCALE, END = range(6)
LEVER_FIT_COLUMNS = 3  # value at segment start, c1, c2 (see fit_levers)
REGIME = WORK.regime   # where `flows.evaluate` writes its switch code


def lever_tables(levers: LeverSet, n_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Levers as two float arrays for the kernel (few array arguments keep calls cheap).

    history (lever, column): knot count, knot years (yr), knot values, padded with the last knot;
    interventions (draw, lever, field): start (yr), ramp (yr), level, active (0/1), scale mode (0/1),
    end (yr; +inf for a permanent intervention).
    """
    history = np.zeros((len(LEVER_SPECS), 1 + 2 * KNOTS))
    interventions = np.zeros((n_draws, len(LEVER_SPECS), 6))
    interventions[:, :, RAMP] = 1.0
    interventions[:, :, END] = np.inf
    for i, spec in enumerate(LEVER_SPECS.values()):
        knots = np.array(spec.history, dtype=float)
        history[i, COUNT] = len(knots)
        history[i, YEARS:YEARS + KNOTS] = knots[-1, 0]
        history[i, VALUES:VALUES + KNOTS] = knots[-1, 1]
        history[i, YEARS:YEARS + len(knots)] = knots[:, 0]
        history[i, VALUES:VALUES + len(knots)] = knots[:, 1]
        lever = levers[spec.name]
        if lever.start is not None:
            interventions[:, i, START] = np.broadcast_to(lever.start, (n_draws,))
            interventions[:, i, RAMP] = np.broadcast_to(lever.ramp, (n_draws,))
            interventions[:, i, LEVEL] = np.broadcast_to(lever.level, (n_draws,))
            interventions[:, i, ACTIVE] = 1.0
            interventions[:, i, SCALE] = float(lever.mode == "scale")
            if lever.end is not None:
                interventions[:, i, END] = np.broadcast_to(lever.end, (n_draws,))
    return history, interventions


@jit
def _interp(t, xs, ys, count):
    """Piecewise-linear interpolation through the first `count` knots, flat outside."""
    if t <= xs[0]:
        return ys[0]
    for k in range(1, count):
        if t <= xs[k]:
            w = (t - xs[k - 1]) / (xs[k] - xs[k - 1])
            return ys[k - 1] + w * (ys[k] - ys[k - 1])
    return ys[count - 1]

@jit(inline=True)
def lever_value(t, i, history, intervention):
    """Value of lever row i at time t (yr) for one draw (its `intervention` rows), as
    `sim.model.levers.Lever.__call__`."""
    base = _interp(t, history[i, YEARS:YEARS + KNOTS], history[i, VALUES:VALUES + KNOTS],
                   int(history[i, COUNT]))
    if intervention[i, ACTIVE] == 0.0:
        return base
    weight = min(max((t - intervention[i, START]) / intervention[i, RAMP], 0.0), 1.0)
    if intervention[i, END] < np.inf:   # a temporary intervention: back to history from END
        weight = min(weight, max((intervention[i, END] + intervention[i, RAMP] - t)
                                 / intervention[i, RAMP], 0.0))
    level = intervention[i, LEVEL]
    target = level * base if intervention[i, SCALE] != 0.0 else level
    return base + weight * (target - base)

@jit
def fit_levers(t_a, t_b, history, intervention, coefficients):
    """Quadratic in s = t - t_a through every lever's values at t_a, the midpoint and t_b.

    On a segment without kinks each lever is linear in t, or quadratic while a 'scale'
    intervention ramps over a changing history; the fit is then exact, and evaluating it
    costs two multiply-adds instead of a table search.  Rows: (value at t_a, c1, c2).
    """
    span = t_b - t_a
    for i in range(coefficients.shape[0]):
        v_a = lever_value(t_a, i, history, intervention)
        v_m = lever_value(t_a + 0.5 * span, i, history, intervention)
        v_b = lever_value(t_b, i, history, intervention)
        c2 = 2.0 * (v_b - 2.0 * v_m + v_a) / (span * span) if span > 0.0 else 0.0
        coefficients[i, 0] = v_a
        coefficients[i, 1] = (v_b - v_a) / span - c2 * span if span > 0.0 else 0.0
        coefficients[i, 2] = c2

@jit(inline=True)
def _lever(coefficients, i, s):
    """Lever row i at s yr after the piece's start, from `fit_levers`."""
    return coefficients[i, 0] + s * (coefficients[i, 1] + s * coefficients[i, 2])

@jit(inline=True, fastmath=True)
def _derivatives(t, y, p, fits, origin, lv, aux, work, dy, report):
    """dy/dt of one draw into `dy` by `flows.evaluate`, the levers `lv` taken from the fits of
    the piece that starts at `origin` (yr); the reported auxiliaries into `aux` when `report`
    (else it is scratch), `work` is scratch."""
    since = t - origin
    for i in range(lv.size):
        lv[i] = _lever(fits, i, since)
    flows.evaluate(t, y, p, lv, dy, aux, work, report)


@jit(inline=True, fastmath=True)
def _stage_state(y, h, k0, k1, k2, k3, k4, stage, out):
    """out = y + h * sum_{j < stage} A[stage, j] k_j (scipy's RK45 matrix A) for the rows the
    flows read (N_DRIVING); stages j >= `stage` are never read, so stale values of a rejected
    step cannot leak in."""
    if stage == 1:
        for i in range(N_DRIVING):
            out[i] = y[i] + h * (A10 * k0[i])
    elif stage == 2:
        for i in range(N_DRIVING):
            out[i] = y[i] + h * (A20 * k0[i] + A21 * k1[i])
    elif stage == 3:
        for i in range(N_DRIVING):
            out[i] = y[i] + h * (A30 * k0[i] + A31 * k1[i] + A32 * k2[i])
    elif stage == 4:
        for i in range(N_DRIVING):
            out[i] = y[i] + h * (A40 * k0[i] + A41 * k1[i] + A42 * k2[i] + A43 * k3[i])
    else:
        for i in range(N_DRIVING):
            out[i] = y[i] + h * (A50 * k0[i] + A51 * k1[i] + A52 * k2[i] + A53 * k3[i]
                                 + A54 * k4[i])

@jit(inline=True, fastmath=True)
def _store_dense(times, k, t, t_new, y, y_new, step, k0, k1, k2, k3, k4, k5, k6, first, out,
                 d, q, offset):
    """Store rows first.. of the state plus `offset` (running totals up to the segment's start)
    at `times` inside (t, t_new] into out[:, d, :] by scipy's RK45 quartic dense output (q:
    scratch for its 7 weights); the next index."""
    while k < times.size and times[k] <= t_new:
        if times[k] == t_new:
            for i in range(first, first + out.shape[0]):
                out[i - first, d, k] = offset[i] + y_new[i]
        else:
            theta = (times[k] - t) / step
            for j in range(7):
                q[j] = 0.0
                power = theta
                for m in range(RK_P.shape[1]):
                    q[j] += RK_P[j, m] * power
                    power *= theta
            for i in range(first, first + out.shape[0]):
                out[i - first, d, k] = offset[i] + y[i] + step * (
                    q[0] * k0[i] + q[1] * k1[i] + q[2] * k2[i] + q[3] * k3[i]
                    + q[4] * k4[i] + q[5] * k5[i] + q[6] * k6[i])
        k += 1
    return k

@jit(inline=True)
def _store_auxiliaries(aux, columns, aux_out, k, d):
    """aux[columns] into aux_out[k, :, d]; the next index."""
    for j in range(columns.size):
        aux_out[k, j, d] = aux[columns[j]]
    return k + 1


@jit(no_refcount=True)
def _market_terms_at(s, t_a, p, fits, lv, work):
    """`flows.market_terms` at s yr after the segment start t_a, levers from the segment's fits."""
    for i in range(lv.size):
        lv[i] = _lever(fits, i, s)
    flows.market_terms(t_a + s, p, lv, work, False)


@jit(no_refcount=True)
def _same_terms(terms, saved, work):
    """Whether work[terms] equals saved[terms], bit for bit."""
    for i in terms:
        if saved[i] != work[i]:
            return False
    return True


@jit(no_refcount=True)
def hold_market_terms(t_a, t_b, p, fits, lv, work, saved):
    """Set work[WORK.terms_fixed] for the segment [t_a, t_b] (levers fitted in `fits`):
    ALL_TERMS_FIXED when every market term (`flows.market_terms`) is the same, bit for bit, at
    t_a, t_b and the midpoint, FENTANYL_TERMS_FIXED when the fentanyl channels' are, else
    TERMS_FREE; `work` is left with the terms last computed (equal at all three when held).
    On a segment (no input kink inside) each term is a monotone function of t (ramps, log-linear
    paths) or of the levers, which are at most quadratic in t (`fit_levers`), so three equal
    values mean a constant.  A segment on which the fentanyl channels' terms change costs two
    evaluations of the terms, one on which they are held three.  Held terms can differ from those
    `flows.evaluate` computes afresh in the last bit (the compiler fuses a multiply-add in one
    caller and not in the other): outputs move by rounding only (at most 4e-8 relative, heroin
    deaths, on the reference cases of 2026-12-03).  `saved` (N_WORK) is scratch."""
    work[WORK.terms_fixed] = flows.TERMS_FREE
    span = t_b - t_a
    _market_terms_at(0.0, t_a, p, fits, lv, work)
    fentanyl, heroin = True, True
    for s in (span, 0.5 * span):
        for i in range(work.size):
            saved[i] = work[i]
        _market_terms_at(s, t_a, p, fits, lv, work)
        fentanyl = fentanyl and _same_terms(flows.FENTANYL_TERMS, saved, work)
        heroin = heroin and _same_terms(flows.HEROIN_TERMS, saved, work)
        if not fentanyl:
            return
    work[WORK.terms_fixed] = flows.ALL_TERMS_FIXED if heroin else flows.FENTANYL_TERMS_FIXED


@jit(inline=True)
def _is_kink(t, kinks):
    """Whether t (yr) is one of `kinks`."""
    for j in range(kinks.size):
        if kinks[j] == t:
            return True
    return False


@jit(no_refcount=True)
def _start_piece(origin, kinks, p, history, intervention, fits, lv, work, saved):
    """Fit the levers (`fit_levers`, into `fits`) and hold the market's terms
    (`hold_market_terms`) on the piece of the inputs from the kink `origin` (yr) to the next of
    `kinks` (sorted; the last is the window's end)."""
    end = origin
    for j in range(kinks.size):
        if kinks[j] > origin:
            end = kinks[j]
            break
    fit_levers(origin, end, history, intervention, fits)
    hold_market_terms(origin, end, p, fits, lv, work, saved)


STATE_BUFFERS = 11   # rows of a draw's state buffer: y, y_new, scale, the 7 stages k0..k6, offset


@jit
def _draw_buffers(n, n_levers, p):
    """A draw's scratch (allocated once per draw, outside the stepper, which then allocates
    nothing): state rows (STATE_BUFFERS, n), lever fits, lever values, auxiliaries, the flows'
    work array (`flows.work_array`), the 7 dense-output weights and `hold_market_terms`'s
    scratch."""
    return (np.zeros((STATE_BUFFERS, n)), np.empty((n_levers, LEVER_FIT_COLUMNS)),
            np.empty(n_levers), np.empty(N_AUX), flows.work_array(p), np.empty(7),
            np.empty(flows.N_WORK))


@jit(inline=True)
def _switch_seen(work, regime, fraction, first_change):
    """The stage fraction at which the switch code first differs from `regime` (code at the step's
    start): `first_change` unchanged once set (< 2), else `fraction` if the code changed here."""
    if first_change < 2.0 or work[REGIME] == regime:
        return first_change
    return fraction


@jit(fastmath=True, no_refcount=True)
def _integrate_draw(y0, p, d, history, intervention, edges, kinks, times, series_times,
                    fiscal_times, fiscal_first, aux_times, aux_columns, rtol, atol, max_step, out,
                    series_out, fiscal_out, aux_out, stats, buffers):
    """RK45 for draw d from edges[0] to edges[-1], stopping at each edge, steps at most
    `max_step` (yr) long.  `kinks` (sorted, among the edges) are the edges where an input has a
    kink (this draw's): the levers are fitted and the market's terms held (`hold_market_terms`)
    once per piece between kinks; the other edges (calendar years) only end steps.  By dense
    output it stores the state at `times` into out[:, d, :] (state, draw, time), its first rows
    at `series_times` into series_out[:, d, :] and rows fiscal_first.. at `fiscal_times` into
    fiscal_out[:, d, :].
    The reported auxiliaries at offsets `aux_columns` (`flows.AUX_LAYOUT`) go into
    aux_out[:, :, d] at `aux_times`, which must be among the edges: a step ends there, and its
    last evaluation (first of the next step) reports them, so they cost no evaluation of their own.
    `buffers`: its scratch (`_draw_buffers`).  Returns a failure code.  Allocates nothing and
    skips numba's reference counts (atomic operations, a quarter of the time), safe because every
    array it touches is held by its caller."""
    n = y0.size
    rows, levers, lv, aux, work, q, saved = buffers
    y, y_new, scale = rows[0], rows[1], rows[2]
    k0, k1, k2, k3, k4, k5, k6 = rows[3], rows[4], rows[5], rows[6], rows[7], rows[8], rows[9]
    offset = rows[10]   # running totals (rows N_DRIVING..) accumulated before the segment's start
    origin = edges[0]
    _start_piece(origin, kinks, p, history, intervention, levers, lv, work, saved)
    for i in range(n):
        y[i] = y0[i]
    t = edges[0]
    k_aux = 0
    report = aux_times.size > 0 and aux_times[0] == t
    _derivatives(t, y, p, levers, origin, lv, aux, work, k0, report)
    if report:
        k_aux = _store_auxiliaries(aux, aux_columns, aux_out, k_aux, d)
    regime = work[REGIME]   # the switch code at t
    cap = np.inf            # step cap while a switch is being approached (see SWITCH_STEP)
    approach = 0.0          # after a switch was seen inside a long step: a step to its last stage
                            # before the switch, taken whole (then the cap applies)
    rebased = t             # when the running totals last restarted from zero
    # initial step as scipy.integrate._ivp.common.select_initial_step, on the rows the flows read:
    # the running totals are zero here (scale = atol), which would make it about 1e-4 yr and cost
    # four steps to grow out of (11.6 evaluations a draw, measured on 2,000 posterior draws)
    d0 = d1 = 0.0
    for i in range(N_DRIVING):
        scale[i] = atol[i] + abs(y[i]) * rtol
        d0 += (y[i] / scale[i]) ** 2
        d1 += (k0[i] / scale[i]) ** 2
    d0, d1 = np.sqrt(d0 / N_DRIVING), np.sqrt(d1 / N_DRIVING)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, edges[1] - t)
    for i in range(n):
        y_new[i] = y[i] + h0 * k0[i]
    _derivatives(t + h0, y_new, p, levers, origin, lv, aux, work, k1, False)
    d2 = 0.0
    for i in range(N_DRIVING):
        d2 += ((k1[i] - k0[i]) / scale[i]) ** 2
    d2 = np.sqrt(d2 / N_DRIVING) / h0
    h1 = max(1e-6, h0 * 1e-3) if (d1 <= 1e-15 and d2 <= 1e-15) else \
        (0.01 / max(d1, d2)) ** (-ERROR_EXPONENT)
    h = min(100 * h0, h1, edges[1] - t, max_step)
    nfev, steps, rejected = 2, 0, 0
    k_out = _store_dense(times, 0, t, t, y, y, 0.0, k0, k1, k2, k3, k4, k5, k6, 0, out, d, q,
                         offset)
    k_series = _store_dense(series_times, 0, t, t, y, y, 0.0, k0, k1, k2, k3, k4, k5, k6, 0,
                            series_out, d, q, offset)
    k_fiscal = _store_dense(fiscal_times, 0, t, t, y, y, 0.0, k0, k1, k2, k3, k4, k5, k6,
                            fiscal_first, fiscal_out, d, q, offset)
    for seg in range(1, edges.size):
        bound = edges[seg]
        if seg > 1 and _is_kink(edges[seg - 1], kinks):   # a new piece: its levers and terms
            origin = edges[seg - 1]
            _start_piece(origin, kinks, p, history, intervention, levers, lv, work, saved)
        while t < bound:
            if t >= rebased + 1.0 - 1e-9:
                # running totals restart from zero about once a year: the error control then holds
                # a year's accumulation, not everything since 2010, to the tolerance, so annual
                # sums (differences of running totals) keep it too.  The flows never read these
                # rows, so the stages k0.. stay valid.
                for i in range(N_DRIVING, n):
                    offset[i] += y[i]
                    y[i] = 0.0
                rebased = t
            step_rejected = False
            while True:
                if steps + rejected > MAX_STEPS:
                    return TOO_MANY_STEPS
                if h < 10.0 * abs(np.nextafter(t, np.inf) - t):
                    return STEP_TOO_SMALL
                t_new = min(t + (approach if approach > 0.0 else min(h, cap)), bound)
                step = t_new - t
                change = 2.0   # stage fraction where the switch code first changed (2: none)
                for stage in range(1, 7):
                    if stage < 6:
                        _stage_state(y, step, k0, k1, k2, k3, k4, stage, y_new)
                        _derivatives(t + RK_C[stage] * step, y_new, p, levers, origin, lv, aux,
                                     work, rows[3 + stage], False)   # k1..k5 (k0, k6 trade rows)
                        fraction = RK_C[stage]
                    else:   # the new point (first stage of the next step)
                        for i in range(n):
                            y_new[i] = y[i] + step * (B0 * k0[i] + B2 * k2[i] + B3 * k3[i]
                                                      + B4 * k4[i] + B5 * k5[i])
                        # the last stage ran at t + C5 step, most often t_new itself: then
                        # the market's terms in `work` are this time's (same levers), kept
                        fixed = work[WORK.terms_fixed]
                        if t + C5 * step == t_new:
                            work[WORK.terms_fixed] = flows.ALL_TERMS_FIXED
                        report = k_aux < aux_times.size and aux_times[k_aux] == t_new
                        _derivatives(t_new, y_new, p, levers, origin, lv, aux, work, k6, report)
                        work[WORK.terms_fixed] = fixed
                        fraction = 1.0
                    nfev += 1
                    change = _switch_seen(work, regime, fraction, change)
                    if change < 2.0 and step > SWITCH_STEP:
                        break
                if change < 2.0 and step > SWITCH_STEP:
                    # a switch inside a long step: rejected; the next attempt ends at the last
                    # stage before it, then short steps approach it (the cap doubles while none
                    # crosses it)
                    previous = 0.0
                    for c in (C1, C2, C3, C4, C5):
                        if c < change:
                            previous = c
                    cap = SWITCH_STEP
                    approach = previous * step if previous * step > SWITCH_STEP else 0.0
                    rejected += 1
                    continue
                regime_new = work[REGIME]
                total = 0.0
                for i in range(n):
                    err = step * (E0 * k0[i] + E2 * k2[i] + E3 * k3[i] + E4 * k4[i]
                                  + E5 * k5[i] + E6 * k6[i])
                    err /= atol[i] + max(abs(y[i]), abs(y_new[i])) * rtol
                    total += err * err
                norm = np.sqrt(total / n)
                if norm < 1.0:
                    factor = MAX_FACTOR if norm == 0.0 else \
                        min(MAX_FACTOR, SAFETY * norm ** ERROR_EXPONENT)
                    if step_rejected:
                        factor = min(1.0, factor)
                    h = min(step * factor, max_step)
                    if change < 2.0:
                        cap = np.inf       # the switch is crossed
                    elif approach > 0.0:
                        h = SWITCH_STEP    # at the last stage before it: capped steps on
                    elif cap < np.inf and step >= cap:
                        cap *= 2.0         # still approaching it
                    approach = 0.0
                    break
                if not norm >= 1.0:  # NaN: shrink as far as allowed
                    norm = 1e10
                h = step * max(MIN_FACTOR, SAFETY * norm ** ERROR_EXPONENT)
                step_rejected = True
                approach = 0.0
                rejected += 1
            steps += 1
            if report:   # this step's last evaluation reported the auxiliaries at t_new
                k_aux = _store_auxiliaries(aux, aux_columns, aux_out, k_aux, d)
            # dense output at the storage times inside (t, t_new]
            k_out = _store_dense(times, k_out, t, t_new, y, y_new, step, k0, k1, k2, k3, k4,
                                 k5, k6, 0, out, d, q, offset)
            k_series = _store_dense(series_times, k_series, t, t_new, y, y_new, step, k0, k1,
                                    k2, k3, k4, k5, k6, 0, series_out, d, q, offset)
            k_fiscal = _store_dense(fiscal_times, k_fiscal, t, t_new, y, y_new, step, k0, k1,
                                    k2, k3, k4, k5, k6, fiscal_first, fiscal_out, d, q, offset)
            t = t_new
            regime = regime_new
            y, y_new = y_new, y
            k0, k6 = k6, k0
    stats[d, 0], stats[d, 1], stats[d, 2] = nfev, steps, rejected
    return OK

@jit(parallel=True)
def _integrate_batch(y0, records, history, interventions, edges, edge_count, kinks, kink_count,
                     times, series_times, fiscal_times, fiscal_first, aux_times, aux_columns, rtol,
                     atol, max_step, out, series_out, fiscal_out, aux_out, stats, status):
    for d in prange(y0.shape[1]):
        status[d] = _integrate_draw(y0[:, d].copy(), records[d], d, history, interventions[d],
                                    edges[d, :edge_count[d]], kinks[d, :kink_count[d]], times,
                                    series_times, fiscal_times, fiscal_first, aux_times,
                                    aux_columns, rtol, atol[:, d].copy(), max_step[d], out,
                                    series_out, fiscal_out, aux_out, stats,
                                    _draw_buffers(y0.shape[0], history.shape[0], records[d]))

def draw_edges(edges: np.ndarray, levers: LeverSet, n_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment edges of every draw (yr): the shared `edges` plus the draw's own intervention start
    and end dates inside the window.  Returns edges (n_draws, width) padded with +inf, and counts.
    When every draw has the same dates (no intervention, or dates that do not vary by draw), the
    edges are worked out once and repeated."""
    extra = [np.broadcast_to(np.asarray(date, dtype=float), (n_draws,))
             for lever in levers.levers.values() if lever.start is not None
             for date in lever.kink_dates()]
    rows = 1 if all(np.all(dates == dates[0]) for dates in extra) else n_draws
    both = np.concatenate([np.broadcast_to(edges, (rows, edges.size)),
                           np.stack([dates[:rows] for dates in extra], axis=1) if extra
                           else np.empty((rows, 0))], axis=1)
    both = np.round(both, 10)
    both[(both < edges[0]) | (both > edges[-1])] = np.inf
    both.sort(axis=1)
    repeated = np.zeros_like(both, dtype=bool)
    repeated[:, 1:] = both[:, 1:] == both[:, :-1]
    both[repeated] = np.inf
    both.sort(axis=1)
    count = np.isfinite(both).sum(axis=1)
    return (np.ascontiguousarray(np.broadcast_to(both[:, :count.max()], (n_draws, count.max()))),
            np.ascontiguousarray(np.broadcast_to(count, (n_draws,))))


_VERIFIED = False


def _compiled_functions() -> list:
    """Every compiled function the engines use, callees before callers."""
    from sim.engine import batch
    model = [f for f in vars(flows).values() if isinstance(f, numba.core.registry.CPUDispatcher)]
    return model + [_interp, lever_value, fit_levers, _lever, _market_terms_at, _same_terms,
                    hold_market_terms, _is_kink, _start_piece, _derivatives, _stage_state,
                    _store_dense, _store_auxiliaries, _draw_buffers, _integrate_draw,
                    _integrate_batch, _derivatives_probe, batch.evaluate_draws,
                    batch._draw_auxiliaries, batch.auxiliaries_at_times, batch.initial_states,
                    batch.drain_rates, batch.work_arrays]


def verify_machine_code() -> None:
    """Check the compiled flows, as the kernel calls them, against `flows.evaluate` run as plain
    Python from the current source, once a process; recompile everything if they differ.

    numba's on-disk cache is keyed to each function's own file: constants taken from other modules
    (the state layout, lever order, population table, scipy's tableau) are frozen into cached
    machine code, so after an edit elsewhere it could be stale.  A mismatch at reference states
    triggers a recompilation from the current sources; a mismatch after that is an error.
    """
    global _VERIFIED
    if _VERIFIED or numba.config.DISABLE_JIT:
        return
    from sim.engine.batch import BatchModel
    params, levers = ModelParameters(), LeverSet.from_mapping({
        **{name: {"start": 2021.0, "ramp": 2.0, "level": 1.5, "mode": "scale"}
           for name in ("naloxone_kits", "interdiction_land")},
        "test_strips": {"start": 2021.0, "ramp": 2.0, "level": 1.5e6, "mode": "set"}})  # no history
    model = BatchModel(params, levers)
    y = model.initial_state(2010.0) * np.linspace(0.5, 40.0, N_STATE)[:, np.newaxis]
    plain = flows.evaluate.py_func

    def mismatch() -> float:
        worst = 0.0
        for t in (2012.0, 2015.3, 2022.0, 2030.0):
            expected, aux = np.empty(N_STATE), np.empty(N_AUX)
            plain(t, y[:, 0], model.records[0], model.lever_values(t)[0], expected, aux,
                  flows.work_array(model.records[0]), True)
            got = draw_derivatives(t, y, params, levers)[:, 0]
            batch_got = model.derivatives(t, y.ravel()).reshape(N_STATE, 1)[:, 0]
            for value in (got, batch_got):
                worst = max(worst, float(np.max(np.abs(value - expected)
                                                / np.maximum(np.abs(expected), 1e-12))))
        return worst

    if mismatch() > 1e-9:
        for dispatcher in _compiled_functions():
            dispatcher.recompile()
        if mismatch() > 1e-9:
            raise RuntimeError("sim.engine.kernel: compiled flows differ from sim.model.flows "
                               "run as Python; delete sim/**/__pycache__/*.nb* and report this")
    _VERIFIED = True


def integrate_batch(y0: np.ndarray, records: np.ndarray, levers: LeverSet, edges: np.ndarray,
                    kinks: np.ndarray, times: np.ndarray, series_times: np.ndarray,
                    series_rows: slice, fiscal_times: np.ndarray, fiscal_rows: slice,
                    aux_times: np.ndarray, aux_columns: np.ndarray, rtol: float,
                    atol: np.ndarray, max_step: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict, np.ndarray]:
    """Integrate every draw from y0 (n_state, n_draws), with parameters `records` (one per draw:
    `flows.parameter_records`), over the segments between `edges` (yr, plus each draw's own
    intervention dates), with steps of at most `max_step` (yr, per draw).  `kinks` (a subset of
    `edges`, with its first and last) are the dates where an input has a kink; the draw's
    intervention dates are kinks too.  An edge that is no kink (a calendar year, where the running totals restart) ends steps
    but starts no new piece of the inputs (`_integrate_draw`).

    Returns every state at `times` (yr), shape (n_state, n_draws, n_times); the states
    `series_rows` (leading rows) at `series_times` and `fiscal_rows` at `fiscal_times`, each
    (rows, n_draws, n_times); the reported auxiliaries at offsets `aux_columns`
    (`flows.AUX_LAYOUT`) at `aux_times` (a subset of `edges`), (n_times, n_columns, n_draws);
    statistics; and a failure code per draw (0 = ok).
    """
    verify_machine_code()
    n = y0.shape[1]
    assert series_rows.start == 0
    out = np.empty((N_STATE, n, times.size))  # each draw writes short contiguous runs
    series_out = np.empty((series_rows.stop, n, series_times.size))
    fiscal_out = np.empty((fiscal_rows.stop - fiscal_rows.start, n, fiscal_times.size))
    aux_times = np.asarray(aux_times, dtype=float)
    if not np.isin(aux_times, edges).all():
        raise ValueError(f"aux_times {np.setdiff1d(aux_times, edges)[:5]} are not segment edges")
    aux_out = np.empty((aux_times.size, len(aux_columns), n))
    kinks = np.asarray(kinks, dtype=float)
    if not (np.isin(kinks, edges).all() and kinks[0] == edges[0] and kinks[-1] == edges[-1]):
        raise ValueError(f"kinks {kinks[:5]}... are not edges from the first to the last")
    stats = np.zeros((n, 3), dtype=np.int64)
    status = np.zeros(n, dtype=np.int64)
    previous_chunk = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(PARALLEL_CHUNK)
    try:
        _integrate_batch(np.ascontiguousarray(y0), np.ascontiguousarray(records),
                         *lever_tables(levers, n),
                         *draw_edges(np.asarray(edges, dtype=float), levers, n),
                         *draw_edges(kinks, levers, n),
                         np.asarray(times, dtype=float), np.asarray(series_times, dtype=float),
                         np.asarray(fiscal_times, dtype=float), int(fiscal_rows.start),
                         aux_times, np.asarray(aux_columns, dtype=np.int64), float(rtol),
                         np.ascontiguousarray(atol), np.ascontiguousarray(max_step, dtype=float),
                         out, series_out, fiscal_out, aux_out, stats, status)
    finally:
        numba.set_parallel_chunksize(previous_chunk)
    summary = {"nfev": int(stats[:, 0].sum()), "steps_mean": float(stats[:, 1].mean()),
               "steps_max": int(stats[:, 1].max()), "rejected": int(stats[:, 2].sum()),
               "threads": numba.get_num_threads()}
    return out, series_out, fiscal_out, aux_out, summary, status


def draw_derivatives(t: float, y: np.ndarray, params: ModelParameters, levers: LeverSet) -> np.ndarray:
    """dy/dt of every draw as the kernel computes it, (n_state, n_draws) (for tests and checks)."""
    n = y.shape[1]
    records, (history, interventions) = flows.parameter_records(params), lever_tables(levers, n)
    records = np.broadcast_to(records, (n,))
    out = np.empty_like(y)
    fits = np.empty((len(LEVER_SPECS), LEVER_FIT_COLUMNS))
    lv, aux = np.empty(len(LEVER_SPECS)), np.empty(N_AUX)
    for d in range(n):
        column = np.empty(N_STATE)
        fit_levers(float(t), float(t), history, interventions[d], fits)
        _derivatives_probe(float(t), np.ascontiguousarray(y[:, d]), records[d], fits, float(t),
                           lv, aux, flows.work_array(records[d]), column)
        out[:, d] = column
    return out


@jit(fastmath=True)
def _derivatives_probe(t, y, p, fits, origin, lv, aux, work, dy):
    """`_derivatives` callable from Python (it is inlined everywhere else)."""
    _derivatives(t, y, p, fits, origin, lv, aux, work, dy, False)
