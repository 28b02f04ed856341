"""proxy-cache through real sockets: Miss then Hit, Refresh/expiry, Bypass, vary, eviction."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from dataplane_helpers import respond

from tollway.plugins.proxy_cache.store import Entry, MemoryDict

JSON = [("Content-Type", "application/json")]


def doc(url: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "_format_version": "3.0",
        "services": [{"name": "svc", "url": url, "routes": [{"name": "r", "paths": ["/"]}]}],
        "plugins": [{"name": "proxy-cache", "config": {"strategy": "memory", **config}}],
    }


def setup(make_upstream: Any, make_gateway: Any, make_client: Any, config: dict[str, Any],
          behaviour: Any = None) -> Any:
    up = make_upstream(behaviour or respond(200, b'{"n":1}', [*JSON, ("X-Up", "u"),
                                                             ("Set-Cookie", "a=1"),
                                                             ("Set-Cookie", "b=2")]))
    gw = make_gateway(doc(up.url, config))
    return up, gw, make_client(gw.port)


def test_miss_then_hit(make_upstream: Any, make_gateway: Any, make_client: Any) -> None:
    up, gw, c = setup(make_upstream, make_gateway, make_client, {})
    first = c.request("GET", "/a?x=1")
    assert first.status == 200 and first.header("x-cache-status") == "Miss"
    key = first.header("x-cache-key")
    route_id = gw.config.entities["routes"][0]["id"]
    assert key == hashlib.sha256(f"{route_id}|GET|GET /a|x=1|".encode()).hexdigest()
    second = c.request("GET", "/a?x=1")
    assert second.status == 200 and second.body == b'{"n":1}'
    assert second.header("x-cache-status") == "Hit" and second.header("x-cache-key") == key
    assert second.header("age") is not None and int(second.header("age") or -1) >= 0
    assert second.header("x-up") == "u" and second.all("set-cookie") == ["a=1", "b=2"]
    assert second.header("content-type") == "application/json"
    assert second.header("content-length") == "7"
    assert len(second.all("date")) == 1
    assert len(up.requests) == 1  # the upstream saw one request


def test_key_without_query_keeps_http_version(make_upstream: Any, make_gateway: Any,
                                              make_client: Any) -> None:
    _, gw, c = setup(make_upstream, make_gateway, make_client, {})
    route_id = gw.config.entities["routes"][0]["id"]
    r = c.request("GET", "/a")
    assert r.header("x-cache-key") == hashlib.sha256(
        f"{route_id}|GET|GET /a HTTP/1.1||".encode()).hexdigest()


def test_head_is_cached_separately(make_upstream: Any, make_gateway: Any,
                                   make_client: Any) -> None:
    up, _, c = setup(make_upstream, make_gateway, make_client, {})
    assert c.request("GET", "/h").header("x-cache-status") == "Miss"
    assert c.request("HEAD", "/h").header("x-cache-status") == "Miss"
    head = c.request("HEAD", "/h")
    assert head.header("x-cache-status") == "Hit" and head.body == b""
    assert c.request("GET", "/h").body == b'{"n":1}'
    assert len(up.requests) == 2


def test_expiry_then_refresh(make_upstream: Any, make_gateway: Any, make_client: Any,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    up, _, c = setup(make_upstream, make_gateway, make_client,
                     {"cache_ttl": 10, "storage_ttl": 1000})
    assert c.request("GET", "/t").header("x-cache-status") == "Miss"
    assert c.request("GET", "/t").header("x-cache-status") == "Hit"
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 11)  # older than cache_ttl
    assert c.request("GET", "/t").header("x-cache-status") == "Refresh"
    assert c.request("GET", "/t").header("x-cache-status") == "Hit"
    assert len(up.requests) == 2


def test_storage_expiry_is_a_miss(make_upstream: Any, make_gateway: Any, make_client: Any,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    up, _, c = setup(make_upstream, make_gateway, make_client, {"cache_ttl": 5})
    assert c.request("GET", "/s").header("x-cache-status") == "Miss"
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 6)
    assert c.request("GET", "/s").header("x-cache-status") == "Miss"
    assert len(up.requests) == 2


@pytest.mark.parametrize("method,behaviour", [
    ("POST", None),
    ("GET", respond(500, b"{}", JSON)),
    ("GET", respond(200, b"{}", [("Content-Type", "application/json; charset=utf-8")])),
    ("GET", respond(200, b"<p>", [("Content-Type", "text/html")])),
])
def test_bypass(make_upstream: Any, make_gateway: Any, make_client: Any, method: str,
                behaviour: Any) -> None:
    up, _, c = setup(make_upstream, make_gateway, make_client, {}, behaviour)
    for _ in range(2):
        r = c.request(method, "/b", body=b"x" if method == "POST" else b"")
        assert r.header("x-cache-status") == "Bypass"
    assert len(up.requests) == 2


def test_vary_headers_and_query_params(make_upstream: Any, make_gateway: Any,
                                       make_client: Any) -> None:
    up, _, c = setup(make_upstream, make_gateway, make_client,
                     {"vary_headers": ["X-Lang"], "vary_query_params": ["page"]})
    assert c.request("GET", "/v?page=1&junk=a", [("X-Lang", "en")]).header(
        "x-cache-status") == "Miss"
    # other params are ignored; the vary ones and the header are part of the key
    assert c.request("GET", "/v?junk=b&page=1", [("x-lang", "en")]).header(
        "x-cache-status") == "Hit"
    assert c.request("GET", "/v?page=2", [("X-Lang", "en")]).header(
        "x-cache-status") == "Miss"
    assert c.request("GET", "/v?page=1", [("X-Lang", "fr")]).header(
        "x-cache-status") == "Miss"
    assert len(up.requests) == 3


def test_cache_control(make_upstream: Any, make_gateway: Any, make_client: Any) -> None:
    up, _, c = setup(make_upstream, make_gateway, make_client, {"cache_control": True},
                     respond(200, b"{}", [*JSON, ("Cache-Control", "max-age=60")]))
    assert c.request("GET", "/c", [("Cache-Control", "no-store")]).header(
        "x-cache-status") == "Bypass"
    assert c.request("GET", "/c", [("Authorization", "x")]).header(
        "x-cache-status") == "Bypass"
    assert c.request("GET", "/c").header("x-cache-status") == "Miss"
    assert c.request("GET", "/c").header("x-cache-status") == "Hit"
    assert c.request("GET", "/c", [("Cache-Control", "min-fresh=120")]).header(
        "x-cache-status") == "Refresh"
    only = c.request("GET", "/other", [("Cache-Control", "only-if-cached")])
    assert only.status == 504
    assert len(up.requests) == 4


@pytest.mark.parametrize("cc", ["no-store", "private", "no-cache", "max-age=0"])
def test_uncacheable_response_cache_control(make_upstream: Any, make_gateway: Any,
                                            make_client: Any, cc: str) -> None:
    up, _, c = setup(make_upstream, make_gateway, make_client, {"cache_control": True},
                     respond(200, b"{}", [*JSON, ("Cache-Control", cc)]))
    assert c.request("GET", "/n").header("x-cache-status") == "Bypass"
    assert c.request("GET", "/n").header("x-cache-status") == "Bypass"
    assert len(up.requests) == 2


def test_diagnostic_headers_can_be_disabled(make_upstream: Any, make_gateway: Any,
                                            make_client: Any) -> None:
    _, _, c = setup(make_upstream, make_gateway, make_client, {"response_headers": {
        "age": False, "X-Cache-Status": False, "X-Cache-Key": False}})
    c.request("GET", "/d")
    hit = c.request("GET", "/d")
    assert hit.header("x-cache-status") is None and hit.header("age") is None
    assert hit.header("x-cache-key") is None
    debug = c.request("GET", "/d", [("Kong-Debug", "1")])
    assert debug.header("x-cache-status") == "Hit" and debug.header("x-cache-key")


def test_entry_over_max_size_not_stored(make_upstream: Any, make_gateway: Any,
                                        make_client: Any) -> None:
    up, gw, c = setup(make_upstream, make_gateway, make_client, {})
    store: MemoryDict = gw.state.plugin_state["proxy-cache:kong_db_cache"]
    store.max_entry = 100
    up.behaviour = respond(200, b"x" * 200, [("Content-Type", "text/plain")])
    assert c.request("GET", "/big").header("x-cache-status") == "Miss"
    assert c.request("GET", "/big").header("x-cache-status") == "Miss"
    assert len(up.requests) == 2 and store.used == 0


def test_lru_eviction_bounds_memory() -> None:
    d = MemoryDict(capacity=10_000, max_entry=5_000)

    def entry(n: int) -> Entry:
        return Entry(200, [], b"x" * n, 0, 60, time.monotonic() + 60, n)

    for i in range(10):
        assert d.set(f"k{i}", entry(3_000))
        assert d.used <= d.capacity
    assert list(d.entries) == ["k7", "k8", "k9"]
    assert d.get("k7") is not None  # touch k7: k8 is now the least recently used
    d.set("k10", entry(3_000))
    assert "k8" not in d.entries and "k7" in d.entries
    assert not d.set("huge", entry(6_000)) and "huge" not in d.entries
