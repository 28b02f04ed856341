"""The schema engine: types, constraints, defaults, nested errors, entity checks."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.config.checks import (
    at_least_one_of,
    conditional,
    conditional_at_least_one_of,
    custom_entity_check,
    distinct,
    mutually_exclusive,
    mutually_required,
    only_one_of,
)
from tollway.config.schema import Field, Record, Shorthand, to_kong_fields, validate_field


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        (Field.string(), 5, "expected a string"),
        (Field.string(), "", "length must be at least 1"),
        (Field.string(len_min=0), "", None),
        (Field.integer(), 1.5, "expected an integer"),
        (Field.integer(), True, "expected an integer"),
        (Field.integer(), 2.0, None),
        (Field.number(), "1", "expected a number"),
        (Field.boolean(), "yes", "expected a boolean"),
        (Field.array(Field.string()), "x", "expected an array"),
        (Field.set(Field.string()), {}, "expected a set"),
        (Field.map(Field.string(), Field.string()), [], "expected a map"),
        (Field.record_of({}), 3, "expected a record"),
        (Field.integer(between=(0, 65535)), 70000, "value should be between 0 and 65535"),
        (Field.number(gt=0), 0, "value must be greater than 0"),
        (Field.string(len_eq=2), "abc", "length must be 2"),
        (Field.string(len_min=3), "ab", "length must be at least 3"),
        (Field.array(Field.string(), len_max=1), ["a", "b"], "length must be at most 1"),
        (Field.string(starts_with="/"), "x", "should start with: /"),
        (Field.string(match=r"^[A-Z]+$"), "get", "invalid value: get"),
        (Field.string(one_of=["a", "b"]), "c", "expected one of: a, b"),
        (Field.integer(one_of=[426, 301]), 200, "expected one of: 426, 301"),
        (Field.string(not_one_of=["x"]), "x", "must not be one of: x"),
        (Field.boolean(eq=False), True, "value must be false"),
        (Field.string(eq=None), "x", "value must be null"),
        (Field.string(uuid=True), "nope", "expected a valid UUID"),
        (Field.array(Field.string(), contains="a"), ["b"], "expected to contain: a"),
        (Field.string(required=True), None, "required field missing"),
        (Field.string(), None, None),
        (Field.string(one_of=["a"], err="custom text"), "b", "custom text"),
        (Field.string(custom_validator=lambda v: "bad" if v == "x" else None), "x", "bad"),
    ],
)
def test_field_constraints(field: Field, value: Any, error: str | None) -> None:
    assert validate_field(field, value)[1] == error


def test_element_errors_are_keyed_by_index_and_sets_deduplicate() -> None:
    value, err = validate_field(Field.array(Field.integer(between=(1, 9))), [1, 0, 3, 10])
    assert err == {1: "value should be between 1 and 9", 3: "value should be between 1 and 9"}
    value, err = validate_field(Field.set(Field.string()), ["a", "b", "a"])
    assert (value, err) == (["a", "b"], None)
    assert validate_field(Field.array(Field.string()), ["a", None])[1] == {
        1: "required field missing"
    }


def test_map_key_and_value_errors() -> None:
    f = Field.map(Field.string(match="^[a-z]+$"), Field.integer())
    assert validate_field(f, {"ok": 1, "BAD": 2, "x": "s"})[1] == {
        "BAD": "invalid value: BAD",
        "x": "expected an integer",
    }


def test_mutually_exclusive_subsets_message() -> None:
    f = Field.set(Field.string(), mutually_exclusive_subsets=[["a", "b"], ["c"]])
    assert (
        validate_field(f, ["a", "c"])[1] == "these sets are mutually exclusive: ('a', 'b'), ('c')"
    )
    assert validate_field(f, ["a", "b"])[1] is None


RATE = Record(
    fields={
        "second": Field.number(gt=0),
        "minute": Field.number(gt=0),
        "policy": Field.string(default="local", one_of=["local", "redis"]),
        "limits": Field.record_of(
            {"burst": Field.integer(default=5), "names": Field.array(Field.string())}
        ),
        "optional": Field.record_of({"x": Field.integer(default=1)}, nullable=True),
    },
    entity_checks=[at_least_one_of("second", "minute")],
)


def test_record_fills_defaults_and_nested_records() -> None:
    out, errors = RATE.validate({"second": 5})
    assert errors == {}
    assert out == {
        "second": 5,
        "minute": None,
        "policy": "local",
        "limits": {"burst": 5, "names": None},
        "optional": None,
    }


def test_record_reports_every_error_nested() -> None:
    _out, errors = RATE.validate(
        {"second": 0, "policy": "x", "limits": {"burst": "a", "names": ["", 3]}, "zzz": 1}
    )
    assert errors == {
        "second": "value must be greater than 0",
        "policy": "expected one of: local, redis",
        "limits": {
            "burst": "expected an integer",
            "names": {0: "length must be at least 1", 1: "expected a string"},
        },
        "zzz": "unknown field",
    }
    # the entity check is skipped because 'second' already failed
    assert "@entity" not in errors


def test_entity_check_message_and_kong_json_shape() -> None:
    _, errors = RATE.validate({"limits": {"names": ["ok", 5]}})
    assert errors["@entity"] == [
        "at least one of these fields must be non-empty: 'second', 'minute'"
    ]
    assert to_kong_fields(errors) == {
        "limits": {"names": [None, "expected a string"]},
        "@entity": ["at least one of these fields must be non-empty: 'second', 'minute'"],
    }


def _checked(check: Any, data: dict[str, Any]) -> dict[str, Any]:
    fields = {n: Field.string() for n in ("a", "b", "c")}
    return Record(fields=fields, entity_checks=[check]).validate(data)[1]


@pytest.mark.parametrize(
    ("check", "data", "message"),
    [
        (
            only_one_of("a", "b"),
            {"a": "1", "b": "2"},
            "exactly one of these fields must be non-empty: 'a', 'b'",
        ),
        (only_one_of("a", "b"), {}, "exactly one of these fields must be non-empty: 'a', 'b'"),
        (
            mutually_required("a", "b"),
            {"a": "1"},
            "all or none of these fields must be set: 'a', 'b'",
        ),
        (
            mutually_exclusive("a", "b"),
            {"a": "1", "b": "2"},
            "only one or none of these fields must be set: 'a', 'b'",
        ),
        (
            distinct("a", "b"),
            {"a": "x", "b": "x"},
            "values of these fields must be distinct: 'a', 'b'",
        ),
        (
            custom_entity_check(["a"], lambda e: "nope" if e["a"] == "x" else None),
            {"a": "x"},
            "nope",
        ),
    ],
)
def test_entity_checks(check: Any, data: dict[str, Any], message: str) -> None:
    assert _checked(check, data) == {"@entity": [message]}


@pytest.mark.parametrize(
    ("check", "data"),
    [
        (only_one_of("a", "b"), {"a": "1"}),
        (mutually_required("a", "b"), {"a": "1", "b": "2"}),
        (mutually_required("a", "b"), {}),
        (mutually_exclusive("a", "b"), {"b": "2"}),
        (distinct("a", "b"), {"a": "1", "b": "2"}),
        (distinct("a", "b"), {}),
    ],
)
def test_entity_checks_pass(check: Any, data: dict[str, Any]) -> None:
    assert _checked(check, data) == {}


def test_conditional_reports_field_and_entity_error() -> None:
    check = conditional("a", Field.any(one_of=["tcp"]), "b", Field.any(eq=None))
    assert _checked(check, {"a": "tcp", "b": "/x"}) == {
        "b": "value must be null",
        "@entity": ["failed conditional validation given value of field 'a'"],
    }
    assert _checked(check, {"a": "http", "b": "/x"}) == {}
    required = conditional("a", Field.any(one_of=["h"]), "b", Field.any(required=True))
    assert _checked(required, {"a": "h"})["b"] == "required field missing"


def test_conditional_at_least_one_of_with_else_branch() -> None:
    check = conditional_at_least_one_of(
        "a",
        Field.any(one_of=["x"]),
        ["b", "c"],
        "must set one of %s when x",
        Field.any(one_of=["y"]),
        ["c"],
        "must set %s when y",
    )
    assert _checked(check, {"a": "x"}) == {"@entity": ["must set one of 'b', 'c' when x"]}
    assert _checked(check, {"a": "y", "b": "1"}) == {"@entity": ["must set 'c' when y"]}
    assert _checked(check, {"a": "z"}) == {}


def test_shorthand_and_subschema() -> None:
    rec = Record(
        fields={"kind": Field.string(default="a"), "v": Field.integer(default=1)},
        shorthands={"both": Shorthand(Field.string(), lambda s: {"kind": s, "v": 7})},
        subschema_key="kind",
        subschemas={"b": Record(fields={"v": Field.integer(default=2, eq=2)})},
    )
    assert rec.validate({}) == ({"kind": "a", "v": 1}, {})
    assert rec.validate({"kind": "b"}) == ({"kind": "b", "v": 2}, {})
    assert rec.validate({"both": "b"})[1] == {"v": "value must be 2"}
    assert rec.validate({"both": 3})[1] == {"both": "expected a string"}


def test_allow_unknown_keeps_extra_keys() -> None:
    assert Record(allow_unknown=True).validate({"x": 1}) == ({"x": 1}, {})
