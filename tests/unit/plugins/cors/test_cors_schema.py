"""cors `config`: Kong's fields, defaults and messages."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.config.declarative import validate
from tollway.config.errors import ConfigError
from tollway.plugins import registry
from tollway.plugins.cors.handler import CorsPlugin

METHODS = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
DEFAULTS = {"origins": None, "headers": None, "exposed_headers": None, "methods": METHODS,
            "max_age": None, "credentials": False, "private_network": False,
            "preflight_continue": False, "allow_origin_absent": True}


def test_registered_with_kong_priority() -> None:
    assert registry.get("cors") is CorsPlugin
    assert CorsPlugin.priority == 2000
    assert CorsPlugin.no_consumer


@pytest.mark.parametrize(("config", "expected"), [
    (None, DEFAULTS),
    ({}, DEFAULTS),
    ({"origins": ["*"]}, {**DEFAULTS, "origins": ["*"]}),
    ({"origins": ["http://a.test", r"https://.*\.b\.test", "(?<n>x)"]},
     {**DEFAULTS, "origins": ["http://a.test", r"https://.*\.b\.test", "(?<n>x)"]}),
    ({"methods": ["GET", "POST"], "headers": ["X-A"], "exposed_headers": ["X-B"],
      "max_age": 3600, "credentials": True, "private_network": True,
      "preflight_continue": True, "allow_origin_absent": False},
     {"origins": None, "methods": ["GET", "POST"], "headers": ["X-A"],
      "exposed_headers": ["X-B"], "max_age": 3600, "credentials": True,
      "private_network": True, "preflight_continue": True, "allow_origin_absent": False}),
    ({"max_age": 1.5}, {**DEFAULTS, "max_age": 1.5}),
    ({"methods": []}, {**DEFAULTS, "methods": []}),
])
def test_defaults(config: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    normalised, errors = registry.validate_plugin_config("cors", config)
    assert errors == {}
    assert normalised == expected


@pytest.mark.parametrize(("config", "errors"), [
    ({"origins": ["*.example.com"]}, {"origins": {0: "'*.example.com' is not a valid regex"}}),
    ({"origins": ["ok.test", "(unclosed"]},
     {"origins": {1: "'(unclosed' is not a valid regex"}}),
    ({"origins": "*"}, {"origins": "expected an array"}),
    ({"origins": [""]}, {"origins": {0: "length must be at least 1"}}),
    ({"methods": ["GET", "FETCH"]},
     {"methods": {1: "expected one of: GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS, TRACE, "
                     "CONNECT"}}),
    ({"methods": ["get"]},
     {"methods": {0: "expected one of: GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS, TRACE, "
                     "CONNECT"}}),
    ({"headers": [1]}, {"headers": {0: "expected a string"}}),
    ({"exposed_headers": "X-A"}, {"exposed_headers": "expected an array"}),
    ({"max_age": "3600"}, {"max_age": "expected a number"}),
    ({"credentials": None}, {"credentials": "required field missing"}),
    ({"credentials": "true"}, {"credentials": "expected a boolean"}),
    ({"private_network": 1}, {"private_network": "expected a boolean"}),
    ({"preflight_continue": None}, {"preflight_continue": "required field missing"}),
    ({"allow_origin_absent": None}, {"allow_origin_absent": "required field missing"}),
    ({"origin": "*"}, {"origin": "unknown field"}),
])
def test_errors(config: dict[str, Any], errors: dict[str, Any]) -> None:
    _, got = registry.validate_plugin_config("cors", config)
    assert got == {"config": errors}


def test_no_consumer_scope() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"_format_version": "3.0", "consumers": [{"username": "u"}],
                  "plugins": [{"name": "cors", "consumer": "u"}]})
    assert [(e.path, e.message) for e in info.value.errors] == [
        ("plugins[0].consumer", "value must be null")]


def test_precomputed_values() -> None:
    normalised, _ = registry.validate_plugin_config("cors", {
        "headers": ["Accept", "Authorization"], "exposed_headers": ["X-Request-ID", "X-B"],
        "methods": ["GET", "POST"], "max_age": 3600.0})
    plugin = CorsPlugin(normalised, {"id": "x"})
    assert plugin.allow_headers == b"Accept,Authorization"
    assert plugin.exposed == b"X-Request-ID,X-B"
    assert plugin.methods == b"GET,POST"
    assert plugin.max_age == b"3600"
    empty = CorsPlugin(registry.validate_plugin_config("cors", {"methods": []})[0], {"id": "y"})
    assert empty.methods == b"" and empty.allow_headers is None and empty.max_age is None
