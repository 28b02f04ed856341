"""response-transformer config: defaults, messages, and the JSON body transform."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tollway.plugins import registry
from tollway.plugins.response_transformer.json_body import JsonTransform, json_value

registry.load_bundled()


def validate(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return registry.validate_plugin_config("response-transformer", config)


def test_defaults() -> None:
    config, errors = validate({})
    assert errors == {}
    typed = {"json": [], "json_types": [], "headers": []}
    assert config == {"remove": {"json": [], "headers": []},
                      "rename": {"json": [], "headers": []},
                      "replace": typed, "add": typed, "append": typed}


@pytest.mark.parametrize("config,expected", [
    ({"add": {"json": ["a"]}}, {"add": {"json": {0: "invalid value: a"}}}),
    ({"add": {"headers": ["h"]}}, {"add": {"headers": {0: "invalid value: h"}}}),
    ({"add": {"json_types": ["int"]}},
     {"add": {"json_types": {0: "expected one of: boolean, number, string"}}}),
    ({"rename": {"headers": ["a:b c"]}},
     {"rename": {"headers": {0: "'b c' is not a valid header"}}}),
    ({"remove": {"json": [1]}}, {"remove": {"json": {0: "expected a string"}}}),
])
def test_errors(config: dict[str, Any], expected: dict[str, Any]) -> None:
    assert validate(config)[1] == {"config": expected}


def transform(conf: dict[str, Any], body: Any) -> Any:
    config, errors = validate(conf)
    assert errors == {}
    out = JsonTransform(config).apply(json.dumps(body).encode())
    return None if out is None else json.loads(out)


def test_json_order_and_semantics() -> None:
    assert transform({
        "remove": {"json": ["a"]}, "rename": {"json": ["b:c"]},
        "replace": {"json": ["f:x", "n:y"]}, "add": {"json": ["f2:z", "new:1"]},
        "append": {"json": ["s:2", "l:3", "num:4"]},
    }, {"a": 1, "b": 2, "f": False, "n": None, "f2": False, "s": "1", "l": [], "num": 5}) == {
        "c": 2, "f": False, "n": "y", "f2": "z", "new": "1", "s": ["1", "2"], "l": ["3"],
        "num": ["4"]}


def test_non_object_left_alone() -> None:
    assert transform({"add": {"json": ["a:1"]}}, [1, 2]) is None


@pytest.mark.parametrize("value,typ,expected", [
    ("12", "number", 12), ("1.5", "number", 1.5), ("x", "number", None),
    ("true", "boolean", True), ("yes", "boolean", False), ('say "hi"', "string", 'say "hi"'),
    ("a/b", None, "a/b"), ("back\\slash", None, "back\\\\slash"),
])
def test_json_value(value: str, typ: str | None, expected: Any) -> None:
    assert json_value(value, typ) == expected
