"""Per-attribute matching rules (§2.3), route selection inputs (§2.1) and results."""

from __future__ import annotations

from typing import Any

import pytest
from router_helpers import SERVICE_ID, route, service

from tollway.dataplane.router import RouteMatch, build_router, build_router_from_config
from tollway.dataplane.router.matcher import regex_literal_prefix
from tollway.dataplane.router.router import RAW_PATH_MAX


def _match(routes: list[dict[str, Any]], **kw: Any) -> RouteMatch | None:
    router = build_router(routes, [service()])
    req: dict[str, Any] = {"method": "GET", "host": "example.com", "path": "/", "headers": None}
    req.update(kw)
    return router.match(**req)


# (description, route hosts, request Host header, should match)
HOST_CASES = [
    ("plain host", ["a.test"], "a.test", True),
    ("plain host ignores the request port", ["a.test"], "a.test:8000", True),
    ("plain host differs", ["a.test"], "b.test", False),
    ("host comparison is case-sensitive (no lower-casing in Kong)", ["a.test"], "A.test", False),
    ("route port must equal the request port", ["a.test:8000"], "a.test:8000", True),
    ("route port rejects another port", ["a.test:8000"], "a.test:9000", False),
    ("route port rejects a Host without port", ["a.test:8000"], "a.test", False),
    ("suffix wildcard, one label", ["*.example.com"], "api.example.com", True),
    ("suffix wildcard, many labels", ["*.example.com"], "a.b.example.com", True),
    ("suffix wildcard does not match the bare domain", ["*.example.com"], "example.com", False),
    ("suffix wildcard with request port", ["*.example.com"], "api.example.com:81", True),
    ("prefix wildcard", ["example.*"], "example.org", True),
    ("prefix wildcard, many labels", ["example.*"], "example.co.uk", True),
    ("prefix wildcard anchored at start", ["example.*"], "www.example.org", False),
    ("wildcard with port, right port", ["*.example.com:8443"], "a.example.com:8443", True),
    ("wildcard with port, wrong port", ["*.example.com:8443"], "a.example.com:80", False),
    ("any of several hosts", ["x.test", "*.y.test"], "b.y.test", True),
    ("non-numeric port is part of the host", ["a.test"], "a.test:abc", False),
    ("missing Host never matches a host route", ["a.test"], None, False),
]


@pytest.mark.parametrize(
    ("hosts", "host", "ok"), [pytest.param(*c[1:], id=c[0]) for c in HOST_CASES]
)
def test_hosts(hosts: list[str], host: str | None, ok: bool) -> None:
    m = _match([route("r", 1, hosts=hosts)], host=host)
    assert (m is not None) is ok


def test_wildcard_hosts_on_both_sides_of_a_plain_host() -> None:
    routes = [
        route("suffix", 1, hosts=["*.example.com"]),
        route("prefix", 2, hosts=["api.*"]),
        route("plain", 3, hosts=["api.example.com"]),
    ]
    names = {
        h: (m.route["name"] if (m := _match(routes, host=h)) else None)
        for h in ("api.example.com", "www.example.com", "api.example.org", "x.org")
    }
    # all three match api.example.com; the plain host wins over both wildcards
    assert names == {
        "api.example.com": "plain",
        "www.example.com": "suffix",
        "api.example.org": "prefix",
        "x.org": None,
    }


# (description, route headers, request headers, should match)
HEADER_CASES: list[tuple[str, dict[str, list[str]], dict[str, list[str]] | None, bool]] = [
    ("exact value", {"x-v": ["one"]}, {"x-v": ["one"]}, True),
    ("value comparison is case-insensitive", {"X-V": ["One"]}, {"x-v": ["ONE"]}, True),
    ("any configured value (OR)", {"x-v": ["a", "b"]}, {"x-v": ["b"]}, True),
    ("any request value (OR)", {"x-v": ["a"]}, {"x-v": ["z", "a"]}, True),
    ("all header names (AND)", {"x-a": ["1"], "x-b": ["2"]}, {"x-a": ["1"]}, False),
    ("all header names present", {"x-a": ["1"], "x-b": ["2"]}, {"x-a": ["1"], "x-b": ["2"]}, True),
    ("missing header", {"x-v": ["a"]}, {}, False),
    ("no headers given", {"x-v": ["a"]}, None, False),
    ("wrong value", {"x-v": ["a"]}, {"x-v": ["b"]}, False),
    ("~* regex value", {"x-v": [r"~*^ver\d+$"]}, {"x-v": ["VER42"]}, True),
    ("~* regex is unanchored", {"x-v": ["~*beta"]}, {"x-v": ["1.0-beta.2"]}, True),
    ("~* regex no match", {"x-v": [r"~*^ver\d+$"]}, {"x-v": ["ver"]}, False),
    ("regex alongside plain values", {"x-v": ["a", "~*^b+$"]}, {"x-v": ["bbb"]}, True),
    ("underscore in route name folds to dash", {"x_v": ["a"]}, {"x-v": ["a"]}, True),
]


