"""ip-restriction `config`: Kong's fields, messages, protocols default."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.config.declarative import validate
from tollway.config.errors import ConfigError
from tollway.plugins import registry
from tollway.plugins.ip_restriction.handler import IpRestrictionPlugin

NULLS = {"allow": None, "deny": None, "status": None, "message": None}
ONE_OF = "at least one of these fields must be non-empty: 'config.allow', 'config.deny'"


def test_registered_with_kong_priority() -> None:
    assert registry.get("ip-restriction") is IpRestrictionPlugin
    assert IpRestrictionPlugin.priority == 990


@pytest.mark.parametrize(("config", "expected"), [
    ({"allow": ["10.0.0.1"]}, {**NULLS, "allow": ["10.0.0.1"]}),
    ({"deny": ["10.0.0.0/8", "::1", "2001:db8::/32"]},
     {**NULLS, "deny": ["10.0.0.0/8", "::1", "2001:db8::/32"]}),
    ({"allow": ["1.2.3.4"], "deny": [], "status": 401, "message": "no"},
     {"allow": ["1.2.3.4"], "deny": [], "status": 401, "message": "no"}),
    ({"deny": ["1.2.3.4/24"]}, {**NULLS, "deny": ["1.2.3.4/24"]}),  # host bits accepted
])
def test_valid(config: dict[str, Any], expected: dict[str, Any]) -> None:
    normalised, errors = registry.validate_plugin_config("ip-restriction", config)
    assert errors == {}
    assert normalised == expected


@pytest.mark.parametrize(("config", "errors"), [
    ({}, {"@entity": [ONE_OF]}),
    (None, {"@entity": [ONE_OF]}),
    ({"allow": [], "deny": []}, {"@entity": [ONE_OF]}),
    ({"allow": ["1.2.3.256"]}, {"allow": {0: "invalid ip or cidr range: '1.2.3.256'"}}),
    ({"deny": ["10.0.0.0/33", "x"]},
     {"deny": {0: "invalid ip or cidr range: '10.0.0.0/33'",
               1: "invalid ip or cidr range: 'x'"}}),
    ({"allow": "1.2.3.4"}, {"allow": "expected an array"}),
    ({"deny": ["1.2.3.4"], "status": "403"}, {"status": "expected a number"}),
    ({"deny": ["1.2.3.4"], "message": 5}, {"message": "expected a string"}),
    ({"deny": ["1.2.3.4"], "whitelist": ["1.2.3.4"]}, {"whitelist": "unknown field"}),
])
def test_errors(config: dict[str, Any] | None, errors: dict[str, Any]) -> None:
    _, got = registry.validate_plugin_config("ip-restriction", config)
    # the config record's entity checks are reported as the plugin entity's `@entity`
    inside = {k: v for k, v in errors.items() if k != "@entity"}
    entity = {k: v for k, v in errors.items() if k == "@entity"}
    assert got == ({"config": inside} if inside else {}) | entity


def test_protocols_default_includes_stream() -> None:
    config = validate({"_format_version": "3.0",
                       "plugins": [{"name": "ip-restriction", "config": {"deny": ["::1"]}}]})
    assert config.entities["plugins"][0]["protocols"] == ["http", "https", "tcp", "tls",
                                                          "grpc", "grpcs"]


def test_declarative_error_path() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"_format_version": "3.0", "plugins": [{"name": "ip-restriction"}]})
    assert [(e.path, e.message) for e in info.value.errors] == [("plugins[0]", ONE_OF)]


@pytest.mark.parametrize(("config", "ip", "blocked"), [
    ({"deny": ["10.0.0.0/8"]}, "10.1.2.3", True),
    ({"deny": ["10.0.0.0/8"]}, "11.1.2.3", False),
    ({"allow": ["2001:db8::/32"]}, "2001:db8::1", False),
    ({"allow": ["2001:db8::/32"]}, "2001:db9::1", True),
    ({"allow": ["2001:db8::/32"]}, "10.0.0.1", True),
    ({"deny": ["10.0.0.1"]}, "::ffff:10.0.0.1", True),  # an IPv4-mapped client
    ({"allow": ["10.0.0.1"]}, "::ffff:10.0.0.1", False),
    ({"allow": ["10.0.0.1"]}, "not-an-ip", True),
])
def test_verdicts(config: dict[str, Any], ip: str, blocked: bool) -> None:
    normalised, _ = registry.validate_plugin_config("ip-restriction", config)
    plugin = IpRestrictionPlugin(normalised, {"id": "x"})
    assert plugin._blocked(ip) is blocked
