"""§2.2 path normalisation and §2.6 v0 upstream-path joining, driven through the router."""

from __future__ import annotations

import pytest
from router_helpers import route, service

from tollway.dataplane.router import build_router, escape_path, normalize_path

# (description, service.path, route path, request path, strip_path, expected upstream path)
V0_CASES = [
    # -- the reference's worked examples --
    ("example: null base, strip", None, "/api", "/api/users", True, "/users"),
    ("example: null base, exact prefix, strip", None, "/api", "/api", True, "/"),
    ("example: /v2 base, strip", "/v2", "/api", "/api/users", True, "/v2/users"),
    ("example: /v2 base, character prefix", "/v2", "/api", "/apix", True, "/v2/x"),
    ("example: /v2 base, trailing slash kept", "/v2", "/api", "/api/", True, "/v2/"),
    ("example: /v2/ base, strip", "/v2/", "/api", "/api/users", True, "/v2/users"),
    ("example: /v2 base, no strip", "/v2", "/api", "/api/users", False, "/v2/api/users"),
    ("example: null base, no strip", None, "/api", "/api/users", False, "/api/users"),
    # -- base ends with '/', strip_path, empty postfix --
    ("slash base '/' and empty postfix gives '/'", "/", "/api", "/api", True, "/"),
    ("slash base, empty postfix, req ends with / keeps base", "/v2/", "/api/", "/api/", True,
     "/v2/"),
    ("slash base, empty postfix, req without / drops it", "/v2/", "/api", "/api", True, "/v2"),
    # -- base ends with '/', strip_path, postfix starts with '/' --
    ("slash base + '/postfix' drops one slash", "/v2/", "/api", "/api/a/b", True, "/v2/a/b"),
    # -- base ends with '/', strip_path, other postfix --
    ("slash base + bare postfix", "/v2/", "/api", "/apix", True, "/v2/x"),
    # -- base ends with '/', no strip --
    ("slash base, no strip, req appended without its /", "/v2/", "/api", "/api/users", False,
     "/v2/api/users"),
    ("root base, no strip, root request", None, "/", "/", False, "/"),
    # -- base without '/', strip_path, empty postfix --
    ("plain base, empty postfix", "/v2", "/api", "/api", True, "/v2"),
    ("plain base, empty postfix, req ends with /", "/v2", "/api/", "/api/", True, "/v2/"),
    ("plain base, root route on root request", "/v2", "/", "/", True, "/v2"),
    # -- base without '/', strip_path, postfix starts with '/' --
    ("plain base + '/postfix'", "/v2", "/api", "/api/a", True, "/v2/a"),
    # -- base without '/', strip_path, other postfix --
    ("plain base + '/' + bare postfix", "/v2", "/ap", "/api", True, "/v2/i"),
    # -- base without '/', no strip --
    ("plain base, no strip, root request gives base", "/v2", "/", "/", False, "/v2"),
    ("plain base, no strip, request appended", "/v2", "/", "/x/y", False, "/v2/x/y"),
    # -- postfix sanitising --
    ("postfix '.' becomes empty", "/v2", "/api", "/api.", True, "/v2"),
    ("postfix '../x' loses its '../'", "/v2", "/api", "/api../x", True, "/v2/x"),
    ("postfix './x' loses its './'", "/v2", "/api", "/api./x", True, "/v2/x"),
    # -- escaping for the wire --
    ("decoded space is re-escaped", None, "/api", "/api/a%20b", True, "/a%20b"),
    ("utf-8 is re-escaped upper-case", "/s", "/api", "/api/caf%c3%a9", True, "/s/caf%C3%A9"),
    ("reserved %2F stays encoded", None, "/api", "/api/a%2fb", True, "/a%2Fb"),
    ("%7E decodes to ~ which needs no escaping", None, "/api", "/api/%7Euser", True, "/~user"),
]


@pytest.mark.parametrize(
    ("base", "route_path", "request_path", "strip", "expected"),
    [pytest.param(*c[1:], id=c[0]) for c in V0_CASES],
)
def test_v0_upstream_path(
    base: str | None, route_path: str, request_path: str, strip: bool, expected: str
) -> None:
    router = build_router(
        [route("r", 1, paths=[route_path], strip_path=strip)], [service(path=base)]
    )
    m = router.match("GET", "example.com", request_path, None)
    assert m is not None
    assert m.upstream_path == expected


