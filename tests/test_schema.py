"""Config sections declared as pydantic models (sim/schema.py): types, ranges and unknown keys
checked in one place, each mistake one line naming the field, the value and what is allowed."""

from __future__ import annotations

import pytest
from pydantic import Field, model_validator

from sim.calibrate.targets import SET_KEYS, TargetSetSection, load_targets
from sim.config import LEVER_KEYS, OUTPUT_KEYS, build_run, check_output, check_solver_values
from sim.errors import InputError
from sim.funding.costs import COST_KEYS, CostEntry
from sim.schema import Integer, Number, Section, Text, validate


class Options(Section):
    seed: Integer = Field(0, ge=0, description="an integer >= 0")
    rtol: Number = Field(1e-3, gt=0, le=1, description="a number in (0, 1]")
    label: Text = Field(description="text")

    @model_validator(mode="after")
    def _pair(self) -> Options:
        if self.seed == 7 and self.rtol > 0.5:
            raise InputError(f"rtol: value {self.rtol:g} not allowed with seed 7; allowed: <= 0.5")
        return self


@pytest.mark.parametrize("value,line", [
    ({"label": "a", "sed": 1}, "opts.sed: unknown key (did you mean 'seed'?); allowed: label, rtol, seed"),
    ({"label": "a", "seed": True}, "opts.seed: value True is not a number; allowed: an integer >= 0"),
    ({"label": "a", "seed": 2.0}, "opts.seed: value 2.0 is not a number; allowed: an integer >= 0"),
    ({"label": "a", "seed": -1}, "opts.seed: value -1 not allowed; allowed: an integer >= 0"),
    ({"label": "a", "rtol": float("nan")}, "opts.rtol: value nan not allowed; allowed: a number in (0, 1]"),
    ({"label": "a", "rtol": "1e-3"}, "opts.rtol: value '1e-3' is not a number; allowed: a number in (0, 1]"),
    ({}, "opts.label: required; allowed: text"),
    ({"label": " "}, "opts.label: value ' ' not allowed; allowed: text"),
    ({"label": "a", "seed": 7, "rtol": 0.9}, "opts.rtol: value 0.9 not allowed with seed 7; allowed: <= 0.5"),
    ([1, 2], "opts: value [1, 2] not allowed; allowed: a mapping of keys to values"),
])
def test_mistakes_are_one_line(value, line):
    with pytest.raises(InputError) as info:
        validate(Options, "opts", value)
    assert str(info.value) == line


def test_valid_values_come_back_typed():
    opts = validate(Options, "opts", {"label": "x", "rtol": 1})
    assert opts.rtol == 1.0 and isinstance(opts.rtol, float) and opts.seed == 0


def test_sections_are_declared_once():
    """The key lists other code and messages use are the declared models' fields."""
    assert OUTPUT_KEYS == ("filename", "summary_years")
    assert set(LEVER_KEYS) == {"start", "ramp", "level", "mode", "end"}
    assert COST_KEYS == tuple(CostEntry.model_fields)
    assert SET_KEYS == tuple(TargetSetSection.model_fields)


@pytest.mark.parametrize("check,line", [
    (lambda: check_output({"filename": "r.nc", "summary_years": [2017, 2020.5]}),
     "output.summary_years[1]: value 2020.5 is not a number; allowed: a list of integer years"),
    (lambda: check_solver_values({"end_year": 2030, "rtoll": 1e-4}),
     "solver.rtoll: unknown key (did you mean 'rtol'?)"),
    (lambda: check_solver_values({"atol_mass": True}), "solver.atol_mass: value True is not a number"),
    (lambda: build_run({"levers": {"naloxone_kits": {"start": 2020, "level": [2, "x"]}}}),
     "levers.naloxone_kits.level: value [2, 'x'] is not a number; allowed: a number or null"),
    (lambda: load_targets({"fit_end_year": 2009, "entries": []}, 2030),
     "targets.fit_end_year: value 2009 not allowed; allowed: a year after 2010"),
    (lambda: load_targets({"csv_series": {"file": "us_series_2010_2024.csv", "seriess": {}}}, 2030),
     "targets.csv_series.seriess: unknown key (did you mean 'series'?)"),
])
def test_sections_of_the_configs(check, line):
    with pytest.raises(InputError) as info:
        check()
    assert str(info.value).startswith(line) and "\n" not in str(info.value)


