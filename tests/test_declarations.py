"""Each concept is declared once and everything else is derived from it (issue 21): a lever's side,
default mode and study range come from its LeverSpec, wherever a lever is built or listed."""

from __future__ import annotations

import numpy as np
import pytest

import sim
import sim.api
from sim.config import build_run
from sim.funding.costs import DEMAND_LEVERS, SUPPLY_LEVERS, side
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.study.sensitivity import build_factors, sensitivity_options

TIMES = np.linspace(2015.0, 2035.0, 81)


@pytest.mark.parametrize("name", sorted(LEVER_SPECS))
def test_lever_from_api_and_from_composed_config_give_the_same_path(name):
    spec = LEVER_SPECS[name]
    level = 0.5 * (spec.bounds[0] + min(spec.bounds[1], 1.0)) if spec.default_mode == "set" else 1.5
    entry = {"start": 2026.0, "ramp": 2.0, "level": level}
    direct = LeverSet.from_mapping({name: entry})[name]
    composed = build_run(sim.api.config(levers={name: entry})).levers[name]
    assert direct.mode == composed.mode == spec.default_mode
    assert np.array_equal([direct(t) for t in TIMES], [composed(t) for t in TIMES])


def test_sides_are_the_declared_ones():
    assert set(SUPPLY_LEVERS) | set(DEMAND_LEVERS) == set(LEVER_SPECS)
    assert all(side(name) == spec.side for name, spec in LEVER_SPECS.items())
    assert side("naloxone_kits") == "demand" and side("interdiction_mail") == "supply"


def test_study_ranges_are_the_declared_ones():
    import yaml
    from tests.conftest import REPO
    cfg = yaml.safe_load((REPO / "configs" / "study.yaml").read_text())["sensitivity"]
    factors = {f.name: f for f in build_factors(sim.load_params("calibrated"),
                                                sensitivity_options(cfg)) if f.kind == "lever"}
    declared = {n: s for n, s in LEVER_SPECS.items() if s.study_range is not None}
    assert set(factors) == set(declared)
    for name, spec in declared.items():
        assert (factors[name].lo, factors[name].hi) == spec.study_range
        assert factors[name].mode == spec.default_mode
    # an entry of sensitivity.levers replaces one declared range
    cfg["levers"] = {"naloxone_kits": {"range": [1.0, 8.0]}}
    replaced = [f for f in build_factors(sim.load_params("calibrated"), sensitivity_options(cfg))
                if f.name == "naloxone_kits"]
    assert (replaced[0].lo, replaced[0].hi, replaced[0].mode) == (1.0, 8.0, "scale")


def test_every_output_of_a_result_has_its_declared_dims_units_and_reduction():
    from sim.model.outputs import OUTPUT
    from sim.results.dataset import cf_units
    ds = sim.api.run(solver={"end_year": 2021})
    declared = {name for name in OUTPUT}
    assert declared <= set(ds.data_vars)
    for name in declared:
        out = OUTPUT[name]
        assert ds[name].dims == out.dims, name
        assert ds[name].attrs["units"] == cf_units(out.units), name
        assert ds[name].attrs.get("units_label", out.units) == out.units, name
        assert ds[name].attrs["long_name"] == out.long_name, name
        assert ds[name].attrs.get("cell_methods", "") == out.cell_methods, name


def test_stock_kinds_decide_physical_rows_and_tolerances():
    from sim.engine.solver import PHYSICAL_ROWS, PHYSICAL_STOCKS, SolverSettings
    from sim.model.state import LAYOUT
    assert set(PHYSICAL_STOCKS) == {n for n, s in LAYOUT.stocks.items() if s.kind == "physical"}
    assert PHYSICAL_ROWS.stop == sum(LAYOUT.stocks[n].size for n in PHYSICAL_STOCKS)
    settings = SolverSettings()
    atol = settings.atol_vector(1)
    for name, sl in LAYOUT.slices.items():
        expected = {"mass": settings.atol_mass, "people": settings.atol_people}.get(
            LAYOUT.stocks[name].tolerance_class)
        if expected is not None:
            assert np.all(atol[sl] == expected), name


def test_channel_constants_are_the_declared_parameters():
    """Each fentanyl channel's alternative-specific constant is the parameter its Channel names
    (0 for the nest's reference channel), read by the compiled choice model; heroin has none."""
    from sim.model import flows
    from sim.model.parameters import ModelParameters
    from sim.model.state import CHANNELS

    names = [c.constant for c in CHANNELS if c.constant]
    assert names and set(names) <= set(ModelParameters.names()) and CHANNELS[-1].constant is None
    values = {name: -0.25 * (i + 1) for i, name in enumerate(names)}   # distinct, in bounds
    record = flows.parameter_records(ModelParameters.from_mapping(values))[0]
    for k, channel in enumerate(CHANNELS[:flows.N_FENTANYL_CHANNELS]):
        want = values[channel.constant] if channel.constant else 0.0
        assert flows.channel_constant(k, record) == want, channel.name
    assert np.count_nonzero([c.constant is None for c in CHANNELS[:-1]]) == 1   # one reference


def test_the_solver_default_is_derived_from_solver_settings():
    """The option `solver: default` that the commands and the API compose is SolverSettings' field
    defaults (sim.hydra_compose.declared_nodes), restated in no YAML: there is no
    solver/default.yaml and every other solver file sets only what it changes; the group (and
    `fentsim --help`) lists both options."""
    import dataclasses

    import yaml

    from sim.cli.app import help_text
    from sim.engine.solver import SolverSettings
    from sim.hydra_compose import compose, options
    from sim.paths import CONFIG_DIR

    defaults = {f.name: f.default for f in dataclasses.fields(SolverSettings)}
    for config_name in ("config", "calibrate", "backtest"):
        cfg, choices = compose(config_name)
        assert choices["solver"] == "default" and cfg["solver"] == defaults, config_name
    assert sim.api.config()["solver"] == defaults
    assert not (CONFIG_DIR / "solver" / "default.yaml").exists()
    for path in sorted((CONFIG_DIR / "solver").glob("*.yaml")):
        values = {k: v for k, v in yaml.safe_load(path.read_text()).items() if k != "defaults"}
        assert set(values) <= set(defaults), path.name
        assert all(values[k] != defaults[k] for k in values), f"{path.name} restates a default"
        assert compose("config", [f"solver={path.stem}"])[0]["solver"] == {**defaults, **values}
    assert options("solver") == ["accurate", "default"]
    assert "  solver: accurate, default" in help_text("fentsim").splitlines()
