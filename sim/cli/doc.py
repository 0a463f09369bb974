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
from sim.model.state import STOCKS

FLOW_FUNCTIONS = ("us_population", "fentanyl_share", "capacity_change", "mail_fraction",
                  "interdiction_index", "seizure_probability", "transit_time",
                  "retail_consumption", "initiation", "treatment_entries", "naloxone_probability",
                  "rescue_factor", "test_strip_factor", "overdose_rates", "heroin_involved",
                  "evaluate", "initial_state")


def model_doc() -> str:
    """Markdown tables of every stock, flow, parameter, lever and output variable."""
    out = ["# fentsim model reference", "", "## Stocks", "",
           "| stock | dims | units | meaning |", "|---|---|---|---|"]
    out += [f"| {s.name} | {', '.join(s.dims) or '-'} | {s.units} | {s.doc} |" for s in STOCKS]
    out += ["", "## Flows and auxiliaries (sim/model/flows.py, one draw; every engine evaluates these)", "", "| function | definition |", "|---|---|"]
    for name in FLOW_FUNCTIONS:
        doc = inspect.getdoc(getattr(model, name)) or ""
        out.append(f"| {name} | {' '.join(doc.split())} |")
    out += ["", "## Parameters", "",
            "| parameter | default | units | bounds | meaning | source |", "|---|---|---|---|---|---|"]
    for f in fields(ModelParameters):
        m = f.metadata
        out.append(f"| {f.name} | {f.default:g} | {m['units']} | [{m['bounds'][0]:g}, "
                   f"{m['bounds'][1]:g}] | {m['doc']} | {m['source']} |")
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
