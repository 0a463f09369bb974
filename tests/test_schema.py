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
