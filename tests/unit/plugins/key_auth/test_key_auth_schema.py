"""key-auth config schema: defaults and validation messages (kong/plugins/key-auth/schema.lua)."""

from __future__ import annotations

from typing import Any

import pytest

from tollway.config.declarative import validate
from tollway.config.errors import ConfigError
from tollway.plugins import registry

DEFAULTS = {
    "key_names": ["apikey"],
    "hide_credentials": False,
    "anonymous": None,
    "key_in_header": True,
    "key_in_query": True,
    "key_in_body": False,
    "run_on_preflight": True,
    "realm": None,
}


def check(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    assert registry.get("key-auth") is not None  # loads the bundled plugins
    return registry.validate_plugin_config("key-auth", config)


def test_defaults() -> None:
    assert check({}) == (DEFAULTS, {})


def test_plugin_class_facts() -> None:
    cls = registry.get("key-auth")
    assert (cls.priority, cls.no_consumer) == (1250, True)


@pytest.mark.parametrize(("config", "errors"), [
    ({"key_names": ["api key"]},
     {"key_names": {0: "bad header name 'api key', allowed characters are A-Z, a-z, 0-9, "
                       "'_', and '-'"}}),
    ({"key_names": None}, {"key_names": "required field missing"}),
    ({"key_names": "apikey"}, {"key_names": "expected an array"}),
    ({"hide_credentials": None}, {"hide_credentials": "required field missing"}),
    ({"key_in_header": 1}, {"key_in_header": "expected a boolean"}),
    ({"key_in_query": None}, {"key_in_query": "required field missing"}),
    ({"key_in_body": "no"}, {"key_in_body": "expected a boolean"}),
    ({"run_on_preflight": None}, {"run_on_preflight": "required field missing"}),
    ({"anonymous": ""}, {"anonymous": "length must be at least 1"}),
    ({"realm": 5}, {"realm": "expected a string"}),
    ({"bogus": 1}, {"bogus": "unknown field"}),
])
def test_errors(config: dict[str, Any], errors: dict[str, Any]) -> None:
    assert check(config)[1] == {"config": errors}


def test_key_names_keep_order_and_duplicates() -> None:
    assert check({"key_names": ["b", "a", "b"]})[0]["key_names"] == ["b", "a", "b"]


def test_consumer_scope_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"_format_version": "3.0", "consumers": [{"username": "c"}],
                  "plugins": [{"name": "key-auth", "consumer": "c"}]})
    assert [(e.path, e.message) for e in info.value.errors] == [
        ("plugins[0].consumer", "value must be null")]
