"""rate-limiting, local policy, through real sockets: windows, headers, 429, limit_by."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dataplane_helpers import Gateway, Upstream, json_error
from rl_support import (
    FakeAuth,
    doc,
    fresh_window,
    get,
    register_fake_auth,
    rl_headers,
    unregister_fake_auth,
)

from tollway.plugins.rate_limiting.windows import EXPIRATION, window_starts

MakeGW = Callable[..., Gateway]


@pytest.fixture
def fake_auth() -> Iterator[None]:
    register_fake_auth()
    FakeAuth.seen_flags.clear()
    yield
    unregister_fake_auth()


def test_headers_and_429_exact(rl_gateway: MakeGW, rl_upstream: Upstream) -> None:
    gw = rl_gateway(doc(rl_upstream.url, {"minute": 3, "hour": 5}))
    fresh_window()
    expected_remaining = [(2, 4), (1, 3), (0, 2)]
    for minute_left, hour_left in expected_remaining:
        r = get(gw.port)
        assert r.status == 200
        h = rl_headers(r)
        reset = int(h.pop("RateLimit-Reset"))
        assert 1 <= reset <= 60
        assert h == {
            "X-RateLimit-Limit-Minute": "3", "X-RateLimit-Remaining-Minute": str(minute_left),
            "X-RateLimit-Limit-Hour": "5", "X-RateLimit-Remaining-Hour": str(hour_left),
            "RateLimit-Limit": "3", "RateLimit-Remaining": str(minute_left),
        }
    r = get(gw.port)
    assert r.status == 429
    assert json_error("API rate limit exceeded").fullmatch(r.text)
    assert r.header("content-type") == "application/json; charset=utf-8"
    h = rl_headers(r)
    reset = h.pop("RateLimit-Reset")
    assert h.pop("Retry-After") == reset
    # only the stopped window counts this request; the hour keeps its 2 remaining
    assert h == {
        "X-RateLimit-Limit-Minute": "3", "X-RateLimit-Remaining-Minute": "0",
        "X-RateLimit-Limit-Hour": "5", "X-RateLimit-Remaining-Hour": "2",
        "RateLimit-Limit": "3", "RateLimit-Remaining": "0",
    }
    assert len(rl_upstream.requests) == 3  # the rejected request never reached it


@pytest.mark.parametrize("period", list(EXPIRATION))
def test_every_window(rl_gateway: MakeGW, rl_upstream: Upstream, period: str) -> None:
    gw = rl_gateway(doc(rl_upstream.url, {period: 2}))
    fresh_window()
    statuses = [get(gw.port).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    r = get(gw.port)
    name = period.capitalize()
    assert r.header(f"X-RateLimit-Limit-{name}") == "2"
    assert r.header(f"X-RateLimit-Remaining-{name}") == "0"
    now = int(time.time())
    expected_reset = max(1, EXPIRATION[period] - (now - window_starts(now)[period]))
    assert abs(int(r.header("RateLimit-Reset") or 0) - expected_reset) <= 1


def test_ties_go_to_the_longer_window(rl_gateway: MakeGW, rl_upstream: Upstream) -> None:
    gw = rl_gateway(doc(rl_upstream.url, {"minute": 4, "day": 4}))
    fresh_window()
    r = get(gw.port)
    assert r.header("RateLimit-Remaining") == "3"
    reset = int(r.header("RateLimit-Reset") or 0)
    assert reset > 60  # the day's reset, not the minute's


def test_hide_client_headers_custom_error(rl_gateway: MakeGW, rl_upstream: Upstream) -> None:
    gw = rl_gateway(doc(rl_upstream.url, {"minute": 1, "hide_client_headers": True,
                                          "error_code": 403, "error_message": "slow down"}))
    fresh_window()
    r = get(gw.port)
    assert r.status == 200 and rl_headers(r) == {}
    r = get(gw.port)
    assert r.status == 403 and rl_headers(r) == {}
    assert json_error("slow down").fullmatch(r.text)


def test_float_limits_print_like_lua(rl_gateway: MakeGW, rl_upstream: Upstream) -> None:
    gw = rl_gateway(doc(rl_upstream.url, {"minute": 2.5}))
    fresh_window()
    rs = [get(gw.port) for _ in range(4)]
    assert [r.status for r in rs] == [200, 200, 200, 429]
    assert rs[0].header("X-RateLimit-Limit-Minute") == "2.5"
    assert [r.header("X-RateLimit-Remaining-Minute") for r in rs] == ["1.5", "0.5", "0", "0"]


def _limited(gw: Gateway, headers_a: list[tuple[str, str]], headers_b: list[tuple[str, str]],
             path_a: str = "/", path_b: str = "/") -> tuple[list[int], list[int]]:
    fresh_window()
    a = [get(gw.port, path_a, headers_a).status for _ in range(3)]
    b = [get(gw.port, path_b, headers_b).status for _ in range(3)]
    return a, b


def test_limit_by_ip(rl_gateway: MakeGW, rl_upstream: Upstream) -> None:
    gw = rl_gateway(doc(rl_upstream.url, {"minute": 2, "limit_by": "ip"}),
                    trusted_ips="127.0.0.1/32")
    a, b = _limited(gw, [("X-Real-IP", "10.0.0.1")], [("X-Real-IP", "10.0.0.2")])
    assert a == [200, 200, 429] and b == [200, 200, 429]


def test_limit_by_header_falls_back_to_ip(rl_gateway: MakeGW, rl_upstream: Upstream) -> None:
    gw = rl_gateway(doc(rl_upstream.url, {"minute": 2, "limit_by": "header",
                                          "header_name": "X-Tenant"}))
    a, b = _limited(gw, [("X-Tenant", "a")], [("X-Tenant", "b")])
    assert a == [200, 200, 429] and b == [200, 200, 429]
    assert [get(gw.port).status for _ in range(3)] == [200, 200, 429]  # no header: the IP


def test_limit_by_a_header_an_auth_plugin_set(rl_gateway: MakeGW,
                                              rl_upstream: Upstream) -> None:
    """limit_by header reads the request's headers as plugins left them (Kong's
    kong.request.get_header sees kong.service.request.set_header): here key-auth's
    X-Consumer-Username, which the client does not send (and cannot spoof)."""
    d = doc(rl_upstream.url, {"minute": 2, "limit_by": "header",
                              "header_name": "X-Consumer-Username"},
            extra_plugins=[{"name": "key-auth"}])
    d["consumers"] = [{"username": "alice", "keyauth_credentials": [{"key": "ka"}]},
                      {"username": "bob", "keyauth_credentials": [{"key": "kb"}]}]
    gw = rl_gateway(d)
    # one client IP, two consumers: two counters (not the IP's)
    a, b = _limited(gw, [("apikey", "ka")], [("apikey", "kb")])
    assert a == [200, 200, 429] and b == [200, 200, 429]
    # a spoofed username does not pick another counter: alice's is spent
    assert get(gw.port, "/", [("apikey", "ka"), ("X-Consumer-Username", "carol")]).status \
        == 429


def test_limit_by_path(rl_gateway: MakeGW, rl_upstream: Upstream) -> None:
    gw = rl_gateway(doc(rl_upstream.url, {"minute": 2, "limit_by": "path", "path": "/a"}))
    a, b = _limited(gw, [], [], "/a", "/b")
    # /a is counted under its path, /b (not the configured path) under the client IP
    assert a == [200, 200, 429] and b == [200, 200, 429]
    assert get(gw.port, "/c").status == 429  # also the IP's counter


def test_limit_by_service(rl_gateway: MakeGW, rl_upstream: Upstream) -> None:
    d = {"_format_version": "3.0",
         "plugins": [{"name": "rate-limiting", "config": {"minute": 2, "limit_by": "service"}}],
         "services": [
             {"name": "s1", "url": rl_upstream.url,
              "routes": [{"name": "s1a", "paths": ["/s1a"]}, {"name": "s1b", "paths": ["/s1b"]}]},
             {"name": "s2", "url": rl_upstream.url, "routes": [{"name": "s2", "paths": ["/s2"]}]},
         ]}
    gw = rl_gateway(d)
    fresh_window()
    # both routes of s1 share the service's counter; s2 has its own
    assert [get(gw.port, p).status for p in ("/s1a", "/s1b", "/s1a")] == [200, 200, 429]
    assert [get(gw.port, "/s2").status for _ in range(3)] == [200, 200, 429]


def _consumer_doc(url: str, config: dict[str, Any]) -> dict[str, Any]:
    d = doc(url, config, extra_plugins=[{"name": "rl-test-auth"}])
    d["consumers"] = [{"username": "alice"}, {"username": "bob"}]
    return d


def test_limit_by_consumer(rl_gateway: MakeGW, rl_upstream: Upstream, fake_auth: None) -> None:
    gw = rl_gateway(_consumer_doc(rl_upstream.url, {"minute": 2}))
    a, b = _limited(gw, [("X-Test-Consumer", "alice")], [("X-Test-Consumer", "bob")])
    assert a == [200, 200, 429] and b == [200, 200, 429]
    # anonymous: the IP
    assert [get(gw.port).status for _ in range(3)] == [200, 200, 429]
    # the metrics hook: rejected requests carry the flag
    assert FakeAuth.seen_flags.count(True) == 3
    assert FakeAuth.seen_flags.count(None) == 6


def test_limit_by_credential(rl_gateway: MakeGW, rl_upstream: Upstream, fake_auth: None) -> None:
    gw = rl_gateway(_consumer_doc(rl_upstream.url, {"minute": 2, "limit_by": "credential"}))
    # same consumer, two credentials: two counters
    a, b = _limited(gw, [("X-Test-Consumer", "alice"), ("X-Test-Credential", "k1")],
                    [("X-Test-Consumer", "alice"), ("X-Test-Credential", "k2")])
    assert a == [200, 200, 429] and b == [200, 200, 429]


def test_counters_survive_a_config_swap(rl_gateway: MakeGW, rl_upstream: Upstream) -> None:
    d = doc(rl_upstream.url, {"minute": 2})
    gw = rl_gateway(d)
    fresh_window()
    assert get(gw.port).status == 200
    d["services"][0]["read_timeout"] = 1234
    gw.swap(d)
    assert [get(gw.port).status for _ in range(2)] == [200, 429]
