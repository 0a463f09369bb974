"""The posterior: sequential Monte Carlo from the declared priors, with ArviZ's convergence checks.

Hydra-free.  `sample_posterior` runs `chains` chains of `particles` particles each, all in one
batch per model evaluation, in `groups` independent groups (calibration.groups; chains of a group
share particles in their moves, chains of different groups never do).  Each chain starts from
draws of the declared priors of every sampled parameter (roles fit, subst and unc:
`sim.model.parameters`), never from the optimum, and moves to the posterior by likelihood
tempering (Del Moral, Doucet and Jasra 2006; the scheme of PyMC's `sample_smc`): the next
inverse temperature beta is the one at which the effective sample size of the importance weights
likelihood^(beta' - beta) is `ess_fraction` of the particles, particles are resampled
(systematic) and then moved by Metropolis steps in an unbounded space u (`Unbounded`: logit or
log of the fitting space z between the priors' bounds; the prior density carries both log
Jacobians), cycling an independent normal proposal with the chain's mean and covariance (PyMC's
IMH kernel), two random-walk steps with that covariance (scale adapted to an acceptance of
0.25), a jump (an independent proposal from a fixed mixture: every particle of the group at the
start of the stage, jittered by a quarter of their spread), a differential-evolution step (ter
Braak 2006: half the particles move along the difference of two particles of the group's other
half, which keeps the move exact, as emcee splits its walkers; a tenth with the full
difference), a subspace jump (the full difference of two such particles in 1 to SUBSPACE_MAX
coordinates only, DREAM's randomized subspace: a particle can cross to another mode of a few
parameters without the other coordinates' noise, which the full-vector moves cannot in ~80
dimensions), and a refresh of a few prior-role parameters from their priors, for
`min_moves`..`max_moves` moves a stage (until the particles no longer correlate with where the
stage started), and at least `final_moves` more at beta = 1.  Given `reference` draws (an
earlier posterior: calibration.reference_posterior), one more move proposes from an even mixture
of their normal approximation (REFERENCE_SCALE of their spread) and the independent move's
normal: exact like the others (the mixture's density enters the ratio), it lets particles reach
a region that tempering drains at intermediate temperatures, where a move between two regions is
accepted by their masses (docs/validation.md section 2); the particles still start from the
priors.  Where the data are silent a
parameter therefore keeps its prior.

Convergence (ArviZ): each chain's particles are treated as a chain of draws; rank-normalised
split R-hat across chains and bulk and tail ESS over all, per parameter.  With two or more groups
R-hat compares independent runs: groups that settle in different regions (which different seeds
did with one group, at R-hat < 1.02: docs/validation.md section 2) give R-hat above RHAT_MAX.  The
median log likelihood of each chain is logged at every stage, and at the posterior after every
FINAL_BLOCK moves with the R-hat and bulk ESS reached so far (how many final moves a run needs).

Log evidence: each chain's estimate of log Z = log of the likelihood's mean under the priors (the
product over stages of the mean importance weight, Del Moral et al. 2006; up to the likelihood's
constant), in the posterior's header.  Where groups end in different regions it says which holds
more of the posterior: a region whose chains' log Z is higher by d holds about e^d times the mass.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from sim.calibrate.fit import Problem, sample_prior
from sim.model.parameters import PRIOR_ROLES, ModelParameters

RHAT_MAX = 1.05       # convergence thresholds the posterior file is held to (header, tests)
ESS_BULK_MIN = 400
TARGET_ACCEPTANCE = 0.25   # of the random-walk moves: the proposal scale adapts towards it
IMH_INFLATION = 1.1        # spread of the independent proposal relative to the particles'
REFERENCE_SCALE = 0.7      # spread of the reference proposal relative to the reference draws'
JITTER = 0.25              # sd of a jump around a particle, relative to the pooled spread
DE_JUMP = 0.1              # share of differential-evolution moves with the full difference (mode jumps)
SUBSPACE_MAX = 3           # coordinates a subspace jump moves (1 to this many, uniformly)
REFRESH_BLOCK = 2          # prior-role parameters drawn afresh from their priors per refresh move
FINAL_BLOCK = 36           # moves at the posterior between two convergence reports
CORRELATION_MAX = 0.05     # moves go on until particles correlate less than this with their start
_correlation_left = float("nan")


def _correlation(start: np.ndarray, now: np.ndarray) -> float:
    """Mean over chains and parameters of the correlation between particles' positions at the
    start of the moves and now (chain, particle, parameter); 0 for a parameter that is constant."""
    global _correlation_left
    a = start - start.mean(axis=1, keepdims=True)
    b = now - now.mean(axis=1, keepdims=True)
    denom = np.sqrt(np.sum(a ** 2, axis=1) * np.sum(b ** 2, axis=1))
    r = np.where(denom > 0, np.sum(a * b, axis=1) / np.where(denom > 0, denom, 1.0), 0.0)
    _correlation_left = float(np.mean(r))
    return _correlation_left


@dataclass
class Posterior:
    """Draws (parameter units) in chain order, their log posterior, and diagnostics."""

    names: list[str]
    draws: np.ndarray          # (chains x particles, k), parameter units
    log_prob: np.ndarray       # (chains x particles,)
    chains: int
    seconds: float
    seed: int
    info: dict[str, Any]
    diagnostics: dict[str, dict[str, float]]   # name -> r_hat, ess_bulk, ess_tail

    @property
    def r_hat_max(self) -> float:
        return r_hat_max(self.diagnostics)

    @property
    def ess_bulk_min(self) -> float:
        return ess_bulk_min(self.diagnostics)

    @property
    def converged(self) -> bool:
        return self.r_hat_max < RHAT_MAX and self.ess_bulk_min >= ESS_BULK_MIN


def r_hat_max(diagnostics: Mapping[str, Mapping[str, float]]) -> float:
    """The largest R-hat over the parameters of `convergence`'s result."""
    return max(d["r_hat"] for d in diagnostics.values())


