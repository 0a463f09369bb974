"""The model's documentation as text: stocks, flows, parameters, levers, output variables and unit
costs, with units and sources (`fentsim-doc`); the scenarios with their one-line descriptions
(`fentsim-doc scenarios`, read from configs/scenario/*.yaml: docs/sweeps.md's table is this page,
checked by a test); the README (`fentsim-doc readme`, from the installed package's metadata, so
an install without the source checkout has it too).

Run as `fentsim-doc` (or `python -m sim.cli.doc`).  The parameter table shows the value runs use
(the calibrated baseline, `params=calibrated`, the default of every command) next to the
literature value (`params=literature`, the defaults of what the calibration does not move), and each parameter's declared prior.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import fields


from sim.cli.app import scenario_descriptions
from sim.cli.args import ArgumentParser

from sim.funding.costs import CostModel
from sim.funding.plan import FundingPlan, FundingRecord, funding_variables
from sim.model import flows as model
from sim.model.levers import LEVER_SPECS
from sim.model.parameters import ModelParameters, prior_distribution
from sim.model.outputs import OUTPUTS
from sim.model.state import CHANNELS, STOCKS
from sim import paths
from sim.hydra_compose import compose
from sim.results.tables import table

FLOW_FUNCTIONS = ("us_population", "seizure_probability", "covid_risk", "risk_shift",
                  "retail_potency", "supply_disruption", "pharma_fentanyl_deaths",
                  "log_initiation_path", "pill_share", "heroin_base_cost", "delivered_cost",
                  "retail_cost", "logistic_growth", "heroin_log_scarcity", "nested_logit_shares",
                  "market", "nest_price", "money_price", "shortage_price", "shipments_needed",
                  "demand", "free_slot_share", "treatment_entries", "product_shares",
                  "naloxone_probability", "rescue_factor", "test_strip_factor",
                  "overdose_hazards", "evaluate", "initial_state")


def _g(value: float) -> str:
    return f"{value:g}"


def _prior(name: str, prior: tuple) -> str:
    """A prior as text with its 90% interval: 'lognormal(0.1, 0.7) [0.0316, 0.315]', 'fixed'."""
    if len(prior) == 1:
        return prior[0]
    dist = prior_distribution(name)
    low, high = (float(v) for v in dist.icdf([0.05, 0.95]))
    return (f"{prior[0]}({', '.join(f'{v:g}' for v in prior[1:])}) [{low:.3g}, {high:.3g}]")


def model_doc(params: str = "calibrated") -> str:
    """Markdown tables of every stock, flow, parameter, lever and output variable."""
    used = compose("config", [f"params={params}"])[0]["params"]
    md = {"markdown": True, "align": "left"}
    out = ["# fentsim model reference", "", "## Stocks", "",
           table(["stock", "dims", "units", "meaning"],
                 [[s.name, ", ".join(s.dims) or "-", s.units, s.doc] for s in STOCKS], **md),
           "", "## Flows and auxiliaries (sim/model/flows.py, one draw; every engine evaluates these)", "",
           table(["function", "definition"],
                 [[name, " ".join((inspect.getdoc(getattr(model, name)) or "").split())]
                  for name in FLOW_FUNCTIONS], **md),
           "", "## Supply channels", "",
           table(["channel", "source", "form", "route", "enforcement lever", "constant", "meaning"],
                 [[c.name, c.source, c.form, c.route, c.enforcement_lever,
                   c.constant or "0 (reference)" if c.form != "heroin" else "- (outside the nest)",
                   c.doc] for c in CHANNELS], **md),
           "", "## Parameters", "",
           "Roles: fixed (literature constant), fit (calibrated; in the posterior), subst "
           "(substitution constant no series identifies: sampled with its prior in "
           "every posterior), unc (other uncertainty, sampled with its prior).  The prior is "
           "the declared distribution (scipy.stats, truncated to the bounds; lognormal(median, "
           "sd of log)) with its 90% interval; the fit, the sampler and every ensemble read it "
           "from here (sim/model/parameters.py).", "",
           f"`{params}` is the value every run uses (`params={params}`, the calibrated baseline "
           f"unless chosen otherwise); `literature` is the published or assumed value, the "
           f"default of the parameters the calibration does not move (`params=literature`).", "",
           table(["parameter", params, "literature", "units", "bounds", "role", "prior",
                  "meaning and evidence"],
                 [[f.name, _g(float(used.get(f.name, f.default))), _g(f.default),
                   f.metadata["units"], f"[{_g(f.metadata['bounds'][0])}, "
                   f"{_g(f.metadata['bounds'][1])}]", f.metadata.get("role", "fixed"),
                   _prior(f.name, f.metadata.get("prior", ("fixed",))), f.metadata["doc"]]
                  for f in fields(ModelParameters)], **md),
           "", "## Levers (historical path; interventions set start, ramp, level, mode)", "",
           table(["lever", "side", "units", "bounds", "default mode", "study range",
                  "history (year: value)", "meaning", "source"],
                 [[spec.name, spec.side, spec.units, f"[{_g(spec.bounds[0])}, {_g(spec.bounds[1])}]",
                   spec.default_mode,
                   "-" if spec.study_range is None else
                   f"[{_g(spec.study_range[0])}, {_g(spec.study_range[1])}]",
                   ", ".join(f"{y:g}: {v:g}" for y, v in spec.history), spec.doc, spec.source]
                  for spec in LEVER_SPECS.values()], **md),
           "", "## Output variables", "",
           table(["variable", "dims", "units", "reduction", "meaning"],
                 [[o.name, ", ".join(o.dims), o.units, o.reduction, o.long_name] for o in OUTPUTS]
                 + [[k, ", ".join(v.dims), v.attrs.get("units", v.attrs.get("units_label")), "",
                     v.attrs["long_name"]]
                    for k, v in _funding_variables().data_vars.items()], **md),
           "", "## Unit costs (funding in dollars: the `costs` group, sim/funding/)", "",
           "Extra spending buys `history(start) + spending / (cost x per_unit)` of a lever, per "
           "draw; the range is sampled per draw with an ensemble (`costs.sample`); a `per_unit` "
           "of `baseline VARIABLE` is that draw's own baseline value in the year before the "
           "start.", "",
           table(["lever", "cost", "range", "units", "per_unit", "source"],
                 [[u.lever, _g(u.cost), f"{_g(u.low)}-{_g(u.high)}", u.units,
                   f"baseline {u.per_baseline}" if u.per_baseline else _g(u.per_unit), u.source]
                  for u in CostModel.from_mapping(compose("config")[0]["costs"]).costs.values()],
                 **md)]
    return "\n".join(out) + "\n"


def scenarios_doc() -> str:
    """A Markdown table of every scenario and its description (docs/sweeps.md carries it)."""
    rows = [[f"`{name}`", text] for name, text in scenario_descriptions().items()]
    return table(["scenario", "what it changes (its file's scenario.description)"], rows,
                 markdown=True, align="left") + "\n"


def readme_doc() -> str:
    """The README, from the installed package's metadata (the wheel's long description)."""
    from importlib import metadata

    try:
        text = metadata.metadata("fentsim").get_payload() or ""
    except metadata.PackageNotFoundError:
        text = ""
    if not text.strip() and (paths.REPO_ROOT / "README.md").is_file():
        text = (paths.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return text.rstrip() + "\n"


PAGES = {"model": "stocks, flows, parameters, levers, output variables, unit costs (default)",
         "scenarios": "every scenario with its one-line description",
         "readme": "the README (commands, outputs, how the model works)"}


def _funding_variables():
    """The funding variables every result carries (names, units, meanings), from an empty plan."""
    import numpy as np

    plan = FundingPlan.from_config(None, None)
    return funding_variables(FundingRecord.empty(plan, 1), np.array([2020]))


def main(argv: Sequence[str] | None = None) -> None:
    """Print a documentation page (default: the model reference)."""
    parser = ArgumentParser(
        prog="fentsim-doc",
        description="Print fentsim's documentation as Markdown.  Pages: "
                    + "; ".join(f"{k}: {v}" for k, v in PAGES.items()) + ".",
        epilog="examples: fentsim-doc > model.md;  fentsim-doc --params article;  "
               "fentsim-doc scenarios;  fentsim-doc readme | less")
    parser.add_argument("page", nargs="?", default="model", choices=list(PAGES),
                        help="which page (default model)")
    parser.add_argument("--params", default="calibrated", metavar="NAME",
                        help="parameter set shown as the value runs use (default calibrated)")
    args = parser.parse_args(argv)
    from sim.cli.app import user_errors

    with user_errors("fentsim-doc"):
        page = {"model": lambda: model_doc(args.params), "scenarios": scenarios_doc,
                "readme": readme_doc}[args.page]()
        print(page, end="")


if __name__ == "__main__":
    main()
