"""Regression baseline: the model's outputs for a fixed set of runs, stored in tests/reference/.

Cases: the calibrated baseline (one draw), a 200-draw posterior ensemble, and every cell of the
headline experiment (experiments/supply_vs_demand.yaml: 8 scenarios x intensities 0.5, 1, 2 plus
baseline, 20 posterior draws, to 2035: the headline window 2026-2035).  Each case is composed with Hydra exactly as `fentsim`
composes it and run through `sim.cli.main.prepare_job` and `sim.simulate`, without writing files.

`tests/test_reference.py` reruns the cases and compares them with the stored values.  After a
deliberate change of the model's behaviour, regenerate the file and commit it with the change:

    .venv/bin/python -m tests.reference_cases --update
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from sim import paths, simulate
from sim.cli.main import prepare_job, plain_config

REFERENCE_FILE = Path(__file__).resolve().parent / "reference" / "model_outputs.npz"
VARIABLES = ("deaths_synthetic", "deaths_fentanyl", "deaths_heroin", "deaths_overdose",
             "seizures_fy", "arrivals")
HEADLINE_SCENARIOS = ("china_crackdown", "interdiction_surge", "naloxone_up", "test_strips_up",
                      "moud_up", "supply_side", "demand_side", "both")
HEADLINE = ["ensemble=posterior", "ensemble.size=20", "solver.end_year=2035"]


def cases() -> dict[str, list[str]]:
    """Case name -> Hydra overrides."""
    out = {"baseline": [], "posterior_200": ["ensemble=posterior", "ensemble.size=200"],
           "headline/baseline": HEADLINE + ["scenario=baseline"]}
    for scenario in HEADLINE_SCENARIOS:
        for k in ("0.5", "1", "2"):
            out[f"headline/{scenario}/{k}"] = HEADLINE + [f"scenario={scenario}",
                                                          f"scenario.intensity={k}"]
    return out


def run_case(overrides: list[str]) -> dict[str, np.ndarray]:
    """The stored variables of one case (annual values, as arrays)."""
    with initialize_config_dir(config_dir=str(paths.CONFIG_DIR), version_base="1.3"):
        cfg = plain_config(compose(config_name="config", overrides=overrides))
    cfg.pop("hydra", None)
    _, run, params, seed = prepare_job(cfg)
    ds = simulate(params, run.levers, run.solver, config=cfg, seed=seed)
    return {name: ds[name].values for name in VARIABLES}


def compute(names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every case (or those named), flattened to 'case:variable' keys."""
    out = {}
    for case, overrides in cases().items():
        if names is None or case in names:
            for var, values in run_case(overrides).items():
                out[f"{case}:{var}"] = values
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the stored reference")
    args = parser.parse_args(argv)
    if not args.update:
        parser.print_help()
        sys.exit(2)
    values = compute()
    REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE_FILE, **values)
    print(f"wrote {len(values)} arrays to {REFERENCE_FILE}")


if __name__ == "__main__":
    main()
