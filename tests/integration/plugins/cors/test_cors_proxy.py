"""cors through a real gateway (Kong §3.6): preflights answered by the plugin, CORS headers
on proxied responses and on responses the gateway produces itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dataplane_helpers import Gateway, RawClient, Upstream, json_error, respond
from edge_plugins_support import service

from tollway.config.schema import Record
from tollway.plugins import registry
from tollway.plugins.base import Plugin

SEED = Path(__file__).resolve().parents[4] / "examples" / "gateway.yaml"
SEED_ORIGIN = "http://localhost:3000"
Make = Callable[..., Gateway]
Client = Callable[..., RawClient]


def seed_document(url: str) -> dict[str, Any]:
    """The seed's services and routes (GET and POST only on /api/users, /api/orders) with
    only its global plugins (cors), the services pointed at the test upstream."""
    seed = yaml.safe_load(SEED.read_text())
    services = []
    for svc in seed["services"]:
        services.append({"name": svc["name"], "url": url, "routes": svc["routes"]})
    return {"_format_version": "3.0", "services": services, "plugins": seed["plugins"]}


def cors(**config: Any) -> list[dict[str, Any]]:
    return [{"name": "cors", "config": config}]


def preflight(origin: str = SEED_ORIGIN, method: str = "POST",
              extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    return [("Origin", origin), ("Access-Control-Request-Method", method), *(extra or [])]


CORS_NAMES = {"access-control-allow-origin", "access-control-allow-credentials",
              "access-control-allow-headers", "access-control-allow-methods",
              "access-control-max-age", "access-control-expose-headers",
              "access-control-allow-private-network"}


def cors_headers(resp: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n, v in resp.headers:
        if n.lower() in CORS_NAMES or n.lower() == "vary":
            out.setdefault(n.lower(), []).append(v)
    return out


# -- DECISIONS.md #1: the seed's preflight ------------------------------------------------------


def test_seed_preflight_reaches_global_cors_on_get_post_routes(
        edge_gateway: Make, edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(seed_document(edge_upstream.url))
    c = edge_client(gw.port)
    resp = c.request("OPTIONS", "/api/users", preflight())
    assert resp.status == 200
    assert resp.body == b""
    assert resp.header("Content-Length") == "0"
    assert cors_headers(resp) == {
        "vary": ["Origin"],
        "access-control-allow-origin": [SEED_ORIGIN],
        "access-control-allow-credentials": ["true"],
        "access-control-allow-headers": ["Accept,Authorization,Content-Type"],
        "access-control-allow-methods": ["GET,POST,PUT,DELETE,OPTIONS"],
        "access-control-max-age": ["3600"],
    }
    # the other seed origin, on the other service's path, on the same connection
    resp = c.request("OPTIONS", "/api/orders", preflight("https://app.example.com", "GET"))
    assert resp.status == 200
    assert resp.header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert edge_upstream.requests == []  # answered by the gateway, never proxied


def test_seed_preflight_for_a_method_no_route_serves_is_404(
        edge_gateway: Make, edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(seed_document(edge_upstream.url))
    resp = edge_client(gw.port).request("OPTIONS", "/api/users", preflight(method="DELETE"))
    assert resp.status == 404
    assert json_error("no Route matched with those values").fullmatch(resp.text)
    # the global cors still decorates the 404 (header_filter), as a normal response
    assert resp.header("Access-Control-Allow-Origin") == SEED_ORIGIN
    assert resp.header("Access-Control-Allow-Methods") is None
    assert edge_upstream.requests == []


def test_plain_options_is_not_a_preflight_and_routes_as_kong(
        edge_gateway: Make, edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(seed_document(edge_upstream.url))
    resp = edge_client(gw.port).request("OPTIONS", "/api/users", [("Origin", SEED_ORIGIN)])
    assert resp.status == 404


def test_seed_get_with_origin_gets_cors_headers(
        edge_gateway: Make, edge_upstreams: Callable[..., Upstream], edge_client: Client) -> None:
    up = edge_upstreams(respond(200, b"users", [
        ("Vary", "Accept-Encoding"), ("Access-Control-Allow-Origin", "*"),
        ("access-control-allow-credentials", "false"),
        ("Access-Control-Expose-Headers", "X-Up")]))
    gw = edge_gateway(seed_document(up.url))
    resp = edge_client(gw.port).request("GET", "/api/users", [("Origin", SEED_ORIGIN)])
    assert resp.status == 200 and resp.body == b"users"
    assert cors_headers(resp) == {
        "vary": ["Accept-Encoding", "Origin"],  # appended to the upstream's
        "access-control-allow-origin": [SEED_ORIGIN],  # the upstream's values replaced
        "access-control-allow-credentials": ["true"],
        "access-control-expose-headers": ["X-Request-ID"],
    }
    assert up.requests[0].header("Origin") == SEED_ORIGIN


def test_seed_get_from_other_origin_has_no_allow_origin(
        edge_gateway: Make, edge_upstreams: Callable[..., Upstream], edge_client: Client) -> None:
    up = edge_upstreams(respond(200, b"x", [("Access-Control-Allow-Origin", "*")]))
    gw = edge_gateway(seed_document(up.url))
    c = edge_client(gw.port)
    for origin in ("http://evil.test", "http://localhost:3001", "https://localhost:3000"):
        resp = c.request("GET", "/api/users", [("Origin", origin)])
        assert resp.status == 200
        assert cors_headers(resp) == {
            "vary": ["Origin"],
            "access-control-allow-credentials": ["true"],
            "access-control-expose-headers": ["X-Request-ID"],
        }, origin
    # a preflight from an unknown origin is still answered 200, without ACAO
    resp = c.request("OPTIONS", "/api/users", preflight("http://evil.test"))
    assert resp.status == 200
    assert resp.header("Access-Control-Allow-Origin") is None
    assert resp.header("Access-Control-Allow-Methods") == "GET,POST,PUT,DELETE,OPTIONS"


def test_seed_get_without_origin(edge_gateway: Make, edge_upstream: Upstream,
                                 edge_client: Client) -> None:
    gw = edge_gateway(seed_document(edge_upstream.url))
    resp = edge_client(gw.port).request("GET", "/api/users")
    assert resp.status == 200
    # allow_origin_absent (default true): Kong still runs configure_origin
    assert cors_headers(resp) == {
        "vary": ["Origin"],
        "access-control-allow-credentials": ["true"],
        "access-control-expose-headers": ["X-Request-ID"],
    }


def test_allow_origin_absent_false(edge_gateway: Make, edge_upstream: Upstream,
                                   edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cors(
        origins=["http://a.test"], allow_origin_absent=False, exposed_headers=["X-A"])))
    c = edge_client(gw.port)
    assert cors_headers(c.request("GET", "/")) == {}
    assert cors_headers(c.request("GET", "/", [("Origin", "http://a.test")])) == {
        "vary": ["Origin"], "access-control-allow-origin": ["http://a.test"],
        "access-control-expose-headers": ["X-A"]}


# -- responses the gateway produces --------------------------------------------------------------


class Deny401(Plugin):
    """Test-only: an auth-like plugin (jwt's priority) that rejects every request."""

    name = "test-deny-401"
    priority = 1450
    config_schema = Record(fields={})

    def access(self, req: Any) -> None:
        req.error(401, "Unauthorized")


@pytest.fixture
def deny_401() -> Iterator[None]:
    registry.register(Deny401)
    yield
    registry.unregister(Deny401.name)


def test_plugin_401_carries_cors_headers(deny_401: None, edge_gateway: Make,
                                         edge_upstream: Upstream, edge_client: Client) -> None:
    doc = seed_document(edge_upstream.url)
    doc["plugins"].append({"name": "test-deny-401"})
    gw = edge_gateway(doc)
    c = edge_client(gw.port)
    resp = c.request("GET", "/api/users", [("Origin", SEED_ORIGIN)])
    assert resp.status == 401
    assert json_error("Unauthorized").fullmatch(resp.text)
    assert cors_headers(resp) == {
        "vary": ["Origin"],
        "access-control-allow-origin": [SEED_ORIGIN],
        "access-control-allow-credentials": ["true"],
        "access-control-expose-headers": ["X-Request-ID"],
    }
    # cors (2000) answers the preflight before the auth plugin (1450) runs
    resp = c.request("OPTIONS", "/api/users", preflight())
    assert resp.status == 200
    assert edge_upstream.requests == []


def test_no_route_404_carries_global_cors_headers(
        edge_gateway: Make, edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(seed_document(edge_upstream.url))
    resp = edge_client(gw.port).request("GET", "/nowhere", [("Origin", SEED_ORIGIN)])
    assert resp.status == 404
    assert resp.header("Access-Control-Allow-Origin") == SEED_ORIGIN
    assert resp.header("Access-Control-Expose-Headers") == "X-Request-ID"


# -- origins -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "origin", "acao", "vary"), [
    # no origins, or exactly ["*"]: allow all, no Vary
    ({}, "http://x.test", "*", []),
    ({"origins": ["*"]}, None, "*", []),
    # allow all + credentials: the request's Origin is echoed
    ({"credentials": True}, "http://x.test", "http://x.test", ["Origin"]),
    ({"credentials": True}, None, "*", []),
    # a single literal origin is sent whatever the request's Origin
    ({"origins": ["http://a.test"]}, "http://b.test", "http://a.test", ["Origin"]),
    ({"origins": ["http://a.test"]}, None, "http://a.test", ["Origin"]),
    # several literals: normalised comparison, default ports dropped
    ({"origins": ["http://a.test", "https://b.test"]}, "https://b.test:443", "https://b.test",
     ["Origin"]),
    ({"origins": ["http://a.test:80", "https://b.test"]}, "http://a.test", "http://a.test",
     ["Origin"]),
    ({"origins": ["http://a.test", "https://b.test"]}, "https://b.test:8443", None, ["Origin"]),
    # a regex with ':' is matched against scheme://host[:port], anchored both ends
    ({"origins": [r"https://.*\.example\.com"]}, "https://api.example.com",
     "https://api.example.com", ["Origin"]),
    ({"origins": [r"https://.*\.example\.com"]}, "http://api.example.com", None, ["Origin"]),
    ({"origins": [r"https://.*\.example\.com"]}, "https://api.example.com.evil.test", None,
     ["Origin"]),
    ({"origins": [r"^https://.*\.example\.com$"]}, "https://x.example.com:443",
     "https://x.example.com", ["Origin"]),
    # a regex without ':' is matched against the host only
    ({"origins": [r".*\.example\.org"]}, "http://a.example.org:8080",
     "http://a.example.org:8080", ["Origin"]),
    ({"origins": [r".*\.example\.org"]}, "https://example.org", None, ["Origin"]),
    # "*" among several origins: allow all for a request with an Origin (Vary still added)
    ({"origins": ["http://a.test", "*"]}, "http://z.test", "*", ["Origin"]),
    ({"origins": ["http://a.test", "*"]}, None, None, ["Origin"]),
    ({"origins": ["http://a.test", "*"], "credentials": True}, "http://z.test",
     "http://z.test", ["Origin", "Origin"]),
])
def test_origin_resolution(config: dict[str, Any], origin: str | None, acao: str | None,
                           vary: list[str], edge_gateway: Make, edge_upstream: Upstream,
                           edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cors(**config)))
    headers = [("Origin", origin)] if origin is not None else []
    resp = edge_client(gw.port).request("GET", "/", headers)
    assert resp.status == 200
    assert resp.all("Access-Control-Allow-Origin") == ([acao] if acao else [])
    assert resp.all("Vary") == vary


