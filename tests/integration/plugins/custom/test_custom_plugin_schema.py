"""header-stamp's config_schema: defaults and every message, directly and as a declarative
config reports them."""

from __future__ import annotations

from typing import Any

import pytest
from tollway_header_stamp import HeaderStamp

from tollway.config import declarative
from tollway.config.errors import ConfigError
from tollway.plugins import registry

DEFAULTS = {"upstream_header": "X-Stamp", "downstream_header": None, "value": "tollway",
            "on_exists": "override", "include_worker": False, "require_header": None}
AT_LEAST_ONE = ("at least one of these fields must be non-empty: 'upstream_header', "
                "'downstream_header'")


def test_defaults() -> None:
    assert HeaderStamp.config_schema.validate({}) == (DEFAULTS, {})


@pytest.mark.parametrize(("config", "errors"), [
    ({"on_exists": "replace"}, {"on_exists": "expected one of: override, append, keep"}),
    ({"value": "a\r\nb"}, {"value": "value must contain only printable ASCII characters"}),
    ({"value": "é"}, {"value": "value must contain only printable ASCII characters"}),
    ({"value": ""}, {"value": "length must be at least 1"}),
    ({"value": "x" * 257}, {"value": "length must be at most 256"}),
    ({"value": 5}, {"value": "expected a string"}),
    ({"include_worker": "yes"}, {"include_worker": "expected a boolean"}),
    ({"upstream_header": "X Stamp"},
     {"upstream_header": "bad header name 'X Stamp', allowed characters are A-Z, a-z, 0-9, "
                         "'_', and '-'"}),
    ({"require_header": "a:b"},
     {"require_header": "bad header name 'a:b', allowed characters are A-Z, a-z, 0-9, '_', "
                        "and '-'"}),
    ({"upstream_header": None}, {"@entity": [AT_LEAST_ONE]}),
    ({"color": "red"}, {"color": "unknown field"}),
])
def test_messages(config: dict[str, Any], errors: dict[str, Any]) -> None:
    assert HeaderStamp.config_schema.validate(config)[1] == errors


def test_valid_configs() -> None:
    for config in ({"upstream_header": None, "downstream_header": "X-Served-By"},
                   {"value": "a b ~!", "on_exists": "keep", "include_worker": True},
                   {"value": "x" * 256, "require_header": "X-Ticket_2"}):
        assert HeaderStamp.config_schema.validate(config)[1] == {}, config


def test_declarative_errors(header_stamp: type[HeaderStamp]) -> None:
    def errors(config: dict[str, Any]) -> set[tuple[str, str]]:
        document = {"_format_version": "3.0",
                    "plugins": [{"name": "header-stamp", "config": config}]}
        with pytest.raises(ConfigError) as info:
            declarative.validate(document)
        return {(e.path, e.message) for e in info.value.errors}

    assert errors({"on_exists": "x"}) == {
        ("plugins[0].config.on_exists", "expected one of: override, append, keep")}
    # checks declared on config_schema are Kong's plugin-level checks: reported on the
    # plugin entity, naming the fields config.<field>
    assert errors({"upstream_header": None}) == {
        ("plugins[0]", "at least one of these fields must be non-empty: "
                       "'config.upstream_header', 'config.downstream_header'")}


def test_not_registered_is_not_enabled() -> None:
    assert registry.get("header-stamp") is None
    assert registry.validate_plugin_config("header-stamp", {})[1] == {
        "name": "plugin 'header-stamp' not enabled; add it to the 'plugins' configuration "
                "property"}