def ess_bulk_min(diagnostics: Mapping[str, Mapping[str, float]]) -> float:
    """The smallest bulk ESS over the parameters of `convergence`'s result."""
    return min(d["ess_bulk"] for d in diagnostics.values())


def convergence(draws: np.ndarray, chains: int, names: list[str]) -> dict[str, dict[str, float]]:
    """ArviZ's rank-normalised R-hat and bulk/tail ESS of each column of `draws` (rows in chain
    order, `chains` equal chains)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # ArviZ announces its refactor on import
        import arviz as az
    per_chain = draws.reshape(chains, -1, draws.shape[1])
    out = {}
    for i, name in enumerate(names):
        x = per_chain[:, :, i]
        out[name] = {"r_hat": float(az.rhat(x, method="rank")),
                     "ess_bulk": float(az.ess(x, method="bulk")),
                     "ess_tail": float(az.ess(x, method="tail"))}
    return out


class Unbounded:
    """The map between the fitting space z (bounded by the priors' support) and an unbounded u the
    particles move in: z = lo + (hi - lo) expit(u) between two finite bounds, lo + exp(u) or
    hi - exp(u) with one, z = u with none; `log_jacobian` is log |dz/du|."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo, self.hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
        fin_lo, fin_hi = np.isfinite(self.lo), np.isfinite(self.hi)
        self.both, self.lower, self.upper = fin_lo & fin_hi, fin_lo & ~fin_hi, ~fin_lo & fin_hi
        self.width = np.where(self.both, self.hi - self.lo, 1.0)

    def z(self, u: np.ndarray) -> np.ndarray:
        from scipy.special import expit
        z = np.array(u, dtype=float)
        b, lw, up = self.both, self.lower, self.upper
        z[..., b] = self.lo[b] + self.width[b] * expit(u[..., b])
        z[..., lw] = self.lo[lw] + np.exp(u[..., lw])
        z[..., up] = self.hi[up] - np.exp(u[..., up])
        return z

    def u(self, z: np.ndarray) -> np.ndarray:
        from scipy.special import logit
        u = np.array(z, dtype=float)
        b, lw, up = self.both, self.lower, self.upper
        with np.errstate(divide="ignore"):
            u[..., b] = logit((z[..., b] - self.lo[b]) / self.width[b])
            u[..., lw] = np.log(z[..., lw] - self.lo[lw])
            u[..., up] = np.log(self.hi[up] - z[..., up])
        return np.clip(u, -40.0, 40.0)

    def log_jacobian(self, u: np.ndarray) -> np.ndarray:
        from scipy.special import log_expit
        b, one = self.both, self.lower | self.upper
        return (np.sum(np.log(self.width[b]) + log_expit(u[..., b]) + log_expit(-u[..., b]), axis=-1)
                + np.sum(u[..., one], axis=-1))


def _next_beta(loglik: np.ndarray, beta: float, fraction: float = 0.5) -> float:
    """The inverse temperature after `beta` at which the ESS of the weights is `fraction` of the
    particles."""
    n = loglik.size
    if beta >= 1.0:
        return 1.0

    def ess(b: float) -> float:
        w = (b - beta) * loglik
        w = np.exp(w - np.max(w))
        return float(w.sum() ** 2 / np.sum(w ** 2))
    if ess(1.0) >= fraction * n:
        return 1.0
    lo, hi = beta, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ess(mid) >= fraction * n else (lo, mid)
    return max(lo, beta + 1e-12)


def _systematic(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a systematic resampling by normalised `weights` (parents in order)."""
    n = weights.size
    positions = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights), positions), n - 1)


def reference_points(problem: Problem, names: list[str], values: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Reference draws (rows of `values`, parameter units, columns `names`) as points z of
    `problem` (n, k): a free parameter the reference lacks is drawn from its prior."""
    z = sample_prior(problem, values.shape[0], rng)
    for i, f in enumerate(problem.free):
        if f.name in names:
            z[:, i] = f.to_z(np.clip(values[:, names.index(f.name)], f.lo, f.hi))
    return z


def sample_posterior(problem: Problem, opts: Mapping[str, Any],
                     progress: Callable[[str], None] = print,
                     reference: np.ndarray | None = None) -> Posterior:
    """Sequential Monte Carlo over every free parameter of `problem` (see the module doc);
    deterministic by `opts['seed']`.  `reference` (points z, (m, k); `reference_points`): draws
    of an earlier posterior, whose normal approximation becomes one more independent proposal
    (never a starting point)."""
    seed = int(opts["seed"])
    chains, n = int(opts["chains"]), int(opts["particles"])
    min_moves, max_moves, final_moves = (int(opts[k]) for k in
                                         ("min_moves", "max_moves", "final_moves"))
    ess_fraction = float(opts["ess_fraction"])
    n_groups = int(opts["groups"])   # a divisor of chains (`CalibrationOptions` checks it)
    group_of = np.arange(chains) * n_groups // chains   # chains of a group share particles
    rng = np.random.default_rng([seed, 2])
    k = len(problem.free)
    bounds = Unbounded(problem.z_lo, problem.z_hi)
    lo, hi = np.full(k, -np.inf), np.full(k, np.inf)
    started = time.perf_counter()
    # the particles move in u, unbounded (`Unbounded`); z = bounds.z(u) is the fitting space
    z = bounds.u(sample_prior(problem, chains * n, rng)).reshape(chains, n, k)

    def evaluate(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log likelihood and log prior density in u (the prior in z times |dz/du|)."""
        flat = bounds.z(points.reshape(-1, k))
        lp = problem.log_prior(flat) + bounds.log_jacobian(points.reshape(-1, k))
        ll = np.full(flat.shape[0], -np.inf)
        inside = np.isfinite(lp)
        if inside.any():
            ll[inside] = problem.log_likelihood(flat[inside])
        return ll.reshape(points.shape[:-1]), lp.reshape(points.shape[:-1])

    loglik, logprior = evaluate(z)
    prior_block = np.array([i for i, name in enumerate(problem.names)
                            if ModelParameters.metadata(name)["role"] in PRIOR_ROLES], dtype=int)
    beta = np.zeros(chains)
    log_evidence = np.zeros(chains)   # log of the likelihood's mean under the prior (module doc)
    scale = np.full(chains, 2.38 / np.sqrt(k))
    stage, evaluations, moves_done = 0, 1, 0

    kinds = ["jump", "random walk", "differential evolution", "random walk", "subspace jump"] + (
        ["prior refresh"] if prior_block.size else []) + ["independent"]
    if n < 4:
        kinds = [kind for kind in kinds if kind not in ("differential evolution", "subspace jump")]
    if reference is not None:   # a fixed normal in u: REFERENCE_SCALE of the reference's spread
        kinds.append("reference")
        ref_u = bounds.u(np.asarray(reference, dtype=float))
        ref_u = ref_u[np.all(np.isfinite(ref_u), axis=1)]   # rows inside the priors' support
        ref_mean = np.broadcast_to(ref_u.mean(axis=0), (chains, k))
        ref_chol = np.broadcast_to(np.linalg.cholesky(
            REFERENCE_SCALE ** 2 * np.cov(ref_u, rowvar=False) + 1e-10 * np.eye(k)), (chains, k, k))

    def log_det(chol: np.ndarray) -> np.ndarray:
        """log sqrt(det) of each chain's covariance from its Cholesky factor, (chains, 1)."""
        return np.sum(np.log(np.abs(np.diagonal(chol, axis1=1, axis2=2))), axis=1)[:, None]
    ref_log_det = log_det(ref_chol) if reference is not None else 0.0
    acceptance_of = {kind: float("nan") for kind in kinds}

    def normal_proposal(mean: np.ndarray, chol: np.ndarray, dim: int = k) -> np.ndarray:
        """Draws (chains, n, dim) of normals with per-chain mean and Cholesky factor."""
        return mean[:, None, :] + np.einsum("cij,cnj->cni", chol,
                                            rng.standard_normal((chains, n, dim)))

    def normal_log_density(points: np.ndarray, mean: np.ndarray, chol: np.ndarray) -> np.ndarray:
        """Log density (up to a constant) of those normals at `points` (chains, n, dim)."""
        white = np.stack([np.linalg.solve(chol[c], (points[c] - mean[c]).T).T
                          for c in range(chains)])
        return -0.5 * np.sum(white ** 2, axis=-1)

    def move(min_steps: int, max_steps: int, cycle: list[str] = kinds) -> tuple[np.ndarray, int]:
        """Metropolis moves of every particle at its chain's beta, cycling `cycle` (by default
        every move of `kinds`, the module doc): the jump, random walks, differential evolution and the subspace jump (half the
        particles at a time, along differences of two of the other half of their group), the
        prior refresh of REFRESH_BLOCK prior-role parameters (accepted by the likelihood ratio
        alone: where the data are silent, almost always) and the independent proposal; until
        the particles' correlation with where they started falls below CORRELATION_MAX (at
        least min_steps, at most max_steps)."""
        nonlocal z, loglik, logprior, evaluations, scale
        chol = np.stack([np.linalg.cholesky(np.cov(z[c], rowvar=False)
                                            + 1e-10 * np.eye(k)) for c in range(chains)])
        mean = z.mean(axis=1)
        # a fixed mixture proposal for the stage: every particle of the chain's group, jittered
        # by JITTER of their spread
        groups = np.stack([z[group_of == g].reshape(-1, k) for g in range(n_groups)])
        pooled = np.stack([np.linalg.cholesky(np.cov(g, rowvar=False) + 1e-10 * np.eye(k))
                           for g in groups])
        white_components = [np.linalg.solve(pooled[g], groups[g].T).T for g in range(len(groups))]

        def log_mixture(points: np.ndarray) -> np.ndarray:
            """Log density (up to a constant) of the mixture proposal at points (chains, n, k)."""
            out = np.empty(points.shape[:-1])
            for c in range(chains):
                g = group_of[c]
                white = np.linalg.solve(pooled[g], points[c].T).T
                d2 = (np.sum(white ** 2, axis=1)[:, None]
                      + np.sum(white_components[g] ** 2, axis=1)[None]
                      - 2.0 * white @ white_components[g].T)
                out[c] = logsumexp(-0.5 * d2 / JITTER ** 2, axis=1)
            return out
        def reference_mixture(points: np.ndarray) -> np.ndarray:
            """Log density (up to a constant) of the reference move's proposal: an even
            mixture of the reference normal and the independent move's normal (so that a
            particle outside the reference's region can leave it: a move between two regions
            is then accepted by their masses, not their peak densities)."""
            return np.logaddexp(normal_log_density(points, ref_mean, ref_chol) - ref_log_det,
                                normal_log_density(points, mean, IMH_INFLATION * chol)
                                - log_det(IMH_INFLATION * chol))
        start = z.copy()
        accepted = np.zeros(chains)
        steps = 0
        while steps < max_steps:
            kind = cycle[steps % len(cycle)]
            active = np.ones((chains, n), dtype=bool)
            if kind in ("differential evolution", "subspace jump"):   # half the particles move
                phase = steps // len(cycle) % 2    # along differences of two of the other half's
                # particles in their group (emcee's split)
                gamma = np.where(rng.random((chains, n, 1)) < DE_JUMP, 1.0, 2.38 / np.sqrt(2 * k))
                active = np.broadcast_to(np.arange(n) % 2 == phase, (chains, n)).copy()
                pool = np.stack([z[group_of == g][:, np.arange(n) % 2 != phase].reshape(-1, k)
                                 for g in range(n_groups)])   # the other half, by group
                m = pool.shape[1]
                a = rng.integers(0, m, (chains, n))
                b = (a + rng.integers(1, m, (chains, n))) % m
                diff = pool[group_of[:, None], a] - pool[group_of[:, None], b]
                if kind == "subspace jump":        # the full difference in a few coordinates
                    gamma = 1.0                    # (DREAM's subspace sampling): mode to mode
                    pick = rng.random((chains, n, k)).argsort(axis=-1) < rng.integers(
                        1, SUBSPACE_MAX + 1, (chains, n, 1))
                    diff = np.where(pick, diff, 0.0)
                proposal = z + gamma * diff + 1e-6 * rng.standard_normal(z.shape)
                proposal[~active] = z[~active]
            elif kind == "independent":
                proposal = normal_proposal(mean, IMH_INFLATION * chol)
            elif kind == "reference":   # half from the reference, half from the chain's normal
                pick = rng.random((chains, n, 1)) < 0.5
                proposal = np.where(pick, normal_proposal(ref_mean, ref_chol),
                                    normal_proposal(mean, IMH_INFLATION * chol))
            elif kind == "jump":
                size = groups.shape[1]
                pick = rng.integers(0, size, (chains, n))
                g = group_of
                proposal = groups[g[:, None], pick] + JITTER * np.einsum(
                    "cij,cnj->cni", pooled[g], rng.standard_normal((chains, n, k)))
            elif kind == "prior refresh":
                pick = rng.choice(prior_block, size=min(REFRESH_BLOCK, prior_block.size),
                                  replace=False)
                proposal = z.copy()
                proposal[:, :, pick] = bounds.u(sample_prior(problem, chains * n, rng)).reshape(
                    chains, n, k)[:, :, pick]
            else:
                step = np.einsum("cij,cnj->cni", chol, rng.standard_normal((chains, n, k)))
                proposal = z + scale[:, None, None] * step
            outside = np.any((proposal < lo) | (proposal > hi), axis=-1) | ~active
            proposal[outside] = z[outside]
            ll_new, lp_new = loglik.copy(), logprior.copy()
            ll_new[active], lp_new[active] = evaluate(proposal[active])
            evaluations += 1
            with np.errstate(invalid="ignore"):
                log_ratio = beta[:, None] * (ll_new - loglik)
                if kind != "prior refresh":   # a prior proposal's density cancels the prior's
                    log_ratio += lp_new - logprior
                if kind == "independent":
                    log_ratio += (normal_log_density(z, mean, IMH_INFLATION * chol)
                                  - normal_log_density(proposal, mean, IMH_INFLATION * chol))
                if kind == "jump":
                    log_ratio += log_mixture(z) - log_mixture(proposal)
                if kind == "reference":
                    log_ratio += reference_mixture(z) - reference_mixture(proposal)
            accept = (~outside) & (np.log(rng.random((chains, n))) < log_ratio)
            z = np.where(accept[..., None], proposal, z)
            loglik = np.where(accept, ll_new, loglik)
            logprior = np.where(accept, lp_new, logprior)
            if kind == "random walk":
                accepted += accept.mean(axis=1)
                scale *= np.exp(0.5 * (accept.mean(axis=1) - TARGET_ACCEPTANCE))
            acceptance_of[kind] = float(accept.mean())
            steps += 1
            if steps >= min_steps and _correlation(start, z) < CORRELATION_MAX:
                break
        walks = sum(1 for i in range(steps) if cycle[i % len(cycle)] == "random walk")
        return accepted / max(walks, 1), steps

    while np.any(beta < 1.0):
        stage += 1
        for c in range(chains):
            if beta[c] >= 1.0:
                continue
            new = _next_beta(loglik[c], beta[c], ess_fraction)
            w = (new - beta[c]) * loglik[c]
            log_evidence[c] += logsumexp(w) - np.log(n)
            w = np.exp(w - np.max(w))
            parents = _systematic(w / w.sum(), rng)
            z[c], loglik[c], logprior[c] = z[c][parents], loglik[c][parents], logprior[c][parents]
            beta[c] = new
        acceptance, steps = move(min_moves, max_moves)
        moves_done += steps
        progress(f"smc stage {stage}: beta {', '.join(f'{b:.3g}' for b in beta)}; {steps} moves "
                 f"(acceptance: {', '.join(f'{k} {v:.2f}' for k, v in acceptance_of.items())}; "
                 f"correlation left "
                 f"{_correlation_left:.2f}); median log likelihood by chain "
                 f"{', '.join(f'{v:.1f}' for v in np.median(loglik, axis=1))}; "
                 f"{evaluations} batches of {chains * n} draws, "
                 f"{time.perf_counter() - started:.0f} s")
    # at least final_moves more at the posterior, in blocks of FINAL_BLOCK (the proposals
    # adapted between blocks), with R-hat and bulk ESS logged after each block; without the
    # jump, which is not exact: its mixture holds the moving particle's own start, on which a
    # particle that has not moved since sits, so it leaves for worse points too readily
    # (docs/validation.md section 2)
    final_kinds = [kind for kind in kinds if kind != "jump"]
    remaining = final_moves
    while True:
        block = min(remaining, FINAL_BLOCK)
        last = remaining <= FINAL_BLOCK
        acceptance, steps = move(block, max(block, max_moves) if last else block, final_kinds)
        moves_done += steps
        remaining -= steps
        draws_z = bounds.z(z.reshape(-1, k))
        diagnostics = convergence(draws_z, chains, problem.names)
        progress(f"smc at the posterior: {moves_done} moves; R-hat max "
                 f"{r_hat_max(diagnostics):.3f}, bulk ESS min "
                 f"{ess_bulk_min(diagnostics):.0f}; median log likelihood by "
                 f"chain {', '.join(f'{v:.1f}' for v in np.median(loglik, axis=1))}; "
                 f"{time.perf_counter() - started:.0f} s")
        if last:
            break
    values = problem.values(draws_z)
    draws = np.column_stack([values[name] for name in problem.names])
    seconds = time.perf_counter() - started
    post = Posterior(problem.names, draws, (loglik + logprior).reshape(-1), chains, seconds, seed,
                     {"sampler": "sequential Monte Carlo, likelihood tempering from the priors",
                      "chains": chains, "independent groups of chains": n_groups,
                      "particles per chain": n, "ess fraction per stage": ess_fraction,
                      "stages": stage, "reference proposal": reference is not None,
                      "moves": moves_done, "final acceptance": round(float(np.mean(acceptance)), 3),
                      "batches": evaluations, "failed draws": problem.n_failed,
                      "log evidence by chain": [round(float(v), 2) for v in log_evidence]},
                 diagnostics)
    progress(f"smc done: {stage} stages, {evaluations} batches, {seconds:.0f} s; R-hat max "
             f"{post.r_hat_max:.3f}, bulk ESS min {post.ess_bulk_min:.0f}"
             f" ({'converged' if post.converged else 'NOT converged'}: R-hat < {RHAT_MAX}, "
             f"bulk ESS >= {ESS_BULK_MIN}); log evidence by chain "
             f"{', '.join(f'{v:.1f}' for v in log_evidence)}")
    by_group = np.array([log_evidence[group_of == g].mean() for g in range(n_groups)])
    if n_groups > 1 and post.r_hat_max >= RHAT_MAX:
        best = int(np.argmax(by_group))
        gap = float(by_group[best] - np.delete(by_group, best).max())
        progress(f"the groups disagree: mean log evidence by group "
                 f"{', '.join(f'{v:.1f}' for v in by_group)}; group {best + 1}'s region holds "
                 f"about e^{gap:.1f} times the posterior mass of the next (the draws weight the "
                 f"groups equally: docs/validation.md section 2)")
    return post
