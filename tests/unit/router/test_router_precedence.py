"""§2.5 precedence of the traditional_compatible router, one rule per case."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from router_helpers import rid, route, service

from tollway.dataplane.router import build_router
from tollway.dataplane.router.matcher import derived_id, priority_of

# (description, routes, request kwargs, expected winner name)
PRECEDENCE_CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any], str]] = [
    (
        "more attributes win: path+method beats path",
        [
            route("path", 9, paths=["/api"]),
            route("path+method", 1, paths=["/api"], methods=["GET"]),
        ],
        {"method": "GET", "path": "/api"},
        "path+method",
    ),
    (
        "the less specific route still serves what the specific one rejects",
        [
            route("path", 9, paths=["/api"]),
            route("path+method", 1, paths=["/api"], methods=["GET"]),
        ],
        {"method": "POST", "path": "/api"},
        "path",
    ),
    (
        "attribute count beats prefix length",
        [
            route("long-path", 9, paths=["/api/very/long/prefix"]),
            route("host+root", 1, hosts=["a.test"], paths=["/"]),
        ],
        {"host": "a.test", "path": "/api/very/long/prefix/x"},
        "host+root",
    ),
    (
        "plain host beats wildcard host (even with a greater UUID)",
        [route("wild", 9, hosts=["*.example.com"]), route("plain", 1, hosts=["api.example.com"])],
        {"host": "api.example.com"},
        "plain",
    ),
    (
        "plain host beats prefix wildcard host",
        [route("wild", 9, hosts=["api.*"]), route("plain", 1, hosts=["api.example.com"])],
        {"host": "api.example.com"},
        "plain",
    ),
    (
        "host-only (plain) beats path-only",
        [route("path", 9, paths=["/api/long"]), route("host", 1, hosts=["a.test"])],
        {"host": "a.test", "path": "/api/long"},
        "host",
    ),
    (
        "path-only beats wildcard-host-only (no plain-host bit, prefix length decides)",
        [route("wild", 9, hosts=["*.test"]), route("path", 1, paths=["/"])],
        {"host": "a.test", "path": "/x"},
        "path",
    ),
    (
        "more headers win",
        [
            route("one-header", 9, headers={"x-a": ["1"]}),
            route("two-headers", 1, headers={"x-a": ["1"], "x-b": ["2"]}),
        ],
        {"headers": {"x-a": ["1"], "x-b": ["2"]}},
        "two-headers",
    ),
    (
        "header count outranks regex and length",
        [
            route("regex", 9, paths=["~/api"], headers={"x-a": ["1"]}),
            route("two-headers", 1, paths=["/"], headers={"x-a": ["1"], "x-b": ["2"]}),
        ],
        {"path": "/api", "headers": {"x-a": ["1"], "x-b": ["2"]}},
        "two-headers",
    ),
    (
        "regex path beats a longer prefix path",
        [route("prefix", 9, paths=["/api/v1/users"]), route("regex", 1, paths=[r"~/api/v\d"])],
        {"path": "/api/v1/users"},
        "regex",
    ),
    (
        "higher regex_priority wins among regex routes",
        [
            route("low", 9, paths=["~/api"], regex_priority=1),
            route("high", 1, paths=["~/api/.*"], regex_priority=5),
        ],
        {"path": "/api/x"},
        "high",
    ),
    (
        "negative regex_priority ranks below the default 0",
        [
            route("negative", 9, paths=["~/api"], regex_priority=-1),
            route("zero", 1, paths=["~/api"], regex_priority=0),
        ],
        {"path": "/api"},
        "zero",
    ),
    (
        "negative regex_priority never outranks more attributes",
        [
            route("negative", 9, paths=["~/api"], regex_priority=-5),
            route("prefix+method", 1, paths=["/api"], methods=["GET"]),
        ],
        {"path": "/api"},
        "prefix+method",
    ),
    (
        "regex_priority is ignored for prefix paths",
        [
            route("prefix", 9, paths=["/api"], regex_priority=100),
            route("regex", 1, paths=["~/api"], regex_priority=0),
        ],
        {"path": "/api"},
        "regex",
    ),
    (
        "longest prefix wins",
        [route("short", 9, paths=["/api"]), route("long", 1, paths=["/api/v1"])],
        {"path": "/api/v1/x"},
        "long",
    ),
    (
        "prefix is a character prefix: /api/v1 also covers /api/v1x",
        [route("short", 9, paths=["/api"]), route("long", 1, paths=["/api/v1"])],
        {"path": "/api/v1x"},
        "long",
    ),
    (
        "equal priority: greater UUID wins (list order irrelevant)",
        [route("greater", 2, paths=["/same"]), route("smaller", 1, paths=["/same"])],
        {"path": "/same"},
        "greater",
    ),
    (
        "equal priority: greater UUID wins (reversed list order)",
        [route("smaller", 1, paths=["/same"]), route("greater", 2, paths=["/same"])],
        {"path": "/same"},
        "greater",
    ),
    (
        "equal weight: hosts+paths beats methods+hosts via prefix length",
        [
            route("methods+hosts", 9, methods=["GET"], hosts=["a.test"]),
            route("hosts+paths", 1, hosts=["a.test"], paths=["/x"]),
        ],
        {"host": "a.test", "path": "/x"},
        "hosts+paths",
    ),
    (
        "a split route competes with its longest matching prefix",
        [
            route("multi", 1, paths=["/s", "/much/longer"]),
            route("single", 9, paths=["/much"]),
        ],
        {"path": "/much/longer/x"},
        "multi",
    ),
    (
        "a split route's short prefix loses to a longer single prefix",
        [
            route("multi", 9, paths=["/m", "/other/long"]),
            route("single", 1, paths=["/much"]),
        ],
        {"path": "/much/x"},
        "single",
    ),
    (
        "sni is an attribute over https",
        [route("path", 9, paths=["/"]), route("sni+path", 1, paths=["/"], snis=["a.test"])],
        {"path": "/", "scheme": "https", "sni": "a.test"},
        "sni+path",
    ),
]


@pytest.mark.parametrize(
    ("routes", "request_kw", "expected"),
    [pytest.param(c[1], c[2], c[3], id=c[0]) for c in PRECEDENCE_CASES],
)
def test_precedence(
    routes: list[dict[str, Any]], request_kw: dict[str, Any], expected: str
) -> None:
    router = build_router(routes, [service()])
    kw: dict[str, Any] = {"method": "GET", "host": "example.com", "path": "/", "headers": None}
    kw.update(request_kw)
    m = router.match(**kw)
    assert m is not None
    assert m.route["name"] == expected


def test_split_matchers_use_derived_uuids_for_ties() -> None:
    # A route with two paths is split; its matcher ids are uuid5-derived from
    # "<id>#<byte length>", so ties against other routes use the derived id.
    multi = route("multi", 5, paths=["/aa", "/bbbb"])
    single = route("single", 6, paths=["/aa"])
    router = build_router([multi, single], [service()])
    m = router.match("GET", None, "/aa", None)
    assert m is not None
    expected = "multi" if derived_id(rid(5), "3") > rid(6) else "single"
    assert m.route["name"] == expected
    assert {x.id for x in router.matchers if x.route is multi} == {
        derived_id(rid(5), "3"),
        derived_id(rid(5), "5"),
    }


def test_derived_id_is_stable_uuid5() -> None:
    # Kong: uuid5(ns 7f145bf9-0dce-4f91-98eb-debbce4b9f6b, "<route id>#<len>" or "#true").
    value = derived_id(rid(1), "true")
    assert uuid.UUID(value).version == 5
    assert value == str(uuid.uuid5(uuid.UUID("7f145bf9-0dce-4f91-98eb-debbce4b9f6b"),
                                   rid(1) + "#true"))
    assert value != derived_id(rid(1), "4")


BIT = 1 << 61


@pytest.mark.parametrize(
    ("fields", "paths", "expected"),
    [
        pytest.param({}, ["/abc"], BIT | 4, id="prefix length in bits 0-18"),
        pytest.param({"hosts": ["a"]}, None, BIT | 1 << 60, id="plain host bit"),
        pytest.param({"hosts": ["*.a"]}, None, BIT, id="wildcard host: no plain bit"),
        pytest.param({"hosts": []}, ["/"], BIT | 1 << 60 | 1, id="Kong quirk: [] hosts is plain"),
        pytest.param(
            {"headers": {"a": ["1"], "b": ["2"]}}, None, BIT | 2 << 52, id="header count"
        ),
        pytest.param(
            {"regex_priority": 3}, ["~/x"], BIT | 1 << 51 | (3 + (1 << 31)) << 19,
            id="regex bit and biased regex_priority",
        ),
        pytest.param(
            {"regex_priority": -(1 << 40)}, ["~/x"], BIT | 1 << 51, id="regex_priority clamped"
        ),
        pytest.param(
            {"methods": ["GET"], "hosts": ["a"], "snis": ["a"], "headers": {"h": ["v"]}},
            ["/"],
            5 << 61 | 1 << 60 | 1 << 52 | 1,
            id="all five attributes",
        ),
    ],
)
def test_priority_bits(fields: dict[str, Any], paths: list[str] | None, expected: int) -> None:
    assert priority_of(route("p", 1, **fields), paths) == expected