@pytest.mark.parametrize(
    ("route_headers", "req_headers", "ok"), [pytest.param(*c[1:], id=c[0]) for c in HEADER_CASES]
)
def test_headers(
    route_headers: dict[str, list[str]], req_headers: dict[str, list[str]] | None, ok: bool
) -> None:
    router = build_router([route("r", 1, headers=route_headers)], [service()])
    assert router.uses_headers
    assert (router.match("GET", "h", "/", req_headers) is not None) is ok


def test_uses_headers_false_without_header_routes() -> None:
    router = build_router([route("r", 1, paths=["/"])], [service()])
    assert not router.uses_headers


@pytest.mark.parametrize(
    ("methods", "method", "ok"),
    [
        pytest.param(["GET", "POST"], "POST", True, id="listed method"),
        pytest.param(["GET"], "DELETE", False, id="unlisted method"),
        pytest.param(["GET"], "get", False, id="exact (case-sensitive) method"),
    ],
)
def test_methods(methods: list[str], method: str, ok: bool) -> None:
    assert (_match([route("r", 1, methods=methods)], method=method) is not None) is ok


@pytest.mark.parametrize(
    ("snis", "scheme", "sni", "ok"),
    [
        pytest.param(["a.test"], "https", "a.test", True, id="https with matching sni"),
        pytest.param(["a.test"], "https", "b.test", False, id="https with other sni"),
        pytest.param(["a.test"], "https", None, False, id="https without sni"),
        pytest.param(["a.test"], "http", None, True, id="plain http ignores snis"),
        pytest.param(["a.test."], "https", "a.test", True, id="trailing dot dropped"),
    ],
)
def test_snis(snis: list[str], scheme: str, sni: str | None, ok: bool) -> None:
    r = route("r", 1, snis=snis, paths=["/"])
    assert (_match([r], scheme=scheme, sni=sni) is not None) is ok


# (description, route path, request path, should match)
PATH_CASES = [
    ("prefix matches itself", "/foo", "/foo", True),
    ("prefix matches sub-path", "/foo", "/foo/bar", True),
    ("prefix is a character prefix", "/foo", "/foobar", True),
    ("prefix longer than path", "/foo", "/fo", False),
    ("regex anchored at start", "~/b", "/a/b", False),
    ("regex not anchored at end", r"~/a/\d+", "/a/12/x", True),
    ("regex with explicit end anchor", r"~/a/\d+$", "/a/12/x", False),
]


@pytest.mark.parametrize(
    ("path", "req", "ok"), [pytest.param(*c[1:], id=c[0]) for c in PATH_CASES]
)
def test_paths(path: str, req: str, ok: bool) -> None:
    assert (_match([route("r", 1, paths=[path])], path=req) is not None) is ok


@pytest.mark.parametrize(
    ("path", "req", "captures"),
    [
        pytest.param(
            r"~/users/(?<uid>\d+)/posts/(\d+)",
            "/users/7/posts/9",
            {1: "7", 2: "9", "uid": "7"},
            id="named (Rust/PCRE syntax) and numbered",
        ),
        pytest.param(
            r"~/v(?P<ver>\d)", "/v3/x", {1: "3", "ver": "3"}, id="python-style named group"
        ),
        pytest.param(r"~/items/\d+", "/items/5", None, id="no groups: no captures"),
        pytest.param(r"~/a(x)?/b", "/a/b", None, id="group 1 unmatched: no captures (atc)"),
    ],
)
def test_regex_captures(path: str, req: str, captures: dict[Any, str] | None) -> None:
    m = _match([route("r", 1, paths=[path])], path=req)
    assert m is not None
    assert m.captures == captures


def test_prefix_route_has_no_captures() -> None:
    m = _match([route("r", 1, paths=["/a"])], path="/a")
    assert m is not None and m.captures is None


def test_first_matching_regex_of_a_route_supplies_prefix() -> None:
    m = _match([route("r", 1, paths=[r"~/a/\d", r"~/a/\d+"])], path="/a/123")
    assert m is not None and m.prefix == "/a/1"


