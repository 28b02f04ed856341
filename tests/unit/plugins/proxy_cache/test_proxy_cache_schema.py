"""proxy-cache config: defaults, messages, and the cache policy helpers."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.plugins import registry
from tollway.plugins.proxy_cache.policy import (
    content_type_matches,
    parse_directives,
    parse_mime,
    resource_ttl,
)

registry.load_bundled()


def validate(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return registry.validate_plugin_config("proxy-cache", config)


def test_defaults() -> None:
    config, errors = validate({"strategy": "memory"})
    assert errors == {}
    assert config == {
        "response_code": [200, 301, 404], "request_method": ["GET", "HEAD"],
        "content_type": ["text/plain", "application/json"], "cache_ttl": 300,
        "strategy": "memory", "cache_control": False, "ignore_uri_case": False,
        "storage_ttl": None, "memory": {"dictionary_name": "kong_db_cache"},
        "vary_query_params": None, "vary_headers": None,
        "response_headers": {"age": True, "X-Cache-Status": True, "X-Cache-Key": True}}


@pytest.mark.parametrize("config,expected", [
    ({}, {"strategy": "required field missing"}),
    ({"strategy": "redis"}, {"strategy": "expected one of: memory"}),
    ({"strategy": "memory", "response_code": []},
     {"response_code": "length must be at least 1"}),
    ({"strategy": "memory", "response_code": [99]},
     {"response_code": {0: "value should be between 100 and 900"}}),
    ({"strategy": "memory", "request_method": ["DELETE"]},
     {"request_method": {0: "expected one of: HEAD, GET, POST, PATCH, PUT"}}),
    ({"strategy": "memory", "cache_ttl": 0}, {"cache_ttl": "value must be greater than 0"}),
    ({"strategy": "memory", "memory": {"dictionary_name": "nope"}},
     {"@entity": ["missing shared dict 'nope'"]}),
    ({"strategy": "memory", "cache_control": "yes"}, {"cache_control": "expected a boolean"}),
])
def test_errors(config: dict[str, Any], expected: dict[str, Any]) -> None:
    # the config record's entity checks are reported as the plugin entity's `@entity`
    inside = {k: v for k, v in expected.items() if k != "@entity"}
    entity = {k: v for k, v in expected.items() if k == "@entity"}
    assert validate(config)[1] == ({"config": inside} if inside else {}) | entity


def test_directives() -> None:
    assert parse_directives(["max-age=60, No-Store", "x=abc"]) == {
        "max-age": 60, "no-store": True, "x": "abc"}
    assert resource_ttl({"s-maxage": 10, "max-age": 60}, []) == 10
    assert resource_ttl({"max-age": -5}, []) == 0
    assert resource_ttl({}, [b"Thu, 01 Jan 1970 00:00:00 GMT"]) == 0
    assert resource_ttl({}, [b"Fri, 01 Jan 2100 00:00:00 GMT"]) > 0


@pytest.mark.parametrize("ctype,allowed,ok", [
    ("application/json", ["application/json"], True),
    ("application/json; charset=utf-8", ["application/json"], False),
    ("Application/JSON; charset=utf-8", ["application/json; charset=utf-8"], True),
    ("text/html", ["text/*"], True),
    ("image/png", ["*/*"], True),
    ("text", ["text/plain"], False),
])
def test_content_type(ctype: str, allowed: list[str], ok: bool) -> None:
    parsed = [p for p in map(parse_mime, allowed) if p is not None]
    assert content_type_matches(ctype, parsed) is ok