# -- preflight details ---------------------------------------------------------------------------


def test_preflight_defaults(edge_gateway: Make, edge_upstream: Upstream,
                            edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cors()))
    c = edge_client(gw.port)
    resp = c.request("OPTIONS", "/", preflight("http://x.test", "PUT",
                                               [("Access-Control-Request-Headers", "X-A, X-B")]))
    assert resp.status == 200 and resp.body == b""
    assert cors_headers(resp) == {
        "access-control-allow-origin": ["*"],
        # no `headers` configured: the requested ones are echoed
        "access-control-allow-headers": ["X-A, X-B"],
        "access-control-allow-methods": ["GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"],
    }
    resp = c.request("OPTIONS", "/", preflight("http://x.test", "PUT"))
    assert resp.header("Access-Control-Allow-Headers") is None
    assert edge_upstream.requests == []


def test_preflight_credentials_allow_all_echoes_origin(
        edge_gateway: Make, edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cors(credentials=True, max_age=10.5)))
    resp = edge_client(gw.port).request("OPTIONS", "/", preflight("http://x.test"))
    assert cors_headers(resp) == {
        "vary": ["Origin"],
        "access-control-allow-origin": ["http://x.test"],
        "access-control-allow-credentials": ["true"],
        "access-control-allow-methods": ["GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"],
        "access-control-max-age": ["10.5"],
    }


