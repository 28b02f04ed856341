"""Whole-document validation: metadata, nesting, references, ids, uniqueness, errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from config_helpers import doc, make_plugin, ok, problems

from tollway.config.checks import (
    at_least_one_of,
    conditional,
    conditional_at_least_one_of,
    distinct,
    mutually_exclusive,
    mutually_required,
    only_one_of,
)
from tollway.config.declarative import Locator, validate
from tollway.config.errors import ConfigError, ConfigErrorItem
from tollway.config.schema import Field, Record
from tollway.plugins import registry

ROOT = uuid.UUID("fd02801f-0957-4a15-a55a-c8d9606f30b5")


def v5(entity: str, name: str) -> str:
    return str(uuid.uuid5(uuid.uuid5(ROOT, entity), name))


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, [("_format_version", "required field missing")]),
        ({"_format_version": "2.0"}, [("_format_version", "expected one of: 1.1, 2.1, 3.0")]),
        ({"_format_version": 3.0}, [("_format_version", "expected a string")]),
        (doc(_transform="yes"), [("_transform", "expected a boolean")]),
        (doc(_info={"x": 1}), [("_info", "unknown field")]),
        (doc(tags=[]), [("tags", "unknown field")]),
        (doc(services={}), [("services", "expected an array")]),
        (doc(services=["x"]), [("services[0]", "expected a record")]),
        ([], [("<root>", "expected an object")]),
    ],
)
def test_document_level_errors(document: Any, expected: list[tuple[str, str]]) -> None:
    assert problems(document) == expected


def test_comment_and_ignore_allowed_anywhere() -> None:
    config = ok(
        doc(
            _comment="top",
            _ignore=[1, 2],
            _transform=False,
            services=[
                {
                    "host": "h",
                    "_comment": "svc",
                    "_ignore": ["x"],
                    "routes": [{"paths": ["/"], "_comment": "r"}],
                }
            ],
        )
    )
    assert "_comment" not in config.entities["services"][0]
    assert len(config.entities["routes"]) == 1


def test_empty_document_is_valid_and_has_every_entity_key() -> None:
    config = ok(doc())
    assert set(config.entities) == {
        "services",
        "routes",
        "consumers",
        "plugins",
        "upstreams",
        "targets",
        "certificates",
        "snis",
        "ca_certificates",
        "jwt_secrets",
        "keyauth_credentials",
    }
    assert all(rows == [] for rows in config.entities.values())


def test_nested_children_get_parent_key(dummy_plugins: None) -> None:
    config = ok(
        doc(
            services=[
                {
                    "name": "svc",
                    "host": "h",
                    "routes": [{"name": "r", "paths": ["/"], "plugins": [{"name": "cors"}]}],
                    "plugins": [{"name": "jwt"}],
                }
            ],
            consumers=[{"username": "alice", "plugins": [{"name": "prometheus"}]}],
        )
    )
    e = config.entities
    svc, route = e["services"][0], e["routes"][0]
    assert route["service"] == {"id": svc["id"]}
    by_name = {p["name"]: p for p in e["plugins"]}
    assert (by_name["cors"]["route"], by_name["cors"]["service"]) == ({"id": route["id"]}, None)
    assert by_name["jwt"]["service"] == {"id": svc["id"]}
    assert by_name["prometheus"]["consumer"] == {"id": e["consumers"][0]["id"]}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            doc(
                services=[{"host": "h", "plugins": [{"name": "cors", "consumer": "alice"}]}],
                consumers=[{"username": "alice"}],
            ),
            [("services[0].plugins[0].consumer", "value must be null")],
        ),
        (
            doc(
                services=[{"name": "s", "host": "h", "routes": [{"paths": ["/"], "service": "s"}]}]
            ),
            [("services[0].routes[0].service", "value must be null")],
        ),
        (
            doc(consumers=[{"username": "a", "routes": []}]),
            [("consumers[0].routes", "unknown field")],
        ),
        (
            doc(services=[{"host": "h", "routes": {}}]),
            [("services[0].routes", "expected an array")],
        ),
    ],
)
def test_nesting_errors(
    dummy_plugins: None, document: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert problems(document) == expected


def test_references_by_name_id_and_object(dummy_plugins: None) -> None:
    sid = "5a1fbb4a-0000-4000-8000-000000000001"
    config = ok(
        doc(
            services=[{"name": "svc", "host": "h"}, {"id": sid, "host": "h2"}],
            routes=[
                {"name": "by-name", "paths": ["/a"], "service": "svc"},
                {"name": "by-id", "paths": ["/b"], "service": sid},
                {"name": "by-object", "paths": ["/c"], "service": {"id": sid}},
            ],
            consumers=[{"username": "alice"}],
            plugins=[{"name": "rate-limiting", "service": "svc", "consumer": "alice"}],
        )
    )
    e = config.entities
    svc_id = e["services"][0]["id"]
    assert [r["service"] for r in e["routes"]] == [{"id": svc_id}, {"id": sid}, {"id": sid}]
    plugin = e["plugins"][0]
    assert plugin["consumer"] == {"id": e["consumers"][0]["id"]}


def test_unknown_references_are_all_reported() -> None:
    assert problems(
        doc(
            routes=[{"paths": ["/"], "service": "nope"}],
            upstreams=[{"name": "u"}],
            targets=[{"target": "a", "upstream": "missing"}],
        )
    ) == [
        ("routes[0].service", "invalid reference 'service: nope' (no such entry in 'services')"),
        (
            "targets[0].upstream",
            "invalid reference 'upstream: missing' (no such entry in 'upstreams')",
        ),
    ]


def test_deterministic_ids_follow_kong_namespaces(dummy_plugins: None) -> None:
    document = doc(
        services=[
            {
                "name": "svc",
                "host": "h",
                "routes": [{"name": "r", "paths": ["/"]}],
                "plugins": [{"name": "cors"}],
            }
        ],
        consumers=[{"username": "alice", "keyauth_credentials": [{"key": "k1"}]}],
        upstreams=[{"name": "u", "targets": [{"target": "10.0.0.1:80"}]}],
    )
    first, second = ok(document), ok(document)
    assert first == second and first.hash == second.hash
    e = first.entities
    svc_id = v5("services", "svc")
    assert e["services"][0]["id"] == svc_id
    assert e["routes"][0]["id"] == v5("routes", "r")
    assert e["consumers"][0]["id"] == v5("consumers", "alice")
    assert e["plugins"][0]["id"] == v5("plugins", f"plugins:*:cors::{svc_id}:")
    up_id = v5("upstreams", "u")
    assert e["targets"][0]["id"] == v5("targets", f"targets:*:{up_id}:10.0.0.1:80")
    assert e["keyauth_credentials"][0]["id"] == v5("keyauth_credentials", "k1")


def test_random_ids_without_endpoint_key_and_for_generated_keys() -> None:
    document = doc(
        services=[{"host": "h"}], consumers=[{"username": "a", "keyauth_credentials": [{}]}]
    )
    a, b = ok(document), ok(document)
    assert a.entities["services"][0]["id"] != b.entities["services"][0]["id"]
    assert (
        a.entities["keyauth_credentials"][0]["key"] != b.entities["keyauth_credentials"][0]["key"]
    )
    uuid.UUID(a.entities["services"][0]["id"], version=4)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            doc(services=[{"name": "s", "host": "a"}, {"name": "s", "host": "b"}]),
            [
                (
                    "services[1]",
                    "uniqueness violation: 'services' entity with name set to 's' already declared",
                )
            ],
        ),
        (
            doc(
                consumers=[{"username": "a", "custom_id": "c"}, {"username": "b", "custom_id": "c"}]
            ),
            [
                (
                    "consumers[1]",
                    "uniqueness violation: 'consumers' entity with custom_id set to 'c' "
                    "already declared",
                )
            ],
        ),
        (
            doc(
                services=[
                    {"id": "5a1fbb4a-0000-4000-8000-000000000001", "host": "a"},
                    {"id": "5a1fbb4a-0000-4000-8000-000000000001", "host": "b"},
                ]
            ),
            [
                (
                    "services[1]",
                    "uniqueness violation: 'services' entity with primary key set to "
                    "'5a1fbb4a-0000-4000-8000-000000000001' already declared",
                )
            ],
        ),
        (
            doc(
                consumers=[
                    {"username": "a", "keyauth_credentials": [{"key": "k"}]},
                    {"username": "b", "keyauth_credentials": [{"key": "k"}]},
                ]
            ),
            [
                (
                    "consumers[1].keyauth_credentials[0]",
                    "uniqueness violation: 'keyauth_credentials' "
                    "entity with key set to 'k' already declared",
                )
            ],
        ),
    ],
)
def test_uniqueness(document: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert problems(document) == expected


def test_one_plugin_instance_per_scope(dummy_plugins: None) -> None:
    svc_id = v5("services", "s")
    assert problems(
        doc(
            services=[{"name": "s", "host": "h", "plugins": [{"name": "cors"}]}],
            plugins=[{"name": "cors", "service": "s"}],
        )
    ) == [
        (
            "plugins[0]",
            "uniqueness violation: 'plugins' entity with primary key set to "
            f"'{v5('plugins', f'plugins:*:cors::{svc_id}:')}' already declared",
        )
    ]
    # same scope with explicit, different ids is still one instance too many
    ids = ["5a1fbb4a-0000-4000-8000-00000000000a", "5a1fbb4a-0000-4000-8000-00000000000b"]
    errors = problems(doc(plugins=[{"name": "cors", "id": ids[0]}, {"name": "cors", "id": ids[1]}]))
    assert errors == [
        (
            "plugins[1]",
            "uniqueness violation: 'plugins' entity with name, route, "
            "service, consumer set to 'cors, , , ' already declared",
        )
    ]
    # same target twice in one upstream; port 8000 makes "a" and "a:8000" the same target
    assert problems(
        doc(upstreams=[{"name": "u", "targets": [{"target": "a"}, {"target": "a:8000"}]}])
    )[0][0] == ("upstreams[0].targets[1]")


class StrictPlugin:
    name = "strict"
    no_consumer = True
    config_schema = Record(
        fields={
            "second": Field.number(gt=0),
            "minute": Field.number(gt=0),
            "policy": Field.string(default="local", one_of=["local", "redis"]),
        },
        entity_checks=[at_least_one_of("second", "minute")],
    )


@pytest.fixture
def strict_plugin() -> Any:
    registry.register(StrictPlugin)
    yield StrictPlugin
    registry.unregister("strict")


def test_plugin_config_validated_by_registry(strict_plugin: Any) -> None:
    config = ok(doc(plugins=[{"name": "strict", "config": {"second": 5}}]))
    assert config.entities["plugins"][0]["config"] == {
        "second": 5,
        "minute": None,
        "policy": "local",
    }
    with pytest.raises(ConfigError) as info:
        validate(
            doc(
                consumers=[{"username": "a"}],
                plugins=[
                    {"name": "strict", "config": {"second": 0}, "consumer": "a"},
                    {"name": "strict", "instance_name": "two"},
                ],
            )
        )
    assert [(i.path, i.message) for i in info.value.errors] == [
        ("plugins[0].config.second", "value must be greater than 0"),
        ("plugins[0].consumer", "value must be null"),
        ("plugins[1]", AT_LEAST_ONE),
    ]
    # the config record's entity checks are the plugin entity's, worded as Kong's
    # plugin-level checks (`config.<field>`)
    assert info.value.fields == {
        "plugins": [
            {
                "config": {"second": "value must be greater than 0"},
                "consumer": "value must be null",
            },
            {"@entity": [AT_LEAST_ONE]},
        ]
    }
    assert info.value.flattened[1]["errors"] == [{"type": "entity", "message": AT_LEAST_ONE}]


AT_LEAST_ONE = "at least one of these fields must be non-empty: 'config.second', 'config.minute'"


def test_plugin_level_checks_from_the_registry(strict_plugin: Any) -> None:
    assert registry.validate_plugin_config("strict", {}) == (
        {"second": None, "minute": None, "policy": "local"},
        {"@entity": [AT_LEAST_ONE]},
    )
    # field errors stay inside config; an entity check over a failed field is skipped
    assert registry.validate_plugin_config("strict", {"second": 0})[1] == {
        "config": {"second": "value must be greater than 0"}
    }
    # the plugin's schema object itself is unchanged (its checks say 'second')
    assert StrictPlugin.config_schema.validate({})[1] == {
        "@entity": ["at least one of these fields must be non-empty: 'second', 'minute'"]
    }


def test_plugin_level_check_wording_of_every_generic_check() -> None:
    class Worded:
        name = "worded"
        config_schema = Record(
            fields={
                "a": Field.string(),
                "b": Field.string(),
                "mode": Field.string(),
                "rec": Field.record_of(
                    Record(
                        fields={"x": Field.string(), "y": Field.string()},
                        entity_checks=[mutually_required("x", "y")],
                    )
                ),
            },
            entity_checks=[
                only_one_of("a", "b"),
                mutually_exclusive("a", "b"),
                distinct("a", "b"),
                conditional("mode", Field.any(one_of=["x"]), "a", Field.any(required=True)),
                conditional_at_least_one_of("mode", Field.any(one_of=["y"]), ["a", "b"]),
            ],
        )

    registry.register(Worded)
    try:
        _, errors = registry.validate_plugin_config(
            "worded", {"a": "v", "b": "v", "rec": {"x": "1"}}
        )
        assert errors == {
            # a nested record's checks stay in the record, worded relative to it
            "config": {"rec": {"@entity": ["all or none of these fields must be set: 'x', 'y'"]}},
            "@entity": [
                "exactly one of these fields must be non-empty: 'config.a', 'config.b'",
                "only one or none of these fields must be set: 'config.a', 'config.b'",
                "values of these fields must be distinct: 'config.a', 'config.b'",
            ],
        }
        _, errors = registry.validate_plugin_config("worded", {"mode": "x", "b": "1"})
        assert errors == {
            "config": {"a": "required field missing"},
            "@entity": ["failed conditional validation given value of field 'config.mode'"],
        }
        _, errors = registry.validate_plugin_config("worded", {"mode": "y"})
        assert errors["@entity"][-1] == (
            "at least one of these fields must be non-empty: 'config.a', 'config.b'"
        )
    finally:
        registry.unregister("worded")


@pytest.mark.parametrize(
    ("parent", "scope"),
    [
        ({"consumers": [{"username": "alice"}]}, "consumer"),
        ({"services": [{"name": "s", "host": "h"}]}, "service"),
        ({"routes": [{"name": "r", "paths": ["/"]}]}, "route"),
    ],
)
def test_no_scope_plugins_nested_under_their_forbidden_parent(
    parent: dict[str, list[dict[str, Any]]], scope: str
) -> None:
    # Kong's typedefs.no_consumer & co. see the foreign key filled from the nesting parent
    cls = make_plugin("scoped", **{f"no_{scope}": True})
    registry.register(cls)
    try:
        (key, entities), = parent.items()
        entities[0]["plugins"] = [{"name": "scoped"}]
        with pytest.raises(ConfigError) as info:
            validate(doc(**parent))
        assert [(i.path, i.message) for i in info.value.errors] == [
            (f"{key}[0].plugins[0].{scope}", "value must be null")
        ]
        assert info.value.fields == {key: [{"plugins": [{scope: "value must be null"}]}]}
        # the other scopes are fine
        registry.register(make_plugin("scoped", no_consumer=scope != "consumer"))
        entities[0]["plugins"] = [{"name": "scoped"}]
        validate(doc(**parent))
    finally:
        registry.unregister("scoped")
        registry.unregister("scoped")


@pytest.mark.parametrize("name", ["jwt", "key-auth", "cors"])
def test_bundled_no_consumer_plugins_nested_under_a_consumer(name: str) -> None:
    assert registry.get(name) is not None and registry.get(name).no_consumer
    with pytest.raises(ConfigError) as info:
        validate(doc(consumers=[{"username": "alice", "plugins": [{"name": name}]}]))
    assert [(i.path, i.message) for i in info.value.errors] == [
        ("consumers[0].plugins[0].consumer", "value must be null")
    ]


def test_registry_api() -> None:
    assert registry.get("nope") is None
    _cfg, errors = registry.validate_plugin_config("nope", {"a": 1})
    assert errors == {
        "name": "plugin 'nope' not enabled; add it to the 'plugins' configuration property"
    }
    registry.register(make_plugin("tmp-plugin", protocols=["http"]))
    try:
        assert "tmp-plugin" in registry.names()
        plugin = ok(doc(plugins=[{"name": "tmp-plugin"}])).entities["plugins"][0]
        assert plugin["protocols"] == ["http"]
    finally:
        registry.unregister("tmp-plugin")
    with pytest.raises(ValueError):
        registry.register(type("NoSchema", (), {"name": "x"}))


def test_all_errors_at_once_with_nested_paths_fields_and_flattened() -> None:
    document = doc(
        services=[
            {"name": "ok", "host": "h", "routes": [{"paths": ["/"]}, {"paths": ["x", "/a/./b"]}]},
            {"name": "bad", "port": "80"},
        ],
        consumers=[{}],
    )
    with pytest.raises(ConfigError) as info:
        validate(document)
    err = info.value
    assert [(i.path, i.message) for i in err.errors] == [
        ("services[0].routes[1].paths[0]", "should start with: / (fixed path) or ~/ (regex path)"),
        ("services[0].routes[1].paths[1]", "non-normalized path, consider use '/a/b' instead"),
        ("services[1].host", "required field missing"),
        ("services[1].port", "expected an integer"),
        ("consumers[0]", "at least one of these fields must be non-empty: 'custom_id', 'username'"),
    ]
    assert err.fields == {
        "services": [
            {
                "routes": [
                    None,
                    {
                        "paths": [
                            "should start with: / (fixed path) or ~/ (regex path)",
                            "non-normalized path, consider use '/a/b' instead",
                        ]
                    },
                ]
            },
            {"host": "required field missing", "port": "expected an integer"},
        ],
        "consumers": [
            {"@entity": ["at least one of these fields must be non-empty: 'custom_id', 'username'"]}
        ],
    }
    flat = {(f["entity_type"], f["entity_name"]): f for f in err.flattened}
    assert set(flat) == {("route", None), ("service", "bad"), ("consumer", None)}
    assert flat[("service", "bad")]["errors"] == [
        {"type": "field", "field": "host", "message": "required field missing"},
        {"type": "field", "field": "port", "message": "expected an integer"},
    ]
    assert flat[("route", None)]["entity"]["service"] == {"id": v5("services", "ok")}
    assert flat[("consumer", None)]["errors"] == [
        {
            "type": "entity",
            "message": "at least one of these fields must be non-empty: 'custom_id', 'username'",
        }
    ]


def test_locator_lines_and_rendering() -> None:
    locator = Locator(
        {("services",): 2, ("services", 0): 3, ("services", 0, "port"): 5}, filename="kong.yml"
    )
    with pytest.raises(ConfigError) as info:
        validate(doc(services=[{"port": "x"}]), locator)
    lines = [(i.path, i.line) for i in info.value.errors]
    assert lines == [("services[0].host", 3), ("services[0].port", 5)]
    assert str(info.value.errors[1]) == "kong.yml:5: services[0].port: expected an integer"
    assert str(ConfigErrorItem("a.b", "msg", 7)) == "a.b: msg (line 7)"
    assert str(ConfigErrorItem("a.b", "msg")) == "a.b: msg"


@pytest.mark.parametrize(
    ("version", "path", "migrated"),
    [
        ("1.1", "/api/v1", "/api/v1"),
        ("2.1", "/api/%7Ev1", "/api/~v1"),
        ("2.1", "/users/\\d+", "~/users/\\d+"),
        ("1.1", "/item/(?<id>[0-9]+)$", "~/item/(?<id>[0-9]+)$"),
        ("3.0", "~/x$", "~/x$"),
    ],
)
def test_old_format_route_paths_are_migrated(version: str, path: str, migrated: str) -> None:
    config = ok(
        {"_format_version": version, "services": [{"host": "h", "routes": [{"paths": [path]}]}]}
    )
    assert config.entities["routes"][0]["paths"] == [migrated]