@pytest.mark.parametrize(
    ("base", "request_path", "strip", "expected"),
    [
        pytest.param("/v2", "/foo/bar", True, "/v2/foo/bar", id="path-less route, strip"),
        pytest.param("/v2", "/foo/bar", False, "/v2/foo/bar", id="path-less route, no strip"),
        pytest.param(None, "/", True, "/", id="path-less route, root"),
    ],
)
def test_v0_without_paths(base: str | None, request_path: str, strip: bool, expected: str) -> None:
    router = build_router([route("h", 1, hosts=["a.test"], strip_path=strip)], [service(path=base)])
    m = router.match("GET", "a.test", request_path, None)
    assert m is not None
    assert m.upstream_path == expected
    assert m.prefix is None


def test_regex_route_strips_matched_text() -> None:
    router = build_router([route("re", 1, paths=[r"~/api/v\d+"])], [service(path="/x")])
    m = router.match("GET", None, "/api/v12/users", None)
    assert m is not None
    assert m.upstream_path == "/x/users"
    assert m.prefix == "/api/v12"


@pytest.mark.parametrize(
    ("strip", "route_path", "request_path", "expected"),
    [
        pytest.param(True, "/api", "/api/x", "/api", id="strip: prefix reported"),
        pytest.param(False, "/api", "/api/x", None, id="no strip: no prefix"),
        pytest.param(True, "/", "/x", None, id="root prefix is not reported"),
    ],
)
def test_forwarded_prefix(strip: bool, route_path: str, request_path: str, expected: str) -> None:
    router = build_router([route("r", 1, paths=[route_path], strip_path=strip)], [service()])
    m = router.match("GET", None, request_path, None)
    assert m is not None
    assert m.prefix == expected


NORMALIZE_CASES = [
    ("root unchanged", "/", "/"),
    ("unreserved %7E decoded", "/%7Euser", "/~user"),
    ("lower-case hex decoded", "/%7euser", "/~user"),
    ("reserved %2F kept", "/a%2Fb", "/a%2Fb"),
    ("reserved hex upper-cased", "/a%2fb%3a", "/a%2Fb%3A"),
    ("%25 stays encoded", "/100%25", "/100%25"),
    ("letters decoded", "/%41%62c", "/Abc"),
    ("dot-dot segment removed", "/a/../b", "/b"),
    ("dot segment removed", "/a/./b", "/a/b"),
    ("encoded dots resolved too", "/a/%2e%2E/b", "/b"),
    ("dot-dot above root clamps", "/../../a", "/a"),
    ("trailing /.. keeps slash", "/a/b/..", "/a/"),
    ("trailing /. keeps slash", "/a/.", "/a/"),
    ("repeated slashes merged", "//a///b//", "/a/b/"),
    ("dots inside names untouched", "/a.b/c..d", "/a.b/c..d"),
    ("utf-8 triplets decoded", "/caf%C3%A9", "/café"),
    ("invalid %zz left alone", "/a%zzb", "/a%zzb"),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [pytest.param(c[1], c[2], id=c[0]) for c in NORMALIZE_CASES]
)
def test_normalize_path(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


def test_matching_uses_normalised_path() -> None:
    router = build_router(
        [route("tilde", 1, paths=["/~user"]), route("b", 2, paths=["/b"])], [service()]
    )
    m = router.match("GET", None, "/%7Euser/x", None)
    assert m is not None and m.route["name"] == "tilde"
    assert m.normalized_path == "/~user/x"
    m = router.match("GET", None, "/a/../b", None)
    assert m is not None and m.route["name"] == "b"
    m = router.match("GET", None, "//b", None)
    assert m is not None and m.route["name"] == "b"
    # %2F is reserved: "/a%2Fb" never becomes "/a/b"
    r2 = build_router([route("ab", 1, paths=["/a/b"])], [service()])
    assert r2.match("GET", None, "/a%2Fb", None) is None


def test_escape_path_round_trips_bytes() -> None:
    assert escape_path("/a b/ü") == "/a%20b/%C3%BC"
    assert escape_path("/ok-_.~!$&'()*+,;=:@[]%") == "/ok-_.~!$&'()*+,;=:@[]%"
    assert escape_path(normalize_path("/x%FF")) == "/x%FF"