def test_invalid_regex_drops_only_that_matcher() -> None:
    routes = [route("bad", 2, paths=["~/x(", "/plain"]), route("ok", 1, paths=["/ok"])]
    router = build_router(routes, [service()])
    assert router.match("GET", None, "/x(", None) is None
    hit = router.match("GET", None, "/plain", None)
    assert hit is not None and hit.route["name"] == "bad"
    hit = router.match("GET", None, "/ok", None)
    assert hit is not None and hit.route["name"] == "ok"


def test_disabled_service_routes_are_excluded() -> None:
    off = service(enabled=False)
    router = build_router([route("r", 1, paths=["/"])], [off])
    assert router.match("GET", None, "/", None) is None


def test_route_without_service_matches_with_none() -> None:
    router = build_router([route("r", 1, paths=["/"], service=None)], [])
    m = router.match("GET", None, "/x", None)
    assert m is not None and m.service is None
    assert m.upstream_path == "/x"


def test_route_with_unknown_service_is_kept_without_service() -> None:
    router = build_router([route("r", 1, paths=["/"], service={"id": "nope"})], [service()])
    m = router.match("GET", None, "/", None)
    assert m is not None and m.service is None


def test_service_is_attached() -> None:
    m = _match([route("r", 1, paths=["/"])])
    assert m is not None and m.service is not None and m.service["id"] == SERVICE_ID


def test_https_only_route_matches_plain_http_and_exposes_protocols() -> None:
    # Enforcement (426/redirect) is the caller's job (§2.10): the router matches.
    m = _match([route("r", 1, paths=["/"], protocols=["https"])], scheme="http")
    assert m is not None and m.route["protocols"] == ["https"]


@pytest.mark.parametrize(
    ("protocols", "included"),
    [
        pytest.param(["grpc", "grpcs"], True, id="grpc routes are http-subsystem"),
        pytest.param(["tcp", "tls"], False, id="stream routes are left out"),
        pytest.param(None, True, id="missing protocols default to http/https"),
    ],
)
def test_protocol_filter(protocols: list[str] | None, included: bool) -> None:
    r = route("r", 1, paths=["/"], protocols=protocols, strip_path=False)
    assert (_match([r]) is not None) is included


def test_no_match_returns_none() -> None:
    assert _match([route("r", 1, paths=["/api"])], path="/other") is None
    assert build_router([], []).match("GET", None, "/", None) is None


def test_ten_thousand_prefix_routes_match_the_last_one() -> None:
    routes = [route(f"route-{i:05d}", i, paths=[f"/route-{i:05d}"]) for i in range(10_000)]
    router = build_router(routes, [service()])
    for path, name in [
        ("/route-09999", "route-09999"),
        ("/route-09999/deep/x", "route-09999"),
        ("/route-00000", "route-00000"),
        ("/route-05000x", "route-05000"),
    ]:
        m = router.match("GET", "example.com", path, None)
        assert m is not None and m.route["name"] == name, path
    assert router.match("GET", "example.com", "/route-10000", None) is None
    assert router.match("GET", "example.com", "/route", None) is None


def test_many_host_routes_use_the_host_index() -> None:
    routes = [route(f"h{i}", i, hosts=[f"h{i}.test"]) for i in range(1000)]
    routes.append(route("wild", 5000, hosts=["*.test"]))
    router = build_router(routes, [service()])
    m = router.match("GET", "h999.test:8000", "/", None)
    assert m is not None and m.route["name"] == "h999"
    m = router.match("GET", "other.test", "/", None)
    assert m is not None and m.route["name"] == "wild"


def test_cache_returns_same_result_and_is_bounded() -> None:
    router = build_router([route("r", 1, paths=["/a"])], [service()], cache_size=8)
    first = router.match("GET", "h", "/a/x", None)
    assert first is not None
    assert router.match("GET", "h", "/a/x", None) is first
    assert router.match("GET", "h", "/nope", None) is None  # negative results cached too
    for i in range(50):
        router.match("GET", "h", f"/a/{i}", None)
    assert router._cache is not None and len(router._cache) <= 8


def test_cache_keys_on_sni_when_routes_use_snis() -> None:
    router = build_router([route("r", 1, paths=["/"], snis=["a.test"])], [service()])
    assert router.match("GET", "h", "/", None, "https", "a.test") is not None
    assert router.match("GET", "h", "/", None, "https", "b.test") is None
    assert router.match("GET", "h", "/", None, "http", "b.test") is not None


def test_header_routes_disable_the_cache() -> None:
    router = build_router([route("r", 1, headers={"x-v": ["a"]})], [service()])
    assert router.match("GET", "h", "/", {"x-v": ["a"]}) is not None
    assert router.match("GET", "h", "/", {"x-v": ["b"]}) is None


