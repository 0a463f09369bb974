"""Figure of a calibrated baseline against its targets (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sim.model.levers import LeverSet  # noqa: E402
from sim.model.flows import us_population_at  # noqa: E402
from sim.model.parameters import ModelParameters  # noqa: E402
from sim.engine.solver import SolverSettings, integrate  # noqa: E402
from sim.model.state import SOURCES  # noqa: E402
from sim.calibrate.targets import TargetSet, model_outputs  # noqa: E402

PANELS = (("deaths_synthetic", "synthetic-opioid deaths (deaths/yr)"),
          ("deaths_fentanyl", "fentanyl-involved deaths (deaths/yr)"),
          ("death_rate_heroin", "heroin death rate (per 100,000/yr)"),
          ("seizures_product", "CBP seizures (gross weight), fiscal year (kg/yr)"))


def plot_fit(params: ModelParameters, levers: LeverSet, settings: SolverSettings,
             targets: TargetSet, path: Path, window: tuple[int, int] = (2010, 2020)) -> Path:
    """Model (lines) against target figures (points, with acceptance ranges) over `window`; PNG."""
    plot_settings = SolverSettings(**{**settings.__dict__, "end_year": max(window[1],
                                                                           targets.last_year)})
    traj = integrate(params, levers, plot_settings)
    out = model_outputs(traj, params, plot_settings, levers)
    years = plot_settings.years
    keep = (years >= window[0]) & (years <= window[1])
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    axes = axes.ravel()
    for ax, (name, title) in zip(axes, PANELS):
        ax.plot(years[keep], out[name][0, keep], "-", color="C0", label="model")
        ax.set_title(title, fontsize=10)
        ax.axvline(targets.fit_end_year + 0.5, color="grey", lw=0.8, ls=":")
        if name == "seizures_product":
            ax.set_yscale("log")
    pop = us_population_at(np.asarray(years, dtype=float) + 0.5)
    for t in targets.targets:
        if t.kind in ("largest_source", "positive_share"):
            continue
        lo, hi = t.tolerance or (np.nan, np.nan)
        if t.kind == "rate":  # shown as deaths (crude rate x population)
            y = t.years[0]
            f = pop[list(years).index(y)] / 1e5
            axes[0].errorbar([y], [t.value * f], yerr=[[t.value * f - lo * f], [hi * f - t.value * f]],
                             fmt="s", color="C3", capsize=3)
        elif t.kind == "count" and t.output in ("deaths_synthetic", "deaths_fentanyl"):
            ax = axes[0 if t.output == "deaths_synthetic" else 1]
            ax.errorbar([t.years[0]], [t.value], yerr=None if t.tolerance is None else
                        [[t.value - lo], [hi - t.value]], fmt="o", color="C3", capsize=3)
        elif t.kind == "fy_total":
            axes[3].errorbar([t.years[0]], [t.value], yerr=None if t.tolerance is None else
                             [[t.value - lo], [hi - t.value]], fmt="o", color="C3", capsize=3)
        elif t.kind == "count" and t.output == "deaths_heroin":
            y = t.years[0]
            f = pop[list(years).index(y)] / 1e5
            axes[2].plot([y], [t.value / f], "o", color="C3")
    # ratio targets: panel of model ratios against the target ranges
    ax = axes[4]
    labels, model_vals, obs, lows, highs = [], [], [], [], []
    col = {int(y): i for i, y in enumerate(years)}
    for t in targets.targets:
        if t.kind != "ratio":
            continue
        series = out[t.output][0]
        for a, b in zip(t.years[:-1], t.years[1:]):
            labels.append(f"{t.output.replace('death_rate_', 'rate ').replace('deaths_', '')}\n{b}/{a}")
            model_vals.append(series[col[b]] / series[col[a]])
            obs.append(t.value)
            lo, hi = t.tolerance or (t.value, t.value)
            lows.append(lo)
            highs.append(hi)
    x = np.arange(len(labels))
    if labels:
        ax.bar(x, np.array(highs) - np.array(lows), bottom=lows, color="C3", alpha=0.25,
               label="acceptance range")
        ax.plot(x, obs, "_", color="C3", ms=20, label="figure")
        ax.plot(x, model_vals, "o", color="C0", label="model")
        ax.set_xticks(x, labels, fontsize=7)
        ax.legend(fontsize=8)
    ax.set_title("year-over-year ratios (1)", fontsize=10)
    ax = axes[5]
    for k, s in enumerate(SOURCES):
        ax.plot(years[keep], out["supply_share"][k, 0, keep], label=s)
    ax.set_title("share of fentanyl arriving in the US, by source (1)", fontsize=10)
    ax.legend(fontsize=8)
    axes[0].plot([], [], "o", color="C3", label="target (acceptance range)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"fentsim calibrated baseline vs targets ({targets.name}); dotted line: end of "
                 f"fitting data", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --- posterior predictive coverage ---------------------------------------------------------------

INTERVAL = (0.05, 0.95)


def row_samples(problem: Any, draws: np.ndarray) -> tuple[list[str], list[Any], np.ndarray,
                                                          np.ndarray, np.ndarray]:
    """Per target row of `problem` (a fit.Problem) over `draws` (n, k; parameter units of
    problem.names): labels, targets, log(model / observed) (n, m), model-error sd (n, m) and
    measurement sigma (m,)."""
    z = np.column_stack([f.to_z(draws[:, i]) for i, f in enumerate(problem.free)])
    r = problem.target_residuals(z)                    # log(model / observed) / sigma
    sigma, _ = problem.row_errors()
    pairs = [(t, label) for t in problem.targets.targets for label in t.row_labels()]
    return ([p[1] for p in pairs], [p[0] for p in pairs], r * sigma, problem.taus(z), sigma)


def predictive_coverage(problem: Any, draws: np.ndarray, seed: int = 0) -> list[dict[str, Any]]:
    """Coverage of every public-series figure of `problem` (a fit.Problem) by the posterior:
    `draws` (n, k) in parameter units of problem.names.  Per figure: the observed value, the
    median and 90% interval of the model over the draws (parameter uncertainty alone), of the
    model with its model error (what `<variable>_predictive` carries), and of an observation
    (model error and the figure's measurement error: the likelihood's predictive)."""
    labels, targets, log_model, tau, sigma = row_samples(problem, draws)
    noise = np.random.default_rng(seed).standard_normal(log_model.shape)
    rows = []
    for j, (target, label) in enumerate(zip(targets, labels)):
        if target.series is None:
            continue
        bands = {}
        for key, spread in (("model", 0.0), ("model_error", tau[:, j]),
                            ("observation", np.sqrt(tau[:, j] ** 2 + sigma[j] ** 2))):
            sample = target.value * np.exp(log_model[:, j] + spread * noise[:, j])
            low, median, high = np.quantile(sample, [INTERVAL[0], 0.5, INTERVAL[1]])
            bands[key] = (float(low), float(median), float(high))
        rows.append({"label": label, "series": target.series, "year": target.years[-1],
                     "observed": target.value, "units": target.units, **{
                         f"{key}_{part}": value for key, band in bands.items()
                         for part, value in zip(("low", "median", "high"), band)},
                     **{f"{key}_covered": bool(band[0] <= target.value <= band[2])
                        for key, band in bands.items()}})
    return rows


def coverage_summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Share of figures inside each 90% band (model, model_error, observation)."""
    return {key: float(np.mean([r[f"{key}_covered"] for r in rows])) if rows else float("nan")
            for key in ("model", "model_error", "observation")}