# --- the sections declared next to what they configure (issue 21, item 4): one bad value each ---
@pytest.mark.parametrize("section,value,line", [
    ("params", {"relapse_rat": 0.5}, "params.relapse_rat: unknown key (did you mean 'relapse_rate'?)"),
    ("params", {"relapse_rate": "fast"}, "params.relapse_rate: value 'fast' is not a number; "
                                         "allowed: a number in [0, 5] 1/yr, or a list of them"),
    ("params", {"relapse_rate": [0.5, 6]}, "params.relapse_rate: value 6 (draw 1) outside allowed "
                                           "range [0, 5] 1/yr"),
    ("ensemble", {"sample_prior": False}, "ensemble.sample_prior: unknown key (did you mean "
                                          "'sample_priors'?)"),
    ("ensemble", {"name": "posterior", "sample_priors": "no"},
     "ensemble.sample_priors: value 'no' not allowed; allowed: true or false"),
    ("ensemble", {"name": "posterior", "seed": 2**32},
     "ensemble.seed: value 4294967296 not allowed; allowed: an integer in [0, 4294967295]"),
    ("scenario", {"intensities": 2}, "scenario.intensities: unknown key (did you mean 'intensity'?)"),
    ("scenario", {"intensity": "double"}, "scenario.intensity: value 'double' is not a number; "
                                          "allowed: a number >= 0"),
    ("scenario", {"intensity": -0.5}, "scenario.intensity: value -0.5 not allowed; allowed: a "
                                      "number >= 0"),
    ("funding", {"rampe": 2}, "funding.rampe: unknown key (did you mean 'ramp'?)"),
    ("funding", {"start": "2026"}, "funding.start: value '2026' is not a number; allowed: a year "
                                   "in [2011, 2100]"),
    ("funding", {"split": {"naloxone_kits": 1.5}}, "funding.split.naloxone_kits: value 1.5 not "
                                                   "allowed; allowed: a mapping lever -> share in [0, 1]"),
    ("calibration", {"particle": 16}, "calibration.particle: unknown key (did you mean 'particles'?)"),
    ("calibration", {"chains": 2.0}, "calibration.chains: value 2.0 is not a number; allowed: an "
                                     "integer >= 1"),
    ("calibration", {"map_model_error": {"nflis_share": 2}},
     "calibration.map_model_error.nflis_share: value 2 not allowed; allowed: a number in "
     "[0.002, 1.5] (model-error sd, 1)"),
])
def test_sections_declared_with_their_owners(section, value, line):
    """params (bounds and units from each parameter's declaration), ensemble, scenario, funding
    and calibration options: an unknown key, a wrong type and a value out of range, one line."""
    from sim.calibrate.ensemble import ensemble_of
    from sim.calibrate.fit import calibration_options
    from sim.funding.plan import FundingPlan
    from sim.model.parameters import ModelParameters
    from sim.model.scenarios import scenario_intensity

    check = {"params": ModelParameters.from_mapping,
             "ensemble": lambda v: ensemble_of(ModelParameters(), v),
             "scenario": lambda v: scenario_intensity({"scenario": v}),
             "funding": lambda v: FundingPlan.from_config(v, None),
             "calibration": calibration_options}[section]
    with pytest.raises(InputError) as info:
        check(value)
    assert str(info.value).startswith(line) and "\n" not in str(info.value)


def test_params_section_is_derived_from_the_declarations():
    """One field per declared parameter, its default the declared one and what is allowed its
    declared bounds and units; the Python API's arrays over draws pass the same checks."""
    import dataclasses

    import numpy as np

    from sim.model.parameters import ModelParameters, ParamsSection

    declared = {f.name: f for f in dataclasses.fields(ModelParameters)}
    assert list(ParamsSection.model_fields) == list(declared)
    for name, info in ParamsSection.model_fields.items():
        lo, hi = declared[name].metadata["bounds"]
        assert info.default == declared[name].default
        assert info.description.startswith(f"a number in [{lo:g}, {hi:g}] "
                                           f"{declared[name].metadata['units']}")
    with pytest.raises(InputError, match=r"^params\.relapse_rate: value 7 \(draw 1\) outside"):
        ModelParameters(relapse_rate=np.array([0.5, 7.0]))
    with pytest.raises(InputError, match=r"^params: draw arrays have different lengths \[2, 3\]"):
        ModelParameters(relapse_rate=[0.5, 0.6], remission_rate=[0.1, 0.1, 0.1])
    with pytest.raises(InputError, match=r"^params\.foo: unknown key"):
        ModelParameters().replace(foo=1.0)
    assert ModelParameters.from_mapping({"relapse_rate": [0.5, 0.6]}).n_draws == 2
