"""ip-restriction through a real gateway (Kong §3.7). The test client is 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from dataplane_helpers import Gateway, RawClient, Upstream, json_error
from edge_plugins_support import service

Make = Callable[..., Gateway]
Client = Callable[..., RawClient]


def ipr(**config: Any) -> list[dict[str, Any]]:
    return [{"name": "ip-restriction", "config": config}]


@pytest.mark.parametrize(("config", "allowed"), [
    ({"deny": ["127.0.0.1"]}, False),
    ({"deny": ["127.0.0.0/8"]}, False),
    ({"deny": ["10.0.0.0/8", "::1"]}, True),
    ({"allow": ["127.0.0.1/32"]}, True),
    ({"allow": ["10.0.0.0/8"]}, False),
    ({"allow": ["::1", "::/0"]}, False),  # IPv6 ranges never hold an IPv4 client
    ({"allow": ["127.0.0.0/8"], "deny": ["127.0.0.1"]}, False),  # deny is checked first
    ({"allow": ["127.0.0.0/8"], "deny": ["127.0.0.2"]}, True),
    ({"allow": [], "deny": ["127.0.0.5/24"]}, False),  # host bits are ignored
])
def test_allow_and_deny(config: dict[str, Any], allowed: bool, edge_gateway: Make,
                        edge_upstream: Upstream, edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=ipr(**config)))
    resp = edge_client(gw.port).request("GET", "/x")
    if allowed:
        assert resp.status == 200
        assert len(edge_upstream.requests) == 1
    else:
        assert resp.status == 403
        assert json_error("IP address not allowed: 127.0.0.1").fullmatch(resp.text)
        assert resp.header("Content-Type") == "application/json; charset=utf-8"
        assert edge_upstream.requests == []


def test_custom_status_and_message(edge_gateway: Make, edge_upstream: Upstream,
                                   edge_client: Client) -> None:
    gw = edge_gateway(service(edge_upstream.url, plugins=ipr(
        deny=["127.0.0.1"], status=401, message="go away")))
    c = edge_client(gw.port)
    resp = c.request("GET", "/")
    assert resp.status == 401
    assert json_error("go away").fullmatch(resp.text)
    # kong.response.error negotiates the format from Accept
    resp = c.request("GET", "/", [("Accept", "text/plain")])
    assert resp.status == 401
    assert resp.text.startswith("go away\n")
    # a bodiless request's rejection keeps the connection usable
    again = c.request("GET", "/")
    assert again.status == 401 and json.loads(again.body)["message"] == "go away"


def test_real_ip_from_a_trusted_peer(edge_gateway: Make, edge_upstream: Upstream,
                                     edge_client: Client) -> None:
    doc = service(edge_upstream.url, plugins=ipr(deny=["203.0.113.0/24"]))
    gw = edge_gateway(doc, trusted_ips="127.0.0.1/32", real_ip_header="X-Forwarded-For")
    c = edge_client(gw.port)
    resp = c.request("GET", "/", [("X-Forwarded-For", "203.0.113.9")])
    assert resp.status == 403
    assert json_error("IP address not allowed: 203.0.113.9").fullmatch(resp.text)
    assert c.request("GET", "/", [("X-Forwarded-For", "198.51.100.1")]).status == 200
    # an untrusted peer's header is not believed
    gw2 = edge_gateway(doc, real_ip_header="X-Forwarded-For")
    assert edge_client(gw2.port).request(
        "GET", "/", [("X-Forwarded-For", "203.0.113.9")]).status == 200


def test_route_scoped(edge_gateway: Make, edge_upstream: Upstream,
                      edge_client: Client) -> None:
    doc = service(edge_upstream.url, routes=[
        {"name": "closed", "paths": ["/closed"], "plugins": ipr(allow=["192.0.2.1"])},
        {"name": "open", "paths": ["/open"]}])
    gw = edge_gateway(doc)
    c = edge_client(gw.port)
    assert c.request("GET", "/closed").status == 403
    assert c.request("GET", "/open").status == 200
