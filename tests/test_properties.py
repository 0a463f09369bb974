"""Property-based tests (Hypothesis) of input handling (issue 23, item 8): for any generated
override value, lever setting, posterior file and comparison input, the result is correct or an
InputError, never another exception and never a silent baseline."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import xarray as xr
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sim.calibrate.ensemble import ensemble_of
from sim.errors import InputError
from sim.model.levers import LEVER_SPECS, LeverSet
from sim.model.parameters import ModelParameters
from sim.sweeps.compare import compare
from tests.test_compare import known

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

anything = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                     st.lists(st.floats(-10, 10), max_size=3))
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))


@FAST
@given(name=st.sampled_from(sorted(ModelParameters.names())), value=anything)
def test_parameter_values_are_used_or_refused(name, value):
    """params.NAME=value: the parameter takes the value, or an InputError names it."""
    try:
        params = ModelParameters.from_mapping({name: value})
    except InputError as exc:
        assert name in str(exc)
        return
    got = np.asarray(getattr(params, name), dtype=float)
    assert np.all(np.isfinite(got))
    assert np.allclose(got, np.asarray(value, dtype=float))   # used, not replaced by a default


@FAST
@given(lever=st.sampled_from(sorted(LEVER_SPECS)), start=numbers, ramp=numbers, level=numbers,
       mode=st.sampled_from(["set", "scale", "other"]))
def test_lever_settings_move_the_lever_or_are_refused(lever, start, ramp, level, mode):
    """Any intervention either departs from history after its ramp or is an InputError."""
    entry = {"start": start, "ramp": ramp, "level": level, "mode": mode}
    try:
        levers = LeverSet.from_mapping({lever: entry})
    except InputError as exc:
        assert f"levers.{lever}" in str(exc)
        return
    item = levers[lever]
    assert math.isfinite(float(start)) and 0 < float(ramp) <= 100 and mode in ("set", "scale")
    t = float(start) + float(ramp) + 1.0
    target = float(level) * (item.history_at(t) if mode == "scale" else 1.0)
    assert float(np.asarray(item(t))) == pytest.approx(target, rel=1e-9, abs=1e-9)
    if mode == "scale":
        assert item.history_at(t) != 0 or float(level) == 0   # never a silent baseline


ROWS = st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                   st.sampled_from(["", "x", "1e999", "nan"])),
                         min_size=1, max_size=4), min_size=1, max_size=4)


@FAST
@given(columns=st.lists(st.sampled_from(["draw", "relapse_rate", "fentanyl_nest_preference",
                                         "asc_china_precursor", "nonsense"]),
                        min_size=1, max_size=4),
       rows=ROWS)
def test_posterior_files_are_used_or_refused(tmp_path_factory, columns, rows):
    """Any small CSV: the ensemble reads finite in-bounds values, or an InputError (one line)."""
    path = tmp_path_factory.mktemp("post") / "post.csv"
    path.write_text("\n".join([",".join(columns)] + [",".join(map(str, r)) for r in rows]) + "\n")
    try:
        ens = ensemble_of(ModelParameters(), {"name": "posterior", "size": 1, "seed": 0,
                                              "file": str(path)})
    except InputError as exc:
        assert str(exc).startswith("ensemble.file") and "\n" not in str(exc)
        return
    params = ens.params()
    for name in set(columns) - {"draw"}:
        lo, hi = ModelParameters.metadata(name)["bounds"]
        value = float(np.asarray(getattr(params, name)).reshape(-1)[0])
        assert math.isfinite(value) and lo <= value <= hi


@FAST
@given(order=st.permutations(range(5)), scale=st.floats(0.5, 2.0),
       holes=st.lists(st.integers(0, 4), max_size=2),
       window=st.tuples(st.integers(2015, 2035), st.integers(2015, 2035)))
def test_comparisons_pair_by_identity_or_refuse(order, scale, holes, window):
    """A against a shuffled, rescaled copy of itself: deaths averted per draw are exactly the
    difference of the same draw's deaths, or the comparison is an InputError."""
    a = known(1000, draws=5).assign_coords(draw_id=("draw", [f"d{i}" for i in range(5)]))
    b = a.copy(deep=True)
    b["deaths_overdose"] = b["deaths_overdose"] * scale
    b = b.isel(draw=list(order))
    for i in holes:
        a["deaths_overdose"][{"year": 5, "draw": i}] = np.nan
    try:
        cmp = compare(a, b, window=window)
    except InputError:
        return
    assert not holes or not (window[0] <= int(a.year[5]) <= window[1])
    summed = a["deaths_overdose"].sel(year=slice(*window)).sum("year")
    np.testing.assert_allclose(cmp["deaths_averted"].values, (summed * (scale - 1)).values,
                               rtol=1e-12, atol=1e-12 * float(summed.max()))   # B - A rounding


@FAST
@given(a=st.one_of(st.none(), st.integers(), st.text(max_size=5), st.just(xr.Dataset())),
       variable=st.text(max_size=20))
def test_compare_arguments_are_datasets_or_refused(a, variable):
    with pytest.raises(InputError):
        compare(a, known(1000), variable=variable or "deaths_overdose")


@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from(["params.relapse_rate", "scenario.intensity", "=", "~params.relapse_rate",
                            "hydra.job.name", "levers.naloxone_kits.ramp", "+hydra.callbacks.x"]),
       value=st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)),
                     max_size=16))
@example(key="hydra.job.name", value=".0")      # Hydra reads a float: the name "0.0"
@example(key="hydra.job.name", value="../../x")
def test_command_line_overrides_are_checked_or_left_to_hydra(tmp_path_factory, key, value):
    """The preflight of every Hydra command (sim/cli/guard.py) on any override: the arguments back
    (to Hydra, which reports its own errors in one line) or an InputError; nothing else."""
    from sim.cli import guard
    from sim.cli.main import CONFIG_DIR

    where = tmp_path_factory.mktemp("pre")
    cwd = os.getcwd()
    os.chdir(where)
    try:
        arg = f"{key}={value}" if key != "=" else f"={value}"
        try:
            out = guard.preflight(CONFIG_DIR, "config", [arg, "solver.end_year=2031"])
        except InputError as exc:
            assert "\n" not in str(exc)
            return
        assert out[:2] == [arg, "solver.end_year=2031"]
        if key == "hydra.job.name" and len(out) == 3:   # accepted: a plain file name only,
            # as Hydra reads the value (`.0` is the float 0.0, so the name "0.0")
            parsed = OverridesParser.create().parse_override(arg).value()
            assert parsed is None or guard.PLAIN_NAME.match(str(parsed))
    finally:
        guard.discard_reserved()
        os.chdir(cwd)
