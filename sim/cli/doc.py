"""The model's documentation as text: stocks, flows, parameters and levers with units and sources.

Run as `fentsim-doc` (or `python -m sim.cli.doc`).
"""

from __future__ import annotations

import inspect
from dataclasses import fields

from sim.model import flows as model
from sim.model.levers import LEVER_SPECS
from sim.model.parameters import ModelParameters
from sim.results.dataset import OUTPUT_VARIABLES
from sim.model.state import CHANNELS, STOCKS

FLOW_FUNCTIONS = ("us_population", "seizure_probability", "covid_risk", "pharma_fentanyl_deaths",
                  "initiation_path", "pill_share", "heroin_base_cost", "delivered_cost",
                  "logistic_growth", "nested_logit_shares", "market", "demand",
                  "treatment_entries", "product_shares", "naloxone_probability", "rescue_factor",
                  "test_strip_factor", "overdose_hazards", "evaluate", "initial_state")


def model_doc() -> str:
    """Markdown tables of every stock, flow, parameter, lever and output variable."""
    out = ["# fentsim model reference", "", "## Stocks", "",
           "| stock | dims | units | meaning |", "|---|---|---|---|"]
    out += [f"| {s.name} | {', '.join(s.dims) or '-'} | {s.units} | {s.doc} |" for s in STOCKS]
    out += ["", "## Flows and auxiliaries (sim/model/flows.py, one draw; every engine evaluates these)", "", "| function | definition |", "|---|---|"]
    for name in FLOW_FUNCTIONS:
        doc = inspect.getdoc(getattr(model, name)) or ""
        out.append(f"| {name} | {' '.join(doc.split())} |")
    out += ["", "## Supply channels", "", "| channel | source | form | route | meaning |",
            "|---|---|---|---|---|"]
    out += [f"| {c.name} | {c.source} | {c.form} | {c.route} | {c.doc} |" for c in CHANNELS]
    out += ["", "## Parameters", "",
            "Roles: fixed (literature constant), fit (calibrated; in the posterior), subst "
            "(substitution constant no 2010-2021 series identifies: sampled with its prior in every "
            "posterior), unc (other uncertainty, sampled with its prior).", "",
            "| parameter | default | units | bounds | role | prior | meaning and evidence |",
            "|---|---|---|---|---|---|---|"]
    for f in fields(ModelParameters):
        m = f.metadata
        prior = m.get("prior", ("fixed",))
        prior_text = prior[0] if len(prior) == 1 else f"{prior[0]}({', '.join(f'{v:g}' for v in prior[1:])})"
        out.append(f"| {f.name} | {f.default:g} | {m['units']} | [{m['bounds'][0]:g}, "
                   f"{m['bounds'][1]:g}] | {m.get('role', 'fixed')} | {prior_text} | {m['doc']} |")
    out += ["", "## Levers (historical path; interventions set start, ramp, level, mode)", "",
            "| lever | units | bounds | history (year: value) | meaning | source |",
            "|---|---|---|---|---|---|"]
    for spec in LEVER_SPECS.values():
        hist = ", ".join(f"{y:g}: {v:g}" for y, v in spec.history)
        out.append(f"| {spec.name} | {spec.units} | [{spec.bounds[0]:g}, {spec.bounds[1]:g}] | "
                   f"{hist} | {spec.doc} | {spec.source} |")
    out += ["", "## Output variables", "", "| variable | units | meaning |", "|---|---|---|"]
    out += [f"| {k} | {u} | {d} |" for k, (u, d) in OUTPUT_VARIABLES.items()]
    return "\n".join(out) + "\n"


def main() -> None:
    """Print the model reference."""
    print(model_doc(), end="")


if __name__ == "__main__":
    main()
