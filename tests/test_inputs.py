"""Parameters, levers and config sections validate themselves and fail with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from sim.config import build_run
from sim.errors import InputError
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.model.parameters import ModelParameters
from sim.engine.solver import SolverSettings
from tests.conftest import REPO


@pytest.mark.parametrize("kwargs, message", [
    ({"relapse_rate": -0.1}, "params.relapse_rate: value -0.1 outside allowed range [0, 5] 1/yr"),
    ({"fentanyl_incidence_multiplier": 12}, "params.fentanyl_incidence_multiplier: value 12 outside"),
    ({"consumption_per_user": float("nan")}, "params.consumption_per_user: value nan outside"),
    ({"remission_rate": "fast"}, "params.remission_rate: value 'fast' is not a number"),
    ({"relapse_rate": np.array([0.5, 7.0])}, "params.relapse_rate: value 7 (draw 1) outside"),
])
def test_parameter_bounds(kwargs, message):
    with pytest.raises(InputError) as err:
        ModelParameters(**kwargs)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_unknown_parameter_suggests_the_closest_name():
    with pytest.raises(InputError, match=r"params.relaps_rate: unknown key \(did you mean 'relapse_rate'\?\)"):
        ModelParameters.from_mapping({"relaps_rate": 0.5})


def test_draw_arrays_must_agree_in_length():
    with pytest.raises(InputError, match="different lengths"):
        ModelParameters(relapse_rate=np.ones(3) * 0.5, remission_rate=np.ones(2) * 0.05)


def test_parameter_metadata_complete():
    for name in ModelParameters.names():
        meta = ModelParameters.metadata(name)
        assert meta["units"] and meta["source"] and meta["doc"], name
        lo, hi = meta["bounds"]
        assert lo <= getattr(ModelParameters(), name) <= hi, name


def test_literature_params_are_the_declared_defaults():
    """params=literature restates nothing: its parameters are the declared defaults, and a
    parameter can still be overridden by name."""
    import sim.api
    assert yaml.safe_load((REPO / "configs/params/literature.yaml").read_text()) == {}
    composed = sim.api.config(params="literature", overrides=["params.relapse_rate=0.4"])["params"]
    defaults = ModelParameters()
    assert set(composed) == set(ModelParameters.names())
    for name in ModelParameters.names():
        expected = 0.4 if name == "relapse_rate" else getattr(defaults, name)
        assert composed[name] == expected, name


def test_lever_profile_ramps_linearly_to_level():
    levers = LeverSet.from_mapping({"naloxone_kits": {"start": 2021, "ramp": 2, "level": 2,
                                                      "mode": "scale"},
                                    "prevention": {"start": 2020, "ramp": 1, "level": 0.3}})
    kits = levers["naloxone_kits"]
    hist = kits.history_at(2021.5)
    assert kits(2020.9) == pytest.approx(kits.history_at(2020.9))
    assert kits(2022.0) == pytest.approx(1.5 * kits.history_at(2022.0))
    assert kits(2023.0) == pytest.approx(2 * kits.history_at(2023.0))
    assert kits(2021.5) == pytest.approx(1.25 * hist)
    assert levers["prevention"](2020.5) == pytest.approx(0.15)
    assert 2021.0 in levers.breakpoints() and 2023.0 in levers.breakpoints()


def test_lever_history_has_china_scheduling_events():
    """February 2018: NPP and ANPP controlled (precursors); 1 May 2019: class-wide scheduling."""
    levers = LeverSet.from_mapping({})
    finished, precursor = levers["enforcement_china_finished"], levers["enforcement_china_precursor"]
    assert finished(2019.0) == 0.0 and finished(2020.0) > 0.0
    assert precursor(2018.0) == 0.0 and precursor(2018.5) > 0.0


def test_lever_level_can_vary_by_draw():
    lever = LeverSet.from_mapping({"prevention": {"start": 2020, "ramp": 1,
                                                  "level": np.array([0.1, 0.5])}})["prevention"]
    np.testing.assert_allclose(lever(2022.0), [0.1, 0.5])


@pytest.mark.parametrize("config, message", [
    ({"naloxone_kits": {"start": 2020, "level": 2, "mode": "double"}},
     "levers.naloxone_kits.mode: value 'double' not allowed; allowed: scale, set"),
    ({"naloxone_kit": {"start": 2020}}, "levers.naloxone_kit: unknown key (did you mean 'naloxone_kits'?)"),
    ({"prevention": {"start": 2020, "level": 1.5}}, "levers.prevention.level: value 1.5 outside allowed range [0, 1]"),
    ({"prevention": {"start": 2020, "ramp": 0, "level": 0.5}}, "levers.prevention.ramp: value 0 must be > 0 yr"),
    ({"prevention": {"start": 2020}}, "levers.prevention.level: required when an intervention is given"),
    ({"prevention": {"start": 2020, "level": 0.2, "lvl": 3}}, "levers.prevention.lvl: unknown key"),
    ({"naloxone_kits": {"start": 2020, "level": -1, "mode": "scale"}}, "levers.naloxone_kits.level: multiplier -1 must be >= 0"),
])
def test_bad_levers(config, message):
    with pytest.raises(InputError) as err:
        LeverSet.from_mapping(config)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("settings, message", [
    ({"method": "Euler"}, "solver.method: value 'Euler' not allowed"),
    ({"end_year": 2005}, "solver.end_year: value 2005 outside allowed range"),
    ({"rtol": 0}, "solver.rtol: value 0 outside allowed range (0, 1)"),
    ({"output_step": 2}, "solver.output_step: value 2 outside allowed range"),
    ({"start_year": 2012}, "solver.start_year: value 2012 not allowed"),
    ({"stepsize": 1}, "solver.stepsize: unknown key"),
])
def test_bad_solver_settings(settings, message):
    with pytest.raises(InputError) as err:
        SolverSettings.from_mapping(settings)
    assert str(err.value).startswith(message)


def test_unknown_top_level_section():
    with pytest.raises(InputError, match="config.parms: unknown key \\(did you mean 'params'\\?\\)"):
        build_run({"parms": {}})


def test_every_lever_in_the_composed_config_with_its_declared_mode():
    """The lever block is derived from LEVER_SPECS (declared_levers), not restated in config.yaml."""
    import sim.api
    assert "levers" not in yaml.safe_load((REPO / "configs/config.yaml").read_text())
    levers = sim.api.config()["levers"]
    assert set(levers) == set(LEVER_SPECS)
    assert all(levers[n]["mode"] == spec.default_mode for n, spec in LEVER_SPECS.items())


def test_temporary_lever_returns_to_history():
    """`end`: from then on the lever goes back to its historical path over the same ramp."""
    lever = LeverSet.from_mapping({"naloxone_kits": {"start": 2022.0, "ramp": 1.0, "level": 2.0,
                                                     "mode": "scale", "end": 2025.0}})["naloxone_kits"]
    history = lever.history_at   # kits/yr as they were (still rising 2022-2024)
    assert lever(2021.9) == pytest.approx(history(2021.9))
    assert lever(2024.0) == pytest.approx(2 * history(2024.0))
    assert lever(2025.5) == pytest.approx(1.5 * history(2025.5))      # half-way back
    assert lever(2026.5) == pytest.approx(history(2026.5))
    assert {2022.0, 2023.0, 2025.0, 2026.0} <= set(lever.breakpoints())
    with pytest.raises(InputError, match="levers.naloxone_kits.end: value 2020 before start 2022"):
        LeverSet.from_mapping({"naloxone_kits": {"start": 2022.0, "level": 2.0, "end": 2020.0}})
    with pytest.raises(InputError, match="levers.naloxone_kits.end: value 2025.0 not allowed without start"):
        LeverSet.from_mapping({"naloxone_kits": {"end": 2025.0}})