def test_private_network(edge_gateway: Make, edge_upstream: Upstream,
                         edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cors(private_network=True)))
    c = edge_client(gw.port)
    pna = ("Access-Control-Request-Private-Network", "true")
    assert c.request("OPTIONS", "/", preflight(extra=[pna])).header(
        "Access-Control-Allow-Private-Network") == "true"
    assert c.request("OPTIONS", "/", preflight()).header(
        "Access-Control-Allow-Private-Network") is None
    gw2 = edge_gateway(service(edge_upstream.url, plugins=cors()))
    assert edge_client(gw2.port).request("OPTIONS", "/", preflight(extra=[pna])).header(
        "Access-Control-Allow-Private-Network") is None


def test_preflight_continue_proxies_and_adds_nothing(
        edge_gateway: Make, edge_upstreams: Callable[..., Upstream], edge_client: Client) -> None:
    up = edge_upstreams(respond(204, b"", [("Access-Control-Allow-Origin", "http://up.test")]))
    gw = edge_gateway(service(up.url, plugins=cors(
        origins=["http://a.test", "http://b.test"], credentials=True, preflight_continue=True,
        exposed_headers=["X-E"])))
    resp = edge_client(gw.port).request("OPTIONS", "/p", preflight("http://a.test"))
    assert resp.status == 204
    assert cors_headers(resp) == {"access-control-allow-origin": ["http://up.test"]}
    assert up.requests[0].method == "OPTIONS"
    assert up.requests[0].header("Access-Control-Request-Method") == "POST"


def test_options_with_origin_but_no_request_method_is_proxied_with_headers(
        edge_gateway: Make, edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=cors(origins=["http://a.test",
                                                                       "http://b.test"])))
    resp = edge_client(gw.port).request("OPTIONS", "/", [("Origin", "http://b.test")])
    assert resp.status == 200
    assert resp.body == b"/"  # the upstream answered
    assert resp.header("Access-Control-Allow-Origin") == "http://b.test"


def test_route_cors_overrides_global(edge_gateway: Make, edge_upstream: Upstream,
                                     edge_client: Client) -> None:
    doc = service(edge_upstream.url, routes=[
        {"name": "a", "paths": ["/a"], "plugins": cors(origins=["http://route.test"])},
        {"name": "b", "paths": ["/b"]}], plugins=cors(origins=["http://global.test"]))
    gw = edge_gateway(doc)
    c = edge_client(gw.port)
    assert c.request("GET", "/a").header("Access-Control-Allow-Origin") == "http://route.test"
    assert c.request("GET", "/b").header("Access-Control-Allow-Origin") == "http://global.test"