def test_raw_cache_answers_as_match_and_is_bounded() -> None:
    router = build_router([route("r", 1, paths=["/a"], hosts=["h.test"]),
                           route("any", 2, paths=["/"])], [service()], cache_size=8)
    assert router.by_raw is not None
    for key in [(b"GET", b"h.test", b"/a/x"), (b"GET", b"H.TEST:80", b"/a"),
                (b"POST", b"", b"/b"), (b"GET", b"other", b"/a/\xc3\xa9")]:
        got = router.match_raw(key, "http", None)
        want = router.match(key[0].decode("latin-1"),
                            key[1].decode("latin-1") if key[1] else None,
                            key[2].decode("utf-8", "surrogateescape"), None)
        assert got is want and router.by_raw[key] is got
    assert router.by_raw[(b"GET", b"h.test", b"/a/x")].route["name"] == "r"
    assert router.by_raw[(b"GET", b"other", b"/a/\xc3\xa9")].route["name"] == "any"
    empty = build_router([route("r", 1, paths=["/a"])], [service()])
    assert empty.match_raw((b"GET", b"h", b"/nope"), "http", None) is None
    assert empty.by_raw == {(b"GET", b"h", b"/nope"): None}  # negative answers too
    for i in range(50):
        router.match_raw((b"GET", b"h", b"/a/%d" % i), "http", None)
        assert len(router.by_raw) <= 8
    # a long path is answered, not kept by its bytes (the LRU still keeps its answer)
    long = (b"GET", b"h", b"/a/" + b"x" * RAW_PATH_MAX)
    m = router.match_raw(long, "http", None)
    assert m is not None and m.route["name"] == "any" and long not in router.by_raw


def test_raw_cache_off_when_sni_headers_or_no_cache_decide() -> None:
    # its key has no scheme, SNI or header values: routers whose answers depend on them,
    # or that cache nothing, answer through match() every time
    assert build_router([route("r", 1, paths=["/"], snis=["a.test"])],
                        [service()]).by_raw is None
    assert build_router([route("r", 1, headers={"x-v": ["a"]})], [service()]).by_raw is None
    assert build_router([route("r", 1, paths=["/"])], [service()],
                        cache_size=0).by_raw is None


class _Config:
    def __init__(self, entities: dict[str, list[dict[str, Any]]]) -> None:
        self.entities = entities


def test_build_from_config_object() -> None:
    cfg = _Config({"routes": [route("r", 1, paths=["/"])], "services": [service()]})
    for router in (build_router_from_config(cfg), build_router(cfg)):
        m = router.match("GET", None, "/", None)
        assert m is not None and m.service is not None


@pytest.mark.parametrize(
    ("source", "literal"),
    [
        pytest.param(r"/api/v\d+", "/api/v", id="stops at a class"),
        pytest.param(r"/a\.b/(?P<x>\d)", "/a.b/", id="escaped punctuation is literal"),
        pytest.param("/abc?", "/ab", id="optional last char excluded"),
        pytest.param("/ab*", "/a", id="starred last char excluded"),
        pytest.param("/ab{0,2}", "/a", id="counted last char excluded"),
        pytest.param("/ab+", "/ab", id="plus keeps the char"),
        pytest.param("/a|/b", "", id="alternation: unknown"),
        pytest.param("(?i)/a", "", id="leading flags: unknown"),
        pytest.param("[/]x", "", id="leading class: unknown"),
    ],
)
def test_regex_literal_prefix(source: str, literal: str) -> None:
    assert regex_literal_prefix(source) == literal


def test_regex_alternation_keeps_rust_semantics() -> None:
    # Kong compiles "^" + source: only the first branch is anchored.
    m = _match([route("r", 1, paths=["~/a|/b"])], path="/x/b")
    assert m is not None and m.prefix == "/b"


def test_indexed_and_scanned_regexes_compete_by_rank() -> None:
    routes = [
        route("indexed", 1, paths=[r"~/api/\d+"], regex_priority=1),
        route("scanned", 2, paths=[r"~(?i)/API/\d+"], regex_priority=2),
        route("other", 3, paths=[r"~/api/x"], regex_priority=9),
    ]
    router = build_router(routes, [service()])
    m = router.match("GET", None, "/api/7", None)
    assert m is not None and m.route["name"] == "scanned"
    m = router.match("GET", None, "/API/7", None)
    assert m is not None and m.route["name"] == "scanned"
    routes[1]["regex_priority"] = 0
    m = build_router(routes, [service()]).match("GET", None, "/api/7", None)
    assert m is not None and m.route["name"] == "indexed"
