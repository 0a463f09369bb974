"""Config sections declared once as pydantic models; their mistakes as one-line InputErrors.

A section is a `Section`: a frozen pydantic model that forbids unknown keys and does not coerce
types (`true` is no number, `'3'` no integer, `2.5` no integer).  Each field states its type, its
range (`gt`, `ge`, `le`, ...) and, in `description`, what is allowed, in the words of the error.
`validate(Model, "where", mapping)` checks a mapping and returns the model; the first problem
becomes one line naming the field, the value and what is allowed:

    costs.levers.naloxone_kits.cots: unknown key (did you mean 'cost'?); allowed: cost, high, ...
    costs.levers.naloxone_kits.cost: value -1 not allowed; allowed: a number > 0
    solver.end_year: value 'soon' is not a number; allowed: a whole year in [2011, 2100]
    costs.levers.naloxone_kits.units: required; allowed: text (units of the cost)

A check of its own (a file name, a whole year, keys that must be levers) is a pydantic
`field_validator` or `model_validator(mode="after")` raising `InputError`: a whole line (starting
with the section's name) reaches the user unchanged; a line naming a field of the model
('cost: value 5 outside its range ...') gets the model's path in front.  Mappings whose keys are names (levers, series) are `dict[str, Model]`
fields; their keys are checked with `known_keys(where, mapping, allowed)` in a validator.

A section is declared where it is used: `ParamsSection` (sim/model/parameters.py, one field per
declared parameter, its bounds and units from the declaration), `ScenarioSection`
(sim/model/scenarios.py), `EnsembleSection` (sim/calibrate/ensemble.py), `FundingSection`
(sim/funding/plan.py), `CostsSection` (sim/funding/costs.py), `CalibrationOptions`
(sim/calibrate/fit.py), the targets (sim/calibrate/targets.py), `OutputSection`, `LeverEntry`
and the solver's (sim/config.py).  Another one the same way:

    class Options(Section):
        seed: Integer = Field(0, ge=0, description="an integer >= 0")
        starts: Integer = Field(4, ge=1, description="a whole number of local fits >= 1")
    opts = validate(Options, "calibration", cfg)     # opts.seed, opts.starts

This module imports nothing of the package but sim.errors, so every layer may use it; no Hydra.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from sim.errors import InputError, did_you_mean, reject_unknown_keys

S = TypeVar("S", bound="Section")

# pydantic error types that mean "not a number" / "not an integer" for a numeric field
_NUMBER_ERRORS = {"float_type", "float_parsing", "int_type", "int_parsing", "int_from_float",
                  "not_a_number"}


class Section(BaseModel):
    """A config section: known keys only, no type coercion, read-only once built."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _no_bool(value: Any) -> Any:
    """Booleans are no numbers (YAML `true` would otherwise pass as 1)."""
    if isinstance(value, bool):
        raise ValueError("not_a_number")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("empty")
    return value


Number = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_finite)]
"""A finite number (an integer is accepted as that number; a boolean is not)."""
Integer = Annotated[int, BeforeValidator(_no_bool)]
"""An integer (not a boolean, not 2.0)."""
Text = Annotated[str, AfterValidator(_text)]
"""Non-empty text."""


def known_keys(where: str, mapping: Mapping[str, Any], allowed: Iterable[str]) -> Mapping[str, Any]:
    """`mapping` if each of its keys is in `allowed`, else the unknown-key InputError."""
    reject_unknown_keys(where, mapping, allowed)
    return mapping


def _unwrap(tp: Any) -> Any:
    """The type inside Annotated[...] and Optional[...] (X | None)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = next((a for a in args if _is_model(_unwrap(a)) or typing.get_origin(a)), args[0])
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _lookup(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, list[str], bool]:
    """(the FieldInfo of the last field on `loc`, or None; the keys allowed where `loc` ends;
    whether `loc` ends at a field, not at a key or index of a container)."""
    current: Any = model
    info, names, at_field = None, list(model.model_fields), False
    for part in loc:
        current = _unwrap(current)
        if _is_model(current):
            names = list(current.model_fields)
            info = current.model_fields.get(str(part))
            if info is None:
                return None, names, False
            current, at_field = info.annotation, True
        else:   # a container: this part is a key or an index, go to its values
            args = typing.get_args(current)
            current, at_field = (args[-1] if args else None), False
    return info, names, at_field


def _path(where: str, loc: tuple[Any, ...]) -> str:
    out = where
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def error_line(model: type[BaseModel], where: str, exc: ValidationError) -> str:
    """One line for the first problem pydantic found (see the module doc)."""
    err = exc.errors(include_url=False)[0]
    cause = (err.get("ctx") or {}).get("error")
    loc = tuple(p for p in err["loc"] if p != "[key]")
    path = _path(where, loc)
    info, names, at_field = _lookup(model, loc)
    if isinstance(cause, InputError):   # a validator's own line: complete, or relative to its model
        line = str(cause)
        if line.split(":")[0].split(".")[0].split("[")[0] == where.split(".")[0]:
            return line
        return f"{_path(where, loc[:-1] if at_field else loc)}.{line}"
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        return (f"{path}: unknown key{did_you_mean(key, names)}; allowed: "
                f"{', '.join(sorted(names))}")
    allowed = info.description if info is not None and info.description else \
        str(err.get("msg", "")).removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{path}: required; allowed: {allowed}"
    value = err.get("input")
    if err["type"] in _NUMBER_ERRORS or str(cause) == "not_a_number":
        return f"{path}: value {value!r} is not a number; allowed: {allowed}"
    return f"{path}: value {value!r} not allowed; allowed: {allowed}"


def validate(model: type[S], where: str, value: Any) -> S:
    """`value` (a mapping; None for {}) checked against `model`: the model, or one InputError
    line naming the field, the value and what is allowed."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: value {value!r} not allowed; allowed: a mapping of keys to values")
    try:
        return model.model_validate(dict(value))
    except ValidationError as exc:
        raise InputError(error_line(model, where, exc)) from None
