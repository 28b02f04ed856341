"""request-transformer config: defaults and every validation message."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.plugins import registry

EMPTY3 = {"body": [], "headers": [], "querystring": []}

registry.load_bundled()


def validate(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return registry.validate_plugin_config("request-transformer", config)


def test_defaults() -> None:
    config, errors = validate({})
    assert errors == {}
    assert config == {"http_method": None, "remove": EMPTY3, "rename": EMPTY3,
                      "replace": {**EMPTY3, "uri": None}, "add": EMPTY3, "append": EMPTY3}


@pytest.mark.parametrize("config,expected", [
    ({"http_method": "get"}, {"http_method": "invalid value: get"}),
    ({"remove": {"headers": ["bad header"]}},
     {"remove": {"headers": {0: "'bad header' is not a valid header"}}}),
    ({"rename": {"headers": ["x-a"]}}, {"rename": {"headers": {0: "invalid value: x-a"}}}),
    ({"rename": {"headers": ["x-a:bad name"]}},
     {"rename": {"headers": {0: "'bad name' is not a valid header"}}}),
    ({"add": {"headers": ["x-a"]}}, {"add": {"headers": {0: "invalid value: x-a"}}}),
    ({"add": {"headers": ["x a:v"]}}, {"add": {"headers": {0: "'x a' is not a valid header"}}}),
    ({"add": {"querystring": ["q"]}}, {"add": {"querystring": {0: "key 'q' has no value"}}}),
    ({"append": {"body": ["b:"]}}, {"append": {"body": {0: "key 'b' has no value"}}}),
    ({"replace": {"querystring": ["q:$(os.exit())"]}},
     {"replace": {"querystring": {0: "value '$(os.exit())' is not in supported format, "
                                     "error:unsupported template expression 'os.exit()'"}}}),
    ({"replace": {"uri": ""}}, {"replace": {"uri": "length must be at least 1"}}),
    ({"remove": {"headers": "x"}}, {"remove": {"headers": "expected an array"}}),
])
def test_errors(config: dict[str, Any], expected: dict[str, Any]) -> None:
    assert validate(config)[1] == {"config": expected}


@pytest.mark.parametrize("config", [
    {"http_method": "PATCH"},
    {"add": {"headers": ["x-a:", "x-b:v:w"], "querystring": ["q:a:b"]}},
    {"replace": {"uri": "/u/$(uri_captures[1])", "headers": ["h:$(headers['x-y'] or \"d\")"]}},
    {"rename": {"headers": ["x-a:x-b"], "querystring": ["a:b"], "body": ["a:b"]}},
])
def test_valid(config: dict[str, Any]) -> None:
    assert validate(config)[1] == {}
