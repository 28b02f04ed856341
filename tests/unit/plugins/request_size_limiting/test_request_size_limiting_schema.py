"""request-size-limiting `config`: Kong's fields, defaults and messages."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.plugins import registry
from tollway.plugins.request_size_limiting.handler import RequestSizeLimitingPlugin, _number

DEFAULTS = {"allowed_payload_size": 128, "size_unit": "megabytes",
            "require_content_length": False}


def test_registered_with_kong_priority() -> None:
    assert registry.get("request-size-limiting") is RequestSizeLimitingPlugin
    assert RequestSizeLimitingPlugin.priority == 951


@pytest.mark.parametrize(("config", "expected"), [
    (None, DEFAULTS),
    ({}, DEFAULTS),
    ({"allowed_payload_size": 10, "size_unit": "bytes", "require_content_length": True},
     {"allowed_payload_size": 10, "size_unit": "bytes", "require_content_length": True}),
    ({"size_unit": "kilobytes"}, {**DEFAULTS, "size_unit": "kilobytes"}),
    ({"allowed_payload_size": 5.0}, {**DEFAULTS, "allowed_payload_size": 5}),
    ({"allowed_payload_size": -1}, {**DEFAULTS, "allowed_payload_size": -1}),  # Kong: no bound
])
def test_defaults(config: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    normalised, errors = registry.validate_plugin_config("request-size-limiting", config)
    assert errors == {}
    assert normalised == expected


@pytest.mark.parametrize(("config", "errors"), [
    ({"allowed_payload_size": 1.5}, {"allowed_payload_size": "expected an integer"}),
    ({"allowed_payload_size": "1"}, {"allowed_payload_size": "expected an integer"}),
    ({"size_unit": "gigabytes"},
     {"size_unit": "expected one of: megabytes, kilobytes, bytes"}),
    ({"size_unit": None}, {"size_unit": "required field missing"}),
    ({"require_content_length": None}, {"require_content_length": "required field missing"}),
    ({"require_content_length": "no"}, {"require_content_length": "expected a boolean"}),
    ({"limit": 1}, {"limit": "unknown field"}),
])
def test_errors(config: dict[str, Any], errors: dict[str, Any]) -> None:
    _, got = registry.validate_plugin_config("request-size-limiting", config)
    assert got == {"config": errors}


@pytest.mark.parametrize(("config", "limit"), [
    ({}, 128 * 1048576),
    ({"allowed_payload_size": 3, "size_unit": "kilobytes"}, 3072),
    ({"allowed_payload_size": 3, "size_unit": "bytes"}, 3),
])
def test_limit_in_bytes(config: dict[str, Any], limit: int) -> None:
    normalised, _ = registry.validate_plugin_config("request-size-limiting", config)
    assert RequestSizeLimitingPlugin(normalised, {"id": "x"}).limit == limit


@pytest.mark.parametrize(("value", "number"), [
    (b"12", 12), (b" 12 ", 12), (b"0x10", 16), (b"1e3", 1000.0), (b"1.5", 1.5),
    (b"", None), (b"abc", None), (b"nan", None), (b"inf", None),
])
def test_lua_tonumber(value: bytes, number: float | None) -> None:
    assert _number(value) == number
